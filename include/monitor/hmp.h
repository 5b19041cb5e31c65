/*
 * HMP command registration. Each subsystem registers its own commands (the
 * migration ones live in migration/migration-hmp-cmds.c); monitor/hmp.c
 * parses a line, finds the command and runs it with the BQL held.
 *
 * A handler gets the words of the line after the command name (argv[0] is
 * the first argument; quoting with "..." keeps spaces) and appends its
 * output to out. Errors are reported with hmp_handle_error(), which prints
 * "Error: MESSAGE\n" as QEMU's HMP does.
 */
#ifndef MONITOR_HMP_H
#define MONITOR_HMP_H

#include "qemu/osdep.h"

typedef void (*HMPCommandFunc)(GString *out, int argc, char **argv);

typedef struct HMPCommand {
    const char *name;      /* "migrate_set_capability" */
    const char *params;    /* "capability state", for help */
    const char *help;      /* one line */
    HMPCommandFunc handler;
} HMPCommand;

/* cmd must outlive the monitor (static storage). */
void hmp_register_command(const HMPCommand *cmd);
/* "info NAME" subcommands; handler gets no arguments beyond NAME. */
void hmp_register_info(const HMPCommand *cmd);

/* Appends "Error: <message>\n" and frees err; no-op when err is NULL. */
void hmp_handle_error(GString *out, GError *err);

/* Parses on/off/yes/no/true/false; false + errp otherwise. */
bool hmp_parse_bool(const char *str, bool *value, GError **errp);

#endif
