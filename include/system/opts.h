/*
 * Command-line option strings of the "NAME,key=value,..." kind (-object,
 * -machine, -workload): parsed into a table once, then each consumer takes
 * the keys it knows, so whatever is left over is reported as unknown.
 */
#ifndef SYSTEM_OPTS_H
#define SYSTEM_OPTS_H

#include "qemu/osdep.h"

/*
 * Parses str into a key -> value table (g_hash_table_unref it). With name
 * non-NULL the first element is a bare word returned there (g_free it),
 * e.g. the type of -object or the workload name. A key without "=" gets
 * the value "on". Empty keys and repeated keys are errors.
 */
GHashTable *opts_parse(const char *str, char **name, GError **errp);

/* Removes key and returns its value (g_free it), or NULL when absent. */
char *opts_take(GHashTable *opts, const char *key);
/*
 * Removes key and parses it as a size (qemu_strtosz, bare numbers scaled
 * by default_suffix); leaves *value alone when the key is absent.
 */
bool opts_take_size(GHashTable *opts, const char *key, char default_suffix,
                    uint64_t *value, GError **errp);
/* on/off/yes/no/true/false; leaves *value alone when absent. */
bool opts_take_bool(GHashTable *opts, const char *key, bool *value,
                    GError **errp);
/* Fails with "<what>: invalid parameter '<key>'" if any key is left. */
bool opts_check_empty(GHashTable *opts, const char *what, GError **errp);

#endif
