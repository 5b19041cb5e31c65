/*
 * Migration helpers shared by the qtest programs; see migration-helpers.h.
 */
#include "qemu/osdep.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include "migration-helpers.h"

void mig_stop(QTestState *s)
{
    qtest_qmp_assert_success(s, "{'execute': 'stop'}");
}

void mig_cont(QTestState *s)
{
    qtest_qmp_assert_success(s, "{'execute': 'cont'}");
}

void mig_assert_runstate(QTestState *s, const char *expected)
{
    g_autofree char *status = qtest_query_status(s);

    g_assert_cmpstr(status, ==, expected);
}

char *mig_tmp_path(QTestState *s, const char *name)
{
    return g_build_filename(qtest_tmpdir(s), name, NULL);
}

int mig_free_tcp_port(void)
{
    struct sockaddr_in addr = {
        .sin_family = AF_INET,
        .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
    };
    socklen_t len = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
    g_assert_cmpint(getsockname(fd, (struct sockaddr *)&addr, &len), ==, 0);
    close(fd);
    return ntohs(addr.sin_port);
}

QTestState *mig_start_source(const char *args)
{
    QTestState *src = qtest_init(args);

    if (strstr(args, "a-b")) {
        qtest_wait_serial(src, "AB", 60);
    }
    migrate_set_parameter(src, "max-bandwidth", "0");
    return src;
}

QTestState *mig_start_destination(const char *args)
{
    return qtest_init_incoming("defer", args);
}

void mig_set_multifd(QTestState *s, int channels, bool mapped_ram)
{
    migrate_set_capability(s, "mapped-ram", mapped_ram);
    migrate_set_capability(s, "multifd", channels > 0);
    if (channels > 0) {
        g_autofree char *n = g_strdup_printf("%d", channels);

        migrate_set_parameter(s, "multifd-channels", n);
    }
}

void migrate_uri(QTestState *s, const char *uri)
{
    qtest_qmp_assert_success(
        s, "{'execute': 'migrate', 'arguments': {'uri': '%s'}}", uri);
}

void migrate_incoming_uri(QTestState *s, const char *uri)
{
    qtest_qmp_assert_success(
        s, "{'execute': 'migrate-incoming', 'arguments': {'uri': '%s'}}", uri);
}

void migrate_incoming_uri_keep(QTestState *s, const char *uri)
{
    qtest_qmp_assert_success(s,
                             "{'execute': 'migrate-incoming', 'arguments': "
                             "{'uri': '%s', 'exit-on-error': false}}",
                             uri);
}

void migrate_and_wait(QTestState *src, QTestState *dst, const char *uri)
{
    migrate_uri(src, uri);
    migrate_wait_status(src, "completed", MIG_TIMEOUT);
    migrate_wait_status(dst, "completed", MIG_TIMEOUT);
}

JsonNode *migrate_query(QTestState *s)
{
    return qtest_qmp_assert_success_ref(s, "{'execute': 'query-migrate'}");
}

JsonObject *migrate_query_ram(QTestState *s, JsonNode **hold)
{
    *hold = migrate_query(s);
    return qtest_json_get_object(json_node_get_object(*hold), "ram");
}

char *migrate_error_desc(QTestState *s)
{
    g_autoptr(JsonNode) ret = migrate_query(s);

    return g_strdup(
        qtest_json_get_string(json_node_get_object(ret), "error-desc"));
}

guint mig_assert_same_ram(QTestState *a, QTestState *b)
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
    return g_hash_table_size(da);
}

void mig_assert_ab_ok(QTestState *s, uint64_t ram_size)
{
    g_autofree char *report = NULL;

    if (!qtest_ab_check(s, ram_size, &report)) {
        g_error("a-b check failed: %s", report);
    }
}

void mig_wait_alive(QTestState *s)
{
    g_autofree char *before = qtest_serial_read(s);
    g_autofree char *want = g_strconcat(before, "BB", NULL);

    qtest_wait_serial(s, want, 60);
}

void mig_expect_error_both(QTestState *s, const char *desc,
                           const char *hmp_line, const char *qmp_fmt, ...)
{
    va_list ap;
    g_autofree char *cmd = NULL;
    g_autofree char *out = NULL;
    g_autofree char *want = g_strdup_printf("Error: %s\r\n", desc);

    va_start(ap, qmp_fmt);
    cmd = g_strdup_vprintf(qmp_fmt, ap);
    va_end(ap);
    qtest_qmp_expect_error(s, "GenericError", desc, "%s", cmd);
    out = qtest_hmp(s, "%s", hmp_line);
    g_assert_cmpstr(out, ==, want);
}

void mig_expect_multifd_transport_refusals(QTestState *s, const char *file,
                                           const char *sock)
{
    g_autofree char *file_line = g_strdup_printf("migrate file:%s", file);
    g_autofree char *sock_line = g_strdup_printf("migrate unix:%s", sock);

    mig_expect_error_both(
        s, "Migration requires multi-channel URIs (e.g. tcp)", file_line,
        "{'execute': 'migrate', 'arguments': {'uri': 'file:%s'}}", file);
    mig_expect_error_both(s, "Migration requires multi-channel URIs (e.g. tcp)",
                          "migrate exec:cat > /dev/null",
                          "{'execute': 'migrate', 'arguments': "
                          "{'uri': 'exec:cat > /dev/null'}}");
    migrate_set_parameter(s, "direct-io", "true");
    mig_expect_error_both(
        s,
        "Migration requires a transport that allows for extra fds "
        "(e.g. file)",
        sock_line, "{'execute': 'migrate', 'arguments': {'uri': 'unix:%s'}}",
        sock);
    migrate_set_parameter(s, "direct-io", "false");
}

#define ERR_MAPPED_RAM_COMPRESSION                                             \
    "Mapped-ram only available for non-compressed non-TLS multifd migration"

void mig_expect_multifd_channels_refused(QTestState *s, int value)
{
    g_autofree char *hmp =
        g_strdup_printf("migrate_set_parameter multifd-channels %d", value);

    mig_expect_error_both(
        s, "Parameter 'multifd_channels' expects a value between 1 and 255",
        hmp,
        "{'execute': 'migrate-set-parameters', 'arguments': "
        "{'multifd-channels': %d}}",
        value);
}

void mig_expect_compression_refused(QTestState *s, const char *method)
{
    g_autofree char *hmp =
        g_strdup_printf("migrate_set_parameter multifd-compression %s", method);

    mig_expect_error_both(s, ERR_MAPPED_RAM_COMPRESSION, hmp,
                          "{'execute': 'migrate-set-parameters', 'arguments': "
                          "{'multifd-compression': '%s'}}",
                          method);
}

void mig_expect_mapped_ram_refused(QTestState *s, const char *cap)
{
    mig_expect_error_both(s, ERR_MAPPED_RAM_COMPRESSION,
                          "migrate_set_capability mapped-ram on",
                          "{'execute': 'migrate-set-capabilities', "
                          "'arguments': {'capabilities': [{'capability': "
                          "'%s', 'state': true}]}}",
                          cap);
}

void mig_wait_guest_writes(QTestState *s)
{
    g_autoptr(GHashTable) first = qtest_ram_digests(s);
    int64_t deadline =
        g_get_monotonic_time() + qtest_scale_timeout(30) * G_USEC_PER_SEC;

    for (;;) {
        g_autoptr(GHashTable) now = qtest_ram_digests(s);

        if (g_strcmp0(g_hash_table_lookup(first, "pc.ram"),
                      g_hash_table_lookup(now, "pc.ram"))) {
            return;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(20 * 1000);
    }
}
