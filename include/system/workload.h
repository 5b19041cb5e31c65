/*
 * Guest workloads: the "software" the vCPUs run. A workload writes guest
 * RAM only through the memory API (system/ramblock.h), so its writes are
 * dirty-logged, and keeps its own state in a struct described by a vmstate,
 * so a migrated guest continues exactly where it stopped.
 *
 * -workload NAME[,key=value...]: idle, a-b, dirty,rate=,wss=, fill,zero=
 */
#ifndef SYSTEM_WORKLOAD_H
#define SYSTEM_WORKLOAD_H

#include "qemu/osdep.h"

typedef struct Workload Workload;
typedef struct VMStateDescription VMStateDescription;

typedef struct WorkloadClass {
    const char *name;
    size_t instance_size; /* the workload's own struct, starting with
                             Workload */
    /*
     * Parse options (a key=value table) before RAM is touched, taking the
     * keys it knows with opts_take*() (system/opts.h): workload_create()
     * rejects any key left in the table.
     */
    bool (*init)(Workload *wl, GHashTable *opts, GError **errp);
    /*
     * One bounded slice of guest work (well under a millisecond), so a
     * pause request is honoured quickly. cpu_index is 0 for the first vCPU.
     */
    void (*step)(Workload *wl, int cpu_index);
    /* Device state, registered as "workload" instance 0. May be NULL. */
    const VMStateDescription *vmsd;
} WorkloadClass;

struct Workload {
    const WorkloadClass *klass;
};

/* Creates the workload from "NAME[,k=v...]"; NULL + errp when unknown. */
Workload *workload_create(const char *spec, GError **errp);

/* Provided by the workloads/ files, listed in system/workload.c. */
extern const WorkloadClass workload_idle;
extern const WorkloadClass workload_ab;
extern const WorkloadClass workload_dirty;
extern const WorkloadClass workload_fill;

#endif
