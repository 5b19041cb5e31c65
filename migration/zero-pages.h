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
 * Splits n (<= ZERO_PAGES_SPLIT_MAX) pages of a block (host is its RAM)
 * into those to write (normal, byte offsets) and the zero ones (zero):
 * page i is at byte offsets[i], or at page first + i when offsets is NULL;
 * offsets ascend. Without detect every page is normal.
 *
 * A writer that joins zero gaps of at most `join` pages (and writes them
 * whatever they hold) only needs the longer zero runs. So, in each row of
 * pages that follow each other in RAM, only the pages at a stride of
 * join + 1 are looked at (their first word: nearly every page with content
 * shows it there). Any run of more than join pages whose first word is
 * zero holds one of them, which finds the run (the first words around
 * it); such a run is read whole (buffer_is_zero), its zero pages go to
 * zero and the others to normal. Every other page is normal, unread. A row
 * of at most join pages (isolated dirty pages) has every page tested.
 * With join 0 every page whose first word is zero is read whole.
 */
void zero_pages_split(const uint8_t *host, const uint64_t *offsets,
                      uint64_t first, uint32_t n, uint32_t join, bool detect,
                      uint64_t *normal, uint32_t *num_normal, uint64_t *zero,
                      uint32_t *num_zero);

#endif
