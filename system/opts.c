/*
 * "NAME,key=value,..." option strings (see include/system/opts.h). Values
 * cannot contain commas; none of minivm's options need one.
 */
#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "system/opts.h"

GHashTable *opts_parse(const char *str, char **name, GError **errp)
{
    g_auto(GStrv) parts = g_strsplit(str ? str : "", ",", -1);
    g_autoptr(GHashTable) opts =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    int i = 0;

    if (name) {
        if (!parts[0] || !*parts[0] || strchr(parts[0], '=')) {
            error_setg(errp, "'%s' must start with a name", str ? str : "");
            return NULL;
        }
        *name = g_strdup(parts[0]);
        i = 1;
    }
    for (; parts[i]; i++) {
        char *eq = strchr(parts[i], '=');
        char *key =
            eq ? g_strndup(parts[i], eq - parts[i]) : g_strdup(parts[i]);

        if (!*key || g_hash_table_contains(opts, key)) {
            if (*key) {
                error_setg(errp, "Duplicate parameter '%s' in '%s'", key, str);
            } else {
                error_setg(errp, "Empty parameter name in '%s'", str);
            }
            g_free(key);
            if (name) {
                g_clear_pointer(name, g_free);
            }
            return NULL;
        }
        g_hash_table_insert(opts, key, g_strdup(eq ? eq + 1 : "on"));
    }
    return g_steal_pointer(&opts);
}

char *opts_take(GHashTable *opts, const char *key)
{
    gpointer stolen_key, value;

    if (!g_hash_table_steal_extended(opts, key, &stolen_key, &value)) {
        return NULL;
    }
    g_free(stolen_key);
    return value;
}

bool opts_take_size(GHashTable *opts, const char *key, char default_suffix,
                    uint64_t *value, GError **errp)
{
    g_autofree char *str = opts_take(opts, key);

    if (!str) {
        return true;
    }
    if (qemu_strtosz(str, default_suffix, value) < 0) {
        error_setg(errp, "Parameter '%s' expects a size, not '%s'", key, str);
        return false;
    }
    return true;
}

bool opts_take_bool(GHashTable *opts, const char *key, bool *value,
                    GError **errp)
{
    g_autofree char *str = opts_take(opts, key);

    if (!str) {
        return true;
    }
    if (!strcmp(str, "on") || !strcmp(str, "yes") || !strcmp(str, "true")) {
        *value = true;
    } else if (!strcmp(str, "off") || !strcmp(str, "no") ||
               !strcmp(str, "false")) {
        *value = false;
    } else {
        error_setg(errp, "Parameter '%s' expects 'on' or 'off'", key);
        return false;
    }
    return true;
}

bool opts_check_empty(GHashTable *opts, const char *what, GError **errp)
{
    GHashTableIter iter;
    gpointer key;

    g_hash_table_iter_init(&iter, opts);
    if (g_hash_table_iter_next(&iter, &key, NULL)) {
        error_setg(errp, "%s: invalid parameter '%s'", what, (const char *)key);
        return false;
    }
    return true;
}
