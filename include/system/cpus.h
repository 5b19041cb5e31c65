/*
 * vCPU threads. Each runs its workload's step() in a loop and parks between
 * steps when asked to, so a stopped VM never has a write in flight.
 */
#ifndef SYSTEM_CPUS_H
#define SYSTEM_CPUS_H

#include "qemu/osdep.h"
#include "system/workload.h"

/* Starts n vCPU threads running wl, parked until resume_all_vcpus(). */
void cpus_init(Workload *wl, int n);
/* Returns once every vCPU is parked (no guest write in flight). */
void pause_all_vcpus(void);
void resume_all_vcpus(void);
bool all_vcpus_paused(void);
/* Stops and joins the threads (at exit). */
void cpus_shutdown(void);
/* Number of vCPU threads (0 before cpus_init()). */
int vcpu_count(void);
/*
 * For a workload with nothing to do right now: sleeps up to timeout_us on
 * the calling vCPU thread, returning early when the vCPUs are asked to
 * park or exit, so an idle vCPU neither spins nor delays a pause.
 */
void vcpu_idle(int64_t timeout_us);

#endif
