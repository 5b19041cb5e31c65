/*
 * A small VM inside a test process, and the migration streams it writes:
 * shared by the hostile-stream test (tests/unit/test-hostile-streams.c),
 * the loadvm fuzzer (fuzz-loadvm.c) and its seed writer (gen-seeds.c).
 *
 * The VM is made of the real parts: three RAM blocks named as the machine
 * names them, the "ram" live section, globalstate, the serial port and the
 * a-b workload's device state, registered in that order. It is saved the
 * way the migration thread saves a stopped guest and loaded with
 * qemu_loadvm_state(), as the incoming thread does.
 *
 * stream_map() walks a valid stream and records where each field is, so
 * the callers can damage one field at a time.
 */
#ifndef TESTS_FUZZ_STREAM_VM_H
#define TESTS_FUZZ_STREAM_VM_H

#include "qemu/osdep.h"

#include "io/channel.h"

/* Sizes of pc.ram, vga.vram and pc.bios (page multiples). */
typedef struct StreamVMLayout {
    uint64_t ram_bytes;
    uint64_t vram_bytes;
    uint64_t bios_bytes;
} StreamVMLayout;

#define STREAM_VM_BLOCKS 3

/*
 * The fuzzers' VM: a few pages per block (pc.ram's bitmap has bits past
 * its end), so a whole stream, even mapped-ram's, is tens of KiB.
 */
extern const StreamVMLayout stream_vm_fuzz_layout;

/* Creates the blocks and registers the sections; once per process. */
void stream_vm_init(const StreamVMLayout *layout);
/*
 * Gives RAM and devices known content through the memory API: patterns
 * with zero pages between them, and a few steps of the a-b workload.
 */
void stream_vm_fill(void);
/* Sets or clears every byte of guest RAM directly (a fresh destination). */
void stream_vm_clear_ram(int byte);
/* Turns the mapped-ram capability on or off (asserts it worked). */
void stream_vm_set_mapped_ram(bool on);
/*
 * multifd with that many channels (0: off). A mapped-ram file is then
 * loaded by the channels, which open load_path themselves.
 */
void stream_vm_set_multifd(int channels, const char *load_path);

/* What a load must reproduce: RAM, the serial counter, the run state. */
typedef struct StreamVMState {
    char *ram_sha256[STREAM_VM_BLOCKS];
    uint64_t serial_bytes;
    int received_runstate; /* from globalstate, -1 if none was loaded */
} StreamVMState;

void stream_vm_state_capture(StreamVMState *st);
bool stream_vm_state_equal(const StreamVMState *a, const StreamVMState *b);
void stream_vm_state_free(StreamVMState *st);

/*
 * Saves the stopped VM (its run state recorded as "running") into ioc at
 * the channel's position, with the current mapped-ram setting. Returns 0 or
 * a negative errno with errp set.
 */
int stream_vm_save(QIOChannel *ioc, GError **errp);
/* The same into memory (the buffer channel is seekable: mapped-ram works). */
GByteArray *stream_vm_save_to_memory(void);
/*
 * The same into a file through the file: transport at offset (bytes before
 * it are left alone), then read back whole, prefix included.
 */
GByteArray *stream_vm_save_to_file(const char *path, uint64_t offset);

/*
 * Loads a stream the way the incoming thread does, with the current
 * mapped-ram setting. The run state stays what it was (the incoming side
 * decides whether to resume, and only after a successful load).
 */
int stream_vm_load(QIOChannel *ioc, GError **errp);
int stream_vm_load_buffer(const uint8_t *data, size_t len, GError **errp);
/* Loads the file at path through the file: transport, from offset. */
int stream_vm_load_path(const char *path, uint64_t offset, GError **errp);
/* Writes data to path and loads it through file: at offset. */
int stream_vm_load_file(const char *path, const uint8_t *data, size_t len,
                        uint64_t offset, GError **errp);

/* --- where things are in a valid stream (absolute image offsets) --- */

typedef struct StreamSection {
    uint8_t type; /* START, PART, END or FULL */
    size_t start; /* the type byte */
    uint32_t section_id;
    char idstr[256];    /* PART/END: the name of the START they continue */
    size_t idstr_len;   /* START/FULL: the u8 length byte; else 0 */
    size_t instance_id; /* START/FULL: be32; else 0 */
    size_t version_id;  /* START/FULL: be32; else 0 */
    size_t body;        /* first payload byte */
    size_t footer;      /* the 0x7e marker */
} StreamSection;

typedef struct StreamBlock {
    char name[256];
    size_t name_len;    /* u8 length of the name in the block list */
    size_t used_length; /* its be64 */
    uint64_t bytes;
    /* mapped-ram only (header 0 otherwise) */
    size_t header; /* the 28-byte MappedRamHeader */
    uint64_t bitmap_offset;
    uint64_t pages_offset;
} StreamBlock;

typedef struct StreamMap {
    size_t base;      /* where the stream starts (offset=) */
    size_t config;    /* the CONFIGURATION type byte */
    size_t caps;      /* the capabilities subsection's 0x05, or 0 */
    size_t caps_end;  /* first byte after the configuration section */
    GArray *sections; /* of StreamSection, in stream order */
    size_t mem_size;  /* the MEM_SIZE record of the START section */
    StreamBlock blocks[STREAM_VM_BLOCKS];
    unsigned nblocks;
    size_t start_eos; /* EOS ending the ram START payload */
    /* Legacy page records (plain streams), 0 when there is none. */
    size_t first_zero; /* first ZERO record */
    size_t zero_byte;  /* the byte that follows it (must be 0) */
    size_t first_page; /* first PAGE record with a block name */
    size_t cont_page;  /* first PAGE record with CONTINUE */
    size_t last_page;  /* last PAGE record of the stream */
    size_t eof;        /* the EOF byte */
    size_t vmdesc;     /* the VMDESCRIPTION byte */
    size_t end;        /* length of the image */
} StreamMap;

/* Walks a valid stream that starts at base in image; asserts it is one. */
void stream_map(const GByteArray *image, size_t base, StreamMap *m);
void stream_map_free(StreamMap *m);
/* The first section named idstr of that type, or NULL. */
const StreamSection *stream_map_section(const StreamMap *m, const char *idstr,
                                        uint8_t type);

/*
 * A mapped-ram stream with each block's page area moved down to the first
 * page boundary after its bitmap (the loader only insists on page
 * alignment), so small VMs make small seeds. Offsets are rewritten.
 */
GByteArray *stream_compact_mapped_ram(const GByteArray *image, size_t base);

/* Big-endian helpers for callers that patch images. */
uint64_t stream_get_be(const uint8_t *p, int bytes);
void stream_put_be(uint8_t *p, int bytes, uint64_t v);

#endif
