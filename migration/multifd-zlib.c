/*
 * zlib for multifd packets (multifd-compression=zlib, level from
 * multifd-zlib-level). Each packet's pages become one complete deflate
 * stream, so a packet never depends on an earlier one and a receiver can
 * check that it ends exactly where the pages do. The stream state is made
 * once per channel and reset per packet, so nothing is allocated per
 * packet.
 */
#include "qemu/osdep.h"

#include <zlib.h>

#include "migration/multifd.h"

typedef struct ZlibState {
    z_stream zs;
    size_t bound;
} ZlibState;

static void *zlib_send_new(int level, size_t max_in, GError **errp)
{
    ZlibState *z = g_new0(ZlibState, 1);

    if (deflateInit(&z->zs, level) != Z_OK) {
        error_setg(errp, "multifd zlib: deflateInit failed: %s",
                   z->zs.msg ? z->zs.msg : "unknown error");
        g_free(z);
        return NULL;
    }
    z->bound = deflateBound(&z->zs, max_in);
    return z;
}

static size_t zlib_send_bound(void *state)
{
    return ((ZlibState *)state)->bound;
}

static ssize_t zlib_compress(void *state, const struct iovec *iov, size_t niov,
                             uint8_t *out, size_t out_size, GError **errp)
{
    z_stream *zs = &((ZlibState *)state)->zs;

    deflateReset(zs);
    zs->next_out = out;
    zs->avail_out = out_size;
    for (size_t i = 0; i < niov; i++) {
        int flush = i == niov - 1 ? Z_FINISH : Z_NO_FLUSH;
        int ret;

        zs->next_in = iov[i].iov_base;
        zs->avail_in = iov[i].iov_len;
        do {
            ret = deflate(zs, flush);
        } while (ret == Z_OK && zs->avail_out &&
                 (zs->avail_in || flush == Z_FINISH));
        if (flush == Z_FINISH ? ret != Z_STREAM_END
                              : (ret != Z_OK || zs->avail_in)) {
            error_setg(errp, "multifd zlib: deflate failed (%d)%s", ret,
                       zs->avail_out ? "" : ": output buffer full");
            return -1;
        }
    }
    return out_size - zs->avail_out;
}

static void zlib_send_free(void *state)
{
    ZlibState *z = state;

    deflateEnd(&z->zs);
    g_free(z);
}

static void *zlib_recv_new(GError **errp)
{
    ZlibState *z = g_new0(ZlibState, 1);

    if (inflateInit(&z->zs) != Z_OK) {
        error_setg(errp, "multifd zlib: inflateInit failed: %s",
                   z->zs.msg ? z->zs.msg : "unknown error");
        g_free(z);
        return NULL;
    }
    return z;
}

static int zlib_decompress(void *state, const uint8_t *in, size_t in_len,
                           const struct iovec *iov, size_t niov, GError **errp)
{
    z_stream *zs = &((ZlibState *)state)->zs;
    uint8_t spare;
    int ret = Z_OK;

    inflateReset(zs);
    zs->next_in = (uint8_t *)in;
    zs->avail_in = in_len;
    for (size_t i = 0; i < niov; i++) {
        zs->next_out = iov[i].iov_base;
        zs->avail_out = iov[i].iov_len;
        while (zs->avail_out) {
            if (ret == Z_STREAM_END) {
                error_setg(errp, "multifd zlib: data ends before the pages");
                return -1;
            }
            ret = inflate(zs, Z_NO_FLUSH);
            if (ret != Z_OK && ret != Z_STREAM_END) {
                error_setg(errp, "multifd zlib: inflate failed (%d): %s", ret,
                           zs->msg ? zs->msg : "truncated data");
                return -1;
            }
        }
    }
    /* The pages are full; the stream must end here, with no bytes over. */
    if (ret != Z_STREAM_END) {
        zs->next_out = &spare;
        zs->avail_out = sizeof(spare);
        ret = inflate(zs, Z_FINISH);
        if (ret != Z_STREAM_END || zs->avail_out != sizeof(spare)) {
            error_setg(errp, "multifd zlib: data goes on past the pages");
            return -1;
        }
    }
    if (zs->avail_in) {
        error_setg(errp, "multifd zlib: %u bytes after the end of the data",
                   zs->avail_in);
        return -1;
    }
    return 0;
}

static void zlib_recv_free(void *state)
{
    ZlibState *z = state;

    inflateEnd(&z->zs);
    g_free(z);
}

const MultiFDCompressor multifd_zlib_compressor = {
    .name = "zlib",
    .method = MULTIFD_COMPRESSION_ZLIB,
    .send_new = zlib_send_new,
    .send_bound = zlib_send_bound,
    .compress = zlib_compress,
    .send_free = zlib_send_free,
    .recv_new = zlib_recv_new,
    .decompress = zlib_decompress,
    .recv_free = zlib_recv_free,
};
