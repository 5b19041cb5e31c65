/*
 * libqtest: the integration-test harness. It starts minivm as a child
 * process in a private temporary directory, talks QMP to it over its UNIX
 * socket, reads its serial output and guest memory, and makes sure no
 * process is ever left behind: the child dies with the test (PDEATHSIG),
 * an abort (every failed g_assert) or exit kills every live child, and
 * every wait has a timeout that fails the test with a clear message.
 *
 * Usage:
 *     QTestState *s = qtest_init("-m 128M -workload a-b");
 *     qtest_wait_serial(s, "A", 10);
 *     JsonNode *ret = qtest_qmp_assert_success(s, "{'execute': 'stop'}");
 *     ...
 *     qtest_quit(s);
 *
 * Command strings are JSON in which single quotes may stand for double
 * quotes (only in the format, never in the arguments it formats), so tests
 * read like QEMU's. A QTestState is either a VM (it owns the process and
 * its first QMP connection) or an extra client of a VM (qtest_client_new),
 * and every qtest_qmp* function accepts either.
 *
 * The binary is $MINIVM_BINARY (set by tests/qtest/meson.build).
 * Timeouts are in seconds; $QTEST_TIMEOUT_MULT (default 1) scales every
 * one of them, for slow sanitizer builds.
 */
#ifndef TESTS_QTEST_LIBQTEST_H
#define TESTS_QTEST_LIBQTEST_H

#include "qemu/osdep.h"
#include <json-glib/json-glib.h>

typedef struct QTestState QTestState;

/* Default time to wait for one QMP reply. */
#define QTEST_QMP_TIMEOUT 60

/*
 * Starts minivm with "-qmp unix:TMP/qmp.sock,server=on,wait=off
 * -serial file:TMP/serial.txt" plus extra_args (split like a shell would;
 * every "{tmp}" in them becomes the instance's temporary directory), waits
 * for the socket, reads the greeting and negotiates capabilities. stdin is
 * /dev/null, stdout goes to stderr (the test's TAP stream stays clean), and
 * descriptors the test opened without O_CLOEXEC are inherited (for
 * "-add-fd fd=N"); the harness's own are all close-on-exec.
 */
QTestState *qtest_init(const char *extra_args);
/* The same with the extra arguments as a NULL-terminated vector. */
QTestState *qtest_initv(const char *const *extra_argv);
/*
 * A destination for migration: extra_args plus "-incoming URI" (URI may
 * be "defer"). The same as qtest_init otherwise.
 */
QTestState *qtest_init_incoming(const char *incoming_uri,
                                const char *extra_args);

/*
 * Sends "quit", waits for the process to exit (SIGKILL after a timeout)
 * and asserts it exited with status 0 (see qtest_set_expected_status);
 * removes the temporary directory. On a client: closes the connection.
 */
void qtest_quit(QTestState *s);
/* Kills the process with SIGKILL, reaps it and cleans up (no checks). */
void qtest_kill(QTestState *s);
/*
 * Waits up to timeout_s seconds for the process to exit by itself
 * (e.g. exit-on-error after a failed incoming migration), then cleans up
 * like qtest_kill. Returns the wait status, or -1 if it had to be killed.
 */
int qtest_wait_exit(QTestState *s, int timeout_s);
/* The exit status qtest_quit expects (default 0). */
void qtest_set_expected_status(QTestState *s, int status);

pid_t qtest_pid(QTestState *s);
/* The instance's private temporary directory (removed by quit/kill). */
const char *qtest_tmpdir(QTestState *s);
/* "unix:PATH" of the QMP socket. */
const char *qtest_qmp_address(QTestState *s);
const char *qtest_qmp_socket_path(QTestState *s);
const char *qtest_serial_path(QTestState *s);

/*
 * Another QMP connection to s's VM. It reads the greeting, and negotiates
 * capabilities when negotiate is true. Close it with qtest_quit(), which
 * on a client only disconnects.
 */
QTestState *qtest_client_new(QTestState *s, bool negotiate);
/* The greeting this connection received (owned by s). */
JsonObject *qtest_qmp_greeting(QTestState *s);

/*
 * Sends a command (printf-style, single quotes allowed in fmt) and returns
 * the reply object, a "return" or an "error" (caller unrefs). Events that
 * arrive first are queued for qtest_qmp_eventwait().
 */
JsonObject *qtest_qmp(QTestState *s, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
JsonObject *qtest_vqmp(QTestState *s, const char *fmt, va_list ap)
    G_GNUC_PRINTF(2, 0);
/* The same, passing descriptors with SCM_RIGHTS along with the command. */
JsonObject *qtest_qmp_fds(QTestState *s, const int *fds, size_t nfds,
                          const char *fmt, ...) G_GNUC_PRINTF(4, 5);
/* Asserts the command succeeds (its reply is a "return"). */
void qtest_qmp_assert_success(QTestState *s, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);
/*
 * The same, returning the "return" value (a copy the caller frees with
 * json_node_unref).
 */
JsonNode *qtest_qmp_assert_success_ref(QTestState *s, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);
/*
 * Asserts the command fails with exactly this "desc" (and, unless NULL,
 * this "class").
 */
void qtest_qmp_expect_error(QTestState *s, const char *expected_class,
                            const char *expected_desc, const char *fmt, ...)
    G_GNUC_PRINTF(4, 5);

/* Sends bytes as they are (protocol tests); no reply is read. */
void qtest_qmp_send_raw(QTestState *s, const void *buf, size_t len);
/*
 * Reads the next reply (non-event message), queueing events, for up to
 * timeout_s seconds. Returns NULL if the server closed the connection;
 * fails the test on timeout.
 */
JsonObject *qtest_qmp_receive(QTestState *s, int timeout_s);
/*
 * Like qtest_qmp_receive but returns NULL also when nothing arrived within
 * timeout_ms (for asserting that a server stays silent).
 */
JsonObject *qtest_qmp_receive_maybe(QTestState *s, int timeout_ms,
                                    bool *closed);
/* True once the server closed this connection (EOF seen). */
bool qtest_qmp_closed(QTestState *s);

/*
 * Waits for the event (taking it from the queue if it already arrived)
 * and returns it (caller unrefs). Fails the test after timeout_s.
 */
JsonObject *qtest_qmp_eventwait_timeout(QTestState *s, const char *event,
                                        int timeout_s);
JsonObject *qtest_qmp_eventwait(QTestState *s, const char *event);
/* The first queued event of that name, removed from the queue, or NULL. */
JsonObject *qtest_qmp_event_take(QTestState *s, const char *event);
void qtest_qmp_events_clear(QTestState *s);

/* Runs an HMP command through human-monitor-command; g_free the text. */
char *qtest_hmp(QTestState *s, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* The serial output so far (g_free it). */
char *qtest_serial_read(QTestState *s);
/*
 * Waits until the serial output contains substring; fails the test after
 * timeout_s (showing what was printed).
 */
void qtest_wait_serial(QTestState *s, const char *substring, int timeout_s);

/* query-status's "status" ("running", "paused", "prelaunch", ...). */
char *qtest_query_status(QTestState *s);
/* Polls query-status until it is status; fails after timeout_s. */
void qtest_wait_status(QTestState *s, const char *status, int timeout_s);

/*
 * x-query-ram-digest: RAM block name ("pc.ram") -> SHA-256 of its bytes
 * (64 lowercase hex digits). Destroy the table with g_hash_table_unref.
 */
GHashTable *qtest_ram_digests(QTestState *s);
/* Guest-physical memory [addr, addr + size) via pmemsave to a temp file. */
GBytes *qtest_pmemsave(QTestState *s, uint64_t addr, uint64_t size);
/*
 * Runs the a-b checker on [0, min(100 MiB, ram_size)) of pc.ram (ram_size
 * is what -m said) read with pmemsave; the guest must be stopped. Returns
 * the checker's verdict; its report (the first bad pages, or what it saw)
 * goes to *report when report is not NULL (g_free it).
 */
bool qtest_ab_check(QTestState *s, uint64_t ram_size, char **report);

/* --- migration helpers --- */
void migrate_set_capability(QTestState *s, const char *name, bool value);
/* value is JSON (e.g. "4", "'zstd'", "true"). */
void migrate_set_parameter(QTestState *s, const char *name,
                           const char *json_value);
/* query-migrate's "status". */
char *migrate_query_status(QTestState *s);
/*
 * Polls query-migrate until its status is `status`; fails the test on
 * timeout, or when it reaches "failed"/"completed"/"cancelled" instead
 * (showing error-desc).
 */
void migrate_wait_status(QTestState *s, const char *status, int timeout_s);

/* --- helpers for assertions --- */
/* A member that must be there; fails the test naming the member. */
const char *qtest_json_get_string(JsonObject *obj, const char *member);
int64_t qtest_json_get_int(JsonObject *obj, const char *member);
JsonObject *qtest_json_get_object(JsonObject *obj, const char *member);
/* The object as one line of JSON (g_free it), for messages. */
char *qtest_json_to_string(JsonObject *obj);
/* Scales a timeout in seconds by $QTEST_TIMEOUT_MULT. */
int qtest_scale_timeout(int seconds);

#endif
