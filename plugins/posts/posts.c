/* The posts plugin: categories and posts. */
#include "../forum_plugin.h"

static int init(forum_plugin_t *p, const forum_api_t *api)
{
    (void)p;
    (void)api;
    return 0;
}

FORUM_EXPORT const forum_plugin_desc_t forum_plugin = {
    .abi = FORUM_PLUGIN_ABI,
    .name = "posts",
    .version = "0.1.0",
    .init = init,
};
