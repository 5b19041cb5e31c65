/*
 * The one open() wrapper of the tree: qemu_open() resolves "/dev/fdset/ID"
 * through the monitor's fdsets (monitor/fds.c) and opens anything else
 * normally, with O_CLOEXEC always added. Errors name the path:
 * "Could not open '%s': %s".
 */
#ifndef QEMU_FDOPEN_H
#define QEMU_FDOPEN_H

#include "qemu/osdep.h"

int qemu_open(const char *path, int flags, mode_t mode, GError **errp);
/* Closes an fd from qemu_open(), so fdset dups are untracked. */
int qemu_close(int fd);

/*
 * Hook set by monitor/fds.c: returns a dup of a matching fdset member,
 * or -1 with errp set. Paths that start with "/dev/fdset/" never reach the
 * real file system.
 */
typedef int (*QemuFdsetOpenFunc)(const char *path, int flags, GError **errp);
typedef void (*QemuFdsetCloseFunc)(int fd);
void qemu_open_set_fdset_hooks(QemuFdsetOpenFunc open_fn,
                               QemuFdsetCloseFunc close_fn);

#endif
