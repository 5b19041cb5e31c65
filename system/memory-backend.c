/*
 * Memory backends: where guest RAM comes from.
 *
 * memory-backend-ram is anonymous memory; memory-backend-file maps a file
 * (or a fresh unlinked file when mem-path is a directory), so with share=on
 * a test can read guest RAM from the file directly; memory-backend-memfd
 * maps a memfd (shared by default, as in QEMU). The RAM block that uses a
 * backend owns the descriptor memory_backend_open() returns.
 */
#include "qemu/osdep.h"
#include <sys/mman.h>
#include "qemu/fdopen.h"
#include "system/memory-backend.h"
#include "system/opts.h"

static GPtrArray *backends; /* MemoryBackend * */

static void memory_backend_free(gpointer p)
{
    MemoryBackend *mb = p;

    g_free(mb->id);
    g_free(mb->type);
    g_free(mb->mem_path);
    g_free(mb);
}

MemoryBackend *memory_backend_find(const char *id)
{
    guint i;

    for (i = 0; backends && i < backends->len; i++) {
        MemoryBackend *mb = g_ptr_array_index(backends, i);

        if (strcmp(mb->id, id) == 0) {
            return mb;
        }
    }
    return NULL;
}

bool memory_backend_create(const char *str, GError **errp)
{
    g_autofree char *type = NULL;
    g_autoptr(GHashTable) opts = NULL;
    g_autofree char *id = NULL;
    g_autofree char *mem_path = NULL;
    size_t first_len = strcspn(str, ",");
    bool type_first = !memchr(str, '=', first_len);
    uint64_t size = 0;
    bool share;
    MemoryBackend *mb;

    /* "TYPE,..." or "qom-type=TYPE,..." as QEMU accepts both. */
    opts = opts_parse(str, type_first ? &type : NULL, errp);
    if (!opts) {
        return false;
    }
    if (!type_first) {
        type = opts_take(opts, "qom-type");
        if (!type) {
            error_setg(errp, "Parameter 'qom-type' is missing");
            return false;
        }
    }

    if (strcmp(type, "memory-backend-ram") &&
        strcmp(type, "memory-backend-file") &&
        strcmp(type, "memory-backend-memfd")) {
        error_setg(errp, "invalid object type: %s", type);
        return false;
    }
    id = opts_take(opts, "id");
    if (!id || !*id) {
        error_setg(errp, "Parameter 'id' is missing");
        return false;
    }
    if (memory_backend_find(id)) {
        error_setg(errp, "Duplicate ID '%s' for object", id);
        return false;
    }
    if (!opts_take_size(opts, "size", 0, &size, errp)) {
        return false;
    }
    if (size == 0) {
        error_setg(errp, "can't create backend with size 0");
        return false;
    }
    share = strcmp(type, "memory-backend-memfd") == 0;
    if (!opts_take_bool(opts, "share", &share, errp)) {
        return false;
    }
    if (strcmp(type, "memory-backend-file") == 0) {
        mem_path = opts_take(opts, "mem-path");
        if (!mem_path || !*mem_path) {
            error_setg(errp, "mem-path property not set");
            return false;
        }
    }
    if (!opts_check_empty(opts, type, errp)) {
        return false;
    }

    mb = g_new0(MemoryBackend, 1);
    mb->id = g_steal_pointer(&id);
    mb->type = g_steal_pointer(&type);
    mb->size = size;
    mb->mem_path = g_steal_pointer(&mem_path);
    mb->share = share;
    if (!backends) {
        backends = g_ptr_array_new_with_free_func(memory_backend_free);
    }
    g_ptr_array_add(backends, mb);
    return true;
}

/* Grows a fresh file to size; an existing smaller one is a mistake. */
static bool backing_file_size(int fd, const char *path, uint64_t size,
                              GError **errp)
{
    struct stat st;

    if (fstat(fd, &st) < 0) {
        error_setg_errno(errp, errno, "Could not stat '%s'", path);
        return false;
    }
    if (S_ISREG(st.st_mode) && st.st_size > 0 && (uint64_t)st.st_size < size) {
        error_setg(errp,
                   "backing store size 0x%" PRIx64
                   " does not match 'size' option 0x%" PRIx64,
                   (uint64_t)st.st_size, size);
        return false;
    }
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < size &&
        ftruncate(fd, size) < 0) {
        error_setg_errno(errp, errno, "Could not resize '%s'", path);
        return false;
    }
    return true;
}

static int backing_file_open(MemoryBackend *mb, GError **errp)
{
    struct stat st;
    int fd;

    if (stat(mb->mem_path, &st) == 0 && S_ISDIR(st.st_mode)) {
        /* A directory (hugetlbfs, tmpfs): a private file that goes away
         * with us. */
        g_autofree char *tmpl =
            g_build_filename(mb->mem_path, "minivm_back_mem.XXXXXX", NULL);

        fd = mkostemp(tmpl, O_CLOEXEC);
        if (fd < 0) {
            error_setg_errno(errp, errno, "Could not create a file in '%s'",
                             mb->mem_path);
            return -1;
        }
        unlink(tmpl);
    } else {
        fd = qemu_open(mb->mem_path, O_RDWR | O_CREAT, 0644, errp);
        if (fd < 0) {
            return -1;
        }
    }
    if (!backing_file_size(fd, mb->mem_path, mb->size, errp)) {
        qemu_close(fd);
        return -1;
    }
    return fd;
}

static int memfd_open(MemoryBackend *mb, GError **errp)
{
    int fd = memfd_create(mb->id, MFD_CLOEXEC);

    if (fd < 0) {
        error_setg_errno(errp, errno, "memfd_create failed");
        return -1;
    }
    if (ftruncate(fd, mb->size) < 0) {
        error_setg_errno(errp, errno, "Could not resize memfd '%s'", mb->id);
        close(fd);
        return -1;
    }
    return fd;
}

bool memory_backend_open(MemoryBackend *mb, int *fd, bool *shared,
                         GError **errp)
{
    *shared = mb->share;
    if (strcmp(mb->type, "memory-backend-file") == 0) {
        *fd = backing_file_open(mb, errp);
    } else if (strcmp(mb->type, "memory-backend-memfd") == 0) {
        *fd = memfd_open(mb, errp);
    } else {
        *fd = -1;
        return true;
    }
    if (*fd < 0) {
        error_prepend(errp, "memory backend '%s': ", mb->id);
        return false;
    }
    return true;
}

void memory_backends_free(void)
{
    if (backends) {
        g_ptr_array_free(backends, TRUE);
        backends = NULL;
    }
}
