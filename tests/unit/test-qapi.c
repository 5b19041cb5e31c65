/*
 * Tests of the code scripts/qapi-gen.py generates from the schema in qapi/:
 * JSON to C and back for the migration types (nested unions, enum aliases,
 * lists), the argument checks of the command marshallers with QEMU's
 * error texts, and the dispatch table. The argument checks fail before a
 * handler runs, so these tests need no virtual machine.
 */
#include "qemu/osdep.h"
#include "qapi/qapi-commands.h"

static JsonNode *parse(const char *json)
{
    GError *err = NULL;
    JsonNode *node = json_from_string(json, &err);

    g_assert_no_error(err);
    g_assert_nonnull(node);
    return node;
}

/* The generated JSON equals the expected text, member order aside. */
static void assert_json_equal(JsonNode *got, const char *want)
{
    g_autoptr(JsonNode) expected = parse(want);

    if (!json_node_equal(got, expected)) {
        g_autofree char *text = json_to_string(got, FALSE);

        g_error("got %s, want %s", text, want);
    }
}

/* Runs a command through the dispatch table; returns the error text. */
static char *marshal_error(const char *command, const char *args_json)
{
    const QmpCommand *cmd = qmp_find_command(command);
    g_autoptr(JsonNode) args = args_json ? parse(args_json) : NULL;
    GError *err = NULL;
    JsonNode *ret;
    char *msg;

    g_assert_nonnull(cmd);
    ret = cmd->fn(args ? json_node_get_object(args) : NULL, &err);
    g_assert_null(ret);
    g_assert_nonnull(err);
    g_assert_true(
        g_error_matches(err, MINIVM_ERROR, ERROR_CLASS_GENERIC_ERROR));
    msg = g_strdup(err->message);
    g_error_free(err);
    return msg;
}

#define assert_marshal_error(cmd, args, want)                                  \
    do {                                                                       \
        g_autofree char *msg_ = marshal_error((cmd), (args));                  \
        g_assert_cmpstr(msg_, ==, (want));                                     \
    } while (0)

static void test_migration_info_round_trip(void)
{
    const char *json =
        "{\"status\": \"active\", \"total-time\": 1250,"
        " \"expected-downtime\": 300, \"setup-time\": 2,"
        " \"ram\": {\"transferred\": 135393280, \"remaining\": 4096,"
        "  \"total\": 134217728, \"duplicate\": 30000, \"normal\": 2768,"
        "  \"normal-bytes\": 11337728, \"dirty-pages-rate\": 120,"
        "  \"mbps\": 812.5, \"dirty-sync-count\": 3, \"page-size\": 4096,"
        "  \"multifd-bytes\": 9223372036854775807,"
        "  \"pages-per-second\": 65536, \"precopy-bytes\": 100,"
        "  \"downtime-bytes\": 0}}";
    g_autoptr(JsonNode) node = parse(json);
    g_autoptr(MigrationInfo) info = NULL;
    g_autoptr(JsonNode) back = NULL;
    GError *err = NULL;

    info = qapi_MigrationInfo_from_json(node, NULL, &err);
    g_assert_no_error(err);
    g_assert_true(info->has_status);
    g_assert_cmpint(info->status, ==, MIGRATION_STATUS_ACTIVE);
    g_assert_true(info->has_total_time);
    g_assert_cmpint(info->total_time, ==, 1250);
    g_assert_false(info->has_downtime);
    g_assert_null(info->error_desc);
    g_assert_nonnull(info->ram);
    g_assert_cmpint(info->ram->transferred, ==, 135393280);
    g_assert_cmpfloat(info->ram->mbps, ==, 812.5);
    g_assert_cmpuint(info->ram->multifd_bytes, ==, INT64_MAX);
    g_assert_cmpuint(info->ram->page_size, ==, 4096);

    back = qapi_MigrationInfo_to_json(info);
    assert_json_equal(back, json);
}

static void test_migration_info_optional(void)
{
    g_autoptr(MigrationInfo) info = g_new0(MigrationInfo, 1);
    g_autoptr(JsonNode) empty = qapi_MigrationInfo_to_json(info);
    g_autoptr(JsonNode) failed = NULL;

    /* Before any migration, query-migrate returns {}. */
    assert_json_equal(empty, "{}");

    info->has_status = true;
    info->status = MIGRATION_STATUS_FAILED;
    info->error_desc = g_strdup("Could not open '/x'");
    failed = qapi_MigrationInfo_to_json(info);
    assert_json_equal(failed, "{\"status\": \"failed\","
                              " \"error-desc\": \"Could not open '/x'\"}");
}

static void test_number_accepts_integers(void)
{
    g_autoptr(JsonNode) node =
        parse("{\"transferred\": 1, \"remaining\": 2, \"total\": 3,"
              " \"duplicate\": 4, \"normal\": 5, \"normal-bytes\": 6,"
              " \"dirty-pages-rate\": 7, \"mbps\": 100,"
              " \"dirty-sync-count\": 8, \"page-size\": 4096,"
              " \"multifd-bytes\": 0, \"pages-per-second\": 0,"
              " \"precopy-bytes\": 0, \"downtime-bytes\": 0}");
    GError *err = NULL;
    g_autoptr(MigrationStats) stats =
        qapi_MigrationStats_from_json(node, "ram", &err);

    g_assert_no_error(err);
    g_assert_cmpfloat(stats->mbps, ==, 100.0);
}

static void test_address_file(void)
{
    const char *json =
        "{\"transport\": \"file\", \"filename\": \"/dev/fdset/1\","
        " \"offset\": 4096}";
    g_autoptr(JsonNode) node = parse(json);
    g_autoptr(JsonNode) back = NULL;
    GError *err = NULL;
    g_autoptr(MigrationAddress) addr =
        qapi_MigrationAddress_from_json(node, "addr", &err);

    g_assert_no_error(err);
    g_assert_cmpint(addr->transport, ==, MIGRATION_ADDRESS_TYPE_FILE);
    g_assert_cmpstr(addr->u.file.filename, ==, "/dev/fdset/1");
    g_assert_cmpuint(addr->u.file.offset, ==, 4096);
    back = qapi_MigrationAddress_to_json(addr);
    assert_json_equal(back, json);
}

/* A union (SocketAddress) inside a branch of a union (MigrationAddress). */
static void test_address_socket_unix(void)
{
    const char *json = "{\"transport\": \"socket\", \"type\": \"unix\","
                       " \"path\": \"/run/mig.sock\"}";
    g_autoptr(JsonNode) node = parse(json);
    g_autoptr(JsonNode) back = NULL;
    GError *err = NULL;
    g_autoptr(MigrationAddress) addr =
        qapi_MigrationAddress_from_json(node, "addr", &err);

    g_assert_no_error(err);
    g_assert_cmpint(addr->transport, ==, MIGRATION_ADDRESS_TYPE_SOCKET);
    g_assert_cmpint(addr->u.socket.type, ==, SOCKET_ADDRESS_TYPE_UNIX);
    g_assert_cmpstr(addr->u.socket.u.q_unix.path, ==, "/run/mig.sock");
    back = qapi_MigrationAddress_to_json(addr);
    assert_json_equal(back, json);
}

static void test_address_built_in_c(void)
{
    g_autoptr(MigrationAddress) addr = g_new0(MigrationAddress, 1);
    g_autoptr(JsonNode) node = NULL;

    addr->transport = MIGRATION_ADDRESS_TYPE_SOCKET;
    addr->u.socket.type = SOCKET_ADDRESS_TYPE_INET;
    addr->u.socket.u.inet.host = g_strdup("127.0.0.1");
    addr->u.socket.u.inet.port = g_strdup("4444");
    node = qapi_MigrationAddress_to_json(addr);
    assert_json_equal(node, "{\"transport\": \"socket\", \"type\": \"inet\","
                            " \"host\": \"127.0.0.1\", \"port\": \"4444\"}");
}

static void assert_address_error(const char *json, const char *want)
{
    g_autoptr(JsonNode) node = parse(json);
    GError *err = NULL;
    MigrationAddress *addr =
        qapi_MigrationAddress_from_json(node, "addr", &err);

    g_assert_null(addr);
    g_assert_nonnull(err);
    g_assert_cmpstr(err->message, ==, want);
    g_error_free(err);
}

static void test_address_errors(void)
{
    assert_address_error("{\"transport\": \"socket\", \"type\": \"unix\"}",
                         "Parameter 'addr.path' is missing");
    assert_address_error("{\"filename\": \"f\", \"offset\": 0}",
                         "Parameter 'addr.transport' is missing");
    assert_address_error(
        "{\"transport\": \"file\", \"filename\": \"f\", \"offset\": 0,"
        " \"path\": \"/s\"}",
        "Parameter 'addr.path' is unexpected");
    /* A member of another branch is unexpected too. */
    assert_address_error(
        "{\"transport\": \"socket\", \"type\": \"unix\", \"path\": \"/s\","
        " \"host\": \"h\"}",
        "Parameter 'addr.host' is unexpected");
    assert_address_error("{\"transport\": \"pigeon\"}",
                         "Parameter 'addr.transport' does not accept value "
                         "'pigeon'");
    assert_address_error("{\"transport\": \"socket\", \"type\": 1}",
                         "Invalid parameter type for 'addr.type', expected: "
                         "string");
    assert_address_error("{\"transport\": \"file\", \"filename\": \"f\","
                         " \"offset\": -1}",
                         "Parameter 'addr.offset' expects a value between 0 "
                         "and 18446744073709551615");
    assert_address_error("[]", "Invalid parameter type for 'addr', expected: "
                               "object");
}

static void test_enum_alias(void)
{
    g_autoptr(JsonNode) node =
        parse("{\"capability\": \"fixed-ram\", \"state\": true}");
    g_autoptr(JsonNode) back = NULL;
    GError *err = NULL;
    g_autoptr(MigrationCapabilityStatus) cap = NULL;

    g_assert_cmpint(MigrationCapability_parse("fixed-ram"), ==,
                    MIGRATION_CAPABILITY_MAPPED_RAM);
    g_assert_cmpint(MigrationCapability_parse("mapped-ram"), ==,
                    MIGRATION_CAPABILITY_MAPPED_RAM);
    g_assert_cmpint(MigrationCapability_parse("multifd"), ==,
                    MIGRATION_CAPABILITY_MULTIFD);
    g_assert_cmpint(MigrationCapability_parse("Multifd"), ==, -1);
    g_assert_cmpint(MigrationCapability_parse(NULL), ==, -1);
    g_assert_cmpstr(MigrationCapability_str(MIGRATION_CAPABILITY_MAPPED_RAM),
                    ==, "mapped-ram");
    g_assert_cmpstr(MigrationCapability_str(MIGRATION_CAPABILITY__MAX), ==,
                    "<invalid>");
    g_assert_cmpstr(MultiFDCompression_str(MULTIFD_COMPRESSION_ZSTD), ==,
                    "zstd");
    g_assert_cmpstr(RunState_str(RUN_STATE_FINISH_MIGRATE), ==,
                    "finish-migrate");

    cap = qapi_MigrationCapabilityStatus_from_json(node, NULL, &err);
    g_assert_no_error(err);
    g_assert_cmpint(cap->capability, ==, MIGRATION_CAPABILITY_MAPPED_RAM);
    g_assert_true(cap->state);
    back = qapi_MigrationCapabilityStatus_to_json(cap);
    assert_json_equal(back,
                      "{\"capability\": \"mapped-ram\", \"state\": true}");
}

static void test_lists(void)
{
    g_autoptr(JsonNode) exec_node =
        parse("{\"args\": [\"gzip\", \"-c\", \"-1\"]}");
    g_autoptr(JsonNode) empty_node = parse("{\"args\": []}");
    g_autoptr(JsonNode) bad_node = parse("{\"args\": [\"gzip\", 1]}");
    g_autoptr(JsonNode) sets_node =
        parse("[{\"fdset-id\": 1, \"fds\": [{\"fd\": 23, \"opaque\": \"a\"},"
              " {\"fd\": 24}]}, {\"fdset-id\": 2, \"fds\": []}]");
    g_autoptr(JsonNode) bad_sets =
        parse("[{\"fdset-id\": 1, \"fds\": "
              "[{\"fd\": 23}, {\"opaque\": \"b\"}]}]");
    g_autoptr(JsonNode) caps_node = parse("[\"oob\"]");
    g_autoptr(MigrationExecCommand) exec = NULL;
    g_autoptr(MigrationExecCommand) empty = NULL;
    g_autoptr(FdsetInfoList) sets = NULL;
    g_autoptr(QMPCapabilityList) caps = NULL;
    g_autoptr(JsonNode) back = NULL;
    g_autoptr(JsonNode) empty_back = NULL;
    g_autoptr(JsonNode) sets_back = NULL;
    GError *err = NULL;

    exec = qapi_MigrationExecCommand_from_json(exec_node, NULL, &err);
    g_assert_no_error(err);
    g_assert_cmpstr(exec->args->value, ==, "gzip");
    g_assert_cmpstr(exec->args->next->value, ==, "-c");
    g_assert_cmpstr(exec->args->next->next->value, ==, "-1");
    g_assert_null(exec->args->next->next->next);
    back = qapi_MigrationExecCommand_to_json(exec);
    assert_json_equal(back, "{\"args\": [\"gzip\", \"-c\", \"-1\"]}");

    /* An empty list is NULL, and goes out as []. */
    empty = qapi_MigrationExecCommand_from_json(empty_node, NULL, &err);
    g_assert_no_error(err);
    g_assert_null(empty->args);
    empty_back = qapi_MigrationExecCommand_to_json(empty);
    assert_json_equal(empty_back, "{\"args\": []}");

    g_assert_null(qapi_MigrationExecCommand_from_json(bad_node, "addr", &err));
    g_assert_cmpstr(err->message, ==,
                    "Invalid parameter type for 'addr.args[1]', expected: "
                    "string");
    g_clear_error(&err);

    sets = qapi_FdsetInfoList_from_json(sets_node, NULL, &err);
    g_assert_no_error(err);
    g_assert_cmpint(sets->value->fdset_id, ==, 1);
    g_assert_cmpint(sets->value->fds->value->fd, ==, 23);
    g_assert_cmpstr(sets->value->fds->value->opaque, ==, "a");
    g_assert_null(sets->value->fds->next->value->opaque);
    g_assert_null(sets->next->value->fds);
    sets_back = qapi_FdsetInfoList_to_json(sets);
    assert_json_equal(
        sets_back, "[{\"fdset-id\": 1, \"fds\": [{\"fd\": 23, \"opaque\": "
                   "\"a\"}, {\"fd\": 24}]}, {\"fdset-id\": 2, \"fds\": []}]");

    g_assert_null(qapi_FdsetInfoList_from_json(bad_sets, "sets", &err));
    g_assert_cmpstr(err->message, ==,
                    "Parameter 'sets[0].fds[1].fd' is missing");
    g_clear_error(&err);

    /* A list of enum values holds the values themselves. */
    caps = qapi_QMPCapabilityList_from_json(caps_node, "enable", &err);
    g_assert_no_error(err);
    g_assert_cmpint(caps->value, ==, QMP_CAPABILITY_OOB);
    g_assert_null(caps->next);
}

static void test_marshal_missing(void)
{
    assert_marshal_error("getfd", "{}", "Parameter 'fdname' is missing");
    assert_marshal_error("getfd", NULL, "Parameter 'fdname' is missing");
    assert_marshal_error("remove-fd", "{\"fd\": 3}",
                         "Parameter 'fdset-id' is missing");
    assert_marshal_error("human-monitor-command", "{\"cpu-index\": 0}",
                         "Parameter 'command-line' is missing");
    assert_marshal_error("migrate",
                         "{\"channels\": [{\"channel-type\": \"main\","
                         " \"addr\": {\"transport\": \"file\","
                         " \"filename\": \"/tmp/f\"}}]}",
                         "Parameter 'channels[0].addr.offset' is missing");
}

static void test_marshal_unexpected(void)
{
    assert_marshal_error("getfd", "{\"fdname\": \"a\", \"fdnmae\": \"b\"}",
                         "Parameter 'fdnmae' is unexpected");
    /* Commands without arguments refuse any. */
    assert_marshal_error("query-status", "{\"verbose\": true}",
                         "Parameter 'verbose' is unexpected");
    /* The boxed argument of migrate-set-parameters is checked the same way. */
    assert_marshal_error("migrate-set-parameters", "{\"multifd_channels\": 4}",
                         "Parameter 'multifd_channels' is unexpected");
    assert_marshal_error("migrate",
                         "{\"channels\": [{\"channel-type\": \"main\","
                         " \"addr\": {\"transport\": \"exec\","
                         " \"args\": [\"cat\"], \"uri\": \"x\"}}]}",
                         "Parameter 'channels[0].addr.uri' is unexpected");
}

static void test_marshal_wrong_type(void)
{
    assert_marshal_error("getfd", "{\"fdname\": 5}",
                         "Invalid parameter type for 'fdname', expected: "
                         "string");
    assert_marshal_error("remove-fd", "{\"fdset-id\": \"1\"}",
                         "Invalid parameter type for 'fdset-id', expected: "
                         "integer");
    assert_marshal_error("remove-fd", "{\"fdset-id\": 1.5}",
                         "Invalid parameter type for 'fdset-id', expected: "
                         "integer");
    assert_marshal_error("remove-fd", "{\"fdset-id\": 1.0}",
                         "Invalid parameter type for 'fdset-id', expected: "
                         "integer");
    assert_marshal_error("add-fd", "{\"fdset-id\": null}",
                         "Invalid parameter type for 'fdset-id', expected: "
                         "integer");
    assert_marshal_error("migrate-set-parameters", "{\"direct-io\": \"on\"}",
                         "Invalid parameter type for 'direct-io', expected: "
                         "boolean");
    assert_marshal_error("migrate", "{\"channels\": {}}",
                         "Invalid parameter type for 'channels', expected: "
                         "array");
    assert_marshal_error("migrate",
                         "{\"channels\": [{\"channel-type\": \"main\","
                         " \"addr\": \"file:/tmp/f\"}]}",
                         "Invalid parameter type for 'channels[0].addr', "
                         "expected: object");
    assert_marshal_error("migrate-set-capabilities",
                         "{\"capabilities\": [{\"capability\": \"events\","
                         " \"state\": 1}]}",
                         "Invalid parameter type for 'capabilities[0].state', "
                         "expected: boolean");
}

static void test_marshal_bad_enum(void)
{
    assert_marshal_error("migrate-set-parameters",
                         "{\"multifd-compression\": \"lz4\"}",
                         "Parameter 'multifd-compression' does not accept "
                         "value 'lz4'");
    assert_marshal_error("migrate-set-capabilities",
                         "{\"capabilities\": [{\"capability\": \"postcopy\","
                         " \"state\": true}]}",
                         "Parameter 'capabilities[0].capability' does not "
                         "accept value 'postcopy'");
    assert_marshal_error("qmp_capabilities", "{\"enable\": [\"oob\", \"x\"]}",
                         "Parameter 'enable[1]' does not accept value 'x'");
}

static void test_marshal_out_of_range(void)
{
    assert_marshal_error("migrate-set-parameters",
                         "{\"multifd-channels\": 300}",
                         "Parameter 'multifd-channels' expects a value "
                         "between 0 and 255");
    assert_marshal_error("migrate-set-parameters",
                         "{\"multifd-zlib-level\": -1}",
                         "Parameter 'multifd-zlib-level' expects a value "
                         "between 0 and 255");
    assert_marshal_error("migrate-set-parameters", "{\"max-bandwidth\": -1}",
                         "Parameter 'max-bandwidth' expects a value between "
                         "0 and 18446744073709551615");
}

static void test_find_command(void)
{
    const char *names[] = {"qmp_capabilities",
                           "query-version",
                           "migrate",
                           "migrate-incoming",
                           "migrate_cancel",
                           "migrate-set-parameters",
                           "add-fd",
                           "query-fdsets",
                           "x-query-ram-digest",
                           "x-query-multifd-channels"};

    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        const QmpCommand *cmd = qmp_find_command(names[i]);

        g_assert_nonnull(cmd);
        g_assert_cmpstr(cmd->name, ==, names[i]);
    }
    g_assert_true(qmp_find_command("migrate")->fn == qmp_marshal_migrate);
    g_assert_null(qmp_find_command("migrate-cancel"));
    g_assert_null(qmp_find_command("nope"));
    g_assert_null(qmp_find_command(""));
    g_assert_null(qmp_find_command(NULL));

    /* Sorted and unique, so that the binary search finds every entry. */
    g_assert_cmpuint(qmp_commands_count, >=, 24);
    for (size_t i = 0; i < qmp_commands_count; i++) {
        g_assert_true(qmp_find_command(qmp_commands[i].name) ==
                      &qmp_commands[i]);
        if (i > 0) {
            g_assert_cmpint(
                strcmp(qmp_commands[i - 1].name, qmp_commands[i].name), <, 0);
        }
    }
}

/* query-version through the dispatch table (the monitor implements it). */
static void test_dispatch_query_version(void)
{
    const QmpCommand *cmd = qmp_find_command("query-version");
    g_auto(GStrv) want = g_strsplit(MINIVM_VERSION, ".", 3);
    GError *err = NULL;
    g_autoptr(JsonNode) ret = cmd->fn(NULL, &err);
    JsonObject *obj, *qemu;

    g_assert_no_error(err);
    g_assert_nonnull(ret);
    g_assert_true(JSON_NODE_HOLDS_OBJECT(ret));
    obj = json_node_get_object(ret);
    g_assert_true(json_object_has_member(obj, "package"));
    qemu = json_object_get_object_member(obj, "qemu");
    g_assert_nonnull(qemu);
    g_assert_cmpint(json_object_get_int_member(qemu, "major"), ==,
                    g_ascii_strtoll(want[0], NULL, 10));
    g_assert_cmpint(json_object_get_int_member(qemu, "minor"), ==,
                    g_ascii_strtoll(want[1], NULL, 10));
    g_assert_cmpint(json_object_get_int_member(qemu, "micro"), ==,
                    g_ascii_strtoll(want[2], NULL, 10));

    /* And it takes no arguments. */
    assert_marshal_error("query-version", "{\"x\": 1}",
                         "Parameter 'x' is unexpected");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qapi/json/migration-info",
                    test_migration_info_round_trip);
    g_test_add_func("/qapi/json/migration-info-optional",
                    test_migration_info_optional);
    g_test_add_func("/qapi/json/number-accepts-integers",
                    test_number_accepts_integers);
    g_test_add_func("/qapi/json/address-file", test_address_file);
    g_test_add_func("/qapi/json/address-socket-unix", test_address_socket_unix);
    g_test_add_func("/qapi/json/address-built-in-c", test_address_built_in_c);
    g_test_add_func("/qapi/json/address-errors", test_address_errors);
    g_test_add_func("/qapi/json/enum-alias", test_enum_alias);
    g_test_add_func("/qapi/json/lists", test_lists);
    g_test_add_func("/qapi/marshal/missing", test_marshal_missing);
    g_test_add_func("/qapi/marshal/unexpected", test_marshal_unexpected);
    g_test_add_func("/qapi/marshal/wrong-type", test_marshal_wrong_type);
    g_test_add_func("/qapi/marshal/bad-enum", test_marshal_bad_enum);
    g_test_add_func("/qapi/marshal/out-of-range", test_marshal_out_of_range);
    g_test_add_func("/qapi/dispatch/find-command", test_find_command);
    g_test_add_func("/qapi/dispatch/query-version",
                    test_dispatch_query_version);
    return g_test_run();
}
