/*
 * Counters of the running migration, updated lock-free (atomics) by the
 * migration and multifd threads and read by query-migrate.
 */
#ifndef MIGRATION_MIGRATION_STATS_H
#define MIGRATION_MIGRATION_STATS_H

#include "qemu/osdep.h"

typedef struct MigrationAtomicStats {
    uint64_t transferred;    /* bytes written on all channels */
    uint64_t normal_pages;   /* pages sent with content */
    uint64_t zero_pages;     /* pages found zero ("duplicate") */
    uint64_t multifd_bytes;  /* bytes written by multifd channels */
    uint64_t precopy_bytes;  /* bytes of RAM sent before the stop */
    uint64_t downtime_bytes; /* bytes sent while stopped */
    uint64_t dirty_sync_count;
    uint64_t dirty_pages_rate; /* pages per second, last pass */
    uint64_t remaining_bytes;  /* dirty bytes at the last sync */
} MigrationAtomicStats;

extern MigrationAtomicStats mig_stats;

static inline void stat64_add(uint64_t *counter, uint64_t v)
{
    __atomic_fetch_add(counter, v, __ATOMIC_RELAXED);
}
static inline uint64_t stat64_get(const uint64_t *counter)
{
    return __atomic_load_n(counter, __ATOMIC_RELAXED);
}
static inline void stat64_set(uint64_t *counter, uint64_t v)
{
    __atomic_store_n(counter, v, __ATOMIC_RELAXED);
}

void migration_reset_stats(void);

#endif
