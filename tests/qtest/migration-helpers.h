/*
 * Migration helpers shared by the qtest programs that move a guest
 * between two minivm processes (migration-test, multifd-test,
 * mapped-ram-test, fdset-test and, through reliability-util, the
 * reliability tests): starting the source and destination, the migrate
 * commands, query-migrate, and the checks every migration ends with —
 * equal RAM digests, the a-b pattern whole, the guest alive. QEMU keeps
 * the same kind of helpers in tests/qtest/migration-helpers.c.
 *
 * libqtest.h has the lower-level ones (migrate_set_capability,
 * migrate_set_parameter, migrate_wait_status).
 */
#ifndef TESTS_QTEST_MIGRATION_HELPERS_H
#define TESTS_QTEST_MIGRATION_HELPERS_H

#include "qemu/osdep.h"

#include "libqtest.h"

/* How long a migration in a test may take (scaled by libqtest). */
#define MIG_TIMEOUT 120

/* --- the VMs --- */

void mig_stop(QTestState *s);
void mig_cont(QTestState *s);
/* Asserts query-status says expected ("running", "paused", ...). */
void mig_assert_runstate(QTestState *s, const char *expected);
/* PATH name inside s's temporary directory (g_free it). */
char *mig_tmp_path(QTestState *s, const char *name);
/* A TCP port on 127.0.0.1 nobody listens on right now (the kernel's pick). */
int mig_free_tcp_port(void);

/*
 * A source started with args; an a-b guest (args name "a-b") has printed
 * "AB" first, so it has run a little. Migration bandwidth is unlimited.
 */
QTestState *mig_start_source(const char *args);
/* A destination: args plus "-incoming defer", waiting for migrate-incoming. */
QTestState *mig_start_destination(const char *args);

/*
 * multifd with channels channels (0: off) and mapped-ram on or off; the
 * same call sets up either side.
 */
void mig_set_multifd(QTestState *s, int channels, bool mapped_ram);

/* --- migrating --- */

/* migrate {uri}; asserts the command is accepted. */
void migrate_uri(QTestState *s, const char *uri);
/* migrate-incoming {uri}; a failed load then exits the destination. */
void migrate_incoming_uri(QTestState *s, const char *uri);
/* migrate-incoming {uri, exit-on-error: false}: it keeps serving QMP. */
void migrate_incoming_uri_keep(QTestState *s, const char *uri);

/*
 * migrate src to uri (dst is listening there) and wait until both sides
 * completed.
 */
void migrate_and_wait(QTestState *src, QTestState *dst, const char *uri);

/* query-migrate's return value (json_node_unref it). */
JsonNode *migrate_query(QTestState *s);
/* Its "ram" object; *hold keeps it alive (json_node_unref it). */
JsonObject *migrate_query_ram(QTestState *s, JsonNode **hold);
/* Its "error-desc" (g_free it); fails the test when there is none. */
char *migrate_error_desc(QTestState *s);

/* --- checks --- */

/*
 * Every RAM block's digest is the same on both (both stopped). Returns
 * how many blocks were compared.
 */
guint mig_assert_same_ram(QTestState *a, QTestState *b);
/*
 * The a-b checker over the first ram_size bytes (what -m said) passes;
 * the guest must be stopped.
 */
void mig_assert_ab_ok(QTestState *s, uint64_t ram_size);
/* The guest runs: its serial port shows two more B's than it does now. */
void mig_wait_alive(QTestState *s);
/* Waits until the running guest changes pc.ram (its vCPU has started). */
void mig_wait_guest_writes(QTestState *s);

/*
 * The command (qmp_fmt, printf-style) fails with desc through QMP, and
 * hmp_line fails with "Error: desc" through HMP.
 */
void mig_expect_error_both(QTestState *s, const char *desc,
                           const char *hmp_line, const char *qmp_fmt, ...)
    G_GNUC_PRINTF(4, 5);

/*
 * multifd is on, mapped-ram off: migrate to file:FILE and to exec: is
 * refused for lacking extra channels, and with direct-io to unix:SOCK for
 * lacking extra fds (QMP and HMP). Nothing is created; direct-io ends off.
 */
void mig_expect_multifd_transport_refusals(QTestState *s, const char *file,
                                           const char *sock);
/* multifd-channels value (out of 1..255) is refused, QMP and HMP. */
void mig_expect_multifd_channels_refused(QTestState *s, int value);
/* mapped-ram is on: setting multifd-compression to method is refused. */
void mig_expect_compression_refused(QTestState *s, const char *method);
/*
 * A compression method is set: turning mapped-ram on is refused (QMP names
 * the capability cap, "mapped-ram" or its alias "fixed-ram").
 */
void mig_expect_mapped_ram_refused(QTestState *s, const char *cap);

#endif
