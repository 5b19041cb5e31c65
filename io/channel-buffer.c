/*
 * An in-memory channel (see include/io/channel-buffer.h), for unit tests and
 * fuzzers: they build or load a whole stream without touching the disk.
 *
 * The bytes survive close(): a test may close the stream (as qemu_fclose
 * does) and then inspect data/usage; they are freed with the last reference.
 * A static channel reads caller-owned bytes and refuses every write.
 */
#include "qemu/osdep.h"
#include "io/channel-buffer.h"

static const QIOChannelClass buffer_class;
static const QIOChannelClass buffer_static_class;

static QIOChannelBuffer *to_buffer(QIOChannel *ioc)
{
    return container_of(ioc, QIOChannelBuffer, parent);
}

static size_t iov_total(const struct iovec *iov, size_t niov)
{
    size_t total = 0;
    size_t i;

    for (i = 0; i < niov; i++) {
        total += iov[i].iov_len;
    }
    return total;
}

/* Copies from the buffer at pos into iov; returns bytes copied (0 at EOF). */
static size_t buffer_copy_out(QIOChannelBuffer *bioc, size_t pos,
                              const struct iovec *iov, size_t niov)
{
    size_t done = 0;
    size_t i;

    for (i = 0; i < niov && pos < bioc->usage; i++) {
        size_t n = MIN(iov[i].iov_len, bioc->usage - pos);

        memcpy(iov[i].iov_base, bioc->data + pos, n);
        pos += n;
        done += n;
    }
    return done;
}

/* Copies iov into the buffer at pos, growing it; -1 + errp on overflow. */
static ssize_t buffer_copy_in(QIOChannelBuffer *bioc, size_t pos,
                              const struct iovec *iov, size_t niov,
                              GError **errp)
{
    QIOChannel *ioc = &bioc->parent;
    size_t len = iov_total(iov, niov);
    size_t end = pos + len;
    size_t i;

    if (ioc->klass == &buffer_static_class) {
        error_setg(errp, "Channel '%s' is read-only", ioc->name);
        return -1;
    }
    if (end < pos || end > SSIZE_MAX) {
        error_setg(errp, "Channel '%s': write of %zu bytes at %zu overflows",
                   ioc->name, len, pos);
        return -1;
    }
    if (end > bioc->capacity) {
        size_t cap = MAX(bioc->capacity, 4096);

        /* Doubling keeps a stream of small writes linear overall. */
        while (cap < end) {
            cap = cap > SIZE_MAX / 2 ? end : cap * 2;
        }
        bioc->data = g_realloc(bioc->data, cap);
        bioc->capacity = cap;
    }
    if (pos > bioc->usage) {
        /* A write past the end leaves a hole that reads back as zeros. */
        memset(bioc->data + bioc->usage, 0, pos - bioc->usage);
    }
    for (i = 0; i < niov; i++) {
        memcpy(bioc->data + pos, iov[i].iov_base, iov[i].iov_len);
        pos += iov[i].iov_len;
    }
    bioc->usage = MAX(bioc->usage, end);
    return len;
}

static ssize_t buffer_readv(QIOChannel *ioc, const struct iovec *iov,
                            size_t niov, int **fds, size_t *nfds, GError **errp)
{
    QIOChannelBuffer *bioc = to_buffer(ioc);
    size_t n = buffer_copy_out(bioc, bioc->offset, iov, niov);

    bioc->offset += n;
    return n;
}

static ssize_t buffer_writev(QIOChannel *ioc, const struct iovec *iov,
                             size_t niov, const int *fds, size_t nfds,
                             GError **errp)
{
    QIOChannelBuffer *bioc = to_buffer(ioc);
    ssize_t n = buffer_copy_in(bioc, bioc->offset, iov, niov, errp);

    if (n > 0) {
        bioc->offset += n;
    }
    return n;
}

static ssize_t buffer_preadv(QIOChannel *ioc, const struct iovec *iov,
                             size_t niov, off_t offset, GError **errp)
{
    if (offset < 0) {
        error_setg(errp, "Channel '%s': negative offset %lld", ioc->name,
                   (long long)offset);
        return -1;
    }
    return buffer_copy_out(to_buffer(ioc), offset, iov, niov);
}

static ssize_t buffer_pwritev(QIOChannel *ioc, const struct iovec *iov,
                              size_t niov, off_t offset, GError **errp)
{
    if (offset < 0) {
        error_setg(errp, "Channel '%s': negative offset %lld", ioc->name,
                   (long long)offset);
        return -1;
    }
    return buffer_copy_in(to_buffer(ioc), offset, iov, niov, errp);
}

static off_t buffer_seek(QIOChannel *ioc, off_t offset, int whence,
                         GError **errp)
{
    QIOChannelBuffer *bioc = to_buffer(ioc);
    off_t base;

    switch (whence) {
    case SEEK_SET:
        base = 0;
        break;
    case SEEK_CUR:
        base = bioc->offset;
        break;
    case SEEK_END:
        base = bioc->usage;
        break;
    default:
        error_setg(errp, "Channel '%s': bad seek mode %d", ioc->name, whence);
        return -1;
    }
    if ((offset < 0 && base + offset < 0) ||
        (offset > 0 && offset > (off_t)(SSIZE_MAX - base))) {
        error_setg(errp, "Channel '%s': cannot seek to %lld from %lld",
                   ioc->name, (long long)offset, (long long)base);
        return -1;
    }
    bioc->offset = base + offset;
    return bioc->offset;
}

static void buffer_finalize(QIOChannel *ioc)
{
    QIOChannelBuffer *bioc = to_buffer(ioc);

    if (ioc->klass == &buffer_class) {
        g_free(bioc->data);
    }
    bioc->data = NULL;
}

static const QIOChannelClass buffer_class = {
    .type_name = "buffer",
    .io_readv = buffer_readv,
    .io_writev = buffer_writev,
    .io_preadv = buffer_preadv,
    .io_pwritev = buffer_pwritev,
    .io_seek = buffer_seek,
    .finalize = buffer_finalize,
};

/* Same operations; the class identity marks the bytes as not ours. */
static const QIOChannelClass buffer_static_class = {
    .type_name = "buffer",
    .io_readv = buffer_readv,
    .io_writev = buffer_writev,
    .io_preadv = buffer_preadv,
    .io_pwritev = buffer_pwritev,
    .io_seek = buffer_seek,
    .finalize = buffer_finalize,
};

QIOChannelBuffer *qio_channel_buffer_new(size_t capacity)
{
    QIOChannelBuffer *bioc = g_new0(QIOChannelBuffer, 1);

    qio_channel_init(&bioc->parent, &buffer_class);
    qio_channel_set_feature(&bioc->parent, QIO_CHANNEL_FEATURE_SEEKABLE);
    if (capacity) {
        bioc->data = g_malloc(capacity);
        bioc->capacity = capacity;
    }
    return bioc;
}

QIOChannelBuffer *qio_channel_buffer_new_static(const void *data, size_t len)
{
    QIOChannelBuffer *bioc = g_new0(QIOChannelBuffer, 1);

    qio_channel_init(&bioc->parent, &buffer_static_class);
    qio_channel_set_feature(&bioc->parent, QIO_CHANNEL_FEATURE_SEEKABLE);
    /* Never written through: buffer_copy_in refuses static channels. */
    bioc->data = (uint8_t *)data;
    bioc->capacity = len;
    bioc->usage = len;
    return bioc;
}
