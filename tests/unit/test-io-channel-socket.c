/*
 * Unit tests of io/channel-socket.c: UNIX and TCP (IPv4 and IPv6) echo,
 * the listener's socket file, 8 MiB through a socket pair with partial
 * transfers (blocking and non-blocking), and SCM_RIGHTS in both directions.
 */
#include "qemu/osdep.h"
#include "io/channel-socket.h"

#include <dirent.h>
#include <sys/socket.h>
#include <sys/un.h>

static char *tmp_dir;

static QIOChannel *chan(QIOChannelSocket *sioc)
{
    return &sioc->parent;
}

typedef struct {
    QIOChannelSocket *listener;
    size_t len;
} EchoServer;

/* Accepts one client and echoes len bytes back. */
static gpointer echo_server(gpointer opaque)
{
    EchoServer *es = opaque;
    g_autoptr(GError) err = NULL;
    QIOChannelSocket *client = qio_channel_socket_accept(es->listener, &err);
    g_autofree uint8_t *buf = g_malloc(es->len);

    g_assert_no_error(err);
    g_assert_cmpint(qio_channel_read_all(chan(client), buf, es->len, &err), ==,
                    0);
    g_assert_cmpint(qio_channel_write_all(chan(client), buf, es->len, &err), ==,
                    0);
    g_assert_no_error(err);
    qio_channel_unref(chan(client));
    return NULL;
}

static void echo_roundtrip(QIOChannelSocket *listener, const char *addr)
{
    g_autoptr(GError) err = NULL;
    const size_t len = 100 * 1000;
    g_autofree uint8_t *out = g_malloc(len);
    g_autofree uint8_t *in = g_malloc0(len);
    EchoServer es = {listener, len};
    GThread *t = g_thread_new("echo", echo_server, &es);
    QIOChannelSocket *client = qio_channel_socket_connect(addr, &err);
    size_t i;

    g_assert_no_error(err);
    g_assert_nonnull(client);
    for (i = 0; i < len; i++) {
        out[i] = i * 13;
    }
    g_assert_cmpint(qio_channel_write_all(chan(client), out, len, &err), ==, 0);
    g_assert_cmpint(qio_channel_read_all(chan(client), in, len, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpmem(in, len, out, len);
    g_thread_join(t);
    qio_channel_unref(chan(client));
}

static void test_unix_echo(void)
{
    g_autofree char *path = g_build_filename(tmp_dir, "echo.sock", NULL);
    g_autofree char *addr = g_strdup_printf("unix:%s", path);
    g_autofree char *local = NULL;
    g_autoptr(GError) err = NULL;
    QIOChannelSocket *listener;
    struct stat st;

    listener = qio_channel_socket_listen(addr, &err);
    g_assert_no_error(err);
    g_assert_true(listener->is_unix);
    g_assert_true(
        qio_channel_has_feature(chan(listener), QIO_CHANNEL_FEATURE_FD_PASS));
    g_assert_true(
        qio_channel_has_feature(chan(listener), QIO_CHANNEL_FEATURE_SHUTDOWN));
    g_assert_false(
        qio_channel_has_feature(chan(listener), QIO_CHANNEL_FEATURE_SEEKABLE));

    /* Only the owner may connect. */
    g_assert_cmpint(lstat(path, &st), ==, 0);
    g_assert_true(S_ISSOCK(st.st_mode));
    g_assert_cmpint(st.st_mode & 0777, ==, 0600);

    local = qio_channel_socket_get_local_address(listener, &err);
    g_assert_cmpstr(local, ==, addr);

    echo_roundtrip(listener, addr);
    qio_channel_unref(chan(listener));
    /* The listener removes its socket file. */
    g_assert_cmpint(lstat(path, &st), ==, -1);
}

static void test_unix_stale_socket(void)
{
    g_autofree char *path = g_build_filename(tmp_dir, "stale.sock", NULL);
    g_autofree char *file = g_build_filename(tmp_dir, "plain-file", NULL);
    g_autofree char *addr = g_strdup_printf("unix:%s", path);
    g_autofree char *file_addr = g_strdup_printf("unix:%s", file);
    g_autoptr(GError) err = NULL;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    QIOChannelSocket *listener;
    int fd;

    /* A socket file left behind by a dead process. */
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    g_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
    g_assert_cmpint(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), ==, 0);
    close(fd);

    listener = qio_channel_socket_listen(addr, &err);
    g_assert_no_error(err);
    echo_roundtrip(listener, addr);
    qio_channel_unref(chan(listener));

    /* Anything that is not a socket is left alone. */
    g_assert_true(g_file_set_contents(file, "keep", 4, NULL));
    g_assert_null(qio_channel_socket_listen(file_addr, &err));
    g_assert_nonnull(strstr(err->message, file));
    g_clear_error(&err);
    g_assert_true(g_file_test(file, G_FILE_TEST_IS_REGULAR));
    unlink(file);
}

static void test_tcp_echo(const char *listen_addr, const char *prefix)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *local = NULL;
    QIOChannelSocket *listener = qio_channel_socket_listen(listen_addr, &err);

    if (!listener) {
        g_test_skip(err->message);
        return;
    }
    g_assert_false(listener->is_unix);
    g_assert_false(
        qio_channel_has_feature(chan(listener), QIO_CHANNEL_FEATURE_FD_PASS));
    local = qio_channel_socket_get_local_address(listener, &err);
    g_assert_no_error(err);
    /* Port 0 became a real port. */
    g_assert_true(g_str_has_prefix(local, prefix));
    g_assert_false(g_str_has_suffix(local, ":0"));
    echo_roundtrip(listener, local);
    qio_channel_unref(chan(listener));
}

static void test_tcp_echo_ipv4(void)
{
    test_tcp_echo("tcp:127.0.0.1:0", "tcp:127.0.0.1:");
}

static void test_tcp_echo_ipv6(void)
{
    test_tcp_echo("tcp:[::1]:0", "tcp:[::1]:");
}

static void test_bad_addresses(void)
{
    static const char *const bad[] = {
        "foo:bar",        "tcp:localhost", "tcp:[::1:80",
        "tcp:127.0.0.1:", "unix:",         "",
    };
    g_autofree char *missing = g_strdup_printf("unix:%s/no-such.sock", tmp_dir);
    g_autoptr(GError) err = NULL;
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_assert_null(qio_channel_socket_connect(bad[i], &err));
        g_assert_nonnull(err);
        g_clear_error(&err);
        g_assert_null(qio_channel_socket_listen(bad[i], &err));
        g_assert_nonnull(err);
        g_clear_error(&err);
    }
    g_assert_null(qio_channel_socket_connect(missing, &err));
    g_assert_nonnull(strstr(err->message, missing));
    g_clear_error(&err);

    /* Not a socket at all. */
    {
        int fd = open("/dev/null", O_RDONLY);

        g_assert_null(qio_channel_socket_new_fd(fd, &err));
        g_assert_nonnull(err);
        close(fd);
    }
}

static void make_pair(QIOChannelSocket **a, QIOChannelSocket **b)
{
    g_autoptr(GError) err = NULL;
    int sv[2];

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==,
                    0);
    *a = qio_channel_socket_new_fd(sv[0], &err);
    g_assert_no_error(err);
    *b = qio_channel_socket_new_fd(sv[1], &err);
    g_assert_no_error(err);
}

#define BIG_LEN (8 * MiB)

typedef struct {
    QIOChannel *ioc;
    const uint8_t *buf;
    bool nonblocking;
} BigWriter;

static gpointer big_writer(gpointer opaque)
{
    BigWriter *w = opaque;
    g_autoptr(GError) err = NULL;
    /* Several pieces, so partial writes split them at odd places. */
    struct iovec iov[3] = {
        {(void *)w->buf, 12345},
        {(void *)(w->buf + 12345), BIG_LEN / 2},
        {(void *)(w->buf + 12345 + BIG_LEN / 2), BIG_LEN / 2 - 12345},
    };

    if (w->nonblocking) {
        g_assert_cmpint(qio_channel_set_blocking(w->ioc, false, &err), ==, 0);
    }
    g_assert_cmpint(qio_channel_writev_all(w->ioc, iov, 3, &err), ==, 0);
    g_assert_no_error(err);
    return NULL;
}

static void big_transfer(bool nonblocking)
{
    g_autoptr(GError) err = NULL;
    g_autofree uint8_t *out = g_malloc(BIG_LEN);
    g_autofree uint8_t *in = g_malloc0(BIG_LEN);
    QIOChannelSocket *a, *b;
    BigWriter w;
    GThread *t;
    size_t i;

    make_pair(&a, &b);
    for (i = 0; i < BIG_LEN; i++) {
        out[i] = (i * 7) ^ (i >> 12);
    }
    w.ioc = chan(a);
    w.buf = out;
    w.nonblocking = nonblocking;
    t = g_thread_new("big", big_writer, &w);
    if (nonblocking) {
        g_assert_cmpint(qio_channel_set_blocking(chan(b), false, &err), ==, 0);
    }
    g_assert_cmpint(qio_channel_read_all(chan(b), in, BIG_LEN, &err), ==, 0);
    g_assert_no_error(err);
    g_thread_join(t);
    g_assert_cmpmem(in, BIG_LEN, out, BIG_LEN);

    /* Shutting down the writer's side gives the reader a clean EOF. */
    g_assert_cmpint(
        qio_channel_shutdown(chan(a), QIO_CHANNEL_SHUTDOWN_WRITE, &err), ==, 0);
    {
        struct iovec iov = {in, 1};

        g_assert_cmpint(qio_channel_readv_all_eof(chan(b), &iov, 1, &err), ==,
                        0);
        g_assert_no_error(err);
    }
    qio_channel_unref(chan(a));
    qio_channel_unref(chan(b));
}

static void test_pair_big_blocking(void)
{
    big_transfer(false);
}

static void test_pair_big_nonblocking(void)
{
    big_transfer(true);
}

/* Sends two fresh pipes' write ends over from, checks they work at to. */
static void pass_two_fds(QIOChannel *from, QIOChannel *to)
{
    g_autoptr(GError) err = NULL;
    int p1[2], p2[2];
    int send[2];
    int *got = NULL;
    size_t ngot = 0;
    char msg[4] = {0};
    struct iovec iov = {msg, sizeof(msg)};
    char c;

    g_assert_cmpint(pipe2(p1, O_CLOEXEC), ==, 0);
    g_assert_cmpint(pipe2(p2, O_CLOEXEC), ==, 0);
    send[0] = p1[1];
    send[1] = p2[1];
    g_assert_cmpint(qio_channel_writev_full_all(from, &(struct iovec){"fds", 4},
                                                1, send, 2, &err),
                    ==, 0);
    g_assert_no_error(err);
    /* Ours can go: the receiver holds its own references. */
    close(p1[1]);
    close(p2[1]);

    g_assert_cmpint(qio_channel_readv_full(to, &iov, 1, &got, &ngot, &err), ==,
                    4);
    g_assert_no_error(err);
    g_assert_cmpstr(msg, ==, "fds");
    g_assert_cmpuint(ngot, ==, 2);
    g_assert_cmpint(fcntl(got[0], F_GETFD) & FD_CLOEXEC, ==, FD_CLOEXEC);
    g_assert_cmpint(fcntl(got[1], F_GETFD) & FD_CLOEXEC, ==, FD_CLOEXEC);

    /* They really are the two pipes, in order. */
    g_assert_cmpint(write(got[0], "1", 1), ==, 1);
    g_assert_cmpint(write(got[1], "2", 1), ==, 1);
    g_assert_cmpint(read(p1[0], &c, 1), ==, 1);
    g_assert_cmpint(c, ==, '1');
    g_assert_cmpint(read(p2[0], &c, 1), ==, 1);
    g_assert_cmpint(c, ==, '2');
    close(got[0]);
    close(got[1]);
    g_free(got);
    /* All write ends closed: the pipes see EOF. */
    g_assert_cmpint(read(p1[0], &c, 1), ==, 0);
    g_assert_cmpint(read(p2[0], &c, 1), ==, 0);
    close(p1[0]);
    close(p2[0]);
}

static void test_pair_fd_pass(void)
{
    QIOChannelSocket *a, *b;

    make_pair(&a, &b);
    pass_two_fds(chan(a), chan(b));
    pass_two_fds(chan(b), chan(a));
    qio_channel_unref(chan(a));
    qio_channel_unref(chan(b));
}

static void test_unix_fd_pass_connected(void)
{
    g_autofree char *path = g_build_filename(tmp_dir, "fds.sock", NULL);
    g_autofree char *addr = g_strdup_printf("unix:%s", path);
    g_autoptr(GError) err = NULL;
    QIOChannelSocket *listener = qio_channel_socket_listen(addr, &err);
    QIOChannelSocket *client = qio_channel_socket_connect(addr, &err);
    QIOChannelSocket *server = qio_channel_socket_accept(listener, &err);

    g_assert_no_error(err);
    g_assert_true(
        qio_channel_has_feature(chan(server), QIO_CHANNEL_FEATURE_FD_PASS));
    pass_two_fds(chan(client), chan(server));
    pass_two_fds(chan(server), chan(client));
    qio_channel_unref(chan(client));
    qio_channel_unref(chan(server));
    qio_channel_unref(chan(listener));
}

static unsigned count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    unsigned n = 0;

    g_assert_nonnull(d);
    while (readdir(d)) {
        n++;
    }
    closedir(d);
    return n;
}

static void test_pair_unasked_fds_closed(void)
{
    g_autoptr(GError) err = NULL;
    QIOChannelSocket *a, *b;
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    unsigned before;
    char buf[2];

    make_pair(&a, &b);
    g_assert_cmpint(qio_channel_writev_full_all(
                        chan(a), &(struct iovec){"x", 2}, 1, &fd, 1, &err),
                    ==, 0);
    close(fd);
    before = count_open_fds();
    /* A plain read must not leak the descriptor that came along. */
    g_assert_cmpint(qio_channel_read_all(chan(b), buf, 2, &err), ==, 0);
    g_assert_cmpuint(count_open_fds(), ==, before);

    /* Descriptors without data are refused rather than lost. */
    g_assert_cmpint(qio_channel_writev_full_all(chan(a), NULL, 0, &fd, 1, &err),
                    ==, -1);
    g_assert_nonnull(err);
    qio_channel_unref(chan(a));
    qio_channel_unref(chan(b));
}

static void test_tcp_no_fd_pass(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *local = NULL;
    QIOChannelSocket *listener =
        qio_channel_socket_listen("tcp:127.0.0.1:0", &err);
    QIOChannelSocket *client;
    int fd = 0;

    g_assert_no_error(err);
    local = qio_channel_socket_get_local_address(listener, &err);
    client = qio_channel_socket_connect(local, &err);
    g_assert_no_error(err);
    g_assert_cmpint(qio_channel_writev_full(
                        chan(client), &(struct iovec){"x", 1}, 1, &fd, 1, &err),
                    ==, -1);
    g_assert_nonnull(strstr(err->message, "file descriptor passing"));
    qio_channel_unref(chan(client));
    qio_channel_unref(chan(listener));
}

static void test_nonblocking_accept(void)
{
    g_autofree char *path = g_build_filename(tmp_dir, "nb.sock", NULL);
    g_autofree char *addr = g_strdup_printf("unix:%s", path);
    g_autoptr(GError) err = NULL;
    QIOChannelSocket *listener = qio_channel_socket_listen(addr, &err);
    QIOChannelSocket *client;
    QIOChannelSocket *server;

    g_assert_cmpint(qio_channel_set_blocking(chan(listener), false, &err), ==,
                    0);
    /* Nobody knocking: accept fails instead of blocking. */
    g_assert_null(qio_channel_socket_accept(listener, &err));
    g_assert_nonnull(err);
    g_clear_error(&err);

    client = qio_channel_socket_connect(addr, &err);
    server = qio_channel_socket_accept(listener, &err);
    g_assert_no_error(err);
    g_assert_nonnull(server);
    qio_channel_unref(chan(server));
    qio_channel_unref(chan(client));
    qio_channel_unref(chan(listener));
}

int main(int argc, char **argv)
{
    g_autoptr(GError) err = NULL;
    int ret;

    g_test_init(&argc, &argv, NULL);
    tmp_dir = g_dir_make_tmp("minivm-io-sock-XXXXXX", &err);
    g_assert_no_error(err);

    g_test_add_func("/io/channel/socket/unix-echo", test_unix_echo);
    g_test_add_func("/io/channel/socket/unix-stale", test_unix_stale_socket);
    g_test_add_func("/io/channel/socket/tcp-echo-ipv4", test_tcp_echo_ipv4);
    g_test_add_func("/io/channel/socket/tcp-echo-ipv6", test_tcp_echo_ipv6);
    g_test_add_func("/io/channel/socket/bad-addresses", test_bad_addresses);
    g_test_add_func("/io/channel/socket/pair-8M-blocking",
                    test_pair_big_blocking);
    g_test_add_func("/io/channel/socket/pair-8M-nonblocking",
                    test_pair_big_nonblocking);
    g_test_add_func("/io/channel/socket/pair-fd-pass", test_pair_fd_pass);
    g_test_add_func("/io/channel/socket/unix-fd-pass",
                    test_unix_fd_pass_connected);
    g_test_add_func("/io/channel/socket/unasked-fds-closed",
                    test_pair_unasked_fds_closed);
    g_test_add_func("/io/channel/socket/tcp-no-fd-pass", test_tcp_no_fd_pass);
    g_test_add_func("/io/channel/socket/nonblocking-accept",
                    test_nonblocking_accept);
    ret = g_test_run();
    rmdir(tmp_dir);
    g_free(tmp_dir);
    return ret;
}
