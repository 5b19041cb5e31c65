/*
 * Bitmaps of unsigned long words (see include/qemu/bitmap.h).
 *
 * Two users shape this file: the dirty log, where guest writers set bits
 * atomically while the migration thread moves them into its own bitmap with
 * bitmap_fetch_and_clear_into(); and the migration bitmap walk, which wants
 * find_next_bit() to skip empty words at memory speed.
 */
#include "qemu/osdep.h"
#include "qemu/bitmap.h"

/* Bits of word number @word that fall inside [start, end). */
static inline unsigned long word_range_mask(size_t word, size_t start,
                                            size_t end)
{
    size_t lo = word * BITS_PER_LONG;
    size_t hi = lo + BITS_PER_LONG;
    unsigned long mask = ~0UL;

    if (start > lo) {
        mask &= ~0UL << (start - lo);
    }
    if (end < hi) {
        mask &= ~0UL >> (hi - end);
    }
    return mask;
}

/* Valid bits of the last word of an nbits-long map (all ones if full). */
static inline unsigned long last_word_mask(size_t nbits)
{
    size_t rem = nbits % BITS_PER_LONG;

    return rem ? (1UL << rem) - 1 : ~0UL;
}

unsigned long *bitmap_new(size_t nbits)
{
    /* At least one word, so an empty map is still a valid pointer. */
    return g_new0(unsigned long, MAX(BITS_TO_LONGS(nbits), 1));
}

void bitmap_zero(unsigned long *map, size_t nbits)
{
    memset(map, 0, BITS_TO_LONGS(nbits) * sizeof(unsigned long));
}

void bitmap_fill(unsigned long *map, size_t nbits)
{
    size_t nwords = BITS_TO_LONGS(nbits);

    if (!nwords) {
        return;
    }
    memset(map, 0xff, nwords * sizeof(unsigned long));
    /* Bits past nbits stay clear so counts and scans never see them. */
    map[nwords - 1] = last_word_mask(nbits);
}

void bitmap_copy(unsigned long *dst, const unsigned long *src, size_t nbits)
{
    memcpy(dst, src, BITS_TO_LONGS(nbits) * sizeof(unsigned long));
}

size_t bitmap_count_one(const unsigned long *map, size_t nbits)
{
    size_t full = nbits / BITS_PER_LONG;
    size_t count = 0;
    size_t i;

    for (i = 0; i < full; i++) {
        count += __builtin_popcountl(map[i]);
    }
    if (nbits % BITS_PER_LONG) {
        count += __builtin_popcountl(map[full] & last_word_mask(nbits));
    }
    return count;
}

bool bitmap_empty(const unsigned long *map, size_t nbits)
{
    size_t full = nbits / BITS_PER_LONG;
    size_t i;

    for (i = 0; i < full; i++) {
        if (map[i]) {
            return false;
        }
    }
    if (nbits % BITS_PER_LONG) {
        return (map[full] & last_word_mask(nbits)) == 0;
    }
    return true;
}

void bitmap_set(unsigned long *map, size_t start, size_t nr)
{
    size_t end = start + nr;
    size_t w;

    if (!nr) {
        return;
    }
    for (w = BIT_WORD(start); w <= BIT_WORD(end - 1); w++) {
        map[w] |= word_range_mask(w, start, end);
    }
}

void bitmap_clear(unsigned long *map, size_t start, size_t nr)
{
    size_t end = start + nr;
    size_t w;

    if (!nr) {
        return;
    }
    for (w = BIT_WORD(start); w <= BIT_WORD(end - 1); w++) {
        map[w] &= ~word_range_mask(w, start, end);
    }
}

/*
 * The atomic ops are sequentially consistent: a writer's data store must be
 * visible before its dirty bit, and the migration thread's clear must come
 * before it reads the page (on x86 every locked op is a full fence anyway).
 */
void set_bit_atomic(size_t nr, unsigned long *map)
{
    __atomic_fetch_or(&map[BIT_WORD(nr)], BIT_MASK(nr), __ATOMIC_SEQ_CST);
}

void clear_bit_atomic(size_t nr, unsigned long *map)
{
    __atomic_fetch_and(&map[BIT_WORD(nr)], ~BIT_MASK(nr), __ATOMIC_SEQ_CST);
}

void bitmap_set_atomic(unsigned long *map, size_t start, size_t nr)
{
    size_t end = start + nr;
    size_t w;

    if (!nr) {
        return;
    }
    for (w = BIT_WORD(start); w <= BIT_WORD(end - 1); w++) {
        unsigned long mask = word_range_mask(w, start, end);

        if (mask == ~0UL) {
            /* A whole word: storing all ones equals OR-ing them in. */
            __atomic_store_n(&map[w], ~0UL, __ATOMIC_SEQ_CST);
        } else {
            __atomic_fetch_or(&map[w], mask, __ATOMIC_SEQ_CST);
        }
    }
}

bool bitmap_test_and_clear_atomic(unsigned long *map, size_t start, size_t nr)
{
    size_t end = start + nr;
    bool any = false;
    size_t w;

    if (!nr) {
        return false;
    }
    for (w = BIT_WORD(start); w <= BIT_WORD(end - 1); w++) {
        unsigned long mask = word_range_mask(w, start, end);
        unsigned long old;

        /* Skip words with nothing to clear without dirtying their line. */
        if (!(__atomic_load_n(&map[w], __ATOMIC_RELAXED) & mask)) {
            continue;
        }
        old = __atomic_fetch_and(&map[w], ~mask, __ATOMIC_SEQ_CST);
        if (old & mask) {
            any = true;
        }
    }
    return any;
}

size_t bitmap_fetch_and_clear_into(unsigned long *dst, unsigned long *src,
                                   size_t nbits)
{
    size_t nwords = BITS_TO_LONGS(nbits);
    size_t added = 0;
    size_t w;

    for (w = 0; w < nwords; w++) {
        unsigned long old;

        /* Most of the log is clean: a plain load avoids a locked op. */
        if (!__atomic_load_n(&src[w], __ATOMIC_RELAXED)) {
            continue;
        }
        if (w == nwords - 1 && nbits % BITS_PER_LONG) {
            /* Leave bits beyond nbits alone in a shared last word. */
            unsigned long mask = last_word_mask(nbits);

            old = __atomic_fetch_and(&src[w], ~mask, __ATOMIC_SEQ_CST) & mask;
        } else {
            old = __atomic_exchange_n(&src[w], 0UL, __ATOMIC_SEQ_CST);
        }
        added += __builtin_popcountl(old & ~dst[w]);
        dst[w] |= old;
    }
    return added;
}

/*
 * The first bit at or after offset that differs from the bits of flip (0:
 * a set bit; ~0UL: a clear one). Inlined with a constant flip, so each
 * caller keeps a loop of its own.
 */
static inline size_t find_next_differing(const unsigned long *map, size_t size,
                                         size_t offset, unsigned long flip)
{
    size_t w;
    unsigned long word;
    size_t found;

    if (offset >= size) {
        return size;
    }
    w = BIT_WORD(offset);
    word = (map[w] ^ flip) & (~0UL << (offset % BITS_PER_LONG));
    while (!word) {
        w++;
        if (w * BITS_PER_LONG >= size) {
            return size;
        }
        word = map[w] ^ flip;
    }
    found = w * BITS_PER_LONG + __builtin_ctzl(word);
    return MIN(found, size);
}

size_t find_next_bit(const unsigned long *map, size_t size, size_t offset)
{
    return find_next_differing(map, size, offset, 0);
}

size_t find_next_zero_bit(const unsigned long *map, size_t size, size_t offset)
{
    return find_next_differing(map, size, offset, ~0UL);
}

/*
 * On a little-endian host a word's bytes already are the on-disk image; a
 * big-endian host swaps each word. With 32-bit longs two LE 32-bit words
 * make the same bytes as one LE 64-bit word, so swapping per long is right
 * for either word size.
 */
static void bitmap_swap_le(unsigned long *dst, const unsigned long *src,
                           size_t nbits)
{
    size_t nwords = BITS_TO_LONGS(nbits);

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (dst != src) {
        memmove(dst, src, nwords * sizeof(unsigned long));
    }
#else
    size_t i;

    for (i = 0; i < nwords; i++) {
        if (sizeof(unsigned long) == 8) {
            dst[i] = __builtin_bswap64(src[i]);
        } else {
            dst[i] = __builtin_bswap32(src[i]);
        }
    }
#endif
}

void bitmap_to_le(unsigned long *dst, const unsigned long *src, size_t nbits)
{
    bitmap_swap_le(dst, src, nbits);
}

void bitmap_from_le(unsigned long *dst, const unsigned long *src, size_t nbits)
{
    bitmap_swap_le(dst, src, nbits);
}
