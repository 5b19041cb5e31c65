/*
 * Run states, the big lock (BQL) and shutdown requests.
 *
 * The state changes only under the BQL. vm_stop() and vm_start() are the
 * transitions that also park or release the vCPUs and tell QMP clients
 * (STOP, RESUME); a shutdown request may come from any thread or a signal
 * and only wakes the main loop, which then returns from main_loop_run().
 */
#include "qemu/osdep.h"
#include "qemu/thread.h"
#include <glib-unix.h>
#include <signal.h>
#include "qapi/qapi-events.h"
#include "system/cpus.h"
#include "system/main-loop.h"
#include "system/runstate.h"

/* --- the BQL --- */

static QemuRecMutex bql;
/* The holder, so bql_locked() can answer for the calling thread. */
static GThread *bql_owner;
static unsigned bql_depth;

void bql_lock(void)
{
    qemu_rec_mutex_lock(&bql);
    if (bql_depth++ == 0) {
        g_atomic_pointer_set(&bql_owner, g_thread_self());
    }
}

void bql_unlock(void)
{
    g_assert(bql_locked());
    if (--bql_depth == 0) {
        g_atomic_pointer_set(&bql_owner, NULL);
    }
    qemu_rec_mutex_unlock(&bql);
}

bool bql_locked(void)
{
    return g_atomic_pointer_get(&bql_owner) == g_thread_self();
}

/* --- run states --- */

static const char *const runstate_names[RUN_STATE__MAX] = {
    [RUN_STATE_PRELAUNCH] = "prelaunch",
    [RUN_STATE_RUNNING] = "running",
    [RUN_STATE_PAUSED] = "paused",
    [RUN_STATE_INMIGRATE] = "inmigrate",
    [RUN_STATE_POSTMIGRATE] = "postmigrate",
    [RUN_STATE_FINISH_MIGRATE] = "finish-migrate",
    [RUN_STATE_SHUTDOWN] = "shutdown",
};

/* Written under the BQL; read without it by query helpers. */
static int current_state = RUN_STATE_PRELAUNCH;

const char *runstate_name(RunState s)
{
    if ((unsigned)s >= RUN_STATE__MAX) {
        return "unknown";
    }
    return runstate_names[s];
}

int runstate_from_name(const char *name)
{
    int i;

    for (i = 0; i < RUN_STATE__MAX; i++) {
        if (name && strcmp(name, runstate_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

RunState runstate_get(void)
{
    return (RunState)g_atomic_int_get(&current_state);
}

bool runstate_is_running(void)
{
    return runstate_get() == RUN_STATE_RUNNING;
}

void runstate_set(RunState s)
{
    g_assert((unsigned)s < RUN_STATE__MAX);
    g_atomic_int_set(&current_state, s);
}

void vm_stop(RunState state)
{
    bool was_running = runstate_is_running();

    g_assert(bql_locked());
    /*
     * Parking is a no-op when the vCPUs already are, so this also serves
     * callers that move a stopped VM to another stopped state (migration's
     * finish-migrate from paused).
     */
    pause_all_vcpus();
    runstate_set(state);
    if (was_running) {
        qapi_event_send_stop();
    }
}

void vm_start(void)
{
    g_assert(bql_locked());
    if (runstate_is_running()) {
        return;
    }
    runstate_set(RUN_STATE_RUNNING);
    resume_all_vcpus();
    qapi_event_send_resume();
}

static int autostart = 1;

void runstate_set_autostart(bool on)
{
    g_atomic_int_set(&autostart, on);
}

bool runstate_autostart(void)
{
    return g_atomic_int_get(&autostart);
}

/* --- shutdown requests --- */

static int shutdown_requested;

/* A ShutdownCause name ("host-signal", ...); anything else is a quit. */
static ShutdownCause shutdown_cause_from_reason(const char *reason)
{
    int cause = reason ? ShutdownCause_parse(reason) : -1;

    return cause >= 0 ? (ShutdownCause)cause : SHUTDOWN_CAUSE_HOST_QMP_QUIT;
}

void qemu_system_shutdown_request(const char *reason)
{
    /* Only the first request emits SHUTDOWN, like QEMU's. */
    if (!g_atomic_int_compare_and_exchange(&shutdown_requested, 0, 1)) {
        return;
    }
    qapi_event_send_shutdown(false, shutdown_cause_from_reason(reason));
    main_loop_wakeup();
}

bool qemu_system_shutdown_requested(void)
{
    return g_atomic_int_get(&shutdown_requested);
}

static gboolean shutdown_signal(gpointer opaque)
{
    qemu_system_shutdown_request("host-signal");
    return G_SOURCE_CONTINUE;
}

void runstate_init(void)
{
    /*
     * A client that goes away mid-write must not kill the VM; the write
     * fails with EPIPE instead.
     */
    signal(SIGPIPE, SIG_IGN);
    g_unix_signal_add(SIGINT, shutdown_signal, NULL);
    g_unix_signal_add(SIGTERM, shutdown_signal, NULL);
    g_unix_signal_add(SIGHUP, shutdown_signal, NULL);
}

/* --- the VM's name (-name) --- */

static char *vm_name;

void qemu_set_vm_name(const char *name)
{
    g_free(vm_name);
    vm_name = g_strdup(name);
}

const char *qemu_get_vm_name(void)
{
    return vm_name;
}
