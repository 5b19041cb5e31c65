/*
 * Unit tests of io/channel-buffer.c, and of io/channel.c's *_all loops
 * through a "trickle" wrapper that moves at most a few bytes per call, so
 * every partial transfer and iovec split (stack and heap copies) is hit.
 */
#include "qemu/osdep.h"
#include "io/channel-buffer.h"

static QIOChannel *chan(QIOChannelBuffer *bioc)
{
    return &bioc->parent;
}

static void test_buffer_roundtrip(void)
{
    g_autoptr(GError) err = NULL;
    QIOChannelBuffer *bioc = qio_channel_buffer_new(0);
    QIOChannel *ioc = chan(bioc);
    char a[] = "hello ", b[] = "world";
    struct iovec wv[2] = {{a, 6}, {b, 5}};
    char out[12] = {0};

    g_assert_true(qio_channel_has_feature(ioc, QIO_CHANNEL_FEATURE_SEEKABLE));
    g_assert_cmpint(qio_channel_writev_all(ioc, wv, 2, &err), ==, 0);
    g_assert_cmpuint(bioc->usage, ==, 11);
    g_assert_cmpuint(bioc->offset, ==, 11);
    /* At the end: clean EOF. */
    g_assert_cmpint(qio_channel_read(ioc, out, 1, &err), ==, 0);

    g_assert_cmpint(qio_channel_io_seek(ioc, 0, SEEK_SET, &err), ==, 0);
    g_assert_cmpint(qio_channel_read_all(ioc, out, 11, &err), ==, 0);
    g_assert_cmpstr(out, ==, "hello world");

    g_assert_cmpint(qio_channel_io_seek(ioc, -5, SEEK_END, &err), ==, 6);
    g_assert_cmpint(qio_channel_write_all(ioc, "WORLD!", 6, &err), ==, 0);
    g_assert_cmpuint(bioc->usage, ==, 12);
    g_assert_cmpmem(bioc->data, 12, "hello WORLD!", 12);
    g_assert_cmpint(qio_channel_io_seek(ioc, -2, SEEK_CUR, &err), ==, 10);
    g_assert_cmpint(qio_channel_io_seek(ioc, -20, SEEK_CUR, &err), ==, -1);
    g_assert_nonnull(err);
    g_clear_error(&err);

    /* The bytes outlive close, so a test can inspect a closed stream. */
    g_assert_cmpint(qio_channel_close(ioc, &err), ==, 0);
    g_assert_cmpmem(bioc->data, 12, "hello WORLD!", 12);
    g_assert_cmpint(qio_channel_read(ioc, out, 1, &err), ==, -1);
    g_assert_nonnull(err);
    qio_channel_unref(ioc);
}

static void test_buffer_positioned(void)
{
    g_autoptr(GError) err = NULL;
    QIOChannelBuffer *bioc = qio_channel_buffer_new(16);
    QIOChannel *ioc = chan(bioc);
    uint8_t page[4096];
    uint8_t back[4096];
    size_t i;

    for (i = 0; i < sizeof(page); i++) {
        page[i] = i * 3;
    }
    /* Past the end: the buffer grows and the gap reads back as zeros. */
    g_assert_cmpint(qio_channel_pwrite_all(ioc, page, 4096, 100000, &err), ==,
                    0);
    g_assert_cmpuint(bioc->usage, ==, 104096);
    g_assert_cmpuint(bioc->offset, ==, 0);
    g_assert_cmpint(qio_channel_pread_all(ioc, back, 4096, 100000, &err), ==,
                    0);
    g_assert_cmpmem(back, 4096, page, 4096);
    g_assert_cmpint(qio_channel_pread_all(ioc, back, 4096, 50000, &err), ==, 0);
    for (i = 0; i < 4096; i++) {
        g_assert_cmpint(back[i], ==, 0);
    }
    /* A read crossing the end is an error naming where data ran out. */
    g_assert_cmpint(qio_channel_pread_all(ioc, back, 4096, 102000, &err), ==,
                    -1);
    g_assert_nonnull(strstr(err->message, "offset 104096"));
    g_clear_error(&err);
    g_assert_cmpint(qio_channel_pread_all(ioc, back, 1, -1, &err), ==, -1);
    g_assert_nonnull(err);
    qio_channel_unref(ioc);
}

static void test_buffer_static(void)
{
    static const char text[] = "read only bytes";
    g_autoptr(GError) err = NULL;
    QIOChannelBuffer *bioc = qio_channel_buffer_new_static(text, 15);
    QIOChannel *ioc = chan(bioc);
    char out[16] = {0};

    g_assert_cmpint(qio_channel_read_all(ioc, out, 15, &err), ==, 0);
    g_assert_cmpstr(out, ==, text);
    g_assert_cmpint(qio_channel_pread_all(ioc, out, 4, 5, &err), ==, 0);
    g_assert_cmpmem(out, 4, "only", 4);
    g_assert_cmpint(qio_channel_write(ioc, "x", 1, &err), ==, -1);
    g_assert_nonnull(strstr(err->message, "read-only"));
    g_clear_error(&err);
    g_assert_cmpint(qio_channel_pwrite_all(ioc, "x", 1, 0, &err), ==, -1);
    g_assert_nonnull(err);
    qio_channel_unref(ioc);
    /* The caller's bytes are untouched and not freed (ASan would say). */
    g_assert_cmpstr(text, ==, "read only bytes");
}

/*
 * Passes calls through to a buffer channel, but moves at most `limit`
 * bytes each time (and counts calls): a stand-in for a socket or pipe
 * that keeps returning short.
 */
typedef struct {
    QIOChannel parent;
    QIOChannelBuffer *inner;
    size_t limit;
    unsigned calls;
} Trickle;

/* Copies the first at most limit bytes of iov into out[]; returns niov. */
static size_t trim_iov(const struct iovec *iov, size_t niov, size_t limit,
                       struct iovec *out, size_t max_out)
{
    size_t i, n = 0;

    for (i = 0; i < niov && limit && n < max_out; i++) {
        out[n].iov_base = iov[i].iov_base;
        out[n].iov_len = MIN(iov[i].iov_len, limit);
        limit -= out[n].iov_len;
        n++;
    }
    return n;
}

static ssize_t trickle_readv(QIOChannel *ioc, const struct iovec *iov,
                             size_t niov, int **fds, size_t *nfds,
                             GError **errp)
{
    Trickle *t = container_of(ioc, Trickle, parent);
    struct iovec part[8];
    size_t n = trim_iov(iov, niov, t->limit, part, G_N_ELEMENTS(part));

    t->calls++;
    return qio_channel_readv_full(chan(t->inner), part, n, NULL, NULL, errp);
}

static ssize_t trickle_writev(QIOChannel *ioc, const struct iovec *iov,
                              size_t niov, const int *fds, size_t nfds,
                              GError **errp)
{
    Trickle *t = container_of(ioc, Trickle, parent);
    struct iovec part[8];
    size_t n = trim_iov(iov, niov, t->limit, part, G_N_ELEMENTS(part));

    t->calls++;
    return qio_channel_writev_full(chan(t->inner), part, n, NULL, 0, errp);
}

static ssize_t trickle_preadv(QIOChannel *ioc, const struct iovec *iov,
                              size_t niov, off_t offset, GError **errp)
{
    Trickle *t = container_of(ioc, Trickle, parent);
    struct iovec part[8];
    size_t n = trim_iov(iov, niov, t->limit, part, G_N_ELEMENTS(part));
    QIOChannel *inner = chan(t->inner);

    t->calls++;
    return inner->klass->io_preadv(inner, part, n, offset, errp);
}

static ssize_t trickle_pwritev(QIOChannel *ioc, const struct iovec *iov,
                               size_t niov, off_t offset, GError **errp)
{
    Trickle *t = container_of(ioc, Trickle, parent);
    struct iovec part[8];
    size_t n = trim_iov(iov, niov, t->limit, part, G_N_ELEMENTS(part));
    QIOChannel *inner = chan(t->inner);

    t->calls++;
    return inner->klass->io_pwritev(inner, part, n, offset, errp);
}

static void trickle_finalize(QIOChannel *ioc)
{
    qio_channel_unref(chan(container_of(ioc, Trickle, parent)->inner));
}

static const QIOChannelClass trickle_class = {
    .type_name = "trickle",
    .io_readv = trickle_readv,
    .io_writev = trickle_writev,
    .io_preadv = trickle_preadv,
    .io_pwritev = trickle_pwritev,
    .finalize = trickle_finalize,
};

static Trickle *trickle_new(size_t limit)
{
    Trickle *t = g_new0(Trickle, 1);

    qio_channel_init(&t->parent, &trickle_class);
    qio_channel_set_feature(&t->parent, QIO_CHANNEL_FEATURE_SEEKABLE);
    t->inner = qio_channel_buffer_new(0);
    t->limit = limit;
    return t;
}

/* Pieces of varied sizes (0 included) over one pattern buffer. */
static struct iovec *make_pieces(uint8_t *buf, size_t npieces, size_t *total)
{
    struct iovec *iov = g_new(struct iovec, npieces);
    size_t i, off = 0;

    for (i = 0; i < npieces; i++) {
        iov[i].iov_base = buf + off;
        iov[i].iov_len = (i * 7) % 13;
        off += iov[i].iov_len;
    }
    *total = off;
    return iov;
}

static void trickle_roundtrip(size_t npieces, size_t limit)
{
    g_autoptr(GError) err = NULL;
    Trickle *t = trickle_new(limit);
    QIOChannel *ioc = &t->parent;
    size_t cap = npieces * 13;
    g_autofree uint8_t *src = g_malloc(cap);
    g_autofree uint8_t *dst = g_malloc0(cap);
    g_autofree struct iovec *wv = NULL;
    g_autofree struct iovec *rv = NULL;
    g_autofree struct iovec *orig = NULL;
    size_t total, i;

    for (i = 0; i < cap; i++) {
        src[i] = i * 11 + 1;
    }
    wv = make_pieces(src, npieces, &total);
    rv = make_pieces(dst, npieces, &total);
    orig = g_memdup2(wv, npieces * sizeof(*wv));

    g_assert_cmpint(qio_channel_writev_all(ioc, wv, npieces, &err), ==, 0);
    g_assert_no_error(err);
    /* The caller's vector is never modified. */
    g_assert_cmpmem(wv, npieces * sizeof(*wv), orig, npieces * sizeof(*wv));
    g_assert_cmpuint(t->inner->usage, ==, total);
    g_assert_cmpuint(t->calls, >=, total / limit);
    g_assert_cmpmem(t->inner->data, total, src, total);

    t->inner->offset = 0;
    g_assert_cmpint(qio_channel_readv_all(ioc, rv, npieces, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpmem(dst, total, src, total);

    /* Positioned, at an offset, through the same short transport. */
    memset(dst, 0, cap);
    g_assert_cmpint(qio_channel_pwritev_all(ioc, wv, npieces, 1000, &err), ==,
                    0);
    g_assert_cmpint(qio_channel_preadv_all(ioc, rv, npieces, 1000, &err), ==,
                    0);
    g_assert_no_error(err);
    g_assert_cmpmem(dst, total, src, total);
    g_assert_cmpmem(t->inner->data + 1000, total, src, total);

    /* EOF part-way through a multi-piece read is an error. */
    t->inner->offset = t->inner->usage - 3;
    {
        struct iovec two[2] = {{dst, 2}, {dst + 2, 2}};

        g_assert_cmpint(qio_channel_readv_all_eof(ioc, two, 2, &err), ==, -1);
        g_assert_nonnull(strstr(err->message, "end-of-file"));
    }
    qio_channel_unref(ioc);
}

static void test_trickle_few_pieces(void)
{
    trickle_roundtrip(10, 5);
    trickle_roundtrip(10, 1);
}

static void test_trickle_many_pieces(void)
{
    /* Beyond the cursor's stack copy: the heap path. */
    trickle_roundtrip(300, 7);
    trickle_roundtrip(300, 64);
}

static void test_buffer_region(void)
{
    g_autoptr(GError) err = NULL;
    QIOChannelBuffer *bioc = qio_channel_buffer_new(0);
    QIOChannel *ioc = chan(bioc);
    uint8_t ram[64];
    uint8_t back[64] = {0};
    struct iovec w[] = {{ram + 4, 4}, {ram + 8, 4}, {ram + 20, 8}};
    struct iovec r[] = {{back + 4, 4}, {back + 8, 4}, {back + 20, 8}};
    size_t i;

    for (i = 0; i < sizeof(ram); i++) {
        ram[i] = 0x80 + i;
    }
    g_assert_cmpint(qio_channel_pwritev_region(ioc, w, 3, ram, 100, &err), ==,
                    0);
    g_assert_cmpuint(bioc->usage, ==, 128);
    g_assert_cmpmem(bioc->data + 104, 8, ram + 4, 8);
    g_assert_cmpmem(bioc->data + 120, 8, ram + 20, 8);
    for (i = 112; i < 120; i++) {
        g_assert_cmpint(bioc->data[i], ==, 0);
    }
    g_assert_cmpint(qio_channel_preadv_region(ioc, r, 3, back, 100, &err), ==,
                    0);
    g_assert_no_error(err);
    g_assert_cmpmem(back + 4, 8, ram + 4, 8);
    g_assert_cmpmem(back + 20, 8, ram + 20, 8);
    qio_channel_unref(ioc);
}

typedef struct {
    unsigned fired;
} IdleWatch;

static gboolean idle_watch_cb(QIOChannel *ioc, GIOCondition cond,
                              gpointer opaque)
{
    ((IdleWatch *)opaque)->fired++;
    g_assert_true(cond & G_IO_IN);
    return G_SOURCE_REMOVE;
}

static void test_buffer_watch(void)
{
    QIOChannelBuffer *bioc = qio_channel_buffer_new(0);
    IdleWatch w = {0};

    /* No fd, but a watch still fires (memory is always ready). */
    g_assert_cmpint(qio_channel_get_fd(chan(bioc), G_IO_IN), ==, -1);
    qio_channel_add_watch(chan(bioc), G_IO_IN, idle_watch_cb, &w, NULL);
    /* The watch holds a reference: dropping ours keeps it alive. */
    qio_channel_unref(chan(bioc));
    while (!w.fired) {
        g_main_context_iteration(NULL, TRUE);
    }
    g_assert_cmpuint(w.fired, ==, 1);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/io/channel/buffer/roundtrip", test_buffer_roundtrip);
    g_test_add_func("/io/channel/buffer/positioned", test_buffer_positioned);
    g_test_add_func("/io/channel/buffer/static", test_buffer_static);
    g_test_add_func("/io/channel/buffer/region", test_buffer_region);
    g_test_add_func("/io/channel/buffer/watch", test_buffer_watch);
    g_test_add_func("/io/channel/all-loops/few-pieces",
                    test_trickle_few_pieces);
    g_test_add_func("/io/channel/all-loops/many-pieces",
                    test_trickle_many_pieces);
    return g_test_run();
}
