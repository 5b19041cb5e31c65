/*
 * QEMUFile over the in-memory buffer channel: the exact bytes the put
 * helpers write, round trips, peeking, the latched error (end of stream,
 * failed writes), the seekable helpers and the rate limit.
 */
#include "qemu/osdep.h"

#include "io/channel-buffer.h"
#include "migration/qemu-file.h"

static QIOChannelBuffer *new_buffer(void)
{
    return qio_channel_buffer_new(0);
}

/* An input QEMUFile reading a copy of what out wrote. */
static QEMUFile *reopen_input(QIOChannelBuffer *out)
{
    QIOChannelBuffer *in = qio_channel_buffer_new(0);
    QEMUFile *f;

    g_assert_cmpint(
        qio_channel_write_all(&in->parent, out->data, out->usage, NULL), ==, 0);
    in->offset = 0;
    f = qemu_file_new_input(&in->parent);
    qio_channel_unref(&in->parent);
    return f;
}

static void test_put_bytes_big_endian(void)
{
    QIOChannelBuffer *bioc = new_buffer();
    QEMUFile *f = qemu_file_new_output(&bioc->parent);
    static const uint8_t expected[] = {
        0xab, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02,
        0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 'x',  'y',
    };

    qemu_put_byte(f, 0x1ab); /* only the low byte goes out */
    qemu_put_be16(f, 0x1234);
    qemu_put_be32(f, 0xdeadbeef);
    qemu_put_be64(f, 0x0102030405060708ULL);
    qemu_put_buffer(f, (const uint8_t *)"xy", 2);
    /* Nothing reaches the channel before a flush. */
    g_assert_cmpuint(bioc->usage, ==, 0);
    g_assert_cmpuint(qemu_file_transferred(f), ==, sizeof(expected));
    qemu_fflush(f);
    g_assert_cmpuint(bioc->usage, ==, sizeof(expected));
    g_assert_cmpmem(bioc->data, bioc->usage, expected, sizeof(expected));
    g_assert_cmpint(qemu_fclose(f), ==, 0);
    qio_channel_unref(&bioc->parent);
}

static void test_round_trip(void)
{
    QIOChannelBuffer *bioc = new_buffer();
    QEMUFile *f = qemu_file_new_output(&bioc->parent);
    g_autofree uint8_t *big = g_malloc(100 * 1000);
    g_autofree uint8_t *pages = g_malloc(200 * 4096);
    g_autofree uint8_t *back = g_malloc(200 * 4096);
    uint64_t expected_len;

    for (size_t i = 0; i < 100 * 1000; i++) {
        big[i] = i * 7;
    }
    for (size_t i = 0; i < 200 * 4096; i++) {
        pages[i] = i / 4096 + i;
    }
    /* Interleave small puts and uncopied pages: > 64 iovecs, > 32 KiB. */
    for (int i = 0; i < 200; i++) {
        qemu_put_be64(f, i);
        qemu_put_buffer_nocopy(f, pages + i * 4096, 4096);
    }
    qemu_put_buffer(f, big, 100 * 1000);
    qemu_put_be32(f, 0xcafef00d);
    qemu_put_byte(f, 0xff);
    expected_len = 200 * (8 + 4096) + 100 * 1000 + 5;
    g_assert_cmpuint(qemu_file_transferred(f), ==, expected_len);
    g_assert_cmpint(qemu_fclose(f), ==, 0);
    g_assert_cmpuint(bioc->usage, ==, expected_len);

    f = reopen_input(bioc);
    for (int i = 0; i < 200; i++) {
        g_assert_cmpuint(qemu_get_be64(f), ==, i);
        g_assert_cmpuint(qemu_get_buffer(f, back, 4096), ==, 4096);
        g_assert_cmpmem(back, 4096, pages + i * 4096, 4096);
    }
    /* A read bigger than the buffer takes the direct path. */
    g_assert_cmpuint(qemu_get_buffer(f, back, 100 * 1000), ==, 100 * 1000);
    g_assert_cmpmem(back, 100 * 1000, big, 100 * 1000);
    g_assert_cmpuint(qemu_get_be32(f), ==, 0xcafef00d);
    g_assert_cmpint(qemu_peek_byte(f, 0), ==, 0xff);
    g_assert_cmpint(qemu_get_byte(f), ==, 0xff);
    g_assert_cmpuint(qemu_file_transferred(f), ==, expected_len);
    g_assert_cmpint(qemu_file_get_error(f), ==, 0);
    g_assert_cmpint(qemu_fclose(f), ==, 0);
    qio_channel_unref(&bioc->parent);
}

static void test_peek_and_eof(void)
{
    static const uint8_t data[] = {1, 2, 3};
    QIOChannelBuffer *bioc = qio_channel_buffer_new_static(data, 3);
    QEMUFile *f = qemu_file_new_input(&bioc->parent);
    g_autoptr(GError) err = NULL;

    g_assert_cmpint(qemu_peek_byte(f, 0), ==, 1);
    g_assert_cmpint(qemu_peek_byte(f, 2), ==, 3);
    /* Peeking past the end is not an error: nothing was consumed. */
    g_assert_cmpint(qemu_peek_byte(f, 3), ==, -1);
    g_assert_cmpint(qemu_file_get_error(f), ==, 0);
    g_assert_cmpint(qemu_get_be16(f), ==, 0x0102);
    g_assert_cmpint(qemu_get_byte(f), ==, 3);
    g_assert_cmpint(qemu_file_get_error(f), ==, 0);
    /* Reading past it is, and the error sticks. */
    g_assert_cmpuint(qemu_get_be32(f), ==, 0);
    g_assert_cmpint(qemu_file_get_error_obj(f, &err), ==, -EIO);
    g_assert_cmpstr(err->message, ==, "Unexpected end of migration stream");
    g_assert_cmpint(qemu_get_byte(f), ==, 0);
    g_assert_cmpint(qemu_peek_byte(f, 0), ==, -1);
    g_assert_cmpint(qemu_fclose(f), ==, -EIO);
    qio_channel_unref(&bioc->parent);
}

static void test_short_buffer_read(void)
{
    static const uint8_t data[5] = {9, 8, 7, 6, 5};
    QIOChannelBuffer *bioc = qio_channel_buffer_new_static(data, 5);
    QEMUFile *f = qemu_file_new_input(&bioc->parent);
    uint8_t buf[8];

    g_assert_cmpuint(qemu_get_buffer(f, buf, 8), ==, 5);
    g_assert_cmpmem(buf, 5, data, 5);
    g_assert_cmpint(qemu_file_get_error(f), ==, -EIO);
    qemu_fclose(f);
    qio_channel_unref(&bioc->parent);
}

static void test_write_error_latched(void)
{
    static const uint8_t ro[1];
    /* A static buffer refuses writes: the flush fails. */
    QIOChannelBuffer *bioc = qio_channel_buffer_new_static(ro, 0);
    QEMUFile *f = qemu_file_new_output(&bioc->parent);
    g_autoptr(GError) err = NULL;

    qemu_put_be32(f, 1);
    g_assert_cmpint(qemu_file_get_error(f), ==, 0);
    qemu_fflush(f);
    g_assert_cmpint(qemu_file_get_error_obj(f, &err), ==, -EIO);
    g_assert_nonnull(strstr(err->message, "read-only"));
    /* Later puts are no-ops; the first error stays. */
    qemu_put_be64(f, 2);
    qemu_file_set_error(f, -ENOSPC);
    g_assert_cmpint(qemu_file_get_error(f), ==, -EIO);
    g_assert_cmpint(qemu_fclose(f), ==, -EIO);
    qio_channel_unref(&bioc->parent);
}

static void test_set_error_first_wins(void)
{
    QIOChannelBuffer *bioc = new_buffer();
    QEMUFile *f = qemu_file_new_output(&bioc->parent);
    g_autoptr(GError) err = NULL;
    GError *first = NULL, *second = NULL;

    error_setg(&first, "first");
    error_setg(&second, "second");
    qemu_file_set_error_obj(f, -EINVAL, first);
    qemu_file_set_error_obj(f, -EIO, second);
    g_assert_cmpint(qemu_file_get_error_obj(f, &err), ==, -EINVAL);
    g_assert_cmpstr(err->message, ==, "first");
    qemu_put_byte(f, 1);
    g_assert_cmpint(qemu_fclose(f), ==, -EINVAL);
    g_assert_cmpuint(bioc->usage, ==, 0);
    qio_channel_unref(&bioc->parent);
}

static void test_seekable_output(void)
{
    QIOChannelBuffer *bioc = new_buffer();
    QEMUFile *f = qemu_file_new_output(&bioc->parent);
    uint8_t page[4096];

    memset(page, 0x5a, sizeof(page));
    qemu_put_be32(f, 0x51455600);
    /* Buffered bytes count in the position. */
    g_assert_cmpint(qemu_get_offset(f), ==, 4);
    /* Positioned writes bypass the stream and do not move it. */
    g_assert_cmpuint(qemu_put_buffer_at(f, page, sizeof(page), 8192), ==,
                     sizeof(page));
    g_assert_cmpint(qemu_get_offset(f), ==, 4);
    qemu_set_offset(f, 16384, SEEK_SET);
    g_assert_cmpint(qemu_get_offset(f), ==, 16384);
    qemu_put_be16(f, 0xbeef);
    g_assert_cmpint(qemu_get_offset(f), ==, 16386);
    g_assert_cmpint(qemu_fclose(f), ==, 0);

    g_assert_cmpuint(bioc->usage, ==, 16386);
    g_assert_cmpmem(bioc->data, 4, "QEV\0", 4);
    g_assert_cmpmem(bioc->data + 8192, 4096, page, 4096);
    g_assert_cmpuint(bioc->data[16384], ==, 0xbe);
    g_assert_cmpuint(bioc->data[16385], ==, 0xef);
    g_assert_cmpuint(bioc->data[5000], ==, 0);

    /* Reading back: offsets account for what is buffered. */
    f = reopen_input(bioc);
    g_assert_cmpuint(qemu_get_be32(f), ==, 0x51455600);
    g_assert_cmpint(qemu_get_offset(f), ==, 4);
    memset(page, 0, sizeof(page));
    g_assert_cmpuint(qemu_get_buffer_at(f, page, 16, 8192), ==, 16);
    g_assert_cmpuint(page[15], ==, 0x5a);
    g_assert_cmpint(qemu_get_offset(f), ==, 4);
    qemu_set_offset(f, 16384, SEEK_SET);
    g_assert_cmpint(qemu_get_offset(f), ==, 16384);
    g_assert_cmpuint(qemu_get_be16(f), ==, 0xbeef);
    qemu_set_offset(f, 8192, SEEK_SET);
    qemu_set_offset(f, 4095, SEEK_CUR);
    g_assert_cmpint(qemu_get_offset(f), ==, 8192 + 4095);
    g_assert_cmpint(qemu_get_byte(f), ==, 0x5a);
    g_assert_cmpint(qemu_get_byte(f), ==, 0);
    /* A positioned read past the end fails and latches. */
    g_assert_cmpuint(qemu_get_buffer_at(f, page, 16, 16380), ==, 0);
    g_assert_cmpint(qemu_file_get_error(f), !=, 0);
    qemu_fclose(f);
    qio_channel_unref(&bioc->parent);
}

static void test_not_seekable(void)
{
    QIOChannelBuffer *bioc = new_buffer();
    QEMUFile *f;
    g_autoptr(GError) err = NULL;

    bioc->parent.features &= ~QIO_CHANNEL_FEATURE_SEEKABLE;
    f = qemu_file_new_output(&bioc->parent);
    g_assert_cmpint(qemu_get_offset(f), ==, -1);
    g_assert_cmpint(qemu_file_get_error_obj(f, &err), ==, -EINVAL);
    g_assert_nonnull(strstr(err->message, "not seekable"));
    qemu_fclose(f);
    qio_channel_unref(&bioc->parent);
}

static void test_rate_limit(void)
{
    QIOChannelBuffer *bioc = new_buffer();
    QEMUFile *f = qemu_file_new_output(&bioc->parent);
    uint8_t chunk[1000] = {0};

    /* Unlimited by default. */
    for (int i = 0; i < 100; i++) {
        qemu_put_buffer(f, chunk, sizeof(chunk));
    }
    g_assert_false(qemu_file_rate_limit(f));

    /* 100 kB/s: 10 kB per 100 ms window. */
    qemu_file_set_rate_limit(f, 100 * 1000);
    g_assert_false(qemu_file_rate_limit(f));
    for (int i = 0; i < 9; i++) {
        qemu_put_buffer(f, chunk, sizeof(chunk));
    }
    g_assert_false(qemu_file_rate_limit(f));
    qemu_put_buffer(f, chunk, sizeof(chunk));
    g_assert_true(qemu_file_rate_limit(f));
    /* Waiting for the window to end gives a fresh budget. */
    qemu_file_rate_limit_wait(f);
    g_assert_false(qemu_file_rate_limit(f));

    qemu_file_set_rate_limit(f, 0);
    for (int i = 0; i < 100; i++) {
        qemu_put_buffer(f, chunk, sizeof(chunk));
    }
    g_assert_false(qemu_file_rate_limit(f));
    g_assert_cmpint(qemu_fclose(f), ==, 0);
    qio_channel_unref(&bioc->parent);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qemu-file/put-big-endian", test_put_bytes_big_endian);
    g_test_add_func("/qemu-file/round-trip", test_round_trip);
    g_test_add_func("/qemu-file/peek-and-eof", test_peek_and_eof);
    g_test_add_func("/qemu-file/short-read", test_short_buffer_read);
    g_test_add_func("/qemu-file/write-error", test_write_error_latched);
    g_test_add_func("/qemu-file/first-error-wins", test_set_error_first_wins);
    g_test_add_func("/qemu-file/seekable", test_seekable_output);
    g_test_add_func("/qemu-file/not-seekable", test_not_seekable);
    g_test_add_func("/qemu-file/rate-limit", test_rate_limit);
    return g_test_run();
}
