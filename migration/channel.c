/*
 * Migration addresses and transports: URI parsing, the one-of uri/channels
 * rule, the compatibility checks of options.c against the transport, and
 * the dispatch to file.c / socket.c / fd.c / exec.c.
 *
 * The checks run before anything is opened, so a refused file: migration
 * never truncates the file. fd: is the exception: whether the descriptor
 * is a seekable file is only known once it is resolved, which has no side
 * effect (a dup, or an inherited number).
 */
#include "qemu/osdep.h"
#include "migration/channel.h"
#include "migration/exec.h"
#include "migration/fd.h"
#include "migration/file.h"
#include "migration/multifd.h" /* mfd */
#include "migration/options.h"
#include "migration/socket.h"

/* "HOST:PORT" or "[V6HOST]:PORT" -> inet address. */
static bool parse_inet(const char *str, InetSocketAddress *inet, GError **errp)
{
    const char *colon = strrchr(str, ':');
    const char *host = str;
    size_t host_len;

    if (!colon || !colon[1]) {
        error_setg(errp, "error parsing address '%s'", str);
        return false;
    }
    host_len = colon - str;
    if (host_len >= 2 && str[0] == '[' && str[host_len - 1] == ']') {
        host++;
        host_len -= 2;
    }
    if (!host_len || strchr(colon + 1, ',')) {
        error_setg(errp, "error parsing address '%s'", str);
        return false;
    }
    inet->host = g_strndup(host, host_len);
    inet->port = g_strdup(colon + 1);
    return true;
}

MigrationAddress *migration_address_parse_uri(const char *uri, GError **errp)
{
    g_autoptr(MigrationAddress) addr = g_new0(MigrationAddress, 1);

    if (g_str_has_prefix(uri, "tcp:")) {
        addr->transport = MIGRATION_ADDRESS_TYPE_SOCKET;
        addr->u.socket.type = SOCKET_ADDRESS_TYPE_INET;
        if (!parse_inet(uri + 4, &addr->u.socket.u.inet, errp)) {
            return NULL;
        }
    } else if (g_str_has_prefix(uri, "unix:")) {
        addr->transport = MIGRATION_ADDRESS_TYPE_SOCKET;
        addr->u.socket.type = SOCKET_ADDRESS_TYPE_UNIX;
        addr->u.socket.u.q_unix.path = g_strdup(uri + 5);
    } else if (g_str_has_prefix(uri, "fd:")) {
        addr->transport = MIGRATION_ADDRESS_TYPE_SOCKET;
        addr->u.socket.type = SOCKET_ADDRESS_TYPE_FD;
        addr->u.socket.u.fd.str = g_strdup(uri + 3);
    } else if (g_str_has_prefix(uri, "exec:")) {
        /* As QEMU: the command line goes through the shell. */
        const char *argv[] = {"/bin/sh", "-c", uri + 5};

        addr->transport = MIGRATION_ADDRESS_TYPE_EXEC;
        for (int i = G_N_ELEMENTS(argv) - 1; i >= 0; i--) {
            strList *item = g_new0(strList, 1);

            item->value = g_strdup(argv[i]);
            item->next = addr->u.exec.args;
            addr->u.exec.args = item;
        }
    } else if (g_str_has_prefix(uri, "file:")) {
        addr->transport = MIGRATION_ADDRESS_TYPE_FILE;
        if (!file_parse_spec(uri + 5, &addr->u.file.filename,
                             &addr->u.file.offset, errp)) {
            return NULL;
        }
    } else {
        error_setg(errp, "unknown migration protocol: %s", uri);
        return NULL;
    }
    return g_steal_pointer(&addr);
}

MigrationAddress *migration_address_from_args(const char *uri,
                                              MigrationChannelList *channels,
                                              GError **errp)
{
    MigrationChannel *channel;

    if ((uri && channels) || (!uri && !channels)) {
        error_setg(errp, "need either 'uri' or 'channels' argument");
        return NULL;
    }
    if (uri) {
        return migration_address_parse_uri(uri, errp);
    }
    if (channels->next) {
        error_setg(errp, "Channel list has more than one entries");
        return NULL;
    }
    channel = channels->value;
    if (channel->channel_type != MIGRATION_CHANNEL_TYPE_MAIN) {
        error_setg(errp, "Channel type must be 'main'");
        return NULL;
    }
    /* A copy, so both forms hand the caller an address it owns. */
    g_autoptr(JsonNode) node = qapi_MigrationAddress_to_json(channel->addr);

    return qapi_MigrationAddress_from_json(node, "channels[0].addr", errp);
}

/* "unix:PATH" / "tcp:HOST:PORT" as io/channel-socket.h spells them. */
static char *socket_address_string(SocketAddress *saddr, GError **errp)
{
    switch (saddr->type) {
    case SOCKET_ADDRESS_TYPE_INET:
        if (strchr(saddr->u.inet.host, ':')) {
            return g_strdup_printf("tcp:[%s]:%s", saddr->u.inet.host,
                                   saddr->u.inet.port);
        }
        return g_strdup_printf("tcp:%s:%s", saddr->u.inet.host,
                               saddr->u.inet.port);
    case SOCKET_ADDRESS_TYPE_UNIX:
        return g_strdup_printf("unix:%s", saddr->u.q_unix.path);
    default:
        error_setg(errp,
                   "Socket address type '%s' is not supported for "
                   "migration",
                   SocketAddressType_str(saddr->type));
        return NULL;
    }
}

static bool address_is_fd(MigrationAddress *addr)
{
    return addr->transport == MIGRATION_ADDRESS_TYPE_SOCKET &&
           addr->u.socket.type == SOCKET_ADDRESS_TYPE_FD;
}

/*
 * The capability checks for a transport. A seekable regular file passed
 * as fd: counts as seekable (an extension over QEMU, which takes only
 * file: for mapped-ram): its stream positions are absolute offsets in that
 * file just as with file:. It cannot open extra channels, though.
 */
static bool check_transport(MigrationAddress *addr, bool fd_seekable,
                            GError **errp)
{
    bool is_file = addr->transport == MIGRATION_ADDRESS_TYPE_FILE;
    bool seekable = is_file || fd_seekable;
    bool multi_channel = false;

    if (addr->transport == MIGRATION_ADDRESS_TYPE_RDMA) {
        error_setg(errp, "RDMA migration is not supported by minivm");
        return false;
    }
    if (addr->transport == MIGRATION_ADDRESS_TYPE_SOCKET) {
        multi_channel = addr->u.socket.type == SOCKET_ADDRESS_TYPE_INET ||
                        addr->u.socket.type == SOCKET_ADDRESS_TYPE_UNIX;
    } else if (is_file) {
        multi_channel = migrate_mapped_ram();
    }
    if (!migrate_check_transport(seekable, multi_channel, is_file, errp)) {
        return false;
    }
    return true;
}

static QIOChannel *open_fd(MigrationAddress *addr, GError **errp)
{
    bool seekable = false;
    QIOChannel *ioc = fd_open(addr->u.socket.u.fd.str, &seekable, errp);

    if (ioc && !check_transport(addr, seekable, errp)) {
        qio_channel_unref(ioc);
        return NULL;
    }
    return ioc;
}

static char **exec_args_vector(MigrationAddress *addr)
{
    GPtrArray *argv = g_ptr_array_new();

    for (strList *l = addr->u.exec.args; l; l = l->next) {
        g_ptr_array_add(argv, l->value);
    }
    g_ptr_array_add(argv, NULL);
    return (char **)g_ptr_array_free(argv, false);
}

bool migration_channel_open_outgoing(MigrationAddress *addr, QIOChannel **ioc,
                                     char **connect_addr, GError **errp)
{
    *ioc = NULL;
    *connect_addr = NULL;
    if (address_is_fd(addr)) {
        *ioc = open_fd(addr, errp);
        return *ioc != NULL;
    }
    if (!check_transport(addr, false, errp)) {
        return false;
    }
    switch (addr->transport) {
    case MIGRATION_ADDRESS_TYPE_FILE:
        *ioc = file_open_outgoing(addr->u.file.filename, addr->u.file.offset,
                                  errp);
        /* mfd: multifd channels open the same path again */
        multifd_set_outgoing_file(*ioc ? addr->u.file.filename : NULL);
        return *ioc != NULL;
    case MIGRATION_ADDRESS_TYPE_EXEC: {
        g_autofree char **argv = exec_args_vector(addr);

        *ioc = exec_open((const char *const *)argv, true, errp);
        return *ioc != NULL;
    }
    case MIGRATION_ADDRESS_TYPE_SOCKET:
        *connect_addr = socket_address_string(&addr->u.socket, errp);
        return *connect_addr != NULL;
    default:
        error_setg(errp, "unknown migration transport");
        return false;
    }
}

bool migration_channel_start_incoming(MigrationAddress *addr, QIOChannel **ioc,
                                      GError **errp)
{
    *ioc = NULL;
    if (address_is_fd(addr)) {
        *ioc = open_fd(addr, errp);
        return *ioc != NULL;
    }
    if (!check_transport(addr, false, errp)) {
        return false;
    }
    switch (addr->transport) {
    case MIGRATION_ADDRESS_TYPE_FILE:
        *ioc = file_open_incoming(addr->u.file.filename, addr->u.file.offset,
                                  errp);
        /* mfd: multifd channels open the same path again */
        multifd_set_incoming_file(*ioc ? addr->u.file.filename : NULL);
        return *ioc != NULL;
    case MIGRATION_ADDRESS_TYPE_EXEC: {
        g_autofree char **argv = exec_args_vector(addr);

        *ioc = exec_open((const char *const *)argv, false, errp);
        return *ioc != NULL;
    }
    case MIGRATION_ADDRESS_TYPE_SOCKET: {
        g_autofree char *saddr = socket_address_string(&addr->u.socket, errp);

        return saddr && socket_start_incoming(saddr, errp);
    }
    default:
        error_setg(errp, "unknown migration transport");
        return false;
    }
}
