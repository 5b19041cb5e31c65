/*
 * libqtest: starts minivm processes for integration tests and talks QMP to
 * them. See libqtest.h for the contract.
 *
 * No process may outlive its test: the child asks the kernel to kill it
 * when the test process dies (PR_SET_PDEATHSIG); a handler of the fatal
 * signals -- SIGABRT (a failed assertion), SIGTRAP (g_error), SIGTERM
 * (meson's timeout), SIGINT, SIGSEGV, SIGBUS -- kills and reaps every live
 * child and removes their temporary directories, and an atexit handler
 * does the same on a normal exit.
 * Every wait is bounded and fails the test with a message that says what
 * it was waiting for.
 */
#include "qemu/osdep.h"

#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "libqtest.h"
#include "system/ab-check.h"

#define QTEST_MAX_CHILDREN    32
#define QTEST_CONNECT_TIMEOUT 30
#define QTEST_QUIT_TIMEOUT    30
/* The a-b workload's pattern covers [1 MiB, 100 MiB) of pc.ram. */
#define QTEST_AB_CHECK_LIMIT (100 * MiB)

struct QTestState {
    /*
     * The VM this connection talks to: itself, or for a client the VM it
     * connected to (NULL once that VM has quit).
     */
    QTestState *vm;
    bool is_client;
    int fd;   /* QMP connection, -1 once closed */
    bool eof; /* the server closed the connection */
    JsonObject *greeting;
    GQueue events; /* JsonObject *, oldest first */

    /* Incoming bytes and the state of the message splitter over them. */
    GString *rx;
    size_t scan_pos;  /* first byte not yet scanned */
    size_t msg_start; /* first byte of the message being scanned */
    int depth;
    bool in_string;
    bool escape;

    /* VM only. */
    pid_t pid;       /* 0 once reaped */
    int wait_status; /* how it ended, once reaped */
    int expected_status;
    char *tmpdir;
    char *qmp_path;
    char *qmp_addr;
    char *serial_path;
    int slot;           /* index in the tables below */
    GPtrArray *clients; /* QTestState *, connections from qtest_client_new */
};

/*
 * Live children and their directories, in fixed tables so that the
 * SIGABRT handler can reach them without allocating.
 */
static pid_t live_pids[QTEST_MAX_CHILDREN];
static char live_dirs[QTEST_MAX_CHILDREN][PATH_MAX];
static bool handlers_installed;

#define qtest_fail(...)                                                        \
    qtest_fail_at(__FILE__, __LINE__, G_STRFUNC, __VA_ARGS__)

static void G_GNUC_PRINTF(4, 5) G_GNUC_NORETURN
    qtest_fail_at(const char *file, int line, const char *func, const char *fmt,
                  ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_assertion_message(G_LOG_DOMAIN, file, line, func, msg);
    abort(); /* g_assertion_message does not return unless non-fatal */
}

/* The VM a connection belongs to; a client outliving its VM is a bug. */
static QTestState *vm_of(QTestState *s)
{
    if (!s->vm) {
        qtest_fail("the minivm this QMP client was connected to has quit");
    }
    return s->vm;
}

int qtest_scale_timeout(int seconds)
{
    const char *mult = g_getenv("QTEST_TIMEOUT_MULT");
    int m = mult ? atoi(mult) : 1;
    return seconds * (m > 0 ? m : 1);
}

static int64_t deadline_after_s(int timeout_s)
{
    return g_get_monotonic_time() +
           (int64_t)qtest_scale_timeout(timeout_s) * G_USEC_PER_SEC;
}

/* --- cleanup that must work from a signal handler --- */

/* dir/name into buf (no snprintf: it is not async-signal-safe). */
static bool path_join(char *buf, size_t size, const char *dir, const char *name)
{
    size_t ld = strlen(dir), ln = strlen(name);

    if (ld + 1 + ln >= size) {
        return false;
    }
    memcpy(buf, dir, ld);
    buf[ld] = '/';
    memcpy(buf + ld + 1, name, ln + 1);
    return true;
}

/*
 * Removes a directory tree with system calls and fixed buffers only
 * (getdents64, not opendir, which allocates), so that the fatal-signal
 * handler can use it too.
 */
static void remove_tree(const char *path)
{
    char buf[4096] __attribute__((aligned(8)));
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ssize_t n;

    if (fd >= 0) {
        while ((n = getdents64(fd, buf, sizeof(buf))) > 0) {
            for (ssize_t off = 0; off < n;) {
                struct dirent64 *de = (struct dirent64 *)(buf + off);
                char sub[PATH_MAX];

                off += de->d_reclen;
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) {
                    continue;
                }
                if (unlinkat(fd, de->d_name, 0) < 0 && errno == EISDIR &&
                    path_join(sub, sizeof(sub), path, de->d_name)) {
                    remove_tree(sub);
                }
            }
        }
        close(fd);
    }
    rmdir(path);
}

static void kill_all_children(void)
{
    bool keep = getenv("QTEST_KEEP_TMP") != NULL;
    for (int i = 0; i < QTEST_MAX_CHILDREN; i++) {
        if (live_pids[i] > 0) {
            kill(live_pids[i], SIGKILL);
            waitpid(live_pids[i], NULL, 0);
            live_pids[i] = 0;
        }
        if (live_dirs[i][0]) {
            if (!keep) {
                remove_tree(live_dirs[i]);
            }
            live_dirs[i][0] = '\0';
        }
    }
}

static void fatal_signal_handler(int signo)
{
    kill_all_children();
    /*
     * SA_RESETHAND restored the default action and the signal is blocked
     * while we run, so this one is delivered, and ends the test, as soon as
     * the handler returns. (g_error() in a test traps with SIGTRAP and then
     * spins: it must not return to that.)
     */
    raise(signo);
}

static void install_handlers(void)
{
    static const int fatal_signals[] = {SIGABRT, SIGTRAP, SIGTERM,
                                        SIGINT,  SIGSEGV, SIGBUS};
    if (handlers_installed) {
        return;
    }
    struct sigaction sa = {
        .sa_handler = fatal_signal_handler,
        .sa_flags = SA_RESETHAND,
    };
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < G_N_ELEMENTS(fatal_signals); i++) {
        sigaction(fatal_signals[i], &sa, NULL);
    }
    atexit(kill_all_children);
    /* A VM that closes a socket under us must not kill the test. */
    signal(SIGPIPE, SIG_IGN);
    handlers_installed = true;
}

static int claim_slot(void)
{
    for (int i = 0; i < QTEST_MAX_CHILDREN; i++) {
        if (!live_pids[i] && !live_dirs[i][0]) {
            return i;
        }
    }
    qtest_fail("more than %d live minivm instances", QTEST_MAX_CHILDREN);
}

/* --- starting the process --- */

static const char *minivm_binary(void)
{
    const char *bin = g_getenv("MINIVM_BINARY");
    if (!bin || !*bin) {
        qtest_fail("MINIVM_BINARY is not set (run the tests with meson "
                   "test, or export it to the path of build/minivm)");
    }
    return bin;
}

static char *replace_tmp(const char *arg, const char *tmpdir)
{
    g_auto(GStrv) parts = g_strsplit(arg, "{tmp}", -1);
    return g_strjoinv(tmpdir, parts);
}

static pid_t spawn(char **argv)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        qtest_fail("fork: %s", g_strerror(errno));
    }
    if (pid == 0) {
        /* Only async-signal-safe calls until exec. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(127); /* the test died before prctl took effect */
        }
        int nullfd = open("/dev/null", O_RDONLY);
        if (nullfd >= 0) {
            dup2(nullfd, STDIN_FILENO);
            close(nullfd);
        }
        /* stdout may carry the test's TAP stream: keep the VM's off it. */
        dup2(STDERR_FILENO, STDOUT_FILENO);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* Non-blocking reap; true (and *status) when the child has exited. */
static bool child_exited(QTestState *vm, int *status)
{
    if (vm->pid) {
        pid_t r = waitpid(vm->pid, &vm->wait_status, WNOHANG);
        if (r != vm->pid) {
            return false;
        }
        vm->pid = 0;
        live_pids[vm->slot] = 0;
    }
    *status = vm->wait_status;
    return true;
}

static char *describe_status(int status)
{
    if (WIFEXITED(status)) {
        return g_strdup_printf("exit status %d", WEXITSTATUS(status));
    }
    if (WIFSIGNALED(status)) {
        return g_strdup_printf("signal %d (%s)", WTERMSIG(status),
                               strsignal(WTERMSIG(status)));
    }
    return g_strdup_printf("wait status 0x%x", status);
}

/*
 * Why the connection went away, for failure messages: if the process
 * exits within a second, how it ended (a crash says so).
 */
static char *describe_hangup(QTestState *s)
{
    int status;
    int64_t deadline = g_get_monotonic_time() + G_USEC_PER_SEC;
    if (!s->vm) {
        return g_strdup("minivm closed the QMP connection (it has quit)");
    }
    while (!child_exited(s->vm, &status)) {
        if (g_get_monotonic_time() > deadline) {
            return g_strdup("minivm closed the QMP connection");
        }
        g_usleep(5 * 1000);
    }
    g_autofree char *why = describe_status(status);
    return g_strdup_printf("minivm closed the QMP connection and ended "
                           "with %s",
                           why);
}

static int connect_unix(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(addr.sun_path)) {
        qtest_fail("socket path too long: %s", path);
    }
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        qtest_fail("socket: %s", g_strerror(errno));
    }
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static QTestState *conn_new(QTestState *vm)
{
    QTestState *s = g_new0(QTestState, 1);
    s->vm = vm ? vm : s;
    s->is_client = vm != NULL;
    if (vm) {
        g_ptr_array_add(vm->clients, s);
    } else {
        s->clients = g_ptr_array_new();
    }
    s->fd = -1;
    s->rx = g_string_new(NULL);
    g_queue_init(&s->events);
    return s;
}

static void conn_close(QTestState *s)
{
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
}

static void conn_free(QTestState *s)
{
    conn_close(s);
    if (s->is_client && s->vm) {
        g_ptr_array_remove(s->vm->clients, s);
    }
    if (s->clients) {
        /* The VM is gone: its clients can only be closed now. */
        for (guint i = 0; i < s->clients->len; i++) {
            ((QTestState *)g_ptr_array_index(s->clients, i))->vm = NULL;
        }
        g_ptr_array_unref(s->clients);
    }
    g_queue_clear_full(&s->events, (GDestroyNotify)json_object_unref);
    if (s->greeting) {
        json_object_unref(s->greeting);
    }
    g_string_free(s->rx, TRUE);
    g_free(s->tmpdir);
    g_free(s->qmp_path);
    g_free(s->qmp_addr);
    g_free(s->serial_path);
    g_free(s);
}

/* --- reading messages --- */

/*
 * Finds the end of the next complete JSON value in s->rx, keeping the
 * scanner's state between calls so each byte is scanned once. Returns the
 * length of the message (from msg_start) or 0 if it is incomplete.
 */
static size_t split_message(QTestState *s)
{
    const char *buf = s->rx->str;
    for (; s->scan_pos < s->rx->len; s->scan_pos++) {
        char c = buf[s->scan_pos];
        if (s->in_string) {
            if (s->escape) {
                s->escape = false;
            } else if (c == '\\') {
                s->escape = true;
            } else if (c == '"') {
                s->in_string = false;
            }
            continue;
        }
        if (s->depth == 0 && g_ascii_isspace(c)) {
            s->msg_start = s->scan_pos + 1; /* between messages */
            continue;
        }
        if (c == '"') {
            s->in_string = true;
        } else if (c == '{' || c == '[') {
            s->depth++;
        } else if (c == '}' || c == ']') {
            s->depth--;
            if (s->depth <= 0) {
                s->depth = 0;
                s->scan_pos++;
                return s->scan_pos - s->msg_start;
            }
        }
    }
    return 0;
}

static JsonObject *parse_object(const char *text, size_t len)
{
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(GError) err = NULL;
    if (!json_parser_load_from_data(parser, text, len, &err)) {
        qtest_fail("minivm sent invalid JSON (%s): %.*s", err->message,
                   (int)MIN(len, 500), text);
    }
    JsonNode *root = json_parser_get_root(parser);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
        qtest_fail("minivm sent a JSON value that is not an object: %.*s",
                   (int)MIN(len, 500), text);
    }
    return json_object_ref(json_node_get_object(root));
}

/* Takes the next complete message from the buffer, or NULL. */
static JsonObject *take_message(QTestState *s)
{
    size_t len = split_message(s);
    if (!len) {
        return NULL;
    }
    JsonObject *obj = parse_object(s->rx->str + s->msg_start, len);
    g_string_erase(s->rx, 0, s->scan_pos);
    s->scan_pos = 0;
    s->msg_start = 0;
    return obj;
}

/*
 * Reads more bytes, waiting until deadline (monotonic us). Returns 1 when
 * bytes arrived, 0 on EOF, -1 on timeout.
 */
static int read_more(QTestState *s, int64_t deadline)
{
    if (s->fd < 0 || s->eof) {
        return 0;
    }
    for (;;) {
        int64_t now = g_get_monotonic_time();
        int wait_ms = now >= deadline ? 0 : (int)((deadline - now) / 1000);
        struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
        int r = poll(&pfd, 1, wait_ms);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            qtest_fail("poll on the QMP socket: %s", g_strerror(errno));
        }
        if (r == 0) {
            return -1;
        }
        char buf[65536];
        ssize_t n = recv(s->fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == ECONNRESET) {
            n = 0;
        }
        if (n < 0) {
            qtest_fail("reading the QMP socket: %s", g_strerror(errno));
        }
        if (n == 0) {
            s->eof = true;
            return 0;
        }
        g_string_append_len(s->rx, buf, n);
        return 1;
    }
}

/*
 * The next message of any kind. NULL on EOF (*closed = true) or when the
 * deadline passed (*closed = false).
 */
static JsonObject *next_message(QTestState *s, int64_t deadline, bool *closed)
{
    *closed = false;
    for (;;) {
        JsonObject *obj = take_message(s);
        if (obj) {
            return obj;
        }
        int r = read_more(s, deadline);
        if (r == 0) {
            *closed = true;
            return NULL;
        }
        if (r < 0) {
            return NULL;
        }
    }
}

/* The next reply, queueing events; NULL on EOF or when the deadline passed. */
static JsonObject *next_reply(QTestState *s, int64_t deadline, bool *closed)
{
    for (;;) {
        JsonObject *obj = next_message(s, deadline, closed);
        if (!obj) {
            return NULL;
        }
        if (json_object_has_member(obj, "event")) {
            g_queue_push_tail(&s->events, obj);
            continue;
        }
        return obj;
    }
}

JsonObject *qtest_qmp_receive_maybe(QTestState *s, int timeout_ms, bool *closed)
{
    bool eof;
    JsonObject *obj = next_reply(
        s, g_get_monotonic_time() + (int64_t)timeout_ms * 1000, &eof);
    if (closed) {
        *closed = eof;
    }
    return obj;
}

JsonObject *qtest_qmp_receive(QTestState *s, int timeout_s)
{
    bool closed;
    JsonObject *obj = next_reply(s, deadline_after_s(timeout_s), &closed);
    if (!obj && !closed) {
        qtest_fail("no QMP reply from minivm (pid %d) within %d s",
                   s->vm ? (int)s->vm->pid : 0, qtest_scale_timeout(timeout_s));
    }
    return obj;
}

bool qtest_qmp_closed(QTestState *s)
{
    return s->eof;
}

/* --- sending --- */

/*
 * Sends everything, reading whatever the server sends meanwhile (a server
 * may stop reading until its replies are read, as QEMU's does). Fails the
 * test if the server takes nothing for QTEST_QMP_TIMEOUT seconds.
 */
static void send_all(QTestState *s, const void *buf, size_t len, const int *fds,
                     size_t nfds)
{
    const char *p = buf;
    if (s->fd < 0) {
        qtest_fail("sending on a closed QMP connection");
    }
    int64_t deadline = deadline_after_s(QTEST_QMP_TIMEOUT);
    while (len > 0) {
        struct pollfd pfd = {.fd = s->fd, .events = POLLOUT};
        if (!s->eof) {
            pfd.events |= POLLIN;
        }
        int64_t now = g_get_monotonic_time();
        if (now > deadline) {
            qtest_fail("minivm took no input for %d s (%zu bytes unsent)",
                       qtest_scale_timeout(QTEST_QMP_TIMEOUT), len);
        }
        int r = poll(&pfd, 1, (int)MAX((deadline - now) / 1000, 1));
        if (r < 0 && errno != EINTR) {
            qtest_fail("poll on the QMP socket: %s", g_strerror(errno));
        }
        if (r <= 0) {
            continue;
        }
        if (pfd.revents & POLLIN) {
            read_more(s, g_get_monotonic_time());
        }
        if (!(pfd.revents & (POLLOUT | POLLERR | POLLHUP))) {
            continue;
        }
        struct iovec iov = {.iov_base = (void *)p, .iov_len = len};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
        g_autofree char *control = NULL;
        if (nfds) {
            size_t space = CMSG_SPACE(nfds * sizeof(int));
            control = g_malloc0(space);
            msg.msg_control = control;
            msg.msg_controllen = space;
            struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
            cmsg->cmsg_level = SOL_SOCKET;
            cmsg->cmsg_type = SCM_RIGHTS;
            cmsg->cmsg_len = CMSG_LEN(nfds * sizeof(int));
            memcpy(CMSG_DATA(cmsg), fds, nfds * sizeof(int));
        }
        ssize_t n = sendmsg(s->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            continue;
        }
        if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
            /* Dropped by the server: whoever waits for a reply says so. */
            s->eof = true;
            return;
        }
        if (n < 0) {
            qtest_fail("writing to the QMP socket: %s", g_strerror(errno));
        }
        p += n;
        len -= n;
        nfds = 0; /* descriptors go with the first bytes only */
        deadline = deadline_after_s(QTEST_QMP_TIMEOUT);
    }
}

void qtest_qmp_send_raw(QTestState *s, const void *buf, size_t len)
{
    send_all(s, buf, len, NULL, 0);
}

/*
 * Turns single-quoted strings of a format into double-quoted ones, so
 * "{'execute': 'stop'}" is JSON. Inside them, \' is a quote and " is
 * escaped.
 */
static char *convert_quotes(const char *fmt)
{
    GString *out = g_string_sized_new(strlen(fmt) + 8);
    bool in_double = false, in_single = false;
    for (const char *p = fmt; *p; p++) {
        if (*p == '\\' && p[1]) {
            if (in_single && p[1] == '\'') {
                g_string_append_c(out, '\'');
            } else {
                g_string_append_c(out, p[0]);
                g_string_append_c(out, p[1]);
            }
            p++;
        } else if (in_single && *p == '"') {
            g_string_append(out, "\\\"");
        } else if (!in_double && *p == '\'') {
            in_single = !in_single;
            g_string_append_c(out, '"');
        } else {
            if (!in_single && *p == '"') {
                in_double = !in_double;
            }
            g_string_append_c(out, *p);
        }
    }
    return g_string_free(out, FALSE);
}

static char *format_command(const char *fmt, va_list ap)
{
    g_autofree char *json_fmt = convert_quotes(fmt);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    return g_strdup_vprintf(json_fmt, ap);
#pragma GCC diagnostic pop
}

static JsonObject *command(QTestState *s, const int *fds, size_t nfds,
                           const char *fmt, va_list ap)
{
    g_autofree char *cmd = format_command(fmt, ap);
    g_autofree char *line = g_strconcat(cmd, "\n", NULL);
    send_all(s, line, strlen(line), fds, nfds);
    bool closed;
    JsonObject *reply =
        next_reply(s, deadline_after_s(QTEST_QMP_TIMEOUT), &closed);
    if (!reply) {
        g_autofree char *why =
            closed ? describe_hangup(s) : g_strdup("timed out");
        qtest_fail("%s while waiting for the reply to %s", why, cmd);
    }
    return reply;
}

JsonObject *qtest_vqmp(QTestState *s, const char *fmt, va_list ap)
{
    return command(s, NULL, 0, fmt, ap);
}

JsonObject *qtest_qmp(QTestState *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    JsonObject *reply = command(s, NULL, 0, fmt, ap);
    va_end(ap);
    return reply;
}

JsonObject *qtest_qmp_fds(QTestState *s, const int *fds, size_t nfds,
                          const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    JsonObject *reply = command(s, fds, nfds, fmt, ap);
    va_end(ap);
    return reply;
}

char *qtest_json_to_string(JsonObject *obj)
{
    g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);
    json_node_set_object(node, obj);
    return json_to_string(node, FALSE);
}

static JsonNode *return_value(JsonObject *reply, const char *what)
{
    if (!json_object_has_member(reply, "return")) {
        g_autofree char *text = qtest_json_to_string(reply);
        qtest_fail("%s failed: %s", what, text);
    }
    return json_node_copy(json_object_get_member(reply, "return"));
}

static JsonNode *vassert_success(QTestState *s, const char *fmt, va_list ap)
{
    g_autofree char *cmd = format_command(fmt, ap);
    JsonObject *reply = qtest_qmp(s, "%s", cmd);
    JsonNode *ret = return_value(reply, cmd);
    json_object_unref(reply);
    return ret;
}

JsonNode *qtest_qmp_assert_success_ref(QTestState *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    JsonNode *ret = vassert_success(s, fmt, ap);
    va_end(ap);
    return ret;
}

void qtest_qmp_assert_success(QTestState *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_node_unref(vassert_success(s, fmt, ap));
    va_end(ap);
}

void qtest_qmp_expect_error(QTestState *s, const char *expected_class,
                            const char *expected_desc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *cmd = format_command(fmt, ap);
    va_end(ap);
    JsonObject *reply = qtest_qmp(s, "%s", cmd);
    g_autofree char *text = qtest_json_to_string(reply);
    JsonObject *err = json_object_has_member(reply, "error")
                          ? json_object_get_object_member(reply, "error")
                          : NULL;
    if (!err) {
        qtest_fail("%s: expected the error \"%s\", got %s", cmd, expected_desc,
                   text);
    }
    const char *desc =
        json_object_get_string_member_with_default(err, "desc", NULL);
    const char *cls =
        json_object_get_string_member_with_default(err, "class", NULL);
    if (g_strcmp0(desc, expected_desc)) {
        qtest_fail("%s: expected the error \"%s\", got %s", cmd, expected_desc,
                   text);
    }
    if (expected_class && g_strcmp0(cls, expected_class)) {
        qtest_fail("%s: expected error class %s, got %s", cmd, expected_class,
                   text);
    }
    json_object_unref(reply);
}

/* --- connections --- */

static void read_greeting(QTestState *s)
{
    bool closed;
    JsonObject *msg =
        next_message(s, deadline_after_s(QTEST_QMP_TIMEOUT), &closed);
    if (!msg) {
        g_autofree char *why =
            closed ? describe_hangup(s) : g_strdup("timed out");
        qtest_fail("no QMP greeting from minivm (%s)", why);
    }
    if (!json_object_has_member(msg, "QMP")) {
        g_autofree char *text = qtest_json_to_string(msg);
        qtest_fail("expected the QMP greeting, got %s", text);
    }
    s->greeting = msg;
}

static void negotiate(QTestState *s)
{
    qtest_qmp_assert_success(s, "{'execute': 'qmp_capabilities'}");
}

JsonObject *qtest_qmp_greeting(QTestState *s)
{
    return s->greeting;
}

QTestState *qtest_client_new(QTestState *vm, bool do_negotiate)
{
    QTestState *owner = vm_of(vm);
    QTestState *s = conn_new(owner);
    s->fd = connect_unix(owner->qmp_path);
    if (s->fd < 0) {
        qtest_fail("cannot connect to %s: %s", owner->qmp_path,
                   g_strerror(errno));
    }
    read_greeting(s);
    if (do_negotiate) {
        negotiate(s);
    }
    return s;
}

/* Connects to the VM's socket, retrying until it listens. */
static void wait_for_socket(QTestState *vm)
{
    int64_t deadline = deadline_after_s(QTEST_CONNECT_TIMEOUT);
    for (;;) {
        int status;
        if (child_exited(vm, &status)) {
            g_autofree char *why = describe_status(status);
            qtest_fail("minivm exited (%s) before its QMP socket %s "
                       "accepted a connection (see its stderr above)",
                       why, vm->qmp_path);
        }
        vm->fd = connect_unix(vm->qmp_path);
        if (vm->fd >= 0) {
            return;
        }
        if (g_get_monotonic_time() > deadline) {
            qtest_fail("minivm (pid %d) did not listen on %s within %d s",
                       (int)vm->pid, vm->qmp_path,
                       qtest_scale_timeout(QTEST_CONNECT_TIMEOUT));
        }
        g_usleep(10 * 1000);
    }
}

static QTestState *start_vm(const char *const *extra_argv)
{
    install_handlers();
    QTestState *vm = conn_new(NULL);
    g_autoptr(GError) err = NULL;
    vm->tmpdir = g_dir_make_tmp("minivm-qtest-XXXXXX", &err);
    if (!vm->tmpdir) {
        qtest_fail("cannot create a temporary directory: %s", err->message);
    }
    vm->slot = claim_slot();
    g_strlcpy(live_dirs[vm->slot], vm->tmpdir, PATH_MAX);
    vm->qmp_path = g_build_filename(vm->tmpdir, "qmp.sock", NULL);
    vm->qmp_addr = g_strdup_printf("unix:%s", vm->qmp_path);
    vm->serial_path = g_build_filename(vm->tmpdir, "serial.txt", NULL);

    GPtrArray *argv = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(argv, g_strdup(minivm_binary()));
    g_ptr_array_add(argv, g_strdup("-qmp"));
    g_ptr_array_add(argv,
                    g_strdup_printf("%s,server=on,wait=off", vm->qmp_addr));
    g_ptr_array_add(argv, g_strdup("-serial"));
    g_ptr_array_add(argv, g_strdup_printf("file:%s", vm->serial_path));
    for (size_t i = 0; extra_argv && extra_argv[i]; i++) {
        g_ptr_array_add(argv, replace_tmp(extra_argv[i], vm->tmpdir));
    }
    g_ptr_array_add(argv, NULL);
    if (g_getenv("QTEST_LOG")) {
        g_autofree char *line = g_strjoinv(" ", (char **)argv->pdata);
        g_printerr("qtest: %s\n", line);
    }

    vm->pid = spawn((char **)argv->pdata);
    live_pids[vm->slot] = vm->pid;
    g_ptr_array_unref(argv);

    wait_for_socket(vm);
    read_greeting(vm);
    negotiate(vm);
    return vm;
}

QTestState *qtest_initv(const char *const *extra_argv)
{
    return start_vm(extra_argv);
}

static char **split_args(const char *args)
{
    if (!args || !*args || strspn(args, " \t\n") == strlen(args)) {
        return g_new0(char *, 1);
    }
    char **argv = NULL;
    g_autoptr(GError) err = NULL;
    if (!g_shell_parse_argv(args, NULL, &argv, &err)) {
        qtest_fail("bad test arguments \"%s\": %s", args, err->message);
    }
    return argv;
}

QTestState *qtest_init(const char *extra_args)
{
    g_auto(GStrv) argv = split_args(extra_args);
    return start_vm((const char *const *)argv);
}

QTestState *qtest_init_incoming(const char *incoming_uri,
                                const char *extra_args)
{
    g_auto(GStrv) argv = split_args(extra_args);
    GPtrArray *all = g_ptr_array_new();
    for (size_t i = 0; argv[i]; i++) {
        g_ptr_array_add(all, argv[i]);
    }
    g_ptr_array_add(all, (char *)"-incoming");
    g_ptr_array_add(all, (char *)incoming_uri);
    g_ptr_array_add(all, NULL);
    QTestState *vm = start_vm((const char *const *)all->pdata);
    g_ptr_array_unref(all);
    return vm;
}

/* --- ending --- */

/* Waits for the child until the deadline; true when it exited. */
static bool wait_child(QTestState *vm, int64_t deadline, int *status)
{
    for (;;) {
        if (child_exited(vm, status)) {
            return true;
        }
        if (g_get_monotonic_time() > deadline) {
            return false;
        }
        g_usleep(5 * 1000);
    }
}

static void kill_and_reap(QTestState *vm)
{
    if (vm->pid) {
        kill(vm->pid, SIGKILL);
        waitpid(vm->pid, NULL, 0);
        vm->pid = 0;
        live_pids[vm->slot] = 0;
    }
}

static void vm_cleanup(QTestState *vm)
{
    kill_and_reap(vm);
    if (!g_getenv("QTEST_KEEP_TMP")) {
        remove_tree(vm->tmpdir);
    }
    live_dirs[vm->slot][0] = '\0';
    conn_free(vm);
}

void qtest_set_expected_status(QTestState *s, int status)
{
    vm_of(s)->expected_status = status;
}

void qtest_quit(QTestState *s)
{
    if (s->is_client) {
        conn_free(s); /* a client: just hang up */
        return;
    }
    if (s->fd >= 0 && !s->eof && s->pid) {
        static const char quit[] = "{\"execute\": \"quit\"}\n";
        send_all(s, quit, strlen(quit), NULL, 0);
        /* The reply may or may not beat the hang-up; either is fine. */
        bool closed;
        JsonObject *reply =
            next_reply(s, deadline_after_s(QTEST_QUIT_TIMEOUT), &closed);
        if (reply) {
            json_object_unref(reply);
        }
    }
    conn_close(s);
    int status = 0;
    if (!wait_child(s, deadline_after_s(QTEST_QUIT_TIMEOUT), &status)) {
        pid_t pid = s->pid;
        kill_and_reap(s);
        qtest_fail("minivm (pid %d) did not exit within %d s of quit; "
                   "killed it",
                   (int)pid, qtest_scale_timeout(QTEST_QUIT_TIMEOUT));
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != s->expected_status) {
        g_autofree char *why = describe_status(status);
        int expected = s->expected_status;
        vm_cleanup(s);
        qtest_fail("minivm ended with %s, expected exit status %d", why,
                   expected);
    }
    vm_cleanup(s);
}

void qtest_kill(QTestState *s)
{
    g_assert(!s->is_client);
    vm_cleanup(s);
}

int qtest_wait_exit(QTestState *s, int timeout_s)
{
    g_assert(!s->is_client);
    int status;
    bool exited = wait_child(s, deadline_after_s(timeout_s), &status);
    vm_cleanup(s);
    return exited ? status : -1;
}

pid_t qtest_pid(QTestState *s)
{
    return vm_of(s)->pid;
}

const char *qtest_tmpdir(QTestState *s)
{
    return vm_of(s)->tmpdir;
}

const char *qtest_qmp_address(QTestState *s)
{
    return vm_of(s)->qmp_addr;
}

const char *qtest_qmp_socket_path(QTestState *s)
{
    return vm_of(s)->qmp_path;
}

const char *qtest_serial_path(QTestState *s)
{
    return vm_of(s)->serial_path;
}

/* --- events --- */

static gint event_name_cmp(gconstpointer event, gconstpointer name)
{
    const char *ev = json_object_get_string_member_with_default(
        (JsonObject *)event, "event", "");
    return strcmp(ev, name);
}

JsonObject *qtest_qmp_event_take(QTestState *s, const char *event)
{
    GList *link = g_queue_find_custom(&s->events, event, event_name_cmp);
    if (!link) {
        return NULL;
    }
    JsonObject *obj = link->data;
    g_queue_delete_link(&s->events, link);
    return obj;
}

JsonObject *qtest_qmp_eventwait_timeout(QTestState *s, const char *event,
                                        int timeout_s)
{
    int64_t deadline = deadline_after_s(timeout_s);
    for (;;) {
        JsonObject *ev = qtest_qmp_event_take(s, event);
        if (ev) {
            return ev;
        }
        bool closed;
        JsonObject *msg = next_message(s, deadline, &closed);
        if (!msg) {
            g_autofree char *why =
                closed ? describe_hangup(s) : g_strdup("timed out");
            qtest_fail("%s while waiting for the event %s", why, event);
        }
        if (!json_object_has_member(msg, "event")) {
            g_autofree char *text = qtest_json_to_string(msg);
            qtest_fail("unexpected reply while waiting for the event %s: "
                       "%s",
                       event, text);
        }
        g_queue_push_tail(&s->events, msg);
    }
}

JsonObject *qtest_qmp_eventwait(QTestState *s, const char *event)
{
    return qtest_qmp_eventwait_timeout(s, event, QTEST_QMP_TIMEOUT);
}

void qtest_qmp_events_clear(QTestState *s)
{
    g_queue_clear_full(&s->events, (GDestroyNotify)json_object_unref);
}

/* --- HMP --- */

char *qtest_hmp(QTestState *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *line = g_strdup_vprintf(fmt, ap);
    va_end(ap);

    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "execute");
    json_builder_add_string_value(b, "human-monitor-command");
    json_builder_set_member_name(b, "arguments");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "command-line");
    json_builder_add_string_value(b, line);
    json_builder_end_object(b);
    json_builder_end_object(b);
    g_autoptr(JsonNode) root = json_builder_get_root(b);
    g_autofree char *cmd = json_to_string(root, FALSE);

    g_autoptr(JsonNode) ret = qtest_qmp_assert_success_ref(s, "%s", cmd);
    if (!JSON_NODE_HOLDS_VALUE(ret) ||
        json_node_get_value_type(ret) != G_TYPE_STRING) {
        qtest_fail("human-monitor-command '%s' did not return a string", line);
    }
    return g_strdup(json_node_get_string(ret));
}

/* --- serial --- */

char *qtest_serial_read(QTestState *s)
{
    char *text = NULL;
    if (!g_file_get_contents(vm_of(s)->serial_path, &text, NULL, NULL)) {
        return g_strdup("");
    }
    return text;
}

void qtest_wait_serial(QTestState *s, const char *substring, int timeout_s)
{
    int64_t deadline = deadline_after_s(timeout_s);
    for (;;) {
        g_autofree char *text = qtest_serial_read(s);
        if (strstr(text, substring)) {
            return;
        }
        int status;
        if (child_exited(vm_of(s), &status)) {
            g_autofree char *why = describe_status(status);
            qtest_fail("minivm ended (%s) while the test waited for \"%s\" "
                       "on its serial port",
                       why, substring);
        }
        if (g_get_monotonic_time() > deadline) {
            size_t len = strlen(text);
            qtest_fail("\"%s\" did not appear on the serial port within "
                       "%d s; it printed %zu bytes, ending \"%s\"",
                       substring, qtest_scale_timeout(timeout_s), len,
                       text + (len > 64 ? len - 64 : 0));
        }
        g_usleep(10 * 1000);
    }
}

/* --- state queries --- */

const char *qtest_json_get_string(JsonObject *obj, const char *member)
{
    JsonNode *node = json_object_get_member(obj, member);
    if (!node || !JSON_NODE_HOLDS_VALUE(node) ||
        json_node_get_value_type(node) != G_TYPE_STRING) {
        g_autofree char *text = qtest_json_to_string(obj);
        qtest_fail("no string member '%s' in %s", member, text);
    }
    return json_node_get_string(node);
}

int64_t qtest_json_get_int(JsonObject *obj, const char *member)
{
    JsonNode *node = json_object_get_member(obj, member);
    if (!node || !JSON_NODE_HOLDS_VALUE(node) ||
        json_node_get_value_type(node) != G_TYPE_INT64) {
        g_autofree char *text = qtest_json_to_string(obj);
        qtest_fail("no integer member '%s' in %s", member, text);
    }
    return json_node_get_int(node);
}

JsonObject *qtest_json_get_object(JsonObject *obj, const char *member)
{
    JsonNode *node = json_object_get_member(obj, member);
    if (!node || !JSON_NODE_HOLDS_OBJECT(node)) {
        g_autofree char *text = qtest_json_to_string(obj);
        qtest_fail("no object member '%s' in %s", member, text);
    }
    return json_node_get_object(node);
}

static JsonObject *return_object(JsonNode *ret, const char *cmd)
{
    if (!JSON_NODE_HOLDS_OBJECT(ret)) {
        qtest_fail("%s did not return an object", cmd);
    }
    return json_node_get_object(ret);
}

char *qtest_query_status(QTestState *s)
{
    g_autoptr(JsonNode) ret =
        qtest_qmp_assert_success_ref(s, "{'execute': 'query-status'}");
    JsonObject *obj = return_object(ret, "query-status");
    return g_strdup(qtest_json_get_string(obj, "status"));
}

void qtest_wait_status(QTestState *s, const char *status, int timeout_s)
{
    int64_t deadline = deadline_after_s(timeout_s);
    for (;;) {
        g_autofree char *now = qtest_query_status(s);
        if (!strcmp(now, status)) {
            return;
        }
        if (g_get_monotonic_time() > deadline) {
            qtest_fail("run state still \"%s\" after %d s (waiting for "
                       "\"%s\")",
                       now, qtest_scale_timeout(timeout_s), status);
        }
        g_usleep(20 * 1000);
    }
}

GHashTable *qtest_ram_digests(QTestState *s)
{
    g_autoptr(JsonNode) ret =
        qtest_qmp_assert_success_ref(s, "{'execute': 'x-query-ram-digest'}");
    if (!JSON_NODE_HOLDS_ARRAY(ret)) {
        qtest_fail("x-query-ram-digest did not return an array");
    }
    GHashTable *digests =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    JsonArray *arr = json_node_get_array(ret);
    for (guint i = 0; i < json_array_get_length(arr); i++) {
        JsonObject *blk = json_array_get_object_element(arr, i);
        if (!blk) {
            qtest_fail("x-query-ram-digest: element %u is not an object", i);
        }
        g_hash_table_insert(digests,
                            g_strdup(qtest_json_get_string(blk, "block")),
                            g_strdup(qtest_json_get_string(blk, "sha256")));
    }
    return digests;
}

GBytes *qtest_pmemsave(QTestState *s, uint64_t addr, uint64_t size)
{
    static unsigned counter;
    g_autofree char *path =
        g_strdup_printf("%s/pmemsave-%u.bin", vm_of(s)->tmpdir, counter++);
    qtest_qmp_assert_success(
        s,
        "{'execute': 'pmemsave', 'arguments': {'val': %" PRIu64
        ", 'size': %" PRIu64 ", 'filename': '%s'}}",
        addr, size, path);
    char *data = NULL;
    gsize len = 0;
    g_autoptr(GError) err = NULL;
    if (!g_file_get_contents(path, &data, &len, &err)) {
        qtest_fail("pmemsave wrote no readable file: %s", err->message);
    }
    unlink(path);
    if (len != size) {
        g_free(data);
        qtest_fail("pmemsave of %" PRIu64 " bytes wrote %zu bytes", size,
                   (size_t)len);
    }
    return g_bytes_new_take(data, len);
}

bool qtest_ab_check(QTestState *s, uint64_t ram_size, char **report)
{
    uint64_t size = MIN(ram_size, QTEST_AB_CHECK_LIMIT);
    g_autoptr(GBytes) ram = qtest_pmemsave(s, 0, size);
    g_autoptr(GString) text = g_string_new(NULL);
    bool ok = ab_check(g_bytes_get_data(ram, NULL), size, text);
    if (report) {
        *report = g_strdup(text->str);
    }
    return ok;
}

/* --- migration --- */

void migrate_set_capability(QTestState *s, const char *name, bool value)
{
    qtest_qmp_assert_success(
        s,
        "{'execute': 'migrate-set-capabilities', 'arguments': "
        "{'capabilities': [{'capability': '%s', 'state': %s}]}}",
        name, value ? "true" : "false");
}

void migrate_set_parameter(QTestState *s, const char *name,
                           const char *json_value)
{
    g_autofree char *value = convert_quotes(json_value);
    qtest_qmp_assert_success(
        s, "{'execute': 'migrate-set-parameters', 'arguments': {'%s': %s}}",
        name, value);
}

static JsonObject *query_migrate(QTestState *s, JsonNode **holder)
{
    *holder = qtest_qmp_assert_success_ref(s, "{'execute': 'query-migrate'}");
    return return_object(*holder, "query-migrate");
}

char *migrate_query_status(QTestState *s)
{
    g_autoptr(JsonNode) ret = NULL;
    JsonObject *info = query_migrate(s, &ret);
    return g_strdup(
        json_object_get_string_member_with_default(info, "status", "none"));
}

static bool is_final_status(const char *status)
{
    return !strcmp(status, "completed") || !strcmp(status, "failed") ||
           !strcmp(status, "cancelled");
}

void migrate_wait_status(QTestState *s, const char *status, int timeout_s)
{
    int64_t deadline = deadline_after_s(timeout_s);
    for (;;) {
        g_autoptr(JsonNode) ret = NULL;
        JsonObject *info = query_migrate(s, &ret);
        const char *now =
            json_object_get_string_member_with_default(info, "status", "none");
        if (!strcmp(now, status)) {
            return;
        }
        if (is_final_status(now)) {
            qtest_fail("migration ended \"%s\" (error-desc: %s) while "
                       "waiting for \"%s\"",
                       now,
                       json_object_get_string_member_with_default(
                           info, "error-desc", "none"),
                       status);
        }
        if (g_get_monotonic_time() > deadline) {
            qtest_fail("migration still \"%s\" after %d s (waiting for "
                       "\"%s\")",
                       now, qtest_scale_timeout(timeout_s), status);
        }
        g_usleep(20 * 1000);
    }
}
