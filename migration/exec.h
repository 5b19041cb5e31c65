/*
 * The exec: transport: "exec:CMD" runs CMD with /bin/sh -c (the channels
 * form takes the argument vector as it is); the source writes the stream
 * to its stdin, the destination reads it from its stdout.
 */
#ifndef MIGRATION_EXEC_H
#define MIGRATION_EXEC_H

#include "qemu/osdep.h"
#include "io/channel.h"

/* Spawns argv; outgoing feeds its stdin, incoming reads its stdout. */
QIOChannel *exec_open(const char *const *argv, bool outgoing, GError **errp);

#endif
