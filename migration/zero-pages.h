/*
 * Which pages of a batch are zero, reading as little guest memory as it
 * can (docs/devel/migration/mapped-ram.rst, "Zero pages").
 */
#ifndef MIGRATION_ZERO_PAGES_H
#define MIGRATION_ZERO_PAGES_H

#include "qemu/osdep.h"

/* The most pages zero_pages_split() takes at once (a multifd file batch). */
#define ZERO_PAGES_SPLIT_MAX 512

/*
 * Splits n (<= ZERO_PAGES_SPLIT_MAX) pages of a block (host is its RAM) into
 * those to write (normal, byte offsets) and the zero ones (zero): page i is at
 * byte offsets[i], or at page first + i when offsets is NULL; offsets ascend.
 * Without detect every page is normal.
 *
 * A page whose first word is not zero has content (nearly every page with
 * content shows it there: one cache line read). The others are read whole
 * (buffer_is_zero), except a run of at most `join` of them, in a row,
 * between two pages with content right before and after it: a writer that
 * joins zero gaps of `join` pages writes such a run with its neighbours
 * whatever it holds, so it is normal, unread. With join 0 every page
 * whose first word is zero is read whole.
 */
void zero_pages_split(const uint8_t *host, const uint64_t *offsets,
                      uint64_t first, uint32_t n, uint32_t join, bool detect,
                      uint64_t *normal, uint32_t *num_normal, uint64_t *zero,
                      uint32_t *num_zero);

#endif
