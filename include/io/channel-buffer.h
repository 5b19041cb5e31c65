/*
 * An in-memory channel: writes append to a growable buffer, reads consume
 * from the current offset. SEEKABLE. For unit tests and fuzzers, which load
 * a stream from memory without touching the file system.
 */
#ifndef IO_CHANNEL_BUFFER_H
#define IO_CHANNEL_BUFFER_H

#include "io/channel.h"

typedef struct QIOChannelBuffer {
    QIOChannel parent;
    uint8_t *data;
    size_t capacity;
    size_t usage;
    size_t offset;
} QIOChannelBuffer;

QIOChannelBuffer *qio_channel_buffer_new(size_t capacity);
/* A read-only view of caller-owned bytes, which must outlive the channel. */
QIOChannelBuffer *qio_channel_buffer_new_static(const void *data, size_t len);

#endif
