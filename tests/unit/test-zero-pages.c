/*
 * zero_pages_split() (migration/zero-pages.c): which pages of a batch are
 * written and which are zero: zero runs longer than the gap the writer
 * joins are found and proved, everything else is written. Each case is a
 * row of page kinds; the expected split is written next to it.
 */
#include "qemu/osdep.h"

#include "migration/zero-pages.h"

#define PAGE  4096
#define PAGES 600 /* more than ZERO_PAGES_SPLIT_MAX, for gaps in offsets */

static uint8_t *ram;

/*
 * Page kinds: 'C' content from its first word on, 'Z' zero, 'L' zero but
 * for its last byte (content the first word does not show).
 */
static void set_page(uint64_t p, char kind)
{
    uint8_t *host = ram + p * PAGE;

    memset(host, 0, PAGE);
    if (kind == 'C') {
        memset(host, 0xa5, PAGE);
    } else if (kind == 'L') {
        host[PAGE - 1] = 1;
    }
}

/*
 * Lays out kinds from page first on (a '.' is a page left out of the
 * batch) and splits the batch with join, through an offsets array (or
 * first, when contiguous is set). want: for each page of kinds, 'n'
 * (normal), 'z' (zero) or '.' (not in the batch).
 */
static void check(const char *kinds, uint32_t join, bool detect,
                  bool contiguous, const char *want)
{
    uint64_t first = 3;
    uint64_t offsets[ZERO_PAGES_SPLIT_MAX];
    uint64_t normal[ZERO_PAGES_SPLIT_MAX], zero[ZERO_PAGES_SPLIT_MAX];
    uint32_t n = 0, nn = 99, nz = 99;
    g_autofree char *got = g_strdup(want);
    size_t len = strlen(kinds);

    g_assert_cmpuint(strlen(want), ==, len);
    memset(ram, 0x11, PAGES * PAGE); /* pages outside the batch: content */
    for (size_t i = 0; i < len; i++) {
        if (kinds[i] != '.') {
            set_page(first + i, kinds[i]);
            offsets[n++] = (first + i) * PAGE;
        }
    }
    g_assert_true(!contiguous || !strchr(kinds, '.'));
    zero_pages_split(ram, contiguous ? NULL : offsets, first, n, join, detect,
                     normal, &nn, zero, &nz);
    g_assert_cmpuint(nn + nz, ==, n);
    memset(got, '.', len);
    for (uint32_t i = 0; i < nn; i++) {
        got[normal[i] / PAGE - first] = 'n';
        /* Ascending, as the writer's joining needs. */
        g_assert_true(i == 0 || normal[i] > normal[i - 1]);
    }
    for (uint32_t i = 0; i < nz; i++) {
        got[zero[i] / PAGE - first] = 'z';
        g_assert_true(i == 0 || zero[i] > zero[i - 1]);
    }
    g_assert_cmpstr(got, ==, want);
}

static void test_short_gaps_written(void)
{
    /* Zero runs of at most join pages: normal, whatever they hold. */
    check("CZCZZCZZZZZZZZC", 8, true, false, "nnnnnnnnnnnnnnn");
    check("CZCZZCZZZZZZZZC", 8, true, true, "nnnnnnnnnnnnnnn");
    check("CZZCZZZZZZZZCZLZCZ", 8, true, true, "nnnnnnnnnnnnnnnnnn");
    check("CZZC", 2, true, false, "nnnn");
    check("CCZZ", 2, true, false, "nnnn"); /* not sampled: written */
}

static void test_long_gaps_proved(void)
{
    /* join + 1 pages: each read whole, zero ones are holes. */
    check("CZZZZZZZZZC", 8, true, false, "nzzzzzzzzzn");
    check("CZZZC", 2, true, true, "nzzzn");
    /* Content after a zero first word is found, and ends the gap. */
    check("CZZZZLZZZZZZC", 8, true, false, "nzzzznzzzzzzn");
    check("CZZZLZC", 2, true, false, "nzzznzn");
}

static void test_short_rows_proved(void)
{
    /* A row of at most join pages: every page tested. */
    check("ZZC", 8, true, false, "zzn");
    check("CZZ", 8, true, true, "nzz");
    check("ZLZ", 8, true, false, "znz");
    check("CZLZC", 8, true, true, "nznzn");
    check("L", 8, true, true, "n");
    check("Z", 8, true, true, "z");
    /* Long runs at a row's edges. */
    check("ZZZZZZZZZCC", 8, true, false, "zzzzzzzzznn");
    check("CCZZZZZZZZZ", 8, true, true, "nnzzzzzzzzz");
}

static void test_batch_holes_proved(void)
{
    /*
     * A page left out of the batch may hold a valid slot of an earlier
     * pass: rows stop there, so a gap next to it is never taken as joined.
     */
    check("CZ.ZC", 8, true, false, "nz.zn");
    check("C.ZZC", 8, true, false, "n.zzn");
    check("CZZ.C", 8, true, false, "nzz.n");
    check("C.C", 8, true, false, "n.n");
}

static void test_join_zero_and_no_detection(void)
{
    check("CZCLC", 0, true, false, "nznnn");
    check("CZCLZ", 0, true, true, "nznnz");
    check("CZZZZZZZZZZLC", 8, false, false, "nnnnnnnnnnnnn");
}

/*
 * A full batch of runs of 5 pages with content, then gaps of 1, 2, ... 12
 * zero pages, over and over: the benchmark guest's shape. The batch ends
 * inside a gap of 10, with 3 of its pages in the batch: written.
 */
static void test_full_batch(void)
{
    char kinds[ZERO_PAGES_SPLIT_MAX + 1];
    char want[ZERO_PAGES_SPLIT_MAX + 1];
    int i = 0, gap = 1;

    while (i < ZERO_PAGES_SPLIT_MAX) {
        int in_batch;

        for (int k = 0; k < 5 && i < ZERO_PAGES_SPLIT_MAX; k++, i++) {
            kinds[i] = 'C';
            want[i] = 'n';
        }
        in_batch = MIN(gap, ZERO_PAGES_SPLIT_MAX - i);
        for (int k = 0; k < in_batch; k++, i++) {
            kinds[i] = 'Z';
            want[i] = in_batch > 8 ? 'z' : 'n';
        }
        gap = gap % 12 + 1;
    }
    kinds[ZERO_PAGES_SPLIT_MAX] = want[ZERO_PAGES_SPLIT_MAX] = 0;
    g_assert_cmpstr(&kinds[ZERO_PAGES_SPLIT_MAX - 4], ==, "CZZZ");
    check(kinds, 8, true, false, want);
    check(kinds, 8, true, true, want);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    ram = g_malloc(PAGES * PAGE);
    g_test_add_func("/zero-pages/short-gaps-written", test_short_gaps_written);
    g_test_add_func("/zero-pages/long-gaps-proved", test_long_gaps_proved);
    g_test_add_func("/zero-pages/short-rows-proved", test_short_rows_proved);
    g_test_add_func("/zero-pages/batch-holes-proved", test_batch_holes_proved);
    g_test_add_func("/zero-pages/join-zero-and-no-detection",
                    test_join_zero_and_no_detection);
    g_test_add_func("/zero-pages/full-batch", test_full_batch);
    return g_test_run();
}
