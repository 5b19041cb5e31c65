/*
 * A small VM inside a test process and the streams it writes (see
 * stream-vm.h). Everything here goes through minivm's own code: RAM blocks
 * and the memory API, the registered sections, qemu_savevm_state_*() as the
 * migration thread calls them, the file: transport, qemu_loadvm_state().
 */
#include "qemu/osdep.h"

#include "io/channel-buffer.h"
#include "migration/file.h"
#include "migration/global-state.h"
#include "migration/mapped-ram.h"
#include "migration/migration-stats.h"
#include "migration/multifd.h"
#include "migration/options.h"
#include "migration/ram.h"
#include "migration/savevm.h"
#include "migration/vmstate-internal.h"
#include "qapi/qapi-commands.h"
#include "system/ramblock.h"
#include "system/runstate.h"
#include "system/serial.h"
#include "system/workload.h"

#include "stream-vm.h"

const StreamVMLayout stream_vm_fuzz_layout = {
    .ram_bytes = 5 * TARGET_PAGE_SIZE,
    .vram_bytes = 2 * TARGET_PAGE_SIZE,
    .bios_bytes = 1 * TARGET_PAGE_SIZE,
};

static RAMBlock *blocks[STREAM_VM_BLOCKS];
static Workload *workload;

uint64_t stream_get_be(const uint8_t *p, int bytes)
{
    uint64_t v = 0;

    for (int i = 0; i < bytes; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

void stream_put_be(uint8_t *p, int bytes, uint64_t v)
{
    for (int i = bytes - 1; i >= 0; i--, v >>= 8) {
        p[i] = v & 0xff;
    }
}

/* --- the VM --- */

void stream_vm_init(const StreamVMLayout *layout)
{
    static const char *const names[STREAM_VM_BLOCKS] = {"pc.ram", "vga.vram",
                                                        "pc.bios"};
    const uint64_t gpas[STREAM_VM_BLOCKS] = {0, VGA_VRAM_GPA, PC_BIOS_GPA};
    const uint64_t sizes[STREAM_VM_BLOCKS] = {
        layout->ram_bytes, layout->vram_bytes, layout->bios_bytes};
    g_autoptr(GError) err = NULL;

    g_assert_null(blocks[0]);
    for (int i = 0; i < STREAM_VM_BLOCKS; i++) {
        blocks[i] = ram_block_add(names[i], sizes[i], gpas[i], -1, false, &err);
        g_assert_no_error(err);
    }
    /* The order main() gives them: ram, globalstate, serial, workload. */
    ram_mig_init();
    global_state_register();
    g_assert_true(serial_init("none", &err));
    g_assert_no_error(err);
    workload = workload_create("a-b", &err);
    g_assert_no_error(err);
    g_assert_nonnull(workload);
}

void stream_vm_fill(void)
{
    RAMBlock *ram = blocks[0], *vram = blocks[1], *bios = blocks[2];

    for (uint64_t i = 0; i < ramblock_pages(ram); i++) {
        uint64_t offset = i << TARGET_PAGE_BITS;

        /* Every fourth page zero: ZERO records and mapped-ram holes. */
        ramblock_fill(ram, offset, i % 4 == 1 ? 0 : 0x11 + (i & 0x3f),
                      TARGET_PAGE_SIZE);
        if (i % 4 != 1) {
            ramblock_write_u64(ram, offset, i);
        }
    }
    for (uint64_t i = 0; i < ramblock_pages(vram); i++) {
        ramblock_fill(vram, i << TARGET_PAGE_BITS, i % 3 == 2 ? 0 : 0xa0 + i,
                      TARGET_PAGE_SIZE);
    }
    for (uint64_t i = 0; i < ramblock_pages(bios); i++) {
        ramblock_fill(bios, i << TARGET_PAGE_BITS, 0xb0 + i, TARGET_PAGE_SIZE);
    }
    /* The guest's own state: it prints 'A' and starts its loop. */
    for (int i = 0; i < 2; i++) {
        workload->klass->step(workload, 0);
    }
}

void stream_vm_clear_ram(int byte)
{
    for (int i = 0; i < STREAM_VM_BLOCKS; i++) {
        memset(blocks[i]->host, byte, blocks[i]->used_length);
    }
}

void stream_vm_set_mapped_ram(bool on)
{
    MigrationCapabilityStatus status = {
        .capability = MIGRATION_CAPABILITY_MAPPED_RAM,
        .state = on,
    };
    MigrationCapabilityStatusList list = {.value = &status};
    g_autoptr(GError) err = NULL;

    if (migrate_mapped_ram() == on) {
        return;
    }
    qmp_migrate_set_capabilities(&list, &err);
    g_assert_no_error(err);
    g_assert_cmpint(migrate_mapped_ram(), ==, on);
}

void stream_vm_set_multifd(int channels, const char *load_path)
{
    MigrationCapabilityStatus status = {
        .capability = MIGRATION_CAPABILITY_MULTIFD,
        .state = channels > 0,
    };
    MigrationCapabilityStatusList list = {.value = &status};
    MigrateSetParameters params = {
        .has_multifd_channels = true,
        .multifd_channels = channels,
    };
    g_autoptr(GError) err = NULL;

    if (channels > 0 && migrate_multifd_channels() != channels) {
        qmp_migrate_set_parameters(&params, &err);
        g_assert_no_error(err);
    }
    if (migrate_multifd() != (channels > 0)) {
        qmp_migrate_set_capabilities(&list, &err);
        g_assert_no_error(err);
    }
    multifd_set_incoming_file(channels > 0 ? load_path : NULL);
}

void stream_vm_state_capture(StreamVMState *st)
{
    for (int i = 0; i < STREAM_VM_BLOCKS; i++) {
        st->ram_sha256[i] = g_compute_checksum_for_data(
            G_CHECKSUM_SHA256, blocks[i]->host, blocks[i]->used_length);
    }
    st->serial_bytes = serial_bytes_sent();
    st->received_runstate = global_state_received_runstate();
}

bool stream_vm_state_equal(const StreamVMState *a, const StreamVMState *b)
{
    for (int i = 0; i < STREAM_VM_BLOCKS; i++) {
        if (strcmp(a->ram_sha256[i], b->ram_sha256[i]) != 0) {
            return false;
        }
    }
    return a->serial_bytes == b->serial_bytes &&
           a->received_runstate == b->received_runstate;
}

void stream_vm_state_free(StreamVMState *st)
{
    for (int i = 0; i < STREAM_VM_BLOCKS; i++) {
        g_clear_pointer(&st->ram_sha256[i], g_free);
    }
}

/* --- saving and loading --- */

int stream_vm_save(QIOChannel *ioc, GError **errp)
{
    QEMUFile *f = qemu_file_new_output(ioc);
    RunState before = runstate_get();
    int ret, rounds = 0;

    migration_reset_stats();
    qemu_savevm_state_header(f);
    ret = qemu_savevm_state_setup(f, errp);
    /* Nothing dirties RAM meanwhile: one pass sends everything. */
    while (ret == 0 && rounds++ < 1000) {
        ret = qemu_savevm_state_iterate(f);
    }
    if (ret > 0) {
        /* Switchover of a running source: record "running", then stop. */
        bql_lock();
        runstate_set(RUN_STATE_RUNNING);
        global_state_store();
        runstate_set(RUN_STATE_FINISH_MIGRATE);
        bql_unlock();
        ret = qemu_savevm_state_complete_precopy(f, errp);
    } else if (ret == 0 || (errp && !*errp)) {
        error_setg(errp, "saving did not converge (%d)", ret);
        ret = ret ? ret : -EIO;
    }
    qemu_savevm_state_cleanup();
    if (qemu_fclose(f) < 0 && ret == 0) {
        error_setg(errp, "closing the stream failed");
        ret = -EIO;
    }
    bql_lock();
    runstate_set(before);
    bql_unlock();
    return ret;
}

GByteArray *stream_vm_save_to_memory(void)
{
    QIOChannelBuffer *bioc = qio_channel_buffer_new(0);
    g_autoptr(GError) err = NULL;
    GByteArray *out = g_byte_array_new();

    g_assert_cmpint(stream_vm_save(&bioc->parent, &err), ==, 0);
    g_assert_no_error(err);
    g_byte_array_append(out, bioc->data, bioc->usage);
    qio_channel_unref(&bioc->parent);
    return out;
}

GByteArray *stream_vm_save_to_file(const char *path, uint64_t offset)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *contents = NULL;
    QIOChannel *ioc = file_open_outgoing(path, offset, &err);
    GByteArray *out;
    gsize len;

    g_assert_no_error(err);
    g_assert_cmpint(stream_vm_save(ioc, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(qio_channel_close(ioc, &err), ==, 0);
    qio_channel_unref(ioc);
    g_assert_true(g_file_get_contents(path, &contents, &len, &err));
    out = g_byte_array_sized_new(len);
    g_byte_array_append(out, (const uint8_t *)contents, len);
    return out;
}

int stream_vm_load(QIOChannel *ioc, GError **errp)
{
    QEMUFile *f = qemu_file_new_input(ioc);
    int ret = qemu_loadvm_state(f, errp);

    qemu_fclose(f);
    return ret;
}

int stream_vm_load_buffer(const uint8_t *data, size_t len, GError **errp)
{
    QIOChannelBuffer *bioc = qio_channel_buffer_new_static(data, len);
    int ret = stream_vm_load(&bioc->parent, errp);

    qio_channel_unref(&bioc->parent);
    return ret;
}

int stream_vm_load_path(const char *path, uint64_t offset, GError **errp)
{
    QIOChannel *ioc = file_open_incoming(path, offset, errp);
    int ret;

    if (!ioc) {
        return -EIO;
    }
    ret = stream_vm_load(ioc, errp);
    qio_channel_close(ioc, NULL);
    qio_channel_unref(ioc);
    return ret;
}

int stream_vm_load_file(const char *path, const uint8_t *data, size_t len,
                        uint64_t offset, GError **errp)
{
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(write(fd, data, len), ==, (ssize_t)len);
    close(fd);
    return stream_vm_load_path(path, offset, errp);
}

/* --- the map of a valid stream --- */

/* Plausible byte after a footer: another section, a command or EOF. */
static bool section_type_follows(const GByteArray *img, size_t pos)
{
    if (pos >= img->len) {
        return false;
    }
    switch (img->data[pos]) {
    case QEMU_VM_EOF:
    case QEMU_VM_SECTION_START:
    case QEMU_VM_SECTION_PART:
    case QEMU_VM_SECTION_END:
    case QEMU_VM_SECTION_FULL:
    case QEMU_VM_COMMAND:
        return true;
    default:
        return false;
    }
}

/* A device body has no length on the wire: find its footer. */
static size_t find_footer(const GByteArray *img, size_t pos, uint32_t id)
{
    for (; pos + 5 <= img->len; pos++) {
        if (img->data[pos] == QEMU_VM_SECTION_FOOTER &&
            stream_get_be(img->data + pos + 1, 4) == id &&
            section_type_follows(img, pos + 5)) {
            return pos;
        }
    }
    g_error("stream_map: no footer for section %u", id);
}

static void copy_name(char out[256], const uint8_t *p)
{
    memcpy(out, p + 1, p[0]);
    out[p[0]] = '\0';
}

/* A ram section payload at pos; returns the position of its footer. */
static size_t map_ram_payload(const GByteArray *img, size_t pos, StreamMap *m,
                              bool start)
{
    const uint8_t *d = img->data;

    for (;;) {
        size_t rec = pos;
        uint64_t hdr;
        unsigned flags;

        g_assert_cmpuint(pos + 8, <=, img->len);
        hdr = stream_get_be(d + pos, 8);
        flags = hdr & ~TARGET_PAGE_MASK;
        pos += 8;
        if (flags & RAM_SAVE_FLAG_MEM_SIZE) {
            uint64_t total = hdr & TARGET_PAGE_MASK;

            m->mem_size = rec;
            while (total) {
                StreamBlock *b = &m->blocks[m->nblocks++];

                g_assert_cmpuint(m->nblocks, <=, STREAM_VM_BLOCKS);
                b->name_len = pos;
                copy_name(b->name, d + pos);
                pos += 1 + d[pos];
                b->used_length = pos;
                b->bytes = stream_get_be(d + pos, 8);
                pos += 8;
                total -= b->bytes;
                if (m->caps) {
                    b->header = pos;
                    b->bitmap_offset = stream_get_be(d + pos + 12, 8);
                    b->pages_offset = stream_get_be(d + pos + 20, 8);
                    pos = b->pages_offset + b->bytes;
                }
            }
            continue;
        }
        if (flags & RAM_SAVE_FLAG_EOS) {
            if (start) {
                m->start_eos = rec;
            }
            return pos;
        }
        if (flags & RAM_SAVE_FLAG_MULTIFD_FLUSH) {
            continue;
        }
        g_assert_true(flags & (RAM_SAVE_FLAG_ZERO | RAM_SAVE_FLAG_PAGE));
        if (!(flags & RAM_SAVE_FLAG_CONTINUE)) {
            if ((flags & RAM_SAVE_FLAG_PAGE) && !m->first_page) {
                m->first_page = rec;
            }
            pos += 1 + d[pos];
        } else if ((flags & RAM_SAVE_FLAG_PAGE) && !m->cont_page) {
            m->cont_page = rec;
        }
        if ((flags & RAM_SAVE_FLAG_ZERO) && !m->first_zero) {
            m->first_zero = rec;
            m->zero_byte = pos;
        }
        if (flags & RAM_SAVE_FLAG_PAGE) {
            m->last_page = rec;
        }
        pos += (flags & RAM_SAVE_FLAG_ZERO) ? 1 : TARGET_PAGE_SIZE;
    }
}

void stream_map(const GByteArray *img, size_t base, StreamMap *m)
{
    const uint8_t *d = img->data;
    size_t pos = base;

    memset(m, 0, sizeof(*m));
    m->base = base;
    m->end = img->len;
    m->sections = g_array_new(false, true, sizeof(StreamSection));
    g_assert_cmpuint(stream_get_be(d + pos, 4), ==, QEMU_VM_FILE_MAGIC);
    pos += 8;
    m->config = pos;
    g_assert_cmpuint(d[pos], ==, QEMU_VM_CONFIGURATION);
    pos += 5 + stream_get_be(d + pos + 1, 4);
    if (d[pos] == QEMU_VM_SUBSECTION) {
        uint32_t count;

        m->caps = pos;
        pos += 2 + d[pos + 1] + 4;
        count = stream_get_be(d + pos, 4);
        pos += 4;
        while (count--) {
            pos += 1 + d[pos];
        }
    }
    m->caps_end = pos;

    for (;;) {
        StreamSection s = {.type = d[pos], .start = pos};

        if (s.type == QEMU_VM_EOF) {
            m->eof = pos;
            if (pos + 1 < img->len) {
                g_assert_cmpuint(d[pos + 1], ==, QEMU_VM_VMDESCRIPTION);
                m->vmdesc = pos + 1;
            }
            return;
        }
        if (s.type == QEMU_VM_COMMAND) {
            pos += 5 + stream_get_be(d + pos + 3, 2);
            continue;
        }
        s.section_id = stream_get_be(d + pos + 1, 4);
        pos += 5;
        if (s.type == QEMU_VM_SECTION_START || s.type == QEMU_VM_SECTION_FULL) {
            s.idstr_len = pos;
            copy_name(s.idstr, d + pos);
            pos += 1 + d[pos];
            s.instance_id = pos;
            s.version_id = pos + 4;
            pos += 8;
        } else {
            g_assert_true(s.type == QEMU_VM_SECTION_PART ||
                          s.type == QEMU_VM_SECTION_END);
            for (guint i = 0; i < m->sections->len; i++) {
                StreamSection *o =
                    &g_array_index(m->sections, StreamSection, i);

                if (o->section_id == s.section_id) {
                    memcpy(s.idstr, o->idstr, sizeof(s.idstr));
                    break;
                }
            }
        }
        s.body = pos;
        if (strcmp(s.idstr, "ram") == 0) {
            pos = map_ram_payload(img, pos, m, s.type == QEMU_VM_SECTION_START);
        } else {
            pos = find_footer(img, pos, s.section_id);
        }
        g_assert_cmpuint(d[pos], ==, QEMU_VM_SECTION_FOOTER);
        g_assert_cmpuint(stream_get_be(d + pos + 1, 4), ==, s.section_id);
        s.footer = pos;
        pos += 5;
        g_array_append_val(m->sections, s);
    }
}

void stream_map_free(StreamMap *m)
{
    g_clear_pointer(&m->sections, g_array_unref);
}

const StreamSection *stream_map_section(const StreamMap *m, const char *idstr,
                                        uint8_t type)
{
    for (guint i = 0; i < m->sections->len; i++) {
        const StreamSection *s = &g_array_index(m->sections, StreamSection, i);

        if (s->type == type && strcmp(s->idstr, idstr) == 0) {
            return s;
        }
    }
    return NULL;
}

GByteArray *stream_compact_mapped_ram(const GByteArray *img, size_t base)
{
    static const uint8_t zeros[TARGET_PAGE_SIZE];
    GByteArray *out = g_byte_array_new();
    StreamMap m;
    size_t copied;

    stream_map(img, base, &m);
    g_assert_cmpuint(m.caps, !=, 0);
    g_assert_cmpuint(m.nblocks, >, 0);
    g_byte_array_append(out, img->data, m.blocks[0].header);
    for (unsigned i = 0; i < m.nblocks; i++) {
        const StreamBlock *b = &m.blocks[i];
        uint64_t bitmap_size =
            mapped_ram_bitmap_size(b->bytes >> TARGET_PAGE_BITS);
        uint64_t bitmap_offset = out->len + MAPPED_RAM_HDR_SIZE;
        uint64_t pages_offset =
            QEMU_ALIGN_UP(bitmap_offset + bitmap_size, TARGET_PAGE_SIZE);
        uint8_t hdr[MAPPED_RAM_HDR_SIZE];
        size_t next;

        memcpy(hdr, img->data + b->header, sizeof(hdr));
        stream_put_be(hdr + 12, 8, bitmap_offset);
        stream_put_be(hdr + 20, 8, pages_offset);
        g_byte_array_append(out, hdr, sizeof(hdr));
        g_byte_array_append(out, img->data + b->bitmap_offset, bitmap_size);
        g_byte_array_append(out, zeros, pages_offset - out->len);
        g_byte_array_append(out, img->data + b->pages_offset, b->bytes);
        /* The stream between this page area and the next header. */
        copied = b->pages_offset + b->bytes;
        next = i + 1 < m.nblocks ? m.blocks[i + 1].header : img->len;
        g_byte_array_append(out, img->data + copied, next - copied);
    }
    stream_map_free(&m);
    return out;
}
