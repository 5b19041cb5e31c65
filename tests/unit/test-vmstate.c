/*
 * The vmstate engine: exact bytes of every field type, round trips,
 * version rules, subsections (needed or not, unknown, nested), and the
 * VMDESCRIPTION JSON it produces, byte for byte as QEMU's tools read it.
 */
#include "qemu/osdep.h"

#include "io/channel-buffer.h"
#include "migration/vmstate-internal.h"

typedef struct Inner {
    uint32_t a;
    uint16_t b;
} Inner;

typedef struct Every {
    bool flag;
    int8_t s8;
    int16_t s16;
    int32_t s32;
    int64_t s64;
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    uint8_t buf[5];
    uint64_t arr[3];
    Inner inner;
    Inner inners[2];
    uint32_t v2_only; /* added in version 2 */
    /* subsection state */
    bool extra_needed;
    uint32_t extra;
    uint8_t inner_extra;
} Every;

static const VMStateDescription vmstate_inner = {
    .name = "inner",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields =
        (const VMStateField[]){
            VMSTATE_UINT32(a, Inner),
            VMSTATE_UINT16(b, Inner),
            VMSTATE_END_OF_LIST(),
        },
};

static bool extra_needed(void *opaque)
{
    return ((Every *)opaque)->extra_needed;
}

static const VMStateDescription vmstate_every_extra = {
    .name = "every/extra",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = extra_needed,
    .fields =
        (const VMStateField[]){
            VMSTATE_UINT32(extra, Every),
            VMSTATE_END_OF_LIST(),
        },
};

static int post_load_calls;

static int every_post_load(void *opaque, int version_id)
{
    post_load_calls++;
    return ((Every *)opaque)->u8 == 0xee ? -EINVAL : 0;
}

static const VMStateDescription vmstate_every = {
    .name = "every",
    .version_id = 2,
    .minimum_version_id = 1,
    .post_load = every_post_load,
    .fields =
        (const VMStateField[]){
            VMSTATE_BOOL(flag, Every),
            {.name = "s8",
             .type = VMS_TYPE_INT8,
             .offset = offsetof(Every, s8),
             .size = 1},
            {.name = "s16",
             .type = VMS_TYPE_INT16,
             .offset = offsetof(Every, s16),
             .size = 2},
            VMSTATE_INT32(s32, Every),
            VMSTATE_INT64(s64, Every),
            VMSTATE_UINT8(u8, Every),
            VMSTATE_UINT16(u16, Every),
            VMSTATE_UINT32(u32, Every),
            VMSTATE_UINT64(u64, Every),
            VMSTATE_BUFFER(buf, Every),
            VMSTATE_UINT64_ARRAY(arr, Every, 3),
            VMSTATE_STRUCT(inner, Every, vmstate_inner, Inner),
            {.name = "inners",
             .type = VMS_TYPE_STRUCT,
             .offset = offsetof(Every, inners),
             .size = sizeof(Inner),
             .array_len = 2,
             .vmsd = &vmstate_inner},
            {.name = "v2_only",
             .type = VMS_TYPE_UINT32,
             .offset = offsetof(Every, v2_only),
             .size = 4,
             .version_id = 2},
            VMSTATE_END_OF_LIST(),
        },
    .subsections =
        (const VMStateDescription *const[]){
            &vmstate_every_extra,
            NULL,
        },
};

static void every_fill(Every *e)
{
    memset(e, 0, sizeof(*e));
    e->flag = true;
    e->s8 = -2;
    e->s16 = -3;
    e->s32 = -4;
    e->s64 = -5;
    e->u8 = 0x11;
    e->u16 = 0x2233;
    e->u32 = 0x44556677;
    e->u64 = 0x8899aabbccddeeffULL;
    memcpy(e->buf, "hello", 5);
    e->arr[0] = 1;
    e->arr[1] = 2;
    e->arr[2] = 3;
    e->inner.a = 0x01020304;
    e->inner.b = 0x0506;
    e->inners[0].a = 7;
    e->inners[0].b = 8;
    e->inners[1].a = 9;
    e->inners[1].b = 10;
    e->v2_only = 0xabcdef01;
    e->extra = 0x12345678;
}

/* Wire bytes of every_fill() at version 2 without subsections. */
static const uint8_t every_bytes[] = {
    0x01,                                           /* flag */
    0xfe,                                           /* s8 */
    0xff, 0xfd,                                     /* s16 */
    0xff, 0xff, 0xff, 0xfc,                         /* s32 */
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfb, /* s64 */
    0x11,                                           /* u8 */
    0x22, 0x33,                                     /* u16 */
    0x44, 0x55, 0x66, 0x77,                         /* u32 */
    0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, /* u64 */
    'h',  'e',  'l',  'l',  'o',                    /* buf */
    0,    0,    0,    0,    0,    0,    0,    1,    /* arr */
    0,    0,    0,    0,    0,    0,    0,    2,    0,    0,    0, 0,
    0,    0,    0,    3,    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, /* inner */
    0,    0,    0,    7,    0,    8,                            /* inners[0] */
    0,    0,    0,    9,    0,    10,                           /* inners[1] */
    0xab, 0xcd, 0xef, 0x01,                                     /* v2_only */
};

static const uint8_t extra_subsection_bytes[] = {
    0x05, 11,  'e', 'v', 'e', 'r', 'y',  '/',  'e',  'x',  't',
    'r',  'a', 0,   0,   0,   1,   0x12, 0x34, 0x56, 0x78,
};

/* Saves e into a fresh buffer; returns the channel (caller unrefs). */
static QIOChannelBuffer *save_every(Every *e, char **json)
{
    QIOChannelBuffer *bioc = qio_channel_buffer_new(0);
    QEMUFile *f = qemu_file_new_output(&bioc->parent);
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(GError) err = NULL;

    json_builder_begin_object(b);
    g_assert_cmpint(vmstate_save_state(f, &vmstate_every, e, b, &err), ==, 0);
    g_assert_no_error(err);
    json_builder_end_object(b);
    g_assert_cmpint(qemu_fclose(f), ==, 0);
    if (json) {
        g_autoptr(JsonNode) root = json_builder_get_root(b);
        GString *s = vmstate_json_to_string(root);

        *json = g_string_free(s, false);
    }
    return bioc;
}

static QEMUFile *input_of(const uint8_t *data, size_t len,
                          QIOChannelBuffer **bioc)
{
    *bioc = qio_channel_buffer_new_static(data, len);
    return qemu_file_new_input(&(*bioc)->parent);
}

/*
 * Loads len bytes of data as vmstate_every (version_id) into dst: what
 * vmstate_load_state() returned. *next (when next is not NULL) gets the
 * byte the load left unread, -1 at the end.
 */
static int load_every(const uint8_t *data, size_t len, int version_id,
                      Every *dst, int *next, GError **errp)
{
    QIOChannelBuffer *in;
    QEMUFile *f = input_of(data, len, &in);
    int ret = vmstate_load_state(f, &vmstate_every, dst, version_id, errp);

    if (next) {
        *next = qemu_peek_byte(f, 0);
    }
    qemu_fclose(f);
    qio_channel_unref(&in->parent);
    return ret;
}

static void test_every_type_bytes(void)
{
    Every e;
    QIOChannelBuffer *bioc;

    every_fill(&e);
    bioc = save_every(&e, NULL);
    g_assert_cmpmem(bioc->data, bioc->usage, every_bytes, sizeof(every_bytes));
    qio_channel_unref(&bioc->parent);
}

static void test_round_trip(void)
{
    Every src, dst;
    QIOChannelBuffer *bioc;
    g_autoptr(GError) err = NULL;
    int next;

    every_fill(&src);
    src.extra_needed = true;
    bioc = save_every(&src, NULL);
    g_assert_cmpuint(bioc->usage, ==,
                     sizeof(every_bytes) + sizeof(extra_subsection_bytes));
    g_assert_cmpmem(bioc->data + sizeof(every_bytes),
                    sizeof(extra_subsection_bytes), extra_subsection_bytes,
                    sizeof(extra_subsection_bytes));

    memset(&dst, 0, sizeof(dst));
    post_load_calls = 0;
    g_assert_cmpint(load_every(bioc->data, bioc->usage, 2, &dst, &next, &err),
                    ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(post_load_calls, ==, 1);
    /* extra_needed is not migrated: compare it separately. */
    g_assert_false(dst.extra_needed);
    dst.extra_needed = true;
    g_assert_cmpmem(&dst, sizeof(dst), &src, sizeof(src));
    g_assert_cmpint(next, ==, -1);
    qio_channel_unref(&bioc->parent);
}

static void test_old_version_skips_new_fields(void)
{
    Every dst;
    g_autoptr(GError) err = NULL;
    int next;

    /* Version 1 did not have v2_only: the stream stops before it. */
    memset(&dst, 0, sizeof(dst));
    dst.v2_only = 42;
    g_assert_cmpint(
        load_every(every_bytes, sizeof(every_bytes) - 4, 1, &dst, &next, &err),
        ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(next, ==, -1);
    g_assert_cmpuint(dst.v2_only, ==, 42);
    g_assert_cmpuint(dst.inners[1].b, ==, 10);
}

static void test_version_errors(void)
{
    Every dst;
    QIOChannelBuffer *in;
    QEMUFile *f;
    g_autoptr(GError) err = NULL;

    f = input_of(every_bytes, sizeof(every_bytes), &in);
    g_assert_cmpint(vmstate_load_state(f, &vmstate_every, &dst, 3, &err), <, 0);
    g_assert_cmpstr(err->message, ==,
                    "every: incoming version_id 3 is too new for local "
                    "version_id 2");
    g_clear_error(&err);
    g_assert_cmpint(vmstate_load_state(f, &vmstate_every, &dst, 0, &err), <, 0);
    g_assert_cmpstr(err->message, ==,
                    "every: incoming version_id 0 is too old for local "
                    "minimum version_id 1");
    qemu_fclose(f);
    qio_channel_unref(&in->parent);
}

static void test_truncated(void)
{
    Every dst;

    /* Every cut point fails with the end-of-stream error, never crashes. */
    for (size_t len = 0; len < sizeof(every_bytes); len++) {
        g_autoptr(GError) err = NULL;

        g_assert_cmpint(load_every(every_bytes, len, 2, &dst, NULL, &err), <,
                        0);
        g_assert_nonnull(err);
        g_assert_nonnull(strstr(err->message, "Unexpected end of migration "
                                              "stream"));
        g_assert_true(g_str_has_prefix(err->message, "every: reading field ") ||
                      g_str_has_prefix(err->message, "inner: reading field "));
    }
}

static void test_post_load_failure(void)
{
    uint8_t bad[sizeof(every_bytes)];
    Every dst;
    g_autoptr(GError) err = NULL;

    memcpy(bad, every_bytes, sizeof(bad));
    bad[16] = 0xee; /* u8 */
    g_assert_cmpint(load_every(bad, sizeof(bad), 2, &dst, NULL, &err), <, 0);
    g_assert_cmpstr(err->message, ==,
                    "every: post_load hook failed: Invalid argument");
}

static void test_unknown_subsection(void)
{
    uint8_t data[sizeof(every_bytes) + 21];
    Every dst;
    g_autoptr(GError) err = NULL;

    memcpy(data, every_bytes, sizeof(every_bytes));
    memcpy(data + sizeof(every_bytes), extra_subsection_bytes, 21);
    memcpy(data + sizeof(every_bytes) + 9, "xtrb", 4); /* every/extrb */
    g_assert_cmpint(load_every(data, sizeof(data), 2, &dst, NULL, &err), <, 0);
    g_assert_cmpstr(err->message, ==,
                    "VM subsection 'every/extrb' in 'every' does not exist");
}

static void test_foreign_subsection_left_alone(void)
{
    uint8_t data[sizeof(every_bytes) + 21];
    Every dst;
    g_autoptr(GError) err = NULL;
    int next;

    /* A subsection that is not ours (no "every" prefix) is not consumed. */
    memcpy(data, every_bytes, sizeof(every_bytes));
    memcpy(data + sizeof(every_bytes), extra_subsection_bytes, 21);
    memcpy(data + sizeof(every_bytes) + 2, "other", 5);
    g_assert_cmpint(load_every(data, sizeof(data), 2, &dst, &next, &err), ==,
                    0);
    g_assert_no_error(err);
    g_assert_cmpint(next, ==, 0x05);
}

/* A nested struct's subsection, and its parent's after it. */
typedef struct Outer {
    Inner in;
    uint8_t in_extra;
    uint8_t out_extra;
} Outer;

static const VMStateDescription vmstate_nested_sub = {
    .name = "nested/sub",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields =
        (const VMStateField[]){
            {.name = "x",
             .type = VMS_TYPE_UINT8,
             .offset = offsetof(Outer, in_extra) - offsetof(Outer, in),
             .size = 1},
            VMSTATE_END_OF_LIST(),
        },
};

static const VMStateDescription vmstate_nested = {
    .name = "nested",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields =
        (const VMStateField[]){
            VMSTATE_UINT32(a, Inner),
            VMSTATE_END_OF_LIST(),
        },
    .subsections =
        (const VMStateDescription *const[]){
            &vmstate_nested_sub,
            NULL,
        },
};

static const VMStateDescription vmstate_outer_sub = {
    .name = "outer/sub",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields =
        (const VMStateField[]){
            VMSTATE_UINT8(out_extra, Outer),
            VMSTATE_END_OF_LIST(),
        },
};

static const VMStateDescription vmstate_outer = {
    .name = "outer",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields =
        (const VMStateField[]){
            VMSTATE_STRUCT(in, Outer, vmstate_nested, Inner),
            VMSTATE_END_OF_LIST(),
        },
    .subsections =
        (const VMStateDescription *const[]){
            &vmstate_outer_sub,
            NULL,
        },
};

static void test_nested_subsections(void)
{
    Outer src = {.in = {.a = 5}, .in_extra = 6, .out_extra = 7};
    Outer dst = {0};
    QIOChannelBuffer *bioc = qio_channel_buffer_new(0), *in;
    QEMUFile *f = qemu_file_new_output(&bioc->parent);
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonNode) root = NULL;
    g_autoptr(GString) json = NULL;
    g_autoptr(GError) err = NULL;
    static const uint8_t expected[] = {
        0,   0,   0,   5,   0x05, 10,  'n', 'e', 's',  't', 'e', 'd', '/',
        's', 'u', 'b', 0,   0,    0,   1,   6,   0x05, 9,   'o', 'u', 't',
        'e', 'r', '/', 's', 'u',  'b', 0,   0,   0,    1,   7,
    };

    json_builder_begin_object(b);
    g_assert_cmpint(vmstate_save_state(f, &vmstate_outer, &src, b, &err), ==,
                    0);
    json_builder_end_object(b);
    g_assert_cmpint(qemu_fclose(f), ==, 0);
    g_assert_cmpmem(bioc->data, bioc->usage, expected, sizeof(expected));
    root = json_builder_get_root(b);
    json = vmstate_json_to_string(root);
    g_assert_cmpstr(
        json->str, ==,
        "{\"vmsd_name\": \"outer\", \"version\": 1, \"fields\": [{\"name\": "
        "\"in\", \"type\": \"struct\", \"struct\": {\"vmsd_name\": "
        "\"nested\", \"version\": 1, \"fields\": [{\"name\": \"a\", "
        "\"type\": \"uint32\", \"size\": 4}], \"subsections\": "
        "[{\"vmsd_name\": \"nested/sub\", \"version\": 1, \"fields\": "
        "[{\"name\": \"x\", \"type\": \"uint8\", \"size\": 1}]}]}, "
        "\"size\": 8}], \"subsections\": [{\"vmsd_name\": \"outer/sub\", "
        "\"version\": 1, \"fields\": [{\"name\": \"out_extra\", \"type\": "
        "\"uint8\", \"size\": 1}]}]}");

    f = input_of(bioc->data, bioc->usage, &in);
    g_assert_cmpint(vmstate_load_state(f, &vmstate_outer, &dst, 1, &err), ==,
                    0);
    g_assert_no_error(err);
    g_assert_cmpmem(&dst, sizeof(dst), &src, sizeof(src));
    qemu_fclose(f);
    qio_channel_unref(&in->parent);
    qio_channel_unref(&bioc->parent);
}

static void test_json_description(void)
{
    Every e;
    QIOChannelBuffer *bioc;
    g_autofree char *json = NULL;
    g_autofree char *json_sub = NULL;
    const char *fields =
        "{\"vmsd_name\": \"every\", \"version\": 2, \"fields\": ["
        "{\"name\": \"flag\", \"type\": \"bool\", \"size\": 1}, "
        "{\"name\": \"s8\", \"type\": \"int8\", \"size\": 1}, "
        "{\"name\": \"s16\", \"type\": \"int16\", \"size\": 2}, "
        "{\"name\": \"s32\", \"type\": \"int32\", \"size\": 4}, "
        "{\"name\": \"s64\", \"type\": \"int64\", \"size\": 8}, "
        "{\"name\": \"u8\", \"type\": \"uint8\", \"size\": 1}, "
        "{\"name\": \"u16\", \"type\": \"uint16\", \"size\": 2}, "
        "{\"name\": \"u32\", \"type\": \"uint32\", \"size\": 4}, "
        "{\"name\": \"u64\", \"type\": \"uint64\", \"size\": 8}, "
        "{\"name\": \"buf\", \"type\": \"buffer\", \"size\": 5}, "
        "{\"name\": \"arr\", \"array_len\": 3, \"type\": \"uint64\", "
        "\"size\": 8}, "
        "{\"name\": \"inner\", \"type\": \"struct\", \"struct\": "
        "{\"vmsd_name\": \"inner\", \"version\": 1, \"fields\": ["
        "{\"name\": \"a\", \"type\": \"uint32\", \"size\": 4}, "
        "{\"name\": \"b\", \"type\": \"uint16\", \"size\": 2}]}, "
        "\"size\": 8}, "
        "{\"name\": \"inners\", \"array_len\": 2, \"type\": \"struct\", "
        "\"struct\": {\"vmsd_name\": \"inner\", \"version\": 1, \"fields\": ["
        "{\"name\": \"a\", \"type\": \"uint32\", \"size\": 4}, "
        "{\"name\": \"b\", \"type\": \"uint16\", \"size\": 2}]}, "
        "\"size\": 8}, "
        "{\"name\": \"v2_only\", \"type\": \"uint32\", \"size\": 4}]";
    g_autofree char *without = g_strdup_printf("%s}", fields);
    g_autofree char *with = g_strdup_printf(
        "%s, \"subsections\": [{\"vmsd_name\": \"every/extra\", "
        "\"version\": 1, \"fields\": [{\"name\": \"extra\", \"type\": "
        "\"uint32\", \"size\": 4}]}]}",
        fields);

    every_fill(&e);
    bioc = save_every(&e, &json);
    qio_channel_unref(&bioc->parent);
    g_assert_cmpstr(json, ==, without);

    e.extra_needed = true;
    bioc = save_every(&e, &json_sub);
    qio_channel_unref(&bioc->parent);
    g_assert_cmpstr(json_sub, ==, with);
}

static void test_json_escaping(void)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonNode) root = NULL;
    g_autoptr(GString) s = NULL;

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "k\"\\");
    json_builder_add_string_value(b, "a\nb\x01");
    json_builder_set_member_name(b, "n");
    json_builder_add_int_value(b, -7);
    json_builder_set_member_name(b, "l");
    json_builder_begin_array(b);
    json_builder_add_boolean_value(b, true);
    json_builder_add_null_value(b);
    json_builder_end_array(b);
    json_builder_end_object(b);
    root = json_builder_get_root(b);
    s = vmstate_json_to_string(root);
    g_assert_cmpstr(s->str, ==,
                    "{\"k\\\"\\\\\": \"a\\nb\\u0001\", \"n\": -7, "
                    "\"l\": [true, null]}");
}

static const VMStateDescription bad = {
    .name = "bad",
    .version_id = 1,
    .fields =
        (const VMStateField[]){
            {.name = "x", .type = VMS_TYPE_UINT32, .size = 8},
            VMSTATE_END_OF_LIST(),
        },
};

static void test_bad_description(void)
{
    g_autoptr(GError) err = NULL;

    g_assert_false(vmstate_check_description(&bad, &err));
    g_assert_cmpstr(err->message, ==,
                    "bad: field x has size 8, uint32 needs 4");
    g_assert_true(vmstate_check_description(&vmstate_every, NULL));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/vmstate/every-type-bytes", test_every_type_bytes);
    g_test_add_func("/vmstate/round-trip", test_round_trip);
    g_test_add_func("/vmstate/old-version", test_old_version_skips_new_fields);
    g_test_add_func("/vmstate/version-errors", test_version_errors);
    g_test_add_func("/vmstate/truncated", test_truncated);
    g_test_add_func("/vmstate/post-load-failure", test_post_load_failure);
    g_test_add_func("/vmstate/unknown-subsection", test_unknown_subsection);
    g_test_add_func("/vmstate/foreign-subsection",
                    test_foreign_subsection_left_alone);
    g_test_add_func("/vmstate/nested-subsections", test_nested_subsections);
    g_test_add_func("/vmstate/json", test_json_description);
    g_test_add_func("/vmstate/json-escaping", test_json_escaping);
    g_test_add_func("/vmstate/bad-description", test_bad_description);
    return g_test_run();
}
