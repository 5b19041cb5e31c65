/*
 * Fault injection for the migration paths (debug only, off by default):
 * make a chosen write or read of a migration fail with EIO or ENOSPC, or
 * come up short, or stall, so that tests can prove that every failure is
 * clean (a clear error, the source keeps running, the destination never
 * runs a half-loaded guest). docs/devel/reliability.md has the table of
 * points and the outcome each one must have.
 *
 * Reaching it: `minivm -fault-injection on` makes the QMP command
 * x-debug-inject-fault usable; without the option the command is refused,
 * so a normal management client can never arm a fault.
 *
 * Where it bites: io/channel.c asks fault_inject_io() before every
 * transport call of a channel whose name says it is a migration channel
 * ("migration-*" is the main channel, "multifd-*-K" multifd channel K),
 * and fault_inject_sync() before closing (fsyncing) the source's main
 * channel. Bitmaps and device state are phases of the main channel that
 * the migration code marks with fault_inject_set_phase(); the loader
 * consumes device state from its read buffer, so that one point is
 * checked where QEMUFile hands bytes out (fault_inject_consume()).
 *
 * Cost when no fault is armed: one load of fault_inject_armed and a
 * branch that is never taken, on each of those calls.
 */
#ifndef QEMU_FAULT_INJECT_H
#define QEMU_FAULT_INJECT_H

#include "qemu/osdep.h"

/* Parts of the main channel's traffic; thread-local, set by migration/. */
typedef enum {
    FAULT_PHASE_NONE,
    FAULT_PHASE_BITMAPS,      /* mapped-ram bitmaps (written or read) */
    FAULT_PHASE_DEVICE_STATE, /* device sections to the end of the stream */
} FaultPhase;

/* True while a fault is armed; the hot paths test only this. */
extern bool fault_inject_armed;

static inline bool fault_inject_active(void)
{
    return unlikely(__atomic_load_n(&fault_inject_armed, __ATOMIC_RELAXED));
}

/* -fault-injection on|off (main.c); off by default. */
void fault_inject_set_enabled(bool on);
bool fault_inject_enabled(void);

/*
 * Arms one fault (replacing any armed one), or clears it with point
 * "none". Points: save-main, save-multifd, save-bitmaps,
 * save-device-state, save-sync, load-main, load-multifd, load-bitmaps,
 * load-device-state. after_bytes: bytes of that point's traffic that
 * still go through; channel: the multifd channel (-1: any); err_no: EIO or
 * ENOSPC; short_io: end with a short transfer and then no progress (end of
 * file) instead of an error; hold: stall the transfer until the fault is
 * cleared (then it goes on) or the VM shuts down (then it fails).
 */
bool fault_inject_arm(const char *point, uint64_t after_bytes, int channel,
                      int err_no, bool short_io, bool hold, GError **errp);
void fault_inject_clear(void);

/* Marks what the calling thread is about to move on the main channel. */
void fault_inject_set_phase(FaultPhase phase);

/* What io/channel.c does with the transfer it asked about. */
typedef enum {
    FAULT_IO_PASS,    /* transfer *len bytes (maybe fewer than asked) */
    FAULT_IO_NOTHING, /* return 0: end of file / no progress */
    FAULT_IO_FAIL,    /* return -1 with errp set */
} FaultIOAction;

/*
 * Before one transport call of channel `name` moving up to *len bytes
 * (write or read). May lower *len so that exactly after_bytes go through.
 * Call only when fault_inject_active().
 */
FaultIOAction fault_inject_io(const char *name, bool write, size_t *len,
                              GError **errp);
/* Before closing channel `name`: false with errp set to fail the close. */
bool fault_inject_sync(const char *name, GError **errp);
/*
 * The loader is about to consume len bytes of the stream (QEMUFile): false
 * with errp set when load-device-state fires. Only when active.
 */
bool fault_inject_consume(size_t len, GError **errp);

#endif
