/*
 * Aligned allocation (see include/qemu/memalign.h): small aligned buffers
 * for O_DIRECT I/O, and the big lazily-backed mappings that hold guest RAM.
 */
#include "qemu/osdep.h"
#include "qemu/memalign.h"

#include <sys/mman.h>

/* Transparent huge pages are 2 MiB on the hosts we run on. */
#define RAM_HUGEPAGE_ALIGN (2 * MiB)

void *qemu_memalign(size_t alignment, size_t size)
{
    void *ptr;
    int ret;

    /* posix_memalign wants a power of two multiple of sizeof(void *). */
    if (alignment < sizeof(void *)) {
        alignment = sizeof(void *);
    }
    ret = posix_memalign(&ptr, alignment, size ? size : 1);
    if (ret) {
        fprintf(stderr,
                "minivm: failed to allocate %zu bytes aligned to %zu:"
                " %s\n",
                size, alignment, g_strerror(ret));
        abort();
    }
    return ptr;
}

void qemu_vfree(void *ptr)
{
    free(ptr);
}

/*
 * Anonymous RAM is aligned to 2 MiB by over-mapping and trimming, so the
 * kernel can back it with huge pages from the first byte.
 */
static void *ram_mmap_anon(size_t size, bool shared, GError **errp)
{
    int flags =
        MAP_ANONYMOUS | MAP_NORESERVE | (shared ? MAP_SHARED : MAP_PRIVATE);
    size_t align = size >= RAM_HUGEPAGE_ALIGN ? RAM_HUGEPAGE_ALIGN : 0;
    size_t total = size + align;
    uint8_t *base;
    uint8_t *ptr;

    if (total < size) {
        error_setg(errp, "Cannot map %zu bytes of guest RAM: too large", size);
        return NULL;
    }
    base = mmap(NULL, total, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (base == MAP_FAILED) {
        error_setg_errno(errp, errno, "Cannot map %zu bytes of guest RAM",
                         size);
        return NULL;
    }
    ptr = base;
    if (align) {
        ptr = (uint8_t *)QEMU_ALIGN_UP((uintptr_t)base, align);
        if (ptr > base) {
            munmap(base, ptr - base);
        }
        if (base + total > ptr + size) {
            munmap(ptr + size, base + total - (ptr + size));
        }
    }
#ifdef MADV_HUGEPAGE
    if (!shared) {
        /* Only a hint: without THP the mapping simply uses small pages. */
        madvise(ptr, size, MADV_HUGEPAGE);
    }
#endif
    return ptr;
}

void *qemu_ram_mmap(int fd, size_t size, bool shared, GError **errp)
{
    void *ptr;

    if (!size) {
        error_setg(errp, "Cannot map an empty guest RAM block");
        return NULL;
    }
    if (fd < 0) {
        return ram_mmap_anon(size, shared, errp);
    }
    ptr = mmap(NULL, size, PROT_READ | PROT_WRITE,
               MAP_NORESERVE | (shared ? MAP_SHARED : MAP_PRIVATE), fd, 0);
    if (ptr == MAP_FAILED) {
        error_setg_errno(errp, errno,
                         "Cannot map %zu bytes of guest RAM from fd %d", size,
                         fd);
        return NULL;
    }
    return ptr;
}

void qemu_ram_munmap(void *ptr, size_t size)
{
    if (ptr && size) {
        munmap(ptr, size);
    }
}
