/*
 * The stream's framing (stream-format.md section 1) and the registry of
 * everything that travels in it.
 *
 * Writer: header and CONFIGURATION, then START / PART / END sections of
 * the live handlers (ram), FULL sections of the devices, EOF and the
 * VMDESCRIPTION JSON. Every section ends with a footer naming its id.
 *
 * Loader: checks every rule of the framing with the messages QEMU uses, so
 * a file that is not ours, was cut short or was corrupted fails with a
 * clear error instead of a half-loaded guest. Every length read from the
 * stream is bounded before it is used.
 */
#include "qemu/osdep.h"

#include "migration/global-state.h"
#include "migration/migration-stats.h"
#include "migration/options.h"
#include "migration/savevm.h"
#include "migration/vmstate-internal.h"
#include "qemu/fault-inject.h" /* rel */

#define MINIVM_MACHINE_TYPE "minivm-1.0"
/* Longest machine type name the loader accepts from a stream. */
#define MACHINE_TYPE_MAX_LEN 256
#define CAPS_SUBSECTION "configuration/capabilities"
/* More capabilities than exist in any QEMU: refuse, do not loop. */
#define CAPS_MAX_COUNT 256
#define MIG_CMD_SWITCHOVER_START 0x000b

/* Registry, in registration order (= stream order). */
static GPtrArray *savevm_entries;
static uint32_t savevm_next_section_id;

/* What the header sent, for the "configuration" entry of the JSON. */
static struct {
    bool sent_caps;
    size_t caps_bytes;
    unsigned caps_count;
} savevm_config;

/*
 * Capabilities both sides must agree on; the source lists those that are
 * on in "configuration/capabilities".
 */
typedef struct ValidatedCap {
    const char *name;
    bool (*enabled)(void);
} ValidatedCap;

static const ValidatedCap validated_caps[] = {
    { "mapped-ram", migrate_mapped_ram },
};

/* --- registry --- */

static SaveStateEntry *savevm_find(const char *idstr, uint32_t instance_id)
{
    for (guint i = 0; savevm_entries && i < savevm_entries->len; i++) {
        SaveStateEntry *se = g_ptr_array_index(savevm_entries, i);

        if (se->instance_id == instance_id && strcmp(se->idstr, idstr) == 0) {
            return se;
        }
    }
    return NULL;
}

static uint32_t savevm_next_instance_id(const char *idstr)
{
    uint32_t next = 0;

    for (guint i = 0; savevm_entries && i < savevm_entries->len; i++) {
        SaveStateEntry *se = g_ptr_array_index(savevm_entries, i);

        if (strcmp(se->idstr, idstr) == 0 && se->instance_id >= next) {
            next = se->instance_id + 1;
        }
    }
    return next;
}

SaveStateEntry *savevm_entry_add(const char *idstr, int instance_id,
                                 int version_id, const SaveVMHandlers *ops,
                                 const VMStateDescription *vmsd, void *opaque,
                                 GError **errp)
{
    SaveStateEntry *se;

    if (!idstr || !idstr[0] || strlen(idstr) > 255) {
        error_setg(errp, "Section name '%s' must be 1 to 255 bytes",
                   idstr ? idstr : "");
        return NULL;
    }
    if (instance_id == VMSTATE_INSTANCE_ID_ANY) {
        instance_id = savevm_next_instance_id(idstr);
    } else if (instance_id < 0) {
        error_setg(errp, "Invalid instance id %d for %s", instance_id, idstr);
        return NULL;
    }
    if (savevm_find(idstr, instance_id)) {
        error_setg(errp, "Section %s instance %d is already registered",
                   idstr, instance_id);
        return NULL;
    }
    if (!savevm_entries) {
        savevm_entries = g_ptr_array_new_with_free_func(g_free);
    }
    se = g_new0(SaveStateEntry, 1);
    g_strlcpy(se->idstr, idstr, sizeof(se->idstr));
    se->instance_id = instance_id;
    se->version_id = version_id;
    se->section_id = savevm_next_section_id++;
    se->ops = ops;
    se->vmsd = vmsd;
    se->opaque = opaque;
    g_ptr_array_add(savevm_entries, se);
    return se;
}

void savevm_entry_remove_vmsd(const VMStateDescription *vmsd, void *opaque)
{
    for (guint i = 0; savevm_entries && i < savevm_entries->len;) {
        SaveStateEntry *se = g_ptr_array_index(savevm_entries, i);

        if (se->vmsd == vmsd && se->opaque == opaque) {
            g_ptr_array_remove_index(savevm_entries, i);
        } else {
            i++;
        }
    }
}

void register_savevm_live(const char *idstr, int instance_id, int version_id,
                          const SaveVMHandlers *ops, void *opaque)
{
    g_autoptr(GError) err = NULL;

    if (!savevm_entry_add(idstr, instance_id, version_id, ops, NULL, opaque,
                          &err)) {
        /* A programming error at start-up, not a runtime condition. */
        g_error("register_savevm_live: %s", err->message);
    }
}

#define FOREACH_ENTRY(se)                                                      \
    for (guint _j = 0; savevm_entries && _j < savevm_entries->len &&           \
                       ((se) = g_ptr_array_index(savevm_entries, _j), 1);      \
         _j++)

static void savevm_update_transferred(QEMUFile *f)
{
    stat64_set(&mig_stats.transferred,
               qemu_file_transferred(f) + stat64_get(&mig_stats.multifd_bytes));
}

/* --- writer --- */

static void save_section_header(QEMUFile *f, SaveStateEntry *se, int type)
{
    qemu_put_byte(f, type);
    qemu_put_be32(f, se->section_id);
    if (type == QEMU_VM_SECTION_START || type == QEMU_VM_SECTION_FULL) {
        size_t len = strlen(se->idstr);

        qemu_put_byte(f, len);
        qemu_put_buffer(f, (const uint8_t *)se->idstr, len);
        qemu_put_be32(f, se->instance_id);
        qemu_put_be32(f, se->version_id);
    }
}

static void save_section_footer(QEMUFile *f, SaveStateEntry *se)
{
    qemu_put_byte(f, QEMU_VM_SECTION_FOOTER);
    qemu_put_be32(f, se->section_id);
}

void qemu_savevm_state_header(QEMUFile *f)
{
    size_t len = strlen(MINIVM_MACHINE_TYPE);
    unsigned count = 0;
    size_t caps_bytes = 0;

    qemu_put_be32(f, QEMU_VM_FILE_MAGIC);
    qemu_put_be32(f, QEMU_VM_FILE_VERSION);

    qemu_put_byte(f, QEMU_VM_CONFIGURATION);
    qemu_put_be32(f, len);
    qemu_put_buffer(f, (const uint8_t *)MINIVM_MACHINE_TYPE, len);

    for (size_t i = 0; i < G_N_ELEMENTS(validated_caps); i++) {
        if (validated_caps[i].enabled()) {
            count++;
            caps_bytes += 1 + strlen(validated_caps[i].name);
        }
    }
    savevm_config.sent_caps = count > 0;
    savevm_config.caps_count = count;
    savevm_config.caps_bytes = caps_bytes;
    if (count) {
        qemu_put_byte(f, QEMU_VM_SUBSECTION);
        qemu_put_byte(f, strlen(CAPS_SUBSECTION));
        qemu_put_buffer(f, (const uint8_t *)CAPS_SUBSECTION,
                        strlen(CAPS_SUBSECTION));
        qemu_put_be32(f, 1);
        qemu_put_be32(f, count);
        for (size_t i = 0; i < G_N_ELEMENTS(validated_caps); i++) {
            const char *name = validated_caps[i].name;

            if (validated_caps[i].enabled()) {
                qemu_put_byte(f, strlen(name));
                qemu_put_buffer(f, (const uint8_t *)name, strlen(name));
            }
        }
    }
    savevm_update_transferred(f);
}

static void json_add_field(JsonBuilder *b, const char *name, const char *type,
                           int64_t size)
{
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "name");
    json_builder_add_string_value(b, name);
    json_builder_set_member_name(b, "type");
    json_builder_add_string_value(b, type);
    json_builder_set_member_name(b, "size");
    json_builder_add_int_value(b, size);
    json_builder_end_object(b);
}

/* The "configuration" entry: what the CONFIGURATION section holds. */
static void json_add_configuration(JsonBuilder *b)
{
    json_builder_set_member_name(b, "configuration");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "vmsd_name");
    json_builder_add_string_value(b, "configuration");
    json_builder_set_member_name(b, "version");
    json_builder_add_int_value(b, 1);
    json_builder_set_member_name(b, "fields");
    json_builder_begin_array(b);
    json_add_field(b, "len", "uint32", 4);
    json_add_field(b, "name", "buffer", strlen(MINIVM_MACHINE_TYPE));
    json_builder_end_array(b);
    if (savevm_config.sent_caps) {
        json_builder_set_member_name(b, "subsections");
        json_builder_begin_array(b);
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "vmsd_name");
        json_builder_add_string_value(b, CAPS_SUBSECTION);
        json_builder_set_member_name(b, "version");
        json_builder_add_int_value(b, 1);
        json_builder_set_member_name(b, "fields");
        json_builder_begin_array(b);
        json_add_field(b, "caps_count", "uint32", 4);
        json_add_field(b, "capabilities", "capability",
                       savevm_config.caps_bytes);
        json_builder_end_array(b);
        json_builder_end_object(b);
        json_builder_end_array(b);
    }
    json_builder_end_object(b);
}

/* Turns a latched file error (or a bare return code) into errp. */
static int savevm_error(QEMUFile *f, int ret, const char *what, GError **errp)
{
    g_autoptr(GError) err = NULL;
    int file_ret = qemu_file_get_error_obj(f, &err);

    if (file_ret) {
        error_setg(errp, "%s: %s", what, err->message);
        return file_ret;
    }
    error_setg(errp, "%s: %s", what, g_strerror(ret < 0 ? -ret : EIO));
    return ret < 0 ? ret : -EIO;
}

int qemu_savevm_state_setup(QEMUFile *f, GError **errp)
{
    SaveStateEntry *se;

    FOREACH_ENTRY(se)
    {
        GError *err = NULL;
        int ret;

        if (!se->ops || !se->ops->save_setup) {
            continue;
        }
        save_section_header(f, se, QEMU_VM_SECTION_START);
        ret = se->ops->save_setup(f, se->opaque, &err);
        save_section_footer(f, se);
        if (ret < 0) {
            if (err) {
                error_propagate(errp, err);
                error_prepend(errp, "Failed to set up section '%s': ",
                              se->idstr);
                qemu_file_set_error(f, ret);
                return ret;
            }
            g_autofree char *what =
                g_strdup_printf("Failed to set up section '%s'", se->idstr);
            return savevm_error(f, ret, what, errp);
        }
        g_clear_error(&err);
    }
    savevm_update_transferred(f);
    if (qemu_file_get_error(f)) {
        return savevm_error(f, -EIO, "Writing the migration stream", errp);
    }
    return 0;
}

int qemu_savevm_state_iterate(QEMUFile *f)
{
    SaveStateEntry *se;
    int all_done = 1;

    FOREACH_ENTRY(se)
    {
        int ret;

        if (!se->ops || !se->ops->save_live_iterate) {
            continue;
        }
        /* Out of budget: the caller waits for the next window. */
        if (qemu_file_rate_limit(f)) {
            all_done = 0;
            break;
        }
        save_section_header(f, se, QEMU_VM_SECTION_PART);
        ret = se->ops->save_live_iterate(f, se->opaque);
        save_section_footer(f, se);
        if (ret < 0) {
            qemu_file_set_error(f, ret);
            savevm_update_transferred(f);
            return ret;
        }
        if (ret == 0) {
            all_done = 0;
        }
    }
    savevm_update_transferred(f);
    if (qemu_file_get_error(f)) {
        return qemu_file_get_error(f);
    }
    return all_done;
}

uint64_t qemu_savevm_state_pending(bool sync)
{
    SaveStateEntry *se;
    uint64_t total = 0;

    FOREACH_ENTRY(se)
    {
        if (se->ops && se->ops->state_pending) {
            total += se->ops->state_pending(se->opaque, sync);
        }
    }
    return total;
}

static int savevm_complete_live(QEMUFile *f, GError **errp)
{
    SaveStateEntry *se;

    FOREACH_ENTRY(se)
    {
        int ret;

        if (!se->ops || !se->ops->save_live_complete_precopy) {
            continue;
        }
        save_section_header(f, se, QEMU_VM_SECTION_END);
        ret = se->ops->save_live_complete_precopy(f, se->opaque);
        save_section_footer(f, se);
        if (ret < 0 || qemu_file_get_error(f)) {
            g_autofree char *what =
                g_strdup_printf("Failed to complete section '%s'", se->idstr);
            return savevm_error(f, ret, what, errp);
        }
    }
    return 0;
}

static int savevm_save_devices(QEMUFile *f, JsonBuilder *vmdesc,
                               GError **errp)
{
    SaveStateEntry *se;

    FOREACH_ENTRY(se)
    {
        GError *err = NULL;
        int ret;

        if (!se->vmsd) {
            continue;
        }
        save_section_header(f, se, QEMU_VM_SECTION_FULL);
        json_builder_begin_object(vmdesc);
        json_builder_set_member_name(vmdesc, "name");
        json_builder_add_string_value(vmdesc, se->idstr);
        json_builder_set_member_name(vmdesc, "instance_id");
        json_builder_add_int_value(vmdesc, se->instance_id);
        ret = vmstate_save_state(f, se->vmsd, se->opaque, vmdesc, &err);
        json_builder_end_object(vmdesc);
        save_section_footer(f, se);
        if (ret < 0) {
            error_propagate(errp, err);
            error_prepend(errp, "Failed to save device '%s': ", se->idstr);
            qemu_file_set_error(f, ret);
            return ret;
        }
    }
    return 0;
}

int qemu_savevm_state_complete_precopy(QEMUFile *f, GError **errp)
{
    g_autoptr(JsonBuilder) vmdesc = NULL;
    g_autoptr(JsonNode) root = NULL;
    g_autoptr(GString) json = NULL;
    int ret;

    ret = savevm_complete_live(f, errp);
    if (ret < 0) {
        return ret;
    }

    vmdesc = json_builder_new();
    json_builder_begin_object(vmdesc);
    json_add_configuration(vmdesc);
    json_builder_set_member_name(vmdesc, "page_size");
    json_builder_add_int_value(vmdesc, TARGET_PAGE_SIZE);
    json_builder_set_member_name(vmdesc, "devices");
    json_builder_begin_array(vmdesc);
    /* rel: fault injection: the rest of the stream is device state */
    if (fault_inject_active()) {
        qemu_fflush(f); /* so RAM bytes do not count as device state */
    }
    fault_inject_set_phase(FAULT_PHASE_DEVICE_STATE);
    ret = savevm_save_devices(f, vmdesc, errp);
    if (ret < 0) {
        fault_inject_set_phase(FAULT_PHASE_NONE); /* rel */
        return ret;
    }
    json_builder_end_array(vmdesc);
    json_builder_end_object(vmdesc);

    qemu_put_byte(f, QEMU_VM_EOF);

    root = json_builder_get_root(vmdesc);
    json = vmstate_json_to_string(root);
    qemu_put_byte(f, QEMU_VM_VMDESCRIPTION);
    qemu_put_be32(f, json->len);
    qemu_put_buffer(f, (const uint8_t *)json->str, json->len);
    qemu_fflush(f);
    fault_inject_set_phase(FAULT_PHASE_NONE); /* rel */
    savevm_update_transferred(f);
    if (qemu_file_get_error(f)) {
        return savevm_error(f, -EIO, "Writing the migration stream", errp);
    }
    return 0;
}

void qemu_savevm_state_cleanup(void)
{
    SaveStateEntry *se;

    FOREACH_ENTRY(se)
    {
        if (se->ops && se->ops->save_cleanup) {
            se->ops->save_cleanup(se->opaque);
        }
    }
}

/* --- loader --- */

/* A section the stream opened with START, so PART/END can name it. */
typedef struct LoadStateEntry {
    SaveStateEntry *se;
    uint32_t section_id;
    int version_id;
} LoadStateEntry;

/*
 * If the file has a latched error (end of stream, I/O), reports it with
 * what was being read and returns it; 0 otherwise.
 */
static int loadvm_file_error(QEMUFile *f, GError **errp, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);
static int loadvm_file_error(QEMUFile *f, GError **errp, const char *fmt, ...)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *what = NULL;
    int ret = qemu_file_get_error_obj(f, &err);
    va_list ap;

    if (!ret) {
        return 0;
    }
    va_start(ap, fmt);
    what = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    error_setg(errp, "%s while reading %s", err->message, what);
    return ret;
}

/* Reads u8 length + bytes into a NUL-terminated 256-byte buffer. */
static void loadvm_get_counted_string(QEMUFile *f, char buf[256])
{
    int len = qemu_get_byte(f);
    size_t got = qemu_get_buffer(f, (uint8_t *)buf, len);

    buf[got] = '\0';
}

static const ValidatedCap *validated_cap_find(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(validated_caps); i++) {
        if (strcmp(validated_caps[i].name, name) == 0) {
            return &validated_caps[i];
        }
    }
    return NULL;
}

/* "configuration/capabilities" body; marks received[] per validated cap. */
static int loadvm_capabilities(QEMUFile *f, bool *received, GError **errp)
{
    uint32_t version = qemu_get_be32(f);
    uint32_t count = qemu_get_be32(f);
    int ret;

    ret = loadvm_file_error(f, errp, "the capabilities");
    if (ret) {
        return ret;
    }
    if (version > 1) {
        error_setg(errp,
                   "%s: incoming version_id %u is too new for local "
                   "version_id 1",
                   CAPS_SUBSECTION, version);
        return -EINVAL;
    }
    if (count > CAPS_MAX_COUNT) {
        error_setg(errp, "Received %u capabilities, more than the %d allowed",
                   count, CAPS_MAX_COUNT);
        return -EINVAL;
    }
    for (uint32_t i = 0; i < count; i++) {
        char name[256];
        const ValidatedCap *cap;

        loadvm_get_counted_string(f, name);
        ret = loadvm_file_error(f, errp, "the capabilities");
        if (ret) {
            return ret;
        }
        cap = validated_cap_find(name);
        if (!cap) {
            error_setg(errp, "Received unknown capability %s", name);
            return -EINVAL;
        }
        received[cap - validated_caps] = true;
    }
    return 0;
}

static int loadvm_configuration(QEMUFile *f, GError **errp)
{
    bool received[G_N_ELEMENTS(validated_caps)] = { false };
    char name[MACHINE_TYPE_MAX_LEN];
    uint32_t len;
    int ret;

    ret = qemu_get_byte(f);
    if (loadvm_file_error(f, errp, "the configuration section")) {
        return -EINVAL;
    }
    if (ret != QEMU_VM_CONFIGURATION) {
        error_setg(errp, "Configuration section missing");
        return -EINVAL;
    }
    len = qemu_get_be32(f);
    if (len > MACHINE_TYPE_MAX_LEN) {
        error_setg(errp, "Machine type received is %u bytes long (at most %d)",
                   len, MACHINE_TYPE_MAX_LEN);
        return -EINVAL;
    }
    qemu_get_buffer(f, (uint8_t *)name, len);
    ret = loadvm_file_error(f, errp, "the configuration section");
    if (ret) {
        return ret;
    }
    if (len != strlen(MINIVM_MACHINE_TYPE) ||
        memcmp(name, MINIVM_MACHINE_TYPE, len) != 0) {
        error_setg(errp, "Machine type received is '%.*s' and local is '%s'",
                   (int)len, name, MINIVM_MACHINE_TYPE);
        return -EINVAL;
    }

    while (qemu_peek_byte(f, 0) == QEMU_VM_SUBSECTION) {
        char sub[256];

        qemu_get_byte(f);
        loadvm_get_counted_string(f, sub);
        ret = loadvm_file_error(f, errp, "the configuration section");
        if (ret) {
            return ret;
        }
        if (strcmp(sub, CAPS_SUBSECTION) != 0) {
            error_setg(errp, "VM subsection '%s' in 'configuration' does "
                       "not exist", sub);
            return -ENOENT;
        }
        ret = loadvm_capabilities(f, received, errp);
        if (ret) {
            return ret;
        }
    }

    for (size_t i = 0; i < G_N_ELEMENTS(validated_caps); i++) {
        bool local = validated_caps[i].enabled();

        if (local != received[i]) {
            error_setg(errp, "Capability %s is %s, but received capability "
                       "is %s",
                       validated_caps[i].name, local ? "on" : "off",
                       received[i] ? "on" : "off");
            return -EINVAL;
        }
    }
    return 0;
}

static int loadvm_check_footer(QEMUFile *f, SaveStateEntry *se,
                               uint32_t section_id, GError **errp)
{
    int marker = qemu_get_byte(f);
    uint32_t read_id;
    int ret;

    ret = loadvm_file_error(f, errp, "the footer of section '%s'", se->idstr);
    if (ret) {
        return ret;
    }
    if (marker != QEMU_VM_SECTION_FOOTER) {
        error_setg(errp, "Missing section footer for %s", se->idstr);
        return -EINVAL;
    }
    read_id = qemu_get_be32(f);
    ret = loadvm_file_error(f, errp, "the footer of section '%s'", se->idstr);
    if (ret) {
        return ret;
    }
    if (read_id != section_id) {
        error_setg(errp,
                   "Mismatched section id in footer for %s - read 0x%x "
                   "expected 0x%x",
                   se->idstr, read_id, section_id);
        return -EINVAL;
    }
    return 0;
}

static int loadvm_section_body(QEMUFile *f, SaveStateEntry *se,
                               int version_id, GError **errp)
{
    GError *err = NULL;
    int ret;

    if (se->vmsd) {
        ret = vmstate_load_state(f, se->vmsd, se->opaque, version_id, &err);
    } else if (se->ops && se->ops->load_state) {
        ret = se->ops->load_state(f, se->opaque, version_id, &err);
    } else {
        error_setg(&err, "section cannot be loaded");
        ret = -EINVAL;
    }
    if (ret >= 0 && qemu_file_get_error(f)) {
        ret = qemu_file_get_error(f);
    }
    if (ret < 0) {
        if (!err) {
            g_autoptr(GError) ferr = NULL;

            if (qemu_file_get_error_obj(f, &ferr)) {
                error_setg(&err, "%s", ferr->message);
            } else {
                error_setg(&err, "%s", g_strerror(-ret));
            }
        }
        error_propagate(errp, err);
        error_prepend(errp,
                      "error while loading state for instance 0x%x of "
                      "device '%s': ",
                      se->instance_id, se->idstr);
        return ret;
    }
    g_clear_error(&err);
    return 0;
}

/* START or FULL: header with the name, body, footer. */
static int loadvm_section_start_full(QEMUFile *f, GArray *loaded, int type,
                                     GError **errp)
{
    uint32_t section_id = qemu_get_be32(f);
    char idstr[256];
    uint32_t instance_id, version_id;
    SaveStateEntry *se;
    int ret;

    loadvm_get_counted_string(f, idstr);
    instance_id = qemu_get_be32(f);
    version_id = qemu_get_be32(f);
    ret = loadvm_file_error(f, errp, "a section header");
    if (ret) {
        return ret;
    }
    se = savevm_find(idstr, instance_id);
    if (!se) {
        error_setg(errp,
                   "Unknown savevm section or instance '%s' %u. Make sure "
                   "that your current VM setup matches your saved VM setup, "
                   "including any hotplugged devices",
                   idstr, instance_id);
        return -EINVAL;
    }
    if (version_id > (uint32_t)se->version_id) {
        error_setg(errp, "savevm: unsupported version %u for '%s' v%d",
                   version_id, idstr, se->version_id);
        return -EINVAL;
    }
    if (type == QEMU_VM_SECTION_START) {
        LoadStateEntry le = {
            .se = se, .section_id = section_id, .version_id = version_id
        };

        g_array_append_val(loaded, le);
    }
    ret = loadvm_section_body(f, se, version_id, errp);
    if (ret < 0) {
        return ret;
    }
    return loadvm_check_footer(f, se, section_id, errp);
}

/* PART or END: the section id names a section opened by START. */
static int loadvm_section_part_end(QEMUFile *f, GArray *loaded,
                                   GError **errp)
{
    uint32_t section_id = qemu_get_be32(f);
    LoadStateEntry *le = NULL;
    int ret;

    ret = loadvm_file_error(f, errp, "a section header");
    if (ret) {
        return ret;
    }
    for (guint i = 0; i < loaded->len; i++) {
        LoadStateEntry *e = &g_array_index(loaded, LoadStateEntry, i);

        if (e->section_id == section_id) {
            le = e;
            break;
        }
    }
    if (!le) {
        error_setg(errp, "Unknown savevm section %u", section_id);
        return -EINVAL;
    }
    ret = loadvm_section_body(f, le->se, le->version_id, errp);
    if (ret < 0) {
        return ret;
    }
    return loadvm_check_footer(f, le->se, section_id, errp);
}

static int loadvm_command(QEMUFile *f, GError **errp)
{
    unsigned cmd = qemu_get_be16(f);
    unsigned len = qemu_get_be16(f);
    int ret;

    ret = loadvm_file_error(f, errp, "a command section");
    if (ret) {
        return ret;
    }
    if (cmd == MIG_CMD_SWITCHOVER_START) {
        /* QEMU 10 announces its switchover; nothing to do for us. */
        if (len != 0) {
            error_setg(errp,
                       "Migration command switchover-start has length %u, "
                       "expected 0",
                       len);
            return -EINVAL;
        }
        return 0;
    }
    error_setg(errp, "Unsupported migration command 0x%x (length %u)", cmd,
               len);
    return -EINVAL;
}

/*
 * Reads the trailing VMDESCRIPTION if there is one, so a writer on a pipe
 * or socket is never cut off before its last bytes. It is not required
 * and its content is not used.
 */
static void loadvm_skip_vmdesc(QEMUFile *f)
{
    uint8_t chunk[4096];
    uint32_t size;

    if (qemu_peek_byte(f, 0) != QEMU_VM_VMDESCRIPTION) {
        return;
    }
    qemu_get_byte(f);
    size = qemu_get_be32(f);
    while (size > 0 && !qemu_file_get_error(f)) {
        size_t n = MIN(size, sizeof(chunk));

        if (qemu_get_buffer(f, chunk, n) != n) {
            break;
        }
        size -= n;
    }
}

static int loadvm_setup(QEMUFile *f, GError **errp)
{
    SaveStateEntry *se;

    FOREACH_ENTRY(se)
    {
        if (se->ops && se->ops->load_setup) {
            int ret = se->ops->load_setup(f, se->opaque, errp);

            if (ret < 0) {
                error_prepend(errp, "Failed to set up loading of '%s': ",
                              se->idstr);
                return ret;
            }
        }
    }
    return 0;
}

static void loadvm_cleanup(void)
{
    SaveStateEntry *se;

    FOREACH_ENTRY(se)
    {
        if (se->ops && se->ops->load_cleanup) {
            se->ops->load_cleanup(se->opaque);
        }
    }
}

static int loadvm_main_loop(QEMUFile *f, GError **errp)
{
    g_autoptr(GArray) loaded = g_array_new(false, false,
                                           sizeof(LoadStateEntry));

    for (;;) {
        int type = qemu_get_byte(f);
        int ret;

        ret = loadvm_file_error(f, errp, "a section type");
        if (ret) {
            return ret;
        }
        switch (type) {
        case QEMU_VM_SECTION_START:
        case QEMU_VM_SECTION_FULL:
            if (type == QEMU_VM_SECTION_FULL) {
                /* rel: fault injection: device state from here on */
                fault_inject_set_phase(FAULT_PHASE_DEVICE_STATE);
            }
            ret = loadvm_section_start_full(f, loaded, type, errp);
            break;
        case QEMU_VM_SECTION_PART:
        case QEMU_VM_SECTION_END:
            ret = loadvm_section_part_end(f, loaded, errp);
            break;
        case QEMU_VM_COMMAND:
            ret = loadvm_command(f, errp);
            break;
        case QEMU_VM_EOF:
            return 0;
        default:
            error_setg(errp, "Unknown savevm section type %d", type);
            return -EINVAL;
        }
        if (ret < 0) {
            return ret;
        }
    }
}

int qemu_loadvm_state(QEMUFile *f, GError **errp)
{
    uint32_t magic, version;
    int ret;

    global_state_reset_received();

    magic = qemu_get_be32(f);
    if (qemu_file_get_error(f) || magic != QEMU_VM_FILE_MAGIC) {
        error_setg(errp, "Not a migration stream");
        return -EINVAL;
    }
    version = qemu_get_be32(f);
    if (loadvm_file_error(f, errp, "the stream header")) {
        return -EINVAL;
    }
    if (version == QEMU_VM_FILE_VERSION_COMPAT) {
        error_setg(errp, "SaveVM v2 format is obsolete and don't work anymore");
        return -ENOTSUP;
    }
    if (version != QEMU_VM_FILE_VERSION) {
        error_setg(errp, "Unsupported migration stream version");
        return -ENOTSUP;
    }

    ret = loadvm_configuration(f, errp);
    if (ret < 0) {
        return ret;
    }
    ret = loadvm_setup(f, errp);
    if (ret == 0) {
        ret = loadvm_main_loop(f, errp);
    }
    loadvm_cleanup();
    if (ret == 0) {
        loadvm_skip_vmdesc(f);
    }
    fault_inject_set_phase(FAULT_PHASE_NONE); /* rel */
    return ret;
}
