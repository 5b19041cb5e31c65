/*
 * The a-b checker (see include/system/ab-check.h). It runs on a stopped
 * guest's memory, in tests and in the tools that read migration files.
 */
#include "qemu/osdep.h"
#include "system/ab-check.h"

/* Differences listed in a report before it says "...". */
#define AB_REPORT_MAX 8

bool ab_check(const uint8_t *ram, uint64_t ram_size, GString *report)
{
    uint64_t end = QEMU_ALIGN_DOWN(MIN(ram_size, AB_END), TARGET_PAGE_SIZE);
    uint64_t addr, step_addr = 0;
    unsigned bad = 0;
    bool stepped = false;
    uint8_t prev;

    if (end <= AB_START) {
        return true;
    }
    prev = ram[AB_START];
    for (addr = AB_START + TARGET_PAGE_SIZE; addr < end;
         addr += TARGET_PAGE_SIZE) {
        uint8_t cur = ram[addr];

        if (cur == prev) {
            continue;
        }
        if (cur == (uint8_t)(prev - 1) && !stepped) {
            /* Where the loop was: the one allowed step down. */
            stepped = true;
            step_addr = addr;
        } else {
            if (report && bad < AB_REPORT_MAX) {
                g_string_append_printf(report,
                                       "page 0x%" PRIx64 ": byte %u after %u\n",
                                       addr, cur, prev);
            }
            bad++;
        }
        prev = cur;
    }
    if (bad && report) {
        if (bad > AB_REPORT_MAX) {
            g_string_append_printf(report, "... %u differences in all\n", bad);
        }
        if (stepped) {
            g_string_append_printf(
                report, "(the loop's step down is at page 0x%" PRIx64 ")\n",
                step_addr);
        }
    }
    return bad == 0;
}
