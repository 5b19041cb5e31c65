/*
 * Unit tests of system/physmem.c: RAM blocks and their lookups, the memory
 * API's dirty marking, logging on and off, guest-physical access across
 * blocks, and the property migration depends on: a copy kept up to date by
 * syncing the log (fetch-and-clear) and copying the dirty pages, while
 * writer threads keep writing, ends up identical to RAM — no write is lost.
 */
#include "qemu/osdep.h"
#include "qemu/bitmap.h"
#include "qemu/cutils.h"
#include "system/ramblock.h"

static RAMBlock *add_block(const char *name, uint64_t size, uint64_t gpa)
{
    g_autoptr(GError) err = NULL;
    RAMBlock *rb = ram_block_add(name, size, gpa, -1, false, &err);

    g_assert_no_error(err);
    g_assert_nonnull(rb);
    return rb;
}

/* Syncs rb's log into a fresh bitmap and returns it (g_free it). */
static unsigned long *sync_new(RAMBlock *rb, uint64_t *newly)
{
    unsigned long *map = bitmap_new(ramblock_pages(rb));

    *newly = ramblock_dirty_log_sync(rb, map);
    return map;
}

static void test_blocks(void)
{
    g_autoptr(GError) err = NULL;
    RAMBlock *a = add_block("a", 3 * TARGET_PAGE_SIZE + 1, 0);
    RAMBlock *b = add_block("b", 2 * TARGET_PAGE_SIZE, 16 * TARGET_PAGE_SIZE);
    uint64_t off;

    g_assert_cmpuint(a->used_length, ==, 4 * TARGET_PAGE_SIZE);
    g_assert_cmpuint(ramblock_pages(a), ==, 4);
    g_assert_cmpuint(ram_bytes_total(), ==, 6 * TARGET_PAGE_SIZE);
    g_assert_true(ram_block_by_name("b") == b);
    g_assert_null(ram_block_by_name("c"));
    g_assert_true(ram_block_for_gpa(4 * TARGET_PAGE_SIZE - 1, &off) == a);
    g_assert_cmpuint(off, ==, 4 * TARGET_PAGE_SIZE - 1);
    g_assert_null(ram_block_for_gpa(4 * TARGET_PAGE_SIZE, NULL));
    g_assert_true(ram_block_for_gpa(17 * TARGET_PAGE_SIZE + 5, &off) == b);
    g_assert_cmpuint(off, ==, TARGET_PAGE_SIZE + 5);

    /* Registration order is kept: the stream lists blocks in it. */
    g_assert_true(g_ptr_array_index(ram_blocks, 0) == a);
    g_assert_true(g_ptr_array_index(ram_blocks, 1) == b);

    g_assert_null(ram_block_add("a", TARGET_PAGE_SIZE, 64 * TARGET_PAGE_SIZE,
                                -1, false, &err));
    g_assert_nonnull(strstr(err->message, "already exists"));
    g_clear_error(&err);
    g_assert_null(ram_block_add("c", 4 * TARGET_PAGE_SIZE,
                                14 * TARGET_PAGE_SIZE, -1, false, &err));
    g_assert_nonnull(strstr(err->message, "overlaps 'b'"));
    g_clear_error(&err);
    g_assert_null(
        ram_block_add("d", 0, 64 * TARGET_PAGE_SIZE, -1, false, &err));
    g_clear_error(&err);
    g_assert_null(ram_block_add("e", TARGET_PAGE_SIZE, 100, -1, false, &err));
    g_clear_error(&err);
    g_assert_cmpuint(ram_blocks->len, ==, 2);

    ram_blocks_free();
    g_assert_null(ram_blocks);
}

static void test_marking(void)
{
    RAMBlock *rb = add_block("ram", 200 * TARGET_PAGE_SIZE, 0);
    g_autofree unsigned long *map = NULL;
    uint64_t newly;
    uint8_t buf[TARGET_PAGE_SIZE + 2];

    memory_global_dirty_log_start();
    g_assert_true(memory_global_dirty_log_enabled());

    ramblock_write_u8(rb, 3 * TARGET_PAGE_SIZE + 7, 0xaa);
    g_assert_cmpuint(rb->host[3 * TARGET_PAGE_SIZE + 7], ==, 0xaa);
    /* A u64 across a page boundary dirties both pages. */
    ramblock_write_u64(rb, 10 * TARGET_PAGE_SIZE - 4, 0x1122334455667788ULL);
    /* A buffer that touches three pages by one byte at each end. */
    memset(buf, 0x55, sizeof(buf));
    ramblock_write(rb, 20 * TARGET_PAGE_SIZE - 1, buf, sizeof(buf));
    /* A fill across a word of the log (pages 60..129). */
    ramblock_fill(rb, 60 * TARGET_PAGE_SIZE, 0x11, 70 * TARGET_PAGE_SIZE);
    g_assert_cmpuint(rb->host[130 * TARGET_PAGE_SIZE - 1], ==, 0x11);
    ramblock_mark_dirty(rb, 199 * TARGET_PAGE_SIZE, 0); /* empty: nothing */

    map = sync_new(rb, &newly);
    g_assert_cmpuint(newly, ==, 1 + 2 + 3 + 70);
    g_assert_true(test_bit(3, map));
    g_assert_true(test_bit(9, map) && test_bit(10, map));
    g_assert_true(test_bit(19, map) && test_bit(20, map) && test_bit(21, map));
    g_assert_false(test_bit(22, map));
    g_assert_true(test_bit(59, map) == false && test_bit(60, map) &&
                  test_bit(129, map) && !test_bit(130, map));
    g_assert_cmpuint(bitmap_count_one(map, 200), ==, 76);
    /* Fetch-and-clear: the log is empty now. */
    g_assert_true(bitmap_empty(rb->dirty_log, 200));

    /* Only pages not already in dest count as newly set. */
    ramblock_write_u8(rb, 3 * TARGET_PAGE_SIZE, 1);
    ramblock_write_u8(rb, 150 * TARGET_PAGE_SIZE, 1);
    g_assert_cmpuint(ramblock_dirty_log_sync(rb, map), ==, 1);
    g_assert_true(test_bit(150, map));
    g_assert_cmpuint(ramblock_dirty_log_sync(rb, map), ==, 0);

    memory_global_dirty_log_stop();
    ram_blocks_free();
}

static void test_logging_on_off(void)
{
    RAMBlock *rb = add_block("ram", 64 * TARGET_PAGE_SIZE, 0);
    g_autofree unsigned long *map = NULL;
    uint64_t newly;

    g_assert_false(memory_global_dirty_log_enabled());
    ramblock_write_u8(rb, 5 * TARGET_PAGE_SIZE, 1);
    g_assert_true(bitmap_empty(rb->dirty_log, 64));

    memory_global_dirty_log_start();
    ramblock_write_u8(rb, 6 * TARGET_PAGE_SIZE, 1);
    memory_global_dirty_log_stop();
    g_assert_false(memory_global_dirty_log_enabled());
    ramblock_write_u8(rb, 7 * TARGET_PAGE_SIZE, 1);
    /* The data is written either way; only marking depends on logging. */
    g_assert_cmpuint(rb->host[7 * TARGET_PAGE_SIZE], ==, 1);

    map = sync_new(rb, &newly);
    g_assert_cmpuint(newly, ==, 1);
    g_assert_true(test_bit(6, map));

    /* A new start begins with every page clean. */
    memory_global_dirty_log_start();
    ramblock_write_u8(rb, 8 * TARGET_PAGE_SIZE, 1);
    memory_global_dirty_log_stop();
    memory_global_dirty_log_start();
    g_assert_true(bitmap_empty(rb->dirty_log, 64));
    memory_global_dirty_log_stop();
    ram_blocks_free();
}

static void test_guest_phys(void)
{
    RAMBlock *lo = add_block("lo", 4 * TARGET_PAGE_SIZE, 0);
    RAMBlock *hi = add_block("hi", 4 * TARGET_PAGE_SIZE, 4 * TARGET_PAGE_SIZE);
    uint8_t out[300], in[300];
    uint64_t newly;
    g_autofree unsigned long *lo_map = NULL, *hi_map = NULL;
    size_t i;

    add_block("far", TARGET_PAGE_SIZE, 100 * TARGET_PAGE_SIZE);
    for (i = 0; i < sizeof(out); i++) {
        out[i] = i * 7;
    }
    memory_global_dirty_log_start();
    /* Across two adjacent blocks. */
    g_assert_true(
        guest_phys_write(4 * TARGET_PAGE_SIZE - 100, out, sizeof(out)));
    g_assert_cmpmem(lo->host + 4 * TARGET_PAGE_SIZE - 100, 100, out, 100);
    g_assert_cmpmem(hi->host, 200, out + 100, 200);
    g_assert_true(guest_phys_read(4 * TARGET_PAGE_SIZE - 100, in, sizeof(in)));
    g_assert_cmpmem(in, sizeof(in), out, sizeof(out));
    lo_map = sync_new(lo, &newly);
    g_assert_cmpuint(newly, ==, 1);
    hi_map = sync_new(hi, &newly);
    g_assert_cmpuint(newly, ==, 1);

    /* Running into the hole after "hi" fails and writes nothing. */
    g_assert_false(guest_phys_write(8 * TARGET_PAGE_SIZE - 10, out, 20));
    g_assert_cmpuint(hi->host[4 * TARGET_PAGE_SIZE - 10], ==, 0);
    g_assert_false(guest_phys_read(8 * TARGET_PAGE_SIZE - 10, in, 20));
    g_assert_false(guest_phys_read(UINT64_MAX - 5, in, 20));
    g_assert_true(guest_phys_read(100 * TARGET_PAGE_SIZE, in, 10));
    g_assert_true(bitmap_empty(hi->dirty_log, 4));
    memory_global_dirty_log_stop();
    ram_blocks_free();
}

static void test_machine_layout(void)
{
    g_autoptr(GError) err = NULL;
    char banner[32] = "";
    RAMBlock *ram, *bios;

    g_assert_true(machine_ram_init(2 * MiB, -1, false, true, &err));
    g_assert_no_error(err);
    ram = ram_block_by_name("pc.ram");
    g_assert_nonnull(ram);
    g_assert_cmpuint(ram->guest_addr, ==, 0);
    g_assert_cmpstr(((RAMBlock *)g_ptr_array_index(ram_blocks, 1))->idstr, ==,
                    "vga.vram");
    g_assert_cmpstr(((RAMBlock *)g_ptr_array_index(ram_blocks, 2))->idstr, ==,
                    "pc.bios");
    g_assert_cmpuint(ram_bytes_total(), ==,
                     2 * MiB + VGA_VRAM_SIZE + PC_BIOS_SIZE);
    g_assert_true(guest_phys_read(PC_BIOS_GPA, banner, sizeof(banner) - 1));
    g_assert_cmpstr(banner, ==, "minivm BIOS page 0");
    g_assert_true(ram_block_for_gpa(VGA_VRAM_GPA + 5, NULL) ==
                  ram_block_by_name("vga.vram"));
    ram_blocks_free();

    /* A migration destination starts with empty firmware blocks. */
    g_assert_true(machine_ram_init(2 * MiB, -1, false, false, &err));
    bios = ram_block_by_name("pc.bios");
    g_assert_true(buffer_is_zero(bios->host, bios->used_length));
    ram_blocks_free();
}

/* --- no write is lost while the log is synced concurrently --- */

#define RACE_PAGES 512
#define RACE_US    (300 * 1000)

typedef struct RaceWriter {
    RAMBlock *rb;
    uint64_t seed;
    int *stop;
    uint64_t writes;
} RaceWriter;

static gpointer race_writer(gpointer opaque)
{
    RaceWriter *w = opaque;
    uint64_t x = w->seed;

    while (!g_atomic_int_get(w->stop)) {
        uint64_t page, slot;

        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        page = x % RACE_PAGES;
        /* A few hot slots per page, so writers share log words. */
        slot = (x >> 32) % 4;
        ramblock_write_u64(w->rb, page * TARGET_PAGE_SIZE + slot * 8,
                           ++w->writes);
    }
    return NULL;
}

/* Copies the pages set in map from RAM to copy and clears their bits. */
static uint64_t copy_dirty(RAMBlock *rb, unsigned long *map, uint8_t *copy)
{
    size_t page = find_first_bit(map, RACE_PAGES);
    uint64_t copied = 0;

    for (; page < RACE_PAGES; page = find_next_bit(map, RACE_PAGES, page)) {
        clear_bit(page, map);
        memcpy(copy + page * TARGET_PAGE_SIZE,
               rb->host + page * TARGET_PAGE_SIZE, TARGET_PAGE_SIZE);
        copied++;
    }
    return copied;
}

static void test_sync_race(void)
{
    RAMBlock *rb = add_block("ram", RACE_PAGES * TARGET_PAGE_SIZE, 0);
    g_autofree uint8_t *copy = g_malloc(RACE_PAGES * TARGET_PAGE_SIZE);
    g_autofree unsigned long *map = bitmap_new(RACE_PAGES);
    RaceWriter w[2];
    GThread *threads[2];
    uint64_t syncs = 0, copied = 0;
    int stop = 0;
    gint64 end;
    int i;

    for (i = 0; i < 2; i++) {
        w[i] = (RaceWriter){.rb = rb, .seed = 0x1234567 + i, .stop = &stop};
        threads[i] = g_thread_new("writer", race_writer, &w[i]);
    }
    /* As migration does: log on, then a full first pass, then dirty ones. */
    memory_global_dirty_log_start();
    bitmap_fill(map, RACE_PAGES);
    copied += copy_dirty(rb, map, copy);
    end = g_get_monotonic_time() + RACE_US;
    while (g_get_monotonic_time() < end) {
        ramblock_dirty_log_sync(rb, map);
        copied += copy_dirty(rb, map, copy);
        syncs++;
    }
    g_atomic_int_set(&stop, 1);
    for (i = 0; i < 2; i++) {
        g_thread_join(threads[i]);
    }
    /* The writers are done: one last sync must make the copy exact. */
    ramblock_dirty_log_sync(rb, map);
    copied += copy_dirty(rb, map, copy);
    memory_global_dirty_log_stop();

    g_test_message("%" PRIu64 " + %" PRIu64 " writes, %" PRIu64
                   " syncs, %" PRIu64 " page copies",
                   w[0].writes, w[1].writes, syncs, copied);
    g_assert_cmpuint(w[0].writes + w[1].writes, >, 1000);
    g_assert_cmpuint(syncs, >, 10);
    for (i = 0; i < RACE_PAGES; i++) {
        if (memcmp(copy + i * TARGET_PAGE_SIZE, rb->host + i * TARGET_PAGE_SIZE,
                   TARGET_PAGE_SIZE)) {
            g_error("page %d: a write was lost (the copy is stale)", i);
        }
    }
    ram_blocks_free();
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/physmem/blocks", test_blocks);
    g_test_add_func("/physmem/marking", test_marking);
    g_test_add_func("/physmem/logging-on-off", test_logging_on_off);
    g_test_add_func("/physmem/guest-phys", test_guest_phys);
    g_test_add_func("/physmem/machine-layout", test_machine_layout);
    g_test_add_func("/physmem/sync-race", test_sync_race);
    return g_test_run();
}
