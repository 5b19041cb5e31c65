/*
 * Unit tests of util/cutils.c, util/memalign.c and util/osdep.c: the zero
 * test at every length, alignment and non-zero position; the size syntax of
 * stream-format.md section 5; aligned and RAM allocation; qemu_open().
 */
#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "qemu/fdopen.h"
#include "qemu/memalign.h"

#include <sys/mman.h>

#define ZERO_MAX_LEN 300
#define ZERO_MAX_OFF 16

static void test_buffer_is_zero_all_positions(void)
{
    /* Guard bytes around each window must never influence the answer. */
    g_autofree uint8_t *buf = g_malloc(ZERO_MAX_LEN + 2 * ZERO_MAX_OFF + 64);
    size_t off, len, pos;

    for (off = 0; off < ZERO_MAX_OFF; off++) {
        for (len = 0; len <= ZERO_MAX_LEN; len++) {
            uint8_t *p = buf + ZERO_MAX_OFF + off;

            memset(buf, 0xa5, ZERO_MAX_LEN + 2 * ZERO_MAX_OFF + 64);
            memset(p, 0, len);
            g_assert_true(buffer_is_zero(p, len));
            for (pos = 0; pos < len; pos++) {
                p[pos] = pos & 1 ? 0x80 : 0x01;
                if (buffer_is_zero(p, len)) {
                    g_error("off %zu len %zu: non-zero byte at %zu missed", off,
                            len, pos);
                }
                p[pos] = 0;
            }
        }
    }
}

static void test_buffer_is_zero_exact_alloc(void)
{
    size_t len;

    /* Exactly sized heap blocks: any over-read trips ASan. */
    for (len = 0; len <= ZERO_MAX_LEN; len++) {
        g_autofree uint8_t *p = g_malloc0(len ? len : 1);

        g_assert_true(buffer_is_zero(p, len));
        if (len) {
            p[len - 1] = 1;
            g_assert_false(buffer_is_zero(p, len));
            g_assert_true(buffer_is_zero(p, len - 1));
        }
    }
}

static void test_buffer_is_zero_page(void)
{
    uint8_t *page = qemu_memalign(4096, 4 * 4096);

    memset(page, 0, 4 * 4096);
    g_assert_true(buffer_is_zero(page, 4 * 4096));
    page[4 * 4096 - 1] = 0xff;
    g_assert_false(buffer_is_zero(page, 4 * 4096));
    g_assert_true(buffer_is_zero(page, 3 * 4096));
    page[2048] = 1;
    g_assert_false(buffer_is_zero(page, 4096));
    g_assert_true(buffer_is_zero(page, 2048));
    qemu_vfree(page);
}

typedef struct {
    const char *str;
    char default_suffix;
    int ret;
    uint64_t value;
} StrtoszCase;

static void test_strtosz_table(void)
{
    static const StrtoszCase cases[] = {
        {"0", 0, 0, 0},
        {"4096", 0, 0, 4096},
        {"4G", 0, 0, 4 * GiB},
        {"4g", 0, 0, 4 * GiB},
        {"512M", 0, 0, 512 * MiB},
        {"512m", 0, 0, 512 * MiB},
        {"1k", 0, 0, 1024},
        {"1K", 0, 0, 1024},
        {"2T", 0, 0, 2048 * GiB},
        {"2t", 0, 0, 2048 * GiB},
        {"100B", 0, 0, 100},
        {"100b", 0, 0, 100},
        {"0x1000", 0, 0, 4096},
        {"0X1000", 0, 0, 4096},
        {"0xdeadBEEF", 0, 0, 0xdeadbeefULL},
        {"0xffffffffffffffff", 0, 0, UINT64_MAX},
        {"18446744073709551615", 0, 0, UINT64_MAX},
        {"007", 0, 0, 7},
        {"16777215T", 0, 0, 16777215ULL << 40},
        /* default suffix for bare numbers */
        {"128", 'M', 0, 128 * MiB},
        {"128k", 'M', 0, 128 * KiB},
        {"128B", 'M', 0, 128},
        {"0x10", 'M', 0, 16 * MiB},
        /* refused */
        {"", 0, -EINVAL, 0},
        {"-1", 0, -EINVAL, 0},
        {"+1", 0, -EINVAL, 0},
        {" 1", 0, -EINVAL, 0},
        {"1 ", 0, -EINVAL, 0},
        {"12Q", 0, -EINVAL, 0},
        {"1KB", 0, -EINVAL, 0},
        {"1KiB", 0, -EINVAL, 0},
        {"1.5G", 0, -EINVAL, 0},
        {"M", 0, -EINVAL, 0},
        {"0x", 0, -EINVAL, 0},
        {"0x20M", 0, -EINVAL, 0},
        {"0x1000k", 0, -EINVAL, 0},
        {"0xg", 0, -EINVAL, 0},
        {"abc", 0, -EINVAL, 0},
        {"1x", 0, -EINVAL, 0},
        {"4096,", 0, -EINVAL, 0},
        /* overflow */
        {"18446744073709551616", 0, -ERANGE, 0},
        {"99999999999999999999999", 0, -ERANGE, 0},
        {"0x10000000000000000", 0, -ERANGE, 0},
        {"16777216T", 0, -ERANGE, 0},
        {"17179869184G", 0, -ERANGE, 0},
        {"18014398509481984k", 'M', -ERANGE, 0},
        {"17592186044416", 'M', -ERANGE, 0},
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        const StrtoszCase *c = &cases[i];
        uint64_t result = 0xabcdef;
        int ret = qemu_strtosz(c->str, c->default_suffix, &result);

        if (ret != c->ret) {
            g_error("qemu_strtosz(\"%s\", '%c') = %d, expected %d", c->str,
                    c->default_suffix ? c->default_suffix : '0', ret, c->ret);
        }
        if (ret == 0) {
            g_assert_cmpuint(result, ==, c->value);
        } else {
            /* Failure leaves the result untouched. */
            g_assert_cmpuint(result, ==, 0xabcdef);
        }
    }
    g_assert_cmpint(qemu_strtosz(NULL, 0, NULL), ==, -EINVAL);
}

static void test_size_to_str(void)
{
    static const struct {
        uint64_t bytes;
        const char *str;
    } cases[] = {
        {0, "0 B"},
        {512, "512 B"},
        {1023, "1023 B"},
        {1024, "1 KiB"},
        {1536, "1.5 KiB"},
        {1537, "1.5 KiB"},
        {128 * MiB, "128 MiB"},
        {3 * GiB / 2, "1.5 GiB"},
        {GiB - 1, "1 GiB"},
        {GiB + 10 * MiB, "1.01 GiB"},
        {5 * 1024 * GiB, "5 TiB"},
        {UINT64_MAX, "16 EiB"},
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *s = size_to_str(cases[i].bytes);

        g_assert_cmpstr(s, ==, cases[i].str);
    }
}

static void test_memalign(void)
{
    size_t align;

    for (align = 1; align <= 64 * KiB; align *= 2) {
        uint8_t *p = qemu_memalign(align, 3 * align + 1);

        g_assert_true(QEMU_IS_ALIGNED((uintptr_t)p, align));
        memset(p, 0x5a, 3 * align + 1);
        qemu_vfree(p);
    }
    qemu_vfree(qemu_memalign(4096, 0));
    qemu_vfree(NULL);
}

static void test_ram_mmap_anon(void)
{
    size_t size = 6 * MiB + 4096;
    g_autoptr(GError) err = NULL;
    uint8_t *ram = qemu_ram_mmap(-1, size, false, &err);

    g_assert_no_error(err);
    g_assert_nonnull(ram);
    /* Aligned for transparent huge pages. */
    g_assert_true(QEMU_IS_ALIGNED((uintptr_t)ram, 2 * MiB));
    g_assert_true(buffer_is_zero(ram, size));
    ram[0] = 1;
    ram[size - 1] = 2;
    g_assert_cmpint(ram[size - 1], ==, 2);
    qemu_ram_munmap(ram, size);

    /* Small blocks are not padded out to a huge page. */
    ram = qemu_ram_mmap(-1, 8192, false, &err);
    g_assert_no_error(err);
    ram[8191] = 1;
    qemu_ram_munmap(ram, 8192);

    g_assert_null(qemu_ram_mmap(-1, 0, false, &err));
    g_assert_nonnull(err);
}

static void test_ram_mmap_fd(void)
{
    size_t size = 1 * MiB;
    g_autoptr(GError) err = NULL;
    char byte = 0;
    uint8_t *ram;
    int fd = memfd_create("test-ram", MFD_CLOEXEC);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, size), ==, 0);
    ram = qemu_ram_mmap(fd, size, true, &err);
    g_assert_no_error(err);
    ram[12345] = 'x';
    /* Shared: the write is visible through the file. */
    g_assert_cmpint(pread(fd, &byte, 1, 12345), ==, 1);
    g_assert_cmpint(byte, ==, 'x');
    qemu_ram_munmap(ram, size);

    ram = qemu_ram_mmap(fd, size, false, &err);
    g_assert_no_error(err);
    g_assert_cmpint(ram[12345], ==, 'x');
    ram[12345] = 'y';
    /* Private: the file keeps its bytes. */
    g_assert_cmpint(pread(fd, &byte, 1, 12345), ==, 1);
    g_assert_cmpint(byte, ==, 'x');
    qemu_ram_munmap(ram, size);
    close(fd);

    g_assert_null(qemu_ram_mmap(9999, size, true, &err));
    g_assert_nonnull(err);
}

static char *make_tmp_dir(void)
{
    g_autoptr(GError) err = NULL;
    char *dir = g_dir_make_tmp("minivm-cutils-XXXXXX", &err);

    g_assert_no_error(err);
    return dir;
}

static void test_qemu_open_plain(void)
{
    g_autofree char *dir = make_tmp_dir();
    g_autofree char *path = g_build_filename(dir, "f", NULL);
    g_autofree char *missing = g_build_filename(dir, "nope", NULL);
    g_autofree char *expect = NULL;
    g_autoptr(GError) err = NULL;
    int fd;

    fd = qemu_open(path, O_CREAT | O_WRONLY, 0600, &err);
    g_assert_no_error(err);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(fcntl(fd, F_GETFD) & FD_CLOEXEC, ==, FD_CLOEXEC);
    g_assert_cmpint(qemu_close(fd), ==, 0);

    fd = qemu_open(missing, O_RDONLY, 0, &err);
    g_assert_cmpint(fd, ==, -1);
    expect =
        g_strdup_printf("Could not open '%s': %s", missing, g_strerror(ENOENT));
    g_assert_cmpstr(err->message, ==, expect);

    unlink(path);
    rmdir(dir);
}

static int hook_open_calls;
static int hook_close_calls;
static int hook_last_closed = -1;
static int hook_fd = -1;

static int fake_fdset_open(const char *path, int flags, GError **errp)
{
    hook_open_calls++;
    if (!g_str_equal(path, "/dev/fdset/7")) {
        error_setg(errp, "Failed to find fdset %s", path);
        return -1;
    }
    g_assert_cmpint(flags & O_ACCMODE, ==, O_RDONLY);
    return fcntl(hook_fd, F_DUPFD_CLOEXEC, 0);
}

static void fake_fdset_close(int fd)
{
    g_assert_cmpint(fcntl(fd, F_GETFD), >=, 0); /* still open */
    hook_close_calls++;
    hook_last_closed = fd;
}

static void test_qemu_open_fdset(void)
{
    g_autoptr(GError) err = NULL;
    int fd;

    /* No hook: an fdset path never reaches the file system. */
    qemu_open_set_fdset_hooks(NULL, NULL);
    fd = qemu_open("/dev/fdset/3", O_RDONLY, 0, &err);
    g_assert_cmpint(fd, ==, -1);
    g_assert_cmpstr(err->message, ==, "Failed to find fdset /dev/fdset/3");
    g_clear_error(&err);

    hook_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    qemu_open_set_fdset_hooks(fake_fdset_open, fake_fdset_close);
    fd = qemu_open("/dev/fdset/7", O_RDONLY, 0, &err);
    g_assert_no_error(err);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(fd, !=, hook_fd);
    g_assert_cmpint(hook_open_calls, ==, 1);

    /* The close hook sees the fd before it is closed. */
    g_assert_cmpint(qemu_close(fd), ==, 0);
    g_assert_cmpint(hook_close_calls, ==, 1);
    g_assert_cmpint(hook_last_closed, ==, fd);
    g_assert_cmpint(fcntl(fd, F_GETFD), ==, -1);

    fd = qemu_open("/dev/fdset/8", O_RDONLY, 0, &err);
    g_assert_cmpint(fd, ==, -1);
    g_assert_cmpstr(err->message, ==, "Failed to find fdset /dev/fdset/8");
    g_clear_error(&err);

    /* Other paths bypass the hook. */
    fd = qemu_open("/dev/null", O_RDONLY, 0, &err);
    g_assert_no_error(err);
    g_assert_cmpint(hook_open_calls, ==, 2);
    qemu_close(fd);

    qemu_open_set_fdset_hooks(NULL, NULL);
    close(hook_fd);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/cutils/buffer-is-zero/all-positions",
                    test_buffer_is_zero_all_positions);
    g_test_add_func("/cutils/buffer-is-zero/exact-alloc",
                    test_buffer_is_zero_exact_alloc);
    g_test_add_func("/cutils/buffer-is-zero/page", test_buffer_is_zero_page);
    g_test_add_func("/cutils/strtosz", test_strtosz_table);
    g_test_add_func("/cutils/size-to-str", test_size_to_str);
    g_test_add_func("/memalign/memalign", test_memalign);
    g_test_add_func("/memalign/ram-mmap-anon", test_ram_mmap_anon);
    g_test_add_func("/memalign/ram-mmap-fd", test_ram_mmap_fd);
    g_test_add_func("/osdep/qemu-open", test_qemu_open_plain);
    g_test_add_func("/osdep/qemu-open-fdset", test_qemu_open_fdset);
    return g_test_run();
}
