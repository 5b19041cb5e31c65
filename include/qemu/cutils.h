/* Small helpers on buffers and strings. */
#ifndef QEMU_CUTILS_H
#define QEMU_CUTILS_H

#include "qemu/osdep.h"

/*
 * True when all len bytes are zero. Word-wise/vectorised with an early exit
 * on the first non-zero word: a data page usually fails in its first bytes,
 * a zero page costs one pass over 4 KiB at memory speed.
 */
bool buffer_is_zero(const void *buf, size_t len);

/*
 * Sizes as stream-format.md section 5 defines them: decimal with an optional
 * K/M/G/T suffix (1024-based, either case; also "B" for bytes), or "0x" hex
 * without suffix. Anything else (empty, trailing junk, "0x20M", negative,
 * overflow) fails with -EINVAL / -ERANGE and leaves *result untouched.
 * default_suffix applies to bare numbers (e.g. 'M' for -m); 0 for bytes.
 */
int qemu_strtosz(const char *str, char default_suffix, uint64_t *result);

/* Human readable, e.g. "128 MiB", "1.5 GiB". g_free() the result. */
char *size_to_str(uint64_t bytes);

#endif
