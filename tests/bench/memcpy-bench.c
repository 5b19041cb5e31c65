/*
 * The memory-copy baseline of the save/restore benchmark (tests/bench/
 * bench.py): how long copying BYTES takes on this machine, as a ceiling
 * that no save or restore of the same bytes can beat.
 *
 * A restore writes into guest RAM that nothing has touched yet, so it pays
 * first-touch page faults; the "fresh" copy does the same (the destination
 * is a new anonymous mapping, with MADV_HUGEPAGE as guest RAM has). The
 * "warm" copy repeats it into the now-populated destination: pure memory
 * bandwidth. The source is at most SRC_MAX bytes, reused in turn, so that
 * the helper needs BYTES + 1 GiB, not twice BYTES (both are far larger than
 * any cache, so reuse does not flatter the result).
 *
 * Usage: bench-memcpy BYTES
 * Prints one line: "bytes=N fresh_s=S warm_s=S".
 */
#include "qemu/osdep.h"
#include <sys/mman.h>
#include <time.h>

#define SRC_MAX (1ULL * GiB)

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint8_t *map_anon(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

    if (p == MAP_FAILED) {
        fprintf(stderr, "bench-memcpy: cannot map %zu bytes: %s\n", len,
                strerror(errno));
        exit(1);
    }
#ifdef MADV_HUGEPAGE
    madvise(p, len, MADV_HUGEPAGE); /* as guest RAM; only a hint */
#endif
    return p;
}

/* Copies src_len-sized pieces of src over the whole of dst. */
static double copy_all(uint8_t *dst, size_t len, const uint8_t *src,
                       size_t src_len)
{
    double start = now_s();
    size_t off;

    for (off = 0; off < len; off += src_len) {
        memcpy(dst + off, src, MIN(src_len, len - off));
    }
    return now_s() - start;
}

int main(int argc, char **argv)
{
    guint64 bytes;
    size_t src_len, i;
    uint64_t x = 0x9e3779b97f4a7c15ULL, sum = 0;
    uint8_t *src, *dst;
    double fresh_s, warm_s;
    char *end;

    if (argc != 2) {
        fprintf(stderr, "usage: bench-memcpy BYTES\n");
        return 2;
    }
    errno = 0;
    bytes = g_ascii_strtoull(argv[1], &end, 10);
    if (errno || end == argv[1] || *end || bytes == 0 || bytes > SIZE_MAX) {
        fprintf(stderr, "bench-memcpy: bad byte count '%s'\n", argv[1]);
        return 2;
    }
    src_len = MIN(bytes, SRC_MAX);
    src = map_anon(src_len);
    /* Non-zero, incompressible source bytes, all of them resident. */
    for (i = 0; i + sizeof(x) <= src_len; i += sizeof(x)) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(src + i, &x, sizeof(x));
    }
    dst = map_anon(bytes);

    fresh_s = copy_all(dst, bytes, src, src_len);
    warm_s = copy_all(dst, bytes, src, src_len);

    /* Read the result back so the copies cannot be optimised away. */
    for (i = 0; i < bytes; i += 4096) {
        sum += dst[i];
    }
    printf("bytes=%" PRIu64 " fresh_s=%.6f warm_s=%.6f check=%" PRIu64 "\n",
           (uint64_t)bytes, fresh_s, warm_s, sum & 1);
    return 0;
}
