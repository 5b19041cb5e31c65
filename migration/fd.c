/*
 * The fd: transport. "fd:NAME" takes (a dup of) the descriptor stored by
 * getfd; "fd:NUM" takes an inherited descriptor, which the channel then
 * owns, as QEMU does. Sockets get a socket channel (shutdown works, so
 * migrate_cancel unblocks a stuck write); anything else a file channel.
 */
#include "qemu/osdep.h"
#include <sys/socket.h>
#include "io/channel-file.h"
#include "io/channel-socket.h"
#include "monitor/monitor.h"
#include "migration/fd.h"

static int fd_resolve(const char *fdname, GError **errp)
{
    char *end;
    long num;

    if (!g_ascii_isdigit(fdname[0])) {
        return monitor_get_fd(fdname, errp);
    }
    errno = 0;
    num = strtol(fdname, &end, 10);
    if (errno || *end || num < 0 || num > INT_MAX) {
        error_setg(errp, "Invalid file descriptor number '%s'", fdname);
        return -1;
    }
    if (fcntl((int)num, F_GETFD) < 0) {
        error_setg_errno(errp, errno, "Invalid file descriptor %ld", num);
        return -1;
    }
    return (int)num;
}

QIOChannel *fd_open(const char *fdname, bool *seekable_file, GError **errp)
{
    struct stat st;
    int fd = fd_resolve(fdname, errp);

    if (fd < 0) {
        return NULL;
    }
    if (fstat(fd, &st) < 0) {
        error_setg_errno(errp, errno, "Could not stat fd '%s'", fdname);
        close(fd);
        return NULL;
    }
    *seekable_file = false;
    if (S_ISSOCK(st.st_mode)) {
        QIOChannelSocket *sioc = qio_channel_socket_new_fd(fd, errp);

        if (!sioc) {
            close(fd);
            return NULL;
        }
        qio_channel_set_name(&sioc->parent, "migration-fd");
        return &sioc->parent;
    } else {
        QIOChannelFile *fioc = qio_channel_file_new_fd(fd);
        QIOChannel *ioc = QIO_CHANNEL(fioc);

        qio_channel_set_name(ioc, "migration-fd");
        *seekable_file =
            S_ISREG(st.st_mode) &&
            qio_channel_has_feature(ioc, QIO_CHANNEL_FEATURE_SEEKABLE);
        return ioc;
    }
}
