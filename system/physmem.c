/*
 * Guest RAM: the RAM blocks, the memory API every guest write goes through,
 * and the per-block dirty log (see include/system/ramblock.h).
 *
 * A guest write stores its data first and marks its pages afterwards. The
 * migration thread fetches-and-clears the log before it reads a page, so a
 * write it misses on one pass leaves its bit set for the next one. A full
 * fence sits between the store and the marking: without it the CPU may read
 * the log word (or the logging flag) before the store is visible, see the
 * bit still set, skip the marking, and let the migration thread clear the
 * bit and copy the old data.
 */
#include "qemu/osdep.h"
#include <sys/mman.h>
#include "qemu/bitmap.h"
#include "qemu/memalign.h"
#include "system/ramblock.h"

GPtrArray *ram_blocks;

/* Non-zero while dirty logging is on; read on every guest write. */
static int dirty_log_on;

RAMBlock *ram_block_by_name(const char *name)
{
    RAMBlock *rb;

    RAMBLOCK_FOREACH(rb)
    {
        if (strcmp(rb->idstr, name) == 0) {
            return rb;
        }
    }
    return NULL;
}

RAMBlock *ram_block_for_gpa(uint64_t gpa, uint64_t *offset_in_block)
{
    RAMBlock *rb;

    RAMBLOCK_FOREACH(rb)
    {
        if (gpa >= rb->guest_addr && gpa - rb->guest_addr < rb->used_length) {
            if (offset_in_block) {
                *offset_in_block = gpa - rb->guest_addr;
            }
            return rb;
        }
    }
    return NULL;
}

uint64_t ram_bytes_total(void)
{
    RAMBlock *rb;
    uint64_t total = 0;

    RAMBLOCK_FOREACH(rb)
    {
        total += rb->used_length;
    }
    return total;
}

static bool ranges_overlap(uint64_t a, uint64_t a_len, uint64_t b,
                           uint64_t b_len)
{
    return a < b + b_len && b < a + a_len;
}

RAMBlock *ram_block_add(const char *name, uint64_t size, uint64_t guest_addr,
                        int fd, bool shared, GError **errp)
{
    RAMBlock *rb;
    uint64_t length;
    void *host;

    if (!name || !*name || strlen(name) > 255) {
        /* The stream carries the name behind a one-byte length. */
        error_setg(errp, "RAM block name must be 1 to 255 characters");
        return NULL;
    }
    if (ram_block_by_name(name)) {
        error_setg(errp, "RAM block '%s' already exists", name);
        return NULL;
    }
    if (size == 0 || size > UINT64_MAX - TARGET_PAGE_SIZE ||
        size > SIZE_MAX - TARGET_PAGE_SIZE) {
        error_setg(errp, "RAM block '%s': invalid size %" PRIu64, name, size);
        return NULL;
    }
    length = QEMU_ALIGN_UP(size, TARGET_PAGE_SIZE);
    if (!QEMU_IS_ALIGNED(guest_addr, TARGET_PAGE_SIZE) ||
        guest_addr > UINT64_MAX - length) {
        error_setg(errp, "RAM block '%s': bad guest address 0x%" PRIx64, name,
                   guest_addr);
        return NULL;
    }
    RAMBLOCK_FOREACH(rb)
    {
        if (ranges_overlap(guest_addr, length, rb->guest_addr,
                           rb->used_length)) {
            error_setg(errp, "RAM block '%s' overlaps '%s'", name, rb->idstr);
            return NULL;
        }
    }

    host = qemu_ram_mmap(fd, length, shared, errp);
    if (!host) {
        error_prepend(errp, "Cannot allocate RAM block '%s': ", name);
        return NULL;
    }

    rb = g_new0(RAMBlock, 1);
    rb->idstr = g_strdup(name);
    rb->host = host;
    rb->used_length = length;
    rb->guest_addr = guest_addr;
    rb->fd = fd;
    rb->shared = shared;
    rb->dirty_log = bitmap_new(length >> TARGET_PAGE_BITS);

    if (!ram_blocks) {
        ram_blocks = g_ptr_array_new();
    }
    g_ptr_array_add(ram_blocks, rb);
    return rb;
}

void ram_blocks_free(void)
{
    RAMBlock *rb;

    RAMBLOCK_FOREACH(rb)
    {
        qemu_ram_munmap(rb->host, rb->used_length);
        if (rb->fd >= 0) {
            close(rb->fd);
        }
        g_free(rb->dirty_log);
        g_free(rb->bmap);
        g_free(rb->file_bmap);
        g_free(rb->idstr);
        g_free(rb);
    }
    if (ram_blocks) {
        g_ptr_array_free(ram_blocks, TRUE);
        ram_blocks = NULL;
    }
}

/* --- the memory API --- */

static inline void check_range(const RAMBlock *rb, uint64_t offset, size_t len)
{
    g_assert(offset <= rb->used_length && len <= rb->used_length - offset);
}

/*
 * Under ThreadSanitizer (meson -Dtsan=true defines CONFIG_TSAN) the data
 * stores of the memory API are hidden from it. vCPUs store into guest RAM
 * while the migration side reads the same pages without a lock: the dirty
 * log (above) is what keeps the copy right, so every such pair is a race
 * by design. A suppression would hide the reports but not their cost (TSan
 * rebuilds both stacks for each page before matching it: a 128 MiB live
 * save then takes minutes), so the stores are simply not recorded. Only
 * these stores are hidden: the dirty-log atomics, the migration side's
 * reads and every other access stay checked. See tests/tsan.supp.
 */
#ifdef CONFIG_TSAN
void AnnotateIgnoreWritesBegin(const char *file, int line);
void AnnotateIgnoreWritesEnd(const char *file, int line);
#define guest_store_begin() AnnotateIgnoreWritesBegin(__FILE__, __LINE__)
#define guest_store_end()   AnnotateIgnoreWritesEnd(__FILE__, __LINE__)
#else
#define guest_store_begin() ((void)0)
#define guest_store_end()   ((void)0)
#endif

/*
 * Sets bits [first, first + n) of the log. A word whose bits are already
 * all set is only read: a page written over and over (the a-b loop, a hot
 * counter) then stays in every writer's cache instead of bouncing between
 * them on each locked OR.
 */
static void dirty_log_set_pages(unsigned long *log, uint64_t first, uint64_t n)
{
    while (n) {
        size_t word = BIT_WORD(first);
        unsigned bit = first % BITS_PER_LONG;
        uint64_t nbits = MIN(n, (uint64_t)(BITS_PER_LONG - bit));
        unsigned long mask =
            (nbits == BITS_PER_LONG ? ~0UL : (1UL << nbits) - 1) << bit;

        if ((__atomic_load_n(&log[word], __ATOMIC_RELAXED) & mask) != mask) {
            __atomic_fetch_or(&log[word], mask, __ATOMIC_RELAXED);
        }
        first += nbits;
        n -= nbits;
    }
}

void ramblock_mark_dirty(RAMBlock *rb, uint64_t offset, size_t len)
{
    uint64_t first, last;

    if (!len) {
        return;
    }
    /* Orders the caller's data store before both reads below (see top). */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    /*
     * Acquire pairs with the store in memory_global_dirty_log_start(): the
     * log is zeroed before we mark it (free on x86; TSan sees the edge).
     */
    if (!__atomic_load_n(&dirty_log_on, __ATOMIC_ACQUIRE)) {
        return;
    }
    first = offset >> TARGET_PAGE_BITS;
    last = (offset + len - 1) >> TARGET_PAGE_BITS;
    dirty_log_set_pages(rb->dirty_log, first, last - first + 1);
}

void ramblock_write(RAMBlock *rb, uint64_t offset, const void *buf, size_t len)
{
    check_range(rb, offset, len);
    guest_store_begin();
    memcpy(rb->host + offset, buf, len);
    guest_store_end();
    ramblock_mark_dirty(rb, offset, len);
}

void ramblock_write_u8(RAMBlock *rb, uint64_t offset, uint8_t val)
{
    check_range(rb, offset, 1);
    guest_store_begin();
    rb->host[offset] = val;
    guest_store_end();
    ramblock_mark_dirty(rb, offset, 1);
}

void ramblock_write_u64(RAMBlock *rb, uint64_t offset, uint64_t val)
{
    check_range(rb, offset, sizeof(val));
    guest_store_begin();
    memcpy(rb->host + offset, &val, sizeof(val));
    guest_store_end();
    ramblock_mark_dirty(rb, offset, sizeof(val));
}

void ramblock_fill(RAMBlock *rb, uint64_t offset, int c, size_t len)
{
    check_range(rb, offset, len);
    guest_store_begin();
    memset(rb->host + offset, c, len);
    guest_store_end();
    ramblock_mark_dirty(rb, offset, len);
}

/*
 * Calls fn on each block-sized piece of [gpa, gpa + len), or on none of
 * them when part of the range is not RAM (so a failed write changes
 * nothing).
 */
static bool guest_phys_access(uint64_t gpa, uint8_t *buf, size_t len,
                              bool is_write)
{
    uint64_t addr = gpa;
    size_t left = len;
    int pass;

    if (len && gpa > UINT64_MAX - (len - 1)) {
        return false;
    }
    for (pass = 0; pass < 2; pass++) {
        addr = gpa;
        left = len;
        while (left) {
            uint64_t off;
            RAMBlock *rb = ram_block_for_gpa(addr, &off);
            size_t chunk;

            if (!rb) {
                return false;
            }
            chunk = MIN(left, rb->used_length - off);
            if (pass == 1) {
                if (is_write) {
                    ramblock_write(rb, off, buf + (addr - gpa), chunk);
                } else {
                    memcpy(buf + (addr - gpa), rb->host + off, chunk);
                }
            }
            addr += chunk;
            left -= chunk;
        }
    }
    return true;
}

bool guest_phys_write(uint64_t gpa, const void *buf, size_t len)
{
    /* Only pass 1 with is_write reads from buf; it never writes to it. */
    return guest_phys_access(gpa, (uint8_t *)buf, len, true);
}

bool guest_phys_read(uint64_t gpa, void *buf, size_t len)
{
    return guest_phys_access(gpa, buf, len, false);
}

/* --- dirty logging --- */

void memory_global_dirty_log_start(void)
{
    RAMBlock *rb;

    RAMBLOCK_FOREACH(rb)
    {
        bitmap_zero(rb->dirty_log, ramblock_pages(rb));
    }
    __atomic_store_n(&dirty_log_on, 1, __ATOMIC_SEQ_CST);
}

void memory_global_dirty_log_stop(void)
{
    __atomic_store_n(&dirty_log_on, 0, __ATOMIC_SEQ_CST);
}

bool memory_global_dirty_log_enabled(void)
{
    return __atomic_load_n(&dirty_log_on, __ATOMIC_SEQ_CST);
}

uint64_t ramblock_dirty_log_sync(RAMBlock *rb, unsigned long *dest)
{
    return bitmap_fetch_and_clear_into(dest, rb->dirty_log, ramblock_pages(rb));
}

/* --- the machine's blocks --- */

/*
 * Fixed, recognisable firmware content: each of the first pages of pc.bios
 * starts with a text banner followed by a byte pattern, and the BIOS ends
 * with an x86 far jump (the reset vector); vga.vram starts with a gradient.
 */
static void firmware_content_init(RAMBlock *bios, RAMBlock *vram)
{
    static const uint8_t reset_vector[] = {0xea, 0x5b, 0xe0, 0x00, 0xf0};
    uint8_t page[TARGET_PAGE_SIZE];
    unsigned p, i;

    for (p = 0; p < 4; p++) {
        for (i = 0; i < sizeof(page); i++) {
            page[i] = (uint8_t)(i * 31 + p * 7 + 1);
        }
        snprintf((char *)page, 64, "minivm BIOS page %u", p);
        ramblock_write(bios, (uint64_t)p * sizeof(page), page, sizeof(page));
    }
    ramblock_write(bios, bios->used_length - 16, reset_vector,
                   sizeof(reset_vector));

    for (p = 0; p < 16; p++) {
        for (i = 0; i < sizeof(page); i++) {
            page[i] = (uint8_t)(p * 16 + i / 256);
        }
        ramblock_write(vram, (uint64_t)p * sizeof(page), page, sizeof(page));
    }
}

bool machine_ram_init(uint64_t ram_size, int fd, bool shared, bool fresh_boot,
                      GError **errp)
{
    RAMBlock *bios, *vram;

    if (ram_size == 0 || ram_size > PC_RAM_MAX_SIZE) {
        error_setg(errp, "RAM size must be between 1 byte and 1 TiB");
        return false;
    }
    if (!ram_block_add("pc.ram", ram_size, 0, fd, shared, errp)) {
        return false;
    }
    vram =
        ram_block_add("vga.vram", VGA_VRAM_SIZE, VGA_VRAM_GPA, -1, false, errp);
    if (!vram) {
        return false;
    }
    bios = ram_block_add("pc.bios", PC_BIOS_SIZE, PC_BIOS_GPA, -1, false, errp);
    if (!bios) {
        return false;
    }
    if (fresh_boot) {
        firmware_content_init(bios, vram);
    }
    return true;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

bool ram_block_populate(RAMBlock *rb, uint64_t offset, uint64_t len)
{
    /* Set once the kernel said it does not know the advice. */
    static int unsupported;

    if (offset > rb->used_length || len > rb->used_length - offset || !len ||
        __atomic_load_n(&unsupported, __ATOMIC_RELAXED)) {
        return false;
    }
    if (madvise(rb->host + offset, len, MADV_POPULATE_WRITE) == 0) {
        return true;
    }
    if (errno == EINVAL) {
        __atomic_store_n(&unsupported, 1, __ATOMIC_RELAXED);
    }
    return false;
}
