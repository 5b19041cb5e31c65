/*
 * Hostile migration files (issue 8, point 4), in process and fast: a small
 * VM (tests/fuzz/stream-vm.c) saves valid streams in five shapes -- plain
 * in memory, plain in a file at offset=4096, mapped-ram in a file, at an
 * odd offset, and read by multifd channels -- and a generator damages them
 * one field at a time: the header, the configuration and its capability
 * list, every section's header, footer and framing, the ram block list,
 * legacy page records, every MappedRamHeader field of every block, bitmap
 * bits past a block's end, offsets before the header, inside the stream
 * and past the end of the file, huge lengths, commands, missing and
 * duplicated sections, the VMDESCRIPTION, and truncation at many points.
 *
 * Each variant is loaded as the incoming side loads (qemu_loadvm_state,
 * through the file: transport for files) under a watchdog, and has one
 * expected outcome:
 *   FAIL    the load fails with a non-empty message (and the expected
 *           text where the generator knows it);
 *   LOAD    the damage is in bytes the loader rightly ignores (the
 *           VMDESCRIPTION, a hole's slot, a redundant section): it loads
 *           and the guest equals the source;
 *   ALTERED the damage is in data no format check can see (page bytes, a
 *           counter, a cleared bitmap bit): it loads and the guest differs.
 * In every case the run state is left alone (the guest is never resumed by
 * the loader) and nothing may crash, hang or allocate more than the
 * allocator cap below (run it under ASan+UBSan: the sanitizer build does).
 *
 * HOSTILE_VERBOSE=1 lists every variant with its outcome and message.
 */
#include "qemu/osdep.h"

#include <signal.h>

#include "migration/ram.h"
#include "migration/vmstate-internal.h"
#include "system/runstate.h"
#include "system/serial.h"

#include "../fuzz/stream-vm.h"

/*
 * With ASan, an allocation above 64 MiB aborts: no length read from a
 * stream may size an allocation before it is checked. (The test's own
 * largest buffer is a ~4 MiB image.)
 */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "max_allocation_size_mb=64:allocator_may_return_null=0";
}

/* Seconds one variant may take before the watchdog aborts the test. */
#define VARIANT_TIMEOUT_S 10

static const StreamVMLayout layout = {
    .ram_bytes = 1 * MiB + 64 * KiB, /* 272 pages: bitmap bits past it */
    .vram_bytes = 256 * KiB,         /* 64 pages: exactly one word */
    .bios_bytes = 64 * KiB,          /* 16 pages */
};

typedef enum {
    EXPECT_FAIL,
    EXPECT_LOAD,
    EXPECT_ALTERED,
} Expect;

static const char *const expect_names[] = {"fails", "loads", "loads-altered"};

typedef struct Format {
    const char *name;
    bool mapped_ram;
    bool file;
    uint64_t offset;
    int multifd_channels; /* the destination's; 0: no multifd */
    GByteArray *image;    /* the whole file (or memory), prefix included */
    StreamMap map;
    StreamVMState reference; /* after a clean load of image */
} Format;

typedef enum {
    EDIT_SET,
    EDIT_INSERT,
    EDIT_DELETE,
    EDIT_TRUNCATE,
} EditOp;

typedef struct Edit {
    EditOp op;
    size_t pos;
    size_t len;
    uint8_t bytes[48];
} Edit;

#define MAX_EDITS 2

typedef struct Variant {
    char *name;
    Format *fmt;
    Expect expect;
    char *msg;           /* '|'-separated alternatives; NULL: any message */
    int mapped_ram;      /* capability at load time: -1 = the format's */
    int64_t load_offset; /* -1 = the format's */
    Edit edits[MAX_EDITS];
    int nedits;
} Variant;

static char *tmp_dir;
static char *load_path;
static unsigned totals[3];
static unsigned total_variants;
static double slowest_s;
static char *slowest_name;

/* --- the watchdog --- */

static const char *volatile running_variant;

static void watchdog_fired(int sig)
{
    static const char msg[] = "\ntest-hostile-streams: variant hung: ";
    const char *name = running_variant ? running_variant : "?";

    /* Only async-signal-safe calls here. */
    if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0 ||
        write(STDERR_FILENO, name, strlen(name)) < 0 ||
        write(STDERR_FILENO, "\n", 1) < 0) {
        /* nothing more to say */
    }
    abort();
}

/* --- building variants --- */

static GPtrArray *variants;

static Variant *add(Format *f, Expect expect, const char *msg,
                    const char *name_fmt, ...) G_GNUC_PRINTF(4, 5);
static Variant *add(Format *f, Expect expect, const char *msg,
                    const char *name_fmt, ...)
{
    Variant *v = g_new0(Variant, 1);
    g_autofree char *what = NULL;
    va_list ap;

    va_start(ap, name_fmt);
    what = g_strdup_vprintf(name_fmt, ap);
    va_end(ap);
    v->name = g_strdup_printf("%s: %s", f->name, what);
    v->fmt = f;
    v->expect = expect;
    v->msg = g_strdup(msg);
    v->mapped_ram = -1;
    v->load_offset = -1;
    g_ptr_array_add(variants, v);
    return v;
}

static Edit *edit_new(Variant *v, EditOp op, size_t pos)
{
    Edit *e;

    g_assert_cmpint(v->nedits, <, MAX_EDITS);
    e = &v->edits[v->nedits++];
    e->op = op;
    e->pos = pos;
    return e;
}

static Variant *ed_bytes(Variant *v, size_t pos, const void *bytes, size_t len)
{
    Edit *e = edit_new(v, EDIT_SET, pos);

    g_assert_cmpuint(len, <=, sizeof(e->bytes));
    memcpy(e->bytes, bytes, len);
    e->len = len;
    return v;
}

static Variant *ed_be(Variant *v, size_t pos, int width, uint64_t value)
{
    uint8_t b[8];

    stream_put_be(b, width, value);
    return ed_bytes(v, pos, b, width);
}

static Variant *ed_byte(Variant *v, size_t pos, uint8_t value)
{
    return ed_bytes(v, pos, &value, 1);
}

static Variant *ed_insert(Variant *v, size_t pos, const void *bytes, size_t len)
{
    Edit *e = edit_new(v, EDIT_INSERT, pos);

    g_assert_cmpuint(len, <=, sizeof(e->bytes));
    memcpy(e->bytes, bytes, len);
    e->len = len;
    return v;
}

static Variant *ed_delete(Variant *v, size_t pos, size_t len)
{
    edit_new(v, EDIT_DELETE, pos)->len = len;
    return v;
}

static Variant *ed_truncate(Variant *v, size_t len)
{
    edit_new(v, EDIT_TRUNCATE, len);
    return v;
}

/* Copies region [pos, pos + len) of the image into the variant's insert. */
static Variant *ed_insert_copy(Variant *v, size_t at, size_t pos, size_t len)
{
    return ed_insert(v, at, v->fmt->image->data + pos, len);
}

/* The variant's bytes: the image with the edits applied in order. */
static GByteArray *variant_build(const Variant *v)
{
    const GByteArray *img = v->fmt->image;
    size_t len = img->len;
    GByteArray *out;

    /* A truncation first: the copy need not go further. */
    for (int i = 0; i < v->nedits; i++) {
        if (v->edits[i].op == EDIT_TRUNCATE && v->nedits == 1) {
            len = MIN(len, v->edits[i].pos);
        }
    }
    out = g_byte_array_sized_new(len + 64);
    g_byte_array_append(out, img->data, len);
    for (int i = 0; i < v->nedits; i++) {
        const Edit *e = &v->edits[i];

        switch (e->op) {
        case EDIT_SET:
            g_assert_cmpuint(e->pos + e->len, <=, out->len);
            memcpy(out->data + e->pos, e->bytes, e->len);
            break;
        case EDIT_INSERT:
            g_assert_cmpuint(e->pos, <=, out->len);
            g_byte_array_set_size(out, out->len + e->len);
            memmove(out->data + e->pos + e->len, out->data + e->pos,
                    out->len - e->len - e->pos);
            memcpy(out->data + e->pos, e->bytes, e->len);
            break;
        case EDIT_DELETE:
            g_assert_cmpuint(e->pos + e->len, <=, out->len);
            g_byte_array_remove_range(out, e->pos, e->len);
            break;
        case EDIT_TRUNCATE:
            g_byte_array_set_size(out, MIN(out->len, e->pos));
            break;
        }
    }
    return out;
}

/* --- running one --- */

/* A fresh destination: RAM that is not the source's, a moved counter. */
static void destination_reset(const Format *f)
{
    stream_vm_clear_ram(f->mapped_ram ? 0 : 0xcc);
    serial_write("!", 1);
    bql_lock();
    runstate_set(RUN_STATE_INMIGRATE);
    bql_unlock();
}

static bool message_matches(const char *message, const char *expected)
{
    g_auto(GStrv) alternatives = NULL;

    if (!expected) {
        return true;
    }
    alternatives = g_strsplit(expected, "|", -1);
    for (int i = 0; alternatives[i]; i++) {
        if (strstr(message, alternatives[i])) {
            return true;
        }
    }
    return false;
}

/*
 * The file variants are loaded from: only the bytes that differ from what
 * it holds are rewritten, so a one-byte variant of a 4 MiB image costs a
 * one-byte write.
 */
static GByteArray *on_disk;

/* First index at which a and b differ, comparing len bytes. */
static size_t first_difference(const uint8_t *a, const uint8_t *b, size_t len)
{
    size_t i = 0;

    while (i + 4096 <= len && memcmp(a + i, b + i, 4096) == 0) {
        i += 4096;
    }
    while (i < len && a[i] == b[i]) {
        i++;
    }
    return i;
}

/* End of the last difference of a and b in [start, len). */
static size_t end_of_difference(const uint8_t *a, const uint8_t *b,
                                size_t start, size_t len)
{
    size_t end = len;

    while (end - start >= 4096 &&
           memcmp(a + end - 4096, b + end - 4096, 4096) == 0) {
        end -= 4096;
    }
    while (end > start && a[end - 1] == b[end - 1]) {
        end--;
    }
    return end;
}

static void load_file_update(const GByteArray *data)
{
    size_t common = MIN(on_disk->len, data->len);
    size_t first = first_difference(on_disk->data, data->data, common);
    size_t end = data->len;
    int fd;

    if (on_disk->len == data->len) {
        end = end_of_difference(on_disk->data, data->data, first, end);
    }
    fd = open(load_path, O_CREAT | O_WRONLY, 0600);
    g_assert_cmpint(fd, >=, 0);
    if (end > first) {
        g_assert_cmpint(pwrite(fd, data->data + first, end - first, first), ==,
                        (ssize_t)(end - first));
    }
    g_assert_cmpint(ftruncate(fd, data->len), ==, 0);
    close(fd);
    g_byte_array_set_size(on_disk, data->len);
    memcpy(on_disk->data + first, data->data + first, end - first);
}

static int load_variant(const Variant *v, const GByteArray *data, GError **errp)
{
    const Format *f = v->fmt;
    uint64_t offset =
        v->load_offset >= 0 ? (uint64_t)v->load_offset : f->offset;

    stream_vm_set_mapped_ram(v->mapped_ram >= 0 ? v->mapped_ram
                                                : f->mapped_ram);
    stream_vm_set_multifd(f->multifd_channels, load_path);
    destination_reset(f);
    if (f->file) {
        load_file_update(data);
        return stream_vm_load_path(load_path, offset, errp);
    }
    return stream_vm_load_buffer(data->data + offset, data->len - offset, errp);
}

static void run_variant(const Variant *v)
{
    g_autoptr(GByteArray) data = variant_build(v);
    g_autoptr(GError) err = NULL;
    StreamVMState after = {0};
    gint64 start = g_get_monotonic_time();
    Expect outcome;
    double took;
    int ret;

    running_variant = v->name;
    alarm(VARIANT_TIMEOUT_S);
    ret = load_variant(v, data, &err);
    alarm(0);
    /* Work the load queued for the main loop (multifd's listener stop). */
    while (g_main_context_iteration(NULL, false)) {
    }
    running_variant = NULL;
    took = (g_get_monotonic_time() - start) / 1e6;
    if (took > slowest_s) {
        slowest_s = took;
        g_free(slowest_name);
        slowest_name = g_strdup(v->name);
    }

    /* The loader never resumes the guest, whatever it read. */
    g_assert_cmpint(runstate_get(), ==, RUN_STATE_INMIGRATE);

    if (ret < 0) {
        outcome = EXPECT_FAIL;
        if (!err || !err->message[0]) {
            g_error("%s: failed (%d) without a message", v->name, ret);
        }
    } else {
        if (err) {
            g_error("%s: loaded but set an error: %s", v->name, err->message);
        }
        stream_vm_state_capture(&after);
        outcome = stream_vm_state_equal(&after, &v->fmt->reference)
                      ? EXPECT_LOAD
                      : EXPECT_ALTERED;
        stream_vm_state_free(&after);
    }
    if (g_getenv("HOSTILE_VERBOSE")) {
        g_printerr("%-14s %s%s%s\n", expect_names[outcome], v->name,
                   err ? ": " : "", err ? err->message : "");
    }
    if (outcome != v->expect) {
        g_error("%s: expected it to be %s, but it %s%s%s", v->name,
                expect_names[v->expect], expect_names[outcome], err ? ": " : "",
                err ? err->message : "");
    }
    if (err && !message_matches(err->message, v->msg)) {
        g_error("%s: message \"%s\" does not say \"%s\"", v->name, err->message,
                v->msg);
    }
    totals[outcome]++;
    total_variants++;
}

/* --- the valid images --- */

static Format formats[] = {
    {.name = "plain"},
    {.name = "plain-file-offset", .file = true, .offset = 4096},
    {.name = "mapped-ram-file", .mapped_ram = true, .file = true},
    {.name = "mapped-ram-file-offset",
     .mapped_ram = true,
     .file = true,
     .offset = 12345},
    /* The same file read by multifd channels (the writer's is the same). */
    {.name = "mapped-ram-file-multifd",
     .mapped_ram = true,
     .file = true,
     .offset = 4096,
     .multifd_channels = 3},
};

static void format_prepare(Format *f)
{
    g_autoptr(GError) err = NULL;
    StreamVMState source;
    StreamVMState clean;

    if (f->image) {
        return;
    }
    stream_vm_set_mapped_ram(f->mapped_ram);
    stream_vm_set_multifd(0, NULL);
    stream_vm_state_capture(&source);
    if (f->file) {
        g_autofree char *path = g_build_filename(tmp_dir, "source.mig", NULL);
        g_autofree uint8_t *prefix = g_malloc(f->offset + 1);

        /* A management header before the stream, as with offset=. */
        memset(prefix, 'X', f->offset);
        g_assert_true(
            g_file_set_contents(path, (char *)prefix, f->offset, &err));
        f->image = stream_vm_save_to_file(path, f->offset);
        g_assert_cmpmem(f->image->data, f->offset, prefix, f->offset);
    } else {
        f->image = stream_vm_save_to_memory();
    }
    stream_map(f->image, f->offset, &f->map);
    g_assert_cmpuint(f->map.nblocks, ==, STREAM_VM_BLOCKS);
    g_assert_cmpuint(f->map.vmdesc, !=, 0);
    g_assert_cmpuint(!!f->map.caps, ==, f->mapped_ram);

    /* The untouched image loads and gives back the source's guest. */
    {
        Variant clean_load = {.name = (char *)"clean",
                              .fmt = f,
                              .mapped_ram = -1,
                              .load_offset = -1};

        g_assert_cmpint(load_variant(&clean_load, f->image, &err), ==, 0);
        g_assert_no_error(err);
    }
    stream_vm_state_capture(&clean);
    for (int i = 0; i < STREAM_VM_BLOCKS; i++) {
        g_assert_cmpstr(clean.ram_sha256[i], ==, source.ram_sha256[i]);
    }
    g_assert_cmpuint(clean.serial_bytes, ==, source.serial_bytes);
    g_assert_cmpint(clean.received_runstate, ==, RUN_STATE_RUNNING);
    f->reference = clean;
    stream_vm_state_free(&source);
}

/* --- the generator: what every format shares --- */

#define MSG_EOS "Unexpected end of migration stream"
/*
 * A cut right before a mapped-ram stream's capability list reads as a
 * stream without one.
 */
#define MSG_TRUNCATED                                                          \
    MSG_EOS "|Not a migration stream|Could not read whole mapped-ram|"         \
            "Error reading dirty bitmap|beyond the end of the file|"           \
            "but received capability is off"

static void gen_header(Format *f)
{
    const StreamMap *m = &f->map;
    const uint8_t *d = f->image->data;
    size_t b = m->base;
    static const uint32_t versions[] = {0, 1, 2, 4, 0xffffffff};
    static const uint8_t config_types[] = {0x00, 0x01, 0x04, 0x06, 0xff};

    for (int i = 0; i < 4; i++) {
        ed_byte(
            add(f, EXPECT_FAIL, "Not a migration stream", "magic byte %d", i),
            b + i, d[b + i] ^ 0xff);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(versions); i++) {
        ed_be(add(f, EXPECT_FAIL,
                  versions[i] == 2 ? "SaveVM v2 format is obsolete"
                                   : "Unsupported migration stream version",
                  "stream version 0x%x", versions[i]),
              b + 4, 4, versions[i]);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(config_types); i++) {
        ed_byte(add(f, EXPECT_FAIL, "Configuration section missing",
                    "configuration type byte 0x%x", config_types[i]),
                m->config, config_types[i]);
    }
    ed_delete(add(f, EXPECT_FAIL, "Configuration section missing",
                  "configuration section removed"),
              m->config, m->caps_end - m->config);
}

static void gen_machine_type(Format *f)
{
    const StreamMap *m = &f->map;
    size_t len_pos = m->config + 1;
    uint32_t len = stream_get_be(f->image->data + len_pos, 4);
    const uint32_t lens[] = {0,   len - 1, len + 1,   256,
                             257, 0x10000, 0xffffffff};

    for (size_t i = 0; i < G_N_ELEMENTS(lens); i++) {
        ed_be(add(f, EXPECT_FAIL,
                  lens[i] > 256 ? "bytes long (at most 256)"
                                : "Machine type received is",
                  "machine type length %u", lens[i]),
              len_pos, 4, lens[i]);
    }
    for (uint32_t i = 0; i < len; i += len / 3) {
        ed_byte(add(f, EXPECT_FAIL, "Machine type received is '",
                    "machine type byte %u", i),
                len_pos + 4 + i, 'Z');
    }
}

static void gen_capabilities(Format *f)
{
    const StreamMap *m = &f->map;
    static const uint8_t caps[] = {
        0x05, 26,  'c', 'o', 'n', 'f', 'i', 'g', 'u', 'r', 'a', 't',
        'i',  'o', 'n', '/', 'c', 'a', 'p', 'a', 'b', 'i', 'l', 'i',
        't',  'i', 'e', 's', 0,   0,   0,   1,   0,   0,   0,   1,
        10,   'm', 'a', 'p', 'p', 'e', 'd', '-', 'r', 'a', 'm',
    };
    size_t c = m->caps, version, count, name;

    if (!f->mapped_ram) {
        ed_insert(add(f, EXPECT_FAIL,
                      "Capability mapped-ram is off, but received "
                      "capability is on",
                      "mapped-ram capability listed in a plain stream"),
                  m->caps_end, caps, sizeof(caps));
        add(f, EXPECT_FAIL,
            "Capability mapped-ram is on, but received capability is off",
            "loaded with mapped-ram on")
            ->mapped_ram = 1;
        return;
    }
    add(f, EXPECT_FAIL,
        "Capability mapped-ram is off, but received capability is on",
        "loaded with mapped-ram off")
        ->mapped_ram = 0;
    version = c + 2 + f->image->data[c + 1];
    count = version + 4;
    name = count + 4;
    ed_byte(add(f, EXPECT_FAIL,
                "Capability mapped-ram is on, but received capability is off",
                "capabilities subsection marker"),
            c, QEMU_VM_SECTION_FULL);
    ed_byte(add(f, EXPECT_FAIL, "in 'configuration' does not exist",
                "capabilities subsection name length 25"),
            c + 1, 25);
    ed_byte(add(f, EXPECT_FAIL, "in 'configuration' does not exist",
                "capabilities subsection name length 0"),
            c + 1, 0);
    /* Its NUL-padded name matches; what follows is then misread. */
    ed_byte(add(f, EXPECT_FAIL,
                "in 'configuration' does not exist|Capability mapped-ram is "
                "on, but received capability is off",
                "capabilities subsection name length 255"),
            c + 1, 255);
    ed_byte(add(f, EXPECT_FAIL, "in 'configuration' does not exist",
                "capabilities subsection name byte"),
            c + 2, 'k');
    ed_be(add(f, EXPECT_FAIL, "is too new for local version_id 1",
              "capabilities version 2"),
          version, 4, 2);
    ed_be(add(f, EXPECT_FAIL, "is too new for local version_id 1",
              "capabilities version 0xffffffff"),
          version, 4, 0xffffffff);
    /* QEMU refuses version 0 (below its minimum 1); minivm reads it. */
    ed_be(add(f, EXPECT_LOAD, NULL, "capabilities version 0"), version, 4, 0);
    ed_be(add(f, EXPECT_FAIL,
              "Capability mapped-ram is on, but received capability is off",
              "capability count 0"),
          count, 4, 0);
    ed_be(add(f, EXPECT_FAIL, "Received unknown capability",
              "capability count 2"),
          count, 4, 2);
    ed_be(add(f, EXPECT_FAIL, "more than the 256 allowed",
              "capability count 257"),
          count, 4, 257);
    ed_be(add(f, EXPECT_FAIL, "more than the 256 allowed",
              "capability count 0xffffffff"),
          count, 4, 0xffffffff);
    ed_byte(add(f, EXPECT_FAIL, "Received unknown capability",
                "capability name length 9"),
            name, 9);
    ed_byte(add(f, EXPECT_FAIL, "Received unknown capability",
                "capability name length 0"),
            name, 0);
    ed_byte(add(f, EXPECT_FAIL, "Received unknown capability",
                "capability name length 255"),
            name, 255);
    ed_byte(add(f, EXPECT_FAIL, "Received unknown capability mapped-rax",
                "capability name byte"),
            name + 10, 'x');
}

/* The loader's words for a section's version it cannot take. */
static const char *version_msg(const StreamSection *s, uint32_t version)
{
    if (version == 0) {
        return strcmp(s->idstr, "ram") == 0
                   ? "Unsupported ram section version 0"
                   : "is too old for local minimum version_id";
    }
    return "savevm: unsupported version";
}

static void gen_section(Format *f, const StreamSection *s)
{
    const uint8_t *d = f->image->data;
    bool named =
        s->type == QEMU_VM_SECTION_START || s->type == QEMU_VM_SECTION_FULL;
    static const char *const kinds[] = {"EOF", "START", "PART", "END", "FULL"};
    g_autofree char *what = g_strdup_printf("%s %s", s->idstr, kinds[s->type]);
    g_autofree char *missing =
        g_strdup_printf("Missing section footer for %s", s->idstr);
    g_autofree char *mismatched =
        g_strdup_printf("Mismatched section id in footer for %s", s->idstr);
    uint32_t version;

    /* The type byte. */
    ed_byte(add(f, EXPECT_FAIL, "Unknown savevm section type 9",
                "%s: type byte 0x09", what),
            s->start, 0x09);
    ed_byte(add(f, EXPECT_FAIL, "Unknown savevm section type 126",
                "%s: type byte 0x7e", what),
            s->start, QEMU_VM_SECTION_FOOTER);
    if (named) {
        ed_byte(add(f, EXPECT_FAIL, "Unknown savevm section ",
                    "%s: type byte PART", what),
                s->start, 0x02);
    }
    if (s->type == QEMU_VM_SECTION_FULL) {
        /* A device in a START section is loaded the same way. */
        ed_byte(add(f, EXPECT_LOAD, NULL, "%s: type byte START", what),
                s->start, 0x01);
    } else if (s->type == QEMU_VM_SECTION_START) {
        /* Not remembered as started: its PART is then unknown. */
        ed_byte(add(f, EXPECT_FAIL, "Unknown savevm section 0",
                    "%s: type byte FULL", what),
                s->start, 0x04);
    } else {
        /* PART and END differ only in what the writer meant. */
        ed_byte(add(f, EXPECT_LOAD, NULL, "%s: PART/END swapped", what),
                s->start, s->type == 0x02 ? 0x03 : 0x02);
    }

    /* The section id. */
    ed_be(add(f, EXPECT_FAIL, named ? mismatched : "Unknown savevm section 256",
              "%s: section id + 0x100", what),
          s->start + 1, 4, s->section_id + 0x100);

    if (named) {
        uint8_t len = d[s->idstr_len];

        ed_byte(add(f, EXPECT_FAIL, "Unknown savevm section or instance ''",
                    "%s: name length 0", what),
                s->idstr_len, 0);
        ed_byte(add(f, EXPECT_FAIL, "Unknown savevm section or instance",
                    "%s: name length - 1", what),
                s->idstr_len, len - 1);
        /* The name then has NULs, which strcmp() stops at: any message. */
        ed_byte(add(f, EXPECT_FAIL, NULL, "%s: name length 255", what),
                s->idstr_len, 255);
        ed_byte(add(f, EXPECT_FAIL, "Unknown savevm section or instance",
                    "%s: name byte", what),
                s->idstr_len + 1, 'Q');
        ed_be(add(f, EXPECT_FAIL, "Unknown savevm section or instance",
                  "%s: instance 1", what),
              s->instance_id, 4, 1);
        ed_be(add(f, EXPECT_FAIL, "Unknown savevm section or instance",
                  "%s: instance 0xffffffff", what),
              s->instance_id, 4, 0xffffffff);
        version = stream_get_be(d + s->version_id, 4);
        ed_be(add(f, EXPECT_FAIL, version_msg(s, 0), "%s: version 0", what),
              s->version_id, 4, 0);
        ed_be(add(f, EXPECT_FAIL, version_msg(s, version + 1),
                  "%s: version + 1", what),
              s->version_id, 4, version + 1);
        ed_be(add(f, EXPECT_FAIL, version_msg(s, 0xffffffff),
                  "%s: version 0xffffffff", what),
              s->version_id, 4, 0xffffffff);
    }

    /* The footer. */
    ed_byte(add(f, EXPECT_FAIL, missing, "%s: footer marker 0x00", what),
            s->footer, 0x00);
    ed_byte(add(f, EXPECT_FAIL, missing, "%s: footer marker 0x7f", what),
            s->footer, 0x7f);
    ed_be(add(f, EXPECT_FAIL, mismatched, "%s: footer id + 1", what),
          s->footer + 1, 4, s->section_id + 1);
    ed_delete(add(f, EXPECT_FAIL, missing, "%s: footer missing", what),
              s->footer, 5);

    /* Cut inside it. */
    ed_truncate(add(f, EXPECT_FAIL, MSG_EOS, "%s: cut after the type", what),
                s->start + 1);
    ed_truncate(add(f, EXPECT_FAIL, MSG_EOS, "%s: cut after the header", what),
                s->body);
    ed_truncate(add(f, EXPECT_FAIL, MSG_EOS, "%s: cut before the footer", what),
                s->footer);
    ed_truncate(add(f, EXPECT_FAIL, MSG_EOS, "%s: cut inside the footer", what),
                s->footer + 3);
}

/* Whole sections removed, duplicated or extended. */
static void gen_section_structure(Format *f)
{
    const StreamMap *m = &f->map;
    const StreamSection *ram_start =
        stream_map_section(m, "ram", QEMU_VM_SECTION_START);
    const StreamSection *ram_part =
        stream_map_section(m, "ram", QEMU_VM_SECTION_PART);
    const StreamSection *ram_end =
        stream_map_section(m, "ram", QEMU_VM_SECTION_END);
    const StreamSection *gs =
        stream_map_section(m, "globalstate", QEMU_VM_SECTION_FULL);
    const StreamSection *serial =
        stream_map_section(m, "serial", QEMU_VM_SECTION_FULL);
    const StreamSection *wl =
        stream_map_section(m, "workload", QEMU_VM_SECTION_FULL);
    uint8_t sub[32] = {QEMU_VM_SUBSECTION, 12};
    const uint8_t running_pad[32] = "paused";

    g_assert_nonnull(ram_start);
    g_assert_nonnull(ram_part);
    g_assert_nonnull(ram_end);
    g_assert_nonnull(gs);
    g_assert_nonnull(serial);
    g_assert_nonnull(wl);

    ed_delete(
        add(f, EXPECT_FAIL, "Unknown savevm section 0", "ram START removed"),
        ram_start->start, ram_start->footer + 5 - ram_start->start);
    /* Plain: the PART carried every page; mapped-ram: only an EOS. */
    ed_delete(add(f, f->mapped_ram ? EXPECT_LOAD : EXPECT_ALTERED, NULL,
                  "ram PART removed"),
              ram_part->start, ram_part->footer + 5 - ram_part->start);
    ed_delete(add(f, EXPECT_LOAD, NULL, "ram END removed (nothing dirty)"),
              ram_end->start, ram_end->footer + 5 - ram_end->start);
    /* Without globalstate the destination does not learn "running". */
    ed_delete(add(f, EXPECT_ALTERED, NULL, "globalstate removed"), gs->start,
              gs->footer + 5 - gs->start);
    ed_delete(add(f, EXPECT_ALTERED, NULL, "serial removed"), serial->start,
              serial->footer + 5 - serial->start);
    ed_insert_copy(add(f, EXPECT_LOAD, NULL, "serial twice"),
                   serial->footer + 5, serial->start,
                   serial->footer + 5 - serial->start);

    /* Device fields: some values are state, some are refused. */
    ed_be(add(f, EXPECT_ALTERED, NULL, "serial counter changed"), serial->body,
          8, 12345);
    ed_bytes(add(f, EXPECT_ALTERED, NULL, "globalstate says paused"),
             gs->body + 4, running_pad, 32);
    ed_byte(add(f, EXPECT_FAIL, "globalstate: post_load hook failed",
                "globalstate run state name unknown"),
            gs->body + 4, 'X');
    {
        uint8_t full[32];

        memset(full, 'r', sizeof(full));
        ed_bytes(add(f, EXPECT_FAIL, "globalstate: post_load hook failed",
                     "globalstate name without NUL"),
                 gs->body + 4, full, sizeof(full));
    }
    ed_be(add(f, EXPECT_FAIL, "a-b: post_load hook failed", "workload phase 7"),
          wl->body, 4, 7);
    ed_be(add(f, EXPECT_FAIL, "a-b: post_load hook failed",
              "workload position outside its range"),
          wl->body + 4, 8, 0);
    ed_be(add(f, EXPECT_FAIL, "a-b: post_load hook failed",
              "workload position huge"),
          wl->body + 4, 8, UINT64_MAX);

    /* Subsections the device does not have. */
    memcpy(sub + 2, "serial/bogus", 12);
    stream_put_be(sub + 14, 4, 1);
    ed_insert(add(f, EXPECT_FAIL,
                  "VM subsection 'serial/bogus' in 'serial' does not exist",
                  "serial: unknown subsection"),
              serial->footer, sub, 18);
    sub[1] = 5;
    memcpy(sub + 2, "bogus", 5);
    stream_put_be(sub + 7, 4, 1);
    ed_insert(add(f, EXPECT_FAIL, "Missing section footer for serial",
                  "serial: foreign subsection"),
              serial->footer, sub, 11);
    sub[1] = 255;
    ed_insert(add(f, EXPECT_FAIL,
                  "Missing section footer for serial|"
                  "does not exist|" MSG_EOS,
                  "serial: subsection name length 255"),
              serial->footer, sub, 2);
}

static void gen_commands(Format *f)
{
    const StreamSection *ram_end =
        stream_map_section(&f->map, "ram", QEMU_VM_SECTION_END);
    static const uint8_t switchover[] = {0x08, 0x00, 0x0b, 0x00, 0x00};
    static const uint8_t bad_len[] = {0x08, 0x00, 0x0b, 0x00, 0x02, 1, 2};
    static const uint8_t other[] = {0x08, 0x00, 0x03, 0x00, 0x01, 0};
    static const uint8_t huge[] = {0x08, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t cut[] = {0x08, 0x00};

    /* As QEMU 10 writes it before the END sections. */
    ed_insert(add(f, EXPECT_LOAD, NULL, "switchover-start command"),
              ram_end->start, switchover, sizeof(switchover));
    ed_insert(add(f, EXPECT_FAIL, "has length 2, expected 0",
                  "switchover-start with a payload"),
              ram_end->start, bad_len, sizeof(bad_len));
    ed_insert(add(f, EXPECT_FAIL, "Unsupported migration command 0x3",
                  "unknown command"),
              ram_end->start, other, sizeof(other));
    ed_insert(add(f, EXPECT_FAIL,
                  "Unsupported migration command 0xffff (length 65535)",
                  "command 0xffff of length 0xffff"),
              ram_end->start, huge, sizeof(huge));
    ed_truncate(ed_insert(add(f, EXPECT_FAIL, MSG_EOS, "command cut short"),
                          ram_end->start, cut, sizeof(cut)),
                ram_end->start + sizeof(cut));
}

static void gen_tail(Format *f)
{
    const StreamMap *m = &f->map;
    const uint8_t *d = f->image->data;
    size_t json = m->vmdesc + 5;
    uint32_t json_len = stream_get_be(d + m->vmdesc + 1, 4);
    static const uint8_t garbage[16] = "not a stream!!!";

    ed_byte(
        add(f, EXPECT_FAIL, "Unknown savevm section type 9", "EOF byte 0x09"),
        m->eof, 0x09);
    ed_delete(add(f, EXPECT_FAIL, "Unknown savevm section type 6",
                  "EOF byte missing"),
              m->eof, 1);
    ed_truncate(add(f, EXPECT_FAIL, MSG_EOS, "cut before EOF"), m->eof);

    /* The VMDESCRIPTION is for tools: the loader only skips it. */
    ed_byte(add(f, EXPECT_LOAD, NULL, "vmdesc type byte 0x00"), m->vmdesc,
            0x00);
    ed_be(add(f, EXPECT_LOAD, NULL, "vmdesc length 0"), m->vmdesc + 1, 4, 0);
    ed_be(add(f, EXPECT_LOAD, NULL, "vmdesc length + 1"), m->vmdesc + 1, 4,
          json_len + 1);
    ed_be(add(f, EXPECT_LOAD, NULL, "vmdesc length 0xffffffff"), m->vmdesc + 1,
          4, 0xffffffff);
    ed_byte(add(f, EXPECT_LOAD, NULL, "vmdesc JSON first byte"), json, '[');
    ed_byte(add(f, EXPECT_LOAD, NULL, "vmdesc JSON middle byte"),
            json + json_len / 2, 0);
    ed_byte(add(f, EXPECT_LOAD, NULL, "vmdesc JSON last byte"),
            json + json_len - 1, 0xff);
    ed_truncate(add(f, EXPECT_LOAD, NULL, "vmdesc missing"), m->eof + 1);
    ed_truncate(add(f, EXPECT_LOAD, NULL, "vmdesc cut in its length"),
                m->vmdesc + 3);
    ed_truncate(add(f, EXPECT_LOAD, NULL, "vmdesc cut in its JSON"),
                json + json_len / 3);
    ed_insert(add(f, EXPECT_LOAD, NULL, "garbage after the vmdesc"), m->end,
              garbage, sizeof(garbage));
}

/* Cuts at many points: densely in the framing, sparsely in the pages. */
static void gen_truncations(Format *f)
{
    const StreamMap *m = &f->map;
    g_autoptr(GArray) points = g_array_new(false, false, sizeof(size_t));
    size_t dense_end = m->caps_end + 48;

    for (size_t p = m->base; p < dense_end; p++) {
        g_array_append_val(points, p);
    }
    for (unsigned i = 0; i < m->nblocks; i++) {
        const StreamBlock *b = &m->blocks[i];
        size_t around[] = {b->name_len + 1,
                           b->used_length + 4,
                           b->header + 1,
                           b->header + 27,
                           b->bitmap_offset,
                           b->bitmap_offset + 3,
                           b->pages_offset,
                           b->pages_offset + 5 * 4096 + 7,
                           b->pages_offset + b->bytes - 1};

        for (size_t j = 0; j < G_N_ELEMENTS(around); j++) {
            if (around[j] && (b->header || j < 2)) {
                g_array_append_val(points, around[j]);
            }
        }
    }
    for (int i = 1; i < 40; i++) {
        size_t p = m->caps_end + (m->eof - m->caps_end) * i / 40;

        g_array_append_val(points, p);
    }
    for (size_t p = m->eof - 24; p < m->eof; p++) {
        g_array_append_val(points, p);
    }
    for (guint i = 0; i < points->len; i++) {
        size_t p = g_array_index(points, size_t, i);

        g_assert_cmpuint(p, <, m->eof);
        ed_truncate(add(f, EXPECT_FAIL, MSG_TRUNCATED, "cut at 0x%zx", p), p);
    }
    /* A plain file read from the wrong place is not a stream at all. */
    if (f->file && !f->mapped_ram) {
        add(f, EXPECT_FAIL, "Not a migration stream", "read from offset 0")
            ->load_offset = 0;
        add(f, EXPECT_FAIL, "Not a migration stream", "read from offset + 1")
            ->load_offset = f->offset + 1;
    }
}

/* --- plain streams: the block list and the page records --- */

static void gen_plain_ram(Format *f)
{
    const StreamMap *m = &f->map;
    const uint8_t *d = f->image->data;
    uint64_t total = stream_get_be(d + m->mem_size, 8) & TARGET_PAGE_MASK;
    size_t fp = m->first_page;
    uint64_t fp_offset = stream_get_be(d + fp, 8) & TARGET_PAGE_MASK;
    const StreamBlock *pc = &m->blocks[0];
    static const unsigned bad_flags[] = {0x40,  0x80,  0x0a, 0x100,
                                         0x400, 0x800, 0x0c, 0x18};

    g_assert_cmpuint(fp, !=, 0);
    g_assert_cmpuint(m->cont_page, !=, 0);
    g_assert_cmpuint(m->first_zero, !=, 0);

    ed_be(add(f, EXPECT_FAIL, "RAM block list is inconsistent",
              "MEM_SIZE total - 1 page"),
          m->mem_size, 8, (total - TARGET_PAGE_SIZE) | 0x04);
    ed_be(
        add(f, EXPECT_FAIL, "Unknown ramblock \"\"", "MEM_SIZE total + 1 page"),
        m->mem_size, 8, (total + TARGET_PAGE_SIZE) | 0x04);
    ed_be(add(f, EXPECT_FAIL, "Unknown ramblock \"\"", "MEM_SIZE total huge"),
          m->mem_size, 8, TARGET_PAGE_MASK | 0x04);
    ed_be(add(f, EXPECT_FAIL, NULL, "MEM_SIZE total 0"), m->mem_size, 8, 0x04);
    ed_be(add(f, EXPECT_FAIL, "Unknown combination of migration flags: 0xc",
              "MEM_SIZE with PAGE"),
          m->mem_size, 8, total | 0x0c);

    for (unsigned i = 0; i < m->nblocks; i++) {
        const StreamBlock *b = &m->blocks[i];

        ed_byte(add(f, EXPECT_FAIL, "Unknown ramblock \"\"",
                    "%s: name length 0", b->name),
                b->name_len, 0);
        /* The name then ends in a NUL, which strcmp() does not see. */
        ed_byte(add(f, EXPECT_FAIL, "Unknown ramblock|Length mismatch",
                    "%s: name length + 1", b->name),
                b->name_len, d[b->name_len] + 1);
        ed_byte(
            add(f, EXPECT_FAIL, "Unknown ramblock", "%s: name byte", b->name),
            b->name_len + 1, '#');
        ed_be(add(f, EXPECT_FAIL, "Length mismatch", "%s: length + 1 page",
                  b->name),
              b->used_length, 8, b->bytes + TARGET_PAGE_SIZE);
        ed_be(add(f, EXPECT_FAIL, "Length mismatch", "%s: length - 1 page",
                  b->name),
              b->used_length, 8, b->bytes - TARGET_PAGE_SIZE);
        ed_be(add(f, EXPECT_FAIL, "Length mismatch", "%s: length 0", b->name),
              b->used_length, 8, 0);
        ed_be(add(f, EXPECT_FAIL, "Length mismatch", "%s: length 2^64-1",
                  b->name),
              b->used_length, 8, UINT64_MAX);
    }

    for (size_t i = 0; i < G_N_ELEMENTS(bad_flags); i++) {
        g_autofree char *msg = g_strdup_printf(
            "Unknown combination of migration flags: 0x%x", bad_flags[i]);

        ed_be(add(f, EXPECT_FAIL, msg, "page record flags 0x%x", bad_flags[i]),
              fp, 8, fp_offset | bad_flags[i]);
    }
    ed_byte(add(f, EXPECT_FAIL, "no block was named before it",
                "page record CONTINUE without a block"),
            fp + 7, 0x28);
    ed_byte(add(f, EXPECT_FAIL, "Missing section footer for ram",
                "page record turned EOS"),
            fp + 7, 0x10);
    ed_be(add(f, EXPECT_FAIL, NULL, "page record turned MULTIFD_FLUSH"), fp, 8,
          fp_offset | RAM_SAVE_FLAG_MULTIFD_FLUSH);
    ed_be(add(f, EXPECT_FAIL, NULL, "page record turned MEM_SIZE 0"), fp, 8,
          0x04);
    ed_be(add(f, EXPECT_FAIL, "Illegal RAM offset 110000",
              "page offset = block length"),
          fp, 8, pc->bytes | 0x08);
    ed_be(add(f, EXPECT_FAIL, "Illegal RAM offset fffffffffffff000",
              "page offset 2^64 - 1 page"),
          fp, 8, TARGET_PAGE_MASK | 0x08);
    ed_be(add(f, EXPECT_ALTERED, NULL, "page offset = the last page"), fp, 8,
          (pc->bytes - TARGET_PAGE_SIZE) | 0x08);
    ed_be(add(f, EXPECT_FAIL, "Illegal RAM offset",
              "CONTINUE page offset = block length"),
          m->cont_page, 8, pc->bytes | 0x28);
    ed_byte(add(f, EXPECT_FAIL, "Unknown combination of migration flags: 0x60",
                "CONTINUE page record with XBZRLE"),
            m->cont_page + 7, 0x60);
    ed_byte(
        add(f, EXPECT_FAIL, "Can't find block ", "page record name length 0"),
        fp + 8, 0);
    ed_byte(add(f, EXPECT_FAIL, "Can't find block ", "page record name byte"),
            fp + 9, 'X');
    ed_byte(add(f, EXPECT_FAIL, "Found a zero page with value 1",
                "zero record byte 1"),
            m->zero_byte, 1);
    ed_byte(add(f, EXPECT_FAIL, "Found a zero page with value 255",
                "zero record byte 255"),
            m->zero_byte, 0xff);
    ed_byte(add(f, EXPECT_ALTERED, NULL, "page data: first page"),
            fp + 8 + 1 + d[fp + 8] + 100, 0x5a);
    ed_byte(add(f, EXPECT_ALTERED, NULL, "page data: last page"),
            m->last_page + 8 + TARGET_PAGE_SIZE - 1 +
                ((d[m->last_page + 7] & 0x20) ? 0 : 1 + d[m->last_page + 8]),
            0x5a);
    {
        static const uint8_t flush[8] = {0, 0, 0, 0, 0, 0, 0x02, 0x00};

        ed_insert(add(f, EXPECT_LOAD, NULL, "MULTIFD_FLUSH record"), fp, flush,
                  sizeof(flush));
    }
}

/* --- mapped-ram: the header, bitmap and page area of every block --- */

/*
 * A bitmap read from the wrong place may show bits past the block before
 * its place is checked: either message is right.
 */
#define MSG_BITMAP_PLACE "does not lie between|page outside of ramblock"

static void gen_mapped_ram_block(Format *f, const StreamBlock *b, bool last)
{
    const GByteArray *img = f->image;
    uint64_t pages = b->bytes >> TARGET_PAGE_BITS;
    uint64_t bitmap_size = DIV_ROUND_UP(pages, 64) * 8;
    uint64_t header_end = b->header + 28;
    uint64_t past_eof = QEMU_ALIGN_UP((uint64_t)img->len, 4096) + 4096;
    const char *n = b->name;
    g_autofree char *outside =
        g_strdup_printf("page outside of ramblock %s range", n);
    size_t h = b->header;

    ed_be(add(f, EXPECT_LOAD, NULL, "%s: header version 0", n), h, 4, 0);
    ed_be(add(f, EXPECT_FAIL, "version not supported (expected <= 1, got 2)",
              "%s: header version 2", n),
          h, 4, 2);
    ed_be(add(f, EXPECT_FAIL, "version not supported (expected <= 1, got -1)",
              "%s: header version 0xffffffff", n),
          h, 4, 0xffffffff);
    ed_be(
        add(f, EXPECT_FAIL, "page size 0 does not match", "%s: page size 0", n),
        h + 4, 8, 0);
    ed_be(add(f, EXPECT_FAIL, "page size 2048 does not match",
              "%s: page size 2048", n),
          h + 4, 8, 2048);
    ed_be(add(f, EXPECT_FAIL, "page size 8192 does not match",
              "%s: page size 8192", n),
          h + 4, 8, 8192);
    ed_be(add(f, EXPECT_FAIL, "does not match the target page size",
              "%s: page size 2^63", n),
          h + 4, 8, 1ULL << 63);

    /* bitmap_offset: over the header, into the pages, past the end. */
    ed_be(add(f, EXPECT_FAIL, MSG_BITMAP_PLACE,
              "%s: bitmap over its own header", n),
          h + 12, 8, h);
    ed_be(add(f, EXPECT_FAIL, MSG_BITMAP_PLACE,
              "%s: bitmap one byte into the header", n),
          h + 12, 8, header_end - 1);
    ed_be(add(f, EXPECT_FAIL, MSG_BITMAP_PLACE, "%s: bitmap at offset 0", n),
          h + 12, 8, 0);
    ed_be(add(f, EXPECT_FAIL, MSG_BITMAP_PLACE, "%s: bitmap at the pages", n),
          h + 12, 8, b->pages_offset);
    ed_be(add(f, EXPECT_FAIL, MSG_BITMAP_PLACE,
              "%s: bitmap overlapping the pages", n),
          h + 12, 8, b->pages_offset - bitmap_size + 8);
    ed_be(add(f, EXPECT_FAIL, "Error reading dirty bitmap",
              "%s: bitmap past the end of the file", n),
          h + 12, 8, past_eof);
    ed_be(add(f, EXPECT_FAIL, "Error reading dirty bitmap",
              "%s: bitmap at 2^63 - 1", n),
          h + 12, 8, INT64_MAX);
    ed_be(add(f, EXPECT_FAIL, "Error reading dirty bitmap",
              "%s: bitmap at 2^64 - 1", n),
          h + 12, 8, UINT64_MAX);
    /* Eight bytes on: the padding reads as clear bits. */
    ed_be(add(f, EXPECT_ALTERED, NULL, "%s: bitmap moved into the padding", n),
          h + 12, 8, header_end + 8);

    /* pages_offset: misaligned, before the bitmap, past the end. */
    ed_be(add(f, EXPECT_FAIL, "region has bad alignment",
              "%s: pages offset + 1", n),
          h + 20, 8, b->pages_offset + 1);
    ed_be(add(f, EXPECT_FAIL, "region has bad alignment",
              "%s: pages offset + 2048", n),
          h + 20, 8, b->pages_offset + 2048);
    ed_be(add(f, EXPECT_FAIL, "does not lie between", "%s: pages offset 0", n),
          h + 20, 8, 0);
    ed_be(add(f, EXPECT_FAIL, "does not lie between",
              "%s: pages over the header", n),
          h + 20, 8, QEMU_ALIGN_DOWN(h, 4096));
    ed_be(add(f, EXPECT_FAIL, "does not lie between",
              "%s: pages over the bitmap", n),
          h + 20, 8, QEMU_ALIGN_DOWN(header_end + bitmap_size - 1, 4096));
    ed_be(add(f, EXPECT_FAIL, "beyond the end of the file",
              "%s: pages past the end of the file", n),
          h + 20, 8, past_eof);
    ed_be(add(f, EXPECT_FAIL, "beyond the end of the file",
              "%s: pages at 2^63 - 1 page", n),
          h + 20, 8, INT64_MAX & TARGET_PAGE_MASK);
    ed_be(add(f, EXPECT_FAIL, "beyond the end of the file",
              "%s: pages at 2^64 - 1 page", n),
          h + 20, 8, TARGET_PAGE_MASK);
    /* A page off: the stream then resumes in the wrong place. */
    ed_be(add(f, EXPECT_FAIL, last ? NULL : "Unknown ramblock",
              "%s: pages offset + 1 page", n),
          h + 20, 8, b->pages_offset + 4096);
    ed_be(add(f, EXPECT_FAIL, NULL, "%s: pages offset - 1 page", n), h + 20, 8,
          b->pages_offset - 4096);

    /* The bitmap's own bits. */
    if (pages % 64) {
        size_t first_out = b->bitmap_offset + pages / 8;
        size_t last_byte = b->bitmap_offset + bitmap_size - 1;

        g_assert_cmpuint(pages % 8, ==, 0);
        ed_byte(add(f, EXPECT_FAIL, outside, "%s: first bit past the block", n),
                first_out, img->data[first_out] | 0x01);
        ed_byte(add(f, EXPECT_FAIL, outside, "%s: last bit of the bitmap", n),
                last_byte, img->data[last_byte] | 0x80);
    }
    {
        uint8_t ones[48];
        size_t in_range = MIN(pages / 8, sizeof(ones));

        memset(ones, 0xff, sizeof(ones));
        /* Every slot read: holes read back as the zero pages they are. */
        if (in_range == pages / 8) {
            ed_bytes(add(f, EXPECT_LOAD, NULL, "%s: every bit set", n),
                     b->bitmap_offset, ones, in_range);
        }
        ed_byte(add(f, EXPECT_ALTERED, NULL, "%s: bitmap word 0 cleared", n),
                b->bitmap_offset, 0);
    }
    /* The page area: data of a set bit, and of a hole. */
    ed_byte(add(f, EXPECT_ALTERED, NULL, "%s: page 0 data", n),
            b->pages_offset + 100, 0x5a);
    for (uint64_t p = 0; p < pages; p++) {
        if (!(img->data[b->bitmap_offset + p / 8] & (1 << (p % 8)))) {
            ed_byte(add(f, EXPECT_LOAD, NULL,
                        "%s: data in the slot of hole %" PRIu64, n, p),
                    b->pages_offset + p * 4096 + 7, 0x5a);
            break;
        }
    }
    ed_be(add(f, EXPECT_FAIL, "Length mismatch", "%s: length + 1 page", n),
          b->used_length, 8, b->bytes + 4096);
    ed_byte(add(f, EXPECT_FAIL, "Unknown ramblock", "%s: name byte", n),
            b->name_len + 1, '#');
    ed_delete(add(f, EXPECT_FAIL, NULL, "%s: header missing", n), h, 28);
}

static void gen_mapped_ram(Format *f)
{
    const StreamMap *m = &f->map;
    const StreamSection *part =
        stream_map_section(m, "ram", QEMU_VM_SECTION_PART);
    static const uint8_t page_rec[8] = {0, 0, 0, 0, 0, 0, 0, 0x08};
    static const uint8_t zero_rec[8] = {0, 0, 0, 0, 0, 0, 0, 0x02};
    static const uint8_t flush_rec[8] = {0, 0, 0, 0, 0, 0, 0x02, 0x00};

    for (unsigned i = 0; i < m->nblocks; i++) {
        gen_mapped_ram_block(f, &m->blocks[i], i + 1 == m->nblocks);
    }
    /* Records that never appear with mapped-ram. */
    ed_insert(
        add(f, EXPECT_FAIL, "Unexpected RAM flags: 8", "PAGE record in a PART"),
        part->body, page_rec, 8);
    ed_insert(
        add(f, EXPECT_FAIL, "Unexpected RAM flags: 2", "ZERO record in a PART"),
        part->body, zero_rec, 8);
    ed_insert(add(f, EXPECT_FAIL, "Unexpected RAM flags: 512",
                  "MULTIFD_FLUSH record in a PART"),
              part->body, flush_rec, 8);
}

/* --- the tests --- */

static void generate(Format *f)
{
    gen_header(f);
    gen_machine_type(f);
    gen_capabilities(f);
    for (guint i = 0; i < f->map.sections->len; i++) {
        gen_section(f, &g_array_index(f->map.sections, StreamSection, i));
    }
    gen_section_structure(f);
    gen_commands(f);
    gen_tail(f);
    gen_truncations(f);
    if (f->mapped_ram) {
        gen_mapped_ram(f);
    } else {
        gen_plain_ram(f);
    }
}

static void test_format(gconstpointer opaque)
{
    Format *f = (Format *)opaque;
    unsigned before[3];
    guint first;

    memcpy(before, totals, sizeof(before));
    format_prepare(f);
    first = variants->len;
    generate(f);
    for (guint i = first; i < variants->len; i++) {
        run_variant(g_ptr_array_index(variants, i));
    }
    g_test_message("%s: %u variants: %u fail with a message, %u load, "
                   "%u load with altered state",
                   f->name, variants->len - first,
                   totals[EXPECT_FAIL] - before[EXPECT_FAIL],
                   totals[EXPECT_LOAD] - before[EXPECT_LOAD],
                   totals[EXPECT_ALTERED] - before[EXPECT_ALTERED]);
}

static void test_summary(void)
{
    g_test_message("%u variants in all: %u fail, %u load, %u load altered; "
                   "slowest %.3f s (%s)",
                   total_variants, totals[EXPECT_FAIL], totals[EXPECT_LOAD],
                   totals[EXPECT_ALTERED], slowest_s,
                   slowest_name ? slowest_name : "-");
    if (g_test_subprocess() || g_test_failed()) {
        return;
    }
    /* Only meaningful when every format ran (not with -p). */
    if (total_variants) {
        g_assert_cmpuint(total_variants, >=, 200);
        g_assert_cmpuint(totals[EXPECT_FAIL], >=, 200);
    }
}

static void variant_free(gpointer p)
{
    Variant *v = p;

    g_free(v->name);
    g_free(v->msg);
    g_free(v);
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    signal(SIGALRM, watchdog_fired);
    tmp_dir = g_dir_make_tmp("hostile-XXXXXX", NULL);
    g_assert_nonnull(tmp_dir);
    load_path = g_build_filename(tmp_dir, "variant.mig", NULL);
    variants = g_ptr_array_new_with_free_func(variant_free);
    on_disk = g_byte_array_new();

    stream_vm_init(&layout);
    stream_vm_fill();

    for (size_t i = 0; i < G_N_ELEMENTS(formats); i++) {
        g_autofree char *path =
            g_strdup_printf("/hostile-streams/%s", formats[i].name);

        g_test_add_data_func(path, &formats[i], test_format);
    }
    g_test_add_func("/hostile-streams/summary", test_summary);
    ret = g_test_run();

    for (size_t i = 0; i < G_N_ELEMENTS(formats); i++) {
        if (formats[i].image) {
            g_byte_array_unref(formats[i].image);
            stream_map_free(&formats[i].map);
            stream_vm_state_free(&formats[i].reference);
        }
    }
    g_ptr_array_unref(variants);
    g_byte_array_unref(on_disk);
    unlink(load_path);
    g_autofree char *source = g_build_filename(tmp_dir, "source.mig", NULL);
    unlink(source);
    rmdir(tmp_dir);
    g_free(load_path);
    g_free(tmp_dir);
    g_free(slowest_name);
    return ret;
}
