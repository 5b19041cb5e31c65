/*
 * multifd over a file: with mapped-ram (stream-format.md sections 3 and
 * 4). No packets: every page has a fixed slot in the file, so a channel
 * just writes its pages there through a descriptor of its own, and the
 * file comes out the same whichever channel wrote which page, and however
 * many there were.
 *
 * Out: a channel opens the migration's path again (qemu_open, so an fdset
 * path works; O_WRONLY without O_TRUNC: the main channel created the file
 * and owns its size), drops zero pages (clearing their file-bitmap bits),
 * writes each contiguous run of the others with one pwritev at
 * pages_offset + offset, and sets their bits. The bitmap words are shared
 * with the other channels, hence atomic bit operations. mapped-ram.c lays
 * out the blocks and writes the bitmaps at completion.
 *
 * In: mapped-ram.c's loader parses headers and bitmaps on the main thread
 * and hands every run (at most 1 MiB) to multifd_file_read(), which queues
 * it for an idle channel; the channel preadv()s it into guest RAM.
 */
#include "qemu/osdep.h"

#include "io/channel-file.h"
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

static int file_open(MultiFDSendChannel *c, QIOChannel **ioc, GError **errp)
{
    *ioc = file_channel_open(multifd_send_file_path(), O_WRONLY, c->id, errp);
    return *ioc ? 0 : -1;
}

static int file_send_batch(MultiFDSendChannel *c, const MultiFDBatch *b,
                           GError **errp)
{
    RAMBlock *rb = b->rb;
    size_t niov = 0;

    multifd_send_classify(c, b);
    for (uint32_t i = 0; i < c->num_zero; i++) {
        /* Whatever an earlier pass left in the slot is never read. */
        clear_bit_atomic(c->zero[i] >> TARGET_PAGE_BITS, rb->file_bmap);
    }
    /* One piece per run of neighbouring pages: one pwritev each. */
    for (uint32_t i = 0; i < c->num_normal; i++) {
        uint8_t *host = rb->host + c->normal[i];

        if (niov &&
            (uint8_t *)c->iov[niov - 1].iov_base + c->iov[niov - 1].iov_len ==
                host) {
            c->iov[niov - 1].iov_len += TARGET_PAGE_SIZE;
        } else {
            c->iov[niov].iov_base = host;
            c->iov[niov].iov_len = TARGET_PAGE_SIZE;
            niov++;
        }
    }
    /* dio: one check per run, the transfers O_DIRECT will see */
    for (size_t i = 0; i < niov && direct_io_flag(); i++) {
        uint8_t *base = c->iov[i].iov_base;

        if (!dio_transfer_ok(base, c->iov[i].iov_len,
                             b->pages_offset + (base - rb->host), errp)) {
            return -1;
        }
    }
    if (niov && qio_channel_pwritev_region(c->ioc, c->iov, niov, rb->host,
                                           b->pages_offset, errp) < 0) {
        return -1;
    }
    for (size_t i = 0; i < niov; i++) {
        uint64_t first =
            ((uint8_t *)c->iov[i].iov_base - rb->host) >> TARGET_PAGE_BITS;

        bitmap_set_atomic(rb->file_bmap, first,
                          c->iov[i].iov_len >> TARGET_PAGE_BITS);
    }
    multifd_send_account(c, (uint64_t)c->num_normal * TARGET_PAGE_SIZE);
    return 0;
}

const MultiFDSendOps multifd_file_send_ops = {
    .name = "file",
    .open = file_open,
    .send_batch = file_send_batch,
    /* A sync is the migration thread waiting for idle channels. */
    .send_sync = NULL,
};

/* --- receive --- */

int multifd_file_recv_open(MultiFDRecvChannel *c, GError **errp)
{
    g_autofree char *path = multifd_incoming_file();

    c->ioc = file_channel_open(path, O_RDONLY, c->id, errp);
    return c->ioc ? 0 : -1;
}

int multifd_file_recv_read(MultiFDRecvChannel *c, const MultiFDReadJob *job,
                           GError **errp)
{
    if (direct_io_flag() &&
        !dio_transfer_ok(job->host, job->len, job->file_offset, errp)) {
        return -1;
    }
    if (qio_channel_pread_all(c->ioc, job->host, job->len, job->file_offset,
                              errp) < 0) {
        error_prepend(errp,
                      "(%s) failed to read page 0x%" PRIx64
                      " from file offset 0x%" PRIx64 ": ",
                      job->rb->idstr, (uint64_t)(job->host - job->rb->host),
                      job->file_offset);
        return -1;
    }
    multifd_channel_account(c->stats, job->len, job->len >> TARGET_PAGE_BITS);
    return 0;
}

/* mapped-ram.c's reader: the run goes to an idle channel. */
static int multifd_file_read(void *opaque, RAMBlock *rb, uint8_t *host,
                             size_t len, uint64_t file_offset, GError **errp)
{
    MultiFDReadJob job = {
        .rb = rb,
        .host = host,
        .len = len,
        .file_offset = file_offset,
    };

    return multifd_recv_queue_read(&job, errp);
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
