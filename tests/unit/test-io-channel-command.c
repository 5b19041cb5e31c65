/*
 * Unit tests of io/channel-command.c: a child's stdin/stdout as a channel
 * (cat both ways, large transfers), and close reporting how the child
 * ended (exit status, signal).
 */
#include "qemu/osdep.h"
#include "io/channel-command.h"

#include <signal.h>
#include <sys/wait.h>

static QIOChannel *spawn_sh(const char *script, int flags, GError **errp)
{
    const char *argv[] = {"sh", "-c", script, NULL};
    QIOChannelCommand *cioc = qio_channel_command_new_spawn(argv, flags, errp);

    return cioc ? &cioc->parent : NULL;
}

static void test_command_cat_small(void)
{
    g_autoptr(GError) err = NULL;
    QIOChannel *ioc = spawn_sh("cat", O_RDWR, &err);
    char buf[6] = {0};

    g_assert_no_error(err);
    g_assert_nonnull(ioc);
    g_assert_false(qio_channel_has_feature(ioc, QIO_CHANNEL_FEATURE_SEEKABLE));
    g_assert_cmpint(qio_channel_write_all(ioc, "hello", 5, &err), ==, 0);
    g_assert_cmpint(qio_channel_read_all(ioc, buf, 5, &err), ==, 0);
    g_assert_cmpstr(buf, ==, "hello");
    g_assert_cmpint(qio_channel_close(ioc, &err), ==, 0);
    g_assert_no_error(err);
    qio_channel_unref(ioc);
}

#define BIG (4 * MiB)

typedef struct {
    QIOChannel *ioc;
    const uint8_t *buf;
} Feeder;

static gpointer feed(gpointer opaque)
{
    Feeder *f = opaque;
    g_autoptr(GError) err = NULL;

    g_assert_cmpint(qio_channel_write_all(f->ioc, f->buf, BIG, &err), ==, 0);
    g_assert_no_error(err);
    return NULL;
}

static void test_command_cat_big(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree uint8_t *out = g_malloc(BIG);
    g_autofree uint8_t *in = g_malloc0(BIG);
    QIOChannel *ioc = spawn_sh("cat", O_RDWR, &err);
    Feeder f = {ioc, out};
    GThread *t;
    size_t i;

    g_assert_no_error(err);
    for (i = 0; i < BIG; i++) {
        out[i] = i ^ (i >> 9);
    }
    /* Feed from a thread: the pipes hold far less than 4 MiB. */
    t = g_thread_new("feed", feed, &f);
    g_assert_cmpint(qio_channel_read_all(ioc, in, BIG, &err), ==, 0);
    g_thread_join(t);
    g_assert_cmpmem(in, BIG, out, BIG);
    g_assert_cmpint(qio_channel_close(ioc, &err), ==, 0);
    g_assert_no_error(err);
    qio_channel_unref(ioc);
}

static void test_command_read_only(void)
{
    g_autoptr(GError) err = NULL;
    QIOChannel *ioc = spawn_sh("printf 'abc'", O_RDONLY, &err);
    char buf[4] = {0};
    struct iovec iov = {buf, 3};

    g_assert_no_error(err);
    g_assert_cmpint(qio_channel_readv_all_eof(ioc, &iov, 1, &err), ==, 1);
    g_assert_cmpstr(buf, ==, "abc");
    g_assert_cmpint(qio_channel_readv_all_eof(ioc, &iov, 1, &err), ==, 0);
    /* No stdin pipe to write to. */
    g_assert_cmpint(qio_channel_write(ioc, "x", 1, &err), ==, -1);
    g_assert_nonnull(err);
    g_clear_error(&err);
    g_assert_cmpint(qio_channel_close(ioc, &err), ==, 0);
    g_assert_no_error(err);
    qio_channel_unref(ioc);
}

static void test_command_write_only(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = g_dir_make_tmp("minivm-io-cmd-XXXXXX", &err);
    g_autofree char *path = g_build_filename(dir, "out", NULL);
    g_autofree char *script = g_strdup_printf("cat > '%s'", path);
    g_autofree char *contents = NULL;
    gsize len = 0;
    QIOChannel *ioc = spawn_sh(script, O_WRONLY, &err);

    g_assert_no_error(err);
    g_assert_cmpint(qio_channel_write_all(ioc, "saved", 5, &err), ==, 0);
    /* Close waits for the child, so the file is complete afterwards. */
    g_assert_cmpint(qio_channel_close(ioc, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_true(g_file_get_contents(path, &contents, &len, NULL));
    g_assert_cmpmem(contents, len, "saved", 5);
    qio_channel_unref(ioc);
    unlink(path);
    rmdir(dir);
}

static void test_command_exit_status(void)
{
    g_autoptr(GError) err = NULL;
    QIOChannel *ioc = spawn_sh("exit 3", O_RDONLY, &err);
    char c;

    g_assert_no_error(err);
    g_assert_cmpint(qio_channel_read(ioc, &c, 1, &err), ==, 0);
    g_assert_cmpint(qio_channel_close(ioc, &err), ==, -1);
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(err->message, "exited with status 3"));
    g_assert_nonnull(strstr(err->message, "exit 3"));
    g_clear_error(&err);
    /* Idempotent: the second close has nothing left to report. */
    g_assert_cmpint(qio_channel_close(ioc, &err), ==, 0);
    qio_channel_unref(ioc);
}

static void test_command_killed(void)
{
    g_autoptr(GError) err = NULL;
    QIOChannel *ioc = spawn_sh("kill -9 $$", O_WRONLY, &err);

    g_assert_no_error(err);
    g_assert_cmpint(qio_channel_close(ioc, &err), ==, -1);
    g_assert_nonnull(strstr(err->message, "killed by signal 9"));
    qio_channel_unref(ioc);
}

static void test_command_unref_reaps(void)
{
    g_autoptr(GError) err = NULL;
    QIOChannelCommand *cioc;
    const char *argv[] = {"true", NULL};
    GPid pid;

    cioc = qio_channel_command_new_spawn(argv, O_RDONLY, &err);
    g_assert_no_error(err);
    pid = cioc->pid;
    qio_channel_unref(&cioc->parent);
    /* Already reaped by the implicit close. */
    g_assert_cmpint(waitpid(pid, NULL, WNOHANG), ==, -1);
    g_assert_cmpint(errno, ==, ECHILD);
}

static void test_command_spawn_error(void)
{
    g_autoptr(GError) err = NULL;
    const char *argv[] = {"/nonexistent/minivm-no-such-program", NULL};
    const char *empty[] = {NULL};

    g_assert_null(qio_channel_command_new_spawn(argv, O_RDONLY, &err));
    g_assert_nonnull(strstr(err->message, "minivm-no-such-program"));
    g_clear_error(&err);
    g_assert_null(qio_channel_command_new_spawn(empty, O_RDONLY, &err));
    g_assert_nonnull(err);
}

int main(int argc, char **argv)
{
    /* A child that dies before reading its stdin must not kill us. */
    signal(SIGPIPE, SIG_IGN);
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/io/channel/command/cat-small", test_command_cat_small);
    g_test_add_func("/io/channel/command/cat-big", test_command_cat_big);
    g_test_add_func("/io/channel/command/read-only", test_command_read_only);
    g_test_add_func("/io/channel/command/write-only", test_command_write_only);
    g_test_add_func("/io/channel/command/exit-status",
                    test_command_exit_status);
    g_test_add_func("/io/channel/command/killed", test_command_killed);
    g_test_add_func("/io/channel/command/unref-reaps",
                    test_command_unref_reaps);
    g_test_add_func("/io/channel/command/spawn-error",
                    test_command_spawn_error);
    return g_test_run();
}
