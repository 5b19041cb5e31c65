/*
 * Saving a running guest into a file, and the checks `migrate` makes on
 * the target file before anything is written (helper "live").
 *
 * - /live-save/converge: a guest dirtying 64 MiB/s saved live with
 *   mapped-ram + multifd (2 channels) under the default downtime-limit:
 *   the migration converges by itself (no stop, no limit change), the
 *   file stays within RAM + 1 MiB per block + device state however many
 *   passes it took, and it loads back into the same memory. The downtime
 *   and pass count are printed (never asserted: they are timings).
 * - /live-save/free-space/...: a save refused for lack of space leaves an
 *   existing target file exactly as it was (it is no longer truncated
 *   first) and leaves no new file behind; an old file the save will
 *   replace counts as space (its blocks are freed by the truncation).
 *   These need a small file system: a tmpfs mounted in a private mount
 *   namespace (root); without it they are skipped, saying why.
 */
#include "qemu/osdep.h"

#include <sched.h>
#include <sys/mount.h>

#include "libqtest.h"
#include "migration-helpers.h"

/* pc.ram + vga.vram + pc.bios */
#define RAM_TOTAL(ram) ((ram) + 8 * MiB + 256 * KiB)
#define RAM_BLOCKS     3
/* Device state, VMDESCRIPTION and framing: a few KiB measured. */
#define DEVICE_STATE_ALLOWANCE (64 * KiB)
#define MIG_TIMEOUT            120

#define LIVE_RAM  (256 * MiB)
#define LIVE_ARGS "-m 256M -workload dirty,rate=64M,wss=64M"

/* --- helpers --- */

/* A figure of query-migrate (top level, or "ram" when ram is true). */
static int64_t migrate_figure(QTestState *s, bool ram, const char *name)
{
    g_autoptr(JsonNode) ret =
        qtest_qmp_assert_success_ref(s, "{'execute': 'query-migrate'}");
    JsonObject *info = json_node_get_object(ret);

    if (ram) {
        info = qtest_json_get_object(info, "ram");
    }
    return qtest_json_get_int(info, name);
}

static struct stat stat_of(const char *path)
{
    struct stat st;

    g_assert_cmpint(stat(path, &st), ==, 0);
    return st;
}

/* --- convergence --- */

static void test_converge(void)
{
    QTestState *src = qtest_init(LIVE_ARGS);
    QTestState *dst;
    g_autofree char *path = mig_tmp_path(src, "live.img");
    g_autofree char *uri = g_strdup_printf("file:%s", path);
    g_autofree char *status = NULL;
    uint64_t bound =
        RAM_TOTAL(LIVE_RAM) + RAM_BLOCKS * MiB + DEVICE_STATE_ALLOWANCE;
    int64_t passes, downtime, total, transferred;
    struct stat st;

    mig_wait_guest_writes(src);
    mig_set_multifd(src, 2, true);
    migrate_set_parameter(src, "max-bandwidth", "0");
    migrate_set_parameter(src, "downtime-limit", "300");
    migrate_uri(src, uri);
    /* Converging is the point: nobody stops the guest or lifts a limit. */
    migrate_wait_status(src, "completed", qtest_scale_timeout(MIG_TIMEOUT));
    status = qtest_query_status(src);
    g_assert_cmpstr(status, ==, "postmigrate");

    passes = migrate_figure(src, true, "dirty-sync-count");
    transferred = migrate_figure(src, true, "transferred");
    downtime = migrate_figure(src, false, "downtime");
    total = migrate_figure(src, false, "total-time");
    st = stat_of(path);
    g_test_message("live save of %s, mapped-ram + multifd 2: %" PRId64
                   " passes, %" PRId64 " bytes written, total %" PRId64
                   " ms, downtime %" PRId64 " ms; file %" PRIu64
                   " bytes (%" PRIu64 " allocated), bound %" PRIu64,
                   LIVE_ARGS, passes, transferred, total, downtime,
                   (uint64_t)st.st_size, (uint64_t)st.st_blocks * 512, bound);
    /* The guest ran during the save: at least one pass after the first. */
    g_assert_cmpint(passes, >=, 2);
    g_assert_cmpint(downtime, >=, 0);
    g_assert_cmpint(downtime, <=, total);
    g_assert_cmpuint(st.st_size, <=, bound);
    g_assert_cmpuint((uint64_t)st.st_blocks * 512, <=, bound);

    dst = qtest_init_incoming("defer", "-m 256M -workload dirty,rate=64M,"
                                       "wss=64M -S");
    mig_set_multifd(dst, 2, true);
    qtest_qmp_assert_success(
        dst, "{'execute': 'migrate-incoming', 'arguments': {'uri': '%s'}}",
        uri);
    migrate_wait_status(dst, "completed", qtest_scale_timeout(MIG_TIMEOUT));
    g_assert_cmpuint(mig_assert_same_ram(src, dst), ==, RAM_BLOCKS);
    qtest_quit(dst);
    qtest_quit(src);
}

/* --- free-space checks on an existing or new target --- */

static bool in_private_namespace;
static char *ns_skip_reason;

/* Called from main() while the process has one thread (unshare needs it). */
static void make_private_mounts(void)
{
    if (unshare(CLONE_NEWNS) < 0) {
        ns_skip_reason = g_strdup_printf("no mount namespace (unshare: %s); "
                                         "run as root",
                                         g_strerror(errno));
        return;
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
        ns_skip_reason = g_strdup_printf("cannot make mounts private: %s",
                                         g_strerror(errno));
        return;
    }
    in_private_namespace = true;
}

/* A tmpfs of size_mib MiB (umount and rmdir with tmpfs_free), or NULL. */
static char *tmpfs_new(unsigned size_mib)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *opts = g_strdup_printf("size=%um", size_mib);
    g_autofree char *dir = NULL;

    if (!in_private_namespace) {
        g_test_skip(ns_skip_reason);
        return NULL;
    }
    dir = g_dir_make_tmp("live-save-XXXXXX", &err);
    g_assert_no_error(err);
    if (mount("tmpfs", dir, "tmpfs", 0, opts) < 0) {
        g_autofree char *why =
            g_strdup_printf("mount -t tmpfs: %s", g_strerror(errno));

        rmdir(dir);
        g_test_skip(why);
        return NULL;
    }
    return g_steal_pointer(&dir);
}

static void tmpfs_free(char *dir)
{
    g_assert_cmpint(umount2(dir, MNT_DETACH), ==, 0);
    rmdir(dir);
    g_free(dir);
}

/* Writes len bytes of a pattern (no zero pages: all allocated). */
static void write_pattern_file(const char *path, uint64_t len, uint8_t seed)
{
    g_autofree uint8_t *buf = g_malloc(MiB);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    g_assert_cmpint(fd, >=, 0);
    for (size_t i = 0; i < MiB; i++) {
        buf[i] = (uint8_t)(i * 7 + seed) | 1;
    }
    for (uint64_t done = 0; done < len;) {
        size_t n = MIN(len - done, MiB);

        g_assert_cmpint(write(fd, buf, n), ==, (ssize_t)n);
        done += n;
    }
    g_assert_cmpint(close(fd), ==, 0);
}

static char *file_sha256(const char *path)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *data = NULL;
    gsize len;

    g_assert_true(g_file_get_contents(path, &data, &len, &err));
    return g_compute_checksum_for_data(G_CHECKSUM_SHA256, (guchar *)data, len);
}

/* `migrate` to uri, which must be refused: the error's description. */
static char *migrate_refused(QTestState *src, const char *uri)
{
    g_autoptr(JsonObject) resp = qtest_qmp(
        src, "{'execute': 'migrate', 'arguments': {'uri': '%s'}}", uri);
    JsonObject *error;

    g_assert_true(json_object_has_member(resp, "error"));
    error = json_object_get_object_member(resp, "error");
    return g_strdup(json_object_get_string_member(error, "desc"));
}

/*
 * A 64 MiB tmpfs, a 24 MiB old save behind a 4 KiB manager header in it,
 * and a 128 MiB guest whose mapped-ram bound (about 140 MiB) fits neither
 * with nor without the old file's space: refused, and the file -- header,
 * old stream, size, allocation -- is exactly as it was.
 */
static void test_refused_keeps_file(void)
{
    g_autofree char *dir = tmpfs_new(64);
    g_autofree char *path = NULL;
    g_autofree char *uri = NULL;
    g_autofree char *before = NULL;
    g_autofree char *after = NULL;
    g_autofree char *status = NULL;
    struct stat st0, st1;
    g_autofree char *desc = NULL;
    QTestState *src;

    if (!dir) {
        return;
    }
    path = g_build_filename(dir, "save.img", NULL);
    uri = g_strdup_printf("file:%s,offset=4096", path);
    write_pattern_file(path, 24 * MiB + 4096, 0x5a);
    before = file_sha256(path);
    st0 = stat_of(path);

    src = qtest_init("-m 128M -workload idle");
    mig_set_multifd(src, 2, true);
    desc = migrate_refused(src, uri);
    g_test_message("refused: %s", desc);
    g_assert_nonnull(
        strstr(desc, "Not enough free space for the migration file: need "));
    status = migrate_query_status(src);
    g_assert_cmpstr(status, ==, "none");

    after = file_sha256(path);
    st1 = stat_of(path);
    g_assert_cmpstr(after, ==, before);
    g_assert_cmpuint(st1.st_size, ==, st0.st_size);
    g_assert_cmpuint(st1.st_blocks, ==, st0.st_blocks);
    g_assert_cmpint(st1.st_mtim.tv_sec, ==, st0.st_mtim.tv_sec);
    g_assert_cmpint(st1.st_mtim.tv_nsec, ==, st0.st_mtim.tv_nsec);
    qtest_quit(src);
    tmpfs_free(g_steal_pointer(&dir));
}

/* A refused save into a path that did not exist leaves nothing there. */
static void test_refused_new_file(void)
{
    g_autofree char *dir = tmpfs_new(32);
    g_autofree char *path = NULL;
    g_autofree char *uri = NULL;
    QTestState *src;

    if (!dir) {
        return;
    }
    path = g_build_filename(dir, "new.img", NULL);
    uri = g_strdup_printf("file:%s", path);
    src = qtest_init("-m 128M -workload idle");
    mig_set_multifd(src, 2, true);
    g_free(migrate_refused(src, uri));
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
    qtest_quit(src);
    tmpfs_free(g_steal_pointer(&dir));
}

/*
 * A 160 MiB tmpfs holding a 100 MiB old save: 60 MiB free is less than
 * the 128 MiB guest's bound (about 140 MiB), but the old file is about to
 * be truncated away, so the save is accepted; it completes, the file
 * keeps its 4 KiB header and loads back into the same memory.
 */
static void test_old_file_counts(void)
{
    g_autofree char *dir = tmpfs_new(160);
    g_autofree char *path = NULL;
    g_autofree char *uri = NULL;
    g_autofree uint8_t *expect = NULL;
    g_autofree char *data = NULL;
    g_autoptr(GError) err = NULL;
    QTestState *src, *dst;
    gsize len;

    if (!dir) {
        return;
    }
    path = g_build_filename(dir, "save.img", NULL);
    uri = g_strdup_printf("file:%s,offset=4096", path);
    write_pattern_file(path, 100 * MiB, 0x33);

    src = qtest_init("-m 128M -workload idle");
    mig_set_multifd(src, 2, true);
    migrate_uri(src, uri);
    migrate_wait_status(src, "completed", qtest_scale_timeout(MIG_TIMEOUT));

    /* The manager's header (the old file's first 4 KiB) is untouched. */
    g_assert_true(g_file_get_contents(path, &data, &len, &err));
    g_assert_cmpuint(len, >, 4096);
    /* Sparse: the idle guest's zero pages are holes, the old data gone. */
    g_assert_cmpuint((uint64_t)stat_of(path).st_blocks * 512, <, 16 * MiB);
    expect = g_malloc(4096);
    for (size_t i = 0; i < 4096; i++) {
        expect[i] = (uint8_t)(i * 7 + 0x33) | 1;
    }
    g_assert_cmpint(memcmp(data, expect, 4096), ==, 0);

    dst = qtest_init_incoming("defer", "-m 128M -workload idle -S");
    mig_set_multifd(dst, 2, true);
    qtest_qmp_assert_success(
        dst, "{'execute': 'migrate-incoming', 'arguments': {'uri': '%s'}}",
        uri);
    migrate_wait_status(dst, "completed", qtest_scale_timeout(MIG_TIMEOUT));
    g_assert_cmpuint(mig_assert_same_ram(src, dst), ==, RAM_BLOCKS);
    qtest_quit(dst);
    qtest_quit(src);
    tmpfs_free(g_steal_pointer(&dir));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    make_private_mounts(); /* each test that needs it says why it skips */
    g_test_add_func("/live-save/converge/mapped-ram-multifd", test_converge);
    g_test_add_func("/live-save/free-space/refused-keeps-file",
                    test_refused_keeps_file);
    g_test_add_func("/live-save/free-space/refused-new-file",
                    test_refused_new_file);
    g_test_add_func("/live-save/free-space/old-file-counts",
                    test_old_file_counts);
    return g_test_run();
}
