/*
 * The guest's serial port: bytes the workload prints go to the -serial
 * backend (stdio, file:PATH, or a unix socket server). Its vmstate carries
 * the count of bytes sent, so tests can see it survive migration.
 */
#ifndef SYSTEM_SERIAL_H
#define SYSTEM_SERIAL_H

#include "qemu/osdep.h"

/* "stdio", "file:PATH", "unix:PATH,server=on,wait=off", or "none". */
bool serial_init(const char *spec, GError **errp);
/* Called from vCPU threads; never blocks on a slow reader. */
void serial_write(const void *buf, size_t len);
void serial_putc(char c);
/* Bytes the guest has written since boot (carried by migration). */
uint64_t serial_bytes_sent(void);
/* Closes the backend (at exit): clients, listening socket and its path. */
void serial_cleanup(void);

#endif
