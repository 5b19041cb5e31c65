/*
 * Fault injection for the migration paths (see include/qemu/fault-inject.h
 * for the contract and docs/devel/reliability.md for the table of points
 * and outcomes), and the x-debug-inject-fault QMP command that arms it.
 *
 * One fault at a time: a point, how many bytes of its traffic still go
 * through, and what happens then (an errno, a short transfer followed by
 * end of file, or a stall). Once fired it stays fired, like a dead disk,
 * until it is cleared or replaced, so that retries are the test's choice.
 *
 * Channels are told apart by name, which the transports set once: the
 * main channel is "migration-..." (file, socket, exec, fd), multifd
 * channel K is "multifd-...-K"; the incoming multifd sockets learn their
 * number only from their first packet, so "any channel" is what reaches
 * them. Direction comes from the call: writes are save-*, reads load-*.
 */
#include "qemu/osdep.h"
#include "qemu/thread.h"

#include "qapi/qapi-commands.h"
#include "qemu/fault-inject.h"
#include "system/runstate.h"

/* How often a stalled transfer looks for a clear or a shutdown. */
#define HOLD_SLICE_US (100 * 1000)

typedef enum {
    CHAN_MAIN,
    CHAN_MULTIFD,
} ChannelKind;

typedef enum {
    POINT_ANY_PHASE = -1,
} PointPhase;

/* Where the check runs: in the channel layer, at close, or in QEMUFile. */
typedef enum {
    AT_IO,
    AT_SYNC,
    AT_CONSUME,
} PointHook;

typedef struct FaultPointInfo {
    const char *name;
    bool write;
    ChannelKind kind;
    int phase; /* FaultPhase, or POINT_ANY_PHASE */
    PointHook hook;
} FaultPointInfo;

static const FaultPointInfo fault_points[] = {
    {"save-main", true, CHAN_MAIN, POINT_ANY_PHASE, AT_IO},
    {"save-multifd", true, CHAN_MULTIFD, POINT_ANY_PHASE, AT_IO},
    {"save-bitmaps", true, CHAN_MAIN, FAULT_PHASE_BITMAPS, AT_IO},
    {"save-device-state", true, CHAN_MAIN, FAULT_PHASE_DEVICE_STATE, AT_IO},
    {"save-sync", true, CHAN_MAIN, POINT_ANY_PHASE, AT_SYNC},
    {"load-main", false, CHAN_MAIN, POINT_ANY_PHASE, AT_IO},
    {"load-multifd", false, CHAN_MULTIFD, POINT_ANY_PHASE, AT_IO},
    {"load-bitmaps", false, CHAN_MAIN, FAULT_PHASE_BITMAPS, AT_IO},
    {"load-device-state", false, CHAN_MAIN, FAULT_PHASE_DEVICE_STATE,
     AT_CONSUME},
};

typedef struct Fault {
    const FaultPointInfo *point; /* NULL: nothing armed */
    uint64_t after_bytes;
    int channel; /* multifd channel, -1 = any */
    int err_no;
    bool short_io;
    bool hold;
    uint64_t seen; /* bytes of the point's traffic that went through */
} Fault;

bool fault_inject_armed;

static bool fault_enabled;
static QemuMutex fault_lock;
static QemuCond fault_cond;
static Fault fault;
/* Bumped by every arm/clear, so a stalled transfer knows it may go on. */
static uint64_t fault_generation;
static __thread FaultPhase thread_phase;

void fault_inject_set_enabled(bool on)
{
    __atomic_store_n(&fault_enabled, on, __ATOMIC_RELEASE);
}

bool fault_inject_enabled(void)
{
    return __atomic_load_n(&fault_enabled, __ATOMIC_ACQUIRE);
}

void fault_inject_set_phase(FaultPhase phase)
{
    thread_phase = phase;
}

static const FaultPointInfo *fault_point_find(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(fault_points); i++) {
        if (!strcmp(fault_points[i].name, name)) {
            return &fault_points[i];
        }
    }
    return NULL;
}

bool fault_inject_arm(const char *point, uint64_t after_bytes, int channel,
                      int err_no, bool short_io, bool hold, GError **errp)
{
    const FaultPointInfo *info = NULL;

    if (strcmp(point, "none") != 0) {
        info = fault_point_find(point);
        if (!info) {
            error_setg(errp,
                       "Unknown fault injection point '%s' (expected none, "
                       "save-main, save-multifd, save-bitmaps, "
                       "save-device-state, save-sync, load-main, "
                       "load-multifd, load-bitmaps or load-device-state)",
                       point);
            return false;
        }
        if (channel >= 0 && info->kind != CHAN_MULTIFD) {
            error_setg(errp, "Parameter 'channel' applies only to save-multifd "
                             "and load-multifd");
            return false;
        }
    }

    qemu_mutex_lock(&fault_lock);
    fault = (Fault){
        .point = info,
        .after_bytes = after_bytes,
        .channel = channel,
        .err_no = err_no,
        .short_io = short_io,
        .hold = hold,
    };
    fault_generation++;
    __atomic_store_n(&fault_inject_armed, info != NULL, __ATOMIC_RELEASE);
    qemu_cond_broadcast(&fault_cond);
    qemu_mutex_unlock(&fault_lock);
    return true;
}

void fault_inject_clear(void)
{
    fault_inject_arm("none", 0, -1, EIO, false, false, NULL);
}

/*
 * Which migration channel a name denotes; false for any other channel
 * (monitor sockets, listeners). *id is the multifd channel or -1.
 */
static bool classify_channel(const char *name, ChannelKind *kind, int *id)
{
    const char *dash;

    *id = -1;
    if (!name) {
        return false;
    }
    if (g_str_has_prefix(name, "migration-")) {
        *kind = CHAN_MAIN;
        return strcmp(name, "migration-socket-listener") != 0;
    }
    if (!g_str_has_prefix(name, "multifd-")) {
        return false;
    }
    *kind = CHAN_MULTIFD;
    dash = strrchr(name, '-');
    if (dash && g_ascii_isdigit(dash[1])) {
        guint64 v;

        if (g_ascii_string_to_unsigned(dash + 1, 10, 0, 255, &v, NULL)) {
            *id = (int)v;
        }
    }
    return true;
}

/* The armed fault applies to this call (fault_lock held). */
static bool fault_matches(PointHook hook, bool write, ChannelKind kind, int id)
{
    const FaultPointInfo *p = fault.point;

    if (!p || p->hook != hook || p->write != write || p->kind != kind) {
        return false;
    }
    if (p->phase != POINT_ANY_PHASE && p->phase != (int)thread_phase) {
        return false;
    }
    /* An unnamed incoming socket channel counts only for "any channel". */
    return fault.channel < 0 || fault.channel == id;
}

/*
 * A stall: waits until the fault is cleared or replaced (true: go on) or
 * the VM shuts down (false: fail, so that the thread can be joined).
 */
static bool fault_hold_locked(void)
{
    uint64_t gen = fault_generation;

    while (fault_generation == gen) {
        if (qemu_system_shutdown_requested()) {
            return false;
        }
        qemu_cond_wait_until(&fault_cond, &fault_lock,
                             g_get_monotonic_time() + HOLD_SLICE_US);
    }
    return true;
}

static void fault_set_error(GError **errp, const char *name, const char *what)
{
    if (fault.short_io) {
        error_setg(errp,
                   "Channel '%s': injected short %s at %s after %" PRIu64
                   " bytes",
                   name, what, fault.point->name, fault.seen);
    } else {
        error_setg_errno(errp, fault.err_no,
                         "Channel '%s': injected fault at %s after %" PRIu64
                         " bytes",
                         name, fault.point->name, fault.seen);
    }
}

FaultIOAction fault_inject_io(const char *name, bool write, size_t *len,
                              GError **errp)
{
    FaultIOAction action = FAULT_IO_PASS;
    ChannelKind kind;
    int id;

    if (!classify_channel(name, &kind, &id) || *len == 0) {
        return FAULT_IO_PASS;
    }
    qemu_mutex_lock(&fault_lock);
    if (!fault_matches(AT_IO, write, kind, id)) {
        goto out;
    }
    if (fault.seen < fault.after_bytes) {
        /* Up to the boundary everything goes through, exactly. */
        *len = MIN(*len, fault.after_bytes - fault.seen);
        fault.seen += *len;
        goto out;
    }
    if (fault.hold) {
        if (!fault_hold_locked()) {
            error_setg(errp,
                       "Channel '%s': transfer stalled by fault injection "
                       "aborted: the VM is shutting down",
                       name);
            action = FAULT_IO_FAIL;
        }
        goto out;
    }
    if (fault.short_io) {
        action = FAULT_IO_NOTHING;
        goto out;
    }
    fault_set_error(errp, name, write ? "write" : "read");
    action = FAULT_IO_FAIL;
out:
    qemu_mutex_unlock(&fault_lock);
    return action;
}

bool fault_inject_sync(const char *name, GError **errp)
{
    ChannelKind kind;
    bool ok = true;
    int id;

    /* The source's main channel: "...-outgoing", or an fd: it was given. */
    if (!classify_channel(name, &kind, &id) || kind != CHAN_MAIN ||
        !(g_str_has_suffix(name, "-outgoing") ||
          !strcmp(name, "migration-fd"))) {
        return true;
    }
    qemu_mutex_lock(&fault_lock);
    if (fault_matches(AT_SYNC, true, kind, id)) {
        if (fault.hold) {
            ok = fault_hold_locked();
            if (!ok) {
                error_setg(errp,
                           "Channel '%s': close stalled by fault injection "
                           "aborted: the VM is shutting down",
                           name);
            }
        } else {
            error_setg_errno(errp, fault.short_io ? EIO : fault.err_no,
                             "Channel '%s': injected fault at save-sync", name);
            ok = false;
        }
    }
    qemu_mutex_unlock(&fault_lock);
    return ok;
}

bool fault_inject_consume(size_t len, GError **errp)
{
    bool ok = true;

    qemu_mutex_lock(&fault_lock);
    if (!fault_matches(AT_CONSUME, false, CHAN_MAIN, -1) || len == 0) {
        goto out;
    }
    if (fault.seen + len <= fault.after_bytes) {
        fault.seen += len;
        goto out;
    }
    if (fault.hold) {
        ok = fault_hold_locked();
        if (!ok) {
            error_setg(errp, "Device state read stalled by fault injection "
                             "aborted: the VM is shutting down");
        }
        goto out;
    }
    if (fault.short_io) {
        error_setg(errp,
                   "Unexpected end of migration stream (injected at %s "
                   "after %" PRIu64 " bytes)",
                   fault.point->name, fault.seen);
    } else {
        error_setg_errno(errp, fault.err_no,
                         "Reading device state: injected fault at %s "
                         "after %" PRIu64 " bytes",
                         fault.point->name, fault.seen);
    }
    ok = false;
out:
    qemu_mutex_unlock(&fault_lock);
    return ok;
}

/* --- QMP --- */

void qmp_x_debug_inject_fault(const char *point, bool has_after_bytes,
                              int64_t after_bytes, bool has_channel,
                              int64_t channel, const char *q_errno,
                              bool has_q_short, bool q_short, bool has_hold,
                              bool hold, GError **errp)
{
    int err_no = EIO;

    if (!fault_inject_enabled()) {
        error_setg(errp, "Fault injection is disabled (start minivm with "
                         "-fault-injection on)");
        return;
    }
    if (has_after_bytes && after_bytes < 0) {
        error_setg(errp, "Parameter 'after-bytes' expects a non-negative "
                         "value");
        return;
    }
    if (has_channel && (channel < 0 || channel > 255)) {
        error_setg(errp, "Parameter 'channel' expects a value between 0 and "
                         "255");
        return;
    }
    if (q_errno) {
        if (!strcmp(q_errno, "EIO")) {
            err_no = EIO;
        } else if (!strcmp(q_errno, "ENOSPC")) {
            err_no = ENOSPC;
        } else {
            error_setg(errp, "Parameter 'errno' expects 'EIO' or 'ENOSPC'");
            return;
        }
    }
    if (has_q_short && q_short && has_hold && hold) {
        error_setg(errp, "Parameters 'short' and 'hold' are exclusive");
        return;
    }
    fault_inject_arm(point, has_after_bytes ? (uint64_t)after_bytes : 0,
                     has_channel ? (int)channel : -1, err_no,
                     has_q_short && q_short, has_hold && hold, errp);
}
