/*
 * The live "ram" section (stream-format.md section 2): the record flags,
 * the handler's registration, and the page-sink interface through which
 * the dirty-page walk in ram.c hands pages to exactly one destination,
 * chosen once per migration (legacy stream records in ram.c today;
 * mapped-ram and multifd sinks live in their own files).
 */
#ifndef MIGRATION_RAM_H
#define MIGRATION_RAM_H

#include "qemu/osdep.h"

#include "migration/qemu-file.h"
#include "system/ramblock.h"

/* Low 12 bits of the be64 that starts every RAM record. */
#define RAM_SAVE_FLAG_ZERO          0x02
#define RAM_SAVE_FLAG_MEM_SIZE      0x04
#define RAM_SAVE_FLAG_PAGE          0x08
#define RAM_SAVE_FLAG_EOS           0x10
#define RAM_SAVE_FLAG_CONTINUE      0x20
#define RAM_SAVE_FLAG_XBZRLE        0x40 /* never written, rejected */
#define RAM_SAVE_FLAG_HOOK          0x80 /* never written, rejected */
#define RAM_SAVE_FLAG_MULTIFD_FLUSH 0x200

#define RAM_SECTION_VERSION 4

/* Registers the "ram" live handler (instance 0, version 4); once. */
void ram_mig_init(void);

/* Dirty bytes still to send in the running migration (0 when none). */
uint64_t ram_bytes_remaining(void);

/*
 * Where the dirty-page walk sends pages. Every hook but send_pages may be
 * NULL. All run on the migration thread.
 */
typedef struct RAMPageSink {
    const char *name;
    /* Migration start, before the START section (allocate sink state). */
    int (*setup)(QEMUFile *f, GError **errp);
    /*
     * START section, right after a block's used_length: the sink's
     * per-block layout data (mapped-ram: the MappedRamHeader).
     */
    int (*block_header)(QEMUFile *f, RAMBlock *rb, GError **errp);
    /* Beginning of every START/PART/END payload. */
    void (*section_begin)(QEMUFile *f);
    /*
     * Sends pages [first, first + npages) of rb (at most RAM_RUN_MAX_PAGES,
     * all were dirty, their bmap bits are already cleared). Returns 0 or a
     * negative errno; errors are also latched in f.
     */
    int (*send_pages)(QEMUFile *f, RAMBlock *rb, uint64_t first,
                      uint64_t npages);
    /* A full pass over the dirty bitmap ended (multifd sync point). */
    int (*pass_done)(QEMUFile *f);
    /* END section, after the last pages, before its EOS (bitmaps). */
    int (*complete)(QEMUFile *f);
    void (*cleanup)(void);
} RAMPageSink;

/*
 * Largest run of contiguous dirty pages handed to send_pages at once:
 * 2 MiB, so the mapped-ram sink's positioned writes can be that large
 * (multifd batches pages itself; the legacy sink goes page by page).
 */
#define RAM_RUN_MAX_PAGES 512

#endif
