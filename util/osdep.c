/*
 * The one open() wrapper of the tree (see include/qemu/fdopen.h).
 *
 * Everything that opens a path the user gave goes through qemu_open(), so
 * "/dev/fdset/ID" works everywhere a path does: such paths are handed to the
 * monitor's fdset hook and never reach the real file system. Every fd is
 * O_CLOEXEC, so children spawned by exec: migration inherit nothing.
 */
#include "qemu/osdep.h"
#include "qemu/fdopen.h"

#define FDSET_PREFIX "/dev/fdset/"

/* Set once at start-up by monitor/fds.c; read from any thread. */
static QemuFdsetOpenFunc fdset_open_hook;
static QemuFdsetCloseFunc fdset_close_hook;

void qemu_open_set_fdset_hooks(QemuFdsetOpenFunc open_fn,
                               QemuFdsetCloseFunc close_fn)
{
    __atomic_store_n(&fdset_open_hook, open_fn, __ATOMIC_RELEASE);
    __atomic_store_n(&fdset_close_hook, close_fn, __ATOMIC_RELEASE);
}

int qemu_open(const char *path, int flags, mode_t mode, GError **errp)
{
    QemuFdsetOpenFunc open_fn;
    int fd;

    if (g_str_has_prefix(path, FDSET_PREFIX)) {
        open_fn = __atomic_load_n(&fdset_open_hook, __ATOMIC_ACQUIRE);
        if (!open_fn) {
            error_setg(errp, "Failed to find fdset /dev/fdset/%s",
                       path + strlen(FDSET_PREFIX));
            return -1;
        }
        return open_fn(path, flags, errp);
    }

    fd = RETRY_ON_EINTR(open(path, flags | O_CLOEXEC, mode));
    if (fd < 0) {
        if (errno == EINVAL && (flags & O_DIRECT)) {
            /* The kernel says EINVAL when the fs cannot do O_DIRECT. */
            error_setg(errp,
                       "Could not open '%s': filesystem does not support "
                       "O_DIRECT",
                       path);
        } else {
            error_setg(errp, "Could not open '%s': %s", path,
                       g_strerror(errno));
        }
        return -1;
    }
    return fd;
}

int qemu_close(int fd)
{
    QemuFdsetCloseFunc close_fn;

    close_fn = __atomic_load_n(&fdset_close_hook, __ATOMIC_ACQUIRE);
    if (close_fn) {
        /* Untrack an fdset dup before its number can be reused. */
        close_fn(fd);
    }
    /* No retry on EINTR: Linux has released the fd either way. */
    return close(fd);
}
