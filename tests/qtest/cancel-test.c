/*
 * Cancel and kill (issue 8, point 3). migrate_cancel lands in each
 * outgoing state on purpose — setup (the connect to a destination whose
 * listen queue is full), active (held back by max-bandwidth), device (the
 * final fsync stalled by fault injection) — and every time the source
 * ends "cancelled", runs on with its memory whole, and migrates again;
 * also with a destination that stopped reading (SIGSTOP), whose full
 * socket buffers block the source's main and multifd channels.
 * A destination killed mid-load leaves the source "failed" but running
 * and answering QMP; a source killed mid-save leaves the destination
 * "failed", never running the half-loaded guest, still answering QMP.
 */
#include "qemu/osdep.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "reliability-util.h"

/* Slow enough that a 128 MiB guest stays in "active" for many seconds. */
#define SLOW_BANDWIDTH "4194304"

/* The next MIGRATION event's status, which must be `expected`. */
static void expect_event(QTestState *s, const char *expected)
{
    g_autoptr(JsonObject) ev = qtest_qmp_eventwait(s, "MIGRATION");
    JsonObject *data = qtest_json_get_object(ev, "data");

    g_assert_cmpstr(qtest_json_get_string(data, "status"), ==, expected);
}

static void cancel(QTestState *s)
{
    qtest_qmp_assert_success(s, "{'execute': 'migrate_cancel'}");
}

/* After a cancel: a fresh save of the same source completes and loads. */
static void retry_and_check(QTestState *src, RelMode mode)
{
    g_autofree char *path = mig_tmp_path(src, "retry.img");
    g_autofree char *uri = g_strdup_printf("file:%s", path);

    migrate_set_parameter(src, "max-bandwidth", "0");
    migrate_uri(src, uri);
    migrate_wait_status(src, "completed", MIG_TIMEOUT);
    rel_load_and_check(src, uri, mode);
}

/* --- migrate_cancel in each state --- */

/*
 * A UNIX listener whose queue (length 0) is already full: a connect to it
 * waits until the listener accepts or goes away. *listener and *filler
 * are the test's to close.
 */
static char *full_listener(QTestState *s, int *listener, int *filler)
{
    g_autofree char *path = mig_tmp_path(s, "full.sock");
    struct sockaddr_un addr = {.sun_family = AF_UNIX};

    g_assert_cmpuint(strlen(path), <, sizeof(addr.sun_path));
    strcpy(addr.sun_path, path);
    *listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert_cmpint(bind(*listener, (struct sockaddr *)&addr, sizeof(addr)), ==,
                    0);
    g_assert_cmpint(listen(*listener, 0), ==, 0);
    /* One connection nobody accepts fills a queue of length 0. */
    *filler = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert_cmpint(connect(*filler, (struct sockaddr *)&addr, sizeof(addr)),
                    ==, 0);
    return g_strdup_printf("unix:%s", path);
}

/*
 * setup: the destination does not accept, so the source's connect waits
 * and the migration stays in setup. The cancel interrupts the connect:
 * cancelled, without an error, while the peer still does not answer.
 */
static void test_cancel_setup(void)
{
    QTestState *src = rel_start_source(NULL, MODE_PLAIN);
    g_autoptr(JsonNode) info = NULL;
    g_autofree char *uri = NULL;
    int listener, filler;

    uri = full_listener(src, &listener, &filler);
    migrate_set_capability(src, "events", true);
    migrate_uri(src, uri);
    expect_event(src, "setup");
    cancel(src);
    expect_event(src, "cancelling");
    expect_event(src, "cancelled");
    info = qtest_qmp_assert_success_ref(src, "{'execute': 'query-migrate'}");
    g_assert_false(
        json_object_has_member(json_node_get_object(info), "error-desc"));
    rel_assert_source_sound(src, true);
    retry_and_check(src, MODE_PLAIN);
    close(filler);
    close(listener);
    qtest_quit(src);
}

/* quit while the connect waits: the process exits, and cleanly. */
static void test_quit_in_setup(void)
{
    QTestState *src = rel_start_source(NULL, MODE_PLAIN);
    g_autofree char *uri = NULL;
    int listener, filler;

    uri = full_listener(src, &listener, &filler);
    migrate_set_capability(src, "events", true);
    migrate_uri(src, uri);
    expect_event(src, "setup");
    qtest_quit(src); /* asserts exit status 0 within its timeout */
    close(filler);
    close(listener);
}

/*
 * active: held back by max-bandwidth, in each mode; multifd channels and
 * all. The file left behind is not a valid save, and nobody said it was.
 */
static void test_cancel_active(gconstpointer opaque)
{
    RelMode mode = GPOINTER_TO_INT(opaque);
    QTestState *src = rel_start_source(NULL, mode);
    g_autofree char *path = mig_tmp_path(src, "mig.img");
    g_autofree char *uri = g_strdup_printf("file:%s", path);

    migrate_set_capability(src, "events", true);
    migrate_set_parameter(src, "max-bandwidth", SLOW_BANDWIDTH);
    migrate_uri(src, uri);
    expect_event(src, "setup");
    expect_event(src, "active");
    cancel(src);
    expect_event(src, "cancelling");
    expect_event(src, "cancelled");
    rel_assert_source_sound(src, true);
    /* Cancelling again, with nothing running, changes nothing. */
    cancel(src);
    retry_and_check(src, mode);
    qtest_quit(src);
}

/*
 * device: everything is written and the final fsync stalls (fault
 * injection holds it), the guest stopped for switchover. The cancel wins:
 * the save is not reported complete and the guest runs again.
 */
static void test_cancel_device(gconstpointer opaque)
{
    RelMode mode = GPOINTER_TO_INT(opaque);
    QTestState *src = rel_start_source("-fault-injection on", mode);
    g_autofree char *path = mig_tmp_path(src, "mig.img");
    g_autofree char *uri = g_strdup_printf("file:%s", path);

    migrate_set_capability(src, "events", true);
    qtest_qmp_assert_success(src, "{'execute': 'x-debug-inject-fault', "
                                  "'arguments': {'point': 'save-sync', "
                                  "'hold': true}}");
    migrate_uri(src, uri);
    expect_event(src, "setup");
    expect_event(src, "active");
    expect_event(src, "device");
    mig_assert_runstate(src, "finish-migrate");
    cancel(src);
    expect_event(src, "cancelling");
    /* The stalled fsync ends; the thread then sees the cancel. */
    qtest_qmp_assert_success(src, "{'execute': 'x-debug-inject-fault', "
                                  "'arguments': {'point': 'none'}}");
    expect_event(src, "cancelled");
    rel_assert_source_sound(src, true);
    retry_and_check(src, mode);
    qtest_quit(src);
}

static int64_t transferred(QTestState *s)
{
    g_autoptr(JsonNode) ret =
        qtest_qmp_assert_success_ref(s, "{'execute': 'query-migrate'}");
    JsonObject *ram = qtest_json_get_object(json_node_get_object(ret), "ram");

    return qtest_json_get_int(ram, "transferred");
}

/* Waits until the source's byte count stands still: its writes block. */
static void wait_stuck(QTestState *s)
{
    int64_t last = -1;

    for (int i = 0; i < 150; i++) {
        int64_t now = transferred(s);

        if (now == last) {
            return;
        }
        last = now;
        g_usleep(200 * 1000); /* nothing to wait on: a write that blocks */
    }
    g_error("the source kept sending to a stopped destination");
}

/*
 * A destination that stops reading (SIGSTOP) leaves the source's writes
 * blocked on full socket buffers, main channel and multifd channels
 * alike: the cancel must unblock them all, and the source runs on.
 */
static void test_cancel_stuck_peer(gconstpointer opaque)
{
    bool multifd = GPOINTER_TO_INT(opaque);
    QTestState *dst = rel_start_destination(NULL, MODE_PLAIN);
    QTestState *src = rel_start_source(NULL, MODE_PLAIN);
    g_autofree char *uri =
        g_strdup_printf("unix:%s/mig.sock", qtest_tmpdir(dst));

    if (multifd) {
        migrate_set_capability(src, "multifd", true);
        migrate_set_capability(dst, "multifd", true);
    }
    migrate_set_capability(dst, "events", true);
    migrate_set_capability(src, "events", true);
    migrate_incoming_uri_keep(dst, uri);
    migrate_uri(src, uri);
    expect_event(dst, "setup");
    expect_event(dst, "active");
    g_assert_cmpint(kill(qtest_pid(dst), SIGSTOP), ==, 0);
    expect_event(src, "setup");
    expect_event(src, "active");
    wait_stuck(src);
    cancel(src);
    expect_event(src, "cancelling");
    expect_event(src, "cancelled");
    rel_assert_source_sound(src, true);
    g_assert_cmpint(kill(qtest_pid(dst), SIGCONT), ==, 0);
    qtest_kill(dst);
    migrate_set_capability(src, "multifd", false);
    retry_and_check(src, MODE_PLAIN);
    qtest_quit(src);
}

/* --- killed peers --- */

static char *socket_uri(QTestState *dst, bool tcp)
{
    if (tcp) {
        return g_strdup_printf("tcp:127.0.0.1:%d", mig_free_tcp_port());
    }
    return g_strdup_printf("unix:%s/mig.sock", qtest_tmpdir(dst));
}

/*
 * Starts a migration slowed by max-bandwidth and returns once the
 * destination reports it active, so either side can be killed mid-way.
 */
static void start_slow_migration(QTestState *src, QTestState *dst,
                                 const char *uri, bool multifd)
{
    if (multifd) {
        migrate_set_capability(src, "multifd", true);
        migrate_set_capability(dst, "multifd", true);
    }
    migrate_set_capability(dst, "events", true);
    migrate_set_parameter(src, "max-bandwidth", SLOW_BANDWIDTH);
    migrate_incoming_uri_keep(dst, uri);
    migrate_uri(src, uri);
    expect_event(dst, "setup");
    expect_event(dst, "active");
}

/*
 * The destination dies (SIGKILL) mid-load: the source reports failed,
 * runs on and answers QMP, and migrates again to a new destination.
 */
static void check_destination_killed(bool tcp, bool multifd)
{
    QTestState *src = rel_start_source(NULL, MODE_PLAIN);
    QTestState *dst = rel_start_destination(NULL, MODE_PLAIN);
    g_autofree char *uri = socket_uri(dst, tcp);

    start_slow_migration(src, dst, uri, multifd);
    qtest_kill(dst);

    migrate_wait_status(src, "failed", MIG_TIMEOUT);
    g_free(migrate_error_desc(src)); /* there is one */
    rel_assert_source_sound(src, true);

    dst = rel_start_destination(NULL, MODE_PLAIN);
    g_free(uri);
    uri = socket_uri(dst, tcp);
    if (multifd) {
        migrate_set_capability(dst, "multifd", true);
    }
    migrate_set_parameter(src, "max-bandwidth", "0");
    migrate_incoming_uri_keep(dst, uri);
    migrate_and_wait(src, dst, uri);
    mig_assert_same_ram(src, dst);
    rel_assert_ab_ok(dst);
    qtest_quit(dst);
    qtest_quit(src);
}

static void test_destination_killed_unix(void)
{
    check_destination_killed(false, false);
}

static void test_destination_killed_tcp_multifd(void)
{
    check_destination_killed(true, true);
}

/*
 * The source dies (SIGKILL) mid-save: the destination reports failed,
 * never runs the half-loaded guest, and answers QMP.
 */
static void check_source_killed(bool tcp, bool multifd)
{
    QTestState *src = rel_start_source(NULL, MODE_PLAIN);
    QTestState *dst = rel_start_destination(NULL, MODE_PLAIN);
    g_autofree char *uri = socket_uri(dst, tcp);

    start_slow_migration(src, dst, uri, multifd);
    qtest_kill(src);

    expect_event(dst, "failed");
    g_free(migrate_error_desc(dst));
    rel_assert_destination_never_ran(dst);
    qtest_quit(dst);
}

static void test_source_killed_unix(void)
{
    check_source_killed(false, false);
}

static void test_source_killed_tcp(void)
{
    check_source_killed(true, false);
}

static void test_source_killed_unix_multifd(void)
{
    check_source_killed(false, true);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    rel_ram_mib = 64; /* small and quick; the points do not need more */
    g_test_add_func("/cancel/setup", test_cancel_setup);
    g_test_add_func("/cancel/setup/quit", test_quit_in_setup);
    g_test_add_data_func("/cancel/active/plain", GINT_TO_POINTER(MODE_PLAIN),
                         test_cancel_active);
    g_test_add_data_func("/cancel/active/multifd",
                         GINT_TO_POINTER(MODE_MULTIFD), test_cancel_active);
    g_test_add_data_func("/cancel/device/plain", GINT_TO_POINTER(MODE_PLAIN),
                         test_cancel_device);
    g_test_add_data_func("/cancel/device/mapped-ram",
                         GINT_TO_POINTER(MODE_MAPPED_RAM), test_cancel_device);
    g_test_add_data_func("/cancel/stuck-peer/unix", GINT_TO_POINTER(false),
                         test_cancel_stuck_peer);
    g_test_add_data_func("/cancel/stuck-peer/multifd", GINT_TO_POINTER(true),
                         test_cancel_stuck_peer);
    g_test_add_func("/kill/destination/unix", test_destination_killed_unix);
    g_test_add_func("/kill/destination/tcp-multifd",
                    test_destination_killed_tcp_multifd);
    g_test_add_func("/kill/source/unix", test_source_killed_unix);
    g_test_add_func("/kill/source/tcp", test_source_killed_tcp);
    g_test_add_func("/kill/source/unix-multifd",
                    test_source_killed_unix_multifd);
    return g_test_run();
}
