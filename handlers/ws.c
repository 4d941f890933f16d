/* GET /ws: checks the session and the origin, then hands the connection to the hub. */
#include <stdlib.h>
#include <string.h>
#include <h2o/websocket.h> /* h2o_is_websocket_handshake */
#include "../core/forum.h"

/* An upgrade whose session is being looked up; the lookup may suspend (PostgreSQL) while the client goes. */
typedef struct upgrade {
    h2o_req_t *req; /* NULL once h2o disposed of the request */
    const char *client_key;
    int refs; /* the request's pool and the lookup */
} upgrade_t;

static void upgrade_release(upgrade_t *u)
{
    if (--u->refs == 0)
        free(u);
}

static void on_disposed(void *p)
{
    upgrade_t *u = *(upgrade_t **)p;
    u->req = NULL;
    upgrade_release(u);
}

static void upgrade_on_fiber(void *arg)
{
    upgrade_t *u = arg;
    forum_session_t session;
    int found = forum_session_of_request(u->req, &session);
    h2o_req_t *req = u->req;
    const char *client_key = u->client_key;

    upgrade_release(u);
    if (req == NULL)
        return; /* the client went while its session was looked up */
    switch (found) {
    case 0:
        break;
    case -2:
        forum_send_db_error(req, "the session could not be looked up");
        return;
    default:
        forum_send_error(req, 401, "unauthorized", "log in first", NULL);
        return;
    }
    if (forum_server.shutting_down) {
        forum_send_error(req, 503, "unavailable", "the server is restarting", NULL);
        return;
    }
    const char *bad_query;
    if (forum_query_check(req, &bad_query) != 0) {
        forum_send_error(req, 400, "bad_request", "a query parameter is not valid percent-encoded UTF-8 text", bad_query);
        return;
    }
    const char *query = req->query_at != SIZE_MAX ? h2o_strdup(&req->pool, req->path.base + req->query_at + 1,
                                                                 req->path.len - req->query_at - 1).base
                                                  : "";
    forum_hub_upgrade(req, client_key, &session, query);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    const char *client_key;
    (void)self;

    if (!h2o_memis(req->path_normalized.base, req->path_normalized.len, H2O_STRLIT("/ws")))
        return -1;
    /* h2o 2.2 upgrades HTTP/1.1 only; browsers open wss:// over a separate HTTP/1.1 connection */
    if (req->version >= 0x200) {
        forum_send_error(req, 400, "bad_request", "WebSocket needs HTTP/1.1", NULL);
        return 0;
    }
    if (h2o_is_websocket_handshake(req, &client_key) != 0 || client_key == NULL) {
        forum_send_error(req, 400, "bad_request", "expected a WebSocket handshake", NULL);
        return 0;
    }
    ssize_t version = h2o_find_header_by_str(&req->headers, H2O_STRLIT("sec-websocket-version"), -1);
    if (version == -1 || !h2o_memis(req->headers.entries[version].value.base, req->headers.entries[version].value.len,
                                    H2O_STRLIT("13"))) {
        /* the only version h2o speaks; RFC 6455 4.4: 426 and the version the server does speak */
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("sec-websocket-version"), 0, NULL, H2O_STRLIT("13"));
        forum_send_error(req, 426, "upgrade_required", "WebSocket version 13 only", NULL);
        return 0;
    }
    if (!forum_same_origin(req)) {
        forum_send_error(req, 403, "forbidden", "cross-origin WebSocket refused", NULL);
        return 0;
    }
    upgrade_t *u = malloc(sizeof(*u));
    if (u == NULL)
        h2o_fatal("no memory");
    *u = (upgrade_t){req, client_key, 2};
    *(upgrade_t **)h2o_mem_alloc_shared(&req->pool, sizeof(upgrade_t *), on_disposed) = u;
    forum_fiber_run(upgrade_on_fiber, u);
    return 0;
}

void forum_ws_handler_register(h2o_pathconf_t *pathconf)
{
    h2o_handler_t *self = h2o_create_handler(pathconf, sizeof(*self));
    self->on_req = on_req;
}
