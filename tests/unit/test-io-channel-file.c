/*
 * Unit tests of io/channel-file.c and of the generic loops in io/channel.c
 * that the file transport drives: positioned I/O, region writes (one call
 * per contiguous run, holes left where nothing was written), fsync on
 * close, non-blocking pipes and watches.
 */
#include "qemu/osdep.h"
#include "io/channel-file.h"
#include "qemu/cutils.h"

#include <poll.h>

static char *tmp_dir;

static char *tmp_path(const char *name)
{
    return g_build_filename(tmp_dir, name, NULL);
}

static QIOChannel *open_file(const char *path, int flags)
{
    g_autoptr(GError) err = NULL;
    QIOChannelFile *fioc = qio_channel_file_new_path(path, flags, 0600, &err);

    g_assert_no_error(err);
    g_assert_nonnull(fioc);
    return QIO_CHANNEL(fioc);
}

static void fill_pattern(uint8_t *buf, size_t len, unsigned seed)
{
    size_t i;

    for (i = 0; i < len; i++) {
        buf[i] = (uint8_t)(i * 31 + seed * 7 + (i >> 8));
    }
}

static void test_file_rw_positioned(void)
{
    g_autofree char *path = tmp_path("positioned");
    g_autoptr(GError) err = NULL;
    QIOChannel *ioc = open_file(path, O_CREAT | O_RDWR | O_TRUNC);
    uint8_t a[100], b[200], c[50];
    uint8_t ra[100], rb[200], rc[50];
    struct iovec wv[2] = {{a, sizeof(a)}, {b, sizeof(b)}};
    struct iovec rv[2] = {{ra, sizeof(ra)}, {rb, sizeof(rb)}};

    g_assert_true(qio_channel_has_feature(ioc, QIO_CHANNEL_FEATURE_SEEKABLE));
    g_assert_false(qio_channel_has_feature(ioc, QIO_CHANNEL_FEATURE_FD_PASS));
    g_assert_cmpstr(ioc->name, ==, path);
    fill_pattern(a, sizeof(a), 1);
    fill_pattern(b, sizeof(b), 2);
    fill_pattern(c, sizeof(c), 3);

    g_assert_cmpint(qio_channel_pwritev_all(ioc, wv, 2, 1000, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(qio_channel_pwrite_all(ioc, c, sizeof(c), 10, &err), ==, 0);
    /* Positioned I/O leaves the file offset alone. */
    g_assert_cmpint(qio_channel_io_seek(ioc, 0, SEEK_CUR, &err), ==, 0);
    g_assert_cmpint(qio_channel_io_seek(ioc, 0, SEEK_END, &err), ==, 1300);

    g_assert_cmpint(qio_channel_preadv_all(ioc, rv, 2, 1000, &err), ==, 0);
    g_assert_cmpmem(ra, sizeof(ra), a, sizeof(a));
    g_assert_cmpmem(rb, sizeof(rb), b, sizeof(b));
    g_assert_cmpint(qio_channel_pread_all(ioc, rc, sizeof(rc), 10, &err), ==,
                    0);
    g_assert_cmpmem(rc, sizeof(rc), c, sizeof(c));

    /* Sequential I/O after a seek. */
    g_assert_cmpint(qio_channel_io_seek(ioc, 1100, SEEK_SET, &err), ==, 1100);
    g_assert_cmpint(qio_channel_read_all(ioc, rb, 50, &err), ==, 0);
    g_assert_cmpmem(rb, 50, b, 50);
    g_assert_cmpint(qio_channel_flush(ioc, &err), ==, 0);
    g_assert_no_error(err);

    /* Reading past the end names the offset where data ran out. */
    g_assert_cmpint(qio_channel_pread_all(ioc, rb, 200, 1200, &err), ==, -1);
    g_assert_nonnull(strstr(err->message, "offset 1300"));
    g_clear_error(&err);

    g_assert_cmpint(qio_channel_close(ioc, &err), ==, 0);
    g_assert_cmpint(qio_channel_close(ioc, &err), ==, 0); /* idempotent */
    g_assert_cmpint(qio_channel_pread_all(ioc, rb, 1, 0, &err), ==, -1);
    g_assert_nonnull(strstr(err->message, "closed"));
    qio_channel_unref(ioc);
    unlink(path);
}

static void test_file_many_pieces(void)
{
    g_autofree char *path = tmp_path("pieces");
    g_autoptr(GError) err = NULL;
    QIOChannel *ioc = open_file(path, O_CREAT | O_RDWR | O_TRUNC);
    /* More pieces than IOV_MAX and than the cursor's stack copy. */
    const size_t npieces = 2500;
    g_autofree uint8_t *data = g_malloc(npieces * 3);
    g_autofree uint8_t *back = g_malloc0(npieces * 3);
    g_autofree struct iovec *iov = g_new(struct iovec, npieces);
    size_t i;

    fill_pattern(data, npieces * 3, 9);
    for (i = 0; i < npieces; i++) {
        iov[i].iov_base = data + i * 3;
        iov[i].iov_len = 3;
    }
    g_assert_cmpint(qio_channel_pwritev_all(ioc, iov, npieces, 7, &err), ==, 0);
    g_assert_no_error(err);
    for (i = 0; i < npieces; i++) {
        iov[i].iov_base = back + i * 3;
    }
    g_assert_cmpint(qio_channel_preadv_all(ioc, iov, npieces, 7, &err), ==, 0);
    g_assert_cmpmem(back, npieces * 3, data, npieces * 3);

    /* Same through the sequential loops. */
    memset(back, 0, npieces * 3);
    for (i = 0; i < npieces; i++) {
        iov[i].iov_base = data + i * 3;
    }
    g_assert_cmpint(qio_channel_writev_all(ioc, iov, npieces, &err), ==, 0);
    g_assert_cmpint(qio_channel_io_seek(ioc, 0, SEEK_SET, &err), ==, 0);
    for (i = 0; i < npieces; i++) {
        iov[i].iov_base = back + i * 3;
    }
    g_assert_cmpint(qio_channel_readv_all(ioc, iov, npieces, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpmem(back, npieces * 3, data, npieces * 3);
    qio_channel_unref(ioc);
    unlink(path);
}

/*
 * A pass-through channel that counts the positioned calls reaching the
 * transport, to prove a region write makes one call per contiguous run.
 */
typedef struct {
    QIOChannel parent;
    QIOChannel *inner;
    unsigned calls;
    off_t offsets[16];
    size_t lens[16];
    size_t niovs[16];
} CountingChannel;

static ssize_t counting_readv(QIOChannel *ioc, const struct iovec *iov,
                              size_t niov, int **fds, size_t *nfds,
                              GError **errp)
{
    CountingChannel *cc = container_of(ioc, CountingChannel, parent);

    return qio_channel_readv_full(cc->inner, iov, niov, NULL, NULL, errp);
}

static ssize_t counting_writev(QIOChannel *ioc, const struct iovec *iov,
                               size_t niov, const int *fds, size_t nfds,
                               GError **errp)
{
    CountingChannel *cc = container_of(ioc, CountingChannel, parent);

    return qio_channel_writev_full(cc->inner, iov, niov, NULL, 0, errp);
}

static void counting_record(CountingChannel *cc, const struct iovec *iov,
                            size_t niov, off_t offset)
{
    size_t i, len = 0;

    for (i = 0; i < niov; i++) {
        len += iov[i].iov_len;
    }
    if (cc->calls < G_N_ELEMENTS(cc->offsets)) {
        cc->offsets[cc->calls] = offset;
        cc->lens[cc->calls] = len;
        cc->niovs[cc->calls] = niov;
    }
    cc->calls++;
}

static ssize_t counting_pwritev(QIOChannel *ioc, const struct iovec *iov,
                                size_t niov, off_t offset, GError **errp)
{
    CountingChannel *cc = container_of(ioc, CountingChannel, parent);

    counting_record(cc, iov, niov, offset);
    return cc->inner->klass->io_pwritev(cc->inner, iov, niov, offset, errp);
}

static ssize_t counting_preadv(QIOChannel *ioc, const struct iovec *iov,
                               size_t niov, off_t offset, GError **errp)
{
    CountingChannel *cc = container_of(ioc, CountingChannel, parent);

    counting_record(cc, iov, niov, offset);
    return cc->inner->klass->io_preadv(cc->inner, iov, niov, offset, errp);
}

static int counting_close(QIOChannel *ioc, GError **errp)
{
    CountingChannel *cc = container_of(ioc, CountingChannel, parent);

    return qio_channel_close(cc->inner, errp);
}

static void counting_finalize(QIOChannel *ioc)
{
    CountingChannel *cc = container_of(ioc, CountingChannel, parent);

    qio_channel_unref(cc->inner);
}

static const QIOChannelClass counting_class = {
    .type_name = "counting",
    .io_readv = counting_readv,
    .io_writev = counting_writev,
    .io_pwritev = counting_pwritev,
    .io_preadv = counting_preadv,
    .io_close = counting_close,
    .finalize = counting_finalize,
};

static CountingChannel *counting_new(QIOChannel *inner)
{
    CountingChannel *cc = g_new0(CountingChannel, 1);

    qio_channel_init(&cc->parent, &counting_class);
    qio_channel_set_feature(&cc->parent, QIO_CHANNEL_FEATURE_SEEKABLE);
    cc->inner = inner;
    return cc;
}

/* Does this file system report holes? Probe with a sparse file. */
static bool fs_has_holes(void)
{
    g_autofree char *path = tmp_path("probe");
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    bool holes;

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pwrite(fd, "x", 1, 4 * MiB), ==, 1);
    holes = lseek(fd, 0, SEEK_DATA) > 0;
    close(fd);
    unlink(path);
    return holes;
}

#define REGION_PAGES 16
#define PAGE         4096

static void test_file_pwritev_region(void)
{
    g_autofree char *path = tmp_path("region");
    g_autoptr(GError) err = NULL;
    const off_t file_base = 8192;
    uint8_t *ram = g_malloc(REGION_PAGES * PAGE);
    uint8_t *back = g_malloc0(REGION_PAGES * PAGE);
    /*
     * Three runs: pages 0-2 (three pieces, the middle one split in two),
     * page 5, pages 8-9; pages 3-4, 6-7 and 10-15 are never written.
     */
    struct iovec pieces[] = {
        {ram + 0 * PAGE, PAGE},
        {ram + 1 * PAGE, PAGE / 2},
        {ram + 1 * PAGE + PAGE / 2, PAGE / 2},
        {ram + 2 * PAGE, PAGE},
        {ram + 5 * PAGE, PAGE},
        {ram + 8 * PAGE, PAGE},
        {ram + 9 * PAGE, PAGE},
    };
    struct iovec rpieces[G_N_ELEMENTS(pieces)];
    CountingChannel *cc;
    QIOChannel *ioc;
    struct stat st;
    size_t i, p;
    int fd;

    fill_pattern(ram, REGION_PAGES * PAGE, 5);
    cc = counting_new(open_file(path, O_CREAT | O_RDWR | O_TRUNC));
    ioc = &cc->parent;

    g_assert_cmpint(qio_channel_pwritev_region(ioc, pieces,
                                               G_N_ELEMENTS(pieces), ram,
                                               file_base, &err),
                    ==, 0);
    g_assert_no_error(err);
    g_assert_cmpuint(cc->calls, ==, 3);
    g_assert_cmpint(cc->offsets[0], ==, file_base);
    g_assert_cmpuint(cc->lens[0], ==, 3 * PAGE);
    g_assert_cmpint(cc->offsets[1], ==, file_base + 5 * PAGE);
    g_assert_cmpuint(cc->lens[1], ==, PAGE);
    g_assert_cmpint(cc->offsets[2], ==, file_base + 8 * PAGE);
    g_assert_cmpuint(cc->lens[2], ==, 2 * PAGE);
    for (i = 0; i < 3; i++) {
        /* Adjacent pieces are merged into one iovec entry. */
        g_assert_cmpuint(cc->niovs[i], ==, 1);
    }

    /* Read back the same layout into another buffer. */
    for (i = 0; i < G_N_ELEMENTS(pieces); i++) {
        rpieces[i].iov_base = back + ((uint8_t *)pieces[i].iov_base - ram);
        rpieces[i].iov_len = pieces[i].iov_len;
    }
    cc->calls = 0;
    g_assert_cmpint(qio_channel_preadv_region(ioc, rpieces,
                                              G_N_ELEMENTS(rpieces), back,
                                              file_base, &err),
                    ==, 0);
    g_assert_no_error(err);
    g_assert_cmpuint(cc->calls, ==, 3);
    for (p = 0; p < REGION_PAGES; p++) {
        bool written = p <= 2 || p == 5 || p == 8 || p == 9;

        if (written) {
            g_assert_cmpmem(back + p * PAGE, PAGE, ram + p * PAGE, PAGE);
        } else {
            g_assert_true(buffer_is_zero(back + p * PAGE, PAGE));
        }
    }
    qio_channel_unref(ioc);

    /* The file: data where runs went, zeros (holes if we can tell) else. */
    fd = open(path, O_RDONLY);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(fstat(fd, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, file_base + 10 * PAGE);
    for (p = 0; p < 10; p++) {
        uint8_t page[PAGE];
        bool written = p <= 2 || p == 5 || p == 8 || p == 9;

        g_assert_cmpint(pread(fd, page, PAGE, file_base + p * PAGE), ==, PAGE);
        if (written) {
            g_assert_cmpmem(page, PAGE, ram + p * PAGE, PAGE);
        } else {
            g_assert_true(buffer_is_zero(page, PAGE));
        }
    }
    if (fs_has_holes()) {
        g_assert_cmpint(lseek(fd, file_base + 3 * PAGE, SEEK_DATA), ==,
                        file_base + 5 * PAGE);
        g_assert_cmpint(lseek(fd, file_base + 5 * PAGE, SEEK_HOLE), ==,
                        file_base + 6 * PAGE);
        g_assert_cmpint(lseek(fd, file_base + 6 * PAGE, SEEK_DATA), ==,
                        file_base + 8 * PAGE);
    } else {
        g_test_message("file system reports no holes; hole check skipped");
    }
    close(fd);
    g_free(ram);
    g_free(back);
    unlink(path);
}

static void test_file_region_errors(void)
{
    uint8_t buf[64];
    struct iovec before = {buf, 8};
    g_autoptr(GError) err = NULL;
    int fds[2];
    QIOChannel *ioc;

    g_assert_cmpint(pipe(fds), ==, 0);
    ioc = QIO_CHANNEL(qio_channel_file_new_fd(fds[1]));
    /* A pipe is not seekable: positioned I/O is refused. */
    g_assert_false(qio_channel_has_feature(ioc, QIO_CHANNEL_FEATURE_SEEKABLE));
    g_assert_cmpint(qio_channel_pwrite_all(ioc, buf, 8, 0, &err), ==, -1);
    g_assert_nonnull(strstr(err->message, "positioned"));
    g_clear_error(&err);
    g_assert_cmpint(
        qio_channel_pwritev_region(ioc, &before, 1, buf + 16, 0, &err), ==, -1);
    g_assert_nonnull(err);
    g_clear_error(&err);
    g_assert_cmpint(qio_channel_io_seek(ioc, 0, SEEK_SET, &err), ==, -1);
    g_assert_nonnull(err);
    g_clear_error(&err);
    /* Nothing to flush on a pipe is not an error. */
    g_assert_cmpint(qio_channel_flush(ioc, &err), ==, 0);
    g_assert_no_error(err);
    qio_channel_unref(ioc);
    close(fds[0]);
}

static void test_file_fsync_on_close(void)
{
    g_autofree char *path = tmp_path("fsync");
    g_autoptr(GError) err = NULL;
    g_autofree char *contents = NULL;
    gsize len = 0;
    QIOChannel *ioc = open_file(path, O_CREAT | O_WRONLY | O_TRUNC);

    g_assert_cmpint(qio_channel_write_all(ioc, "hello", 5, &err), ==, 0);
    g_assert_cmpint(qio_channel_close(ioc, &err), ==, 0);
    g_assert_no_error(err);
    qio_channel_unref(ioc);
    g_assert_true(g_file_get_contents(path, &contents, &len, NULL));
    g_assert_cmpmem(contents, len, "hello", 5);

    /* Read-only files are not fsynced and close cleanly. */
    ioc = open_file(path, O_RDONLY);
    g_assert_cmpint(qio_channel_close(ioc, &err), ==, 0);
    qio_channel_unref(ioc);

    /*
     * A regular file opened for writing whose fsync fails: procfs files
     * have no fsync, so close must report the failure.
     */
    ioc = open_file("/proc/thread-self/comm", O_WRONLY);
    g_assert_cmpint(qio_channel_close(ioc, &err), ==, -1);
    g_assert_nonnull(err);
    g_assert_true(g_str_has_prefix(err->message, "Unable to fsync"));
    g_assert_nonnull(strstr(err->message, g_strerror(EINVAL)));
    g_clear_error(&err);
    g_assert_cmpint(qio_channel_get_fd(ioc, G_IO_OUT), ==, -1);
    qio_channel_unref(ioc);
    unlink(path);
}

static void test_file_close_error(void)
{
    g_autoptr(GError) err = NULL;
    int fd = open("/dev/null", O_RDONLY);
    QIOChannel *ioc = QIO_CHANNEL(qio_channel_file_new_fd(fd));

    /* Someone closed our fd behind our back: close reports EBADF. */
    close(fd);
    g_assert_cmpint(qio_channel_close(ioc, &err), ==, -1);
    g_assert_nonnull(strstr(err->message, g_strerror(EBADF)));
    qio_channel_unref(ioc);
}

static void test_file_new_path_error(void)
{
    g_autofree char *path = tmp_path("missing/file");
    g_autofree char *expect =
        g_strdup_printf("Could not open '%s': %s", path, g_strerror(ENOENT));
    g_autoptr(GError) err = NULL;

    g_assert_null(qio_channel_file_new_path(path, O_RDONLY, 0, &err));
    g_assert_cmpstr(err->message, ==, expect);
}

static void test_file_unref_closes(void)
{
    g_autofree char *path = tmp_path("unref");
    QIOChannel *ioc = open_file(path, O_CREAT | O_WRONLY | O_TRUNC);
    int fd = qio_channel_get_fd(ioc, G_IO_OUT);

    qio_channel_ref(ioc);
    qio_channel_unref(ioc);
    g_assert_cmpint(fcntl(fd, F_GETFD), >=, 0);
    qio_channel_unref(ioc);
    g_assert_cmpint(fcntl(fd, F_GETFD), ==, -1);
    unlink(path);
}

typedef struct {
    int fd;
    size_t len;
} DelayedWriter;

static gpointer delayed_writer(gpointer opaque)
{
    DelayedWriter *w = opaque;
    g_autofree uint8_t *buf = g_malloc(w->len);
    size_t done = 0;

    fill_pattern(buf, w->len, 4);
    g_usleep(20 * 1000);
    while (done < w->len) {
        ssize_t n = write(w->fd, buf + done, MIN(w->len - done, 1000));

        g_assert_cmpint(n, >, 0);
        done += n;
        g_usleep(100);
    }
    return NULL;
}

static void test_file_pipe_nonblocking(void)
{
    g_autoptr(GError) err = NULL;
    int fds[2];
    QIOChannel *rioc;
    uint8_t byte;
    const size_t len = 200 * 1000;
    g_autofree uint8_t *buf = g_malloc(len);
    g_autofree uint8_t *expect = g_malloc(len);
    DelayedWriter w;
    GThread *t;

    g_assert_cmpint(pipe(fds), ==, 0);
    rioc = QIO_CHANNEL(qio_channel_file_new_fd(fds[0]));
    g_assert_cmpint(qio_channel_set_blocking(rioc, false, &err), ==, 0);
    g_assert_cmpint(qio_channel_read(rioc, &byte, 1, &err), ==,
                    QIO_CHANNEL_ERR_BLOCK);
    g_assert_no_error(err);

    /* read_all polls through ERR_BLOCK until the slow writer is done. */
    w.fd = fds[1];
    w.len = len;
    t = g_thread_new("writer", delayed_writer, &w);
    g_assert_cmpint(qio_channel_read_all(rioc, buf, len, &err), ==, 0);
    g_assert_no_error(err);
    g_thread_join(t);
    fill_pattern(expect, len, 4);
    g_assert_cmpmem(buf, len, expect, len);

    /* EOF before the first byte is 0; part-way it is an error. */
    g_assert_cmpint(write(fds[1], "abc", 3), ==, 3);
    close(fds[1]);
    g_assert_cmpint(qio_channel_read_all(rioc, buf, 10, &err), ==, -1);
    g_assert_nonnull(strstr(err->message, "end-of-file"));
    g_clear_error(&err);
    {
        struct iovec iov = {buf, 10};

        g_assert_cmpint(qio_channel_readv_all_eof(rioc, &iov, 1, &err), ==, 0);
        g_assert_no_error(err);
    }
    qio_channel_unref(rioc);
}

static void test_file_pipe_eof_semantics(void)
{
    g_autoptr(GError) err = NULL;
    uint8_t buf[8];
    struct iovec iov = {buf, sizeof(buf)};
    int fds[2];
    QIOChannel *rioc;

    g_assert_cmpint(pipe(fds), ==, 0);
    rioc = QIO_CHANNEL(qio_channel_file_new_fd(fds[0]));
    g_assert_cmpint(write(fds[1], "12345678", 8), ==, 8);
    g_assert_cmpint(qio_channel_readv_all_eof(rioc, &iov, 1, &err), ==, 1);
    g_assert_cmpmem(buf, 8, "12345678", 8);
    close(fds[1]);
    g_assert_cmpint(qio_channel_readv_all_eof(rioc, &iov, 1, &err), ==, 0);
    g_assert_no_error(err);
    /* readv_all turns a clean EOF into an error too. */
    g_assert_cmpint(qio_channel_readv_all(rioc, &iov, 1, &err), ==, -1);
    g_assert_nonnull(err);
    qio_channel_unref(rioc);
}

typedef struct {
    unsigned fired;
    GIOCondition cond;
    bool freed;
} WatchState;

static gboolean watch_cb(QIOChannel *ioc, GIOCondition cond, gpointer opaque)
{
    WatchState *ws = opaque;

    ws->fired++;
    ws->cond = cond;
    return G_SOURCE_REMOVE;
}

static void watch_notify(gpointer opaque)
{
    ((WatchState *)opaque)->freed = true;
}

static void test_file_watch(void)
{
    WatchState ws = {0};
    int fds[2];
    QIOChannel *rioc;
    guint id;
    unsigned i;

    g_assert_cmpint(pipe(fds), ==, 0);
    rioc = QIO_CHANNEL(qio_channel_file_new_fd(fds[0]));
    id = qio_channel_add_watch(rioc, G_IO_IN, watch_cb, &ws, watch_notify);
    g_assert_cmpuint(id, >, 0);

    /* Nothing to read yet: the watch must not fire. */
    for (i = 0; i < 5; i++) {
        g_main_context_iteration(NULL, FALSE);
    }
    g_assert_cmpuint(ws.fired, ==, 0);

    g_assert_cmpint(write(fds[1], "x", 1), ==, 1);
    while (!ws.fired) {
        g_main_context_iteration(NULL, TRUE);
    }
    g_assert_cmpuint(ws.fired, ==, 1);
    g_assert_true(ws.cond & G_IO_IN);
    /* Returning G_SOURCE_REMOVE destroyed it and ran the notify. */
    g_assert_true(ws.freed);
    qio_channel_unref(rioc);
    close(fds[1]);
}

int main(int argc, char **argv)
{
    g_autoptr(GError) err = NULL;
    int ret;

    g_test_init(&argc, &argv, NULL);
    tmp_dir = g_dir_make_tmp("minivm-io-file-XXXXXX", &err);
    g_assert_no_error(err);

    g_test_add_func("/io/channel/file/rw-positioned", test_file_rw_positioned);
    g_test_add_func("/io/channel/file/many-pieces", test_file_many_pieces);
    g_test_add_func("/io/channel/file/pwritev-region",
                    test_file_pwritev_region);
    g_test_add_func("/io/channel/file/region-errors", test_file_region_errors);
    g_test_add_func("/io/channel/file/fsync-on-close",
                    test_file_fsync_on_close);
    g_test_add_func("/io/channel/file/close-error", test_file_close_error);
    g_test_add_func("/io/channel/file/new-path-error",
                    test_file_new_path_error);
    g_test_add_func("/io/channel/file/unref-closes", test_file_unref_closes);
    g_test_add_func("/io/channel/file/pipe-nonblocking",
                    test_file_pipe_nonblocking);
    g_test_add_func("/io/channel/file/pipe-eof", test_file_pipe_eof_semantics);
    g_test_add_func("/io/channel/file/watch", test_file_watch);
    ret = g_test_run();
    rmdir(tmp_dir);
    g_free(tmp_dir);
    return ret;
}
