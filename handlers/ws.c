/* GET /ws: checks the session and the origin, then hands the connection to the hub. */
#include <string.h>
#include <h2o/websocket.h> /* h2o_is_websocket_handshake */
#include "../core/forum.h"

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    const char *client_key;
    forum_session_t session;
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
    switch (forum_session_of_request(req, &session)) {
    case 0:
        break;
    case -2:
        forum_send_db_error(req, "the session could not be looked up");
        return 0;
    default:
        forum_send_error(req, 401, "unauthorized", "log in first", NULL);
        return 0;
    }
    if (forum_server.shutting_down) {
        forum_send_error(req, 503, "unavailable", "the server is restarting", NULL);
        return 0;
    }
    const char *bad_query;
    if (forum_query_check(req, &bad_query) != 0) {
        forum_send_error(req, 400, "bad_request", "a query parameter is not valid percent-encoded UTF-8 text", bad_query);
        return 0;
    }
    const char *query = req->query_at != SIZE_MAX ? h2o_strdup(&req->pool, req->path.base + req->query_at + 1,
                                                                 req->path.len - req->query_at - 1).base
                                                  : "";
    forum_hub_upgrade(req, client_key, &session, query);
    return 0;
}

void forum_ws_handler_register(h2o_pathconf_t *pathconf)
{
    h2o_handler_t *self = h2o_create_handler(pathconf, sizeof(*self));
    self->on_req = on_req;
}
