/*
 * minivm's main(): the command line, then the machine is built in a fixed
 * order (RAM, workload, migration, monitors, serial port, vCPUs), the run
 * state chosen (-incoming, -S or running) and the main loop run until a
 * shutdown request.
 *
 * main() holds the BQL from the start; the main loop drops it only while
 * it polls (system/main-loop.c).
 */
#include "qemu/osdep.h"
#include <sys/wait.h>
#include "migration/misc.h"
#include "monitor/monitor.h"
#include "qemu/cutils.h"
#include "qemu/fault-inject.h" /* rel */
#include "system/cpus.h"
#include "system/main-loop.h"
#include "system/memory-backend.h"
#include "system/opts.h"
#include "system/ramblock.h"
#include "system/runstate.h"
#include "system/serial.h"
#include "system/workload.h"

#define MAX_VCPUS 64

typedef struct Options {
    uint64_t ram_size; /* 0: not given */
    char *name;
    bool start_stopped;
    int smp;
    GPtrArray *qmp;    /* const char * */
    GPtrArray *hmp;    /* const char * */
    GPtrArray *add_fd; /* const char * */
    const char *serial;
    char *memory_backend;
    const char *workload;
    const char *incoming;
    const char *pidfile;
    bool daemonize;
} Options;

static void usage(void)
{
    printf("Usage: minivm [options]\n"
           "\n"
           "  -m SIZE              guest RAM (pc.ram); bare numbers are MiB "
           "(default 128M)\n"
           "  -smp N               number of vCPU threads (default 1)\n"
           "  -name NAME           the VM's name\n"
           "  -S                   do not start the vCPUs (use 'cont')\n"
           "  -workload NAME[,k=v] idle (default) | a-b | "
           "dirty,rate=SIZE,wss=SIZE |\n"
           "                       fill,zero=PCT\n"
           "  -object memory-backend-ram|memory-backend-file|"
           "memory-backend-memfd,\n"
           "          id=ID,size=SIZE[,mem-path=PATH][,share=on|off]\n"
           "  -machine memory-backend=ID\n"
           "                       take pc.ram from a memory backend\n"
           "  -serial SPEC         none (default) | stdio | file:PATH |\n"
           "                       unix:PATH,server=on,wait=off\n"
           "  -qmp SPEC            QMP on unix:PATH,server=on,wait=off or\n"
           "                       tcp:HOST:PORT,server=on,wait=off "
           "(repeatable)\n"
           "  -monitor SPEC        HMP on stdio or "
           "unix:PATH,server=on,wait=off\n"
           "  -incoming URI|defer  wait for an incoming migration\n"
           "  -add-fd fd=N,set=ID[,opaque=STR]\n"
           "                       put inherited fd N into fdset ID "
           "(repeatable)\n"
           "  -pidfile PATH        write the process id to PATH\n"
           "  -fault-injection on|off\n"
           "                       allow x-debug-inject-fault (tests only; "
           "default off)\n"
           "  -daemonize           run in the background once set up\n"
           "  -version             print the version and exit\n"
           "  -help                print this help and exit\n");
}

static void G_GNUC_NORETURN G_GNUC_PRINTF(1, 2) die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "minivm: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void G_GNUC_NORETURN die_error(GError *err)
{
    die("%s", err->message);
}

static int parse_smp(const char *arg)
{
    const char *num = g_str_has_prefix(arg, "cpus=") ? arg + 5 : arg;
    char *end;
    guint64 n;

    errno = 0;
    n = g_ascii_strtoull(num, &end, 10);
    if (errno || end == num || *end || n < 1 || n > MAX_VCPUS) {
        die("-smp: expects a number of vCPUs from 1 to %d, not '%s'", MAX_VCPUS,
            arg);
    }
    return (int)n;
}

static void parse_machine(Options *o, const char *arg)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GHashTable) opts = opts_parse(arg, NULL, &err);
    char *backend;

    if (!opts) {
        die("-machine: %s", err->message);
    }
    backend = opts_take(opts, "memory-backend");
    if (backend) {
        g_free(o->memory_backend);
        o->memory_backend = backend;
    }
    if (!opts_check_empty(opts, "-machine", &err)) {
        die_error(err);
    }
}

/* "-name NAME" or QEMU's "-name guest=NAME[,...]". */
static char *parse_name(const char *arg)
{
    if (g_str_has_prefix(arg, "guest=")) {
        return g_strndup(arg + 6, strcspn(arg + 6, ","));
    }
    return g_strdup(arg);
}

static void parse_args(Options *o, int argc, char **argv)
{
    int i;

    for (i = 1; i < argc; i++) {
        const char *opt = argv[i];
        const char *arg;
        bool has_arg;

        if (opt[0] != '-') {
            die("%s: unexpected argument (options start with '-'; see -help)",
                opt);
        }
        opt += opt[1] == '-' ? 2 : 1; /* -opt and --opt alike */

        /* Options without an argument. */
        if (!strcmp(opt, "help") || !strcmp(opt, "h")) {
            usage();
            exit(0);
        } else if (!strcmp(opt, "version")) {
            printf("minivm version %s\n", MINIVM_VERSION);
            exit(0);
        } else if (!strcmp(opt, "S")) {
            o->start_stopped = true;
            continue;
        } else if (!strcmp(opt, "daemonize")) {
            o->daemonize = true;
            continue;
        }

        has_arg = !strcmp(opt, "m") || !strcmp(opt, "name") ||
                  !strcmp(opt, "smp") || !strcmp(opt, "qmp") ||
                  !strcmp(opt, "monitor") || !strcmp(opt, "serial") ||
                  !strcmp(opt, "object") || !strcmp(opt, "machine") ||
                  !strcmp(opt, "workload") || !strcmp(opt, "incoming") ||
                  !strcmp(opt, "add-fd") || !strcmp(opt, "pidfile") ||
                  !strcmp(opt, "fault-injection"); /* rel */
        if (!has_arg) {
            die("%s: invalid option (see -help)", argv[i]);
        }
        if (i + 1 >= argc) {
            die("%s: requires an argument", argv[i]);
        }
        arg = argv[++i];

        if (!strcmp(opt, "m")) {
            const char *size = g_str_has_prefix(arg, "size=") ? arg + 5 : arg;

            if (qemu_strtosz(size, 'M', &o->ram_size) < 0 || o->ram_size == 0) {
                die("-m: invalid RAM size '%s'", arg);
            }
        } else if (!strcmp(opt, "name")) {
            g_free(o->name);
            o->name = parse_name(arg);
        } else if (!strcmp(opt, "smp")) {
            o->smp = parse_smp(arg);
        } else if (!strcmp(opt, "qmp")) {
            g_ptr_array_add(o->qmp, (gpointer)arg);
        } else if (!strcmp(opt, "monitor")) {
            g_ptr_array_add(o->hmp, (gpointer)arg);
        } else if (!strcmp(opt, "serial")) {
            o->serial = arg;
        } else if (!strcmp(opt, "object")) {
            g_autoptr(GError) err = NULL;

            if (!memory_backend_create(arg, &err)) {
                die("-object: %s", err->message);
            }
        } else if (!strcmp(opt, "machine")) {
            parse_machine(o, arg);
        } else if (!strcmp(opt, "workload")) {
            o->workload = arg;
        } else if (!strcmp(opt, "incoming")) {
            o->incoming = arg;
        } else if (!strcmp(opt, "add-fd")) {
            g_ptr_array_add(o->add_fd, (gpointer)arg);
        } else if (!strcmp(opt, "pidfile")) {
            o->pidfile = arg;
        } else if (!strcmp(opt, "fault-injection")) { /* rel */
            if (!strcmp(arg, "on")) {
                fault_inject_set_enabled(true);
            } else if (!strcmp(arg, "off")) {
                fault_inject_set_enabled(false);
            } else {
                die("-fault-injection: expects 'on' or 'off', not '%s'", arg);
            }
        }
    }
}

static void check_args(Options *o)
{
    guint i;

    if (o->daemonize) {
        if (o->serial && !strcmp(o->serial, "stdio")) {
            die("-serial stdio cannot be used with -daemonize");
        }
        for (i = 0; i < o->hmp->len; i++) {
            if (!strcmp(g_ptr_array_index(o->hmp, i), "stdio")) {
                die("-monitor stdio cannot be used with -daemonize");
            }
        }
    }
}

/*
 * Builds pc.ram (from -m, or the size of -machine memory-backend=, which
 * must agree when both are given), vga.vram and pc.bios.
 */
static void ram_init(Options *o)
{
    g_autoptr(GError) err = NULL;
    uint64_t size = o->ram_size ? o->ram_size : PC_RAM_DEFAULT_SIZE;
    bool shared = false;
    int fd = -1;

    if (o->memory_backend) {
        MemoryBackend *mb = memory_backend_find(o->memory_backend);

        if (!mb) {
            die("Memory backend '%s' not found", o->memory_backend);
        }
        if (o->ram_size && o->ram_size != mb->size) {
            g_autofree char *want = size_to_str(o->ram_size);

            die("backend memory size must be equal to the machine's memory "
                "size (-m %s); '%s' has %" PRIu64 " bytes",
                want, mb->id, mb->size);
        }
        size = mb->size;
        if (!memory_backend_open(mb, &fd, &shared, &err)) {
            die_error(err);
        }
    }
    if (!machine_ram_init(size, fd, shared, !o->incoming, &err)) {
        die_error(err);
    }
}

/*
 * -daemonize: the parent waits on a pipe until the child says it is set up
 * (then exits 0) or dies (then exits with the child's status), so a script
 * that started us can use the monitor as soon as we return.
 */
static int daemonize_start(void)
{
    int fds[2];
    pid_t pid;
    char c;

    if (pipe2(fds, O_CLOEXEC) < 0) {
        die("pipe: %s", g_strerror(errno));
    }
    pid = fork();
    if (pid < 0) {
        die("fork: %s", g_strerror(errno));
    }
    if (pid > 0) {
        int status;

        close(fds[1]);
        if (RETRY_ON_EINTR(read(fds[0], &c, 1)) == 1) {
            _exit(0);
        }
        if (RETRY_ON_EINTR(waitpid(pid, &status, 0)) == pid &&
            WIFEXITED(status) && WEXITSTATUS(status)) {
            _exit(WEXITSTATUS(status));
        }
        _exit(1);
    }
    close(fds[0]);
    setsid();
    return fds[1];
}

static void daemonize_finish(int ready_fd)
{
    int null = open("/dev/null", O_RDWR);

    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        if (null > STDERR_FILENO) {
            close(null);
        }
    }
    if (RETRY_ON_EINTR(write(ready_fd, "", 1)) != 1) {
        _exit(1);
    }
    close(ready_fd);
}

static void pidfile_write(const char *path)
{
    g_autofree char *text = g_strdup_printf("%d\n", (int)getpid());
    g_autoptr(GError) err = NULL;

    if (!g_file_set_contents(path, text, -1, &err)) {
        die("Cannot write pid file: %s", err->message);
    }
}

int main(int argc, char **argv)
{
    Options o = {
        .smp = 1,
        .qmp = g_ptr_array_new(),
        .hmp = g_ptr_array_new(),
        .add_fd = g_ptr_array_new(),
    };
    g_autoptr(GError) err = NULL;
    int ready_fd = -1;
    Workload *wl;
    guint i;

    parse_args(&o, argc, argv);
    check_args(&o);
    /* Before any thread exists: only the forking thread survives fork(). */
    if (o.daemonize) {
        ready_fd = daemonize_start();
    }

    bql_lock();
    main_loop_init();
    runstate_init();
    qemu_set_vm_name(o.name);
    runstate_set_autostart(!o.start_stopped);
    if (o.pidfile) {
        pidfile_write(o.pidfile);
    }

    ram_init(&o);
    wl = workload_create(o.workload, &err);
    if (!wl) {
        die_error(err);
    }
    migration_object_init();

    monitor_fdsets_init();
    for (i = 0; i < o.add_fd->len; i++) {
        if (!monitor_fdset_add_from_cmdline(g_ptr_array_index(o.add_fd, i),
                                            &err)) {
            die_error(err); /* the message names the option */
        }
    }
    for (i = 0; i < o.qmp->len; i++) {
        if (!monitor_init_qmp(g_ptr_array_index(o.qmp, i), &err)) {
            die_error(err); /* the message names the option */
        }
    }
    for (i = 0; i < o.hmp->len; i++) {
        if (!monitor_init_hmp(g_ptr_array_index(o.hmp, i), &err)) {
            die_error(err); /* the message names the option */
        }
    }
    if (!serial_init(o.serial, &err)) {
        die_error(err);
    }
    cpus_init(wl, o.smp);

    if (o.incoming) {
        runstate_set(RUN_STATE_INMIGRATE);
        if (!migration_incoming_setup(o.incoming, &err)) {
            die("-incoming: %s", err->message);
        }
    } else if (o.start_stopped) {
        runstate_set(RUN_STATE_PRELAUNCH);
    } else {
        /* Booting is not resuming: no RESUME event, as in QEMU. */
        runstate_set(RUN_STATE_RUNNING);
        resume_all_vcpus();
    }
    if (o.daemonize) {
        daemonize_finish(ready_fd);
    }

    main_loop_run();

    migration_shutdown();
    pause_all_vcpus();
    cpus_shutdown();
    monitor_cleanup();
    serial_cleanup();
    /*
     * Guest RAM stays mapped until the process ends: nothing may still
     * touch it after this point, but unmapping gigabytes buys nothing.
     */
    if (o.pidfile) {
        unlink(o.pidfile);
    }
    bql_unlock();

    g_free(o.name);
    g_free(o.memory_backend);
    g_ptr_array_unref(o.qmp);
    g_ptr_array_unref(o.hmp);
    g_ptr_array_unref(o.add_fd);
    return 0;
}
