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
/* Runs fn(opaque) on the main loop thread, under the BQL, soon. */
void main_loop_invoke(GSourceFunc fn, gpointer opaque);
/* Wakes the main loop (after a shutdown request). */
void main_loop_wakeup(void);

#endif
