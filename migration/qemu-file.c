/*
 * QEMUFile: the buffered byte stream every migration section is written to
 * and read from (see qemu-file.h for the contract).
 *
 * Output: small puts are copied into a 32 KiB buffer; large guest pages
 * (qemu_put_buffer_nocopy) are not copied but queued as an iovec that
 * points at guest memory. Both kinds of pieces go out, in order, with one
 * writev when the buffer or the iovec list fills up or on qemu_fflush().
 * A queued guest page may be changed by a vCPU before the flush; that is
 * harmless because the store also marks the page dirty again, so a later
 * pass resends it (and at completion the vCPUs are stopped).
 *
 * Input: reads go through the same buffer, which also lets the loader peek
 * ahead (subsection markers) without consuming.
 *
 * Errors are latched: the first failure (or the end of the input stream)
 * is kept with its message, and every later call is a no-op.
 */
#include "qemu/osdep.h"

#include "migration/qemu-file.h"
#include "qemu/fault-inject.h" /* rel */

#define IO_BUF_SIZE 32768
#define MAX_IOV_SIZE 64
/* Reads of at least this size bypass the buffer when it is empty. */
#define DIRECT_READ_MIN IO_BUF_SIZE
#define RATE_LIMIT_WINDOW_NS (100 * 1000 * 1000LL)

struct QEMUFile {
    QIOChannel *ioc;
    bool is_writable;

    /*
     * Output: buf[0, buf_index) holds copied bytes that iov[] references.
     * Input: buf[buf_index, buf_size) are read but not yet consumed.
     */
    uint8_t buf[IO_BUF_SIZE];
    size_t buf_index;
    size_t buf_size;
    struct iovec iov[MAX_IOV_SIZE];
    unsigned iovcnt;
    size_t iov_bytes; /* bytes queued in iov[] */

    /* Output: bytes handed to the channel; input: bytes consumed. */
    uint64_t transferred;

    int last_error;
    GError *last_error_obj;

    /* Rate limit: budget per 100 ms window, 0 = unlimited. */
    uint64_t rate_limit_max;
    uint64_t rate_limit_start_bytes;
    int64_t rate_limit_start_ns;
};

static QEMUFile *qemu_file_new(QIOChannel *ioc, bool is_writable)
{
    QEMUFile *f = g_new0(QEMUFile, 1);

    f->ioc = qio_channel_ref(ioc);
    f->is_writable = is_writable;
    return f;
}

QEMUFile *qemu_file_new_output(QIOChannel *ioc)
{
    return qemu_file_new(ioc, true);
}

QEMUFile *qemu_file_new_input(QIOChannel *ioc)
{
    return qemu_file_new(ioc, false);
}

QIOChannel *qemu_file_get_ioc(QEMUFile *f)
{
    return f->ioc;
}

int qemu_fclose(QEMUFile *f)
{
    int ret;

    qemu_fflush(f);
    ret = f->last_error;
    qio_channel_unref(f->ioc);
    if (f->last_error_obj) {
        g_error_free(f->last_error_obj);
    }
    g_free(f);
    return ret;
}

/* --- errors --- */

int qemu_file_get_error_obj(QEMUFile *f, GError **errp)
{
    if (f->last_error && errp) {
        if (f->last_error_obj) {
            *errp = g_error_copy(f->last_error_obj);
        } else {
            error_setg(errp, "%s", g_strerror(-f->last_error));
        }
    }
    return f->last_error;
}

int qemu_file_get_error(QEMUFile *f)
{
    return f->last_error;
}

void qemu_file_set_error_obj(QEMUFile *f, int ret, GError *err)
{
    if (f->last_error == 0 && ret != 0) {
        f->last_error = ret;
        f->last_error_obj = err;
    } else if (err) {
        g_error_free(err);
    }
}

void qemu_file_set_error(QEMUFile *f, int ret)
{
    qemu_file_set_error_obj(f, ret, NULL);
}

static void qemu_file_set_eof(QEMUFile *f)
{
    GError *err = NULL;

    error_setg(&err, "Unexpected end of migration stream");
    qemu_file_set_error_obj(f, -EIO, err);
}

/* --- output --- */

void qemu_fflush(QEMUFile *f)
{
    GError *err = NULL;

    if (!f->is_writable || f->last_error || f->iovcnt == 0) {
        goto out;
    }
    if (qio_channel_writev_all(f->ioc, f->iov, f->iovcnt, &err) < 0) {
        qemu_file_set_error_obj(f, -EIO, err);
    }
out:
    /*
     * Queued bytes count as transferred even when the write failed, so the
     * counter never goes backwards and callers' deltas stay non-negative.
     */
    f->transferred += f->iov_bytes;
    f->buf_index = 0;
    f->iovcnt = 0;
    f->iov_bytes = 0;
}

/* Queues [base, base + len), merging with the previous piece if adjacent. */
static void add_to_iovec(QEMUFile *f, const uint8_t *base, size_t len)
{
    struct iovec *last = f->iovcnt ? &f->iov[f->iovcnt - 1] : NULL;

    if (last && (uint8_t *)last->iov_base + last->iov_len == base) {
        last->iov_len += len;
    } else {
        if (f->iovcnt == MAX_IOV_SIZE) {
            qemu_fflush(f);
        }
        f->iov[f->iovcnt].iov_base = (void *)base;
        f->iov[f->iovcnt].iov_len = len;
        f->iovcnt++;
    }
    f->iov_bytes += len;
}

/* Copies len (<= free buffer space) bytes into the buffer and queues them. */
static void add_buf_to_iovec(QEMUFile *f, const uint8_t *buf, size_t len)
{
    uint8_t *dst;

    /* Flush first, so queuing cannot flush (and reuse buf) under dst. */
    if (f->iovcnt == MAX_IOV_SIZE) {
        qemu_fflush(f);
    }
    dst = f->buf + f->buf_index;
    memcpy(dst, buf, len);
    f->buf_index += len;
    add_to_iovec(f, dst, len);
    /* A full buffer or iovec list cannot take the next put: flush now. */
    if (f->buf_index == IO_BUF_SIZE || f->iovcnt == MAX_IOV_SIZE) {
        qemu_fflush(f);
    }
}

void qemu_put_buffer(QEMUFile *f, const uint8_t *buf, size_t len)
{
    if (f->last_error) {
        return;
    }
    while (len > 0) {
        size_t l = MIN(len, (size_t)IO_BUF_SIZE - f->buf_index);

        add_buf_to_iovec(f, buf, l);
        if (f->last_error) {
            return;
        }
        buf += l;
        len -= l;
    }
}

void qemu_put_buffer_nocopy(QEMUFile *f, const uint8_t *buf, size_t len)
{
    if (f->last_error) {
        return;
    }
    /* Copying a few bytes is cheaper than an iovec entry for them. */
    if (len < 512) {
        qemu_put_buffer(f, buf, len);
        return;
    }
    add_to_iovec(f, buf, len);
    if (f->iovcnt == MAX_IOV_SIZE) {
        qemu_fflush(f);
    }
}

void qemu_put_byte(QEMUFile *f, int v)
{
    uint8_t b = v;

    qemu_put_buffer(f, &b, 1);
}

void qemu_put_be16(QEMUFile *f, unsigned v)
{
    uint8_t b[2] = { v >> 8, v };

    qemu_put_buffer(f, b, sizeof(b));
}

void qemu_put_be32(QEMUFile *f, unsigned v)
{
    uint8_t b[4] = { v >> 24, v >> 16, v >> 8, v };

    qemu_put_buffer(f, b, sizeof(b));
}

void qemu_put_be64(QEMUFile *f, uint64_t v)
{
    uint8_t b[8];

    for (int i = 0; i < 8; i++) {
        b[i] = v >> (56 - 8 * i);
    }
    qemu_put_buffer(f, b, sizeof(b));
}

/* --- input --- */

/*
 * Reads more bytes from the channel, keeping the unconsumed ones. Returns
 * the number of new bytes, 0 at end of stream, -1 on error (latched).
 */
static ssize_t qemu_fill_buffer(QEMUFile *f)
{
    size_t pending = f->buf_size - f->buf_index;
    GError *err = NULL;
    ssize_t len;

    if (f->is_writable || f->last_error) {
        return -1;
    }
    if (pending > 0 && f->buf_index > 0) {
        memmove(f->buf, f->buf + f->buf_index, pending);
    }
    f->buf_index = 0;
    f->buf_size = pending;
    if (pending == IO_BUF_SIZE) {
        return 0;
    }
    do {
        len = qio_channel_read(f->ioc, f->buf + pending, IO_BUF_SIZE - pending,
                               &err);
    } while (len == QIO_CHANNEL_ERR_BLOCK);
    if (len < 0) {
        qemu_file_set_error_obj(f, -EIO, err);
        return -1;
    }
    f->buf_size += len;
    return len;
}

/*
 * Makes at least want (<= IO_BUF_SIZE) unconsumed bytes available if the
 * stream has them; returns how many are available (less only at EOF or
 * error). Does not latch the end of stream itself.
 */
static size_t qemu_file_ensure(QEMUFile *f, size_t want)
{
    while (f->buf_size - f->buf_index < want) {
        if (qemu_fill_buffer(f) <= 0) {
            break;
        }
    }
    return f->buf_size - f->buf_index;
}

size_t qemu_get_buffer(QEMUFile *f, uint8_t *buf, size_t len)
{
    size_t done = 0;

    if (f->last_error || f->is_writable) {
        return 0;
    }
    /* rel: fault injection "load-device-state" (debug only) */
    if (fault_inject_active()) {
        GError *err = NULL;

        if (!fault_inject_consume(len, &err)) {
            qemu_file_set_error_obj(f, -EIO, err);
            return 0;
        }
    }
    while (done < len) {
        size_t avail = f->buf_size - f->buf_index;
        size_t want = len - done;

        if (avail == 0 && want >= DIRECT_READ_MIN) {
            /* Big reads go straight to the destination: no double copy. */
            GError *err = NULL;
            ssize_t n = qio_channel_read(f->ioc, buf + done, want, &err);

            if (n == QIO_CHANNEL_ERR_BLOCK) {
                continue;
            }
            if (n < 0) {
                qemu_file_set_error_obj(f, -EIO, err);
                break;
            }
            if (n == 0) {
                qemu_file_set_eof(f);
                break;
            }
            done += n;
            continue;
        }
        if (avail == 0) {
            ssize_t n = qemu_fill_buffer(f);

            if (n == 0) {
                qemu_file_set_eof(f);
            }
            if (n <= 0) {
                break;
            }
            continue;
        }
        avail = MIN(avail, want);
        memcpy(buf + done, f->buf + f->buf_index, avail);
        f->buf_index += avail;
        done += avail;
    }
    f->transferred += done;
    return done;
}

int qemu_peek_byte(QEMUFile *f, int offset)
{
    if (f->last_error || f->is_writable || offset < 0 ||
        offset >= IO_BUF_SIZE) {
        return -1;
    }
    if (qemu_file_ensure(f, offset + 1) < (size_t)offset + 1) {
        return -1;
    }
    return f->buf[f->buf_index + offset];
}

int qemu_get_byte(QEMUFile *f)
{
    uint8_t b;

    if (qemu_get_buffer(f, &b, 1) != 1) {
        return 0;
    }
    return b;
}

unsigned qemu_get_be16(QEMUFile *f)
{
    uint8_t b[2];

    if (qemu_get_buffer(f, b, sizeof(b)) != sizeof(b)) {
        return 0;
    }
    return (b[0] << 8) | b[1];
}

unsigned qemu_get_be32(QEMUFile *f)
{
    uint8_t b[4];

    if (qemu_get_buffer(f, b, sizeof(b)) != sizeof(b)) {
        return 0;
    }
    return ((unsigned)b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
}

uint64_t qemu_get_be64(QEMUFile *f)
{
    uint8_t b[8];
    uint64_t v = 0;

    if (qemu_get_buffer(f, b, sizeof(b)) != sizeof(b)) {
        return 0;
    }
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | b[i];
    }
    return v;
}

uint64_t qemu_file_transferred(QEMUFile *f)
{
    if (f->is_writable) {
        return f->transferred + f->iov_bytes;
    }
    return f->transferred;
}

/* --- seekable helpers --- */

static bool qemu_file_check_seekable(QEMUFile *f)
{
    GError *err = NULL;

    if (qio_channel_has_feature(f->ioc, QIO_CHANNEL_FEATURE_SEEKABLE)) {
        return true;
    }
    error_setg(&err, "Channel %s is not seekable",
               f->ioc->name ? f->ioc->name : "(unnamed)");
    qemu_file_set_error_obj(f, -EINVAL, err);
    return false;
}

off_t qemu_get_offset(QEMUFile *f)
{
    GError *err = NULL;
    off_t pos;

    if (f->last_error || !qemu_file_check_seekable(f)) {
        return -1;
    }
    pos = qio_channel_io_seek(f->ioc, 0, SEEK_CUR, &err);
    if (pos < 0) {
        qemu_file_set_error_obj(f, -EIO, err);
        return -1;
    }
    if (f->is_writable) {
        return pos + f->iov_bytes;
    }
    return pos - (off_t)(f->buf_size - f->buf_index);
}

void qemu_set_offset(QEMUFile *f, off_t offset, int whence)
{
    GError *err = NULL;

    if (f->last_error || !qemu_file_check_seekable(f)) {
        return;
    }
    if (f->is_writable) {
        qemu_fflush(f);
        if (f->last_error) {
            return;
        }
    } else {
        if (whence == SEEK_CUR) {
            /* Relative to the stream position, not the channel's. */
            offset -= (off_t)(f->buf_size - f->buf_index);
        }
        f->buf_index = 0;
        f->buf_size = 0;
    }
    if (qio_channel_io_seek(f->ioc, offset, whence, &err) < 0) {
        qemu_file_set_error_obj(f, -EIO, err);
    }
}

size_t qemu_put_buffer_at(QEMUFile *f, const uint8_t *buf, size_t len,
                          off_t pos)
{
    GError *err = NULL;

    if (f->last_error || !qemu_file_check_seekable(f)) {
        return 0;
    }
    if (qio_channel_pwrite_all(f->ioc, buf, len, pos, &err) < 0) {
        qemu_file_set_error_obj(f, -EIO, err);
        return 0;
    }
    f->transferred += len;
    return len;
}

size_t qemu_get_buffer_at(QEMUFile *f, uint8_t *buf, size_t len, off_t pos)
{
    GError *err = NULL;

    if (f->last_error || !qemu_file_check_seekable(f)) {
        return 0;
    }
    if (qio_channel_pread_all(f->ioc, buf, len, pos, &err) < 0) {
        qemu_file_set_error_obj(f, -EIO, err);
        return 0;
    }
    return len;
}

/* --- rate limit --- */

void qemu_file_set_rate_limit(QEMUFile *f, uint64_t bytes_per_sec)
{
    f->rate_limit_max = bytes_per_sec / (1000000000LL / RATE_LIMIT_WINDOW_NS);
    if (bytes_per_sec && !f->rate_limit_max) {
        f->rate_limit_max = 1;
    }
    f->rate_limit_start_ns = g_get_monotonic_time() * 1000;
    f->rate_limit_start_bytes = qemu_file_transferred(f);
}

bool qemu_file_rate_limit(QEMUFile *f)
{
    int64_t now;

    if (f->last_error) {
        /* Stop the writer: it will see the error. */
        return true;
    }
    if (!f->rate_limit_max) {
        return false;
    }
    now = g_get_monotonic_time() * 1000;
    if (now - f->rate_limit_start_ns >= RATE_LIMIT_WINDOW_NS) {
        f->rate_limit_start_ns = now;
        f->rate_limit_start_bytes = qemu_file_transferred(f);
        return false;
    }
    return qemu_file_transferred(f) - f->rate_limit_start_bytes >=
           f->rate_limit_max;
}

void qemu_file_rate_limit_wait(QEMUFile *f)
{
    int64_t left_ns;

    if (!qemu_file_rate_limit(f) || f->last_error) {
        return;
    }
    left_ns = f->rate_limit_start_ns + RATE_LIMIT_WINDOW_NS -
              g_get_monotonic_time() * 1000;
    if (left_ns > 0) {
        g_usleep(left_ns / 1000);
    }
}
