/*
 * The QMP protocol under good and bad input: the greeting, negotiation,
 * error replies with QEMU's exact messages for every kind of bad request,
 * huge lines, garbage, and clients that vanish mid-command. Whatever one
 * client does, it gets the right reply or is dropped alone, and a second
 * client keeps being served.
 */
#include "qemu/osdep.h"

#include <sys/socket.h>

#include "libqtest.h"

#define GUEST_ARGS "-m 128M -workload idle"

static void assert_error_reply(JsonObject *reply, const char *cls,
                               const char *desc_prefix)
{
    g_autofree char *text = qtest_json_to_string(reply);
    if (!json_object_has_member(reply, "error")) {
        g_error("expected an error \"%s...\", got %s", desc_prefix, text);
    }
    JsonObject *err = qtest_json_get_object(reply, "error");
    const char *desc = qtest_json_get_string(err, "desc");
    if (!g_str_has_prefix(desc, desc_prefix)) {
        g_error("expected an error \"%s...\", got %s", desc_prefix, text);
    }
    g_assert_cmpstr(qtest_json_get_string(err, "class"), ==, cls);
}

/* Sends raw bytes and checks the one reply is this error. */
static void raw_expect_error(QTestState *s, const char *input, const char *cls,
                             const char *desc_prefix)
{
    qtest_qmp_send_raw(s, input, strlen(input));
    JsonObject *reply = qtest_qmp_receive(s, QTEST_QMP_TIMEOUT);
    if (!reply) {
        g_error("connection closed after %s", input);
    }
    assert_error_reply(reply, cls, desc_prefix);
    json_object_unref(reply);
}

/* The connection still works: a command gets its normal reply. */
static void assert_alive(QTestState *s)
{
    g_autofree char *status = qtest_query_status(s);
    g_assert_cmpstr(status, ==, "running");
}

static void test_greeting(void)
{
    QTestState *s = qtest_init(GUEST_ARGS);
    JsonObject *qmp = qtest_json_get_object(qtest_qmp_greeting(s), "QMP");
    JsonObject *version = qtest_json_get_object(qmp, "version");
    JsonObject *qemu = qtest_json_get_object(version, "qemu");
    qtest_json_get_int(qemu, "major");
    qtest_json_get_int(qemu, "minor");
    qtest_json_get_int(qemu, "micro");
    qtest_json_get_string(version, "package");
    g_assert_nonnull(json_object_get_array_member(qmp, "capabilities"));

    /* query-version says the same. */
    g_autoptr(JsonNode) ret =
        qtest_qmp_assert_success_ref(s, "{'execute': 'query-version'}");
    JsonObject *qv = qtest_json_get_object(json_node_get_object(ret), "qemu");
    g_assert_cmpint(qtest_json_get_int(qv, "major"), ==,
                    qtest_json_get_int(qemu, "major"));
    g_assert_cmpint(qtest_json_get_int(qv, "minor"), ==,
                    qtest_json_get_int(qemu, "minor"));
    qtest_quit(s);
}

static void test_negotiation(void)
{
    QTestState *s = qtest_init(GUEST_ARGS);
    QTestState *c = qtest_client_new(s, false);
    qtest_qmp_expect_error(
        c, "CommandNotFound",
        "Expecting capabilities negotiation with 'qmp_capabilities'",
        "{'execute': 'query-status'}");
    /* Events are not sent before negotiation. */
    qtest_qmp_assert_success(s, "{'execute':'stop'}");
    qtest_qmp_assert_success(s, "{'execute':'cont'}");

    qtest_qmp_assert_success(c, "{'execute': 'qmp_capabilities'}");
    g_assert_null(qtest_qmp_event_take(c, "STOP"));
    g_autofree char *status = qtest_query_status(c);
    g_assert_cmpstr(status, ==, "running");
    g_assert_null(qtest_qmp_event_take(c, "STOP"));
    g_assert_null(qtest_qmp_event_take(c, "RESUME"));

    /* A second negotiation is refused. */
    JsonObject *reply = qtest_qmp(c, "{'execute': 'qmp_capabilities'}");
    g_assert_true(json_object_has_member(reply, "error"));
    json_object_unref(reply);
    qtest_quit(c);
    qtest_quit(s);
}

static void test_bad_json(void)
{
    QTestState *s = qtest_init(GUEST_ARGS);
    static const char *const bad[] = {
        "{\"execute\": \"query-status\",}\n",             /* trailing comma */
        "{\"execute\": query-status}\n",                  /* bare word */
        "{\"execute\" \"query-status\"}\n",               /* no colon */
        "{\"execute\": \"query-status\", \"id\": tru}\n", /* bad literal */
        "}\n",                                            /* stray close */
        /* not UTF-8 */
        "{\"execute\": \"query-status\", \"id\": \"\xff\xfe\"}\n",
        /* malformed surrogate escapes (json-glib would leak on these) */
        "{\"execute\": \"query-status\", \"id\": \"\\ud800\"}\n",
        "{\"execute\": \"query-status\", \"id\": \"\\udc00\\ud800\"}\n",
        "{\"execute\": \"query-status\", \"id\": \"\\uD800\\u0041\"}\n",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        raw_expect_error(s, bad[i], "GenericError", "JSON parse error");
        /* The parser recovers: the next command is served normally. */
        assert_alive(s);
    }
    qtest_quit(s);
}

static void test_not_an_object(void)
{
    QTestState *s = qtest_init(GUEST_ARGS);
    raw_expect_error(s, "[1, 2]\n", "GenericError",
                     "QMP input must be a JSON object");
    raw_expect_error(s, "\"query-status\"\n", "GenericError",
                     "QMP input must be a JSON object");
    raw_expect_error(s, "42\n", "GenericError",
                     "QMP input must be a JSON object");
    raw_expect_error(s, "{\"arguments\": {}}\n", "GenericError",
                     "QMP input lacks member 'execute'");
    raw_expect_error(s, "{\"execute\": 42}\n", "GenericError",
                     "QMP input member 'execute' must be a string");
    assert_alive(s);
    qtest_quit(s);
}

static void test_bad_commands(void)
{
    QTestState *s = qtest_init(GUEST_ARGS);
    qtest_qmp_expect_error(s, "CommandNotFound",
                           "The command no-such-command has not been found",
                           "{'execute': 'no-such-command'}");
    qtest_qmp_expect_error(
        s, "GenericError",
        "Invalid parameter type for 'command-line', expected: string",
        "{'execute': 'human-monitor-command', "
        "'arguments': {'command-line': 42}}");
    qtest_qmp_expect_error(s, "GenericError",
                           "Invalid parameter type for 'size', expected: "
                           "integer",
                           "{'execute': 'pmemsave', 'arguments': "
                           "{'val': 0, 'size': 'big', 'filename': 'x'}}");
    qtest_qmp_expect_error(s, "GenericError",
                           "Parameter 'command-line' is missing",
                           "{'execute': 'human-monitor-command'}");
    qtest_qmp_expect_error(s, "GenericError",
                           "Parameter 'command-line' is missing",
                           "{'execute': 'human-monitor-command', "
                           "'arguments': {}}");
    qtest_qmp_expect_error(s, "GenericError", "Parameter 'foo' is unexpected",
                           "{'execute': 'query-status', "
                           "'arguments': {'foo': 1}}");
    qtest_qmp_expect_error(s, "GenericError",
                           "QMP input member 'arguments' must be an object",
                           "{'execute': 'query-status', 'arguments': [1]}");
    assert_alive(s);
    qtest_quit(s);
}

/* Replies echo "id", whatever JSON value it is, errors included. */
static void test_id_echo(void)
{
    QTestState *s = qtest_init(GUEST_ARGS);
    /* The last two: a valid surrogate pair, an escaped backslash + "ud800". */
    static const char *const ids[] = {"\"abc\"", "17", "{\"a\": [1, null]}",
                                      "\"\\ud83d\\ude00\"", "\"\\\\ud800\""};
    for (size_t i = 0; i < G_N_ELEMENTS(ids); i++) {
        for (int err = 0; err < 2; err++) {
            g_autofree char *cmd = g_strdup_printf(
                "{\"execute\": \"%s\", \"id\": %s}\n",
                err ? "no-such-command" : "query-status", ids[i]);
            qtest_qmp_send_raw(s, cmd, strlen(cmd));
            JsonObject *reply = qtest_qmp_receive(s, QTEST_QMP_TIMEOUT);
            g_assert_nonnull(reply);
            g_assert_true(
                json_object_has_member(reply, err ? "error" : "return"));
            JsonNode *id = json_object_get_member(reply, "id");
            g_assert_nonnull(id);
            g_autoptr(JsonNode) want = json_from_string(ids[i], NULL);
            g_assert_true(json_node_equal(id, want));
            json_object_unref(reply);
        }
    }
    qtest_quit(s);
}

/* A 1 MiB line of valid JSON is parsed like any other. */
static void test_huge_valid_line(void)
{
    QTestState *s = qtest_init(GUEST_ARGS);
    size_t len = 1 * MiB;
    g_autofree char *big = g_malloc(len + 1);
    for (size_t i = 0; i < len; i++) {
        big[i] = 'a' + i % 26;
    }
    big[len] = '\0';

    /* A 1 MiB id comes back intact with the reply. */
    g_autofree char *cmd = g_strdup_printf(
        "{\"execute\": \"query-status\", \"id\": \"%s\"}\n", big);
    qtest_qmp_send_raw(s, cmd, strlen(cmd));
    JsonObject *reply = qtest_qmp_receive(s, QTEST_QMP_TIMEOUT);
    g_assert_nonnull(reply);
    g_assert_true(json_object_has_member(reply, "return"));
    g_assert_cmpstr(qtest_json_get_string(reply, "id"), ==, big);
    json_object_unref(reply);

    /* A 1 MiB argument name gets the normal error. */
    g_autofree char *cmd2 = g_strdup_printf(
        "{\"execute\": \"query-status\", \"arguments\": {\"%s\": 1}}\n", big);
    g_autofree char *desc =
        g_strdup_printf("Parameter '%s' is unexpected", big);
    raw_expect_error(s, cmd2, "GenericError", desc);
    assert_alive(s);
    qtest_quit(s);
}

/*
 * After bad bytes a client either gets error replies ("JSON parse error"
 * or, for a number or literal among them, "QMP input must be a JSON
 * object") and is still served, or is disconnected. Either way the server
 * lives and other clients do not notice.
 */
static void drain_after_garbage(QTestState *c)
{
    const char probe[] = "\n{\"execute\": \"query-status\", \"id\": "
                         "\"probe\"}\n";
    qtest_qmp_send_raw(c, probe, strlen(probe));
    int64_t deadline =
        g_get_monotonic_time() + qtest_scale_timeout(60) * G_USEC_PER_SEC;
    for (;;) {
        bool closed;
        JsonObject *reply = qtest_qmp_receive_maybe(c, 1000, &closed);
        if (closed) {
            return; /* dropped: acceptable */
        }
        if (g_get_monotonic_time() > deadline) {
            g_error("no reply to the probe after garbage within %d s",
                    qtest_scale_timeout(60));
        }
        if (!reply) {
            continue;
        }
        JsonNode *id = json_object_get_member(reply, "id");
        if (id && JSON_NODE_HOLDS_VALUE(id) &&
            !g_strcmp0(json_node_get_string(id), "probe")) {
            g_assert_true(json_object_has_member(reply, "return"));
            json_object_unref(reply);
            return; /* recovered */
        }
        /* Numbers and literals in the garbage are well-formed JSON. */
        JsonObject *err = qtest_json_get_object(reply, "error");
        const char *desc = qtest_json_get_string(err, "desc");
        if (!g_str_has_prefix(desc, "JSON parse error") &&
            strcmp(desc, "QMP input must be a JSON object")) {
            g_error("unexpected reply to garbage: %s", desc);
        }
        g_assert_cmpstr(qtest_json_get_string(err, "class"), ==,
                        "GenericError");
        json_object_unref(reply);
    }
}

static void test_garbage(void)
{
    QTestState *s = qtest_init(GUEST_ARGS);
    size_t len = 1 * MiB;
    g_autofree char *junk = g_malloc(len);

    /* 1 MiB of letters: one enormous bad token. */
    QTestState *c = qtest_client_new(s, true);
    memset(junk, 'x', len);
    qtest_qmp_send_raw(c, junk, len);
    assert_alive(s);
    drain_after_garbage(c);
    qtest_quit(c);
    assert_alive(s);

    /*
     * 64 KiB of random bytes (NULs and invalid UTF-8 included), without
     * the bytes that open a string (QEMU also takes single-quoted ones) or
     * a nesting level, so the server cannot be legitimately waiting for
     * the rest of a value. Each of its few thousand tokens gets its own
     * error reply, which is why this is not 1 MiB too.
     */
    c = qtest_client_new(s, true);
    size_t random_len = 64 * KiB;
    GRand *rand = g_rand_new_with_seed(42);
    for (size_t i = 0; i < random_len; i++) {
        char b = g_rand_int_range(rand, 0, 256);
        junk[i] = strchr("{[\"'", b) && b ? 'x' : b;
    }
    g_rand_free(rand);
    qtest_qmp_send_raw(c, junk, random_len);
    assert_alive(s);
    drain_after_garbage(c);
    qtest_quit(c);
    assert_alive(s);
    qtest_quit(s);
}

static void test_disconnect_mid_command(void)
{
    QTestState *s = qtest_init(GUEST_ARGS);

    /* Half a command, then gone. */
    QTestState *c = qtest_client_new(s, true);
    const char half[] = "{\"execute\": \"query-st";
    qtest_qmp_send_raw(c, half, strlen(half));
    qtest_quit(c);
    assert_alive(s);

    /* Unclosed nesting 100k deep, then gone. */
    c = qtest_client_new(s, true);
    size_t depth = 100000;
    g_autofree char *nest = g_malloc(depth);
    memset(nest, '[', depth);
    qtest_qmp_send_raw(c, nest, depth);
    assert_alive(s);
    qtest_quit(c);
    assert_alive(s);

    /*
     * Whole commands with big replies, gone before reading them: the
     * server's writes fail (EPIPE) and must cost only that client.
     */
    for (int i = 0; i < 20; i++) {
        c = qtest_client_new(s, true);
        const char cmds[] = "{\"execute\": \"query-commands\"}\n"
                            "{\"execute\": \"query-commands\"}\n"
                            "{\"execute\": \"query-commands\"}\n";
        qtest_qmp_send_raw(c, cmds, strlen(cmds));
        qtest_quit(c);
    }
    assert_alive(s);

    /* Two clients interleaving halves of their commands. */
    QTestState *a = qtest_client_new(s, true);
    QTestState *b = qtest_client_new(s, true);
    const char a1[] = "{\"execute\": \"query-status\", ";
    const char a2[] = "\"id\": \"from-a\"}\n";
    qtest_qmp_send_raw(a, a1, strlen(a1));
    g_autofree char *st = qtest_query_status(b);
    g_assert_cmpstr(st, ==, "running");
    qtest_qmp_send_raw(a, a2, strlen(a2));
    JsonObject *reply = qtest_qmp_receive(a, QTEST_QMP_TIMEOUT);
    g_assert_nonnull(reply);
    g_assert_cmpstr(qtest_json_get_string(reply, "id"), ==, "from-a");
    json_object_unref(reply);
    qtest_quit(a);
    qtest_quit(b);

    assert_alive(s);
    qtest_quit(s);
}

static void test_socket_mode(void)
{
    QTestState *s = qtest_init(GUEST_ARGS);
    struct stat st;
    g_assert_cmpint(stat(qtest_qmp_socket_path(s), &st), ==, 0);
    g_assert_true(S_ISSOCK(st.st_mode));
    g_assert_cmpint(st.st_mode & 0777, ==, 0600);
    qtest_quit(s);
}

/* Every "{ 'command': 'NAME'" in the schema files (qapi/ *.json). */
static GHashTable *schema_commands(void)
{
    const char *dir = g_getenv("MINIVM_QAPI_DIR");
    g_assert_nonnull(dir);
    GHashTable *names =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    g_assert_nonnull(d);
    g_autoptr(GRegex) re = g_regex_new(
        "^\\s*\\{\\s*'command'\\s*:\\s*'([^']+)'", G_REGEX_MULTILINE, 0, NULL);
    const char *entry;
    while ((entry = g_dir_read_name(d))) {
        if (!g_str_has_suffix(entry, ".json")) {
            continue;
        }
        g_autofree char *path = g_build_filename(dir, entry, NULL);
        g_autofree char *text = NULL;
        g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
        g_autoptr(GMatchInfo) m = NULL;
        g_regex_match(re, text, 0, &m);
        while (g_match_info_matches(m)) {
            g_hash_table_add(names, g_match_info_fetch(m, 1));
            g_match_info_next(m, NULL);
        }
    }
    return names;
}

static void test_query_commands(void)
{
    QTestState *s = qtest_init(GUEST_ARGS);
    g_autoptr(JsonNode) ret =
        qtest_qmp_assert_success_ref(s, "{'execute': 'query-commands'}");
    JsonArray *arr = json_node_get_array(ret);
    g_autoptr(GHashTable) listed = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < json_array_get_length(arr); i++) {
        const char *name = qtest_json_get_string(
            json_array_get_object_element(arr, i), "name");
        g_assert_false(g_hash_table_contains(listed, name));
        g_hash_table_add(listed, (gpointer)name);
    }

    g_autoptr(GHashTable) schema = schema_commands();
    g_assert_cmpuint(g_hash_table_size(schema), >, 0);
    GHashTableIter it;
    gpointer name;
    g_hash_table_iter_init(&it, schema);
    while (g_hash_table_iter_next(&it, &name, NULL)) {
        if (!g_hash_table_contains(listed, name)) {
            g_error("schema command %s is missing from query-commands",
                    (char *)name);
        }
    }
    g_hash_table_iter_init(&it, listed);
    while (g_hash_table_iter_next(&it, &name, NULL)) {
        if (!g_hash_table_contains(schema, name)) {
            g_error("query-commands lists %s, which no qapi/*.json defines",
                    (char *)name);
        }
    }

    /* The commands spec/monitor.md requires. */
    static const char *const required[] = {
        "qmp_capabilities",
        "query-version",
        "query-commands",
        "query-status",
        "stop",
        "cont",
        "quit",
        "human-monitor-command",
        "migrate",
        "migrate-incoming",
        "migrate_cancel",
        "migrate-set-capabilities",
        "query-migrate-capabilities",
        "migrate-set-parameters",
        "query-migrate-parameters",
        "query-migrate",
        "getfd",
        "closefd",
        "add-fd",
        "remove-fd",
        "query-fdsets",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(required); i++) {
        if (!g_hash_table_contains(listed, required[i])) {
            g_error("query-commands lacks %s", required[i]);
        }
    }
    qtest_quit(s);
}

/* Descriptors passed with SCM_RIGHTS reach getfd; closefd drops them. */
static void test_getfd(void)
{
    QTestState *s = qtest_init(GUEST_ARGS);
    int pipefd[2];
    g_assert_cmpint(pipe(pipefd), ==, 0);
    qtest_qmp_expect_error(s, NULL,
                           "No file descriptor supplied via SCM_RIGHTS",
                           "{'execute': 'getfd', "
                           "'arguments': {'fdname': 'p'}}");
    JsonObject *reply = qtest_qmp_fds(
        s, &pipefd[1], 1, "{'execute': 'getfd', 'arguments': {'fdname': 'p'}}");
    g_assert_true(json_object_has_member(reply, "return"));
    json_object_unref(reply);
    close(pipefd[1]);

    qtest_qmp_assert_success(
        s, "{'execute': 'closefd', 'arguments': {'fdname': 'p'}}");
    /* Now no process holds the write end: the read end sees EOF. */
    char byte;
    g_assert_cmpint(read(pipefd[0], &byte, 1), ==, 0);
    close(pipefd[0]);
    qtest_qmp_expect_error(s, NULL, "File descriptor named 'p' not found",
                           "{'execute': 'closefd', "
                           "'arguments': {'fdname': 'p'}}");
    qtest_quit(s);
}

static void test_hmp(void)
{
    QTestState *s = qtest_init(GUEST_ARGS);
    g_autofree char *help = qtest_hmp(s, "help");
    g_assert_nonnull(strstr(help, "info"));
    g_assert_nonnull(strstr(help, "migrate_set_capability"));
    g_autofree char *unknown = qtest_hmp(s, "no-such-hmp-command");
    g_assert_cmpstr(unknown, !=, "");
    assert_alive(s);
    qtest_quit(s);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qmp/greeting", test_greeting);
    g_test_add_func("/qmp/negotiation", test_negotiation);
    g_test_add_func("/qmp/bad-json", test_bad_json);
    g_test_add_func("/qmp/not-an-object", test_not_an_object);
    g_test_add_func("/qmp/bad-commands", test_bad_commands);
    g_test_add_func("/qmp/id-echo", test_id_echo);
    g_test_add_func("/qmp/huge-valid-line", test_huge_valid_line);
    g_test_add_func("/qmp/garbage", test_garbage);
    g_test_add_func("/qmp/disconnect-mid-command", test_disconnect_mid_command);
    g_test_add_func("/qmp/socket-mode", test_socket_mode);
    g_test_add_func("/qmp/query-commands", test_query_commands);
    g_test_add_func("/qmp/getfd", test_getfd);
    g_test_add_func("/qmp/hmp", test_hmp);
    return g_test_run();
}
