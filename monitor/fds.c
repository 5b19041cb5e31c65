/*
 * Descriptors handed to minivm by management software instead of paths:
 * named fds (getfd / closefd, used by "fd:NAME" URIs) and fd sets (add-fd /
 * remove-fd / query-fdsets / -add-fd), which qemu_open() consults for
 * "/dev/fdset/ID" paths.
 *
 * Opening /dev/fdset/ID returns a dup of the most recently added member
 * whose access mode and O_DIRECT flag match the open's flags; the dup is
 * tracked until qemu_close(), and a set lives while it has members or live
 * dups. remove-fd closes members at once: a dup already handed out keeps
 * its own reference to the file, so the user of the dup is not disturbed.
 *
 * Migration threads open fdset paths, so the state is under a mutex.
 */
#include "qemu/osdep.h"
#include "qemu/thread.h"

#include "monitor/monitor-internal.h"
#include "monitor/monitor.h"
#include "qapi/qapi-commands.h"
#include "qemu/fdopen.h"

#define FDSET_PREFIX "/dev/fdset/"

typedef struct MonFdsetFd {
    int fd;
    char *opaque; /* NULL when not given */
} MonFdsetFd;

typedef struct MonFdset {
    int64_t id;
    GPtrArray *fds; /* of MonFdsetFd *, oldest first */
    GArray *dups;   /* of int: fds given out by qemu_open(), still open */
} MonFdset;

static QemuMutex fds_lock;
static GPtrArray *fdsets;     /* of MonFdset *, sorted by id */
static GHashTable *named_fds; /* name -> GINT_TO_POINTER(fd) */

/* --- named fds --- */

static void named_fds_init(void)
{
    if (!named_fds) {
        named_fds =
            g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    }
}

void qmp_getfd(const char *fdname, GError **errp)
{
    int fd = monitor_fd_take();
    gpointer old;

    if (fd < 0) {
        error_setg(errp, "No file descriptor supplied via SCM_RIGHTS");
        return;
    }
    if (g_ascii_isdigit(fdname[0])) {
        /* "fd:3" means descriptor 3, so names cannot look like numbers. */
        close(fd);
        error_setg(errp, "Parameter 'fdname' expects a name not starting "
                         "with a digit");
        return;
    }
    qemu_mutex_lock(&fds_lock);
    named_fds_init();
    if (g_hash_table_lookup_extended(named_fds, fdname, NULL, &old)) {
        close(GPOINTER_TO_INT(old));
    }
    g_hash_table_insert(named_fds, g_strdup(fdname), GINT_TO_POINTER(fd));
    qemu_mutex_unlock(&fds_lock);
}

void qmp_closefd(const char *fdname, GError **errp)
{
    gpointer fd;

    qemu_mutex_lock(&fds_lock);
    if (named_fds &&
        g_hash_table_lookup_extended(named_fds, fdname, NULL, &fd)) {
        close(GPOINTER_TO_INT(fd));
        g_hash_table_remove(named_fds, fdname);
    } else {
        error_setg(errp, "File descriptor named '%s' not found", fdname);
    }
    qemu_mutex_unlock(&fds_lock);
}

int monitor_get_fd(const char *name, GError **errp)
{
    gpointer fd;
    int dup_fd = -1;

    qemu_mutex_lock(&fds_lock);
    if (!named_fds ||
        !g_hash_table_lookup_extended(named_fds, name, NULL, &fd)) {
        error_setg(errp, "File descriptor named '%s' has not been found", name);
    } else {
        dup_fd = fcntl(GPOINTER_TO_INT(fd), F_DUPFD_CLOEXEC, 0);
        if (dup_fd < 0) {
            error_setg_errno(errp, errno, "Could not dup FD %d",
                             GPOINTER_TO_INT(fd));
        }
    }
    qemu_mutex_unlock(&fds_lock);
    return dup_fd;
}

/* --- fd sets (callers hold fds_lock) --- */

static MonFdset *fdset_find(int64_t id)
{
    for (guint i = 0; fdsets && i < fdsets->len; i++) {
        MonFdset *set = g_ptr_array_index(fdsets, i);

        if (set->id == id) {
            return set;
        }
    }
    return NULL;
}

static void fdset_fd_free(gpointer p)
{
    MonFdsetFd *f = p;

    close(f->fd);
    g_free(f->opaque);
    g_free(f);
}

static MonFdset *fdset_create(int64_t id)
{
    MonFdset *set = g_new0(MonFdset, 1);
    guint pos = 0;

    set->id = id;
    set->fds = g_ptr_array_new_with_free_func(fdset_fd_free);
    set->dups = g_array_new(FALSE, FALSE, sizeof(int));
    if (!fdsets) {
        fdsets = g_ptr_array_new();
    }
    while (pos < fdsets->len &&
           ((MonFdset *)g_ptr_array_index(fdsets, pos))->id < id) {
        pos++;
    }
    g_ptr_array_insert(fdsets, pos, set);
    return set;
}

/* Frees the set once it has neither members nor live dups. */
static void fdset_maybe_free(MonFdset *set)
{
    if (set->fds->len > 0 || set->dups->len > 0) {
        return;
    }
    g_ptr_array_remove(fdsets, set);
    g_ptr_array_free(set->fds, TRUE);
    g_array_free(set->dups, TRUE);
    g_free(set);
}

/* The lowest id no set uses (the list is sorted). */
static int64_t fdset_free_id(void)
{
    int64_t id = 0;

    for (guint i = 0; fdsets && i < fdsets->len; i++) {
        MonFdset *set = g_ptr_array_index(fdsets, i);

        if (set->id > id) {
            break;
        }
        id = set->id + 1;
    }
    return id;
}

int64_t monitor_fdset_add_fd(int fd, bool has_fdset_id, int64_t fdset_id,
                             const char *opaque, GError **errp)
{
    MonFdset *set;
    MonFdsetFd *f;

    if (has_fdset_id && fdset_id < 0) {
        close(fd);
        error_setg(errp, "Parameter 'fdset-id' expects a non-negative value");
        return -1;
    }
    qemu_mutex_lock(&fds_lock);
    if (!has_fdset_id) {
        fdset_id = fdset_free_id();
    }
    set = fdset_find(fdset_id);
    if (!set) {
        set = fdset_create(fdset_id);
    }
    f = g_new0(MonFdsetFd, 1);
    f->fd = fd;
    f->opaque = g_strdup(opaque);
    g_ptr_array_add(set->fds, f);
    qemu_mutex_unlock(&fds_lock);
    return fdset_id;
}

AddfdInfo *qmp_add_fd(bool has_fdset_id, int64_t fdset_id, const char *opaque,
                      GError **errp)
{
    int fd = monitor_fd_take();
    AddfdInfo *info;
    int64_t id;

    if (fd < 0) {
        error_setg(errp, "No file descriptor supplied via SCM_RIGHTS");
        return NULL;
    }
    id = monitor_fdset_add_fd(fd, has_fdset_id, fdset_id, opaque, errp);
    if (id < 0) {
        return NULL;
    }
    info = g_new0(AddfdInfo, 1);
    info->fdset_id = id;
    info->fd = fd;
    return info;
}

void qmp_remove_fd(int64_t fdset_id, bool has_fd, int64_t fd, GError **errp)
{
    MonFdset *set;

    qemu_mutex_lock(&fds_lock);
    set = fdset_find(fdset_id);
    if (set && !has_fd) {
        /* Closes every member now; live dups keep the set listed. */
        g_ptr_array_set_size(set->fds, 0);
        fdset_maybe_free(set);
        qemu_mutex_unlock(&fds_lock);
        return;
    }
    for (guint i = 0; set && i < set->fds->len; i++) {
        MonFdsetFd *f = g_ptr_array_index(set->fds, i);

        if (f->fd == fd) {
            g_ptr_array_remove_index(set->fds, i);
            fdset_maybe_free(set);
            qemu_mutex_unlock(&fds_lock);
            return;
        }
    }
    qemu_mutex_unlock(&fds_lock);
    if (has_fd) {
        error_setg(errp,
                   "File descriptor named 'fdset-id:%" PRId64 ", fd:%" PRId64
                   "' not found",
                   fdset_id, fd);
    } else {
        error_setg(errp,
                   "File descriptor named 'fdset-id:%" PRId64 "' not found",
                   fdset_id);
    }
}

FdsetInfoList *qmp_query_fdsets(GError **errp)
{
    FdsetInfoList *head = NULL;
    FdsetInfoList **tail = &head;

    qemu_mutex_lock(&fds_lock);
    for (guint i = 0; fdsets && i < fdsets->len; i++) {
        MonFdset *set = g_ptr_array_index(fdsets, i);
        FdsetInfo *info = g_new0(FdsetInfo, 1);
        FdsetFdInfoList **fd_tail = &info->fds;

        info->fdset_id = set->id;
        for (guint j = 0; j < set->fds->len; j++) {
            MonFdsetFd *f = g_ptr_array_index(set->fds, j);
            FdsetFdInfo *fi = g_new0(FdsetFdInfo, 1);

            fi->fd = f->fd;
            fi->opaque = g_strdup(f->opaque);
            *fd_tail = g_new0(FdsetFdInfoList, 1);
            (*fd_tail)->value = fi;
            fd_tail = &(*fd_tail)->next;
        }
        *tail = g_new0(FdsetInfoList, 1);
        (*tail)->value = info;
        tail = &(*tail)->next;
    }
    qemu_mutex_unlock(&fds_lock);
    return head;
}

/* --- the qemu_open() hooks --- */

/* Strict decimal, no sign, no junk: "/dev/fdset/1x" is not set 1. */
static bool parse_fdset_id(const char *s, int64_t *id)
{
    guint64 v;

    if (!g_ascii_isdigit(*s) ||
        !g_ascii_string_to_unsigned(s, 10, 0, INT64_MAX, &v, NULL)) {
        return false;
    }
    *id = v;
    return true;
}

static bool fd_flags_match(int fd, int flags)
{
    int fd_flags = fcntl(fd, F_GETFL);

    return fd_flags != -1 && (fd_flags & O_ACCMODE) == (flags & O_ACCMODE) &&
           (fd_flags & O_DIRECT) == (flags & O_DIRECT);
}

int monitor_fdset_open(const char *path, int flags, GError **errp)
{
    MonFdset *set;
    int64_t id;
    int dup_fd = -1;

    if (!g_str_has_prefix(path, FDSET_PREFIX) ||
        !parse_fdset_id(path + strlen(FDSET_PREFIX), &id)) {
        error_setg(errp, "Could not parse fdset %s", path);
        return -1;
    }
    qemu_mutex_lock(&fds_lock);
    set = fdset_find(id);
    if (!set) {
        error_setg(errp, "Failed to find fdset /dev/fdset/%" PRId64, id);
        goto out;
    }
    /* Newest first: the manager's latest descriptor wins. */
    for (guint i = set->fds->len; i-- > 0;) {
        MonFdsetFd *f = g_ptr_array_index(set->fds, i);

        if (!fd_flags_match(f->fd, flags)) {
            continue;
        }
        dup_fd = fcntl(f->fd, F_DUPFD_CLOEXEC, 0);
        if (dup_fd < 0) {
            error_setg_errno(errp, errno, "Could not dup FD %d", f->fd);
            goto out;
        }
        g_array_append_val(set->dups, dup_fd);
        goto out;
    }
    error_setg(errp, "Failed to find file descriptor with matching flags=0x%x",
               flags);
out:
    qemu_mutex_unlock(&fds_lock);
    return dup_fd;
}

void monitor_fdset_close(int fd)
{
    qemu_mutex_lock(&fds_lock);
    for (guint i = 0; fdsets && i < fdsets->len; i++) {
        MonFdset *set = g_ptr_array_index(fdsets, i);

        for (guint j = 0; j < set->dups->len; j++) {
            if (g_array_index(set->dups, int, j) == fd) {
                g_array_remove_index_fast(set->dups, j);
                fdset_maybe_free(set);
                qemu_mutex_unlock(&fds_lock);
                return;
            }
        }
    }
    qemu_mutex_unlock(&fds_lock);
}

void monitor_fdsets_init(void)
{
    monitor_note_main_thread();
    qemu_open_set_fdset_hooks(monitor_fdset_open, monitor_fdset_close);
}

/* --- -add-fd fd=N,set=ID[,opaque=STR] --- */

/* Splits "k=v,k=v" where ",," stands for a comma inside a value. */
static GPtrArray *split_opts(const char *opts)
{
    GPtrArray *parts = g_ptr_array_new_with_free_func(g_free);
    GString *cur = g_string_new(NULL);

    for (const char *p = opts; *p; p++) {
        if (*p == ',' && p[1] == ',') {
            g_string_append_c(cur, ',');
            p++;
        } else if (*p == ',') {
            g_ptr_array_add(parts, g_string_free(cur, FALSE));
            cur = g_string_new(NULL);
        } else {
            g_string_append_c(cur, *p);
        }
    }
    g_ptr_array_add(parts, g_string_free(cur, FALSE));
    return parts;
}

static bool parse_nonneg(const char *s, int64_t max, int64_t *out)
{
    guint64 v;

    if (!s || !g_ascii_isdigit(*s) ||
        !g_ascii_string_to_unsigned(s, 10, 0, max, &v, NULL)) {
        return false;
    }
    *out = v;
    return true;
}

bool monitor_fdset_add_from_cmdline(const char *opts, GError **errp)
{
    g_autoptr(GPtrArray) parts = split_opts(opts);
    const char *fd_str = NULL, *set_str = NULL, *opaque = NULL;
    int64_t fd, set_id;
    int fd_flags;

    for (guint i = 0; i < parts->len; i++) {
        char *key = g_ptr_array_index(parts, i);
        char *eq = strchr(key, '=');

        if (!eq) {
            error_setg(errp, "-add-fd: expected KEY=VALUE, got '%s'", key);
            return false;
        }
        *eq = '\0';
        if (!strcmp(key, "fd")) {
            fd_str = eq + 1;
        } else if (!strcmp(key, "set")) {
            set_str = eq + 1;
        } else if (!strcmp(key, "opaque")) {
            opaque = eq + 1;
        } else {
            error_setg(errp, "-add-fd: unknown parameter '%s'", key);
            return false;
        }
    }
    if (!parse_nonneg(fd_str, INT_MAX, &fd)) {
        error_setg(errp, "-add-fd: fd option is required and must be "
                         "non-negative");
        return false;
    }
    if (fd <= STDERR_FILENO) {
        error_setg(errp, "-add-fd: fd cannot be a standard I/O stream");
        return false;
    }
    if (!parse_nonneg(set_str, INT64_MAX, &set_id)) {
        error_setg(errp, "-add-fd: set option is required and must be "
                         "non-negative");
        return false;
    }
    /*
     * An inherited descriptor has no FD_CLOEXEC; one of minivm's own (or
     * one already added) does, and adding it would close it under its
     * owner's feet later.
     */
    fd_flags = fcntl(fd, F_GETFD);
    if (fd_flags == -1) {
        error_setg_errno(errp, errno, "-add-fd: fd=%" PRId64 " is not open",
                         fd);
        return false;
    }
    if (fd_flags & FD_CLOEXEC) {
        error_setg(
            errp, "-add-fd: fd=%" PRId64 " is not valid or already in use", fd);
        return false;
    }
    fcntl(fd, F_SETFD, fd_flags | FD_CLOEXEC);
    if (monitor_fdset_add_fd(fd, true, set_id, opaque, errp) < 0) {
        error_prepend(errp, "-add-fd: ");
        return false;
    }
    return true;
}

/* --- exit and tests --- */

void monitor_fds_cleanup(void)
{
    qemu_mutex_lock(&fds_lock);
    if (named_fds) {
        GHashTableIter iter;
        gpointer fd;

        g_hash_table_iter_init(&iter, named_fds);
        while (g_hash_table_iter_next(&iter, NULL, &fd)) {
            close(GPOINTER_TO_INT(fd));
        }
        g_hash_table_destroy(named_fds);
        named_fds = NULL;
    }
    while (fdsets && fdsets->len > 0) {
        MonFdset *set = g_ptr_array_index(fdsets, 0);

        /* Dups belong to their users; only forget them. */
        g_array_set_size(set->dups, 0);
        g_ptr_array_set_size(set->fds, 0);
        fdset_maybe_free(set);
    }
    qemu_mutex_unlock(&fds_lock);
}
