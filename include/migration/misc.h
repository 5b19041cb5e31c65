/* What the rest of minivm needs from migration/. */
#ifndef MIGRATION_MISC_H
#define MIGRATION_MISC_H

#include "qemu/osdep.h"

/* Creates the migration state and registers the "ram" and globalstate
 * handlers; called once by main() after RAM blocks exist. */
void migration_object_init(void);
/* -incoming URI, or "defer" to wait for migrate-incoming. */
bool migration_incoming_setup(const char *uri, GError **errp);
/* Cancels a running migration and joins its threads (at exit). */
void migration_shutdown(void);
/* True while an outgoing or incoming migration is in progress. */
bool migration_is_running(void);

#endif
