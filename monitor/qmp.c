/*
 * The QMP protocol: greeting, capabilities negotiation, request checks and
 * dispatch, replies and events, each one line of JSON ending in "\r\n".
 *
 * Requests arrive as a byte stream with no framing: a small splitter finds
 * where each top-level JSON value ends (tracking strings, escapes and
 * nesting; no newline needed between values) and json-glib parses just that
 * value. The splitter enforces the limits before anything is parsed, so a
 * huge or deeply nested message costs an error reply and the bytes it
 * occupies, never memory or stack proportional to it.
 *
 * Every client has its own negotiation state and input; commands run on the
 * main loop thread with the BQL held (main_loop_run() dispatches under it).
 */
#include "qemu/osdep.h"

#include "monitor/monitor-internal.h"
#include "monitor/monitor.h"
#include "qapi/qapi-commands.h"

#define QMP_MAX_MESSAGE_BYTES (8 * 1024 * 1024)
#define QMP_MAX_DEPTH         1024

typedef enum {
    SPLIT_NEED_MORE, /* everything consumed, no complete value yet */
    SPLIT_VALUE,     /* s->value holds one complete top-level value */
    SPLIT_ERROR,     /* s->error says why the current value is refused */
} SplitResult;

typedef struct JsonSplitter {
    GString *value; /* bytes of the current top-level value */
    int64_t depth;  /* open { and [ (no overflow even when skipping) */
    bool in_value;  /* inside a top-level value */
    bool in_string; /* inside "..." */
    bool escape;    /* after a backslash in a string */
    bool in_bare;   /* a top-level number or literal */
    bool skipping;  /* discarding the rest of a refused value */
    const char *error;
} JsonSplitter;

typedef struct QmpClient {
    MonitorConn *conn;
    JsonSplitter splitter;
    bool negotiated;
} QmpClient;

static const MonitorConnOps qmp_ops;
static GPtrArray *qmp_clients; /* of QmpClient * */
/* In-process clients only (qmp-fuzz-entry.c): commands they may run. */
static QmpCommandFilter qmp_command_filter;

/* --- the splitter --- */

static void splitter_init(JsonSplitter *s)
{
    memset(s, 0, sizeof(*s));
    s->value = g_string_new(NULL);
}

static void splitter_reset_value(JsonSplitter *s)
{
    g_string_truncate(s->value, 0);
    s->depth = 0;
    s->in_value = s->in_string = s->escape = s->in_bare = false;
    s->skipping = false;
}

static bool is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Ends a bare token (number, true, null, or junk) before this byte. */
static bool ends_bare_token(char c)
{
    return is_json_space(c) || strchr("{}[]\",:", c);
}

/*
 * Moves the bytes buf[start, end) of the current value into s->value, or
 * drops them while skipping; false when that passes the size limit.
 */
static bool splitter_keep(JsonSplitter *s, const char *buf, size_t start,
                          size_t end)
{
    if (s->skipping) {
        return true;
    }
    if (s->value->len + (end - start) > QMP_MAX_MESSAGE_BYTES) {
        return false;
    }
    g_string_append_len(s->value, buf + start, end - start);
    return true;
}

/* Starts discarding the current value after a limit was passed. */
static SplitResult splitter_refuse(JsonSplitter *s, const char *why)
{
    s->error = why;
    s->skipping = true;
    g_string_truncate(s->value, 0);
    return SPLIT_ERROR;
}

/*
 * Scans buf[0, len) and stops after the first complete value, the first
 * refused one, or the end of the data; *consumed says how far it got.
 * Values that were refused are skipped silently once they end.
 */
static SplitResult splitter_feed(JsonSplitter *s, const char *buf, size_t len,
                                 size_t *consumed)
{
    size_t start = 0; /* first byte of buf not yet moved into s->value */
    size_t i;

    for (i = 0; i < len; i++) {
        char c = buf[i];
        bool done = false;

        if (s->in_string) {
            if (s->escape) {
                s->escape = false;
            } else if (c == '\\') {
                s->escape = true;
            } else if (c == '"') {
                s->in_string = false;
                done = s->depth == 0;
            }
        } else if (s->in_bare && ends_bare_token(c)) {
            /* The delimiter belongs to whatever follows. */
            bool kept = splitter_keep(s, buf, start, i);

            s->in_bare = false;
            *consumed = i;
            if (s->skipping) {
                /* The refused token is over; look at c again. */
                splitter_reset_value(s);
                start = i;
                i--;
                continue;
            }
            s->in_value = false;
            if (!kept) {
                s->error = "JSON parse error, message exceeds 8 MiB";
                splitter_reset_value(s);
                return SPLIT_ERROR;
            }
            return SPLIT_VALUE;
        } else if (s->in_bare) {
            /* still inside the token */
        } else if (c == '"') {
            s->in_string = true;
            s->in_value = true;
        } else if (c == '{' || c == '[') {
            s->in_value = true;
            if (++s->depth > QMP_MAX_DEPTH && !s->skipping) {
                *consumed = i + 1;
                return splitter_refuse(s, "JSON parse error, nesting depth "
                                          "exceeds 1024");
            }
        } else if (c == '}' || c == ']') {
            if (s->depth == 0) {
                /* Nothing is open: a stray closer is a value of its own. */
                *consumed = i + 1;
                s->error = c == '}' ? "JSON parse error, stray '}'"
                                    : "JSON parse error, stray ']'";
                splitter_reset_value(s);
                return SPLIT_ERROR;
            }
            done = --s->depth == 0;
        } else if (is_json_space(c)) {
            if (!s->in_value) {
                start = i + 1; /* whitespace between values */
            }
        } else if (s->depth == 0) {
            s->in_bare = true;
            s->in_value = true;
        }

        if (done) {
            bool kept = splitter_keep(s, buf, start, i + 1);

            *consumed = i + 1;
            if (s->skipping) {
                splitter_reset_value(s);
                start = i + 1;
                continue;
            }
            s->in_value = false;
            if (!kept) {
                s->error = "JSON parse error, message exceeds 8 MiB";
                splitter_reset_value(s);
                return SPLIT_ERROR;
            }
            return SPLIT_VALUE;
        }
    }

    *consumed = len;
    if (s->in_value && !splitter_keep(s, buf, start, len)) {
        return splitter_refuse(s, "JSON parse error, message exceeds 8 MiB");
    }
    return SPLIT_NEED_MORE;
}

/* --- replies --- */

static void qmp_send_object(MonitorConn *conn, JsonObject *obj)
{
    g_autoptr(JsonGenerator) gen = json_generator_new();
    JsonNode *root = json_node_init_object(json_node_alloc(), obj);
    g_autoptr(GString) line = g_string_new(NULL);

    json_generator_set_root(gen, root);
    json_node_unref(root);
    json_generator_to_gstring(gen, line);
    /*
     * A string may hold bytes that are not UTF-8 (an error quoting a
     * damaged migration file): json-glib copies them as they are, and no
     * client could parse the line. They can only sit inside strings, so
     * replacing each with U+FFFD, as QEMU's JSON writer does, is safe.
     */
    if (!g_utf8_validate(line->str, line->len, NULL)) {
        g_autofree char *valid = g_utf8_make_valid(line->str, line->len);

        g_string_assign(line, valid);
    }
    g_string_append(line, "\r\n");
    monitor_conn_write(conn, line->str, line->len);
}

/* Sends {"return": ret} or {"error": ...}, with "id" when given. */
static void qmp_reply(MonitorConn *conn, JsonNode *ret, const GError *err,
                      JsonNode *id)
{
    g_autoptr(JsonObject) obj = json_object_new();

    if (err) {
        JsonObject *e = json_object_new();
        int cls =
            err->domain == MINIVM_ERROR ? err->code : ERROR_CLASS_GENERIC_ERROR;

        json_object_set_string_member(e, "class", error_class_name(cls));
        json_object_set_string_member(e, "desc", err->message);
        json_object_set_object_member(obj, "error", e);
    } else {
        json_object_set_member(obj, "return", ret);
    }
    if (id) {
        json_object_set_member(obj, "id", json_node_copy(id));
    }
    qmp_send_object(conn, obj);
}

static void qmp_reply_error(MonitorConn *conn, JsonNode *id, int cls,
                            const char *fmt, ...) G_GNUC_PRINTF(4, 5);
static void qmp_reply_error(MonitorConn *conn, JsonNode *id, int cls,
                            const char *fmt, ...)
{
    va_list ap;
    GError *err;

    va_start(ap, fmt);
    err = g_error_new_valist(MINIVM_ERROR, cls, fmt, ap);
    va_end(ap);
    qmp_reply(conn, NULL, err, id);
    g_error_free(err);
}

static void qmp_send_greeting(MonitorConn *conn)
{
    g_autoptr(JsonObject) obj = json_object_new();
    JsonObject *qmp = json_object_new();
    JsonObject *version = json_object_new();
    JsonObject *triple = json_object_new();
    int64_t major, minor, micro;

    monitor_get_version(&major, &minor, &micro);
    json_object_set_int_member(triple, "major", major);
    json_object_set_int_member(triple, "minor", minor);
    json_object_set_int_member(triple, "micro", micro);
    json_object_set_object_member(version, "qemu", triple);
    json_object_set_string_member(version, "package", MONITOR_PACKAGE);
    json_object_set_object_member(qmp, "version", version);
    json_object_set_array_member(qmp, "capabilities", json_array_new());
    json_object_set_object_member(obj, "QMP", qmp);
    qmp_send_object(conn, obj);
}

/* --- requests --- */

/*
 * Checks the request's shape as QEMU does; returns the command name and
 * sets *args (may stay NULL), or NULL after replying with the error.
 */
static const char *qmp_check_request(MonitorConn *conn, JsonObject *req,
                                     JsonNode *id, JsonObject **args)
{
    g_autoptr(GList) members = json_object_get_members(req);
    JsonNode *execute;

    for (GList *m = members; m; m = m->next) {
        const char *key = m->data;
        JsonNode *node = json_object_get_member(req, key);

        if (!strcmp(key, "execute")) {
            if (!JSON_NODE_HOLDS_VALUE(node) ||
                json_node_get_value_type(node) != G_TYPE_STRING) {
                qmp_reply_error(conn, id, ERROR_CLASS_GENERIC_ERROR,
                                "QMP input member 'execute' must be a "
                                "string");
                return NULL;
            }
        } else if (!strcmp(key, "arguments")) {
            if (!JSON_NODE_HOLDS_OBJECT(node)) {
                qmp_reply_error(conn, id, ERROR_CLASS_GENERIC_ERROR,
                                "QMP input member 'arguments' must be an "
                                "object");
                return NULL;
            }
            *args = json_node_get_object(node);
        } else if (strcmp(key, "id") != 0) {
            qmp_reply_error(conn, id, ERROR_CLASS_GENERIC_ERROR,
                            "QMP input member '%s' is unexpected", key);
            return NULL;
        }
    }
    execute = json_object_get_member(req, "execute");
    if (!execute) {
        qmp_reply_error(conn, id, ERROR_CLASS_GENERIC_ERROR,
                        "QMP input lacks member 'execute'");
        return NULL;
    }
    return json_node_get_string(execute);
}

static void qmp_dispatch(QmpClient *c, JsonObject *req, JsonNode *id)
{
    MonitorConn *conn = c->conn;
    JsonObject *args = NULL;
    const char *name = qmp_check_request(conn, req, id, &args);
    const QmpCommand *cmd;
    GError *err = NULL;
    JsonNode *ret;

    if (!name) {
        return;
    }
    if (!c->negotiated && strcmp(name, "qmp_capabilities") != 0) {
        qmp_reply_error(conn, id, ERROR_CLASS_COMMAND_NOT_FOUND,
                        "Expecting capabilities negotiation with "
                        "'qmp_capabilities'");
        return;
    }
    if (c->negotiated && !strcmp(name, "qmp_capabilities")) {
        qmp_reply_error(conn, id, ERROR_CLASS_COMMAND_NOT_FOUND,
                        "Capabilities negotiation is already complete, "
                        "command ignored");
        return;
    }
    cmd = qmp_find_command(name);
    if (cmd && qmp_command_filter && !qmp_command_filter(name)) {
        cmd = NULL; /* refused as if it did not exist */
    }
    if (!cmd) {
        qmp_reply_error(conn, id, ERROR_CLASS_COMMAND_NOT_FOUND,
                        "The command %s has not been found", name);
        return;
    }
    ret = cmd->fn(args, &err);
    if (!ret && !err) {
        /* A marshaller returns NULL only with an error; be safe anyway. */
        ret = json_node_new(JSON_NODE_OBJECT);
        json_node_take_object(ret, json_object_new());
    }
    qmp_reply(conn, ret, err, id);
    g_clear_error(&err);
}

static int hex4(const char *p)
{
    int v = 0;

    for (int i = 0; i < 4; i++) {
        int d = g_ascii_xdigit_value(p[i]);

        if (d < 0) {
            return -1;
        }
        v = v * 16 + d;
    }
    return v;
}

/*
 * json-glib 1.6 (Debian 12) leaks its scanner's buffer for every string
 * holding a malformed surrogate escape ("\ud800" alone, or a low half
 * first), and any client could repeat that forever. Such text is not valid
 * JSON text for a QMP string anyway, so it is refused before json-glib sees
 * it. So is a \u without four hex digits: json-glib reads "\ude0u" as a
 * lone low surrogate (and leaks), and it is not JSON either. Returns the
 * offending escape's offset and sets *what, or returns -1.
 */
static ssize_t bad_surrogate_escape(const GString *text, const char **what)
{
    const char *s = text->str;
    size_t len = text->len;

    for (size_t i = 0; i + 1 < len; i++) {
        int hi, lo;

        if (s[i] != '\\') {
            continue;
        }
        if (s[i + 1] != 'u' || i + 6 > len) {
            i++; /* any other escape: skip the escaped character */
            continue;
        }
        hi = hex4(s + i + 2);
        if (hi < 0) {
            *what = "invalid \\u escape";
            return i;
        }
        *what = "invalid surrogate pair escape";
        if (hi < 0xd800 || hi > 0xdfff) {
            i += 5;
            continue;
        }
        if (hi >= 0xdc00 || i + 12 > len || s[i + 6] != '\\' ||
            s[i + 7] != 'u') {
            return i;
        }
        lo = hex4(s + i + 8);
        if (lo < 0xdc00 || lo > 0xdfff) {
            return i;
        }
        i += 11;
    }
    return -1;
}

/* Parses and runs one complete value from the splitter. */
static void qmp_handle_value(QmpClient *c, const GString *text)
{
    g_autoptr(JsonParser) parser = json_parser_new();
    GError *err = NULL;
    JsonNode *root;
    JsonObject *req;
    JsonNode *id;
    const char *what = NULL;
    ssize_t bad = bad_surrogate_escape(text, &what);

    if (bad >= 0) {
        qmp_reply_error(c->conn, NULL, ERROR_CLASS_GENERIC_ERROR,
                        "JSON parse error, %s at offset %zd", what, bad);
        return;
    }
    if (!json_parser_load_from_data(parser, text->str, text->len, &err)) {
        qmp_reply_error(c->conn, NULL, ERROR_CLASS_GENERIC_ERROR,
                        "JSON parse error, %s", err->message);
        g_error_free(err);
        return;
    }
    root = json_parser_get_root(parser);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
        qmp_reply_error(c->conn, NULL, ERROR_CLASS_GENERIC_ERROR,
                        "QMP input must be a JSON object");
        return;
    }
    req = json_node_get_object(root);
    id = json_object_get_member(req, "id");
    qmp_dispatch(c, req, id);
}

/* Stream offset up to which this message's descriptors may have come. */
static uint64_t qmp_message_end(MonitorConn *conn)
{
    size_t end = conn->in_off;

    /* The whitespace that follows a request travels with it. */
    while (end < conn->in->len && is_json_space(conn->in->data[end])) {
        end++;
    }
    return conn->in_base + end;
}

static void qmp_input(MonitorConn *conn)
{
    QmpClient *c = conn->proto;

    while (conn->in_off < conn->in->len && !conn->dead &&
           !monitor_conn_output_full(conn)) {
        size_t consumed = 0;
        SplitResult r = splitter_feed(
            &c->splitter, (const char *)conn->in->data + conn->in_off,
            conn->in->len - conn->in_off, &consumed);

        conn->in_off += consumed;
        if (r == SPLIT_NEED_MORE) {
            break;
        }
        monitor_conn_dispatch_begin(conn, qmp_message_end(conn));
        if (r == SPLIT_VALUE) {
            qmp_handle_value(c, c->splitter.value);
            g_string_truncate(c->splitter.value, 0);
            if (c->splitter.value->allocated_len > 64 * 1024) {
                /* Do not keep a huge buffer for the client's lifetime. */
                g_string_free(c->splitter.value, TRUE);
                c->splitter.value = g_string_new(NULL);
            }
        } else {
            qmp_reply_error(conn, NULL, ERROR_CLASS_GENERIC_ERROR, "%s",
                            c->splitter.error);
        }
        monitor_conn_dispatch_end(conn);
    }
}

/* --- clients --- */

static void qmp_opened(MonitorConn *conn)
{
    QmpClient *c = g_new0(QmpClient, 1);

    c->conn = conn;
    splitter_init(&c->splitter);
    conn->proto = c;
    g_ptr_array_add(qmp_clients, c);
    qmp_send_greeting(conn);
}

static void qmp_closed(MonitorConn *conn)
{
    g_ptr_array_remove(qmp_clients, conn->proto);
}

static void qmp_free(MonitorConn *conn)
{
    QmpClient *c = conn->proto;

    g_string_free(c->splitter.value, TRUE);
    g_free(c);
    conn->proto = NULL;
}

static const MonitorConnOps qmp_ops = {
    .kind = "QMP",
    .opened = qmp_opened,
    .input = qmp_input,
    .closed = qmp_closed,
    .free = qmp_free,
};

void monitor_qmp_broadcast(const char *line, size_t len)
{
    g_autoptr(GPtrArray) targets = NULL;

    if (!qmp_clients || qmp_clients->len == 0) {
        return;
    }
    /* A write may drop a client and change the list: walk a copy. */
    targets = g_ptr_array_new();
    for (guint i = 0; i < qmp_clients->len; i++) {
        QmpClient *c = g_ptr_array_index(qmp_clients, i);

        if (c->negotiated) {
            g_ptr_array_add(targets, monitor_conn_ref(c->conn));
        }
    }
    for (guint i = 0; i < targets->len; i++) {
        MonitorConn *conn = g_ptr_array_index(targets, i);

        monitor_conn_write(conn, line, len);
        monitor_conn_unref(conn);
    }
}

bool monitor_qmp_negotiate_current(GError **errp)
{
    MonitorConn *conn = monitor_conn_current();

    if (!conn || conn->ops != &qmp_ops) {
        error_setg(errp, "qmp_capabilities is only valid on a QMP monitor");
        return false;
    }
    ((QmpClient *)conn->proto)->negotiated = true;
    return true;
}

const MonitorConnOps *monitor_qmp_conn_ops(void)
{
    if (!qmp_clients) {
        qmp_clients = g_ptr_array_new();
    }
    return &qmp_ops;
}

void monitor_qmp_set_command_filter(QmpCommandFilter allowed)
{
    qmp_command_filter = allowed;
}

bool monitor_init_qmp(const char *spec, GError **errp)
{
    if (!qmp_clients) {
        qmp_clients = g_ptr_array_new();
    }
    if (!monitor_listen(spec, &qmp_ops, errp)) {
        error_prepend(errp, "-qmp: ");
        return false;
    }
    monitor_events_enable();
    return true;
}
