/*
 * A child process run with "sh -c CMD": writes go to its stdin, reads come
 * from its stdout. Closing waits for the child and reports a non-zero exit.
 */
#ifndef IO_CHANNEL_COMMAND_H
#define IO_CHANNEL_COMMAND_H

#include "io/channel.h"

typedef struct QIOChannelCommand {
    QIOChannel parent;
    int writefd;
    int readfd;
    GPid pid;
} QIOChannelCommand;

/* flags: O_RDONLY (read its stdout), O_WRONLY (feed its stdin) or O_RDWR. */
QIOChannelCommand *qio_channel_command_new_spawn(const char *const argv[],
                                                 int flags, GError **errp);

#endif
