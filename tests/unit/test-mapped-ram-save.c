/*
 * The mapped-ram save path's joining of runs across small zero gaps
 * (migration/mapped-ram.c, docs/devel/migration/mapped-ram.rst): a gap of
 * at most mapped_ram_join_gap_pages() zero pages between pages with
 * content is written with them (zeros from guest RAM, not proved zero, so
 * their bits are set); a longer gap stays a hole, so the file stays
 * sparse. A page whose first word is zero but that has content further on
 * is never taken for a zero page. And a save
 * in two passes, with pages re-dirtied in between (some becoming zero,
 * some getting content inside joined gaps), still loads exactly the guest
 * memory of the end.
 *
 * The block is saved through the mapped-ram page sink the way ram.c's
 * dirty walk drives it, into a file on a disk-backed file system when one
 * reports holes (SEEK_DATA), and read back with the loader.
 */
#include "qemu/osdep.h"

#include "io/channel-file.h"
#include "migration/mapped-ram.h"
#include "migration/qemu-file.h"
#include "migration/ram.h"
#include "qemu/bitmap.h"
#include "qemu/cutils.h"
#include "system/ramblock.h"

#define PAGE        4096
#define BLOCK_PAGES 2048 /* 8 MiB: several walk runs of RAM_RUN_MAX_PAGES */

static char *tmp_dir;
static RAMBlock *block;

/* Page p of the guest gets bytes derived from p and a generation. */
static void page_fill(uint64_t p, uint8_t gen)
{
    uint8_t *host = block->host + p * PAGE;

    for (int i = 0; i < PAGE; i += 64) {
        host[i] = (uint8_t)(p * 7 + gen + i / 64) | 1;
    }
}

static void page_zero(uint64_t p)
{
    memset(block->host + p * PAGE, 0, PAGE);
}

/*
 * The first pass's guest: pages with content, separated by zero gaps of
 * 1, 2, join and join + 1 pages, then 64 and 300 (holes whatever the
 * threshold); the last quarter is all zero.
 */
static uint64_t gap_at[6];
static uint64_t gap_len[6];

static void guest_first_pass(uint32_t join)
{
    uint64_t lens[6] = {1, 2, join ? join : 1, join + 1, 64, 300};
    uint64_t p = 0;

    memset(block->host, 0, block->used_length);
    for (int g = 0; g < 6; g++) {
        for (int i = 0; i < 10; i++) {
            page_fill(p++, 0);
        }
        gap_at[g] = p;
        gap_len[g] = lens[g];
        p += lens[g];
    }
    for (; p < BLOCK_PAGES * 3 / 4; p++) {
        page_fill(p, 0);
    }
}

static bool gap_joined(int g, uint32_t join)
{
    return gap_len[g] <= join;
}

/* A QEMUFile writing a fresh file at path. */
static QEMUFile *open_output(const char *path, QIOChannelFile **fioc)
{
    GError *err = NULL;

    *fioc =
        qio_channel_file_new_path(path, O_CREAT | O_TRUNC | O_RDWR, 0600, &err);
    g_assert_no_error(err);
    return qemu_file_new_output(QIO_CHANNEL(*fioc));
}

/* What ram.c does: setup, the block's header, then dirty runs. */
static void save_begin(QEMUFile *f)
{
    GError *err = NULL;

    g_assert_cmpint(mapped_ram_sink.setup(f, &err), ==, 0);
    g_assert_no_error(err);
    qemu_put_byte(f, strlen(block->idstr));
    qemu_put_buffer(f, (const uint8_t *)block->idstr, strlen(block->idstr));
    qemu_put_be64(f, block->used_length);
    g_assert_cmpint(mapped_ram_sink.block_header(f, block, &err), ==, 0);
    g_assert_no_error(err);
}

/* Sends the set bits of dirty in runs of at most RAM_RUN_MAX_PAGES. */
static void save_dirty(QEMUFile *f, const unsigned long *dirty)
{
    uint64_t first = find_first_bit(dirty, BLOCK_PAGES);

    while (first < BLOCK_PAGES) {
        uint64_t end = find_next_zero_bit(
            dirty, MIN(BLOCK_PAGES, first + RAM_RUN_MAX_PAGES), first);

        g_assert_cmpint(
            mapped_ram_sink.send_pages(f, block, first, end - first), ==, 0);
        first = find_next_bit(dirty, BLOCK_PAGES, end);
    }
}

static void save_end(QEMUFile *f, QIOChannelFile *fioc)
{
    g_assert_cmpint(mapped_ram_sink.complete(f), ==, 0);
    qemu_put_be64(f, RAM_SAVE_FLAG_EOS);
    g_assert_cmpint(qemu_fclose(f), ==, 0);
    mapped_ram_sink.cleanup();
    qio_channel_unref(QIO_CHANNEL(fioc));
}

/* The file's bitmap bit of page p (64-bit little-endian words). */
static bool file_bit(int fd, const MappedRamHeader *hdr, uint64_t p)
{
    uint8_t byte;

    g_assert_cmpint(pread(fd, &byte, 1, hdr->bitmap_offset + p / 8), ==, 1);
    return byte >> (p % 8) & 1;
}

/* Whether [offset, offset + len) of the file holds any data extent. */
static bool file_has_data(int fd, off_t offset, off_t len)
{
    off_t data = lseek(fd, offset, SEEK_DATA);

    return data >= 0 && data < offset + len;
}

/* Loads the block from path into zeroed RAM; returns its copy. */
static uint8_t *load_copy(const char *path, uint8_t *scratch)
{
    GError *err = NULL;
    QIOChannelFile *fioc = qio_channel_file_new_path(path, O_RDONLY, 0, &err);
    g_autofree uint8_t *saved = g_memdup2(block->host, block->used_length);
    QEMUFile *f;
    char name[256];
    uint8_t n;

    g_assert_no_error(err);
    f = qemu_file_new_input(QIO_CHANNEL(fioc));
    qio_channel_unref(QIO_CHANNEL(fioc));
    /* The stream starts with the block's name and length (save_begin). */
    n = qemu_get_byte(f);
    qemu_get_buffer(f, (uint8_t *)name, n);
    name[n] = '\0';
    g_assert_cmpstr(name, ==, block->idstr);
    g_assert_cmphex(qemu_get_be64(f), ==, block->used_length);
    /* Junk where no page is loaded would show: the loader must not care. */
    memset(block->host, 0, block->used_length);
    g_assert_cmpint(mapped_ram_load_block(f, block, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmphex(qemu_get_be64(f), ==, RAM_SAVE_FLAG_EOS);
    g_assert_cmpint(qemu_fclose(f), ==, 0);
    memcpy(scratch, block->host, block->used_length);
    memcpy(block->host, saved, block->used_length);
    return scratch;
}

/* Whether the test directory's file system reports holes at all. */
static bool fs_reports_holes(void)
{
    g_autofree char *path = g_build_filename(tmp_dir, "probe", NULL);
    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
    char c = 1;
    bool ok;

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pwrite(fd, &c, 1, 8 * MiB), ==, 1);
    ok = lseek(fd, 0, SEEK_DATA) >= (off_t)(4 * MiB);
    close(fd);
    unlink(path);
    return ok;
}

/*
 * Saves the pages set in dirty into a fresh file at path, joining gaps of
 * at most join pages, and opens it: returns the descriptor (*hdr: the
 * block's layout).
 */
static int save_once(const char *path, uint32_t join,
                     const unsigned long *dirty, MappedRamHeader *hdr)
{
    g_autofree char *env = g_strdup_printf("%u", join);
    QIOChannelFile *fioc;
    QEMUFile *f;
    int fd;

    g_setenv("MINIVM_MAPPED_RAM_JOIN_GAP", env, true);
    f = open_output(path, &fioc);
    save_begin(f);
    g_assert_cmpuint(mapped_ram_join_gap_pages(), ==, join);
    save_dirty(f, dirty);
    save_end(f, fioc);
    g_unsetenv("MINIVM_MAPPED_RAM_JOIN_GAP");

    g_assert_true(mapped_ram_layout(1 + strlen(block->idstr) + 8,
                                    block->used_length, hdr));
    fd = open(path, O_RDONLY);
    g_assert_cmpint(fd, >=, 0);
    return fd;
}

static void check_join(uint32_t join)
{
    g_autofree char *path = g_build_filename(tmp_dir, "join.mig", NULL);
    g_autofree unsigned long *dirty = bitmap_new(BLOCK_PAGES);
    g_autofree uint8_t *loaded = g_malloc(BLOCK_PAGES * PAGE);
    uint64_t content_pages = 0, joined_pages = 0;
    MappedRamHeader hdr;
    struct stat st;
    bool holes = fs_reports_holes();
    int fd;

    guest_first_pass(join);
    bitmap_fill(dirty, BLOCK_PAGES);
    fd = save_once(path, join, dirty, &hdr);
    for (uint64_t p = 0; p < BLOCK_PAGES; p++) {
        bool zero = buffer_is_zero(block->host + p * PAGE, PAGE);
        bool joined = false;

        for (int g = 0; g < 6; g++) {
            joined |= gap_joined(g, join) && p >= gap_at[g] &&
                      p < gap_at[g] + gap_len[g];
        }
        /* Pages with content and joined ones have their bit set. */
        g_assert_cmpint(file_bit(fd, &hdr, p), ==, !zero || joined);
        content_pages += !zero;
    }
    for (int g = 0; g < 6; g++) {
        off_t at = hdr.pages_offset + gap_at[g] * PAGE;

        if (gap_joined(g, join)) {
            uint8_t buf[PAGE];

            joined_pages += gap_len[g];
            /* Written (zeros from guest RAM). */
            for (uint64_t i = 0; i < gap_len[g]; i++) {
                g_assert_cmpint(pread(fd, buf, PAGE, at + i * PAGE), ==, PAGE);
                g_assert_true(buffer_is_zero(buf, PAGE));
            }
            if (holes) {
                g_assert_true(file_has_data(fd, at, gap_len[g] * PAGE));
            }
        } else if (holes) {
            /* Never written: a hole. */
            g_assert_false(file_has_data(fd, at, gap_len[g] * PAGE));
        }
    }
    if (holes) {
        /* The all-zero quarter is one hole. */
        g_assert_false(
            file_has_data(fd, hdr.pages_offset + BLOCK_PAGES * 3 / 4 * PAGE,
                          BLOCK_PAGES / 4 * PAGE));
        /* Allocated: the pages written, the header block, little more. */
        g_assert_cmpint(fstat(fd, &st), ==, 0);
        g_assert_cmpuint((uint64_t)st.st_blocks * 512, >=,
                         (content_pages + joined_pages) * PAGE);
        g_assert_cmpuint((uint64_t)st.st_blocks * 512, <=,
                         (content_pages + joined_pages) * PAGE + 256 * KiB);
    } else {
        g_test_message("%s reports no holes: sparseness not checked", tmp_dir);
    }
    close(fd);

    /* The loader finds exactly the guest's memory. */
    load_copy(path, loaded);
    g_assert_true(memcmp(loaded, block->host, block->used_length) == 0);
    unlink(path);
}

static void test_join_default(void)
{
    check_join(MAPPED_RAM_JOIN_GAP_PAGES_DEFAULT);
}

static void test_join_never(void)
{
    check_join(0);
}

static void test_join_one(void)
{
    check_join(1);
}

/*
 * Two passes, as a live save does: after the first, the guest gives
 * content to pages inside joined gaps and inside holes, zeroes pages that
 * had content (some inside runs, so their slots now hold zeros written by
 * a joined run of the second pass while earlier they held a page), and
 * rewrites others. Only re-dirtied pages are sent again. The file loads
 * exactly the memory of the end, and every bit matches its page.
 */
static void test_two_passes(void)
{
    g_autofree char *path = g_build_filename(tmp_dir, "live.mig", NULL);
    g_autofree unsigned long *dirty = bitmap_new(BLOCK_PAGES);
    g_autofree uint8_t *loaded = g_malloc(BLOCK_PAGES * PAGE);
    uint32_t join = MAPPED_RAM_JOIN_GAP_PAGES_DEFAULT;
    QIOChannelFile *fioc;
    MappedRamHeader hdr;
    QEMUFile *f;
    int fd;

    guest_first_pass(join);
    f = open_output(path, &fioc);
    /* The default join, whatever file system TMPDIR is on (none on tmpfs). */
    g_setenv("MINIVM_MAPPED_RAM_JOIN_GAP",
             G_STRINGIFY(MAPPED_RAM_JOIN_GAP_PAGES_DEFAULT), true);
    save_begin(f);
    bitmap_fill(dirty, BLOCK_PAGES);
    save_dirty(f, dirty);

    /* The guest runs on: what it touches is dirty again. */
    bitmap_zero(dirty, BLOCK_PAGES);
#define TOUCH(p, how)                                                          \
    do {                                                                       \
        how;                                                                   \
        set_bit((p), dirty);                                                   \
    } while (0)
    TOUCH(gap_at[0], page_fill(gap_at[0], 1));         /* joined gap: data */
    TOUCH(gap_at[4] + 3, page_fill(gap_at[4] + 3, 1)); /* hole: data */
    for (uint64_t p = 2; p < 6; p++) {
        TOUCH(p, page_zero(p)); /* content became zero, between content */
    }
    TOUCH(6, page_fill(6, 2));
    TOUCH(1, page_fill(1, 2)); /* dirty, with a zeroed gap after it */
    for (uint64_t p = 1000; p < 1400; p += 3) {
        TOUCH(p, page_fill(p, 3)); /* scattered rewrites */
    }
    TOUCH(1001, page_zero(1001));
    TOUCH(BLOCK_PAGES - 1, page_fill(BLOCK_PAGES - 1, 4)); /* zero quarter */
#undef TOUCH
    save_dirty(f, dirty);
    save_end(f, fioc);
    g_unsetenv("MINIVM_MAPPED_RAM_JOIN_GAP");

    g_assert_true(mapped_ram_layout(1 + strlen(block->idstr) + 8,
                                    block->used_length, &hdr));
    fd = open(path, O_RDONLY);
    g_assert_cmpint(fd, >=, 0);
    for (uint64_t p = 0; p < BLOCK_PAGES; p++) {
        /* A clear bit is a zero page (a set one may be a joined zero). */
        if (!file_bit(fd, &hdr, p)) {
            g_assert_true(buffer_is_zero(block->host + p * PAGE, PAGE));
        }
    }
    close(fd);
    load_copy(path, loaded);
    g_assert_true(memcmp(loaded, block->host, block->used_length) == 0);
    unlink(path);
}

/* Page p: zero but for its last byte (its first word is zero). */
static void page_fill_last_byte(uint64_t p)
{
    page_zero(p);
    block->host[p * PAGE + PAGE - 1] = 0x5a;
}

/*
 * Pages whose first word is zero but that have content: one inside a gap
 * short enough to be joined (written unread), one alone inside a long gap
 * (read whole: content, its bit set, the pages around it holes), one at
 * the end of a run (written unread: no long zero run there).
 */
static void test_first_word_zero(void)
{
    g_autofree char *path = g_build_filename(tmp_dir, "word.mig", NULL);
    g_autofree unsigned long *dirty = bitmap_new(BLOCK_PAGES);
    g_autofree uint8_t *loaded = g_malloc(BLOCK_PAGES * PAGE);
    MappedRamHeader hdr;
    bool holes = fs_reports_holes();
    int fd;

    memset(block->host, 0, block->used_length);
    for (uint64_t p = 0; p < 100; p++) {
        page_fill(p, 5);
    }
    page_zero(10); /* short gap [10, 13) with content in 11 */
    page_fill_last_byte(11);
    page_zero(12);
    page_fill_last_byte(150); /* long gap [100, 300): 150 alone */
    for (uint64_t p = 300; p < 310; p++) {
        page_fill(p, 6);
    }
    page_fill_last_byte(310); /* last page of the dirty run below */

    bitmap_set(dirty, 0, 311);
    fd = save_once(path, MAPPED_RAM_JOIN_GAP_PAGES_DEFAULT, dirty, &hdr);
    for (uint64_t p = 10; p < 13; p++) {
        g_assert_true(file_bit(fd, &hdr, p));
    }
    g_assert_true(file_bit(fd, &hdr, 150));
    g_assert_true(file_bit(fd, &hdr, 310));
    for (uint64_t p = 100; p < 300; p++) {
        g_assert_cmpint(file_bit(fd, &hdr, p), ==, p == 150);
    }
    if (holes) {
        g_assert_false(
            file_has_data(fd, hdr.pages_offset + 100 * PAGE, 50 * PAGE));
        g_assert_true(file_has_data(fd, hdr.pages_offset + 150 * PAGE, PAGE));
    }
    close(fd);
    load_copy(path, loaded);
    g_assert_true(memcmp(loaded, block->host, block->used_length) == 0);
    unlink(path);
}

int main(int argc, char **argv)
{
    GError *err = NULL;
    int ret;

    g_test_init(&argc, &argv, NULL);
    /*
     * A disk-backed directory when there is one (holes are what is
     * checked); tmpfs reports holes too.
     */
    tmp_dir = g_dir_make_tmp("test-mapped-ram-save-XXXXXX", NULL);
    g_assert_nonnull(tmp_dir);
    block = ram_block_add("join", BLOCK_PAGES * PAGE, 0, -1, false, &err);
    g_assert_no_error(err);

    g_test_add_func("/mapped-ram-save/join-default", test_join_default);
    g_test_add_func("/mapped-ram-save/join-never", test_join_never);
    g_test_add_func("/mapped-ram-save/join-one", test_join_one);
    g_test_add_func("/mapped-ram-save/first-word-zero", test_first_word_zero);
    g_test_add_func("/mapped-ram-save/two-passes", test_two_passes);
    ret = g_test_run();

    rmdir(tmp_dir);
    ram_blocks_free();
    return ret;
}
