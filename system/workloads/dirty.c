/*
 * The "dirty" workload: dirties random pages of the first wss bytes of
 * pc.ram at a set rate (-workload dirty,rate=64M,wss=1G), the guest that
 * makes a live migration work to converge. Each write stores a running
 * 8-byte counter at the start of a page picked by a xorshift generator and
 * counts as one 4 KiB page dirtied.
 *
 * Pacing is a token bucket on the monotonic clock holding at most 100 ms
 * of budget, so a guest resumed after a pause (or on a migration
 * destination) does not catch up in a burst. Only vCPU 0 runs it; the
 * generator and the counter are device state.
 */
#include "qemu/osdep.h"
#include "migration/vmstate.h"
#include "system/cpus.h"
#include "system/opts.h"
#include "system/ramblock.h"
#include "system/workload.h"

#define DIRTY_DEFAULT_RATE       (64 * MiB)
#define DIRTY_MAX_PAGES_PER_STEP 256
#define DIRTY_BURST_US           (100 * 1000)
#define DIRTY_SEED               0x9e3779b97f4a7c15ULL

typedef struct DirtyWorkload {
    Workload parent;
    RAMBlock *ram;
    uint64_t rate;      /* bytes per second */
    uint64_t wss_pages; /* pages written live in [0, wss_pages) */
    int64_t last_us;    /* pacing clock; 0 until the first step */
    uint64_t budget;    /* bytes we may dirty now */
    /* migrated */
    uint64_t prng;
    uint64_t counter;
} DirtyWorkload;

static bool dirty_init(Workload *wl, GHashTable *opts, GError **errp)
{
    DirtyWorkload *d = container_of(wl, DirtyWorkload, parent);
    uint64_t wss;

    d->ram = ram_block_by_name("pc.ram");
    if (!d->ram) {
        error_setg(errp, "dirty: no pc.ram block");
        return false;
    }
    d->rate = DIRTY_DEFAULT_RATE;
    wss = d->ram->used_length;
    if (!opts_take_size(opts, "rate", 0, &d->rate, errp) ||
        !opts_take_size(opts, "wss", 0, &wss, errp)) {
        return false;
    }
    if (d->rate > 1024 * GiB) {
        /* Keeps elapsed_us * rate far from overflowing (see dirty_step). */
        error_setg(errp, "dirty: rate is above 1 TiB/s");
        return false;
    }
    wss = MIN(wss, d->ram->used_length);
    d->wss_pages = MAX(wss >> TARGET_PAGE_BITS, 1);
    d->prng = DIRTY_SEED;
    return true;
}

static inline uint64_t xorshift64(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

static void dirty_step(Workload *wl, int cpu_index)
{
    DirtyWorkload *d = container_of(wl, DirtyWorkload, parent);
    uint64_t max_budget, pages, i;
    int64_t now;

    if (cpu_index != 0 || d->rate == 0) {
        vcpu_idle(100 * 1000);
        return;
    }
    now = g_get_monotonic_time();
    if (!d->last_us) {
        d->last_us = now;
    }
    max_budget =
        MAX(d->rate / (G_USEC_PER_SEC / DIRTY_BURST_US), TARGET_PAGE_SIZE);
    if (now - d->last_us >= DIRTY_BURST_US) {
        d->budget = max_budget;
    } else {
        d->budget += (uint64_t)(now - d->last_us) * d->rate / G_USEC_PER_SEC;
        d->budget = MIN(d->budget, max_budget);
    }
    d->last_us = now;

    pages = MIN(d->budget >> TARGET_PAGE_BITS, DIRTY_MAX_PAGES_PER_STEP);
    if (!pages) {
        /* Sleep until the next page is due (at most 10 ms at a time). */
        uint64_t wait_us =
            (TARGET_PAGE_SIZE - d->budget) * G_USEC_PER_SEC / d->rate + 1;
        vcpu_idle(MIN(wait_us, 10 * 1000));
        return;
    }
    for (i = 0; i < pages; i++) {
        uint64_t page = xorshift64(&d->prng) % d->wss_pages;

        ramblock_write_u64(d->ram, page << TARGET_PAGE_BITS, ++d->counter);
    }
    d->budget -= pages << TARGET_PAGE_BITS;
}

/* xorshift never leaves zero, so a loaded zero would stop the walk. */
static int dirty_post_load(void *opaque, int version_id)
{
    DirtyWorkload *d = opaque;

    return d->prng ? 0 : -EINVAL;
}

static const VMStateField dirty_fields[] = {
    VMSTATE_UINT64(prng, DirtyWorkload),
    VMSTATE_UINT64(counter, DirtyWorkload),
    VMSTATE_END_OF_LIST(),
};

static const VMStateDescription vmstate_dirty = {
    .name = "dirty",
    .version_id = 1,
    .minimum_version_id = 1,
    .post_load = dirty_post_load,
    .fields = dirty_fields,
};

const WorkloadClass workload_dirty = {
    .name = "dirty",
    .instance_size = sizeof(DirtyWorkload),
    .init = dirty_init,
    .step = dirty_step,
    .vmsd = &vmstate_dirty,
};
