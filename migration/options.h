/*
 * Migration capabilities and parameters: the values both sides read, and
 * every compatibility check with the exact messages of spec/monitor.md.
 * Readers are cheap and callable from any migration thread; values do not
 * change while a migration runs (setting them then is refused).
 */
#ifndef MIGRATION_OPTIONS_H
#define MIGRATION_OPTIONS_H

#include "qemu/osdep.h"

bool migrate_mapped_ram(void);
bool migrate_multifd(void);
bool migrate_events(void);
bool migrate_direct_io(void);
int migrate_multifd_channels(void);
/* 0 none, 1 zlib, 2 zstd (MultiFDCompression in the schema). */
int migrate_multifd_compression(void);
/* mfd: multifd-zlib-level (0..9) and multifd-zstd-level (0..20). */
int migrate_multifd_zlib_level(void);
int migrate_multifd_zstd_level(void);
/* 0 none, 1 legacy, 2 multifd (ZeroPageDetection in the schema). */
int migrate_zero_page_detection(void);
uint64_t migrate_max_bandwidth(void);  /* bytes per second */
uint64_t migrate_downtime_limit(void); /* milliseconds */

/*
 * Checks the capabilities against a transport before a migration starts:
 * seekable = the transport is a seekable file, multi_channel = it can open
 * extra channels (tcp/unix, or file: with mapped-ram). Messages are
 * spec/monitor.md's.
 */
bool migrate_check_transport(bool seekable, bool multi_channel,
                             bool is_file, GError **errp);

#endif
