/* GET /_status: version, uptime, connections, open descriptors and plugin generations; loopback peers only unless configured. */
#include <dirent.h>
#include <string.h>
#include "../core/forum.h"

/* the client's address: behind a local trusted proxy every peer is loopback, the client need not be */
static int is_loopback(h2o_req_t *req)
{
    forum_client_t client;
    forum_client_of(req, &client);
    return client.has_addr && forum_ip_is_loopback(client.addr);
}

/* The process's open descriptors (the directory's own excluded), or -1 without /proc: a leak shows here first. */
static long long count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    long long n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            ++n;
    closedir(d);
    return n - 1;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    if (!h2o_memis(req->path_normalized.base, req->path_normalized.len, H2O_STRLIT("/_status")))
        return -1;
    if (!forum_server.conf->status.allow_remote && !is_loopback(req)) {
        forum_send_error(req, 404, "not_found", "no such route", NULL);
        return 0;
    }
    size_t ws = forum_hub_count();
    yajl_gen g = forum_json_gen();
    yajl_gen_map_open(g);
    forum_json_str(g, "version");
    forum_json_str(g, FORUM_VERSION);
    forum_json_str(g, "uptime_s");
    yajl_gen_integer(g, (forum_now_ms() - forum_server.started_ms) / 1000);
    forum_json_str(g, "connections");
    yajl_gen_map_open(g);
    forum_json_str(g, "http");
    yajl_gen_integer(g, (long long)(forum_server.num_sockets > ws ? forum_server.num_sockets - ws : 0));
    forum_json_str(g, "websocket");
    yajl_gen_integer(g, (long long)ws);
    yajl_gen_map_close(g);
    forum_json_str(g, "fds");
    long long fds = count_fds();
    if (fds >= 0)
        yajl_gen_integer(g, fds);
    else
        yajl_gen_null(g);
    forum_bus_status(g);
    forum_json_str(g, "database");
    yajl_gen_map_open(g);
    forum_db_status(g);
    yajl_gen_map_close(g);
    forum_json_str(g, "plugins");
    forum_plugins_status(g);
    yajl_gen_map_close(g);
    forum_send_json(req, 200, g);
    yajl_gen_free(g);
    return 0;
}

void forum_status_handler_register(h2o_pathconf_t *pathconf)
{
    h2o_handler_t *self = h2o_create_handler(pathconf, sizeof(*self));
    self->on_req = on_req;
}
