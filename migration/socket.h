/*
 * The socket transports: "unix:PATH" and "tcp:HOST:PORT". The source
 * connects from the migration thread (a slow peer never stalls the
 * monitor); the destination listens and accepts one connection from the
 * main loop without blocking it, then loads in its own thread.
 */
#ifndef MIGRATION_SOCKET_H
#define MIGRATION_SOCKET_H

#include "qemu/osdep.h"
#include "io/channel.h"

/* Blocking connect to "unix:PATH" / "tcp:HOST:PORT". */
QIOChannel *socket_connect_outgoing(const char *addr, GError **errp);

/*
 * Listens on addr and, when a source connects, hands the connection to
 * migration_incoming_process(). Errors of listen() are returned here.
 */
bool socket_start_incoming(const char *addr, GError **errp);
/* Stops listening (no-op when not listening). Main loop, BQL held. */
void socket_incoming_stop(void);

#endif
