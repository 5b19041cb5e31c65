/*
 * Run states as a management client sees them: the a-b guest boots and
 * prints, stop/cont move it between "running" and "paused" with STOP and
 * RESUME events, HMP's "info status" agrees with QMP, -S holds the guest
 * in "prelaunch" until cont, and guest memory is still while stopped and
 * changes while running.
 */
#include "qemu/osdep.h"

#include "libqtest.h"

#define GUEST_ARGS "-m 128M -workload a-b"

/* query-status, checking its "running" flag agrees with "status". */
static char *status_checked(QTestState *s)
{
    g_autoptr(JsonNode) ret =
        qtest_qmp_assert_success_ref(s, "{'execute': 'query-status'}");
    JsonObject *obj = json_node_get_object(ret);
    const char *status = qtest_json_get_string(obj, "status");
    g_assert_true(json_object_has_member(obj, "running"));
    g_assert_cmpint(json_object_get_boolean_member(obj, "running"), ==,
                    !strcmp(status, "running"));
    return g_strdup(status);
}

/* query-status and HMP's "info status" (in QEMU's words) both say so. */
static void assert_status(QTestState *s, const char *expected)
{
    g_autofree char *status = status_checked(s);
    g_assert_cmpstr(status, ==, expected);

    g_autofree char *want = NULL;
    if (!strcmp(expected, "running") || !strcmp(expected, "paused")) {
        want = g_strdup_printf("VM status: %s\r\n", expected);
    } else {
        want = g_strdup_printf("VM status: paused (%s)\r\n", expected);
    }
    g_autofree char *hmp = qtest_hmp(s, "info status");
    g_assert_cmpstr(hmp, ==, want);
}

/* The guest prints 'A' once, then only 'B's. */
static void test_ab_prints_a_then_b(void)
{
    QTestState *s = qtest_init(GUEST_ARGS);
    qtest_wait_serial(s, "ABB", 30);
    g_autofree char *out = qtest_serial_read(s);
    g_assert_cmpint(out[0], ==, 'A');
    g_assert_cmpuint(strspn(out + 1, "B"), ==, strlen(out + 1));
    qtest_quit(s);
}

static void test_stop_cont(void)
{
    QTestState *s = qtest_init(GUEST_ARGS);
    qtest_wait_serial(s, "A", 30);
    assert_status(s, "running");

    qtest_qmp_assert_success(s, "{'execute':'stop'}");
    json_object_unref(qtest_qmp_eventwait(s, "STOP"));
    assert_status(s, "paused");

    /* Stopping a stopped guest succeeds and says nothing. */
    qtest_qmp_assert_success(s, "{'execute':'stop'}");
    g_assert_null(qtest_qmp_event_take(s, "STOP"));

    qtest_qmp_assert_success(s, "{'execute':'cont'}");
    json_object_unref(qtest_qmp_eventwait(s, "RESUME"));
    assert_status(s, "running");

    /* The same through HMP, with the same events. */
    g_autofree char *out = qtest_hmp(s, "stop");
    g_assert_cmpstr(out, ==, "");
    json_object_unref(qtest_qmp_eventwait(s, "STOP"));
    assert_status(s, "paused");
    g_free(out);
    out = qtest_hmp(s, "cont");
    g_assert_cmpstr(out, ==, "");
    json_object_unref(qtest_qmp_eventwait(s, "RESUME"));
    assert_status(s, "running");

    /* A second client sees the events of commands the first one sent. */
    QTestState *c = qtest_client_new(s, true);
    qtest_qmp_assert_success(s, "{'execute':'stop'}");
    json_object_unref(qtest_qmp_eventwait(c, "STOP"));
    qtest_quit(c);
    qtest_quit(s);
}

/* -S: the guest does not run (prints nothing) until cont. */
static void test_prelaunch(void)
{
    QTestState *s = qtest_init("-S " GUEST_ARGS);
    assert_status(s, "prelaunch");
    g_usleep(300 * 1000);
    g_autofree char *out = qtest_serial_read(s);
    g_assert_cmpstr(out, ==, "");

    qtest_qmp_assert_success(s, "{'execute':'cont'}");
    json_object_unref(qtest_qmp_eventwait(s, "RESUME"));
    assert_status(s, "running");
    qtest_wait_serial(s, "AB", 30);
    qtest_quit(s);
}

static bool digests_equal(GHashTable *a, GHashTable *b)
{
    if (g_hash_table_size(a) != g_hash_table_size(b)) {
        return false;
    }
    GHashTableIter it;
    gpointer name, digest;
    g_hash_table_iter_init(&it, a);
    while (g_hash_table_iter_next(&it, &name, &digest)) {
        if (g_strcmp0(digest, g_hash_table_lookup(b, name))) {
            return false;
        }
    }
    return true;
}

/* RAM is still while stopped and changes while running. */
static void test_digest_stable_while_stopped(void)
{
    QTestState *s = qtest_init(GUEST_ARGS);
    qtest_wait_serial(s, "AB", 30);
    qtest_qmp_assert_success(s, "{'execute':'stop'}");

    g_autoptr(GHashTable) d1 = qtest_ram_digests(s);
    g_assert_nonnull(g_hash_table_lookup(d1, "pc.ram"));
    g_usleep(300 * 1000);
    g_autoptr(GHashTable) d2 = qtest_ram_digests(s);
    g_assert_true(digests_equal(d1, d2));

    qtest_qmp_assert_success(s, "{'execute':'cont'}");
    int64_t deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    for (;;) {
        g_autoptr(GHashTable) d3 = qtest_ram_digests(s);
        if (strcmp(g_hash_table_lookup(d1, "pc.ram"),
                   g_hash_table_lookup(d3, "pc.ram"))) {
            break;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(50 * 1000);
    }
    qtest_quit(s);
}

/* Events carry a wall-clock timestamp, as QMP clients expect. */
static void test_event_timestamps(void)
{
    QTestState *s = qtest_init(GUEST_ARGS);
    int64_t before = g_get_real_time();
    qtest_qmp_assert_success(s, "{'execute':'stop'}");
    JsonObject *ev = qtest_qmp_eventwait(s, "STOP");
    int64_t after = g_get_real_time();

    JsonObject *ts = qtest_json_get_object(ev, "timestamp");
    int64_t sec = qtest_json_get_int(ts, "seconds");
    int64_t usec = qtest_json_get_int(ts, "microseconds");
    g_assert_cmpint(usec, >=, 0);
    g_assert_cmpint(usec, <, G_USEC_PER_SEC);
    int64_t when = sec * G_USEC_PER_SEC + usec;
    g_assert_cmpint(when, >=, before - G_USEC_PER_SEC);
    g_assert_cmpint(when, <=, after + G_USEC_PER_SEC);
    /* "data" is always an object, even when the event has no fields. */
    if (json_object_has_member(ev, "data")) {
        qtest_json_get_object(ev, "data");
    }
    json_object_unref(ev);
    qtest_quit(s);
}

/* quit sends SHUTDOWN and the process exits 0 (checked by qtest_quit). */
static void test_quit_emits_shutdown(void)
{
    QTestState *s = qtest_init(GUEST_ARGS);
    QTestState *c = qtest_client_new(s, true);
    qtest_quit(s);
    JsonObject *ev = qtest_qmp_eventwait(c, "SHUTDOWN");
    json_object_unref(ev);
    qtest_quit(c);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/runstate/ab-prints-a-then-b", test_ab_prints_a_then_b);
    g_test_add_func("/runstate/stop-cont", test_stop_cont);
    g_test_add_func("/runstate/prelaunch", test_prelaunch);
    g_test_add_func("/runstate/digest", test_digest_stable_while_stopped);
    g_test_add_func("/runstate/event-timestamps", test_event_timestamps);
    g_test_add_func("/runstate/quit-shutdown", test_quit_emits_shutdown);
    return g_test_run();
}
