/*
 * Mutexes and condition variables on top of pthreads.
 *
 * GLib's QemuMutex and QemuCond are built on raw futexes, which ThreadSanitizer
 * cannot see: every hand-off through them would look like a data race.
 * These wrappers keep GLib's shape (zero-initialised statics work, deadlines
 * are g_get_monotonic_time() microseconds) while staying visible to TSan.
 */
#ifndef QEMU_THREAD_H
#define QEMU_THREAD_H

#include <pthread.h>

typedef struct QemuMutex {
    pthread_mutex_t m;
} QemuMutex;

typedef struct QemuRecMutex {
    pthread_mutex_t m;
    int ready; /* set up on first lock */
} QemuRecMutex;

typedef struct QemuCond {
    pthread_cond_t c;
} QemuCond;

/* A zeroed QemuMutex or QemuCond is ready to use; these exist for symmetry. */
void qemu_mutex_init(QemuMutex *mutex);
void qemu_mutex_destroy(QemuMutex *mutex);
void qemu_mutex_lock(QemuMutex *mutex);
void qemu_mutex_unlock(QemuMutex *mutex);

void qemu_rec_mutex_lock(QemuRecMutex *mutex);
void qemu_rec_mutex_unlock(QemuRecMutex *mutex);

void qemu_cond_init(QemuCond *cond);
void qemu_cond_destroy(QemuCond *cond);
void qemu_cond_signal(QemuCond *cond);
void qemu_cond_broadcast(QemuCond *cond);
void qemu_cond_wait(QemuCond *cond, QemuMutex *mutex);
/*
 * Waits until signalled or until end_time (g_get_monotonic_time() scale);
 * returns false when the deadline passed, like qemu_cond_wait_until().
 */
bool qemu_cond_wait_until(QemuCond *cond, QemuMutex *mutex, gint64 end_time);

#endif /* QEMU_THREAD_H */
