/*
 * The "globalstate" device: carries the source's run state to the
 * destination, which resumes only when it reads "running".
 *
 * Wire layout (QEMU's): be32 size = length of the name including its NUL,
 * then the name in a 32-byte NUL-padded buffer.
 */
#include "qemu/osdep.h"

#include "migration/global-state.h"
#include "migration/vmstate.h"
#include "system/runstate.h"

#define GLOBAL_STATE_NAME_SIZE 32

typedef struct GlobalState {
    uint32_t size;
    uint8_t runstate[GLOBAL_STATE_NAME_SIZE];
    bool stored;   /* global_state_store() captured runstate */
    int received;  /* RunState from the last load, or -1 */
} GlobalState;

static GlobalState global_state = { .received = -1 };

static void global_state_set_name(GlobalState *s, RunState state)
{
    memset(s->runstate, 0, sizeof(s->runstate));
    /* Run state names are short; leave room for the NUL regardless. */
    g_strlcpy((char *)s->runstate, runstate_name(state), sizeof(s->runstate));
}

void global_state_store(void)
{
    global_state_set_name(&global_state, runstate_get());
    global_state.stored = true;
}

void global_state_reset_received(void)
{
    global_state.received = -1;
}

int global_state_received_runstate(void)
{
    return global_state.received;
}

static int global_state_pre_save(void *opaque)
{
    GlobalState *s = opaque;

    if (!s->stored) {
        global_state_set_name(s, runstate_get());
    }
    s->size = strnlen((char *)s->runstate, sizeof(s->runstate)) + 1;
    /* The next migration captures its own state. */
    s->stored = false;
    return 0;
}

static int global_state_post_load(void *opaque, int version_id)
{
    GlobalState *s = opaque;
    int state;

    /* An unterminated name is corrupt input, not a run state. */
    if (strnlen((char *)s->runstate, sizeof(s->runstate)) ==
        sizeof(s->runstate)) {
        return -EINVAL;
    }
    state = runstate_from_name((char *)s->runstate);
    if (state < 0) {
        return -EINVAL;
    }
    s->received = state;
    return 0;
}

static const VMStateDescription vmstate_globalstate = {
    .name = "globalstate",
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = global_state_pre_save,
    .post_load = global_state_post_load,
    .fields = (const VMStateField[]){
        VMSTATE_UINT32(size, GlobalState),
        VMSTATE_BUFFER(runstate, GlobalState),
        VMSTATE_END_OF_LIST(),
    },
};

void global_state_register(void)
{
    vmstate_register("globalstate", 0, &vmstate_globalstate, &global_state);
}
