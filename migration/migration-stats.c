/*
 * The running migration's counters (migration-stats.h). Writers are the
 * migration and multifd threads, readers query-migrate / info migrate;
 * every access is a relaxed atomic, so no lock is needed.
 */
#include "qemu/osdep.h"

#include "migration/migration-stats.h"

MigrationAtomicStats mig_stats;

void migration_reset_stats(void)
{
    stat64_set(&mig_stats.transferred, 0);
    stat64_set(&mig_stats.normal_pages, 0);
    stat64_set(&mig_stats.zero_pages, 0);
    stat64_set(&mig_stats.multifd_bytes, 0);
    stat64_set(&mig_stats.precopy_bytes, 0);
    stat64_set(&mig_stats.downtime_bytes, 0);
    stat64_set(&mig_stats.dirty_sync_count, 0);
    stat64_set(&mig_stats.dirty_pages_rate, 0);
    stat64_set(&mig_stats.remaining_bytes, 0);
}
