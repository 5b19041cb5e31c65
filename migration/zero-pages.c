/*
 * Zero-page detection for the page senders (see migration/zero-pages.h).
 * It is most of what a direct-io save spends on the CPU besides the I/O:
 * proving a page zero reads all of it, so the pages a writer will write
 * anyway are not proved.
 */
#include "qemu/osdep.h"

#include "migration/zero-pages.h"
#include "qemu/cutils.h"

static inline uint64_t page_offset(const uint64_t *offsets, uint64_t first,
                                   uint32_t i)
{
    return offsets ? offsets[i] : (first + i) << TARGET_PAGE_BITS;
}

/*
 * Bit i of has_content: page i's first word is not zero. Read for the whole
 * batch first, with no branch on what the loads bring: each first word is
 * a cache miss (another page), and a mispredicted branch on one would
 * throw away the loads issued after it, so they would queue one behind
 * the other instead of overlapping.
 */
static void first_words(const uint8_t *host, const uint64_t *offsets,
                        uint64_t first, uint32_t n, uint64_t *has_content)
{
    for (uint32_t w = 0; w < DIV_ROUND_UP(n, 64); w++) {
        uint32_t end = MIN(n, (w + 1) * 64);
        uint64_t bits = 0;

        for (uint32_t i = w * 64; i < end; i++) {
            uint64_t word;

            memcpy(&word, host + page_offset(offsets, first, i), sizeof(word));
            bits |= (uint64_t)(word != 0) << (i % 64);
        }
        has_content[w] = bits;
    }
}

static inline bool first_word_zero(const uint64_t *has_content, uint32_t i)
{
    return !(has_content[i / 64] >> (i % 64) & 1);
}

void zero_pages_split(const uint8_t *host, const uint64_t *offsets,
                      uint64_t first, uint32_t n, uint32_t join, bool detect,
                      uint64_t *normal, uint32_t *num_normal, uint64_t *zero,
                      uint32_t *num_zero)
{
    uint64_t has_content[ZERO_PAGES_SPLIT_MAX / 64];
    uint32_t nn = 0, nz = 0, i = 0;

    g_assert(n <= ZERO_PAGES_SPLIT_MAX);
    if (detect) {
        first_words(host, offsets, first, n, has_content);
    }
    while (i < n) {
        uint64_t start = page_offset(offsets, first, i);
        uint32_t end = i + 1;
        uint64_t after;
        bool bridged;

        if (!detect || !first_word_zero(has_content, i)) {
            normal[nn++] = start;
            i++;
            continue;
        }
        /* [i, end): pages in a row whose first word is zero, <= join + 1. */
        while (end < n && end - i <= join) {
            uint64_t next = page_offset(offsets, first, end);

            if (next != start + ((uint64_t)(end - i) << TARGET_PAGE_BITS) ||
                !first_word_zero(has_content, end)) {
                break;
            }
            end++;
        }
        /*
         * Bridged: the page before is a normal one right next to it, and
         * the loop stopped at a page right after it because that page has
         * content (not for the length, the batch's end or a gap).
         */
        after = start + ((uint64_t)(end - i) << TARGET_PAGE_BITS);
        bridged = end - i <= join && nn &&
                  normal[nn - 1] + TARGET_PAGE_SIZE == start && end < n &&
                  page_offset(offsets, first, end) == after;
        for (; i < end; i++) {
            uint64_t offset = page_offset(offsets, first, i);

            if (bridged || !buffer_is_zero(host + offset, TARGET_PAGE_SIZE)) {
                normal[nn++] = offset;
            } else {
                zero[nz++] = offset;
            }
        }
    }
    *num_normal = nn;
    *num_zero = nz;
}
