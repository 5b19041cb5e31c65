/*
 * Hostile files end to end (issue 8, point 4): a real source saves an a-b
 * guest to file: twice -- a plain stream at offset=4096 and a mapped-ram
 * file -- and a sample of damaged copies is fed to real destinations
 * started with -incoming defer, through migrate-incoming with
 * exit-on-error off. Each destination must report "failed" with an
 * error-desc saying why (and a readable one: QMP replies stay valid JSON
 * whatever bytes the file put in the message), stay in "inmigrate",
 * refuse "cont", and never run its guest (the a-b workload prints 'A' the
 * moment it first runs). A damage the loader rightly ignores (the
 * VMDESCRIPTION) loads, and the guest equals the source's.
 *
 * The exhaustive field-by-field sweep is in process, in
 * tests/unit/test-hostile-streams.c; mapped-ram's own header damage is in
 * mapped-ram-test.c. This test samples what only real processes show: the
 * QMP surface, the file: transport with offset=, and multifd channels
 * reading a damaged mapped-ram file.
 */
#include "qemu/osdep.h"

#include "libqtest.h"
#include "../fuzz/stream-vm.h"

#define VM_ARGS     "-m 32M -workload a-b"
#define PLAIN_AT    4096
#define MIG_TIMEOUT 120

typedef enum {
    PLAIN,
    MAPPED_RAM,
} Kind;

/* One damaged file and what its destination must say. */
typedef struct Hostile {
    const char *what;
    Kind kind;
    bool at_zero;     /* read the plain file from offset 0, not 4096 */
    int channels;     /* multifd channels at the destination, 0: none */
    const char *desc; /* a part of error-desc; NULL: it must load */
    /* The damage: bytes at pos (len 0: none), then a cut (0: none). */
    size_t pos;
    uint8_t bytes[16];
    size_t len;
    size_t cut;
    size_t delete_len; /* bytes removed at pos instead of overwritten */
} Hostile;

typedef struct Saved {
    GByteArray *image;
    StreamMap map;
} Saved;

static char *tmp_dir;

static void save(QTestState *src, Saved *out, Kind kind)
{
    g_autofree char *path = g_build_filename(
        tmp_dir, kind == PLAIN ? "plain.mig" : "mapped-ram.mig", NULL);
    g_autofree char *contents = NULL;
    gsize len;

    migrate_set_capability(src, "mapped-ram", kind == MAPPED_RAM);
    qtest_qmp_assert_success(src,
                             "{'execute': 'migrate', 'arguments': "
                             "{'uri': 'file:%s,offset=%d'}}",
                             path, kind == PLAIN ? PLAIN_AT : 0);
    migrate_wait_status(src, "completed", MIG_TIMEOUT);
    g_assert_true(g_file_get_contents(path, &contents, &len, NULL));
    out->image = g_byte_array_sized_new(len);
    g_byte_array_append(out->image, (uint8_t *)contents, len);
    stream_map(out->image, kind == PLAIN ? PLAIN_AT : 0, &out->map);
}

/* The damaged copy, written where the destination will read it. */
static char *write_variant(const Saved *s, const Hostile *h)
{
    g_autofree char *name = g_strdup_printf("variant-%d.mig", getpid());
    char *path = g_build_filename(tmp_dir, name, NULL);
    g_autoptr(GByteArray) copy = g_byte_array_sized_new(s->image->len);

    g_byte_array_append(copy, s->image->data, s->image->len);
    if (h->delete_len) {
        g_byte_array_remove_range(copy, h->pos, h->delete_len);
    } else if (h->len) {
        g_assert_cmpuint(h->pos + h->len, <=, copy->len);
        memcpy(copy->data + h->pos, h->bytes, h->len);
    }
    if (h->cut) {
        g_byte_array_set_size(copy, h->cut);
    }
    g_assert_true(
        g_file_set_contents(path, (char *)copy->data, copy->len, NULL));
    return path;
}

static void assert_never_ran(QTestState *dst)
{
    g_autofree char *status = qtest_query_status(dst);
    g_autofree char *serial = qtest_serial_read(dst);

    g_assert_cmpstr(status, ==, "inmigrate");
    g_assert_null(strchr(serial, 'A'));
    qtest_qmp_expect_error(dst, "GenericError",
                           "Guest is waiting for an incoming migration",
                           "{'execute': 'cont'}");
}

static void run_hostile(QTestState *src, const Saved *s, const Hostile *h)
{
    g_autofree char *path = write_variant(s, h);
    QTestState *dst = qtest_init_incoming("defer", VM_ARGS);
    g_autoptr(JsonNode) ret = NULL;
    JsonObject *info;
    const char *status;

    g_test_message("%s", h->what);
    migrate_set_capability(dst, "mapped-ram", h->kind == MAPPED_RAM);
    if (h->channels) {
        g_autofree char *n = g_strdup_printf("%d", h->channels);

        migrate_set_capability(dst, "multifd", true);
        migrate_set_parameter(dst, "multifd-channels", n);
    }
    qtest_qmp_assert_success(dst,
                             "{'execute': 'migrate-incoming', 'arguments': "
                             "{'uri': 'file:%s,offset=%d', "
                             "'exit-on-error': false}}",
                             path,
                             h->kind == PLAIN && !h->at_zero ? PLAIN_AT : 0);
    for (int i = 0;; i++) {
        g_autofree char *now = migrate_query_status(dst);

        if (!strcmp(now, "failed") || !strcmp(now, "completed")) {
            break;
        }
        if (i == qtest_scale_timeout(MIG_TIMEOUT) * 100) {
            g_error("%s: the load is still \"%s\"", h->what, now);
        }
        g_usleep(10 * 1000);
    }
    /* libqtest parses every reply: an unreadable error-desc fails here. */
    ret = qtest_qmp_assert_success_ref(dst, "{'execute': 'query-migrate'}");
    info = json_node_get_object(ret);
    status = qtest_json_get_string(info, "status");
    if (h->desc) {
        const char *desc = qtest_json_get_string(info, "error-desc");

        g_assert_cmpstr(status, ==, "failed");
        if (!strstr(desc, h->desc)) {
            g_error("%s: error-desc \"%s\" does not say \"%s\"", h->what, desc,
                    h->desc);
        }
        assert_never_ran(dst);
    } else {
        g_autoptr(GHashTable) want = qtest_ram_digests(src);
        g_autoptr(GHashTable) got = qtest_ram_digests(dst);
        GHashTableIter iter;
        gpointer block, digest;

        g_assert_cmpstr(status, ==, "completed");
        /* The source was stopped: the destination waits paused. */
        qtest_wait_status(dst, "paused", 10);
        g_hash_table_iter_init(&iter, want);
        while (g_hash_table_iter_next(&iter, &block, &digest)) {
            g_assert_cmpstr(g_hash_table_lookup(got, block), ==, digest);
        }
    }
    qtest_quit(dst);
    unlink(path);
}

static void test_hostile_files(void)
{
    QTestState *src = qtest_init(VM_ARGS);
    Saved plain, mram;
    const StreamMap *p, *m;
    const StreamSection *ram_start, *gs;
    const StreamBlock *vram;
    size_t json, zero_byte;

    tmp_dir = g_strdup(qtest_tmpdir(src));
    qtest_wait_serial(src, "AB", 60);
    qtest_qmp_assert_success(src, "{'execute': 'stop'}");
    save(src, &plain, PLAIN);
    save(src, &mram, MAPPED_RAM);
    p = &plain.map;
    m = &mram.map;
    ram_start = stream_map_section(p, "ram", 0x01);
    gs = stream_map_section(p, "globalstate", 0x04);
    vram = &m->blocks[1];
    g_assert_nonnull(ram_start);
    g_assert_nonnull(gs);
    g_assert_cmpstr(vram->name, ==, "vga.vram");
    json = p->vmdesc + 5;
    zero_byte = p->zero_byte;
    g_assert_cmpuint(zero_byte, !=, 0);

    const Hostile cases[] = {
        {"plain: magic", PLAIN, .desc = "Not a migration stream",
         .pos = PLAIN_AT, .bytes = "QEVN", .len = 4},
        {"plain: read from offset 0", PLAIN, .at_zero = true,
         .desc = "Not a migration stream"},
        {"plain: machine type", PLAIN,
         .desc = "Machine type received is 'minivm-9.0' and local is "
                 "'minivm-1.0'",
         .pos = p->config + 5 + 7, .bytes = "9", .len = 1},
        {"plain: ram footer missing", PLAIN,
         .desc = "Missing section footer for ram", .pos = ram_start->footer,
         .delete_len = 5},
        /* Raw bytes from the file end up in the message. */
        {"plain: block name of binary bytes", PLAIN,
         .desc = "cannot accept migration", .pos = p->blocks[0].name_len + 1,
         .bytes = {0xff, 0xfe, 0x80, 0x01, 0xc3, 0x28}, .len = 6},
        {"plain: zero page record with a value", PLAIN,
         .desc = "Found a zero page with value 7", .pos = zero_byte,
         .bytes = {7}, .len = 1},
        {"plain: cut in the middle of the pages", PLAIN,
         .desc = "Unexpected end of migration stream",
         .cut = (p->first_page + p->eof) / 2},
        {"plain: unknown run state", PLAIN,
         .desc = "globalstate: post_load hook failed", .pos = gs->body + 4,
         .bytes = "sleeping", .len = 8},
        {"plain: VMDESCRIPTION damaged (ignored: loads)", PLAIN,
         .pos = json + 1, .bytes = "#", .len = 1},
        {"mapped-ram + multifd: vga.vram's pages past the end", MAPPED_RAM,
         .channels = 4, .desc = "lie beyond the end of the file",
         .pos = vram->header + 20, .bytes = {0, 0, 0, 1, 0, 0, 0, 0}, .len = 8},
        {"mapped-ram + multifd: cut in pc.ram's pages", MAPPED_RAM,
         .channels = 4, .desc = "lie beyond the end of the file",
         .cut = m->blocks[0].pages_offset + m->blocks[0].bytes / 3},
        {"mapped-ram + multifd: cut after the page areas", MAPPED_RAM,
         .channels = 2, .desc = "Unexpected end of migration stream",
         .cut = m->eof - 3},
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        run_hostile(src, cases[i].kind == PLAIN ? &plain : &mram, &cases[i]);
    }
    g_byte_array_unref(plain.image);
    g_byte_array_unref(mram.image);
    stream_map_free(&plain.map);
    stream_map_free(&mram.map);
    qtest_quit(src);
    g_clear_pointer(&tmp_dir, g_free);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/migration/hostile-files", test_hostile_files);
    return g_test_run();
}
