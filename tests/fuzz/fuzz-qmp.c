/*
 * libFuzzer target: QMP as a client's bytes reach it. Each input is one
 * client session (monitor/qmp-fuzz-entry.c): greeting, the input through
 * the splitter, the JSON parser, the request checks, negotiation, the
 * dispatcher and the generated argument parsers of every command, events
 * (stop/cont emit them), then the disconnect. An input of even length
 * arrives in one read, an odd one in 7-byte reads, so the fuzzer also
 * explores messages split across reads.
 *
 * Commands whose effects leave the process (migrate: files, sockets and
 * child processes; pmemsave: files; human-monitor-command, which reaches
 * both through HMP) are refused as unknown; every other command runs.
 *
 * Beyond what the sanitizers catch, the server must answer with a
 * greeting and then only replies and events, one JSON object per line.
 * Seeds: tests/fuzz/corpus/qmp/; dictionary: tests/fuzz/qmp.dict.
 * FUZZ_QMP_VERBOSE=1 prints the server's side of each session.
 */
#include "qemu/osdep.h"

#include "monitor/monitor-internal.h"
#include "monitor/qmp-fuzz-entry.h"
#include "system/ramblock.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool verbose;

static bool fuzz_command_allowed(const char *name)
{
    return strcmp(name, "migrate") != 0 && strcmp(name, "pmemsave") != 0 &&
           strcmp(name, "human-monitor-command") != 0;
}

/*
 * What the server wrote is UTF-8 (a client could not parse it otherwise),
 * the greeting, then replies and events, one per line. json-glib's
 * generator made each line, so its syntax is not in question (parsing
 * every line back would halve the speed); the shape is.
 */
static void check_output(const GString *out)
{
    const char *p = out->str;
    const char *end = out->str + out->len;
    bool first = true;

    if (!g_utf8_validate(out->str, out->len, NULL)) {
        g_error("output is not UTF-8: %s", out->str);
    }
    while (p < end) {
        const char *eol = g_strstr_len(p, end - p, "\r\n");
        int len = eol ? eol - p : end - p;

        if (!eol || len < 2 || p[0] != '{' || p[len - 1] != '}') {
            g_error("output is not lines of JSON objects: %.*s", len, p);
        }
        if (first ? !g_str_has_prefix(p, "{\"QMP\":")
                  : !g_str_has_prefix(p, "{\"return\":") &&
                        !g_str_has_prefix(p, "{\"error\":") &&
                        !g_str_has_prefix(p, "{\"event\":")) {
            g_error("unexpected message: %.*s", len, p);
        }
        first = false;
        p = eol + 2;
    }
    if (first) {
        g_error("no greeting");
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    g_autoptr(GError) err = NULL;

    /* Events are flushed at once, as on the main loop thread. */
    monitor_note_main_thread();
    monitor_events_enable();
    /* Something for x-query-ram-digest to read. */
    ram_block_add("pc.ram", 64 * KiB, 0, -1, false, &err);
    g_assert_no_error(err);
    verbose = g_getenv("FUZZ_QMP_VERBOSE") != NULL;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GString) out = g_string_new(NULL);
    /* Odd sizes arrive in 7-byte reads: where a read ends must not matter. */
    size_t chunk = size % 2 ? 7 : 0;

    qmp_client_feed_for_test(data, size, chunk, fuzz_command_allowed, out);
    check_output(out);
    if (verbose) {
        /* What the server answered, for people reading a seed. */
        fwrite(out->str, 1, out->len, stdout);
    }
    return 0;
}
