/*
 * The live "ram" section: the migration bitmap, the walk over dirty pages,
 * the legacy page records, and their loader (stream-format.md section 2).
 *
 * A page's way out: a vCPU store marks the block's dirty log; at the end
 * of each pass over the migration bitmap (rb->bmap) the log is moved into
 * it (fetch-and-clear); the walk finds runs of set bits, clears them and
 * hands each run to the page sink chosen at setup. The first pass sends
 * everything: setup fills every bmap before logging starts.
 *
 * The legacy sink writes one record per page: be64 offset|flags, the
 * block name unless CONTINUE says "same block as the previous record",
 * then one zero byte (ZERO) or the 4096 bytes of the page (PAGE), queued
 * without copying (qemu_put_buffer_nocopy).
 */
#include "qemu/osdep.h"

#include "migration/mapped-ram.h" /* mram: mapped-ram sink and loader */
#include "migration/migration-stats.h"
#include "migration/multifd.h" /* mfd: multifd sink, channels' loader */
#include "migration/options.h"
#include "migration/ram.h"
#include "migration/savevm.h"
#include "qemu/bitmap.h"
#include "qemu/cutils.h"

/* A PART section yields after this long so the thread can re-plan. */
#define RAM_ITERATE_MAX_NS (50 * 1000 * 1000LL)

typedef struct RAMState {
    const RAMPageSink *sink;
    /* Walk position: block index in ram_blocks and page in that block. */
    guint block_index;
    uint64_t page;
    /* Set bits in all bmaps: pages still to send. */
    uint64_t dirty_pages;
    int64_t last_sync_ns;
    bool zero_detection;
    /* Legacy sink: block of the previous record in this section. */
    RAMBlock *last_sent_block;
} RAMState;

/* The running outgoing migration's state (one at a time). */
static RAMState *ram_state;

static int64_t now_ns(void)
{
    return g_get_monotonic_time() * 1000;
}

static guint ram_block_count(void)
{
    return ram_blocks ? ram_blocks->len : 0;
}

uint64_t ram_bytes_remaining(void)
{
    return ram_state ? ram_state->dirty_pages * TARGET_PAGE_SIZE : 0;
}

static void ram_update_remaining(RAMState *rs)
{
    stat64_set(&mig_stats.remaining_bytes, rs->dirty_pages * TARGET_PAGE_SIZE);
}

/* --- legacy sink: page records on the main stream --- */

static void legacy_section_begin(QEMUFile *f)
{
    /* Each section names its first block, whatever a reader remembers. */
    ram_state->last_sent_block = NULL;
}

static void legacy_page_header(QEMUFile *f, RAMState *rs, RAMBlock *rb,
                               uint64_t offset_flags)
{
    if (rs->last_sent_block == rb) {
        qemu_put_be64(f, offset_flags | RAM_SAVE_FLAG_CONTINUE);
    } else {
        size_t len = strlen(rb->idstr);

        qemu_put_be64(f, offset_flags);
        qemu_put_byte(f, len);
        qemu_put_buffer(f, (const uint8_t *)rb->idstr, len);
        rs->last_sent_block = rb;
    }
}

static int legacy_send_pages(QEMUFile *f, RAMBlock *rb, uint64_t first,
                             uint64_t npages)
{
    RAMState *rs = ram_state;
    uint64_t zero = 0;

    for (uint64_t i = 0; i < npages; i++) {
        uint64_t offset = (first + i) << TARGET_PAGE_BITS;
        const uint8_t *p = rb->host + offset;

        if (rs->zero_detection && buffer_is_zero(p, TARGET_PAGE_SIZE)) {
            legacy_page_header(f, rs, rb, offset | RAM_SAVE_FLAG_ZERO);
            qemu_put_byte(f, 0);
            zero++;
        } else {
            legacy_page_header(f, rs, rb, offset | RAM_SAVE_FLAG_PAGE);
            qemu_put_buffer_nocopy(f, p, TARGET_PAGE_SIZE);
        }
    }
    stat64_add(&mig_stats.zero_pages, zero);
    stat64_add(&mig_stats.normal_pages, npages - zero);
    return qemu_file_get_error(f);
}

static const RAMPageSink ram_sink_legacy = {
    .name = "legacy",
    .section_begin = legacy_section_begin,
    .send_pages = legacy_send_pages,
};

/*
 * The one place a migration's page sink is chosen: legacy records,
 * mapped-ram's positioned writes, or multifd's channels
 * (migration/multifd.c).
 */
static const RAMPageSink *ram_sink_select(GError **errp)
{
    /* mfd: several channels, over sockets or a mapped-ram file */
    if (migrate_multifd()) {
        return &multifd_ram_sink;
    }
    /* mram: positioned writes at fixed offsets (migration/mapped-ram.c) */
    if (migrate_mapped_ram()) {
        return &mapped_ram_sink;
    }
    return &ram_sink_legacy;
}

/* --- the dirty bitmap --- */

/* Moves every block's dirty log into its bmap; one "dirty sync". */
static void ram_bitmap_sync(RAMState *rs)
{
    RAMBlock *rb;
    uint64_t newly = 0;
    int64_t now;

    RAMBLOCK_FOREACH(rb)
    {
        newly += ramblock_dirty_log_sync(rb, rb->bmap);
    }
    rs->dirty_pages += newly;
    now = now_ns();
    if (now > rs->last_sync_ns) {
        stat64_set(&mig_stats.dirty_pages_rate,
                   newly * 1000000000ULL / (now - rs->last_sync_ns));
    }
    rs->last_sync_ns = now;
    stat64_add(&mig_stats.dirty_sync_count, 1);
    ram_update_remaining(rs);
}

/*
 * Sends the next run of dirty pages at or after the walk position.
 * Returns 1 when a run was sent, 0 at the end of the pass, < 0 on error.
 */
static int ram_send_next_run(RAMState *rs, QEMUFile *f)
{
    while (rs->block_index < ram_block_count()) {
        RAMBlock *rb = g_ptr_array_index(ram_blocks, rs->block_index);
        uint64_t pages = ramblock_pages(rb);
        uint64_t first = find_next_bit(rb->bmap, pages, rs->page);
        uint64_t end, n;

        if (first >= pages) {
            rs->block_index++;
            rs->page = 0;
            continue;
        }
        end = find_next_zero_bit(rb->bmap,
                                 MIN(pages, first + RAM_RUN_MAX_PAGES), first);
        n = end - first;
        bitmap_clear(rb->bmap, first, n);
        rs->dirty_pages -= n;
        rs->page = end;
        return rs->sink->send_pages(f, rb, first, n) < 0 ? -EIO : 1;
    }
    return 0;
}

static void ram_walk_restart(RAMState *rs)
{
    rs->block_index = 0;
    rs->page = 0;
}

/* --- save handlers --- */

static void ram_state_free(void)
{
    RAMBlock *rb;

    if (!ram_state) {
        return;
    }
    memory_global_dirty_log_stop();
    RAMBLOCK_FOREACH(rb)
    {
        g_free(rb->bmap);
        rb->bmap = NULL;
    }
    if (ram_state->sink && ram_state->sink->cleanup) {
        ram_state->sink->cleanup();
    }
    g_free(ram_state);
    ram_state = NULL;
}

static int ram_save_setup(QEMUFile *f, void *opaque, GError **errp)
{
    uint64_t start_bytes = qemu_file_transferred(f);
    uint64_t total = 0;
    RAMState *rs;
    RAMBlock *rb;
    int ret;

    /* A previous migration that never cleaned up must not leak. */
    ram_state_free();
    rs = ram_state = g_new0(RAMState, 1);
    rs->sink = ram_sink_select(errp);
    if (!rs->sink) {
        return -ENOTSUP;
    }
    /* For the legacy sink; mapped-ram and multifd read the parameter. */
    rs->zero_detection = migrate_zero_page_detection() != 0;

    RAMBLOCK_FOREACH(rb)
    {
        uint64_t pages = ramblock_pages(rb);

        if (strlen(rb->idstr) > 255) {
            error_setg(errp, "RAM block name '%s' is too long", rb->idstr);
            return -EINVAL;
        }
        rb->bmap = bitmap_new(pages);
        bitmap_fill(rb->bmap, pages);
        rs->dirty_pages += pages;
        total += rb->used_length;
    }
    /* Everything is in the bitmap already; log what changes from now on. */
    memory_global_dirty_log_start();
    rs->last_sync_ns = now_ns();
    ram_update_remaining(rs);

    if (rs->sink->setup) {
        ret = rs->sink->setup(f, errp);
        if (ret < 0) {
            return ret;
        }
    }
    if (rs->sink->section_begin) {
        rs->sink->section_begin(f);
    }
    qemu_put_be64(f, total | RAM_SAVE_FLAG_MEM_SIZE);
    RAMBLOCK_FOREACH(rb)
    {
        size_t len = strlen(rb->idstr);

        qemu_put_byte(f, len);
        qemu_put_buffer(f, (const uint8_t *)rb->idstr, len);
        qemu_put_be64(f, rb->used_length);
        if (rs->sink->block_header) {
            ret = rs->sink->block_header(f, rb, errp);
            if (ret < 0) {
                return ret;
            }
        }
    }
    qemu_put_be64(f, RAM_SAVE_FLAG_EOS);
    stat64_add(&mig_stats.precopy_bytes,
               qemu_file_transferred(f) - start_bytes);
    return qemu_file_get_error_obj(f, errp);
}

static int ram_save_iterate(QEMUFile *f, void *opaque)
{
    RAMState *rs = ram_state;
    uint64_t start_bytes = qemu_file_transferred(f);
    int64_t start = now_ns();
    int done = 0, ret = 0;
    unsigned runs = 0;

    if (!rs) {
        return -EINVAL;
    }
    if (rs->sink->section_begin) {
        rs->sink->section_begin(f);
    }
    while (!qemu_file_rate_limit(f)) {
        ret = ram_send_next_run(rs, f);
        if (ret < 0) {
            break;
        }
        if (ret == 0) {
            /* A pass is over: pick up what the guest dirtied meanwhile. */
            ram_bitmap_sync(rs);
            if (rs->sink->pass_done) {
                ret = rs->sink->pass_done(f);
                if (ret < 0) {
                    break;
                }
            }
            ram_walk_restart(rs);
            done = rs->dirty_pages == 0;
            break;
        }
        ret = 0;
        /* A run is up to 2 MiB: look at the clock every few of them. */
        if ((++runs & 7) == 0 && now_ns() - start > RAM_ITERATE_MAX_NS) {
            break;
        }
    }
    qemu_put_be64(f, RAM_SAVE_FLAG_EOS);
    stat64_add(&mig_stats.precopy_bytes,
               qemu_file_transferred(f) - start_bytes);
    ram_update_remaining(rs);
    if (ret < 0 || qemu_file_get_error(f)) {
        return ret < 0 ? ret : qemu_file_get_error(f);
    }
    return done;
}

static int ram_save_complete(QEMUFile *f, void *opaque)
{
    RAMState *rs = ram_state;
    uint64_t start_bytes = qemu_file_transferred(f);
    int ret;

    if (!rs) {
        return -EINVAL;
    }
    if (rs->sink->section_begin) {
        rs->sink->section_begin(f);
    }
    /* vCPUs are stopped: this sync is the last word on what is dirty. */
    ram_bitmap_sync(rs);
    ram_walk_restart(rs);
    do {
        ret = ram_send_next_run(rs, f);
    } while (ret > 0);
    if (ret == 0 && rs->sink->complete) {
        ret = rs->sink->complete(f);
    }
    qemu_put_be64(f, RAM_SAVE_FLAG_EOS);
    qemu_fflush(f);
    stat64_add(&mig_stats.downtime_bytes,
               qemu_file_transferred(f) - start_bytes);
    ram_update_remaining(rs);
    if (ret < 0) {
        return ret;
    }
    return qemu_file_get_error(f);
}

static uint64_t ram_state_pending(void *opaque, bool sync)
{
    RAMState *rs = ram_state;

    if (!rs) {
        return 0;
    }
    if (sync) {
        ram_bitmap_sync(rs);
    }
    return rs->dirty_pages * TARGET_PAGE_SIZE;
}

static void ram_save_cleanup(void *opaque)
{
    ram_state_free();
}

/* --- loader --- */

/* Block of the previous record: CONTINUE refers to it, across sections. */
static RAMBlock *ram_load_last_block;

static int ram_load_setup(QEMUFile *f, void *opaque, GError **errp)
{
    ram_load_last_block = NULL;
    return 0;
}

static void ram_load_cleanup(void *opaque)
{
    ram_load_last_block = NULL;
    multifd_recv_cleanup(); /* mfd: stops the incoming channels */
}

/* Reports the file's latched error (end of stream, I/O) if there is one. */
static int ram_load_file_error(QEMUFile *f, GError **errp)
{
    return qemu_file_get_error_obj(f, errp);
}

/* u8 length + name into buf[256]; returns false on a file error. */
static bool ram_load_idstr(QEMUFile *f, char buf[256], GError **errp)
{
    int len = qemu_get_byte(f);
    size_t got = qemu_get_buffer(f, (uint8_t *)buf, len);

    buf[got] = '\0';
    return ram_load_file_error(f, errp) == 0;
}

/* The MEM_SIZE record: the source's block list, checked against ours. */
static int ram_load_block_list(QEMUFile *f, uint64_t total, GError **errp)
{
    while (total > 0) {
        char idstr[256];
        uint64_t length;
        RAMBlock *rb;

        if (!ram_load_idstr(f, idstr, errp)) {
            return -EIO;
        }
        length = qemu_get_be64(f);
        if (ram_load_file_error(f, errp)) {
            return -EIO;
        }
        rb = ram_block_by_name(idstr);
        if (!rb) {
            error_setg(errp, "Unknown ramblock \"%s\", cannot accept migration",
                       idstr);
            return -EINVAL;
        }
        if (length != rb->used_length) {
            error_setg(errp,
                       "Length mismatch: %s: 0x%" PRIx64 " in != 0x%" PRIx64
                       ": Invalid argument",
                       idstr, length, rb->used_length);
            return -EINVAL;
        }
        if (length > total) {
            error_setg(errp,
                       "RAM block list is inconsistent: %s (0x%" PRIx64
                       " bytes) exceeds the 0x%" PRIx64 " bytes left of the "
                       "announced total",
                       idstr, length, total);
            return -EINVAL;
        }
        /*
         * mapped-ram: the block's MappedRamHeader follows here and its
         * pages are read from their fixed offsets (mapped-ram.c).
         */
        /* mram: begin */
        if (migrate_mapped_ram()) {
            /* mfd: with multifd the channels read the pages */
            int ret = migrate_multifd() ? multifd_file_load_block(f, rb, errp)
                                        : mapped_ram_load_block(f, rb, errp);

            if (ret < 0) {
                return ret;
            }
        }
        /* mram: end */
        total -= length;
    }
    /* mfd: every page is in guest RAM before the stream goes on */
    if (migrate_mapped_ram() && migrate_multifd()) {
        return multifd_file_load_wait(errp);
    }
    return 0;
}

/* The block a ZERO/PAGE record refers to (CONTINUE: the previous one). */
static RAMBlock *ram_load_record_block(QEMUFile *f, unsigned flags,
                                       GError **errp)
{
    char idstr[256];
    RAMBlock *rb;

    if (flags & RAM_SAVE_FLAG_CONTINUE) {
        if (!ram_load_last_block) {
            error_setg(errp, "RAM page record continues a block, but no "
                             "block was named before it");
        }
        return ram_load_last_block;
    }
    if (!ram_load_idstr(f, idstr, errp)) {
        return NULL;
    }
    rb = ram_block_by_name(idstr);
    if (!rb) {
        error_setg(errp, "Can't find block %s", idstr);
        return NULL;
    }
    ram_load_last_block = rb;
    return rb;
}

/* Host address of the page at offset in the record's block, or NULL. */
static uint8_t *ram_load_page_host(QEMUFile *f, uint64_t offset, unsigned flags,
                                   GError **errp)
{
    RAMBlock *rb = ram_load_record_block(f, flags, errp);

    if (!rb) {
        return NULL;
    }
    if (offset >= rb->used_length ||
        rb->used_length - offset < TARGET_PAGE_SIZE) {
        error_setg(errp, "Illegal RAM offset %" PRIx64, offset);
        return NULL;
    }
    return rb->host + offset;
}

static int ram_load_state(QEMUFile *f, void *opaque, int version_id,
                          GError **errp)
{
    bool mapped_ram = migrate_mapped_ram();

    if (version_id != RAM_SECTION_VERSION) {
        error_setg(errp, "Unsupported ram section version %d (expected %d)",
                   version_id, RAM_SECTION_VERSION);
        return -EINVAL;
    }
    for (;;) {
        uint64_t header = qemu_get_be64(f);
        uint64_t offset = header & TARGET_PAGE_MASK;
        unsigned flags = header & ~TARGET_PAGE_MASK;
        uint8_t *host;
        int ret, ch;

        if (ram_load_file_error(f, errp)) {
            return -EIO;
        }
        if (mapped_ram && (flags & (RAM_SAVE_FLAG_ZERO | RAM_SAVE_FLAG_PAGE |
                                    RAM_SAVE_FLAG_MULTIFD_FLUSH))) {
            error_setg(errp, "Unexpected RAM flags: %d",
                       flags & (RAM_SAVE_FLAG_ZERO | RAM_SAVE_FLAG_PAGE |
                                RAM_SAVE_FLAG_MULTIFD_FLUSH));
            return -EINVAL;
        }
        switch (flags & ~RAM_SAVE_FLAG_CONTINUE) {
        case RAM_SAVE_FLAG_MEM_SIZE:
            ret = ram_load_block_list(f, offset, errp);
            if (ret < 0) {
                return ret;
            }
            break;
        case RAM_SAVE_FLAG_ZERO:
            host = ram_load_page_host(f, offset, flags, errp);
            if (!host) {
                return -EINVAL;
            }
            ch = qemu_get_byte(f);
            if (ram_load_file_error(f, errp)) {
                return -EIO;
            }
            if (ch != 0) {
                error_setg(errp, "Found a zero page with value %d", ch);
                return -EINVAL;
            }
            /* Writing zeros would populate fresh, already-zero memory. */
            if (!buffer_is_zero(host, TARGET_PAGE_SIZE)) {
                memset(host, 0, TARGET_PAGE_SIZE);
            }
            break;
        case RAM_SAVE_FLAG_PAGE:
            host = ram_load_page_host(f, offset, flags, errp);
            if (!host) {
                return -EINVAL;
            }
            qemu_get_buffer(f, host, TARGET_PAGE_SIZE);
            if (ram_load_file_error(f, errp)) {
                return -EIO;
            }
            break;
        case RAM_SAVE_FLAG_MULTIFD_FLUSH:
            /* mfd: every channel's pages up to here are in guest RAM */
            if (multifd_recv_sync_main(errp) < 0) {
                return -EIO;
            }
            break;
        case RAM_SAVE_FLAG_EOS:
            return 0;
        default:
            error_setg(errp, "Unknown combination of migration flags: 0x%x",
                       flags);
            return -EINVAL;
        }
    }
}

static const SaveVMHandlers savevm_ram_handlers = {
    .save_setup = ram_save_setup,
    .save_live_iterate = ram_save_iterate,
    .save_live_complete_precopy = ram_save_complete,
    .state_pending = ram_state_pending,
    .save_cleanup = ram_save_cleanup,
    .load_setup = ram_load_setup,
    .load_state = ram_load_state,
    .load_cleanup = ram_load_cleanup,
};

void ram_mig_init(void)
{
    register_savevm_live("ram", 0, RAM_SECTION_VERSION, &savevm_ram_handlers,
                         NULL);
}
