/*
 * The fd: transport: "fd:NAME" uses a descriptor the management passed with
 * getfd (monitor_get_fd), "fd:NUM" one the process inherited. A socket
 * becomes a socket channel, anything else a file channel.
 */
#ifndef MIGRATION_FD_H
#define MIGRATION_FD_H

#include "qemu/osdep.h"
#include "io/channel.h"

/*
 * Opens the channel for fdname. *seekable_file is set when the fd is a
 * regular file that can seek: such an fd can carry a mapped-ram stream
 * (minivm's extension; QEMU accepts only file: there).
 */
QIOChannel *fd_open(const char *fdname, bool *seekable_file, GError **errp);

#endif
