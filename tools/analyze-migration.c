/*
 * analyze-migration: inspect, check and extract from a migration file.
 *
 * Reads files in QEMU's migration stream format (version 3), both the
 * legacy page stream and the mapped-ram layout, whoever wrote them (minivm
 * or QEMU).  It is deliberately standalone (GLib and json-glib only, no
 * libminivm) so it keeps working on any file, including ones the minivm
 * loader rejects: it is the second opinion on the format, written from
 * docs rather than from the loader.
 *
 * The file is walked once into an Analysis (sections, RAM blocks, device
 * fields decoded with the trailing VMDESCRIPTION, problems found); the
 * modes then print that model as text or JSON, judge it (--check) or copy
 * one RAM block out of the file (--extract).  Every length read from the
 * file is checked against the file size before it is used, and nothing is
 * allocated in proportion to a length the file claims.
 *
 * --dump-json (for tests and scripts): {"file", "file_size",
 * "stream_offset", "header": {"magic", "version"}, "configuration":
 * {"offset", "length", "machine_type", "capabilities": [...]}, "mapped_ram",
 * "sections": [{"type", "offset", "length" (type byte through footer),
 * START/PART/END/FULL: "section_id", "idstr", "instance_id", "version_id";
 * ram: "ram": {"mem_size" and "blocks" (START), "pages", "zero_pages",
 * "multifd_flushes", "eos"}; devices: "vmsd_name", "fields" (decoded,
 * with "subsections"), "decode_error"; COMMAND: "command", "command_name",
 * "payload_length"}], "device_sections", "eof": {"offset"}, "vmdesc":
 * {"offset", "size", "devices"}, "complete", "errors", "warnings"}.
 * A block: {"name", "offset", "used_length", "pages", "mapped_ram":
 * {"offset", "version", "page_size", "bitmap_offset", "bitmap_size",
 * "pages_offset", "bitmap_set"} or "legacy_pages", "legacy_zero_pages"}.
 * Buffers are hex strings; integers above INT64_MAX are "0x..." strings.
 */
#include "qemu/osdep.h"

#include <json-glib/json-glib.h>

/* ---- Format constants (docs: shared/spec/stream-format.md) ---- */

#define QEVM_MAGIC     0x5145564du
#define STREAM_VERSION 3

enum {
    SEC_EOF = 0x00,
    SEC_START = 0x01,
    SEC_PART = 0x02,
    SEC_END = 0x03,
    SEC_FULL = 0x04,
    SEC_SUBSECTION = 0x05,
    SEC_VMDESCRIPTION = 0x06,
    SEC_CONFIGURATION = 0x07,
    SEC_COMMAND = 0x08,
    SEC_FOOTER = 0x7e,
};

#define RAM_FLAG_ZERO          0x02
#define RAM_FLAG_MEM_SIZE      0x04
#define RAM_FLAG_PAGE          0x08
#define RAM_FLAG_EOS           0x10
#define RAM_FLAG_CONTINUE      0x20
#define RAM_FLAG_XBZRLE        0x40
#define RAM_FLAG_HOOK          0x80
#define RAM_FLAG_MULTIFD_FLUSH 0x200
#define RAM_FLAGS_MASK         0xfffu

#define PAGE_SIZE_BYTES         4096u
#define MAPPED_RAM_HEADER_BYTES 28
#define MAPPED_RAM_MAX_VERSION  1
#define MAPPED_RAM_ALIGN_BYTES  (1 * MiB)

/* QEMU's tools look for the VMDESCRIPTION in this tail of the file. */
#define VMDESC_SCAN_BYTES (10 * MiB)

#define READER_CACHE_BYTES    (64 * KiB)
#define COPY_CHUNK_BYTES      (1 * MiB)
#define MAX_MACHINE_NAME      4096
#define MAX_DECODE_DEPTH      32
#define MAX_ARRAY_LEN         (1u << 20)
#define HEX_DUMP_LIMIT        4096
#define MAX_REPORTED_PROBLEMS 100

#define TOOL_ERROR      tool_error_quark()
#define fail(errp, ...) g_set_error((errp), TOOL_ERROR, 0, __VA_ARGS__)

static GQuark tool_error_quark(void)
{
    return g_quark_from_static_string("analyze-migration-error");
}

/* ---- Bounds-checked reading ---- */

/*
 * The sequential stream is read through a small cache; anything addressed
 * by an offset (bitmaps, pages, the vmdesc) is read with pread.  All of
 * it is checked against the file size first, so a lying length is an
 * error message and never an allocation or a read past the end.
 */
typedef struct {
    int fd;
    uint64_t file_size;
    uint64_t pos;
    uint64_t cache_offset;
    size_t cache_len;
    uint8_t cache[READER_CACHE_BYTES];
} Reader;

static bool range_in_file(const Reader *r, uint64_t offset, uint64_t len)
{
    return offset <= r->file_size && len <= r->file_size - offset;
}

static bool check_range(const Reader *r, uint64_t offset, uint64_t len,
                        const char *what, GError **errp)
{
    if (!range_in_file(r, offset, len)) {
        fail(errp,
             "file truncated: %s at offset 0x%" PRIx64 " needs %" PRIu64
             " bytes, but the file ends at 0x%" PRIx64,
             what, offset, len, r->file_size);
        return false;
    }
    return true;
}

static bool pread_exact(int fd, void *buf, size_t len, uint64_t offset,
                        GError **errp)
{
    uint8_t *p = buf;

    while (len) {
        ssize_t n = RETRY_ON_EINTR(pread(fd, p, len, offset));
        if (n < 0) {
            fail(errp, "read error at offset 0x%" PRIx64 ": %s", offset,
                 g_strerror(errno));
            return false;
        }
        if (n == 0) {
            fail(errp,
                 "unexpected end of file at offset 0x%" PRIx64
                 " (did the file shrink?)",
                 offset);
            return false;
        }
        p += n;
        len -= n;
        offset += n;
    }
    return true;
}

static bool pwrite_exact(int fd, const void *buf, size_t len, uint64_t offset,
                         GError **errp)
{
    const uint8_t *p = buf;

    while (len) {
        ssize_t n = RETRY_ON_EINTR(pwrite(fd, p, len, offset));
        if (n < 0) {
            fail(errp, "write error at offset 0x%" PRIx64 ": %s", offset,
                 g_strerror(errno));
            return false;
        }
        p += n;
        len -= n;
        offset += n;
    }
    return true;
}

static bool reader_pread(const Reader *r, void *buf, size_t len,
                         uint64_t offset, const char *what, GError **errp)
{
    return check_range(r, offset, len, what, errp) &&
           pread_exact(r->fd, buf, len, offset, errp);
}

/*
 * Makes [offset, offset + len) available in the cache (len is at most the
 * cache size) and returns a pointer valid until the next cache refill.
 */
static const uint8_t *reader_view(Reader *r, uint64_t offset, size_t len,
                                  const char *what, GError **errp)
{
    g_assert(len <= READER_CACHE_BYTES);
    if (!check_range(r, offset, len, what, errp)) {
        return NULL;
    }
    if (offset < r->cache_offset ||
        offset + len > r->cache_offset + r->cache_len) {
        size_t fill = MIN(READER_CACHE_BYTES, r->file_size - offset);
        r->cache_len = 0;
        if (!pread_exact(r->fd, r->cache, fill, offset, errp)) {
            return NULL;
        }
        r->cache_offset = offset;
        r->cache_len = fill;
    }
    return r->cache + (offset - r->cache_offset);
}

/* Consumes len bytes of the stream and returns them (see reader_view). */
static const uint8_t *reader_take(Reader *r, size_t len, const char *what,
                                  GError **errp)
{
    const uint8_t *p = reader_view(r, r->pos, len, what, errp);
    if (p) {
        r->pos += len;
    }
    return p;
}

/* Like reader_view at the stream position, but running out is no error. */
static const uint8_t *reader_peek(Reader *r, size_t len)
{
    if (!range_in_file(r, r->pos, len)) {
        return NULL;
    }
    return reader_view(r, r->pos, len, "", NULL);
}

static bool reader_skip(Reader *r, uint64_t len, const char *what,
                        GError **errp)
{
    if (!check_range(r, r->pos, len, what, errp)) {
        return false;
    }
    r->pos += len;
    return true;
}

static uint64_t load_be(const uint8_t *p, size_t len)
{
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

static uint64_t load_le(const uint8_t *p, size_t len)
{
    uint64_t v = 0;
    for (size_t i = len; i > 0; i--) {
        v = (v << 8) | p[i - 1];
    }
    return v;
}

static bool reader_be(Reader *r, size_t len, uint64_t *v, const char *what,
                      GError **errp)
{
    const uint8_t *p = reader_take(r, len, what, errp);
    if (!p) {
        return false;
    }
    *v = load_be(p, len);
    return true;
}

static bool reader_u8(Reader *r, uint8_t *v, const char *what, GError **errp)
{
    uint64_t x;
    if (!reader_be(r, 1, &x, what, errp)) {
        return false;
    }
    *v = x;
    return true;
}

static bool reader_be16(Reader *r, uint16_t *v, const char *what, GError **errp)
{
    uint64_t x;
    if (!reader_be(r, 2, &x, what, errp)) {
        return false;
    }
    *v = x;
    return true;
}

static bool reader_be32(Reader *r, uint32_t *v, const char *what, GError **errp)
{
    uint64_t x;
    if (!reader_be(r, 4, &x, what, errp)) {
        return false;
    }
    *v = x;
    return true;
}

static bool reader_be64(Reader *r, uint64_t *v, const char *what, GError **errp)
{
    return reader_be(r, 8, v, what, errp);
}

/* Reads a u8 length and that many bytes as a string (names, idstrs). */
static char *reader_name(Reader *r, const char *what, GError **errp)
{
    uint8_t len;
    const uint8_t *p;

    if (!reader_u8(r, &len, what, errp)) {
        return NULL;
    }
    p = reader_take(r, len, what, errp);
    return p ? g_strndup((const char *)p, len) : NULL;
}

static bool buffer_is_zero(const uint8_t *p, size_t len)
{
    return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

/* ---- The model the walk builds ---- */

typedef struct {
    char *name;
    uint64_t entry_offset; /* the block's u8 idstr length */
    uint64_t used_length;
    uint64_t pages;
    /* mapped-ram */
    bool has_header;
    uint64_t header_offset;
    uint32_t mr_version;
    uint64_t mr_page_size;
    uint64_t bitmap_offset;
    uint64_t bitmap_size;
    uint64_t pages_offset;
    bool bitmap_scanned;
    uint64_t bits_set;
    /* legacy page records, over the whole stream */
    uint64_t legacy_pages;
    uint64_t legacy_zero_pages;
} RamBlockInfo;

typedef struct {
    uint8_t type;
    uint64_t offset;
    uint64_t length; /* type byte through footer, seeks included */
    uint32_t section_id;
    char *idstr;
    uint32_t instance_id;
    uint32_t version_id;
    bool is_ram;
    bool has_mem_size;
    uint64_t mem_size;
    uint64_t pages, zero_pages, multifd_flushes, eos;
    uint16_t command;
    uint16_t command_len;
    char *vmsd_name;
    JsonObject *fields; /* decoded device state, possibly partial */
    char *decode_error;
} SectionInfo;

typedef struct {
    Reader reader;
    const char *path;
    uint64_t stream_offset;

    uint32_t version;
    bool has_config;
    uint64_t config_offset;
    uint64_t config_length;
    char *machine_type;
    GPtrArray *capabilities; /* char * */
    bool mapped_ram;

    GPtrArray *sections; /* SectionInfo *, in stream order */
    GHashTable *by_id;   /* section_id -> SectionInfo * of START/FULL */
    GPtrArray *blocks;   /* RamBlockInfo *, in stream order */
    GHashTable *block_by_name;
    RamBlockInfo *last_block; /* for RAM_FLAG_CONTINUE, across sections */

    bool has_eof;
    uint64_t eof_offset;
    bool walk_complete; /* reached EOF without a fatal error */

    JsonNode *vmdesc;        /* root, NULL when missing or invalid */
    uint64_t vmdesc_offset;  /* its 0x06 byte */
    uint64_t vmdesc_size;    /* JSON bytes */
    uint64_t vmdesc_devices; /* entries in "devices" */

    GPtrArray *errors;
    GPtrArray *warnings;
    unsigned suppressed_errors;

    /* --extract of a legacy stream happens during the walk */
    const char *extract_name;
    int extract_fd;
    RamBlockInfo *extract_block;
    GError *extract_error;
} Analysis;

static void add_problem(Analysis *a, GPtrArray *list, const char *fmt,
                        va_list ap)
{
    if (list->len >= MAX_REPORTED_PROBLEMS) {
        a->suppressed_errors++;
        return;
    }
    g_ptr_array_add(list, g_strdup_vprintf(fmt, ap));
}

static void G_GNUC_PRINTF(2, 3) add_error(Analysis *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_problem(a, a->errors, fmt, ap);
    va_end(ap);
}

static void G_GNUC_PRINTF(2, 3) add_warning(Analysis *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_problem(a, a->warnings, fmt, ap);
    va_end(ap);
}

static void ram_block_free(gpointer p)
{
    RamBlockInfo *b = p;
    g_free(b->name);
    g_free(b);
}

static void section_free(gpointer p)
{
    SectionInfo *s = p;
    g_free(s->idstr);
    g_free(s->vmsd_name);
    g_free(s->decode_error);
    if (s->fields) {
        json_object_unref(s->fields);
    }
    g_free(s);
}

static Analysis *analysis_new(void)
{
    Analysis *a = g_new0(Analysis, 1);
    a->reader.fd = -1;
    a->extract_fd = -1;
    a->capabilities = g_ptr_array_new_with_free_func(g_free);
    a->sections = g_ptr_array_new_with_free_func(section_free);
    a->by_id = g_hash_table_new(g_direct_hash, g_direct_equal);
    a->blocks = g_ptr_array_new_with_free_func(ram_block_free);
    a->block_by_name = g_hash_table_new(g_str_hash, g_str_equal);
    a->errors = g_ptr_array_new_with_free_func(g_free);
    a->warnings = g_ptr_array_new_with_free_func(g_free);
    return a;
}

static void analysis_free(Analysis *a)
{
    if (a->reader.fd >= 0) {
        close(a->reader.fd);
    }
    if (a->extract_fd >= 0) {
        close(a->extract_fd);
    }
    g_free(a->machine_type);
    g_ptr_array_unref(a->capabilities);
    g_hash_table_destroy(a->by_id);
    g_ptr_array_unref(a->sections);
    g_hash_table_destroy(a->block_by_name);
    g_ptr_array_unref(a->blocks);
    if (a->vmdesc) {
        json_node_unref(a->vmdesc);
    }
    g_ptr_array_unref(a->errors);
    g_ptr_array_unref(a->warnings);
    g_clear_error(&a->extract_error);
    g_free(a);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Analysis, analysis_free)

static const char *section_type_name(uint8_t type)
{
    switch (type) {
    case SEC_EOF:
        return "EOF";
    case SEC_START:
        return "START";
    case SEC_PART:
        return "PART";
    case SEC_END:
        return "END";
    case SEC_FULL:
        return "FULL";
    case SEC_SUBSECTION:
        return "SUBSECTION";
    case SEC_VMDESCRIPTION:
        return "VMDESCRIPTION";
    case SEC_CONFIGURATION:
        return "CONFIGURATION";
    case SEC_COMMAND:
        return "COMMAND";
    default:
        return "?";
    }
}

static const char *command_name(uint16_t cmd)
{
    static const char *const names[] = {
        "invalid",
        "open-return-path",
        "ping",
        "postcopy-advise",
        "postcopy-listen",
        "postcopy-run",
        "postcopy-ram-discard",
        "postcopy-resume",
        "packaged",
        "recv-bitmap",
        "enable-colo",
        "switchover-start",
    };
    return cmd < G_N_ELEMENTS(names) ? names[cmd] : "unknown";
}

/* ---- JSON helpers for reading the vmdesc ---- */

static JsonObject *j_obj(JsonObject *o, const char *name)
{
    JsonNode *n = o ? json_object_get_member(o, name) : NULL;
    return n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

static JsonArray *j_arr(JsonObject *o, const char *name)
{
    JsonNode *n = o ? json_object_get_member(o, name) : NULL;
    return n && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;
}

static const char *j_str(JsonObject *o, const char *name)
{
    JsonNode *n = o ? json_object_get_member(o, name) : NULL;
    if (!n || !JSON_NODE_HOLDS_VALUE(n) ||
        json_node_get_value_type(n) != G_TYPE_STRING) {
        return NULL;
    }
    return json_node_get_string(n);
}

static bool j_int(JsonObject *o, const char *name, int64_t *v)
{
    JsonNode *n = o ? json_object_get_member(o, name) : NULL;
    if (!n || !JSON_NODE_HOLDS_VALUE(n) ||
        json_node_get_value_type(n) != G_TYPE_INT64) {
        return false;
    }
    *v = json_node_get_int(n);
    return true;
}

static JsonObject *j_elem_obj(JsonArray *arr, guint i)
{
    JsonNode *n = json_array_get_element(arr, i);
    return JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

/* Sets a member, renaming it "name#2", "name#3"... if the name is taken. */
static void set_unique_member(JsonObject *o, const char *name, JsonNode *val)
{
    if (!json_object_has_member(o, name)) {
        json_object_set_member(o, name, val);
        return;
    }
    for (unsigned n = 2;; n++) {
        g_autofree char *alt = g_strdup_printf("%s#%u", name, n);
        if (!json_object_has_member(o, alt)) {
            json_object_set_member(o, alt, val);
            return;
        }
    }
}

static JsonNode *node_uint(uint64_t v)
{
    JsonNode *n = json_node_alloc();
    if (v <= INT64_MAX) {
        return json_node_init_int(n, v);
    }
    /* JSON numbers in json-glib are int64: keep big values exact. */
    g_autofree char *s = g_strdup_printf("0x%" PRIx64, v);
    return json_node_init_string(n, s);
}

static JsonNode *node_int(int64_t v)
{
    return json_node_init_int(json_node_alloc(), v);
}

/* ---- VMDESCRIPTION ---- */

/*
 * Finds the vmdesc the way QEMU's tools do: the last NUL byte in the final
 * 10 MiB, the first '{' after it, and a 0x06 type byte plus be32 length in
 * the five bytes before that brace.
 */
static void vmdesc_find(Analysis *a)
{
    Reader *r = &a->reader;
    uint64_t start =
        r->file_size > VMDESC_SCAN_BYTES ? r->file_size - VMDESC_SCAN_BYTES : 0;
    size_t len;
    const uint8_t *nul, *brace;
    uint64_t json_offset;
    uint8_t head[5];
    uint32_t json_len;
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonParser) parser = NULL;
    JsonArray *devices;

    start = MAX(start, a->stream_offset);
    len = r->file_size > start ? r->file_size - start : 0;
    g_autofree uint8_t *window = g_malloc(len ? len : 1);
    if (!reader_pread(r, window, len, start, "end of file", &err)) {
        add_error(a, "VMDESCRIPTION: %s", err->message);
        return;
    }
    nul = memrchr(window, 0, len);
    if (!nul) {
        add_error(a,
                  "VMDESCRIPTION missing: no NUL byte in the last %" PRIu64
                  " bytes of the file",
                  (uint64_t)len);
        return;
    }
    brace = memchr(nul, '{', window + len - nul);
    if (!brace) {
        add_error(a,
                  "VMDESCRIPTION missing: no '{' after the last NUL byte "
                  "(at 0x%" PRIx64 ")",
                  start + (nul - window));
        return;
    }
    json_offset = start + (brace - window);
    if (json_offset < a->stream_offset + 5 ||
        !reader_pread(r, head, 5, json_offset - 5, "VMDESCRIPTION header",
                      &err) ||
        head[0] != SEC_VMDESCRIPTION) {
        add_error(a,
                  "VMDESCRIPTION missing: the JSON-looking text at 0x%" PRIx64
                  " is not preceded by a 0x06 section byte",
                  json_offset);
        return;
    }
    json_len = load_be(head + 1, 4);
    if (json_len > r->file_size - json_offset) {
        add_error(a,
                  "VMDESCRIPTION at 0x%" PRIx64 " claims %" PRIu32
                  " bytes of JSON, but only %" PRIu64 " remain in the file",
                  json_offset - 5, json_len, r->file_size - json_offset);
        return;
    }
    a->vmdesc_offset = json_offset - 5;
    a->vmdesc_size = json_len;

    parser = json_parser_new();
    if (!json_parser_load_from_data(parser, (const char *)brace, json_len,
                                    &err)) {
        add_error(a, "VMDESCRIPTION at 0x%" PRIx64 " is not valid JSON: %s",
                  a->vmdesc_offset, err->message);
        return;
    }
    if (!JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
        add_error(a, "VMDESCRIPTION at 0x%" PRIx64 " is not a JSON object",
                  a->vmdesc_offset);
        return;
    }
    a->vmdesc = json_node_ref(json_parser_get_root(parser));
    devices = j_arr(json_node_get_object(a->vmdesc), "devices");
    if (!devices) {
        add_error(a, "VMDESCRIPTION has no \"devices\" list");
    } else {
        a->vmdesc_devices = json_array_get_length(devices);
    }
    if (json_offset + json_len != r->file_size) {
        add_warning(a, "%" PRIu64 " bytes follow the VMDESCRIPTION",
                    r->file_size - json_offset - json_len);
    }
}

static JsonObject *vmdesc_device(Analysis *a, const char *idstr,
                                 uint32_t instance_id)
{
    JsonArray *devices;

    if (!a->vmdesc) {
        return NULL;
    }
    devices = j_arr(json_node_get_object(a->vmdesc), "devices");
    for (guint i = 0; devices && i < json_array_get_length(devices); i++) {
        JsonObject *d = j_elem_obj(devices, i);
        const char *name = j_str(d, "name");
        int64_t inst;
        if (name && !strcmp(name, idstr) && j_int(d, "instance_id", &inst) &&
            inst == instance_id) {
            return d;
        }
    }
    return NULL;
}

/* ---- Device state decoding, driven by the vmdesc ---- */

static bool decode_fields(Analysis *a, JsonObject *desc, JsonObject *out,
                          int depth, GError **errp);

/* Integer types, also QEMU's "uint8 equal" and "int32 le" variants. */
static bool int_type_width(const char *type, size_t *bytes, bool *is_signed,
                           bool *little_endian)
{
    g_autofree char *base = g_strdup(type);
    char *space = strchr(base, ' ');
    unsigned bits;
    char *end;

    *little_endian = false;
    if (space) {
        if (!strcmp(space, " le")) {
            *little_endian = true;
        } else if (strcmp(space, " equal")) {
            return false;
        }
        *space = '\0';
    }
    *is_signed = g_str_has_prefix(base, "int");
    if (!*is_signed && !g_str_has_prefix(base, "uint")) {
        return false;
    }
    bits = strtoul(base + (*is_signed ? 3 : 4), &end, 10);
    if (*end || (bits != 8 && bits != 16 && bits != 32 && bits != 64)) {
        return false;
    }
    *bytes = bits / 8;
    return true;
}

/* Raw bytes as hex, at most HEX_DUMP_LIMIT of them shown. */
static JsonNode *decode_raw(Analysis *a, uint64_t size, const char *what,
                            GError **errp)
{
    Reader *r = &a->reader;
    uint64_t shown = MIN(size, HEX_DUMP_LIMIT);
    GString *hex;

    if (!check_range(r, r->pos, size, what, errp)) {
        return NULL;
    }
    hex = g_string_sized_new(shown * 2 + 4);
    for (uint64_t done = 0; done < shown;) {
        size_t n = MIN(shown - done, READER_CACHE_BYTES);
        const uint8_t *p = reader_take(r, n, what, errp);
        if (!p) {
            g_string_free(hex, true);
            return NULL;
        }
        for (size_t i = 0; i < n; i++) {
            g_string_append_printf(hex, "%02x", p[i]);
        }
        done += n;
    }
    if (size > shown) {
        g_string_append(hex, "...");
        r->pos += size - shown;
    }
    JsonNode *n = json_node_init_string(json_node_alloc(), hex->str);
    g_string_free(hex, true);
    return n;
}

/* "capability": size bytes of u8-length-prefixed names. */
static JsonNode *decode_capabilities(Analysis *a, uint64_t size, GError **errp)
{
    Reader *r = &a->reader;
    uint64_t end = r->pos + size;
    JsonArray *caps;

    if (!check_range(r, r->pos, size, "capability list", errp)) {
        return NULL;
    }
    caps = json_array_new();
    while (r->pos < end) {
        g_autofree char *name = reader_name(r, "capability name", errp);
        if (!name || r->pos > end) {
            if (name) {
                fail(errp,
                     "capability name at 0x%" PRIx64 " runs past its field",
                     r->pos);
            }
            json_array_unref(caps);
            return NULL;
        }
        json_array_add_string_element(caps, name);
    }
    return json_node_init_array(json_node_alloc(), caps);
}

/* One element of a field (an array field calls it array_len times). */
static JsonNode *decode_value(Analysis *a, JsonObject *f, const char *name,
                              const char *type, bool has_size, int64_t size,
                              int depth, GError **errp)
{
    Reader *r = &a->reader;
    JsonObject *nested = j_obj(f, "struct");
    size_t width;
    bool is_signed, le;

    if (!strcmp(type, "struct") || (!nested && j_arr(f, "fields"))) {
        /* "tmp" fields carry their description inline */
        JsonObject *sd = nested ? nested : f;
        JsonObject *obj = json_object_new();
        if (!strcmp(type, "struct") && !nested) {
            fail(errp, "struct field \"%s\" has no \"struct\" description",
                 name);
            json_object_unref(obj);
            return NULL;
        }
        if (!decode_fields(a, sd, obj, depth + 1, errp)) {
            json_object_unref(obj);
            return NULL;
        }
        return json_node_init_object(json_node_alloc(), obj);
    }
    if (!has_size) {
        fail(errp, "field \"%s\" has no size", name);
        return NULL;
    }
    if (!strcmp(type, "bool") && size == 1) {
        uint8_t v;
        if (!reader_u8(r, &v, name, errp)) {
            return NULL;
        }
        return json_node_init_boolean(json_node_alloc(), v != 0);
    }
    if (int_type_width(type, &width, &is_signed, &le) &&
        (int64_t)width == size) {
        const uint8_t *p = reader_take(r, width, name, errp);
        uint64_t v;
        if (!p) {
            return NULL;
        }
        v = le ? load_le(p, width) : load_be(p, width);
        if (is_signed) {
            unsigned shift = 64 - width * 8;
            return node_int((int64_t)(v << shift) >> shift);
        }
        return node_uint(v);
    }
    if (!strcmp(type, "capability")) {
        return decode_capabilities(a, size, errp);
    }
    /* buffer, unused_buffer, bitmap and types we do not know: raw bytes */
    return decode_raw(a, size, name, errp);
}

static bool decode_subsections(Analysis *a, JsonObject *desc, JsonObject *out,
                               int depth, GError **errp)
{
    Reader *r = &a->reader;
    JsonArray *subs = j_arr(desc, "subsections");
    JsonObject *decoded = NULL;

    /*
     * Like QEMU's loader: a 0x05 byte followed by the name of one of the
     * described subsections starts a subsection; anything else ends them.
     */
    while (subs) {
        const uint8_t *p = reader_peek(r, 2);
        JsonObject *sd = NULL;
        uint32_t version;

        if (!p || p[0] != SEC_SUBSECTION) {
            break;
        }
        uint8_t len = p[1];
        p = reader_peek(r, 2 + len);
        if (!p) {
            break;
        }
        g_autofree char *name = g_strndup((const char *)p + 2, len);
        for (guint i = 0; i < json_array_get_length(subs); i++) {
            JsonObject *s = j_elem_obj(subs, i);
            const char *vn = j_str(s, "vmsd_name");
            if (vn && !strcmp(vn, name)) {
                sd = s;
                break;
            }
        }
        if (!sd) {
            break;
        }
        r->pos += 2 + len;
        if (!reader_be32(r, &version, "subsection version", errp)) {
            return false;
        }
        JsonObject *obj = json_object_new();
        json_object_set_int_member(obj, "version_id", version);
        if (!decode_fields(a, sd, obj, depth + 1, errp)) {
            json_object_unref(obj);
            return false;
        }
        if (!decoded) {
            decoded = json_object_new();
            json_object_set_object_member(out, "subsections", decoded);
        }
        set_unique_member(decoded, name,
                          json_node_init_object(json_node_alloc(), obj));
    }
    return true;
}

/*
 * Decodes desc's fields (then its subsections) from the stream into out.
 * Whatever was decoded before a failure stays in out, so callers can show
 * it.
 */
static bool decode_fields(Analysis *a, JsonObject *desc, JsonObject *out,
                          int depth, GError **errp)
{
    JsonArray *fields = j_arr(desc, "fields");

    if (depth > MAX_DECODE_DEPTH) {
        fail(errp, "description nests deeper than %d levels", MAX_DECODE_DEPTH);
        return false;
    }
    for (guint i = 0; fields && i < json_array_get_length(fields); i++) {
        JsonObject *f = j_elem_obj(fields, i);
        const char *name = j_str(f, "name");
        const char *type = j_str(f, "type");
        int64_t size = 0, array_len = 1, index;
        bool has_size = j_int(f, "size", &size);
        bool is_array = j_int(f, "array_len", &array_len);
        g_autofree char *key = NULL;

        if (!name || !type) {
            fail(errp, "field %u of \"%s\" has no name or type", i,
                 j_str(desc, "vmsd_name") ?: "?");
            return false;
        }
        if (size < 0 || array_len < 0 || array_len > MAX_ARRAY_LEN) {
            fail(errp, "field \"%s\" has a bad size or array_len", name);
            return false;
        }
        key = j_int(f, "index", &index)
                  ? g_strdup_printf("%s[%" PRId64 "]", name, index)
                  : g_strdup(name);
        if (!is_array) {
            JsonNode *v =
                decode_value(a, f, name, type, has_size, size, depth, errp);
            if (!v) {
                return false;
            }
            set_unique_member(out, key, v);
            continue;
        }
        JsonArray *arr = json_array_new();
        set_unique_member(out, key,
                          json_node_init_array(json_node_alloc(), arr));
        for (int64_t k = 0; k < array_len; k++) {
            JsonNode *v =
                decode_value(a, f, name, type, has_size, size, depth, errp);
            if (!v) {
                return false;
            }
            json_array_add_element(arr, v);
        }
    }
    return decode_subsections(a, desc, out, depth, errp);
}

/* ---- Section walking ---- */

static bool is_section_type(uint8_t t)
{
    return t == SEC_EOF || t == SEC_START || t == SEC_PART || t == SEC_END ||
           t == SEC_FULL || t == SEC_COMMAND;
}

/*
 * When a device cannot be decoded, find its footer by its bytes: 0x7e, the
 * be32 section id, then something that can start the next section.
 */
static bool scan_for_footer(Analysis *a, SectionInfo *sec, GError **errp)
{
    Reader *r = &a->reader;
    uint64_t limit = a->vmdesc ? a->vmdesc_offset : r->file_size;
    uint8_t pattern[5] = {SEC_FOOTER, sec->section_id >> 24,
                          sec->section_id >> 16, sec->section_id >> 8,
                          sec->section_id};
    g_autofree uint8_t *buf = g_malloc(COPY_CHUNK_BYTES + 8);

    for (uint64_t off = r->pos; off < limit;) {
        size_t n = MIN(COPY_CHUNK_BYTES, limit - off);
        size_t avail = MIN(n + 6, r->file_size - off);
        const uint8_t *hit = buf;

        if (!reader_pread(r, buf, avail, off, "device section", errp)) {
            return false;
        }
        while ((hit = memmem(hit, buf + avail - hit, pattern, 5))) {
            size_t at = hit - buf;
            if (at >= n) {
                break;
            }
            /* a footer that ends the file lets the walk say EOF is missing */
            if ((at + 5 < avail && is_section_type(buf[at + 5])) ||
                off + at + 5 == r->file_size) {
                r->pos = off + at;
                return true;
            }
            hit++;
        }
        off += n;
    }
    fail(errp,
         "Missing section footer for %s: section id %u could not be "
         "decoded and no footer for it follows",
         sec->idstr, sec->section_id);
    return false;
}

static bool parse_device_section(Analysis *a, SectionInfo *sec, GError **errp)
{
    Reader *r = &a->reader;
    JsonObject *desc = vmdesc_device(a, sec->idstr, sec->instance_id);
    g_autoptr(GError) derr = NULL;
    uint64_t body = r->pos;

    if (!a->vmdesc) {
        fail(&derr, "no VMDESCRIPTION");
    } else if (!desc) {
        fail(&derr, "no description in the VMDESCRIPTION");
    } else {
        int64_t version;
        const uint8_t *next;

        sec->vmsd_name = g_strdup(j_str(desc, "vmsd_name"));
        if (j_int(desc, "version", &version) && version != sec->version_id) {
            add_warning(a,
                        "section \"%s\": version %u in the stream, %" PRId64
                        " in the VMDESCRIPTION",
                        sec->idstr, sec->version_id, version);
        }
        sec->fields = json_object_new();
        if (decode_fields(a, desc, sec->fields, 0, &derr)) {
            next = reader_peek(r, 1);
            if (next && *next == SEC_FOOTER) {
                return true;
            }
            if (next) {
                fail(&derr,
                     "the described fields end at 0x%" PRIx64
                     ", where 0x%02x follows instead of the footer",
                     r->pos, *next);
            } else {
                fail(&derr, "the described fields run to the end of the file");
            }
        }
    }
    sec->decode_error = g_strdup(derr->message);
    /* without any vmdesc, its absence is the one error worth reporting */
    if (a->vmdesc) {
        add_warning(a,
                    "section \"%s\" instance %u at 0x%" PRIx64
                    " could not be decoded: %s",
                    sec->idstr, sec->instance_id, sec->offset, derr->message);
    }
    r->pos = body;
    return scan_for_footer(a, sec, errp);
}

static RamBlockInfo *find_block(Analysis *a, const char *name)
{
    return g_hash_table_lookup(a->block_by_name, name);
}

/* Counts bitmap bits and checks they point at pages inside the block/file. */
static void scan_bitmap(Analysis *a, RamBlockInfo *b)
{
    Reader *r = &a->reader;
    g_autoptr(GError) err = NULL;
    /* pages from this index on do not lie wholly inside the file */
    uint64_t eof_page = 0;
    uint64_t beyond_pages = 0, beyond_eof = 0;
    uint64_t first_beyond_pages = 0, first_beyond_eof = 0;

    if (b->pages_offset < r->file_size) {
        eof_page = (r->file_size - b->pages_offset) / PAGE_SIZE_BYTES;
    }
    for (uint64_t done = 0; done < b->bitmap_size;) {
        size_t n = MIN(b->bitmap_size - done, READER_CACHE_BYTES);
        const uint8_t *p =
            reader_view(r, b->bitmap_offset + done, n, "dirty bitmap", &err);
        if (!p) {
            add_error(a, "block \"%s\": Error reading dirty bitmap: %s",
                      b->name, err->message);
            return;
        }
        for (size_t i = 0; i < n; i++) {
            uint64_t page0 = (done + i) * 8;
            if (!p[i]) {
                continue;
            }
            b->bits_set += __builtin_popcount(p[i]);
            if (page0 + 8 <= MIN(b->pages, eof_page)) {
                continue;
            }
            for (unsigned bit = 0; bit < 8; bit++) {
                uint64_t page = page0 + bit;
                if (!(p[i] & (1u << bit))) {
                    continue;
                }
                if (page >= b->pages) {
                    if (!beyond_pages++) {
                        first_beyond_pages = page;
                    }
                } else if (page >= eof_page) {
                    if (!beyond_eof++) {
                        first_beyond_eof = page;
                    }
                }
            }
        }
        done += n;
    }
    b->bitmap_scanned = true;
    if (beyond_pages) {
        add_error(a,
                  "block \"%s\": %" PRIu64 " bitmap bits beyond the "
                  "block's %" PRIu64 " pages are set (first: bit %" PRIu64
                  "): page outside of ramblock %s range",
                  b->name, beyond_pages, b->pages, first_beyond_pages, b->name);
    }
    if (beyond_eof) {
        add_error(a,
                  "block \"%s\": %" PRIu64 " pages set in the bitmap lie "
                  "beyond the end of the file (first: page %" PRIu64
                  " at 0x%" PRIx64 ", file size 0x%" PRIx64 ")",
                  b->name, beyond_eof, first_beyond_eof,
                  b->pages_offset + first_beyond_eof * PAGE_SIZE_BYTES,
                  r->file_size);
    }
}

static bool parse_mapped_ram_header(Analysis *a, RamBlockInfo *b, GError **errp)
{
    Reader *r = &a->reader;
    uint64_t header_end, expected, next, bitmap_end;
    const uint8_t *p;

    b->header_offset = r->pos;
    if (!range_in_file(r, r->pos, MAPPED_RAM_HEADER_BYTES)) {
        fail(errp,
             "block \"%s\": Could not read whole mapped-ram migration "
             "header (expected %d, got %" PRIu64 " bytes)",
             b->name, MAPPED_RAM_HEADER_BYTES,
             r->pos < r->file_size ? r->file_size - r->pos : 0);
        return false;
    }
    p = reader_take(r, MAPPED_RAM_HEADER_BYTES, "MappedRamHeader", errp);
    if (!p) {
        return false;
    }
    b->has_header = true;
    b->mr_version = load_be(p, 4);
    b->mr_page_size = load_be(p + 4, 8);
    b->bitmap_offset = load_be(p + 12, 8);
    b->pages_offset = load_be(p + 20, 8);
    header_end = r->pos;
    b->bitmap_size = DIV_ROUND_UP(b->pages, 64) * 8;

    if (b->mr_version > MAPPED_RAM_MAX_VERSION) {
        add_error(a,
                  "block \"%s\": Migration mapped-ram capability version "
                  "not supported (expected <= %d, got %" PRIu32 ")",
                  b->name, MAPPED_RAM_MAX_VERSION, b->mr_version);
    }
    if (b->mr_page_size != PAGE_SIZE_BYTES) {
        add_error(a,
                  "block \"%s\": MappedRamHeader page_size is %" PRIu64
                  ", expected %u",
                  b->name, b->mr_page_size, PAGE_SIZE_BYTES);
    }
    if (b->bitmap_offset != header_end) {
        add_error(a,
                  "block \"%s\": bitmap_offset 0x%" PRIx64 " is not the "
                  "end of its MappedRamHeader (0x%" PRIx64 ")",
                  b->name, b->bitmap_offset, header_end);
    }
    if (!QEMU_IS_ALIGNED(b->pages_offset, PAGE_SIZE_BYTES)) {
        add_error(a,
                  "block \"%s\": Error reading ramblock %s pages, region "
                  "has bad alignment (pages_offset 0x%" PRIx64 ")",
                  b->name, b->name, b->pages_offset);
    }
    if (__builtin_add_overflow(b->bitmap_offset, b->bitmap_size, &bitmap_end) ||
        bitmap_end > UINT64_MAX - MAPPED_RAM_ALIGN_BYTES) {
        add_error(a,
                  "block \"%s\": bitmap_offset 0x%" PRIx64 " is out of range",
                  b->name, b->bitmap_offset);
    } else {
        expected = QEMU_ALIGN_UP(bitmap_end, MAPPED_RAM_ALIGN_BYTES);
        if (b->pages_offset != expected) {
            add_error(a,
                      "block \"%s\": pages_offset 0x%" PRIx64 " is not "
                      "round_up(bitmap_offset + bitmap_size, 1 MiB) = "
                      "0x%" PRIx64,
                      b->name, b->pages_offset, expected);
        }
    }
    if (!range_in_file(r, b->bitmap_offset, b->bitmap_size)) {
        add_error(a,
                  "block \"%s\": Error reading dirty bitmap: %" PRIu64
                  " bytes at 0x%" PRIx64 " lie beyond the end of the file "
                  "(0x%" PRIx64 ")",
                  b->name, b->bitmap_size, b->bitmap_offset, r->file_size);
    } else {
        scan_bitmap(a, b);
    }

    /* The sequential stream goes on after the block's page area. */
    if (__builtin_add_overflow(b->pages_offset, b->used_length, &next) ||
        next <= header_end) {
        fail(errp,
             "block \"%s\": the stream cannot continue at pages_offset "
             "0x%" PRIx64 " + used_length 0x%" PRIx64,
             b->name, b->pages_offset, b->used_length);
        return false;
    }
    r->pos = next;
    return true;
}

static bool parse_block_list(Analysis *a, SectionInfo *sec, uint64_t total,
                             GError **errp)
{
    Reader *r = &a->reader;
    uint64_t left = total;

    sec->has_mem_size = true;
    sec->mem_size = total;
    while (left > 0) {
        RamBlockInfo *b = g_new0(RamBlockInfo, 1);
        b->entry_offset = r->pos;
        b->name = reader_name(r, "RAM block list (block name)", errp);
        if (!b->name) {
            ram_block_free(b);
            return false;
        }
        if (!reader_be64(r, &b->used_length, "RAM block list (used_length)",
                         errp)) {
            ram_block_free(b);
            return false;
        }
        if (find_block(a, b->name)) {
            fail(errp, "RAM block \"%s\" appears twice in the block list",
                 b->name);
            ram_block_free(b);
            return false;
        }
        g_ptr_array_add(a->blocks, b);
        g_hash_table_insert(a->block_by_name, b->name, b);
        b->pages = b->used_length / PAGE_SIZE_BYTES;
        if (b->used_length > left) {
            fail(errp,
                 "RAM block list inconsistent with MEM_SIZE 0x%" PRIx64
                 ": block \"%s\" used_length 0x%" PRIx64
                 " exceeds the 0x%" PRIx64 " bytes left",
                 total, b->name, b->used_length, left);
            return false;
        }
        left -= b->used_length;
        if (!QEMU_IS_ALIGNED(b->used_length, PAGE_SIZE_BYTES)) {
            add_warning(a,
                        "block \"%s\": used_length 0x%" PRIx64
                        " is not a multiple of the page size",
                        b->name, b->used_length);
        }
        if (a->extract_name && !strcmp(a->extract_name, b->name) &&
            !a->mapped_ram) {
            a->extract_block = b;
            if (ftruncate(a->extract_fd, b->used_length) < 0) {
                fail(&a->extract_error, "cannot size the output file: %s",
                     g_strerror(errno));
            }
        }
        if (a->mapped_ram && !parse_mapped_ram_header(a, b, errp)) {
            return false;
        }
    }
    return true;
}

/* Punches the page out of the output (a hole reads as zeros). */
static void extract_zero_page(Analysis *a, uint64_t offset)
{
    static const uint8_t zeros[PAGE_SIZE_BYTES];

    if (a->extract_error) {
        return;
    }
    if (fallocate(a->extract_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  offset, PAGE_SIZE_BYTES) == 0) {
        return;
    }
    pwrite_exact(a->extract_fd, zeros, PAGE_SIZE_BYTES, offset,
                 &a->extract_error);
}

static void legacy_page(Analysis *a, SectionInfo *sec, RamBlockInfo *b,
                        uint64_t addr, const uint8_t *data)
{
    if (addr >= b->used_length || b->used_length - addr < PAGE_SIZE_BYTES) {
        add_error(a,
                  "page outside of ramblock %s range (offset 0x%" PRIx64
                  ", used_length 0x%" PRIx64 ")",
                  b->name, addr, b->used_length);
        return;
    }
    if (data) {
        sec->pages++;
        b->legacy_pages++;
    } else {
        sec->zero_pages++;
        b->legacy_zero_pages++;
    }
    if (b != a->extract_block) {
        return;
    }
    /* last write wins: a zero page must clear what an earlier one wrote */
    if (!data || buffer_is_zero(data, PAGE_SIZE_BYTES)) {
        extract_zero_page(a, addr);
    } else if (!a->extract_error) {
        pwrite_exact(a->extract_fd, data, PAGE_SIZE_BYTES, addr,
                     &a->extract_error);
    }
}

/* The records of a ram section, up to and including its EOS. */
static bool parse_ram_records(Analysis *a, SectionInfo *sec, GError **errp)
{
    Reader *r = &a->reader;
    bool flagged_mapped = false;

    for (;;) {
        uint64_t rec_offset = r->pos, v, addr;
        unsigned flags, kind;

        if (!reader_be64(r, &v, "RAM record", errp)) {
            return false;
        }
        flags = v & RAM_FLAGS_MASK;
        addr = v & ~(uint64_t)RAM_FLAGS_MASK;
        kind = flags & ~RAM_FLAG_CONTINUE;

        switch (kind) {
        case RAM_FLAG_EOS:
            sec->eos++;
            return true;
        case RAM_FLAG_MEM_SIZE:
            if (sec->type != SEC_START || sec->has_mem_size) {
                fail(errp,
                     "MEM_SIZE record at 0x%" PRIx64
                     " outside the start of the ram START section",
                     rec_offset);
                return false;
            }
            if (!parse_block_list(a, sec, addr, errp)) {
                return false;
            }
            continue;
        case RAM_FLAG_MULTIFD_FLUSH:
            sec->multifd_flushes++;
            if (a->mapped_ram && !flagged_mapped) {
                flagged_mapped = true;
                add_error(a,
                          "Unexpected RAM flags: %u (MULTIFD_FLUSH record "
                          "at 0x%" PRIx64 " in a mapped-ram stream)",
                          flags, rec_offset);
            }
            continue;
        case RAM_FLAG_ZERO:
        case RAM_FLAG_PAGE:
            break;
        case RAM_FLAG_XBZRLE:
        case RAM_FLAG_HOOK:
            fail(errp,
                 "Unexpected RAM flags: %u (record at 0x%" PRIx64
                 "; XBZRLE and HOOK are never written)",
                 flags, rec_offset);
            return false;
        default:
            fail(errp,
                 "Unknown combination of migration flags: 0x%x "
                 "(record at 0x%" PRIx64 ")",
                 flags, rec_offset);
            return false;
        }

        if (a->mapped_ram && !flagged_mapped) {
            flagged_mapped = true;
            add_error(a,
                      "Unexpected RAM flags: %u (%s record at 0x%" PRIx64
                      " in a mapped-ram stream)",
                      flags, kind == RAM_FLAG_PAGE ? "PAGE" : "ZERO",
                      rec_offset);
        }
        if (!(flags & RAM_FLAG_CONTINUE)) {
            g_autofree char *name = reader_name(r, "RAM record block", errp);
            if (!name) {
                return false;
            }
            a->last_block = find_block(a, name);
            if (!a->last_block) {
                add_error(a,
                          "Unknown ramblock \"%s\", cannot accept "
                          "migration (record at 0x%" PRIx64 ")",
                          name, rec_offset);
            }
        } else if (!a->last_block) {
            add_error(a,
                      "RAM record at 0x%" PRIx64 " has CONTINUE but no "
                      "known block precedes it",
                      rec_offset);
        }
        if (kind == RAM_FLAG_ZERO) {
            uint8_t fill;
            if (!reader_u8(r, &fill, "zero page value", errp)) {
                return false;
            }
            if (fill) {
                add_error(a,
                          "Found a zero page with value %d (record at "
                          "0x%" PRIx64 ")",
                          fill, rec_offset);
            }
            if (a->last_block) {
                legacy_page(a, sec, a->last_block, addr, NULL);
            }
        } else {
            const uint8_t *data =
                reader_take(r, PAGE_SIZE_BYTES, "RAM page", errp);
            if (!data) {
                return false;
            }
            if (a->last_block) {
                legacy_page(a, sec, a->last_block, addr, data);
            }
        }
    }
}

static bool parse_configuration(Analysis *a, GError **errp)
{
    Reader *r = &a->reader;
    uint32_t len;
    const uint8_t *p;

    a->has_config = true;
    a->config_offset = r->pos - 1;
    if (!reader_be32(r, &len, "machine type length", errp)) {
        return false;
    }
    if (len > MAX_MACHINE_NAME) {
        fail(errp,
             "configuration: machine type length %" PRIu32 " is implausible",
             len);
        return false;
    }
    p = reader_take(r, len, "machine type", errp);
    if (!p) {
        return false;
    }
    a->machine_type = g_strndup((const char *)p, len);

    for (;;) {
        uint32_t version, count;

        p = reader_peek(r, 1);
        if (!p || *p != SEC_SUBSECTION) {
            break;
        }
        r->pos++;
        g_autofree char *name =
            reader_name(r, "configuration subsection", errp);
        if (!name) {
            return false;
        }
        if (strcmp(name, "configuration/capabilities")) {
            fail(errp, "configuration: unknown subsection \"%s\"", name);
            return false;
        }
        if (!reader_be32(r, &version, "capabilities version", errp) ||
            !reader_be32(r, &count, "capability count", errp)) {
            return false;
        }
        if (version > 1) {
            add_error(a,
                      "configuration/capabilities version %" PRIu32
                      " is not supported",
                      version);
        }
        /* each capability takes at least one byte */
        if (!check_range(r, r->pos, count, "capability list", errp)) {
            return false;
        }
        for (uint32_t i = 0; i < count; i++) {
            char *cap = reader_name(r, "capability name", errp);
            if (!cap) {
                return false;
            }
            g_ptr_array_add(a->capabilities, cap);
            if (!strcmp(cap, "mapped-ram")) {
                a->mapped_ram = true;
            } else {
                add_error(a, "Received unknown capability %s", cap);
            }
        }
    }
    a->config_length = r->pos - a->config_offset;
    return true;
}

static bool parse_footer(Analysis *a, SectionInfo *sec, GError **errp)
{
    Reader *r = &a->reader;
    uint8_t type;
    uint32_t id;
    uint64_t at = r->pos;

    if (!reader_u8(r, &type, "section footer", errp)) {
        return false;
    }
    if (type != SEC_FOOTER) {
        fail(errp,
             "Missing section footer for %s (0x%02x at 0x%" PRIx64
             " instead of 0x7e)",
             sec->idstr, type, at);
        return false;
    }
    if (!reader_be32(r, &id, "section footer", errp)) {
        return false;
    }
    if (id != sec->section_id) {
        add_error(a,
                  "Mismatched section id in footer for %s - read 0x%x "
                  "expected 0x%x (footer at 0x%" PRIx64 ")",
                  sec->idstr, id, sec->section_id, at);
    }
    sec->length = r->pos - sec->offset;
    return true;
}

static bool parse_section(Analysis *a, SectionInfo *sec, GError **errp)
{
    Reader *r = &a->reader;

    if (!reader_be32(r, &sec->section_id, "section header", errp)) {
        return false;
    }
    if (sec->type == SEC_START || sec->type == SEC_FULL) {
        sec->idstr = reader_name(r, "section idstr", errp);
        if (!sec->idstr ||
            !reader_be32(r, &sec->instance_id, "section header", errp) ||
            !reader_be32(r, &sec->version_id, "section header", errp)) {
            return false;
        }
        if (g_hash_table_contains(a->by_id,
                                  GUINT_TO_POINTER(sec->section_id))) {
            add_error(
                a, "section id %u of \"%s\" at 0x%" PRIx64 " is already in use",
                sec->section_id, sec->idstr, sec->offset);
        } else {
            g_hash_table_insert(a->by_id, GUINT_TO_POINTER(sec->section_id),
                                sec);
        }
    } else {
        SectionInfo *start =
            g_hash_table_lookup(a->by_id, GUINT_TO_POINTER(sec->section_id));
        if (!start || start->type != SEC_START) {
            fail(errp,
                 "%s section at 0x%" PRIx64 " has section id %u, "
                 "which no START section opened",
                 section_type_name(sec->type), sec->offset, sec->section_id);
            return false;
        }
        sec->idstr = g_strdup(start->idstr);
        sec->instance_id = start->instance_id;
        sec->version_id = start->version_id;
    }

    if (sec->type == SEC_FULL) {
        if (!parse_device_section(a, sec, errp)) {
            return false;
        }
    } else if (!strcmp(sec->idstr, "ram")) {
        sec->is_ram = true;
        if (!parse_ram_records(a, sec, errp)) {
            return false;
        }
    } else {
        fail(errp,
             "cannot parse the iterative section \"%s\" at 0x%" PRIx64
             ": only \"ram\" is known",
             sec->idstr, sec->offset);
        return false;
    }
    return parse_footer(a, sec, errp);
}

static bool parse_command(Analysis *a, SectionInfo *sec, GError **errp)
{
    Reader *r = &a->reader;

    if (!reader_be16(r, &sec->command, "command", errp) ||
        !reader_be16(r, &sec->command_len, "command length", errp) ||
        !reader_skip(r, sec->command_len, "command payload", errp)) {
        return false;
    }
    sec->length = r->pos - sec->offset;
    return true;
}

/* What follows EOF: the VMDESCRIPTION, which the scan must have found. */
static void parse_after_eof(Analysis *a)
{
    Reader *r = &a->reader;
    const uint8_t *p = reader_peek(r, 1);

    if (!p) {
        add_error(a,
                  "VMDESCRIPTION missing: the file ends right after EOF "
                  "(at 0x%" PRIx64 ")",
                  a->eof_offset);
        return;
    }
    if (*p != SEC_VMDESCRIPTION) {
        add_error(a, "VMDESCRIPTION missing: 0x%02x follows EOF at 0x%" PRIx64,
                  *p, a->eof_offset);
        return;
    }
    if (a->vmdesc && a->vmdesc_offset != r->pos) {
        add_error(a,
                  "the VMDESCRIPTION after EOF (at 0x%" PRIx64 ") is not "
                  "the one found at the end of the file (at 0x%" PRIx64 ")",
                  r->pos, a->vmdesc_offset);
    }
}

static bool walk_stream(Analysis *a, GError **errp)
{
    Reader *r = &a->reader;
    uint32_t magic;
    bool first = true;

    r->pos = a->stream_offset;
    if (!reader_be32(r, &magic, "file header", errp)) {
        return false;
    }
    if (magic != QEVM_MAGIC) {
        fail(errp,
             "Not a migration stream (magic 0x%08" PRIx32 " at 0x%" PRIx64
             ", expected 0x%08x \"QEVM\")",
             magic, a->stream_offset, QEVM_MAGIC);
        return false;
    }
    if (!reader_be32(r, &a->version, "file header", errp)) {
        return false;
    }
    if (a->version == 2) {
        fail(errp, "SaveVM v2 format is obsolete and don't work anymore");
        return false;
    }
    if (a->version != STREAM_VERSION) {
        fail(errp, "Unsupported migration stream version %" PRIu32, a->version);
        return false;
    }

    for (;;) {
        uint64_t offset = r->pos;
        uint8_t type;

        if (offset == r->file_size) {
            fail(errp,
                 "EOF missing: the stream ends at 0x%" PRIx64
                 " without an EOF section",
                 offset);
            return false;
        }
        if (!reader_u8(r, &type, "section type", errp)) {
            return false;
        }
        if (first && type != SEC_CONFIGURATION) {
            add_error(a, "Configuration section missing");
        }
        first = false;
        if (type == SEC_EOF) {
            a->has_eof = true;
            a->eof_offset = offset;
            parse_after_eof(a);
            return true;
        }
        if (type == SEC_CONFIGURATION) {
            if (a->has_config) {
                fail(errp, "a second CONFIGURATION section at 0x%" PRIx64,
                     offset);
                return false;
            }
            if (offset != a->stream_offset + 8) {
                add_error(a,
                          "the CONFIGURATION section at 0x%" PRIx64
                          " does not follow the header",
                          offset);
            }
            if (!parse_configuration(a, errp)) {
                return false;
            }
            continue;
        }
        if (type == SEC_VMDESCRIPTION) {
            fail(errp,
                 "EOF missing: VMDESCRIPTION at 0x%" PRIx64
                 " before any EOF section",
                 offset);
            return false;
        }
        if (type != SEC_START && type != SEC_PART && type != SEC_END &&
            type != SEC_FULL && type != SEC_COMMAND) {
            fail(errp, "Unknown section type 0x%02x at 0x%" PRIx64, type,
                 offset);
            return false;
        }

        SectionInfo *sec = g_new0(SectionInfo, 1);
        sec->type = type;
        sec->offset = offset;
        g_ptr_array_add(a->sections, sec);
        if (type == SEC_COMMAND ? !parse_command(a, sec, errp)
                                : !parse_section(a, sec, errp)) {
            return false;
        }
    }
}

static bool analysis_open(Analysis *a, const char *path, uint64_t offset,
                          GError **errp)
{
    struct stat st;

    a->path = path;
    a->stream_offset = offset;
    a->reader.fd = open(path, O_RDONLY | O_CLOEXEC);
    if (a->reader.fd < 0) {
        fail(errp, "cannot open %s: %s", path, g_strerror(errno));
        return false;
    }
    if (fstat(a->reader.fd, &st) < 0) {
        fail(errp, "cannot stat %s: %s", path, g_strerror(errno));
        return false;
    }
    a->reader.file_size = st.st_size;
    if (offset > a->reader.file_size) {
        fail(errp,
             "offset 0x%" PRIx64 " is beyond the end of %s (0x%" PRIx64
             " bytes)",
             offset, path, a->reader.file_size);
        return false;
    }
    return true;
}

/* Walks the whole file; problems land in a->errors/a->warnings. */
static void analysis_run(Analysis *a)
{
    g_autoptr(GError) err = NULL;

    vmdesc_find(a);
    if (walk_stream(a, &err)) {
        a->walk_complete = true;
    } else {
        add_error(a, "%s", err->message);
    }
}

/* ---- --extract ---- */

/* Copies pages [first, first + count) of b, leaving zero pages as holes. */
static bool copy_page_run(Analysis *a, RamBlockInfo *b, uint64_t first,
                          uint64_t count, uint8_t *buf, int out, GError **errp)
{
    const size_t chunk_pages = COPY_CHUNK_BYTES / PAGE_SIZE_BYTES;

    while (count) {
        uint64_t n = MIN(count, chunk_pages);
        uint64_t src = b->pages_offset + first * PAGE_SIZE_BYTES;
        uint64_t run_start = 0, run_len = 0;

        if (!reader_pread(&a->reader, buf, n * PAGE_SIZE_BYTES, src,
                          "RAM pages", errp)) {
            g_prefix_error(errp, "block \"%s\" page %" PRIu64 ": ", b->name,
                           first);
            return false;
        }
        /* write each run of non-zero pages with one pwrite */
        for (uint64_t i = 0; i <= n; i++) {
            bool data = i < n && !buffer_is_zero(buf + i * PAGE_SIZE_BYTES,
                                                 PAGE_SIZE_BYTES);
            if (data) {
                if (!run_len) {
                    run_start = i;
                }
                run_len++;
                continue;
            }
            if (run_len &&
                !pwrite_exact(out, buf + run_start * PAGE_SIZE_BYTES,
                              run_len * PAGE_SIZE_BYTES,
                              (first + run_start) * PAGE_SIZE_BYTES, errp)) {
                return false;
            }
            run_len = 0;
        }
        first += n;
        count -= n;
    }
    return true;
}

static bool extract_mapped_ram(Analysis *a, RamBlockInfo *b, int out,
                               GError **errp)
{
    g_autofree uint8_t *buf = g_malloc(COPY_CHUNK_BYTES);
    uint8_t bitmap[READER_CACHE_BYTES];
    uint64_t run_start = 0, run_len = 0;

    if (!b->has_header) {
        fail(errp, "block \"%s\" has no MappedRamHeader", b->name);
        return false;
    }
    if (ftruncate(out, b->used_length) < 0) {
        fail(errp, "cannot size the output file: %s", g_strerror(errno));
        return false;
    }
    for (uint64_t done = 0; done < b->bitmap_size;) {
        size_t n = MIN(b->bitmap_size - done, sizeof(bitmap));
        if (!reader_pread(&a->reader, bitmap, n, b->bitmap_offset + done,
                          "dirty bitmap", errp)) {
            g_prefix_error(
                errp, "block \"%s\": Error reading dirty bitmap: ", b->name);
            return false;
        }
        for (uint64_t i = 0; i < n * 8; i++) {
            uint64_t page = done * 8 + i;
            if (page >= b->pages) {
                break;
            }
            if (i % 8 == 0 && bitmap[i / 8] == 0xff && page + 8 <= b->pages) {
                /* whole byte set: extend the run in one step */
                run_start = run_len ? run_start : page;
                run_len += 8;
                i += 7;
                continue;
            }
            if (bitmap[i / 8] & (1u << (i % 8))) {
                if (!run_len) {
                    run_start = page;
                }
                run_len++;
            } else if (run_len) {
                if (!copy_page_run(a, b, run_start, run_len, buf, out, errp)) {
                    return false;
                }
                run_len = 0;
            }
        }
        done += n;
    }
    return !run_len || copy_page_run(a, b, run_start, run_len, buf, out, errp);
}

/* ---- Output: JSON ---- */

static JsonObject *block_json(const Analysis *a, const RamBlockInfo *b)
{
    JsonObject *o = json_object_new();

    json_object_set_string_member(o, "name", b->name);
    json_object_set_int_member(o, "offset", b->entry_offset);
    json_object_set_member(o, "used_length", node_uint(b->used_length));
    json_object_set_member(o, "pages", node_uint(b->pages));
    if (b->has_header) {
        JsonObject *h = json_object_new();
        json_object_set_int_member(h, "offset", b->header_offset);
        json_object_set_int_member(h, "version", b->mr_version);
        json_object_set_member(h, "page_size", node_uint(b->mr_page_size));
        json_object_set_member(h, "bitmap_offset", node_uint(b->bitmap_offset));
        json_object_set_member(h, "bitmap_size", node_uint(b->bitmap_size));
        json_object_set_member(h, "pages_offset", node_uint(b->pages_offset));
        if (b->bitmap_scanned) {
            json_object_set_member(h, "bitmap_set", node_uint(b->bits_set));
        } else {
            json_object_set_null_member(h, "bitmap_set");
        }
        json_object_set_object_member(o, "mapped_ram", h);
    }
    if (!a->mapped_ram) {
        json_object_set_member(o, "legacy_pages", node_uint(b->legacy_pages));
        json_object_set_member(o, "legacy_zero_pages",
                               node_uint(b->legacy_zero_pages));
    }
    return o;
}

static JsonObject *section_json(const Analysis *a, const SectionInfo *s)
{
    JsonObject *o = json_object_new();

    json_object_set_string_member(o, "type", section_type_name(s->type));
    json_object_set_int_member(o, "offset", s->offset);
    json_object_set_int_member(o, "length", s->length);
    if (s->type == SEC_COMMAND) {
        json_object_set_int_member(o, "command", s->command);
        json_object_set_string_member(o, "command_name",
                                      command_name(s->command));
        json_object_set_int_member(o, "payload_length", s->command_len);
        return o;
    }
    json_object_set_int_member(o, "section_id", s->section_id);
    json_object_set_string_member(o, "idstr", s->idstr);
    json_object_set_int_member(o, "instance_id", s->instance_id);
    json_object_set_int_member(o, "version_id", s->version_id);
    if (s->is_ram) {
        JsonObject *ram = json_object_new();
        if (s->has_mem_size) {
            JsonArray *blocks = json_array_new();
            json_object_set_member(ram, "mem_size", node_uint(s->mem_size));
            for (guint i = 0; i < a->blocks->len; i++) {
                json_array_add_object_element(
                    blocks, block_json(a, g_ptr_array_index(a->blocks, i)));
            }
            json_object_set_array_member(ram, "blocks", blocks);
        }
        json_object_set_member(ram, "pages", node_uint(s->pages));
        json_object_set_member(ram, "zero_pages", node_uint(s->zero_pages));
        json_object_set_member(ram, "multifd_flushes",
                               node_uint(s->multifd_flushes));
        json_object_set_member(ram, "eos", node_uint(s->eos));
        json_object_set_object_member(o, "ram", ram);
    }
    if (s->vmsd_name) {
        json_object_set_string_member(o, "vmsd_name", s->vmsd_name);
    }
    if (s->fields) {
        json_object_set_object_member(o, "fields", json_object_ref(s->fields));
    }
    if (s->decode_error) {
        json_object_set_string_member(o, "decode_error", s->decode_error);
    }
    return o;
}

static JsonArray *strings_json(GPtrArray *list)
{
    JsonArray *arr = json_array_new();
    for (guint i = 0; i < list->len; i++) {
        json_array_add_string_element(arr, g_ptr_array_index(list, i));
    }
    return arr;
}

static char *analysis_to_json(const Analysis *a)
{
    JsonObject *root = json_object_new();
    JsonObject *o;
    JsonArray *secs = json_array_new();
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autoptr(JsonNode) node = NULL;
    unsigned devices = 0;

    json_object_set_string_member(root, "file", a->path);
    json_object_set_int_member(root, "file_size", a->reader.file_size);
    json_object_set_int_member(root, "stream_offset", a->stream_offset);
    if (a->version) {
        o = json_object_new();
        json_object_set_string_member(o, "magic", "QEVM");
        json_object_set_int_member(o, "version", a->version);
        json_object_set_object_member(root, "header", o);
    }
    if (a->has_config) {
        o = json_object_new();
        json_object_set_int_member(o, "offset", a->config_offset);
        json_object_set_int_member(o, "length", a->config_length);
        if (a->machine_type) {
            json_object_set_string_member(o, "machine_type", a->machine_type);
        }
        json_object_set_array_member(o, "capabilities",
                                     strings_json(a->capabilities));
        json_object_set_object_member(root, "configuration", o);
    }
    json_object_set_boolean_member(root, "mapped_ram", a->mapped_ram);
    for (guint i = 0; i < a->sections->len; i++) {
        const SectionInfo *s = g_ptr_array_index(a->sections, i);
        devices += s->type == SEC_FULL;
        json_array_add_object_element(secs, section_json(a, s));
    }
    json_object_set_array_member(root, "sections", secs);
    json_object_set_int_member(root, "device_sections", devices);
    if (a->has_eof) {
        o = json_object_new();
        json_object_set_int_member(o, "offset", a->eof_offset);
        json_object_set_object_member(root, "eof", o);
    } else {
        json_object_set_null_member(root, "eof");
    }
    if (a->vmdesc) {
        o = json_object_new();
        json_object_set_int_member(o, "offset", a->vmdesc_offset);
        json_object_set_int_member(o, "size", a->vmdesc_size);
        json_object_set_int_member(o, "devices", a->vmdesc_devices);
        json_object_set_object_member(root, "vmdesc", o);
    } else {
        json_object_set_null_member(root, "vmdesc");
    }
    json_object_set_boolean_member(root, "complete", a->walk_complete);
    json_object_set_array_member(root, "errors", strings_json(a->errors));
    json_object_set_array_member(root, "warnings", strings_json(a->warnings));

    node = json_node_init_object(json_node_alloc(), root);
    json_object_unref(root);
    json_generator_set_root(gen, node);
    json_generator_set_pretty(gen, true);
    return json_generator_to_data(gen, NULL);
}

/* ---- Output: text ---- */

static void print_value(JsonNode *n, const char *name, int indent);

/*
 * Buffers are hex in the model; text output also shows the ones that hold
 * a NUL-padded string (run states, names) as that string.
 */
static char *hex_as_text(const char *hex)
{
    size_t len = strlen(hex), printable = 0;
    g_autofree char *text = NULL;

    if (len < 2 || len % 2 || len / 2 > 256) {
        return NULL;
    }
    text = g_malloc0(len / 2 + 1);
    for (size_t i = 0; i < len / 2; i++) {
        int hi = g_ascii_xdigit_value(hex[2 * i]);
        int lo = g_ascii_xdigit_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return NULL;
        }
        text[i] = hi << 4 | lo;
        if (text[i] && (i != printable || !g_ascii_isprint(text[i]))) {
            return NULL;
        }
        printable += text[i] != 0;
    }
    return printable ? g_steal_pointer(&text) : NULL;
}

static void print_scalar_line(JsonNode *n, const char *name, int indent)
{
    g_autofree char *text = json_to_string(n, false);
    g_autofree char *str = NULL;

    if (JSON_NODE_HOLDS_VALUE(n) &&
        json_node_get_value_type(n) == G_TYPE_STRING) {
        str = hex_as_text(json_node_get_string(n));
    }
    if (str) {
        g_print("%*s%s = %s (\"%s\")\n", indent, "", name, text, str);
    } else {
        g_print("%*s%s = %s\n", indent, "", name, text);
    }
}

static void print_object(JsonObject *o, int indent)
{
    g_autoptr(GList) members = json_object_get_members(o);
    for (GList *l = members; l; l = l->next) {
        print_value(json_object_get_member(o, l->data), l->data, indent);
    }
}

static void print_value(JsonNode *n, const char *name, int indent)
{
    if (JSON_NODE_HOLDS_OBJECT(n)) {
        g_print("%*s%s:\n", indent, "", name);
        print_object(json_node_get_object(n), indent + 4);
        return;
    }
    if (JSON_NODE_HOLDS_ARRAY(n)) {
        JsonArray *arr = json_node_get_array(n);
        bool scalars = true;
        for (guint i = 0; i < json_array_get_length(arr); i++) {
            JsonNode *e = json_array_get_element(arr, i);
            scalars &= JSON_NODE_HOLDS_VALUE(e);
        }
        if (scalars) {
            print_scalar_line(n, name, indent);
            return;
        }
        for (guint i = 0; i < json_array_get_length(arr); i++) {
            g_autofree char *elem = g_strdup_printf("%s[%u]", name, i);
            print_value(json_array_get_element(arr, i), elem, indent);
        }
        return;
    }
    print_scalar_line(n, name, indent);
}

static void print_block(const Analysis *a, const RamBlockInfo *b)
{
    g_print("    block \"%s\" at 0x%" PRIx64 ": used_length 0x%" PRIx64
            " (%" PRIu64 " pages)\n",
            b->name, b->entry_offset, b->used_length, b->pages);
    if (b->has_header) {
        g_print("        MappedRamHeader at 0x%" PRIx64 ": version %" PRIu32
                ", page_size %" PRIu64 ", bitmap_offset 0x%" PRIx64 " (%" PRIu64
                " bytes), pages_offset 0x%" PRIx64 "\n",
                b->header_offset, b->mr_version, b->mr_page_size,
                b->bitmap_offset, b->bitmap_size, b->pages_offset);
        if (b->bitmap_scanned) {
            g_print("        bitmap: %" PRIu64 "/%" PRIu64 " pages set\n",
                    b->bits_set, b->pages);
        } else {
            g_print("        bitmap: unreadable\n");
        }
    }
    if (!a->mapped_ram) {
        g_print("        legacy records: %" PRIu64 " pages, %" PRIu64
                " zero pages\n",
                b->legacy_pages, b->legacy_zero_pages);
    }
}

static void print_section(const Analysis *a, const SectionInfo *s)
{
    g_print("0x%08" PRIx64 " %-8s", s->offset, section_type_name(s->type));
    if (s->type == SEC_COMMAND) {
        g_print(" 0x%04x (%s), payload %u bytes\n", s->command,
                command_name(s->command), s->command_len);
        return;
    }
    g_print(" id %u \"%s\" instance %u version %u, length %" PRIu64,
            s->section_id, s->idstr, s->instance_id, s->version_id, s->length);
    if (s->vmsd_name) {
        g_print(", vmsd \"%s\"", s->vmsd_name);
    }
    g_print("\n");
    if (s->is_ram) {
        if (s->has_mem_size) {
            g_print("    MEM_SIZE 0x%" PRIx64 ", %u blocks%s\n", s->mem_size,
                    a->blocks->len, a->mapped_ram ? ", mapped-ram" : "");
            for (guint i = 0; i < a->blocks->len; i++) {
                print_block(a, g_ptr_array_index(a->blocks, i));
            }
        }
        if (s->pages || s->zero_pages || s->multifd_flushes) {
            g_print("    %" PRIu64 " pages, %" PRIu64 " zero pages, %" PRIu64
                    " multifd flushes\n",
                    s->pages, s->zero_pages, s->multifd_flushes);
        }
        if (s->eos) {
            g_print("    EOS\n");
        }
    }
    if (s->fields) {
        print_object(s->fields, 4);
    }
    if (s->decode_error) {
        g_print("    (could not decode: %s)\n", s->decode_error);
    }
}

static void analysis_print(const Analysis *a)
{
    g_print("%s: %" PRIu64 " bytes, stream at offset 0x%" PRIx64 "\n", a->path,
            a->reader.file_size, a->stream_offset);
    if (a->version) {
        g_print("header: QEVM version %" PRIu32 "\n", a->version);
    }
    if (a->has_config) {
        g_print("0x%08" PRIx64 " CONFIGURATION machine type \"%s\", "
                "capabilities:",
                a->config_offset, a->machine_type ?: "");
        for (guint i = 0; i < a->capabilities->len; i++) {
            g_print(" %s", (char *)g_ptr_array_index(a->capabilities, i));
        }
        g_print(a->capabilities->len ? "\n" : " none\n");
    }
    for (guint i = 0; i < a->sections->len; i++) {
        print_section(a, g_ptr_array_index(a->sections, i));
    }
    if (a->has_eof) {
        g_print("0x%08" PRIx64 " EOF\n", a->eof_offset);
    }
    if (a->vmdesc) {
        g_print("0x%08" PRIx64 " VMDESCRIPTION %" PRIu64
                " bytes of JSON, %" PRIu64 " devices\n",
                a->vmdesc_offset, a->vmdesc_size, a->vmdesc_devices);
    }
}

static void report_problems(const Analysis *a)
{
    for (guint i = 0; i < a->warnings->len; i++) {
        g_printerr("%s: warning: %s\n", a->path,
                   (char *)g_ptr_array_index(a->warnings, i));
    }
    for (guint i = 0; i < a->errors->len; i++) {
        g_printerr("%s: error: %s\n", a->path,
                   (char *)g_ptr_array_index(a->errors, i));
    }
    if (a->suppressed_errors) {
        g_printerr("%s: %u more problems not shown\n", a->path,
                   a->suppressed_errors);
    }
}

/* ---- main ---- */

/* Decimal with an optional K/M/G/T suffix, or 0x-hex (file: URI syntax). */
static bool parse_offset(const char *s, uint64_t *v)
{
    char *end;
    int shift = 0;

    if (!*s || *s == '-' || *s == '+' || g_ascii_isspace(*s)) {
        return false;
    }
    errno = 0;
    if (g_str_has_prefix(s, "0x") || g_str_has_prefix(s, "0X")) {
        *v = g_ascii_strtoull(s + 2, &end, 16);
        return errno == 0 && end != s + 2 && *end == '\0';
    }
    *v = g_ascii_strtoull(s, &end, 10);
    if (errno || end == s) {
        return false;
    }
    switch (*end) {
    case '\0':
        return true;
    case 'K':
    case 'k':
        shift = 10;
        break;
    case 'M':
    case 'm':
        shift = 20;
        break;
    case 'G':
    case 'g':
        shift = 30;
        break;
    case 'T':
    case 't':
        shift = 40;
        break;
    default:
        return false;
    }
    if (end[1] || *v > (UINT64_MAX >> shift)) {
        return false;
    }
    *v <<= shift;
    return true;
}

static int do_extract(Analysis *a, const char *block, const char *output)
{
    RamBlockInfo *b;
    g_autoptr(GError) err = NULL;
    int fd;

    a->extract_name = block;
    a->extract_fd =
        open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (a->extract_fd < 0) {
        g_printerr("analyze-migration: cannot create %s: %s\n", output,
                   g_strerror(errno));
        return 1;
    }
    analysis_run(a);
    if (!a->walk_complete) {
        report_problems(a);
        g_printerr("%s: cannot extract \"%s\": the file could not be walked "
                   "to its end\n",
                   a->path, block);
        return 1;
    }
    b = find_block(a, block);
    if (!b) {
        g_printerr("%s: no RAM block named \"%s\"\n", a->path, block);
        return 1;
    }
    if (a->mapped_ram) {
        if (!extract_mapped_ram(a, b, a->extract_fd, &err)) {
            g_printerr("%s: %s\n", a->path, err->message);
            return 1;
        }
    } else if (a->extract_error) {
        g_printerr("%s: writing %s: %s\n", a->path, output,
                   a->extract_error->message);
        return 1;
    }
    fd = a->extract_fd;
    a->extract_fd = -1;
    if (close(fd) < 0) {
        g_printerr("%s: writing %s: %s\n", a->path, output, g_strerror(errno));
        return 1;
    }
    /* the copy is good, but say what else is wrong with the file */
    report_problems(a);
    return 0;
}

static int do_check(Analysis *a)
{
    unsigned devices = 0;

    analysis_run(a);
    report_problems(a);
    if (a->errors->len || a->suppressed_errors) {
        return 1;
    }
    for (guint i = 0; i < a->sections->len; i++) {
        devices += ((SectionInfo *)g_ptr_array_index(a->sections, i))->type ==
                   SEC_FULL;
    }
    g_print("OK %s: stream version %" PRIu32 ", machine \"%s\"%s, %u sections"
            " (%u devices), %u RAM blocks, VMDESCRIPTION %" PRIu64 " bytes\n",
            a->path, a->version, a->machine_type,
            a->mapped_ram ? ", mapped-ram" : "", a->sections->len, devices,
            a->blocks->len, a->vmdesc_size);
    return 0;
}

int main(int argc, char **argv)
{
    g_autofree char *offset_str = NULL;
    g_autofree char *extract = NULL;
    g_autofree char *output = NULL;
    gboolean dump_json = false, check = false;
    GOptionEntry entries[] = {
        {"offset", 0, 0, G_OPTION_ARG_STRING, &offset_str,
         "the stream starts at byte N of the file", "N"},
        {"dump-json", 0, 0, G_OPTION_ARG_NONE, &dump_json,
         "print the structure as JSON", NULL},
        {"check", 0, 0, G_OPTION_ARG_NONE, &check,
         "verify the structure; exit 1 with the reason if it is broken", NULL},
        {"extract", 0, 0, G_OPTION_ARG_STRING, &extract,
         "write RAM block BLOCK's content to --output", "BLOCK"},
        {"output", 0, 0, G_OPTION_ARG_FILENAME, &output,
         "output file for --extract", "OUT"},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("FILE");
    g_autoptr(GError) err = NULL;
    g_autoptr(Analysis) a = analysis_new();
    uint64_t offset = 0;

    g_option_context_set_summary(
        ctx, "Print, check or extract RAM from a QEMU/minivm migration file "
             "(stream version 3, legacy or mapped-ram).");
    g_option_context_set_description(
        ctx, "Without a mode, prints the structure as text. Exit status: 0 "
             "when the file was read to its end (--check: and no problem "
             "was found; --extract: and the block was written), 1 otherwise, "
             "2 for a usage error. Problems are reported on stderr.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        g_printerr("analyze-migration: %s\n", err->message);
        return 2;
    }
    if (argc != 2) {
        g_printerr("analyze-migration: expected one FILE (see --help)\n");
        return 2;
    }
    if ((dump_json + check + !!extract) > 1) {
        g_printerr("analyze-migration: --dump-json, --check and --extract "
                   "exclude each other\n");
        return 2;
    }
    if (!!extract != !!output) {
        g_printerr("analyze-migration: --extract and --output go together\n");
        return 2;
    }
    if (offset_str && !parse_offset(offset_str, &offset)) {
        g_printerr("analyze-migration: bad offset %s\n", offset_str);
        return 2;
    }
    if (!analysis_open(a, argv[1], offset, &err)) {
        g_printerr("analyze-migration: %s\n", err->message);
        return 1;
    }
    if (check) {
        return do_check(a);
    }
    if (extract) {
        return do_extract(a, extract, output);
    }
    analysis_run(a);
    if (dump_json) {
        g_autofree char *json = analysis_to_json(a);
        g_print("%s\n", json);
    } else {
        analysis_print(a);
    }
    report_problems(a);
    return a->walk_complete ? 0 : 1;
}
