/*
 * Descriptors and access (issue 8, point 7).
 *
 * - No descriptor leaks: one source process saves its guest through every
 *   kind of migration in turn (file: plain, mapped-ram, mapped-ram +
 *   multifd, fdset, fd: from getfd, exec:, unix:, tcp:, multifd over
 *   sockets; and failed and cancelled ones), and /proc/PID/fd is the same
 *   before and after each; every destination likewise before its
 *   migrate-incoming and after the load.
 * - Sockets minivm listens on (QMP, HMP, the incoming migration) are
 *   created mode 0600 whatever the umask.
 * - /dev/fdset/ paths never reach the real file system: a set that does
 *   not exist, or a path that only starts like one, fails with the fdset
 *   error, for migrate, migrate-incoming and pmemsave alike.
 * - A client cannot take descriptors another client passed: not before
 *   the command they came with is complete, and not after it ran (unused
 *   ones are closed).
 */
#include "qemu/osdep.h"

#include <sys/socket.h>
#include <sys/un.h>

#include "reliability-util.h"

/* Small and stopped: these tests are about descriptors, not pages. */
#define SMALL_ARGS "-m 32M -workload a-b"

/* --- descriptor leaks --- */

typedef enum {
    KIND_FILE,
    KIND_MAPPED_RAM,
    KIND_MULTIFD_FILE,
    KIND_FDSET,
    KIND_GETFD,
    KIND_EXEC,
    KIND_UNIX,
    KIND_TCP,
    KIND_MULTIFD_UNIX,
    KIND_MULTIFD_TCP,
    KIND__MAX,
} MigKind;

static const char *const kind_names[KIND__MAX] = {
    "file",
    "mapped-ram",
    "mapped-ram+multifd",
    "fdset",
    "fd (getfd)",
    "exec",
    "unix",
    "tcp",
    "multifd over unix",
    "multifd over tcp",
};

static void set_caps(QTestState *s, bool mapped_ram, bool multifd)
{
    migrate_set_capability(s, "mapped-ram", mapped_ram);
    migrate_set_capability(s, "multifd", multifd);
}

/* A destination that loads from uri; its own descriptors checked too. */
static QTestState *start_checked_destination(bool mapped_ram, bool multifd,
                                             const char *uri, GArray **fds)
{
    QTestState *dst = qtest_init_incoming("defer", "-S " SMALL_ARGS);

    set_caps(dst, mapped_ram, multifd);
    *fds = rel_open_fds(qtest_pid(dst));
    migrate_incoming_uri_keep(dst, uri);
    return dst;
}

static void finish_destination(QTestState *dst, GArray *before,
                               const char *what)
{
    g_autoptr(GArray) after = NULL;
    g_autofree char *label = g_strdup_printf("destination of %s", what);

    migrate_wait_status(dst, "completed", MIG_TIMEOUT);
    after = rel_open_fds(qtest_pid(dst));
    rel_assert_same_fds(qtest_pid(dst), before, after, label);
    g_array_unref(before);
    qtest_quit(dst);
}

/* One save of src (stopped) through kind, then its destination's load. */
static void migrate_kind(QTestState *src, MigKind kind)
{
    g_autofree char *path = mig_tmp_path(src, "mig.img");
    g_autofree char *file_uri = g_strdup_printf("file:%s", path);
    g_autofree char *uri = NULL;
    g_autofree char *in_uri = NULL;
    bool mapped_ram = kind == KIND_MAPPED_RAM || kind == KIND_MULTIFD_FILE;
    bool multifd = kind == KIND_MULTIFD_FILE || kind == KIND_MULTIFD_UNIX ||
                   kind == KIND_MULTIFD_TCP;
    QTestState *dst = NULL;
    GArray *dst_fds = NULL;
    int fd = -1;

    set_caps(src, mapped_ram, multifd);
    switch (kind) {
    case KIND_FILE:
    case KIND_MAPPED_RAM:
    case KIND_MULTIFD_FILE:
        uri = g_strdup(file_uri);
        break;
    case KIND_FDSET:
        fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
        g_assert_cmpint(fd, >=, 0);
        {
            g_autoptr(JsonObject) r = qtest_qmp_fds(
                src, &fd, 1,
                "{'execute': 'add-fd', 'arguments': {'fdset-id': 7}}");

            g_assert_true(json_object_has_member(r, "return"));
        }
        close(fd);
        uri = g_strdup("file:/dev/fdset/7");
        break;
    case KIND_GETFD:
        fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
        g_assert_cmpint(fd, >=, 0);
        {
            g_autoptr(JsonObject) r = qtest_qmp_fds(
                src, &fd, 1,
                "{'execute': 'getfd', 'arguments': {'fdname': 'migfd'}}");

            g_assert_true(json_object_has_member(r, "return"));
        }
        close(fd);
        uri = g_strdup("fd:migfd");
        break;
    case KIND_EXEC:
        uri = g_strdup_printf("exec:cat > %s", path);
        in_uri = g_strdup_printf("exec:cat %s", path);
        break;
    case KIND_UNIX:
    case KIND_MULTIFD_UNIX:
        dst = qtest_init_incoming("defer", "-S " SMALL_ARGS);
        uri = g_strdup_printf("unix:%s/mig.sock", qtest_tmpdir(dst));
        break;
    case KIND_TCP:
    case KIND_MULTIFD_TCP:
        dst = qtest_init_incoming("defer", "-S " SMALL_ARGS);
        uri = g_strdup_printf("tcp:127.0.0.1:%d", mig_free_tcp_port());
        break;
    default:
        g_assert_not_reached();
    }
    if (dst) {
        /* Sockets: the destination listens first. */
        set_caps(dst, mapped_ram, multifd);
        dst_fds = rel_open_fds(qtest_pid(dst));
        migrate_incoming_uri_keep(dst, uri);
    }

    migrate_uri(src, uri);
    migrate_wait_status(src, "completed", MIG_TIMEOUT);

    if (kind == KIND_FDSET) {
        qtest_qmp_assert_success(src, "{'execute': 'remove-fd', "
                                      "'arguments': {'fdset-id': 7}}");
    } else if (kind == KIND_GETFD) {
        qtest_qmp_assert_success(src, "{'execute': 'closefd', "
                                      "'arguments': {'fdname': 'migfd'}}");
    }
    if (!dst) {
        dst = start_checked_destination(mapped_ram, multifd,
                                        in_uri ? in_uri : file_uri, &dst_fds);
    }
    finish_destination(dst, dst_fds, kind_names[kind]);
}

static void test_no_leaks(void)
{
    QTestState *src = qtest_init(SMALL_ARGS);
    pid_t pid = qtest_pid(src);
    g_autofree char *path = mig_tmp_path(src, "mig.img");
    g_autofree char *uri = g_strdup_printf("file:%s", path);

    qtest_wait_serial(src, "AB", 60);
    qtest_qmp_assert_success(src, "{'execute': 'stop'}");
    migrate_set_parameter(src, "multifd-channels", "3");
    /* One save first: anything opened once per process is open now. */
    migrate_uri(src, uri);
    migrate_wait_status(src, "completed", MIG_TIMEOUT);

    for (MigKind k = 0; k < KIND__MAX; k++) {
        g_autoptr(GArray) before = rel_open_fds(pid);
        g_autoptr(GArray) after = NULL;

        migrate_kind(src, k);
        after = rel_open_fds(pid);
        rel_assert_same_fds(pid, before, after, kind_names[k]);
    }

    /* Failed and cancelled migrations leak nothing either. */
    set_caps(src, false, false);
    {
        g_autoptr(GArray) before = rel_open_fds(pid);
        g_autoptr(GArray) after = NULL;
        g_autofree char *nobody =
            g_strdup_printf("unix:%s/nobody.sock", qtest_tmpdir(src));

        migrate_uri(src, nobody);
        migrate_wait_status(src, "failed", MIG_TIMEOUT);
        after = rel_open_fds(pid);
        rel_assert_same_fds(pid, before, after, "failed connect");
    }
    {
        g_autoptr(GArray) before = rel_open_fds(pid);
        g_autoptr(GArray) after = NULL;

        set_caps(src, true, true);
        qtest_qmp_assert_success(src, "{'execute': 'cont'}");
        migrate_set_parameter(src, "max-bandwidth", "1048576");
        migrate_uri(src, uri);
        migrate_wait_status(src, "active", MIG_TIMEOUT);
        qtest_qmp_assert_success(src, "{'execute': 'migrate_cancel'}");
        migrate_wait_status(src, "cancelled", MIG_TIMEOUT);
        after = rel_open_fds(pid);
        rel_assert_same_fds(pid, before, after, "cancelled multifd");
    }
    {
        /* Refused by the command: nothing may stay open either. */
        g_autoptr(GArray) before = rel_open_fds(pid);
        g_autoptr(GArray) after = NULL;

        qtest_qmp_expect_error(src, "GenericError",
                               "Failed to find fdset /dev/fdset/99",
                               "{'execute': 'migrate', 'arguments': "
                               "{'uri': 'file:/dev/fdset/99'}}");
        after = rel_open_fds(pid);
        rel_assert_same_fds(pid, before, after, "refused migrate");
    }
    qtest_quit(src);
}

/* --- socket modes --- */

static void assert_mode_0600(const char *path)
{
    struct stat st;

    g_assert_cmpint(stat(path, &st), ==, 0);
    g_assert_true(S_ISSOCK(st.st_mode));
    if ((st.st_mode & 07777) != 0600) {
        g_error("%s has mode %04o, expected 0600", path, st.st_mode & 07777);
    }
}

/* Created 0600 even when the umask would allow everyone in. */
static void test_socket_modes(void)
{
    mode_t old = umask(0);
    QTestState *dst = qtest_init_incoming(
        "unix:{tmp}/mig.sock",
        "-m 16M -qmp unix:{tmp}/second.sock,server=on,wait=off "
        "-monitor unix:{tmp}/hmp.sock,server=on,wait=off");
    g_autofree char *second = mig_tmp_path(dst, "second.sock");
    g_autofree char *hmp = mig_tmp_path(dst, "hmp.sock");
    g_autofree char *mig = mig_tmp_path(dst, "mig.sock");

    umask(old);
    assert_mode_0600(qtest_qmp_socket_path(dst));
    assert_mode_0600(second);
    assert_mode_0600(hmp);
    assert_mode_0600(mig);
    qtest_set_expected_status(dst, 0);
    qtest_quit(dst);
}

/* --- /dev/fdset/ paths --- */

/*
 * Neither /dev/fdset/99 (no such set; no such file either, so a fall
 * through would say "No such file or directory") nor a path that merely
 * starts with /dev/fdset/ and leads to a real file touches the real file
 * system.
 */
static void test_fdset_paths(void)
{
    QTestState *s = qtest_init("-m 16M");
    QTestState *dst = qtest_init_incoming("defer", "-m 16M");
    g_autofree char *real = mig_tmp_path(s, "real.img");
    g_autofree char *sneaky =
        g_strdup_printf("/dev/fdset/../..%s", real); /* resolves to real */
    g_autofree char *sneaky_msg =
        g_strdup_printf("Could not parse fdset %s", sneaky);

    g_assert_false(g_file_test("/dev/fdset/99", G_FILE_TEST_EXISTS));
    qtest_qmp_expect_error(s, "GenericError",
                           "Failed to find fdset /dev/fdset/99",
                           "{'execute': 'migrate', 'arguments': "
                           "{'uri': 'file:/dev/fdset/99'}}");
    qtest_qmp_expect_error(s, "GenericError",
                           "Failed to find fdset /dev/fdset/99",
                           "{'execute': 'pmemsave', 'arguments': "
                           "{'val': 0, 'size': 4096, "
                           "'filename': '/dev/fdset/99'}}");
    qtest_qmp_expect_error(s, "GenericError", sneaky_msg,
                           "{'execute': 'migrate', 'arguments': "
                           "{'uri': 'file:%s'}}",
                           sneaky);
    qtest_qmp_expect_error(s, "GenericError", sneaky_msg,
                           "{'execute': 'pmemsave', 'arguments': "
                           "{'val': 0, 'size': 4096, 'filename': '%s'}}",
                           sneaky);
    g_assert_false(g_file_test(real, G_FILE_TEST_EXISTS));

    /* The destination: the same, and it can still be used afterwards. */
    qtest_qmp_expect_error(dst, "GenericError",
                           "Failed to find fdset /dev/fdset/99",
                           "{'execute': 'migrate-incoming', 'arguments': "
                           "{'uri': 'file:/dev/fdset/99'}}");
    g_assert_true(g_file_set_contents(real, "QEVM", 4, NULL));
    qtest_qmp_expect_error(dst, "GenericError", sneaky_msg,
                           "{'execute': 'migrate-incoming', 'arguments': "
                           "{'uri': 'file:%s'}}",
                           sneaky);
    qtest_quit(dst);
    qtest_quit(s);
}

/* --- descriptors passed by one client, wanted by another --- */

/* A bare QMP client over the socket, to pass a descriptor mid-message. */
typedef struct RawClient {
    int fd;
    GString *in;
} RawClient;

static void raw_send(RawClient *c, const char *text, int pass_fd)
{
    struct iovec iov = {.iov_base = (void *)text, .iov_len = strlen(text)};
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};

    if (pass_fd >= 0) {
        struct cmsghdr *cmsg;

        memset(&ctl, 0, sizeof(ctl));
        msg.msg_control = ctl.buf;
        msg.msg_controllen = sizeof(ctl.buf);
        cmsg = CMSG_FIRSTHDR(&msg);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cmsg), &pass_fd, sizeof(int));
    }
    g_assert_cmpint(sendmsg(c->fd, &msg, MSG_NOSIGNAL), ==,
                    (ssize_t)iov.iov_len);
}

/* The next message that is not an event (a reply). */
static JsonObject *raw_reply(RawClient *c)
{
    for (;;) {
        char *nl = strchr(c->in->str, '\n');

        if (nl) {
            g_autoptr(JsonParser) parser = json_parser_new();
            g_autofree char *line = g_strndup(c->in->str, nl - c->in->str);
            JsonObject *obj;

            g_string_erase(c->in, 0, nl - c->in->str + 1);
            g_assert_true(json_parser_load_from_data(parser, line, -1, NULL));
            obj = json_node_get_object(json_parser_get_root(parser));
            if (!json_object_has_member(obj, "event")) {
                return json_object_ref(obj);
            }
            continue;
        }
        {
            char buf[4096];
            ssize_t n = RETRY_ON_EINTR(read(c->fd, buf, sizeof(buf)));

            g_assert_cmpint(n, >, 0);
            g_string_append_len(c->in, buf, n);
        }
    }
}

static RawClient *raw_connect(QTestState *s)
{
    RawClient *c = g_new0(RawClient, 1);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    JsonObject *r;

    strcpy(addr.sun_path, qtest_qmp_socket_path(s));
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    c->in = g_string_new(NULL);
    g_assert_cmpint(connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)), ==,
                    0);
    json_object_unref(raw_reply(c)); /* the greeting */
    raw_send(c, "{\"execute\": \"qmp_capabilities\"}\n", -1);
    r = raw_reply(c);
    g_assert_true(json_object_has_member(r, "return"));
    json_object_unref(r);
    return c;
}

static void raw_close(RawClient *c)
{
    close(c->fd);
    g_string_free(c->in, TRUE);
    g_free(c);
}

static void expect_no_fd(QTestState *s, const char *cmd)
{
    qtest_qmp_expect_error(s, "GenericError",
                           "No file descriptor supplied via SCM_RIGHTS", "%s",
                           cmd);
}

static void test_fds_per_client(void)
{
    QTestState *s = qtest_init("-m 16M");
    QTestState *b = qtest_client_new(s, true);
    pid_t pid = qtest_pid(s);
    /* Before A exists: afterwards nothing of A may be left. */
    g_autoptr(GArray) before = rel_open_fds(pid);
    RawClient *a = raw_connect(s);
    g_autoptr(GArray) after = NULL;
    g_autoptr(JsonNode) sets = NULL;
    JsonObject *r;
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

    g_assert_cmpint(fd, >=, 0);

    /* A's descriptor arrives with the first half of A's add-fd... */
    raw_send(a, "{\"execute\": \"add-fd\", \"arguments\": {\"opaque\": \"A\"",
             fd);
    /* ...and B, asking meanwhile, gets nothing of it. */
    expect_no_fd(b, "{'execute': 'add-fd'}");
    expect_no_fd(b, "{'execute': 'getfd', 'arguments': {'fdname': 'x'}}");
    sets = qtest_qmp_assert_success_ref(b, "{'execute': 'query-fdsets'}");
    g_assert_cmpuint(json_array_get_length(json_node_get_array(sets)), ==, 0);

    /* A's command completes and takes it. */
    raw_send(a, "}}\n", -1);
    r = raw_reply(a);
    g_assert_true(json_object_has_member(r, "return"));
    json_object_unref(r);
    qtest_qmp_assert_success(b, "{'execute': 'remove-fd', "
                                "'arguments': {'fdset-id': 0}}");

    /* A descriptor sent with a command that does not use it is closed... */
    raw_send(a, "{\"execute\": \"query-status\"}\n", fd);
    r = raw_reply(a);
    g_assert_true(json_object_has_member(r, "return"));
    json_object_unref(r);
    /* ...so neither A's next command nor B can have it. */
    raw_send(a, "{\"execute\": \"add-fd\"}\n", -1);
    r = raw_reply(a);
    g_assert_true(json_object_has_member(r, "error"));
    g_assert_cmpstr(
        qtest_json_get_string(qtest_json_get_object(r, "error"), "desc"), ==,
        "No file descriptor supplied via SCM_RIGHTS");
    json_object_unref(r);
    expect_no_fd(b, "{'execute': 'add-fd'}");

    /* A leaves with a descriptor pending in a half-sent command. */
    raw_send(a, "{\"execute\": \"getfd\", ", fd);
    raw_close(a);
    /* The hang-up is handled by the main loop soon; give it 10 s. */
    for (int i = 0; i < 1000; i++) {
        g_clear_pointer(&after, g_array_unref);
        qtest_qmp_assert_success(b, "{'execute': 'query-status'}");
        after = rel_open_fds(pid);
        if (after->len == before->len) {
            break;
        }
        g_usleep(10 * 1000);
    }
    rel_assert_same_fds(pid, before, after, "descriptors passed by a client");

    close(fd);
    qtest_quit(b);
    qtest_quit(s);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/access/no-fd-leaks", test_no_leaks);
    g_test_add_func("/access/socket-modes", test_socket_modes);
    g_test_add_func("/access/fdset-paths", test_fdset_paths);
    g_test_add_func("/access/fds-per-client", test_fds_per_client);
    return g_test_run();
}
