/*
 * The human monitor's migration commands. Each one parses its words, calls
 * the QMP handler (so checks and messages are the same on both monitors)
 * and prints the result the way QEMU's HMP does.
 *
 * `migrate` starts the migration and returns at once, with or without -d
 * (QEMU's HMP waits and prints progress without -d); follow it with
 * `info migrate`.
 */
#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "qapi/qapi-commands.h"
#include "monitor/hmp.h"
#include "migration/migration.h"

/*
 * The URI is the rest of the line (argv is NULL-terminated), so
 * "exec:gzip -c > f" needs no quotes.
 */
static char *hmp_rest_of_line(char **argv)
{
    return g_strjoinv(" ", argv);
}

static void hmp_migrate(GString *out, int argc, char **argv)
{
    GError *err = NULL;
    bool detach = false;
    bool resume = false;
    g_autofree char *uri = NULL;
    int i;

    for (i = 0; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-d")) {
            detach = true;
        } else if (!strcmp(argv[i], "-r")) {
            resume = true;
        } else {
            error_setg(&err, "Invalid option '%s'", argv[i]);
            hmp_handle_error(out, err);
            return;
        }
    }
    if (i == argc) {
        error_setg(&err, "Parameter 'uri' is missing");
        hmp_handle_error(out, err);
        return;
    }
    uri = hmp_rest_of_line(argv + i);
    qmp_migrate(uri, NULL, true, detach, true, resume, &err);
    hmp_handle_error(out, err);
}

static void hmp_migrate_incoming(GString *out, int argc, char **argv)
{
    GError *err = NULL;
    g_autofree char *uri = NULL;

    if (argc < 1) {
        error_setg(&err, "Parameter 'uri' is missing");
        hmp_handle_error(out, err);
        return;
    }
    uri = hmp_rest_of_line(argv);
    qmp_migrate_incoming(uri, NULL, false, false, &err);
    hmp_handle_error(out, err);
}

static void hmp_migrate_cancel(GString *out, int argc, char **argv)
{
    GError *err = NULL;

    qmp_migrate_cancel(&err);
    hmp_handle_error(out, err);
}

static void hmp_migrate_set_capability(GString *out, int argc, char **argv)
{
    GError *err = NULL;
    MigrationCapabilityStatus status;
    MigrationCapabilityStatusList list = {.value = &status};
    int cap;

    if (argc != 2) {
        error_setg(&err, "usage: migrate_set_capability CAPABILITY on|off");
        hmp_handle_error(out, err);
        return;
    }
    cap = MigrationCapability_parse(argv[0]);
    if (cap < 0) {
        error_setg(&err, "invalid parameter value: %s", argv[0]);
        hmp_handle_error(out, err);
        return;
    }
    status.capability = cap;
    if (hmp_parse_bool(argv[1], &status.state, &err)) {
        qmp_migrate_set_capabilities(&list, &err);
    }
    hmp_handle_error(out, err);
}

static bool hmp_parse_uint(const char *name, const char *str, uint64_t max,
                           const char *type, uint64_t *value, GError **errp)
{
    if (!g_ascii_string_to_unsigned(str, 10, 0, max, value, NULL)) {
        error_setg(errp, "Parameter '%s' expects %s", name, type);
        return false;
    }
    return true;
}

static bool hmp_parse_enum(const char *name, const char *str,
                           int (*parse)(const char *), int *value,
                           GError **errp)
{
    *value = parse(str);
    if (*value < 0) {
        error_setg(errp, "Parameter '%s' does not accept value '%s'", name,
                   str);
        return false;
    }
    return true;
}

/* How migrate_set_parameter reads a parameter's value. */
typedef enum {
    HMP_PARAM_SIZE, /* uint64_t, a size; bare numbers are MiB (QEMU's HMP) */
    HMP_PARAM_U64,
    HMP_PARAM_U8,
    HMP_PARAM_ENUM, /* a QAPI enum, read by parse */
    HMP_PARAM_BOOL,
} HMPParamKind;

typedef struct HMPParam {
    const char *name;
    HMPParamKind kind;
    size_t has;   /* offsetof the has_ member in MigrateSetParameters */
    size_t value; /* offsetof the member */
    int (*parse)(const char *);
} HMPParam;

#define HMP_PARAM(name, member, kind, parse)                                   \
    {                                                                          \
        name, kind, offsetof(MigrateSetParameters, has_##member),              \
            offsetof(MigrateSetParameters, member), parse                      \
    }

static const HMPParam hmp_params[] = {
    HMP_PARAM("max-bandwidth", max_bandwidth, HMP_PARAM_SIZE, NULL),
    HMP_PARAM("downtime-limit", downtime_limit, HMP_PARAM_U64, NULL),
    HMP_PARAM("multifd-channels", multifd_channels, HMP_PARAM_U8, NULL),
    HMP_PARAM("multifd-zlib-level", multifd_zlib_level, HMP_PARAM_U8, NULL),
    HMP_PARAM("multifd-zstd-level", multifd_zstd_level, HMP_PARAM_U8, NULL),
    HMP_PARAM("multifd-compression", multifd_compression, HMP_PARAM_ENUM,
              MultiFDCompression_parse),
    HMP_PARAM("zero-page-detection", zero_page_detection, HMP_PARAM_ENUM,
              ZeroPageDetection_parse),
    HMP_PARAM("direct-io", direct_io, HMP_PARAM_BOOL, NULL),
};

/* An enum member is stored as an int. */
G_STATIC_ASSERT(sizeof(MultiFDCompression) == sizeof(int));
G_STATIC_ASSERT(sizeof(ZeroPageDetection) == sizeof(int));

/* Reads str into *value (hp->kind's C type); false with errp set if not. */
static bool hmp_parse_value(const HMPParam *hp, const char *str, void *value,
                            GError **errp)
{
    uint64_t v;
    uint8_t u8;
    int e;
    bool b;

    switch (hp->kind) {
    case HMP_PARAM_SIZE:
        if (qemu_strtosz(str, 'M', &v) < 0) {
            error_setg(errp, "Invalid size %s", str);
            return false;
        }
        memcpy(value, &v, sizeof(v));
        return true;
    case HMP_PARAM_U64:
        if (!hmp_parse_uint(hp->name, str, UINT64_MAX, "uint64_t", &v, errp)) {
            return false;
        }
        memcpy(value, &v, sizeof(v));
        return true;
    case HMP_PARAM_U8:
        if (!hmp_parse_uint(hp->name, str, UINT8_MAX, "uint8_t", &v, errp)) {
            return false;
        }
        u8 = v;
        memcpy(value, &u8, sizeof(u8));
        return true;
    case HMP_PARAM_ENUM:
        if (!hmp_parse_enum(hp->name, str, hp->parse, &e, errp)) {
            return false;
        }
        memcpy(value, &e, sizeof(e));
        return true;
    case HMP_PARAM_BOOL:
        if (!hmp_parse_bool(str, &b, errp)) {
            return false;
        }
        memcpy(value, &b, sizeof(b));
        return true;
    }
    g_assert_not_reached();
}

/* Fills the one member of p that name names. */
static bool hmp_parse_parameter(MigrateSetParameters *p, const char *name,
                                const char *str, GError **errp)
{
    for (size_t i = 0; i < G_N_ELEMENTS(hmp_params); i++) {
        const HMPParam *hp = &hmp_params[i];

        if (strcmp(name, hp->name)) {
            continue;
        }
        if (!hmp_parse_value(hp, str, (char *)p + hp->value, errp)) {
            return false;
        }
        *(bool *)((char *)p + hp->has) = true;
        return true;
    }
    error_setg(errp, "invalid parameter value: %s", name);
    return false;
}

static void hmp_migrate_set_parameter(GString *out, int argc, char **argv)
{
    MigrateSetParameters p = {0};
    GError *err = NULL;

    if (argc != 2) {
        error_setg(&err, "usage: migrate_set_parameter PARAMETER VALUE");
        hmp_handle_error(out, err);
        return;
    }
    if (hmp_parse_parameter(&p, argv[0], argv[1], &err)) {
        qmp_migrate_set_parameters(&p, &err);
    }
    hmp_handle_error(out, err);
}

static void hmp_info_migrate(GString *out, int argc, char **argv)
{
    g_autoptr(MigrationInfo) info = qmp_query_migrate(NULL);
    MigrationStats *ram = info->ram;

    if (info->has_status) {
        g_string_append_printf(out, "Migration status: %s",
                               MigrationStatus_str(info->status));
        if (info->error_desc) {
            g_string_append_printf(out, " (%s)", info->error_desc);
        }
        g_string_append_c(out, '\n');
    }
    if (info->has_total_time) {
        g_string_append_printf(out, "total time: %" PRId64 " ms\n",
                               info->total_time);
    }
    if (info->has_expected_downtime) {
        g_string_append_printf(out, "expected downtime: %" PRId64 " ms\n",
                               info->expected_downtime);
    }
    if (info->has_downtime) {
        g_string_append_printf(out, "downtime: %" PRId64 " ms\n",
                               info->downtime);
    }
    if (info->has_setup_time) {
        g_string_append_printf(out, "setup: %" PRId64 " ms\n",
                               info->setup_time);
    }
    if (!ram) {
        return;
    }
    g_string_append_printf(out,
                           "transferred ram: %" PRId64 " kbytes\n"
                           "throughput: %0.2f mbps\n"
                           "remaining ram: %" PRId64 " kbytes\n"
                           "total ram: %" PRId64 " kbytes\n"
                           "duplicate: %" PRId64 " pages\n"
                           "normal: %" PRId64 " pages\n"
                           "normal bytes: %" PRId64 " kbytes\n"
                           "dirty sync count: %" PRId64 "\n"
                           "page size: %" PRId64 " kbytes\n"
                           "multifd bytes: %" PRIu64 " kbytes\n"
                           "pages-per-second: %" PRIu64 "\n",
                           ram->transferred >> 10, ram->mbps,
                           ram->remaining >> 10, ram->total >> 10,
                           ram->duplicate, ram->normal, ram->normal_bytes >> 10,
                           ram->dirty_sync_count, ram->page_size >> 10,
                           ram->multifd_bytes >> 10, ram->pages_per_second);
    if (ram->dirty_pages_rate) {
        g_string_append_printf(out, "dirty pages rate: %" PRId64 " pages\n",
                               ram->dirty_pages_rate);
    }
    g_string_append_printf(out,
                           "precopy ram: %" PRIu64 " kbytes\n"
                           "downtime ram: %" PRIu64 " kbytes\n",
                           ram->precopy_bytes >> 10, ram->downtime_bytes >> 10);
    /* mfd: begin */
    {
        g_autoptr(MultifdChannelInfoList) chans =
            qmp_x_query_multifd_channels(NULL);

        for (MultifdChannelInfoList *l = chans; l; l = l->next) {
            g_string_append_printf(out,
                                   "multifd channel %" PRId64 ": %" PRIu64
                                   " kbytes, %" PRIu64 " pages\n",
                                   l->value->id, l->value->bytes >> 10,
                                   l->value->pages);
        }
    }
    /* mfd: end */
}

static void hmp_info_migrate_capabilities(GString *out, int argc, char **argv)
{
    MigrationCapabilityStatusList *caps = qmp_query_migrate_capabilities(NULL);

    for (MigrationCapabilityStatusList *l = caps; l; l = l->next) {
        g_string_append_printf(out, "%s: %s\n",
                               MigrationCapability_str(l->value->capability),
                               l->value->state ? "on" : "off");
    }
    qapi_free_MigrationCapabilityStatusList(caps);
}

static void hmp_info_migrate_parameters(GString *out, int argc, char **argv)
{
    g_autoptr(MigrationParameters) p = qmp_query_migrate_parameters(NULL);

    g_string_append_printf(
        out,
        "max-bandwidth: %" PRIu64 " bytes/second\n"
        "downtime-limit: %" PRIu64 " ms\n"
        "multifd-channels: %u\n"
        "multifd-compression: %s\n"
        "multifd-zlib-level: %u\n"
        "multifd-zstd-level: %u\n"
        "zero-page-detection: %s\n"
        "direct-io: %s\n",
        p->max_bandwidth, p->downtime_limit, p->multifd_channels,
        MultiFDCompression_str(p->multifd_compression), p->multifd_zlib_level,
        p->multifd_zstd_level, ZeroPageDetection_str(p->zero_page_detection),
        p->direct_io ? "on" : "off");
}

static const HMPCommand migration_hmp_commands[] = {
    {
        .name = "migrate",
        .params = "[-d] uri",
        .help = "migrate to URI (file:, unix:, tcp:, exec:, fd:); returns "
                "at once, follow with 'info migrate'",
        .handler = hmp_migrate,
    },
    {
        .name = "migrate_incoming",
        .params = "uri",
        .help = "start an incoming migration (needs -incoming defer)",
        .handler = hmp_migrate_incoming,
    },
    {
        .name = "migrate_cancel",
        .params = "",
        .help = "cancel the current outgoing migration",
        .handler = hmp_migrate_cancel,
    },
    {
        .name = "migrate_set_capability",
        .params = "capability state",
        .help = "switch a migration capability on or off",
        .handler = hmp_migrate_set_capability,
    },
    {
        .name = "migrate_set_parameter",
        .params = "parameter value",
        .help = "set a migration parameter",
        .handler = hmp_migrate_set_parameter,
    },
};

static const HMPCommand migration_hmp_infos[] = {
    {
        .name = "migrate",
        .params = "",
        .help = "show migration status",
        .handler = hmp_info_migrate,
    },
    {
        .name = "migrate_capabilities",
        .params = "",
        .help = "show current migration capabilities",
        .handler = hmp_info_migrate_capabilities,
    },
    {
        .name = "migrate_parameters",
        .params = "",
        .help = "show current migration parameters",
        .handler = hmp_info_migrate_parameters,
    },
};

void migration_hmp_register(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(migration_hmp_commands); i++) {
        hmp_register_command(&migration_hmp_commands[i]);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(migration_hmp_infos); i++) {
        hmp_register_info(&migration_hmp_infos[i]);
    }
}
