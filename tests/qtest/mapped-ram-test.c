/*
 * mapped-ram end to end (issue 4): real minivm processes save a guest into
 * the fixed-offset layout through file: (with and without offset=) and
 * through a seekable fd:, and load it in another process whose memory must
 * equal the source's, block by block, and pass the a-b checker. A live
 * guest that dirties memory for many passes keeps the file within RAM +
 * 1 MiB per block + device state while the plain stream of the same guest
 * grows past that. Every refusal message (QMP and HMP), capability
 * mismatches, and files damaged in each MappedRamHeader field, the bitmap
 * and the page area fail the destination cleanly, never running its guest.
 * Every file minivm writes here is also checked with tools/analyze-migration
 * ($ANALYZE_MIGRATION), whose extracted RAM must equal the source's.
 */
#include "qemu/osdep.h"

#include <sys/socket.h>

#include "migration-helpers.h"

#define AB_ARGS "-m 128M -workload a-b"
#define AB_RAM  (128 * MiB)
/* pc.ram + vga.vram + pc.bios */
#define RAM_TOTAL(ram) ((ram) + 8 * MiB + 256 * KiB)
#define RAM_BLOCKS     3
/*
 * The device state a file may hold besides RAM: minivm's devices, the
 * VMDESCRIPTION JSON and the ram section's framing (under 4 KiB measured);
 * generous, but far below what one extra copy of RAM would need.
 */
#define DEVICE_STATE_ALLOWANCE (64 * KiB)
#define ERR_SEEKABLE           "Migration requires seekable transport (e.g. file)"

/* --- helpers --- */

/* A running a-b (or other) guest, with mapped-ram on unless plain. */
static QTestState *start_source(const char *args, bool mapped_ram)
{
    QTestState *src = mig_start_source(args);

    if (mapped_ram) {
        migrate_set_capability(src, "mapped-ram", true);
    }
    return src;
}

/* A destination waiting for migrate-incoming; extra may add "-S". */
static QTestState *start_destination(const char *args, const char *extra,
                                     bool mapped_ram)
{
    g_autofree char *all = g_strdup_printf("%s %s", args, extra ? extra : "");
    QTestState *dst = mig_start_destination(all);

    if (mapped_ram) {
        migrate_set_capability(dst, "mapped-ram", true);
    }
    return dst;
}

static int64_t migrate_ram_figure(QTestState *s, const char *name)
{
    g_autoptr(JsonNode) ret =
        qtest_qmp_assert_success_ref(s, "{'execute': 'query-migrate'}");
    JsonObject *info = json_node_get_object(ret);

    if (!json_object_has_member(info, "ram")) {
        return 0;
    }
    return qtest_json_get_int(qtest_json_get_object(info, "ram"), name);
}

static uint64_t file_size(const char *path)
{
    struct stat st;

    g_assert_cmpint(stat(path, &st), ==, 0);
    return st.st_size;
}

/* Bytes the file system allocated for it (holes excluded). */
static uint64_t file_allocated(const char *path)
{
    struct stat st;

    g_assert_cmpint(stat(path, &st), ==, 0);
    return (uint64_t)st.st_blocks * 512;
}

/* --- tools/analyze-migration --- */

/* Runs the analyzer; returns its exit status, stdout in *out if wanted. */
static int analyzer_run(char **out, char **err, const char *arg1,
                        const char *arg2, const char *arg3, const char *arg4,
                        const char *path)
{
    const char *tool = g_getenv("ANALYZE_MIGRATION");
    const char *args[] = {arg1, arg2, arg3, arg4};
    const char *argv[8];
    GError *error = NULL;
    int n = 0, status;

    g_assert_nonnull(tool);
    argv[n++] = tool;
    for (size_t i = 0; i < G_N_ELEMENTS(args); i++) {
        if (args[i]) {
            argv[n++] = args[i];
        }
    }
    argv[n++] = path;
    argv[n] = NULL;
    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL,
                               NULL, out, err, &status, &error));
    g_assert_no_error(error);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* --dump-json of a file whose stream starts at offset (caller unrefs). */
static JsonNode *analyzer_json(const char *path, uint64_t offset)
{
    g_autofree char *opt = g_strdup_printf("--offset=%" PRIu64, offset);
    g_autofree char *out = NULL, *err = NULL;
    g_autoptr(JsonParser) parser = json_parser_new();
    GError *error = NULL;

    g_assert_cmpint(
        analyzer_run(&out, &err, "--dump-json", opt, NULL, NULL, path), ==, 0);
    g_assert_true(json_parser_load_from_data(parser, out, -1, &error));
    g_assert_no_error(error);
    return json_node_copy(json_parser_get_root(parser));
}

/* The "ram" START section's block list from the analyzer's JSON. */
static JsonArray *json_ram_blocks(JsonNode *root)
{
    JsonArray *sections =
        json_object_get_array_member(json_node_get_object(root), "sections");
    JsonObject *start = json_array_get_object_element(sections, 0);

    g_assert_cmpstr(qtest_json_get_string(start, "type"), ==, "START");
    g_assert_cmpstr(qtest_json_get_string(start, "idstr"), ==, "ram");
    return json_object_get_array_member(qtest_json_get_object(start, "ram"),
                                        "blocks");
}

static JsonObject *json_block_header(JsonArray *blocks, guint i)
{
    return qtest_json_get_object(json_array_get_object_element(blocks, i),
                                 "mapped_ram");
}

/*
 * The file minivm wrote passes the analyzer's --check, is mapped-ram, and
 * each block it extracts is the (stopped, unchanged) source's RAM.
 */
static void analyzer_check_file(const char *path, uint64_t offset,
                                QTestState *src)
{
    g_autofree char *opt = g_strdup_printf("--offset=%" PRIu64, offset);
    g_autofree char *out = NULL, *err = NULL;
    g_autoptr(GHashTable) digests = qtest_ram_digests(src);
    g_autoptr(JsonNode) root = analyzer_json(path, offset);
    static const char *const blocks[] = {"pc.ram", "vga.vram", "pc.bios"};

    if (analyzer_run(&out, &err, "--check", opt, NULL, NULL, path) != 0) {
        g_error("analyze-migration --check %s failed: %s%s", path, out, err);
    }
    g_assert_true(json_object_get_boolean_member(json_node_get_object(root),
                                                 "mapped_ram"));
    for (size_t i = 0; i < G_N_ELEMENTS(blocks); i++) {
        g_autofree char *img = g_strdup_printf("%s.%s", path, blocks[i]);
        g_autofree char *out_opt = g_strdup_printf("--output=%s", img);
        g_autofree char *ext_opt = g_strdup_printf("--extract=%s", blocks[i]);
        g_autofree char *o = NULL, *e = NULL, *data = NULL, *sum = NULL;
        gsize len;

        if (analyzer_run(&o, &e, ext_opt, out_opt, opt, NULL, path) != 0) {
            g_error("analyze-migration --extract=%s failed: %s", blocks[i], e);
        }
        g_assert_true(g_file_get_contents(img, &data, &len, NULL));
        sum =
            g_compute_checksum_for_data(G_CHECKSUM_SHA256, (guint8 *)data, len);
        g_assert_cmpstr(sum, ==, g_hash_table_lookup(digests, blocks[i]));
        unlink(img);
    }
}

/* --- loading --- */

/*
 * Loads uri into a fresh destination started with -S (so it stays paused
 * whatever the source's run state was) and checks it against the stopped
 * source: same RAM in every block, a-b pattern whole, alive after cont.
 */
static void load_and_compare(QTestState *src, const char *uri, const char *args,
                             uint64_t ram_size)
{
    QTestState *dst = start_destination(args, "-S", true);

    migrate_incoming_uri(dst, uri);
    migrate_wait_status(dst, "completed", MIG_TIMEOUT);
    mig_assert_runstate(dst, "paused");
    g_assert_cmpuint(mig_assert_same_ram(src, dst), ==, RAM_BLOCKS);
    if (strstr(args, "a-b")) {
        mig_assert_ab_ok(dst, ram_size);
        mig_cont(dst);
        mig_wait_alive(dst);
    }
    qtest_quit(dst);
}

/* --- save a stopped guest (virsh save) --- */

static void test_mapped_ram_stopped(void)
{
    QTestState *src = start_source(AB_ARGS, true);
    g_autofree char *path = mig_tmp_path(src, "mig.img");
    g_autofree char *uri = g_strdup_printf("file:%s", path);
    g_autoptr(JsonNode) ret = NULL;
    QTestState *dst;

    mig_stop(src);
    mig_assert_ab_ok(src, AB_RAM);
    migrate_uri(src, uri);
    migrate_wait_status(src, "completed", MIG_TIMEOUT);
    mig_assert_runstate(src, "postmigrate");
    /* Zero pages are counted but not written; normal ones are. */
    JsonObject *ram = migrate_query_ram(src, &ret);
    g_assert_cmpint(qtest_json_get_int(ram, "normal"), >, 0);
    g_assert_cmpint(qtest_json_get_int(ram, "duplicate"), >, 0);
    g_assert_cmpint(qtest_json_get_int(ram, "total"), ==, RAM_TOTAL(AB_RAM));
    /* One copy of RAM at most, zero pages as holes. */
    g_assert_cmpuint(file_size(path), <=,
                     RAM_TOTAL(AB_RAM) + RAM_BLOCKS * MiB +
                         DEVICE_STATE_ALLOWANCE);
    analyzer_check_file(path, 0, src);

    /* Without -S as well: the source was stopped, so the guest stays so. */
    dst = start_destination(AB_ARGS, NULL, true);
    migrate_incoming_uri(dst, uri);
    migrate_wait_status(dst, "completed", MIG_TIMEOUT);
    mig_assert_runstate(dst, "paused");
    g_assert_cmpuint(mig_assert_same_ram(src, dst), ==, RAM_BLOCKS);
    mig_assert_ab_ok(dst, AB_RAM);
    mig_cont(dst);
    mig_wait_alive(dst);
    qtest_quit(dst);
    qtest_quit(src);
}

/*
 * A destination whose pc.ram comes from a file that already holds data
 * (memory-backend-file over an old image): the pages the mapped-ram file
 * leaves clear must come out zero there too, not keep the old bytes.
 */
static void test_mapped_ram_stale_backend(void)
{
    QTestState *src = start_source(AB_ARGS, true);
    g_autofree char *path = mig_tmp_path(src, "mig.img");
    g_autofree char *backing = mig_tmp_path(src, "old-guest-ram");
    g_autofree char *uri = g_strdup_printf("file:%s", path);
    g_autofree char *args = NULL;
    g_autofree uint8_t *junk = g_malloc(2 * MiB);
    QTestState *dst;
    int fd;

    mig_stop(src);
    migrate_uri(src, uri);
    migrate_wait_status(src, "completed", MIG_TIMEOUT);

    /* Old data: a 2 MiB run at 0, one page every 3 MiB, a run at the end. */
    memset(junk, 0xaa, 2 * MiB);
    fd = open(backing, O_CREAT | O_RDWR | O_TRUNC, 0600);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, AB_RAM), ==, 0);
    g_assert_cmpint(pwrite(fd, junk, 2 * MiB, 0), ==, 2 * MiB);
    for (uint64_t at = 2 * MiB; at < AB_RAM - 2 * MiB; at += 3 * MiB) {
        g_assert_cmpint(pwrite(fd, junk, 4096, at + 4096), ==, 4096);
    }
    g_assert_cmpint(pwrite(fd, junk, 2 * MiB, AB_RAM - 2 * MiB), ==, 2 * MiB);
    close(fd);

    args = g_strdup_printf("%s -object memory-backend-file,id=ram0,size=128M,"
                           "mem-path=%s,share=on -machine memory-backend=ram0",
                           AB_ARGS, backing);
    dst = start_destination(args, "-S", true);
    migrate_incoming_uri(dst, uri);
    migrate_wait_status(dst, "completed", MIG_TIMEOUT);
    g_assert_cmpuint(mig_assert_same_ram(src, dst), ==, RAM_BLOCKS);
    mig_assert_ab_ok(dst, AB_RAM);
    qtest_quit(dst);
    qtest_quit(src);
}

/* --- live snapshot of a running guest --- */

/* The outgoing migration is still under way (else say how it ended). */
static void assert_migrating(QTestState *src)
{
    g_autoptr(JsonNode) ret =
        qtest_qmp_assert_success_ref(src, "{'execute': 'query-migrate'}");
    JsonObject *info = json_node_get_object(ret);
    const char *status = qtest_json_get_string(info, "status");

    if (strcmp(status, "setup") && strcmp(status, "active")) {
        g_autofree char *text = qtest_json_to_string(info);

        g_error("the migration should still be running: %s", text);
    }
}

/* Waits until the running migration has made at least passes passes. */
static void wait_passes(QTestState *src, int64_t passes)
{
    int64_t deadline =
        g_get_monotonic_time() + qtest_scale_timeout(60) * G_USEC_PER_SEC;

    while (migrate_ram_figure(src, "dirty-sync-count") < passes) {
        assert_migrating(src);
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(20 * 1000);
    }
}

static void test_mapped_ram_live(void)
{
    QTestState *src = start_source(AB_ARGS, true);
    g_autofree char *path = mig_tmp_path(src, "mig.img");
    g_autofree char *uri = g_strdup_printf("file:%s", path);
    QTestState *dst;

    /* Hold the switchover back for a few passes over a dirtying guest. */
    migrate_set_parameter(src, "downtime-limit", "0");
    migrate_uri(src, uri);
    wait_passes(src, 4);
    mig_assert_runstate(src, "running");
    migrate_set_parameter(src, "downtime-limit", "2000");
    migrate_wait_status(src, "completed", MIG_TIMEOUT);
    mig_assert_runstate(src, "postmigrate");
    /* More was written than the file holds: pages were rewritten in place. */
    g_assert_cmpint(migrate_ram_figure(src, "transferred"), >,
                    RAM_TOTAL(AB_RAM) + RAM_BLOCKS * MiB);
    g_assert_cmpuint(file_size(path), <=,
                     RAM_TOTAL(AB_RAM) + RAM_BLOCKS * MiB +
                         DEVICE_STATE_ALLOWANCE);
    mig_assert_ab_ok(src, AB_RAM);
    analyzer_check_file(path, 0, src);
    load_and_compare(src, uri, AB_ARGS, AB_RAM);

    /* Without -S the destination resumes, as the source was running. */
    dst = start_destination(AB_ARGS, NULL, true);
    migrate_incoming_uri(dst, uri);
    migrate_wait_status(dst, "completed", MIG_TIMEOUT);
    mig_wait_alive(dst);
    mig_assert_runstate(dst, "running");
    mig_stop(dst);
    mig_assert_ab_ok(dst, AB_RAM);
    qtest_quit(dst);
    qtest_quit(src);
}

/*
 * The file-size bound: one guest dirtying 64 MiB at 256 MiB/s, saved
 * under a 128 MiB/s limit so that the migration cannot converge, first as
 * a plain stream (which keeps appending every page it resends), then,
 * after cont, with mapped-ram for many passes (which rewrites slots).
 * Both are completed by stopping the guest and lifting the limit.
 */
#define DIRTY_ARGS      "-m 128M -workload dirty,rate=256M,wss=64M"
#define DIRTY_BANDWIDTH "134217728"

static void save_dirtying_guest(QTestState *src, const char *uri,
                                uint64_t min_transferred, int64_t min_passes)
{
    int64_t deadline =
        g_get_monotonic_time() + qtest_scale_timeout(90) * G_USEC_PER_SEC;

    mig_assert_runstate(src, "running");
    mig_wait_guest_writes(src);
    migrate_set_parameter(src, "max-bandwidth", DIRTY_BANDWIDTH);
    /* Never switch over while the guest runs: only at 0 pages pending. */
    migrate_set_parameter(src, "downtime-limit", "0");
    migrate_uri(src, uri);
    while ((uint64_t)migrate_ram_figure(src, "transferred") < min_transferred ||
           migrate_ram_figure(src, "dirty-sync-count") < min_passes) {
        assert_migrating(src);
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(50 * 1000);
    }
    mig_stop(src);
    migrate_set_parameter(src, "max-bandwidth", "0");
    migrate_set_parameter(src, "downtime-limit", "300");
    migrate_wait_status(src, "completed", MIG_TIMEOUT);
}

static void test_mapped_ram_live_file_size(void)
{
    QTestState *src = start_source(DIRTY_ARGS, false);
    g_autofree char *plain = mig_tmp_path(src, "plain.img");
    g_autofree char *plain_uri = g_strdup_printf("file:%s", plain);
    g_autofree char *mapped = mig_tmp_path(src, "mapped.img");
    g_autofree char *mapped_uri = g_strdup_printf("file:%s", mapped);
    uint64_t bound =
        RAM_TOTAL(AB_RAM) + RAM_BLOCKS * MiB + DEVICE_STATE_ALLOWANCE;
    uint64_t plain_size, mapped_size, mapped_sent;
    int64_t passes;

    /* Plain: every resent page is appended; it outgrows the bound. */
    save_dirtying_guest(src, plain_uri, bound + 64 * MiB, 2);
    plain_size = file_size(plain);
    g_assert_cmpuint(plain_size, >, bound);

    /* The same guest again, running, with mapped-ram for many passes. */
    mig_cont(src);
    migrate_set_capability(src, "mapped-ram", true);
    save_dirtying_guest(src, mapped_uri, 2 * bound, 8);
    mapped_size = file_size(mapped);
    mapped_sent = migrate_ram_figure(src, "transferred");
    passes = migrate_ram_figure(src, "dirty-sync-count");
    g_test_message("file sizes, same guest (%s): plain stream %" PRIu64
                   " bytes; mapped-ram %" PRIu64 " bytes (%" PRIu64
                   " allocated) after %" PRId64 " passes and %" PRIu64
                   " bytes written; bound (RAM + 1 MiB per block + %" PRIu64
                   " KiB) %" PRIu64 " bytes",
                   DIRTY_ARGS, plain_size, mapped_size, file_allocated(mapped),
                   passes, mapped_sent,
                   (uint64_t)(DEVICE_STATE_ALLOWANCE / KiB), bound);
    g_assert_cmpint(passes, >=, 8);
    g_assert_cmpuint(mapped_sent, >, bound);
    g_assert_cmpuint(mapped_size, <=, bound);
    /* The pages really are there: RAM beyond the dirtied window counts. */
    g_assert_cmpuint(mapped_size, >, 64 * MiB);

    analyzer_check_file(mapped, 0, src);
    load_and_compare(src, mapped_uri, DIRTY_ARGS, 128 * MiB);
    qtest_quit(src);
}

/* --- offset= and fd: --- */

static uint64_t be64_at(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

/*
 * A management header before offset= survives; every MappedRamHeader
 * offset is absolute in the file (checked on the header bytes themselves).
 */
static void test_mapped_ram_offset(void)
{
    QTestState *src = start_source(AB_ARGS, true);
    g_autofree char *path = mig_tmp_path(src, "mig.img");
    g_autofree char *uri = g_strdup_printf("file:%s,offset=4096", path);
    g_autofree uint8_t *data = NULL;
    g_autoptr(JsonNode) root = NULL;
    char header[4096];
    JsonArray *blocks;
    gsize len;

    memset(header, 'X', sizeof(header));
    g_assert_true(g_file_set_contents(path, header, sizeof(header), NULL));
    mig_stop(src);
    migrate_uri(src, uri);
    migrate_wait_status(src, "completed", MIG_TIMEOUT);

    g_assert_true(g_file_get_contents(path, (char **)&data, &len, NULL));
    for (size_t i = 0; i < sizeof(header); i++) {
        g_assert_cmpint(data[i], ==, 'X');
    }
    g_assert_cmpmem(data + 4096, 4, "QEVM", 4);

    root = analyzer_json(path, 4096);
    blocks = json_ram_blocks(root);
    g_assert_cmpuint(json_array_get_length(blocks), ==, RAM_BLOCKS);
    for (guint i = 0; i < RAM_BLOCKS; i++) {
        JsonObject *h = json_block_header(blocks, i);
        uint64_t at = qtest_json_get_int(h, "offset");
        uint64_t used = qtest_json_get_int(
            json_array_get_object_element(blocks, i), "used_length");
        const uint8_t *raw;

        /* The header is where the analyzer says, in the file's terms. */
        g_assert_cmpuint(at, >, 4096);
        g_assert_cmpuint(at + 28, <=, len);
        raw = data + at;
        g_assert_cmpuint(be64_at(raw + 4), ==, 4096);
        /* bitmap right after the header: absolute, offset= included */
        g_assert_cmpuint(be64_at(raw + 12), ==, at + 28);
        g_assert_cmpuint(be64_at(raw + 20) % MiB, ==, 0);
        g_assert_cmpuint(be64_at(raw + 20), >, at + 28);
        g_assert_cmpuint(be64_at(raw + 20) - (at + 28), <,
                         MiB + DIV_ROUND_UP(used / 4096, 64) * 8);
        g_assert_cmpuint(qtest_json_get_int(h, "pages_offset"), ==,
                         be64_at(raw + 20));
    }
    analyzer_check_file(path, 4096, src);
    load_and_compare(src, uri, AB_ARGS, AB_RAM);
    qtest_quit(src);
}

/* getfd over SCM_RIGHTS; the reply must be a success. */
static void getfd(QTestState *s, int fd, const char *name)
{
    g_autoptr(JsonObject) r = qtest_qmp_fds(
        s, &fd, 1, "{'execute': 'getfd', 'arguments': {'fdname': '%s'}}", name);

    if (!json_object_has_member(r, "return")) {
        g_autofree char *text = qtest_json_to_string(r);

        g_error("getfd failed: %s", text);
    }
}

/*
 * fd: naming a seekable regular file carries mapped-ram both ways. The
 * stream starts where the descriptor's offset is (here after a 4 KiB
 * management header, as libvirt writes one), and the layout's offsets are
 * absolute in the file, so the destination's descriptor is positioned the
 * same way.
 */
static void test_mapped_ram_fd(void)
{
    QTestState *src = start_source(AB_ARGS, true);
    QTestState *dst = start_destination(AB_ARGS, NULL, true);
    g_autofree char *path = mig_tmp_path(src, "mig.img");
    g_autofree uint8_t *data = NULL;
    char header[4096];
    gsize len;
    int fd;

    mig_stop(src);
    memset(header, 'X', sizeof(header));
    fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(write(fd, header, sizeof(header)), ==, sizeof(header));
    getfd(src, fd, "mig");
    close(fd);
    migrate_uri(src, "fd:mig");
    migrate_wait_status(src, "completed", MIG_TIMEOUT);
    g_assert_true(g_file_get_contents(path, (char **)&data, &len, NULL));
    g_assert_true(data[0] == 'X' && data[4095] == 'X');
    g_assert_cmpmem(data + 4096, 4, "QEVM", 4);
    analyzer_check_file(path, 4096, src);

    fd = open(path, O_RDONLY);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(lseek(fd, 4096, SEEK_SET), ==, 4096);
    getfd(dst, fd, "mig");
    close(fd);
    migrate_incoming_uri(dst, "fd:mig");
    migrate_wait_status(dst, "completed", MIG_TIMEOUT);
    mig_assert_runstate(dst, "paused");
    g_assert_cmpuint(mig_assert_same_ram(src, dst), ==, RAM_BLOCKS);
    mig_assert_ab_ok(dst, AB_RAM);
    mig_cont(dst);
    mig_wait_alive(dst);
    qtest_quit(dst);
    qtest_quit(src);
}

/* --- refusals --- */

/* Drops the name "bad" whether or not the refused command consumed it. */
static void closefd_quietly(QTestState *s)
{
    g_free(qtest_hmp(s, "closefd bad"));
}

/*
 * fd:NAME of a pipe or socket end for mapped-ram: refused, through QMP and
 * then HMP (getfd again: a used name is gone).
 */
static void expect_fd_refused(QTestState *s, const int fds[2], bool incoming)
{
    const char *cmd = incoming ? "migrate-incoming" : "migrate";
    const char *hmp = incoming ? "migrate_incoming fd:bad" : "migrate fd:bad";
    g_autofree char *want = g_strdup_printf("Error: %s\r\n", ERR_SEEKABLE);
    g_autofree char *out = NULL;

    getfd(s, fds[incoming ? 0 : 1], "bad");
    qtest_qmp_expect_error(s, "GenericError", ERR_SEEKABLE,
                           "{'execute': '%s', 'arguments': {'uri': 'fd:bad'}}",
                           cmd);
    closefd_quietly(s);
    getfd(s, fds[incoming ? 0 : 1], "bad");
    out = qtest_hmp(s, "%s", hmp);
    g_assert_cmpstr(out, ==, want);
    closefd_quietly(s);
}

static void test_mapped_ram_refusals_source(void)
{
    QTestState *s = start_source(AB_ARGS, true);
    g_autofree char *sock = mig_tmp_path(s, "m.sock");
    g_autofree char *file = mig_tmp_path(s, "m.img");
    g_autofree char *qmp = NULL, *hmp = NULL;
    int fds[2];

    /* Non-seekable transports. */
    qmp = g_strdup_printf(
        "{'execute': 'migrate', 'arguments': {'uri': 'unix:%s'}}", sock);
    hmp = g_strdup_printf("migrate unix:%s", sock);
    mig_expect_error_both(s, ERR_SEEKABLE, hmp, "%s", qmp);
    mig_expect_error_both(s, ERR_SEEKABLE, "migrate tcp:127.0.0.1:1",
                          "{'execute': 'migrate', 'arguments': "
                          "{'uri': 'tcp:127.0.0.1:1'}}");
    mig_expect_error_both(s, ERR_SEEKABLE, "migrate exec:cat > /dev/null",
                          "{'execute': 'migrate', 'arguments': "
                          "{'uri': 'exec:cat > /dev/null'}}");
    g_assert_cmpint(pipe(fds), ==, 0);
    expect_fd_refused(s, fds, false);
    close(fds[0]);
    close(fds[1]);
    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), ==, 0);
    expect_fd_refused(s, fds, false);
    close(fds[0]);
    close(fds[1]);

    /* Compression, whichever of the two is set first. */
    mig_expect_compression_refused(s, "zstd");
    migrate_set_capability(s, "mapped-ram", false);
    migrate_set_parameter(s, "multifd-compression", "'zlib'");
    mig_expect_mapped_ram_refused(s, "mapped-ram");
    migrate_set_parameter(s, "multifd-compression", "'none'");

    /* multifd over file: needs mapped-ram. */
    migrate_set_capability(s, "multifd", true);
    g_free(qmp);
    g_free(hmp);
    qmp = g_strdup_printf(
        "{'execute': 'migrate', 'arguments': {'uri': 'file:%s'}}", file);
    hmp = g_strdup_printf("migrate file:%s", file);
    mig_expect_error_both(s, "Migration requires multi-channel URIs (e.g. tcp)",
                          hmp, "%s", qmp);
    migrate_set_capability(s, "multifd", false);

    /* Nothing was written and the guest runs on. */
    g_assert_false(g_file_test(file, G_FILE_TEST_EXISTS));
    mig_assert_runstate(s, "running");
    qtest_quit(s);
}

static void test_mapped_ram_refusals_destination(void)
{
    QTestState *d = start_destination(AB_ARGS, NULL, true);
    g_autofree char *sock = mig_tmp_path(d, "in.sock");
    g_autofree char *qmp = g_strdup_printf(
        "{'execute': 'migrate-incoming', 'arguments': {'uri': 'unix:%s'}}",
        sock);
    g_autofree char *hmp = g_strdup_printf("migrate_incoming unix:%s", sock);
    int fds[2];

    mig_expect_error_both(d, ERR_SEEKABLE, hmp, "%s", qmp);
    mig_expect_error_both(d, ERR_SEEKABLE,
                          "migrate_incoming exec:cat /dev/null",
                          "{'execute': 'migrate-incoming', 'arguments': "
                          "{'uri': 'exec:cat /dev/null'}}");
    g_assert_cmpint(pipe(fds), ==, 0);
    expect_fd_refused(d, fds, true);
    close(fds[0]);
    close(fds[1]);
    mig_assert_runstate(d, "inmigrate");
    qtest_quit(d);
}

/* --- files that must not load --- */

/* An a-b guest whose pc.ram has 25025 pages: its bitmap has spare bits. */
#define ODD_ARGS "-m 100100K -workload a-b"
#define ODD_RAM  (100100 * KiB)

/* How the loader reports an error of the "ram" section. */
#define RAM_SECTION_ERROR                                                      \
    "error while loading state for instance 0x0 of device 'ram': "

/*
 * Loads the file with exit-on-error off: the load fails with desc (behind
 * prefix), the guest never runs (and cannot be made to).
 */
static void expect_load_failure(const char *path, bool mapped_ram,
                                const char *prefix, const char *desc)
{
    g_autofree char *want = g_strconcat(prefix, desc, NULL);
    QTestState *dst = start_destination(ODD_ARGS, NULL, mapped_ram);
    g_autoptr(JsonNode) ret = NULL;
    JsonObject *info;

    qtest_qmp_assert_success(dst,
                             "{'execute': 'migrate-incoming', 'arguments': "
                             "{'uri': 'file:%s', 'exit-on-error': false}}",
                             path);
    /* Never "completed" on the way (migrate_wait_status fails then). */
    migrate_wait_status(dst, "failed", 60);
    ret = qtest_qmp_assert_success_ref(dst, "{'execute': 'query-migrate'}");
    info = json_node_get_object(ret);
    g_assert_cmpstr(qtest_json_get_string(info, "status"), ==, "failed");
    g_assert_cmpstr(qtest_json_get_string(info, "error-desc"), ==, want);
    mig_assert_runstate(dst, "inmigrate");
    qtest_qmp_expect_error(dst, "GenericError",
                           "Guest is waiting for an incoming migration",
                           "{'execute': 'cont'}");
    mig_assert_runstate(dst, "inmigrate");
    qtest_quit(dst);
}

typedef struct Damage {
    const char *what;
    uint64_t offset; /* patch position */
    uint64_t value;
    int size;             /* 4 or 8 bytes, big-endian; 0: no patch */
    uint64_t truncate_to; /* 0: keep the length */
    char *desc;           /* the exact error-desc */
} Damage;

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8) {
        p[i] = v & 0xff;
    }
}

/* A copy of good with one damage applied. */
static void write_damaged(const char *path, const uint8_t *good, gsize len,
                          const Damage *d)
{
    g_autofree uint8_t *copy = g_memdup2(good, len);
    gsize n = d->truncate_to ? d->truncate_to : len;

    if (d->size) {
        g_assert_cmpuint(d->offset + d->size, <=, len);
        put_be(copy + d->offset, d->value, d->size);
    }
    g_assert_true(g_file_set_contents(path, (char *)copy, n, NULL));
}

static void test_mapped_ram_corrupt(void)
{
    QTestState *src = start_source(ODD_ARGS, true);
    g_autofree char *good_path = mig_tmp_path(src, "good.img");
    g_autofree char *bad_path = mig_tmp_path(src, "bad.img");
    g_autofree char *plain_path = mig_tmp_path(src, "plain.img");
    g_autofree char *uri = g_strdup_printf("file:%s", good_path);
    g_autofree char *plain_uri = g_strdup_printf("file:%s", plain_path);
    g_autofree uint8_t *good = NULL;
    g_autoptr(JsonNode) root = NULL;
    JsonObject *ram_hdr, *part;
    uint64_t h, bitmap, pages, used, spare_word, part_eos;
    gsize len;

    mig_stop(src);
    migrate_uri(src, uri);
    migrate_wait_status(src, "completed", MIG_TIMEOUT);
    /* The good file loads, with all of pc.ram's odd tail. */
    load_and_compare(src, uri, ODD_ARGS, ODD_RAM);

    g_assert_true(g_file_get_contents(good_path, (char **)&good, &len, NULL));
    root = analyzer_json(good_path, 0);
    ram_hdr = json_block_header(json_ram_blocks(root), 0);
    h = qtest_json_get_int(ram_hdr, "offset");
    bitmap = qtest_json_get_int(ram_hdr, "bitmap_offset");
    pages = qtest_json_get_int(ram_hdr, "pages_offset");
    used = qtest_json_get_int(
        json_array_get_object_element(json_ram_blocks(root), 0), "used_length");
    g_assert_cmpuint(used, ==, ODD_RAM);
    g_assert_cmpuint((used / 4096) % 64, !=, 0);
    /* The last bitmap word of pc.ram, which has bits past the block. */
    spare_word = bitmap + (used / 4096 / 64) * 8;
    /* A PART section of "ram" holds only EOS: type, id, then the be64. */
    part = json_array_get_object_element(
        json_object_get_array_member(json_node_get_object(root), "sections"),
        1);
    g_assert_cmpstr(qtest_json_get_string(part, "type"), ==, "PART");
    part_eos = qtest_json_get_int(part, "offset") + 5;
    g_assert_cmphex(be64_at(good + part_eos), ==, 0x10);

    Damage damages[] = {
        {"version 2", h, 2, 4, 0,
         g_strdup("Migration mapped-ram capability version not supported "
                  "(expected <= 1, got 2)")},
        {"page size 8192", h + 4, 8192, 8, 0,
         g_strdup("mapped-ram block pc.ram: page size 8192 does not match "
                  "the target page size 4096")},
        {"page size 0", h + 4, 0, 8, 0,
         g_strdup("mapped-ram block pc.ram: page size 0 does not match "
                  "the target page size 4096")},
        {"pages_offset not page aligned", h + 20, pages + 512, 8, 0,
         g_strdup("Error reading ramblock pc.ram pages, region has bad "
                  "alignment")},
        {"pages_offset past the end of the file", h + 20, 1ULL << 40, 8, 0,
         g_strdup_printf("mapped-ram block pc.ram: pages at 0x10000000000 "
                         "(0x%" PRIx64 " bytes) lie beyond the end of the "
                         "file (0x%" PRIx64 " bytes)",
                         used, (uint64_t)len)},
        {"bitmap_offset past the end of the file", h + 12, 1ULL << 40, 8, 0,
         g_strdup("Error reading dirty bitmap")},
        {"bitmap_offset inside the header", h + 12, h, 8, 0,
         g_strdup_printf("mapped-ram block pc.ram: bitmap at 0x%" PRIx64
                         " (0x%" PRIx64 " bytes) does not lie between its "
                         "header (ending at 0x%" PRIx64 ") and its pages at "
                         "0x%" PRIx64,
                         h, DIV_ROUND_UP(used / 4096, 64) * 8, h + 28, pages)},
        {"bitmap bit past the block", spare_word, 0x80, 8, 0,
         g_strdup("page outside of ramblock pc.ram range")},
        {"page area cut short", 0, 0, 0, pages + used / 2,
         g_strdup_printf("mapped-ram block pc.ram: pages at 0x%" PRIx64
                         " (0x%" PRIx64 " bytes) lie beyond the end of the "
                         "file (0x%" PRIx64 " bytes)",
                         pages, used, pages + used / 2)},
        {"header cut short", 0, 0, 0, h + 10,
         g_strdup("Could not read whole mapped-ram migration header "
                  "(expected 28, got 10 bytes)")},
        {"PAGE record in a PART section", part_eos, 0x08, 8, 0,
         g_strdup("Unexpected RAM flags: 8")},
        {"ZERO record in a PART section", part_eos, 0x02, 8, 0,
         g_strdup("Unexpected RAM flags: 2")},
        {"MULTIFD_FLUSH record in a PART section", part_eos, 0x200, 8, 0,
         g_strdup("Unexpected RAM flags: 512")},
    };

    for (size_t i = 0; i < G_N_ELEMENTS(damages); i++) {
        g_test_message("damage: %s", damages[i].what);
        write_damaged(bad_path, good, len, &damages[i]);
        expect_load_failure(bad_path, true, RAM_SECTION_ERROR, damages[i].desc);
        g_free(damages[i].desc);
    }

    /* Both sides must agree on the capability, either way round. */
    expect_load_failure(good_path, false, "",
                        "Capability mapped-ram is off, but received "
                        "capability is on");
    migrate_set_capability(src, "mapped-ram", false);
    migrate_uri(src, plain_uri);
    migrate_wait_status(src, "completed", MIG_TIMEOUT);
    expect_load_failure(plain_path, true, "",
                        "Capability mapped-ram is on, but received "
                        "capability is off");
    qtest_quit(src);
}

/* With exit-on-error (the default) a damaged file ends the destination. */
static void test_mapped_ram_corrupt_exits(void)
{
    QTestState *src = start_source(AB_ARGS, true);
    g_autofree char *path = mig_tmp_path(src, "mig.img");
    g_autofree char *uri = g_strdup_printf("file:%s", path);
    g_autoptr(JsonNode) root = NULL;
    QTestState *dst;
    uint8_t version[4] = {0, 0, 0, 7};
    int fd, status;

    mig_stop(src);
    migrate_uri(src, uri);
    migrate_wait_status(src, "completed", MIG_TIMEOUT);
    root = analyzer_json(path, 0);
    fd = open(path, O_WRONLY);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(
        pwrite(fd, version, 4,
               qtest_json_get_int(json_block_header(json_ram_blocks(root), 1),
                                  "offset")),
        ==, 4);
    close(fd);

    dst = start_destination(AB_ARGS, NULL, true);
    migrate_incoming_uri(dst, uri);
    status = qtest_wait_exit(dst, qtest_scale_timeout(60));
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 1);
    qtest_quit(src);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/migration/precopy/file/mapped-ram",
                    test_mapped_ram_stopped);
    g_test_add_func("/migration/precopy/file/mapped-ram/stale-backend",
                    test_mapped_ram_stale_backend);
    g_test_add_func("/migration/precopy/file/mapped-ram/live",
                    test_mapped_ram_live);
    g_test_add_func("/migration/precopy/file/mapped-ram/live/file-size",
                    test_mapped_ram_live_file_size);
    g_test_add_func("/migration/precopy/file/mapped-ram/offset",
                    test_mapped_ram_offset);
    g_test_add_func("/migration/precopy/fd/mapped-ram", test_mapped_ram_fd);
    g_test_add_func("/migration/mapped-ram/refusals/source",
                    test_mapped_ram_refusals_source);
    g_test_add_func("/migration/mapped-ram/refusals/destination",
                    test_mapped_ram_refusals_destination);
    g_test_add_func("/migration/mapped-ram/bad-file/fail",
                    test_mapped_ram_corrupt);
    g_test_add_func("/migration/mapped-ram/bad-file/exit",
                    test_mapped_ram_corrupt_exits);
    return g_test_run();
}
