/* A plugin whose init registers a route and then fails: the host must refuse it and keep none of it. */
#include "forum_plugin.h"

static int never(forum_req_t *req)
{
    (void)req;
    return 0;
}

static int init(forum_plugin_t *p, const forum_api_t *api)
{
    api->route(p, "GET", "/api/init_fails", FORUM_ROUTE_PUBLIC, never);
    return -1;
}

FORUM_EXPORT const forum_plugin_desc_t forum_plugin = {
    .abi = FORUM_PLUGIN_ABI,
    .name = "init_fails",
    .version = "1.0.0",
    .init = init,
};
