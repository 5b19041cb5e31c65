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
 *
 * main_loop_invoke() hands work over through a queue of its own, guarded by
 * a QemuMutex, rather than one g_idle_add() per call: GLib attaches sources
 * under its internal futex-based lock, which ThreadSanitizer cannot see, so
 * everything the caller wrote before the hand-off would look racy to TSan
 * when the callback reads it. The pthread mutex makes the hand-off a real
 * happens-before edge; one GSource, attached once, drains the queue.
 */
#include "qemu/osdep.h"
#include "qemu/thread.h"
#include "system/main-loop.h"
#include "system/runstate.h"

/* How long main_loop_run() keeps dispatching after a shutdown request. */
#define MAIN_LOOP_FLUSH_US (200 * 1000)

static GPollFunc real_poll;

typedef struct InvokeItem {
    GSourceFunc fn;
    gpointer opaque;
    struct InvokeItem *next;
} InvokeItem;

/* The pending main_loop_invoke() calls, oldest first. */
static QemuMutex invoke_lock;
static InvokeItem *invoke_head;
static InvokeItem **invoke_tail = &invoke_head;
/* The source that drains them; attached on first use, under invoke_lock. */
static GSource *invoke_source;

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

static bool invoke_pending(void)
{
    bool pending;

    qemu_mutex_lock(&invoke_lock);
    pending = invoke_head != NULL;
    qemu_mutex_unlock(&invoke_lock);
    return pending;
}

static gboolean invoke_prepare(GSource *source, gint *timeout)
{
    *timeout = -1;
    return invoke_pending();
}

static gboolean invoke_check(GSource *source)
{
    return invoke_pending();
}

/*
 * Runs what was queued when dispatch started, in order, with invoke_lock
 * dropped (a callback may queue more: that waits for the next iteration).
 * A callback that returns G_SOURCE_CONTINUE is queued again, as an idle
 * source would run it again.
 */
static gboolean invoke_dispatch(GSource *source, GSourceFunc unused,
                                gpointer unused_data)
{
    InvokeItem *list;

    qemu_mutex_lock(&invoke_lock);
    list = invoke_head;
    invoke_head = NULL;
    invoke_tail = &invoke_head;
    qemu_mutex_unlock(&invoke_lock);

    while (list) {
        InvokeItem *item = list;

        list = item->next;
        if (item->fn(item->opaque) == G_SOURCE_CONTINUE) {
            item->next = NULL;
            qemu_mutex_lock(&invoke_lock);
            *invoke_tail = item;
            invoke_tail = &item->next;
            qemu_mutex_unlock(&invoke_lock);
        } else {
            g_free(item);
        }
    }
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs invoke_funcs = {
    .prepare = invoke_prepare,
    .check = invoke_check,
    .dispatch = invoke_dispatch,
};

/* Called with invoke_lock held. */
static void invoke_source_attach_locked(void)
{
    if (invoke_source) {
        return;
    }
    invoke_source = g_source_new(&invoke_funcs, sizeof(GSource));
    g_source_set_priority(invoke_source, G_PRIORITY_DEFAULT);
    g_source_set_name(invoke_source, "main_loop_invoke");
    g_source_attach(invoke_source, g_main_context_default());
}

void main_loop_init(void)
{
    GMainContext *ctx = g_main_context_default();

    if (real_poll) {
        return;
    }
    qemu_mutex_lock(&invoke_lock);
    invoke_source_attach_locked();
    qemu_mutex_unlock(&invoke_lock);
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
    InvokeItem *item = g_new(InvokeItem, 1);

    /*
     * Never run fn here, even on the main thread between iterations: it
     * must run from the loop, under the BQL, after the caller returns.
     */
    item->fn = fn;
    item->opaque = opaque;
    item->next = NULL;
    qemu_mutex_lock(&invoke_lock);
    /* Programs without main_loop_init() (tests, fuzzers) still drain it. */
    invoke_source_attach_locked();
    *invoke_tail = item;
    invoke_tail = &item->next;
    qemu_mutex_unlock(&invoke_lock);
    g_main_context_wakeup(g_main_context_default());
}

void main_loop_wakeup(void)
{
    g_main_context_wakeup(NULL);
}
