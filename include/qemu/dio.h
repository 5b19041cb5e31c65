/*
 * O_DIRECT support: what alignment a file's file system needs for direct
 * I/O, and whether it does direct I/O at all.
 *
 * Direct I/O bypasses the page cache only when every transfer is aligned:
 * the buffer's address to mem_align, the file offset and the length to
 * offset_align. The kernel says what those are through statx(STATX_DIOALIGN)
 * on the file systems that implement it (ext4, xfs, f2fs, btrfs, block
 * devices); elsewhere minivm probes (see util/dio.c for the order).
 *
 * "Does not support O_DIRECT" covers both a file system that refuses
 * O_DIRECT opens (EINVAL) and one that accepts them but serves them from
 * memory like buffered I/O (tmpfs and ramfs since Linux 6.6): there direct
 * I/O would neither bypass a cache nor save memory, and a user who asked
 * for it should hear that. Both give the same message:
 * "Could not open '%s': filesystem does not support O_DIRECT".
 */
#ifndef QEMU_DIO_H
#define QEMU_DIO_H

#include "qemu/osdep.h"

typedef enum {
    QEMU_DIO_ALIGN_STATX,    /* the kernel said so (statx STATX_DIOALIGN) */
    QEMU_DIO_ALIGN_PROBED,   /* found by O_DIRECT reads of the file's data */
    QEMU_DIO_ALIGN_BLOCKDEV, /* the backing device's logical block size */
    QEMU_DIO_ALIGN_ASSUMED,  /* nothing answered: the host page size */
} QemuDioAlignSource;

typedef struct QemuDioAlignment {
    uint32_t mem_align;    /* buffer addresses: a multiple of this */
    uint32_t offset_align; /* file offsets and lengths: a multiple of this */
    QemuDioAlignSource source;
} QemuDioAlignment;

/*
 * What direct I/O on fd (opened with O_DIRECT; path names it in messages)
 * needs. Both alignments come out as powers of two. False with errp set
 * ("Could not open '%s': filesystem does not support O_DIRECT") when the
 * file system does not do direct I/O.
 */
bool qemu_dio_alignment(int fd, const char *path, QemuDioAlignment *align,
                        GError **errp);

/*
 * qemu_open(path, flags | O_DIRECT, mode), then checks that I/O aligned to
 * max_align (a power of two: what the caller guarantees for every buffer,
 * offset and length) is enough for the file system. Returns the fd (close
 * it with qemu_close) or -1 with errp set; *align, when not NULL, gets
 * what the file system asked for.
 */
int qemu_open_direct(const char *path, int flags, mode_t mode,
                     uint32_t max_align, QemuDioAlignment *align,
                     GError **errp);

/*
 * The probe by O_DIRECT reads on its own (qemu_dio_alignment uses it when
 * statx does not answer): true and *align filled when the file starts with
 * data that told the alignment; false when it cannot (holes, empty file,
 * not a regular file, not readable).
 */
bool qemu_dio_probe_reads(int fd, QemuDioAlignment *align);

/* Whether one transfer meets align (both fields powers of two). */
static inline bool qemu_dio_io_aligned(const QemuDioAlignment *align,
                                       const void *buf, uint64_t len,
                                       uint64_t offset)
{
    return ((uintptr_t)buf & (align->mem_align - 1)) == 0 &&
           ((len | offset) & (align->offset_align - 1)) == 0;
}

/* "statx", "probed", "block device", "assumed" (for logs and docs). */
const char *qemu_dio_align_source_name(QemuDioAlignSource source);

/*
 * The file lives in memory (tmpfs, ramfs): O_DIRECT opens succeed but keep
 * the data in memory, and a written zero page costs memory a hole does not.
 */
bool qemu_fd_is_memory_fs(int fd);

#endif
