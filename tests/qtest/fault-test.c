/*
 * I/O errors at every point of a migration (issue 8, point 2), injected
 * with x-debug-inject-fault (minivm -fault-injection on): a write or read
 * of the main channel, of one multifd channel, of the mapped-ram bitmaps,
 * of the device state, and the final fsync, on the source and on the
 * destination, over files and sockets. Every one must fail cleanly: the
 * migration reports "failed" with an error that says what happened, the
 * source goes on running with its memory whole (the a-b checker passes),
 * the destination never runs the half-loaded guest and keeps answering
 * QMP, and the same migration without the fault then succeeds, its
 * destination equal to the source.
 *
 * docs/devel/reliability.md has the table of these points and outcomes.
 */
#include "qemu/osdep.h"

#include "reliability-util.h"

#define FAULT_ON "-fault-injection on"

static void inject(QTestState *s, const char *args)
{
    qtest_qmp_assert_success(
        s, "{'execute': 'x-debug-inject-fault', 'arguments': {%s}}", args);
}

static void clear_fault(QTestState *s)
{
    inject(s, "'point': 'none'");
}

/* The error in the test log, for whoever reads it (and for the docs). */
static void log_error_desc(QTestState *s)
{
    g_autofree char *desc = migrate_error_desc(s);

    g_test_message("error-desc: %s", desc);
}

/* --- the knob itself --- */

/* Without -fault-injection on, no client can arm anything. */
static void test_disabled(void)
{
    QTestState *s = qtest_init("-m 16M");

    qtest_qmp_expect_error(s, "GenericError",
                           "Fault injection is disabled (start minivm with "
                           "-fault-injection on)",
                           "{'execute': 'x-debug-inject-fault', "
                           "'arguments': {'point': 'save-main'}}");
    qtest_quit(s);
}

static void test_bad_arguments(void)
{
    QTestState *s = qtest_init("-m 16M " FAULT_ON);

    qtest_qmp_expect_error(s, "GenericError",
                           "Parameter 'errno' expects 'EIO' or 'ENOSPC'",
                           "{'execute': 'x-debug-inject-fault', 'arguments': "
                           "{'point': 'save-main', 'errno': 'EPERM'}}");
    qtest_qmp_expect_error(s, "GenericError",
                           "Parameter 'channel' applies only to save-multifd "
                           "and load-multifd",
                           "{'execute': 'x-debug-inject-fault', 'arguments': "
                           "{'point': 'save-main', 'channel': 1}}");
    qtest_qmp_expect_error(s, "GenericError",
                           "Parameter 'after-bytes' expects a non-negative "
                           "value",
                           "{'execute': 'x-debug-inject-fault', 'arguments': "
                           "{'point': 'load-main', 'after-bytes': -1}}");
    qtest_qmp_expect_error(s, "GenericError",
                           "Parameters 'short' and 'hold' are exclusive",
                           "{'execute': 'x-debug-inject-fault', 'arguments': "
                           "{'point': 'load-main', 'short': true, "
                           "'hold': true}}");
    qtest_qmp_expect_error(s, "GenericError",
                           "Unknown fault injection point 'save-everything' "
                           "(expected none, save-main, save-multifd, "
                           "save-bitmaps, save-device-state, save-sync, "
                           "load-main, load-multifd, load-bitmaps or "
                           "load-device-state)",
                           "{'execute': 'x-debug-inject-fault', 'arguments': "
                           "{'point': 'save-everything'}}");
    clear_fault(s);
    qtest_quit(s);
}

/* --- the source side, into a file --- */

typedef struct SaveCase {
    const char *path;
    RelMode mode;
    bool stopped;      /* a stopped save (the guest paused first) */
    const char *fault; /* x-debug-inject-fault arguments */
    const char *expect[3];
} SaveCase;

/*
 * The save fails with the expected error; the source is as it was (running
 * or paused) with its memory whole; without the fault the same save then
 * completes and loads into a guest equal to the source.
 */
static void run_save_case(gconstpointer opaque)
{
    const SaveCase *c = opaque;
    QTestState *src = rel_start_source(FAULT_ON, c->mode);
    g_autofree char *path = mig_tmp_path(src, "mig.img");
    g_autofree char *uri = g_strdup_printf("file:%s", path);
    g_autoptr(GArray) fds_before = NULL;
    g_autoptr(GArray) fds_after = NULL;

    if (c->stopped) {
        qtest_qmp_assert_success(src, "{'execute': 'stop'}");
    }
    inject(src, c->fault);
    fds_before = rel_open_fds(qtest_pid(src));
    migrate_uri(src, uri);
    migrate_wait_status(src, "failed", MIG_TIMEOUT);
    rel_assert_error_contains(src, c->expect[0], c->expect[1], c->expect[2],
                              NULL);
    log_error_desc(src);
    /* The failed save left nothing open (channels, multifd files). */
    fds_after = rel_open_fds(qtest_pid(src));
    rel_assert_same_fds(qtest_pid(src), fds_before, fds_after, c->path);
    rel_assert_source_sound(src, !c->stopped);

    clear_fault(src);
    migrate_uri(src, uri);
    migrate_wait_status(src, "completed", MIG_TIMEOUT);
    rel_load_and_check(src, uri, c->mode);
    qtest_quit(src);
}

static const SaveCase save_cases[] = {
    {
        "/fault/save/main/eio",
        MODE_PLAIN,
        false,
        "'point': 'save-main', 'after-bytes': 8388608",
        {"Writing the migration stream",
         "injected fault at save-main after 8388608 bytes",
         "Input/output error"},
    },
    {
        "/fault/save/main/short",
        MODE_PLAIN,
        false,
        "'point': 'save-main', 'after-bytes': 1000000, 'short': true",
        {"Channel 'migration-file-outgoing' accepted no data"},
    },
    {
        "/fault/save/main/mapped-ram",
        MODE_MAPPED_RAM,
        false,
        "'point': 'save-main', 'after-bytes': 16777216",
        {"injected fault at save-main", "Input/output error"},
    },
    {
        /* mapped-ram writes its block headers during setup */
        "/fault/save/main/setup",
        MODE_MAPPED_RAM,
        false,
        "'point': 'save-main'",
        {"injected fault at save-main after 0 bytes", "Input/output error"},
    },
    {
        /*
         * Any channel: batches go to whichever channel is idle, so on a
         * busy machine one channel may write little or nothing; the
         * bytes of all of them together do reach the boundary, and the
         * one that crosses it fails.
         */
        "/fault/save/multifd/channel",
        MODE_MULTIFD,
        false,
        "'point': 'save-multifd', 'after-bytes': 4194304, 'errno': 'ENOSPC'",
        {"multifd channel ",
         "': injected fault at save-multifd after 4194304 bytes",
         "No space left on device"},
    },
    {
        "/fault/save/bitmaps",
        MODE_MAPPED_RAM,
        false,
        "'point': 'save-bitmaps'",
        {"injected fault at save-bitmaps after 0 bytes", "Input/output error"},
    },
    {
        "/fault/save/bitmaps/multifd",
        MODE_MULTIFD,
        true,
        "'point': 'save-bitmaps', 'after-bytes': 1024",
        {"injected fault at save-bitmaps after 1024 bytes"},
    },
    {
        "/fault/save/device-state",
        MODE_PLAIN,
        false,
        "'point': 'save-device-state', 'after-bytes': 16",
        {"injected fault at save-device-state after 16 bytes",
         "Input/output error"},
    },
    {
        "/fault/save/device-state/stopped",
        MODE_MAPPED_RAM,
        true,
        "'point': 'save-device-state'",
        {"injected fault at save-device-state after 0 bytes"},
    },
    {
        "/fault/save/sync",
        MODE_PLAIN,
        false,
        "'point': 'save-sync'",
        {"Closing the migration channel",
         "Channel 'migration-file-outgoing': injected fault at save-sync",
         "Input/output error"},
    },
};

/*
 * A fault aimed at one channel leaves the others alone: aimed at channel
 * 7 of 4, it never fires, and the save completes and loads. (Which of the
 * 4 channels gets how many pages is the scheduler's choice, so the cases
 * that must fail aim at any channel.)
 */
static void test_save_other_channel(void)
{
    QTestState *src = rel_start_source(FAULT_ON, MODE_MULTIFD);
    g_autofree char *path = mig_tmp_path(src, "mig.img");
    g_autofree char *uri = g_strdup_printf("file:%s", path);

    inject(src, "'point': 'save-multifd', 'channel': 7");
    migrate_uri(src, uri);
    migrate_wait_status(src, "completed", MIG_TIMEOUT);
    clear_fault(src);
    rel_load_and_check(src, uri, MODE_MULTIFD);
    qtest_quit(src);
}

/* --- the destination side, from a file --- */

/* Files saved once (from a stopped source) and loaded by every load case. */
typedef struct SavedImage {
    char *uri;
    GHashTable *digests; /* block -> sha256 of the source */
} SavedImage;

static char *scratch_dir;
static SavedImage saved[MODE_DIO];

static const SavedImage *saved_image(RelMode mode)
{
    SavedImage *img = &saved[mode];
    g_autofree char *name = NULL;
    g_autofree char *path = NULL;
    QTestState *src;

    if (img->uri) {
        return img;
    }
    if (!scratch_dir) {
        g_autoptr(GError) err = NULL;

        scratch_dir = g_dir_make_tmp("fault-test-XXXXXX", &err);
        g_assert_no_error(err);
    }
    name = g_strdup_printf("%s.img", rel_mode_name(mode));
    path = g_build_filename(scratch_dir, name, NULL);
    img->uri = g_strdup_printf("file:%s", path);

    src = rel_start_source(NULL, mode);
    qtest_qmp_assert_success(src, "{'execute': 'stop'}");
    migrate_uri(src, img->uri);
    migrate_wait_status(src, "completed", MIG_TIMEOUT);
    img->digests = qtest_ram_digests(src);
    qtest_quit(src);
    return img;
}

static void assert_digests(QTestState *dst, GHashTable *expected)
{
    g_autoptr(GHashTable) got = qtest_ram_digests(dst);
    GHashTableIter iter;
    gpointer name, digest;

    g_assert_cmpuint(g_hash_table_size(got), ==, g_hash_table_size(expected));
    g_hash_table_iter_init(&iter, expected);
    while (g_hash_table_iter_next(&iter, &name, &digest)) {
        g_assert_cmpstr(g_hash_table_lookup(got, name), ==, digest);
    }
}

typedef struct LoadCase {
    const char *path;
    RelMode mode;
    const char *fault;
    const char *expect[3];
} LoadCase;

/*
 * The load fails with the expected error and the destination never runs
 * but keeps answering; a fresh destination without the fault loads the
 * same file into a guest equal to the source.
 */
static void run_load_case(gconstpointer opaque)
{
    const LoadCase *c = opaque;
    const SavedImage *img = saved_image(c->mode);
    QTestState *dst = rel_start_destination(FAULT_ON, c->mode);
    g_autoptr(GArray) fds_before = NULL;
    g_autoptr(GArray) fds_after = NULL;

    inject(dst, c->fault);
    fds_before = rel_open_fds(qtest_pid(dst));
    migrate_incoming_uri_keep(dst, img->uri);
    migrate_wait_status(dst, "failed", MIG_TIMEOUT);
    rel_assert_error_contains(dst, c->expect[0], c->expect[1], c->expect[2],
                              NULL);
    log_error_desc(dst);
    /* The failed load left nothing open (the file, multifd channels). */
    fds_after = rel_open_fds(qtest_pid(dst));
    rel_assert_same_fds(qtest_pid(dst), fds_before, fds_after, c->path);
    rel_assert_destination_never_ran(dst);
    qtest_quit(dst);

    dst = rel_start_destination(NULL, c->mode);
    migrate_incoming_uri_keep(dst, img->uri);
    migrate_wait_status(dst, "completed", MIG_TIMEOUT);
    mig_assert_runstate(dst, "paused");
    assert_digests(dst, img->digests);
    rel_assert_ab_ok(dst);
    qtest_quit(dst);
}

static const LoadCase load_cases[] = {
    {
        "/fault/load/main/eio",
        MODE_PLAIN,
        "'point': 'load-main', 'after-bytes': 4194304",
        {"injected fault at load-main after 4194304 bytes",
         "Input/output error"},
    },
    {
        "/fault/load/main/short",
        MODE_PLAIN,
        "'point': 'load-main', 'after-bytes': 4194304, 'short': true",
        {"Unexpected end of migration stream"},
    },
    {
        "/fault/load/main/mapped-ram",
        MODE_MAPPED_RAM,
        "'point': 'load-main', 'after-bytes': 20971520",
        {"injected fault at load-main", "Input/output error"},
    },
    {
        /*
         * Any channel, as for the save: the readers of all channels take
         * extents from one queue, so one channel may read nothing.
         */
        "/fault/load/multifd/channel",
        MODE_MULTIFD,
        "'point': 'load-multifd', 'after-bytes': 2097152",
        {"Channel 'multifd-file-",
         "': injected fault at load-multifd after 2097152 bytes",
         "Input/output error"},
    },
    {
        "/fault/load/multifd/short",
        MODE_MULTIFD,
        "'point': 'load-multifd', 'after-bytes': 1048576, 'short': true",
        {"Unexpected end of file on channel 'multifd-file-"},
    },
    {
        "/fault/load/bitmaps",
        MODE_MAPPED_RAM,
        "'point': 'load-bitmaps'",
        {"Error reading dirty bitmap"},
    },
    {
        "/fault/load/device-state",
        MODE_PLAIN,
        "'point': 'load-device-state', 'after-bytes': 64",
        {"injected fault at load-device-state", "Input/output error"},
    },
    {
        "/fault/load/device-state/short",
        MODE_MULTIFD,
        "'point': 'load-device-state', 'short': true",
        {"Unexpected end of migration stream (injected at "
         "load-device-state"},
    },
};

/* --- over sockets: both processes see the failure --- */

/*
 * The source's writes fail part-way over unix: the source fails and runs
 * on; the destination loses its stream, fails, and never runs.
 */
static void test_save_socket(void)
{
    QTestState *dst = rel_start_destination(NULL, MODE_PLAIN);
    QTestState *src = rel_start_source(FAULT_ON, MODE_PLAIN);
    g_autofree char *uri =
        g_strdup_printf("unix:%s/mig.sock", qtest_tmpdir(dst));

    migrate_incoming_uri_keep(dst, uri);
    inject(src, "'point': 'save-main', 'after-bytes': 16777216");
    migrate_uri(src, uri);
    migrate_wait_status(src, "failed", MIG_TIMEOUT);
    rel_assert_error_contains(src, "injected fault at save-main", NULL);
    migrate_wait_status(dst, "failed", MIG_TIMEOUT);
    rel_assert_destination_never_ran(dst);
    qtest_quit(dst);
    rel_assert_source_sound(src, true);

    /* Without the fault, the same source migrates to a new destination. */
    clear_fault(src);
    dst = rel_start_destination(NULL, MODE_PLAIN);
    g_free(uri);
    uri = g_strdup_printf("unix:%s/mig.sock", qtest_tmpdir(dst));
    migrate_incoming_uri_keep(dst, uri);
    migrate_and_wait(src, dst, uri);
    mig_assert_same_ram(src, dst);
    rel_assert_ab_ok(dst);
    qtest_quit(dst);
    qtest_quit(src);
}

/*
 * The destination's reads fail part-way (multifd over tcp, one channel's
 * socket): it fails and never runs; the source sees its peer go and runs
 * on.
 */
static void test_load_multifd_socket(void)
{
    QTestState *dst = rel_start_destination(FAULT_ON, MODE_PLAIN);
    QTestState *src = rel_start_source(NULL, MODE_PLAIN);
    g_autofree char *uri =
        g_strdup_printf("unix:%s/mig.sock", qtest_tmpdir(dst));

    migrate_set_capability(src, "multifd", true);
    migrate_set_capability(dst, "multifd", true);
    inject(dst, "'point': 'load-multifd', 'after-bytes': 8388608");
    migrate_incoming_uri_keep(dst, uri);
    migrate_uri(src, uri);
    migrate_wait_status(dst, "failed", MIG_TIMEOUT);
    rel_assert_error_contains(dst, "injected fault at load-multifd",
                              "Input/output error", NULL);
    rel_assert_destination_never_ran(dst);
    migrate_wait_status(src, "failed", MIG_TIMEOUT);
    rel_assert_source_sound(src, true);
    qtest_quit(dst);
    qtest_quit(src);
}

static void cleanup_saved(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(saved); i++) {
        if (saved[i].uri) {
            unlink(saved[i].uri + strlen("file:"));
            g_free(saved[i].uri);
            g_hash_table_unref(saved[i].digests);
        }
    }
    if (scratch_dir) {
        rmdir(scratch_dir);
        g_free(scratch_dir);
    }
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    rel_ram_mib = 64; /* small and quick; the points do not need more */
    g_test_add_func("/fault/disabled", test_disabled);
    g_test_add_func("/fault/bad-arguments", test_bad_arguments);
    for (size_t i = 0; i < G_N_ELEMENTS(save_cases); i++) {
        g_test_add_data_func(save_cases[i].path, &save_cases[i], run_save_case);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(load_cases); i++) {
        g_test_add_data_func(load_cases[i].path, &load_cases[i], run_load_case);
    }
    g_test_add_func("/fault/save/multifd/other-channel",
                    test_save_other_channel);
    g_test_add_func("/fault/save/socket", test_save_socket);
    g_test_add_func("/fault/load/multifd-socket", test_load_multifd_socket);
    ret = g_test_run();
    cleanup_saved();
    return ret;
}
