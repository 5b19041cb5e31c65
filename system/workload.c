/*
 * Workload creation: "-workload NAME[,key=value...]" picks one of the
 * classes below, lets it take its options, rejects any it did not take and
 * registers its state as the "workload" device section.
 */
#include "qemu/osdep.h"
#include "migration/vmstate.h"
#include "system/opts.h"
#include "system/workload.h"

static const WorkloadClass *const workload_classes[] = {
    &workload_idle,
    &workload_ab,
    &workload_dirty,
    &workload_fill,
};

static const WorkloadClass *workload_class_find(const char *name)
{
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(workload_classes); i++) {
        if (strcmp(workload_classes[i]->name, name) == 0) {
            return workload_classes[i];
        }
    }
    return NULL;
}

Workload *workload_create(const char *spec, GError **errp)
{
    g_autofree char *name = NULL;
    g_autoptr(GHashTable) opts = NULL;
    const WorkloadClass *klass;
    Workload *wl;

    opts = opts_parse(spec ? spec : "idle", &name, errp);
    if (!opts) {
        error_prepend(errp, "-workload: ");
        return NULL;
    }
    klass = workload_class_find(name);
    if (!klass) {
        error_setg(errp,
                   "-workload: unknown workload '%s' (idle, a-b, dirty, fill)",
                   name);
        return NULL;
    }
    wl = g_malloc0(klass->instance_size);
    wl->klass = klass;
    if ((klass->init && !klass->init(wl, opts, errp)) ||
        !opts_check_empty(opts, name, errp)) {
        error_prepend(errp, "-workload: ");
        g_free(wl);
        return NULL;
    }
    if (klass->vmsd) {
        vmstate_register("workload", 0, klass->vmsd, wl);
    }
    return wl;
}
