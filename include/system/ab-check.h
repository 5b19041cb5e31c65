/*
 * The a-b workload's pattern and its checker. The workload keeps one byte
 * at the start of every 4 KiB page in [AB_START, AB_END) of pc.ram (or up to
 * the end of a smaller pc.ram) and increments them in address order, so a
 * consistent copy of guest RAM has all those bytes equal except at most one
 * step down by exactly one, where the loop was when the vCPU stopped.
 */
#ifndef SYSTEM_AB_CHECK_H
#define SYSTEM_AB_CHECK_H

#include "qemu/osdep.h"

#define AB_START (1 * MiB)
#define AB_END   (100 * MiB)

/*
 * Checks a copy of pc.ram (ram_size bytes). On failure appends the first
 * few differences to report (when non-NULL) and returns false.
 */
bool ab_check(const uint8_t *ram, uint64_t ram_size, GString *report);

#endif
