/*
 * multifd over a file: with mapped-ram (stream-format.md sections 3 and
 * 4). No packets: every page has a fixed slot in the file, so a channel
 * just writes its pages there through a descriptor of its own, and the
 * file comes out the same whichever channel wrote which page, and however
 * many there were.
 *
 * Out: a channel opens the migration's path again (qemu_open, so an fdset
 * path works; O_WRONLY without O_TRUNC: the main channel created the file
 * and owns its size). A batch spans up to 2 MiB of one block
 * (MULTIFD_FILE_BATCH_MAX_PAGES); the channel finds its zero pages
 * (clearing their file-bitmap bits; a gap short enough to be joined is not
 * proved zero, see zero-pages.h, and counts as content), joins the pages
 * with content into runs (mapped_ram_join_runs()), and writes each run
 * with one positioned write at pages_offset + offset, then sets the bits
 * of the pages with content. The bitmap words are shared with the
 * other channels, hence atomic bit operations. mapped-ram.c lays out the
 * blocks and writes the bitmaps at completion.
 *
 * In: mapped-ram.c's loader parses headers and bitmaps on the main thread
 * and hands every extent (at most 4 MiB of runs of set bits joined across
 * small gaps) to multifd_file_read(), which prefaults its guest RAM and
 * queues it; MULTIFD_FILE_READERS_PER_CHANNEL reader threads per channel
 * take jobs from that queue, preadv() each into guest RAM and zero the
 * clear-bit pages it covered.
 */
#include "qemu/osdep.h"

#include "io/channel-file.h"
#include "io/pio-queue.h"
#include "migration/mapped-ram.h"
#include "migration/multifd.h"
#include "migration/options.h"
#include "qemu/bitmap.h"
#include "qemu/dio.h"    /* dio */
#include "qemu/fdopen.h" /* dio */

/* O_DIRECT for the channels (never the main one) when direct-io is on. */
static int direct_io_flag(void)
{
#ifdef O_DIRECT
    return migrate_direct_io() ? O_DIRECT : 0;
#else
    return 0;
#endif
}

static QIOChannel *file_channel_open(const char *path, int flags, int id,
                                     GError **errp)
{
    g_autofree char *name = NULL;
    QIOChannelFile *fioc;

    if (!path) {
        error_setg(errp, "multifd over a file needs a file: URI");
        return NULL;
    }
    if (direct_io_flag()) {
        /*
         * dio: every transfer of a channel is whole guest pages (page-aligned
         * RAM, page-multiple lengths, slots at page-aligned offsets), so a
         * file system that needs more than a page is refused here.
         */
        int fd = qemu_open_direct(path, flags, 0, TARGET_PAGE_SIZE, NULL, errp);

        if (fd < 0) {
            return NULL;
        }
        fioc = qio_channel_file_new_fd(fd);
    } else {
        fioc = qio_channel_file_new_path(path, flags, 0, errp);
        if (!fioc) {
            return NULL;
        }
    }
    name = g_strdup_printf("multifd-file-%d", id);
    qio_channel_set_name(QIO_CHANNEL(fioc), name);
    return QIO_CHANNEL(fioc);
}

/*
 * dio: the guard that no unaligned transfer reaches an O_DIRECT descriptor
 * (the kernel would fail it with a bare EINVAL). Page granularity is what
 * file_channel_open() checked the file system against.
 */
static bool dio_transfer_ok(const void *buf, size_t len, uint64_t offset,
                            GError **errp)
{
    if (((uintptr_t)buf | len | offset) & (TARGET_PAGE_SIZE - 1)) {
        error_setg(errp,
                   "direct-io transfer of %zu bytes at file offset 0x%" PRIx64
                   " from %p is not aligned to %u bytes",
                   len, offset, buf, TARGET_PAGE_SIZE);
        return false;
    }
    return true;
}

int multifd_file_send_check(GError **errp)
{
    g_autofree char *path = NULL;
    int fd;

    if (!migrate_multifd() || !migrate_mapped_ram() || !direct_io_flag()) {
        return 0;
    }
    path = multifd_outgoing_file();
    if (!path) {
        return 0; /* not file: (the transport checks refused the rest) */
    }
    /* The channels open it the same way; fail before anything is written. */
    fd = qemu_open_direct(path, O_WRONLY, 0, TARGET_PAGE_SIZE, NULL, errp);
    if (fd < 0) {
        return -1;
    }
    qemu_close(fd);
    return 0;
}

int multifd_file_recv_check(GError **errp)
{
    g_autofree char *path = NULL;
    int fd;

    if (!migrate_multifd() || !migrate_mapped_ram() || !direct_io_flag()) {
        return 0;
    }
    path = multifd_incoming_file();
    if (!path) {
        return 0;
    }
    fd = qemu_open_direct(path, O_RDONLY, 0, TARGET_PAGE_SIZE, NULL, errp);
    if (fd < 0) {
        return -1;
    }
    qemu_close(fd);
    return 0;
}

/* --- send --- */

/*
 * direct-io: writes of one batch in flight at once per channel
 * (io/pio-queue.c), or MINIVM_MULTIFD_FILE_QUEUE_DEPTH (1: one synchronous
 * pwrite at a time, the fallback; a benchmarking knob). An O_DIRECT write
 * waits for the device, so depth is what keeps the disk busy. A buffered
 * write is a copy into the page cache that never waits for the device
 * (the fsync at close does), so buffered channels write synchronously:
 * io_uring would only hand each copy to a kernel worker (measured in
 * docs/devel/benchmarks.md).
 */
#define FILE_QUEUE_DEPTH_DEFAULT 32

static unsigned file_queue_depth(void)
{
    const char *env = g_getenv("MINIVM_MULTIFD_FILE_QUEUE_DEPTH");
    guint64 value;

    if (env && g_ascii_string_to_unsigned(env, 10, 1, QIO_PIO_QUEUE_MAX_DEPTH,
                                          &value, NULL)) {
        return value;
    }
    return FILE_QUEUE_DEPTH_DEFAULT;
}

/* Buffered channels: bytes since the last writeback kick (per thread). */
static __thread uint64_t file_writeback_pending;

static int file_open(MultiFDSendChannel *c, QIOChannel **ioc, GError **errp)
{
    unsigned depth = direct_io_flag() ? file_queue_depth() : 1;

    *ioc = file_channel_open(multifd_send_file_path(), O_WRONLY, c->id, errp);
    if (!*ioc) {
        return -1;
    }
    file_writeback_pending = 0;
    /* io_uring when the kernel has it; synchronous pwrite when not. */
    c->transport_state = qio_pio_queue_new(
        *ioc, depth, depth > 1 ? QIO_PIO_ENGINE_AUTO : QIO_PIO_ENGINE_SYNC,
        errp);
    if (!c->transport_state) {
        qio_channel_unref(*ioc);
        *ioc = NULL;
        return -1;
    }
    return 0;
}

static void file_release(MultiFDSendChannel *c)
{
    qio_pio_queue_free(c->transport_state);
    c->transport_state = NULL;
}

static int file_send_batch(MultiFDSendChannel *c, const MultiFDBatch *b,
                           GError **errp)
{
    RAMBlock *rb = b->rb;
    uint32_t join = mapped_ram_join_gap_pages();
    uint64_t written = 0;
    size_t niov;

    multifd_send_classify(c, b, join);
    for (uint32_t i = 0; i < c->num_zero; i++) {
        /* Whatever an earlier pass left in the slot is never read. */
        clear_bit_atomic(c->zero[i] >> TARGET_PAGE_BITS, rb->file_bmap);
    }
    niov = mapped_ram_join_runs(rb->host, c->normal, c->num_normal, c->zero,
                                c->num_zero, join, c->iov);
    for (size_t i = 0; i < niov; i++) {
        uint8_t *base = c->iov[i].iov_base;

        /* dio: one check per run, the transfers O_DIRECT will see */
        if (direct_io_flag() &&
            !dio_transfer_ok(base, c->iov[i].iov_len,
                             b->pages_offset + (base - rb->host), errp)) {
            return -1;
        }
        written += c->iov[i].iov_len;
    }
    /*
     * One positioned write per piece, up to the queue's depth in flight;
     * all of them done before the channel says it is idle, which is what
     * a sync point waits for.
     */
    for (size_t i = 0; i < niov; i++) {
        uint8_t *base = c->iov[i].iov_base;

        if (qio_pio_queue_pwrite(c->transport_state, base, c->iov[i].iov_len,
                                 b->pages_offset + (base - rb->host),
                                 errp) < 0) {
            qio_pio_queue_drain(c->transport_state, NULL);
            return -1;
        }
    }
    if (qio_pio_queue_drain(c->transport_state, errp) < 0) {
        return -1;
    }
    if (!direct_io_flag()) {
        mapped_ram_writeback_kick(qio_channel_get_fd(c->ioc, G_IO_OUT), written,
                                  &file_writeback_pending);
    }
    /* A joined page proved zero keeps its bit clear. */
    for (uint32_t i = 0; i < c->num_normal; i++) {
        set_bit_atomic(c->normal[i] >> TARGET_PAGE_BITS, rb->file_bmap);
    }
    multifd_send_account(c, written);
    return 0;
}

const MultiFDSendOps multifd_file_send_ops = {
    .name = "file",
    .open = file_open,
    .send_batch = file_send_batch,
    /* A sync is the migration thread waiting for idle channels. */
    .send_sync = NULL,
    .release = file_release,
};

/* --- receive --- */

int multifd_file_recv_open(MultiFDRecvChannel *c, GError **errp)
{
    g_autofree char *path = multifd_incoming_file();

    c->ioc = file_channel_open(path, O_RDONLY, c->id, errp);
    return c->ioc ? 0 : -1;
}

/*
 * One reader thread of c: the extent's bytes, then its clear-bit pages
 * made zero (the read may have brought stale bytes into them).
 */
int multifd_file_recv_read(MultiFDRecvChannel *c, const MultiFDReadJob *job,
                           GError **errp)
{
    if (direct_io_flag() &&
        !dio_transfer_ok(job->host, job->len, job->file_offset, errp)) {
        return -1;
    }
    if (mapped_ram_read_extent(c->ioc, job, errp) < 0) {
        return -1;
    }
    multifd_channel_account(c->stats, job->len, job->len >> TARGET_PAGE_BITS);
    return 0;
}

/* mapped-ram.c's reader: the extent is queued for the channels' readers. */
static int multifd_file_read(void *opaque, const MappedRamExtent *e,
                             GError **errp)
{
    return multifd_recv_queue_read(e, errp);
}

int multifd_file_load_block(QEMUFile *f, RAMBlock *rb, GError **errp)
{
    if (multifd_recv_file_setup(errp) < 0) {
        return -EIO;
    }
    return mapped_ram_load_block_with(f, rb, multifd_file_read, NULL, errp);
}

int multifd_file_load_wait(GError **errp)
{
    return multifd_recv_wait_reads(errp) < 0 ? -EIO : 0;
}
