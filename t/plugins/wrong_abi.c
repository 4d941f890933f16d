/* A plugin built against a different ABI: the host must refuse it. */
#include "forum_plugin.h"

static int init(forum_plugin_t *p, const forum_api_t *api)
{
    (void)p;
    (void)api;
    return 0;
}

FORUM_EXPORT const forum_plugin_desc_t forum_plugin = {
    .abi = FORUM_PLUGIN_ABI + 41,
    .name = "wrong_abi",
    .version = "1.0.0",
    .init = init,
};
