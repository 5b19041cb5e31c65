/*
 * mapped-ram: the file layout in which every RAM page has a fixed offset
 * (stream-format.md section 3, byte-compatible with QEMU 9.0+). This header
 * is the one definition of the on-disk format (constants, the per-block
 * MappedRamHeader, its encoding, the layout arithmetic) plus the two users
 * of it: the page sink that writes a migration into that layout and the
 * loader that reads one block back.
 *
 * Per RAM block, inside the START section right after its used_length:
 *
 *   [MappedRamHeader, 28 bytes] [bitmap] ...pad... [page area] [stream...]
 *   ^ header_offset             ^ bitmap_offset    ^ pages_offset (1 MiB
 * aligned)
 *
 * and the sequential stream resumes at pages_offset + used_length. Every
 * offset is absolute in the file (it includes a file: URI's offset=).
 */
#ifndef MIGRATION_MAPPED_RAM_H
#define MIGRATION_MAPPED_RAM_H

#include "qemu/osdep.h"

#include "migration/qemu-file.h"
#include "qemu/bitmap.h"
#include "migration/ram.h"
#include "system/ramblock.h"

/* --- the format --- */

#define MAPPED_RAM_HDR_VERSION 1
/* Packed, big-endian: be32 version, be64 page_size, bitmap_offset,
 * pages_offset. */
#define MAPPED_RAM_HDR_SIZE 28
/* Where a block's page area starts: a multiple of this (writer's choice;
 * the loader only insists on page alignment). */
#define MAPPED_RAM_FILE_OFFSET_ALIGNMENT (1 * MiB)
/*
 * Largest single read of page data the loader issues. A read may span
 * slots whose bit is clear (see MappedRamExtent), so one read covers
 * several runs of pages: fewer, larger I/Os.
 */
#define MAPPED_RAM_LOAD_BUF_SIZE  (4 * MiB)
#define MAPPED_RAM_LOAD_MAX_PAGES (MAPPED_RAM_LOAD_BUF_SIZE >> TARGET_PAGE_BITS)
/*
 * A gap of at most this many clear-bit pages between two runs of set bits
 * is read across instead of splitting the read: a hole in the file costs
 * no device I/O, and a small gap costs less than a second round trip.
 * Larger gaps are skipped, so the guest RAM behind them stays untouched.
 */
#define MAPPED_RAM_LOAD_GAP_PAGES 64

/* The header in host byte order (the file holds it big-endian). */
typedef struct MappedRamHeader {
    uint32_t version;
    uint64_t page_size;
    uint64_t bitmap_offset; /* absolute file offset of the page bitmap */
    uint64_t pages_offset;  /* absolute file offset of page 0 */
} MappedRamHeader;

void mapped_ram_header_encode(const MappedRamHeader *hdr,
                              uint8_t out[MAPPED_RAM_HDR_SIZE]);
void mapped_ram_header_decode(const uint8_t in[MAPPED_RAM_HDR_SIZE],
                              MappedRamHeader *hdr);

/* Bytes of a bitmap for npages pages: 64-bit little-endian words. */
static inline uint64_t mapped_ram_bitmap_size(uint64_t npages)
{
    return DIV_ROUND_UP(npages, 64) * 8;
}

/*
 * The header a writer puts at header_offset for a block of used_length
 * bytes: bitmap right after the header, pages at the next 1 MiB boundary
 * after the bitmap. False when the offsets would not fit in an off_t.
 */
bool mapped_ram_layout(uint64_t header_offset, uint64_t used_length,
                       MappedRamHeader *hdr);

/* --- source: joining runs across small zero gaps --- */

/*
 * A slot whose bitmap bit is clear is never read (section 3), so a writer
 * may fill it with anything. Writers use that to join two runs of pages
 * with content that are separated by a few zero pages into one write: the
 * zero pages go out from guest RAM (zero there, nothing copied). Such a
 * gap is not even read (zero_pages_split() looks for the longer runs
 * only), so its pages are written as they are and get their bits set,
 * like any page written; zero pages proved zero keep their bits clear.
 * Longer zero gaps stay holes, so the file stays sparse where the guest
 * has free memory. Gaps of at most this many pages are joined (the choice
 * is measured in docs/devel/benchmarks.md).
 */
#define MAPPED_RAM_JOIN_GAP_PAGES_DEFAULT 8

/*
 * The gap the running save joins: the default, or the environment
 * variable MINIVM_MAPPED_RAM_JOIN_GAP (0 = never join; a benchmarking
 * knob), read by mapped_ram_save_setup(). Any thread may call it.
 */
uint32_t mapped_ram_join_gap_pages(void);

/*
 * iov gets the writes of a batch that zero_pages_split() sorted into
 * normal and zero (byte offsets into host, ascending): one piece per run
 * of normal pages, going on across a gap of at most join pages when all of
 * them are in zero (so they were just found zero, their bits cleared). A
 * gap page of neither list is never written: its slot may hold a page of
 * an earlier pass that is still valid. iov needs num_normal entries.
 * Returns the pieces.
 */
size_t mapped_ram_join_runs(uint8_t *host, const uint64_t *normal,
                            uint32_t num_normal, const uint64_t *zero,
                            uint32_t num_zero, uint32_t join,
                            struct iovec *iov);

/*
 * Buffered writers: every MAPPED_RAM_WRITEBACK_BYTES written through fd,
 * start the writeback of the file's dirty pages (sync_file_range WRITE),
 * so the disk works while the save is still copying instead of waiting
 * until the kernel's dirty_background threshold (a tenth of the host's
 * memory) and leaving the rest to the final fsync. *pending counts the
 * bytes since the last start (the caller's, one per writing thread).
 * Errors are left to that fsync, which reports them.
 */
#define MAPPED_RAM_WRITEBACK_BYTES (64 * MiB)
void mapped_ram_writeback_kick(int fd, uint64_t written, uint64_t *pending);

/* --- source: the page sink (no multifd) --- */

/*
 * Pages go out with positioned writes of whole runs at their slots; zero
 * pages get their bit cleared and are left as holes, except inside a gap
 * short enough to be joined (above, written with bits set); bitmaps are
 * written by complete().
 * ram.c selects it when migrate_mapped_ram() and not multifd.
 */
extern const RAMPageSink mapped_ram_sink;

/*
 * The building blocks of that sink, for other mapped-ram writers (multifd
 * over file: uses setup, block_header, the per-block pages offset,
 * rb->file_bmap, write_bitmaps and cleanup, and writes pages itself):
 * setup allocates every block's rb->file_bmap (all clear) and the layout
 * table; block_header writes the block's MappedRamHeader at the stream
 * position and moves the stream past the block's page area.
 */
int mapped_ram_save_setup(QEMUFile *f, GError **errp);
int mapped_ram_save_block_header(QEMUFile *f, RAMBlock *rb, GError **errp);
/*
 * Absolute file offset of page 0 of rb; block_header must have run. Like
 * every function of this group, migration thread only (it caches lookups).
 */
uint64_t mapped_ram_block_pages_offset(RAMBlock *rb);
/* Writes every block's rb->file_bmap at its bitmap_offset (main channel). */
int mapped_ram_save_bitmaps(QEMUFile *f);
/* Frees the layout table and every rb->file_bmap. */
void mapped_ram_save_cleanup(void);

/* --- destination: one block --- */

/*
 * One read of the loader: len bytes of the file at file_offset into host
 * (guest RAM of rb, page aligned, len a whole number of pages and at most
 * MAPPED_RAM_LOAD_BUF_SIZE). Its first and last page have their bit set;
 * pages inside whose bit is clear are listed in holes (bit i: page i of
 * the extent). Such a slot may hold anything (a hole, zeros, or stale bytes
 * from an earlier pass of a live save), so after the read lands the reader
 * calls mapped_ram_zero_holes(). The extent is self-contained (no pointer
 * into the loader's bitmap), so a reader may finish it after the loader
 * moved on.
 */
typedef struct MappedRamExtent {
    RAMBlock *rb;
    uint8_t *host;
    size_t len;
    uint64_t file_offset;
    bool has_holes;
    unsigned long holes[BITS_TO_LONGS(MAPPED_RAM_LOAD_MAX_PAGES)];
} MappedRamExtent;

/*
 * After e's read landed: every page of e whose bit is clear is made zero
 * (tested first, written only when not already zero).
 */
void mapped_ram_zero_holes(const MappedRamExtent *e);
/*
 * Reads extent e from ioc into guest RAM and zeroes its holes: what the
 * main-channel loader and every multifd reader do with one extent.
 */
int mapped_ram_read_extent(QIOChannel *ioc, const MappedRamExtent *e,
                           GError **errp);

/*
 * Reads (or queues the read of) one extent. A reader that completes it
 * later must call mapped_ram_zero_holes() after the data landed. Returns
 * 0 or -1 with errp set.
 */
typedef int (*MappedRamReadFn)(void *opaque, const MappedRamExtent *e,
                               GError **errp);

/*
 * Called by the START section's block-list parser right after rb's
 * used_length matched: reads and checks the MappedRamHeader (every check
 * and message of stream-format.md section 3), reads the bitmap, loads
 * every page whose bit is set straight into guest RAM in extents of at
 * most MAPPED_RAM_LOAD_BUF_SIZE (across small gaps of clear bits, which
 * end up zero), then moves the stream to pages_offset + used_length. Pages
 * whose bit is clear and that no extent covers are left alone: the
 * destination's RAM starts zeroed (a block backed by a file that already
 * has data is cleared where needed). Returns 0 or a negative errno with
 * errp set.
 */
int mapped_ram_load_block(QEMUFile *f, RAMBlock *rb, GError **errp);
/*
 * The same with another reader for the page data (multifd channels). The
 * reads may still be in flight when it returns: the caller waits for them.
 */
int mapped_ram_load_block_with(QEMUFile *f, RAMBlock *rb, MappedRamReadFn read,
                               void *opaque, GError **errp);

#endif
