/*
 * libFuzzer target: the incoming migration stream loader.
 *
 * Input: one mode byte, then stream bytes. Bit 0 of the mode byte turns
 * the mapped-ram capability on, so both loaders are reached: the legacy
 * page records and the mapped-ram block headers, bitmaps and positioned
 * page reads. The stream is read from a memory channel (SEEKABLE, so the
 * positioned reads of mapped-ram go to the same bytes) into a small VM
 * built once (tests/fuzz/stream-vm.c: three RAM blocks of a few pages,
 * the ram section, globalstate, serial and the a-b workload state).
 *
 * Beyond what the sanitizers catch, every input must either load or fail
 * with a non-empty message, and must never resume the guest. Seeds:
 * tests/fuzz/corpus/loadvm/, written by fuzz-gen-seeds.
 */
#include "qemu/osdep.h"

#include "system/runstate.h"

#include "stream-vm.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    stream_vm_init(&stream_vm_fuzz_layout);
    stream_vm_fill();
    bql_lock();
    runstate_set(RUN_STATE_INMIGRATE);
    bql_unlock();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    GError *err = NULL;
    int ret;

    if (size < 1) {
        return 0;
    }
    stream_vm_set_mapped_ram(data[0] & 1);
    ret = stream_vm_load_buffer(data + 1, size - 1, &err);
    if (ret < 0 && (!err || !err->message[0])) {
        g_error("the load failed (%d) without saying why", ret);
    }
    if (ret == 0 && err) {
        g_error("the load succeeded but set an error: %s", err->message);
    }
    if (runstate_get() != RUN_STATE_INMIGRATE) {
        g_error("the loader changed the run state to %s",
                runstate_name(runstate_get()));
    }
    g_clear_error(&err);
    return 0;
}
