/* A plugin built for the previous ABI (2, whose data calls never suspended the callback): the host must refuse it. */
#include "forum_plugin.h"

static int init(forum_plugin_t *p, const forum_api_t *api)
{
    (void)p;
    (void)api;
    return 0;
}

FORUM_EXPORT const forum_plugin_desc_t forum_plugin = {
    .abi = 2,
    .name = "wrong_abi",
    .version = "1.0.0",
    .init = init,
};
