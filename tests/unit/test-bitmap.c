/*
 * Unit tests of util/bitmap.c. Every range op is checked against a plain
 * bool array for every start and length over a few words, so word-boundary
 * mistakes cannot hide; the fetch-and-clear test races real threads.
 */
#include "qemu/osdep.h"
#include "qemu/bitmap.h"

#define NBITS 200 /* three full words and a partial one */

static void check_against(const unsigned long *map, const bool *ref,
                          size_t nbits)
{
    size_t i;

    for (i = 0; i < nbits; i++) {
        if (test_bit(i, map) != ref[i]) {
            g_error("bit %zu is %d, expected %d", i, test_bit(i, map), ref[i]);
        }
    }
}

static void test_new_zero_fill(void)
{
    g_autofree unsigned long *map = bitmap_new(130);
    g_autofree unsigned long *empty = bitmap_new(0);

    g_assert_nonnull(empty);
    g_assert_true(bitmap_empty(map, 130));
    g_assert_cmpuint(bitmap_count_one(map, 130), ==, 0);

    bitmap_fill(map, 130);
    g_assert_cmpuint(bitmap_count_one(map, 130), ==, 130);
    g_assert_false(bitmap_empty(map, 130));
    /* Bits past nbits stay clear, so a larger count sees only 130. */
    g_assert_cmpuint(map[2], ==, 3UL);
    g_assert_cmpuint(bitmap_count_one(map, 192), ==, 130);
    g_assert_cmpuint(find_next_zero_bit(map, 192, 0), ==, 130);

    bitmap_zero(map, 130);
    g_assert_true(bitmap_empty(map, 130));

    /* Exactly one word: the last-word mask is all ones. */
    bitmap_fill(map, 64);
    g_assert_cmpuint(map[0], ==, ~0UL);
    g_assert_cmpuint(map[1], ==, 0);
    g_assert_cmpuint(bitmap_count_one(map, 64), ==, 64);
}

static void test_single_bits(void)
{
    g_autofree unsigned long *map = bitmap_new(NBITS);
    size_t i;

    for (i = 0; i < NBITS; i += 3) {
        set_bit(i, map);
    }
    for (i = 0; i < NBITS; i++) {
        g_assert_cmpint(test_bit(i, map), ==, i % 3 == 0);
    }
    g_assert_cmpuint(bitmap_count_one(map, NBITS), ==, (NBITS + 2) / 3);
    for (i = 0; i < NBITS; i += 3) {
        clear_bit(i, map);
    }
    g_assert_true(bitmap_empty(map, NBITS));

    set_bit_atomic(63, map);
    set_bit_atomic(64, map);
    set_bit_atomic(199, map);
    g_assert_true(test_bit(63, map) && test_bit(64, map) && test_bit(199, map));
    g_assert_cmpuint(bitmap_count_one(map, NBITS), ==, 3);
    clear_bit_atomic(64, map);
    g_assert_false(test_bit(64, map));
    g_assert_cmpuint(bitmap_count_one(map, NBITS), ==, 2);
}

static void test_empty_ignores_tail(void)
{
    unsigned long map[2] = {0, ~0UL << 5};

    /* Bits 64..68 clear, garbage from bit 69 on is outside the map. */
    g_assert_true(bitmap_empty(map, 69));
    g_assert_false(bitmap_empty(map, 70));
    g_assert_cmpuint(bitmap_count_one(map, 69), ==, 0);
    g_assert_cmpuint(bitmap_count_one(map, 70), ==, 1);
}

static void test_copy(void)
{
    g_autofree unsigned long *a = bitmap_new(NBITS);
    g_autofree unsigned long *b = bitmap_new(NBITS);

    bitmap_set(a, 10, 150);
    bitmap_copy(b, a, NBITS);
    g_assert_cmpmem(a, BITS_TO_LONGS(NBITS) * sizeof(long), b,
                    BITS_TO_LONGS(NBITS) * sizeof(long));
}

typedef void (*RangeOp)(unsigned long *map, size_t start, size_t nr);

/* For every [start, start + nr) inside NBITS: op on a background pattern. */
static void check_range_op(RangeOp op, bool sets, bool background)
{
    g_autofree unsigned long *map = bitmap_new(NBITS);
    bool ref[NBITS];
    size_t start, nr, i;

    for (start = 0; start < NBITS; start++) {
        for (nr = 0; start + nr <= NBITS; nr++) {
            if (background) {
                bitmap_fill(map, NBITS);
            } else {
                bitmap_zero(map, NBITS);
            }
            op(map, start, nr);
            for (i = 0; i < NBITS; i++) {
                ref[i] = (i >= start && i < start + nr) ? sets : background;
            }
            check_against(map, ref, NBITS);
        }
    }
}

static void test_set_range(void)
{
    check_range_op(bitmap_set, true, false);
    check_range_op(bitmap_set, true, true);
}

static void test_clear_range(void)
{
    check_range_op(bitmap_clear, false, true);
    check_range_op(bitmap_clear, false, false);
}

static void test_set_atomic_range(void)
{
    check_range_op(bitmap_set_atomic, true, false);
    check_range_op(bitmap_set_atomic, true, true);
}

static void test_test_and_clear_atomic(void)
{
    g_autofree unsigned long *map = bitmap_new(NBITS);
    bool ref[NBITS];
    size_t start, nr, i;

    for (start = 0; start < NBITS; start++) {
        for (nr = 0; start + nr <= NBITS; nr++) {
            bool expect_any = false;

            /* A sparse pattern, so some ranges hold no set bit at all. */
            bitmap_zero(map, NBITS);
            for (i = 0; i < NBITS; i += 37) {
                set_bit(i, map);
            }
            for (i = 0; i < NBITS; i++) {
                ref[i] = i % 37 == 0;
                if (i >= start && i < start + nr) {
                    expect_any |= ref[i];
                    ref[i] = false;
                }
            }
            g_assert_cmpint(bitmap_test_and_clear_atomic(map, start, nr), ==,
                            expect_any);
            check_against(map, ref, NBITS);
        }
    }
}

static void test_fetch_and_clear_into(void)
{
    g_autofree unsigned long *src = bitmap_new(NBITS);
    g_autofree unsigned long *dst = bitmap_new(NBITS);
    size_t i;

    bitmap_set(src, 5, 100);
    bitmap_set(dst, 50, 100);
    /* 5..49 are new in dst; 50..104 were already there. */
    g_assert_cmpuint(bitmap_fetch_and_clear_into(dst, src, NBITS), ==, 45);
    g_assert_true(bitmap_empty(src, NBITS));
    for (i = 0; i < NBITS; i++) {
        g_assert_cmpint(test_bit(i, dst), ==, i >= 5 && i < 150);
    }
    g_assert_cmpuint(bitmap_fetch_and_clear_into(dst, src, NBITS), ==, 0);

    /* Bits beyond nbits in the shared last word are left in src. */
    bitmap_zero(dst, NBITS);
    bitmap_set(src, 190, 10);
    g_assert_cmpuint(bitmap_fetch_and_clear_into(dst, src, 195), ==, 5);
    g_assert_cmpuint(bitmap_count_one(src, NBITS), ==, 5);
    g_assert_true(test_bit(195, src) && !test_bit(194, src));
    g_assert_cmpuint(bitmap_count_one(dst, NBITS), ==, 5);
}

/*
 * Two writer threads set every bit of a shared map exactly once, in an
 * interleaved order so they hit the same words, while the main thread keeps
 * moving bits out of the words the writers are working on right now (and
 * now and then out of the whole map). No bit may be lost or counted twice.
 */
#define RACE_BITS         (1 << 20)
#define RACE_WINDOW_WORDS 2

typedef struct {
    unsigned long *map;
    unsigned parity;
    size_t progress; /* next bit this writer sets, read by the mover */
    gint *done;
} RaceWriter;

static gpointer race_writer(gpointer opaque)
{
    RaceWriter *w = opaque;
    size_t i;

    for (i = w->parity; i < RACE_BITS; i += 2) {
        if (i % 4096 == w->parity) {
            /* Sometimes a range, to mix both kinds of atomic writes. */
            bitmap_set_atomic(w->map, i, 1);
        } else {
            set_bit_atomic(i, w->map);
        }
        __atomic_store_n(&w->progress, i, __ATOMIC_RELAXED);
    }
    g_atomic_int_inc(w->done);
    return NULL;
}

static void fetch_and_clear_race_once(void)
{
    const size_t nwords = BITS_TO_LONGS(RACE_BITS);
    g_autofree unsigned long *src = bitmap_new(RACE_BITS);
    g_autofree unsigned long *dst = bitmap_new(RACE_BITS);
    gint done = 0;
    RaceWriter w0 = {src, 0, 0, &done};
    RaceWriter w1 = {src, 1, 0, &done};
    GThread *t0 = g_thread_new("w0", race_writer, &w0);
    GThread *t1 = g_thread_new("w1", race_writer, &w1);
    size_t moved = 0;
    unsigned rounds = 0;

    while (g_atomic_int_get(&done) < 2) {
        size_t word = BIT_WORD(__atomic_load_n(&w0.progress, __ATOMIC_RELAXED));

        /* The hot words, where the writers' ORs race our exchanges. */
        word = MIN(word ? word - 1 : 0, nwords - RACE_WINDOW_WORDS);
        moved += bitmap_fetch_and_clear_into(dst + word, src + word,
                                             RACE_WINDOW_WORDS * BITS_PER_LONG);
        if (++rounds % 1024 == 0) {
            moved += bitmap_fetch_and_clear_into(dst, src, RACE_BITS);
        }
    }
    g_thread_join(t0);
    g_thread_join(t1);
    moved += bitmap_fetch_and_clear_into(dst, src, RACE_BITS);

    g_assert_cmpuint(bitmap_count_one(dst, RACE_BITS), ==, RACE_BITS);
    g_assert_cmpuint(moved, ==, RACE_BITS);
    g_assert_true(bitmap_empty(src, RACE_BITS));
}

static void test_fetch_and_clear_race(void)
{
    unsigned i;

    /* A lost bit needs an unlucky interleaving: give it several chances. */
    for (i = 0; i < 8; i++) {
        fetch_and_clear_race_once();
    }
}

static size_t ref_find(const bool *ref, size_t size, size_t offset, bool value)
{
    size_t i;

    for (i = offset; i < size; i++) {
        if (ref[i] == value) {
            return i;
        }
    }
    return size;
}

static void test_find(void)
{
    const size_t sizes[] = {1, 63, 64, 65, 130, NBITS};
    g_autofree unsigned long *map = bitmap_new(NBITS + 64);
    bool ref[NBITS];
    GRand *rand = g_rand_new_with_seed(42);
    unsigned trial;
    size_t s, i, off;

    for (trial = 0; trial < 200; trial++) {
        /* Densities from empty to full; garbage past the size. */
        unsigned density = trial % 11;

        bitmap_zero(map, NBITS + 64);
        for (i = 0; i < NBITS; i++) {
            ref[i] = g_rand_int_range(rand, 0, 10) < (gint)density;
            if (ref[i]) {
                set_bit(i, map);
            }
        }
        for (s = 0; s < G_N_ELEMENTS(sizes); s++) {
            size_t size = sizes[s];
            unsigned long saved = map[BIT_WORD(size)];

            /* Bits past size must never be reported. */
            if (size % BITS_PER_LONG) {
                map[BIT_WORD(size)] |= ~0UL << (size % BITS_PER_LONG);
            }
            for (off = 0; off <= size + 2; off++) {
                g_assert_cmpuint(find_next_bit(map, size, off), ==,
                                 ref_find(ref, size, off, true));
            }
            map[BIT_WORD(size)] = saved;
            if (size % BITS_PER_LONG) {
                map[BIT_WORD(size)] &= ~(~0UL << (size % BITS_PER_LONG));
            }
            for (off = 0; off <= size + 2; off++) {
                g_assert_cmpuint(find_next_zero_bit(map, size, off), ==,
                                 ref_find(ref, size, off, false));
            }
            map[BIT_WORD(size)] = saved;
            g_assert_cmpuint(find_first_bit(map, size), ==,
                             ref_find(ref, size, 0, true));
        }
    }
    g_rand_free(rand);
}

static void test_find_sparse_large(void)
{
    size_t nbits = 1 << 20;
    g_autofree unsigned long *map = bitmap_new(nbits);
    size_t pos;

    set_bit(0, map);
    set_bit(777777, map);
    set_bit(nbits - 1, map);
    g_assert_cmpuint(find_first_bit(map, nbits), ==, 0);
    g_assert_cmpuint(find_next_bit(map, nbits, 1), ==, 777777);
    g_assert_cmpuint(find_next_bit(map, nbits, 777778), ==, nbits - 1);
    g_assert_cmpuint(find_next_bit(map, nbits - 1, 777778), ==, nbits - 1);
    pos = find_next_bit(map, nbits, nbits);
    g_assert_cmpuint(pos, ==, nbits);

    bitmap_fill(map, nbits);
    clear_bit(123456, map);
    g_assert_cmpuint(find_next_zero_bit(map, nbits, 0), ==, 123456);
    g_assert_cmpuint(find_next_zero_bit(map, nbits, 123457), ==, nbits);
}

static void test_le_image(void)
{
    const size_t nbits = 300;
    size_t nwords = BITS_TO_LONGS(nbits);
    g_autofree unsigned long *map = bitmap_new(nbits);
    g_autofree unsigned long *le = bitmap_new(nbits);
    g_autofree unsigned long *back = bitmap_new(nbits);
    const uint8_t *bytes = (const uint8_t *)le;
    size_t i;

    for (i = 0; i < nbits; i++) {
        if (i % 7 == 0 || i % 64 == 63) {
            set_bit(i, map);
        }
    }
    bitmap_to_le(le, map, nbits);
    /* The on-disk rule: bit i is bit i % 8 of byte i / 8. */
    for (i = 0; i < nbits; i++) {
        g_assert_cmpint(!!(bytes[i / 8] & (1u << (i % 8))), ==,
                        test_bit(i, map));
    }
    bitmap_from_le(back, le, nbits);
    g_assert_cmpmem(back, nwords * sizeof(long), map, nwords * sizeof(long));

    /* In place works too. */
    bitmap_to_le(map, map, nbits);
    g_assert_cmpmem(map, nwords * sizeof(long), le, nwords * sizeof(long));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/bitmap/new-zero-fill", test_new_zero_fill);
    g_test_add_func("/bitmap/single-bits", test_single_bits);
    g_test_add_func("/bitmap/empty-ignores-tail", test_empty_ignores_tail);
    g_test_add_func("/bitmap/copy", test_copy);
    g_test_add_func("/bitmap/set-range", test_set_range);
    g_test_add_func("/bitmap/clear-range", test_clear_range);
    g_test_add_func("/bitmap/set-atomic-range", test_set_atomic_range);
    g_test_add_func("/bitmap/test-and-clear-atomic",
                    test_test_and_clear_atomic);
    g_test_add_func("/bitmap/fetch-and-clear-into", test_fetch_and_clear_into);
    g_test_add_func("/bitmap/fetch-and-clear-race", test_fetch_and_clear_race);
    g_test_add_func("/bitmap/find", test_find);
    g_test_add_func("/bitmap/find-sparse-large", test_find_sparse_large);
    g_test_add_func("/bitmap/le-image", test_le_image);
    return g_test_run();
}
