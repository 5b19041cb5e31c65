/*
 * A child process as a channel (see include/io/channel-command.h), for the
 * exec: migration transport: writes feed the child's stdin, reads drain its
 * stdout, and close reaps it so that a failed "gzip > file" is reported
 * rather than silently leaving a truncated file.
 *
 * The child's stderr is inherited so its complaints reach the log. Pipes
 * are close-on-exec on our side, so a second child never holds the first
 * one's stdin open (which would keep it from ever seeing EOF).
 */
#include "qemu/osdep.h"
#include "io/channel-command.h"

#include <sys/wait.h>

static QIOChannelCommand *to_command(QIOChannel *ioc)
{
    return container_of(ioc, QIOChannelCommand, parent);
}

static inline int clamp_niov(size_t niov)
{
    return niov > IOV_MAX ? IOV_MAX : (int)niov;
}

static ssize_t command_readv(QIOChannel *ioc, const struct iovec *iov,
                             size_t niov, int **fds, size_t *nfds,
                             GError **errp)
{
    QIOChannelCommand *cioc = to_command(ioc);
    ssize_t n;

    if (cioc->readfd < 0) {
        error_setg(errp, "Command '%s' was not opened for reading", ioc->name);
        return -1;
    }
    n = RETRY_ON_EINTR(readv(cioc->readfd, iov, clamp_niov(niov)));
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return QIO_CHANNEL_ERR_BLOCK;
        }
        error_setg_errno(errp, errno, "Unable to read from command '%s'",
                         ioc->name);
        return -1;
    }
    return n;
}

static ssize_t command_writev(QIOChannel *ioc, const struct iovec *iov,
                              size_t niov, const int *fds, size_t nfds,
                              GError **errp)
{
    QIOChannelCommand *cioc = to_command(ioc);
    ssize_t n;

    if (cioc->writefd < 0) {
        error_setg(errp, "Command '%s' was not opened for writing", ioc->name);
        return -1;
    }
    n = RETRY_ON_EINTR(writev(cioc->writefd, iov, clamp_niov(niov)));
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return QIO_CHANNEL_ERR_BLOCK;
        }
        error_setg_errno(errp, errno, "Unable to write to command '%s'",
                         ioc->name);
        return -1;
    }
    return n;
}

static int set_fd_blocking(int fd, bool enabled)
{
    int flags;

    if (fd < 0) {
        return 0;
    }
    flags = fcntl(fd, F_GETFL);
    if (flags < 0) {
        return -1;
    }
    flags = enabled ? flags & ~O_NONBLOCK : flags | O_NONBLOCK;
    return fcntl(fd, F_SETFL, flags);
}

static int command_set_blocking(QIOChannel *ioc, bool enabled, GError **errp)
{
    QIOChannelCommand *cioc = to_command(ioc);

    if (set_fd_blocking(cioc->readfd, enabled) < 0 ||
        set_fd_blocking(cioc->writefd, enabled) < 0) {
        error_setg_errno(errp, errno,
                         "Unable to set %sblocking mode on command '%s'",
                         enabled ? "" : "non-", ioc->name);
        return -1;
    }
    return 0;
}

static int command_close(QIOChannel *ioc, GError **errp)
{
    QIOChannelCommand *cioc = to_command(ioc);
    int status;
    pid_t ret;

    /* Closing stdin first is what tells the child to finish. */
    if (cioc->writefd >= 0) {
        close(cioc->writefd);
        cioc->writefd = -1;
    }
    if (cioc->readfd >= 0) {
        close(cioc->readfd);
        cioc->readfd = -1;
    }
    if (cioc->pid <= 0) {
        return 0;
    }
    ret = RETRY_ON_EINTR(waitpid(cioc->pid, &status, 0));
    cioc->pid = 0;
    if (ret < 0) {
        error_setg_errno(errp, errno, "Unable to wait for command '%s'",
                         ioc->name);
        return -1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        error_setg(errp, "Command '%s' exited with status %d", ioc->name,
                   WEXITSTATUS(status));
        return -1;
    }
    if (WIFSIGNALED(status)) {
        error_setg(errp, "Command '%s' was killed by signal %d", ioc->name,
                   WTERMSIG(status));
        return -1;
    }
    return 0;
}

static int command_get_fd(QIOChannel *ioc, GIOCondition cond)
{
    QIOChannelCommand *cioc = to_command(ioc);

    return cond & G_IO_OUT ? cioc->writefd : cioc->readfd;
}

static const QIOChannelClass command_class = {
    .type_name = "command",
    .io_readv = command_readv,
    .io_writev = command_writev,
    .io_set_blocking = command_set_blocking,
    .io_close = command_close,
    .io_get_fd = command_get_fd,
};

QIOChannelCommand *qio_channel_command_new_spawn(const char *const argv[],
                                                 int flags, GError **errp)
{
    int accmode = flags & O_ACCMODE;
    bool want_read = accmode == O_RDONLY || accmode == O_RDWR;
    bool want_write = accmode == O_WRONLY || accmode == O_RDWR;
    QIOChannelCommand *cioc;
    g_autofree char *name = NULL;
    GError *local_err = NULL;
    int stdin_fd = -1;
    int stdout_fd = -1;
    GPid pid;

    if (!argv || !argv[0]) {
        error_setg(errp, "No command to run");
        return NULL;
    }
    name = g_strjoinv(" ", (char **)argv);
    /*
     * GLib makes the child's ends of the pipes its stdin/stdout and
     * creates our ends close-on-exec. A direction we do not use is
     * /dev/null for stdin and inherited for stdout.
     */
    if (!g_spawn_async_with_pipes_and_fds(
            NULL, argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD,
            NULL, NULL, -1, -1, -1, NULL, NULL, 0, &pid,
            want_write ? &stdin_fd : NULL, want_read ? &stdout_fd : NULL, NULL,
            &local_err)) {
        error_setg(errp, "Unable to run command '%s': %s", name,
                   local_err->message);
        g_error_free(local_err);
        return NULL;
    }

    /* GLib already does this; be explicit, children must not inherit. */
    if (stdin_fd >= 0) {
        fcntl(stdin_fd, F_SETFD, FD_CLOEXEC);
    }
    if (stdout_fd >= 0) {
        fcntl(stdout_fd, F_SETFD, FD_CLOEXEC);
    }

    cioc = g_new0(QIOChannelCommand, 1);
    qio_channel_init(&cioc->parent, &command_class);
    qio_channel_set_name(&cioc->parent, name);
    cioc->writefd = stdin_fd;
    cioc->readfd = stdout_fd;
    cioc->pid = pid;
    return cioc;
}
