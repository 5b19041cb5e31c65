/*
 * Helpers shared by the reliability tests; see reliability-util.h.
 */
#include "qemu/osdep.h"

#include "reliability-util.h"

unsigned rel_ram_mib = 128;

const char *rel_mode_name(RelMode mode)
{
    switch (mode) {
    case MODE_PLAIN:
        return "plain";
    case MODE_MAPPED_RAM:
        return "mapped-ram";
    case MODE_MULTIFD:
        return "mapped-ram+multifd";
    default:
        return "mapped-ram+multifd+direct-io";
    }
}

void rel_set_mode(QTestState *s, RelMode mode)
{
    if (mode == MODE_PLAIN) {
        return;
    }
    migrate_set_capability(s, "mapped-ram", true);
    if (mode >= MODE_MULTIFD) {
        migrate_set_capability(s, "multifd", true);
        migrate_set_parameter(s, "multifd-channels", "4");
    }
    if (mode == MODE_DIO) {
        migrate_set_parameter(s, "direct-io", "true");
    }
}

QTestState *rel_start_source(const char *extra, RelMode mode)
{
    g_autofree char *args = g_strdup_printf("-m %uM -workload a-b %s",
                                            rel_ram_mib, extra ? extra : "");
    QTestState *src = qtest_init(args);

    qtest_wait_serial(src, "AB", 60);
    migrate_set_parameter(src, "max-bandwidth", "0");
    migrate_set_parameter(src, "downtime-limit", "5000");
    rel_set_mode(src, mode);
    return src;
}

QTestState *rel_start_destination(const char *extra, RelMode mode)
{
    g_autofree char *args = g_strdup_printf("-S -m %uM -workload a-b %s",
                                            rel_ram_mib, extra ? extra : "");
    QTestState *dst = qtest_init_incoming("defer", args);

    rel_set_mode(dst, mode);
    return dst;
}

void rel_migrate(QTestState *s, const char *uri)
{
    qtest_qmp_assert_success(
        s, "{'execute': 'migrate', 'arguments': {'uri': '%s'}}", uri);
}

void rel_migrate_incoming(QTestState *s, const char *uri)
{
    qtest_qmp_assert_success(s,
                             "{'execute': 'migrate-incoming', 'arguments': "
                             "{'uri': '%s', 'exit-on-error': false}}",
                             uri);
}

char *rel_error_desc(QTestState *s)
{
    g_autoptr(JsonNode) ret =
        qtest_qmp_assert_success_ref(s, "{'execute': 'query-migrate'}");
    JsonObject *info = json_node_get_object(ret);

    return g_strdup(qtest_json_get_string(info, "error-desc"));
}

void rel_assert_error_contains(QTestState *s, ...)
{
    g_autofree char *desc = rel_error_desc(s);
    const char *needle;
    va_list ap;

    va_start(ap, s);
    while ((needle = va_arg(ap, const char *))) {
        if (!strstr(desc, needle)) {
            g_error("error-desc \"%s\" lacks \"%s\"", desc, needle);
        }
    }
    va_end(ap);
}

void rel_assert_status(QTestState *s, const char *status)
{
    g_autofree char *now = qtest_query_status(s);

    g_assert_cmpstr(now, ==, status);
}

void rel_assert_ab_ok(QTestState *s)
{
    g_autofree char *report = NULL;

    if (!qtest_ab_check(s, REL_RAM_SIZE, &report)) {
        g_error("a-b check failed: %s", report);
    }
}

void rel_assert_same_ram(QTestState *a, QTestState *b)
{
    g_autoptr(GHashTable) da = qtest_ram_digests(a);
    g_autoptr(GHashTable) db = qtest_ram_digests(b);
    GHashTableIter iter;
    gpointer name, digest;

    g_assert_cmpuint(g_hash_table_size(da), ==, g_hash_table_size(db));
    g_hash_table_iter_init(&iter, da);
    while (g_hash_table_iter_next(&iter, &name, &digest)) {
        const char *other = g_hash_table_lookup(db, name);

        if (g_strcmp0(digest, other)) {
            g_error("RAM block %s differs: %s vs %s", (char *)name,
                    (char *)digest, other);
        }
    }
}

/* Two more B's than the serial port shows now: the guest runs. */
static void assert_alive(QTestState *s)
{
    g_autofree char *before = qtest_serial_read(s);
    g_autofree char *more = g_strconcat(before, "BB", NULL);

    qtest_wait_serial(s, more, 60);
}

void rel_assert_source_sound(QTestState *src, bool was_running)
{
    rel_assert_status(src, was_running ? "running" : "paused");
    if (was_running) {
        qtest_qmp_assert_success(src, "{'execute': 'stop'}");
    }
    rel_assert_ab_ok(src);
    if (was_running) {
        qtest_qmp_assert_success(src, "{'execute': 'cont'}");
        assert_alive(src);
    }
}

void rel_assert_destination_never_ran(QTestState *dst)
{
    g_autofree char *mig = migrate_query_status(dst);
    g_autofree char *serial = NULL;

    g_assert_cmpstr(mig, ==, "failed");
    rel_assert_status(dst, "inmigrate");
    qtest_qmp_expect_error(dst, "GenericError",
                           "Guest is waiting for an incoming migration",
                           "{'execute': 'cont'}");
    serial = qtest_serial_read(dst);
    g_assert_null(strchr(serial, 'B'));
}

void rel_load_and_check(QTestState *src, const char *uri, RelMode mode)
{
    QTestState *dst = rel_start_destination(NULL, mode);

    rel_migrate_incoming(dst, uri);
    migrate_wait_status(dst, "completed", REL_MIG_TIMEOUT);
    rel_assert_status(dst, "paused");
    rel_assert_same_ram(src, dst);
    rel_assert_ab_ok(dst);
    qtest_qmp_assert_success(dst, "{'execute': 'cont'}");
    assert_alive(dst);
    qtest_quit(dst);
}

static gint int_cmp(gconstpointer a, gconstpointer b)
{
    int x = *(const int *)a, y = *(const int *)b;

    return (x > y) - (x < y);
}

GArray *rel_open_fds(pid_t pid)
{
    g_autofree char *dir_path = g_strdup_printf("/proc/%d/fd", (int)pid);
    g_autoptr(GError) err = NULL;
    GDir *dir = g_dir_open(dir_path, 0, &err);
    GArray *fds = g_array_new(FALSE, FALSE, sizeof(int));
    const char *name;

    if (!dir) {
        g_error("%s", err->message);
    }
    while ((name = g_dir_read_name(dir))) {
        int fd = atoi(name);

        g_array_append_val(fds, fd);
    }
    g_dir_close(dir);
    g_array_sort(fds, int_cmp);
    return fds;
}

static char *fd_target(pid_t pid, int fd)
{
    g_autofree char *link = g_strdup_printf("/proc/%d/fd/%d", (int)pid, fd);
    char *target = g_file_read_link(link, NULL);

    return target ? target : g_strdup("?");
}

static void describe_fds(GString *out, pid_t pid, GArray *fds)
{
    for (guint i = 0; i < fds->len; i++) {
        int fd = g_array_index(fds, int, i);
        g_autofree char *target = fd_target(pid, fd);

        g_string_append_printf(out, " %d=%s", fd, target);
    }
}

void rel_assert_same_fds(pid_t pid, GArray *before, GArray *after,
                         const char *what)
{
    g_autoptr(GString) msg = NULL;

    if (before->len == after->len &&
        !memcmp(before->data, after->data, before->len * sizeof(int))) {
        return;
    }
    msg = g_string_new(NULL);
    g_string_append_printf(msg, "%s: descriptors changed; before:", what);
    for (guint i = 0; i < before->len; i++) {
        g_string_append_printf(msg, " %d", g_array_index(before, int, i));
    }
    g_string_append(msg, "; after:");
    describe_fds(msg, pid, after);
    g_error("%s", msg->str);
}

char *rel_tmp_path(QTestState *s, const char *name)
{
    return g_build_filename(qtest_tmpdir(s), name, NULL);
}
