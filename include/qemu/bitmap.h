/*
 * Bitmaps of unsigned long words, bit i in word i / BITS_PER_LONG at
 * position i % BITS_PER_LONG (on little-endian hosts this is the byte
 * layout of mapped-ram's on-disk bitmap, see migration/mapped-ram.c).
 *
 * The atomic variants may race with each other and with the plain readers;
 * the dirty log uses them, guest writers on one side and the migration
 * thread's fetch-and-clear on the other.
 */
#ifndef QEMU_BITMAP_H
#define QEMU_BITMAP_H

#include "qemu/osdep.h"

#define BITS_PER_LONG (sizeof(unsigned long) * 8)
#define BITS_TO_LONGS(nr) DIV_ROUND_UP((nr), BITS_PER_LONG)
#define BIT_WORD(nr) ((nr) / BITS_PER_LONG)
#define BIT_MASK(nr) (1UL << ((nr) % BITS_PER_LONG))

unsigned long *bitmap_new(size_t nbits); /* zeroed; g_free() it */
void bitmap_zero(unsigned long *map, size_t nbits);
void bitmap_fill(unsigned long *map, size_t nbits);
void bitmap_copy(unsigned long *dst, const unsigned long *src, size_t nbits);
size_t bitmap_count_one(const unsigned long *map, size_t nbits);
bool bitmap_empty(const unsigned long *map, size_t nbits);

static inline void set_bit(size_t nr, unsigned long *map)
{
    map[BIT_WORD(nr)] |= BIT_MASK(nr);
}
static inline void clear_bit(size_t nr, unsigned long *map)
{
    map[BIT_WORD(nr)] &= ~BIT_MASK(nr);
}
static inline bool test_bit(size_t nr, const unsigned long *map)
{
    return (map[BIT_WORD(nr)] & BIT_MASK(nr)) != 0;
}

/* Plain range ops: bits [start, start + nr). */
void bitmap_set(unsigned long *map, size_t start, size_t nr);
void bitmap_clear(unsigned long *map, size_t start, size_t nr);

/* Atomic ops, safe against concurrent atomic ops on the same words. */
void set_bit_atomic(size_t nr, unsigned long *map);
void clear_bit_atomic(size_t nr, unsigned long *map);
void bitmap_set_atomic(unsigned long *map, size_t start, size_t nr);
/* Clears bits [start, start + nr); returns true if any of them was set. */
bool bitmap_test_and_clear_atomic(unsigned long *map, size_t start,
                                  size_t nr);
/*
 * Moves every set bit of src into dst (dst |= src, src = 0) word by word
 * with atomic exchange; returns how many bits were newly set in dst.
 */
size_t bitmap_fetch_and_clear_into(unsigned long *dst, unsigned long *src,
                                   size_t nbits);

/* Index of the next set / clear bit at or after offset, or size if none. */
size_t find_next_bit(const unsigned long *map, size_t size, size_t offset);
size_t find_next_zero_bit(const unsigned long *map, size_t size,
                          size_t offset);
static inline size_t find_first_bit(const unsigned long *map, size_t size)
{
    return find_next_bit(map, size, 0);
}

/*
 * Little-endian byte image of a bitmap (mapped-ram's on-disk layout:
 * 64-bit LE words, bit i = byte i/8, bit i%8). out/in are
 * BITS_TO_LONGS(nbits) * sizeof(unsigned long) bytes long.
 */
void bitmap_to_le(unsigned long *dst, const unsigned long *src, size_t nbits);
void bitmap_from_le(unsigned long *dst, const unsigned long *src,
                    size_t nbits);

#endif
