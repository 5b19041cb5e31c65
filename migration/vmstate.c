/*
 * The vmstate engine: turns a device's VMStateDescription into stream
 * bytes (big-endian, in field order, then the needed subsections), loads
 * them back with version checks, and describes what it wrote as the
 * VMDESCRIPTION JSON that QEMU's analysis tools read.
 *
 * Wire layout of one description: each field present in the stream
 * version, element by element (arrays: array_len elements of size bytes,
 * structs: the nested description's fields); then for each subsection
 * whose needed() says so: u8 0x05, u8 name length, name, be32 version_id,
 * the subsection's own fields and subsections. There is no end marker:
 * the loader peeks for 0x05.
 */
#include "qemu/osdep.h"

#include "migration/vmstate-internal.h"

static const char *vmstate_type_name(VMStateFieldType type)
{
    switch (type) {
    case VMS_TYPE_BOOL:
        return "bool";
    case VMS_TYPE_INT8:
        return "int8";
    case VMS_TYPE_INT16:
        return "int16";
    case VMS_TYPE_INT32:
        return "int32";
    case VMS_TYPE_INT64:
        return "int64";
    case VMS_TYPE_UINT8:
        return "uint8";
    case VMS_TYPE_UINT16:
        return "uint16";
    case VMS_TYPE_UINT32:
        return "uint32";
    case VMS_TYPE_UINT64:
        return "uint64";
    case VMS_TYPE_BUFFER:
        return "buffer";
    case VMS_TYPE_STRUCT:
        return "struct";
    }
    return "unknown";
}

/* Bytes of one element on the wire for scalar types, 0 otherwise. */
static size_t vmstate_scalar_size(VMStateFieldType type)
{
    switch (type) {
    case VMS_TYPE_BOOL:
    case VMS_TYPE_INT8:
    case VMS_TYPE_UINT8:
        return 1;
    case VMS_TYPE_INT16:
    case VMS_TYPE_UINT16:
        return 2;
    case VMS_TYPE_INT32:
    case VMS_TYPE_UINT32:
        return 4;
    case VMS_TYPE_INT64:
    case VMS_TYPE_UINT64:
        return 8;
    default:
        return 0;
    }
}

static size_t vmstate_n_elems(const VMStateField *field)
{
    return field->array_len ? field->array_len : 1;
}

bool vmstate_check_description(const VMStateDescription *vmsd, GError **errp)
{
    if (!vmsd->name || !vmsd->name[0] || strlen(vmsd->name) > 255) {
        error_setg(errp, "vmstate description without a valid name");
        return false;
    }
    if (vmsd->minimum_version_id > vmsd->version_id) {
        error_setg(errp, "%s: minimum_version_id %d above version_id %d",
                   vmsd->name, vmsd->minimum_version_id, vmsd->version_id);
        return false;
    }
    for (const VMStateField *field = vmsd->fields; field && field->name;
         field++) {
        size_t scalar = vmstate_scalar_size(field->type);

        if (scalar && field->size != scalar) {
            error_setg(errp, "%s: field %s has size %zu, %s needs %zu",
                       vmsd->name, field->name, field->size,
                       vmstate_type_name(field->type), scalar);
            return false;
        }
        if (field->type == VMS_TYPE_STRUCT &&
            (!field->vmsd || !vmstate_check_description(field->vmsd, errp))) {
            if (!field->vmsd) {
                error_setg(errp, "%s: struct field %s has no description",
                           vmsd->name, field->name);
            }
            return false;
        }
    }
    for (const VMStateDescription *const *sub = vmsd->subsections;
         sub && *sub; sub++) {
        if (!vmstate_check_description(*sub, errp)) {
            return false;
        }
    }
    return true;
}

/* --- save --- */

static void vmstate_save_scalar(QEMUFile *f, const VMStateField *field,
                                const uint8_t *p)
{
    switch (vmstate_scalar_size(field->type)) {
    case 1:
        if (field->type == VMS_TYPE_BOOL) {
            qemu_put_byte(f, *(const bool *)p ? 1 : 0);
        } else {
            qemu_put_byte(f, *p);
        }
        break;
    case 2: {
        uint16_t v;

        memcpy(&v, p, sizeof(v));
        qemu_put_be16(f, v);
        break;
    }
    case 4: {
        uint32_t v;

        memcpy(&v, p, sizeof(v));
        qemu_put_be32(f, v);
        break;
    }
    case 8: {
        uint64_t v;

        memcpy(&v, p, sizeof(v));
        qemu_put_be64(f, v);
        break;
    }
    }
}

static int vmstate_subsections_save(QEMUFile *f,
                                    const VMStateDescription *vmsd,
                                    void *opaque, JsonBuilder *vmdesc,
                                    GError **errp)
{
    const VMStateDescription *const *sub;
    bool opened = false;

    for (sub = vmsd->subsections; sub && *sub; sub++) {
        const VMStateDescription *s = *sub;
        size_t len = strlen(s->name);
        int ret;

        if (s->needed && !s->needed(opaque)) {
            continue;
        }
        if (vmdesc && !opened) {
            json_builder_set_member_name(vmdesc, "subsections");
            json_builder_begin_array(vmdesc);
            opened = true;
        }
        qemu_put_byte(f, QEMU_VM_SUBSECTION);
        qemu_put_byte(f, len);
        qemu_put_buffer(f, (const uint8_t *)s->name, len);
        qemu_put_be32(f, s->version_id);
        if (vmdesc) {
            json_builder_begin_object(vmdesc);
        }
        ret = vmstate_save_state(f, s, opaque, vmdesc, errp);
        if (vmdesc) {
            json_builder_end_object(vmdesc);
        }
        if (ret < 0) {
            return ret;
        }
    }
    if (opened) {
        json_builder_end_array(vmdesc);
    }
    return 0;
}

int vmstate_save_state(QEMUFile *f, const VMStateDescription *vmsd,
                       void *opaque, JsonBuilder *vmdesc, GError **errp)
{
    int ret;

    if (vmsd->pre_save) {
        ret = vmsd->pre_save(opaque);
        if (ret < 0) {
            error_setg(errp, "%s: pre_save hook failed: %s", vmsd->name,
                       g_strerror(-ret));
            return ret;
        }
    }
    if (vmdesc) {
        json_builder_set_member_name(vmdesc, "vmsd_name");
        json_builder_add_string_value(vmdesc, vmsd->name);
        json_builder_set_member_name(vmdesc, "version");
        json_builder_add_int_value(vmdesc, vmsd->version_id);
        json_builder_set_member_name(vmdesc, "fields");
        json_builder_begin_array(vmdesc);
    }
    for (const VMStateField *field = vmsd->fields; field && field->name;
         field++) {
        uint8_t *base = (uint8_t *)opaque + field->offset;
        size_t n = vmstate_n_elems(field);

        if (field->version_id > vmsd->version_id) {
            continue;
        }
        if (vmdesc) {
            json_builder_begin_object(vmdesc);
            json_builder_set_member_name(vmdesc, "name");
            json_builder_add_string_value(vmdesc, field->name);
            if (field->array_len) {
                json_builder_set_member_name(vmdesc, "array_len");
                json_builder_add_int_value(vmdesc, field->array_len);
            }
            json_builder_set_member_name(vmdesc, "type");
            json_builder_add_string_value(vmdesc,
                                          vmstate_type_name(field->type));
        }
        for (size_t i = 0; i < n; i++) {
            uint8_t *p = base + i * field->size;

            if (field->type == VMS_TYPE_BUFFER) {
                qemu_put_buffer(f, p, field->size);
            } else if (field->type == VMS_TYPE_STRUCT) {
                /* The nested description is listed once, for element 0. */
                JsonBuilder *sub_desc = (vmdesc && i == 0) ? vmdesc : NULL;

                if (sub_desc) {
                    json_builder_set_member_name(vmdesc, "struct");
                    json_builder_begin_object(vmdesc);
                }
                ret = vmstate_save_state(f, field->vmsd, p, sub_desc, errp);
                if (sub_desc) {
                    json_builder_end_object(vmdesc);
                }
                if (ret < 0) {
                    return ret;
                }
            } else {
                vmstate_save_scalar(f, field, p);
            }
        }
        if (vmdesc) {
            json_builder_set_member_name(vmdesc, "size");
            json_builder_add_int_value(vmdesc, field->size);
            json_builder_end_object(vmdesc);
        }
    }
    if (vmdesc) {
        json_builder_end_array(vmdesc);
    }
    ret = vmstate_subsections_save(f, vmsd, opaque, vmdesc, errp);
    if (ret < 0) {
        return ret;
    }
    ret = qemu_file_get_error_obj(f, errp);
    return ret;
}

/* --- load --- */

/* Sets errp from the file's latched error, naming what was being read. */
static int vmstate_file_error(QEMUFile *f, const VMStateDescription *vmsd,
                              const char *what, GError **errp)
{
    g_autoptr(GError) err = NULL;
    int ret = qemu_file_get_error_obj(f, &err);

    if (ret) {
        error_setg(errp, "%s: reading %s: %s", vmsd->name, what,
                   err->message);
    }
    return ret;
}

static void vmstate_load_scalar(QEMUFile *f, const VMStateField *field,
                                uint8_t *p)
{
    switch (vmstate_scalar_size(field->type)) {
    case 1:
        if (field->type == VMS_TYPE_BOOL) {
            *(bool *)p = qemu_get_byte(f) != 0;
        } else {
            *p = qemu_get_byte(f);
        }
        break;
    case 2: {
        uint16_t v = qemu_get_be16(f);

        memcpy(p, &v, sizeof(v));
        break;
    }
    case 4: {
        uint32_t v = qemu_get_be32(f);

        memcpy(p, &v, sizeof(v));
        break;
    }
    case 8: {
        uint64_t v = qemu_get_be64(f);

        memcpy(p, &v, sizeof(v));
        break;
    }
    }
}

static int vmstate_subsections_load(QEMUFile *f,
                                    const VMStateDescription *vmsd,
                                    void *opaque, GError **errp)
{
    size_t prefix_len = strlen(vmsd->name);

    for (;;) {
        const VMStateDescription *const *sub;
        char name[256];
        int len, version_id, ret;

        if (qemu_peek_byte(f, 0) != QEMU_VM_SUBSECTION) {
            /* Not a subsection, or the end of the stream (seen later). */
            return 0;
        }
        len = qemu_peek_byte(f, 1);
        for (int i = 0; len >= 0 && i < len; i++) {
            int c = qemu_peek_byte(f, 2 + i);

            if (c < 0) {
                len = -1;
                break;
            }
            name[i] = c;
        }
        if (len < 0) {
            /* Cut short inside a subsection header: latch the error. */
            qemu_get_buffer(f, (uint8_t *)name, sizeof(name));
            return vmstate_file_error(f, vmsd, "a subsection header", errp);
        }
        name[len] = '\0';
        /*
         * A subsection of an enclosing description (we may be a nested
         * struct): leave it to the caller that owns it.
         */
        if (strncmp(vmsd->name, name, prefix_len) != 0) {
            return 0;
        }
        for (sub = vmsd->subsections; sub && *sub; sub++) {
            if (strcmp((*sub)->name, name) == 0) {
                break;
            }
        }
        if (!sub || !*sub) {
            error_setg(errp, "VM subsection '%s' in '%s' does not exist", name,
                       vmsd->name);
            return -ENOENT;
        }
        qemu_get_byte(f);
        qemu_get_byte(f);
        qemu_get_buffer(f, (uint8_t *)name, len);
        version_id = qemu_get_be32(f);
        ret = vmstate_file_error(f, vmsd, "a subsection header", errp);
        if (ret) {
            return ret;
        }
        ret = vmstate_load_state(f, *sub, opaque, version_id, errp);
        if (ret < 0) {
            return ret;
        }
    }
}

int vmstate_load_state(QEMUFile *f, const VMStateDescription *vmsd,
                       void *opaque, int version_id, GError **errp)
{
    int ret;

    if (version_id > vmsd->version_id) {
        error_setg(errp,
                   "%s: incoming version_id %d is too new for local "
                   "version_id %d",
                   vmsd->name, version_id, vmsd->version_id);
        return -EINVAL;
    }
    if (version_id < vmsd->minimum_version_id) {
        error_setg(errp,
                   "%s: incoming version_id %d is too old for local "
                   "minimum version_id %d",
                   vmsd->name, version_id, vmsd->minimum_version_id);
        return -EINVAL;
    }
    for (const VMStateField *field = vmsd->fields; field && field->name;
         field++) {
        uint8_t *base = (uint8_t *)opaque + field->offset;
        size_t n = vmstate_n_elems(field);

        if (field->version_id > version_id) {
            continue; /* added after the version that wrote the stream */
        }
        for (size_t i = 0; i < n; i++) {
            uint8_t *p = base + i * field->size;

            if (field->type == VMS_TYPE_BUFFER) {
                qemu_get_buffer(f, p, field->size);
            } else if (field->type == VMS_TYPE_STRUCT) {
                ret = vmstate_load_state(f, field->vmsd, p,
                                         field->vmsd->version_id, errp);
                if (ret < 0) {
                    return ret;
                }
            } else {
                vmstate_load_scalar(f, field, p);
            }
        }
        if (qemu_file_get_error(f)) {
            g_autofree char *what = g_strdup_printf("field %s", field->name);

            return vmstate_file_error(f, vmsd, what, errp);
        }
    }
    ret = vmstate_subsections_load(f, vmsd, opaque, errp);
    if (ret < 0) {
        return ret;
    }
    if (vmsd->post_load) {
        ret = vmsd->post_load(opaque, version_id);
        if (ret < 0) {
            error_setg(errp, "%s: post_load hook failed: %s", vmsd->name,
                       g_strerror(-ret));
            return ret;
        }
    }
    return 0;
}

/* --- registration --- */

int vmstate_register(const char *idstr, int instance_id,
                     const VMStateDescription *vmsd, void *opaque)
{
    g_autoptr(GError) err = NULL;

    if (!vmstate_check_description(vmsd, &err) ||
        !savevm_entry_add(idstr, instance_id, vmsd->version_id, NULL, vmsd,
                          opaque, &err)) {
        g_printerr("vmstate_register %s: %s\n", idstr, err->message);
        return -EINVAL;
    }
    return 0;
}

void vmstate_unregister(const VMStateDescription *vmsd, void *opaque)
{
    savevm_entry_remove_vmsd(vmsd, opaque);
}

/* --- JSON text --- */

static void json_append_string(GString *out, const char *s)
{
    g_string_append_c(out, '"');
    for (; *s; s++) {
        unsigned char c = *s;

        switch (c) {
        case '"':
            g_string_append(out, "\\\"");
            break;
        case '\\':
            g_string_append(out, "\\\\");
            break;
        case '\b':
            g_string_append(out, "\\b");
            break;
        case '\f':
            g_string_append(out, "\\f");
            break;
        case '\n':
            g_string_append(out, "\\n");
            break;
        case '\r':
            g_string_append(out, "\\r");
            break;
        case '\t':
            g_string_append(out, "\\t");
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                g_string_append_printf(out, "\\u%04X", c);
            } else {
                g_string_append_c(out, c);
            }
        }
    }
    g_string_append_c(out, '"');
}

static void json_append_node(GString *out, JsonNode *node)
{
    switch (json_node_get_node_type(node)) {
    case JSON_NODE_OBJECT: {
        JsonObjectIter iter;
        const char *name;
        JsonNode *member;
        bool first = true;

        g_string_append_c(out, '{');
        json_object_iter_init_ordered(&iter, json_node_get_object(node));
        while (json_object_iter_next_ordered(&iter, &name, &member)) {
            if (!first) {
                g_string_append(out, ", ");
            }
            first = false;
            json_append_string(out, name);
            g_string_append(out, ": ");
            json_append_node(out, member);
        }
        g_string_append_c(out, '}');
        break;
    }
    case JSON_NODE_ARRAY: {
        JsonArray *array = json_node_get_array(node);
        guint n = json_array_get_length(array);

        g_string_append_c(out, '[');
        for (guint i = 0; i < n; i++) {
            if (i) {
                g_string_append(out, ", ");
            }
            json_append_node(out, json_array_get_element(array, i));
        }
        g_string_append_c(out, ']');
        break;
    }
    case JSON_NODE_VALUE:
        switch (json_node_get_value_type(node)) {
        case G_TYPE_INT64:
            g_string_append_printf(out, "%" PRId64, json_node_get_int(node));
            break;
        case G_TYPE_BOOLEAN:
            g_string_append(out,
                            json_node_get_boolean(node) ? "true" : "false");
            break;
        case G_TYPE_DOUBLE: {
            char buf[G_ASCII_DTOSTR_BUF_SIZE];

            g_string_append(out, g_ascii_dtostr(buf, sizeof(buf),
                                                json_node_get_double(node)));
            break;
        }
        default:
            json_append_string(out, json_node_get_string(node));
            break;
        }
        break;
    case JSON_NODE_NULL:
        g_string_append(out, "null");
        break;
    }
}

GString *vmstate_json_to_string(JsonNode *node)
{
    GString *out = g_string_new(NULL);

    json_append_node(out, node);
    return out;
}
