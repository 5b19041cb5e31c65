/*
 * The monitors' common machinery: listening sockets, client connections
 * that never block the main loop, descriptors passed with SCM_RIGHTS, and
 * QMP events.
 *
 * A connection reads one chunk per wakeup (so a busy client cannot starve
 * the others), hands the bytes to its protocol (qmp.c or hmp.c) and queues
 * what the protocol answers. Output is written when the socket is writable;
 * while a client has more than OUT_PAUSE_BYTES unread, its input waits, and
 * a client that lets OUT_MAX_BYTES pile up (events keep coming even while
 * its input waits) is dropped rather than growing without bound.
 *
 * Events may be emitted by any thread: they are stamped and serialized
 * there, queued under a mutex and written by the main loop. On the main
 * thread the queue is flushed at once, so a STOP caused by a "stop" command
 * precedes the command's reply, as in QEMU.
 */
#include "qemu/osdep.h"
#include "qemu/thread.h"

#include <signal.h>

#include "io/channel-socket.h"
#include "monitor/monitor.h"
#include "monitor/monitor-internal.h"
#include "system/main-loop.h"

#define READ_CHUNK_BYTES (64 * 1024)
#define OUT_PAUSE_BYTES  (1 * 1024 * 1024)
#define OUT_RESUME_BYTES (256 * 1024)
#define OUT_MAX_BYTES    (64 * 1024 * 1024)
/* Descriptors a client may have queued before using them. */
#define RECV_FDS_MAX 64
/* How long monitor_cleanup() tries to deliver the last replies and events. */
#define EXIT_FLUSH_MS 500

typedef struct MonitorListener {
    QIOChannelSocket *sioc;
    const MonitorConnOps *ops;
    char *address;   /* for messages */
    char *unix_path; /* removed at exit */
    guint watch;
    guint retry_timer;
} MonitorListener;

static GPtrArray *listeners; /* of MonitorListener * */
static GPtrArray *conns;     /* of MonitorConn *, one reference each */

static GThread *main_thread;

/* The message being dispatched and how far its descriptors may come from. */
static MonitorConn *cur_conn;
static uint64_t cur_fd_limit;

/* Events not yet written; see the comment at the top. */
static QemuMutex event_lock;
static GQueue event_queue; /* of GString *, each one line */
static bool event_flush_scheduled;
static gint events_wanted; /* a QMP server exists; read by any thread */

static void monitor_log(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static void monitor_log(const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_printerr("minivm: monitor: %s\n", msg);
}

void monitor_note_main_thread(void)
{
    if (!main_thread) {
        main_thread = g_thread_self();
    }
}

static bool on_main_thread(void)
{
    return main_thread && g_thread_self() == main_thread;
}

/* --- connections --- */

static gboolean conn_readable(QIOChannel *ioc, GIOCondition cond,
                              gpointer opaque);
static gboolean conn_writable(QIOChannel *ioc, GIOCondition cond,
                              gpointer opaque);

MonitorConn *monitor_conn_ref(MonitorConn *conn)
{
    conn->refcount++;
    return conn;
}

static void recv_fds_close(MonitorConn *conn)
{
    MonitorRecvFd *r;

    while ((r = g_queue_pop_head(&conn->recv_fds))) {
        close(r->fd);
        g_free(r);
    }
}

void monitor_conn_unref(MonitorConn *conn)
{
    if (--conn->refcount > 0) {
        return;
    }
    g_assert(conn->dead);
    if (conn->proto) {
        conn->ops->free(conn);
    }
    recv_fds_close(conn);
    g_byte_array_unref(conn->in);
    g_byte_array_unref(conn->out);
    g_free(conn->peer);
    g_free(conn);
}

static size_t conn_out_pending(MonitorConn *conn)
{
    return conn->out->len - conn->out_off;
}

bool monitor_conn_output_full(MonitorConn *conn)
{
    return conn->dead || conn_out_pending(conn) > OUT_PAUSE_BYTES;
}

static void conn_watch_input(MonitorConn *conn)
{
    if (!conn->dead && !conn->in_watch) {
        conn->in_watch =
            qio_channel_add_watch(conn->ioc, G_IO_IN | G_IO_HUP | G_IO_ERR,
                                  conn_readable, conn, NULL);
    }
}

void monitor_conn_close(MonitorConn *conn)
{
    if (conn->dead) {
        return;
    }
    conn->dead = true;
    if (conn->in_watch) {
        g_source_remove(conn->in_watch);
        conn->in_watch = 0;
    }
    if (conn->out_watch) {
        g_source_remove(conn->out_watch);
        conn->out_watch = 0;
    }
    recv_fds_close(conn);
    conn->ops->closed(conn);
    qio_channel_close(conn->ioc, NULL);
    qio_channel_unref(conn->ioc);
    conn->ioc = NULL;
    /* Drops the list's reference; callers in the middle hold their own. */
    g_ptr_array_remove_fast(conns, conn);
    monitor_conn_unref(conn);
}

/* Writes what the socket takes now; false if the client is gone. */
static bool conn_flush(MonitorConn *conn)
{
    while (conn_out_pending(conn) > 0) {
        GError *err = NULL;
        ssize_t n =
            qio_channel_write(conn->ioc, conn->out->data + conn->out_off,
                              conn_out_pending(conn), &err);
        if (n == QIO_CHANNEL_ERR_BLOCK) {
            break;
        }
        if (n <= 0) {
            g_clear_error(&err);
            return false;
        }
        conn->out_off += n;
    }
    if (conn->out_off == conn->out->len) {
        if (conn->out->len > OUT_RESUME_BYTES) {
            /* Do not keep a huge reply's buffer for the client's life. */
            g_byte_array_unref(conn->out);
            conn->out = g_byte_array_new();
        }
        g_byte_array_set_size(conn->out, 0);
        conn->out_off = 0;
    } else if (conn->out_off >= OUT_RESUME_BYTES &&
               conn->out_off > conn->out->len / 2) {
        g_byte_array_remove_range(conn->out, 0, conn->out_off);
        conn->out_off = 0;
    }
    return true;
}

void monitor_conn_write(MonitorConn *conn, const void *buf, size_t len)
{
    if (conn->dead || len == 0) {
        return;
    }
    if (conn_out_pending(conn) + len > OUT_MAX_BYTES) {
        monitor_log("%s client on %s does not read its replies; dropping it",
                    conn->ops->kind, conn->peer);
        monitor_conn_close(conn);
        return;
    }
    g_byte_array_append(conn->out, buf, len);
    if (!conn->out_watch) {
        /* Nothing was pending: try now, poll only for what is left. */
        if (!conn_flush(conn)) {
            monitor_conn_close(conn);
            return;
        }
        if (conn_out_pending(conn) > 0) {
            conn->out_watch =
                qio_channel_add_watch(conn->ioc, G_IO_OUT | G_IO_HUP | G_IO_ERR,
                                      conn_writable, conn, NULL);
        }
    }
}

/* Drops the consumed part of the input buffer. */
static void conn_compact_input(MonitorConn *conn)
{
    if (conn->in_off == conn->in->len) {
        conn->in_base += conn->in_off;
        g_byte_array_set_size(conn->in, 0);
        conn->in_off = 0;
    } else if (conn->in_off >= READ_CHUNK_BYTES) {
        conn->in_base += conn->in_off;
        g_byte_array_remove_range(conn->in, 0, conn->in_off);
        conn->in_off = 0;
    }
}

/* Hands buffered input to the protocol; pauses reading if output is full. */
static void conn_process_input(MonitorConn *conn)
{
    if (conn->in_off < conn->in->len) {
        conn->ops->input(conn);
    }
    if (conn->dead) {
        return;
    }
    conn_compact_input(conn);
    if (monitor_conn_output_full(conn)) {
        if (conn->in_watch) {
            g_source_remove(conn->in_watch);
            conn->in_watch = 0;
        }
    } else {
        conn_watch_input(conn);
    }
}

static void conn_queue_fds(MonitorConn *conn, int *fds, size_t nfds)
{
    for (size_t i = 0; i < nfds; i++) {
        MonitorRecvFd *r;

        if (g_queue_get_length(&conn->recv_fds) >= RECV_FDS_MAX) {
            close(fds[i]);
            continue;
        }
        /* Never leak a client's descriptor into a child process. */
        fcntl(fds[i], F_SETFD, FD_CLOEXEC);
        r = g_new(MonitorRecvFd, 1);
        r->fd = fds[i];
        r->arrival_end = conn->bytes_received;
        g_queue_push_tail(&conn->recv_fds, r);
    }
}

static gboolean conn_readable(QIOChannel *ioc, GIOCondition cond,
                              gpointer opaque)
{
    MonitorConn *conn = opaque;
    size_t old_len = conn->in->len;
    g_autofree int *fds = NULL;
    size_t nfds = 0;
    GError *err = NULL;
    struct iovec iov;
    ssize_t n;
    gboolean keep;

    g_byte_array_set_size(conn->in, old_len + READ_CHUNK_BYTES);
    iov.iov_base = conn->in->data + old_len;
    iov.iov_len = READ_CHUNK_BYTES;
    n = qio_channel_readv_full(ioc, &iov, 1, conn->fd_pass ? &fds : NULL,
                               conn->fd_pass ? &nfds : NULL, &err);
    g_byte_array_set_size(conn->in, old_len + (n > 0 ? n : 0));
    if (n == QIO_CHANNEL_ERR_BLOCK) {
        return G_SOURCE_CONTINUE;
    }
    if (n > 0) {
        conn->bytes_received += n;
    }
    conn_queue_fds(conn, fds, nfds);
    if (n <= 0) {
        /* EOF or error: a half-received message dies with its client. */
        g_clear_error(&err);
        conn->in_watch = 0;
        monitor_conn_close(conn);
        return G_SOURCE_REMOVE;
    }

    monitor_conn_ref(conn);
    conn_process_input(conn);
    /* conn_process_input() removed this source if input must wait. */
    keep = !conn->dead && conn->in_watch != 0;
    monitor_conn_unref(conn);
    return keep;
}

static gboolean conn_writable(QIOChannel *ioc, GIOCondition cond,
                              gpointer opaque)
{
    MonitorConn *conn = opaque;
    gboolean keep;

    monitor_conn_ref(conn);
    if (!conn_flush(conn)) {
        conn->out_watch = 0;
        monitor_conn_close(conn);
        monitor_conn_unref(conn);
        return G_SOURCE_REMOVE;
    }
    keep = conn_out_pending(conn) > 0;
    if (!keep) {
        conn->out_watch = 0;
    }
    /* The client caught up: resume its input, buffered bytes first. */
    if (!conn->in_watch && conn_out_pending(conn) <= OUT_RESUME_BYTES) {
        conn_process_input(conn);
    }
    keep = keep && !conn->dead;
    monitor_conn_unref(conn);
    return keep;
}

static void monitor_conn_new(QIOChannelSocket *sioc, MonitorListener *l)
{
    MonitorConn *conn = g_new0(MonitorConn, 1);
    GError *err = NULL;

    conn->refcount = 1;
    conn->ops = l->ops;
    conn->ioc = &sioc->parent;
    conn->peer = g_strdup(l->address);
    conn->in = g_byte_array_new();
    conn->out = g_byte_array_new();
    conn->fd_pass =
        qio_channel_has_feature(conn->ioc, QIO_CHANNEL_FEATURE_FD_PASS);
    g_queue_init(&conn->recv_fds);
    if (qio_channel_set_blocking(conn->ioc, false, &err) < 0) {
        monitor_log("%s", err->message);
        g_error_free(err);
        conn->dead = true;
        qio_channel_unref(conn->ioc);
        conn->ioc = NULL;
        monitor_conn_unref(conn);
        return;
    }
    g_ptr_array_add(conns, conn);
    conn->ops->opened(conn);
    conn_watch_input(conn);
}

/* --- descriptors of the message being dispatched --- */

void monitor_conn_dispatch_begin(MonitorConn *conn, uint64_t msg_end)
{
    cur_conn = conn;
    cur_fd_limit = msg_end;
}

void monitor_conn_dispatch_end(MonitorConn *conn)
{
    MonitorRecvFd *r;

    while ((r = g_queue_peek_head(&conn->recv_fds)) &&
           r->arrival_end <= cur_fd_limit) {
        g_queue_pop_head(&conn->recv_fds);
        close(r->fd);
        g_free(r);
    }
    cur_conn = NULL;
    cur_fd_limit = 0;
}

MonitorConn *monitor_conn_current(void)
{
    return cur_conn;
}

int monitor_fd_take(void)
{
    MonitorRecvFd *r;
    int fd;

    if (!cur_conn) {
        return -1;
    }
    r = g_queue_peek_head(&cur_conn->recv_fds);
    if (!r || r->arrival_end > cur_fd_limit) {
        return -1;
    }
    g_queue_pop_head(&cur_conn->recv_fds);
    fd = r->fd;
    g_free(r);
    return fd;
}

/* --- listeners --- */

static gboolean listener_accept(QIOChannel *ioc, GIOCondition cond,
                                gpointer opaque);

static gboolean listener_retry(gpointer opaque)
{
    MonitorListener *l = opaque;

    l->retry_timer = 0;
    l->watch = qio_channel_add_watch(&l->sioc->parent, G_IO_IN, listener_accept,
                                     l, NULL);
    return G_SOURCE_REMOVE;
}

static gboolean listener_accept(QIOChannel *ioc, GIOCondition cond,
                                gpointer opaque)
{
    MonitorListener *l = opaque;
    GError *err = NULL;
    QIOChannelSocket *client = qio_channel_socket_accept(l->sioc, &err);

    if (!client) {
        /*
         * Usually a client that went away before we accepted it; but if we
         * are out of descriptors the listener stays readable, so back off
         * instead of spinning.
         */
        g_clear_error(&err);
        l->watch = 0;
        l->retry_timer = g_timeout_add(100, listener_retry, l);
        return G_SOURCE_REMOVE;
    }
    monitor_conn_new(client, l);
    return G_SOURCE_CONTINUE;
}

static bool parse_switch(const char *key, const char *value, bool *out,
                         GError **errp)
{
    if (!value || !strcmp(value, "on") || !strcmp(value, "yes") ||
        !strcmp(value, "true")) {
        *out = true;
    } else if (!strcmp(value, "off") || !strcmp(value, "no") ||
               !strcmp(value, "false")) {
        *out = false;
    } else {
        error_setg(errp, "parameter '%s' expects 'on' or 'off'", key);
        return false;
    }
    return true;
}

static bool parse_listen_spec(const char *spec, char **address, bool *wait,
                              GError **errp)
{
    g_auto(GStrv) parts = g_strsplit(spec, ",", -1);
    bool server = true;

    *wait = false;
    if (!g_str_has_prefix(parts[0], "unix:") &&
        !g_str_has_prefix(parts[0], "tcp:")) {
        error_setg(errp,
                   "unsupported address '%s' (expected unix:PATH or "
                   "tcp:HOST:PORT)",
                   parts[0]);
        return false;
    }
    for (int i = 1; parts[i]; i++) {
        char *eq = strchr(parts[i], '=');
        const char *value = eq ? eq + 1 : NULL;

        if (eq) {
            *eq = '\0';
        }
        if (!strcmp(parts[i], "server")) {
            if (!parse_switch("server", value, &server, errp)) {
                return false;
            }
        } else if (!strcmp(parts[i], "wait")) {
            if (!parse_switch("wait", value, wait, errp)) {
                return false;
            }
        } else if (!strcmp(parts[i], "nowait") && !value) {
            *wait = false;
        } else {
            error_setg(errp, "unknown parameter '%s'", parts[i]);
            return false;
        }
    }
    if (!server) {
        error_setg(errp, "only server=on is supported");
        return false;
    }
    *address = g_strdup(parts[0]);
    return true;
}

static void ignore_sigpipe(void)
{
    struct sigaction sa;

    /*
     * A client that disconnects while we write to it must cost us that
     * client, not the process. main() may have done this already.
     */
    sigaction(SIGPIPE, NULL, &sa);
    if (sa.sa_handler == SIG_DFL) {
        sa.sa_handler = SIG_IGN;
        sigaction(SIGPIPE, &sa, NULL);
    }
}

bool monitor_listen(const char *spec, const MonitorConnOps *ops, GError **errp)
{
    g_autofree char *address = NULL;
    MonitorListener *l;
    QIOChannelSocket *sioc;
    bool wait;

    monitor_note_main_thread();
    ignore_sigpipe();
    if (!parse_listen_spec(spec, &address, &wait, errp)) {
        return false;
    }
    sioc = qio_channel_socket_listen(address, errp);
    if (!sioc) {
        return false;
    }
    if (!listeners) {
        listeners = g_ptr_array_new();
        conns = g_ptr_array_new();
    }
    l = g_new0(MonitorListener, 1);
    l->sioc = sioc;
    l->ops = ops;
    l->address = g_steal_pointer(&address);
    if (g_str_has_prefix(l->address, "unix:")) {
        l->unix_path = g_strdup(l->address + strlen("unix:"));
    }
    g_ptr_array_add(listeners, l);

    if (wait) {
        QIOChannelSocket *client;

        g_printerr("minivm: waiting for connection on %s\n", l->address);
        client = qio_channel_socket_accept(sioc, errp);
        if (!client) {
            return false;
        }
        monitor_conn_new(client, l);
    }
    if (qio_channel_set_blocking(&sioc->parent, false, errp) < 0) {
        return false;
    }
    l->watch =
        qio_channel_add_watch(&sioc->parent, G_IO_IN, listener_accept, l, NULL);
    return true;
}

void monitor_get_version(int64_t *major, int64_t *minor, int64_t *micro)
{
    /* MINIVM_VERSION comes from meson.build's project version. */
    *major = *minor = *micro = 0;
    sscanf(MINIVM_VERSION, "%" SCNd64 ".%" SCNd64 ".%" SCNd64, major, minor,
           micro);
}

/* --- events --- */

static void event_queue_flush(void)
{
    GQueue pending = G_QUEUE_INIT;
    GString *line;

    qemu_mutex_lock(&event_lock);
    pending = event_queue;
    g_queue_init(&event_queue);
    qemu_mutex_unlock(&event_lock);

    while ((line = g_queue_pop_head(&pending))) {
        monitor_qmp_broadcast(line->str, line->len);
        g_string_free(line, TRUE);
    }
}

static gboolean event_flush_cb(gpointer opaque)
{
    qemu_mutex_lock(&event_lock);
    event_flush_scheduled = false;
    qemu_mutex_unlock(&event_lock);
    event_queue_flush();
    return G_SOURCE_REMOVE;
}

void monitor_events_enable(void)
{
    g_atomic_int_set(&events_wanted, 1);
}

void monitor_qapi_event_emit(const char *name, JsonObject *data)
{
    gint64 now = g_get_real_time();
    g_autoptr(JsonGenerator) gen = NULL;
    JsonObject *event, *stamp;
    JsonNode *root;
    GString *line;
    bool schedule = false;

    if (!g_atomic_int_get(&events_wanted)) {
        /* No QMP server: nobody can be listening. */
        if (data) {
            json_object_unref(data);
        }
        return;
    }

    event = json_object_new();
    json_object_set_string_member(event, "event", name);
    json_object_set_object_member(event, "data",
                                  data ? data : json_object_new());
    stamp = json_object_new();
    json_object_set_int_member(stamp, "seconds", now / G_USEC_PER_SEC);
    json_object_set_int_member(stamp, "microseconds", now % G_USEC_PER_SEC);
    json_object_set_object_member(event, "timestamp", stamp);

    root = json_node_init_object(json_node_alloc(), event);
    json_object_unref(event);
    gen = json_generator_new();
    json_generator_set_root(gen, root);
    json_node_unref(root);
    line = g_string_new(NULL);
    json_generator_to_gstring(gen, line);
    g_string_append(line, "\r\n");

    qemu_mutex_lock(&event_lock);
    g_queue_push_tail(&event_queue, line);
    if (!on_main_thread() && !event_flush_scheduled) {
        event_flush_scheduled = true;
        schedule = true;
    }
    qemu_mutex_unlock(&event_lock);

    if (on_main_thread()) {
        event_queue_flush();
    } else if (schedule) {
        main_loop_invoke(event_flush_cb, NULL);
    }
}

/* --- exit --- */

/* Gives each client up to EXIT_FLUSH_MS to take what is queued for it. */
static void conns_flush_at_exit(void)
{
    gint64 deadline = g_get_monotonic_time() + EXIT_FLUSH_MS * 1000;

    for (guint i = 0; conns && i < conns->len; i++) {
        MonitorConn *conn = g_ptr_array_index(conns, i);
        int fd = qio_channel_get_fd(conn->ioc, G_IO_OUT);

        while (!conn->dead && conn_out_pending(conn) > 0 && fd >= 0) {
            gint64 left_ms = (deadline - g_get_monotonic_time()) / 1000;
            GPollFD pfd = {.fd = fd, .events = G_IO_OUT};

            if (left_ms <= 0 || g_poll(&pfd, 1, left_ms) <= 0 ||
                !conn_flush(conn)) {
                break;
            }
        }
    }
}

void monitor_cleanup(void)
{
    if (on_main_thread()) {
        event_queue_flush();
    }
    conns_flush_at_exit();
    while (conns && conns->len > 0) {
        monitor_conn_close(g_ptr_array_index(conns, 0));
    }
    monitor_hmp_cleanup();
    for (guint i = 0; listeners && i < listeners->len; i++) {
        MonitorListener *l = g_ptr_array_index(listeners, i);

        if (l->watch) {
            g_source_remove(l->watch);
        }
        if (l->retry_timer) {
            g_source_remove(l->retry_timer);
        }
        qio_channel_unref(&l->sioc->parent);
        if (l->unix_path) {
            unlink(l->unix_path);
        }
        g_free(l->unix_path);
        g_free(l->address);
        g_free(l);
    }
    if (listeners) {
        g_ptr_array_free(listeners, TRUE);
        g_ptr_array_free(conns, TRUE);
        listeners = conns = NULL;
    }
    g_atomic_int_set(&events_wanted, 0);
    monitor_fds_cleanup();
}
