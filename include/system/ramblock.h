/*
 * Guest RAM: an ordered list of RAM blocks ("pc.ram" at guest-physical 0,
 * then "vga.vram" and "pc.bios"), the memory API every guest write goes
 * through, and the per-block dirty log.
 *
 * The dirty log is one bit per target page. While logging is on, every
 * guest write marks its pages atomically after storing the data, so a
 * page the migration thread fetched-and-cleared before the store is marked
 * again and sent in a later pass.
 */
#ifndef SYSTEM_RAMBLOCK_H
#define SYSTEM_RAMBLOCK_H

#include "qemu/osdep.h"

typedef struct RAMBlock {
    char *idstr;
    uint8_t *host;        /* mapping of used_length bytes */
    uint64_t used_length; /* bytes, multiple of TARGET_PAGE_SIZE */
    uint64_t guest_addr;  /* guest-physical base */
    int fd;               /* backing file/memfd, or -1 for anonymous */
    bool shared;
    /* One bit per page, set by guest writes while logging is on. */
    unsigned long *dirty_log;
    /*
     * Owned by migration/ram.c while a migration runs: the pages still to
     * send. NULL otherwise.
     */
    unsigned long *bmap;
    /*
     * Owned by migration (mapped-ram): bit set = page written to the file
     * with content (the on-disk bitmap). NULL otherwise.
     */
    unsigned long *file_bmap;
} RAMBlock;

static inline uint64_t ramblock_pages(const RAMBlock *rb)
{
    return rb->used_length >> TARGET_PAGE_BITS;
}

/* Global list, in registration order (the order the stream lists them). */
extern GPtrArray *ram_blocks;
/* clang-format off */
#define RAMBLOCK_FOREACH(rb)                                                   \
    for (guint _i = 0;                                                         \
         _i < (ram_blocks ? ram_blocks->len : 0) &&                            \
         ((rb) = g_ptr_array_index(ram_blocks, _i), 1);                        \
         _i++)
/* clang-format on */

/*
 * Adds a block. With fd >= 0 the memory is mmap()ed from it (shared when
 * shared is true), otherwise it is anonymous. The size is rounded up to a
 * page. On success the block owns fd (ram_blocks_free() closes it); on
 * failure the caller still does.
 */
RAMBlock *ram_block_add(const char *name, uint64_t size, uint64_t guest_addr,
                        int fd, bool shared, GError **errp);
RAMBlock *ram_block_by_name(const char *name);
/* The block holding guest-physical addr, or NULL. */
RAMBlock *ram_block_for_gpa(uint64_t gpa, uint64_t *offset_in_block);
uint64_t ram_bytes_total(void);
void ram_blocks_free(void);
/*
 * Prefaults [offset, offset + len) of rb writable (MADV_POPULATE_WRITE), so
 * that whoever writes it next (a restore's O_DIRECT read, say) does not stop
 * on page faults. Only a hint: false when the kernel cannot do it (the
 * writer then faults the pages in itself). Any thread.
 */
bool ram_block_populate(RAMBlock *rb, uint64_t offset, uint64_t len);

/*
 * The machine's guest-physical layout. pc.ram starts at 0 and may be up to
 * 1 TiB; the small blocks sit in a device window above that, so they never
 * move whatever -m says: vga.vram at 1 TiB and pc.bios at the top of the
 * window's first 4 GiB (as a PC's BIOS ends at 4 GiB).
 */
#define PC_RAM_DEFAULT_SIZE (128 * MiB)
#define PC_RAM_MAX_SIZE     (1ULL << 40)
#define VGA_VRAM_GPA        PC_RAM_MAX_SIZE
#define VGA_VRAM_SIZE       (8 * MiB)
#define PC_BIOS_GPA         (PC_RAM_MAX_SIZE + 0xfffc0000ULL)
#define PC_BIOS_SIZE        (256 * KiB)

/*
 * Creates pc.ram (ram_size bytes, from fd when fd >= 0, see ram_block_add),
 * vga.vram and pc.bios. With fresh_boot the firmware blocks get their fixed
 * content through the memory API; a migration destination gets it from the
 * stream instead.
 */
bool machine_ram_init(uint64_t ram_size, int fd, bool shared, bool fresh_boot,
                      GError **errp);

/* --- the memory API: all guest writes go through here --- */
void ramblock_write(RAMBlock *rb, uint64_t offset, const void *buf, size_t len);
void ramblock_write_u8(RAMBlock *rb, uint64_t offset, uint8_t val);
void ramblock_write_u64(RAMBlock *rb, uint64_t offset, uint64_t val);
void ramblock_fill(RAMBlock *rb, uint64_t offset, int c, size_t len);
/* Guest-physical; false if [gpa, gpa + len) is not all RAM. */
bool guest_phys_write(uint64_t gpa, const void *buf, size_t len);
bool guest_phys_read(uint64_t gpa, void *buf, size_t len);

/* Marks [offset, offset + len) dirty when logging is on. */
void ramblock_mark_dirty(RAMBlock *rb, uint64_t offset, size_t len);

/* --- dirty logging --- */
/* Starts logging with every page of every block clean. */
void memory_global_dirty_log_start(void);
void memory_global_dirty_log_stop(void);
bool memory_global_dirty_log_enabled(void);
/*
 * Moves the block's dirty log into dest (dest |= log, log = 0) with atomic
 * fetch-and-clear; returns the number of pages newly set in dest.
 */
uint64_t ramblock_dirty_log_sync(RAMBlock *rb, unsigned long *dest);

#endif
