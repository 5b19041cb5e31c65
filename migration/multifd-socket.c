/*
 * multifd over sockets (unix:, tcp:): every channel has its own
 * connection to the destination's listener. It starts with an init
 * message naming the migration and the channel, then carries packets:
 * a header naming the block, the page offsets, and the pages (raw, or
 * compressed as one block per packet). The layout is minivm's own and is
 * documented in docs/devel/migration/multifd.rst; the constants below are
 * its one definition in code.
 *
 * Pages go out with writev straight from guest RAM and come in with readv
 * straight into it (uncompressed), so a page is never copied on the way.
 * A SYNC packet marks a sync point: the receiving thread stops there until
 * the main stream's MULTIFD_FLUSH (multifd.c) lets it go on.
 */
#include "qemu/osdep.h"

#include "io/channel-socket.h"
#include "migration/migration-stats.h"
#include "migration/multifd.h"
#include "migration/options.h"
#include "qemu/cutils.h"

/* --- the wire format --- */

/*
 * Init message, 64 bytes: be32 magic, be32 version, 16-byte UUID of the
 * migration, u8 channel id, u8 number of channels (minivm), zero padding.
 */
#define MULTIFD_INIT_SIZE  64
#define MULTIFD_INIT_UUID  8
#define MULTIFD_INIT_ID    24
#define MULTIFD_INIT_COUNT 25

/*
 * Packet header, 288 bytes, then be64 page offsets (normal pages first,
 * then zero pages), then the payload (the normal pages, raw or
 * compressed).
 */
#define MULTIFD_PACKET_HDR_SIZE  288
#define MULTIFD_PACKET_FLAGS     8
#define MULTIFD_PACKET_NORMAL    12
#define MULTIFD_PACKET_ZERO      16
#define MULTIFD_PACKET_PAYLOAD   20
#define MULTIFD_PACKET_NUM       24
#define MULTIFD_PACKET_BLOCK     32
#define MULTIFD_PACKET_BLOCK_LEN 256
#define MULTIFD_PACKET_MAX_SIZE                                                \
    (MULTIFD_PACKET_HDR_SIZE + MULTIFD_BATCH_MAX_PAGES * 8)

/* Flags: SYNC, and the compression method in bits 8-11. */
#define MULTIFD_FLAG_SYNC       0x1
#define MULTIFD_FLAG_COMP_SHIFT 8
#define MULTIFD_FLAG_COMP_MASK  0xf00

/*
 * The most a compressed payload of n pages may take: every compressor's
 * worst case is a few bytes per KiB over the input.
 */
static size_t comp_payload_max(size_t npages)
{
    size_t in = npages * TARGET_PAGE_SIZE;

    return in + in / 2 + 4096;
}

/* Pieces per writev/readv call, so the io layer never needs the heap. */
#define MULTIFD_IOV_CHUNK 64

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24;
    p[1] = v >> 16;
    p[2] = v >> 8;
    p[3] = v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    put_be32(p, v >> 32);
    put_be32(p + 4, v);
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
    return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static int writev_chunked(QIOChannel *ioc, const struct iovec *iov, size_t niov,
                          GError **errp)
{
    for (size_t i = 0; i < niov; i += MULTIFD_IOV_CHUNK) {
        if (qio_channel_writev_all(
                ioc, iov + i, MIN(MULTIFD_IOV_CHUNK, niov - i), errp) < 0) {
            return -1;
        }
    }
    return 0;
}

static int readv_chunked(QIOChannel *ioc, const struct iovec *iov, size_t niov,
                         GError **errp)
{
    for (size_t i = 0; i < niov; i += MULTIFD_IOV_CHUNK) {
        if (qio_channel_readv_all(ioc, iov + i,
                                  MIN(MULTIFD_IOV_CHUNK, niov - i), errp) < 0) {
            return -1;
        }
    }
    return 0;
}

/*
 * iov[] gets the pages at offsets[] of rb, neighbours in memory merged
 * into one piece. Returns the number of pieces.
 */
static size_t pages_to_iov(struct iovec *iov, RAMBlock *rb,
                           const uint64_t *offsets, uint32_t n)
{
    size_t niov = 0;

    for (uint32_t i = 0; i < n; i++) {
        uint8_t *host = rb->host + offsets[i];

        if (niov &&
            (uint8_t *)iov[niov - 1].iov_base + iov[niov - 1].iov_len == host) {
            iov[niov - 1].iov_len += TARGET_PAGE_SIZE;
        } else {
            iov[niov].iov_base = host;
            iov[niov].iov_len = TARGET_PAGE_SIZE;
            niov++;
        }
    }
    return niov;
}

/* --- send --- */

static int socket_open(MultiFDSendChannel *c, QIOChannel **ioc, GError **errp)
{
    const char *addr = multifd_send_socket_address();
    uint8_t init[MULTIFD_INIT_SIZE] = {0};
    g_autofree char *name = NULL;
    QIOChannelSocket *sioc;
    int method = migrate_multifd_compression();

    sioc = qio_channel_socket_connect(addr, errp);
    if (!sioc) {
        error_prepend(errp, "connecting to %s: ", addr);
        return -1;
    }
    name = g_strdup_printf("multifd-send-%d", c->id);
    qio_channel_set_name(&sioc->parent, name);

    put_be32(init, MULTIFD_MAGIC);
    put_be32(init + 4, MULTIFD_VERSION);
    memcpy(init + MULTIFD_INIT_UUID, multifd_send_uuid(), 16);
    init[MULTIFD_INIT_ID] = c->id;
    init[MULTIFD_INIT_COUNT] = multifd_send_channel_count();
    if (qio_channel_write_all(&sioc->parent, init, sizeof(init), errp) < 0) {
        qio_channel_unref(&sioc->parent);
        return -1;
    }
    multifd_channel_account(c->stats, sizeof(init), 0);
    stat64_add(&mig_stats.multifd_bytes, sizeof(init));

    c->packet = g_malloc0(MULTIFD_PACKET_MAX_SIZE);
    c->comp = multifd_compressor(method);
    if (c->comp) {
        int level = method == MULTIFD_COMPRESSION_ZLIB
                        ? migrate_multifd_zlib_level()
                        : migrate_multifd_zstd_level();

        c->comp_state = c->comp->send_new(
            level, MULTIFD_BATCH_MAX_PAGES * TARGET_PAGE_SIZE, errp);
        if (!c->comp_state) {
            c->comp = NULL;
            qio_channel_unref(&sioc->parent);
            return -1;
        }
        c->comp_buf_size = c->comp->send_bound(c->comp_state);
        c->comp_buf = g_malloc(c->comp_buf_size);
    }
    *ioc = &sioc->parent;
    return 0;
}

/* Fills c->packet's header and offsets; returns their length in bytes. */
static size_t packet_encode(MultiFDSendChannel *c, uint32_t flags,
                            const char *block, uint32_t payload)
{
    uint8_t *p = c->packet;
    uint8_t *off = p + MULTIFD_PACKET_HDR_SIZE;

    put_be32(p, MULTIFD_MAGIC);
    put_be32(p + 4, MULTIFD_VERSION);
    put_be32(p + MULTIFD_PACKET_FLAGS, flags);
    put_be32(p + MULTIFD_PACKET_NORMAL, c->num_normal);
    put_be32(p + MULTIFD_PACKET_ZERO, c->num_zero);
    put_be32(p + MULTIFD_PACKET_PAYLOAD, payload);
    put_be64(p + MULTIFD_PACKET_NUM, multifd_send_next_packet_num());
    memset(p + MULTIFD_PACKET_BLOCK, 0, MULTIFD_PACKET_BLOCK_LEN);
    /* ram.c refuses block names longer than 255 bytes. */
    strncpy((char *)p + MULTIFD_PACKET_BLOCK, block,
            MULTIFD_PACKET_BLOCK_LEN - 1);
    for (uint32_t i = 0; i < c->num_normal; i++, off += 8) {
        put_be64(off, c->normal[i]);
    }
    for (uint32_t i = 0; i < c->num_zero; i++, off += 8) {
        put_be64(off, c->zero[i]);
    }
    return off - p;
}

static int socket_send_batch(MultiFDSendChannel *c, const MultiFDBatch *b,
                             GError **errp)
{
    uint32_t flags = 0;
    uint32_t payload;
    size_t niov, hdr_len;

    multifd_send_classify(c, b, 0);
    /* iov[0] is the header; the pages follow, straight from guest RAM. */
    niov = 1 + pages_to_iov(&c->iov[1], b->rb, c->normal, c->num_normal);
    if (c->comp && c->num_normal) {
        ssize_t len = c->comp->compress(c->comp_state, &c->iov[1], niov - 1,
                                        c->comp_buf, c->comp_buf_size, errp);

        if (len < 0) {
            return -1;
        }
        c->iov[1].iov_base = c->comp_buf;
        c->iov[1].iov_len = len;
        niov = 2;
        payload = len;
        flags |= c->comp->method << MULTIFD_FLAG_COMP_SHIFT;
    } else {
        payload = c->num_normal * TARGET_PAGE_SIZE;
    }
    hdr_len = packet_encode(c, flags, b->rb->idstr, payload);
    c->iov[0].iov_base = c->packet;
    c->iov[0].iov_len = hdr_len;
    if (writev_chunked(c->ioc, c->iov, niov, errp) < 0) {
        return -1;
    }
    multifd_send_account(c, hdr_len + payload);
    return 0;
}

static int socket_send_sync(MultiFDSendChannel *c, GError **errp)
{
    size_t len;

    c->num_normal = 0;
    c->num_zero = 0;
    len = packet_encode(c, MULTIFD_FLAG_SYNC, "", 0);
    if (qio_channel_write_all(c->ioc, c->packet, len, errp) < 0) {
        return -1;
    }
    multifd_send_account(c, len);
    return 0;
}

const MultiFDSendOps multifd_socket_send_ops = {
    .name = "socket",
    .open = socket_open,
    .send_batch = socket_send_batch,
    .send_sync = socket_send_sync,
};

/* --- receive --- */

/* Reads and checks the init message, then registers the channel. */
static bool socket_recv_init(MultiFDRecvChannel *c, GError **errp)
{
    uint8_t init[MULTIFD_INIT_SIZE];
    struct iovec iov = {.iov_base = init, .iov_len = sizeof(init)};
    uint32_t magic, version;
    unsigned id, count;
    int ret;

    ret = qio_channel_readv_all_eof(c->ioc, &iov, 1, errp);
    if (ret <= 0) {
        if (ret == 0) {
            error_setg(errp, "multifd: channel closed before its init message");
        }
        return false;
    }
    magic = get_be32(init);
    version = get_be32(init + 4);
    id = init[MULTIFD_INIT_ID];
    count = init[MULTIFD_INIT_COUNT];
    if (magic != MULTIFD_MAGIC) {
        error_setg(errp, "multifd: received packet magic %x, expected %x",
                   magic, MULTIFD_MAGIC);
        return false;
    }
    if (version != MULTIFD_VERSION) {
        error_setg(errp, "multifd: received packet version %u, expected %u",
                   version, MULTIFD_VERSION);
        return false;
    }
    if (count == 0) {
        error_setg(errp,
                   "multifd: init message of channel %u announces no "
                   "channels",
                   id);
        return false;
    }
    if (!multifd_recv_register(c, init + MULTIFD_INIT_UUID, id, count, errp)) {
        return false;
    }
    multifd_channel_account(c->stats, sizeof(init), 0);
    return true;
}

/* The block a packet names (cached: packets of a block come in a row). */
static RAMBlock *packet_block(MultiFDRecvChannel *c, GError **errp)
{
    const char *name = (const char *)c->packet + MULTIFD_PACKET_BLOCK;
    RAMBlock *rb;

    if (!memchr(name, 0, MULTIFD_PACKET_BLOCK_LEN)) {
        error_setg(errp, "multifd: packet block name is not terminated");
        return NULL;
    }
    if (c->last_block && !strcmp(c->last_block->idstr, name)) {
        return c->last_block;
    }
    rb = ram_block_by_name(name);
    if (!rb) {
        error_setg(errp, "multifd: unknown ramblock \"%s\"", name);
        return NULL;
    }
    c->last_block = rb;
    return rb;
}

/* The compressor state and buffer for method, made once per channel. */
static const MultiFDCompressor *recv_compressor(MultiFDRecvChannel *c,
                                                int method, GError **errp)
{
    const MultiFDCompressor *comp = multifd_compressor(method);

    if (!c->comp_state[method]) {
        c->comp_state[method] = comp->recv_new(errp);
        if (!c->comp_state[method]) {
            return NULL;
        }
    }
    if (!c->comp_buf) {
        c->comp_buf_size = comp_payload_max(MULTIFD_BATCH_MAX_PAGES);
        c->comp_buf = g_malloc(c->comp_buf_size);
    }
    return comp;
}

/* Reads the payload of a data packet into guest RAM. */
static int recv_pages(MultiFDRecvChannel *c, RAMBlock *rb, uint32_t normal,
                      const uint64_t *offsets, int method, uint32_t payload,
                      GError **errp)
{
    size_t niov = pages_to_iov(c->iov, rb, offsets, normal);
    const MultiFDCompressor *comp;

    if (method == MULTIFD_COMPRESSION_NONE) {
        if (payload != normal * TARGET_PAGE_SIZE) {
            error_setg(errp,
                       "multifd: packet has %u bytes of pages for %u pages",
                       payload, normal);
            return -1;
        }
        return readv_chunked(c->ioc, c->iov, niov, errp);
    }
    if (!normal && !payload) {
        return 0;
    }
    if (payload > comp_payload_max(normal) || !normal) {
        error_setg(errp,
                   "multifd: compressed payload of %u bytes for %u pages "
                   "is too large",
                   payload, normal);
        return -1;
    }
    comp = recv_compressor(c, method, errp);
    if (!comp || qio_channel_read_all(c->ioc, c->comp_buf, payload, errp) < 0) {
        return -1;
    }
    return comp->decompress(c->comp_state[method], c->comp_buf, payload, c->iov,
                            niov, errp);
}

/*
 * One packet. Returns 1 when one was handled, 0 at a clean end of the
 * channel (EOF before a header), -1 on error (*errp set) or when the
 * migration is over (nothing set).
 */
static int socket_recv_packet(MultiFDRecvChannel *c, GError **errp)
{
    struct iovec iov = {.iov_base = c->packet,
                        .iov_len = MULTIFD_PACKET_HDR_SIZE};
    uint8_t *p = c->packet;
    uint32_t magic, version, flags, normal, zero, payload;
    uint64_t num;
    int method, ret;
    RAMBlock *rb;
    uint64_t *offsets = (uint64_t *)(p + MULTIFD_PACKET_HDR_SIZE);

    ret = qio_channel_readv_all_eof(c->ioc, &iov, 1, errp);
    if (ret <= 0) {
        return ret;
    }
    magic = get_be32(p);
    version = get_be32(p + 4);
    flags = get_be32(p + MULTIFD_PACKET_FLAGS);
    normal = get_be32(p + MULTIFD_PACKET_NORMAL);
    zero = get_be32(p + MULTIFD_PACKET_ZERO);
    payload = get_be32(p + MULTIFD_PACKET_PAYLOAD);
    num = get_be64(p + MULTIFD_PACKET_NUM);
    method = (flags & MULTIFD_FLAG_COMP_MASK) >> MULTIFD_FLAG_COMP_SHIFT;

    if (magic != MULTIFD_MAGIC) {
        error_setg(errp, "multifd: received packet magic %x, expected %x",
                   magic, MULTIFD_MAGIC);
        return -1;
    }
    if (version != MULTIFD_VERSION) {
        error_setg(errp, "multifd: received packet version %u, expected %u",
                   version, MULTIFD_VERSION);
        return -1;
    }
    if (flags & ~(MULTIFD_FLAG_SYNC | MULTIFD_FLAG_COMP_MASK)) {
        error_setg(errp, "multifd: packet has unknown flags 0x%x", flags);
        return -1;
    }
    if (method >= MULTIFD_COMPRESSION__MAX) {
        error_setg(errp, "multifd: packet uses unknown compression %d", method);
        return -1;
    }
    if (normal > MULTIFD_BATCH_MAX_PAGES || zero > MULTIFD_BATCH_MAX_PAGES ||
        normal + zero > MULTIFD_BATCH_MAX_PAGES) {
        error_setg(errp,
                   "multifd: received packet with %u pages, more than the "
                   "maximum %u",
                   normal + zero, MULTIFD_BATCH_MAX_PAGES);
        return -1;
    }
    if (c->have_packet_num && num <= c->last_packet_num) {
        error_setg(errp, "multifd: packet number %" PRIu64 " after %" PRIu64,
                   num, c->last_packet_num);
        return -1;
    }
    c->last_packet_num = num;
    c->have_packet_num = true;

    if (flags & MULTIFD_FLAG_SYNC) {
        if (normal || zero || payload) {
            error_setg(errp, "multifd: SYNC packet carries pages");
            return -1;
        }
        multifd_channel_account(c->stats, MULTIFD_PACKET_HDR_SIZE, 0);
        return multifd_recv_channel_synced(c) ? 1 : -1;
    }

    rb = packet_block(c, errp);
    if (!rb) {
        return -1;
    }
    if (qio_channel_read_all(c->ioc, offsets, (normal + zero) * 8, errp) < 0) {
        return -1;
    }
    /* In place: the be64 offsets become host-order offsets. */
    for (uint32_t i = 0; i < normal + zero; i++) {
        uint64_t offset = get_be64((uint8_t *)&offsets[i]);

        if (offset >= rb->used_length ||
            !QEMU_IS_ALIGNED(offset, TARGET_PAGE_SIZE)) {
            error_setg(errp,
                       "multifd: page offset 0x%" PRIx64
                       " is outside of ramblock %s",
                       offset, rb->idstr);
            return -1;
        }
        offsets[i] = offset;
    }
    if (recv_pages(c, rb, normal, offsets, method, payload, errp) < 0) {
        return -1;
    }
    for (uint32_t i = normal; i < normal + zero; i++) {
        uint8_t *host = rb->host + offsets[i];

        /* Fresh memory is zero already: writing would only populate it. */
        if (!buffer_is_zero(host, TARGET_PAGE_SIZE)) {
            memset(host, 0, TARGET_PAGE_SIZE);
        }
    }
    multifd_channel_account(
        c->stats, MULTIFD_PACKET_HDR_SIZE + (normal + zero) * 8 + payload,
        normal + zero);
    return 1;
}

gpointer multifd_socket_recv_thread(gpointer opaque)
{
    MultiFDRecvChannel *c = opaque;
    GError *err = NULL;
    int ret = -1;

    if (socket_recv_init(c, &err)) {
        c->packet = g_malloc0(MULTIFD_PACKET_MAX_SIZE);
        do {
            ret = socket_recv_packet(c, &err);
        } while (ret > 0);
    }
    if (ret == 0) {
        multifd_recv_channel_finished(c);
    }
    if (err) {
        if (multifd_recv_quitting(c)) {
            g_error_free(err); /* cleanup shut the channel down */
        } else {
            multifd_recv_set_error(c, err);
        }
    }
    return NULL;
}

void multifd_socket_recv_free(MultiFDRecvChannel *c)
{
    for (int m = 0; m < MULTIFD_COMPRESSION__MAX; m++) {
        if (c->comp_state[m]) {
            multifd_compressor(m)->recv_free(c->comp_state[m]);
            c->comp_state[m] = NULL;
        }
    }
    g_free(c->comp_buf);
    c->comp_buf = NULL;
    g_free(c->packet);
    c->packet = NULL;
}
