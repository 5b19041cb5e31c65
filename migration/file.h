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
 * /dev/fdset/ID works) and seeks to offset. It does not truncate yet: the
 * migration thread does, with file_outgoing_truncate(), so that `migrate`
 * can still refuse (free space) without touching an existing file, and a
 * slow truncation never blocks the monitor.
 */
QIOChannel *file_open_outgoing(const char *path, uint64_t offset,
                               GError **errp);
/*
 * True when ioc is the file: channel file_open_outgoing() opened last and
 * its truncation to *offset is still to come.
 */
bool file_outgoing_truncate_offset(QIOChannel *ioc, uint64_t *offset);
/*
 * A refused migration: forgets the pending truncation (the file stays as
 * it was) and removes the file if file_open_outgoing() created it.
 */
void file_outgoing_abandon(QIOChannel *ioc);
/*
 * Migration thread, before anything is written: truncates ioc's file to
 * its offset (bytes before it survive, nothing stale after it does) when
 * ioc is the pending file: channel; true (and nothing done) for any other
 * channel.
 */
bool file_outgoing_truncate(QIOChannel *ioc, GError **errp);
/* Destination: opens PATH read-only and seeks to offset. */
QIOChannel *file_open_incoming(const char *path, uint64_t offset,
                               GError **errp);

#endif
