/*
 * The main loop: the default GMainContext, polled with the BQL dropped and
 * dispatched with it held, so every monitor command and timer runs under
 * the BQL. Other threads hand work to it with main_loop_invoke().
 */
#ifndef SYSTEM_MAIN_LOOP_H
#define SYSTEM_MAIN_LOOP_H

#include "qemu/osdep.h"

void main_loop_init(void);
/* Runs until qemu_system_shutdown_request(). */
void main_loop_run(void);
/*
 * Runs fn(opaque) on the main loop thread, under the BQL, soon; never on
 * the calling thread. Callable from any thread; callbacks run in the order
 * queued, and everything the caller did before the call happens-before fn
 * (a pthread mutex, so ThreadSanitizer sees it too).
 */
void main_loop_invoke(GSourceFunc fn, gpointer opaque);
/* Wakes the main loop (after a shutdown request). */
void main_loop_wakeup(void);

#endif
