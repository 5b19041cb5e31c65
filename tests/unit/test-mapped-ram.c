/*
 * mapped-ram against QEMU itself: the file QEMU 10.0.2 wrote
 * (tests/tools/data/qemu10-pc-64M-mapped-ram.mig.gz, described in its
 * README) is read block by block through minivm's loader, which must find
 * exactly the guest RAM QEMU saved; then minivm's sink writes those same
 * blocks behind the same stream prefix, and the result must equal QEMU's
 * file byte for byte up to the end of the last page area. Plus the header
 * encoding and the layout arithmetic, and the loader's refusals.
 *
 * The path of the .gz comes as the first argument.
 */
#include "qemu/osdep.h"

#include <zlib.h>

#include "io/channel-file.h"
#include "migration/mapped-ram.h"
#include "migration/qemu-file.h"
#include "migration/ram.h"
#include "qemu/bitmap.h"
#include "system/ramblock.h"

/* From the sample's README. */
#define SAMPLE_SIZE 73516470
#define SAMPLE_MEM0_SHA256                                                     \
    "2bb545bb444f9d9a6d0881b45fad17a362b9993c1c9d81022a241ebba3151f58"
/* The "ram" START section's MEM_SIZE record; the first block follows it. */
#define SAMPLE_MEM_SIZE_OFFSET 91
#define SAMPLE_BLOCKS_OFFSET   99
#define SAMPLE_BLOCK_COUNT     6

static const char *sample_gz;
static char *sample_path; /* the uncompressed copy, in a temp dir */
static char *tmp_dir;

typedef struct SampleBlock {
    char name[256];
    uint64_t used_length;
    uint64_t header_offset;
    uint64_t pages_offset;
} SampleBlock;

static SampleBlock sample_blocks[SAMPLE_BLOCK_COUNT];
static uint64_t sample_ram_end; /* end of the last block's page area */

static uint64_t be64_at(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

/* Decompresses the sample into tmp_dir (holes where it is zero). */
static void sample_unpack(void)
{
    gzFile gz = gzopen(sample_gz, "rb");
    g_autofree uint8_t *buf = g_malloc(1 * MiB);
    int fd;
    off_t total = 0;
    int n;

    g_assert_nonnull(gz);
    sample_path = g_build_filename(tmp_dir, "qemu10.mig", NULL);
    fd = open(sample_path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    g_assert_cmpint(fd, >=, 0);
    while ((n = gzread(gz, buf, 1 * MiB)) > 0) {
        g_assert_cmpint(pwrite(fd, buf, n, total), ==, n);
        total += n;
    }
    g_assert_cmpint(n, ==, 0);
    gzclose(gz);
    g_assert_cmpint(total, ==, SAMPLE_SIZE);
    close(fd);
}

/*
 * Walks the START section's block list by hand (not with the code under
 * test): per block u8 length, name, be64 used_length, 28-byte header; the
 * next block starts at pages_offset + used_length.
 */
static void sample_parse_blocks(void)
{
    g_autofree uint8_t *data = NULL;
    gsize len;
    uint64_t pos = SAMPLE_MEM_SIZE_OFFSET;

    g_assert_true(g_file_get_contents(sample_path, (char **)&data, &len, NULL));
    g_assert_cmphex(be64_at(data + pos) & 0xfff, ==, RAM_SAVE_FLAG_MEM_SIZE);
    pos += 8;
    for (int i = 0; i < SAMPLE_BLOCK_COUNT; i++) {
        SampleBlock *b = &sample_blocks[i];
        uint8_t n = data[pos];

        memcpy(b->name, data + pos + 1, n);
        b->name[n] = '\0';
        pos += 1 + n;
        b->used_length = be64_at(data + pos);
        pos += 8;
        b->header_offset = pos;
        b->pages_offset = be64_at(data + pos + 20);
        pos = b->pages_offset + b->used_length;
    }
    sample_ram_end = pos;
    g_assert_cmpstr(sample_blocks[0].name, ==, "mem0");
    g_assert_cmphex(sample_blocks[0].header_offset, ==, 0x70);
    /* Right after the last page area: the START section's EOS. */
    g_assert_cmphex(be64_at(data + pos), ==, RAM_SAVE_FLAG_EOS);
}

static void test_header_encoding(void)
{
    MappedRamHeader hdr =
                        {
                            .version = 1,
                            .page_size = 4096,
                            .bitmap_offset = 0x8c,
                            .pages_offset = 0x100000,
                        },
                    back;
    static const uint8_t expected[MAPPED_RAM_HDR_SIZE] = {
        0, 0, 0, 1,                      /* version */
        0, 0, 0, 0, 0, 0,    0x10, 0,    /* page_size */
        0, 0, 0, 0, 0, 0,    0,    0x8c, /* bitmap_offset */
        0, 0, 0, 0, 0, 0x10, 0,    0,    /* pages_offset */
    };
    uint8_t buf[MAPPED_RAM_HDR_SIZE];

    mapped_ram_header_encode(&hdr, buf);
    g_assert_cmpmem(buf, sizeof(buf), expected, sizeof(expected));
    mapped_ram_header_decode(buf, &back);
    g_assert_cmpuint(back.version, ==, 1);
    g_assert_cmpuint(back.page_size, ==, 4096);
    g_assert_cmphex(back.bitmap_offset, ==, 0x8c);
    g_assert_cmphex(back.pages_offset, ==, 0x100000);
}

static void test_layout(void)
{
    MappedRamHeader hdr;

    g_assert_cmpuint(mapped_ram_bitmap_size(0), ==, 0);
    g_assert_cmpuint(mapped_ram_bitmap_size(1), ==, 8);
    g_assert_cmpuint(mapped_ram_bitmap_size(64), ==, 8);
    g_assert_cmpuint(mapped_ram_bitmap_size(65), ==, 16);

    /* The bitmap ends exactly on a 1 MiB boundary: no padding. */
    g_assert_true(mapped_ram_layout(1 * MiB - 8 - 28, 64 * 4096, &hdr));
    g_assert_cmphex(hdr.bitmap_offset, ==, 1 * MiB - 8);
    g_assert_cmphex(hdr.pages_offset, ==, 1 * MiB);
    /* One byte further: the next boundary. */
    g_assert_true(mapped_ram_layout(1 * MiB - 8 - 27, 64 * 4096, &hdr));
    g_assert_cmphex(hdr.pages_offset, ==, 2 * MiB);
    /* An offset= prefix moves everything: offsets are absolute. */
    g_assert_true(mapped_ram_layout(4096 + 0x70, 64 * MiB, &hdr));
    g_assert_cmphex(hdr.bitmap_offset, ==, 4096 + 0x8c);
    g_assert_cmphex(hdr.pages_offset, ==, 1 * MiB);
    /* Past what an off_t can address. */
    g_assert_false(mapped_ram_layout(INT64_MAX - 100, 4096, &hdr));
    g_assert_false(mapped_ram_layout(INT64_MAX - 2 * MiB, 1 * GiB, &hdr));
}

/* Every header QEMU wrote is what minivm's layout gives for its place. */
static void test_qemu_headers(void)
{
    g_autofree uint8_t *data = NULL;
    gsize len;

    g_assert_true(g_file_get_contents(sample_path, (char **)&data, &len, NULL));
    for (int i = 0; i < SAMPLE_BLOCK_COUNT; i++) {
        SampleBlock *b = &sample_blocks[i];
        uint8_t mine[MAPPED_RAM_HDR_SIZE];
        MappedRamHeader hdr;

        g_assert_true(
            mapped_ram_layout(b->header_offset, b->used_length, &hdr));
        mapped_ram_header_encode(&hdr, mine);
        if (memcmp(mine, data + b->header_offset, sizeof(mine))) {
            g_error("block %s: minivm's header differs from QEMU's", b->name);
        }
    }
}

static char *digest(const uint8_t *p, size_t len)
{
    return g_compute_checksum_for_data(G_CHECKSUM_SHA256, p, len);
}

/* The sample's blocks, registered as this process's RAM (once). */
static void sample_ram_blocks(void)
{
    uint64_t gpa = 0;

    if (ram_blocks && ram_blocks->len) {
        return;
    }
    for (int i = 0; i < SAMPLE_BLOCK_COUNT; i++) {
        GError *err = NULL;

        g_assert_nonnull(ram_block_add(sample_blocks[i].name,
                                       sample_blocks[i].used_length, gpa, -1,
                                       false, &err));
        g_assert_no_error(err);
        gpa += QEMU_ALIGN_UP(sample_blocks[i].used_length, 1 * MiB);
    }
}

static QEMUFile *open_input(const char *path, off_t offset)
{
    GError *err = NULL;
    QIOChannelFile *fioc = qio_channel_file_new_path(path, O_RDONLY, 0, &err);
    QEMUFile *f;

    g_assert_no_error(err);
    f = qemu_file_new_input(QIO_CHANNEL(fioc));
    qio_channel_unref(QIO_CHANNEL(fioc));
    qemu_set_offset(f, offset, SEEK_SET);
    g_assert_cmpint(qemu_file_get_error(f), ==, 0);
    return f;
}

/* Loads all six blocks from QEMU's file with minivm's loader. */
static void load_sample_blocks(void)
{
    QEMUFile *f;

    sample_ram_blocks();
    f = open_input(sample_path, sample_blocks[0].header_offset);
    for (int i = 0; i < SAMPLE_BLOCK_COUNT; i++) {
        RAMBlock *rb = ram_block_by_name(sample_blocks[i].name);
        GError *err = NULL;

        memset(rb->host, 0, rb->used_length);
        if (i > 0) {
            /* The loader left the stream at the next block's entry. */
            char name[256];
            uint8_t n = qemu_get_byte(f);

            qemu_get_buffer(f, (uint8_t *)name, n);
            name[n] = '\0';
            g_assert_cmpstr(name, ==, sample_blocks[i].name);
            g_assert_cmphex(qemu_get_be64(f), ==, sample_blocks[i].used_length);
        }
        g_assert_cmpint(mapped_ram_load_block(f, rb, &err), ==, 0);
        g_assert_no_error(err);
        g_assert_cmphex(qemu_get_offset(f), ==,
                        sample_blocks[i].pages_offset + rb->used_length);
    }
    g_assert_cmphex(qemu_get_be64(f), ==, RAM_SAVE_FLAG_EOS);
    g_assert_cmpint(qemu_fclose(f), ==, 0);
}

static void test_load_qemu_file(void)
{
    RAMBlock *mem0;
    g_autofree char *sum = NULL;

    load_sample_blocks();
    mem0 = ram_block_by_name("mem0");
    sum = digest(mem0->host, mem0->used_length);
    g_assert_cmpstr(sum, ==, SAMPLE_MEM0_SHA256);
    /* Spot checks of the README's pattern: page 3 is a hole, page 5 not. */
    g_assert_true(mem0->host[3 * 4096 + 100] == 0);
    g_assert_cmpmem(mem0->host + 5 * 4096 + 8, 8, "QEMUPAGE", 8);
}

/*
 * minivm writes the same blocks behind the same prefix: the bytes up to
 * the end of the last page area are QEMU's (headers, bitmaps, pages,
 * holes).
 */
static void test_write_like_qemu(void)
{
    g_autofree char *out_path = g_build_filename(tmp_dir, "minivm.mig", NULL);
    g_autofree uint8_t *prefix = g_malloc(SAMPLE_BLOCKS_OFFSET);
    g_autofree uint8_t *qemu_bytes = NULL;
    g_autofree uint8_t *mine = NULL;
    gsize qemu_len, mine_len;
    QIOChannelFile *fioc;
    GError *err = NULL;
    QEMUFile *in, *f;
    RAMBlock *rb;

    load_sample_blocks();

    /* Header, configuration and START section header, as QEMU wrote them. */
    in = open_input(sample_path, 0);
    g_assert_cmpuint(qemu_get_buffer(in, prefix, SAMPLE_BLOCKS_OFFSET), ==,
                     SAMPLE_BLOCKS_OFFSET);
    qemu_fclose(in);

    fioc = qio_channel_file_new_path(out_path, O_CREAT | O_TRUNC | O_WRONLY,
                                     0600, &err);
    g_assert_no_error(err);
    f = qemu_file_new_output(QIO_CHANNEL(fioc));
    qemu_put_buffer(f, prefix, SAMPLE_BLOCKS_OFFSET);
    g_assert_cmpint(mapped_ram_sink.setup(f, &err), ==, 0);
    /* What ram.c's START section does per block. */
    RAMBLOCK_FOREACH(rb)
    {
        size_t n = strlen(rb->idstr);

        qemu_put_byte(f, n);
        qemu_put_buffer(f, (const uint8_t *)rb->idstr, n);
        qemu_put_be64(f, rb->used_length);
        g_assert_cmpint(mapped_ram_sink.block_header(f, rb, &err), ==, 0);
        g_assert_no_error(err);
    }
    qemu_put_be64(f, RAM_SAVE_FLAG_EOS);
    /* The dirty walk: every page, in runs of RAM_RUN_MAX_PAGES. */
    RAMBLOCK_FOREACH(rb)
    {
        for (uint64_t p = 0; p < ramblock_pages(rb); p += RAM_RUN_MAX_PAGES) {
            g_assert_cmpint(
                mapped_ram_sink.send_pages(
                    f, rb, p, MIN(RAM_RUN_MAX_PAGES, ramblock_pages(rb) - p)),
                ==, 0);
        }
    }
    /* A page dirtied again that became zero loses its bit. */
    rb = ram_block_by_name("mem0");
    memset(rb->host + 5 * 4096, 0, 4096);
    g_assert_cmpint(mapped_ram_sink.send_pages(f, rb, 5, 1), ==, 0);
    g_assert_false(test_bit(5, rb->file_bmap));
    /* ... and gets it back (with its content, at its slot) when not. */
    in = open_input(sample_path, 0);
    g_assert_cmpuint(
        qemu_get_buffer_at(in, rb->host + 5 * 4096, 4096,
                           sample_blocks[0].pages_offset + 5 * 4096),
        ==, 4096);
    qemu_fclose(in);
    g_assert_cmpint(mapped_ram_sink.send_pages(f, rb, 5, 1), ==, 0);
    g_assert_true(test_bit(5, rb->file_bmap));
    g_assert_cmpint(mapped_ram_sink.complete(f), ==, 0);
    g_assert_cmpint(qemu_fclose(f), ==, 0);
    mapped_ram_sink.cleanup();
    RAMBLOCK_FOREACH(rb)
    {
        g_assert_null(rb->file_bmap);
    }
    qio_channel_unref(QIO_CHANNEL(fioc));

    g_assert_true(g_file_get_contents(sample_path, (char **)&qemu_bytes,
                                      &qemu_len, NULL));
    g_assert_true(
        g_file_get_contents(out_path, (char **)&mine, &mine_len, NULL));
    g_assert_cmpuint(mine_len, ==, sample_ram_end + 8);
    for (uint64_t i = 0; i < mine_len; i++) {
        if (mine[i] != qemu_bytes[i]) {
            g_error("minivm's file differs from QEMU's at offset 0x%" PRIx64
                    ": 0x%02x, QEMU 0x%02x",
                    i, mine[i], qemu_bytes[i]);
        }
    }
    unlink(out_path);
}

/* A copy of the sample with bytes patched at offset; loads block 0. */
static int load_patched(const void *patch, size_t len, uint64_t offset,
                        uint64_t truncate_to, GError **errp)
{
    g_autofree char *path = g_build_filename(tmp_dir, "patched.mig", NULL);
    g_autofree char *cmd = NULL;
    RAMBlock *rb;
    QEMUFile *f;
    int fd, ret;

    sample_ram_blocks();
    cmd = g_strdup_printf("cp --sparse=always '%s' '%s'", sample_path, path);
    g_assert_cmpint(system(cmd), ==, 0);
    fd = open(path, O_WRONLY);
    g_assert_cmpint(fd, >=, 0);
    if (patch) {
        g_assert_cmpint(pwrite(fd, patch, len, offset), ==, (ssize_t)len);
    }
    if (truncate_to) {
        g_assert_cmpint(ftruncate(fd, truncate_to), ==, 0);
    }
    close(fd);
    rb = ram_block_by_name("mem0");
    f = open_input(path, sample_blocks[0].header_offset);
    ret = mapped_ram_load_block(f, rb, errp);
    qemu_fclose(f);
    unlink(path);
    return ret;
}

static void expect_refusal(const void *patch, size_t len, uint64_t offset,
                           uint64_t truncate_to, const char *message)
{
    GError *err = NULL;

    g_assert_cmpint(load_patched(patch, len, offset, truncate_to, &err), <, 0);
    g_assert_nonnull(err);
    g_assert_cmpstr(err->message, ==, message);
    g_error_free(err);
}

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8) {
        p[i] = v & 0xff;
    }
}

static void test_load_refusals(void)
{
    uint64_t h = sample_blocks[0].header_offset;
    uint8_t b[8];

    put_be(b, 2, 4);
    expect_refusal(b, 4, h, 0,
                   "Migration mapped-ram capability version not supported "
                   "(expected <= 1, got 2)");
    put_be(b, 8192, 8);
    expect_refusal(b, 8, h + 4, 0,
                   "mapped-ram block mem0: page size 8192 does not match the "
                   "target page size 4096");
    put_be(b, 1 * MiB + 512, 8);
    expect_refusal(b, 8, h + 20, 0,
                   "Error reading ramblock mem0 pages, region has bad "
                   "alignment");
    /* Bitmap past the end of the file, then before the header's end. */
    put_be(b, 1ULL << 40, 8);
    expect_refusal(b, 8, h + 12, 0, "Error reading dirty bitmap");
    put_be(b, 0x10, 8);
    expect_refusal(b, 8, h + 12, 0,
                   "mapped-ram block mem0: bitmap at 0x10 (0x800 bytes) does "
                   "not lie between its header (ending at 0x8c) and its pages "
                   "at 0x100000");
    /* Pages past the end of the file; a file cut inside the page area. */
    put_be(b, 1ULL << 40, 8);
    expect_refusal(b, 8, h + 20, 0,
                   "mapped-ram block mem0: pages at 0x10000000000 "
                   "(0x4000000 bytes) lie beyond the end of the file "
                   "(0x461c5b6 bytes)");
    expect_refusal(NULL, 0, 0, 32 * MiB,
                   "mapped-ram block mem0: pages at 0x100000 (0x4000000 "
                   "bytes) lie beyond the end of the file (0x2000000 bytes)");
    /* A header cut short. */
    expect_refusal(NULL, 0, 0, h + 10,
                   "Could not read whole mapped-ram migration header "
                   "(expected 28, got 10 bytes)");
}

/* A block whose page count is not a multiple of 64 has spare bits. */
static void test_spare_bitmap_bits(void)
{
    g_autofree char *path = g_build_filename(tmp_dir, "spare.mig", NULL);
    g_autofree uint8_t *page = g_malloc(4096);
    QIOChannelFile *fioc;
    GError *err = NULL;
    RAMBlock *rb = NULL;
    MappedRamHeader hdr;
    uint8_t buf[MAPPED_RAM_HDR_SIZE];
    uint8_t bits[8] = {0};
    QEMUFile *f;
    int fd;

    /* 65 pages: 2 bitmap words; page 64 is the block's last. */
    sample_ram_blocks();
    if (!ram_block_by_name("odd")) {
        rb = ram_block_add("odd", 65 * 4096, 1ULL << 36, -1, false, &err);
        g_assert_no_error(err);
    }
    rb = ram_block_by_name("odd");
    g_assert_true(mapped_ram_layout(0, rb->used_length, &hdr));
    mapped_ram_header_encode(&hdr, buf);
    fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pwrite(fd, buf, sizeof(buf), 0), ==, sizeof(buf));
    memset(page, 0xab, 4096);
    g_assert_cmpint(pwrite(fd, page, 4096, hdr.pages_offset + 64 * 4096), ==,
                    4096);
    g_assert_cmpint(ftruncate(fd, hdr.pages_offset + rb->used_length + 8), ==,
                    0);

    /* Bit 64 (the last page) set: loads. */
    bits[0] = 1;
    g_assert_cmpint(pwrite(fd, bits, 8, hdr.bitmap_offset + 8), ==, 8);
    fioc = qio_channel_file_new_fd(dup(fd));
    f = qemu_file_new_input(QIO_CHANNEL(fioc));
    g_assert_cmpint(mapped_ram_load_block(f, rb, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_true(rb->host[64 * 4096 + 17] == 0xab);
    g_assert_true(rb->host[63 * 4096 + 17] == 0);
    qemu_fclose(f);
    qio_channel_unref(QIO_CHANNEL(fioc));

    /* Bit 65 set: a page past the block. */
    bits[0] = 3;
    g_assert_cmpint(pwrite(fd, bits, 8, hdr.bitmap_offset + 8), ==, 8);
    fioc = qio_channel_file_new_fd(dup(fd));
    f = qemu_file_new_input(QIO_CHANNEL(fioc));
    qemu_set_offset(f, 0, SEEK_SET); /* the dup shares the file offset */
    g_assert_cmpint(mapped_ram_load_block(f, rb, &err), <, 0);
    g_assert_nonnull(err);
    g_assert_cmpstr(err->message, ==, "page outside of ramblock odd range");
    g_clear_error(&err);
    qemu_fclose(f);
    qio_channel_unref(QIO_CHANNEL(fioc));
    close(fd);
    unlink(path);
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    if (argc < 2) {
        g_printerr("usage: %s QEMU10-SAMPLE.mig.gz\n", argv[0]);
        return 1;
    }
    sample_gz = argv[1];
    /* In memory when possible: closing a file channel fsyncs it. */
    tmp_dir = g_strdup("/dev/shm/test-mapped-ram-XXXXXX");
    if (!g_mkdtemp(tmp_dir)) {
        g_free(tmp_dir);
        tmp_dir = g_dir_make_tmp("test-mapped-ram-XXXXXX", NULL);
    }
    g_assert_nonnull(tmp_dir);
    sample_unpack();
    sample_parse_blocks();

    g_test_add_func("/mapped-ram/header-encoding", test_header_encoding);
    g_test_add_func("/mapped-ram/layout", test_layout);
    g_test_add_func("/mapped-ram/qemu-headers", test_qemu_headers);
    g_test_add_func("/mapped-ram/load-qemu-file", test_load_qemu_file);
    g_test_add_func("/mapped-ram/write-like-qemu", test_write_like_qemu);
    g_test_add_func("/mapped-ram/load-refusals", test_load_refusals);
    g_test_add_func("/mapped-ram/spare-bitmap-bits", test_spare_bitmap_bits);
    ret = g_test_run();

    unlink(sample_path);
    rmdir(tmp_dir);
    ram_blocks_free();
    return ret;
}
