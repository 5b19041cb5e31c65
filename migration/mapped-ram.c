/*
 * mapped-ram (stream-format.md section 3): every RAM page has a fixed slot
 * in the migration file, so a live save rewrites a page in place however
 * often the guest dirties it and the file stays about the size of RAM.
 *
 * Three parts, in this order:
 * - the format: header encoding and the layout arithmetic (mapped-ram.h
 *   documents the picture);
 * - the page sink the dirty-page walk in ram.c uses without multifd: each
 *   run of dirty pages (up to RAM_RUN_MAX_PAGES, 2 MiB) is split where it
 *   has more than mapped_ram_join_gap_pages() zero pages in a row, and
 *   every piece goes to its slot with one positioned write (zero pages
 *   inside a piece are written too, from guest RAM, but keep their bit
 *   clear); the file bitmap (rb->file_bmap) records which slots hold a
 *   page, and is written once, at completion, at the block's bitmap_offset;
 * - the loader for one block, called by ram.c's block-list parser: header
 *   checks, bitmap, then every run of set bits read straight into guest RAM
 *   in extents of at most 4 MiB that may span small gaps of clear bits
 *   (zeroed after the read).
 */
#include "qemu/osdep.h"

#include "io/channel.h"
#include "migration/mapped-ram.h"
#include "migration/migration-stats.h"
#include "migration/options.h"
#include "migration/zero-pages.h"
#include "qemu/bitmap.h"
#include "qemu/cutils.h"
#include "qemu/dio.h"
#include "qemu/fault-inject.h" /* rel */

/* --- the format --- */

static void put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8) {
        p[i] = v & 0xff;
    }
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8) {
        p[i] = v & 0xff;
    }
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
    return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

void mapped_ram_header_encode(const MappedRamHeader *hdr,
                              uint8_t out[MAPPED_RAM_HDR_SIZE])
{
    put_be32(out, hdr->version);
    put_be64(out + 4, hdr->page_size);
    put_be64(out + 12, hdr->bitmap_offset);
    put_be64(out + 20, hdr->pages_offset);
}

void mapped_ram_header_decode(const uint8_t in[MAPPED_RAM_HDR_SIZE],
                              MappedRamHeader *hdr)
{
    hdr->version = get_be32(in);
    hdr->page_size = get_be64(in + 4);
    hdr->bitmap_offset = get_be64(in + 12);
    hdr->pages_offset = get_be64(in + 20);
}

bool mapped_ram_layout(uint64_t header_offset, uint64_t used_length,
                       MappedRamHeader *hdr)
{
    uint64_t bitmap_size =
        mapped_ram_bitmap_size(used_length >> TARGET_PAGE_BITS);
    uint64_t limit = INT64_MAX;

    /* Each step checked against off_t's range before it is taken. */
    if (header_offset > limit - MAPPED_RAM_HDR_SIZE ||
        header_offset + MAPPED_RAM_HDR_SIZE >
            limit - bitmap_size - MAPPED_RAM_FILE_OFFSET_ALIGNMENT) {
        return false;
    }
    hdr->version = MAPPED_RAM_HDR_VERSION;
    hdr->page_size = TARGET_PAGE_SIZE;
    hdr->bitmap_offset = header_offset + MAPPED_RAM_HDR_SIZE;
    hdr->pages_offset = QEMU_ALIGN_UP(hdr->bitmap_offset + bitmap_size,
                                      MAPPED_RAM_FILE_OFFSET_ALIGNMENT);
    return hdr->pages_offset <= limit - used_length;
}

/* --- source --- */

/* Where one block's bitmap and pages live in the file being written. */
typedef struct MappedRamSaveBlock {
    RAMBlock *rb;
    uint64_t bitmap_offset;
    uint64_t pages_offset;
    bool laid_out; /* its header was written */
} MappedRamSaveBlock;

/*
 * Zero gap joined by the running save: written by setup on the migration
 * thread before any channel thread starts, read by those threads after.
 */
static uint32_t mr_join_gap_pages = MAPPED_RAM_JOIN_GAP_PAGES_DEFAULT;

uint32_t mapped_ram_join_gap_pages(void)
{
    return mr_join_gap_pages;
}

/*
 * MINIVM_MAPPED_RAM_JOIN_GAP when it is a number; else none on a file
 * system in memory (tmpfs): there a joined zero page costs a page of RAM
 * and saves no I/O (4 GiB fill,zero=25 to /dev/shm: 3.85 s joined, 2.83 s
 * not); else the default.
 */
static uint32_t mapped_ram_join_gap_for(int fd)
{
    const char *env = g_getenv("MINIVM_MAPPED_RAM_JOIN_GAP");
    guint64 value;

    if (env &&
        g_ascii_string_to_unsigned(env, 10, 0, UINT32_MAX, &value, NULL)) {
        return value;
    }
    if (fd >= 0 && qemu_fd_is_memory_fs(fd)) {
        return 0;
    }
    return MAPPED_RAM_JOIN_GAP_PAGES_DEFAULT;
}

void mapped_ram_writeback_kick(int fd, uint64_t written, uint64_t *pending)
{
    *pending += written;
    if (fd < 0 || *pending < MAPPED_RAM_WRITEBACK_BYTES) {
        return;
    }
    *pending = 0;
    /* The whole file: pieces are scattered, and clean pages cost nothing. */
    sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

size_t mapped_ram_join_runs(uint8_t *host, const uint64_t *normal,
                            uint32_t num_normal, const uint64_t *zero,
                            uint32_t num_zero, uint32_t join, struct iovec *iov)
{
    uint32_t zi = 0; /* next entry of zero */
    size_t niov = 0;

    for (uint32_t i = 0; i < num_normal; i++) {
        uint8_t *page = host + normal[i];
        uint64_t between = 0; /* zero pages since the last normal one */

        while (zi < num_zero && zero[zi] < normal[i]) {
            between++;
            zi++;
        }
        if (niov) {
            struct iovec *last = &iov[niov - 1];
            uint8_t *last_end = (uint8_t *)last->iov_base + last->iov_len;
            uint64_t gap = (page - last_end) >> TARGET_PAGE_BITS;

            if (gap == 0 || (gap <= join && gap == between)) {
                last->iov_len += (gap + 1) << TARGET_PAGE_BITS;
                continue;
            }
        }
        iov[niov].iov_base = page;
        iov[niov].iov_len = TARGET_PAGE_SIZE;
        niov++;
    }
    return niov;
}

/*
 * The single-threaded sink classifies and joins a run of dirty pages this
 * many at a time (a multifd file batch's size), with arrays of its own.
 */
#define SEND_CHUNK_PAGES ZERO_PAGES_SPLIT_MAX

/* The running outgoing migration's layout (migration thread only). */
static struct {
    MappedRamSaveBlock *blocks;
    guint nblocks;
    MappedRamSaveBlock *last; /* the block of the previous lookup */
    bool zero_detection;
    uint64_t writeback_pending; /* see mapped_ram_writeback_kick() */
    /* mapped_ram_send_pages()'s, per chunk of at most SEND_CHUNK_PAGES */
    uint64_t normal[SEND_CHUNK_PAGES];
    uint64_t zero[SEND_CHUNK_PAGES];
    struct iovec iov[SEND_CHUNK_PAGES];
} mr_save;

static MappedRamSaveBlock *mapped_ram_save_block(RAMBlock *rb)
{
    /* Runs arrive block after block, so the cache almost always hits. */
    if (mr_save.last && mr_save.last->rb == rb) {
        return mr_save.last;
    }
    for (guint i = 0; i < mr_save.nblocks; i++) {
        if (mr_save.blocks[i].rb == rb) {
            mr_save.last = &mr_save.blocks[i];
            return mr_save.last;
        }
    }
    return NULL;
}

void mapped_ram_save_cleanup(void)
{
    RAMBlock *rb;

    RAMBLOCK_FOREACH(rb)
    {
        g_free(rb->file_bmap);
        rb->file_bmap = NULL;
    }
    g_free(mr_save.blocks);
    memset(&mr_save, 0, sizeof(mr_save));
}

int mapped_ram_save_setup(QEMUFile *f, GError **errp)
{
    QIOChannel *ioc = qemu_file_get_ioc(f);
    RAMBlock *rb;
    guint i = 0;

    if (!qio_channel_has_feature(ioc, QIO_CHANNEL_FEATURE_SEEKABLE)) {
        /* options.c refuses this earlier; a channel can still surprise. */
        error_setg(errp, "Migration requires seekable transport (e.g. file)");
        return -EINVAL;
    }
    mapped_ram_save_cleanup();
    mr_save.nblocks = ram_blocks ? ram_blocks->len : 0;
    mr_save.blocks = g_new0(MappedRamSaveBlock, mr_save.nblocks);
    mr_save.zero_detection = migrate_zero_page_detection() != 0;
    mr_join_gap_pages =
        mapped_ram_join_gap_for(qio_channel_get_fd(ioc, G_IO_OUT));
    RAMBLOCK_FOREACH(rb)
    {
        /* Whole 64-bit words, as the file holds them: bitmap_to_le's size. */
        rb->file_bmap = g_malloc0(
            MAX(mapped_ram_bitmap_size(ramblock_pages(rb)),
                BITS_TO_LONGS(ramblock_pages(rb)) * sizeof(unsigned long)));
        mr_save.blocks[i++].rb = rb;
    }
    return 0;
}

int mapped_ram_save_block_header(QEMUFile *f, RAMBlock *rb, GError **errp)
{
    MappedRamSaveBlock *mb = mapped_ram_save_block(rb);
    uint8_t buf[MAPPED_RAM_HDR_SIZE];
    MappedRamHeader hdr;
    off_t pos;

    if (!mb) {
        error_setg(errp, "RAM block %s appeared after mapped-ram setup",
                   rb->idstr);
        return -EINVAL;
    }
    pos = qemu_get_offset(f);
    if (pos < 0) {
        return qemu_file_get_error_obj(f, errp);
    }
    if (!mapped_ram_layout(pos, rb->used_length, &hdr)) {
        error_setg(errp,
                   "mapped-ram block %s does not fit in a file at offset "
                   "0x%llx",
                   rb->idstr, (unsigned long long)pos);
        return -EFBIG;
    }
    mb->bitmap_offset = hdr.bitmap_offset;
    mb->pages_offset = hdr.pages_offset;
    mb->laid_out = true;
    mapped_ram_header_encode(&hdr, buf);
    qemu_put_buffer(f, buf, sizeof(buf));
    /* The bitmap and the page area stay holes until they are written. */
    qemu_set_offset(f, hdr.pages_offset + rb->used_length, SEEK_SET);
    return qemu_file_get_error_obj(f, errp);
}

uint64_t mapped_ram_block_pages_offset(RAMBlock *rb)
{
    MappedRamSaveBlock *mb = mapped_ram_save_block(rb);

    g_assert(mb && mb->laid_out);
    return mb->pages_offset;
}

/*
 * One positioned write (through the QEMUFile, so max-bandwidth and the
 * transferred figures count it) of len bytes of guest RAM at base to
 * their slots. Bits are the caller's.
 */
static void mapped_ram_write_piece(QEMUFile *f, MappedRamSaveBlock *mb,
                                   const uint8_t *base, size_t len)
{
    if (!len) {
        return;
    }
    qemu_put_buffer_at(f, base, len, mb->pages_offset + (base - mb->rb->host));
    mapped_ram_writeback_kick(
        qio_channel_get_fd(qemu_file_get_ioc(f), G_IO_OUT), len,
        &mr_save.writeback_pending);
}

/*
 * One run of dirty pages, a chunk at a time: zero pages get their bit
 * cleared, whatever an earlier pass put in their slot (the loader never
 * reads a clear slot), and stay holes; the others get their bit set and
 * go out in pieces joined across zero gaps of at most
 * mapped_ram_join_gap_pages() pages (zero_pages_split(),
 * mapped_ram_join_runs()). A piece ending a chunk waits, so that one
 * going on in the next chunk is the same write.
 */
static int mapped_ram_send_pages(QEMUFile *f, RAMBlock *rb, uint64_t first,
                                 uint64_t npages)
{
    MappedRamSaveBlock *mb = mapped_ram_save_block(rb);
    uint32_t join = mr_join_gap_pages;
    uint64_t end = first + npages;
    struct iovec piece = {NULL, 0};
    uint64_t zero = 0;

    if (!mb || !mb->laid_out || end > ramblock_pages(rb)) {
        GError *err = NULL;

        error_setg(&err,
                   "mapped-ram: pages 0x%" PRIx64 "+0x%" PRIx64
                   " of block %s have no slot",
                   first, npages, rb->idstr);
        qemu_file_set_error_obj(f, -EINVAL, err);
        return -EINVAL;
    }
    for (uint64_t chunk = first; chunk < end; chunk += SEND_CHUNK_PAGES) {
        uint32_t n = MIN(end - chunk, SEND_CHUNK_PAGES);
        uint32_t nn, nz;
        size_t niov;

        zero_pages_split(rb->host, NULL, chunk, n, join, mr_save.zero_detection,
                         mr_save.normal, &nn, mr_save.zero, &nz);
        for (uint32_t i = 0; i < nz; i++) {
            clear_bit(mr_save.zero[i] >> TARGET_PAGE_BITS, rb->file_bmap);
        }
        for (uint32_t i = 0; i < nn; i++) {
            set_bit(mr_save.normal[i] >> TARGET_PAGE_BITS, rb->file_bmap);
        }
        niov = mapped_ram_join_runs(rb->host, mr_save.normal, nn, mr_save.zero,
                                    nz, join, mr_save.iov);
        for (size_t i = 0; i < niov; i++) {
            struct iovec *v = &mr_save.iov[i];

            if (piece.iov_len &&
                (uint8_t *)piece.iov_base + piece.iov_len == v->iov_base) {
                piece.iov_len += v->iov_len;
                continue;
            }
            mapped_ram_write_piece(f, mb, piece.iov_base, piece.iov_len);
            piece = *v;
        }
        zero += nz;
    }
    mapped_ram_write_piece(f, mb, piece.iov_base, piece.iov_len);
    stat64_add(&mig_stats.zero_pages, zero);
    stat64_add(&mig_stats.normal_pages, npages - zero);
    return qemu_file_get_error(f);
}

int mapped_ram_save_bitmaps(QEMUFile *f)
{
    for (guint i = 0; i < mr_save.nblocks; i++) {
        MappedRamSaveBlock *mb = &mr_save.blocks[i];
        uint64_t pages = ramblock_pages(mb->rb);
        uint64_t size = mapped_ram_bitmap_size(pages);
        g_autofree unsigned long *le = NULL;

        if (!mb->laid_out) {
            GError *err = NULL;

            error_setg(&err, "mapped-ram: block %s has no header",
                       mb->rb->idstr);
            qemu_file_set_error_obj(f, -EINVAL, err);
            return -EINVAL;
        }
        le = g_malloc0(MAX(size, BITS_TO_LONGS(pages) * sizeof(unsigned long)));
        bitmap_to_le(le, mb->rb->file_bmap, pages);
        fault_inject_set_phase(FAULT_PHASE_BITMAPS); /* rel */
        qemu_put_buffer_at(f, (const uint8_t *)le, size, mb->bitmap_offset);
        fault_inject_set_phase(FAULT_PHASE_NONE); /* rel */
    }
    return qemu_file_get_error(f);
}

static int mapped_ram_sink_block_header(QEMUFile *f, RAMBlock *rb,
                                        GError **errp)
{
    return mapped_ram_save_block_header(f, rb, errp);
}

static int mapped_ram_sink_complete(QEMUFile *f)
{
    return mapped_ram_save_bitmaps(f);
}

const RAMPageSink mapped_ram_sink = {
    .name = "mapped-ram",
    .setup = mapped_ram_save_setup,
    .block_header = mapped_ram_sink_block_header,
    .send_pages = mapped_ram_send_pages,
    .complete = mapped_ram_sink_complete,
    .cleanup = mapped_ram_save_cleanup,
};

/* --- destination --- */

/* Size of the regular file behind the channel, or 0 when unknown. */
static uint64_t mapped_ram_file_size(QIOChannel *ioc)
{
    int fd = qio_channel_get_fd(ioc, G_IO_IN);
    struct stat st;

    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        return 0;
    }
    return st.st_size;
}

/*
 * Reads the block's header from the stream and checks its fields;
 * *header_end is the stream position right after it.
 */
static bool mapped_ram_read_header(QEMUFile *f, RAMBlock *rb,
                                   MappedRamHeader *hdr, uint64_t *header_end,
                                   GError **errp)
{
    uint8_t buf[MAPPED_RAM_HDR_SIZE];
    size_t got = qemu_get_buffer(f, buf, sizeof(buf));
    off_t pos;

    if (got != sizeof(buf)) {
        error_setg(errp,
                   "Could not read whole mapped-ram migration header "
                   "(expected %zd, got %zd bytes)",
                   (ssize_t)sizeof(buf), (ssize_t)got);
        return false;
    }
    mapped_ram_header_decode(buf, hdr);
    if (hdr->version > MAPPED_RAM_HDR_VERSION) {
        error_setg(errp,
                   "Migration mapped-ram capability version not supported "
                   "(expected <= %d, got %d)",
                   MAPPED_RAM_HDR_VERSION, (int)hdr->version);
        return false;
    }
    if (hdr->page_size != TARGET_PAGE_SIZE) {
        error_setg(errp,
                   "mapped-ram block %s: page size %" PRIu64
                   " does not match the target page size %u",
                   rb->idstr, hdr->page_size, TARGET_PAGE_SIZE);
        return false;
    }
    /* Only page alignment: the 1 MiB the writer uses is its own choice. */
    if (!QEMU_IS_ALIGNED(hdr->pages_offset, TARGET_PAGE_SIZE)) {
        error_setg(errp,
                   "Error reading ramblock %s pages, region has bad alignment",
                   rb->idstr);
        return false;
    }
    pos = qemu_get_offset(f);
    if (pos < 0) {
        qemu_file_get_error_obj(f, errp);
        return false;
    }
    *header_end = pos;
    return true;
}

/*
 * The bitmap lies after the header and before the page area, which lies
 * inside the file (a stream always goes on after the last page area), so
 * a damaged offset is refused before any page is read and the stream
 * position only ever moves forward.
 */
static bool mapped_ram_check_offsets(RAMBlock *rb, const MappedRamHeader *hdr,
                                     uint64_t header_end, uint64_t bitmap_size,
                                     uint64_t file_size, GError **errp)
{
    if (hdr->bitmap_offset < header_end ||
        hdr->bitmap_offset + bitmap_size > hdr->pages_offset) {
        error_setg(
            errp,
            "mapped-ram block %s: bitmap at 0x%" PRIx64 " (0x%" PRIx64
            " bytes) does not lie between its header (ending at 0x%" PRIx64
            ") and its pages at 0x%" PRIx64,
            rb->idstr, hdr->bitmap_offset, bitmap_size, header_end,
            hdr->pages_offset);
        return false;
    }
    if (hdr->pages_offset > INT64_MAX - rb->used_length ||
        (file_size && hdr->pages_offset + rb->used_length > file_size)) {
        error_setg(errp,
                   "mapped-ram block %s: pages at 0x%" PRIx64 " (0x%" PRIx64
                   " bytes) lie beyond the end of the file (0x%" PRIx64
                   " bytes)",
                   rb->idstr, hdr->pages_offset, rb->used_length, file_size);
        return false;
    }
    return true;
}

/* Reads the block's on-disk bitmap (whole 64-bit words) into *bitmap. */
static bool mapped_ram_read_bitmap(QEMUFile *f, RAMBlock *rb,
                                   const MappedRamHeader *hdr,
                                   unsigned long **bitmap, GError **errp)
{
    uint64_t size = mapped_ram_bitmap_size(ramblock_pages(rb));
    size_t alloc = MAX(size, BITS_TO_LONGS(size * 8) * sizeof(unsigned long));
    g_autofree unsigned long *le = g_malloc0(alloc);

    fault_inject_set_phase(FAULT_PHASE_BITMAPS); /* rel */
    if (hdr->bitmap_offset > INT64_MAX - size ||
        qemu_get_buffer_at(f, (uint8_t *)le, size, hdr->bitmap_offset) !=
            size) {
        fault_inject_set_phase(FAULT_PHASE_NONE); /* rel */
        error_setg(errp, "Error reading dirty bitmap");
        return false;
    }
    fault_inject_set_phase(FAULT_PHASE_NONE); /* rel */
    *bitmap = g_malloc0(alloc);
    bitmap_from_le(*bitmap, le, size * 8);
    return true;
}

/* The last word may have bits past the block: they must be clear. */
static bool mapped_ram_check_spare_bits(RAMBlock *rb,
                                        const unsigned long *bitmap,
                                        GError **errp)
{
    uint64_t pages = ramblock_pages(rb);
    uint64_t bits = mapped_ram_bitmap_size(pages) * 8;

    if (find_next_bit(bitmap, bits, pages) < bits) {
        error_setg(errp, "page outside of ramblock %s range", rb->idstr);
        return false;
    }
    return true;
}

/*
 * A block whose backing file already had data (memory-backend-file over an
 * existing file) is not all zero: clear the pages the file leaves clear.
 * Only the file's data extents are looked at, so holes (and fresh memfds)
 * are never faulted in.
 */
static void mapped_ram_clear_unset_pages(RAMBlock *rb,
                                         const unsigned long *bitmap)
{
    off_t pos = 0, len = rb->used_length;

    if (rb->fd < 0) {
        return;
    }
    while (pos < len) {
        off_t data = lseek(rb->fd, pos, SEEK_DATA);
        off_t hole;

        if (data < 0 || data >= len) {
            return; /* ENXIO: no data after pos */
        }
        hole = lseek(rb->fd, data, SEEK_HOLE);
        if (hole < 0 || hole > len) {
            hole = len;
        }
        for (uint64_t page = data >> TARGET_PAGE_BITS;
             page < DIV_ROUND_UP((uint64_t)hole, TARGET_PAGE_SIZE); page++) {
            uint8_t *host = rb->host + (page << TARGET_PAGE_BITS);

            if (!test_bit(page, bitmap) &&
                !buffer_is_zero(host, TARGET_PAGE_SIZE)) {
                memset(host, 0, TARGET_PAGE_SIZE);
            }
        }
        pos = hole;
    }
}

void mapped_ram_zero_holes(const MappedRamExtent *e)
{
    size_t pages = e->len >> TARGET_PAGE_BITS;

    if (!e->has_holes) {
        return;
    }
    for (size_t i = find_first_bit(e->holes, pages); i < pages;
         i = find_next_bit(e->holes, pages, i + 1)) {
        uint8_t *host = e->host + (i << TARGET_PAGE_BITS);

        /* A hole in the file reads as zeros: most of them need no write. */
        if (!buffer_is_zero(host, TARGET_PAGE_SIZE)) {
            memset(host, 0, TARGET_PAGE_SIZE);
        }
    }
}

/*
 * The reader without multifd: the main channel (buffered: it never uses
 * O_DIRECT), one synchronous read per extent, then the extent's holes.
 * (Asking the kernel to read ahead with POSIX_FADV_WILLNEED and dropping
 * what was read with POSIX_FADV_DONTNEED measured slower: 4.63 s against
 * 2.62 s for a 2 GiB guest, docs/devel/benchmarks.md.)
 */
static int mapped_ram_read_main(void *opaque, const MappedRamExtent *e,
                                GError **errp)
{
    return mapped_ram_read_extent(opaque, e, errp);
}

int mapped_ram_read_extent(QIOChannel *ioc, const MappedRamExtent *e,
                           GError **errp)
{
    if (qio_channel_pread_all(ioc, e->host, e->len, e->file_offset, errp) < 0) {
        error_prepend(errp,
                      "(%s) failed to read page 0x%" PRIx64
                      " from file offset 0x%" PRIx64 ": ",
                      e->rb->idstr, (uint64_t)(e->host - e->rb->host),
                      e->file_offset);
        return -1;
    }
    mapped_ram_zero_holes(e);
    return 0;
}

/*
 * The end (exclusive) of the extent that starts at set bit first: runs of
 * set bits joined across gaps of at most MAPPED_RAM_LOAD_GAP_PAGES clear
 * bits, at most MAPPED_RAM_LOAD_MAX_PAGES in all. Its last page is set.
 */
static uint64_t mapped_ram_extent_end(const unsigned long *bitmap,
                                      uint64_t pages, uint64_t first)
{
    uint64_t limit = MIN(pages, first + MAPPED_RAM_LOAD_MAX_PAGES);
    uint64_t end = find_next_zero_bit(bitmap, limit, first + 1);

    while (end < limit) {
        uint64_t next = find_next_bit(bitmap, limit, end + 1);

        if (next >= limit || next - end > MAPPED_RAM_LOAD_GAP_PAGES) {
            break;
        }
        end = find_next_zero_bit(bitmap, limit, next + 1);
    }
    return end;
}

/*
 * Every page whose bit is set, in extents (see mapped_ram_extent_end);
 * each extent lists the clear-bit pages it covers, which its reader zeroes
 * after the read.
 */
static int mapped_ram_read_pages(RAMBlock *rb, const unsigned long *bitmap,
                                 uint64_t pages_offset, MappedRamReadFn read_fn,
                                 void *opaque, GError **errp)
{
    uint64_t pages = ramblock_pages(rb);
    uint64_t first = find_first_bit(bitmap, pages);
    MappedRamExtent e = {.rb = rb};

    while (first < pages) {
        uint64_t end = mapped_ram_extent_end(bitmap, pages, first);
        uint64_t offset = first << TARGET_PAGE_BITS;
        uint64_t n = end - first;

        e.host = rb->host + offset;
        e.len = n << TARGET_PAGE_BITS;
        e.file_offset = pages_offset + offset;
        e.has_holes = false;
        bitmap_zero(e.holes, MAPPED_RAM_LOAD_MAX_PAGES);
        for (uint64_t gap = find_next_zero_bit(bitmap, end, first); gap < end;
             gap = find_next_zero_bit(bitmap, end, gap + 1)) {
            set_bit(gap - first, e.holes);
            e.has_holes = true;
        }
        if (read_fn(opaque, &e, errp) < 0) {
            return -EIO;
        }
        first = find_next_bit(bitmap, pages, end);
    }
    return 0;
}

int mapped_ram_load_block_with(QEMUFile *f, RAMBlock *rb,
                               MappedRamReadFn read_fn, void *opaque,
                               GError **errp)
{
    uint64_t bitmap_size = mapped_ram_bitmap_size(ramblock_pages(rb));
    g_autofree unsigned long *bitmap = NULL;
    MappedRamHeader hdr;
    uint64_t header_end;
    int ret;

    if (!mapped_ram_read_header(f, rb, &hdr, &header_end, errp) ||
        !mapped_ram_read_bitmap(f, rb, &hdr, &bitmap, errp) ||
        !mapped_ram_check_offsets(rb, &hdr, header_end, bitmap_size,
                                  mapped_ram_file_size(qemu_file_get_ioc(f)),
                                  errp) ||
        !mapped_ram_check_spare_bits(rb, bitmap, errp)) {
        return -EINVAL;
    }
    mapped_ram_clear_unset_pages(rb, bitmap);
    ret = mapped_ram_read_pages(rb, bitmap, hdr.pages_offset, read_fn, opaque,
                                errp);
    if (ret < 0) {
        return ret;
    }
    /* The stream goes on after the block's page area. */
    qemu_set_offset(f, hdr.pages_offset + rb->used_length, SEEK_SET);
    return qemu_file_get_error_obj(f, errp);
}

int mapped_ram_load_block(QEMUFile *f, RAMBlock *rb, GError **errp)
{
    return mapped_ram_load_block_with(f, rb, mapped_ram_read_main,
                                      qemu_file_get_ioc(f), errp);
}
