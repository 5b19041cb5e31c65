/*
 * fdsets and direct-io end to end (issue 6): the management flow of
 * spec/monitor.md, in which the manager (libvirt's virDomainSave) opens the
 * save file itself, writes its own header, passes descriptors with add-fd
 * (or -add-fd) and migrates to file:/dev/fdset/ID,offset=HEADER_SIZE.
 *
 * Real minivm processes save a guest through fdsets (precopy, and
 * mapped-ram + multifd with and without an O_DIRECT descriptor), and load
 * it in another process whose memory must equal the source's and pass the
 * a-b checker; the bytes before the offset stay intact. After remove-fd the
 * set is gone from query-fdsets and /proc/PID/fd holds nothing from it. The
 * example client contrib/save-restore-client.py ($SAVE_RESTORE_CLIENT) runs
 * the whole flow against minivm processes. Every refusal message of the
 * flow is asserted through QMP and HMP.
 *
 * Files live under $MINIVM_TEST_DIR, else $FDSET_TEST_DIR_DEFAULT (a
 * directory in the build tree, on a real disk): direct I/O needs a file
 * system that has it, which /tmp may not be. The direct-io cases are
 * skipped, saying why, where that directory has no O_DIRECT.
 */
#include "qemu/osdep.h"

#include <dirent.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/statfs.h>

#include "migration-helpers.h"
#include "qemu/dio.h"
#include "qemu/fdopen.h"

#define AB_ARGS      "-m 128M -workload a-b"
#define RAM_SIZE     (128 * MiB)
#define HEADER_SIZE  4096
#define CLIENT_MAGIC "MinivmSaveImage\n"
#define NOTE_JSON    "\"note\": \"fdset-test\""
#define ERR_EXTRA_FDS                                                          \
    "Migration requires a transport that allows for extra "                    \
    "fds (e.g. file)"

/* --- test directory --- */

static const char *test_base_dir(void)
{
    const char *dir = g_getenv("MINIVM_TEST_DIR");

    if (!dir || !*dir) {
        dir = g_getenv("FDSET_TEST_DIR_DEFAULT");
    }
    if (!dir || !*dir) {
        dir = ".";
    }
    return dir;
}

/* A fresh directory for one test; remove it with dir_remove(). */
static char *dir_new(void)
{
    g_autofree char *tmpl =
        g_build_filename(test_base_dir(), "fdset-test-XXXXXX", NULL);

    g_assert_cmpint(g_mkdir_with_parents(test_base_dir(), 0700), ==, 0);
    if (!g_mkdtemp(tmpl)) {
        g_error("cannot create a directory under %s: %s", test_base_dir(),
                g_strerror(errno));
    }
    return g_steal_pointer(&tmpl);
}

static void dir_remove(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    g_assert_nonnull(d);
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            g_autofree char *p = g_build_filename(dir, e->d_name, NULL);

            unlink(p);
        }
    }
    closedir(d);
    rmdir(dir);
}

static bool is_memory_fs(const char *dir)
{
    struct statfs sfs;

    return statfs(dir, &sfs) == 0 &&
           (sfs.f_type == TMPFS_MAGIC || sfs.f_type == RAMFS_MAGIC);
}

/*
 * Whether minivm will do direct I/O in dir: the same judgement it makes
 * (util/dio.c). On false, *why says why, for g_test_skip.
 */
static bool dir_has_dio(const char *dir, char **why)
{
    g_autofree char *path = g_build_filename(dir, "dio-probe", NULL);
    g_autoptr(GError) err = NULL;
    int fd;

    fd = qemu_open_direct(path, O_CREAT | O_WRONLY, 0600, TARGET_PAGE_SIZE,
                          NULL, &err);
    unlink(path);
    if (fd < 0) {
        *why = g_strdup_printf("no usable O_DIRECT in %s (%s); set "
                               "MINIVM_TEST_DIR to a disk-backed directory",
                               dir, err->message);
        return false;
    }
    qemu_close(fd);
    return true;
}

/* --- files --- */

/* open() with O_CLOEXEC, so VMs started later do not inherit it. */
static int open_file(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC, 0600);

    if (fd < 0) {
        g_error("open %s (flags 0x%x): %s", path, flags, g_strerror(errno));
    }
    return fd;
}

/* The management header: HEADER_SIZE bytes of 'X' at the start. */
static void write_header(const char *path)
{
    char buf[HEADER_SIZE];
    int fd = open_file(path, O_CREAT | O_TRUNC | O_WRONLY);

    memset(buf, 'X', sizeof(buf));
    g_assert_cmpint(write(fd, buf, sizeof(buf)), ==, sizeof(buf));
    close(fd);
}

/* The header is all 'X' and the stream ("QEVM") starts right after it. */
static void assert_header_intact(const char *path)
{
    char buf[HEADER_SIZE + 4];
    int fd = open_file(path, O_RDONLY);

    g_assert_cmpint(read(fd, buf, sizeof(buf)), ==, sizeof(buf));
    close(fd);
    for (int i = 0; i < HEADER_SIZE; i++) {
        if (buf[i] != 'X') {
            g_error("header byte %d is 0x%02x, not 'X'", i, (uint8_t)buf[i]);
        }
    }
    g_assert_cmpmem(buf + HEADER_SIZE, 4, "QEVM", 4);
}

/*
 * Share of the file's data pages that sit in the page cache (mincore):
 * direct I/O leaves the page area out of it, buffered I/O puts it in.
 */
static double page_cache_share(const char *path)
{
    int fd = open_file(path, O_RDONLY);
    struct stat st;
    uint64_t pages, resident = 0;
    unsigned char *vec;
    void *map;

    g_assert_cmpint(fstat(fd, &st), ==, 0);
    pages = DIV_ROUND_UP((uint64_t)st.st_size, TARGET_PAGE_SIZE);
    map = mmap(NULL, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    g_assert_true(map != MAP_FAILED);
    vec = g_malloc(pages);
    g_assert_cmpint(mincore(map, st.st_size, vec), ==, 0);
    for (uint64_t i = 0; i < pages; i++) {
        resident += vec[i] & 1;
    }
    g_free(vec);
    munmap(map, st.st_size);
    close(fd);
    /* Holes are never cached: compare with what the file really holds. */
    return (double)resident * TARGET_PAGE_SIZE /
           MAX((uint64_t)st.st_blocks * 512, 1);
}

/* --- descriptors seen from /proc --- */

/* fd number -> link target of every descriptor the process holds. */
static GHashTable *proc_fds(pid_t pid)
{
    g_autofree char *dir = g_strdup_printf("/proc/%d/fd", (int)pid);
    GHashTable *fds =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    DIR *d = opendir(dir);
    struct dirent *e;

    g_assert_nonnull(d);
    while ((e = readdir(d))) {
        g_autofree char *link = NULL;
        char *target;

        if (e->d_name[0] == '.') {
            continue;
        }
        link = g_build_filename(dir, e->d_name, NULL);
        target = g_file_read_link(link, NULL);
        if (target) {
            g_hash_table_insert(fds, g_strdup(e->d_name), target);
        }
    }
    closedir(d);
    return fds;
}

/* No descriptor of the process refers to path. */
static void assert_no_fd_to(QTestState *s, const char *path)
{
    g_autoptr(GHashTable) fds = proc_fds(qtest_pid(s));
    g_autofree char *real = realpath(path, NULL);
    GHashTableIter iter;
    gpointer num, target;

    g_assert_nonnull(real);
    g_hash_table_iter_init(&iter, fds);
    while (g_hash_table_iter_next(&iter, &num, &target)) {
        if (!strcmp(target, real)) {
            g_error("minivm (pid %d) still holds fd %s -> %s",
                    (int)qtest_pid(s), (char *)num, (char *)target);
        }
    }
}

/* The process holds exactly the descriptors it held before. */
static void assert_same_fds(QTestState *s, GHashTable *before)
{
    g_autoptr(GHashTable) now = proc_fds(qtest_pid(s));
    GHashTableIter iter;
    gpointer num, target;

    g_hash_table_iter_init(&iter, now);
    while (g_hash_table_iter_next(&iter, &num, &target)) {
        if (g_strcmp0(g_hash_table_lookup(before, num), target)) {
            g_error("minivm (pid %d) holds a new descriptor: fd %s -> %s",
                    (int)qtest_pid(s), (char *)num, (char *)target);
        }
    }
    g_assert_cmpuint(g_hash_table_size(now), ==, g_hash_table_size(before));
}

/* --- QMP helpers --- */

/* add-fd of one descriptor into set (or a new one when set < 0). */
static int64_t add_fd(QTestState *s, int fd, int64_t set, const char *opaque)
{
    g_autofree char *args =
        set < 0 ? g_strdup_printf("{'opaque': '%s'}", opaque)
                : g_strdup_printf("{'fdset-id': %" PRId64 ", 'opaque': '%s'}",
                                  set, opaque);
    JsonObject *reply = qtest_qmp_fds(
        s, &fd, 1, "{'execute': 'add-fd', 'arguments': %s}", args);
    JsonObject *ret;
    int64_t id;

    if (!json_object_has_member(reply, "return")) {
        g_autofree char *text = qtest_json_to_string(reply);

        g_error("add-fd failed: %s", text);
    }
    ret = json_object_get_object_member(reply, "return");
    id = qtest_json_get_int(ret, "fdset-id");
    if (set >= 0) {
        g_assert_cmpint(id, ==, set);
    }
    g_assert_cmpint(qtest_json_get_int(ret, "fd"), >, STDERR_FILENO);
    json_object_unref(reply);
    return id;
}

/* Opens path with flags and passes it into set; our copy is closed. */
static void pass_file(QTestState *s, const char *path, int flags, int64_t set,
                      const char *opaque)
{
    int fd = open_file(path, flags);

    add_fd(s, fd, set, opaque);
    close(fd);
}

static void remove_fdset(QTestState *s, int64_t set)
{
    qtest_qmp_assert_success(
        s, "{'execute': 'remove-fd', 'arguments': {'fdset-id': %" PRId64 "}}",
        set);
}

static void assert_no_fdsets(QTestState *s)
{
    g_autoptr(JsonNode) ret =
        qtest_qmp_assert_success_ref(s, "{'execute': 'query-fdsets'}");

    g_assert_cmpuint(json_array_get_length(json_node_get_array(ret)), ==, 0);
}

/* query-fdsets lists set with n members. */
static void assert_fdset_size(QTestState *s, int64_t set, guint n)
{
    g_autoptr(JsonNode) ret =
        qtest_qmp_assert_success_ref(s, "{'execute': 'query-fdsets'}");
    JsonArray *sets = json_node_get_array(ret);

    for (guint i = 0; i < json_array_get_length(sets); i++) {
        JsonObject *info = json_array_get_object_element(sets, i);

        if (qtest_json_get_int(info, "fdset-id") == set) {
            g_assert_cmpuint(json_array_get_length(
                                 json_object_get_array_member(info, "fds")),
                             ==, n);
            return;
        }
    }
    g_error("fdset %" PRId64 " is not listed", set);
}

static void set_multifd_file(QTestState *s, int channels, bool dio)
{
    mig_set_multifd(s, channels, true);
    migrate_set_parameter(s, "direct-io", dio ? "true" : "false");
}

/* The command fails with desc through QMP, and through HMP as "Error: ". */
static void expect_migrate_refused(QTestState *s, const char *uri,
                                   const char *desc)
{
    g_autofree char *want = g_strdup_printf("Error: %s\r\n", desc);
    g_autofree char *hmp = NULL;

    qtest_qmp_expect_error(s, "GenericError", desc,
                           "{'execute': 'migrate', 'arguments': {'uri': '%s'}}",
                           uri);
    hmp = qtest_hmp(s, "migrate %s", uri);
    g_assert_cmpstr(hmp, ==, want);
}

/* migrate is accepted, then the migration fails in setup with desc. */
static void expect_migration_fails(QTestState *s, const char *uri,
                                   const char *desc)
{
    g_autofree char *got = NULL;

    migrate_uri(s, uri);
    migrate_wait_status(s, "failed", MIG_TIMEOUT);
    got = migrate_error_desc(s);
    g_assert_cmpstr(got, ==, desc);
}

/* --- guests --- */

static QTestState *start_source(void)
{
    return mig_start_source(AB_ARGS);
}

/* A source whose migration failed is still running its guest. */
static void assert_source_runs(QTestState *src)
{
    g_autofree char *before = qtest_serial_read(src);
    g_autofree char *want = g_strdup_printf("%sB", before);

    mig_assert_runstate(src, "running");
    qtest_wait_serial(src, want, 60);
}

/* --- precopy/file/offset/fdset --- */

/*
 * A running guest saved through an fdset with the plain stream; the
 * destination takes its descriptor from the command line (-add-fd).
 */
static void test_precopy_offset_fdset(void)
{
    g_autofree char *dir = dir_new();
    g_autofree char *path = g_build_filename(dir, "precopy.mig", NULL);
    g_autofree char *uri =
        g_strdup_printf("file:/dev/fdset/1,offset=%d", HEADER_SIZE);
    g_autofree char *dst_args = NULL;
    g_autoptr(GHashTable) src_fds = NULL;
    g_autoptr(GHashTable) dst_fds = NULL;
    QTestState *src, *dst;
    int fd;

    src = start_source();
    write_header(path);
    src_fds = proc_fds(qtest_pid(src));
    pass_file(src, path, O_WRONLY, 1, "save");
    assert_fdset_size(src, 1, 1);
    migrate_uri(src, uri);
    migrate_wait_status(src, "completed", MIG_TIMEOUT);
    remove_fdset(src, 1);
    assert_no_fdsets(src);
    assert_no_fd_to(src, path);
    assert_same_fds(src, src_fds);
    assert_header_intact(path);

    /* -add-fd: the descriptor is inherited, so no O_CLOEXEC here. */
    fd = open(path, O_RDONLY);
    g_assert_cmpint(fd, >, STDERR_FILENO);
    dst_args =
        g_strdup_printf(AB_ARGS " -S -add-fd fd=%d,set=1,opaque=restore", fd);
    dst = mig_start_destination(dst_args);
    close(fd);
    {
        g_autoptr(JsonNode) ret =
            qtest_qmp_assert_success_ref(dst, "{'execute': 'query-fdsets'}");
        JsonObject *set =
            json_array_get_object_element(json_node_get_array(ret), 0);
        JsonObject *member = json_array_get_object_element(
            json_object_get_array_member(set, "fds"), 0);

        g_assert_cmpint(qtest_json_get_int(set, "fdset-id"), ==, 1);
        g_assert_cmpint(qtest_json_get_int(member, "fd"), ==, fd);
        g_assert_cmpstr(qtest_json_get_string(member, "opaque"), ==, "restore");
    }
    dst_fds = proc_fds(qtest_pid(dst));
    migrate_incoming_uri_keep(dst, uri);
    migrate_wait_status(dst, "completed", MIG_TIMEOUT);
    mig_assert_runstate(dst, "paused");
    mig_assert_same_ram(src, dst);
    mig_assert_ab_ok(dst, RAM_SIZE);
    remove_fdset(dst, 1);
    assert_no_fdsets(dst);
    assert_no_fd_to(dst, path);
    {
        g_autofree char *num = g_strdup_printf("%d", fd);

        /* -add-fd's own descriptor: remove-fd closed it. */
        g_hash_table_remove(dst_fds, num);
    }
    assert_same_fds(dst, dst_fds);
    assert_header_intact(path);
    mig_cont(dst);
    mig_wait_alive(dst);

    qtest_quit(src);
    qtest_quit(dst);
    dir_remove(dir);
}

/* --- multifd/file/mapped-ram/fdset[/dio] --- */

/*
 * Two descriptors per side in one set. Without direct-io the second one
 * has the other access mode, so the opens must pick by access mode; with
 * it, the second is the O_DIRECT one the channels must take.
 */
static void run_multifd_fdset(bool dio)
{
    g_autofree char *dir = dir_new();
    g_autofree char *path = g_build_filename(dir, "multifd.mig", NULL);
    g_autofree char *uri =
        g_strdup_printf("file:/dev/fdset/1,offset=%d", HEADER_SIZE);
    g_autofree char *why = NULL;
    g_autoptr(GHashTable) src_fds = NULL;
    g_autoptr(GHashTable) dst_fds = NULL;
    QTestState *src, *dst;
    double cached;

    if (dio && !dir_has_dio(dir, &why)) {
        g_test_skip(why);
        dir_remove(dir);
        return;
    }
    src = start_source();
    dst = mig_start_destination(AB_ARGS " -S");
    set_multifd_file(src, 4, dio);
    set_multifd_file(dst, 4, dio);
    write_header(path);

    src_fds = proc_fds(qtest_pid(src));
    pass_file(src, path, O_WRONLY, 1, "plain");
    pass_file(src, path, dio ? O_WRONLY | O_DIRECT : O_RDONLY, 1, "second");
    assert_fdset_size(src, 1, 2);
    migrate_uri(src, uri);
    migrate_wait_status(src, "completed", MIG_TIMEOUT);
    remove_fdset(src, 1);
    assert_no_fdsets(src);
    assert_no_fd_to(src, path);
    assert_same_fds(src, src_fds);
    assert_header_intact(path);
    cached = page_cache_share(path);
    g_test_message("after the save %.1f%% of the file is in the page cache",
                   cached * 100);
    if (dio) {
        /* The page area went around the cache; headers and bitmaps not. */
        g_assert_cmpfloat(cached, <, 0.10);
    }

    dst_fds = proc_fds(qtest_pid(dst));
    pass_file(dst, path, O_RDONLY, 1, "plain");
    pass_file(dst, path, dio ? O_RDONLY | O_DIRECT : O_WRONLY, 1, "second");
    migrate_incoming_uri_keep(dst, uri);
    migrate_wait_status(dst, "completed", MIG_TIMEOUT);
    mig_assert_runstate(dst, "paused");
    mig_assert_same_ram(src, dst);
    mig_assert_ab_ok(dst, RAM_SIZE);
    remove_fdset(dst, 1);
    assert_no_fdsets(dst);
    assert_no_fd_to(dst, path);
    assert_same_fds(dst, dst_fds);
    if (dio) {
        /* Nor did the load fill the cache. */
        g_assert_cmpfloat(page_cache_share(path), <, 0.10);
    }
    assert_header_intact(path);
    mig_cont(dst);
    mig_wait_alive(dst);

    qtest_quit(src);
    qtest_quit(dst);
    dir_remove(dir);
}

static void test_multifd_fdset(void)
{
    run_multifd_fdset(false);
}

static void test_multifd_fdset_dio(void)
{
    run_multifd_fdset(true);
}

/* --- multifd/file/mapped-ram/dio (a path, no fdset) --- */

static void test_multifd_dio(void)
{
    g_autofree char *dir = dir_new();
    g_autofree char *path = g_build_filename(dir, "dio.mig", NULL);
    g_autofree char *uri = g_strdup_printf("file:%s", path);
    g_autofree char *why = NULL;
    QTestState *src, *dst;

    if (!dir_has_dio(dir, &why)) {
        g_test_skip(why);
        dir_remove(dir);
        return;
    }
    src = start_source();
    dst = mig_start_destination(AB_ARGS " -S");
    set_multifd_file(src, 2, true);
    set_multifd_file(dst, 2, true);
    migrate_uri(src, uri);
    migrate_wait_status(src, "completed", MIG_TIMEOUT);
    assert_no_fd_to(src, path);
    g_assert_cmpfloat(page_cache_share(path), <, 0.10);
    migrate_incoming_uri_keep(dst, uri);
    migrate_wait_status(dst, "completed", MIG_TIMEOUT);
    mig_assert_same_ram(src, dst);
    mig_assert_ab_ok(dst, RAM_SIZE);
    assert_no_fd_to(dst, path);
    mig_cont(dst);
    mig_wait_alive(dst);

    qtest_quit(src);
    qtest_quit(dst);
    dir_remove(dir);
}

/* --- refusals --- */

/* Which descriptor each open takes, shown by what is missing. */
static void test_refusals_fdset(void)
{
    g_autofree char *dir = dir_new();
    g_autofree char *path = g_build_filename(dir, "refused.mig", NULL);
    g_autofree char *why = NULL;
    g_autofree char *want = NULL;
    QTestState *src = start_source();

    expect_migrate_refused(src, "file:/dev/fdset/7",
                           "Failed to find fdset /dev/fdset/7");

    /* A read-only descriptor cannot be the stream of a save. */
    write_header(path);
    pass_file(src, path, O_RDONLY, 1, "ro");
    want = g_strdup_printf(
        "Failed to find file descriptor with matching flags=0x%x",
        O_CREAT | O_WRONLY);
    expect_migrate_refused(src, "file:/dev/fdset/1,offset=4096", want);
    remove_fdset(src, 1);
    assert_no_fdsets(src);

    /* direct-io with only a plain descriptor: the channels find none. */
    set_multifd_file(src, 2, true);
    pass_file(src, path, O_WRONLY, 2, "plain");
    g_free(want);
    want = g_strdup_printf(
        "Failed to find file descriptor with matching flags=0x%x",
        O_WRONLY | O_DIRECT);
    expect_migration_fails(src, "file:/dev/fdset/2,offset=4096", want);
    assert_source_runs(src);
    remove_fdset(src, 2);
    assert_no_fdsets(src);
    assert_no_fd_to(src, path);

    /* Only an O_DIRECT descriptor: the main channel never takes it. */
    if (dir_has_dio(dir, &why)) {
        pass_file(src, path, O_WRONLY | O_DIRECT, 3, "direct");
        g_free(want);
        want = g_strdup_printf(
            "Failed to find file descriptor with matching flags=0x%x",
            O_CREAT | O_WRONLY);
        expect_migrate_refused(src, "file:/dev/fdset/3,offset=4096", want);
        remove_fdset(src, 3);
        assert_no_fdsets(src);
    } else {
        g_test_message("O_DIRECT-only fdset case skipped: %s", why);
    }
    assert_no_fd_to(src, path);
    qtest_quit(src);
    dir_remove(dir);
}

/* A scratch file on tmpfs, or NULL (and a skip) where there is none. */
static char *tmpfs_file(void)
{
    g_autofree char *tmpl = g_strdup("/dev/shm/minivm-fdset-XXXXXX");
    int fd;

    if (!is_memory_fs("/dev/shm")) {
        g_test_skip("/dev/shm is not tmpfs here");
        return NULL;
    }
    fd = g_mkstemp(tmpl);
    g_assert_cmpint(fd, >=, 0);
    close(fd);
    return g_steal_pointer(&tmpl);
}

/*
 * direct-io on tmpfs fails the migration in setup, by path and by fdset,
 * and the source keeps running; a destination refuses to load from it.
 */
static void test_refusals_tmpfs(void)
{
    g_autofree char *path = tmpfs_file();
    g_autofree char *uri = NULL;
    g_autofree char *want = NULL;
    g_autofree char *got = NULL;
    QTestState *src, *dst;
    int fd;

    if (!path) {
        return;
    }
    src = start_source();
    set_multifd_file(src, 2, true);
    uri = g_strdup_printf("file:%s", path);
    want = g_strdup_printf(
        "Could not open '%s': filesystem does not support O_DIRECT", path);
    expect_migration_fails(src, uri, want);
    assert_source_runs(src);

    /*
     * Through an fdset: tmpfs takes the O_DIRECT open (Linux 6.6+), so
     * the manager can pass such a descriptor; minivm still refuses it.
     */
    pass_file(src, path, O_WRONLY, 4, "plain");
    fd = open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);
    if (fd >= 0) {
        add_fd(src, fd, 4, "direct");
        close(fd);
        expect_migration_fails(
            src, "file:/dev/fdset/4",
            "Could not open '/dev/fdset/4': filesystem does not support "
            "O_DIRECT");
        assert_source_runs(src);
    } else {
        g_test_message("this kernel refuses O_DIRECT opens on tmpfs: %s",
                       g_strerror(errno));
    }
    remove_fdset(src, 4);
    assert_no_fdsets(src);
    assert_no_fd_to(src, path);

    /* The destination refuses before it loads anything. */
    dst = mig_start_destination(AB_ARGS " -S");
    set_multifd_file(dst, 2, true);
    migrate_incoming_uri_keep(dst, uri);
    migrate_wait_status(dst, "failed", MIG_TIMEOUT);
    got = migrate_error_desc(dst);
    g_assert_cmpstr(got, ==, want);
    assert_no_fd_to(dst, path);

    qtest_quit(src);
    qtest_quit(dst);
    unlink(path);
}

/* direct-io needs a second descriptor: sockets cannot give one. */
static void test_refusals_socket(void)
{
    QTestState *src = start_source();
    g_autofree char *uri =
        g_strdup_printf("unix:%s/nowhere.sock", qtest_tmpdir(src));

    migrate_set_capability(src, "multifd", true);
    migrate_set_parameter(src, "direct-io", "true");
    expect_migrate_refused(src, uri, ERR_EXTRA_FDS);
    /* Without multifd direct-io has no effect, so nothing to refuse. */
    {
        g_autofree char *hmp = NULL;

        hmp = qtest_hmp(src, "migrate_set_parameter direct-io off");
        g_assert_cmpstr(hmp, ==, "");
        g_free(hmp);
        hmp = qtest_hmp(src, "info migrate_parameters");
        g_assert_nonnull(strstr(hmp, "direct-io: off"));
        g_free(hmp);
        hmp = qtest_hmp(src, "migrate_set_parameter direct-io on");
        g_assert_cmpstr(hmp, ==, "");
        g_free(hmp);
        hmp = qtest_hmp(src, "info migrate_parameters");
        g_assert_nonnull(strstr(hmp, "direct-io: on"));
    }
    {
        g_autoptr(JsonNode) ret = qtest_qmp_assert_success_ref(
            src, "{'execute': 'query-migrate-parameters'}");

        g_assert_true(json_object_get_boolean_member(json_node_get_object(ret),
                                                     "direct-io"));
    }
    assert_source_runs(src);
    qtest_quit(src);
}

/* The fdset commands' own refusals, and remove-fd closing at once. */
static void test_fdset_commands(void)
{
    g_autofree char *dir = dir_new();
    g_autofree char *path = g_build_filename(dir, "fds", NULL);
    g_autoptr(GHashTable) before = NULL;
    QTestState *s = qtest_init("-m 16M");
    int fd;

    write_header(path);
    before = proc_fds(qtest_pid(s));
    qtest_qmp_expect_error(s, "GenericError",
                           "No file descriptor supplied via SCM_RIGHTS",
                           "{'execute': 'add-fd'}");
    fd = open_file(path, O_RDONLY);
    {
        JsonObject *reply = qtest_qmp_fds(
            s, &fd, 1, "{'execute': 'add-fd', 'arguments': {'fdset-id': -1}}");
        JsonObject *err = qtest_json_get_object(reply, "error");

        g_assert_cmpstr(qtest_json_get_string(err, "desc"), ==,
                        "Parameter 'fdset-id' expects a non-negative value");
        json_object_unref(reply);
    }
    /* No id: the lowest free one. */
    g_assert_cmpint(add_fd(s, fd, -1, "a"), ==, 0);
    g_assert_cmpint(add_fd(s, fd, 2, "b"), ==, 2);
    g_assert_cmpint(add_fd(s, fd, -1, "c"), ==, 1);
    close(fd);
    qtest_qmp_expect_error(
        s, "GenericError", "File descriptor named 'fdset-id:9' not found",
        "{'execute': 'remove-fd', 'arguments': {'fdset-id': 9}}");
    qtest_qmp_expect_error(
        s, "GenericError",
        "File descriptor named 'fdset-id:2, fd:999' not found",
        "{'execute': 'remove-fd', 'arguments': {'fdset-id': 2, 'fd': 999}}");
    remove_fdset(s, 0);
    remove_fdset(s, 1);
    remove_fdset(s, 2);
    assert_no_fdsets(s);
    /* Closed at once, even though the VM is not running anything. */
    assert_no_fd_to(s, path);
    assert_same_fds(s, before);
    qtest_quit(s);
    dir_remove(dir);
}

/*
 * remove-fd closes the members at once, but a descriptor minivm opened
 * from the set (a tracked dup) lives on with its user: the set stays
 * listed, with no members, until the migration lets go of it.
 */
static void test_dup_outlives_remove_fd(void)
{
    g_autofree char *dir = dir_new();
    g_autofree char *path = g_build_filename(dir, "slow.mig", NULL);
    g_autoptr(GHashTable) before = NULL;
    QTestState *src = start_source();

    write_header(path);
    before = proc_fds(qtest_pid(src));
    /* Slow enough to still be running when remove-fd comes. */
    migrate_set_parameter(src, "max-bandwidth", "4194304");
    pass_file(src, path, O_WRONLY, 1, "save");
    migrate_uri(src, "file:/dev/fdset/1,offset=4096");
    migrate_wait_status(src, "active", MIG_TIMEOUT);
    remove_fdset(src, 1);
    assert_fdset_size(src, 1, 0);
    /* The remaining descriptor is the migration's own dup. */
    {
        g_autoptr(GHashTable) now = proc_fds(qtest_pid(src));

        g_assert_cmpuint(g_hash_table_size(now), >, g_hash_table_size(before));
    }
    qtest_qmp_assert_success(src, "{'execute': 'migrate_cancel'}");
    migrate_wait_status(src, "cancelled", MIG_TIMEOUT);
    assert_no_fdsets(src);
    assert_no_fd_to(src, path);
    assert_same_fds(src, before);
    assert_source_runs(src);
    qtest_quit(src);
    dir_remove(dir);
}

/* --- the example client (contrib/save-restore-client.py) --- */

/* Runs the client; returns its exit status, stderr in *err. */
static int run_client(char **err, const char *qmp, const char *action,
                      const char *opt1, const char *opt2, const char *opt3,
                      const char *file)
{
    const char *client = g_getenv("SAVE_RESTORE_CLIENT");
    const char *python = g_getenv("PYTHON");
    const char *opts[] = {opt1, opt2, opt3};
    const char *argv[16];
    g_autoptr(GError) error = NULL;
    g_autofree char *out = NULL;
    int n = 0, status;

    g_assert_nonnull(client);
    argv[n++] = python && *python ? python : "python3";
    argv[n++] = client;
    argv[n++] = action;
    argv[n++] = "--qmp";
    argv[n++] = qmp;
    argv[n++] = "--timeout";
    argv[n++] = "120";
    for (size_t i = 0; i < G_N_ELEMENTS(opts); i++) {
        if (opts[i]) {
            argv[n++] = opts[i];
        }
    }
    argv[n++] = file;
    argv[n] = NULL;
    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH,
                               NULL, NULL, &out, err, &status, &error));
    g_assert_no_error(error);
    g_test_message("client %s: %s", action, *err);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The client's header: its magic, our note, and the stream right after. */
static void assert_client_header(const char *path, GBytes **copy)
{
    g_autofree gchar *data = NULL;
    gsize len;

    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    g_assert_cmpuint(len, >, HEADER_SIZE + 4);
    g_assert_cmpmem(data, strlen(CLIENT_MAGIC), CLIENT_MAGIC,
                    strlen(CLIENT_MAGIC));
    /* The header has binary fields before its JSON: not a C string. */
    g_assert_nonnull(memmem(data, HEADER_SIZE, NOTE_JSON, strlen(NOTE_JSON)));
    g_assert_cmpmem(data + HEADER_SIZE, 4, "QEVM", 4);
    if (copy) {
        *copy = g_bytes_new(data, HEADER_SIZE);
    }
}

static void assert_header_unchanged(const char *path, GBytes *copy)
{
    g_autofree gchar *data = NULL;
    gsize len;

    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    g_assert_cmpuint(len, >=, HEADER_SIZE);
    g_assert_cmpmem(data, HEADER_SIZE, g_bytes_get_data(copy, NULL),
                    HEADER_SIZE);
}

/*
 * virDomainSave then virDomainRestore, as the client does them: the saved
 * VM quits, the restored one holds the same memory and runs after cont.
 */
static void test_client_save_restore(void)
{
    g_autofree char *dir = dir_new();
    g_autofree char *path = g_build_filename(dir, "vm.save", NULL);
    g_autofree char *why = NULL;
    g_autofree char *err = NULL;
    g_autoptr(GHashTable) src_digests = NULL;
    g_autoptr(GBytes) header = NULL;
    g_autoptr(GHashTable) dst_fds = NULL;
    const char *dio_opt = NULL;
    QTestState *src, *dst;
    int status;

    if (!dir_has_dio(dir, &why)) {
        /* The flow still runs, without the O_DIRECT descriptor. */
        g_test_message("%s: running the client with --no-direct-io", why);
        dio_opt = "--no-direct-io";
    }
    src = start_source();
    /* Stopped first, so its memory can be compared with the restore. */
    qtest_qmp_assert_success(src, "{'execute': 'stop'}");
    src_digests = qtest_ram_digests(src);
    g_assert_cmpint(run_client(&err, qtest_qmp_socket_path(src), "save",
                               "--note=fdset-test", dio_opt, NULL, path),
                    ==, 0);
    /* The client told it to quit. */
    status = qtest_wait_exit(src, qtest_scale_timeout(30));
    g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_client_header(path, &header);

    dst = mig_start_destination(AB_ARGS);
    dst_fds = proc_fds(qtest_pid(dst));
    g_free(err);
    g_assert_cmpint(run_client(&err, qtest_qmp_socket_path(dst), "restore",
                               dio_opt, NULL, NULL, path),
                    ==, 0);
    /* The source was stopped, so the restored guest waits for cont. */
    mig_assert_runstate(dst, "paused");
    {
        g_autoptr(GHashTable) dst_digests = qtest_ram_digests(dst);
        GHashTableIter iter;
        gpointer name, digest;

        g_hash_table_iter_init(&iter, src_digests);
        while (g_hash_table_iter_next(&iter, &name, &digest)) {
            g_assert_cmpstr(digest, ==, g_hash_table_lookup(dst_digests, name));
        }
    }
    mig_assert_ab_ok(dst, RAM_SIZE);
    assert_no_fdsets(dst);
    assert_no_fd_to(dst, path);
    assert_same_fds(dst, dst_fds);
    assert_header_unchanged(path, header);
    mig_cont(dst);
    mig_wait_alive(dst);
    qtest_quit(dst);
    dir_remove(dir);
}

/*
 * A failing save (direct-io on tmpfs) resumes the guest, and a failing
 * restore reports minivm's message; no descriptor stays behind.
 */
static void test_client_failures(void)
{
    g_autofree char *path = tmpfs_file();
    g_autofree char *err = NULL;
    g_autofree char *want = NULL;
    QTestState *src, *dst;
    int fd;

    if (!path) {
        return;
    }
    fd = open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);
    if (fd < 0) {
        g_test_skip("this kernel refuses O_DIRECT opens on tmpfs, so the "
                    "client fails before it reaches minivm");
        unlink(path);
        return;
    }
    close(fd);
    want = g_strdup("/dev/fdset/0': filesystem does not support O_DIRECT");
    src = start_source();
    g_assert_cmpint(run_client(&err, qtest_qmp_socket_path(src), "save", NULL,
                               NULL, NULL, path),
                    ==, 1);
    g_assert_nonnull(strstr(err, want));
    assert_source_runs(src);
    assert_no_fdsets(src);
    assert_no_fd_to(src, path);
    qtest_quit(src);

    /* A header for the restore to accept, then the same refusal. */
    {
        g_autofree char *ok = NULL;

        src = start_source();
        g_assert_cmpint(run_client(&ok, qtest_qmp_socket_path(src), "save",
                                   "--no-direct-io", "--note=fdset-test", NULL,
                                   path),
                        ==, 0);
        g_assert_true(WIFEXITED(qtest_wait_exit(src, 30)));
    }
    dst = mig_start_destination(AB_ARGS);
    g_free(err);
    g_assert_cmpint(run_client(&err, qtest_qmp_socket_path(dst), "restore",
                               NULL, NULL, NULL, path),
                    ==, 1);
    g_assert_nonnull(strstr(err, want));
    assert_no_fdsets(dst);
    assert_no_fd_to(dst, path);
    qtest_quit(dst);
    unlink(path);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/migration/precopy/file/offset/fdset",
                    test_precopy_offset_fdset);
    g_test_add_func("/migration/multifd/file/mapped-ram/fdset",
                    test_multifd_fdset);
    g_test_add_func("/migration/multifd/file/mapped-ram/fdset/dio",
                    test_multifd_fdset_dio);
    g_test_add_func("/migration/multifd/file/mapped-ram/dio", test_multifd_dio);
    g_test_add_func("/migration/fdset/refusals/fdset", test_refusals_fdset);
    g_test_add_func("/migration/fdset/refusals/tmpfs", test_refusals_tmpfs);
    g_test_add_func("/migration/fdset/refusals/socket", test_refusals_socket);
    g_test_add_func("/migration/fdset/commands", test_fdset_commands);
    g_test_add_func("/migration/fdset/dup-outlives-remove-fd",
                    test_dup_outlives_remove_fd);
    g_test_add_func("/migration/fdset/client/save-restore",
                    test_client_save_restore);
    g_test_add_func("/migration/fdset/client/failures", test_client_failures);
    return g_test_run();
}
