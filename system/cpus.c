/*
 * vCPU threads.
 *
 * Each vCPU runs the workload's step() in a loop. Between two steps it
 * looks at one flag (an atomic read, no lock on the hot path); when a pause
 * or exit is requested it parks on a condition variable and counts itself
 * parked, and pause_all_vcpus() returns once every vCPU is counted. Since
 * a step is short and never holds the BQL, a caller holding the BQL (the
 * monitor's stop, the migration thread at switchover) waits a step at most.
 */
#include "qemu/osdep.h"
#include "qemu/thread.h"
#include "system/cpus.h"

typedef struct VCPU {
    GThread *thread;
    int index;
    bool parked; /* counted in n_parked; under cpus_lock */
} VCPU;

static QemuMutex cpus_lock;
/* vCPUs wait here to be released (and idle vCPUs sleep here). */
static QemuCond run_cond;
/* pause_all_vcpus() waits here for the parked count. */
static QemuCond parked_cond;

static Workload *workload;
static VCPU *vcpus;
static int n_vcpus;
static int n_parked;
/* Written under cpus_lock, read without it between steps. */
static int pause_requested;
static int exit_requested;

/* The vCPU running on this thread, NULL elsewhere. */
static __thread VCPU *current_vcpu;

/*
 * Parks until released. Returns false when the thread must exit; an
 * exiting vCPU stays counted as parked, so pausing after shutdown works.
 */
static bool vcpu_park(VCPU *cpu)
{
    bool run;

    qemu_mutex_lock(&cpus_lock);
    while (pause_requested || exit_requested) {
        if (!cpu->parked) {
            cpu->parked = true;
            n_parked++;
            qemu_cond_broadcast(&parked_cond);
        }
        if (exit_requested) {
            break;
        }
        qemu_cond_wait(&run_cond, &cpus_lock);
    }
    run = !exit_requested;
    if (run && cpu->parked) {
        cpu->parked = false;
        n_parked--;
    }
    qemu_mutex_unlock(&cpus_lock);
    return run;
}

static gpointer vcpu_thread_fn(gpointer opaque)
{
    VCPU *cpu = opaque;

    current_vcpu = cpu;
    for (;;) {
        if (g_atomic_int_get(&pause_requested) ||
            g_atomic_int_get(&exit_requested)) {
            if (!vcpu_park(cpu)) {
                break;
            }
        }
        workload->klass->step(workload, cpu->index);
    }
    current_vcpu = NULL;
    return NULL;
}

void cpus_init(Workload *wl, int n)
{
    int i;

    g_assert(!vcpus && wl && n >= 1);
    workload = wl;
    n_vcpus = n;
    g_atomic_int_set(&exit_requested, 0);
    /* Created parked: nothing runs before resume_all_vcpus(). */
    g_atomic_int_set(&pause_requested, 1);
    vcpus = g_new0(VCPU, n);
    for (i = 0; i < n; i++) {
        g_autofree char *name = g_strdup_printf("vcpu%d", i);

        vcpus[i].index = i;
        vcpus[i].thread = g_thread_new(name, vcpu_thread_fn, &vcpus[i]);
    }
    /* Returns with every vCPU at its park point, as after a pause. */
    pause_all_vcpus();
}

void pause_all_vcpus(void)
{
    /* A vCPU waiting for itself to park would never return. */
    g_assert(!current_vcpu);
    qemu_mutex_lock(&cpus_lock);
    g_atomic_int_set(&pause_requested, 1);
    qemu_cond_broadcast(&run_cond); /* wakes vCPUs idling in vcpu_idle() */
    while (n_parked < n_vcpus) {
        qemu_cond_wait(&parked_cond, &cpus_lock);
    }
    qemu_mutex_unlock(&cpus_lock);
}

void resume_all_vcpus(void)
{
    qemu_mutex_lock(&cpus_lock);
    g_atomic_int_set(&pause_requested, 0);
    qemu_cond_broadcast(&run_cond);
    qemu_mutex_unlock(&cpus_lock);
}

bool all_vcpus_paused(void)
{
    bool paused;

    qemu_mutex_lock(&cpus_lock);
    paused = n_parked == n_vcpus;
    qemu_mutex_unlock(&cpus_lock);
    return paused;
}

int vcpu_count(void)
{
    return n_vcpus;
}

void cpus_shutdown(void)
{
    int i;

    qemu_mutex_lock(&cpus_lock);
    g_atomic_int_set(&exit_requested, 1);
    qemu_cond_broadcast(&run_cond);
    qemu_mutex_unlock(&cpus_lock);

    for (i = 0; i < n_vcpus; i++) {
        g_thread_join(vcpus[i].thread);
    }
    g_free(vcpus);
    vcpus = NULL;
    qemu_mutex_lock(&cpus_lock);
    n_vcpus = 0;
    n_parked = 0;
    qemu_mutex_unlock(&cpus_lock);
}

void vcpu_idle(int64_t timeout_us)
{
    gint64 end = g_get_monotonic_time() + timeout_us;

    qemu_mutex_lock(&cpus_lock);
    while (!pause_requested && !exit_requested) {
        if (!qemu_cond_wait_until(&run_cond, &cpus_lock, end)) {
            break;
        }
    }
    qemu_mutex_unlock(&cpus_lock);
}
