/*
 * What the files of monitor/ share and nobody else needs.
 *
 * monitor.c owns the connection layer both socket monitors use: listeners,
 * non-blocking connections with a bounded output queue, descriptors that
 * arrived with SCM_RIGHTS, and the event queue. qmp.c and hmp.c plug their
 * protocol into it through MonitorConnOps. Everything here runs on the main
 * loop thread except monitor_qapi_event_emit().
 */
#ifndef MONITOR_INTERNAL_H
#define MONITOR_INTERNAL_H

#include "qemu/osdep.h"
#include "io/channel.h"
#include <json-glib/json-glib.h>

typedef struct MonitorConn MonitorConn;

typedef struct MonitorConnOps {
    const char *kind; /* "QMP" or "HMP", for messages */
    /* A client connected: allocate conn->proto, send the greeting. */
    void (*opened)(MonitorConn *conn);
    /*
     * Bytes are waiting in conn->in (from conn->in_off on). Consume what can
     * be handled and advance conn->in_off; return early when
     * monitor_conn_output_full() says so (input resumes once the client has
     * read its replies).
     */
    void (*input)(MonitorConn *conn);
    /* The connection was closed: stop sending to it. */
    void (*closed)(MonitorConn *conn);
    /*
     * The last reference is gone: free conn->proto. (Not in closed(): a
     * connection can be closed by a write while its input is handled.)
     */
    void (*free)(MonitorConn *conn);
} MonitorConnOps;

/* A descriptor received with SCM_RIGHTS, not yet handed out. */
typedef struct MonitorRecvFd {
    int fd;
    /* Stream offset just past the bytes it arrived with. */
    uint64_t arrival_end;
} MonitorRecvFd;

struct MonitorConn {
    gint refcount;
    const MonitorConnOps *ops;
    void *proto; /* protocol state, owned by ops */
    QIOChannel *ioc;
    char *peer; /* for log messages */
    bool dead;  /* closed; only the memory is still referenced */

    guint in_watch;
    guint out_watch;

    /* Received bytes not consumed by ops->input yet. */
    GByteArray *in;
    size_t in_off;
    /* Stream offset of in->data[0]. */
    uint64_t in_base;
    /* Total bytes received. */
    uint64_t bytes_received;

    /* Queued output; out->data[out_off..] is still to be written. */
    GByteArray *out;
    size_t out_off;

    bool fd_pass;
    GQueue recv_fds; /* of MonitorRecvFd *, oldest first */
};

/* --- monitor.c: connections and listeners --- */

/*
 * Parses "unix:PATH[,server=on][,wait=off]" or "tcp:HOST:PORT[,...]" and
 * starts listening; every accepted client gets a connection driven by ops.
 * wait=on accepts one client before returning, as QEMU does.
 */
bool monitor_listen(const char *spec, const MonitorConnOps *ops, GError **errp);

/* Queues len bytes for the client; never blocks. */
void monitor_conn_write(MonitorConn *conn, const void *buf, size_t len);
/* True while the client has so much unread output that input should wait. */
bool monitor_conn_output_full(MonitorConn *conn);
/* Drops the client (idempotent). */
void monitor_conn_close(MonitorConn *conn);
MonitorConn *monitor_conn_ref(MonitorConn *conn);
void monitor_conn_unref(MonitorConn *conn);

/*
 * Brackets the handling of one message whose last byte (including the
 * whitespace that follows it in the buffer) is at stream offset msg_end:
 * descriptors that arrived with bytes up to msg_end may be taken with
 * monitor_fd_take() in between; the ones left are closed by
 * monitor_conn_dispatch_end(), so nothing leaks and later messages' fds
 * stay queued for them.
 */
void monitor_conn_dispatch_begin(MonitorConn *conn, uint64_t msg_end);
void monitor_conn_dispatch_end(MonitorConn *conn);
/* The connection whose message is being handled, or NULL. */
MonitorConn *monitor_conn_current(void);

/* The thread that runs the main loop (set by the first monitor init). */
void monitor_note_main_thread(void);
/* A QMP server exists: events are worth building from now on. */
void monitor_events_enable(void);
/* minivm's version as the QMP greeting and query-version give it. */
void monitor_get_version(int64_t *major, int64_t *minor, int64_t *micro);

/* --- qmp.c --- */
/* Writes one serialized event line to every negotiated QMP client. */
void monitor_qmp_broadcast(const char *line, size_t len);
/* Marks the client whose command is running as negotiated. */
bool monitor_qmp_negotiate_current(GError **errp);
/*
 * For in-process clients (monitor/qmp-fuzz-entry.c): the QMP protocol's
 * ops, and a filter that makes the commands it refuses unknown
 * (NULL: every command). Main loop thread, BQL held.
 */
typedef bool (*QmpCommandFilter)(const char *name);
const MonitorConnOps *monitor_qmp_conn_ops(void);
void monitor_qmp_set_command_filter(QmpCommandFilter allowed);

/* --- hmp.c --- */
void monitor_hmp_cleanup(void);
/* Registers info status, stop, cont, ... (hmp-cmds.c); help is hmp.c's. */
void hmp_register_builtin_commands(void);

/* The text after "package" in the greeting and query-version. */
#define MONITOR_PACKAGE "minivm-" MINIVM_VERSION

/* --- fds.c, also used by tests/unit/test-fdset.c --- */
/*
 * Adds fd (owned from now on) to set fdset_id, or to a new set with the
 * lowest free id; returns the set id or -1 (fd closed) with errp.
 */
int64_t monitor_fdset_add_fd(int fd, bool has_fdset_id, int64_t fdset_id,
                             const char *opaque, GError **errp);
/* The qemu_open()/qemu_close() hooks. */
int monitor_fdset_open(const char *path, int flags, GError **errp);
void monitor_fdset_close(int fd);
/* Closes every named fd and fdset (at exit, and between unit tests). */
void monitor_fds_cleanup(void);

#endif
