/*
 * Stream sockets (see include/io/channel-socket.h): the monitor's listeners
 * and clients, migration over unix: and tcp:, and the SCM_RIGHTS path that
 * add-fd and getfd use.
 *
 * A UNIX socket always reads with recvmsg() and a control buffer, so a
 * descriptor a peer sends unasked is closed here instead of leaking. Writes
 * use sendmsg() with MSG_NOSIGNAL: a vanished peer is an error, not SIGPIPE.
 */
#include "qemu/osdep.h"
#include "io/channel-socket.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

/* Most descriptors one message carries (both ways). */
#define SOCKET_MAX_FDS 16

/*
 * The public struct plus what only this file needs: a UNIX listener
 * remembers the file it bound, so closing it removes that file (and only
 * that one, if someone has replaced it since).
 */
typedef struct {
    QIOChannelSocket pub;
    char *unlink_path;
    dev_t unlink_dev;
    ino_t unlink_ino;
} SocketChannel;

static const QIOChannelClass socket_class;

static SocketChannel *to_socket(QIOChannel *ioc)
{
    return container_of(container_of(ioc, QIOChannelSocket, parent),
                        SocketChannel, pub);
}

static inline int clamp_niov(size_t niov)
{
    return niov > IOV_MAX ? IOV_MAX : (int)niov;
}

static void close_fds(int *fds, size_t nfds)
{
    size_t i;

    for (i = 0; i < nfds; i++) {
        close(fds[i]);
    }
}

static ssize_t socket_recv_unix(QIOChannel *ioc, int fd,
                                const struct iovec *iov, size_t niov, int **fds,
                                size_t *nfds, GError **errp)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * SOCKET_MAX_FDS)];
        struct cmsghdr align;
    } control;
    struct msghdr msg = {
        .msg_iov = (struct iovec *)iov,
        .msg_iovlen = clamp_niov(niov),
        .msg_control = control.buf,
        .msg_controllen = sizeof(control.buf),
    };
    struct cmsghdr *cmsg;
    int got[SOCKET_MAX_FDS];
    size_t ngot = 0;
    ssize_t n;

    n = RETRY_ON_EINTR(recvmsg(fd, &msg, MSG_CMSG_CLOEXEC));
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return QIO_CHANNEL_ERR_BLOCK;
        }
        error_setg_errno(errp, errno, "Unable to read from socket '%s'",
                         ioc->name);
        return -1;
    }

    for (cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
        size_t count;

        if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS ||
            cmsg->cmsg_len < CMSG_LEN(0)) {
            continue;
        }
        count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        count = MIN(count, SOCKET_MAX_FDS - ngot);
        memcpy(got + ngot, CMSG_DATA(cmsg), count * sizeof(int));
        ngot += count;
    }

    if (msg.msg_flags & MSG_CTRUNC) {
        close_fds(got, ngot);
        error_setg(errp,
                   "Socket '%s' received more than %d file descriptors in "
                   "one message",
                   ioc->name, SOCKET_MAX_FDS);
        return -1;
    }
    if (fds && ngot) {
        *fds = g_memdup2(got, ngot * sizeof(int));
        *nfds = ngot;
    } else {
        /* Nobody asked for them: do not leak the peer's descriptors. */
        close_fds(got, ngot);
    }
    return n;
}

static ssize_t socket_readv(QIOChannel *ioc, const struct iovec *iov,
                            size_t niov, int **fds, size_t *nfds, GError **errp)
{
    QIOChannelSocket *sioc = &to_socket(ioc)->pub;
    ssize_t n;

    if (sioc->is_unix) {
        return socket_recv_unix(ioc, sioc->fd, iov, niov, fds, nfds, errp);
    }
    n = RETRY_ON_EINTR(readv(sioc->fd, iov, clamp_niov(niov)));
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return QIO_CHANNEL_ERR_BLOCK;
        }
        error_setg_errno(errp, errno, "Unable to read from socket '%s'",
                         ioc->name);
        return -1;
    }
    return n;
}

static ssize_t socket_writev(QIOChannel *ioc, const struct iovec *iov,
                             size_t niov, const int *fds, size_t nfds,
                             GError **errp)
{
    QIOChannelSocket *sioc = &to_socket(ioc)->pub;
    union {
        char buf[CMSG_SPACE(sizeof(int) * SOCKET_MAX_FDS)];
        struct cmsghdr align;
    } control;
    struct msghdr msg = {
        .msg_iov = (struct iovec *)iov,
        .msg_iovlen = clamp_niov(niov),
    };
    ssize_t n;

    if (nfds) {
        struct cmsghdr *cmsg;

        if (nfds > SOCKET_MAX_FDS) {
            error_setg(errp,
                       "Socket '%s' cannot send %zu file descriptors at once "
                       "(at most %d)",
                       ioc->name, nfds, SOCKET_MAX_FDS);
            return -1;
        }
        memset(&control, 0, sizeof(control));
        msg.msg_control = control.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        cmsg = CMSG_FIRSTHDR(&msg);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
    }

    n = RETRY_ON_EINTR(sendmsg(sioc->fd, &msg, MSG_NOSIGNAL));
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return QIO_CHANNEL_ERR_BLOCK;
        }
        error_setg_errno(errp, errno, "Unable to write to socket '%s'",
                         ioc->name);
        return -1;
    }
    return n;
}

static int socket_set_blocking(QIOChannel *ioc, bool enabled, GError **errp)
{
    int fd = to_socket(ioc)->pub.fd;
    int flags = fcntl(fd, F_GETFL);

    if (flags < 0 ||
        fcntl(fd, F_SETFL, enabled ? flags & ~O_NONBLOCK : flags | O_NONBLOCK) <
            0) {
        error_setg_errno(errp, errno,
                         "Unable to set %sblocking mode on socket '%s'",
                         enabled ? "" : "non-", ioc->name);
        return -1;
    }
    return 0;
}

static int socket_shutdown(QIOChannel *ioc, QIOChannelShutdown how,
                           GError **errp)
{
    int sh = how == QIO_CHANNEL_SHUTDOWN_READ    ? SHUT_RD
             : how == QIO_CHANNEL_SHUTDOWN_WRITE ? SHUT_WR
                                                 : SHUT_RDWR;

    if (shutdown(to_socket(ioc)->pub.fd, sh) < 0) {
        error_setg_errno(errp, errno, "Unable to shut down socket '%s'",
                         ioc->name);
        return -1;
    }
    return 0;
}

static int socket_close(QIOChannel *ioc, GError **errp)
{
    SocketChannel *s = to_socket(ioc);
    int ret = 0;

    if (s->unlink_path) {
        struct stat st;

        if (lstat(s->unlink_path, &st) == 0 && st.st_dev == s->unlink_dev &&
            st.st_ino == s->unlink_ino) {
            unlink(s->unlink_path);
        }
        g_clear_pointer(&s->unlink_path, g_free);
    }
    if (s->pub.fd >= 0) {
        if (close(s->pub.fd) < 0) {
            error_setg_errno(errp, errno, "Unable to close socket '%s'",
                             ioc->name);
            ret = -1;
        }
        s->pub.fd = -1;
    }
    return ret;
}

static int socket_get_fd(QIOChannel *ioc, GIOCondition cond)
{
    return to_socket(ioc)->pub.fd;
}

static void socket_finalize(QIOChannel *ioc)
{
    g_free(to_socket(ioc)->unlink_path);
}

static const QIOChannelClass socket_class = {
    .type_name = "socket",
    .io_readv = socket_readv,
    .io_writev = socket_writev,
    .io_set_blocking = socket_set_blocking,
    .io_shutdown = socket_shutdown,
    .io_close = socket_close,
    .io_get_fd = socket_get_fd,
    .finalize = socket_finalize,
};

/* Wraps a connected or listening socket; takes the fd. */
static QIOChannelSocket *socket_wrap(int fd, int family, const char *name)
{
    SocketChannel *s = g_new0(SocketChannel, 1);
    QIOChannel *ioc = &s->pub.parent;

    qio_channel_init(ioc, &socket_class);
    qio_channel_set_name(ioc, name);
    s->pub.fd = fd;
    s->pub.is_unix = family == AF_UNIX;
    qio_channel_set_feature(ioc, QIO_CHANNEL_FEATURE_SHUTDOWN);
    if (s->pub.is_unix) {
        qio_channel_set_feature(ioc, QIO_CHANNEL_FEATURE_FD_PASS);
    }
    return &s->pub;
}

QIOChannelSocket *qio_channel_socket_new_fd(int fd, GError **errp)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int type;
    socklen_t tlen = sizeof(type);
    g_autofree char *name = NULL;

    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
        error_setg_errno(errp, errno, "File descriptor %d is not a socket", fd);
        return NULL;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 ||
        type != SOCK_STREAM) {
        error_setg(errp, "File descriptor %d is not a stream socket", fd);
        return NULL;
    }
    name = g_strdup_printf("fd %d", fd);
    return socket_wrap(fd, ss.ss_family, name);
}

/* "unix:PATH" -> PATH; "tcp:HOST:PORT" -> host, port (brackets stripped). */
static bool parse_address(const char *addr, char **unix_path, char **host,
                          char **port, GError **errp)
{
    const char *hp;
    const char *colon;

    *unix_path = *host = *port = NULL;
    if (g_str_has_prefix(addr, "unix:")) {
        if (!addr[5]) {
            error_setg(errp, "Missing path in socket address '%s'", addr);
            return false;
        }
        *unix_path = g_strdup(addr + 5);
        return true;
    }
    if (!g_str_has_prefix(addr, "tcp:")) {
        error_setg(errp,
                   "Unsupported socket address '%s' (want unix:PATH or "
                   "tcp:HOST:PORT)",
                   addr);
        return false;
    }
    hp = addr + 4;
    if (hp[0] == '[') {
        const char *close = strchr(hp, ']');

        if (!close || close[1] != ':') {
            error_setg(errp, "Malformed IPv6 address in '%s'", addr);
            return false;
        }
        *host = g_strndup(hp + 1, close - hp - 1);
        colon = close + 1;
    } else {
        colon = strrchr(hp, ':');
        if (!colon) {
            error_setg(errp, "Missing port in socket address '%s'", addr);
            return false;
        }
        *host = g_strndup(hp, colon - hp);
    }
    if (!colon[1]) {
        g_clear_pointer(host, g_free);
        error_setg(errp, "Missing port in socket address '%s'", addr);
        return false;
    }
    *port = g_strdup(colon + 1);
    return true;
}

static bool fill_unix_addr(struct sockaddr_un *sun, const char *path,
                           GError **errp)
{
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun->sun_path)) {
        error_setg(errp, "UNIX socket path '%s' is too long", path);
        return false;
    }
    strcpy(sun->sun_path, path);
    return true;
}

/* A blocking connect() that survives EINTR (the connect goes on). */
static int connect_retry(int fd, const struct sockaddr *sa, socklen_t len)
{
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    int err = 0;
    socklen_t elen = sizeof(err);

    if (connect(fd, sa, len) == 0) {
        return 0;
    }
    if (errno != EINTR && errno != EINPROGRESS) {
        return -1;
    }
    if (RETRY_ON_EINTR(poll(&pfd, 1, -1)) < 0 ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0) {
        return -1;
    }
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

/* --- rel: a connect that a cancel can interrupt --- */

/* How often a waiting connect looks at its cancel predicate. */
#define CONNECT_POLL_MS 20

/*
 * connect() in non-blocking mode, waiting in slices so that cancelled()
 * is asked every CONNECT_POLL_MS: a TCP connect in progress is polled, a
 * UNIX connect to a listener whose queue is full (EAGAIN) is retried.
 * Fails with ECANCELED when cancelled() says so. The socket is left
 * blocking again.
 */
static int connect_cancellable(int fd, const struct sockaddr *sa, socklen_t len,
                               QIOChannelCancelFunc cancelled, void *opaque)
{
    int flags = fcntl(fd, F_GETFL);
    int saved_errno;
    int ret = -1;

    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        return -1;
    }
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int err = 0;
        socklen_t elen = sizeof(err);
        int n;

        if (connect(fd, sa, len) == 0) {
            ret = 0;
            break;
        }
        if (errno == EAGAIN || errno == EINTR) {
            /* UNIX: the listener's queue is full; try again shortly. */
            if (cancelled(opaque)) {
                errno = ECANCELED;
                break;
            }
            g_usleep(CONNECT_POLL_MS * 1000);
            continue;
        }
        if (errno != EINPROGRESS && errno != EALREADY) {
            break;
        }
        /* TCP: the handshake goes on; wait for it in slices. */
        while ((n = RETRY_ON_EINTR(poll(&pfd, 1, CONNECT_POLL_MS))) == 0) {
            if (cancelled(opaque)) {
                errno = ECANCELED;
                goto out;
            }
        }
        if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0) {
            break;
        }
        if (err) {
            errno = err;
            break;
        }
        ret = 0;
        break;
    }
out:
    saved_errno = errno; /* the caller's message wants the connect's */
    if (fcntl(fd, F_SETFL, flags) < 0 && ret == 0) {
        return -1;
    }
    errno = saved_errno;
    return ret;
}

/* Either kind of connect: blocking, or cancellable when cancelled != NULL. */
static int connect_maybe_cancellable(int fd, const struct sockaddr *sa,
                                     socklen_t len,
                                     QIOChannelCancelFunc cancelled,
                                     void *opaque)
{
    if (cancelled) {
        return connect_cancellable(fd, sa, len, cancelled, opaque);
    }
    return connect_retry(fd, sa, len);
}
/* --- rel: end --- */

static int resolve(const char *host, const char *port, bool passive,
                   struct addrinfo **res, GError **errp)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_flags = passive ? AI_PASSIVE : 0,
    };
    int rc = getaddrinfo(host && *host ? host : NULL, port, &hints, res);

    if (rc) {
        error_setg(errp, "Unable to resolve '%s:%s': %s", host ? host : "",
                   port, gai_strerror(rc));
        return -1;
    }
    return 0;
}

/* Readies a socket for one address: 0, or -1 with errno set. */
typedef int (*TcpSocketSetup)(int fd, const struct addrinfo *ai, void *opaque);

/*
 * A TCP socket for the first address of host:port that setup readies (a
 * connect, or a bind and listen); -1 with "<what> '<addr>'" and the last
 * failure's errno in errp when none does.
 */
static int tcp_socket_first(const char *addr, const char *host,
                            const char *port, bool passive,
                            TcpSocketSetup setup, void *opaque,
                            const char *what, GError **errp)
{
    struct addrinfo *res;
    struct addrinfo *ai;
    int saved_errno = 0;
    int fd = -1;

    if (resolve(host, port, passive, &res, errp) < 0) {
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            saved_errno = errno;
            continue;
        }
        if (setup(fd, ai, opaque) == 0) {
            break;
        }
        saved_errno = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        error_setg_errno(errp, saved_errno, "%s '%s'", what, addr);
    }
    return fd;
}

typedef struct ConnectSetup {
    QIOChannelCancelFunc cancelled;
    void *opaque;
} ConnectSetup;

static int connect_setup(int fd, const struct addrinfo *ai, void *opaque)
{
    ConnectSetup *c = opaque;
    int one = 1;

    if (connect_maybe_cancellable(fd, ai->ai_addr, ai->ai_addrlen, c->cancelled,
                                  c->opaque) < 0) {
        return -1;
    }
    /* The monitor's small replies must not wait for Nagle. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return 0;
}

/* rel: the body of both connects; cancelled may be NULL (blocking). */
static QIOChannelSocket *socket_connect(const char *addr,
                                        QIOChannelCancelFunc cancelled,
                                        void *opaque, GError **errp)
{
    g_autofree char *path = NULL;
    g_autofree char *host = NULL;
    g_autofree char *port = NULL;
    int fd;

    if (!parse_address(addr, &path, &host, &port, errp)) {
        return NULL;
    }
    if (path) {
        struct sockaddr_un sun;

        if (!fill_unix_addr(&sun, path, errp)) {
            return NULL;
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            error_setg_errno(errp, errno, "Unable to create socket");
            return NULL;
        }
        if (connect_maybe_cancellable(fd, (struct sockaddr *)&sun, sizeof(sun),
                                      cancelled, opaque) < 0) {
            error_setg_errno(errp, errno, "Failed to connect to '%s'", addr);
            close(fd);
            return NULL;
        }
        return socket_wrap(fd, AF_UNIX, addr);
    }

    fd = tcp_socket_first(addr, host, port, false, connect_setup,
                          &(ConnectSetup){cancelled, opaque},
                          "Failed to connect to", errp);
    return fd < 0 ? NULL : socket_wrap(fd, AF_INET, addr);
}

QIOChannelSocket *qio_channel_socket_connect(const char *addr, GError **errp)
{
    return socket_connect(addr, NULL, NULL, errp);
}

/* rel */
QIOChannelSocket *
qio_channel_socket_connect_cancellable(const char *addr,
                                       QIOChannelCancelFunc cancelled,
                                       void *opaque, GError **errp)
{
    return socket_connect(addr, cancelled, opaque, errp);
}

static QIOChannelSocket *listen_unix(const char *addr, const char *path,
                                     GError **errp)
{
    struct sockaddr_un sun;
    struct stat st;
    SocketChannel *s;
    int fd;

    if (!fill_unix_addr(&sun, path, errp)) {
        return NULL;
    }
    /* Replace a stale socket, but never some other kind of file. */
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        unlink(path);
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error_setg_errno(errp, errno, "Unable to create socket");
        return NULL;
    }
    if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        error_setg_errno(errp, errno, "Failed to bind socket to '%s'", path);
        close(fd);
        return NULL;
    }
    /*
     * Restrict the file before listen(): until then every connect() is
     * refused, so nobody gets in under the umask's looser mode, and no
     * process-wide umask change races with other threads.
     */
    if (chmod(path, 0600) < 0 || lstat(path, &st) < 0) {
        error_setg_errno(errp, errno, "Unable to set mode 0600 on '%s'", path);
        close(fd);
        unlink(path);
        return NULL;
    }
    if (listen(fd, 16) < 0) {
        error_setg_errno(errp, errno, "Failed to listen on '%s'", path);
        close(fd);
        unlink(path);
        return NULL;
    }
    s = to_socket(&socket_wrap(fd, AF_UNIX, addr)->parent);
    s->unlink_path = g_strdup(path);
    s->unlink_dev = st.st_dev;
    s->unlink_ino = st.st_ino;
    return &s->pub;
}

static int listen_setup(int fd, const struct addrinfo *ai, void *opaque)
{
    int one = 1;

    /* A restarted destination must not wait out TIME_WAIT. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 16) < 0) {
        return -1;
    }
    return 0;
}

static QIOChannelSocket *listen_tcp(const char *addr, const char *host,
                                    const char *port, GError **errp)
{
    int fd = tcp_socket_first(addr, host, port, true, listen_setup, NULL,
                              "Failed to listen on", errp);

    return fd < 0 ? NULL : socket_wrap(fd, AF_INET, addr);
}

QIOChannelSocket *qio_channel_socket_listen(const char *addr, GError **errp)
{
    g_autofree char *path = NULL;
    g_autofree char *host = NULL;
    g_autofree char *port = NULL;

    if (!parse_address(addr, &path, &host, &port, errp)) {
        return NULL;
    }
    if (path) {
        return listen_unix(addr, path, errp);
    }
    return listen_tcp(addr, host, port, errp);
}

QIOChannelSocket *qio_channel_socket_accept(QIOChannelSocket *listener,
                                            GError **errp)
{
    QIOChannel *lioc = &listener->parent;
    QIOChannelSocket *sioc;
    g_autofree char *name = NULL;
    int fd;

    if (lioc->closed) {
        error_setg(errp, "Channel '%s' is closed", lioc->name);
        return NULL;
    }
    fd = RETRY_ON_EINTR(accept4(listener->fd, NULL, NULL, SOCK_CLOEXEC));
    if (fd < 0) {
        error_setg_errno(errp, errno, "Unable to accept a connection on '%s'",
                         lioc->name);
        return NULL;
    }
    if (!listener->is_unix) {
        int one = 1;

        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    name = g_strdup_printf("%s (client)", lioc->name);
    sioc = socket_wrap(fd, listener->is_unix ? AF_UNIX : AF_INET, name);
    return sioc;
}

char *qio_channel_socket_get_local_address(QIOChannelSocket *sioc,
                                           GError **errp)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char host[INET6_ADDRSTRLEN];

    if (getsockname(sioc->fd, (struct sockaddr *)&ss, &len) < 0) {
        error_setg_errno(errp, errno,
                         "Unable to query the local address of '%s'",
                         sioc->parent.name);
        return NULL;
    }
    switch (ss.ss_family) {
    case AF_UNIX: {
        struct sockaddr_un *sun = (struct sockaddr_un *)&ss;
        size_t plen = len > offsetof(struct sockaddr_un, sun_path)
                          ? len - offsetof(struct sockaddr_un, sun_path)
                          : 0;

        /* sun_path need not be NUL-terminated when it is full. */
        return g_strdup_printf("unix:%.*s", (int)strnlen(sun->sun_path, plen),
                               sun->sun_path);
    }
    case AF_INET: {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        return g_strdup_printf("tcp:%s:%u", host, ntohs(sin->sin_port));
    }
    case AF_INET6: {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        return g_strdup_printf("tcp:[%s]:%u", host, ntohs(sin6->sin6_port));
    }
    default:
        error_setg(errp, "Socket '%s' has unknown address family %d",
                   sioc->parent.name, ss.ss_family);
        return NULL;
    }
}
