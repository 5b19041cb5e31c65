/*
 * QIOChannel: one abstract byte channel with a small vtable, in the shape of
 * QEMU's io/ layer. Transports (file, socket, command, buffer) each live in
 * their own io/channel-*.c and decide their feature flags once, in their
 * constructor; callers ask for a feature, never for a transport.
 *
 * Blocking I/O: every channel here is used in blocking mode by the thread
 * that owns it (migration, multifd, load threads). The monitor, which must
 * never block, uses qio_channel_add_watch() and non-blocking reads.
 *
 * Reference counted: qio_channel_ref()/qio_channel_unref(); the last unref
 * closes the channel if it is still open and frees it.
 */
#ifndef IO_CHANNEL_H
#define IO_CHANNEL_H

#include "qemu/osdep.h"

typedef struct QIOChannel QIOChannel;
typedef struct QIOChannelClass QIOChannelClass;

typedef enum {
    QIO_CHANNEL_FEATURE_FD_PASS = 1 << 0,  /* SCM_RIGHTS both ways */
    QIO_CHANNEL_FEATURE_SHUTDOWN = 1 << 1, /* shutdown() unblocks peers */
    QIO_CHANNEL_FEATURE_SEEKABLE = 1 << 2, /* preadv/pwritev/seek work */
} QIOChannelFeature;

typedef enum {
    QIO_CHANNEL_SHUTDOWN_READ = 1,
    QIO_CHANNEL_SHUTDOWN_WRITE = 2,
    QIO_CHANNEL_SHUTDOWN_BOTH = 3,
} QIOChannelShutdown;

/* Returned by readv/writev in non-blocking mode when nothing can be done. */
#define QIO_CHANNEL_ERR_BLOCK -2

struct QIOChannelClass {
    const char *type_name;
    /*
     * readv: returns bytes read, 0 at EOF, QIO_CHANNEL_ERR_BLOCK, or -1 with
     * errp set. When fds is non-NULL, received descriptors are returned in a
     * g_new()'d array (*fds, *nfds); the caller owns them.
     */
    ssize_t (*io_readv)(QIOChannel *ioc, const struct iovec *iov, size_t niov,
                        int **fds, size_t *nfds, GError **errp);
    ssize_t (*io_writev)(QIOChannel *ioc, const struct iovec *iov,
                         size_t niov, const int *fds, size_t nfds,
                         GError **errp);
    /* Optional (SEEKABLE only): positioned I/O, no effect on the offset. */
    ssize_t (*io_preadv)(QIOChannel *ioc, const struct iovec *iov,
                         size_t niov, off_t offset, GError **errp);
    ssize_t (*io_pwritev)(QIOChannel *ioc, const struct iovec *iov,
                          size_t niov, off_t offset, GError **errp);
    off_t (*io_seek)(QIOChannel *ioc, off_t offset, int whence,
                     GError **errp);
    int (*io_set_blocking)(QIOChannel *ioc, bool enabled, GError **errp);
    int (*io_shutdown)(QIOChannel *ioc, QIOChannelShutdown how,
                       GError **errp);
    /* Optional: flush to stable storage (file channel: fdatasync). */
    int (*io_flush)(QIOChannel *ioc, GError **errp);
    int (*io_close)(QIOChannel *ioc, GError **errp);
    /* The fd to poll for the given condition, or -1. */
    int (*io_get_fd)(QIOChannel *ioc, GIOCondition cond);
    void (*finalize)(QIOChannel *ioc);
};

struct QIOChannel {
    const QIOChannelClass *klass;
    unsigned features;
    gint refcount;
    bool closed;
    char *name; /* for error messages and debugging */
};

/* For transport implementations: set up the common part. */
void qio_channel_init(QIOChannel *ioc, const QIOChannelClass *klass);

QIOChannel *qio_channel_ref(QIOChannel *ioc);
void qio_channel_unref(QIOChannel *ioc);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QIOChannel, qio_channel_unref)

bool qio_channel_has_feature(QIOChannel *ioc, QIOChannelFeature feature);
void qio_channel_set_feature(QIOChannel *ioc, QIOChannelFeature feature);
void qio_channel_set_name(QIOChannel *ioc, const char *name);

/* One call of the transport; may be short. */
ssize_t qio_channel_readv_full(QIOChannel *ioc, const struct iovec *iov,
                               size_t niov, int **fds, size_t *nfds,
                               GError **errp);
ssize_t qio_channel_writev_full(QIOChannel *ioc, const struct iovec *iov,
                                size_t niov, const int *fds, size_t nfds,
                                GError **errp);
ssize_t qio_channel_read(QIOChannel *ioc, void *buf, size_t len,
                         GError **errp);
ssize_t qio_channel_write(QIOChannel *ioc, const void *buf, size_t len,
                          GError **errp);

/*
 * Loop until every byte moved (partial transfers and EINTR retried; in
 * non-blocking mode waits with poll()). read_all returns 1 when full, 0 on
 * EOF before the first byte, -1 on error (EOF part-way is an error).
 * write_all returns 0 or -1.
 */
int qio_channel_readv_all_eof(QIOChannel *ioc, const struct iovec *iov,
                              size_t niov, GError **errp);
int qio_channel_readv_all(QIOChannel *ioc, const struct iovec *iov,
                          size_t niov, GError **errp);
int qio_channel_read_all(QIOChannel *ioc, void *buf, size_t len,
                         GError **errp);
int qio_channel_writev_all(QIOChannel *ioc, const struct iovec *iov,
                           size_t niov, GError **errp);
int qio_channel_write_all(QIOChannel *ioc, const void *buf, size_t len,
                          GError **errp);
/* write_all, with descriptors attached to the first transfer. */
int qio_channel_writev_full_all(QIOChannel *ioc, const struct iovec *iov,
                                size_t niov, const int *fds, size_t nfds,
                                GError **errp);

/*
 * Positioned I/O on SEEKABLE channels, looping over short transfers.
 * Return 0 or -1; a short read at end of file is an error naming the
 * offset. Calling these on a channel without SEEKABLE is an error.
 */
int qio_channel_pwritev_all(QIOChannel *ioc, const struct iovec *iov,
                            size_t niov, off_t offset, GError **errp);
int qio_channel_preadv_all(QIOChannel *ioc, const struct iovec *iov,
                           size_t niov, off_t offset, GError **errp);
int qio_channel_pwrite_all(QIOChannel *ioc, const void *buf, size_t len,
                           off_t offset, GError **errp);
int qio_channel_pread_all(QIOChannel *ioc, void *buf, size_t len,
                          off_t offset, GError **errp);

/*
 * Discontiguous positioned I/O: iov[] are pieces of one memory region whose
 * byte host_base maps to file offset file_base, so piece i goes to
 * file_base + (iov[i].iov_base - host_base). Each maximal run of pieces
 * that are adjacent in memory becomes one positioned call (one pwritev per
 * contiguous run, not one per piece).
 */
int qio_channel_pwritev_region(QIOChannel *ioc, const struct iovec *iov,
                               size_t niov, const void *host_base,
                               off_t file_base, GError **errp);
int qio_channel_preadv_region(QIOChannel *ioc, const struct iovec *iov,
                              size_t niov, const void *host_base,
                              off_t file_base, GError **errp);

off_t qio_channel_io_seek(QIOChannel *ioc, off_t offset, int whence,
                          GError **errp);
int qio_channel_set_blocking(QIOChannel *ioc, bool enabled, GError **errp);
int qio_channel_shutdown(QIOChannel *ioc, QIOChannelShutdown how,
                         GError **errp);
/* Flush to stable storage where the channel can; 0 where it has nothing. */
int qio_channel_flush(QIOChannel *ioc, GError **errp);
/* Idempotent; the file channel fsyncs before closing. */
int qio_channel_close(QIOChannel *ioc, GError **errp);

/* The underlying fd for the condition, or -1 (monitor watches use it). */
int qio_channel_get_fd(QIOChannel *ioc, GIOCondition cond);

typedef gboolean (*QIOChannelFunc)(QIOChannel *ioc, GIOCondition cond,
                                   gpointer opaque);
/* A GSource on the default main context; returns its id. */
guint qio_channel_add_watch(QIOChannel *ioc, GIOCondition cond,
                            QIOChannelFunc func, gpointer opaque,
                            GDestroyNotify notify);

#endif
