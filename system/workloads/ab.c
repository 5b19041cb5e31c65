/*
 * The "a-b" workload, the reference guest of the migration tests (named
 * after what it prints). On first run it prints 'A' and zeroes the first
 * byte of every page in [AB_START, AB_END) of pc.ram; then it increments
 * those bytes page by page, in address order, forever, printing 'B' every
 * 64 passes. ab_check() (system/ab-check.c) verifies a copy of RAM.
 *
 * Only vCPU 0 runs it. Its position is device state: a migrated guest
 * continues at the page where the source stopped, and a destination never
 * runs the zeroing phase again because the loaded phase says it is done.
 * A fresh guest starts in AB_NOT_STARTED and only begins when it first
 * runs, so the state a destination loads always wins.
 */
#include "qemu/osdep.h"
#include "migration/vmstate.h"
#include "system/ab-check.h"
#include "system/cpus.h"
#include "system/ramblock.h"
#include "system/serial.h"
#include "system/workload.h"

/* Pages per step: about 25 µs of work, so a pause waits no longer. */
#define AB_PAGES_PER_STEP 256
#define AB_PASSES_PER_B   64

enum {
    AB_NOT_STARTED,
    AB_ZEROING,
    AB_LOOPING,
    AB_PHASE__MAX,
};

typedef struct ABWorkload {
    Workload parent;
    RAMBlock *ram;
    uint64_t first_page; /* page indexes within pc.ram */
    uint64_t end_page;
    /* migrated */
    uint32_t phase;
    uint64_t next_page;
    uint64_t passes;
} ABWorkload;

static bool ab_init(Workload *wl, GHashTable *opts, GError **errp)
{
    ABWorkload *ab = container_of(wl, ABWorkload, parent);

    ab->ram = ram_block_by_name("pc.ram");
    if (!ab->ram) {
        error_setg(errp, "a-b: no pc.ram block");
        return false;
    }
    ab->first_page = AB_START >> TARGET_PAGE_BITS;
    ab->end_page = MIN(AB_END, ab->ram->used_length) >> TARGET_PAGE_BITS;
    ab->end_page = MAX(ab->end_page, ab->first_page);
    ab->phase = AB_NOT_STARTED;
    ab->next_page = ab->first_page;
    return true;
}

/* Moves to the next page; true when a pass over the range is complete. */
static bool ab_advance(ABWorkload *ab)
{
    if (++ab->next_page < ab->end_page) {
        return false;
    }
    ab->next_page = ab->first_page;
    return true;
}

static void ab_step(Workload *wl, int cpu_index)
{
    ABWorkload *ab = container_of(wl, ABWorkload, parent);
    int i;

    if (cpu_index != 0) {
        vcpu_idle(100 * 1000);
        return;
    }
    if (ab->phase == AB_NOT_STARTED) {
        serial_putc('A');
        ab->phase = AB_ZEROING;
        ab->next_page = ab->first_page;
    }
    if (ab->first_page == ab->end_page) {
        /* pc.ram ends below AB_START: nothing to touch. */
        ab->phase = AB_LOOPING;
        vcpu_idle(100 * 1000);
        return;
    }
    for (i = 0; i < AB_PAGES_PER_STEP; i++) {
        uint64_t offset = ab->next_page << TARGET_PAGE_BITS;

        if (ab->phase == AB_ZEROING) {
            ramblock_write_u8(ab->ram, offset, 0);
            if (ab_advance(ab)) {
                ab->phase = AB_LOOPING;
            }
        } else {
            ramblock_write_u8(ab->ram, offset, ab->ram->host[offset] + 1);
            if (ab_advance(ab) && ++ab->passes % AB_PASSES_PER_B == 0) {
                serial_putc('B');
            }
        }
    }
}

/* A loaded position must lie in this guest's range (a corrupt stream). */
static int ab_post_load(void *opaque, int version_id)
{
    ABWorkload *ab = opaque;

    if (ab->phase >= AB_PHASE__MAX ||
        (ab->phase != AB_NOT_STARTED && ab->first_page != ab->end_page &&
         (ab->next_page < ab->first_page || ab->next_page >= ab->end_page))) {
        return -EINVAL;
    }
    return 0;
}

static const VMStateField ab_fields[] = {
    VMSTATE_UINT32(phase, ABWorkload),
    VMSTATE_UINT64(next_page, ABWorkload),
    VMSTATE_UINT64(passes, ABWorkload),
    VMSTATE_END_OF_LIST(),
};

static const VMStateDescription vmstate_ab = {
    .name = "a-b",
    .version_id = 1,
    .minimum_version_id = 1,
    .post_load = ab_post_load,
    .fields = ab_fields,
};

const WorkloadClass workload_ab = {
    .name = "a-b",
    .instance_size = sizeof(ABWorkload),
    .init = ab_init,
    .step = ab_step,
    .vmsd = &vmstate_ab,
};
