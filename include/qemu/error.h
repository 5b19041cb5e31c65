/*
 * Errors are GErrors in the MINIVM_ERROR domain. The code is the QMP error
 * class the monitor reports, so a handler that fails picks the class once
 * and the dispatcher never guesses it.
 *
 * The error_setg() family mirrors QEMU's names so that code reads the same;
 * every helper accepts a NULL errp.
 */
#ifndef QEMU_ERROR_H
#define QEMU_ERROR_H

#include <glib.h>

#define MINIVM_ERROR (minivm_error_quark())
GQuark minivm_error_quark(void);

typedef enum {
    ERROR_CLASS_GENERIC_ERROR = 0,
    ERROR_CLASS_COMMAND_NOT_FOUND,
    ERROR_CLASS_DEVICE_NOT_FOUND,
} ErrorClass;

/* "GenericError", "CommandNotFound", "DeviceNotFound". */
const char *error_class_name(int code);

#define error_setg(errp, ...)                                                  \
    g_set_error((errp), MINIVM_ERROR, ERROR_CLASS_GENERIC_ERROR, __VA_ARGS__)

#define error_set(errp, cls, ...)                                              \
    g_set_error((errp), MINIVM_ERROR, (cls), __VA_ARGS__)

/* Like error_setg(), then appends ": " and strerror(os_errno). */
void error_setg_errno(GError **errp, int os_errno, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

/* Prefixes an existing error's message (QEMU's error_prepend). */
void error_prepend(GError **errp, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

#define error_propagate(dst, src) g_propagate_error((dst), (src))

#endif
