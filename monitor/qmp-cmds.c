/*
 * Handlers of the monitor's own QMP commands: the session (negotiation,
 * version, command list, quit), run state (query-status, stop, cont), the
 * HMP bridge, and the debug commands tests use to look at guest memory
 * (pmemsave, x-query-ram-digest). The generated marshallers call these
 * with the BQL held.
 */
#include "qemu/osdep.h"

#include "monitor/monitor-internal.h"
#include "monitor/monitor.h"
#include "qapi/qapi-commands.h"
#include "qemu/fdopen.h"
#include "system/main-loop.h"
#include "system/ramblock.h"
#include "system/runstate.h"

/* pmemsave and x-query-ram-digest work through RAM in slices this big. */
#define MEM_CHUNK_BYTES (1024 * 1024)

void qmp_qmp_capabilities(QMPCapabilityList *enable, GError **errp)
{
    /* The greeting offers nothing, so nothing can be enabled. */
    if (enable) {
        error_setg(errp, "Capability '%s' not available",
                   QMPCapability_str(enable->value));
        return;
    }
    monitor_qmp_negotiate_current(errp);
}

VersionInfo *qmp_query_version(GError **errp)
{
    VersionInfo *info = g_new0(VersionInfo, 1);

    info->qemu = g_new0(VersionTriple, 1);
    monitor_get_version(&info->qemu->major, &info->qemu->minor,
                        &info->qemu->micro);
    info->package = g_strdup(MONITOR_PACKAGE);
    return info;
}

CommandInfoList *qmp_query_commands(GError **errp)
{
    CommandInfoList *head = NULL;
    CommandInfoList **tail = &head;

    for (size_t i = 0; i < qmp_commands_count; i++) {
        CommandInfo *info = g_new0(CommandInfo, 1);

        info->name = g_strdup(qmp_commands[i].name);
        *tail = g_new0(CommandInfoList, 1);
        (*tail)->value = info;
        tail = &(*tail)->next;
    }
    return head;
}

StatusInfo *qmp_query_status(GError **errp)
{
    StatusInfo *info = g_new0(StatusInfo, 1);

    info->status = runstate_get();
    info->running = info->status == RUN_STATE_RUNNING;
    return info;
}

void qmp_stop(GError **errp)
{
    /*
     * As in QEMU: during an incoming migration, "stop" means "stay paused
     * once it completes"; otherwise stopping a VM that is not running
     * leaves its state alone (postmigrate stays postmigrate).
     */
    if (runstate_get() == RUN_STATE_INMIGRATE) {
        runstate_set_autostart(false);
    } else if (runstate_is_running()) {
        vm_stop(RUN_STATE_PAUSED);
    }
}

void qmp_cont(GError **errp)
{
    switch (runstate_get()) {
    case RUN_STATE_INMIGRATE:
        error_setg(errp, "Guest is waiting for an incoming migration");
        return;
    case RUN_STATE_FINISH_MIGRATE:
        error_setg(errp, "Migration is not finalized yet");
        return;
    case RUN_STATE_SHUTDOWN:
        error_setg(errp, "Resetting the Virtual Machine is required");
        return;
    default:
        /* Idempotent when already running. */
        vm_start();
    }
}

static gboolean quit_now(gpointer opaque)
{
    qemu_system_shutdown_request("host-qmp-quit");
    return G_SOURCE_REMOVE;
}

void qmp_quit(GError **errp)
{
    /*
     * Later, from the main loop: the reply to quit goes out before the
     * SHUTDOWN event that the request emits, as in QEMU.
     */
    main_loop_invoke(quit_now, NULL);
}

char *qmp_human_monitor_command(const char *command_line, bool has_cpu_index,
                                int64_t cpu_index, GError **errp)
{
    return hmp_run_command(command_line);
}

/* Checks that [addr, addr + size) is guest RAM, block by block. */
static bool check_guest_ram(uint64_t addr, uint64_t size, GError **errp)
{
    uint64_t gpa = addr;
    uint64_t left = size;

    while (left > 0) {
        uint64_t offset;
        RAMBlock *rb = ram_block_for_gpa(gpa, &offset);
        uint64_t n;

        if (!rb) {
            error_setg(errp,
                       "Invalid parameter 'val': guest-physical range "
                       "[0x%" PRIx64 ", 0x%" PRIx64 ") is not all RAM "
                       "(nothing at 0x%" PRIx64 ")",
                       addr, addr + size, gpa);
            return false;
        }
        n = MIN(left, rb->used_length - offset);
        gpa += n;
        left -= n;
    }
    return true;
}

static bool write_all_fd(int fd, const uint8_t *buf, size_t len,
                         const char *filename, GError **errp)
{
    while (len > 0) {
        ssize_t n = RETRY_ON_EINTR(write(fd, buf, len));

        if (n < 0) {
            error_setg_errno(errp, errno, "Could not write '%s'", filename);
            return false;
        }
        buf += n;
        len -= n;
    }
    return true;
}

void qmp_pmemsave(int64_t val, int64_t size, const char *filename,
                  GError **errp)
{
    g_autofree uint8_t *buf = NULL;
    uint64_t addr = val;
    uint64_t left = size;
    int fd;

    if (size < 0) {
        error_setg(errp, "Invalid parameter 'size'");
        return;
    }
    if (addr + left < addr) {
        error_setg(errp, "Invalid parameter 'val': range wraps around");
        return;
    }
    if (!check_guest_ram(addr, left, errp)) {
        return;
    }
    fd = qemu_open(filename, O_WRONLY | O_CREAT | O_TRUNC, 0666, errp);
    if (fd < 0) {
        return;
    }
    buf = g_malloc(MIN(left, MEM_CHUNK_BYTES) + 1);
    while (left > 0) {
        size_t n = MIN(left, MEM_CHUNK_BYTES);

        if (!guest_phys_read(addr, buf, n)) {
            error_setg(errp,
                       "Invalid parameter 'val': guest-physical 0x%" PRIx64
                       " is not RAM",
                       addr);
            break;
        }
        if (!write_all_fd(fd, buf, n, filename, errp)) {
            break;
        }
        addr += n;
        left -= n;
    }
    qemu_close(fd);
}

RamBlockDigestList *qmp_x_query_ram_digest(GError **errp)
{
    RamBlockDigestList *head = NULL;
    RamBlockDigestList **tail = &head;
    RAMBlock *rb;

    RAMBLOCK_FOREACH(rb)
    {
        g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
        RamBlockDigest *d = g_new0(RamBlockDigest, 1);

        for (uint64_t off = 0; off < rb->used_length; off += MEM_CHUNK_BYTES) {
            g_checksum_update(sum, rb->host + off,
                              MIN(MEM_CHUNK_BYTES, rb->used_length - off));
        }
        d->block = g_strdup(rb->idstr);
        d->length = rb->used_length;
        d->sha256 = g_strdup(g_checksum_get_string(sum));
        *tail = g_new0(RamBlockDigestList, 1);
        (*tail)->value = d;
        tail = &(*tail)->next;
    }
    return head;
}
