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

static inline bool first_word_zero(const uint8_t *host, uint64_t offset)
{
    uint64_t word;

    memcpy(&word, host + offset, sizeof(word));
    return !word;
}

void zero_pages_split(const uint8_t *host, const uint64_t *offsets,
                      uint64_t first, uint32_t n, uint32_t join, bool detect,
                      uint64_t *normal, uint32_t *num_normal, uint64_t *zero,
                      uint32_t *num_zero)
{
    uint32_t nn = 0, nz = 0, i = 0;

    while (i < n) {
        uint64_t start = page_offset(offsets, first, i);
        uint32_t end = i + 1;
        uint64_t after;
        bool bridged;

        if (!detect || !first_word_zero(host, start)) {
            normal[nn++] = start;
            i++;
            continue;
        }
        /* [i, end): pages in a row whose first word is zero, <= join + 1. */
        while (end < n && end - i <= join) {
            uint64_t next = page_offset(offsets, first, end);

            if (next != start + ((uint64_t)(end - i) << TARGET_PAGE_BITS) ||
                !first_word_zero(host, next)) {
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
