/*
 * A whole stream, in process: a small VM (two RAM blocks, the ram handler,
 * globalstate and a test device) is saved into a memory buffer the way the
 * migration thread does it, its bytes are checked against the format
 * (header, configuration, section framing, ram records, footers, EOF,
 * VMDESCRIPTION), then it is loaded back over scribbled state. Corrupted
 * and truncated variants must fail with the exact errors of the spec.
 */
#include "qemu/osdep.h"

#include "io/channel-buffer.h"
#include "migration/global-state.h"
#include "migration/migration-stats.h"
#include "migration/options.h"
#include "migration/ram.h"
#include "migration/savevm.h"
#include "migration/vmstate-internal.h"
#include "qapi/qapi-commands.h"
#include "system/ramblock.h"
#include "system/runstate.h"

#define PC_RAM_PAGES 64
#define VRAM_PAGES   4

typedef struct TestDev {
    uint32_t counter;
    uint64_t ticks;
    uint8_t name[8];
    bool sub_needed;
    uint16_t sub_val;
} TestDev;

static TestDev testdev;

static bool testdev_sub_needed(void *opaque)
{
    return ((TestDev *)opaque)->sub_needed;
}

static const VMStateDescription vmstate_testdev_sub = {
    .name = "testdev/sub",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = testdev_sub_needed,
    .fields =
        (const VMStateField[]){
            VMSTATE_UINT16(sub_val, TestDev),
            VMSTATE_END_OF_LIST(),
        },
};

static const VMStateDescription vmstate_testdev = {
    .name = "testdev",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields =
        (const VMStateField[]){
            VMSTATE_UINT32(counter, TestDev),
            VMSTATE_UINT64(ticks, TestDev),
            VMSTATE_BUFFER(name, TestDev),
            VMSTATE_END_OF_LIST(),
        },
    .subsections =
        (const VMStateDescription *const[]){
            &vmstate_testdev_sub,
            NULL,
        },
};

static RAMBlock *pc_ram, *vram;

/* Page i of pc.ram is zero when i % 3 == 1, else a pattern. */
static void ram_fill(void)
{
    for (int i = 0; i < PC_RAM_PAGES; i++) {
        uint8_t *p = pc_ram->host + (uint64_t)i * TARGET_PAGE_SIZE;

        if (i % 3 == 1) {
            memset(p, 0, TARGET_PAGE_SIZE);
        } else {
            memset(p, i + 1, TARGET_PAGE_SIZE);
            memcpy(p, &i, sizeof(i));
        }
    }
    for (int i = 0; i < VRAM_PAGES; i++) {
        memset(vram->host + (uint64_t)i * TARGET_PAGE_SIZE, 0xa0 + i,
               TARGET_PAGE_SIZE);
    }
}

static void scribble(void)
{
    bool sub_needed = testdev.sub_needed; /* not migrated state */

    memset(pc_ram->host, 0xcc, pc_ram->used_length);
    memset(vram->host, 0x33, vram->used_length);
    memset(&testdev, 0x77, sizeof(testdev));
    testdev.sub_needed = sub_needed;
}

static void set_mapped_ram(bool on)
{
    MigrationCapabilityStatus status = {
        .capability = MIGRATION_CAPABILITY_MAPPED_RAM, .state = on};
    MigrationCapabilityStatusList list = {.value = &status};
    g_autoptr(GError) err = NULL;

    qmp_migrate_set_capabilities(&list, &err);
    g_assert_no_error(err);
    g_assert_cmpint(migrate_mapped_ram(), ==, on);
}

/* --- saving --- */

typedef struct Snapshot {
    uint8_t *ram;
    uint8_t *vram;
    TestDev dev;
} Snapshot;

static void snapshot_take(Snapshot *s)
{
    s->ram = g_memdup2(pc_ram->host, pc_ram->used_length);
    s->vram = g_memdup2(vram->host, vram->used_length);
    s->dev = testdev;
}

static void snapshot_check(const Snapshot *s)
{
    g_assert_cmpmem(pc_ram->host, pc_ram->used_length, s->ram,
                    pc_ram->used_length);
    g_assert_cmpmem(vram->host, vram->used_length, s->vram, vram->used_length);
    g_assert_cmpuint(testdev.counter, ==, s->dev.counter);
    g_assert_cmpuint(testdev.ticks, ==, s->dev.ticks);
    g_assert_cmpmem(testdev.name, 8, s->dev.name, 8);
    if (s->dev.sub_needed) {
        g_assert_cmpuint(testdev.sub_val, ==, s->dev.sub_val);
    }
}

static void snapshot_free(Snapshot *s)
{
    g_free(s->ram);
    g_free(s->vram);
}

/*
 * Saves the VM like the migration thread: setup, iterations while the
 * "guest" keeps writing (dirty pages are resent), completion. Returns the
 * stream; *snap gets the state at completion.
 */
static GByteArray *save_vm(uint64_t rate_limit, bool dirty_between,
                           Snapshot *snap)
{
    QIOChannelBuffer *bioc = qio_channel_buffer_new(0);
    QEMUFile *f = qemu_file_new_output(&bioc->parent);
    g_autoptr(GError) err = NULL;
    GByteArray *out;
    int ret, iterations = 0;

    migration_reset_stats();
    qemu_file_set_rate_limit(f, rate_limit);
    qemu_savevm_state_header(f);
    g_assert_cmpint(qemu_savevm_state_setup(f, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpuint(qemu_savevm_state_pending(false), ==,
                     (PC_RAM_PAGES + VRAM_PAGES) * TARGET_PAGE_SIZE);
    while ((ret = qemu_savevm_state_iterate(f)) == 0) {
        g_assert_cmpint(++iterations, <, 1000);
        qemu_file_rate_limit_wait(f);
    }
    g_assert_cmpint(ret, ==, 1);
    g_assert_cmpuint(qemu_savevm_state_pending(true), ==, 0);
    if (dirty_between) {
        /* The guest writes: pages 2 and 4 change, page 5 becomes zero. */
        ramblock_write_u8(pc_ram, 2 * TARGET_PAGE_SIZE + 100, 0x5e);
        ramblock_fill(pc_ram, 4 * TARGET_PAGE_SIZE, 0x44, TARGET_PAGE_SIZE);
        ramblock_fill(pc_ram, 5 * TARGET_PAGE_SIZE, 0, TARGET_PAGE_SIZE);
        g_assert_cmpuint(qemu_savevm_state_pending(true), ==,
                         3 * TARGET_PAGE_SIZE);
        g_assert_cmpint(qemu_savevm_state_iterate(f), ==, 1);
        /* One more write lands in the END section. */
        ramblock_write_u8(vram, 3 * TARGET_PAGE_SIZE + 7, 0x99);
    }
    bql_lock();
    runstate_set(RUN_STATE_RUNNING);
    bql_unlock();
    global_state_store();
    bql_lock();
    runstate_set(RUN_STATE_FINISH_MIGRATE);
    bql_unlock();
    snapshot_take(snap);
    g_assert_cmpint(qemu_savevm_state_complete_precopy(f, &err), ==, 0);
    g_assert_no_error(err);
    qemu_savevm_state_cleanup();
    g_assert_null(pc_ram->bmap);
    g_assert_false(memory_global_dirty_log_enabled());
    g_assert_cmpint(qemu_fclose(f), ==, 0);

    out = g_byte_array_new();
    g_byte_array_append(out, bioc->data, bioc->usage);
    g_assert_cmpuint(stat64_get(&mig_stats.transferred), ==, bioc->usage);
    qio_channel_unref(&bioc->parent);
    return out;
}

/* --- reading the stream back in the test --- */

typedef struct StreamMap {
    size_t ram_start;   /* offset of the START type byte */
    size_t ram_footer;  /* offset of its footer */
    size_t block_list;  /* first block entry after MEM_SIZE */
    size_t first_zero;  /* first ZERO record header */
    size_t first_page;  /* first PAGE record header */
    size_t last_part;   /* type byte of the last PART */
    size_t end_section; /* type byte of the END */
    size_t globalstate; /* type byte of its FULL section */
    size_t testdev;     /* type byte of its FULL section */
    size_t eof;         /* the EOF byte */
    size_t vmdesc;      /* the VMDESCRIPTION byte */
    unsigned zero_records, page_records, parts;
} StreamMap;

static uint64_t rd_be(const uint8_t *p, int n)
{
    uint64_t v = 0;

    for (int i = 0; i < n; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* Walks a ram section payload at *pos, checking the records' syntax. */
static void map_ram_payload(const GByteArray *s, size_t *pos, StreamMap *m)
{
    for (;;) {
        uint64_t hdr = rd_be(s->data + *pos, 8);
        unsigned flags = hdr & ~TARGET_PAGE_MASK;

        *pos += 8;
        if (flags & RAM_SAVE_FLAG_MEM_SIZE) {
            uint64_t total = hdr & TARGET_PAGE_MASK;

            m->block_list = *pos;
            while (total) {
                unsigned len = s->data[*pos];

                total -= rd_be(s->data + *pos + 1 + len, 8);
                *pos += 1 + len + 8;
            }
            continue;
        }
        if (flags & RAM_SAVE_FLAG_EOS) {
            g_assert_cmpuint(flags, ==, RAM_SAVE_FLAG_EOS);
            return;
        }
        g_assert_true(flags & (RAM_SAVE_FLAG_ZERO | RAM_SAVE_FLAG_PAGE));
        if (flags & RAM_SAVE_FLAG_ZERO) {
            if (!m->zero_records++) {
                m->first_zero = *pos - 8;
            }
        } else if (!m->page_records++) {
            m->first_page = *pos - 8;
        }
        if (!(flags & RAM_SAVE_FLAG_CONTINUE)) {
            *pos += 1 + s->data[*pos];
        }
        *pos += (flags & RAM_SAVE_FLAG_ZERO) ? 1 : TARGET_PAGE_SIZE;
    }
}

static void map_stream(const GByteArray *s, StreamMap *m)
{
    size_t pos = 8 + 1 + 4 + 10;

    memset(m, 0, sizeof(*m));
    for (;;) {
        uint8_t type = s->data[pos];
        uint32_t id;
        size_t start = pos;

        if (type == QEMU_VM_EOF) {
            m->eof = pos;
            m->vmdesc = pos + 1;
            return;
        }
        id = rd_be(s->data + pos + 1, 4);
        pos += 5;
        if (type == QEMU_VM_SECTION_START || type == QEMU_VM_SECTION_FULL) {
            unsigned len = s->data[pos];
            g_autofree char *name = g_strndup((char *)s->data + pos + 1, len);

            pos += 1 + len + 8;
            if (strcmp(name, "ram") == 0) {
                g_assert_cmpint(type, ==, QEMU_VM_SECTION_START);
                m->ram_start = start;
                map_ram_payload(s, &pos, m);
                m->ram_footer = pos;
            } else if (strcmp(name, "globalstate") == 0) {
                m->globalstate = start;
                pos += 4 + 32;
            } else {
                g_assert_cmpstr(name, ==, "testdev");
                m->testdev = start;
                pos += 4 + 8 + 8;
                if (s->data[pos] == QEMU_VM_SUBSECTION) {
                    pos += 1 + 1 + 11 + 4 + 2;
                }
            }
        } else {
            g_assert_true(type == QEMU_VM_SECTION_PART ||
                          type == QEMU_VM_SECTION_END);
            if (type == QEMU_VM_SECTION_PART) {
                m->last_part = start;
                m->parts++;
            } else {
                m->end_section = start;
            }
            map_ram_payload(s, &pos, m);
        }
        g_assert_cmpuint(s->data[pos], ==, QEMU_VM_SECTION_FOOTER);
        g_assert_cmpuint(rd_be(s->data + pos + 1, 4), ==, id);
        pos += 5;
    }
}

/* --- loading --- */

static int load_bytes(const uint8_t *data, size_t len, GError **errp)
{
    QIOChannelBuffer *bioc = qio_channel_buffer_new_static(data, len);
    QEMUFile *f = qemu_file_new_input(&bioc->parent);
    int ret = qemu_loadvm_state(f, errp);

    qemu_fclose(f);
    qio_channel_unref(&bioc->parent);
    return ret;
}

/* Loads a modified copy of s and checks the error message. */
static void expect_load_error(const GByteArray *s, size_t len,
                              const char *message)
{
    g_autoptr(GError) err = NULL;

    g_assert_cmpint(load_bytes(s->data, len, &err), <, 0);
    g_assert_nonnull(err);
    if (!strstr(err->message, message)) {
        g_test_message("got: %s", err->message);
        g_test_message("expected: %s", message);
        g_assert_not_reached();
    }
}

static GByteArray *copy_of(const GByteArray *s)
{
    GByteArray *c = g_byte_array_sized_new(s->len);

    g_byte_array_append(c, s->data, s->len);
    return c;
}

static const char expected_vmdesc[] =
    "{\"configuration\": {\"vmsd_name\": \"configuration\", \"version\": 1, "
    "\"fields\": [{\"name\": \"len\", \"type\": \"uint32\", \"size\": 4}, "
    "{\"name\": \"name\", \"type\": \"buffer\", \"size\": 10}]}, "
    "\"page_size\": 4096, \"devices\": [{\"name\": \"globalstate\", "
    "\"instance_id\": 0, \"vmsd_name\": \"globalstate\", \"version\": 1, "
    "\"fields\": [{\"name\": \"size\", \"type\": \"uint32\", \"size\": 4}, "
    "{\"name\": \"runstate\", \"type\": \"buffer\", \"size\": 32}]}, "
    "{\"name\": \"testdev\", \"instance_id\": 0, \"vmsd_name\": \"testdev\", "
    "\"version\": 1, \"fields\": [{\"name\": \"counter\", \"type\": "
    "\"uint32\", \"size\": 4}, {\"name\": \"ticks\", \"type\": \"uint64\", "
    "\"size\": 8}, {\"name\": \"name\", \"type\": \"buffer\", \"size\": 8}], "
    "\"subsections\": [{\"vmsd_name\": \"testdev/sub\", \"version\": 1, "
    "\"fields\": [{\"name\": \"sub_val\", \"type\": \"uint16\", \"size\": "
    "2}]}]}]}";

static void test_save_layout_and_load(void)
{
    Snapshot snap;
    StreamMap m;
    GByteArray *s;
    g_autoptr(GError) err = NULL;
    static const uint8_t header[] = {
        'Q',
        'E',
        'V',
        'M',
        0,
        0,
        0,
        3,
        0x07,
        0,
        0,
        0,
        10,
        'm',
        'i',
        'n',
        'i',
        'v',
        'm',
        '-',
        '1',
        '.',
        '0',
        /* START ram: id 0, "ram", instance 0, version 4 */
        0x01,
        0,
        0,
        0,
        0,
        3,
        'r',
        'a',
        'm',
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        4,
        /* MEM_SIZE: 68 pages */
        0,
        0,
        0,
        0,
        0,
        0x04,
        0x40,
        0x04,
        6,
        'p',
        'c',
        '.',
        'r',
        'a',
        'm',
        0,
        0,
        0,
        0,
        0,
        0x04,
        0,
        0,
        8,
        'v',
        'g',
        'a',
        '.',
        'v',
        'r',
        'a',
        'm',
        0,
        0,
        0,
        0,
        0,
        0,
        0x40,
        0,
        /* EOS, footer, the first PART */
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0x10,
        0x7e,
        0,
        0,
        0,
        0,
        0x02,
        0,
        0,
        0,
        0,
        /* first record: page 0 of pc.ram, with the block name */
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0x08,
        6,
        'p',
        'c',
        '.',
        'r',
        'a',
        'm',
    };
    uint8_t globalstate[5 + 1 + 11 + 8 + 4 + 32 + 5] = {
        0x04, 0,   0,   0,   1,   11,  'g', 'l', 'o', 'b', 'a', 'l',
        's',  't', 'a', 't', 'e', 0,   0,   0,   0,   0,   0,   0,
        1,    0,   0,   0,   8,   'r', 'u', 'n', 'n', 'i', 'n', 'g',
    };

    /* The 32-byte name buffer is NUL-padded; then the footer. */
    memcpy(globalstate + sizeof(globalstate) - 5, "\x7e\0\0\0\x01", 5);
    ram_fill();
    testdev = (TestDev){.counter = 0x01020304,
                        .ticks = 99,
                        .name = "dev-one",
                        .sub_needed = true,
                        .sub_val = 0xbeef};
    s = save_vm(0, true, &snap);
    g_assert_cmpmem(s->data, sizeof(header), header, sizeof(header));
    map_stream(s, &m);
    /*
     * The first pass: 21 zero pages of pc.ram, 43 + 4 with content; then
     * pages 2, 4 (content) and 5 (now zero), and vga.vram's page 3.
     */
    g_assert_cmpuint(m.zero_records, ==, 21 + 1);
    g_assert_cmpuint(m.page_records, ==, 43 + 4 + 2 + 1);
    g_assert_cmpuint(stat64_get(&mig_stats.zero_pages), ==, 22);
    g_assert_cmpuint(stat64_get(&mig_stats.normal_pages), ==, 50);
    g_assert_cmpuint(stat64_get(&mig_stats.dirty_sync_count), >=, 2);
    g_assert_cmpuint(stat64_get(&mig_stats.remaining_bytes), ==, 0);
    g_assert_cmpuint(stat64_get(&mig_stats.downtime_bytes), >, 4096);
    g_assert_cmpuint(stat64_get(&mig_stats.precopy_bytes), >,
                     46 * TARGET_PAGE_SIZE);
    /* The next records continue pc.ram: no name; page 1 is zero. */
    g_assert_cmpuint(rd_be(s->data + sizeof(header) + 4096, 8), ==,
                     0x1000 | RAM_SAVE_FLAG_CONTINUE | RAM_SAVE_FLAG_ZERO);
    g_assert_cmpuint(s->data[sizeof(header) + 4096 + 8], ==, 0);
    g_assert_cmpuint(rd_be(s->data + sizeof(header) + 4096 + 9, 8), ==,
                     0x2000 | RAM_SAVE_FLAG_CONTINUE | RAM_SAVE_FLAG_PAGE);
    g_assert_cmpuint(m.ram_footer, ==, 23 + 17 + 8 + 15 + 17 + 8);
    g_assert_cmpmem(s->data + m.globalstate, sizeof(globalstate), globalstate,
                    sizeof(globalstate));
    /* testdev: id 2, fields, the needed subsection, footer. */
    g_assert_cmpuint(s->data[m.testdev], ==, QEMU_VM_SECTION_FULL);
    g_assert_cmpuint(rd_be(s->data + m.testdev + 1, 4), ==, 2);
    g_assert_cmpuint(m.eof, ==, m.testdev + 5 + 1 + 7 + 8 + 20 + 19 + 5);
    /* Then the description, which ends the stream. */
    g_assert_cmpuint(s->data[m.vmdesc], ==, QEMU_VM_VMDESCRIPTION);
    g_assert_cmpuint(rd_be(s->data + m.vmdesc + 1, 4), ==,
                     strlen(expected_vmdesc));
    g_assert_cmpuint(s->len, ==, m.vmdesc + 5 + strlen(expected_vmdesc));
    g_assert_cmpmem(s->data + m.vmdesc + 5, strlen(expected_vmdesc),
                    expected_vmdesc, strlen(expected_vmdesc));
    /* QEMU's tools: the byte 5 before the first '{' after the last NUL. */
    {
        const uint8_t *nul = memrchr(s->data, 0, s->len);
        const uint8_t *brace = memchr(nul, '{', s->data + s->len - nul);

        g_assert_cmpuint(brace - s->data, ==, m.vmdesc + 5);
    }

    scribble();
    g_assert_cmpint(load_bytes(s->data, s->len, &err), ==, 0);
    g_assert_no_error(err);
    snapshot_check(&snap);
    g_assert_cmpint(global_state_received_runstate(), ==, RUN_STATE_RUNNING);
    g_assert_cmpuint(pc_ram->host[5 * TARGET_PAGE_SIZE], ==, 0);
    g_assert_cmpuint(vram->host[3 * TARGET_PAGE_SIZE + 7], ==, 0x99);

    /* Without the optional VMDESCRIPTION it loads just as well. */
    scribble();
    g_assert_cmpint(load_bytes(s->data, m.eof + 1, &err), ==, 0);
    g_assert_no_error(err);
    snapshot_check(&snap);

    snapshot_free(&snap);
    g_byte_array_unref(s);
}

static void test_rate_limited(void)
{
    Snapshot snap;
    StreamMap m;
    GByteArray *s;
    g_autoptr(GError) err = NULL;

    ram_fill();
    testdev.sub_needed = false;
    /* 1 MB/s: 100 kB per window, so the first pass takes several PARTs. */
    s = save_vm(1000 * 1000, false, &snap);
    map_stream(s, &m);
    g_assert_cmpuint(m.parts, >=, 2);
    g_assert_cmpuint(m.page_records, ==, 43 + 4);
    scribble();
    g_assert_cmpint(load_bytes(s->data, s->len, &err), ==, 0);
    g_assert_no_error(err);
    snapshot_check(&snap);
    snapshot_free(&snap);
    g_byte_array_unref(s);
}

static void test_no_zero_detection(void)
{
    MigrateSetParameters p = {
        .has_zero_page_detection = true,
        .zero_page_detection = ZERO_PAGE_DETECTION_NONE,
    };
    Snapshot snap;
    StreamMap m;
    GByteArray *s;
    g_autoptr(GError) err = NULL;

    qmp_migrate_set_parameters(&p, &err);
    g_assert_no_error(err);
    ram_fill();
    s = save_vm(0, false, &snap);
    map_stream(s, &m);
    g_assert_cmpuint(m.zero_records, ==, 0);
    g_assert_cmpuint(m.page_records, ==, PC_RAM_PAGES + VRAM_PAGES);
    scribble();
    g_assert_cmpint(load_bytes(s->data, s->len, &err), ==, 0);
    snapshot_check(&snap);
    snapshot_free(&snap);
    g_byte_array_unref(s);

    p.zero_page_detection = ZERO_PAGE_DETECTION_LEGACY;
    qmp_migrate_set_parameters(&p, &err);
    g_assert_no_error(err);
}

/* One saved stream shared by the corruption tests. */
static GByteArray *saved;
static StreamMap saved_map;

static void ensure_saved(void)
{
    Snapshot snap;

    if (saved) {
        return;
    }
    ram_fill();
    testdev = (TestDev){.counter = 5, .name = "corrupt"};
    saved = save_vm(0, false, &snap);
    snapshot_free(&snap);
    map_stream(saved, &saved_map);
}

static void test_header_errors(void)
{
    g_autoptr(GByteArray) c = NULL;

    ensure_saved();
    c = copy_of(saved);
    c->data[0] = 'X';
    expect_load_error(c, c->len, "Not a migration stream");
    c->data[0] = 'Q';
    c->data[7] = 2;
    expect_load_error(c, c->len,
                      "SaveVM v2 format is obsolete and don't work anymore");
    c->data[7] = 4;
    expect_load_error(c, c->len, "Unsupported migration stream version");
    c->data[7] = 3;
    c->data[8] = QEMU_VM_SECTION_START;
    expect_load_error(c, c->len, "Configuration section missing");
    c->data[8] = QEMU_VM_CONFIGURATION;
    c->data[22] = '1';
    expect_load_error(c, c->len,
                      "Machine type received is 'minivm-1.1' and local is "
                      "'minivm-1.0'");
    c->data[22] = '0';
    c->data[12] = 9;
    expect_load_error(c, c->len,
                      "Machine type received is 'minivm-1.' and "
                      "local is 'minivm-1.0'");
    c->data[9] = 0x7f;
    expect_load_error(c, c->len,
                      "Machine type received is 2130706441 bytes "
                      "long");
}

static void test_capabilities(void)
{
    QIOChannelBuffer *bioc = qio_channel_buffer_new(0);
    QEMUFile *f = qemu_file_new_output(&bioc->parent);
    static const uint8_t caps[] = {
        0x05, 26,  'c', 'o', 'n', 'f', 'i', 'g', 'u', 'r', 'a', 't',
        'i',  'o', 'n', '/', 'c', 'a', 'p', 'a', 'b', 'i', 'l', 'i',
        't',  'i', 'e', 's', 0,   0,   0,   1,   0,   0,   0,   1,
        10,   'm', 'a', 'p', 'p', 'e', 'd', '-', 'r', 'a', 'm',
    };
    g_autoptr(GByteArray) s = g_byte_array_new();
    g_autoptr(GError) err = NULL;

    ensure_saved();
    /* The source lists mapped-ram when it is on. */
    set_mapped_ram(true);
    qemu_savevm_state_header(f);
    qemu_put_byte(f, QEMU_VM_EOF);
    g_assert_cmpint(qemu_fclose(f), ==, 0);
    set_mapped_ram(false);
    g_assert_cmpuint(bioc->usage, ==, 23 + sizeof(caps) + 1);
    g_assert_cmpmem(bioc->data + 23, sizeof(caps), caps, sizeof(caps));
    g_byte_array_append(s, bioc->data, bioc->usage);
    qio_channel_unref(&bioc->parent);

    expect_load_error(s, s->len,
                      "Capability mapped-ram is off, but received capability "
                      "is on");
    set_mapped_ram(true);
    g_assert_cmpint(load_bytes(s->data, s->len, &err), ==, 0);
    g_assert_no_error(err);

    /* A stream without the subsection says "off". */
    expect_load_error(saved, saved->len,
                      "Capability mapped-ram is on, but received capability "
                      "is off");
    set_mapped_ram(false);

    /* Names we do not validate are refused. */
    memcpy(s->data + 23 + 37, "xbzrle-ram", 10);
    expect_load_error(s, s->len, "Received unknown capability xbzrle-ram");
    /* So are other configuration subsections. */
    s->data[23 + 2] = 'k';
    expect_load_error(s, s->len,
                      "VM subsection 'konfiguration/capabilities' in "
                      "'configuration' does not exist");
}

static void test_section_errors(void)
{
    g_autoptr(GByteArray) c = NULL;
    const StreamMap *m = &saved_map;
    size_t td_name;

    ensure_saved();
    c = copy_of(saved);

    c->data[m->ram_footer] = 0x7d;
    expect_load_error(c, c->len, "Missing section footer for ram");
    c->data[m->ram_footer] = 0x7e;
    c->data[m->ram_footer + 4] = 5;
    expect_load_error(c, c->len,
                      "Mismatched section id in footer for ram - read 0x5 "
                      "expected 0x0");
    c->data[m->ram_footer + 4] = 0;

    td_name = m->testdev + 6;
    c->data[td_name + 6] = 'z';
    expect_load_error(c, c->len,
                      "Unknown savevm section or instance 'testdez' 0. Make "
                      "sure that your current VM setup matches your saved VM "
                      "setup, including any hotplugged devices");
    c->data[td_name + 6] = 'v';
    c->data[td_name + 10] = 1; /* instance 1 */
    expect_load_error(c, c->len,
                      "Unknown savevm section or instance 'testdev' 1.");
    c->data[td_name + 10] = 0;
    c->data[td_name + 14] = 2; /* version 2 */
    expect_load_error(c, c->len,
                      "savevm: unsupported version 2 for 'testdev' "
                      "v1");
    c->data[td_name + 14] = 1;

    c->data[m->eof] = 0x09;
    expect_load_error(c, c->len, "Unknown savevm section type 9");
    c->data[m->eof] = 0;

    /* A PART for a section that was never started. */
    c->data[m->last_part + 4] = 7;
    expect_load_error(c, c->len, "Unknown savevm section 7");
    c->data[m->last_part + 4] = 0;

    /* A device section that fails to load names the device. */
    c->data[m->globalstate + 29] = 'X';
    expect_load_error(c, c->len,
                      "error while loading state for instance 0x0 of device "
                      "'globalstate': globalstate: post_load hook failed");
    c->data[m->globalstate + 29] = 'r';

    g_autoptr(GError) err = NULL;
    g_assert_cmpint(load_bytes(c->data, c->len, &err), ==, 0);
    g_assert_no_error(err);
}

static void test_ram_errors(void)
{
    g_autoptr(GByteArray) c = NULL;
    const StreamMap *m = &saved_map;
    size_t bl;

    ensure_saved();
    bl = m->block_list;
    c = copy_of(saved);

    c->data[bl + 6] = 'x';
    expect_load_error(c, c->len,
                      "error while loading state for instance 0x0 of device "
                      "'ram': Unknown ramblock \"pc.rax\", cannot accept "
                      "migration");
    c->data[bl + 6] = 'm';
    c->data[bl + 1 + 6 + 5] = 0x05; /* pc.ram length 0x50000 */
    expect_load_error(c, c->len,
                      "Length mismatch: pc.ram: 0x50000 in != 0x40000: "
                      "Invalid argument");
    c->data[bl + 1 + 6 + 5] = 0x04;

    /* The first ZERO record: its byte must be 0. */
    {
        size_t pos = m->first_zero + 8;

        if (!(c->data[m->first_zero + 7] & RAM_SAVE_FLAG_CONTINUE)) {
            pos += 1 + c->data[pos];
        }
        g_assert_cmpuint(c->data[pos], ==, 0);
        c->data[pos] = 3;
        expect_load_error(c, c->len, "Found a zero page with value 3");
        c->data[pos] = 0;
    }

    /* Offsets beyond the block. */
    c->data[m->first_page + 5] = 0x04; /* 0x40000 = pc.ram's length */
    expect_load_error(c, c->len, "Illegal RAM offset 40000");
    memcpy(c->data, saved->data, saved->len);

    /* Flags that are never written. */
    c->data[m->first_page + 7] = RAM_SAVE_FLAG_XBZRLE;
    expect_load_error(c, c->len,
                      "Unknown combination of migration flags: 0x40");
    c->data[m->first_page + 7] = RAM_SAVE_FLAG_HOOK;
    expect_load_error(c, c->len,
                      "Unknown combination of migration flags: 0x80");
    c->data[m->first_page + 7] = RAM_SAVE_FLAG_PAGE | RAM_SAVE_FLAG_ZERO;
    expect_load_error(c, c->len, "Unknown combination of migration flags: 0xa");
    /* CONTINUE on the section's first record: no block to continue. */
    c->data[m->first_page + 7] = RAM_SAVE_FLAG_PAGE | RAM_SAVE_FLAG_CONTINUE;
    expect_load_error(c, c->len, "no block was named before it");
    /* An unknown block name in a page record. */
    c->data[m->first_page + 7] = RAM_SAVE_FLAG_PAGE;
    c->data[m->first_page + 9] = 'q';
    expect_load_error(c, c->len, "Can't find block qc.ram");
}

/* Inserts bytes at pos; returns a new array. */
static GByteArray *insert_at(const GByteArray *s, size_t pos,
                             const uint8_t *bytes, size_t len)
{
    GByteArray *c = g_byte_array_sized_new(s->len + len);

    g_byte_array_append(c, s->data, pos);
    g_byte_array_append(c, bytes, len);
    g_byte_array_append(c, s->data + pos, s->len - pos);
    return c;
}

static void test_commands(void)
{
    static const uint8_t switchover[] = {0x08, 0x00, 0x0b, 0x00, 0x00};
    static const uint8_t bad_len[] = {0x08, 0x00, 0x0b, 0x00, 0x02, 1, 2};
    static const uint8_t other[] = {0x08, 0x00, 0x03, 0x00, 0x04, 1, 2, 3, 4};
    static const uint8_t flush[] = {0, 0, 0, 0, 0, 0, 0x02, 0x00};
    g_autoptr(GByteArray) a = NULL;
    g_autoptr(GByteArray) b = NULL;
    g_autoptr(GByteArray) c = NULL;
    g_autoptr(GByteArray) d = NULL;
    g_autoptr(GError) err = NULL;

    ensure_saved();
    /* QEMU 10 writes switchover-start right before the END sections. */
    a = insert_at(saved, saved_map.end_section, switchover, sizeof(switchover));
    g_assert_cmpint(load_bytes(a->data, a->len, &err), ==, 0);
    g_assert_no_error(err);
    b = insert_at(saved, saved_map.end_section, bad_len, sizeof(bad_len));
    expect_load_error(b, b->len,
                      "Migration command switchover-start has "
                      "length 2, expected 0");
    c = insert_at(saved, saved_map.end_section, other, sizeof(other));
    expect_load_error(c, c->len,
                      "Unsupported migration command 0x3 (length "
                      "4)");
    /* MULTIFD_FLUSH is accepted in a ram section. */
    d = insert_at(saved, saved_map.first_page, flush, sizeof(flush));
    g_assert_cmpint(load_bytes(d->data, d->len, &err), ==, 0);
    g_assert_no_error(err);
}

static void test_truncated(void)
{
    size_t len;
    unsigned checked = 0;

    ensure_saved();
    for (len = 0; len <= saved_map.eof; len++) {
        g_autoptr(GError) err = NULL;

        /* Every byte of the framing; a sample inside the page data. */
        if (len > 400 && len + 600 < saved_map.eof && len % 61) {
            continue;
        }
        checked++;
        g_assert_cmpint(load_bytes(saved->data, len, &err), <, 0);
        g_assert_nonnull(err);
        if (len < 4) {
            g_assert_cmpstr(err->message, ==, "Not a migration stream");
        } else if (!strstr(err->message, "Unexpected end of migration "
                                         "stream")) {
            g_test_message("cut at %zu: %s", len, err->message);
            g_assert_not_reached();
        }
    }
    g_assert_cmpuint(checked, >, 1000);
    /* Cut inside the VMDESCRIPTION: the state itself is complete. */
    for (len = saved_map.eof + 1; len <= saved->len; len += 7) {
        g_autoptr(GError) err = NULL;

        g_assert_cmpint(load_bytes(saved->data, len, &err), ==, 0);
        g_assert_no_error(err);
    }
}

static void test_truncated_messages(void)
{
    g_autoptr(GError) err = NULL;

    ensure_saved();
    g_assert_cmpint(load_bytes(saved->data, 6, &err), <, 0);
    g_assert_cmpstr(err->message, ==,
                    "Unexpected end of migration stream while reading the "
                    "stream header");
    g_clear_error(&err);
    g_assert_cmpint(load_bytes(saved->data, saved_map.ram_footer + 2, &err), <,
                    0);
    g_assert_cmpstr(err->message, ==,
                    "Unexpected end of migration stream while reading the "
                    "footer of section 'ram'");
    g_clear_error(&err);
    g_assert_cmpint(load_bytes(saved->data, saved_map.first_page + 100, &err),
                    <, 0);
    g_assert_cmpstr(err->message, ==,
                    "error while loading state for instance 0x0 of device "
                    "'ram': Unexpected end of migration stream");
    g_clear_error(&err);
    g_assert_cmpint(load_bytes(saved->data, saved_map.testdev + 36, &err), <,
                    0);
    g_assert_cmpstr(err->message, ==,
                    "error while loading state for instance 0x0 of device "
                    "'testdev': testdev: reading field name: Unexpected end "
                    "of migration stream");
}

/*
 * Random corruption anywhere in the stream either loads (page data) or
 * fails with a message; it never crashes or hangs (run it under ASan).
 */
static void test_random_corruption(void)
{
    g_autoptr(GByteArray) c = NULL;

    ensure_saved();
    c = copy_of(saved);
    for (int i = 0; i < 2000; i++) {
        g_autoptr(GError) err = NULL;
        /* Half of the hits in the first part, where the framing is dense. */
        size_t limit = (i & 1) ? saved_map.eof + 1 : saved_map.first_page + 64;
        size_t pos = g_test_rand_int_range(0, limit);
        uint8_t old = c->data[pos];

        c->data[pos] = g_test_rand_int_range(0, 256);
        if (load_bytes(c->data, c->len, &err) < 0) {
            g_assert_nonnull(err);
            g_assert_cmpuint(strlen(err->message), >, 0);
        }
        c->data[pos] = old;
    }
}

static void test_registration(void)
{
    static TestDev other;

    /* Same name and instance twice is refused; ANY picks the next one. */
    g_assert_cmpint(vmstate_register("testdev", 0, &vmstate_testdev, &other), <,
                    0);
    g_assert_cmpint(vmstate_register("testdev", VMSTATE_INSTANCE_ID_ANY,
                                     &vmstate_testdev, &other),
                    ==, 0);
    vmstate_unregister(&vmstate_testdev, &other);
}

int main(int argc, char **argv)
{
    g_autoptr(GError) err = NULL;

    g_test_init(&argc, &argv, NULL);

    pc_ram = ram_block_add("pc.ram", PC_RAM_PAGES * TARGET_PAGE_SIZE, 0, -1,
                           false, &err);
    g_assert_no_error(err);
    vram = ram_block_add("vga.vram", VRAM_PAGES * TARGET_PAGE_SIZE, 1ULL << 40,
                         -1, false, &err);
    g_assert_no_error(err);
    /* Registration order is section id order: ram 0, globalstate 1, ... */
    ram_mig_init();
    global_state_register();
    g_assert_cmpint(vmstate_register("testdev", 0, &vmstate_testdev, &testdev),
                    ==, 0);

    g_test_add_func("/savevm/save-layout-and-load", test_save_layout_and_load);
    g_test_add_func("/savevm/rate-limited", test_rate_limited);
    g_test_add_func("/savevm/no-zero-detection", test_no_zero_detection);
    g_test_add_func("/savevm/header-errors", test_header_errors);
    g_test_add_func("/savevm/capabilities", test_capabilities);
    g_test_add_func("/savevm/section-errors", test_section_errors);
    g_test_add_func("/savevm/ram-errors", test_ram_errors);
    g_test_add_func("/savevm/commands", test_commands);
    g_test_add_func("/savevm/truncated", test_truncated);
    g_test_add_func("/savevm/truncated-messages", test_truncated_messages);
    g_test_add_func("/savevm/random-corruption", test_random_corruption);
    g_test_add_func("/savevm/registration", test_registration);
    return g_test_run();
}
