/*
 * The "globalstate" device section: the source's run state at switchover
 * ("running", "paused", ...), so the destination resumes the guest only
 * when the source was running (stream-format.md section 1).
 */
#ifndef MIGRATION_GLOBAL_STATE_H
#define MIGRATION_GLOBAL_STATE_H

#include "qemu/osdep.h"

/* Registers the section (FULL, instance 0, version 1); once, at start-up. */
void global_state_register(void);
/*
 * Captures the current run state; migration.c calls it while the VM still
 * runs, just before vm_stop() at switchover. A save without a store sends
 * the run state of the moment the section is written.
 */
void global_state_store(void);
/* Forgets what a previous load received (qemu_loadvm_state calls it). */
void global_state_reset_received(void);
/* The RunState received by the last load, or -1 if none was received. */
int global_state_received_runstate(void);

#endif
