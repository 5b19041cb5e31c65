/*
 * The generic half of QIOChannel (see include/io/channel.h): reference
 * counting, feature checks, and the loops that turn one short transport
 * call into "all of it" — partial transfers, non-blocking waits, positioned
 * I/O and the discontiguous region writes of mapped-ram.
 *
 * Transports (io/channel-*.c) allocate a struct whose first member is the
 * QIOChannel, call qio_channel_init(), and provide a class. When the last
 * reference goes, the channel is closed if still open, the class's
 * finalize() releases the transport's own resources, and this file
 * g_free()s the object.
 *
 * The *_all loops run per batch on the migration paths, so they do not
 * allocate unless the caller passes more than IOV_LOCAL_MAX pieces.
 */
#include "qemu/osdep.h"
#include "io/channel.h"
#include "qemu/fault-inject.h" /* rel */

#include <glib-unix.h>
#include <poll.h>

/* Pieces an I/O vector may have before the cursor copy goes to the heap. */
#define IOV_LOCAL_MAX 64

void qio_channel_init(QIOChannel *ioc, const QIOChannelClass *klass)
{
    ioc->klass = klass;
    ioc->features = 0;
    ioc->refcount = 1;
    ioc->closed = false;
    ioc->name = g_strdup(klass->type_name);
}

QIOChannel *qio_channel_ref(QIOChannel *ioc)
{
    g_atomic_int_inc(&ioc->refcount);
    return ioc;
}

void qio_channel_unref(QIOChannel *ioc)
{
    if (!ioc || !g_atomic_int_dec_and_test(&ioc->refcount)) {
        return;
    }
    if (!ioc->closed) {
        /* Nobody is left to hear about a close error. */
        qio_channel_close(ioc, NULL);
    }
    if (ioc->klass->finalize) {
        ioc->klass->finalize(ioc);
    }
    g_free(ioc->name);
    g_free(ioc);
}

bool qio_channel_has_feature(QIOChannel *ioc, QIOChannelFeature feature)
{
    return (ioc->features & feature) != 0;
}

void qio_channel_set_feature(QIOChannel *ioc, QIOChannelFeature feature)
{
    ioc->features |= feature;
}

void qio_channel_set_name(QIOChannel *ioc, const char *name)
{
    g_free(ioc->name);
    ioc->name = g_strdup(name ? name : ioc->klass->type_name);
}

static bool check_open(QIOChannel *ioc, GError **errp)
{
    if (ioc->closed) {
        error_setg(errp, "Channel '%s' is closed", ioc->name);
        return false;
    }
    return true;
}

/* --- rel: fault injection (debug only; see qemu/fault-inject.h) --- */

typedef enum {
    FAULT_OP_READV,
    FAULT_OP_WRITEV,
    FAULT_OP_PREADV,
    FAULT_OP_PWRITEV,
} FaultOp;

/*
 * One transport call with the armed fault applied: refused, answered with
 * "nothing moved", or made with iov cut down to what may still go through.
 * Reached only while a fault is armed, so it may allocate.
 */
static ssize_t fault_transport_call(QIOChannel *ioc, FaultOp op,
                                    const struct iovec *iov, size_t niov,
                                    off_t offset, int **fds, size_t *nfds,
                                    const int *wfds, size_t wnfds,
                                    GError **errp)
{
    bool write = op == FAULT_OP_WRITEV || op == FAULT_OP_PWRITEV;
    g_autofree struct iovec *cut = NULL;
    size_t total = 0, len;

    for (size_t i = 0; i < niov; i++) {
        total += iov[i].iov_len;
    }
    len = total;
    switch (fault_inject_io(ioc->name, write, &len, errp)) {
    case FAULT_IO_FAIL:
        return -1;
    case FAULT_IO_NOTHING:
        return 0;
    case FAULT_IO_PASS:
        break;
    }
    if (len < total) {
        size_t n = 0;

        cut = g_new(struct iovec, niov);
        while (len > 0) {
            cut[n] = iov[n];
            cut[n].iov_len = MIN(cut[n].iov_len, len);
            len -= cut[n].iov_len;
            n++;
        }
        iov = cut;
        niov = n;
    }
    switch (op) {
    case FAULT_OP_READV:
        return ioc->klass->io_readv(ioc, iov, niov, fds, nfds, errp);
    case FAULT_OP_WRITEV:
        return ioc->klass->io_writev(ioc, iov, niov, wfds, wnfds, errp);
    case FAULT_OP_PREADV:
        return ioc->klass->io_preadv(ioc, iov, niov, offset, errp);
    default:
        return ioc->klass->io_pwritev(ioc, iov, niov, offset, errp);
    }
}
/* --- rel: end --- */

ssize_t qio_channel_readv_full(QIOChannel *ioc, const struct iovec *iov,
                               size_t niov, int **fds, size_t *nfds,
                               GError **errp)
{
    if (fds) {
        *fds = NULL;
        *nfds = 0;
    }
    if (!check_open(ioc, errp)) {
        return -1;
    }
    if (fds && !qio_channel_has_feature(ioc, QIO_CHANNEL_FEATURE_FD_PASS)) {
        error_setg(errp,
                   "Channel '%s' does not support file descriptor passing",
                   ioc->name);
        return -1;
    }
    if (fault_inject_active()) { /* rel */
        return fault_transport_call(ioc, FAULT_OP_READV, iov, niov, 0, fds,
                                    nfds, NULL, 0, errp);
    }
    return ioc->klass->io_readv(ioc, iov, niov, fds, nfds, errp);
}

ssize_t qio_channel_writev_full(QIOChannel *ioc, const struct iovec *iov,
                                size_t niov, const int *fds, size_t nfds,
                                GError **errp)
{
    if (!check_open(ioc, errp)) {
        return -1;
    }
    if (nfds && !qio_channel_has_feature(ioc, QIO_CHANNEL_FEATURE_FD_PASS)) {
        error_setg(errp,
                   "Channel '%s' does not support file descriptor passing",
                   ioc->name);
        return -1;
    }
    if (fault_inject_active()) { /* rel */
        return fault_transport_call(ioc, FAULT_OP_WRITEV, iov, niov, 0, NULL,
                                    NULL, fds, nfds, errp);
    }
    return ioc->klass->io_writev(ioc, iov, niov, fds, nfds, errp);
}

ssize_t qio_channel_read(QIOChannel *ioc, void *buf, size_t len, GError **errp)
{
    struct iovec iov = {.iov_base = buf, .iov_len = len};

    return qio_channel_readv_full(ioc, &iov, 1, NULL, NULL, errp);
}

ssize_t qio_channel_write(QIOChannel *ioc, const void *buf, size_t len,
                          GError **errp)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};

    return qio_channel_writev_full(ioc, &iov, 1, NULL, 0, errp);
}

/*
 * A position inside an I/O vector. It reads the caller's array in place and
 * copies it (to the stack, or the heap past IOV_LOCAL_MAX pieces) only when
 * a transfer ends in the middle of a piece, because then the first piece
 * must be trimmed.
 */
typedef struct {
    const struct iovec *iov;
    size_t niov;
    size_t remaining; /* bytes left to move */
    struct iovec *copy;
    struct iovec local[IOV_LOCAL_MAX];
} IOVCursor;

static void iov_cursor_skip_empty(IOVCursor *c)
{
    while (c->niov && !c->iov[0].iov_len) {
        c->iov++;
        c->niov--;
    }
}

static void iov_cursor_init(IOVCursor *c, const struct iovec *iov, size_t niov)
{
    size_t i;

    c->iov = iov;
    c->niov = niov;
    c->remaining = 0;
    c->copy = NULL;
    for (i = 0; i < niov; i++) {
        c->remaining += iov[i].iov_len;
    }
    iov_cursor_skip_empty(c);
}

static void iov_cursor_advance(IOVCursor *c, size_t bytes)
{
    struct iovec *first;

    c->remaining -= bytes;
    while (bytes && bytes >= c->iov[0].iov_len) {
        bytes -= c->iov[0].iov_len;
        c->iov++;
        c->niov--;
    }
    if (bytes) {
        if (!c->copy) {
            /* First partial piece: take a writable copy of what is left. */
            c->copy = c->niov <= IOV_LOCAL_MAX ? c->local
                                               : g_new(struct iovec, c->niov);
            memcpy(c->copy, c->iov, c->niov * sizeof(struct iovec));
            c->iov = c->copy;
        }
        /* c->iov now points into our copy, so it may be trimmed. */
        first = (struct iovec *)c->iov;
        first->iov_base = (uint8_t *)first->iov_base + bytes;
        first->iov_len -= bytes;
    }
    iov_cursor_skip_empty(c);
}

static void iov_cursor_cleanup(IOVCursor *c)
{
    if (c->copy && c->copy != c->local) {
        g_free(c->copy);
    }
    c->copy = NULL;
}

/* Wait until the channel's fd is ready for cond (non-blocking mode). */
static void qio_channel_wait(QIOChannel *ioc, GIOCondition cond)
{
    struct pollfd pfd = {
        .fd = qio_channel_get_fd(ioc, cond),
        .events = cond == G_IO_IN ? POLLIN : POLLOUT,
    };

    if (pfd.fd < 0) {
        /* Nothing to poll (memory channels never block): just yield. */
        g_thread_yield();
        return;
    }
    /* Errors and hang-ups show up in the retried transfer itself. */
    RETRY_ON_EINTR(poll(&pfd, 1, -1));
}

int qio_channel_readv_all_eof(QIOChannel *ioc, const struct iovec *iov,
                              size_t niov, GError **errp)
{
    IOVCursor c;
    bool partial = false;
    int ret = 1;

    iov_cursor_init(&c, iov, niov);
    while (c.remaining) {
        ssize_t n =
            qio_channel_readv_full(ioc, c.iov, c.niov, NULL, NULL, errp);

        if (n == QIO_CHANNEL_ERR_BLOCK) {
            qio_channel_wait(ioc, G_IO_IN);
            continue;
        }
        if (n < 0) {
            ret = -1;
            break;
        }
        if (n == 0) {
            if (partial) {
                error_setg(errp,
                           "Unexpected end-of-file on channel '%s' before "
                           "all data were read",
                           ioc->name);
                ret = -1;
            } else {
                ret = 0;
            }
            break;
        }
        partial = true;
        iov_cursor_advance(&c, n);
    }
    iov_cursor_cleanup(&c);
    return ret;
}

int qio_channel_readv_all(QIOChannel *ioc, const struct iovec *iov, size_t niov,
                          GError **errp)
{
    int ret = qio_channel_readv_all_eof(ioc, iov, niov, errp);

    if (ret == 0) {
        error_setg(errp,
                   "Unexpected end-of-file on channel '%s' before all data "
                   "were read",
                   ioc->name);
        return -1;
    }
    return ret < 0 ? -1 : 0;
}

int qio_channel_read_all(QIOChannel *ioc, void *buf, size_t len, GError **errp)
{
    struct iovec iov = {.iov_base = buf, .iov_len = len};

    return qio_channel_readv_all(ioc, &iov, 1, errp);
}

int qio_channel_writev_full_all(QIOChannel *ioc, const struct iovec *iov,
                                size_t niov, const int *fds, size_t nfds,
                                GError **errp)
{
    IOVCursor c;
    int ret = 0;

    iov_cursor_init(&c, iov, niov);
    if (nfds && !c.remaining) {
        /* A stream socket drops descriptors sent with no data. */
        error_setg(errp,
                   "Channel '%s': file descriptors need at least one byte "
                   "of data",
                   ioc->name);
        return -1;
    }
    while (c.remaining) {
        ssize_t n =
            qio_channel_writev_full(ioc, c.iov, c.niov, fds, nfds, errp);

        if (n == QIO_CHANNEL_ERR_BLOCK) {
            qio_channel_wait(ioc, G_IO_OUT);
            continue;
        }
        if (n <= 0) {
            if (n == 0) {
                error_setg(errp, "Channel '%s' accepted no data", ioc->name);
            }
            ret = -1;
            break;
        }
        /* The descriptors went with the first transfer. */
        fds = NULL;
        nfds = 0;
        iov_cursor_advance(&c, n);
    }
    iov_cursor_cleanup(&c);
    return ret;
}

int qio_channel_writev_all(QIOChannel *ioc, const struct iovec *iov,
                           size_t niov, GError **errp)
{
    return qio_channel_writev_full_all(ioc, iov, niov, NULL, 0, errp);
}

int qio_channel_write_all(QIOChannel *ioc, const void *buf, size_t len,
                          GError **errp)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};

    return qio_channel_writev_full_all(ioc, &iov, 1, NULL, 0, errp);
}

static bool check_seekable(QIOChannel *ioc, bool write, GError **errp)
{
    if (!check_open(ioc, errp)) {
        return false;
    }
    if (!qio_channel_has_feature(ioc, QIO_CHANNEL_FEATURE_SEEKABLE) ||
        !(write ? ioc->klass->io_pwritev : ioc->klass->io_preadv)) {
        error_setg(errp, "Channel '%s' does not support positioned %s",
                   ioc->name, write ? "writes" : "reads");
        return false;
    }
    return true;
}

/* The loop shared by pwritev_all and preadv_all: one direction each call. */
static int positioned_io_all(QIOChannel *ioc, const struct iovec *iov,
                             size_t niov, off_t offset, bool write,
                             GError **errp)
{
    IOVCursor c;
    int ret = 0;

    if (!check_seekable(ioc, write, errp)) {
        return -1;
    }
    iov_cursor_init(&c, iov, niov);
    while (c.remaining) {
        ssize_t n;

        if (fault_inject_active()) { /* rel */
            n = fault_transport_call(
                ioc, write ? FAULT_OP_PWRITEV : FAULT_OP_PREADV, c.iov,
                c.niov, offset, NULL, NULL, NULL, 0, errp);
        } else if (write) {
            n = ioc->klass->io_pwritev(ioc, c.iov, c.niov, offset, errp);
        } else {
            n = ioc->klass->io_preadv(ioc, c.iov, c.niov, offset, errp);
        }
        if (n == QIO_CHANNEL_ERR_BLOCK) {
            qio_channel_wait(ioc, write ? G_IO_OUT : G_IO_IN);
            continue;
        }
        if (n < 0) {
            ret = -1;
            break;
        }
        if (n == 0) {
            /* A write that moves nothing would loop forever; a read hit EOF. */
            if (write) {
                error_setg(errp,
                           "Channel '%s' wrote nothing at offset %lld "
                           "(%zu bytes left)",
                           ioc->name, (long long)offset, c.remaining);
            } else {
                error_setg(errp,
                           "Unexpected end of file on channel '%s' at offset "
                           "%lld (%zu bytes missing)",
                           ioc->name, (long long)offset, c.remaining);
            }
            ret = -1;
            break;
        }
        iov_cursor_advance(&c, n);
        offset += n;
    }
    iov_cursor_cleanup(&c);
    return ret;
}

int qio_channel_pwritev_all(QIOChannel *ioc, const struct iovec *iov,
                            size_t niov, off_t offset, GError **errp)
{
    return positioned_io_all(ioc, iov, niov, offset, true, errp);
}

int qio_channel_preadv_all(QIOChannel *ioc, const struct iovec *iov,
                           size_t niov, off_t offset, GError **errp)
{
    return positioned_io_all(ioc, iov, niov, offset, false, errp);
}

int qio_channel_pwrite_all(QIOChannel *ioc, const void *buf, size_t len,
                           off_t offset, GError **errp)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};

    return qio_channel_pwritev_all(ioc, &iov, 1, offset, errp);
}

int qio_channel_pread_all(QIOChannel *ioc, void *buf, size_t len, off_t offset,
                          GError **errp)
{
    struct iovec iov = {.iov_base = buf, .iov_len = len};

    return qio_channel_preadv_all(ioc, &iov, 1, offset, errp);
}

/*
 * Walks iov[] in runs of memory-adjacent pieces; each run is one contiguous
 * range of the region, so it becomes a single positioned call with a single
 * iovec entry at file_base + (start - host_base).
 */
static int qio_channel_region_io(QIOChannel *ioc, const struct iovec *iov,
                                 size_t niov, const void *host_base,
                                 off_t file_base, bool write, GError **errp)
{
    const uint8_t *base = host_base;
    size_t i = 0;

    while (i < niov) {
        const uint8_t *start = iov[i].iov_base;
        const uint8_t *end = start + iov[i].iov_len;
        struct iovec run;
        int ret;

        for (i++; i < niov && iov[i].iov_base == end; i++) {
            end += iov[i].iov_len;
        }
        if (start == end) {
            continue;
        }
        if (start < base) {
            error_setg(errp,
                       "Channel '%s': piece at %p lies before its region "
                       "base %p",
                       ioc->name, start, base);
            return -1;
        }
        run.iov_base = (void *)start;
        run.iov_len = end - start;
        if (write) {
            ret = qio_channel_pwritev_all(ioc, &run, 1,
                                          file_base + (start - base), errp);
        } else {
            ret = qio_channel_preadv_all(ioc, &run, 1,
                                         file_base + (start - base), errp);
        }
        if (ret < 0) {
            return -1;
        }
    }
    return 0;
}

int qio_channel_pwritev_region(QIOChannel *ioc, const struct iovec *iov,
                               size_t niov, const void *host_base,
                               off_t file_base, GError **errp)
{
    return qio_channel_region_io(ioc, iov, niov, host_base, file_base, true,
                                 errp);
}

int qio_channel_preadv_region(QIOChannel *ioc, const struct iovec *iov,
                              size_t niov, const void *host_base,
                              off_t file_base, GError **errp)
{
    return qio_channel_region_io(ioc, iov, niov, host_base, file_base, false,
                                 errp);
}

off_t qio_channel_io_seek(QIOChannel *ioc, off_t offset, int whence,
                          GError **errp)
{
    if (!check_open(ioc, errp)) {
        return -1;
    }
    if (!ioc->klass->io_seek) {
        error_setg(errp, "Channel '%s' does not support seeking", ioc->name);
        return -1;
    }
    return ioc->klass->io_seek(ioc, offset, whence, errp);
}

int qio_channel_set_blocking(QIOChannel *ioc, bool enabled, GError **errp)
{
    if (!check_open(ioc, errp)) {
        return -1;
    }
    /* A transport without the hook never blocks (memory). */
    if (!ioc->klass->io_set_blocking) {
        return 0;
    }
    return ioc->klass->io_set_blocking(ioc, enabled, errp);
}

int qio_channel_shutdown(QIOChannel *ioc, QIOChannelShutdown how, GError **errp)
{
    if (!check_open(ioc, errp)) {
        return -1;
    }
    if (!qio_channel_has_feature(ioc, QIO_CHANNEL_FEATURE_SHUTDOWN) ||
        !ioc->klass->io_shutdown) {
        error_setg(errp, "Channel '%s' does not support shutdown", ioc->name);
        return -1;
    }
    return ioc->klass->io_shutdown(ioc, how, errp);
}

int qio_channel_flush(QIOChannel *ioc, GError **errp)
{
    if (!check_open(ioc, errp)) {
        return -1;
    }
    if (!ioc->klass->io_flush) {
        return 0;
    }
    return ioc->klass->io_flush(ioc, errp);
}

int qio_channel_close(QIOChannel *ioc, GError **errp)
{
    GError *fault_err = NULL; /* rel */
    int ret;

    if (ioc->closed) {
        return 0;
    }
    /* rel: fault injection "save-sync": the close's fsync fails or stalls */
    if (fault_inject_active()) {
        fault_inject_sync(ioc->name, &fault_err);
    }
    /* Closed even if the transport reports an error: its fd is gone. */
    ioc->closed = true;
    ret = ioc->klass->io_close ? ioc->klass->io_close(ioc, errp) : 0;
    if (fault_err) { /* rel */
        if (ret == 0) {
            g_propagate_error(errp, fault_err);
        } else {
            g_error_free(fault_err);
        }
        return -1;
    }
    return ret;
}

int qio_channel_get_fd(QIOChannel *ioc, GIOCondition cond)
{
    if (ioc->closed || !ioc->klass->io_get_fd) {
        return -1;
    }
    return ioc->klass->io_get_fd(ioc, cond);
}

/* What a watch needs at dispatch; the watch holds a channel reference. */
typedef struct {
    QIOChannel *ioc;
    QIOChannelFunc func;
    gpointer opaque;
    GDestroyNotify notify;
    GIOCondition cond;
} QIOChannelWatch;

static gboolean qio_channel_watch_fd_dispatch(gint fd, GIOCondition cond,
                                              gpointer data)
{
    QIOChannelWatch *watch = data;

    return watch->func(watch->ioc, cond, watch->opaque);
}

static gboolean qio_channel_watch_idle_dispatch(gpointer data)
{
    QIOChannelWatch *watch = data;

    return watch->func(watch->ioc, watch->cond & (G_IO_IN | G_IO_OUT),
                       watch->opaque);
}

static void qio_channel_watch_free(gpointer data)
{
    QIOChannelWatch *watch = data;

    if (watch->notify) {
        watch->notify(watch->opaque);
    }
    qio_channel_unref(watch->ioc);
    g_free(watch);
}

guint qio_channel_add_watch(QIOChannel *ioc, GIOCondition cond,
                            QIOChannelFunc func, gpointer opaque,
                            GDestroyNotify notify)
{
    int fd = qio_channel_get_fd(ioc, cond);
    QIOChannelWatch *watch = g_new0(QIOChannelWatch, 1);
    GSource *source;
    guint id;

    watch->ioc = qio_channel_ref(ioc);
    watch->func = func;
    watch->opaque = opaque;
    watch->notify = notify;
    watch->cond = cond;

    if (fd >= 0) {
        source = g_unix_fd_source_new(fd, cond);
        g_source_set_callback(source,
                              G_SOURCE_FUNC(qio_channel_watch_fd_dispatch),
                              watch, qio_channel_watch_free);
    } else {
        /* No fd (memory channel): always ready, like its I/O. */
        source = g_idle_source_new();
        g_source_set_callback(source, qio_channel_watch_idle_dispatch, watch,
                              qio_channel_watch_free);
    }
    id = g_source_attach(source, NULL);
    g_source_unref(source);
    return id;
}
