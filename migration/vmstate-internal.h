/*
 * Private to migration/: the section registry that savevm.c and vmstate.c
 * share, the section type bytes of the stream, and the vmstate engine
 * (descriptions -> bytes, bytes -> struct, descriptions -> JSON).
 */
#ifndef MIGRATION_VMSTATE_INTERNAL_H
#define MIGRATION_VMSTATE_INTERNAL_H

#include "qemu/osdep.h"

#include <json-glib/json-glib.h>

#include "migration/qemu-file.h"
#include "migration/savevm.h"
#include "migration/vmstate.h"

/* Section type bytes (stream-format.md section 1). */
enum {
    QEMU_VM_EOF = 0x00,
    QEMU_VM_SECTION_START = 0x01,
    QEMU_VM_SECTION_PART = 0x02,
    QEMU_VM_SECTION_END = 0x03,
    QEMU_VM_SECTION_FULL = 0x04,
    QEMU_VM_SUBSECTION = 0x05,
    QEMU_VM_VMDESCRIPTION = 0x06,
    QEMU_VM_CONFIGURATION = 0x07,
    QEMU_VM_COMMAND = 0x08,
    QEMU_VM_SECTION_FOOTER = 0x7e,
};

#define QEMU_VM_FILE_MAGIC 0x5145564d
#define QEMU_VM_FILE_VERSION_COMPAT 0x00000002
#define QEMU_VM_FILE_VERSION 0x00000003

/* Instance id that asks vmstate_register() for the next free one. */
#define VMSTATE_INSTANCE_ID_ANY (-1)

/*
 * One registered section: a live handler (ops) or a device (vmsd). Both
 * kinds draw their section_id from one counter, in registration order.
 */
typedef struct SaveStateEntry {
    char idstr[256];
    uint32_t instance_id;
    int version_id;
    uint32_t section_id;
    const SaveVMHandlers *ops;
    const VMStateDescription *vmsd;
    void *opaque;
} SaveStateEntry;

/* Adds an entry at the end of the registry; NULL + errp on a duplicate. */
SaveStateEntry *savevm_entry_add(const char *idstr, int instance_id,
                                 int version_id, const SaveVMHandlers *ops,
                                 const VMStateDescription *vmsd, void *opaque,
                                 GError **errp);
/* Removes the device entries registered with vmsd and opaque. */
void savevm_entry_remove_vmsd(const VMStateDescription *vmsd, void *opaque);

/*
 * Writes the fields and needed subsections of vmsd from opaque. With
 * vmdesc non-NULL, also adds "vmsd_name", "version", "fields" and
 * "subsections" members to the JSON object being built.
 */
int vmstate_save_state(QEMUFile *f, const VMStateDescription *vmsd,
                       void *opaque, JsonBuilder *vmdesc, GError **errp);
/* Reads what vmstate_save_state() wrote by a (possibly older) version. */
int vmstate_load_state(QEMUFile *f, const VMStateDescription *vmsd,
                       void *opaque, int version_id, GError **errp);
/* Checks a description (field sizes, nesting) before it is registered. */
bool vmstate_check_description(const VMStateDescription *vmsd,
                               GError **errp);

/* JSON text with QEMU's separators (", " and ": "), as its tools expect. */
GString *vmstate_json_to_string(JsonNode *node);

#endif
