/*
 * Stream sockets: UNIX and TCP, client and listener. UNIX sockets carry
 * descriptors with SCM_RIGHTS in both directions (FD_PASS).
 *
 * Addresses are written as "unix:PATH" or "tcp:HOST:PORT" (an IPv6 host in
 * brackets), the same strings migration URIs and -qmp use.
 */
#ifndef IO_CHANNEL_SOCKET_H
#define IO_CHANNEL_SOCKET_H

#include "io/channel.h"

typedef struct QIOChannelSocket {
    QIOChannel parent;
    int fd;
    bool is_unix;
} QIOChannelSocket;

QIOChannelSocket *qio_channel_socket_new_fd(int fd, GError **errp);
/* Blocking connect to "unix:PATH" or "tcp:HOST:PORT". */
QIOChannelSocket *qio_channel_socket_connect(const char *addr, GError **errp);
/*
 * rel: the same, but a connect that waits (a TCP handshake, a UNIX
 * listener whose queue is full) asks cancelled(opaque) every 20 ms and
 * gives up with ECANCELED ("Operation canceled") when it returns true, so
 * that migrate_cancel and quit never wait on a peer that does not answer.
 */
typedef bool (*QIOChannelCancelFunc)(void *opaque);
QIOChannelSocket *qio_channel_socket_connect_cancellable(
    const char *addr, QIOChannelCancelFunc cancelled, void *opaque,
    GError **errp);
/*
 * A listening socket on "unix:PATH" (created mode 0600; a stale socket file
 * is replaced) or "tcp:HOST:PORT" (port 0 picks a free port).
 */
QIOChannelSocket *qio_channel_socket_listen(const char *addr, GError **errp);
/* Accepts one connection (blocking unless the listener is non-blocking). */
QIOChannelSocket *qio_channel_socket_accept(QIOChannelSocket *listener,
                                            GError **errp);
/* The bound address as "unix:PATH" or "tcp:HOST:PORT" (actual port). */
char *qio_channel_socket_get_local_address(QIOChannelSocket *sioc,
                                           GError **errp);

#endif
