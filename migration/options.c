/*
 * Migration capabilities and parameters (migration/options.h), their QMP
 * commands, and every compatibility check with spec/monitor.md's messages.
 *
 * Checks run on a copy with the requested change applied, and the copy is
 * committed only when it passes, so a refused command changes nothing.
 * Capabilities are frozen while a migration runs, outgoing or incoming. Of
 * the parameters, only max-bandwidth and downtime-limit may change then (as
 * in QEMU, that is how management makes a migration converge); the
 * migration thread reads them with atomic loads. The others shape the data
 * path and are refused.
 */
#include "qemu/osdep.h"
#include "qapi/qapi-commands.h"
#include "migration/misc.h"
#include "migration/migration.h"
#include "migration/options.h"

#define DEFAULT_MAX_BANDWIDTH      (128 * MiB) /* bytes per second, as QEMU */
#define DEFAULT_DOWNTIME_LIMIT_MS  300
#define MAX_DOWNTIME_LIMIT_MS      2000000 /* 2000 s, QEMU's bound */
#define DEFAULT_MULTIFD_CHANNELS   2
#define DEFAULT_MULTIFD_ZLIB_LEVEL 1
#define DEFAULT_MULTIFD_ZSTD_LEVEL 1

#define ERR_MIGRATION_ACTIVE "There's a migration process in progress"

typedef struct MigrationParamValues {
    uint64_t max_bandwidth;  /* bytes per second, 0 = unlimited */
    uint64_t downtime_limit; /* milliseconds */
    int64_t multifd_channels;
    MultiFDCompression multifd_compression;
    int64_t multifd_zlib_level;
    int64_t multifd_zstd_level;
    ZeroPageDetection zero_page_detection;
    bool direct_io;
} MigrationParamValues;

static bool capabilities[MIGRATION_CAPABILITY__MAX];

static MigrationParamValues parameters = {
    .max_bandwidth = DEFAULT_MAX_BANDWIDTH,
    .downtime_limit = DEFAULT_DOWNTIME_LIMIT_MS,
    .multifd_channels = DEFAULT_MULTIFD_CHANNELS,
    .multifd_compression = MULTIFD_COMPRESSION_NONE,
    .multifd_zlib_level = DEFAULT_MULTIFD_ZLIB_LEVEL,
    .multifd_zstd_level = DEFAULT_MULTIFD_ZSTD_LEVEL,
    .zero_page_detection = ZERO_PAGE_DETECTION_MULTIFD,
    .direct_io = false,
};

/* --- readers --- */

bool migrate_mapped_ram(void)
{
    return capabilities[MIGRATION_CAPABILITY_MAPPED_RAM];
}

bool migrate_multifd(void)
{
    return capabilities[MIGRATION_CAPABILITY_MULTIFD];
}

bool migrate_events(void)
{
    return capabilities[MIGRATION_CAPABILITY_EVENTS];
}

bool migrate_direct_io(void)
{
    return parameters.direct_io;
}

int migrate_multifd_channels(void)
{
    return (int)parameters.multifd_channels;
}

int migrate_multifd_compression(void)
{
    return parameters.multifd_compression;
}

/* mfd: begin (levels the multifd compressors read) */
int migrate_multifd_zlib_level(void)
{
    return (int)parameters.multifd_zlib_level;
}

int migrate_multifd_zstd_level(void)
{
    return (int)parameters.multifd_zstd_level;
}
/* mfd: end */

int migrate_zero_page_detection(void)
{
    return parameters.zero_page_detection;
}

uint64_t migrate_max_bandwidth(void)
{
    return __atomic_load_n(&parameters.max_bandwidth, __ATOMIC_RELAXED);
}

uint64_t migrate_downtime_limit(void)
{
    return __atomic_load_n(&parameters.downtime_limit, __ATOMIC_RELAXED);
}

/* --- checks --- */

static void error_invalid_value(GError **errp, const char *name,
                                const char *expected)
{
    error_setg(errp, "Parameter '%s' expects %s", name, expected);
}

static bool mapped_ram_compression_ok(bool mapped_ram,
                                      MultiFDCompression compression,
                                      GError **errp)
{
    if (mapped_ram && compression != MULTIFD_COMPRESSION_NONE) {
        error_setg(errp, "Mapped-ram only available for non-compressed "
                         "non-TLS multifd migration");
        return false;
    }
    return true;
}

static bool migrate_caps_check(const bool *old_caps, const bool *new_caps,
                               GError **errp)
{
    if (migration_incoming_in_progress()) {
        /* The loader reads them: they must not move under it. */
        if (old_caps[MIGRATION_CAPABILITY_MULTIFD] !=
            new_caps[MIGRATION_CAPABILITY_MULTIFD]) {
            error_setg(errp, "Multifd must be set before incoming starts");
            return false;
        }
        if (memcmp(old_caps, new_caps, sizeof(capabilities))) {
            error_setg(errp, ERR_MIGRATION_ACTIVE);
            return false;
        }
    }
    return mapped_ram_compression_ok(new_caps[MIGRATION_CAPABILITY_MAPPED_RAM],
                                     parameters.multifd_compression, errp);
}

static bool migrate_params_check(const MigrationParamValues *p, GError **errp)
{
    if (p->downtime_limit > MAX_DOWNTIME_LIMIT_MS) {
        error_invalid_value(errp, "downtime_limit",
                            "a value between 0 and 2000000");
        return false;
    }
    if (p->multifd_channels < 1 || p->multifd_channels > 255) {
        error_invalid_value(errp, "multifd_channels",
                            "a value between 1 and 255");
        return false;
    }
    if (p->multifd_zlib_level < 0 || p->multifd_zlib_level > 9) {
        error_invalid_value(errp, "multifd_zlib_level",
                            "a value between 0 and 9");
        return false;
    }
    if (p->multifd_zstd_level < 0 || p->multifd_zstd_level > 20) {
        error_invalid_value(errp, "multifd_zstd_level",
                            "a value between 0 and 20");
        return false;
    }
#ifndef O_DIRECT
    if (p->direct_io) {
        error_setg(errp, "No build-time support for direct-io");
        return false;
    }
#endif
    return mapped_ram_compression_ok(migrate_mapped_ram(),
                                     p->multifd_compression, errp);
}

bool migrate_check_transport(bool seekable, bool multi_channel, bool is_file,
                             GError **errp)
{
    if (migrate_mapped_ram() && !seekable) {
        error_setg(errp, "Migration requires seekable transport (e.g. file)");
        return false;
    }
    if (migrate_multifd() && !multi_channel) {
        error_setg(errp, "Migration requires multi-channel URIs (e.g. tcp)");
        return false;
    }
    /* direct-io needs a second, non-O_DIRECT descriptor for the main
     * channel's small unaligned writes: only file: can open one. */
    if (migrate_multifd() && migrate_direct_io() && !is_file) {
        error_setg(errp, "Migration requires a transport that allows for "
                         "extra fds (e.g. file)");
        return false;
    }
    /* Set-time checks keep this pair apart; this guards the migration. */
    if (migrate_mapped_ram() &&
        migrate_multifd_compression() != MULTIFD_COMPRESSION_NONE) {
        error_setg(errp, "Cannot use compression with mapped-ram");
        return false;
    }
    return true;
}

/* --- QMP --- */

void qmp_migrate_set_capabilities(MigrationCapabilityStatusList *caps,
                                  GError **errp)
{
    bool new_caps[MIGRATION_CAPABILITY__MAX];

    if (migration_outgoing_is_running()) {
        error_setg(errp, ERR_MIGRATION_ACTIVE);
        return;
    }
    memcpy(new_caps, capabilities, sizeof(new_caps));
    for (MigrationCapabilityStatusList *l = caps; l; l = l->next) {
        new_caps[l->value->capability] = l->value->state;
    }
    if (!migrate_caps_check(capabilities, new_caps, errp)) {
        return;
    }
    memcpy(capabilities, new_caps, sizeof(new_caps));
}

MigrationCapabilityStatusList *qmp_query_migrate_capabilities(GError **errp)
{
    MigrationCapabilityStatusList *head = NULL, **tail = &head;

    for (int i = 0; i < MIGRATION_CAPABILITY__MAX; i++) {
        MigrationCapabilityStatusList *item =
            g_new0(MigrationCapabilityStatusList, 1);

        item->value = g_new0(MigrationCapabilityStatus, 1);
        item->value->capability = i;
        item->value->state = capabilities[i];
        *tail = item;
        tail = &item->next;
    }
    return head;
}

/* Whether the request touches a parameter that shapes the data path. */
static bool params_touch_data_path(const MigrateSetParameters *p)
{
    return p->has_multifd_channels || p->has_multifd_compression ||
           p->has_multifd_zlib_level || p->has_multifd_zstd_level ||
           p->has_zero_page_detection || p->has_direct_io;
}

void qmp_migrate_set_parameters(MigrateSetParameters *p, GError **errp)
{
    MigrationParamValues next = parameters;

    if (migration_is_running() && params_touch_data_path(p)) {
        error_setg(errp, ERR_MIGRATION_ACTIVE);
        return;
    }
    if (p->has_max_bandwidth) {
        next.max_bandwidth = p->max_bandwidth;
    }
    if (p->has_downtime_limit) {
        next.downtime_limit = p->downtime_limit;
    }
    if (p->has_multifd_channels) {
        next.multifd_channels = p->multifd_channels;
    }
    if (p->has_multifd_compression) {
        next.multifd_compression = p->multifd_compression;
    }
    if (p->has_multifd_zlib_level) {
        next.multifd_zlib_level = p->multifd_zlib_level;
    }
    if (p->has_multifd_zstd_level) {
        next.multifd_zstd_level = p->multifd_zstd_level;
    }
    if (p->has_zero_page_detection) {
        next.zero_page_detection = p->zero_page_detection;
    }
    if (p->has_direct_io) {
        next.direct_io = p->direct_io;
    }
    if (!migrate_params_check(&next, errp)) {
        return;
    }
    /* The two a running migration reads go in atomically. */
    __atomic_store_n(&parameters.max_bandwidth, next.max_bandwidth,
                     __ATOMIC_RELAXED);
    __atomic_store_n(&parameters.downtime_limit, next.downtime_limit,
                     __ATOMIC_RELAXED);
    parameters.multifd_channels = next.multifd_channels;
    parameters.multifd_compression = next.multifd_compression;
    parameters.multifd_zlib_level = next.multifd_zlib_level;
    parameters.multifd_zstd_level = next.multifd_zstd_level;
    parameters.zero_page_detection = next.zero_page_detection;
    parameters.direct_io = next.direct_io;
}

MigrationParameters *qmp_query_migrate_parameters(GError **errp)
{
    MigrationParameters *p = g_new0(MigrationParameters, 1);

    p->has_max_bandwidth = true;
    p->max_bandwidth = migrate_max_bandwidth();
    p->has_downtime_limit = true;
    p->downtime_limit = migrate_downtime_limit();
    p->has_multifd_channels = true;
    p->multifd_channels = parameters.multifd_channels;
    p->has_multifd_compression = true;
    p->multifd_compression = parameters.multifd_compression;
    p->has_multifd_zlib_level = true;
    p->multifd_zlib_level = parameters.multifd_zlib_level;
    p->has_multifd_zstd_level = true;
    p->multifd_zstd_level = parameters.multifd_zstd_level;
    p->has_zero_page_detection = true;
    p->zero_page_detection = parameters.zero_page_detection;
    p->has_direct_io = true;
    p->direct_io = parameters.direct_io;
    return p;
}
