/*
 * The mapped-ram loader's extents (migration/mapped-ram.c): one read may
 * span slots whose bitmap bit is clear, and such a slot may hold anything
 * (a hole, zeros, or stale bytes from an earlier pass of a live save). This
 * test crafts a block file whose clear-bit slots hold garbage (some are
 * holes), with gaps around the joining limit and runs longer than one
 * read, and loads it with the main-channel loader and with multifd
 * channels (1 and 3, several readers each). Afterwards every set page holds
 * its data, every clear page inside a joined gap is zero, and every clear
 * page of a gap too wide to join was never written (it keeps the marker
 * the test put in guest RAM before the load).
 */
#include "qemu/osdep.h"

#include "io/channel-file.h"
#include "migration/mapped-ram.h"
#include "migration/multifd.h"
#include "migration/qemu-file.h"
#include "qemu/bitmap.h"
#include "system/ramblock.h"

#include "../fuzz/stream-vm.h"

#define PAGES      3000
#define MARKER     0x5a /* guest RAM before the load */
#define GARBAGE    0xee /* clear-bit slots that are not holes */
#define STREAM_END 0x7e /* the byte after the block's page area */

static char *tmp_dir;
static char *file_path;
static unsigned long *bits;     /* the block's bitmap */
static unsigned long *joinable; /* clear pages in a gap the loader may join */
static RAMBlock *rb;
static MappedRamHeader hdr;

/* Page p's content: its index and a salt in every 8-byte word. */
static void page_pattern(uint8_t *buf, uint64_t p)
{
    for (size_t i = 0; i < TARGET_PAGE_SIZE; i += 8) {
        uint64_t v = (p << 20) ^ i ^ 0x1234567890ULL;

        memcpy(buf + i, &v, 8);
    }
}

/*
 * Runs and gaps of chosen lengths: single pages and small runs (as a
 * fill,zero=25 guest has), gaps of 1 and around MAPPED_RAM_LOAD_GAP_PAGES,
 * wide gaps, and a run longer than MAPPED_RAM_LOAD_MAX_PAGES.
 */
static void make_bitmap(void)
{
    static const unsigned runs[] = {1, 3, 4, 1, 7, 2, 1200, 1, 5, 16};
    static const unsigned gaps[] = {
        1, 1,   MAPPED_RAM_LOAD_GAP_PAGES,     MAPPED_RAM_LOAD_GAP_PAGES + 1,
        2, 300, MAPPED_RAM_LOAD_GAP_PAGES - 1, 1,
        3, 150};
    uint64_t p = 2; /* pages 0-1: a leading gap */
    unsigned i = 0;

    bits = bitmap_new(PAGES);
    joinable = bitmap_new(PAGES);
    while (p < PAGES) {
        unsigned run = runs[i % G_N_ELEMENTS(runs)];
        unsigned gap = gaps[(i * 7) % G_N_ELEMENTS(gaps)];

        run = MIN(run, PAGES - p);
        bitmap_set(bits, p, run);
        p += run;
        /* A gap ending the block is never inside a read. */
        if (gap <= MAPPED_RAM_LOAD_GAP_PAGES && p + gap < PAGES) {
            bitmap_set(joinable, p, gap);
        }
        p += gap;
        i++;
    }
}

/* Header, bitmap, pages; clear slots hold garbage except every third gap. */
static void make_file(void)
{
    g_autofree unsigned long *le = NULL;
    g_autofree uint8_t *page = g_malloc(TARGET_PAGE_SIZE);
    uint8_t buf[MAPPED_RAM_HDR_SIZE];
    uint64_t bm_size = mapped_ram_bitmap_size(PAGES);
    uint8_t end = STREAM_END;
    unsigned gap_no = 0;
    int fd;

    g_assert_true(mapped_ram_layout(0, rb->used_length, &hdr));
    mapped_ram_header_encode(&hdr, buf);
    le = g_malloc0(MAX(bm_size, BITS_TO_LONGS(PAGES) * sizeof(long)));
    bitmap_to_le(le, bits, PAGES);
    fd = open(file_path, O_CREAT | O_TRUNC | O_RDWR, 0600);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pwrite(fd, buf, sizeof(buf), 0), ==, sizeof(buf));
    g_assert_cmpint(pwrite(fd, le, bm_size, hdr.bitmap_offset), ==, bm_size);
    for (uint64_t p = 0; p < PAGES; p++) {
        off_t at = hdr.pages_offset + (p << TARGET_PAGE_BITS);

        if (test_bit(p, bits)) {
            page_pattern(page, p);
        } else {
            if (p == 0 || test_bit(p - 1, bits)) {
                gap_no++;
            }
            if (gap_no % 3 == 0) {
                continue; /* a hole */
            }
            memset(page, GARBAGE, TARGET_PAGE_SIZE);
        }
        g_assert_cmpint(pwrite(fd, page, TARGET_PAGE_SIZE, at), ==,
                        TARGET_PAGE_SIZE);
    }
    g_assert_cmpint(pwrite(fd, &end, 1, hdr.pages_offset + rb->used_length), ==,
                    1);
    close(fd);
}

static void check_ram(void)
{
    g_autofree uint8_t *want = g_malloc(TARGET_PAGE_SIZE);
    g_autofree uint8_t *marker = g_malloc(TARGET_PAGE_SIZE);
    g_autofree uint8_t *zero = g_malloc0(TARGET_PAGE_SIZE);

    memset(marker, MARKER, TARGET_PAGE_SIZE);
    for (uint64_t p = 0; p < PAGES; p++) {
        const uint8_t *host = rb->host + (p << TARGET_PAGE_BITS);

        if (test_bit(p, bits)) {
            page_pattern(want, p);
            if (memcmp(host, want, TARGET_PAGE_SIZE)) {
                g_error("page %" PRIu64 " (bit set) lost its data", p);
            }
        } else if (test_bit(p, joinable)) {
            /* Read across (then zeroed) or skipped: never garbage. */
            if (memcmp(host, zero, TARGET_PAGE_SIZE) &&
                memcmp(host, marker, TARGET_PAGE_SIZE)) {
                g_error("page %" PRIu64 " (bit clear, small gap) holds "
                        "stale bytes",
                        p);
            }
        } else if (memcmp(host, marker, TARGET_PAGE_SIZE)) {
            g_error("page %" PRIu64 " (bit clear, wide gap) was written", p);
        }
    }
}

static QEMUFile *open_input(void)
{
    GError *err = NULL;
    QIOChannelFile *fioc =
        qio_channel_file_new_path(file_path, O_RDONLY, 0, &err);
    QEMUFile *f;

    g_assert_no_error(err);
    f = qemu_file_new_input(QIO_CHANNEL(fioc));
    qio_channel_unref(QIO_CHANNEL(fioc));
    return f;
}

/* The stream goes on right after the block's page area. */
static void check_stream_after(QEMUFile *f)
{
    g_assert_cmphex(qemu_get_offset(f), ==, hdr.pages_offset + rb->used_length);
    g_assert_cmpint(qemu_get_byte(f), ==, STREAM_END);
}

static void test_main_channel(void)
{
    GError *err = NULL;
    QEMUFile *f = open_input();

    memset(rb->host, MARKER, rb->used_length);
    g_assert_cmpint(mapped_ram_load_block(f, rb, &err), ==, 0);
    g_assert_no_error(err);
    check_ram();
    check_stream_after(f);
    qemu_fclose(f);
}

static void test_multifd(gconstpointer opaque)
{
    int channels = GPOINTER_TO_INT(opaque);
    GError *err = NULL;
    QEMUFile *f = open_input();

    stream_vm_set_multifd(channels, file_path);
    memset(rb->host, MARKER, rb->used_length);
    g_assert_cmpint(multifd_file_load_block(f, rb, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(multifd_file_load_wait(&err), ==, 0);
    g_assert_no_error(err);
    multifd_recv_cleanup();
    /* Work what cleanup queued for the main loop (the listener stop). */
    while (g_main_context_iteration(NULL, false)) {
    }
    check_ram();
    check_stream_after(f);
    qemu_fclose(f);
    stream_vm_set_multifd(0, file_path);
}

int main(int argc, char **argv)
{
    GError *err = NULL;
    int ret;

    g_test_init(&argc, &argv, NULL);
    /* In memory when possible: closing a file channel fsyncs it. */
    tmp_dir = g_strdup("/dev/shm/test-mapped-ram-load-XXXXXX");
    if (!g_mkdtemp(tmp_dir)) {
        g_free(tmp_dir);
        tmp_dir = g_dir_make_tmp("test-mapped-ram-load-XXXXXX", NULL);
    }
    g_assert_nonnull(tmp_dir);
    file_path = g_build_filename(tmp_dir, "stale.mig", NULL);
    rb = ram_block_add("pc.ram", (uint64_t)PAGES << TARGET_PAGE_BITS, 0, -1,
                       false, &err);
    g_assert_no_error(err);
    make_bitmap();
    make_file();

    g_test_add_func("/mapped-ram-load/stale-slots/main", test_main_channel);
    g_test_add_data_func("/mapped-ram-load/stale-slots/multifd-1",
                         GINT_TO_POINTER(1), test_multifd);
    g_test_add_data_func("/mapped-ram-load/stale-slots/multifd-3",
                         GINT_TO_POINTER(3), test_multifd);
    ret = g_test_run();

    unlink(file_path);
    rmdir(tmp_dir);
    g_free(file_path);
    g_free(tmp_dir);
    g_free(bits);
    g_free(joinable);
    ram_blocks_free();
    return ret;
}
