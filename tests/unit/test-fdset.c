/*
 * Unit tests of monitor/fds.c, in-process: which member of an fd set
 * qemu_open("/dev/fdset/ID") picks (access mode and O_DIRECT, newest
 * first), the life of a set (lowest free id, remove-fd closing at once,
 * live dups keeping the set listed), -add-fd parsing, and the error texts
 * of spec/monitor.md. Every test checks that no descriptor leaks.
 */
#include "qemu/osdep.h"
#include "monitor/monitor-internal.h"
#include "monitor/monitor.h"
#include "qapi/qapi-commands.h"
#include "qemu/fdopen.h"

#include <dirent.h>

static char *tmp_dir;

static int count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    g_assert_nonnull(d);
    while ((e = readdir(d))) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

static char *tmp_path(const char *name)
{
    return g_build_filename(tmp_dir, name, NULL);
}

/* Opens the test file and moves its offset to mark, to recognise dups. */
static int open_marked(const char *path, int flags, off_t mark)
{
    int fd = open(path, flags | O_CLOEXEC, 0600);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(lseek(fd, mark, SEEK_SET), ==, mark);
    return fd;
}

static off_t mark_of(int fd)
{
    return lseek(fd, 0, SEEK_CUR);
}

static int64_t add(int fd, bool has_id, int64_t id, const char *opaque)
{
    g_autoptr(GError) err = NULL;
    int64_t got = monitor_fdset_add_fd(fd, has_id, id, opaque, &err);

    g_assert_no_error(err);
    return got;
}

/* The fdset-ids query-fdsets lists, as "0,1,3". */
static char *listed_ids(void)
{
    g_autoptr(FdsetInfoList) sets = qmp_query_fdsets(NULL);
    GString *s = g_string_new(NULL);

    for (FdsetInfoList *l = sets; l; l = l->next) {
        g_string_append_printf(s, "%s%" PRId64, s->len ? "," : "",
                               l->value->fdset_id);
    }
    return g_string_free(s, FALSE);
}

static void assert_ids(const char *want)
{
    g_autofree char *ids = listed_ids();

    g_assert_cmpstr(ids, ==, want);
}

static void remove_ok(int64_t fdset_id, bool has_fd, int64_t fd)
{
    g_autoptr(GError) err = NULL;

    qmp_remove_fd(fdset_id, has_fd, fd, &err);
    g_assert_no_error(err);
}

static FdsetInfo *find_set(FdsetInfoList *sets, int64_t id)
{
    for (; sets; sets = sets->next) {
        if (sets->value->fdset_id == id) {
            return sets->value;
        }
    }
    return NULL;
}

static void test_match_access_mode(void)
{
    g_autofree char *path = tmp_path("modes");
    g_autoptr(GError) err = NULL;
    int before = count_open_fds();
    int fd;

    g_assert_true(g_file_set_contents(path, "0123456789", 10, NULL));
    add(open_marked(path, O_RDONLY, 1), true, 5, NULL);
    add(open_marked(path, O_WRONLY, 2), true, 5, NULL);
    add(open_marked(path, O_RDWR, 3), true, 5, NULL);
    add(open_marked(path, O_RDONLY, 4), true, 5, "newest reader");

    /* The newest reader wins over the older one. */
    fd = qemu_open("/dev/fdset/5", O_RDONLY, 0, &err);
    g_assert_no_error(err);
    g_assert_cmpint(mark_of(fd), ==, 4);
    g_assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    g_assert_cmpint(qemu_close(fd), ==, 0);

    /* O_CREAT / O_TRUNC do not take part in the match. */
    fd = qemu_open("/dev/fdset/5", O_WRONLY | O_CREAT | O_TRUNC, 0600, &err);
    g_assert_no_error(err);
    g_assert_cmpint(mark_of(fd), ==, 2);
    g_assert_cmpint(qemu_close(fd), ==, 0);

    fd = qemu_open("/dev/fdset/5", O_RDWR, 0, &err);
    g_assert_no_error(err);
    g_assert_cmpint(mark_of(fd), ==, 3);
    g_assert_cmpint(qemu_close(fd), ==, 0);

    /* A reader cannot stand in for O_RDWR, nor a buffered fd for O_DIRECT. */
    fd = qemu_open("/dev/fdset/5", O_RDONLY | O_DIRECT, 0, &err);
    g_assert_cmpint(fd, ==, -1);
    {
        g_autofree char *want = g_strdup_printf(
            "Failed to find file descriptor with matching flags=0x%x",
            O_RDONLY | O_DIRECT);

        g_assert_cmpstr(err->message, ==, want);
    }

    monitor_fds_cleanup();
    assert_ids("");
    g_assert_cmpint(count_open_fds(), ==, before);
}

static void test_match_direct(void)
{
    /* tmpfs has no O_DIRECT; the build directory usually is on a disk. */
    g_autofree char *dir = g_get_current_dir();
    g_autofree char *path = g_build_filename(dir, "test-fdset.direct", NULL);
    g_autoptr(GError) err = NULL;
    int before = count_open_fds();
    int direct, fd;

    g_assert_true(g_file_set_contents(path, "", 0, NULL));
    direct = open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);
    if (direct < 0) {
        unlink(path);
        g_test_skip("no O_DIRECT on the file system of the build directory");
        return;
    }
    g_assert_cmpint(lseek(direct, 8192, SEEK_SET), ==, 8192);
    /* The plain fd is newer, so only the O_DIRECT flag can pick the other. */
    add(direct, true, 1, NULL);
    add(open_marked(path, O_WRONLY, 1), true, 1, NULL);

    fd = qemu_open("/dev/fdset/1", O_WRONLY | O_DIRECT, 0, &err);
    g_assert_no_error(err);
    g_assert_cmpint(mark_of(fd), ==, 8192);
    g_assert_true(fcntl(fd, F_GETFL) & O_DIRECT);
    qemu_close(fd);

    fd = qemu_open("/dev/fdset/1", O_WRONLY, 0, &err);
    g_assert_no_error(err);
    g_assert_cmpint(mark_of(fd), ==, 1);
    g_assert_false(fcntl(fd, F_GETFL) & O_DIRECT);
    qemu_close(fd);

    monitor_fds_cleanup();
    unlink(path);
    g_assert_cmpint(count_open_fds(), ==, before);
}

static void expect_open_error(const char *path, const char *message)
{
    g_autoptr(GError) err = NULL;

    g_assert_cmpint(qemu_open(path, O_RDONLY, 0, &err), ==, -1);
    g_assert_nonnull(err);
    g_assert_cmpstr(err->message, ==, message);
}

static void test_open_errors(void)
{
    g_autofree char *path = tmp_path("errors");
    int before = count_open_fds();

    g_assert_true(g_file_set_contents(path, "", 0, NULL));
    expect_open_error("/dev/fdset/42", "Failed to find fdset /dev/fdset/42");
    add(open_marked(path, O_WRONLY, 0), true, 42, NULL);
    expect_open_error("/dev/fdset/42",
                      "Failed to find file descriptor with matching "
                      "flags=0x0");
    /* Ids are plain decimal: nothing may follow or precede them. */
    expect_open_error("/dev/fdset/42x", "Could not parse fdset /dev/fdset/42x");
    expect_open_error("/dev/fdset/-1", "Could not parse fdset /dev/fdset/-1");
    expect_open_error("/dev/fdset/", "Could not parse fdset /dev/fdset/");
    expect_open_error("/dev/fdset/+42", "Could not parse fdset /dev/fdset/+42");
    monitor_fds_cleanup();
    g_assert_cmpint(count_open_fds(), ==, before);
}

static void test_lowest_free_id(void)
{
    g_autofree char *path = tmp_path("ids");
    int before = count_open_fds();

    g_assert_true(g_file_set_contents(path, "", 0, NULL));
    g_assert_cmpint(add(open_marked(path, O_RDONLY, 0), false, 0, NULL), ==, 0);
    g_assert_cmpint(add(open_marked(path, O_RDONLY, 0), false, 0, NULL), ==, 1);
    g_assert_cmpint(add(open_marked(path, O_RDONLY, 0), true, 3, NULL), ==, 3);
    /* 2 is the gap. */
    g_assert_cmpint(add(open_marked(path, O_RDONLY, 0), false, 0, NULL), ==, 2);
    g_assert_cmpint(add(open_marked(path, O_RDONLY, 0), false, 0, NULL), ==, 4);
    remove_ok(0, false, 0);
    g_assert_cmpint(add(open_marked(path, O_RDONLY, 0), false, 0, NULL), ==, 0);
    assert_ids("0,1,2,3,4");

    monitor_fds_cleanup();
    g_assert_cmpint(count_open_fds(), ==, before);
}

static void test_negative_id(void)
{
    g_autofree char *path = tmp_path("negative");
    g_autoptr(GError) err = NULL;
    int before = count_open_fds();
    int fd;

    g_assert_true(g_file_set_contents(path, "", 0, NULL));
    fd = open_marked(path, O_RDONLY, 0);
    g_assert_cmpint(monitor_fdset_add_fd(fd, true, -1, NULL, &err), ==, -1);
    g_assert_cmpstr(err->message, ==,
                    "Parameter 'fdset-id' expects a non-negative value");
    /* The refused descriptor is not leaked. */
    g_assert_cmpint(count_open_fds(), ==, before);
    assert_ids("");
}

static void test_remove_while_dup_lives(void)
{
    g_autofree char *path = tmp_path("remove");
    g_autofree char *msg = NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(FdsetInfoList) sets = NULL;
    int before = count_open_fds();
    int w1, w2, dup_fd;
    FdsetInfo *set;

    g_assert_true(g_file_set_contents(path, "", 0, NULL));
    w1 = open_marked(path, O_WRONLY, 0);
    w2 = open_marked(path, O_RDONLY, 0);
    add(w1, true, 7, "writer");
    add(w2, true, 7, NULL);

    sets = qmp_query_fdsets(NULL);
    set = find_set(sets, 7);
    g_assert_nonnull(set);
    g_assert_cmpint(set->fds->value->fd, ==, w1);
    g_assert_cmpstr(set->fds->value->opaque, ==, "writer");
    g_assert_cmpint(set->fds->next->value->fd, ==, w2);
    g_assert_null(set->fds->next->value->opaque);
    g_assert_null(set->fds->next->next);
    g_clear_pointer(&sets, qapi_free_FdsetInfoList);

    dup_fd = qemu_open("/dev/fdset/7", O_WRONLY, 0, &err);
    g_assert_no_error(err);

    /* Unknown members and sets name themselves in the error. */
    qmp_remove_fd(7, true, 9999, &err);
    g_assert_cmpstr(err->message, ==,
                    "File descriptor named 'fdset-id:7, fd:9999' not found");
    g_clear_error(&err);
    qmp_remove_fd(8, false, 0, &err);
    g_assert_cmpstr(err->message, ==,
                    "File descriptor named 'fdset-id:8' not found");
    g_clear_error(&err);
    qmp_remove_fd(8, true, w1, &err);
    msg = g_strdup_printf("File descriptor named 'fdset-id:8, fd:%d' not found",
                          w1);
    g_assert_cmpstr(err->message, ==, msg);
    g_clear_error(&err);

    /* remove-fd closes at once, even with a dup handed out. */
    remove_ok(7, true, w1);
    g_assert_cmpint(fcntl(w1, F_GETFD), ==, -1);
    remove_ok(7, false, 0);
    g_assert_cmpint(fcntl(w2, F_GETFD), ==, -1);

    /* The dup still works, and keeps the (empty) set listed. */
    g_assert_cmpint(write(dup_fd, "x", 1), ==, 1);
    sets = qmp_query_fdsets(NULL);
    set = find_set(sets, 7);
    g_assert_nonnull(set);
    g_assert_null(set->fds);
    g_clear_pointer(&sets, qapi_free_FdsetInfoList);
    expect_open_error("/dev/fdset/7",
                      "Failed to find file descriptor with matching "
                      "flags=0x0");

    /* Closing the last dup makes the set disappear. */
    g_assert_cmpint(qemu_close(dup_fd), ==, 0);
    assert_ids("");
    g_assert_cmpint(count_open_fds(), ==, before);
}

static void test_close_untracks_only_dups(void)
{
    g_autofree char *path = tmp_path("untrack");
    g_autoptr(GError) err = NULL;
    int before = count_open_fds();
    int other, dup_fd;

    g_assert_true(g_file_set_contents(path, "", 0, NULL));
    add(open_marked(path, O_RDONLY, 0), true, 2, NULL);
    dup_fd = qemu_open("/dev/fdset/2", O_RDONLY, 0, &err);
    g_assert_no_error(err);
    /* An ordinary file closed through qemu_close() changes nothing. */
    other = qemu_open(path, O_RDONLY, 0, &err);
    g_assert_no_error(err);
    qemu_close(other);
    remove_ok(2, false, 0);
    assert_ids("2");
    qemu_close(dup_fd);
    assert_ids("");
    g_assert_cmpint(count_open_fds(), ==, before);
}

static void test_cmdline(void)
{
    g_autofree char *path = tmp_path("cmdline");
    g_autoptr(GError) err = NULL;
    g_autoptr(FdsetInfoList) sets = NULL;
    g_autofree char *opts = NULL;
    int before = count_open_fds();
    int fd;

    g_assert_true(g_file_set_contents(path, "", 0, NULL));
    /* As a parent would pass it: inherited, so no FD_CLOEXEC. */
    fd = open(path, O_RDWR);
    g_assert_cmpint(fd, >, STDERR_FILENO);
    opts = g_strdup_printf("fd=%d,set=9,opaque=a,,b", fd);
    g_assert_true(monitor_fdset_add_from_cmdline(opts, &err));
    g_assert_no_error(err);
    g_assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    sets = qmp_query_fdsets(NULL);
    g_assert_nonnull(find_set(sets, 9));
    g_assert_cmpint(find_set(sets, 9)->fds->value->fd, ==, fd);
    g_assert_cmpstr(find_set(sets, 9)->fds->value->opaque, ==, "a,b");

    /* Adding the same descriptor twice would close it twice. */
    g_assert_false(monitor_fdset_add_from_cmdline(opts, &err));
    g_assert_true(
        g_str_has_suffix(err->message, "is not valid or already in use"));
    g_clear_error(&err);

#define REFUSED(o, msg)                                                        \
    do {                                                                       \
        g_assert_false(monitor_fdset_add_from_cmdline((o), &err));             \
        g_assert_cmpstr(err->message, ==, (msg));                              \
        g_clear_error(&err);                                                   \
    } while (0)
    REFUSED("fd=1,set=1", "-add-fd: fd cannot be a standard I/O stream");
    REFUSED("set=1", "-add-fd: fd option is required and must be "
                     "non-negative");
    REFUSED("fd=-4,set=1", "-add-fd: fd option is required and must be "
                           "non-negative");
    REFUSED("fd=40,set=x", "-add-fd: set option is required and must be "
                           "non-negative");
    REFUSED("fd=40", "-add-fd: set option is required and must be "
                     "non-negative");
    REFUSED("fd=40,set=1,color=red", "-add-fd: unknown parameter 'color'");
    REFUSED("fd=40,set=1,junk", "-add-fd: expected KEY=VALUE, got 'junk'");
    REFUSED("fd=999999,set=1", "-add-fd: fd=999999 is not open: Bad file "
                               "descriptor");
#undef REFUSED

    monitor_fds_cleanup();
    g_assert_cmpint(count_open_fds(), ==, before);
}

static void test_no_fd_supplied(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(AddfdInfo) info = NULL;

    /* Outside a QMP command nothing arrived with SCM_RIGHTS. */
    g_assert_cmpint(monitor_fd_take(), ==, -1);
    info = qmp_add_fd(false, 0, NULL, &err);
    g_assert_null(info);
    g_assert_cmpstr(err->message, ==,
                    "No file descriptor supplied via SCM_RIGHTS");
    g_clear_error(&err);
    qmp_getfd("name", &err);
    g_assert_cmpstr(err->message, ==,
                    "No file descriptor supplied via SCM_RIGHTS");
    g_clear_error(&err);
    qmp_closefd("name", &err);
    g_assert_cmpstr(err->message, ==, "File descriptor named 'name' not found");
    g_clear_error(&err);
    g_assert_cmpint(monitor_get_fd("name", &err), ==, -1);
    g_assert_cmpstr(err->message, ==,
                    "File descriptor named 'name' has not been found");
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    tmp_dir = g_dir_make_tmp("test-fdset-XXXXXX", NULL);
    g_assert_nonnull(tmp_dir);
    monitor_fdsets_init();

    g_test_add_func("/fdset/match/access-mode", test_match_access_mode);
    g_test_add_func("/fdset/match/direct", test_match_direct);
    g_test_add_func("/fdset/open-errors", test_open_errors);
    g_test_add_func("/fdset/id/lowest-free", test_lowest_free_id);
    g_test_add_func("/fdset/id/negative", test_negative_id);
    g_test_add_func("/fdset/remove/while-dup-lives",
                    test_remove_while_dup_lives);
    g_test_add_func("/fdset/close/untracks-only-dups",
                    test_close_untracks_only_dups);
    g_test_add_func("/fdset/cmdline", test_cmdline);
    g_test_add_func("/fdset/no-fd-supplied", test_no_fd_supplied);
    ret = g_test_run();

    {
        g_autoptr(GDir) dir = g_dir_open(tmp_dir, 0, NULL);
        const char *name;

        while (dir && (name = g_dir_read_name(dir))) {
            g_autofree char *p = tmp_path(name);

            unlink(p);
        }
        rmdir(tmp_dir);
    }
    g_free(tmp_dir);
    return ret;
}
