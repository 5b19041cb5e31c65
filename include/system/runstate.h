/*
 * Run states and the big lock.
 *
 * The BQL (big lock) protects run state, device state and the monitor's
 * view of the VM. The main loop holds it while dispatching callbacks and
 * drops it while polling; other threads (migration, load) take it around
 * the short sections that touch VM state. vCPU threads never take it while
 * running the workload.
 */
#ifndef SYSTEM_RUNSTATE_H
#define SYSTEM_RUNSTATE_H

#include "qemu/osdep.h"

typedef enum {
    RUN_STATE_PRELAUNCH,
    RUN_STATE_RUNNING,
    RUN_STATE_PAUSED,
    RUN_STATE_INMIGRATE,
    RUN_STATE_POSTMIGRATE,
    RUN_STATE_FINISH_MIGRATE,
    RUN_STATE_SHUTDOWN,
    RUN_STATE__MAX,
} RunState;

void bql_lock(void);
void bql_unlock(void);
bool bql_locked(void);

const char *runstate_name(RunState s); /* "running", "paused", ... */
/* -1 if name is not a run state. */
int runstate_from_name(const char *name);
RunState runstate_get(void);
bool runstate_is_running(void);
/* Sets the state without touching vCPUs (BQL held). */
void runstate_set(RunState s);

/*
 * Parks every vCPU at a safe point, waits until they are parked, sets the
 * state and emits STOP if the VM was running. BQL held. Idempotent.
 */
void vm_stop(RunState state);
/* Releases the vCPUs, sets running and emits RESUME. BQL held. */
void vm_start(void);

/*
 * Asks the main loop to exit (quit, SHUTDOWN); safe from any thread. The
 * first request emits SHUTDOWN; reason is its cause as QAPI names it
 * ("host-qmp-quit", "host-signal", "host-error"; anything else counts as
 * host-qmp-quit).
 */
void qemu_system_shutdown_request(const char *reason);
bool qemu_system_shutdown_requested(void);

/*
 * Whether a destination runs once an incoming migration completes (when
 * the source was running): on by default, off with -S, and a "stop" during
 * inmigrate turns it off, as in QEMU.
 */
void runstate_set_autostart(bool on);
bool runstate_autostart(void);

/* Turns SIGINT, SIGTERM and SIGHUP into shutdown requests; ignores SIGPIPE. */
void runstate_init(void);

/* -name NAME (NULL when not given). */
void qemu_set_vm_name(const char *name);
const char *qemu_get_vm_name(void);

#endif
