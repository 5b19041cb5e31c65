/*
 * Helpers shared by the reliability tests (fault-test, enospc-test,
 * cancel-test, access-test): the save modes, sources and destinations
 * with the a-b guest, and the checks every failure must pass — the source
 * still runs with its memory whole, the destination never runs a
 * half-loaded guest, and a retry loads a guest equal to the source's.
 * The generic migration helpers (migrate_uri, migrate_error_desc,
 * mig_assert_same_ram, ...) come from migration-helpers.h.
 */
#ifndef TESTS_QTEST_RELIABILITY_UTIL_H
#define TESTS_QTEST_RELIABILITY_UTIL_H

#include "qemu/osdep.h"

#include "migration-helpers.h"

/*
 * The guest every helper starts: "-m <rel_ram_mib>M -workload a-b". 128
 * unless a test sets it first (smaller guests make faster tests).
 */
extern unsigned rel_ram_mib;
#define REL_RAM_SIZE ((uint64_t)rel_ram_mib * MiB)

/* How a migration is written. */
typedef enum {
    MODE_PLAIN,      /* the sequential stream */
    MODE_MAPPED_RAM, /* mapped-ram, one channel */
    MODE_MULTIFD,    /* mapped-ram + multifd, 4 channels */
    MODE_DIO,        /* mapped-ram + multifd + direct-io */
} RelMode;

const char *rel_mode_name(RelMode mode);
/* Sets the capabilities and parameters of mode (on either side). */
void rel_set_mode(QTestState *s, RelMode mode);

/*
 * A running a-b guest (extra arguments appended, may be NULL) that has
 * printed "AB", set to converge quickly: unlimited bandwidth, 5 s of
 * downtime allowed.
 */
QTestState *rel_start_source(const char *extra, RelMode mode);
/* A destination with -incoming defer and -S (stays paused after loading). */
QTestState *rel_start_destination(const char *extra, RelMode mode);

/* Asserts error-desc contains every one of the NULL-terminated needles. */
void rel_assert_error_contains(QTestState *s, ...) G_GNUC_NULL_TERMINATED;

/* The a-b checker over the guest's REL_RAM_SIZE (stopped). */
void rel_assert_ab_ok(QTestState *s);

/*
 * After a failed or cancelled save: the source runs (or is paused if
 * was_running is false), its memory passes the a-b checker, and a running
 * guest goes on printing B's.
 */
void rel_assert_source_sound(QTestState *src, bool was_running);
/*
 * After a failed load: the migration failed, the guest never ran (still
 * "inmigrate", cont refused, no B on its serial) and QMP still answers.
 */
void rel_assert_destination_never_ran(QTestState *dst);

/*
 * Loads uri (written by src, which is stopped now: postmigrate or paused)
 * into a fresh destination: same RAM as src, a-b pattern whole, and the
 * guest comes alive after cont.
 */
void rel_load_and_check(QTestState *src, const char *uri, RelMode mode);

/* The numbers of the descriptors the process holds (/proc/PID/fd). */
GArray *rel_open_fds(pid_t pid);
/* Asserts both lists are equal, naming what differs (readlink). */
void rel_assert_same_fds(pid_t pid, GArray *before, GArray *after,
                         const char *what);

#endif
