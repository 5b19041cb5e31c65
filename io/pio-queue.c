/*
 * Positioned writes with several in flight (include/io/pio-queue.h): an
 * io_uring engine and the synchronous fallback behind one small API, used
 * by the multifd channels of a mapped-ram save (migration/multifd-file.c).
 *
 * io_uring: one ring per queue, `depth` entries. A slot table remembers
 * what each in-flight write still has to do, so a short completion is
 * resubmitted for its remainder (as the synchronous loop would) instead of
 * being an error. Nothing is allocated per write: the table is sized once.
 */
#include "qemu/osdep.h"

#include "io/pio-queue.h"
#include "qemu/fault-inject.h" /* rel */

#ifdef CONFIG_LIBURING
#include <liburing.h>
#endif

/* One write in flight: what is left of it. */
typedef struct QIOPioSlot {
    const uint8_t *buf;
    size_t len;
    off_t offset;
} QIOPioSlot;

struct QIOPioQueue {
    QIOChannel *ioc;
    int fd;
    unsigned depth;
    bool async;
    GError *error; /* the first failure; sticky */
#ifdef CONFIG_LIBURING
    struct io_uring ring;
    QIOPioSlot *slots;
    unsigned *free_slots; /* a stack of free slot indexes */
    unsigned nfree;
#endif
};

bool qio_pio_queue_is_async(const QIOPioQueue *q)
{
    return q->async;
}

/* Reports the sticky error (a copy) when there is one. */
static int pio_failed(QIOPioQueue *q, GError **errp)
{
    if (!q->error) {
        return 0;
    }
    if (errp) {
        *errp = g_error_copy(q->error);
    }
    return -1;
}

static void pio_set_error(QIOPioQueue *q, GError *err)
{
    if (q->error) {
        g_error_free(err);
    } else {
        q->error = err;
    }
}

#ifdef CONFIG_LIBURING

static bool uring_init(QIOPioQueue *q, GError **errp)
{
    int ret = io_uring_queue_init(q->depth, &q->ring, 0);

    if (ret < 0) {
        error_setg_errno(errp, -ret, "Channel '%s': io_uring is not available",
                         q->ioc->name);
        return false;
    }
    q->slots = g_new0(QIOPioSlot, q->depth);
    q->free_slots = g_new(unsigned, q->depth);
    for (unsigned i = 0; i < q->depth; i++) {
        q->free_slots[i] = q->depth - 1 - i;
    }
    q->nfree = q->depth;
    return true;
}

/* Puts slot i's remaining write on the ring (a free SQE is guaranteed). */
static void uring_prep(QIOPioQueue *q, unsigned i)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
    QIOPioSlot *s = &q->slots[i];

    /* depth SQEs for depth slots: one is always free for a busy slot. */
    g_assert(sqe);
    io_uring_prep_write(sqe, q->fd, s->buf, s->len, s->offset);
    io_uring_sqe_set_data(sqe, (void *)(uintptr_t)i);
}

/*
 * Submits what uring_prep() queued. False (error recorded) when the kernel
 * refused it: that write is then not in flight, and the queue is failed.
 */
static bool uring_submit(QIOPioQueue *q)
{
    GError *err = NULL;
    int ret;

    do {
        ret = io_uring_submit(&q->ring);
    } while (ret == -EINTR || ret == -EAGAIN);
    if (ret >= 1) {
        return true;
    }
    error_setg_errno(&err, ret < 0 ? -ret : EIO,
                     "Channel '%s': io_uring submit failed", q->ioc->name);
    pio_set_error(q, err);
    return false;
}

/*
 * Handles one completion: frees the slot, or resubmits what is left after
 * a short write; a failure is recorded in q->error.
 */
static void uring_complete(QIOPioQueue *q, unsigned i, int res)
{
    QIOPioSlot *s = &q->slots[i];
    GError *err = NULL;

    if (res < 0 && res != -EINTR && res != -EAGAIN) {
        error_setg_errno(&err, -res, "Unable to write to '%s' at offset %lld",
                         q->ioc->name, (long long)s->offset);
    } else if (res == 0) {
        error_setg(&err,
                   "Channel '%s' wrote nothing at offset %lld (%zu bytes "
                   "left)",
                   q->ioc->name, (long long)s->offset, s->len);
    } else if (res > 0 && (size_t)res < s->len) {
        /* Short: the rest goes again, like the synchronous loop does. */
        s->buf += res;
        s->len -= res;
        s->offset += res;
        if (!q->error) {
            uring_prep(q, i);
            if (uring_submit(q)) {
                return;
            }
        }
    } else if (res < 0 && !q->error) {
        /* Interrupted before anything moved: try the same again. */
        uring_prep(q, i);
        if (uring_submit(q)) {
            return;
        }
    }
    if (err) {
        pio_set_error(q, err);
    }
    q->free_slots[q->nfree++] = i;
}

/* Waits for at least one completion and handles every one available. */
static void uring_reap(QIOPioQueue *q)
{
    struct io_uring_cqe *cqe;
    int ret;

    ret = io_uring_wait_cqe(&q->ring, &cqe);
    if (ret == -EINTR) {
        return;
    }
    if (ret < 0) {
        GError *err = NULL;

        error_setg_errno(&err, -ret, "Channel '%s': io_uring wait failed",
                         q->ioc->name);
        pio_set_error(q, err);
        /* Whatever is in flight cannot be waited for: forget it. */
        q->nfree = q->depth;
        for (unsigned i = 0; i < q->depth; i++) {
            q->free_slots[i] = i;
        }
        return;
    }
    do {
        unsigned i = (unsigned)(uintptr_t)io_uring_cqe_get_data(cqe);
        int res = cqe->res;

        io_uring_cqe_seen(&q->ring, cqe);
        uring_complete(q, i, res);
    } while (io_uring_peek_cqe(&q->ring, &cqe) == 0);
}

static int uring_pwrite(QIOPioQueue *q, const void *buf, size_t len,
                        off_t offset, GError **errp)
{
    unsigned i;

    while (!q->nfree && !q->error) {
        uring_reap(q);
    }
    if (pio_failed(q, errp)) {
        return -1;
    }
    i = q->free_slots[--q->nfree];
    q->slots[i] = (QIOPioSlot){.buf = buf, .len = len, .offset = offset};
    uring_prep(q, i);
    if (!uring_submit(q)) {
        q->free_slots[q->nfree++] = i;
    }
    return pio_failed(q, errp);
}

static int uring_drain(QIOPioQueue *q, GError **errp)
{
    while (q->nfree < q->depth) {
        uring_reap(q);
    }
    return pio_failed(q, errp);
}

static void uring_free(QIOPioQueue *q)
{
    io_uring_queue_exit(&q->ring);
    g_free(q->slots);
    g_free(q->free_slots);
}

#endif /* CONFIG_LIBURING */

QIOPioQueue *qio_pio_queue_new(QIOChannel *ioc, unsigned depth,
                               QIOPioEngine engine, GError **errp)
{
    QIOPioQueue *q;
    int fd = qio_channel_get_fd(ioc, G_IO_OUT);

    if (!qio_channel_has_feature(ioc, QIO_CHANNEL_FEATURE_SEEKABLE) || fd < 0) {
        error_setg(errp, "Channel '%s' does not support positioned writes",
                   ioc->name);
        return NULL;
    }
    if (depth < 1 || depth > QIO_PIO_QUEUE_MAX_DEPTH) {
        error_setg(errp, "I/O queue depth %u is not between 1 and %d", depth,
                   QIO_PIO_QUEUE_MAX_DEPTH);
        return NULL;
    }
    q = g_new0(QIOPioQueue, 1);
    q->ioc = qio_channel_ref(ioc);
    q->fd = fd;
    q->depth = depth;
    if (engine == QIO_PIO_ENGINE_SYNC) {
        return q;
    }
#ifdef CONFIG_LIBURING
    {
        GError *err = NULL;

        q->async = uring_init(q, &err);
        if (!q->async && engine == QIO_PIO_ENGINE_URING) {
            g_propagate_error(errp, err);
            qio_pio_queue_free(q);
            return NULL;
        }
        g_clear_error(&err); /* AUTO: the fallback serves */
    }
#else
    if (engine == QIO_PIO_ENGINE_URING) {
        error_setg(errp, "Channel '%s': minivm was built without io_uring",
                   ioc->name);
        qio_pio_queue_free(q);
        return NULL;
    }
#endif
    return q;
}

int qio_pio_queue_pwrite(QIOPioQueue *q, const void *buf, size_t len,
                         off_t offset, GError **errp)
{
    GError *err = NULL;

    if (pio_failed(q, errp)) {
        return -1;
    }
#ifdef CONFIG_LIBURING
    /* rel: an armed fault must see every write: those go synchronously */
    if (q->async && !fault_inject_active()) {
        return uring_pwrite(q, buf, len, offset, errp);
    }
    if (q->async && uring_drain(q, errp) < 0) {
        return -1;
    }
#endif
    if (qio_channel_pwrite_all(q->ioc, buf, len, offset, &err) < 0) {
        pio_set_error(q, g_error_copy(err));
        g_propagate_error(errp, err);
        return -1;
    }
    return 0;
}

int qio_pio_queue_drain(QIOPioQueue *q, GError **errp)
{
#ifdef CONFIG_LIBURING
    if (q->async) {
        return uring_drain(q, errp);
    }
#endif
    return pio_failed(q, errp);
}

void qio_pio_queue_free(QIOPioQueue *q)
{
    if (!q) {
        return;
    }
#ifdef CONFIG_LIBURING
    if (q->async) {
        uring_drain(q, NULL);
        uring_free(q);
    }
#endif
    g_clear_error(&q->error);
    qio_channel_unref(q->ioc);
    g_free(q);
}
