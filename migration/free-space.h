/*
 * The free-space check before a save into a file (an extension: QEMU
 * does not make it; docs/devel/reliability.md explains the bound). A
 * migration that would run out of space part-way is refused up front,
 * before it writes anything or pauses the guest, with "Not enough free
 * space for the migration file: need N bytes, M available".
 */
#ifndef MIGRATION_FREE_SPACE_H
#define MIGRATION_FREE_SPACE_H

#include "qemu/osdep.h"
#include "io/channel.h"

/*
 * The most bytes a migration of the current RAM layout can allocate in
 * its file: mapped-ram (fixed slots, so running or not), or the plain
 * stream of a stopped guest (every page once). False when there is no
 * bound: the plain stream of a running guest resends what it dirties.
 */
bool migration_file_size_bound(bool mapped_ram, bool guest_running,
                               uint64_t *bound);

/*
 * Called by `migrate` once the transport is open (a file: target is not
 * truncated yet): when ioc is a regular file and a bound exists, compares
 * it with the space its file system has for it (statvfs f_bavail, plus
 * what truncating an existing file: target to its offset will free). True
 * when it fits or nothing can be said.
 */
bool migration_check_free_space(QIOChannel *ioc, GError **errp);

#endif
