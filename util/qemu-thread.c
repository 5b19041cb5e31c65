/*
 * pthread-backed locks; see include/qemu/thread.h for why not QemuMutex.
 */
#include "qemu/osdep.h"
#include "qemu/thread.h"

#include <time.h>

static void check(int err, const char *what)
{
    if (err) {
        /* A failing lock primitive means corrupted state: nothing to save. */
        g_error("%s: %s", what, g_strerror(err));
    }
}

void qemu_mutex_init(QemuMutex *mutex)
{
    check(pthread_mutex_init(&mutex->m, NULL), "pthread_mutex_init");
}

void qemu_mutex_destroy(QemuMutex *mutex)
{
    check(pthread_mutex_destroy(&mutex->m), "pthread_mutex_destroy");
}

void qemu_mutex_lock(QemuMutex *mutex)
{
    check(pthread_mutex_lock(&mutex->m), "pthread_mutex_lock");
}

void qemu_mutex_unlock(QemuMutex *mutex)
{
    check(pthread_mutex_unlock(&mutex->m), "pthread_mutex_unlock");
}

static pthread_mutex_t rec_init_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * A recursive mutex cannot be zero-initialised, so the first locker sets it
 * up (double-checked: the flag is published with release order).
 */
static void rec_mutex_setup(QemuRecMutex *mutex)
{
    pthread_mutex_lock(&rec_init_lock);
    if (mutex->ready == 0) {
        pthread_mutexattr_t attr;

        pthread_mutexattr_init(&attr);
        pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
        check(pthread_mutex_init(&mutex->m, &attr), "pthread_mutex_init");
        pthread_mutexattr_destroy(&attr);
        __atomic_store_n(&mutex->ready, 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&rec_init_lock);
}

void qemu_rec_mutex_lock(QemuRecMutex *mutex)
{
    if (!__atomic_load_n(&mutex->ready, __ATOMIC_ACQUIRE)) {
        rec_mutex_setup(mutex);
    }
    check(pthread_mutex_lock(&mutex->m), "pthread_mutex_lock");
}

void qemu_rec_mutex_unlock(QemuRecMutex *mutex)
{
    check(pthread_mutex_unlock(&mutex->m), "pthread_mutex_unlock");
}

void qemu_cond_init(QemuCond *cond)
{
    check(pthread_cond_init(&cond->c, NULL), "pthread_cond_init");
}

void qemu_cond_destroy(QemuCond *cond)
{
    check(pthread_cond_destroy(&cond->c), "pthread_cond_destroy");
}

void qemu_cond_signal(QemuCond *cond)
{
    check(pthread_cond_signal(&cond->c), "pthread_cond_signal");
}

void qemu_cond_broadcast(QemuCond *cond)
{
    check(pthread_cond_broadcast(&cond->c), "pthread_cond_broadcast");
}

void qemu_cond_wait(QemuCond *cond, QemuMutex *mutex)
{
    check(pthread_cond_wait(&cond->c, &mutex->m), "pthread_cond_wait");
}

bool qemu_cond_wait_until(QemuCond *cond, QemuMutex *mutex, gint64 end_time)
{
    struct timespec ts = {
        .tv_sec = end_time / G_USEC_PER_SEC,
        .tv_nsec = (end_time % G_USEC_PER_SEC) * 1000,
    };
    int err;

    /*
     * g_get_monotonic_time() reads CLOCK_MONOTONIC, so the deadline can be
     * handed to pthread_cond_clockwait() as is.
     */
    err = pthread_cond_clockwait(&cond->c, &mutex->m, CLOCK_MONOTONIC, &ts);
    if (err == ETIMEDOUT) {
        return false;
    }
    check(err, "pthread_cond_clockwait");
    return true;
}
