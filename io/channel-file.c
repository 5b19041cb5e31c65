/*
 * QIOChannel over a file descriptor (see include/io/channel-file.h): the
 * migration file: transport, its multifd channels, and fd: / pipes.
 *
 * SEEKABLE is decided once from lseek(), so mapped-ram can ask for it rather
 * than for "a file". Close fsyncs a file opened for writing, because a save
 * that reports success must be on disk, and reports the fsync error.
 */
#include "qemu/osdep.h"
#include "io/channel-file.h"
#include "qemu/fdopen.h"

/* One readv/writev takes at most IOV_MAX pieces; the caller loops. */
static inline int clamp_niov(size_t niov)
{
    return niov > IOV_MAX ? IOV_MAX : (int)niov;
}

static QIOChannelFile *to_file(QIOChannel *ioc)
{
    return container_of(ioc, QIOChannelFile, parent);
}

static ssize_t file_readv(QIOChannel *ioc, const struct iovec *iov, size_t niov,
                          int **fds, size_t *nfds, GError **errp)
{
    QIOChannelFile *fioc = to_file(ioc);
    ssize_t n = RETRY_ON_EINTR(readv(fioc->fd, iov, clamp_niov(niov)));

    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return QIO_CHANNEL_ERR_BLOCK;
        }
        error_setg_errno(errp, errno, "Unable to read from '%s'", ioc->name);
        return -1;
    }
    return n;
}

static ssize_t file_writev(QIOChannel *ioc, const struct iovec *iov,
                           size_t niov, const int *fds, size_t nfds,
                           GError **errp)
{
    QIOChannelFile *fioc = to_file(ioc);
    ssize_t n = RETRY_ON_EINTR(writev(fioc->fd, iov, clamp_niov(niov)));

    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return QIO_CHANNEL_ERR_BLOCK;
        }
        error_setg_errno(errp, errno, "Unable to write to '%s'", ioc->name);
        return -1;
    }
    return n;
}

static ssize_t file_preadv(QIOChannel *ioc, const struct iovec *iov,
                           size_t niov, off_t offset, GError **errp)
{
    QIOChannelFile *fioc = to_file(ioc);
    ssize_t n = RETRY_ON_EINTR(preadv(fioc->fd, iov, clamp_niov(niov), offset));

    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return QIO_CHANNEL_ERR_BLOCK;
        }
        error_setg_errno(errp, errno, "Unable to read from '%s' at offset %lld",
                         ioc->name, (long long)offset);
        return -1;
    }
    return n;
}

static ssize_t file_pwritev(QIOChannel *ioc, const struct iovec *iov,
                            size_t niov, off_t offset, GError **errp)
{
    QIOChannelFile *fioc = to_file(ioc);
    ssize_t n =
        RETRY_ON_EINTR(pwritev(fioc->fd, iov, clamp_niov(niov), offset));

    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return QIO_CHANNEL_ERR_BLOCK;
        }
        error_setg_errno(errp, errno, "Unable to write to '%s' at offset %lld",
                         ioc->name, (long long)offset);
        return -1;
    }
    return n;
}

static off_t file_seek(QIOChannel *ioc, off_t offset, int whence, GError **errp)
{
    off_t pos = lseek(to_file(ioc)->fd, offset, whence);

    if (pos < 0) {
        error_setg_errno(errp, errno, "Unable to seek '%s' to offset %lld",
                         ioc->name, (long long)offset);
        return -1;
    }
    return pos;
}

static int file_set_blocking(QIOChannel *ioc, bool enabled, GError **errp)
{
    int fd = to_file(ioc)->fd;
    int flags = fcntl(fd, F_GETFL);

    if (flags < 0) {
        error_setg_errno(errp, errno, "Unable to get flags of '%s'", ioc->name);
        return -1;
    }
    flags = enabled ? flags & ~O_NONBLOCK : flags | O_NONBLOCK;
    if (fcntl(fd, F_SETFL, flags) < 0) {
        error_setg_errno(errp, errno, "Unable to set %sblocking mode on '%s'",
                         enabled ? "" : "non-", ioc->name);
        return -1;
    }
    return 0;
}

static int file_flush(QIOChannel *ioc, GError **errp)
{
    if (RETRY_ON_EINTR(fdatasync(to_file(ioc)->fd)) < 0) {
        /* Pipes and character devices have nothing to flush. */
        if (errno == EINVAL || errno == EROFS) {
            return 0;
        }
        error_setg_errno(errp, errno, "Unable to fdatasync '%s'", ioc->name);
        return -1;
    }
    return 0;
}

/* Only a regular file opened for writing has data worth an fsync. */
static bool file_needs_fsync(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    struct stat st;

    if (flags < 0 || (flags & O_ACCMODE) == O_RDONLY) {
        return false;
    }
    return fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

static int file_close(QIOChannel *ioc, GError **errp)
{
    QIOChannelFile *fioc = to_file(ioc);
    int ret = 0;

    if (fioc->fd < 0) {
        return 0;
    }
    if (file_needs_fsync(fioc->fd) && RETRY_ON_EINTR(fsync(fioc->fd)) < 0) {
        error_setg_errno(errp, errno, "Unable to fsync '%s'", ioc->name);
        ret = -1;
    }
    if (qemu_close(fioc->fd) < 0 && ret == 0) {
        error_setg_errno(errp, errno, "Unable to close '%s'", ioc->name);
        ret = -1;
    }
    fioc->fd = -1;
    return ret;
}

static int file_get_fd(QIOChannel *ioc, GIOCondition cond)
{
    return to_file(ioc)->fd;
}

static const QIOChannelClass file_class = {
    .type_name = "file",
    .io_readv = file_readv,
    .io_writev = file_writev,
    .io_preadv = file_preadv,
    .io_pwritev = file_pwritev,
    .io_seek = file_seek,
    .io_set_blocking = file_set_blocking,
    .io_flush = file_flush,
    .io_close = file_close,
    .io_get_fd = file_get_fd,
};

QIOChannelFile *qio_channel_file_new_fd(int fd)
{
    QIOChannelFile *fioc = g_new0(QIOChannelFile, 1);
    g_autofree char *name = g_strdup_printf("fd %d", fd);

    qio_channel_init(QIO_CHANNEL(fioc), &file_class);
    qio_channel_set_name(QIO_CHANNEL(fioc), name);
    fioc->fd = fd;
    if (lseek(fd, 0, SEEK_CUR) >= 0) {
        qio_channel_set_feature(QIO_CHANNEL(fioc),
                                QIO_CHANNEL_FEATURE_SEEKABLE);
    }
    return fioc;
}

QIOChannelFile *qio_channel_file_new_path(const char *path, int flags,
                                          mode_t mode, GError **errp)
{
    QIOChannelFile *fioc;
    int fd = qemu_open(path, flags, mode, errp);

    if (fd < 0) {
        return NULL;
    }
    fioc = qio_channel_file_new_fd(fd);
    qio_channel_set_name(QIO_CHANNEL(fioc), path);
    return fioc;
}
