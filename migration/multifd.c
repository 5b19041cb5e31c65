/*
 * multifd: the channels, their threads, the batches, the sync points and
 * the statistics (see multifd.h for the picture, and
 * docs/devel/migration/multifd.rst for the protocol and its reasons).
 *
 * Send side. The migration thread fills one batch (pages of one block)
 * and hands it over by swapping pointers with the empty batch of an idle
 * channel, so nothing is allocated or copied per batch. A channel does
 * one job at a time (a batch or a sync), which keeps every channel's
 * traffic in order without a queue. Sync points: after setup (sockets),
 * whenever the dirty bitmap was refilled since pages were last handed out
 * (the end of every pass, and the syncs migration.c asks for in between),
 * and at completion. After a sync no page handed out before it can still
 * be in flight when the same page goes out again: over sockets the
 * receiver holds every channel at its SYNC packet until the main stream's
 * MULTIFD_FLUSH; over a file the migration thread waits until every
 * channel is idle.
 *
 * Receive side. Socket channels arrive on the migration's listener, name
 * themselves in an init message and receive packets in their own threads
 * (multifd-socket.c); the main thread's MULTIFD_FLUSH waits for all of
 * them. File channels get read jobs from the main thread through a queue
 * that several reader threads per channel take from (multifd-file.c).
 *
 * Errors: the first failure of any channel fails the migration; the
 * others are shut down so no thread stays blocked. A cancel or a VM
 * shutdown is noticed by every wait within WAIT_SLICE_US, and so is, over
 * sockets, the destination closing the main channel or a channel (see
 * multifd_send_hung_up).
 */
#include "qemu/osdep.h"
#include "qemu/thread.h"

#include <poll.h>

#include "migration/mapped-ram.h"
#include "migration/migration-stats.h"
#include "migration/migration.h"
#include "migration/multifd.h"
#include "migration/options.h"
#include "migration/socket.h"
#include "migration/zero-pages.h"
#include "qemu/bitmap.h"
#include "qemu/cutils.h"
#include "system/main-loop.h"
#include "system/runstate.h"

/* How long a wait sleeps before looking at cancel / shutdown again. */
#define WAIT_SLICE_US (100 * 1000)

/* ------------------------------------------------------------------ */
/* Transport addresses and statistics                                  */
/* ------------------------------------------------------------------ */

static QemuMutex paths_lock;
static char *outgoing_file;
static char *incoming_file;

void multifd_set_outgoing_file(const char *path)
{
    qemu_mutex_lock(&paths_lock);
    g_free(outgoing_file);
    outgoing_file = g_strdup(path);
    qemu_mutex_unlock(&paths_lock);
}

void multifd_set_incoming_file(const char *path)
{
    qemu_mutex_lock(&paths_lock);
    g_free(incoming_file);
    incoming_file = g_strdup(path);
    qemu_mutex_unlock(&paths_lock);
}

/* A copy of *which, taken under the lock (g_free it). */
static char *path_copy(char **which)
{
    char *copy;

    qemu_mutex_lock(&paths_lock);
    copy = g_strdup(*which);
    qemu_mutex_unlock(&paths_lock);
    return copy;
}

char *multifd_outgoing_file(void)
{
    return path_copy(&outgoing_file);
}

char *multifd_incoming_file(void)
{
    return path_copy(&incoming_file);
}

/*
 * Per-channel figures of the current (or last) multifd migration, either
 * direction. The array is replaced when the next one starts, after the
 * previous channels are gone, so channels update their slot lock-free.
 */
static QemuMutex stats_lock;
static MultiFDChannelStats *stats;
static int stats_capacity;
static int stats_count; /* slots query-multifd-channels shows */

static void multifd_stats_reset(int capacity, int count)
{
    qemu_mutex_lock(&stats_lock);
    g_free(stats);
    stats = g_new0(MultiFDChannelStats, capacity);
    stats_capacity = capacity;
    stats_count = count;
    qemu_mutex_unlock(&stats_lock);
}

static void multifd_stats_set_count(int count)
{
    qemu_mutex_lock(&stats_lock);
    stats_count = MIN(count, stats_capacity);
    qemu_mutex_unlock(&stats_lock);
}

static MultiFDChannelStats *multifd_stats_slot(int id)
{
    MultiFDChannelStats *slot;

    qemu_mutex_lock(&stats_lock);
    g_assert(id < stats_capacity);
    slot = &stats[id];
    qemu_mutex_unlock(&stats_lock);
    return slot;
}

void multifd_channel_account(MultiFDChannelStats *slot, uint64_t bytes,
                             uint64_t pages)
{
    stat64_add(&slot->bytes, bytes);
    stat64_add(&slot->pages, pages);
}

MultifdChannelInfoList *multifd_query_channels(void)
{
    MultifdChannelInfoList *head = NULL, **tail = &head;

    qemu_mutex_lock(&stats_lock);
    for (int i = 0; i < stats_count; i++) {
        MultifdChannelInfoList *item = g_new0(MultifdChannelInfoList, 1);

        item->value = g_new0(MultifdChannelInfo, 1);
        item->value->id = i;
        item->value->bytes = stat64_get(&stats[i].bytes);
        item->value->pages = stat64_get(&stats[i].pages);
        *tail = item;
        tail = &item->next;
    }
    qemu_mutex_unlock(&stats_lock);
    return head;
}

const MultiFDCompressor *multifd_compressor(int method)
{
    switch (method) {
    case MULTIFD_COMPRESSION_ZLIB:
        return &multifd_zlib_compressor;
    case MULTIFD_COMPRESSION_ZSTD:
        return &multifd_zstd_compressor;
    default:
        return NULL;
    }
}

static int64_t deadline(void)
{
    return g_get_monotonic_time() + WAIT_SLICE_US;
}

/* ------------------------------------------------------------------ */
/* Send side                                                           */
/* ------------------------------------------------------------------ */

typedef struct MultiFDSendState {
    const MultiFDSendOps *ops;
    int count;
    MultiFDSendChannel *channels;
    MultiFDBatch *batches; /* count + 1: one per channel, one being filled */
    MultiFDBatch *pending; /* the one the migration thread fills */

    QemuMutex lock;
    QemuCond idle_cond; /* the migration thread waits here for channels */
    GError *error;      /* the first channel error */
    int next;           /* where the search for an idle channel starts */

    int zero_detection; /* ZERO_PAGE_DETECTION_* */
    /* Pages per batch: a packet (sockets), or a span of a file. */
    uint32_t batch_max_pages;
    uint8_t uuid[16];
    char *socket_addr;
    char *file_path;
    uint64_t packet_num;       /* atomic */
    uint64_t sync_gen;         /* dirty_sync_count at the last sync point */
    bool dirty_since_sync;     /* pages were handed out since then */
    RAMBlock *last_main_block; /* legacy zero records: CONTINUE */

    /* max-bandwidth: a token bucket over what the channels wrote. */
    int64_t rate_last_us;
    uint64_t rate_last_bytes;
    int64_t rate_credit; /* bytes; negative: written ahead of the rate */
} MultiFDSendState;

/* The running outgoing multifd migration (migration thread owns it). */
static MultiFDSendState *send_state;

const uint8_t *multifd_send_uuid(void)
{
    return send_state->uuid;
}

uint64_t multifd_send_next_packet_num(void)
{
    return __atomic_fetch_add(&send_state->packet_num, 1, __ATOMIC_RELAXED);
}

const char *multifd_send_socket_address(void)
{
    return send_state->socket_addr;
}

const char *multifd_send_file_path(void)
{
    return send_state->file_path;
}

int multifd_send_channel_count(void)
{
    return send_state->count;
}

G_STATIC_ASSERT(MULTIFD_BATCH_ARRAY_PAGES <= ZERO_PAGES_SPLIT_MAX);

void multifd_send_classify(MultiFDSendChannel *c, const MultiFDBatch *b,
                           uint32_t join)
{
    zero_pages_split(b->rb->host, b->offset, 0, b->num, join,
                     send_state->zero_detection == ZERO_PAGE_DETECTION_MULTIFD,
                     c->normal, &c->num_normal, c->zero, &c->num_zero);
}

void multifd_send_account(MultiFDSendChannel *c, uint64_t bytes)
{
    stat64_add(&mig_stats.multifd_bytes, bytes);
    stat64_add(&mig_stats.normal_pages, c->num_normal);
    stat64_add(&mig_stats.zero_pages, c->num_zero);
    multifd_channel_account(c->stats, bytes, c->num_normal + c->num_zero);
}

/*
 * Keeps the first error (the rest are usually its consequences) and wakes
 * the migration thread. s->lock held.
 */
static void multifd_send_set_error_locked(MultiFDSendState *s,
                                          MultiFDSendChannel *c, GError *err)
{
    if (!s->error) {
        error_prepend(&err, "multifd channel %d: ", c->id);
        s->error = err;
        err = NULL;
    }
    qemu_cond_broadcast(&s->idle_cond);
    g_clear_error(&err);
}

static gpointer multifd_send_thread(gpointer opaque)
{
    MultiFDSendChannel *c = opaque;
    MultiFDSendState *s = send_state;
    GError *err = NULL;
    QIOChannel *ioc = NULL;

    if (s->ops->open(c, &ioc, &err) < 0) {
        qemu_mutex_lock(&s->lock);
        multifd_send_set_error_locked(s, c, err);
        qemu_mutex_unlock(&s->lock);
        return NULL;
    }
    qemu_mutex_lock(&s->lock);
    c->ioc = ioc;
    for (;;) {
        int job, ret;

        while (c->job == MULTIFD_JOB_NONE && !c->quit) {
            qemu_cond_wait(&c->cond, &s->lock);
        }
        job = c->job;
        if (job == MULTIFD_JOB_NONE) {
            break; /* quit, with nothing left to do */
        }
        qemu_mutex_unlock(&s->lock);

        if (job == MULTIFD_JOB_BATCH) {
            ret = s->ops->send_batch(c, c->batch, &err);
        } else {
            ret = s->ops->send_sync ? s->ops->send_sync(c, &err) : 0;
        }

        qemu_mutex_lock(&s->lock);
        /* The error first: nobody may take this channel for idle and well. */
        if (ret < 0) {
            multifd_send_set_error_locked(s, c, err);
        }
        c->job = MULTIFD_JOB_NONE;
        qemu_cond_broadcast(&s->idle_cond);
        if (ret < 0) {
            break;
        }
    }
    qemu_mutex_unlock(&s->lock);
    return NULL;
}

static bool migration_cancelling(void)
{
    MigrationState *ms = migrate_get_current();

    return __atomic_load_n(&ms->state, __ATOMIC_SEQ_CST) ==
           MIGRATION_STATUS_CANCELLING;
}

/*
 * With s->lock held: false (and *errp set) when a channel failed or the
 * migration is being cancelled, so a wait must end.
 */
static bool multifd_send_check(MultiFDSendState *s, GError **errp)
{
    if (s->error) {
        *errp = g_error_copy(s->error);
        return false;
    }
    if (migration_cancelling()) {
        error_setg(errp, "multifd: migration cancelled");
        return false;
    }
    return true;
}

/*
 * Sockets: the destination never writes on the main channel nor on a
 * multifd channel, so any of them turning readable (EOF), hung up or in
 * error means the destination closed it: it failed, or went away. A
 * channel thread blocked writing to a peer that stopped reading without
 * closing (a destination that failed early and still holds the socket,
 * or a middlebox) would never see an error of its own, so the waits
 * below look here. s->lock held, which keeps every c->ioc open;
 * ms->lock keeps the main one open. Returns the channel's name or NULL.
 */
static const char *multifd_send_hung_up(MultiFDSendState *s)
{
    MigrationState *ms = migrate_get_current();
    struct pollfd pfd[256];
    int n = 0;
    const char *which = NULL;

    qemu_mutex_lock(&ms->lock);
    if (ms->ioc) {
        pfd[n++] = (struct pollfd){qio_channel_get_fd(ms->ioc, G_IO_IN),
                                   POLLIN | POLLRDHUP, 0};
    }
    for (int i = 0; i < s->count && n < (int)G_N_ELEMENTS(pfd); i++) {
        QIOChannel *ioc = s->channels[i].ioc;

        pfd[n++] = (struct pollfd){ioc ? qio_channel_get_fd(ioc, G_IO_IN) : -1,
                                   POLLIN | POLLRDHUP, 0};
    }
    if (poll(pfd, n, 0) > 0) {
        for (int i = 0; i < n && !which; i++) {
            if (pfd[i].revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR)) {
                which = ms->ioc && i == 0 ? "the main channel"
                                          : "a multifd channel";
            }
        }
    }
    qemu_mutex_unlock(&ms->lock);
    return which;
}

/*
 * multifd_send_check for a wait that started at start: once it has lasted
 * a slice, also ends it when the destination hung up (sockets only).
 * s->lock held.
 */
static bool multifd_send_check_wait(MultiFDSendState *s, int64_t start,
                                    GError **errp)
{
    const char *which;

    if (!multifd_send_check(s, errp)) {
        return false;
    }
    if (!s->socket_addr || g_get_monotonic_time() - start < WAIT_SLICE_US) {
        return true;
    }
    which = multifd_send_hung_up(s);
    if (which) {
        error_setg(errp,
                   "multifd: the destination closed %s while pages were "
                   "still being sent",
                   which);
        return false;
    }
    return true;
}

/* Latches err into the main stream, where migration.c looks for it. */
static int multifd_send_fail(QEMUFile *f, GError *err)
{
    qemu_file_set_error_obj(f, -EIO, err);
    return -EIO;
}

/*
 * Waits for an idle channel, round robin from the last one used so the
 * load spreads evenly. NULL with *errp set when the migration must stop.
 * s->lock held.
 */
static MultiFDSendChannel *multifd_send_idle_channel(MultiFDSendState *s,
                                                     GError **errp)
{
    int64_t start = g_get_monotonic_time();

    for (;;) {
        if (!multifd_send_check_wait(s, start, errp)) {
            return NULL;
        }
        for (int i = 0; i < s->count; i++) {
            MultiFDSendChannel *c = &s->channels[(s->next + i) % s->count];

            if (c->job == MULTIFD_JOB_NONE) {
                s->next = (c->id + 1) % s->count;
                return c;
            }
        }
        qemu_cond_wait_until(&s->idle_cond, &s->lock, deadline());
    }
}

/* Gives channel c a job (s->lock held; c is idle). */
static void multifd_send_post(MultiFDSendChannel *c, int job)
{
    c->job = job;
    qemu_cond_signal(&c->cond);
}

/* Hands the pending batch to an idle channel, taking its empty one. */
static int multifd_send_flush_batch(MultiFDSendState *s, QEMUFile *f)
{
    GError *err = NULL;
    MultiFDSendChannel *c;
    MultiFDBatch *empty;

    if (!s->pending->num) {
        return 0;
    }
    qemu_mutex_lock(&s->lock);
    c = multifd_send_idle_channel(s, &err);
    if (c) {
        empty = c->batch;
        c->batch = s->pending;
        s->pending = empty;
        multifd_send_post(c, MULTIFD_JOB_BATCH);
    }
    qemu_mutex_unlock(&s->lock);
    if (!c) {
        return multifd_send_fail(f, err);
    }
    s->pending->num = 0;
    s->pending->rb = NULL;
    return 0;
}

/* Waits until channel c (or, with c NULL, every channel) is idle. */
static bool multifd_send_wait_idle(MultiFDSendState *s, MultiFDSendChannel *c,
                                   GError **errp)
{
    int64_t start = g_get_monotonic_time();

    for (;;) {
        bool idle = true;

        if (!multifd_send_check_wait(s, start, errp)) {
            return false;
        }
        for (int i = 0; i < s->count; i++) {
            if ((!c || c == &s->channels[i]) &&
                s->channels[i].job != MULTIFD_JOB_NONE) {
                idle = false;
            }
        }
        if (idle) {
            return true;
        }
        qemu_cond_wait_until(&s->idle_cond, &s->lock, deadline());
    }
}

/*
 * A sync point. Sockets: every channel sends a SYNC packet after what it
 * has, and the main stream gets MULTIFD_FLUSH, where the receiver waits
 * for all of them. File: wait until every channel has written all it was
 * given. Either way no page handed out before can race with a page handed
 * out after.
 */
static int multifd_send_sync(MultiFDSendState *s, QEMUFile *f)
{
    GError *err = NULL;
    bool ok = true;
    int ret;

    ret = multifd_send_flush_batch(s, f);
    if (ret < 0) {
        return ret;
    }
    qemu_mutex_lock(&s->lock);
    if (s->ops->send_sync) {
        for (int i = 0; i < s->count && ok; i++) {
            MultiFDSendChannel *c = &s->channels[i];

            ok = multifd_send_wait_idle(s, c, &err);
            if (ok) {
                multifd_send_post(c, MULTIFD_JOB_SYNC);
            }
        }
    } else {
        ok = multifd_send_wait_idle(s, NULL, &err);
    }
    qemu_mutex_unlock(&s->lock);
    if (!ok) {
        return multifd_send_fail(f, err);
    }
    if (s->ops->send_sync) {
        /*
         * Out now, not when the buffer fills: the receiving channels stop
         * at their SYNC until the destination reads this record, so
         * holding it back would stall them, and then us.
         */
        qemu_put_be64(f, RAM_SAVE_FLAG_MULTIFD_FLUSH);
        qemu_fflush(f);
    }
    s->sync_gen = stat64_get(&mig_stats.dirty_sync_count);
    s->dirty_since_sync = false;
    return qemu_file_get_error(f);
}

static void multifd_send_cleanup(void)
{
    MultiFDSendState *s = send_state;
    bool shutdown = false;

    if (!s) {
        return;
    }
    qemu_mutex_lock(&s->lock);
    for (int i = 0; i < s->count; i++) {
        /* A busy channel at this point is stuck or unwanted: unblock it. */
        shutdown |= s->channels[i].job != MULTIFD_JOB_NONE;
    }
    shutdown |= s->error != NULL;
    for (int i = 0; i < s->count; i++) {
        MultiFDSendChannel *c = &s->channels[i];

        c->quit = true;
        if (shutdown && c->ioc &&
            qio_channel_has_feature(c->ioc, QIO_CHANNEL_FEATURE_SHUTDOWN)) {
            qio_channel_shutdown(c->ioc, QIO_CHANNEL_SHUTDOWN_BOTH, NULL);
        }
        qemu_cond_signal(&c->cond);
    }
    qemu_mutex_unlock(&s->lock);

    for (int i = 0; i < s->count; i++) {
        MultiFDSendChannel *c = &s->channels[i];

        if (c->thread) {
            g_thread_join(c->thread);
        }
        if (s->ops->release) {
            s->ops->release(c);
        }
        if (c->ioc) {
            /*
             * A file channel fsyncs here; the main channel's fsync of the
             * same file ran before this, so little is left to flush.
             */
            qio_channel_close(c->ioc, NULL);
            qio_channel_unref(c->ioc);
        }
        if (c->comp) {
            c->comp->send_free(c->comp_state);
        }
        g_free(c->comp_buf);
        g_free(c->packet);
        qemu_cond_destroy(&c->cond);
    }
    if (!s->socket_addr) {
        mapped_ram_save_cleanup();
    }
    g_clear_error(&s->error);
    qemu_mutex_destroy(&s->lock);
    qemu_cond_destroy(&s->idle_cond);
    g_free(s->channels);
    g_free(s->batches);
    g_free(s->socket_addr);
    g_free(s->file_path);
    g_free(s);
    send_state = NULL;
}

static void multifd_random_uuid(uint8_t uuid[16])
{
    for (int i = 0; i < 16; i += 4) {
        uint32_t r = g_random_int();

        memcpy(uuid + i, &r, 4);
    }
    uuid[6] = (uuid[6] & 0x0f) | 0x40; /* version 4 (random) */
    uuid[8] = (uuid[8] & 0x3f) | 0x80; /* RFC 4122 variant */
}

static int multifd_sink_setup(QEMUFile *f, GError **errp)
{
    MigrationState *ms = migrate_get_current();
    int count = migrate_multifd_channels();
    MultiFDSendState *s;
    int ret;

    multifd_send_cleanup();
    s = g_new0(MultiFDSendState, 1);
    qemu_mutex_init(&s->lock);
    qemu_cond_init(&s->idle_cond);
    s->zero_detection = migrate_zero_page_detection();
    multifd_random_uuid(s->uuid);
    send_state = s;

    if (migrate_mapped_ram()) {
        s->ops = &multifd_file_send_ops;
        s->batch_max_pages = MULTIFD_FILE_BATCH_MAX_PAGES;
        s->file_path = multifd_outgoing_file();
        if (!s->file_path) {
            error_setg(errp, "multifd over a file needs a file: URI");
            return -EINVAL;
        }
        ret = mapped_ram_save_setup(f, errp);
        if (ret < 0) {
            return ret;
        }
    } else {
        s->ops = &multifd_socket_send_ops;
        s->batch_max_pages = MULTIFD_BATCH_MAX_PAGES;
        /*
         * The destination takes the first connection on its listener for
         * the main one: let the stream's first bytes go before any channel
         * connects, so even a lost handshake ACK cannot reorder them.
         */
        qemu_fflush(f);
        qemu_mutex_lock(&ms->lock);
        s->socket_addr = g_strdup(ms->connect_addr);
        qemu_mutex_unlock(&ms->lock);
        if (!s->socket_addr) {
            error_setg(errp,
                       "Migration requires multi-channel URIs (e.g. tcp)");
            return -EINVAL;
        }
    }

    /* From here on cleanup has channels to take down. */
    s->count = count;
    s->channels = g_new0(MultiFDSendChannel, s->count);
    s->batches = g_new0(MultiFDBatch, s->count + 1);
    s->pending = &s->batches[s->count];
    multifd_stats_reset(s->count, s->count);
    for (int i = 0; i < s->count; i++) {
        MultiFDSendChannel *c = &s->channels[i];
        g_autofree char *name = g_strdup_printf("mig/src/send_%d", i);

        c->id = i;
        c->batch = &s->batches[i];
        c->stats = multifd_stats_slot(i);
        qemu_cond_init(&c->cond);
        c->thread = g_thread_new(name, multifd_send_thread, c);
    }
    /*
     * The channels connect and open on their own threads; the monitor is
     * not held up by it (this runs under the BQL). Over sockets, the first
     * sync makes the destination wait for all of them right away.
     */
    if (s->ops->send_sync) {
        ret = multifd_send_sync(s, f);
        if (ret < 0) {
            return qemu_file_get_error_obj(f, errp);
        }
    }
    return 0;
}

static int multifd_sink_block_header(QEMUFile *f, RAMBlock *rb, GError **errp)
{
    if (send_state->socket_addr) {
        return 0;
    }
    return mapped_ram_save_block_header(f, rb, errp);
}

static void multifd_sink_section_begin(QEMUFile *f)
{
    /* Each section names its first block again (legacy zero records). */
    send_state->last_main_block = NULL;
}

/*
 * zero-page-detection=legacy: the migration thread found a zero page.
 * Over sockets it goes on the main stream as a ZERO record; over a file
 * its slot is just marked empty (channels set bits in the same words).
 */
static void multifd_send_legacy_zero(MultiFDSendState *s, QEMUFile *f,
                                     RAMBlock *rb, uint64_t offset)
{
    if (!s->socket_addr) {
        clear_bit_atomic(offset >> TARGET_PAGE_BITS, rb->file_bmap);
        return;
    }
    if (s->last_main_block == rb) {
        qemu_put_be64(f, offset | RAM_SAVE_FLAG_ZERO | RAM_SAVE_FLAG_CONTINUE);
    } else {
        size_t len = strlen(rb->idstr);

        qemu_put_be64(f, offset | RAM_SAVE_FLAG_ZERO);
        qemu_put_byte(f, len);
        qemu_put_buffer(f, (const uint8_t *)rb->idstr, len);
        s->last_main_block = rb;
    }
    qemu_put_byte(f, 0);
}

/*
 * max-bandwidth for the channels: the migration thread hands out no more
 * pages while the channels are ahead of the rate. The bytes counted are
 * those on the wire, which the channels report after writing, so a debt
 * is paid back by sleeping rather than never incurred; credit saved while
 * idle is capped at 100 ms worth, so an idle spell is not followed by a
 * burst. As for the main stream, there is no limit once the guest stopped.
 */
#define RATE_MAX_CREDIT_US (100 * 1000)

static void multifd_send_rate_limit(MultiFDSendState *s)
{
    MigrationState *ms = migrate_get_current();
    uint64_t bw = migrate_max_bandwidth();
    uint64_t sent = stat64_get(&mig_stats.multifd_bytes);
    int64_t now = g_get_monotonic_time();
    int64_t max_credit = bw * RATE_MAX_CREDIT_US / G_USEC_PER_SEC;

    if (!bw || __atomic_load_n(&ms->state, __ATOMIC_SEQ_CST) !=
                   MIGRATION_STATUS_ACTIVE) {
        s->rate_last_us = 0;
        return;
    }
    if (!s->rate_last_us) {
        s->rate_last_us = now;
        s->rate_last_bytes = sent;
        s->rate_credit = max_credit;
        return;
    }
    s->rate_credit += (double)bw * (now - s->rate_last_us) / G_USEC_PER_SEC;
    s->rate_credit = MIN(s->rate_credit, max_credit);
    s->rate_credit -= sent - s->rate_last_bytes;
    s->rate_last_us = now;
    s->rate_last_bytes = sent;
    if (s->rate_credit < 0) {
        /* At most one slice, so a cancel is still seen in time. */
        g_usleep(MIN(-s->rate_credit * (double)G_USEC_PER_SEC / bw,
                     RATE_MAX_CREDIT_US));
    }
}

static int multifd_sink_send_pages(QEMUFile *f, RAMBlock *rb, uint64_t first,
                                   uint64_t npages)
{
    MultiFDSendState *s = send_state;
    bool legacy_zero = s->zero_detection == ZERO_PAGE_DETECTION_LEGACY;
    uint64_t zero = 0;
    int ret;

    /*
     * The dirty bitmap was refilled since pages were handed out: one of
     * those may be among these, so sync before it can go out again.
     */
    if (s->dirty_since_sync &&
        stat64_get(&mig_stats.dirty_sync_count) != s->sync_gen) {
        ret = multifd_send_sync(s, f);
        if (ret < 0) {
            return ret;
        }
    }
    for (uint64_t page = first; page < first + npages; page++) {
        uint64_t offset = page << TARGET_PAGE_BITS;
        MultiFDBatch *b = s->pending;

        if (legacy_zero &&
            buffer_is_zero(rb->host + offset, TARGET_PAGE_SIZE)) {
            multifd_send_legacy_zero(s, f, rb, offset);
            zero++;
            continue;
        }
        if (b->num && (b->rb != rb || b->num == s->batch_max_pages)) {
            multifd_send_rate_limit(s);
            ret = multifd_send_flush_batch(s, f);
            if (ret < 0) {
                return ret;
            }
            b = s->pending;
        }
        if (!b->num) {
            b->rb = rb;
            b->pages_offset =
                s->socket_addr ? 0 : mapped_ram_block_pages_offset(rb);
        }
        b->offset[b->num++] = offset;
    }
    stat64_add(&mig_stats.zero_pages, zero);
    s->dirty_since_sync = true;
    return qemu_file_get_error(f);
}

static int multifd_sink_pass_done(QEMUFile *f)
{
    return multifd_send_sync(send_state, f);
}

static int multifd_sink_complete(QEMUFile *f)
{
    MultiFDSendState *s = send_state;
    GError *err = NULL;
    bool ok;
    int ret;

    ret = multifd_send_sync(s, f);
    if (ret < 0) {
        return ret;
    }
    /* Everything is written (or queued in the sockets) before we go on. */
    qemu_mutex_lock(&s->lock);
    ok = multifd_send_wait_idle(s, NULL, &err);
    qemu_mutex_unlock(&s->lock);
    if (!ok) {
        return multifd_send_fail(f, err);
    }
    if (!s->socket_addr) {
        return mapped_ram_save_bitmaps(f);
    }
    return 0;
}

const RAMPageSink multifd_ram_sink = {
    .name = "multifd",
    .setup = multifd_sink_setup,
    .block_header = multifd_sink_block_header,
    .section_begin = multifd_sink_section_begin,
    .send_pages = multifd_sink_send_pages,
    .pass_done = multifd_sink_pass_done,
    .complete = multifd_sink_complete,
    .cleanup = multifd_send_cleanup,
};

/* ------------------------------------------------------------------ */
/* Receive side                                                        */
/* ------------------------------------------------------------------ */

typedef struct MultiFDRecvState {
    QemuMutex lock;
    QemuCond main_cond; /* the load thread waits here */
    bool file;
    int expected;   /* channels of this migration; 0 until known */
    GPtrArray *all; /* every channel object, named or not yet */
    MultiFDRecvChannel **by_id;
    int registered;
    uint8_t uuid[16];
    bool have_uuid;
    uint64_t flushes; /* MULTIFD_FLUSH records the load thread passed */
    /* file: the read jobs queued ahead of the readers (a ring). */
    MultiFDReadJob *queue;
    unsigned q_head, q_len;
    unsigned in_flight; /* jobs a reader took and has not finished */
    QemuCond work_cond; /* file readers wait here for jobs */
    bool populate;      /* prefault each job's RAM before queueing it */
    GError *error;
    bool quit;
} MultiFDRecvState;

/* recv_lock guards the pointer: the main loop and the load thread race. */
static QemuMutex recv_lock;
static MultiFDRecvState *recv_state;
/* The load ended: late connections are closed right away. */
static bool recv_done;

static MultiFDRecvState *multifd_recv_state_new(bool file, int expected)
{
    MultiFDRecvState *st = g_new0(MultiFDRecvState, 1);

    qemu_mutex_init(&st->lock);
    qemu_cond_init(&st->main_cond);
    qemu_cond_init(&st->work_cond);
    st->file = file;
    st->all = g_ptr_array_new();
    /* Sockets learn the count from the first init message. */
    st->expected = expected;
    multifd_stats_reset(file ? expected : 255, file ? expected : 0);
    if (expected) {
        st->by_id = g_new0(MultiFDRecvChannel *, expected);
    }
    return st;
}

/* The socket receive state, created by whoever needs it first. */
static MultiFDRecvState *multifd_recv_socket_state_locked(void)
{
    if (!recv_state && !recv_done) {
        recv_state = multifd_recv_state_new(false, 0);
    }
    return recv_state;
}

static MultiFDRecvState *multifd_recv_socket_state(void)
{
    MultiFDRecvState *st;

    qemu_mutex_lock(&recv_lock);
    st = multifd_recv_socket_state_locked();
    qemu_mutex_unlock(&recv_lock);
    return st;
}

static MultiFDRecvChannel *multifd_recv_channel_new(MultiFDRecvState *st)
{
    MultiFDRecvChannel *c = g_new0(MultiFDRecvChannel, 1);

    c->id = -1;
    c->state = st;
    qemu_cond_init(&c->cond);
    return c;
}

bool multifd_recv_new_channel(QIOChannel *ioc)
{
    MultiFDRecvState *st;
    MultiFDRecvChannel *c;
    bool enough = true;

    /*
     * recv_lock until the channel is in st->all: the load thread's
     * cleanup (multifd_recv_cleanup) detaches st under it and then frees
     * it, joining only the channels it finds there.
     */
    qemu_mutex_lock(&recv_lock);
    st = multifd_recv_socket_state_locked();
    if (!st || st->file) {
        qemu_mutex_unlock(&recv_lock);
        qio_channel_unref(ioc);
        return true;
    }
    c = multifd_recv_channel_new(st);
    c->ioc = ioc;
    qemu_mutex_lock(&st->lock);
    if (!st->quit) {
        g_ptr_array_add(st->all, c);
        enough = st->expected && (int)st->all->len >= st->expected;
        c->thread = g_thread_new("mig/dst/recv", multifd_socket_recv_thread, c);
        c = NULL;
    }
    qemu_mutex_unlock(&st->lock);
    qemu_mutex_unlock(&recv_lock);
    if (c) {
        qio_channel_unref(ioc);
        qemu_cond_destroy(&c->cond);
        g_free(c);
    }
    return enough;
}

static gboolean multifd_stop_listener(gpointer opaque)
{
    socket_incoming_stop();
    return G_SOURCE_REMOVE;
}

static void uuid_format(const uint8_t u[16], char out[37])
{
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10],
             u[11], u[12], u[13], u[14], u[15]);
}

bool multifd_recv_register(MultiFDRecvChannel *c, const uint8_t uuid[16],
                           unsigned id, unsigned count, GError **errp)
{
    MultiFDRecvState *st = c->state;
    bool all_here = false;

    qemu_mutex_lock(&st->lock);
    if (!st->have_uuid) {
        /* The first channel names the migration; the rest must match. */
        memcpy(st->uuid, uuid, 16);
        st->have_uuid = true;
        st->expected = count;
        st->by_id = g_new0(MultiFDRecvChannel *, count);
        multifd_stats_set_count(count);
    } else if (memcmp(st->uuid, uuid, 16)) {
        char got[37], want[37];

        uuid_format(uuid, got);
        uuid_format(st->uuid, want);
        error_setg(errp,
                   "multifd: received uuid '%s' and expected uuid '%s' "
                   "for channel %u",
                   got, want, id);
        goto fail;
    }
    if (count != (unsigned)st->expected) {
        error_setg(errp,
                   "multifd: channel %u says the source has %u channels, "
                   "an earlier one said %d",
                   id, count, st->expected);
        goto fail;
    }
    if (id >= count) {
        error_setg(errp,
                   "multifd: received channel id %u is greater than number "
                   "of channels %u",
                   id, count);
        goto fail;
    }
    if (st->by_id[id]) {
        error_setg(errp, "multifd: channel %u connected twice", id);
        goto fail;
    }
    st->by_id[id] = c;
    c->id = id;
    c->stats = multifd_stats_slot(id);
    st->registered++;
    all_here = st->registered == st->expected;
    qemu_cond_broadcast(&st->main_cond);
    qemu_mutex_unlock(&st->lock);
    if (all_here) {
        main_loop_invoke(multifd_stop_listener, NULL);
    }
    return true;

fail:
    qemu_mutex_unlock(&st->lock);
    return false;
}

bool multifd_recv_channel_synced(MultiFDRecvChannel *c)
{
    MultiFDRecvState *st = c->state;
    bool ok;

    qemu_mutex_lock(&st->lock);
    c->syncs++;
    qemu_cond_broadcast(&st->main_cond);
    /* Nothing after the SYNC may land before the main stream gets here. */
    while (st->flushes < c->syncs && !st->quit && !st->error) {
        qemu_cond_wait(&c->cond, &st->lock);
    }
    ok = !st->quit && !st->error;
    qemu_mutex_unlock(&st->lock);
    return ok;
}

void multifd_recv_channel_finished(MultiFDRecvChannel *c)
{
    MultiFDRecvState *st = c->state;

    qemu_mutex_lock(&st->lock);
    c->finished = true;
    qemu_cond_broadcast(&st->main_cond);
    qemu_mutex_unlock(&st->lock);
}

bool multifd_recv_quitting(MultiFDRecvChannel *c)
{
    MultiFDRecvState *st = c->state;
    bool quit;

    qemu_mutex_lock(&st->lock);
    quit = st->quit;
    qemu_mutex_unlock(&st->lock);
    return quit;
}

void multifd_recv_set_error(MultiFDRecvChannel *c, GError *err)
{
    MultiFDRecvState *st = c->state;
    MigrationIncomingState *mis = migration_incoming_get_current();

    if (c->id >= 0) {
        error_prepend(&err, "multifd channel %d: ", c->id);
    }
    qemu_mutex_lock(&st->lock);
    if (st->quit || st->error) {
        qemu_mutex_unlock(&st->lock);
        g_error_free(err);
        return;
    }
    st->error = g_error_copy(err);
    qemu_cond_broadcast(&st->main_cond);
    qemu_cond_broadcast(&st->work_cond); /* file readers */
    for (guint i = 0; i < st->all->len; i++) {
        MultiFDRecvChannel *other = g_ptr_array_index(st->all, i);

        qemu_cond_signal(&other->cond);
    }
    qemu_mutex_unlock(&st->lock);

    /*
     * The load thread may be blocked reading the main stream: the incoming
     * migration reports this error (the first one wins) and the main
     * channel is shut down so the loader stops right away.
     */
    qemu_mutex_lock(&mis->lock);
    if (!mis->error) {
        mis->error = err;
        err = NULL;
    }
    if (mis->ioc &&
        qio_channel_has_feature(mis->ioc, QIO_CHANNEL_FEATURE_SHUTDOWN)) {
        qio_channel_shutdown(mis->ioc, QIO_CHANNEL_SHUTDOWN_BOTH, NULL);
    }
    qemu_mutex_unlock(&mis->lock);
    g_clear_error(&err);
}

/*
 * st->lock held: false (and *errp set) when the load must stop waiting:
 * a channel failed, or the VM is shutting down.
 */
static bool multifd_recv_check(MultiFDRecvState *st, GError **errp)
{
    if (st->error) {
        *errp = g_error_copy(st->error);
        return false;
    }
    if (qemu_system_shutdown_requested()) {
        error_setg(errp, "multifd: the VM is shutting down");
        return false;
    }
    return true;
}

/* The main channel's peer has closed it (the source ended or died). */
static bool multifd_recv_main_hung_up(void)
{
    MigrationIncomingState *mis = migration_incoming_get_current();
    struct pollfd pfd = {.fd = -1, .events = POLLRDHUP};

    /* Lock order: st->lock, then mis->lock (never the other way). */
    qemu_mutex_lock(&mis->lock);
    if (mis->ioc) {
        pfd.fd = qio_channel_get_fd(mis->ioc, G_IO_IN);
    }
    if (pfd.fd >= 0 && poll(&pfd, 1, 0) < 0) {
        pfd.revents = 0;
    }
    qemu_mutex_unlock(&mis->lock);
    return pfd.revents & (POLLRDHUP | POLLHUP | POLLERR);
}

/*
 * st->lock held, channels still missing at a sync point: false (and
 * *errp) once the source has closed the main channel and they have not
 * come within MISSING_GRACE_US. A source that completed connected all of
 * them first, so only the main loop's accepting can still be behind.
 */
#define MISSING_GRACE_US (5 * G_USEC_PER_SEC)

static bool multifd_recv_missing_ok(MultiFDRecvState *st, int64_t *hup_since,
                                    GError **errp)
{
    int64_t now = g_get_monotonic_time();

    if ((st->have_uuid && st->registered == st->expected) ||
        !multifd_recv_main_hung_up()) {
        return true;
    }
    if (!*hup_since) {
        *hup_since = now;
    } else if (now - *hup_since > MISSING_GRACE_US) {
        if (st->have_uuid) {
            error_setg(errp,
                       "multifd: the source closed the main channel with %d "
                       "of %d channels never connected",
                       st->expected - st->registered, st->expected);
        } else {
            error_setg(errp, "multifd: the source closed the main channel "
                             "before any multifd channel connected");
        }
        return false;
    }
    return true;
}

int multifd_recv_sync_main(GError **errp)
{
    MultiFDRecvState *st;
    uint64_t target;
    int64_t hup_since = 0;

    if (!migrate_multifd()) {
        return 0; /* nothing travels on channels we do not have */
    }
    st = multifd_recv_socket_state();
    if (!st || st->file) {
        error_setg(errp, "multifd: unexpected MULTIFD_FLUSH");
        return -1;
    }
    qemu_mutex_lock(&st->lock);
    target = st->flushes + 1;
    for (;;) {
        bool ready = st->have_uuid && st->registered == st->expected;

        if (!multifd_recv_check(st, errp)) {
            qemu_mutex_unlock(&st->lock);
            return -1;
        }
        /* A channel closed short of this sync: the source is gone. */
        for (int i = 0; st->have_uuid && i < st->expected; i++) {
            MultiFDRecvChannel *c = st->by_id[i];

            if (!c || c->syncs >= target) {
                continue;
            }
            if (c->finished) {
                error_setg(errp,
                           "multifd channel %d: closed before sync point "
                           "%" PRIu64,
                           i, target);
                qemu_mutex_unlock(&st->lock);
                return -1;
            }
            ready = false;
        }
        if (ready) {
            break;
        }
        if (!multifd_recv_missing_ok(st, &hup_since, errp)) {
            qemu_mutex_unlock(&st->lock);
            return -1;
        }
        qemu_cond_wait_until(&st->main_cond, &st->lock, deadline());
    }
    st->flushes = target;
    for (int i = 0; i < st->expected; i++) {
        qemu_cond_signal(&st->by_id[i]->cond);
    }
    qemu_mutex_unlock(&st->lock);
    return 0;
}

/* --- file: read jobs --- */

/*
 * One reader thread of a file channel (a channel has several, sharing its
 * descriptor, so that several reads are in flight at once): takes the
 * oldest queued job, reads it, zeroes its holes, and goes on until quit or
 * a failure (its own or another channel's: queued jobs are then dropped,
 * the load fails and the guest never runs).
 */
static gpointer multifd_file_recv_thread(gpointer opaque)
{
    MultiFDRecvChannel *c = opaque;
    MultiFDRecvState *st = c->state;
    GError *err = NULL;

    qemu_mutex_lock(&st->lock);
    for (;;) {
        MultiFDReadJob job;
        int ret;

        while (!st->q_len && !st->quit && !st->error) {
            qemu_cond_wait(&st->work_cond, &st->lock);
        }
        if (st->quit || st->error) {
            break;
        }
        job = st->queue[st->q_head];
        st->q_head = (st->q_head + 1) % MULTIFD_FILE_QUEUE_LEN;
        st->q_len--;
        st->in_flight++;
        qemu_cond_broadcast(&st->main_cond); /* a free slot */
        qemu_mutex_unlock(&st->lock);

        ret = multifd_file_recv_read(c, &job, &err);

        qemu_mutex_lock(&st->lock);
        st->in_flight--;
        qemu_cond_broadcast(&st->main_cond);
        if (ret < 0) {
            break;
        }
    }
    qemu_mutex_unlock(&st->lock);
    if (err) {
        multifd_recv_set_error(c, err);
    }
    return NULL;
}

/*
 * Reader threads per channel: MULTIFD_FILE_READERS_PER_CHANNEL, fewer when
 * there are many channels (at most MULTIFD_FILE_READERS_MAX in all, at
 * least one per channel). MINIVM_LOAD_READERS overrides it (tuning).
 */
static int multifd_file_readers(int channels)
{
    const char *env = g_getenv("MINIVM_LOAD_READERS");
    int n = env ? atoi(env)
                : MIN(MULTIFD_FILE_READERS_PER_CHANNEL,
                      MULTIFD_FILE_READERS_MAX / channels);

    return MAX(1, MIN(n, MULTIFD_FILE_READERS_MAX));
}

int multifd_recv_file_setup(GError **errp)
{
    MultiFDRecvState *st;
    int count = migrate_multifd_channels();
    int readers = multifd_file_readers(count);
    const char *pop = g_getenv("MINIVM_LOAD_POPULATE");

    qemu_mutex_lock(&recv_lock);
    st = recv_state;
    qemu_mutex_unlock(&recv_lock);
    if (st) {
        if (!st->file || st->registered < st->expected) {
            error_setg(errp, "multifd: the file channels are not usable");
            return -1;
        }
        return 0;
    }
    st = multifd_recv_state_new(true, count);
    st->queue = g_new0(MultiFDReadJob, MULTIFD_FILE_QUEUE_LEN);
    st->populate = !pop || strcmp(pop, "0");
    for (int i = 0; i < count; i++) {
        MultiFDRecvChannel *c = multifd_recv_channel_new(st);

        c->id = i;
        c->stats = multifd_stats_slot(i);
        g_ptr_array_add(st->all, c);
        st->by_id[i] = c;
        if (multifd_file_recv_open(c, errp) < 0) {
            break;
        }
        st->registered++;
    }
    qemu_mutex_lock(&recv_lock);
    recv_state = st;
    qemu_mutex_unlock(&recv_lock);
    if (st->registered < count) {
        return -1; /* cleanup closes what was opened */
    }
    for (int i = 0; i < count; i++) {
        MultiFDRecvChannel *c = st->by_id[i];

        c->thread = g_thread_new("mig/dst/read", multifd_file_recv_thread, c);
        for (int r = 1; r < readers; r++) {
            c->readers[r - 1] =
                g_thread_new("mig/dst/read", multifd_file_recv_thread, c);
        }
    }
    return 0;
}

int multifd_recv_queue_read(const MultiFDReadJob *job, GError **errp)
{
    MultiFDRecvState *st = recv_state;

    /*
     * Outside the lock, while the readers work on earlier jobs: the page
     * faults of fresh guest RAM are taken here, not in the readers' reads.
     */
    if (st->populate) {
        ram_block_populate(job->rb, job->host - job->rb->host, job->len);
    }
    qemu_mutex_lock(&st->lock);
    for (;;) {
        if (!multifd_recv_check(st, errp)) {
            qemu_mutex_unlock(&st->lock);
            return -1;
        }
        if (st->q_len < MULTIFD_FILE_QUEUE_LEN) {
            st->queue[(st->q_head + st->q_len) % MULTIFD_FILE_QUEUE_LEN] = *job;
            st->q_len++;
            qemu_cond_signal(&st->work_cond);
            qemu_mutex_unlock(&st->lock);
            return 0;
        }
        qemu_cond_wait_until(&st->main_cond, &st->lock, deadline());
    }
}

int multifd_recv_wait_reads(GError **errp)
{
    MultiFDRecvState *st = recv_state;

    if (!st) {
        return 0;
    }
    qemu_mutex_lock(&st->lock);
    for (;;) {
        if (!multifd_recv_check(st, errp)) {
            qemu_mutex_unlock(&st->lock);
            return -1;
        }
        if (!st->q_len && !st->in_flight) {
            break;
        }
        qemu_cond_wait_until(&st->main_cond, &st->lock, deadline());
    }
    qemu_mutex_unlock(&st->lock);
    return 0;
}

void multifd_recv_cleanup(void)
{
    MultiFDRecvState *st;

    qemu_mutex_lock(&recv_lock);
    st = recv_state;
    recv_state = NULL;
    /* Also when no channel came yet: one arriving now is closed at once. */
    recv_done = true;
    qemu_mutex_unlock(&recv_lock);
    /*
     * No more channels: the listener, kept open for them, closes on the
     * main loop (also when none ever came).
     */
    if (migrate_multifd() && !(st && st->file)) {
        main_loop_invoke(multifd_stop_listener, NULL);
    }
    if (!st) {
        return;
    }
    qemu_mutex_lock(&st->lock);
    st->quit = true;
    for (guint i = 0; i < st->all->len; i++) {
        MultiFDRecvChannel *c = g_ptr_array_index(st->all, i);

        /* Unblocks a read; a file read job just finishes. */
        if (c->ioc &&
            qio_channel_has_feature(c->ioc, QIO_CHANNEL_FEATURE_SHUTDOWN)) {
            qio_channel_shutdown(c->ioc, QIO_CHANNEL_SHUTDOWN_BOTH, NULL);
        }
        qemu_cond_signal(&c->cond);
    }
    qemu_cond_broadcast(&st->work_cond); /* file readers */
    qemu_mutex_unlock(&st->lock);

    for (guint i = 0; i < st->all->len; i++) {
        MultiFDRecvChannel *c = g_ptr_array_index(st->all, i);

        if (c->thread) {
            g_thread_join(c->thread);
        }
        for (int r = 0; r < MULTIFD_FILE_READERS_MAX; r++) {
            if (c->readers[r]) {
                g_thread_join(c->readers[r]);
            }
        }
        if (c->ioc) {
            qio_channel_close(c->ioc, NULL);
            qio_channel_unref(c->ioc);
        }
        multifd_socket_recv_free(c);
        qemu_cond_destroy(&c->cond);
        g_free(c);
    }
    g_ptr_array_free(st->all, true);
    g_free(st->by_id);
    g_clear_error(&st->error);
    g_free(st->queue);
    qemu_mutex_destroy(&st->lock);
    qemu_cond_destroy(&st->main_cond);
    qemu_cond_destroy(&st->work_cond);
    g_free(st);
}
