/*
 * util/dio.c: the O_DIRECT alignment a file system asks for, on a disk-backed
 * directory ($MINIVM_TEST_DIR, else the directory of this test binary in the
 * build tree) and on tmpfs (/dev/shm), which must count as a file system
 * without O_DIRECT with the exact message of spec/monitor.md.
 */
#include "qemu/osdep.h"

#include <linux/magic.h>
#include <sys/statfs.h>

#include "qemu/dio.h"
#include "qemu/fdopen.h"
#include "qemu/memalign.h"

static char *disk_dir(void)
{
    const char *env = g_getenv("MINIVM_TEST_DIR");
    g_autofree char *exe = NULL;

    if (env && *env) {
        return g_strdup(env);
    }
    exe = g_file_read_link("/proc/self/exe", NULL);
    g_assert_nonnull(exe);
    return g_path_get_dirname(exe);
}

static bool dir_is_tmpfs(const char *dir)
{
    struct statfs sfs;

    return statfs(dir, &sfs) == 0 &&
           (sfs.f_type == TMPFS_MAGIC || sfs.f_type == RAMFS_MAGIC);
}

static bool is_pow2(uint32_t v)
{
    return v && !(v & (v - 1));
}

/* A scratch file of len bytes of data (not holes) in dir; g_free the name. */
static char *scratch_file(const char *dir, size_t len)
{
    g_autofree char *tmpl = g_build_filename(dir, "dio-test-XXXXXX", NULL);
    g_autofree uint8_t *data = g_malloc(len);
    int fd = g_mkstemp(tmpl);

    g_assert_cmpint(fd, >=, 0);
    memset(data, 0x5a, len);
    g_assert_cmpint(write(fd, data, len), ==, (ssize_t)len);
    g_assert_cmpint(fsync(fd), ==, 0);
    close(fd);
    return g_steal_pointer(&tmpl);
}

static void test_disk_alignment(void)
{
    g_autofree char *dir = disk_dir();
    g_autofree char *path = NULL;
    g_autoptr(GError) err = NULL;
    QemuDioAlignment align;
    int fd;

    if (dir_is_tmpfs(dir)) {
        g_test_skip("the test directory is on tmpfs: set MINIVM_TEST_DIR "
                    "to a disk-backed directory");
        return;
    }
    path = scratch_file(dir, 64 * KiB);
    fd = qemu_open_direct(path, O_RDONLY, 0, TARGET_PAGE_SIZE, &align, &err);
    unlink(path);
    if (fd < 0 && strstr(err->message, "does not support O_DIRECT")) {
        g_test_skip(err->message);
        return;
    }
    g_assert_no_error(err);
    g_assert_true(is_pow2(align.mem_align));
    g_assert_true(is_pow2(align.offset_align));
    g_assert_cmpuint(align.offset_align, <=, TARGET_PAGE_SIZE);
    g_test_message("%s: mem %u offset %u (%s)", dir, align.mem_align,
                   align.offset_align,
                   qemu_dio_align_source_name(align.source));

    /* A page-aligned page read through the fd works, as promised. */
    {
        uint8_t *buf = qemu_memalign(TARGET_PAGE_SIZE, TARGET_PAGE_SIZE);

        g_assert_true(qemu_dio_io_aligned(&align, buf, TARGET_PAGE_SIZE,
                                          TARGET_PAGE_SIZE));
        g_assert_cmpint(pread(fd, buf, TARGET_PAGE_SIZE, TARGET_PAGE_SIZE), ==,
                        TARGET_PAGE_SIZE);
        g_assert_cmpuint(buf[0], ==, 0x5a);
        qemu_vfree(buf);
    }
    qemu_close(fd);
}

/* A promise smaller than what the file system needs is refused. */
static void test_disk_too_small_promise(void)
{
    g_autofree char *dir = disk_dir();
    g_autofree char *path = NULL;
    g_autoptr(GError) err = NULL;
    QemuDioAlignment align;
    int fd;

    if (dir_is_tmpfs(dir)) {
        g_test_skip("the test directory is on tmpfs");
        return;
    }
    path = scratch_file(dir, 8 * KiB);
    fd = qemu_open_direct(path, O_RDONLY, 0, TARGET_PAGE_SIZE, &align, NULL);
    if (fd < 0) {
        unlink(path);
        g_test_skip("no O_DIRECT in the test directory");
        return;
    }
    qemu_close(fd);
    if (align.offset_align == 1 && align.mem_align == 1) {
        unlink(path);
        g_test_skip("the file system takes any alignment");
        return;
    }
    fd = qemu_open_direct(path, O_RDONLY, 0, 1, NULL, &err);
    unlink(path);
    g_assert_cmpint(fd, ==, -1);
    g_assert_nonnull(err);
    g_assert_true(g_str_has_prefix(err->message, "Could not use '"));
    g_assert_nonnull(strstr(err->message, "more than the 1 bytes"));
}

/* Write-only descriptors (a save) get an answer too, and it holds. */
static void test_disk_write_only(void)
{
    g_autofree char *dir = disk_dir();
    g_autofree char *path = NULL;
    g_autoptr(GError) err = NULL;
    QemuDioAlignment align;
    uint8_t *buf;
    int fd;

    if (dir_is_tmpfs(dir)) {
        g_test_skip("the test directory is on tmpfs");
        return;
    }
    path = scratch_file(dir, 4 * KiB);
    fd = qemu_open_direct(path, O_WRONLY, 0, TARGET_PAGE_SIZE, &align, &err);
    if (fd < 0) {
        unlink(path);
        g_test_skip(err->message);
        return;
    }
    buf = qemu_memalign(TARGET_PAGE_SIZE, TARGET_PAGE_SIZE);
    memset(buf, 0xa5, TARGET_PAGE_SIZE);
    g_assert_cmpint(pwrite(fd, buf, TARGET_PAGE_SIZE, 1 * MiB), ==,
                    TARGET_PAGE_SIZE);
    qemu_vfree(buf);
    qemu_close(fd);
    unlink(path);
}

/* The probe by reads agrees with the kernel where both answer. */
static void test_probe_matches_statx(void)
{
    g_autofree char *dir = disk_dir();
    g_autofree char *path = NULL;
    QemuDioAlignment kernel, probed;
    int fd;

    if (dir_is_tmpfs(dir)) {
        g_test_skip("the test directory is on tmpfs");
        return;
    }
    path = scratch_file(dir, 256 * KiB);
    fd = qemu_open_direct(path, O_RDONLY, 0, TARGET_PAGE_SIZE, &kernel, NULL);
    if (fd < 0 || kernel.source != QEMU_DIO_ALIGN_STATX) {
        if (fd >= 0) {
            qemu_close(fd);
        }
        unlink(path);
        g_test_skip("statx does not report STATX_DIOALIGN here");
        return;
    }
    g_assert_true(qemu_dio_probe_reads(fd, &probed));
    g_assert_cmpint(probed.source, ==, QEMU_DIO_ALIGN_PROBED);
    /* A probe may find a laxer device than the file system promises. */
    g_assert_cmpuint(probed.offset_align, <=, kernel.offset_align);
    g_assert_cmpuint(probed.mem_align, <=, kernel.mem_align);
    g_test_message("statx %u/%u, probed %u/%u", kernel.mem_align,
                   kernel.offset_align, probed.mem_align, probed.offset_align);
    qemu_close(fd);
    unlink(path);
}

static void test_tmpfs_refused(void)
{
    g_autofree char *tmpl = g_strdup("/dev/shm/minivm-dio-XXXXXX");
    g_autofree char *want = NULL;
    g_autoptr(GError) err = NULL;
    int fd;

    if (!dir_is_tmpfs("/dev/shm")) {
        g_test_skip("/dev/shm is not tmpfs here");
        return;
    }
    fd = g_mkstemp(tmpl);
    g_assert_cmpint(fd, >=, 0);
    close(fd);
    fd = qemu_open_direct(tmpl, O_WRONLY, 0, TARGET_PAGE_SIZE, NULL, &err);
    unlink(tmpl);
    g_assert_cmpint(fd, ==, -1);
    want = g_strdup_printf(
        "Could not open '%s': filesystem does not support O_DIRECT", tmpl);
    g_assert_cmpstr(err->message, ==, want);
}

static void test_io_aligned(void)
{
    QemuDioAlignment a = {.mem_align = 512, .offset_align = 4096};
    const uint8_t *base = (const uint8_t *)(uintptr_t)0x100000;

    g_assert_true(qemu_dio_io_aligned(&a, base, 4096, 8192));
    g_assert_true(qemu_dio_io_aligned(&a, base + 512, 4096, 0));
    g_assert_false(qemu_dio_io_aligned(&a, base + 256, 4096, 0));
    g_assert_false(qemu_dio_io_aligned(&a, base, 2048, 0));
    g_assert_false(qemu_dio_io_aligned(&a, base, 4096, 512));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/dio/disk/alignment", test_disk_alignment);
    g_test_add_func("/dio/disk/too-small-promise", test_disk_too_small_promise);
    g_test_add_func("/dio/disk/write-only", test_disk_write_only);
    g_test_add_func("/dio/disk/probe-matches-statx", test_probe_matches_statx);
    g_test_add_func("/dio/tmpfs/refused", test_tmpfs_refused);
    g_test_add_func("/dio/io-aligned", test_io_aligned);
    return g_test_run();
}
