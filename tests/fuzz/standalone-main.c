/*
 * A main() for the libFuzzer targets in builds without libFuzzer: runs the
 * target once on every file named on the command line (directories: every
 * file in them), so a normal build replays the committed corpus as a test
 * and a crash found by fuzzing can be reproduced with gcc and gdb.
 */
#include "qemu/osdep.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run_file(const char *path, unsigned *count)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *data = NULL;
    gsize len;

    if (!g_file_get_contents(path, &data, &len, &err)) {
        g_printerr("%s\n", err->message);
        exit(1);
    }
    LLVMFuzzerTestOneInput((const uint8_t *)data, len);
    (*count)++;
}

static int compare_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_dir(const char *dir, unsigned *count)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GDir) d = g_dir_open(dir, 0, &err);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    const char *name;

    if (!d) {
        g_printerr("%s\n", err->message);
        exit(1);
    }
    while ((name = g_dir_read_name(d))) {
        g_ptr_array_add(names, g_build_filename(dir, name, NULL));
    }
    /* Same order every run, whatever the directory's. */
    g_ptr_array_sort(names, compare_names);
    for (guint i = 0; i < names->len; i++) {
        run_file(g_ptr_array_index(names, i), count);
    }
}

int main(int argc, char **argv)
{
    unsigned count = 0;

    LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        if (g_file_test(argv[i], G_FILE_TEST_IS_DIR)) {
            run_dir(argv[i], &count);
        } else {
            run_file(argv[i], &count);
        }
    }
    printf("%s: %u inputs ran without a failure\n", argv[0], count);
    return 0;
}
