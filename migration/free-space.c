/*
 * Refusing a save that cannot fit in its file system (see free-space.h).
 *
 * Why a bound and not an estimate: the check must never refuse a save
 * that would have fitted for a reason it could see, and it cannot see
 * which pages are zero before it reads them. So it counts every page as
 * written (conservative for a mostly-zero guest, whose mapped-ram file is
 * sparse) and adds a margin for what is not RAM: the stream header, the
 * section framing, the device state and its JSON description. A guest
 * too big for its disk by this measure has to be saved elsewhere; the
 * message says how much is needed.
 *
 * It runs before a file: target is truncated (file.c defers that to the
 * migration thread), so a refused save leaves an existing file as it was.
 * What the truncation will give back counts as available: the blocks the
 * old file has allocated beyond the offset, at least st_blocks * 512 - N
 * (bytes before N stay; at most N of them can be allocated there).
 */
#include "qemu/osdep.h"

#include <sys/statvfs.h>

#include "migration/file.h"
#include "migration/free-space.h"
#include "migration/mapped-ram.h"
#include "migration/options.h"
#include "system/ramblock.h"
#include "system/runstate.h"

/* Header, configuration, framing, device state and vmdesc: all small. */
#define NON_RAM_MARGIN_BYTES (1 * MiB)
/* A plain stream's record header (be64 offset | flags) per page. */
#define PLAIN_RECORD_BYTES 8
/* A record that names its block: length byte and up to 255 bytes. */
#define PLAIN_BLOCK_NAME_BYTES 256

bool migration_file_size_bound(bool mapped_ram, bool guest_running,
                               uint64_t *bound)
{
    uint64_t total = NON_RAM_MARGIN_BYTES;
    RAMBlock *rb;

    if (!mapped_ram && guest_running) {
        return false; /* a live plain stream grows with what is dirtied */
    }
    RAMBLOCK_FOREACH(rb)
    {
        uint64_t pages = ramblock_pages(rb);

        if (mapped_ram) {
            /* Header and bitmap, then the page area at a 1 MiB boundary. */
            total += QEMU_ALIGN_UP(MAPPED_RAM_HDR_SIZE +
                                       mapped_ram_bitmap_size(pages),
                                   MAPPED_RAM_FILE_OFFSET_ALIGNMENT);
            total += rb->used_length;
        } else {
            total += rb->used_length + pages * PLAIN_RECORD_BYTES +
                     PLAIN_BLOCK_NAME_BYTES;
        }
    }
    *bound = total;
    return true;
}

bool migration_check_free_space(QIOChannel *ioc, GError **errp)
{
    int fd = qio_channel_get_fd(ioc, G_IO_OUT);
    struct statvfs vfs;
    struct stat st;
    uint64_t need, avail, offset;

    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        return true; /* a pipe, socket or device: nothing to measure */
    }
    if (!migration_file_size_bound(migrate_mapped_ram(), runstate_is_running(),
                                   &need)) {
        return true;
    }
    if (fstatvfs(fd, &vfs) < 0 || vfs.f_blocks == 0) {
        /* Unknown, or a file system that reports no size: just try. */
        return true;
    }
    avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    if (file_outgoing_truncate_offset(ioc, &offset)) {
        uint64_t allocated = (uint64_t)st.st_blocks * 512;

        avail += allocated > offset ? allocated - offset : 0;
    }
    if (avail < need) {
        error_setg(errp,
                   "Not enough free space for the migration file: need "
                   "%" PRIu64 " bytes, %" PRIu64 " available",
                   need, avail);
        return false;
    }
    return true;
}
