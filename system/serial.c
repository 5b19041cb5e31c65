/*
 * The guest's serial port (-serial).
 *
 * vCPU threads print through serial_write(); whatever the backend, a write
 * never blocks them: stdio pipes and socket clients are written
 * non-blocking and bytes a slow reader cannot take are dropped, as a UART
 * without flow control would. The socket backend accepts its clients on
 * the main loop.
 *
 * The port's migratable state is the count of bytes the guest sent (the
 * "serial" vmstate), registered whatever the backend so that source and
 * destination streams have the same sections.
 */
#include "qemu/osdep.h"
#include "qemu/thread.h"
#include <sys/socket.h>
#include <sys/un.h>
#include <glib-unix.h>
#include "migration/vmstate.h"
#include "qemu/fdopen.h"
#include "system/serial.h"

typedef struct SerialState {
    uint64_t bytes_sent;
} SerialState;

static SerialState serial_state;

static const VMStateField serial_fields[] = {
    VMSTATE_UINT64(bytes_sent, SerialState),
    VMSTATE_END_OF_LIST(),
};

static const VMStateDescription vmstate_serial = {
    .name = "serial",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = serial_fields,
};

typedef struct SerialClient {
    int fd;
    guint watch;
} SerialClient;

/* Serialises writers (several vCPUs) against each other and the clients. */
static QemuMutex serial_lock;
/* stdio or file: descriptor; -1 otherwise. */
static int out_fd = -1;
static enum { OUT_SHARED, OUT_REOPENED, OUT_QEMU_OPEN } out_fd_kind;
static bool registered;
/* unix: server */
static int listen_fd = -1;
static guint listen_watch;
static char *socket_path;
static GPtrArray *clients; /* SerialClient *, under serial_lock */

void serial_write(const void *buf, size_t len)
{
    guint i;

    __atomic_fetch_add(&serial_state.bytes_sent, len, __ATOMIC_RELAXED);
    qemu_mutex_lock(&serial_lock);
    if (out_fd >= 0) {
        /* A short or failed write drops the rest (see top). */
        ssize_t ret = RETRY_ON_EINTR(write(out_fd, buf, len));
        (void)ret;
    }
    for (i = 0; clients && i < clients->len; i++) {
        SerialClient *c = g_ptr_array_index(clients, i);
        ssize_t ret =
            RETRY_ON_EINTR(send(c->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL));
        (void)ret;
    }
    qemu_mutex_unlock(&serial_lock);
}

void serial_putc(char c)
{
    serial_write(&c, 1);
}

uint64_t serial_bytes_sent(void)
{
    return __atomic_load_n(&serial_state.bytes_sent, __ATOMIC_RELAXED);
}

/* --- stdio and file: --- */

/*
 * A descriptor for stdout that can be non-blocking without changing fd 1
 * itself (which the shell and -monitor stdio share): a pipe or terminal is
 * reopened through /proc, giving a file description of our own. A regular
 * file never blocks and is used as it is (reopening would lose O_APPEND).
 */
static void stdout_fd_open(void)
{
    struct stat st;
    int fd;

    out_fd = STDOUT_FILENO;
    out_fd_kind = OUT_SHARED;
    if (fstat(STDOUT_FILENO, &st) < 0 || S_ISREG(st.st_mode)) {
        return;
    }
    fd = open("/proc/self/fd/1", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) {
        out_fd = fd;
        out_fd_kind = OUT_REOPENED;
    }
}

/* --- unix: server --- */

static void client_free(gpointer p)
{
    SerialClient *c = p;

    g_source_remove(c->watch);
    close(c->fd);
    g_free(c);
}

/* The guest reads nothing: input is discarded; EOF or error drops the
 * client. */
static gboolean client_event(gint fd, GIOCondition cond, gpointer opaque)
{
    SerialClient *c = opaque;
    char buf[256];
    ssize_t n = RETRY_ON_EINTR(read(fd, buf, sizeof(buf)));

    if (n > 0 || (n < 0 && errno == EAGAIN)) {
        return G_SOURCE_CONTINUE;
    }
    qemu_mutex_lock(&serial_lock);
    g_ptr_array_remove(clients, c);
    qemu_mutex_unlock(&serial_lock);
    close(c->fd);
    g_free(c);
    return G_SOURCE_REMOVE;
}

static gboolean listen_event(gint fd, GIOCondition cond, gpointer opaque)
{
    SerialClient *c;
    int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

    if (cfd < 0) {
        return G_SOURCE_CONTINUE;
    }
    c = g_new0(SerialClient, 1);
    c->fd = cfd;
    c->watch =
        g_unix_fd_add(cfd, G_IO_IN | G_IO_HUP | G_IO_ERR, client_event, c);
    qemu_mutex_lock(&serial_lock);
    g_ptr_array_add(clients, c);
    qemu_mutex_unlock(&serial_lock);
    return G_SOURCE_CONTINUE;
}

static bool parse_on_off(const char *key, const char *val, bool *out,
                         GError **errp)
{
    if (!val || strcmp(val, "on") == 0) {
        *out = true; /* a bare "server" means on, as in QEMU */
    } else if (strcmp(val, "off") == 0) {
        *out = false;
    } else {
        error_setg(errp, "serial: '%s' expects on or off, not '%s'", key, val);
        return false;
    }
    return true;
}

static bool serial_unix_server_init(const char *opts, GError **errp)
{
    g_auto(GStrv) parts = g_strsplit(opts, ",", -1);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    bool server = false, wait = true;
    struct stat st;
    int i, fd;

    for (i = 1; parts[i]; i++) {
        char *eq = strchr(parts[i], '=');
        const char *val = eq ? eq + 1 : NULL;

        if (eq) {
            *eq = '\0';
        }
        if (strcmp(parts[i], "server") == 0) {
            if (!parse_on_off("server", val, &server, errp)) {
                return false;
            }
        } else if (strcmp(parts[i], "wait") == 0) {
            if (!parse_on_off("wait", val, &wait, errp)) {
                return false;
            }
        } else if (strcmp(parts[i], "nowait") == 0 && !val) {
            wait = false;
        } else {
            error_setg(errp, "serial: unknown option '%s'", parts[i]);
            return false;
        }
    }
    if (!server || wait) {
        error_setg(
            errp, "serial: unix: supports only server=on,wait=off (a listening "
                  "socket that does not wait for a client)");
        return false;
    }
    if (!*parts[0] || strlen(parts[0]) >= sizeof(addr.sun_path)) {
        error_setg(errp, "serial: bad UNIX socket path '%s'", parts[0]);
        return false;
    }
    strcpy(addr.sun_path, parts[0]);

    /* A stale socket from an earlier run is replaced, anything else kept. */
    if (lstat(addr.sun_path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        unlink(addr.sun_path);
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error_setg_errno(errp, errno, "serial: Failed to create socket");
        return false;
    }
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        listen(fd, 4) < 0) {
        error_setg_errno(errp, errno, "serial: Failed to listen on '%s'",
                         addr.sun_path);
        close(fd);
        return false;
    }
    listen_fd = fd;
    socket_path = g_strdup(addr.sun_path);
    clients = g_ptr_array_new();
    listen_watch = g_unix_fd_add(fd, G_IO_IN, listen_event, NULL);
    return true;
}

bool serial_init(const char *spec, GError **errp)
{
    if (!spec) {
        spec = "none";
    }
    if (strcmp(spec, "none") == 0 || strcmp(spec, "null") == 0) {
        /* bytes are only counted */
    } else if (strcmp(spec, "stdio") == 0) {
        stdout_fd_open();
    } else if (g_str_has_prefix(spec, "file:")) {
        const char *path = spec + strlen("file:");

        if (!*path) {
            error_setg(errp, "serial: file: needs a path");
            return false;
        }
        out_fd = qemu_open(path, O_WRONLY | O_CREAT | O_TRUNC, 0666, errp);
        if (out_fd < 0) {
            error_prepend(errp, "serial: ");
            return false;
        }
        out_fd_kind = OUT_QEMU_OPEN;
    } else if (g_str_has_prefix(spec, "unix:")) {
        if (!serial_unix_server_init(spec + strlen("unix:"), errp)) {
            return false;
        }
    } else {
        error_setg(errp,
                   "serial: unknown backend '%s' (use none, stdio, file:PATH "
                   "or unix:PATH,server=on,wait=off)",
                   spec);
        return false;
    }
    vmstate_register("serial", 0, &vmstate_serial, &serial_state);
    registered = true;
    return true;
}

void serial_cleanup(void)
{
    qemu_mutex_lock(&serial_lock);
    if (out_fd_kind == OUT_QEMU_OPEN) {
        qemu_close(out_fd);
    } else if (out_fd_kind == OUT_REOPENED) {
        close(out_fd);
    }
    out_fd = -1;
    out_fd_kind = OUT_SHARED;
    if (clients) {
        while (clients->len) {
            client_free(g_ptr_array_steal_index(clients, clients->len - 1));
        }
        g_ptr_array_free(clients, TRUE);
        clients = NULL;
    }
    qemu_mutex_unlock(&serial_lock);
    if (listen_fd >= 0) {
        g_source_remove(listen_watch);
        close(listen_fd);
        listen_fd = -1;
        unlink(socket_path);
        g_clear_pointer(&socket_path, g_free);
    }
    if (registered) {
        vmstate_unregister(&vmstate_serial, &serial_state);
        registered = false;
    }
}
