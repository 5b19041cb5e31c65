/*
 * The stream's framing (stream-format.md section 1): header, CONFIGURATION,
 * START/PART/END sections of live handlers, FULL device sections, EOF and
 * VMDESCRIPTION; and the loader that checks every rule of it.
 */
#ifndef MIGRATION_SAVEVM_H
#define MIGRATION_SAVEVM_H

#include "qemu/osdep.h"
#include "migration/qemu-file.h"

/* A live (iterative) section such as "ram". */
typedef struct SaveVMHandlers {
    /* START section payload. */
    int (*save_setup)(QEMUFile *f, void *opaque, GError **errp);
    /* One PART section payload; returns 1 when nothing is left, 0 when
     * more remains, < 0 on error. Must respect qemu_file_rate_limit(). */
    int (*save_live_iterate)(QEMUFile *f, void *opaque);
    /* END section payload, vCPUs stopped. */
    int (*save_live_complete_precopy)(QEMUFile *f, void *opaque);
    /* Bytes still to send (dirty pages * page size, after a sync when
     * sync is true). */
    uint64_t (*state_pending)(void *opaque, bool sync);
    void (*save_cleanup)(void *opaque);
    /* Called at the start of a load. */
    int (*load_setup)(QEMUFile *f, void *opaque, GError **errp);
    /* Loads one START/PART/END payload. */
    int (*load_state)(QEMUFile *f, void *opaque, int version_id,
                      GError **errp);
    void (*load_cleanup)(void *opaque);
} SaveVMHandlers;

void register_savevm_live(const char *idstr, int instance_id, int version_id,
                          const SaveVMHandlers *ops, void *opaque);

/* Header and CONFIGURATION (with the validated capabilities). */
void qemu_savevm_state_header(QEMUFile *f);
/* START sections of every live handler. */
int qemu_savevm_state_setup(QEMUFile *f, GError **errp);
/* One PART section per live handler; 1 = all done, 0 = more, < 0 error. */
int qemu_savevm_state_iterate(QEMUFile *f);
/* Sum of the live handlers' pending bytes. */
uint64_t qemu_savevm_state_pending(bool sync);
/* END sections, one FULL section per device, EOF, VMDESCRIPTION. vCPUs
 * must be stopped. */
int qemu_savevm_state_complete_precopy(QEMUFile *f, GError **errp);
void qemu_savevm_state_cleanup(void);

/* Loads a whole stream; on error nothing is resumed and errp says why. */
int qemu_loadvm_state(QEMUFile *f, GError **errp);

#endif
