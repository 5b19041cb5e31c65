/*
 * A channel over a file descriptor: a regular file, a block device, a pipe or
 * a character device. SEEKABLE is set when lseek() works on the fd. Closing
 * fsyncs first (errors from fsync are reported by close).
 */
#ifndef IO_CHANNEL_FILE_H
#define IO_CHANNEL_FILE_H

#include "io/channel.h"

typedef struct QIOChannelFile {
    QIOChannel parent;
    int fd;
} QIOChannelFile;

/* Takes ownership of fd. */
QIOChannelFile *qio_channel_file_new_fd(int fd);
/* Opens through qemu_open() (so /dev/fdset/N works); NULL + errp on error. */
QIOChannelFile *qio_channel_file_new_path(const char *path, int flags,
                                          mode_t mode, GError **errp);

#define QIO_CHANNEL(obj) (&(obj)->parent)

#endif
