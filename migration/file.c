/*
 * The file: transport (stream-format.md section 5).
 *
 * "file:PATH[,offset=N]" puts the stream at byte N of PATH. The source
 * truncates the file to N before writing, so a header the management wrote
 * before N survives and nothing of an older, longer stream stays behind
 * it. Both sides go through qemu_open() (via the file channel), so PATH may
 * be /dev/fdset/ID. The channel's close fsyncs; the migration thread does
 * that, never the main loop.
 */
#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "io/channel-file.h"
#include "migration/file.h"

#define FILE_OFFSET_OPTION ",offset="

bool file_parse_spec(const char *spec, char **path, uint64_t *offset,
                     GError **errp)
{
    const char *opt = strstr(spec, FILE_OFFSET_OPTION);
    uint64_t value = 0;

    if (opt) {
        const char *str = opt + strlen(FILE_OFFSET_OPTION);

        /* off_t is signed: a larger offset could never be seeked to. */
        if (qemu_strtosz(str, 0, &value) < 0 || value > INT64_MAX) {
            error_setg(errp, "file URI has bad offset %s", str);
            return false;
        }
        *path = g_strndup(spec, opt - spec);
    } else {
        *path = g_strdup(spec);
    }
    *offset = value;
    return true;
}

static QIOChannel *file_open(const char *path, int flags, uint64_t offset,
                             GError **errp)
{
    QIOChannelFile *fioc;
    QIOChannel *ioc;

    fioc = qio_channel_file_new_path(path, flags, 0600, errp);
    if (!fioc) {
        return NULL;
    }
    ioc = QIO_CHANNEL(fioc);
    if ((flags & O_ACCMODE) != O_RDONLY && ftruncate(fioc->fd, offset) < 0) {
        error_setg_errno(errp, errno,
                         "Failed to truncate file '%s' to offset %" PRIu64,
                         path, offset);
        qio_channel_unref(ioc);
        return NULL;
    }
    if (qio_channel_io_seek(ioc, offset, SEEK_SET, errp) < 0) {
        error_prepend(errp, "Failed to seek file '%s' to offset %" PRIu64 ": ",
                      path, offset);
        qio_channel_unref(ioc);
        return NULL;
    }
    return ioc;
}

QIOChannel *file_open_outgoing(const char *path, uint64_t offset, GError **errp)
{
    QIOChannel *ioc = file_open(path, O_CREAT | O_WRONLY, offset, errp);

    if (ioc) {
        qio_channel_set_name(ioc, "migration-file-outgoing");
    }
    return ioc;
}

QIOChannel *file_open_incoming(const char *path, uint64_t offset, GError **errp)
{
    QIOChannel *ioc = file_open(path, O_RDONLY, offset, errp);

    if (ioc) {
        qio_channel_set_name(ioc, "migration-file-incoming");
    }
    return ioc;
}
