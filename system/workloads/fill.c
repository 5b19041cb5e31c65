/*
 * The "fill" workload: fills pc.ram once with incompressible bytes and
 * leaves zero=PCT percent of its pages zero, scattered page by page, then
 * prints 'F' and idles (-workload fill,zero=25). It makes the big guests of
 * the file-size and benchmark tests.
 *
 * Page i's content depends on i alone: its first 8 bytes are a bijective
 * hash of i (so no two pages are equal) and the rest a xorshift stream
 * seeded from it; whether it is zero is another hash of i. Every vCPU
 * claims chunks of pages from a shared cursor, so the fill runs on all of
 * them; a chunk is claimed and written within one step, so when the vCPUs
 * are parked every claimed page is written and the cursor alone is the
 * state to migrate.
 */
#include "qemu/osdep.h"
#include "migration/vmstate.h"
#include "qemu/cutils.h"
#include "system/cpus.h"
#include "system/opts.h"
#include "system/ramblock.h"
#include "system/serial.h"
#include "system/workload.h"

/* Pages claimed per step, and written per ramblock_write() at most. */
#define FILL_PAGES_PER_STEP  64
#define FILL_PAGES_PER_WRITE 16

enum {
    FILL_NOT_STARTED,
    FILL_RUNNING,
    FILL_DONE,
    FILL_PHASE__MAX,
};

typedef struct FillWorkload {
    Workload parent;
    RAMBlock *ram;
    uint64_t total_pages;
    uint64_t zero_pct;
    uint64_t pages_done; /* atomic; pages written so far */
    /* migrated */
    uint32_t phase;     /* atomic */
    uint64_t next_page; /* atomic; the claim cursor, may pass total_pages */
} FillWorkload;

static bool fill_init(Workload *wl, GHashTable *opts, GError **errp)
{
    FillWorkload *f = container_of(wl, FillWorkload, parent);
    g_autofree char *zero = opts_take(opts, "zero");

    f->ram = ram_block_by_name("pc.ram");
    if (!f->ram) {
        error_setg(errp, "fill: no pc.ram block");
        return false;
    }
    if (zero) {
        char *end;

        errno = 0;
        f->zero_pct = g_ascii_strtoull(zero, &end, 10);
        if (errno || end == zero || *end || f->zero_pct > 100) {
            error_setg(errp, "fill: zero expects a percentage (0 to 100)");
            return false;
        }
    }
    f->total_pages = ramblock_pages(f->ram);
    return true;
}

/* splitmix64's finaliser: a bijection on 64-bit values. */
static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline bool fill_page_is_zero(const FillWorkload *f, uint64_t page)
{
    return mix64(page ^ 0x5a5a5a5a5a5a5a5aULL) % 100 < f->zero_pct;
}

static void fill_page_generate(uint64_t page, uint64_t *words)
{
    uint64_t x = mix64(page * 0x9e3779b97f4a7c15ULL + 1);
    size_t i;

    words[0] = x;
    x |= 1; /* xorshift must not start at zero */
    for (i = 1; i < TARGET_PAGE_SIZE / sizeof(uint64_t); i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        words[i] = x;
    }
}

/* Writes pages [first, end): data pages in runs, zero pages only if not. */
static void fill_pages(FillWorkload *f, uint64_t first, uint64_t end)
{
    uint64_t buf[FILL_PAGES_PER_WRITE * TARGET_PAGE_SIZE / sizeof(uint64_t)];
    uint64_t run_start = first, page;
    unsigned run_len = 0;

    for (page = first; page <= end; page++) {
        bool flush = page == end || run_len == FILL_PAGES_PER_WRITE ||
                     fill_page_is_zero(f, page);

        if (flush && run_len) {
            ramblock_write(f->ram, run_start << TARGET_PAGE_BITS, buf,
                           (size_t)run_len << TARGET_PAGE_BITS);
            run_len = 0;
        }
        if (page == end) {
            break;
        }
        if (fill_page_is_zero(f, page)) {
            uint64_t offset = page << TARGET_PAGE_BITS;

            /* Fresh RAM is zero already; only a reused backing file isn't. */
            if (!buffer_is_zero(f->ram->host + offset, TARGET_PAGE_SIZE)) {
                ramblock_fill(f->ram, offset, 0, TARGET_PAGE_SIZE);
            }
            continue;
        }
        if (!run_len) {
            run_start = page;
        }
        fill_page_generate(page,
                           buf + run_len * (TARGET_PAGE_SIZE / sizeof(*buf)));
        run_len++;
    }
}

static void fill_step(Workload *wl, int cpu_index)
{
    FillWorkload *f = container_of(wl, FillWorkload, parent);
    uint32_t expected = FILL_NOT_STARTED;
    uint64_t first, end;

    __atomic_compare_exchange_n(&f->phase, &expected, FILL_RUNNING, false,
                                __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&f->phase, __ATOMIC_ACQUIRE) == FILL_DONE) {
        vcpu_idle(G_USEC_PER_SEC);
        return;
    }
    first = __atomic_fetch_add(&f->next_page, FILL_PAGES_PER_STEP,
                               __ATOMIC_SEQ_CST);
    if (first >= f->total_pages) {
        /* Others are finishing the last chunks. */
        vcpu_idle(10 * 1000);
        return;
    }
    end = MIN(first + FILL_PAGES_PER_STEP, f->total_pages);
    fill_pages(f, first, end);
    if (__atomic_add_fetch(&f->pages_done, end - first, __ATOMIC_SEQ_CST) ==
        f->total_pages) {
        __atomic_store_n(&f->phase, FILL_DONE, __ATOMIC_RELEASE);
        serial_putc('F');
    }
}

static int fill_post_load(void *opaque, int version_id)
{
    FillWorkload *f = opaque;

    if (f->phase >= FILL_PHASE__MAX) {
        return -EINVAL;
    }
    /* Every claimed page was written before the source stopped. */
    f->next_page = MIN(f->next_page, f->total_pages);
    f->pages_done = f->phase == FILL_DONE ? f->total_pages : f->next_page;
    if (f->phase != FILL_DONE && f->pages_done == f->total_pages &&
        f->total_pages) {
        /* Only DONE may have written every page (it prints 'F' then). */
        return -EINVAL;
    }
    return 0;
}

static const VMStateField fill_fields[] = {
    VMSTATE_UINT32(phase, FillWorkload),
    VMSTATE_UINT64(next_page, FillWorkload),
    VMSTATE_END_OF_LIST(),
};

static const VMStateDescription vmstate_fill = {
    .name = "fill",
    .version_id = 1,
    .minimum_version_id = 1,
    .post_load = fill_post_load,
    .fields = fill_fields,
};

const WorkloadClass workload_fill = {
    .name = "fill",
    .instance_size = sizeof(FillWorkload),
    .init = fill_init,
    .step = fill_step,
    .vmsd = &vmstate_fill,
};
