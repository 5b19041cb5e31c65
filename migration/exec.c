/*
 * The exec: transport. The command runs under /bin/sh -c, as with QEMU, so
 * management can pipe the stream through compressors or ssh. Closing the
 * channel waits for the child; a non-zero exit fails the migration.
 */
#include "qemu/osdep.h"
#include "io/channel-command.h"
#include "migration/exec.h"

QIOChannel *exec_open(const char *const *argv, bool outgoing, GError **errp)
{
    QIOChannelCommand *cioc;

    if (!argv || !argv[0]) {
        error_setg(errp, "exec: needs a command to run");
        return NULL;
    }
    cioc = qio_channel_command_new_spawn(argv, outgoing ? O_WRONLY : O_RDONLY,
                                         errp);
    if (!cioc) {
        return NULL;
    }
    qio_channel_set_name(&cioc->parent, outgoing ? "migration-exec-outgoing"
                                                 : "migration-exec-incoming");
    return &cioc->parent;
}
