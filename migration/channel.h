/*
 * From what the user typed to an open transport. A migrate or
 * migrate-incoming command names its destination either as a URI string
 * ("file:PATH,offset=N", "unix:PATH", "tcp:HOST:PORT", "exec:CMD",
 * "fd:NAME") or as a one-entry MigrationChannel list; both become the same
 * MigrationAddress, so there is one path from there on.
 */
#ifndef MIGRATION_CHANNEL_H
#define MIGRATION_CHANNEL_H

#include "qemu/osdep.h"
#include "qapi/qapi-types.h"
#include "io/channel.h"

/* Parses a URI; "unknown migration protocol: %s" for other schemes. */
MigrationAddress *migration_address_parse_uri(const char *uri, GError **errp);

/*
 * The address of a command that takes exactly one of uri and channels
 * ("need either 'uri' or 'channels' argument", "Channel list has more
 * than one entries"). Free with qapi_free_MigrationAddress().
 */
MigrationAddress *migration_address_from_args(const char *uri,
                                              MigrationChannelList *channels,
                                              GError **errp);

/*
 * Source side: checks the capabilities against the transport, then opens
 * it. File, fd and exec transports are opened here, so their errors are
 * the command's; sockets are only checked, and *connect_addr gets the
 * address the migration thread connects to (a slow peer never blocks the
 * monitor). Exactly one of *ioc and *connect_addr is set on success.
 */
bool migration_channel_open_outgoing(MigrationAddress *addr, QIOChannel **ioc,
                                     char **connect_addr, GError **errp);

/*
 * Destination side: checks, then opens the file/fd/command into *ioc (the
 * caller starts the load), or starts listening (*ioc stays NULL; the load
 * starts when a source connects).
 */
bool migration_channel_start_incoming(MigrationAddress *addr, QIOChannel **ioc,
                                      GError **errp);

#endif
