/*
 * Memory backends (-object memory-backend-ram|-file|-memfd,id=ID,size=SIZE
 * [,mem-path=PATH][,share=on|off]) and the backend -machine memory-backend=
 * names for pc.ram. A backend only describes where guest RAM comes from;
 * memory_backend_open() hands the descriptor to the RAM block that uses it.
 */
#ifndef SYSTEM_MEMORY_BACKEND_H
#define SYSTEM_MEMORY_BACKEND_H

#include "qemu/osdep.h"

typedef struct MemoryBackend {
    char *id;
    char *type;     /* "memory-backend-ram", "-file" or "-memfd" */
    uint64_t size;  /* bytes */
    char *mem_path; /* memory-backend-file only */
    bool share;     /* MAP_SHARED (default: on for memfd, off otherwise) */
} MemoryBackend;

/* Parses one -object argument and records the backend. */
bool memory_backend_create(const char *opts, GError **errp);
MemoryBackend *memory_backend_find(const char *id);
/*
 * Opens the backing store: *fd is a descriptor sized for the backend
 * (file, memfd) or -1 for anonymous memory; *shared says how to map it.
 * The caller owns *fd.
 */
bool memory_backend_open(MemoryBackend *mb, int *fd, bool *shared,
                         GError **errp);
void memory_backends_free(void);

#endif
