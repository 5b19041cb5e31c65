/*
 * zstd for multifd packets (multifd-compression=zstd, level from
 * multifd-zstd-level). Each packet's pages become one complete zstd
 * frame, compressed and decompressed as a stream over the pages in place
 * (no staging copy of the input or the output). Contexts are made once
 * per channel and reset per packet.
 */
#include "qemu/osdep.h"

#include <zstd.h>

#include "migration/multifd.h"

typedef struct ZstdSend {
    ZSTD_CCtx *cctx;
    size_t bound;
} ZstdSend;

static void *zstd_send_new(int level, size_t max_in, GError **errp)
{
    ZstdSend *z = g_new0(ZstdSend, 1);
    size_t ret;

    z->cctx = ZSTD_createCCtx();
    if (!z->cctx) {
        error_setg(errp, "multifd zstd: could not create a context");
        g_free(z);
        return NULL;
    }
    ret = ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_compressionLevel, level);
    if (ZSTD_isError(ret)) {
        error_setg(errp, "multifd zstd: level %d: %s", level,
                   ZSTD_getErrorName(ret));
        ZSTD_freeCCtx(z->cctx);
        g_free(z);
        return NULL;
    }
    z->bound = ZSTD_compressBound(max_in);
    return z;
}

static size_t zstd_send_bound(void *state)
{
    return ((ZstdSend *)state)->bound;
}

static ssize_t zstd_compress(void *state, const struct iovec *iov, size_t niov,
                             uint8_t *out, size_t out_size, GError **errp)
{
    ZstdSend *z = state;
    ZSTD_outBuffer ob = {.dst = out, .size = out_size, .pos = 0};

    ZSTD_CCtx_reset(z->cctx, ZSTD_reset_session_only);
    for (size_t i = 0; i < niov; i++) {
        ZSTD_inBuffer ib = {
            .src = iov[i].iov_base, .size = iov[i].iov_len, .pos = 0};
        ZSTD_EndDirective mode = i == niov - 1 ? ZSTD_e_end : ZSTD_e_continue;
        size_t left;

        do {
            left = ZSTD_compressStream2(z->cctx, &ob, &ib, mode);
            if (ZSTD_isError(left)) {
                error_setg(errp, "multifd zstd: %s", ZSTD_getErrorName(left));
                return -1;
            }
            if (ob.pos == ob.size && left) {
                error_setg(errp, "multifd zstd: output buffer full");
                return -1;
            }
        } while (mode == ZSTD_e_end ? left != 0 : ib.pos < ib.size);
    }
    return ob.pos;
}

static void zstd_send_free(void *state)
{
    ZstdSend *z = state;

    ZSTD_freeCCtx(z->cctx);
    g_free(z);
}

static void *zstd_recv_new(GError **errp)
{
    ZSTD_DCtx *dctx = ZSTD_createDCtx();

    if (!dctx) {
        error_setg(errp, "multifd zstd: could not create a context");
    }
    return dctx;
}

static int zstd_decompress(void *state, const uint8_t *in, size_t in_len,
                           const struct iovec *iov, size_t niov, GError **errp)
{
    ZSTD_DCtx *dctx = state;
    ZSTD_inBuffer ib = {.src = in, .size = in_len, .pos = 0};
    size_t ret = 1;

    ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
    for (size_t i = 0; i < niov; i++) {
        ZSTD_outBuffer ob = {
            .dst = iov[i].iov_base, .size = iov[i].iov_len, .pos = 0};

        while (ob.pos < ob.size) {
            size_t in_before = ib.pos, out_before = ob.pos;

            if (ret == 0) {
                error_setg(errp, "multifd zstd: data ends before the pages");
                return -1;
            }
            ret = ZSTD_decompressStream(dctx, &ob, &ib);
            if (ZSTD_isError(ret)) {
                error_setg(errp, "multifd zstd: %s", ZSTD_getErrorName(ret));
                return -1;
            }
            if (ib.pos == in_before && ob.pos == out_before) {
                error_setg(errp, "multifd zstd: truncated data");
                return -1;
            }
        }
    }
    /* The pages are full; the frame must end here, with no bytes over. */
    while (ret != 0) {
        uint8_t spare;
        ZSTD_outBuffer ob = {.dst = &spare, .size = sizeof(spare), .pos = 0};
        size_t in_before = ib.pos;

        ret = ZSTD_decompressStream(dctx, &ob, &ib);
        if (ZSTD_isError(ret) || ob.pos || (ret && ib.pos == in_before)) {
            error_setg(errp, "multifd zstd: data goes on past the pages");
            return -1;
        }
    }
    if (ib.pos != ib.size) {
        error_setg(errp, "multifd zstd: %zu bytes after the end of the data",
                   ib.size - ib.pos);
        return -1;
    }
    return 0;
}

static void zstd_recv_free(void *state)
{
    ZSTD_freeDCtx(state);
}

const MultiFDCompressor multifd_zstd_compressor = {
    .name = "zstd",
    .method = MULTIFD_COMPRESSION_ZSTD,
    .send_new = zstd_send_new,
    .send_bound = zstd_send_bound,
    .compress = zstd_compress,
    .send_free = zstd_send_free,
    .recv_new = zstd_recv_new,
    .decompress = zstd_decompress,
    .recv_free = zstd_recv_free,
};
