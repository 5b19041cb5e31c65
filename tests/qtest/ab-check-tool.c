/*
 * minivm-ab-check: runs the a-b checker (system/ab-check.c) on a file that
 * holds a copy of a stopped a-b guest's pc.ram from guest-physical 0 -- a
 * pmemsave dump or a memory-backend-file. The demo (scripts/demo.sh) uses
 * it; so can anyone poking at a guest by hand:
 *
 *     minivm-ab-check FILE
 *
 * Prints the verdict and what the checker saw; exits 0 when the pattern is
 * whole, 1 when it is not, 2 when the file cannot be read.
 */
#include "qemu/osdep.h"

#include <sys/mman.h>

#include "system/ab-check.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "Could not open '%s': %s\n", argv[1], strerror(errno));
        return 2;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size < (off_t)TARGET_PAGE_SIZE) {
        fprintf(stderr, "'%s' is not a RAM image (too small)\n", argv[1]);
        close(fd);
        return 2;
    }
    uint64_t size = st.st_size;
    /* Map rather than read: a RAM image may be larger than we want to copy. */
    const uint8_t *ram = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (ram == MAP_FAILED) {
        fprintf(stderr, "Could not map '%s': %s\n", argv[1], strerror(errno));
        return 2;
    }

    g_autoptr(GString) report = g_string_new(NULL);
    bool ok = ab_check(ram, size, report);
    uint64_t end = MIN(size, AB_END);
    uint64_t pages = end > AB_START ? (end - AB_START) / TARGET_PAGE_SIZE : 0;
    printf("a-b check of %s: %" PRIu64 " pages in [0x%" PRIx64 ", 0x%" PRIx64
           "): %s\n",
           argv[1], pages, (uint64_t)AB_START, end, ok ? "PASS" : "FAIL");
    if (ok && pages) {
        /*
         * Say where the vCPU was: the first page whose byte differs from
         * the first page's (the checker proved there is at most one step).
         */
        uint64_t addr = AB_START + TARGET_PAGE_SIZE;
        while (addr + TARGET_PAGE_SIZE <= end && ram[addr] == ram[AB_START]) {
            addr += TARGET_PAGE_SIZE;
        }
        if (addr + TARGET_PAGE_SIZE <= end) {
            printf("bytes %u up to page 0x%" PRIx64 ", %u from there on "
                   "(where the loop stopped)\n",
                   ram[AB_START], addr, ram[addr]);
        } else {
            printf("every page holds %u (stopped between two passes)\n",
                   ram[AB_START]);
        }
    }
    if (report->len) {
        printf("%s%s", report->str,
               report->str[report->len - 1] == '\n' ? "" : "\n");
    }
    munmap((void *)ram, size);
    return ok ? 0 : 1;
}
