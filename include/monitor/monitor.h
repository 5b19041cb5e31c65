/*
 * The monitors: QMP (JSON, machines) and HMP (text, people), and the events
 * QMP clients receive.
 */
#ifndef MONITOR_MONITOR_H
#define MONITOR_MONITOR_H

#include "qemu/osdep.h"
#include <json-glib/json-glib.h>

/* -qmp unix:PATH,server=on,wait=off | tcp:HOST:PORT,server=on,wait=off */
bool monitor_init_qmp(const char *spec, GError **errp);
/* -monitor stdio | unix:PATH,server=on,wait=off */
bool monitor_init_hmp(const char *spec, GError **errp);
void monitor_cleanup(void);

/*
 * Sends {"event": name, "data": data, "timestamp": ...} to every QMP client
 * that finished negotiation. Callable from any thread (it is queued to the
 * main loop); takes ownership of data (may be NULL: empty object).
 */
void monitor_qapi_event_emit(const char *name, JsonObject *data);

/*
 * Runs one HMP command line and returns its output text (g_free it).
 * Used by human-monitor-command and by the interactive HMP. BQL held.
 */
char *hmp_run_command(const char *cmdline);

/*
 * Descriptors that arrived with SCM_RIGHTS on the QMP connection whose
 * command is being dispatched. monitor_fd_take() hands the oldest one to
 * the caller (who owns it) or returns -1. Main loop thread only.
 */
int monitor_fd_take(void);

/* --- monitor/fds.c: getfd/closefd names and fdsets --- */
/* The fd stored under name by getfd, dup'ed; -1 + errp if none. */
int monitor_get_fd(const char *name, GError **errp);
/* Registers fdset hooks with qemu_open(); called once at startup. */
void monitor_fdsets_init(void);
/* -add-fd fd=N,set=ID[,opaque=STR] */
bool monitor_fdset_add_from_cmdline(const char *opts, GError **errp);

#endif
