/*
 * The loadvm fuzzer's seeds, from the same small VM the fuzzer loads into:
 *   fuzz-gen-seeds DIR          writes them into DIR
 *   fuzz-gen-seeds --check DIR  every file in DIR must load cleanly
 * The check runs as a test, so seeds that a format change made invalid
 * (and useless as a starting point) are noticed; regenerate them with
 * build/tests/fuzz/fuzz-gen-seeds tests/fuzz/corpus/loadvm.
 *
 * A seed is a fuzzer input: one mode byte (bit 0: mapped-ram), then a
 * stream. mapped-ram streams are compacted (pages right after the bitmap)
 * so they stay small.
 */
#include "qemu/osdep.h"

#include "migration/vmstate-internal.h"
#include "system/runstate.h"

#include "stream-vm.h"

static const uint8_t switchover[] = {QEMU_VM_COMMAND, 0x00, 0x0b, 0, 0};

static void write_seed(const char *dir, const char *name, uint8_t mode,
                       const GByteArray *stream)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);
    g_autoptr(GByteArray) seed = g_byte_array_new();
    g_autoptr(GError) err = NULL;

    g_byte_array_append(seed, &mode, 1);
    g_byte_array_append(seed, stream->data, stream->len);
    if (!g_file_set_contents(path, (const char *)seed->data, seed->len, &err)) {
        g_printerr("%s\n", err->message);
        exit(1);
    }
    printf("%s: %u bytes\n", path, seed->len);
}

/* The stream with QEMU 10's switchover-start before the END section. */
static GByteArray *with_switchover(const GByteArray *stream)
{
    GByteArray *out = g_byte_array_new();
    const StreamSection *end;
    StreamMap m;

    stream_map(stream, 0, &m);
    end = stream_map_section(&m, "ram", QEMU_VM_SECTION_END);
    g_assert_nonnull(end);
    g_byte_array_append(out, stream->data, end->start);
    g_byte_array_append(out, switchover, sizeof(switchover));
    g_byte_array_append(out, stream->data + end->start,
                        stream->len - end->start);
    stream_map_free(&m);
    return out;
}

static void write_seeds(const char *dir)
{
    g_autoptr(GByteArray) plain = NULL;
    g_autoptr(GByteArray) plain_so = NULL;
    g_autoptr(GByteArray) mapped = NULL;
    g_autoptr(GByteArray) compact = NULL;
    g_autoptr(GByteArray) compact_so = NULL;

    stream_vm_set_mapped_ram(false);
    plain = stream_vm_save_to_memory();
    plain_so = with_switchover(plain);
    stream_vm_set_mapped_ram(true);
    mapped = stream_vm_save_to_memory();
    compact = stream_compact_mapped_ram(mapped, 0);
    compact_so = with_switchover(compact);
    write_seed(dir, "plain", 0, plain);
    write_seed(dir, "plain-switchover", 0, plain_so);
    write_seed(dir, "mapped-ram", 1, compact);
    write_seed(dir, "mapped-ram-switchover", 1, compact_so);
}

static int check_seeds(const char *dir)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GDir) d = g_dir_open(dir, 0, &err);
    const char *name;
    unsigned count = 0;
    int bad = 0;

    if (!d) {
        g_printerr("%s\n", err->message);
        return 1;
    }
    while ((name = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_autofree char *data = NULL;
        gsize len;

        if (!g_file_get_contents(path, &data, &len, &err) || len < 1) {
            g_printerr("%s: %s\n", path, err ? err->message : "empty");
            return 1;
        }
        stream_vm_set_mapped_ram(data[0] & 1);
        if (stream_vm_load_buffer((uint8_t *)data + 1, len - 1, &err) < 0) {
            g_printerr("%s no longer loads: %s\n(regenerate the seeds with "
                       "fuzz-gen-seeds %s)\n",
                       path, err->message, dir);
            g_clear_error(&err);
            bad = 1;
        }
        count++;
    }
    printf("%u seeds checked\n", count);
    return bad || count == 0;
}

int main(int argc, char **argv)
{
    bool check = argc == 3 && strcmp(argv[1], "--check") == 0;

    if (argc != 2 && !check) {
        g_printerr("usage: %s [--check] DIR\n", argv[0]);
        return 2;
    }
    stream_vm_init(&stream_vm_fuzz_layout);
    stream_vm_fill();
    bql_lock();
    runstate_set(RUN_STATE_INMIGRATE);
    bql_unlock();
    if (check) {
        return check_seeds(argv[2]);
    }
    write_seeds(argv[1]);
    return 0;
}
