/*
 * The socket transports (unix:, tcp:).
 *
 * Source: a blocking connect, made by the migration thread.
 * Destination: a non-blocking listener watched by the main loop; the first
 * connection is accepted there (accept() on a ready listener does not
 * block), made blocking for the load thread, and the listener is closed,
 * as QEMU accepts one migration per listen.
 */
#include "qemu/osdep.h"
#include "io/channel-socket.h"
#include "migration/migration.h"
#include "migration/multifd.h" /* mfd */
#include "migration/options.h" /* mfd */
#include "migration/socket.h"

static QIOChannelSocket *listener;
static guint listener_watch;

/* rel: a connect that waits on its peer gives up once cancelled (or quit). */
static bool socket_connect_cancelled(void *opaque)
{
    MigrationState *s = opaque;

    return __atomic_load_n(&s->state, __ATOMIC_SEQ_CST) ==
           MIGRATION_STATUS_CANCELLING;
}

QIOChannel *socket_connect_outgoing(const char *addr, GError **errp)
{
    QIOChannelSocket *sioc = qio_channel_socket_connect_cancellable(
        addr, socket_connect_cancelled, migrate_get_current(), errp);

    if (!sioc) {
        return NULL;
    }
    qio_channel_set_name(&sioc->parent, "migration-socket-outgoing");
    return &sioc->parent;
}

void socket_incoming_stop(void)
{
    if (listener_watch) {
        g_source_remove(listener_watch);
        listener_watch = 0;
    }
    if (listener) {
        qio_channel_close(&listener->parent, NULL);
        qio_channel_unref(&listener->parent);
        listener = NULL;
    }
}

/* mfd: begin */
static gboolean socket_accept_incoming(QIOChannel *ioc, GIOCondition cond,
                                       gpointer opaque);
static bool main_accepted;

/*
 * With multifd the listener stays open for the channels. The first
 * connection is the main one: the source connects it, and only then its
 * multifd channels, so it is first in the accept queue. The others go to
 * multifd, which reads their init messages and says when it has them all.
 */
static void socket_accept_multifd(QIOChannelSocket *sioc)
{
    bool enough = false;

    if (!main_accepted) {
        main_accepted = true;
        qio_channel_set_name(&sioc->parent, "migration-socket-incoming");
        migration_incoming_process(&sioc->parent);
    } else {
        qio_channel_set_name(&sioc->parent, "multifd-socket-incoming");
        enough = multifd_recv_new_channel(&sioc->parent);
    }
    if (enough) {
        socket_incoming_stop();
    } else {
        listener_watch = qio_channel_add_watch(
            &listener->parent, G_IO_IN, socket_accept_incoming, NULL, NULL);
    }
}
/* mfd: end */

static gboolean socket_accept_incoming(QIOChannel *ioc, GIOCondition cond,
                                       gpointer opaque)
{
    GError *err = NULL;
    QIOChannelSocket *sioc = qio_channel_socket_accept(listener, &err);

    /* This source is removed by returning FALSE, not by the stop below. */
    listener_watch = 0;
    if (!sioc || qio_channel_set_blocking(&sioc->parent, true, &err) < 0) {
        error_prepend(&err, "Failed to accept the migration connection: ");
        if (sioc) {
            qio_channel_unref(&sioc->parent);
        }
        socket_incoming_stop();
        migration_incoming_fail(err);
        return G_SOURCE_REMOVE;
    }
    if (migrate_multifd()) { /* mfd */
        socket_accept_multifd(sioc);
        return G_SOURCE_REMOVE;
    }
    socket_incoming_stop();
    qio_channel_set_name(&sioc->parent, "migration-socket-incoming");
    migration_incoming_process(&sioc->parent);
    return G_SOURCE_REMOVE;
}

bool socket_start_incoming(const char *addr, GError **errp)
{
    QIOChannelSocket *lsioc = qio_channel_socket_listen(addr, errp);

    if (!lsioc) {
        return false;
    }
    if (qio_channel_set_blocking(&lsioc->parent, false, errp) < 0) {
        qio_channel_unref(&lsioc->parent);
        return false;
    }
    qio_channel_set_name(&lsioc->parent, "migration-socket-listener");
    socket_incoming_stop();
    main_accepted = false; /* mfd */
    listener = lsioc;
    listener_watch = qio_channel_add_watch(&lsioc->parent, G_IO_IN,
                                           socket_accept_incoming, NULL, NULL);
    return true;
}
