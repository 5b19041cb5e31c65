/*
 * Zero-page detection for the page senders (see migration/zero-pages.h).
 * It was most of what a direct-io save spent on the CPU besides the I/O:
 * proving a page zero reads all of it, and even the first word of every
 * page is a cache miss. A writer that joins zero gaps of `join` pages
 * only needs the zero runs longer than that, and every such run holds a
 * page at a stride of join + 1: only those pages are looked at first.
 */
#include "qemu/osdep.h"

#include "migration/zero-pages.h"
#include "qemu/cutils.h"

typedef struct ZeroPagesSplit {
    const uint8_t *host;
    const uint64_t *offsets; /* NULL: page i is page first + i */
    uint64_t first;
    uint64_t *normal;
    uint64_t *zero;
    uint32_t num_normal, num_zero;
} ZeroPagesSplit;

static inline uint64_t page_offset(const ZeroPagesSplit *z, uint32_t i)
{
    return z->offsets ? z->offsets[i] : (z->first + i) << TARGET_PAGE_BITS;
}

static inline bool first_word_zero(const ZeroPagesSplit *z, uint32_t i)
{
    uint64_t word;

    memcpy(&word, z->host + page_offset(z, i), sizeof(word));
    return !word;
}

static void add_normal(ZeroPagesSplit *z, uint32_t start, uint32_t end)
{
    for (uint32_t i = start; i < end; i++) {
        z->normal[z->num_normal++] = page_offset(z, i);
    }
}

/* Pages [start, end) read whole: zero ones apart. */
static void add_proved(ZeroPagesSplit *z, uint32_t start, uint32_t end)
{
    for (uint32_t i = start; i < end; i++) {
        uint64_t offset = page_offset(z, i);

        if (buffer_is_zero(z->host + offset, TARGET_PAGE_SIZE)) {
            z->zero[z->num_zero++] = offset;
        } else {
            z->normal[z->num_normal++] = offset;
        }
    }
}

/*
 * Pages [start, end), in a row in guest RAM. Fewer than join + 1 of them
 * (isolated dirty pages of a later pass) are all tested: there is nothing
 * to join them to. Otherwise only the pages at a stride of join + 1 are: a
 * run of more than join pages whose first word is zero holds one of them,
 * which finds the whole run (first words around it) to be read whole.
 */
static void split_row(ZeroPagesSplit *z, uint32_t start, uint32_t end,
                      uint32_t join)
{
    uint32_t done = start; /* pages before it are sorted */

    if (end - start <= join) {
        for (uint32_t i = start; i < end; i++) {
            if (first_word_zero(z, i)) {
                add_proved(z, i, i + 1);
            } else {
                add_normal(z, i, i + 1);
            }
        }
        return;
    }
    for (uint32_t p = start + join; p < end; p += join + 1) {
        uint32_t lo = p, hi = p + 1;

        if (p < done || !first_word_zero(z, p)) {
            continue;
        }
        while (lo > done && first_word_zero(z, lo - 1)) {
            lo--;
        }
        while (hi < end && first_word_zero(z, hi)) {
            hi++;
        }
        add_normal(z, done, lo);
        if (hi - lo > join) {
            add_proved(z, lo, hi);
        } else {
            add_normal(z, lo, hi);
        }
        done = hi;
    }
    add_normal(z, done, end);
}

void zero_pages_split(const uint8_t *host, const uint64_t *offsets,
                      uint64_t first, uint32_t n, uint32_t join, bool detect,
                      uint64_t *normal, uint32_t *num_normal, uint64_t *zero,
                      uint32_t *num_zero)
{
    ZeroPagesSplit z = {host, offsets, first, normal, zero, 0, 0};
    uint32_t i = 0;

    g_assert(n <= ZERO_PAGES_SPLIT_MAX);
    if (!detect) {
        add_normal(&z, 0, n);
        i = n;
    }
    while (i < n) {
        uint32_t end = i + 1;

        /* A page outside the batch may hold a valid slot: rows stop there. */
        while (end < n && page_offset(&z, end) ==
                              page_offset(&z, end - 1) + TARGET_PAGE_SIZE) {
            end++;
        }
        split_row(&z, i, end, join);
        i = end;
    }
    *num_normal = z.num_normal;
    *num_zero = z.num_zero;
}
