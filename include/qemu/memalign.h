/* Aligned allocation, for O_DIRECT buffers and guest RAM. */
#ifndef QEMU_MEMALIGN_H
#define QEMU_MEMALIGN_H

#include "qemu/osdep.h"

/* Aborts on failure like g_malloc; free with qemu_vfree(). */
void *qemu_memalign(size_t alignment, size_t size);
void qemu_vfree(void *ptr);

/*
 * Anonymous (or, with fd >= 0, shared file-backed) mapping of size bytes for
 * guest RAM; NULL + errp on failure. Unmap with qemu_ram_munmap().
 */
void *qemu_ram_mmap(int fd, size_t size, bool shared, GError **errp);
void qemu_ram_munmap(void *ptr, size_t size);

#endif
