/*
 * The main loop: GLib's default main context, run by main() until a
 * shutdown request.
 *
 * main() holds the BQL all the time except inside poll(): the context's
 * poll function is wrapped so that the lock is dropped while the thread
 * sleeps and taken back before anything is dispatched. Every monitor
 * command, socket callback, timer and main_loop_invoke() callback therefore
 * runs under the BQL without taking it itself, and other threads (migration,
 * vCPU helpers) get the lock whenever the main loop is idle.
 */
#include "qemu/osdep.h"
#include "system/main-loop.h"
#include "system/runstate.h"

/* How long main_loop_run() keeps dispatching after a shutdown request. */
#define MAIN_LOOP_FLUSH_US (200 * 1000)

static GPollFunc real_poll;

static gint poll_without_bql(GPollFD *fds, guint nfds, gint timeout)
{
    bool locked = bql_locked();
    gint ret;

    if (locked) {
        bql_unlock();
    }
    ret = real_poll(fds, nfds, timeout);
    if (locked) {
        bql_lock();
    }
    return ret;
}

void main_loop_init(void)
{
    GMainContext *ctx = g_main_context_default();

    if (real_poll) {
        return;
    }
    real_poll = g_main_context_get_poll_func(ctx);
    g_main_context_set_poll_func(ctx, poll_without_bql);
}

void main_loop_run(void)
{
    gint64 deadline;

    g_assert(real_poll);
    while (!qemu_system_shutdown_requested()) {
        g_main_context_iteration(NULL, TRUE);
    }
    /*
     * Let what was queued before the request go out (the reply to "quit",
     * the SHUTDOWN event), without waiting for anything new.
     */
    deadline = g_get_monotonic_time() + MAIN_LOOP_FLUSH_US;
    while (g_main_context_pending(NULL) && g_get_monotonic_time() < deadline) {
        g_main_context_iteration(NULL, FALSE);
    }
}

void main_loop_invoke(GSourceFunc fn, gpointer opaque)
{
    /*
     * Always through an idle source: g_main_context_invoke() could run fn
     * right away on the calling thread when the main loop is between
     * iterations, without the BQL.
     */
    g_idle_add_full(G_PRIORITY_DEFAULT, fn, opaque, NULL);
}

void main_loop_wakeup(void)
{
    g_main_context_wakeup(NULL);
}
