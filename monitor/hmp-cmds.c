/*
 * The monitor's own HMP commands. As in QEMU, each is a thin layer over
 * the QMP handler of the same job that turns its result into text, so both
 * monitors always agree.
 */
#include "qemu/osdep.h"

#include "monitor/hmp.h"
#include "monitor/monitor-internal.h"
#include "qapi/qapi-commands.h"

/* Fails with a usage message unless the command got exactly n arguments. */
static bool hmp_want_args(GString *out, const char *usage, int argc, int n)
{
    if (argc != n) {
        g_string_append_printf(out, "Usage: %s\n", usage);
        return false;
    }
    return true;
}

static void hmp_info_status(GString *out, int argc, char **argv)
{
    g_autoptr(StatusInfo) info = qmp_query_status(NULL);

    /* QEMU's wording: the state is named unless it is plain "paused". */
    g_string_append_printf(out, "VM status: %s",
                           info->running ? "running" : "paused");
    if (!info->running && info->status != RUN_STATE_PAUSED) {
        g_string_append_printf(out, " (%s)", RunState_str(info->status));
    }
    g_string_append_c(out, '\n');
}

static void hmp_info_version(GString *out, int argc, char **argv)
{
    g_autoptr(VersionInfo) info = qmp_query_version(NULL);

    g_string_append_printf(out, "%" PRId64 ".%" PRId64 ".%" PRId64 " (%s)\n",
                           info->qemu->major, info->qemu->minor,
                           info->qemu->micro, info->package);
}

static void hmp_info_fdsets(GString *out, int argc, char **argv)
{
    g_autoptr(FdsetInfoList) sets = qmp_query_fdsets(NULL);

    for (FdsetInfoList *s = sets; s; s = s->next) {
        g_string_append_printf(out, "fdset %" PRId64 ":\n", s->value->fdset_id);
        for (FdsetFdInfoList *f = s->value->fds; f; f = f->next) {
            g_string_append_printf(out, "  fd %" PRId64 "%s%s\n", f->value->fd,
                                   f->value->opaque ? ", opaque: " : "",
                                   f->value->opaque ? f->value->opaque : "");
        }
    }
}

static void hmp_stop(GString *out, int argc, char **argv)
{
    GError *err = NULL;

    qmp_stop(&err);
    hmp_handle_error(out, err);
}

static void hmp_cont(GString *out, int argc, char **argv)
{
    GError *err = NULL;

    qmp_cont(&err);
    hmp_handle_error(out, err);
}

static void hmp_quit(GString *out, int argc, char **argv)
{
    GError *err = NULL;

    qmp_quit(&err);
    hmp_handle_error(out, err);
}

static void hmp_getfd(GString *out, int argc, char **argv)
{
    GError *err = NULL;

    if (hmp_want_args(out, "getfd fdname", argc, 1)) {
        qmp_getfd(argv[0], &err);
        hmp_handle_error(out, err);
    }
}

static void hmp_closefd(GString *out, int argc, char **argv)
{
    GError *err = NULL;

    if (hmp_want_args(out, "closefd fdname", argc, 1)) {
        qmp_closefd(argv[0], &err);
        hmp_handle_error(out, err);
    }
}

/* An address or size: decimal, or hex with 0x, nothing after it. */
static bool hmp_parse_u64(const char *s, uint64_t *out)
{
    char *end;

    if (!g_ascii_isdigit(*s)) {
        return false;
    }
    errno = 0;
    *out = g_ascii_strtoull(s, &end, 0);
    return errno == 0 && *end == '\0';
}

static void hmp_pmemsave(GString *out, int argc, char **argv)
{
    GError *err = NULL;
    uint64_t addr, size;

    if (!hmp_want_args(out, "pmemsave addr size file", argc, 3)) {
        return;
    }
    if (!hmp_parse_u64(argv[0], &addr)) {
        g_string_append_printf(out, "Error: invalid address '%s'\n", argv[0]);
        return;
    }
    if (!hmp_parse_u64(argv[1], &size) || size > INT64_MAX) {
        g_string_append_printf(out, "Error: invalid size '%s'\n", argv[1]);
        return;
    }
    qmp_pmemsave((int64_t)addr, (int64_t)size, argv[2], &err);
    hmp_handle_error(out, err);
}

static const HMPCommand hmp_builtin_commands[] = {
    {"stop", "", "stop emulation", hmp_stop},
    {"cont|c", "", "resume emulation", hmp_cont},
    {"quit|q", "", "quit the emulator", hmp_quit},
    {"getfd", "fdname",
     "receive a file descriptor via SCM rights and assign it a name",
     hmp_getfd},
    {"closefd", "fdname",
     "close a file descriptor previously passed via SCM rights", hmp_closefd},
    {"pmemsave", "addr size file",
     "save to disk physical memory dump starting at 'addr' of size 'size'",
     hmp_pmemsave},
};

static const HMPCommand hmp_builtin_infos[] = {
    {"status", "", "show the current VM status (running|paused)",
     hmp_info_status},
    {"version", "", "show the version of minivm", hmp_info_version},
    {"fdsets", "", "show the fd sets and their descriptors", hmp_info_fdsets},
};

void hmp_register_builtin_commands(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(hmp_builtin_commands); i++) {
        hmp_register_command(&hmp_builtin_commands[i]);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(hmp_builtin_infos); i++) {
        hmp_register_info(&hmp_builtin_infos[i]);
    }
}
