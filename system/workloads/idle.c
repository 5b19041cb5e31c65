/* The "idle" workload: a guest that touches nothing. */
#include "qemu/osdep.h"
#include "system/cpus.h"
#include "system/workload.h"

static void idle_step(Workload *wl, int cpu_index)
{
    vcpu_idle(100 * 1000);
}

const WorkloadClass workload_idle = {
    .name = "idle",
    .instance_size = sizeof(Workload),
    .step = idle_step,
};
