/*
 * The positioned-write queue (io/pio-queue.c) with both engines: io_uring
 * (skipped where the kernel refuses it) and the synchronous fallback. Many
 * scattered writes, buffered and O_DIRECT, land exactly where they were
 * aimed; a failing write is reported (sticky, by the pwrite or the drain
 * that finds it) with the channel's name and errno; bad arguments are
 * refused.
 */
#include "qemu/osdep.h"

#include "io/channel-file.h"
#include "io/pio-queue.h"
#include "qemu/memalign.h"

#define CHUNK   (16 * KiB)
#define NCHUNKS 96

static char *tmp_dir;

/* Chunk i's bytes: a pattern of i, so a misplaced chunk shows. */
static void chunk_fill(uint8_t *p, unsigned i)
{
    for (size_t j = 0; j < CHUNK; j += 8) {
        uint64_t v = (uint64_t)i << 32 | j;

        memcpy(p + j, &v, 8);
    }
}

/* Chunk i goes to an offset out of order, with holes between. */
static off_t chunk_offset(unsigned i)
{
    return (off_t)((i * 37) % NCHUNKS) * 2 * CHUNK;
}

static QIOChannel *open_channel(const char *path, int flags)
{
    GError *err = NULL;
    QIOChannelFile *fioc =
        qio_channel_file_new_path(path, flags | O_CREAT, 0600, &err);

    if (!fioc) {
        g_assert_nonnull(err);
        g_error_free(err);
        return NULL;
    }
    return QIO_CHANNEL(fioc);
}

/* Writes every chunk through a queue, drains, then checks the file. */
static void write_and_check(QIOPioEngine engine, unsigned depth, bool direct)
{
    g_autofree char *path = g_build_filename(tmp_dir, "q.bin", NULL);
    uint8_t *data = qemu_memalign(4096, (size_t)NCHUNKS * CHUNK);
    g_autofree uint8_t *back = g_malloc(CHUNK);
    QIOChannel *ioc;
    QIOPioQueue *q;
    GError *err = NULL;
    int fd;

    unlink(path);
    ioc = open_channel(path, O_WRONLY | (direct ? O_DIRECT : 0));
    if (!ioc) {
        g_test_skip("O_DIRECT not supported in the test directory");
        qemu_vfree(data);
        return;
    }
    q = qio_pio_queue_new(ioc, depth, engine, &err);
    if (!q && engine == QIO_PIO_ENGINE_URING) {
        g_test_skip(err->message);
        g_error_free(err);
        qio_channel_unref(ioc);
        qemu_vfree(data);
        return;
    }
    g_assert_no_error(err);
    g_assert_cmpint(qio_pio_queue_is_async(q), ==,
                    engine == QIO_PIO_ENGINE_URING);
    for (unsigned i = 0; i < NCHUNKS; i++) {
        chunk_fill(data + (size_t)i * CHUNK, i);
        g_assert_cmpint(qio_pio_queue_pwrite(q, data + (size_t)i * CHUNK, CHUNK,
                                             chunk_offset(i), &err),
                        ==, 0);
        g_assert_no_error(err);
    }
    g_assert_cmpint(qio_pio_queue_drain(q, &err), ==, 0);
    g_assert_no_error(err);
    qio_pio_queue_free(q);
    g_assert_cmpint(qio_channel_close(ioc, NULL), ==, 0);
    qio_channel_unref(ioc);

    fd = open(path, O_RDONLY);
    g_assert_cmpint(fd, >=, 0);
    for (unsigned i = 0; i < NCHUNKS; i++) {
        g_assert_cmpint(pread(fd, back, CHUNK, chunk_offset(i)), ==, CHUNK);
        g_assert_true(memcmp(back, data + (size_t)i * CHUNK, CHUNK) == 0);
    }
    close(fd);
    unlink(path);
    qemu_vfree(data);
}

static void test_sync(void)
{
    write_and_check(QIO_PIO_ENGINE_SYNC, 8, false);
}

static void test_uring(void)
{
    write_and_check(QIO_PIO_ENGINE_URING, 8, false);
}

static void test_uring_depth1(void)
{
    write_and_check(QIO_PIO_ENGINE_URING, 1, false);
}

static void test_sync_direct(void)
{
    write_and_check(QIO_PIO_ENGINE_SYNC, 8, true);
}

static void test_uring_direct(void)
{
    write_and_check(QIO_PIO_ENGINE_URING, 32, true);
}

/* A write the kernel refuses (the descriptor is read-only): EBADF. */
static void check_failure(QIOPioEngine engine)
{
    g_autofree char *path = g_build_filename(tmp_dir, "ro.bin", NULL);
    g_autofree uint8_t *buf = g_malloc0(CHUNK);
    QIOChannel *ioc = open_channel(path, O_RDONLY);
    GError *err = NULL;
    QIOPioQueue *q;
    int ret;

    g_assert_nonnull(ioc);
    qio_channel_set_name(ioc, "ro-file");
    q = qio_pio_queue_new(ioc, 4, engine, &err);
    if (!q && engine == QIO_PIO_ENGINE_URING) {
        g_test_skip(err->message);
        g_error_free(err);
        qio_channel_unref(ioc);
        return;
    }
    g_assert_no_error(err);
    /* Found on the spot (sync) or by the drain (io_uring). */
    ret = qio_pio_queue_pwrite(q, buf, CHUNK, 0, &err);
    if (ret == 0) {
        g_assert_no_error(err);
        ret = qio_pio_queue_drain(q, &err);
    }
    g_assert_cmpint(ret, ==, -1);
    g_assert_nonnull(err);
    g_assert_true(g_str_has_prefix(err->message,
                                   "Unable to write to 'ro-file' at offset 0"));
    g_assert_nonnull(strstr(err->message, g_strerror(EBADF)));
    g_clear_error(&err);
    /* Sticky: nothing more goes out. */
    g_assert_cmpint(qio_pio_queue_pwrite(q, buf, CHUNK, CHUNK, &err), ==, -1);
    g_assert_nonnull(err);
    g_clear_error(&err);
    g_assert_cmpint(qio_pio_queue_drain(q, &err), ==, -1);
    g_clear_error(&err);
    qio_pio_queue_free(q);
    qio_channel_unref(ioc);
    unlink(path);
}

static void test_failure_sync(void)
{
    check_failure(QIO_PIO_ENGINE_SYNC);
}

static void test_failure_uring(void)
{
    check_failure(QIO_PIO_ENGINE_URING);
}

static void test_refusals(void)
{
    g_autofree char *path = g_build_filename(tmp_dir, "r.bin", NULL);
    QIOChannel *ioc = open_channel(path, O_WRONLY);
    int fds[2];
    QIOChannelFile *pipe_ioc;
    GError *err = NULL;

    g_assert_null(qio_pio_queue_new(ioc, 0, QIO_PIO_ENGINE_AUTO, &err));
    g_assert_cmpstr(err->message, ==,
                    "I/O queue depth 0 is not between 1 and 256");
    g_clear_error(&err);
    g_assert_null(qio_pio_queue_new(ioc, QIO_PIO_QUEUE_MAX_DEPTH + 1,
                                    QIO_PIO_ENGINE_SYNC, &err));
    g_clear_error(&err);
    qio_channel_unref(ioc);
    unlink(path);

    /* A pipe has no positions. */
    g_assert_cmpint(pipe(fds), ==, 0);
    pipe_ioc = qio_channel_file_new_fd(fds[1]);
    qio_channel_set_name(QIO_CHANNEL(pipe_ioc), "pipe");
    g_assert_null(
        qio_pio_queue_new(QIO_CHANNEL(pipe_ioc), 4, QIO_PIO_ENGINE_AUTO, &err));
    g_assert_cmpstr(err->message, ==,
                    "Channel 'pipe' does not support positioned writes");
    g_clear_error(&err);
    qio_channel_unref(QIO_CHANNEL(pipe_ioc));
    close(fds[0]);
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    /* Disk-backed (/tmp here), so O_DIRECT is exercised where it exists. */
    tmp_dir = g_dir_make_tmp("test-pio-queue-XXXXXX", NULL);
    g_assert_nonnull(tmp_dir);

    g_test_add_func("/pio-queue/sync", test_sync);
    g_test_add_func("/pio-queue/uring", test_uring);
    g_test_add_func("/pio-queue/uring-depth1", test_uring_depth1);
    g_test_add_func("/pio-queue/sync-direct", test_sync_direct);
    g_test_add_func("/pio-queue/uring-direct", test_uring_direct);
    g_test_add_func("/pio-queue/failure-sync", test_failure_sync);
    g_test_add_func("/pio-queue/failure-uring", test_failure_uring);
    g_test_add_func("/pio-queue/refusals", test_refusals);
    ret = g_test_run();

    rmdir(tmp_dir);
    return ret;
}
