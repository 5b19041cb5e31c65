/*
 * The human monitor: the command registry every subsystem adds to, line
 * parsing, `help`, and the two ways people reach it: `-monitor stdio` and
 * `-monitor unix:PATH,server=on,wait=off` (several clients; the same
 * non-blocking connections as QMP). human-monitor-command runs a line
 * through hmp_run_command() as well.
 *
 * As in QEMU, output lines end in "\r\n" (terminals and sockets alike),
 * and the prompt is "(minivm) ".
 */
#include "qemu/osdep.h"

#include <glib-unix.h>

#include "monitor/hmp.h"
#include "monitor/monitor-internal.h"
#include "monitor/monitor.h"

#define HMP_PROMPT         "(minivm) "
#define HMP_MAX_LINE_BYTES (64 * 1024)

static GPtrArray *hmp_commands; /* of const HMPCommand *, "name" commands */
static GPtrArray *hmp_infos;    /* "info name" subcommands */

/* -monitor stdio */
static guint stdio_watch;
static GString *stdio_line;
static bool stdio_discarding; /* the current line is too long */
static bool stdio_is_tty;

typedef struct HmpClient {
    bool discarding; /* the current line is too long */
} HmpClient;

static const MonitorConnOps hmp_ops;
static const HMPCommand hmp_help_cmd;

/* --- registry --- */

static void hmp_init_registry(void)
{
    if (!hmp_commands) {
        hmp_commands = g_ptr_array_new();
        hmp_infos = g_ptr_array_new();
        g_ptr_array_add(hmp_commands, (gpointer)&hmp_help_cmd);
        hmp_register_builtin_commands();
    }
}

void hmp_register_command(const HMPCommand *cmd)
{
    hmp_init_registry();
    g_ptr_array_add(hmp_commands, (gpointer)cmd);
}

void hmp_register_info(const HMPCommand *cmd)
{
    hmp_init_registry();
    g_ptr_array_add(hmp_infos, (gpointer)cmd);
}

/* A name may list aliases: "cont|c". */
static bool hmp_name_matches(const char *names, const char *word)
{
    size_t len = strlen(word);

    while (*names) {
        const char *bar = strchr(names, '|');
        size_t n = bar ? (size_t)(bar - names) : strlen(names);

        if (n == len && !strncmp(names, word, n)) {
            return true;
        }
        if (!bar) {
            break;
        }
        names = bar + 1;
    }
    return false;
}

static const HMPCommand *hmp_find(GPtrArray *table, const char *word)
{
    for (guint i = 0; i < table->len; i++) {
        const HMPCommand *cmd = g_ptr_array_index(table, i);

        if (hmp_name_matches(cmd->name, word)) {
            return cmd;
        }
    }
    return NULL;
}

static gint hmp_cmp_name(gconstpointer a, gconstpointer b)
{
    const HMPCommand *ca = *(const HMPCommand *const *)a;
    const HMPCommand *cb = *(const HMPCommand *const *)b;

    return strcmp(ca->name, cb->name);
}

void hmp_handle_error(GString *out, GError *err)
{
    if (err) {
        g_string_append_printf(out, "Error: %s\n", err->message);
        g_error_free(err);
    }
}

bool hmp_parse_bool(const char *str, bool *value, GError **errp)
{
    if (!g_ascii_strcasecmp(str, "on") || !g_ascii_strcasecmp(str, "yes") ||
        !g_ascii_strcasecmp(str, "true")) {
        *value = true;
        return true;
    }
    if (!g_ascii_strcasecmp(str, "off") || !g_ascii_strcasecmp(str, "no") ||
        !g_ascii_strcasecmp(str, "false")) {
        *value = false;
        return true;
    }
    error_setg(errp,
               "Invalid boolean '%s': expected on, off, yes, no, true or false",
               str);
    return false;
}

/* --- help --- */

static void hmp_help_line(GString *out, const char *prefix,
                          const HMPCommand *cmd)
{
    g_string_append_printf(out, "%s%s%s%s -- %s\n", prefix, cmd->name,
                           cmd->params && *cmd->params ? " " : "",
                           cmd->params ? cmd->params : "",
                           cmd->help ? cmd->help : "");
}

static void hmp_help_table(GString *out, GPtrArray *table, const char *prefix)
{
    g_autoptr(GPtrArray) sorted = g_ptr_array_copy(table, NULL, NULL);

    g_ptr_array_sort(sorted, hmp_cmp_name);
    for (guint i = 0; i < sorted->len; i++) {
        hmp_help_line(out, prefix, g_ptr_array_index(sorted, i));
    }
}

static void hmp_help(GString *out, int argc, char **argv)
{
    const HMPCommand *cmd;

    if (argc == 0) {
        hmp_help_table(out, hmp_commands, "");
        g_string_append(out, "info [subcommand] -- show various information "
                             "about the system state\n");
        return;
    }
    if (!strcmp(argv[0], "info")) {
        if (argc > 1 && (cmd = hmp_find(hmp_infos, argv[1]))) {
            hmp_help_line(out, "info ", cmd);
        } else {
            hmp_help_table(out, hmp_infos, "info ");
        }
        return;
    }
    cmd = hmp_find(hmp_commands, argv[0]);
    if (!cmd) {
        g_string_append_printf(out, "unknown command: '%s'\n", argv[0]);
        return;
    }
    hmp_help_line(out, "", cmd);
}

static const HMPCommand hmp_help_cmd = {
    .name = "help|?",
    .params = "[cmd]",
    .help = "show the help",
    .handler = hmp_help,
};

/* --- running a line --- */

/*
 * Splits a line into words: blanks separate them, "..." keeps blanks
 * (with \" and \\ inside). NULL + errp for an unterminated quote.
 */
static GPtrArray *hmp_split_words(const char *line, GError **errp)
{
    g_autoptr(GPtrArray) words = g_ptr_array_new_with_free_func(g_free);
    const char *p = line;

    for (;;) {
        GString *word;

        while (g_ascii_isspace(*p)) {
            p++;
        }
        if (!*p) {
            break;
        }
        word = g_string_new(NULL);
        while (*p && !g_ascii_isspace(*p)) {
            if (*p != '"') {
                g_string_append_c(word, *p++);
                continue;
            }
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\' && (p[1] == '"' || p[1] == '\\')) {
                    p++;
                }
                g_string_append_c(word, *p);
            }
            if (*p != '"') {
                g_string_free(word, TRUE);
                error_setg(errp, "unterminated string literal");
                return NULL;
            }
            p++;
        }
        g_ptr_array_add(words, g_string_free(word, FALSE));
    }
    g_ptr_array_add(words, NULL);
    return g_steal_pointer(&words);
}

/* "\n" -> "\r\n", as QEMU's monitor output does. */
static char *hmp_crlf(const GString *text)
{
    GString *out = g_string_sized_new(text->len + 16);

    for (gsize i = 0; i < text->len; i++) {
        if (text->str[i] == '\n' && (i == 0 || text->str[i - 1] != '\r')) {
            g_string_append_c(out, '\r');
        }
        g_string_append_c(out, text->str[i]);
    }
    return g_string_free(out, FALSE);
}

char *hmp_run_command(const char *cmdline)
{
    g_autoptr(GString) out = g_string_new(NULL);
    g_autoptr(GPtrArray) words = NULL;
    GError *err = NULL;
    const HMPCommand *cmd;
    char **argv;
    int argc;

    hmp_init_registry();
    words = hmp_split_words(cmdline, &err);
    if (!words) {
        hmp_handle_error(out, err);
        return hmp_crlf(out);
    }
    argv = (char **)words->pdata;
    argc = words->len - 1;
    if (argc == 0) {
        return g_strdup("");
    }
    if (!strcmp(argv[0], "info")) {
        if (argc == 1) {
            hmp_help_table(out, hmp_infos, "info ");
            return hmp_crlf(out);
        }
        cmd = hmp_find(hmp_infos, argv[1]);
        if (!cmd) {
            g_string_append_printf(out, "unknown command: 'info %s'\n",
                                   argv[1]);
            return hmp_crlf(out);
        }
        cmd->handler(out, argc - 2, argv + 2);
        return hmp_crlf(out);
    }
    cmd = hmp_find(hmp_commands, argv[0]);
    if (!cmd) {
        g_string_append_printf(out, "unknown command: '%s'\n", argv[0]);
        return hmp_crlf(out);
    }
    cmd->handler(out, argc - 1, argv + 1);
    return hmp_crlf(out);
}

/* --- -monitor unix:... --- */

static void hmp_conn_write_str(MonitorConn *conn, const char *s)
{
    monitor_conn_write(conn, s, strlen(s));
}

static void hmp_conn_opened(MonitorConn *conn)
{
    conn->proto = g_new0(HmpClient, 1);
    hmp_conn_write_str(conn, "minivm " MINIVM_VERSION
                             " monitor - type 'help' for more "
                             "information\r\n" HMP_PROMPT);
}

static void hmp_conn_run_line(MonitorConn *conn, char *line, uint64_t line_end)
{
    g_autofree char *output = NULL;
    size_t len = strlen(line);

    if (len > 0 && line[len - 1] == '\r') {
        line[len - 1] = '\0';
    }
    monitor_conn_dispatch_begin(conn, line_end);
    output = hmp_run_command(line);
    monitor_conn_dispatch_end(conn);
    hmp_conn_write_str(conn, output);
    hmp_conn_write_str(conn, HMP_PROMPT);
}

static void hmp_conn_input(MonitorConn *conn)
{
    HmpClient *c = conn->proto;

    while (conn->in_off < conn->in->len && !conn->dead &&
           !monitor_conn_output_full(conn)) {
        char *start = (char *)conn->in->data + conn->in_off;
        size_t avail = conn->in->len - conn->in_off;
        char *nl = memchr(start, '\n', avail);
        size_t line_len;

        if (!nl) {
            if (avail > HMP_MAX_LINE_BYTES) {
                /* Drop the long line's bytes as they come. */
                conn->in_off = conn->in->len;
                if (!c->discarding) {
                    c->discarding = true;
                    hmp_conn_write_str(conn, "Error: line too long\r\n");
                }
            }
            break;
        }
        line_len = nl - start;
        conn->in_off += line_len + 1;
        if (c->discarding || line_len > HMP_MAX_LINE_BYTES) {
            if (!c->discarding) {
                hmp_conn_write_str(conn, "Error: line too long\r\n");
            }
            c->discarding = false;
            hmp_conn_write_str(conn, HMP_PROMPT);
            continue;
        }
        {
            g_autofree char *line = g_strndup(start, line_len);

            hmp_conn_run_line(conn, line, conn->in_base + conn->in_off);
        }
    }
}

static void hmp_conn_closed(MonitorConn *conn)
{
}

static void hmp_conn_free(MonitorConn *conn)
{
    g_free(conn->proto);
    conn->proto = NULL;
}

static const MonitorConnOps hmp_ops = {
    .kind = "HMP",
    .opened = hmp_conn_opened,
    .input = hmp_conn_input,
    .closed = hmp_conn_closed,
    .free = hmp_conn_free,
};

/* --- -monitor stdio --- */

static void stdio_print(const char *s)
{
    fputs(s, stdout);
    fflush(stdout);
}

static void stdio_run_line(const char *line, size_t len)
{
    g_autofree char *copy = g_strndup(line, len);
    g_autofree char *output = NULL;

    if (len > 0 && copy[len - 1] == '\r') {
        copy[len - 1] = '\0';
    }
    output = hmp_run_command(copy);
    stdio_print(output);
}

static gboolean stdio_readable(gint fd, GIOCondition cond, gpointer opaque)
{
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));
    const char *p = buf;
    const char *end;

    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        return G_SOURCE_CONTINUE;
    }
    if (n <= 0) {
        /* End of input: nothing more will come, stop watching. */
        stdio_watch = 0;
        return G_SOURCE_REMOVE;
    }
    end = buf + n;
    while (p < end) {
        const char *nl = memchr(p, '\n', end - p);
        size_t chunk = (nl ? nl : end) - p;

        if (!stdio_discarding) {
            g_string_append_len(stdio_line, p, chunk);
            if (stdio_line->len > HMP_MAX_LINE_BYTES) {
                stdio_discarding = true;
                g_string_truncate(stdio_line, 0);
                stdio_print("Error: line too long\r\n");
            }
        }
        if (!nl) {
            break;
        }
        p = nl + 1;
        if (!stdio_discarding) {
            stdio_run_line(stdio_line->str, stdio_line->len);
        }
        stdio_discarding = false;
        g_string_truncate(stdio_line, 0);
        if (stdio_is_tty) {
            stdio_print(HMP_PROMPT);
        }
    }
    return G_SOURCE_CONTINUE;
}

static bool hmp_init_stdio(GError **errp)
{
    if (stdio_watch) {
        error_setg(errp,
                   "-monitor: stdio is already in use by another monitor");
        return false;
    }
    stdio_line = g_string_new(NULL);
    stdio_is_tty = isatty(STDIN_FILENO);
    if (stdio_is_tty) {
        stdio_print(
            "minivm " MINIVM_VERSION
            " monitor - type 'help' for more information\r\n" HMP_PROMPT);
    }
    stdio_watch = g_unix_fd_add(STDIN_FILENO, G_IO_IN | G_IO_HUP | G_IO_ERR,
                                stdio_readable, NULL);
    return true;
}

bool monitor_init_hmp(const char *spec, GError **errp)
{
    monitor_note_main_thread();
    hmp_init_registry();
    if (!strcmp(spec, "stdio")) {
        return hmp_init_stdio(errp);
    }
    if (!strcmp(spec, "none")) {
        return true;
    }
    if (!monitor_listen(spec, &hmp_ops, errp)) {
        error_prepend(errp, "-monitor: ");
        return false;
    }
    return true;
}

void monitor_hmp_cleanup(void)
{
    if (stdio_watch) {
        g_source_remove(stdio_watch);
        stdio_watch = 0;
    }
    if (stdio_line) {
        g_string_free(stdio_line, TRUE);
        stdio_line = NULL;
    }
}
