/*
 * QIOPioQueue: positioned writes to one SEEKABLE channel with several of
 * them in flight at once. A mapped-ram save writes many separate runs at
 * their fixed offsets; one synchronous pwritev at a time leaves the disk
 * waiting on round trips, so a queue keeps up to `depth` writes in the
 * kernel.
 *
 * Two engines behind one interface, chosen once by the constructor:
 * - io_uring (liburing, when minivm was built with it and the kernel
 *   allows it): writes are submitted as they are queued and reaped when a
 *   slot is needed or on drain;
 * - synchronous: each write is qio_channel_pwrite_all() on the spot (the
 *   fallback, and what a queue of depth 1 is).
 * While debug fault injection is armed, writes take the synchronous path so
 * that its faults apply to them (qemu/fault-inject.h).
 *
 * The caller keeps every queued buffer valid and unchanged in meaning
 * until qio_pio_queue_drain() returned (guest RAM, for migration). Errors
 * are sticky: the first failed write is reported by the call that finds it
 * (a later pwrite or the drain), and every later call fails too.
 * Nothing is allocated per write. One thread uses a queue at a time.
 */
#ifndef IO_PIO_QUEUE_H
#define IO_PIO_QUEUE_H

#include "qemu/osdep.h"

#include "io/channel.h"

typedef struct QIOPioQueue QIOPioQueue;

/* Largest depth a queue accepts. */
#define QIO_PIO_QUEUE_MAX_DEPTH 256

typedef enum {
    QIO_PIO_ENGINE_AUTO,  /* io_uring when available, else synchronous */
    QIO_PIO_ENGINE_SYNC,  /* always synchronous */
    QIO_PIO_ENGINE_URING, /* io_uring or fail (tests) */
} QIOPioEngine;

/*
 * A queue over ioc (SEEKABLE, with a descriptor; it takes a reference)
 * keeping at most depth (1..QIO_PIO_QUEUE_MAX_DEPTH) writes in flight.
 * NULL with errp set when ioc cannot do positioned writes, or engine is
 * URING and io_uring is unavailable.
 */
QIOPioQueue *qio_pio_queue_new(QIOChannel *ioc, unsigned depth,
                               QIOPioEngine engine, GError **errp);

/* True when writes really are asynchronous (io_uring). */
bool qio_pio_queue_is_async(const QIOPioQueue *q);

/*
 * Queues a write of len bytes from buf at file offset. May wait for a
 * slot (reaping completions). Returns 0, or -1 with errp set when this or
 * an earlier write failed.
 */
int qio_pio_queue_pwrite(QIOPioQueue *q, const void *buf, size_t len,
                         off_t offset, GError **errp);

/* Waits until every queued write completed. 0 or -1 as above. */
int qio_pio_queue_drain(QIOPioQueue *q, GError **errp);

/* Waits for what is in flight (errors dropped), then frees q. */
void qio_pio_queue_free(QIOPioQueue *q);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QIOPioQueue, qio_pio_queue_free)

#endif
