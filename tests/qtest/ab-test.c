/*
 * The a-b checker on a real guest: a stopped a-b guest passes it (read
 * with pmemsave, or straight from its shared memory-backend-file), a
 * single stale page in that same memory fails it, and pmemsave and
 * x-query-ram-digest report exactly the bytes the guest's RAM holds.
 */
#include "qemu/osdep.h"

#include <sys/mman.h>

#include "libqtest.h"
#include "system/ab-check.h"
#include "system/ramblock.h"

#define RAM_SIZE (256 * MiB)
#define AB_LIMIT (100 * MiB)

static size_t count_b(QTestState *s)
{
    g_autofree char *out = qtest_serial_read(s);
    size_t n = 0;
    for (const char *p = out; *p; p++) {
        n += *p == 'B';
    }
    return n;
}

static void stop(QTestState *s)
{
    qtest_qmp_assert_success(s, "{'execute':'stop'}");
}

static void cont(QTestState *s)
{
    qtest_qmp_assert_success(s, "{'execute':'cont'}");
}

static void assert_ab_ok(QTestState *s)
{
    g_autofree char *report = NULL;
    bool ok = qtest_ab_check(s, RAM_SIZE, &report);
    if (!ok) {
        g_error("a-b check failed: %s", report);
    }
}

/* Stopped at any moment, the pattern is whole; again after more passes. */
static void test_ab_check_stopped(void)
{
    QTestState *s = qtest_init("-m 256M -workload a-b");
    qtest_wait_serial(s, "ABB", 60);
    stop(s);
    assert_ab_ok(s);

    size_t before = count_b(s);
    cont(s);
    int64_t deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
    while (count_b(s) < before + 2) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(20 * 1000);
    }
    stop(s);
    assert_ab_ok(s);
    qtest_quit(s);
}

/*
 * The checker is not vacuous: the memory of a real stopped guest fails it
 * when one page, away from where the loop stopped, is one ahead of or one
 * behind its neighbours (a page sent twice or a stale one).
 */
static void test_ab_check_detects_bad_page(void)
{
    QTestState *s = qtest_init("-m 256M -workload a-b");
    qtest_wait_serial(s, "ABB", 60);
    stop(s);
    g_autoptr(GBytes) ram = qtest_pmemsave(s, 0, AB_LIMIT);
    qtest_quit(s);

    gsize len;
    const uint8_t *orig = g_bytes_get_data(ram, &len);
    g_autoptr(GString) report = g_string_new(NULL);
    g_assert_true(ab_check(orig, len, report));

    g_autofree uint8_t *copy = g_memdup2(orig, len);
    uint64_t first = 1 * MiB, last = AB_LIMIT - TARGET_PAGE_SIZE;
    /* Two pages apart from each other and from the ends. */
    uint64_t victims[] = {first + 1000 * TARGET_PAGE_SIZE,
                          first + 20000 * TARGET_PAGE_SIZE};
    for (size_t i = 0; i < G_N_ELEMENTS(victims); i++) {
        g_assert_cmpuint(victims[i], <, last);
        for (int delta = -1; delta <= 1; delta += 2) {
            memcpy(copy, orig, len);
            /* Pair the change with its neighbours so the one legitimate
             * step of the pattern cannot absorb it. */
            copy[victims[i]] = orig[victims[i] - TARGET_PAGE_SIZE] + delta;
            copy[victims[i] + TARGET_PAGE_SIZE] =
                orig[victims[i] - TARGET_PAGE_SIZE];
            g_string_truncate(report, 0);
            if (ab_check(copy, len, report)) {
                g_error("a page changed by %d at 0x%" PRIx64
                        " went unnoticed: %s",
                        delta, victims[i], report->str);
            }
        }
    }
}

/*
 * pmemsave == the bytes in the guest's shared memory-backend-file, and
 * their SHA-256 == x-query-ram-digest's.
 */
static void test_pmemsave_matches_ram(void)
{
    QTestState *s = qtest_init("-m 256M -workload a-b "
                               "-object memory-backend-file,id=ram0,size=256M,"
                               "mem-path={tmp}/guest-ram,share=on "
                               "-machine memory-backend=ram0");
    qtest_wait_serial(s, "ABB", 60);
    stop(s);

    g_autofree char *path =
        g_build_filename(qtest_tmpdir(s), "guest-ram", NULL);
    int fd = open(path, O_RDONLY);
    g_assert_cmpint(fd, >=, 0);
    struct stat st;
    g_assert_cmpint(fstat(fd, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, RAM_SIZE);
    const uint8_t *mem = mmap(NULL, RAM_SIZE, PROT_READ, MAP_SHARED, fd, 0);
    g_assert_true(mem != MAP_FAILED);
    close(fd);

    /* The file itself passes the checker: it is the guest's RAM. */
    g_autoptr(GString) report = g_string_new(NULL);
    if (!ab_check(mem, AB_LIMIT, report)) {
        g_error("a-b check on the mapped file failed: %s", report->str);
    }

    /* Whole RAM, then pieces at odd offsets and sizes. */
    static const struct {
        uint64_t addr, size;
    } ranges[] = {
        {0, RAM_SIZE},
        {1 * MiB + 123, 10000},
        {RAM_SIZE - 4097, 4097},
        {77, 1},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(ranges); i++) {
        g_autoptr(GBytes) got =
            qtest_pmemsave(s, ranges[i].addr, ranges[i].size);
        g_assert_cmpuint(g_bytes_get_size(got), ==, ranges[i].size);
        g_assert_true(memcmp(g_bytes_get_data(got, NULL), mem + ranges[i].addr,
                             ranges[i].size) == 0);
    }

    /*
     * Every block, read with pmemsave at its guest-physical address, has
     * the SHA-256 x-query-ram-digest reports for it.
     */
    static const struct {
        const char *name;
        uint64_t gpa, size;
    } blocks[] = {
        {"pc.ram", 0, RAM_SIZE},
        {"vga.vram", VGA_VRAM_GPA, VGA_VRAM_SIZE},
        {"pc.bios", PC_BIOS_GPA, PC_BIOS_SIZE},
    };
    g_autoptr(GHashTable) digests = qtest_ram_digests(s);
    g_assert_cmpuint(g_hash_table_size(digests), ==, G_N_ELEMENTS(blocks));
    for (size_t i = 0; i < G_N_ELEMENTS(blocks); i++) {
        g_autoptr(GBytes) got =
            qtest_pmemsave(s, blocks[i].gpa, blocks[i].size);
        g_autofree char *sha =
            g_compute_checksum_for_bytes(G_CHECKSUM_SHA256, got);
        g_assert_cmpstr(sha, ==, g_hash_table_lookup(digests, blocks[i].name));
    }

    /* Past the end of RAM is refused, and writes nothing. */
    g_autofree char *out =
        g_build_filename(qtest_tmpdir(s), "beyond.bin", NULL);
    JsonObject *reply =
        qtest_qmp(s,
                  "{'execute': 'pmemsave', 'arguments': {'val': %" PRIu64
                  ", 'size': 8192, 'filename': '%s'}}",
                  (uint64_t)RAM_SIZE - 4096, out);
    g_assert_true(json_object_has_member(reply, "error"));
    json_object_unref(reply);
    g_assert_false(g_file_test(out, G_FILE_TEST_EXISTS));

    munmap((void *)mem, RAM_SIZE);
    qtest_quit(s);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/ab/check-stopped", test_ab_check_stopped);
    g_test_add_func("/ab/check-detects-bad-page",
                    test_ab_check_detects_bad_page);
    g_test_add_func("/ab/pmemsave-matches-ram", test_pmemsave_matches_ram);
    return g_test_run();
}
