/*
 * The file: transport (stream-format.md section 5).
 *
 * "file:PATH[,offset=N]" puts the stream at byte N of PATH. The source
 * truncates the file to N before writing, so a header the management wrote
 * before N survives and nothing of an older, longer stream stays behind
 * it. Both sides go through qemu_open() (via the file channel), so PATH may
 * be /dev/fdset/ID. The channel's close fsyncs; the migration thread does
 * that, never the main loop.
 *
 * The truncation is the one step with a cost and a side effect, so it is
 * split from the open: `migrate` opens (creating a missing file) and seeks,
 * then checks the free space (free-space.c, which credits what truncating
 * an old file gives back) and may still refuse -- the file is then exactly
 * as it was, and one the open created is removed. The migration thread
 * truncates (file_outgoing_truncate()) before writing its first byte:
 * freeing a large old file can take minutes (a file system mounted with
 * discard discards every freed extent), which must not hold the monitor.
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

/*
 * The outgoing file whose truncation waits for the migration thread (one
 * migration at a time). ioc is compared, never dereferenced: `migrate`
 * records it, and it is cleared when the thread or a refusal consumes it.
 */
static struct {
    QIOChannel *ioc;
    char *path;
    uint64_t offset;
    bool created;
} outgoing;

static void outgoing_forget(void)
{
    outgoing.ioc = NULL;
    g_clear_pointer(&outgoing.path, g_free);
    outgoing.offset = 0;
    outgoing.created = false;
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
    bool created = false;
    QIOChannel *ioc = NULL;

    /*
     * O_EXCL first tells whether this open creates the file (a refused
     * save removes only such a file). An fdset never creates anything.
     */
    if (!g_str_has_prefix(path, "/dev/fdset/")) {
        ioc = file_open(path, O_CREAT | O_EXCL | O_WRONLY, offset, NULL);
        created = ioc != NULL;
    }
    if (!ioc) {
        ioc = file_open(path, O_CREAT | O_WRONLY, offset, errp);
    }
    if (!ioc) {
        return NULL;
    }
    qio_channel_set_name(ioc, "migration-file-outgoing");
    outgoing_forget();
    outgoing.ioc = ioc;
    outgoing.path = g_strdup(path);
    outgoing.offset = offset;
    outgoing.created = created;
    return ioc;
}

bool file_outgoing_truncate_offset(QIOChannel *ioc, uint64_t *offset)
{
    if (!ioc || ioc != outgoing.ioc) {
        return false;
    }
    *offset = outgoing.offset;
    return true;
}

void file_outgoing_abandon(QIOChannel *ioc)
{
    if (ioc && ioc == outgoing.ioc) {
        if (outgoing.created && unlink(outgoing.path) < 0) {
            /* Only an empty file is left behind; nothing else changed. */
            g_debug("could not remove '%s': %s", outgoing.path,
                    g_strerror(errno));
        }
    }
    outgoing_forget();
}

bool file_outgoing_truncate(QIOChannel *ioc, GError **errp)
{
    g_autofree char *path = NULL;
    uint64_t offset;
    int fd;

    if (!ioc || ioc != outgoing.ioc) {
        outgoing_forget(); /* another transport: nothing of ours is open */
        return true;
    }
    path = g_steal_pointer(&outgoing.path);
    offset = outgoing.offset;
    outgoing_forget();
    fd = qio_channel_get_fd(ioc, G_IO_OUT);
    if (fd < 0 || ftruncate(fd, offset) < 0) {
        error_setg_errno(errp, fd < 0 ? EBADF : errno,
                         "Failed to truncate file '%s' to offset %" PRIu64,
                         path, offset);
        return false;
    }
    return true;
}

QIOChannel *file_open_incoming(const char *path, uint64_t offset, GError **errp)
{
    QIOChannel *ioc = file_open(path, O_RDONLY, offset, errp);

    if (ioc) {
        qio_channel_set_name(ioc, "migration-file-incoming");
    }
    return ioc;
}
