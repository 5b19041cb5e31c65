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
    QTestState *src = mig_start_source(args);

    migrate_set_parameter(src, "downtime-limit", "5000");
    rel_set_mode(src, mode);
    return src;
}

QTestState *rel_start_destination(const char *extra, RelMode mode)
{
    g_autofree char *args = g_strdup_printf("-S -m %uM -workload a-b %s",
                                            rel_ram_mib, extra ? extra : "");
    QTestState *dst = mig_start_destination(args);

    rel_set_mode(dst, mode);
    return dst;
}

void rel_assert_error_contains(QTestState *s, ...)
{
    g_autofree char *desc = migrate_error_desc(s);
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

void rel_assert_ab_ok(QTestState *s)
{
    mig_assert_ab_ok(s, REL_RAM_SIZE);
}

void rel_assert_source_sound(QTestState *src, bool was_running)
{
    mig_assert_runstate(src, was_running ? "running" : "paused");
    if (was_running) {
        qtest_qmp_assert_success(src, "{'execute': 'stop'}");
    }
    rel_assert_ab_ok(src);
    if (was_running) {
        qtest_qmp_assert_success(src, "{'execute': 'cont'}");
        mig_wait_alive(src);
    }
}

void rel_assert_destination_never_ran(QTestState *dst)
{
    g_autofree char *mig = migrate_query_status(dst);
    g_autofree char *serial = NULL;

    g_assert_cmpstr(mig, ==, "failed");
    mig_assert_runstate(dst, "inmigrate");
    qtest_qmp_expect_error(dst, "GenericError",
                           "Guest is waiting for an incoming migration",
                           "{'execute': 'cont'}");
    serial = qtest_serial_read(dst);
    g_assert_null(strchr(serial, 'B'));
}

void rel_load_and_check(QTestState *src, const char *uri, RelMode mode)
{
    QTestState *dst = rel_start_destination(NULL, mode);

    migrate_incoming_uri_keep(dst, uri);
    migrate_wait_status(dst, "completed", MIG_TIMEOUT);
    mig_assert_runstate(dst, "paused");
    mig_assert_same_ram(src, dst);
    rel_assert_ab_ok(dst);
    qtest_qmp_assert_success(dst, "{'execute': 'cont'}");
    mig_wait_alive(dst);
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
