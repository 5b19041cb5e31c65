/*
 * multifd: guest memory over several channels at once, one thread each
 * (stream-format.md section 4; docs/devel/migration/multifd.rst).
 *
 * A page's way out: ram.c's dirty-page walk hands runs of dirty pages to
 * multifd_ram_sink; the migration thread queues them into a batch (up to
 * MULTIFD_BATCH_MAX_PAGES pages of one RAM block, MULTIFD_FILE_BATCH_MAX_PAGES
 * over a file) and swaps it with the
 * empty batch of an idle channel; the channel thread tests for zero pages
 * and sends the batch where its transport says:
 * - sockets (multifd-socket.c): a packet on the channel's own connection,
 *   pages maybe compressed (multifd-zlib.c, multifd-zstd.c);
 * - file: with mapped-ram (multifd-file.c): batches of up to 2 MiB, runs
 *   joined across small zero gaps, each run one positioned write at the
 *   pages' fixed slots through the channel's own descriptor, several in
 *   flight (io/pio-queue.c: io_uring, or synchronous pwrite).
 *
 * A page's way in: socket channels receive packets in their own threads
 * and write straight into guest RAM, stopping at every SYNC until the main
 * stream's MULTIFD_FLUSH lets them on; with a mapped-ram file, the main
 * thread parses headers and bitmaps, prefaults and queues extents of at
 * most 4 MiB, and the channels' reader threads preadv them.
 *
 * This header holds the entry points the rest of migration/ calls, the
 * compression interface, and the structures multifd.c shares with its
 * transport files.
 */
#ifndef MIGRATION_MULTIFD_H
#define MIGRATION_MULTIFD_H

#include "qemu/osdep.h"
#include "qemu/thread.h"

#include "io/channel.h"
#include "migration/mapped-ram.h"
#include "migration/qemu-file.h"
#include "migration/ram.h"
#include "qapi/qapi-types.h"
#include "system/ramblock.h"

/* The init message and every packet start with these. */
#define MULTIFD_MAGIC   0x11223344U
#define MULTIFD_VERSION 1

/* Pages per batch over sockets: one batch is one packet (128, section 4). */
#define MULTIFD_BATCH_MAX_PAGES 128
/*
 * Pages per batch for mapped-ram file channels: 2 MiB of guest RAM, so a
 * batch's runs (joined across small zero gaps, see multifd-file.c) become
 * few large positioned writes instead of one ~16 KiB write per run.
 */
#define MULTIFD_FILE_BATCH_MAX_PAGES 512
/* What the batch and channel arrays hold: the larger of the two. */
#define MULTIFD_BATCH_ARRAY_PAGES                                              \
    (MULTIFD_FILE_BATCH_MAX_PAGES > MULTIFD_BATCH_MAX_PAGES                    \
         ? MULTIFD_FILE_BATCH_MAX_PAGES                                        \
         : MULTIFD_BATCH_MAX_PAGES)

/* --- entry points for the rest of migration/ --- */

/*
 * The page sink ram.c selects when the multifd capability is on: over a
 * file (mapped-ram) or over sockets, decided at its setup.
 */
extern const RAMPageSink multifd_ram_sink;

/*
 * channel.c: the path of the file: migration being started, which every
 * multifd channel opens again for a descriptor of its own (through
 * qemu_open, so /dev/fdset/ID works). NULL forgets it.
 */
void multifd_set_outgoing_file(const char *path);
void multifd_set_incoming_file(const char *path);

/*
 * socket.c: an extra connection accepted on the incoming listener after
 * the main one. Takes ownership of ioc; its thread reads the init message
 * and receives packets. Returns true when no more connections are wanted
 * (all channels arrived, or the migration is over), so the listener can
 * close. Main loop.
 */
bool multifd_recv_new_channel(QIOChannel *ioc);

/*
 * migration.c, first thing on the migration thread: when the outgoing
 * migration is multifd over a file with direct-io, opens the file the way
 * the channels will (O_DIRECT) and checks that its file system does direct
 * I/O at page alignment, so that a refusal fails the migration in setup,
 * before a byte is written, with its own message ("Could not open '%s':
 * filesystem does not support O_DIRECT"). 0 otherwise, or -1 + errp.
 */
int multifd_file_send_check(GError **errp);
/* The same for an incoming multifd file load (O_RDONLY | O_DIRECT). */
int multifd_file_recv_check(GError **errp);

/*
 * ram.c, at a MULTIFD_FLUSH record: waits until every socket channel has
 * received the matching SYNC packet (all pages sent before it are in guest
 * RAM), then lets the channels go on. 0 or -1 with errp set.
 */
int multifd_recv_sync_main(GError **errp);

/*
 * ram.c, mapped-ram with multifd: loads one block (as mapped_ram_load_block)
 * with the page data read by the channels; multifd_file_load_wait waits
 * until they have read everything queued. Both: 0 or < 0 with errp set.
 */
int multifd_file_load_block(QEMUFile *f, RAMBlock *rb, GError **errp);
int multifd_file_load_wait(GError **errp);

/* ram.c, at the end of every load: stops and frees the incoming channels. */
void multifd_recv_cleanup(void);

/* x-query-multifd-channels: the current (or last) multifd migration's. */
MultifdChannelInfoList *multifd_query_channels(void);

/* --- compression (socket channels only) --- */

/*
 * One method. Pages go in as an iovec of whole pages (guest RAM, not
 * copied) and come out as one independent compressed block per packet, so
 * a receiver needs nothing from earlier packets. State is per channel and
 * allocated once; no call allocates.
 */
typedef struct MultiFDCompressor {
    const char *name;
    int method; /* MULTIFD_COMPRESSION_* */
    /* Compressor for blocks of at most max_in bytes at level. */
    void *(*send_new)(int level, size_t max_in, GError **errp);
    /* Bytes the output buffer needs for max_in bytes of input. */
    size_t (*send_bound)(void *state);
    /* Returns the compressed size, or -1 with errp set. */
    ssize_t (*compress)(void *state, const struct iovec *iov, size_t niov,
                        uint8_t *out, size_t out_size, GError **errp);
    void (*send_free)(void *state);
    void *(*recv_new)(GError **errp);
    /*
     * Decompresses in[0, in_len) into iov, which must be filled exactly
     * with nothing left over; 0 or -1 with errp set.
     */
    int (*decompress)(void *state, const uint8_t *in, size_t in_len,
                      const struct iovec *iov, size_t niov, GError **errp);
    void (*recv_free)(void *state);
} MultiFDCompressor;

extern const MultiFDCompressor multifd_zlib_compressor;
extern const MultiFDCompressor multifd_zstd_compressor;

/* The compressor of a MULTIFD_COMPRESSION_* value; NULL for none. */
const MultiFDCompressor *multifd_compressor(int method);

/* --- internal: shared by multifd.c and the transport files --- */

/* One channel's traffic (atomics), for x-query-multifd-channels. */
typedef struct MultiFDChannelStats {
    uint64_t bytes;
    uint64_t pages;
} MultiFDChannelStats;

void multifd_channel_account(MultiFDChannelStats *slot, uint64_t bytes,
                             uint64_t pages);

/* Pages of one block, queued by the migration thread for one channel. */
typedef struct MultiFDBatch {
    RAMBlock *rb;
    uint64_t pages_offset; /* mapped-ram: file offset of the block's page 0 */
    uint32_t num;
    uint64_t offset[MULTIFD_BATCH_ARRAY_PAGES]; /* byte offsets, ascending */
} MultiFDBatch;

typedef struct MultiFDSendChannel MultiFDSendChannel;

/* What a transport does with a channel; every call runs on its thread. */
typedef struct MultiFDSendOps {
    const char *name;
    /* Opens the channel's connection or descriptor into *ioc. */
    int (*open)(MultiFDSendChannel *c, QIOChannel **ioc, GError **errp);
    /* Sends a batch (after multifd_send_classify, which it calls). */
    int (*send_batch)(MultiFDSendChannel *c, const MultiFDBatch *b,
                      GError **errp);
    /* A sync point; NULL when the transport has nothing to send for it. */
    int (*send_sync)(MultiFDSendChannel *c, GError **errp);
    /*
     * Optional: frees c->transport_state, after the thread ended and
     * before c->ioc is closed.
     */
    void (*release)(MultiFDSendChannel *c);
} MultiFDSendOps;

extern const MultiFDSendOps multifd_socket_send_ops;
extern const MultiFDSendOps multifd_file_send_ops;

enum {
    MULTIFD_JOB_NONE,
    MULTIFD_JOB_BATCH,
    MULTIFD_JOB_SYNC,
};

struct MultiFDSendChannel {
    int id;
    GThread *thread;
    /* Set by the thread once open; read by cleanup, under the state lock. */
    QIOChannel *ioc;

    /* Handoff, under the state lock. */
    int job; /* MULTIFD_JOB_* */
    bool quit;
    QemuCond cond;
    MultiFDBatch *batch; /* swapped with the migration thread's */

    /* The thread's own, allocated once per migration. */
    uint32_t num_normal, num_zero;
    uint64_t normal[MULTIFD_BATCH_ARRAY_PAGES]; /* byte offsets with content */
    uint64_t zero[MULTIFD_BATCH_ARRAY_PAGES];   /* byte offsets of zero pages */
    struct iovec iov[MULTIFD_BATCH_ARRAY_PAGES + 2];
    uint8_t *packet;       /* socket: header and offsets */
    void *transport_state; /* file: the channel's write queue */
    const MultiFDCompressor *comp;
    void *comp_state;
    uint8_t *comp_buf;
    size_t comp_buf_size;

    MultiFDChannelStats *stats;
};

/*
 * Channel thread: splits the batch into c->normal and c->zero. Pages are
 * tested here only when zero-page-detection is "multifd"; otherwise all
 * are normal ("legacy" already took the zero pages out, "none" sends all).
 * join: the zero gap the sender joins, whose pages need not be proved
 * zero (zero_pages_split(); 0 for packets, where every zero page is left
 * out).
 */
void multifd_send_classify(MultiFDSendChannel *c, const MultiFDBatch *b,
                           uint32_t join);
/* After a batch: the global and per-channel figures (bytes written). */
void multifd_send_account(MultiFDSendChannel *c, uint64_t bytes);
/* The 16-byte UUID of the running outgoing migration. */
const uint8_t *multifd_send_uuid(void);
int multifd_send_channel_count(void);
/* Next packet number (one sequence over all channels). */
uint64_t multifd_send_next_packet_num(void);
/* Outgoing socket address ("unix:P", "tcp:H:P") or file path. */
const char *multifd_send_socket_address(void);
const char *multifd_send_file_path(void);
/* Copies of what channel.c recorded (g_free them; NULL when none). */
char *multifd_outgoing_file(void);
char *multifd_incoming_file(void);

/* --- internal: receive side --- */

typedef struct MultiFDRecvState MultiFDRecvState;

/*
 * One read job of the file loader: an extent of mapped-ram.c (len bytes at
 * file_offset into host, then its clear-bit pages zeroed).
 */
typedef MappedRamExtent MultiFDReadJob;

/*
 * File loading: reader threads per channel (sharing its descriptor), so
 * that several reads are in flight per channel, at most READERS_MAX over
 * all channels (and one per channel at least); and the depth of the queue
 * the loader fills ahead of them.
 */
#define MULTIFD_FILE_READERS_PER_CHANNEL 4
#define MULTIFD_FILE_READERS_MAX         16
#define MULTIFD_FILE_QUEUE_LEN           32

typedef struct MultiFDRecvChannel {
    MultiFDRecvState *state;
    int id; /* socket: -1 until the init message names it */
    GThread *thread;
    QIOChannel *ioc;
    QemuCond cond;
    /* file: the reader threads after the first (c->thread). */
    GThread *readers[MULTIFD_FILE_READERS_MAX];
    uint64_t syncs; /* socket: SYNC packets received */
    bool finished;  /* socket: the peer closed at a packet boundary */

    /* The socket thread's own, allocated once. */
    uint64_t last_packet_num;
    bool have_packet_num;
    RAMBlock *last_block;
    uint8_t *packet;
    struct iovec iov[MULTIFD_BATCH_MAX_PAGES];
    uint8_t *comp_buf;
    size_t comp_buf_size;
    void *comp_state[MULTIFD_COMPRESSION__MAX];

    MultiFDChannelStats *stats; /* NULL until named */
} MultiFDRecvChannel;

/*
 * Socket channel thread: registers the channel its init message names
 * (uuid of the migration, id, the source's channel count).
 */
bool multifd_recv_register(MultiFDRecvChannel *c, const uint8_t uuid[16],
                           unsigned id, unsigned count, GError **errp);
/*
 * Socket channel thread, after a SYNC packet: counts it and waits until
 * the load thread reached the matching MULTIFD_FLUSH. False when the
 * migration is over or failed (the thread then ends).
 */
bool multifd_recv_channel_synced(MultiFDRecvChannel *c);
/* The channel ended cleanly at a packet boundary (peer closed). */
void multifd_recv_channel_finished(MultiFDRecvChannel *c);
/*
 * A channel failed: the incoming migration fails with err (taken; the
 * first error wins) and the main stream is shut down so the loader stops.
 */
void multifd_recv_set_error(MultiFDRecvChannel *c, GError *err);
/* True once cleanup began (a failing read is then expected). */
bool multifd_recv_quitting(MultiFDRecvChannel *c);

/* multifd-socket.c: the thread of an accepted socket channel. */
gpointer multifd_socket_recv_thread(gpointer opaque);
/* Frees what that thread allocated (after it ended). */
void multifd_socket_recv_free(MultiFDRecvChannel *c);

/*
 * File loading (multifd.c): channels, queueing, waiting. The loader's
 * thread queues a job (waiting only when MULTIFD_FILE_QUEUE_LEN are already
 * waiting) after prefaulting its guest RAM, so the readers find it
 * populated; any idle reader of any channel takes it.
 */
int multifd_recv_file_setup(GError **errp);
int multifd_recv_queue_read(const MultiFDReadJob *job, GError **errp);
int multifd_recv_wait_reads(GError **errp);
/* multifd-file.c: opens the incoming file for c; reads one job. */
int multifd_file_recv_open(MultiFDRecvChannel *c, GError **errp);
int multifd_file_recv_read(MultiFDRecvChannel *c, const MultiFDReadJob *job,
                           GError **errp);

#endif
