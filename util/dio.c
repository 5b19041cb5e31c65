/*
 * O_DIRECT alignment (see include/qemu/dio.h): what a file system needs
 * before direct I/O on it bypasses the page cache, and whether it does
 * direct I/O at all.
 *
 * The answer comes from the first of these that knows:
 * 1. statx(STATX_DIOALIGN): the kernel's own word (Linux 6.1+, on file
 *    systems that implement it). Both fields 0 means no direct I/O.
 * 2. The file system type: tmpfs and ramfs accept O_DIRECT opens since
 *    Linux 6.6 but copy through memory like buffered I/O, so they count as
 *    file systems without O_DIRECT.
 * 3. O_DIRECT reads of data the file already holds (a manager's header on
 *    a restore, say), smallest size and buffer offset first. Holes do not
 *    count: reads of a hole succeed at any alignment.
 * 4. The logical block size of the block device behind the file system.
 * 5. The host page size, which covers every common device; what minivm
 *    writes is page aligned anyway.
 */
#include "qemu/osdep.h"

#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

#include "qemu/dio.h"
#include "qemu/fdopen.h"
#include "qemu/memalign.h"

/* Larger alignments than this are not probed for: nothing needs them. */
#define DIO_PROBE_MAX (64 * KiB)

const char *qemu_dio_align_source_name(QemuDioAlignSource source)
{
    switch (source) {
    case QEMU_DIO_ALIGN_STATX:
        return "statx";
    case QEMU_DIO_ALIGN_PROBED:
        return "probed";
    case QEMU_DIO_ALIGN_BLOCKDEV:
        return "block device";
    case QEMU_DIO_ALIGN_ASSUMED:
    default:
        return "assumed";
    }
}

static void set_no_dio_error(const char *path, GError **errp)
{
    error_setg(errp,
               "Could not open '%s': filesystem does not support O_DIRECT",
               path);
}

/* The smallest power of two >= v (v >= 1 and small here). */
static uint32_t pow2_ceil(uint32_t v)
{
    uint32_t p = 1;

    while (p < v && p < (1u << 31)) {
        p <<= 1;
    }
    return p;
}

/* 1 answered, 0 no answer, -1 the kernel says there is no direct I/O. */
static int dio_from_statx(int fd, QemuDioAlignment *align)
{
#ifdef STATX_DIOALIGN
    struct statx stx;

    if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) < 0 ||
        !(stx.stx_mask & STATX_DIOALIGN)) {
        return 0;
    }
    if (!stx.stx_dio_offset_align || !stx.stx_dio_mem_align) {
        return -1;
    }
    align->mem_align = pow2_ceil(stx.stx_dio_mem_align);
    align->offset_align = pow2_ceil(stx.stx_dio_offset_align);
    align->source = QEMU_DIO_ALIGN_STATX;
    return 1;
#else
    return 0;
#endif
}

bool qemu_fd_is_memory_fs(int fd)
{
    struct statfs sfs;

    if (fstatfs(fd, &sfs) < 0) {
        return false;
    }
    return sfs.f_type == TMPFS_MAGIC || sfs.f_type == RAMFS_MAGIC;
}

/* Bytes of data (not hole) at the start of the file, up to limit. */
static uint64_t dio_data_at_start(int fd, uint64_t limit)
{
    off_t data = lseek(fd, 0, SEEK_DATA);
    off_t hole;

    if (data != 0) {
        return 0;
    }
    hole = lseek(fd, 0, SEEK_HOLE);
    if (hole < 0) {
        return 0;
    }
    return MIN((uint64_t)hole, limit);
}

/*
 * Reads the file's first bytes with O_DIRECT: the smallest length that
 * works is the offset alignment, the smallest buffer misalignment that
 * works the memory alignment. A write-only descriptor is probed through a
 * read-only reopen of the same file (when the file's mode allows it).
 */
bool qemu_dio_probe_reads(int fd, QemuDioAlignment *align)
{
    g_autofree char *proc = NULL;
    int flags = fcntl(fd, F_GETFL);
    int rfd = fd;
    struct stat st;
    uint64_t have;
    uint8_t *buf;
    uint32_t len = 0, mem = 0;

    /* Only a regular file: reopening a FIFO or a device could block. */
    if (flags < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        return false;
    }
    if ((flags & O_ACCMODE) == O_WRONLY) {
        proc = g_strdup_printf("/proc/self/fd/%d", fd);
        rfd = open(proc, O_RDONLY | O_DIRECT | O_CLOEXEC);
        if (rfd < 0) {
            return false;
        }
    }
    have = dio_data_at_start(rfd, 2 * DIO_PROBE_MAX);
    if (have == 0) {
        goto out;
    }
    buf = qemu_memalign(2 * DIO_PROBE_MAX, 2 * DIO_PROBE_MAX);
    for (uint32_t n = 1; n <= DIO_PROBE_MAX && n <= have; n <<= 1) {
        if (pread(rfd, buf, n, 0) == (ssize_t)n) {
            len = n;
            break;
        }
    }
    /* buf + m is aligned to m and to nothing larger. */
    for (uint32_t m = 1; len && m <= DIO_PROBE_MAX; m <<= 1) {
        if (pread(rfd, buf + m, len, 0) == (ssize_t)len) {
            mem = m;
            break;
        }
    }
    qemu_vfree(buf);
out:
    if (rfd != fd) {
        close(rfd);
    }
    if (!len || !mem) {
        return false;
    }
    align->offset_align = len;
    align->mem_align = mem;
    align->source = QEMU_DIO_ALIGN_PROBED;
    return true;
}

/* The logical block size of the device the file system sits on. */
static bool dio_from_block_device(int fd, QemuDioAlignment *align)
{
    static const char *const fmts[] = {
        "/sys/dev/block/%u:%u/queue/logical_block_size",
        /* a partition: its disk's queue */
        "/sys/dev/block/%u:%u/../queue/logical_block_size",
    };
    struct stat st;

    if (fstat(fd, &st) < 0) {
        return false;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(fmts); i++) {
        g_autofree char *path =
            g_strdup_printf(fmts[i], major(st.st_dev), minor(st.st_dev));
        g_autofree char *text = NULL;
        guint64 size;

        if (!g_file_get_contents(path, &text, NULL, NULL)) {
            continue;
        }
        g_strstrip(text);
        if (!g_ascii_string_to_unsigned(text, 10, 1, 1 * MiB, &size, NULL)) {
            continue;
        }
        align->offset_align = pow2_ceil(size);
        align->mem_align = align->offset_align;
        align->source = QEMU_DIO_ALIGN_BLOCKDEV;
        return true;
    }
    return false;
}

bool qemu_dio_alignment(int fd, const char *path, QemuDioAlignment *align,
                        GError **errp)
{
    int ret = dio_from_statx(fd, align);

    if (ret < 0) {
        set_no_dio_error(path, errp);
        return false;
    }
    if (ret > 0) {
        return true;
    }
    if (qemu_fd_is_memory_fs(fd)) {
        set_no_dio_error(path, errp);
        return false;
    }
    if (qemu_dio_probe_reads(fd, align) || dio_from_block_device(fd, align)) {
        return true;
    }
    align->offset_align = pow2_ceil(sysconf(_SC_PAGESIZE));
    align->mem_align = align->offset_align;
    align->source = QEMU_DIO_ALIGN_ASSUMED;
    return true;
}

int qemu_open_direct(const char *path, int flags, mode_t mode,
                     uint32_t max_align, QemuDioAlignment *align, GError **errp)
{
    QemuDioAlignment a;
    int fd = qemu_open(path, flags | O_DIRECT, mode, errp);

    if (fd < 0) {
        return -1;
    }
    if (!qemu_dio_alignment(fd, path, &a, errp)) {
        qemu_close(fd);
        return -1;
    }
    if (a.mem_align > max_align || a.offset_align > max_align) {
        error_setg(errp,
                   "Could not use '%s' with O_DIRECT: the filesystem needs "
                   "buffers aligned to %u bytes and offsets and lengths to "
                   "%u bytes (%s), more than the %u bytes this I/O is "
                   "aligned to",
                   path, a.mem_align, a.offset_align,
                   qemu_dio_align_source_name(a.source), max_align);
        qemu_close(fd);
        return -1;
    }
    if (align) {
        *align = a;
    }
    return fd;
}
