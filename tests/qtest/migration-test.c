/*
 * The migration matrix of issue 3, end to end: real minivm processes save
 * a guest through every transport (file: with and without an offset,
 * unix:, tcp:, exec:, fd: from getfd, the channels form) and load it in
 * another process, which must come alive with memory that passes the a-b
 * checker and, where both sides are stopped, equals the source's byte for
 * byte. Also: cancel then retry, convergence of a guest that dirties
 * memory (with parameters changed mid-way), every error message of the
 * checks through QMP and HMP, and broken streams that must fail the
 * destination without ever running its guest.
 */
#include "qemu/osdep.h"

#include <sys/socket.h>

#include "migration-helpers.h"

#define GUEST_ARGS "-m 128M -workload a-b"
#define RAM_SIZE   (128 * MiB)

/* --- helpers --- */

/*
 * A source set to converge even on a slow (sanitizer) build: unlimited
 * bandwidth and 5 s of acceptable downtime. The a-b guest (args NULL) has
 * run a little.
 */
static QTestState *start_source(const char *args)
{
    QTestState *src = mig_start_source(args ? args : GUEST_ARGS);

    migrate_set_parameter(src, "downtime-limit", "5000");
    return src;
}

/* The figures of a completed migration are there and add up. */
static void assert_completed_info(QTestState *s)
{
    g_autoptr(JsonNode) ret = migrate_query(s);
    JsonObject *info = json_node_get_object(ret);
    JsonObject *ram = qtest_json_get_object(info, "ram");
    int64_t normal = qtest_json_get_int(ram, "normal");

    g_assert_cmpstr(qtest_json_get_string(info, "status"), ==, "completed");
    g_assert_cmpint(qtest_json_get_int(info, "total-time"), >=,
                    qtest_json_get_int(info, "downtime"));
    g_assert_cmpint(qtest_json_get_int(info, "setup-time"), >=, 0);
    g_assert_false(json_object_has_member(info, "expected-downtime"));
    g_assert_false(json_object_has_member(info, "error-desc"));
    /* pc.ram + vga.vram + pc.bios */
    g_assert_cmpint(qtest_json_get_int(ram, "total"), ==,
                    RAM_SIZE + 8 * MiB + 256 * KiB);
    g_assert_cmpint(qtest_json_get_int(ram, "page-size"), ==, 4096);
    g_assert_cmpint(qtest_json_get_int(ram, "normal-bytes"), ==, normal * 4096);
    g_assert_cmpint(normal, >, 0);
    g_assert_cmpint(qtest_json_get_int(ram, "duplicate"), >, 0);
    g_assert_cmpint(qtest_json_get_int(ram, "transferred"), >, normal * 4096);
    g_assert_cmpint(qtest_json_get_int(ram, "remaining"), ==, 0);
    g_assert_cmpint(qtest_json_get_int(ram, "dirty-sync-count"), >=, 1);
    g_assert_cmpint(qtest_json_get_int(ram, "multifd-bytes"), ==, 0);
    g_assert_cmpint(qtest_json_get_int(ram, "pages-per-second"), >, 0);
    g_assert_cmpfloat(json_object_get_double_member(ram, "mbps"), >, 0);
}

/*
 * Load uri into a fresh destination and check it: same RAM as the
 * (stopped) source, a-b pattern whole, run state as the source had it,
 * and alive after cont.
 */
static void load_and_check(QTestState *src, const char *uri, bool src_ran)
{
    QTestState *dst = mig_start_destination(GUEST_ARGS);

    migrate_incoming_uri(dst, uri);
    migrate_wait_status(dst, "completed", MIG_TIMEOUT);
    if (src_ran) {
        mig_assert_runstate(dst, "running");
        mig_stop(dst);
    } else {
        mig_assert_runstate(dst, "paused");
        mig_assert_same_ram(src, dst);
    }
    mig_assert_ab_ok(dst, RAM_SIZE);
    mig_cont(dst);
    mig_wait_alive(dst);
    qtest_quit(dst);
}

/* The next event of that name's "status" / "pass" member. */
static char *event_status(QTestState *s)
{
    g_autoptr(JsonObject) ev = qtest_qmp_eventwait(s, "MIGRATION");
    JsonObject *data = qtest_json_get_object(ev, "data");

    return g_strdup(qtest_json_get_string(data, "status"));
}

static void assert_events(QTestState *s, const char *const *expected)
{
    for (size_t i = 0; expected[i]; i++) {
        g_autofree char *status = event_status(s);

        g_assert_cmpstr(status, ==, expected[i]);
    }
}

/* --- precopy over file: --- */

/* A stopped source: events in order, figures, byte-identical RAM. */
static void test_precopy_file(void)
{
    static const char *const src_events[] = {"setup", "active", "device",
                                             "completed", NULL};
    static const char *const dst_events[] = {"setup", "active", "completed",
                                             NULL};
    QTestState *src = start_source(NULL);
    QTestState *dst = mig_start_destination(GUEST_ARGS);
    g_autofree char *path = mig_tmp_path(src, "mig.img");
    g_autofree char *uri = g_strdup_printf("file:%s", path);
    g_autoptr(JsonNode) channels = NULL;

    mig_stop(src);
    migrate_set_capability(src, "events", true);
    migrate_uri(src, uri);
    migrate_wait_status(src, "completed", MIG_TIMEOUT);
    assert_events(src, src_events);
    g_assert_nonnull(qtest_qmp_event_take(src, "MIGRATION_PASS"));
    mig_assert_runstate(src, "postmigrate");
    assert_completed_info(src);
    channels = qtest_qmp_assert_success_ref(
        src, "{'execute': 'x-query-multifd-channels'}");
    g_assert_true(JSON_NODE_HOLDS_ARRAY(channels));
    g_assert_cmpuint(json_array_get_length(json_node_get_array(channels)), ==,
                     0);
    g_autofree char *hmp = qtest_hmp(src, "info migrate");
    g_assert_nonnull(strstr(hmp, "Migration status: completed\r\n"));
    g_assert_nonnull(strstr(hmp, "total ram: 139520 kbytes\r\n"));

    migrate_set_capability(dst, "events", true);
    migrate_incoming_uri(dst, uri);
    migrate_wait_status(dst, "completed", MIG_TIMEOUT);
    assert_events(dst, dst_events);
    mig_assert_runstate(dst, "paused");
    mig_assert_same_ram(src, dst);
    mig_assert_ab_ok(dst, RAM_SIZE);
    mig_cont(dst);
    mig_wait_alive(dst);
    qtest_quit(dst);
    qtest_quit(src);
}

/* A running source ends in postmigrate; the destination runs. */
static void test_precopy_file_live(void)
{
    QTestState *src = start_source(NULL);
    g_autofree char *path = mig_tmp_path(src, "mig.img");
    g_autofree char *uri = g_strdup_printf("file:%s", path);

    migrate_uri(src, uri);
    migrate_wait_status(src, "completed", MIG_TIMEOUT);
    mig_assert_runstate(src, "postmigrate");
    assert_completed_info(src);
    mig_assert_ab_ok(src, RAM_SIZE);
    load_and_check(src, uri, true);
    qtest_quit(src);
}

/* The management header before offset= survives; the stream starts there. */
static void test_precopy_file_offset(void)
{
    QTestState *src = start_source(NULL);
    g_autofree char *path = mig_tmp_path(src, "mig.img");
    g_autofree char *uri = g_strdup_printf("file:%s,offset=4096", path);
    g_autofree char *data = NULL;
    char header[4096];
    gsize len;

    memset(header, 'X', sizeof(header));
    g_assert_true(g_file_set_contents(path, header, sizeof(header), NULL));
    mig_stop(src);
    migrate_uri(src, uri);
    migrate_wait_status(src, "completed", MIG_TIMEOUT);

    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    g_assert_cmpuint(len, >, 4096 + 8);
    for (size_t i = 0; i < 4096; i++) {
        g_assert_cmpint(data[i], ==, 'X');
    }
    g_assert_cmpmem(data + 4096, 4, "QEVM", 4);
    load_and_check(src, uri, false);
    qtest_quit(src);
}

/* A bad offset is the command's error, and nothing is written. */
static void test_precopy_file_offset_bad(void)
{
    QTestState *src = start_source(NULL);
    g_autofree char *path = mig_tmp_path(src, "mig.img");
    g_autofree char *hmp = NULL;

    qtest_qmp_expect_error(
        src, "GenericError", "file URI has bad offset 0x20M",
        "{'execute': 'migrate', 'arguments': {'uri': 'file:%s,offset=0x20M'}}",
        path);
    hmp = qtest_hmp(src, "migrate file:%s,offset=0x20M", path);
    g_assert_cmpstr(hmp, ==, "Error: file URI has bad offset 0x20M\r\n");
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
    mig_assert_runstate(src, "running");
    qtest_quit(src);
}

/* The channels form reaches the same transport. */
static void test_precopy_file_channels(void)
{
    QTestState *src = start_source(NULL);
    g_autofree char *path = mig_tmp_path(src, "mig.img");
    g_autofree char *uri = g_strdup_printf("file:%s,offset=0x1000", path);

    mig_stop(src);
    qtest_qmp_assert_success(
        src,
        "{'execute': 'migrate', 'arguments': {'channels': [{'channel-type': "
        "'main', 'addr': {'transport': 'file', 'filename': '%s', "
        "'offset': 4096}}]}}",
        path);
    migrate_wait_status(src, "completed", MIG_TIMEOUT);
    load_and_check(src, uri, false);
    qtest_quit(src);
}

/* --- sockets, exec, fd --- */

static void migrate_live_to(QTestState *src, QTestState *dst, const char *uri)
{
    migrate_and_wait(src, dst, uri);
    mig_assert_runstate(src, "postmigrate");
    mig_assert_runstate(dst, "running");
    assert_completed_info(src);
    mig_wait_alive(dst);
    mig_stop(dst);
    mig_assert_ab_ok(dst, RAM_SIZE);
}

static void test_precopy_unix(void)
{
    QTestState *dst = qtest_init_incoming("unix:{tmp}/mig.sock", GUEST_ARGS);
    QTestState *src = start_source(NULL);
    g_autofree char *uri =
        g_strdup_printf("unix:%s/mig.sock", qtest_tmpdir(dst));

    migrate_live_to(src, dst, uri);
    qtest_quit(dst);
    qtest_quit(src);
}

static void test_precopy_tcp(void)
{
    g_autofree char *uri =
        g_strdup_printf("tcp:127.0.0.1:%d", mig_free_tcp_port());
    QTestState *dst = mig_start_destination(GUEST_ARGS);
    QTestState *src = start_source(NULL);

    migrate_incoming_uri(dst, uri);
    g_autofree char *status = migrate_query_status(dst);
    g_assert_cmpstr(status, ==, "setup");
    migrate_live_to(src, dst, uri);
    qtest_quit(dst);
    qtest_quit(src);
}

static void test_precopy_exec(void)
{
    QTestState *src = start_source(NULL);
    g_autofree char *path = mig_tmp_path(src, "mig.img");
    g_autofree char *out = g_strdup_printf("exec:cat > %s", path);
    g_autofree char *in = g_strdup_printf("exec:cat %s", path);

    mig_stop(src);
    migrate_uri(src, out);
    migrate_wait_status(src, "completed", MIG_TIMEOUT);
    load_and_check(src, in, false);
    qtest_quit(src);
}

/* Both sides get their descriptor with getfd over SCM_RIGHTS. */
static void test_precopy_fd(void)
{
    QTestState *src = start_source(NULL);
    QTestState *dst = mig_start_destination(GUEST_ARGS);
    g_autofree char *path = mig_tmp_path(src, "mig.img");
    int fd;

    mig_stop(src);
    fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    g_assert_cmpint(fd, >=, 0);
    g_autoptr(JsonObject) r1 = qtest_qmp_fds(
        src, &fd, 1, "{'execute': 'getfd', 'arguments': {'fdname': 'mig'}}");
    close(fd);
    g_assert_true(json_object_has_member(r1, "return"));
    migrate_uri(src, "fd:mig");
    migrate_wait_status(src, "completed", MIG_TIMEOUT);

    fd = open(path, O_RDONLY);
    g_assert_cmpint(fd, >=, 0);
    g_autoptr(JsonObject) r2 = qtest_qmp_fds(
        dst, &fd, 1, "{'execute': 'getfd', 'arguments': {'fdname': 'mig'}}");
    close(fd);
    g_assert_true(json_object_has_member(r2, "return"));
    migrate_incoming_uri(dst, "fd:mig");
    migrate_wait_status(dst, "completed", MIG_TIMEOUT);
    mig_assert_runstate(dst, "paused");
    mig_assert_same_ram(src, dst);
    qtest_quit(dst);
    qtest_quit(src);
}

/* --- cancel, failure, convergence --- */

/*
 * Cancelled half-way, the source goes on running; a second attempt then
 * completes and loads.
 */
static void test_cancel_then_retry(void)
{
    static const char *const events[] = {"setup", "active", "cancelling",
                                         "cancelled", NULL};
    QTestState *src = start_source(NULL);
    g_autofree char *path = mig_tmp_path(src, "mig.img");
    g_autofree char *uri = g_strdup_printf("file:%s", path);
    g_autofree char *hmp = NULL;

    migrate_set_capability(src, "events", true);
    migrate_set_parameter(src, "max-bandwidth", "4194304"); /* 4 MiB/s */
    migrate_uri(src, uri);
    migrate_wait_status(src, "active", MIG_TIMEOUT);
    qtest_qmp_expect_error(src, "GenericError",
                           "There's a migration process in progress",
                           "{'execute': 'migrate', 'arguments': "
                           "{'uri': '%s'}}",
                           uri);
    qtest_qmp_assert_success(src, "{'execute': 'migrate_cancel'}");
    migrate_wait_status(src, "cancelled", MIG_TIMEOUT);
    assert_events(src, events);
    mig_assert_runstate(src, "running");
    /* Still alive: two more B's after what it had printed. */
    g_autofree char *before = qtest_serial_read(src);
    g_autofree char *more = g_strconcat(before, "BB", NULL);
    qtest_wait_serial(src, more, 60);
    /* Cancelling again, with nothing running, is not an error. */
    qtest_qmp_assert_success(src, "{'execute': 'migrate_cancel'}");

    hmp = qtest_hmp(src, "migrate_set_parameter max-bandwidth 0");
    g_assert_cmpstr(hmp, ==, "");
    migrate_uri(src, uri);
    migrate_wait_status(src, "completed", MIG_TIMEOUT);
    load_and_check(src, uri, true);
    qtest_quit(src);
}

/* A destination that is not there fails the migration; the source runs. */
static void test_failed_connect(void)
{
    QTestState *src = start_source(NULL);
    g_autofree char *uri =
        g_strdup_printf("unix:%s/nobody.sock", qtest_tmpdir(src));
    g_autoptr(JsonNode) ret = NULL;
    g_autofree char *hmp = NULL;

    migrate_uri(src, uri);
    for (int i = 0; i < 500; i++) {
        g_autofree char *status = migrate_query_status(src);

        if (!strcmp(status, "failed")) {
            break;
        }
        g_usleep(10 * 1000);
    }
    ret = migrate_query(src);
    JsonObject *info = json_node_get_object(ret);
    g_assert_cmpstr(qtest_json_get_string(info, "status"), ==, "failed");
    g_assert_cmpstr(qtest_json_get_string(info, "error-desc"), !=, "");
    mig_assert_runstate(src, "running");
    hmp = qtest_hmp(src, "info migrate");
    g_assert_true(g_str_has_prefix(hmp, "Migration status: failed ("));
    qtest_quit(src);
}

/*
 * The destination goes away mid-stream: the migration fails, the source
 * goes on running, and a second migration elsewhere completes.
 */
static void test_failed_peer_gone(void)
{
    QTestState *dst = qtest_init_incoming("unix:{tmp}/mig.sock", GUEST_ARGS);
    QTestState *src = start_source(NULL);
    g_autofree char *uri =
        g_strdup_printf("unix:%s/mig.sock", qtest_tmpdir(dst));
    g_autofree char *path = mig_tmp_path(src, "mig.img");
    g_autofree char *file_uri = g_strdup_printf("file:%s", path);
    g_autoptr(JsonNode) ret = NULL;

    migrate_set_parameter(src, "max-bandwidth", "4194304");
    migrate_uri(src, uri);
    migrate_wait_status(src, "active", MIG_TIMEOUT);
    qtest_kill(dst);
    for (int i = 0; i < 3000; i++) {
        g_autofree char *status = migrate_query_status(src);

        if (strcmp(status, "active")) {
            break;
        }
        g_usleep(10 * 1000);
    }
    ret = migrate_query(src);
    JsonObject *info = json_node_get_object(ret);
    g_assert_cmpstr(qtest_json_get_string(info, "status"), ==, "failed");
    g_assert_cmpstr(qtest_json_get_string(info, "error-desc"), !=, "");
    mig_assert_runstate(src, "running");

    migrate_set_parameter(src, "max-bandwidth", "0");
    migrate_uri(src, file_uri);
    migrate_wait_status(src, "completed", MIG_TIMEOUT);
    load_and_check(src, file_uri, true);
    qtest_quit(src);
}

/* quit in the middle of a migration cancels it and exits cleanly. */
static void test_quit_while_active(void)
{
    QTestState *src = start_source(NULL);
    g_autofree char *path = mig_tmp_path(src, "mig.img");
    g_autofree char *uri = g_strdup_printf("file:%s", path);

    migrate_set_parameter(src, "max-bandwidth", "1048576");
    migrate_uri(src, uri);
    migrate_wait_status(src, "active", MIG_TIMEOUT);
    qtest_quit(src); /* asserts exit status 0 */
}

/*
 * A guest that dirties 128 MiB/s over 16 MiB cannot converge at 16 MiB/s
 * with 300 ms of downtime: passes go on while expected-downtime is
 * reported. Raising max-bandwidth and downtime-limit mid-way lets it
 * finish; the destination (-S) then holds exactly the source's RAM.
 */
static void test_convergence_dirty(void)
{
    const char *args = "-m 64M -workload dirty,rate=128M,wss=16M";
    QTestState *src = start_source(args);
    QTestState *dst = qtest_init_incoming("defer", "-S -m 64M -workload dirty");
    g_autofree char *path = mig_tmp_path(src, "mig.img");
    g_autofree char *uri = g_strdup_printf("file:%s", path);
    int64_t passes = 0;

    migrate_set_capability(src, "events", true);
    migrate_set_parameter(src, "max-bandwidth", "16777216");
    migrate_set_parameter(src, "downtime-limit", "300");
    /* Let the working set fill with data first (zero pages cost nothing). */
    g_usleep(500 * 1000);
    migrate_uri(src, uri);
    for (int i = 0; i < 6000 && passes < 3; i++) {
        g_autoptr(JsonNode) ret = migrate_query(src);
        JsonObject *info = json_node_get_object(ret);

        const char *status = qtest_json_get_string(info, "status");

        g_assert_true(!strcmp(status, "setup") || !strcmp(status, "active"));
        if (json_object_has_member(info, "ram")) {
            JsonObject *ram = qtest_json_get_object(info, "ram");

            passes = qtest_json_get_int(ram, "dirty-sync-count");
            g_assert_true(json_object_has_member(info, "expected-downtime"));
        }
        g_usleep(20 * 1000);
    }
    g_assert_cmpint(passes, >=, 3);
    for (int64_t pass = 1; pass <= passes; pass++) {
        g_autoptr(JsonObject) ev = qtest_qmp_eventwait(src, "MIGRATION_PASS");

        g_assert_cmpint(
            qtest_json_get_int(qtest_json_get_object(ev, "data"), "pass"), ==,
            pass);
    }
    migrate_set_parameter(src, "downtime-limit", "2000");
    migrate_set_parameter(src, "max-bandwidth", "0");
    migrate_wait_status(src, "completed", MIG_TIMEOUT);

    migrate_incoming_uri(dst, uri);
    migrate_wait_status(dst, "completed", MIG_TIMEOUT);
    mig_assert_runstate(dst, "paused"); /* -S */
    mig_assert_same_ram(src, dst);
    qtest_quit(dst);
    qtest_quit(src);
}

/* --- messages --- */

static void set_caps_hmp(QTestState *s, const char *cap, bool on)
{
    g_autofree char *out =
        qtest_hmp(s, "migrate_set_capability %s %s", cap, on ? "on" : "off");

    g_assert_cmpstr(out, ==, "");
}

static void test_messages_source(void)
{
    QTestState *s = start_source(NULL);
    g_autofree char *file = mig_tmp_path(s, "m.img");
    g_autofree char *sock = mig_tmp_path(s, "m.sock");
    g_autofree char *line = NULL;
    g_autofree char *out = NULL;

    qtest_qmp_expect_error(s, "GenericError",
                           "need either 'uri' or 'channels' argument",
                           "{'execute': 'migrate'}");
    qtest_qmp_expect_error(
        s, "GenericError", "Channel list has more than one entries",
        "{'execute': 'migrate', 'arguments': {'channels': ["
        "{'channel-type': 'main', 'addr': {'transport': 'file', "
        "'filename': '%s', 'offset': 0}}, "
        "{'channel-type': 'main', 'addr': {'transport': 'file', "
        "'filename': '%s', 'offset': 0}}]}}",
        file, file);
    mig_expect_error_both(
        s, "unknown migration protocol: foo:bar", "migrate foo:bar",
        "{'execute': 'migrate', 'arguments': {'uri': 'foo:bar'}}");

    /* mapped-ram needs a seekable transport. */
    set_caps_hmp(s, "mapped-ram", true);
    line = g_strdup_printf("migrate unix:%s", sock);
    mig_expect_error_both(
        s, "Migration requires seekable transport (e.g. file)", line,
        "{'execute': 'migrate', 'arguments': {'uri': 'unix:%s'}}", sock);
    /* ... and refuses compression, whichever is set first. */
    mig_expect_compression_refused(s, "zlib");
    set_caps_hmp(s, "mapped-ram", false);
    migrate_set_parameter(s, "multifd-compression", "'zstd'");
    mig_expect_mapped_ram_refused(s, "fixed-ram");
    migrate_set_parameter(s, "multifd-compression", "'none'");

    /* multifd: extra channels, and direct-io's extra fds. */
    set_caps_hmp(s, "multifd", true);
    mig_expect_multifd_transport_refusals(s, file, sock);
    /* (multifd over sockets works now: tests/qtest/multifd-test.c, mfd) */
    set_caps_hmp(s, "multifd", false);
    g_assert_false(g_file_test(file, G_FILE_TEST_EXISTS));

    /* HMP reads each kind of value, and names what it refused. */
    {
        static const char *const refused[][2] = {
            {"multifd-zstd-level 256",
             "Parameter 'multifd-zstd-level' expects uint8_t"},
            {"downtime-limit -1",
             "Parameter 'downtime-limit' expects uint64_t"},
            {"max-bandwidth 1Q", "Invalid size 1Q"},
            {"zero-page-detection all",
             "Parameter 'zero-page-detection' does not accept value 'all'"},
            {"direct-io maybe", "Invalid boolean 'maybe': expected on, off, "
                                "yes, no, true or false"},
            {"no-such-thing 1", "invalid parameter value: no-such-thing"},
        };
        char *hmp;

        for (size_t i = 0; i < G_N_ELEMENTS(refused); i++) {
            g_autofree char *want =
                g_strdup_printf("Error: %s\r\n", refused[i][1]);
            g_autofree char *got =
                qtest_hmp(s, "migrate_set_parameter %s", refused[i][0]);

            g_assert_cmpstr(got, ==, want);
        }
        hmp = qtest_hmp(s, "migrate_set_parameter max-bandwidth 3");
        g_assert_cmpstr(hmp, ==, "");
        g_free(hmp);
        hmp = qtest_hmp(s, "migrate_set_parameter multifd-zlib-level 7");
        g_free(hmp);
        hmp = qtest_hmp(s, "migrate_set_parameter zero-page-detection legacy");
        g_free(hmp);
        hmp = qtest_hmp(s, "info migrate_parameters");
        /* Bare numbers are MiB/s. */
        g_assert_nonnull(
            strstr(hmp, "max-bandwidth: 3145728 bytes/second\r\n"));
        g_assert_nonnull(strstr(hmp, "multifd-zlib-level: 7\r\n"));
        g_assert_nonnull(strstr(hmp, "zero-page-detection: legacy\r\n"));
        g_free(hmp);
        hmp = qtest_hmp(s, "migrate_set_parameter zero-page-detection multifd");
        g_free(hmp);
    }

    /* Parameter ranges. */
    mig_expect_multifd_channels_refused(s, 0);
    mig_expect_error_both(
        s,
        "Parameter 'downtime_limit' expects a value between 0 and "
        "2000000",
        "migrate_set_parameter downtime-limit 2000001",
        "{'execute': 'migrate-set-parameters', 'arguments': "
        "{'downtime-limit': 2000001}}");
    mig_expect_error_both(s,
                          "'-incoming' was not specified on the command line",
                          "migrate_incoming file:/nonexistent",
                          "{'execute': 'migrate-incoming', 'arguments': "
                          "{'uri': 'file:/nonexistent'}}");

    /* A refused setting changed nothing. */
    out = qtest_hmp(s, "info migrate_parameters");
    g_assert_nonnull(strstr(out, "multifd-channels: 2\r\n"));
    g_assert_nonnull(strstr(out, "multifd-compression: none\r\n"));
    g_assert_nonnull(strstr(out, "direct-io: off\r\n"));
    g_assert_nonnull(strstr(out, "downtime-limit: 5000 ms\r\n"));
    g_free(out);
    out = qtest_hmp(s, "info migrate_capabilities");
    g_assert_cmpstr(out, ==,
                    "events: off\r\nmultifd: off\r\nmapped-ram: off\r\n");

    /* While a migration runs, capabilities are frozen. */
    migrate_set_parameter(s, "max-bandwidth", "1048576");
    g_free(line);
    line = g_strdup_printf("file:%s", file);
    migrate_uri(s, line);
    migrate_wait_status(s, "active", MIG_TIMEOUT);
    mig_expect_error_both(
        s, "There's a migration process in progress",
        "migrate_set_capability events on",
        "{'execute': 'migrate-set-capabilities', 'arguments': "
        "{'capabilities': [{'capability': 'events', "
        "'state': true}]}}");
    mig_expect_error_both(s, "There's a migration process in progress",
                          "migrate_set_parameter multifd-channels 4",
                          "{'execute': 'migrate-set-parameters', 'arguments': "
                          "{'multifd-channels': 4}}");
    g_free(line);
    line = g_strdup_printf("migrate file:%s", file);
    mig_expect_error_both(
        s, "There's a migration process in progress", line,
        "{'execute': 'migrate', 'arguments': {'uri': 'file:%s'}}", file);
    g_free(out);
    out = qtest_hmp(s, "migrate_cancel");
    g_assert_cmpstr(out, ==, "");
    migrate_wait_status(s, "cancelled", MIG_TIMEOUT);
    qtest_quit(s);
}

static void test_messages_destination(void)
{
    QTestState *dst = mig_start_destination(GUEST_ARGS);
    g_autofree char *sock = mig_tmp_path(dst, "in.sock");
    g_autofree char *line = g_strdup_printf("migrate_incoming unix:%s", sock);
    g_autofree char *out = NULL;

    mig_expect_error_both(dst, "Guest is waiting for an incoming migration",
                          "migrate file:/dev/null",
                          "{'execute': 'migrate', 'arguments': "
                          "{'uri': 'file:/dev/null'}}");
    out = qtest_hmp(dst, "%s", line);
    g_assert_cmpstr(out, ==, "");
    mig_expect_error_both(
        dst, "The incoming migration has already been started", line,
        "{'execute': 'migrate-incoming', 'arguments': "
        "{'uri': 'unix:%s'}}",
        sock);
    mig_expect_error_both(
        dst, "Multifd must be set before incoming starts",
        "migrate_set_capability multifd on",
        "{'execute': 'migrate-set-capabilities', 'arguments': "
        "{'capabilities': [{'capability': 'multifd', "
        "'state': true}]}}");
    mig_expect_error_both(dst, "Guest is waiting for an incoming migration",
                          "cont", "{'execute': 'cont'}");
    qtest_quit(dst);
}

/* --- broken streams --- */

/* A good stream of a stopped guest, to break in various ways. */
static GBytes *save_stream(QTestState *src)
{
    g_autofree char *path = mig_tmp_path(src, "good.img");
    g_autofree char *uri = g_strdup_printf("file:%s", path);
    char *data;
    gsize len;

    mig_stop(src);
    migrate_uri(src, uri);
    migrate_wait_status(src, "completed", MIG_TIMEOUT);
    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    return g_bytes_new_take(data, len);
}

/*
 * Loads bytes with exit-on-error off: the load fails with desc (or any
 * message when desc is NULL), and the guest never runs.
 */
static void expect_load_failure(const void *bytes, size_t len, const char *desc)
{
    QTestState *dst = mig_start_destination(GUEST_ARGS);
    g_autofree char *path = mig_tmp_path(dst, "bad.img");
    g_autoptr(JsonNode) ret = NULL;

    g_assert_true(g_file_set_contents(path, bytes, len, NULL));
    qtest_qmp_assert_success(dst,
                             "{'execute': 'migrate-incoming', 'arguments': "
                             "{'uri': 'file:%s', 'exit-on-error': false}}",
                             path);
    /* Never "completed" on the way (migrate_wait_status fails then). */
    migrate_wait_status(dst, "failed", 30);
    ret = migrate_query(dst);
    JsonObject *info = json_node_get_object(ret);
    g_assert_cmpstr(qtest_json_get_string(info, "status"), ==, "failed");
    if (desc) {
        g_assert_cmpstr(qtest_json_get_string(info, "error-desc"), ==, desc);
    } else {
        g_assert_cmpstr(qtest_json_get_string(info, "error-desc"), !=, "");
    }
    mig_assert_runstate(dst, "inmigrate");
    qtest_qmp_expect_error(dst, "GenericError",
                           "Guest is waiting for an incoming migration",
                           "{'execute': 'cont'}");
    mig_assert_runstate(dst, "inmigrate");
    qtest_quit(dst);
}

static void test_bad_streams(void)
{
    QTestState *src = start_source(NULL);
    g_autoptr(GBytes) good = save_stream(src);
    gsize len;
    const uint8_t *data = g_bytes_get_data(good, &len);
    g_autofree uint8_t *copy = g_memdup2(data, len);

    qtest_quit(src);
    g_assert_cmpuint(len, >, 1 * MiB);

    expect_load_failure(data, 0, "Not a migration stream");
    expect_load_failure(data, 6, NULL);
    expect_load_failure(data, 1000, NULL);
    expect_load_failure(data, len / 2, NULL);

    copy[0] ^= 0x01; /* magic */
    expect_load_failure(copy, len, "Not a migration stream");
    copy[0] = data[0];
    copy[7] = 2; /* version */
    expect_load_failure(copy, len,
                        "SaveVM v2 format is obsolete and don't work anymore");
    copy[7] = data[7];
    copy[8] = 0x04; /* the CONFIGURATION section type */
    expect_load_failure(copy, len, "Configuration section missing");
    copy[8] = data[8];
}

/* With exit-on-error (the default), a failed load ends the process. */
static void test_bad_stream_exits(void)
{
    QTestState *dst = mig_start_destination(GUEST_ARGS);
    g_autofree char *path = mig_tmp_path(dst, "bad.img");
    g_autofree char *uri = g_strdup_printf("file:%s", path);
    int status;

    g_assert_true(g_file_set_contents(path, "QEVM\0\0\0\3", 8, NULL));
    migrate_incoming_uri(dst, uri);
    status = qtest_wait_exit(dst, 60);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 1);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/migration/precopy/file", test_precopy_file);
    g_test_add_func("/migration/precopy/file/live", test_precopy_file_live);
    g_test_add_func("/migration/precopy/file/offset", test_precopy_file_offset);
    g_test_add_func("/migration/precopy/file/offset/bad",
                    test_precopy_file_offset_bad);
    g_test_add_func("/migration/precopy/file/channels",
                    test_precopy_file_channels);
    g_test_add_func("/migration/precopy/unix/plain", test_precopy_unix);
    g_test_add_func("/migration/precopy/tcp/plain", test_precopy_tcp);
    g_test_add_func("/migration/precopy/exec", test_precopy_exec);
    g_test_add_func("/migration/precopy/fd", test_precopy_fd);
    g_test_add_func("/migration/cancel/retry", test_cancel_then_retry);
    g_test_add_func("/migration/failed/connect", test_failed_connect);
    g_test_add_func("/migration/failed/peer-gone", test_failed_peer_gone);
    g_test_add_func("/migration/quit-while-active", test_quit_while_active);
    g_test_add_func("/migration/convergence/dirty", test_convergence_dirty);
    g_test_add_func("/migration/messages/source", test_messages_source);
    g_test_add_func("/migration/messages/destination",
                    test_messages_destination);
    g_test_add_func("/migration/bad-stream/fail", test_bad_streams);
    g_test_add_func("/migration/bad-stream/exit", test_bad_stream_exits);
    return g_test_run();
}
