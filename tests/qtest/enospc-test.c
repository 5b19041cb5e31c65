/*
 * Full disks (issue 8, point 1). A save into a small file system that
 * fills part-way — plain stream, mapped-ram, mapped-ram + multifd, and
 * with direct-io — fails with an error naming ENOSPC ("No space left on
 * device"), the source goes on running with its dirty tracking intact,
 * and once there is room the same source saves again and the restored
 * guest passes the a-b checker with memory equal to the source's.
 *
 * Before that: a save whose bound cannot fit (mapped-ram, or the plain
 * stream of a stopped guest) is refused by `migrate` itself, with "Not
 * enough free space for the migration file: need N bytes, M available"
 * (minivm's extension; docs/devel/reliability.md gives the bound).
 *
 * The small file systems are a size-limited tmpfs, and for direct-io an
 * ext4 on a loop device (tmpfs may lack O_DIRECT). They are mounted in a
 * private mount namespace of this test (shared with the minivm processes
 * it starts), so they vanish with it whatever happens. Where namespaces,
 * mounts, mkfs.ext4 or losetup are not available, the tests are skipped
 * and say why.
 */
#include "qemu/osdep.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/statvfs.h>

#include "reliability-util.h"

#define ERR_ENOSPC "No space left on device"
/* What the filler leaves free: far less than the a-b guest's pages. */
#define LEFT_FREE (16 * MiB)
/* pc.ram, vga.vram, pc.bios */
static const uint64_t block_sizes[] = {128 * MiB, 8 * MiB, 256 * KiB};

static bool in_private_namespace;
static char *ns_skip_reason;

/*
 * Our own mount namespace, so nothing we mount outlives the test. Made in
 * main(), while the process has one thread (unshare refuses otherwise).
 */
static bool private_mounts(void)
{
    if (in_private_namespace) {
        return true;
    }
    if (ns_skip_reason) {
        return false;
    }
    if (unshare(CLONE_NEWNS) < 0) {
        ns_skip_reason = g_strdup_printf("cannot make a mount namespace "
                                         "(unshare: %s); run as root",
                                         g_strerror(errno));
        return false;
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
        ns_skip_reason = g_strdup_printf("cannot make mounts private: %s",
                                         g_strerror(errno));
        return false;
    }
    in_private_namespace = true;
    return true;
}

typedef struct SmallFs {
    char *dir;   /* the mount point */
    char *image; /* loop: the backing file */
} SmallFs;

static void small_fs_free(SmallFs *fs)
{
    if (!fs) {
        return;
    }
    if (fs->dir) {
        umount2(fs->dir, MNT_DETACH);
        rmdir(fs->dir);
    }
    if (fs->image) {
        unlink(fs->image);
    }
    g_free(fs->dir);
    g_free(fs->image);
    g_free(fs);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SmallFs, small_fs_free)

static SmallFs *small_fs_new(void)
{
    g_autoptr(GError) err = NULL;
    SmallFs *fs = g_new0(SmallFs, 1);

    fs->dir = g_dir_make_tmp("enospc-XXXXXX", &err);
    g_assert_no_error(err);
    return fs;
}

/* A tmpfs of size_mib MiB, or NULL after g_test_skip() saying why. */
static SmallFs *mount_tmpfs(unsigned size_mib)
{
    g_autoptr(SmallFs) fs = NULL;
    g_autofree char *opts = g_strdup_printf("size=%um", size_mib);

    if (!private_mounts()) {
        g_test_skip(ns_skip_reason);
        return NULL;
    }
    fs = small_fs_new();
    if (mount("tmpfs", fs->dir, "tmpfs", 0, opts) < 0) {
        g_autofree char *why = g_strdup_printf(
            "mount -t tmpfs not permitted: %s", g_strerror(errno));

        g_test_skip(why);
        return NULL;
    }
    return g_steal_pointer(&fs);
}

/* Runs argv; false with *why set when it cannot run or fails. */
static bool run_tool(const char *const *argv, char **out, char **why)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *err_text = NULL;
    int status;

    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL,
                      NULL, out, &err_text, &status, &err)) {
        *why = g_strdup_printf("%s: %s", argv[0], err->message);
        return false;
    }
    if (!g_spawn_check_wait_status(status, NULL)) {
        *why = g_strdup_printf("%s failed: %s", argv[0], err_text);
        return false;
    }
    return true;
}

/*
 * An ext4 of size_mib MiB on a loop device (O_DIRECT works there), or
 * NULL after g_test_skip(). The loop device is detached at once: the
 * kernel frees it when the file system is unmounted.
 */
static SmallFs *mount_loop_ext4(unsigned size_mib)
{
    g_autoptr(SmallFs) fs = NULL;
    g_autofree char *dev = NULL;
    g_autofree char *why = NULL;
    g_autofree char *mkfs_path = g_find_program_in_path("mkfs.ext4");
    g_autofree char *losetup_path = g_find_program_in_path("losetup");
    int fd;

    if (!mkfs_path || !losetup_path) {
        g_test_skip("direct-io needs a loop ext4 file system: mkfs.ext4 or "
                    "losetup is missing");
        return NULL;
    }
    if (!private_mounts()) {
        g_test_skip(ns_skip_reason);
        return NULL;
    }
    fs = small_fs_new();
    fs->image = g_strdup_printf("%s.img", fs->dir);
    fd = open(fs->image, O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0600);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, (off_t)size_mib * MiB), ==, 0);
    close(fd);
    {
        /* No journal and no reserved blocks: the space is all the test's. */
        const char *mkfs[] = {"mkfs.ext4", "-q",           "-F",
                              "-O",        "^has_journal", "-m",
                              "0",         fs->image,      NULL};
        const char *attach[] = {"losetup", "-f", "--show", fs->image, NULL};

        if (!run_tool(mkfs, NULL, &why) || !run_tool(attach, &dev, &why)) {
            g_autofree char *msg =
                g_strdup_printf("cannot make a loop ext4: %s", why);

            g_test_skip(msg);
            return NULL;
        }
    }
    g_strstrip(dev);
    if (mount(dev, fs->dir, "ext4", 0, NULL) < 0) {
        g_autofree char *msg =
            g_strdup_printf("cannot mount %s: %s", dev, g_strerror(errno));
        const char *detach[] = {"losetup", "-d", dev, NULL};

        run_tool(detach, NULL, &why);
        g_test_skip(msg);
        return NULL;
    }
    {
        const char *detach[] = {"losetup", "-d", dev, NULL};

        g_assert_true(run_tool(detach, NULL, &why));
    }
    return g_steal_pointer(&fs);
}

static uint64_t free_bytes(const char *dir)
{
    struct statvfs vfs;

    g_assert_cmpint(statvfs(dir, &vfs), ==, 0);
    return (uint64_t)vfs.f_bavail * vfs.f_frsize;
}

/* Takes all but `left` bytes of what is free in dir. */
static void fill_fs(const char *dir, uint64_t left)
{
    g_autofree char *path = g_build_filename(dir, "filler", NULL);
    uint64_t avail = free_bytes(dir);
    int fd;

    g_assert_cmpuint(avail, >, left);
    fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(posix_fallocate(fd, 0, avail - left), ==, 0);
    close(fd);
}

static void remove_file(const char *dir, const char *name)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);

    g_assert_cmpint(unlink(path), ==, 0);
}

/* --- the check before the save --- */

/* The bound docs/devel/reliability.md gives, for minivm's three blocks. */
static uint64_t expected_bound(bool mapped_ram)
{
    uint64_t total = 1 * MiB;

    for (size_t i = 0; i < G_N_ELEMENTS(block_sizes); i++) {
        uint64_t pages = block_sizes[i] / 4096;

        if (mapped_ram) {
            total += QEMU_ALIGN_UP(28 + DIV_ROUND_UP(pages, 64) * 8, MiB) +
                     block_sizes[i];
        } else {
            total += block_sizes[i] + pages * 8 + 256;
        }
    }
    return total;
}

/*
 * A save that cannot fit is refused by migrate (QMP and HMP) before
 * anything happens to the guest; the same save to a roomy place works.
 */
static void check_refused(RelMode mode, bool stopped)
{
    g_autoptr(SmallFs) fs = mount_tmpfs(64);
    QTestState *src;
    g_autofree char *uri = NULL;
    g_autofree char *msg = NULL;
    g_autofree char *hmp = NULL;
    g_autofree char *hmp_expected = NULL;
    g_autofree char *status = NULL;
    g_autofree char *roomy = NULL;

    if (!fs) {
        return;
    }
    src = rel_start_source(NULL, mode);
    if (stopped) {
        qtest_qmp_assert_success(src, "{'execute': 'stop'}");
    }
    uri = g_strdup_printf("file:%s/mig.img", fs->dir);
    msg = g_strdup_printf("Not enough free space for the migration file: "
                          "need %" PRIu64 " bytes, %" PRIu64 " available",
                          expected_bound(mode != MODE_PLAIN),
                          (uint64_t)(64 * MiB));
    qtest_qmp_expect_error(src, "GenericError", msg,
                           "{'execute': 'migrate', 'arguments': "
                           "{'uri': '%s'}}",
                           uri);
    hmp = qtest_hmp(src, "migrate %s", uri);
    hmp_expected = g_strdup_printf("Error: %s\r\n", msg);
    g_assert_cmpstr(hmp, ==, hmp_expected);

    /* Nothing started, nothing changed. */
    status = migrate_query_status(src);
    g_assert_cmpstr(status, ==, "none");
    rel_assert_source_sound(src, !stopped);

    roomy = g_strdup_printf("file:%s/mig.img", qtest_tmpdir(src));
    migrate_uri(src, roomy);
    migrate_wait_status(src, "completed", MIG_TIMEOUT);
    qtest_quit(src);
}

static void test_refused_mapped_ram(void)
{
    check_refused(MODE_MAPPED_RAM, false);
}

static void test_refused_plain_stopped(void)
{
    check_refused(MODE_PLAIN, true);
}

/* --- running out part-way --- */

/*
 * mode's save runs out of space part-way: the error names ENOSPC, the
 * source runs on with its memory whole. Then, with the space back (the
 * partial file and the filler removed, or a roomy directory for the plain
 * stream that never fits), the same source saves again and the restore
 * equals it.
 */
static void check_runs_out(RelMode mode)
{
    g_autoptr(SmallFs) fs = NULL;
    QTestState *src;
    g_autofree char *uri = NULL;
    g_autofree char *retry_uri = NULL;

    /*
     * The plain stream of a running guest has no bound, so it is not
     * checked: 64 MiB fill up on their own. The other modes pass the
     * check with 192 MiB, and a filler then takes the room away while the
     * migration is held back by max-bandwidth.
     */
    if (mode == MODE_DIO) {
        fs = mount_loop_ext4(192);
    } else {
        fs = mount_tmpfs(mode == MODE_PLAIN ? 64 : 192);
    }
    if (!fs) {
        return;
    }
    src = rel_start_source(NULL, mode);
    uri = g_strdup_printf("file:%s/mig.img", fs->dir);
    if (mode == MODE_PLAIN) {
        migrate_uri(src, uri);
    } else {
        migrate_set_parameter(src, "max-bandwidth", "8388608");
        migrate_uri(src, uri);
        migrate_wait_status(src, "active", MIG_TIMEOUT);
        fill_fs(fs->dir, LEFT_FREE);
        migrate_set_parameter(src, "max-bandwidth", "0");
    }
    migrate_wait_status(src, "failed", MIG_TIMEOUT);
    rel_assert_error_contains(src, ERR_ENOSPC, NULL);
    {
        g_autofree char *desc = migrate_error_desc(src);

        g_test_message("%s: %s", rel_mode_name(mode), desc);
    }
    rel_assert_source_sound(src, true);

    if (mode == MODE_PLAIN) {
        retry_uri = g_strdup_printf("file:%s/mig.img", qtest_tmpdir(src));
    } else {
        remove_file(fs->dir, "filler");
        remove_file(fs->dir, "mig.img");
        retry_uri = g_strdup(uri);
    }
    migrate_uri(src, retry_uri);
    migrate_wait_status(src, "completed", MIG_TIMEOUT);
    rel_load_and_check(src, retry_uri, mode);
    qtest_quit(src);
}

static void test_runs_out(gconstpointer mode)
{
    check_runs_out(GPOINTER_TO_INT(mode));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    private_mounts(); /* a failure is reported by each test that needs it */
    g_test_add_func("/enospc/refused/mapped-ram", test_refused_mapped_ram);
    g_test_add_func("/enospc/refused/plain-stopped",
                    test_refused_plain_stopped);
    for (RelMode m = MODE_PLAIN; m <= MODE_DIO; m++) {
        g_autofree char *path =
            g_strdup_printf("/enospc/runs-out/%s", rel_mode_name(m));

        g_test_add_data_func(path, GINT_TO_POINTER(m), test_runs_out);
    }
    return g_test_run();
}
