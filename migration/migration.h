/*
 * The migration control plane, private to migration/: the outgoing state
 * machine and its thread, and the incoming side (listen or open, then load
 * in a thread). The public entry points are in include/migration/misc.h;
 * the QMP and HMP commands are in migration.c, options.c and
 * migration-hmp-cmds.c.
 *
 * Outgoing states: none -> setup -> active -> device -> completed, or
 * failed from any of them; migrate_cancel moves setup/active/device to
 * cancelling, and the thread ends it in cancelled. Incoming states: none ->
 * setup (listening/opened) -> active (loading) -> completed | failed.
 */
#ifndef MIGRATION_MIGRATION_H
#define MIGRATION_MIGRATION_H

#include "qemu/osdep.h"
#include "qemu/thread.h"
#include "qapi/qapi-types.h"
#include "io/channel.h"
#include "migration/qemu-file.h"
#include "system/runstate.h"

typedef struct MigrationState {
    /* MigrationStatus; changed only through migrate_set_state(). */
    int state;
    GThread *thread;

    /*
     * Guards ioc (migrate_cancel shuts it down from the main loop) and
     * every figure below that query-migrate reads while the thread runs.
     */
    QemuMutex lock;
    QIOChannel *ioc;
    /* Socket transports are connected by the thread ("unix:P", "tcp:H:P"). */
    char *connect_addr;
    QEMUFile *to_dst_file;
    GError *error; /* the first error; error-desc */

    /* Run state before switchover, restored if the migration fails. */
    RunState vm_old_state;
    bool vm_stopped;

    /* Times in microseconds (monotonic) or milliseconds (figures). */
    int64_t start_us;
    int64_t downtime_start_us;
    int64_t setup_time_ms;
    int64_t total_time_ms;
    int64_t downtime_ms;
    int64_t expected_downtime_ms;
    double mbps;
    uint64_t pages_per_second;

    /* The current ~100 ms measuring window (thread only). */
    int64_t window_start_us;
    uint64_t window_start_bytes;
    uint64_t window_start_pages;
    uint64_t threshold_bytes;
    uint64_t last_pass_reported;
} MigrationState;

typedef struct MigrationIncomingState {
    int state;     /* MigrationStatus */
    bool deferred; /* -incoming defer: wait for migrate-incoming */
    bool started;  /* a transport was opened (command line or QMP) */
    bool exit_on_error;
    GThread *thread;
    QemuMutex lock; /* guards ioc and error */
    QIOChannel *ioc;
    GError *error;
} MigrationIncomingState;

MigrationState *migrate_get_current(void);
MigrationIncomingState *migration_incoming_get_current(void);

/*
 * Moves *state from old_state to new_state if it still is old_state (a
 * concurrent cancel wins), emitting MIGRATION when the events capability
 * is on. Returns whether it moved.
 */
bool migrate_set_state(int *state, int old_state, int new_state);

/* The outgoing side runs (setup, active, device or cancelling). */
bool migration_outgoing_is_running(void);
/* The incoming side has opened its transport and has not finished. */
bool migration_incoming_in_progress(void);

/*
 * A source connected (or the file/command/fd opened): loads the stream in
 * the incoming thread. Takes ownership of ioc. Main loop, BQL held.
 */
void migration_incoming_process(QIOChannel *ioc);
/* The incoming transport failed before the load started. */
void migration_incoming_fail(GError *err);

/* Registers the HMP commands of migration-hmp-cmds.c; once. */
void migration_hmp_register(void);

#endif
