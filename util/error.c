/* GError helpers shared by every subsystem; see include/qemu/error.h. */
#include "qemu/osdep.h"

/*
 * Not G_DEFINE_QUARK: its cached quark is a plain static that every thread
 * reporting its first error may write at once (a data race, if a harmless
 * one, that ThreadSanitizer reports). An atomic cache is just as cheap.
 */
GQuark minivm_error_quark(void)
{
    static GQuark quark;
    GQuark q = __atomic_load_n(&quark, __ATOMIC_RELAXED);

    if (G_UNLIKELY(!q)) {
        /* Thread-safe, and returns the same quark to every caller. */
        q = g_quark_from_static_string("minivm-error-quark");
        __atomic_store_n(&quark, q, __ATOMIC_RELAXED);
    }
    return q;
}

const char *error_class_name(int code)
{
    switch (code) {
    case ERROR_CLASS_COMMAND_NOT_FOUND:
        return "CommandNotFound";
    case ERROR_CLASS_DEVICE_NOT_FOUND:
        return "DeviceNotFound";
    default:
        return "GenericError";
    }
}

void error_setg_errno(GError **errp, int os_errno, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    if (!errp) {
        return;
    }
    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(errp, MINIVM_ERROR, ERROR_CLASS_GENERIC_ERROR, "%s: %s", msg,
                g_strerror(os_errno));
}

void error_prepend(GError **errp, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *prefix = NULL;
    char *joined;

    if (!errp || !*errp) {
        return;
    }
    va_start(ap, fmt);
    prefix = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    joined = g_strconcat(prefix, (*errp)->message, NULL);
    g_free((*errp)->message);
    (*errp)->message = joined;
}
