/*
 * The file: transport (stream-format.md section 5): "file:PATH[,offset=N]".
 * The offset leaves whatever precedes the stream (a management header)
 * untouched; mapped-ram offsets are absolute, so they include it.
 */
#ifndef MIGRATION_FILE_H
#define MIGRATION_FILE_H

#include "qemu/osdep.h"
#include "io/channel.h"

/*
 * Splits "PATH[,offset=N]" (the part after "file:"). N takes K/M/G/T
 * suffixes or 0x hex; anything else: "file URI has bad offset %s".
 * *path is g_malloc'ed.
 */
bool file_parse_spec(const char *spec, char **path, uint64_t *offset,
                     GError **errp);

/*
 * Source: opens PATH (O_CREAT | O_WRONLY, 0600, through qemu_open so
 * /dev/fdset/ID works), truncates it to offset (bytes before it survive,
 * nothing stale after it does) and seeks there.
 */
QIOChannel *file_open_outgoing(const char *path, uint64_t offset,
                               GError **errp);
/* Destination: opens PATH read-only and seeks to offset. */
QIOChannel *file_open_incoming(const char *path, uint64_t offset,
                               GError **errp);

#endif
