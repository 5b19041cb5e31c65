/*
 * The migration control plane: the outgoing state machine and its thread,
 * the incoming side, and the QMP commands that drive them (migrate,
 * migrate-incoming, migrate_cancel, query-migrate).
 *
 * Outgoing. `migrate` checks the capabilities against the transport and
 * opens it (file, fd, exec) in the command, so those errors are the
 * command's; sockets are connected by the thread. A file: target is
 * truncated by the thread, not the command (freeing an old file can take
 * minutes). The thread then writes the header and the setup sections, and
 * iterates: while what the switchover would still have to do -- the dirty
 * memory left plus, for a file, what still sits unwritten in the page
 * cache -- would take longer than downtime-limit at the bandwidth measured
 * over the last ~100 ms window, it sends more (rate limited by
 * max-bandwidth). Then it stops the VM under the BQL (switchover), writes
 * the END and device sections, and drops the BQL before flushing and
 * closing the channel, so the fsync of a file never holds up the monitor.
 * The downtime reported runs from the stop to the end of that fsync and
 * of the channels' cleanup: the time the guest really was stopped before
 * its state was safe. A failed or cancelled migration resumes the guest if
 * it was running.
 *
 * Writeback pacing (file targets). Buffered writes land in the page cache
 * at memory speed; left alone, gigabytes of them wait for the final fsync
 * and the guest stays stopped for seconds. So while the migration is
 * active the thread starts writeback after every quantum of bytes
 * (sync_file_range WRITE) and first waits for the previous quantum's
 * writeback (WAIT_BEFORE). The sender then moves at the disk's pace, the
 * measured bandwidth is the disk's, at most two quanta are ever unwritten,
 * and those count in the switchover estimate. At the end of each pass and
 * just before switching over, still running, the thread writes them all
 * back and times an fdatasync: the final fsync's fixed cost (journal
 * commit, disk cache flush), which the estimate adds too.
 *
 * Incoming. The transport is opened (or a listener set up) by -incoming or
 * migrate-incoming; the stream is loaded in a thread of its own so the
 * monitor keeps answering. The guest runs afterwards only if the source
 * was running at switchover; a failed load never runs it.
 *
 * Locking: state changes use compare-and-swap, so a cancel racing with the
 * thread is decided once. The BQL covers run-state changes and device
 * state; s->lock covers the figures query-migrate reads and the channel
 * pointer migrate_cancel shuts down.
 */
#include "qemu/osdep.h"
#include "qemu/thread.h"
#include "qapi/qapi-commands.h"
#include "qapi/qapi-events.h"
#include "migration/misc.h"
#include "migration/channel.h"
#include "migration/file.h"
#include "migration/free-space.h" /* rel */
#include "migration/global-state.h"
#include "migration/migration-stats.h"
#include "migration/migration.h"
#include "migration/multifd.h" /* mfd */
#include "migration/options.h"
#include "migration/ram.h"
#include "migration/savevm.h"
#include "migration/socket.h"
#include "system/main-loop.h"
#include "system/ramblock.h"

/* How often bandwidth, threshold and expected downtime are recomputed. */
#define MIGRATION_WINDOW_US (100 * 1000)

/*
 * Writeback pacing: a quantum is a quarter of what fits in downtime-limit
 * at the measured bandwidth (at most two are unwritten, so half the
 * downtime stays for the dirty memory), within these bounds.
 */
#define WRITEBACK_QUANTUM_MIN     (4 * MiB)
#define WRITEBACK_QUANTUM_MAX     (256 * MiB)
#define WRITEBACK_QUANTUM_INITIAL (16 * MiB)
/* Device state, section framing, vmdesc: what the stop adds besides RAM. */
#define SWITCHOVER_EXTRA_BYTES (256 * 1024)

#define ERR_MIGRATION_ACTIVE "There's a migration process in progress"
#define ERR_STREAM_WRITE     "Writing the migration stream"

static MigrationState current_migration;
static MigrationIncomingState current_incoming;

MigrationState *migrate_get_current(void)
{
    return &current_migration;
}

MigrationIncomingState *migration_incoming_get_current(void)
{
    return &current_incoming;
}

static int64_t now_us(void)
{
    return g_get_monotonic_time();
}

bool migrate_set_state(int *state, int old_state, int new_state)
{
    if (!__atomic_compare_exchange_n(state, &old_state, new_state, false,
                                     __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
        return false;
    }
    if (migrate_events()) {
        qapi_event_send_migration(new_state);
    }
    return true;
}

static int migrate_get_state(const int *state)
{
    return __atomic_load_n(state, __ATOMIC_SEQ_CST);
}

static bool status_is_running(int state)
{
    return state == MIGRATION_STATUS_SETUP ||
           state == MIGRATION_STATUS_ACTIVE ||
           state == MIGRATION_STATUS_DEVICE ||
           state == MIGRATION_STATUS_CANCELLING;
}

bool migration_outgoing_is_running(void)
{
    return status_is_running(migrate_get_state(&current_migration.state));
}

bool migration_incoming_in_progress(void)
{
    int state = migrate_get_state(&current_incoming.state);

    return state == MIGRATION_STATUS_SETUP || state == MIGRATION_STATUS_ACTIVE;
}

bool migration_is_running(void)
{
    return migration_outgoing_is_running() || migration_incoming_in_progress();
}

/* Keeps the first error: later ones are usually its consequences. */
static void migrate_set_error(MigrationState *s, GError *err)
{
    if (!err) {
        return;
    }
    qemu_mutex_lock(&s->lock);
    if (!s->error) {
        s->error = err;
        err = NULL;
    }
    qemu_mutex_unlock(&s->lock);
    g_clear_error(&err);
}

/* ------------------------------------------------------------------ */
/* Outgoing: the thread                                                */
/* ------------------------------------------------------------------ */

/*
 * MIGRATION_PASS at the start of each pass over guest memory: the first
 * starts after setup, and every dirty-log sync starts the next one.
 */
static void migration_report_passes(MigrationState *s)
{
    uint64_t pass = stat64_get(&mig_stats.dirty_sync_count) + 1;

    while (s->last_pass_reported < pass) {
        s->last_pass_reported++;
        if (migrate_events()) {
            qapi_event_send_migration_pass(s->last_pass_reported);
        }
    }
}

static uint64_t migration_pages_sent(void)
{
    return stat64_get(&mig_stats.normal_pages) +
           stat64_get(&mig_stats.zero_pages);
}

static void migration_window_start(MigrationState *s, int64_t now)
{
    s->window_start_us = now;
    s->window_start_bytes = stat64_get(&mig_stats.transferred);
    s->window_start_pages = migration_pages_sent();
}

typedef struct MigrationWriteback {
    int fd;                 /* the target file (s->ioc's descriptor), or -1 */
    uint64_t kicked_bytes;  /* transferred when writeback was last started */
    uint64_t durable_bytes; /* transferred known to be written back */
    int64_t flush_us;       /* fdatasync: the last, or half the one before */
    double bytes_per_us;    /* the last window's bandwidth */
} MigrationWriteback;

/* The running outgoing migration's; the migration thread's only. */
static MigrationWriteback writeback = {.fd = -1};

/*
 * Once per window: the bandwidth actually achieved (rate-limit sleeps and
 * writeback waits included, so it never exceeds max-bandwidth nor the
 * disk's pace), and from it how many bytes the switchover may write
 * within downtime-limit, and how long it would take now (cost: the bytes
 * migration_switchover_bytes() counts).
 */
static void migration_update_counters(MigrationState *s, uint64_t cost)
{
    int64_t now = now_us();
    int64_t elapsed_us = now - s->window_start_us;
    uint64_t bytes, pages;
    double bytes_per_us;

    if (elapsed_us < MIGRATION_WINDOW_US) {
        return;
    }
    bytes = stat64_get(&mig_stats.transferred) - s->window_start_bytes;
    pages = migration_pages_sent() - s->window_start_pages;
    bytes_per_us = (double)bytes / elapsed_us;
    s->threshold_bytes = bytes_per_us * migrate_downtime_limit() * 1000;
    writeback.bytes_per_us = bytes_per_us;

    qemu_mutex_lock(&s->lock);
    s->mbps = bytes_per_us * 8; /* bits per microsecond = Mbit/s */
    s->pages_per_second = pages * G_USEC_PER_SEC / elapsed_us;
    if (bytes_per_us > 0) {
        s->expected_downtime_ms = cost / bytes_per_us / 1000;
    }
    qemu_mutex_unlock(&s->lock);

    migration_window_start(s, now);
}

/* ------------------------------------------------------------------ */
/* Outgoing: writeback pacing for file targets                         */
/* ------------------------------------------------------------------ */

/* Paces only a regular file: pipes and sockets have no page cache. */
static void migration_writeback_start(MigrationState *s)
{
    uint64_t now = stat64_get(&mig_stats.transferred);
    struct stat st;
    int fd = -1;

    qemu_mutex_lock(&s->lock);
    if (s->ioc) {
        fd = qio_channel_get_fd(s->ioc, G_IO_OUT);
    }
    qemu_mutex_unlock(&s->lock);
    writeback.fd = -1;
    writeback.kicked_bytes = now;
    writeback.durable_bytes = now;
    writeback.flush_us = 0;
    writeback.bytes_per_us = 0;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        writeback.fd = fd;
    }
}

/*
 * sync_file_range() on the whole file: it acts on the file's page cache,
 * so it covers what the multifd channels wrote through descriptors of
 * their own. An error must fail the migration: the kernel reports a
 * writeback error once per open file, so the final fsync might not see
 * it again. A file system that cannot do it is just not paced.
 */
static int migration_writeback_sync(unsigned flags, GError **errp)
{
    if (RETRY_ON_EINTR(sync_file_range(writeback.fd, 0, 0, flags)) == 0) {
        return 0;
    }
    if (errno == EINVAL || errno == ESPIPE || errno == ENOSYS) {
        writeback.fd = -1;
        return 0;
    }
    error_setg_errno(errp, errno, "Writing back the migration file");
    return -1;
}

/* What the switchover would still have to write back from the cache. */
static uint64_t migration_writeback_pending(void)
{
    if (writeback.fd < 0) {
        return 0;
    }
    return stat64_get(&mig_stats.transferred) - writeback.durable_bytes;
}

/*
 * After each step of the iterative phase. Bytes counted as transferred
 * are in the page cache (a multifd channel counts them once its write
 * returned), so once the writeback started at the previous kick is over,
 * everything counted at that kick is on disk.
 */
static bool migration_writeback_pace(MigrationState *s, GError **errp)
{
    uint64_t now, quantum;

    if (writeback.fd < 0) {
        return true;
    }
    now = stat64_get(&mig_stats.transferred);
    quantum = s->threshold_bytes
                  ? CLAMP(s->threshold_bytes / 4, WRITEBACK_QUANTUM_MIN,
                          WRITEBACK_QUANTUM_MAX)
                  : WRITEBACK_QUANTUM_INITIAL;
    if (now - writeback.kicked_bytes < quantum) {
        return true;
    }
    if (migration_writeback_sync(SYNC_FILE_RANGE_WAIT_BEFORE, errp) < 0) {
        return false;
    }
    writeback.durable_bytes = writeback.kicked_bytes;
    if (writeback.fd >= 0 &&
        migration_writeback_sync(SYNC_FILE_RANGE_WRITE, errp) < 0) {
        return false;
    }
    writeback.kicked_bytes = now;
    return true;
}

/* Just before the stop, the guest still running: write everything back. */
static bool migration_writeback_drain(GError **errp)
{
    uint64_t now = stat64_get(&mig_stats.transferred);
    int64_t start;

    if (writeback.fd < 0) {
        return true;
    }
    /*
     * The data first, then fdatasync: it also commits the allocations the
     * writeback made and flushes the disk's cache, which the final fsync
     * would otherwise do with the guest stopped. How long that second step
     * took, with no data left to write, is the best guess of the final
     * fsync's fixed cost.
     */
    if (migration_writeback_sync(SYNC_FILE_RANGE_WRITE_AND_WAIT, errp) < 0) {
        return false;
    }
    if (writeback.fd < 0) {
        return true; /* sync_file_range unsupported: not paced any more */
    }
    start = now_us();
    if (RETRY_ON_EINTR(fdatasync(writeback.fd)) < 0) {
        error_setg_errno(errp, errno, "Writing back the migration file");
        return false;
    }
    /* A busy disk's flushes vary a lot: an old long one fades slowly. */
    writeback.flush_us = MAX(now_us() - start, writeback.flush_us / 2);
    writeback.kicked_bytes = now;
    writeback.durable_bytes = now;
    return true;
}

/*
 * What a switchover would cost now, in bytes at the measured bandwidth:
 * the dirty RAM, what is still to be written back, device state, for
 * mapped-ram the bitmaps, and for a file the final fsync's fixed cost (a
 * journal commit and the disk's cache flush: the last fdatasync's time,
 * which can be hundreds of ms on a busy disk whatever it writes).
 */
static uint64_t migration_switchover_bytes(uint64_t pending)
{
    uint64_t bytes = pending + migration_writeback_pending();

    bytes += SWITCHOVER_EXTRA_BYTES;
    if (migrate_mapped_ram()) {
        bytes += ram_bytes_total() / TARGET_PAGE_SIZE / 8;
    }
    if (writeback.fd >= 0) {
        bytes += writeback.flush_us * writeback.bytes_per_us;
    }
    return bytes;
}

/* The thread's channel error as a GError (what, plus the latched one). */
static GError *migration_file_error(QEMUFile *f, int ret, const char *what)
{
    GError *ferr = NULL;
    GError *err = NULL;

    if (qemu_file_get_error_obj(f, &ferr) && ferr) {
        error_setg(&err, "%s: %s", what, ferr->message);
        g_error_free(ferr);
    } else {
        error_setg(&err, "%s: %s", what, g_strerror(ret < 0 ? -ret : EIO));
    }
    return err;
}

static bool migration_connect(MigrationState *s, GError **errp)
{
    QIOChannel *ioc = socket_connect_outgoing(s->connect_addr, errp);

    if (!ioc) {
        return false;
    }
    qemu_mutex_lock(&s->lock);
    s->ioc = ioc;
    qemu_mutex_unlock(&s->lock);
    /* A cancel that came while connecting found nothing to shut down. */
    if (migrate_get_state(&s->state) == MIGRATION_STATUS_CANCELLING) {
        qio_channel_shutdown(ioc, QIO_CHANNEL_SHUTDOWN_BOTH, NULL);
    }
    return true;
}

/*
 * Switchover: stop the guest and write what is left, all under the BQL so
 * no monitor command can restart the guest half-way. Sets *errp on
 * failure; a cancel that won the race leaves it unset.
 */
static void migration_completion(MigrationState *s, QEMUFile *f, GError **errp)
{
    bql_lock();
    s->downtime_start_us = now_us();
    s->vm_old_state = runstate_get();
    global_state_store();
    vm_stop(RUN_STATE_FINISH_MIGRATE);
    s->vm_stopped = true;
    if (!migrate_set_state(&s->state, MIGRATION_STATUS_ACTIVE,
                           MIGRATION_STATUS_DEVICE)) {
        bql_unlock();
        return;
    }
    /* The guest is stopped: send the rest as fast as the channel goes. */
    qemu_file_set_rate_limit(f, 0);
    qemu_savevm_state_complete_precopy(f, errp);
    bql_unlock();
    migration_report_passes(s);
}

/*
 * The iterative phase; true when it is time to switch over. The pending
 * figure is exact right after a dirty-log sync, which ram.c does at the
 * end of each pass; otherwise it is synced here before deciding.
 */
static bool migration_iterate(MigrationState *s, QEMUFile *f, GError **errp)
{
    uint64_t bandwidth = migrate_max_bandwidth();
    uint64_t syncs = stat64_get(&mig_stats.dirty_sync_count);
    bool fresh = false;

    qemu_file_set_rate_limit(f, bandwidth);
    migration_window_start(s, now_us());
    s->threshold_bytes = 0;
    migration_writeback_start(s);

    while (migrate_get_state(&s->state) == MIGRATION_STATUS_ACTIVE) {
        uint64_t pending = qemu_savevm_state_pending(false);
        uint64_t cost = migration_switchover_bytes(pending);
        int ret;

        /* Nothing dirty: another pass cannot make the stop any shorter. */
        if ((cost <= s->threshold_bytes || !pending) && !fresh) {
            pending = qemu_savevm_state_pending(true);
            cost = migration_switchover_bytes(pending);
            syncs = stat64_get(&mig_stats.dirty_sync_count);
            migration_report_passes(s);
            fresh = true;
        }
        if ((cost <= s->threshold_bytes || !pending) && fresh) {
            if (!migration_writeback_pending()) {
                return true;
            }
            /*
             * Write back the cache while the guest runs, then decide
             * again on a fresh dirty figure: the stop only has to pay
             * for what is dirtied meanwhile.
             */
            if (!migration_writeback_drain(errp)) {
                return false;
            }
            /* A stopped guest dirtied nothing: the figure is still fresh. */
            fresh = !runstate_is_running();
            continue;
        }
        migration_update_counters(s, cost);

        /* max-bandwidth may be changed while we run. */
        if (migrate_max_bandwidth() != bandwidth) {
            bandwidth = migrate_max_bandwidth();
            qemu_file_set_rate_limit(f, bandwidth);
        }
        if (qemu_file_rate_limit(f)) {
            qemu_file_rate_limit_wait(f);
            if (!qemu_file_get_error(f)) {
                continue;
            }
        }
        ret = qemu_savevm_state_iterate(f);
        if (ret < 0) {
            *errp = migration_file_error(f, ret, ERR_STREAM_WRITE);
            return false;
        }
        fresh = stat64_get(&mig_stats.dirty_sync_count) != syncs;
        /*
         * Once per pass a full fdatasync, so the fsync cost in the
         * estimate is a recent measurement; otherwise the pacing step.
         */
        if (!(fresh ? migration_writeback_drain(errp)
                    : migration_writeback_pace(s, errp))) {
            return false;
        }
        syncs = stat64_get(&mig_stats.dirty_sync_count);
        migration_report_passes(s);
    }
    return false;
}

/*
 * Flushes and closes the channel (fsync for files) on this thread, outside
 * the BQL. Taking ioc under s->lock first means migrate_cancel never shuts
 * down a closed descriptor.
 */
static void migration_close_channel(MigrationState *s, GError **errp)
{
    QEMUFile *f;
    QIOChannel *ioc;

    qemu_mutex_lock(&s->lock);
    f = s->to_dst_file;
    s->to_dst_file = NULL;
    ioc = s->ioc;
    s->ioc = NULL;
    qemu_mutex_unlock(&s->lock);

    if (f) {
        qemu_fflush(f);
        if (qemu_file_get_error(f) && errp && !*errp) {
            *errp = migration_file_error(f, -EIO, ERR_STREAM_WRITE);
        }
        qemu_fclose(f);
    }
    if (ioc) {
        GError *err = NULL;

        if (qio_channel_close(ioc, &err) < 0 && errp && !*errp) {
            *errp = err;
            error_prepend(errp, "Closing the migration channel: ");
        } else {
            g_clear_error(&err);
        }
        qio_channel_unref(ioc);
    }
}

/* Final figures: averages over the whole transfer, as QEMU reports them. */
static void migration_calculate_complete(MigrationState *s, int64_t now)
{
    int64_t transfer_us;

    qemu_mutex_lock(&s->lock);
    s->downtime_ms = (now - s->downtime_start_us) / 1000;
    s->total_time_ms = (now - s->start_us) / 1000;
    transfer_us = now - s->start_us - s->setup_time_ms * 1000;
    if (transfer_us > 0) {
        s->mbps = (double)stat64_get(&mig_stats.transferred) * 8 / transfer_us;
        s->pages_per_second =
            migration_pages_sent() * G_USEC_PER_SEC / transfer_us;
    }
    qemu_mutex_unlock(&s->lock);
}

/* The end of every outgoing migration: success, failure or cancel. */
static void migration_finish(MigrationState *s, GError *err)
{
    int64_t now;
    int state;

    migration_close_channel(s, &err);

    bql_lock();
    qemu_savevm_state_cleanup(); /* stops dirty logging */
    now = now_us();
    if (!err && migrate_get_state(&s->state) == MIGRATION_STATUS_DEVICE) {
        runstate_set(RUN_STATE_POSTMIGRATE);
        migration_calculate_complete(s, now);
        if (migrate_set_state(&s->state, MIGRATION_STATUS_DEVICE,
                              MIGRATION_STATUS_COMPLETED)) {
            bql_unlock();
            return;
        }
        /* Cancelled at the last moment: the guest stays here. */
    }

    if (s->vm_stopped) {
        if (s->vm_old_state == RUN_STATE_RUNNING) {
            vm_start();
        } else {
            runstate_set(s->vm_old_state);
        }
        s->vm_stopped = false;
    }
    qemu_mutex_lock(&s->lock);
    s->total_time_ms = (now - s->start_us) / 1000;
    qemu_mutex_unlock(&s->lock);

    /* migrate_cancel runs under the BQL too: the state cannot move here. */
    state = migrate_get_state(&s->state);
    if (state == MIGRATION_STATUS_CANCELLING) {
        g_clear_error(&err);
        migrate_set_state(&s->state, state, MIGRATION_STATUS_CANCELLED);
    } else {
        migrate_set_error(s, err);
        migrate_set_state(&s->state, state, MIGRATION_STATUS_FAILED);
    }
    bql_unlock();
}

static gpointer migration_thread(gpointer opaque)
{
    MigrationState *s = opaque;
    GError *err = NULL;
    QEMUFile *f;
    int ret;

    /* file: truncates here, off the monitor (it may take minutes). */
    if (migrate_get_state(&s->state) == MIGRATION_STATUS_CANCELLING) {
        file_outgoing_abandon(NULL); /* cancelled first: leave the file */
    } else if (!file_outgoing_truncate(s->ioc, &err)) {
        goto out;
    }
    if (s->connect_addr && !migration_connect(s, &err)) {
        goto out;
    }
    /* dio: direct-io refusals fail setup before a byte is written */
    if (multifd_file_send_check(&err) < 0) {
        goto out;
    }
    f = qemu_file_new_output(s->ioc);
    qemu_mutex_lock(&s->lock);
    s->to_dst_file = f;
    qemu_mutex_unlock(&s->lock);

    qemu_savevm_state_header(f);
    bql_lock();
    ret = qemu_savevm_state_setup(f, &err);
    bql_unlock();
    migration_report_passes(s);
    if (ret < 0) {
        goto out;
    }
    qemu_mutex_lock(&s->lock);
    s->setup_time_ms = (now_us() - s->start_us) / 1000;
    qemu_mutex_unlock(&s->lock);
    if (!migrate_set_state(&s->state, MIGRATION_STATUS_SETUP,
                           MIGRATION_STATUS_ACTIVE)) {
        goto out; /* cancelled */
    }

    if (migration_iterate(s, f, &err)) {
        migration_completion(s, f, &err);
    }
out:
    migration_finish(s, err);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Outgoing: commands                                                  */
/* ------------------------------------------------------------------ */

static void migration_join_thread(MigrationState *s)
{
    GThread *thread = s->thread;
    bool locked;

    if (!thread) {
        return;
    }
    s->thread = NULL;
    /* The thread takes the BQL on its way out. */
    locked = bql_locked();
    if (locked) {
        bql_unlock();
    }
    g_thread_join(thread);
    if (locked) {
        bql_lock();
    }
}

static void migration_reset(MigrationState *s)
{
    qemu_mutex_lock(&s->lock);
    g_clear_error(&s->error);
    g_clear_pointer(&s->connect_addr, g_free);
    s->vm_stopped = false;
    s->start_us = now_us();
    s->downtime_start_us = 0;
    s->setup_time_ms = 0;
    s->total_time_ms = 0;
    s->downtime_ms = 0;
    s->expected_downtime_ms = 0;
    s->mbps = 0;
    s->pages_per_second = 0;
    s->last_pass_reported = 0;
    qemu_mutex_unlock(&s->lock);
    migration_reset_stats();
}

void qmp_migrate(const char *uri, MigrationChannelList *channels,
                 bool has_detach, bool detach, bool has_resume, bool resume,
                 GError **errp)
{
    MigrationState *s = migrate_get_current();
    g_autoptr(MigrationAddress) addr = NULL;
    QIOChannel *ioc = NULL;
    char *connect_addr = NULL;

    /* detach is accepted and ignored: the migration always runs behind. */
    if (has_resume && resume) {
        error_setg(errp, "Cannot resume if there is no paused migration");
        return;
    }
    if (migration_outgoing_is_running()) {
        error_setg(errp, ERR_MIGRATION_ACTIVE);
        return;
    }
    if (runstate_get() == RUN_STATE_INMIGRATE) {
        error_setg(errp, "Guest is waiting for an incoming migration");
        return;
    }
    addr = migration_address_from_args(uri, channels, errp);
    if (!addr) {
        return;
    }
    if (!migration_channel_open_outgoing(addr, &ioc, &connect_addr, errp)) {
        return;
    }
    /* rel: a save into a file that cannot fit is refused up front */
    if (ioc && !migration_check_free_space(ioc, errp)) {
        file_outgoing_abandon(ioc); /* an existing file stays as it was */
        qio_channel_unref(ioc);
        return;
    }

    migration_join_thread(s);
    migration_reset(s);
    qemu_mutex_lock(&s->lock);
    s->ioc = ioc;
    s->connect_addr = connect_addr;
    qemu_mutex_unlock(&s->lock);
    migrate_set_state(&s->state, migrate_get_state(&s->state),
                      MIGRATION_STATUS_SETUP);
    s->thread = g_thread_new("mig/src/main", migration_thread, s);
}

void qmp_migrate_cancel(GError **errp)
{
    MigrationState *s = migrate_get_current();

    for (;;) {
        int state = migrate_get_state(&s->state);

        if (state != MIGRATION_STATUS_SETUP &&
            state != MIGRATION_STATUS_ACTIVE &&
            state != MIGRATION_STATUS_DEVICE) {
            return; /* nothing running, or already cancelling */
        }
        if (migrate_set_state(&s->state, state, MIGRATION_STATUS_CANCELLING)) {
            break;
        }
    }
    /* Unblock a write stuck on a socket peer; files just see the state. */
    qemu_mutex_lock(&s->lock);
    if (s->ioc &&
        qio_channel_has_feature(s->ioc, QIO_CHANNEL_FEATURE_SHUTDOWN)) {
        qio_channel_shutdown(s->ioc, QIO_CHANNEL_SHUTDOWN_BOTH, NULL);
    }
    qemu_mutex_unlock(&s->lock);
}

MultifdChannelInfoList *qmp_x_query_multifd_channels(GError **errp)
{
    /* mfd: the channels of the current (or last) multifd migration */
    return multifd_query_channels();
}

/* ------------------------------------------------------------------ */
/* query-migrate                                                       */
/* ------------------------------------------------------------------ */

static void fill_ram_info(MigrationInfo *info, MigrationState *s, int state)
{
    MigrationStats *ram = g_new0(MigrationStats, 1);
    uint64_t normal = stat64_get(&mig_stats.normal_pages);

    ram->transferred = stat64_get(&mig_stats.transferred);
    ram->total = ram_bytes_total();
    ram->duplicate = stat64_get(&mig_stats.zero_pages);
    ram->normal = normal;
    ram->normal_bytes = normal * TARGET_PAGE_SIZE;
    ram->mbps = s->mbps;
    ram->dirty_sync_count = stat64_get(&mig_stats.dirty_sync_count);
    ram->page_size = TARGET_PAGE_SIZE;
    ram->multifd_bytes = stat64_get(&mig_stats.multifd_bytes);
    ram->pages_per_second = s->pages_per_second;
    ram->precopy_bytes = stat64_get(&mig_stats.precopy_bytes);
    ram->downtime_bytes = stat64_get(&mig_stats.downtime_bytes);
    if (state != MIGRATION_STATUS_COMPLETED) {
        ram->remaining = stat64_get(&mig_stats.remaining_bytes);
        ram->dirty_pages_rate = stat64_get(&mig_stats.dirty_pages_rate);
    }
    info->ram = ram;
}

static void fill_source_info(MigrationInfo *info, MigrationState *s)
{
    int state = migrate_get_state(&s->state);

    if (state == MIGRATION_STATUS_NONE) {
        return; /* {} as QEMU */
    }
    info->has_status = true;
    info->status = state;

    qemu_mutex_lock(&s->lock);
    if (state != MIGRATION_STATUS_SETUP) {
        info->has_setup_time = true;
        info->setup_time = s->setup_time_ms;
        info->has_total_time = true;
        info->total_time = status_is_running(state)
                               ? (now_us() - s->start_us) / 1000
                               : s->total_time_ms;
        if (state == MIGRATION_STATUS_COMPLETED) {
            info->has_downtime = true;
            info->downtime = s->downtime_ms;
        } else if (status_is_running(state)) {
            info->has_expected_downtime = true;
            info->expected_downtime = s->expected_downtime_ms;
        }
        fill_ram_info(info, s, state);
    }
    if (s->error) {
        info->error_desc = g_strdup(s->error->message);
    }
    qemu_mutex_unlock(&s->lock);
}

static void fill_destination_info(MigrationInfo *info,
                                  MigrationIncomingState *mis)
{
    int state = migrate_get_state(&mis->state);

    if (state == MIGRATION_STATUS_NONE) {
        return;
    }
    info->has_status = true;
    info->status = state;
    qemu_mutex_lock(&mis->lock);
    if (mis->error) {
        info->error_desc = g_strdup(mis->error->message);
    }
    qemu_mutex_unlock(&mis->lock);
}

MigrationInfo *qmp_query_migrate(GError **errp)
{
    MigrationInfo *info = g_new0(MigrationInfo, 1);

    /* A destination that later migrates on reports its outgoing side. */
    if (migrate_get_state(&current_migration.state) != MIGRATION_STATUS_NONE) {
        fill_source_info(info, &current_migration);
    } else {
        fill_destination_info(info, &current_incoming);
    }
    return info;
}

/* ------------------------------------------------------------------ */
/* Incoming                                                            */
/* ------------------------------------------------------------------ */

static gboolean incoming_exit_on_error(gpointer opaque)
{
    g_autofree char *msg = opaque;

    fprintf(stderr, "minivm: load of migration failed: %s\n", msg);
    fflush(stderr);
    /* The load thread has reported; join it so that no thread outlives us. */
    migration_shutdown();
    exit(EXIT_FAILURE);
    return G_SOURCE_REMOVE;
}

static void incoming_set_failed(MigrationIncomingState *mis, GError *err)
{
    int state = migrate_get_state(&mis->state);

    qemu_mutex_lock(&mis->lock);
    if (!mis->error) {
        mis->error = err;
        err = NULL;
    }
    qemu_mutex_unlock(&mis->lock);
    g_clear_error(&err);
    migrate_set_state(&mis->state, state, MIGRATION_STATUS_FAILED);
    if (mis->exit_on_error) {
        /* On the main loop, after the MIGRATION event queued above. */
        main_loop_invoke(incoming_exit_on_error, g_strdup(mis->error->message));
    }
}

void migration_incoming_fail(GError *err)
{
    MigrationIncomingState *mis = migration_incoming_get_current();

    bql_lock();
    incoming_set_failed(mis, err);
    bql_unlock();
}

static gpointer incoming_thread(gpointer opaque)
{
    MigrationIncomingState *mis = opaque;
    GError *err = NULL;
    QIOChannel *ioc;
    QEMUFile *f;
    int ret;

    migrate_set_state(&mis->state, MIGRATION_STATUS_SETUP,
                      MIGRATION_STATUS_ACTIVE);
    f = qemu_file_new_input(mis->ioc);
    /* dio: direct-io refusals fail before anything is loaded */
    ret = multifd_file_recv_check(&err);
    if (ret == 0) {
        ret = qemu_loadvm_state(f, &err);
    }
    /*
     * mfd: a load that failed before its RAM section was set up (header,
     * configuration, or a channel's error shutting the main stream down
     * early) never reached ram.c's cleanup: stop and close the multifd
     * channels and their listener here, so the source sees them close
     * rather than writing into sockets nobody reads. A no-op when done.
     */
    multifd_recv_cleanup();
    qemu_fclose(f);

    qemu_mutex_lock(&mis->lock);
    ioc = mis->ioc;
    mis->ioc = NULL;
    qemu_mutex_unlock(&mis->lock);
    /* The stream was checked as it was read; how it ends changes nothing. */
    qio_channel_close(ioc, NULL);
    qio_channel_unref(ioc);

    bql_lock();
    if (ret == 0) {
        /* -S (no autostart) keeps even a running guest paused, as QEMU. */
        if (global_state_received_runstate() == RUN_STATE_RUNNING &&
            runstate_autostart()) {
            vm_start();
        } else {
            runstate_set(RUN_STATE_PAUSED);
        }
        migrate_set_state(&mis->state, MIGRATION_STATUS_ACTIVE,
                          MIGRATION_STATUS_COMPLETED);
    } else {
        if (!err) {
            error_setg(&err, "Loading the migration stream failed: %s",
                       g_strerror(-ret));
        }
        incoming_set_failed(mis, err);
    }
    bql_unlock();
    return NULL;
}

void migration_incoming_process(QIOChannel *ioc)
{
    MigrationIncomingState *mis = migration_incoming_get_current();

    qemu_mutex_lock(&mis->lock);
    mis->ioc = ioc;
    qemu_mutex_unlock(&mis->lock);
    mis->thread = g_thread_new("mig/dst/load", incoming_thread, mis);
}

static bool migration_incoming_start(const char *uri,
                                     MigrationChannelList *channels,
                                     GError **errp)
{
    MigrationIncomingState *mis = migration_incoming_get_current();
    g_autoptr(MigrationAddress) addr =
        migration_address_from_args(uri, channels, errp);
    QIOChannel *ioc = NULL;

    if (!addr || !migration_channel_start_incoming(addr, &ioc, errp)) {
        return false;
    }
    mis->started = true;
    migrate_set_state(&mis->state, MIGRATION_STATUS_NONE,
                      MIGRATION_STATUS_SETUP);
    if (ioc) {
        migration_incoming_process(ioc);
    }
    return true;
}

bool migration_incoming_setup(const char *uri, GError **errp)
{
    MigrationIncomingState *mis = migration_incoming_get_current();
    bool locked = bql_locked();
    bool ok = true;

    if (!locked) {
        bql_lock();
    }
    runstate_set(RUN_STATE_INMIGRATE);
    mis->exit_on_error = true;
    if (strcmp(uri, "defer") == 0) {
        mis->deferred = true;
    } else {
        ok = migration_incoming_start(uri, NULL, errp);
    }
    if (!locked) {
        bql_unlock();
    }
    return ok;
}

void qmp_migrate_incoming(const char *uri, MigrationChannelList *channels,
                          bool has_exit_on_error, bool exit_on_error,
                          GError **errp)
{
    MigrationIncomingState *mis = migration_incoming_get_current();

    if (!mis->deferred) {
        error_setg(errp, "'-incoming' was not specified on the command line");
        return;
    }
    if (mis->started) {
        error_setg(errp, "The incoming migration has already been started");
        return;
    }
    mis->exit_on_error = has_exit_on_error ? exit_on_error : true;
    migration_incoming_start(uri, channels, errp);
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                          */
/* ------------------------------------------------------------------ */

void migration_object_init(void)
{
    qemu_mutex_init(&current_migration.lock);
    qemu_mutex_init(&current_incoming.lock);
    current_migration.state = MIGRATION_STATUS_NONE;
    current_incoming.state = MIGRATION_STATUS_NONE;
    ram_mig_init();
    global_state_register();
    migration_hmp_register();
}

void migration_shutdown(void)
{
    MigrationIncomingState *mis = migration_incoming_get_current();
    bool locked = bql_locked();

    qmp_migrate_cancel(NULL);
    migration_join_thread(&current_migration);

    if (!locked) {
        bql_lock();
    }
    socket_incoming_stop();
    if (!locked) {
        bql_unlock();
    }
    qemu_mutex_lock(&mis->lock);
    if (mis->ioc &&
        qio_channel_has_feature(mis->ioc, QIO_CHANNEL_FEATURE_SHUTDOWN)) {
        qio_channel_shutdown(mis->ioc, QIO_CHANNEL_SHUTDOWN_BOTH, NULL);
    }
    qemu_mutex_unlock(&mis->lock);
    if (mis->thread) {
        GThread *thread = mis->thread;

        mis->thread = NULL;
        mis->exit_on_error = false; /* we are exiting anyway */
        if (locked) {
            bql_unlock();
        }
        g_thread_join(thread);
        if (locked) {
            bql_lock();
        }
    }
}
