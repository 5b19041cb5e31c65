/*
 * QEMUFile: a buffered byte stream over a QIOChannel, with big-endian
 * put/get helpers and a latched first error: after any failure every call
 * is a no-op (gets return 0) and qemu_file_get_error() reports it, so
 * writers check once per section instead of after every field.
 *
 * Seekable helpers (mapped-ram): positioned buffer I/O that bypasses the
 * buffer, and get/set of the stream position, which flush (output) or
 * drop (input) the buffer as needed.
 */
#ifndef MIGRATION_QEMU_FILE_H
#define MIGRATION_QEMU_FILE_H

#include "qemu/osdep.h"
#include "io/channel.h"

typedef struct QEMUFile QEMUFile;

/* Takes a reference on ioc. */
QEMUFile *qemu_file_new_output(QIOChannel *ioc);
QEMUFile *qemu_file_new_input(QIOChannel *ioc);
/* Flushes (output), drops the channel reference, frees; returns the
 * latched error (negative errno) or 0. Does not close the channel. */
int qemu_fclose(QEMUFile *f);
QIOChannel *qemu_file_get_ioc(QEMUFile *f);

/* Negative errno of the first failure, or 0; *errp gets a copy. */
int qemu_file_get_error_obj(QEMUFile *f, GError **errp);
int qemu_file_get_error(QEMUFile *f);
/* Latches ret (negative errno) and err (taken) if none is latched yet. */
void qemu_file_set_error_obj(QEMUFile *f, int ret, GError *err);
void qemu_file_set_error(QEMUFile *f, int ret);

void qemu_fflush(QEMUFile *f);
void qemu_put_buffer(QEMUFile *f, const uint8_t *buf, size_t len);
void qemu_put_byte(QEMUFile *f, int v);
void qemu_put_be16(QEMUFile *f, unsigned v);
void qemu_put_be32(QEMUFile *f, unsigned v);
void qemu_put_be64(QEMUFile *f, uint64_t v);
/* Writes len bytes of guest memory without copying them into the buffer
 * when they are large: they are queued by reference, in stream order, and
 * go out with the next flush (the memory must stay mapped until then). */
void qemu_put_buffer_nocopy(QEMUFile *f, const uint8_t *buf, size_t len);

/* Returns the bytes read; short only at EOF or error (then latched). */
size_t qemu_get_buffer(QEMUFile *f, uint8_t *buf, size_t len);
int qemu_get_byte(QEMUFile *f);
unsigned qemu_get_be16(QEMUFile *f);
unsigned qemu_get_be32(QEMUFile *f);
uint64_t qemu_get_be64(QEMUFile *f);
/* Looks at the next byte without consuming it; -1 at EOF/error. */
int qemu_peek_byte(QEMUFile *f, int offset);

/* Bytes written to (or read from) the channel so far, buffer included. */
uint64_t qemu_file_transferred(QEMUFile *f);

/* --- seekable helpers (SEEKABLE channels only) --- */
/* The absolute channel offset of the next byte of the stream. */
off_t qemu_get_offset(QEMUFile *f);
/* Moves the stream position to an absolute offset (flush/drop buffer). */
void qemu_set_offset(QEMUFile *f, off_t offset, int whence);
/* Positioned I/O that bypasses the stream buffer and position. */
size_t qemu_put_buffer_at(QEMUFile *f, const uint8_t *buf, size_t len,
                          off_t pos);
size_t qemu_get_buffer_at(QEMUFile *f, uint8_t *buf, size_t len, off_t pos);

/* Rate limiting for max-bandwidth: bytes allowed per 100 ms window. */
void qemu_file_set_rate_limit(QEMUFile *f, uint64_t bytes_per_sec);
/* True when this window's budget is used up. */
bool qemu_file_rate_limit(QEMUFile *f);
/* When the budget is used up, sleeps until the current window ends. */
void qemu_file_rate_limit_wait(QEMUFile *f);

#endif
