/*
 * One QMP client session run in process, for fuzzers and unit tests: bytes
 * in, everything the server said out, through the real protocol code
 * (monitor/qmp.c: splitter, parser, request checks, dispatch, events) but
 * without sockets or a running main loop.
 */
#ifndef MONITOR_QMP_FUZZ_ENTRY_H
#define MONITOR_QMP_FUZZ_ENTRY_H

#include "qemu/osdep.h"

/*
 * Connects a client, feeds it data[0, len) in pieces of at most chunk bytes
 * (0: all at once), as socket reads would deliver them, then disconnects
 * it. After each piece it runs what the main loop would run next (work
 * that commands and events queued with main_loop_invoke()), so it must be
 * called on the thread that owns the default GMainContext. The BQL is
 * taken if the caller does not hold it.
 *
 * allowed(name) decides which commands may run (NULL: all); the others get
 * CommandNotFound, so a fuzzer can keep commands with effects outside the
 * process (migrate, pmemsave, ...) out of reach. Everything the server
 * sent -- greeting, replies, events, each a line ending in "\r\n" -- is
 * appended to out when it is not NULL.
 */
void qmp_client_feed_for_test(const uint8_t *data, size_t len, size_t chunk,
                              bool (*allowed)(const char *name), GString *out);

#endif
