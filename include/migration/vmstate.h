/*
 * Device state descriptions. A device declares its migratable state as a
 * VMStateDescription: a name, a version, typed fields at offsets of its
 * struct, and optional subsections. migration/vmstate.c turns a
 * description into stream bytes (big-endian) and into the VMDESCRIPTION
 * JSON, and loads it back with checks. See stream-format.md section 1.
 */
#ifndef MIGRATION_VMSTATE_H
#define MIGRATION_VMSTATE_H

#include "qemu/osdep.h"

typedef struct QEMUFile QEMUFile;
typedef struct VMStateDescription VMStateDescription;

typedef enum {
    VMS_TYPE_BOOL,
    VMS_TYPE_INT8,
    VMS_TYPE_INT16,
    VMS_TYPE_INT32,
    VMS_TYPE_INT64,
    VMS_TYPE_UINT8,
    VMS_TYPE_UINT16,
    VMS_TYPE_UINT32,
    VMS_TYPE_UINT64,
    VMS_TYPE_BUFFER,      /* size bytes copied as they are */
    VMS_TYPE_STRUCT,      /* a nested description (vmsd) at offset */
} VMStateFieldType;

typedef struct VMStateField {
    const char *name;
    VMStateFieldType type;
    size_t offset;
    size_t size;        /* bytes of one element */
    size_t array_len;   /* 0 for a scalar, else number of elements */
    int version_id;     /* first version that has the field */
    const VMStateDescription *vmsd; /* VMS_TYPE_STRUCT */
} VMStateField;

struct VMStateDescription {
    const char *name;
    int version_id;
    int minimum_version_id;
    /* Optional hooks; negative return fails the save/load. */
    int (*pre_save)(void *opaque);
    int (*post_load)(void *opaque, int version_id);
    /* Subsections only: sent when needed() says so (NULL = always). */
    bool (*needed)(void *opaque);
    const VMStateField *fields;                  /* ends with END_OF_LIST */
    const VMStateDescription *const *subsections; /* NULL-terminated */
};

#define VMSTATE_SCALAR_(_f, _s, _t, _type)                                     \
    {                                                                          \
        .name = (#_f), .type = (_t), .offset = offsetof(_s, _f),               \
        .size = sizeof(_type) + 0 * sizeof(((_s *)0)->_f)                      \
    }
#define VMSTATE_BOOL(_f, _s) VMSTATE_SCALAR_(_f, _s, VMS_TYPE_BOOL, bool)
#define VMSTATE_INT32(_f, _s) VMSTATE_SCALAR_(_f, _s, VMS_TYPE_INT32, int32_t)
#define VMSTATE_INT64(_f, _s) VMSTATE_SCALAR_(_f, _s, VMS_TYPE_INT64, int64_t)
#define VMSTATE_UINT8(_f, _s) VMSTATE_SCALAR_(_f, _s, VMS_TYPE_UINT8, uint8_t)
#define VMSTATE_UINT16(_f, _s)                                                 \
    VMSTATE_SCALAR_(_f, _s, VMS_TYPE_UINT16, uint16_t)
#define VMSTATE_UINT32(_f, _s)                                                 \
    VMSTATE_SCALAR_(_f, _s, VMS_TYPE_UINT32, uint32_t)
#define VMSTATE_UINT64(_f, _s)                                                 \
    VMSTATE_SCALAR_(_f, _s, VMS_TYPE_UINT64, uint64_t)
/* A fixed-size byte array member (uint8_t f[N]). */
#define VMSTATE_BUFFER(_f, _s)                                                 \
    {                                                                          \
        .name = (#_f), .type = VMS_TYPE_BUFFER, .offset = offsetof(_s, _f),    \
        .size = sizeof(((_s *)0)->_f)                                          \
    }
/* A fixed-length array of uint64_t (uint64_t f[N]). */
#define VMSTATE_UINT64_ARRAY(_f, _s, _n)                                       \
    {                                                                          \
        .name = (#_f), .type = VMS_TYPE_UINT64, .offset = offsetof(_s, _f),    \
        .size = sizeof(uint64_t), .array_len = (_n)                            \
    }
#define VMSTATE_STRUCT(_f, _s, _vmsd, _type)                                   \
    {                                                                          \
        .name = (#_f), .type = VMS_TYPE_STRUCT, .offset = offsetof(_s, _f),    \
        .size = sizeof(_type), .vmsd = &(_vmsd)                                \
    }
#define VMSTATE_END_OF_LIST()                                                  \
    {                                                                          \
        .name = NULL                                                           \
    }

/*
 * Registers a device section (a FULL section at completion). idstr and
 * instance_id identify it in the stream; opaque is the struct the field
 * offsets refer to. Registration order is stream order.
 */
int vmstate_register(const char *idstr, int instance_id,
                     const VMStateDescription *vmsd, void *opaque);
void vmstate_unregister(const VMStateDescription *vmsd, void *opaque);

#endif
