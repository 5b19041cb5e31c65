/*
 * An in-process QMP client (see qmp-fuzz-entry.h): the connection layer of
 * monitor.c stood up by hand over a memory channel, so tests/fuzz/fuzz-qmp
 * can drive the very code a socket client reaches (qmp.c's ops) millions of
 * times a minute. The server's output goes into the memory channel, which
 * never blocks, so the connection never has to wait for a writable socket.
 */
#include "qemu/osdep.h"

#include "io/channel-buffer.h"
#include "monitor/monitor-internal.h"
#include "monitor/qmp-fuzz-entry.h"
#include "system/runstate.h"

/* Moves what the server wrote so far into out and empties the channel. */
static void collect_output(QIOChannelBuffer *bioc, GString *out)
{
    if (out) {
        g_string_append_len(out, (const char *)bioc->data, bioc->usage);
    }
    bioc->usage = 0;
    bioc->offset = 0;
}

/* What monitor.c does with the bytes of one read (conn_process_input). */
static void feed_piece(MonitorConn *conn, const uint8_t *data, size_t len)
{
    g_byte_array_append(conn->in, data, len);
    conn->bytes_received += len;
    conn->ops->input(conn);
    if (conn->dead) {
        return;
    }
    conn->in_base += conn->in_off;
    g_byte_array_remove_range(conn->in, 0, conn->in_off);
    conn->in_off = 0;
}

void qmp_client_feed_for_test(const uint8_t *data, size_t len, size_t chunk,
                              bool (*allowed)(const char *name), GString *out)
{
    QIOChannelBuffer *bioc = qio_channel_buffer_new(0);
    MonitorConn *conn = g_new0(MonitorConn, 1);
    bool locked = bql_locked();

    if (!locked) {
        bql_lock();
    }
    monitor_qmp_set_command_filter(allowed);

    /*
     * Two references: the one a listener's list would hold (dropped by
     * monitor_conn_close() or below), and ours for the whole session, so
     * the connection outlives a close that happens while it is used.
     */
    conn->refcount = 2;
    conn->ops = monitor_qmp_conn_ops();
    conn->ioc = qio_channel_ref(&bioc->parent);
    conn->peer = g_strdup("in-process client");
    conn->in = g_byte_array_new();
    conn->out = g_byte_array_new();
    g_queue_init(&conn->recv_fds);
    conn->ops->opened(conn);

    for (size_t done = 0; done < len && !conn->dead;) {
        size_t n = chunk ? MIN(chunk, len - done) : len - done;

        feed_piece(conn, data + done, n);
        done += n;
        /* The main loop's next turn: deferred work and queued events. */
        while (g_main_context_iteration(NULL, false)) {
        }
        collect_output(bioc, out);
    }
    collect_output(bioc, out);

    /* The client disconnects (monitor_conn_close() without a listener). */
    if (!conn->dead) {
        conn->dead = true;
        conn->ops->closed(conn);
        qio_channel_close(conn->ioc, NULL);
        qio_channel_unref(conn->ioc);
        conn->ioc = NULL;
        monitor_conn_unref(conn);
    }
    monitor_conn_unref(conn);
    qio_channel_unref(&bioc->parent);

    monitor_qmp_set_command_filter(NULL);
    if (!locked) {
        bql_unlock();
    }
}
