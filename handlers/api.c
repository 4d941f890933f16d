/*
 * The trampoline: the one h2o handler behind /api/. It matches the route against the current plugin
 * generations, applies the rules every route shares (origin, session, JSON body), pins the owning
 * generation for the request's lifetime and calls the plugin.
 *
 * A forum_req_t outlives its HTTP request when a plugin answers later (work_queue): the request's
 * pool holds one reference and drops it when h2o disposes the request; every job holds another.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../core/forum.h"

struct forum_req {
    h2o_req_t *h2o; /* NULL once h2o has disposed the request */
    size_t refs;
    forum_plugin_t *plugin;
    forum_route_fn fn;    /* the route, run again when its write met a brief lock */
    int64_t retry_since;  /* monotonic ms of the first retry, 0 before */
    unsigned retry_ms;
    int in_route;         /* the route's own call is running (not a completion after work_queue) */
    int route_flags;      /* FORUM_ROUTE_* */
    size_t num_params;
    struct {
        const char *name; /* points into the route, which the pinned generation keeps */
        char *value;
    } params[FORUM_MAX_PARAMS];
    yajl_val body;
    yajl_gen gen;
    int gen_status;
    int answered;
    int has_session;
    forum_session_t session;
    char peer[64];
};

void forum_req_hold(forum_req_t *req)
{
    ++req->refs;
}

void forum_req_release(forum_req_t *req)
{
    if (--req->refs != 0)
        return;
    for (size_t i = 0; i != req->num_params; ++i)
        free(req->params[i].value);
    if (req->body != NULL)
        yajl_tree_free(req->body);
    if (req->gen != NULL)
        yajl_gen_free(req->gen);
    forum_plugin_unpin(req->plugin);
    free(req);
}

static void on_h2o_req_disposed(void *p)
{
    forum_req_t *req = *(forum_req_t **)p;
    req->h2o = NULL;
    forum_req_release(req);
}

const char *forum_req_param(forum_req_t *req, const char *name)
{
    for (size_t i = 0; i != req->num_params; ++i)
        if (strcmp(req->params[i].name, name) == 0)
            return req->params[i].value;
    return NULL;
}

const char *forum_req_query(forum_req_t *req, const char *name)
{
    return req->h2o != NULL ? forum_query_param(req->h2o, name) : NULL;
}

yajl_val forum_req_body(forum_req_t *req)
{
    return req->body;
}

int64_t forum_req_user(forum_req_t *req)
{
    return req->has_session ? req->session.user_id : 0;
}

const char *forum_req_peer(forum_req_t *req)
{
    return req->peer;
}

int forum_req_alive(forum_req_t *req)
{
    return req->h2o != NULL && !req->answered;
}

/* Marks the request answered; false when the answer must be dropped (already answered, or the client left). */
static int take_answer(forum_req_t *req)
{
    if (req->answered) {
        forum_log(FORUM_LOG_ERROR, "plugin %s answered a request twice", forum_plugin_name(req->plugin));
        return 0;
    }
    req->answered = 1;
    return req->h2o != NULL;
}

yajl_gen forum_res_json_begin(forum_req_t *req, int status)
{
    if (req->gen == NULL)
        req->gen = forum_json_gen();
    else
        yajl_gen_clear(req->gen);
    yajl_gen_reset(req->gen, NULL);
    req->gen_status = status;
    return req->gen;
}

void forum_res_json_end(forum_req_t *req)
{
    if (take_answer(req))
        forum_send_json(req->h2o, req->gen_status, req->gen);
    /* the answer was copied into the request: its generator's buffer is not held while a slow client reads */
    yajl_gen_free(req->gen);
    req->gen = NULL;
}

void forum_res_json_raw(forum_req_t *req, int status, const char *json, size_t len)
{
    if (take_answer(req))
        forum_send_json_bytes(req->h2o, status, json, len);
}

void forum_res_error(forum_req_t *req, int status, const char *code, const char *message, const char *field)
{
    if (take_answer(req))
        forum_send_error(req->h2o, status, code, message, field);
}

void forum_res_empty(forum_req_t *req, int status)
{
    if (!take_answer(req))
        return;
    req->h2o->res.status = status;
    req->h2o->res.reason = status == 204 ? "No Content" : "OK";
    /* a 204 is framed by its status and carries no Content-Length (RFC 9110 8.6); any other empty answer needs its
     * length of 0, or h2o closes the connection after it */
    if (status != 204)
        req->h2o->res.content_length = 0;
    h2o_send_inline(req->h2o, "", 0);
}

void forum_res_header(forum_req_t *req, const char *name, const char *value)
{
    h2o_req_t *h = req->h2o;
    if (h == NULL || req->answered)
        return;
    if (strpbrk(name, "\r\n: ") != NULL || strpbrk(value, "\r\n") != NULL || *name == '\0') {
        forum_log(FORUM_LOG_ERROR, "plugin %s: refused response header \"%s\"", forum_plugin_name(req->plugin), name);
        return;
    }
    /* h2o keeps pointers: both strings are copied into the request's pool; HTTP/2 wants lower-case names */
    h2o_iovec_t n = h2o_strdup(&h->pool, name, SIZE_MAX), v = h2o_strdup(&h->pool, value, SIZE_MAX);
    h2o_strtolower(n.base, n.len);
    h2o_add_header_by_str(&h->pool, &h->res.headers, n.base, n.len, 1, NULL, v.base, v.len);
}

/*
 * A route whose write met another connection's lock runs again a little later instead of answering
 * 503, for as long as RETRY_WINDOW_MS: an operator's short write costs the client a pause, not an error,
 * and the loop waits for nothing meanwhile. It is the client's own retry, made for it: res_db_error's
 * contract (nothing was written) is what makes it safe. Only a failure inside the route's own call is
 * retried: a completion after work_queue answers 503 at once, since running its route again would redo
 * what came before it (a password hash, a rate limiter's charge).
 */
enum { RETRY_FIRST_MS = 5, RETRY_MAX_MS = 100, RETRY_WINDOW_MS = 1000 };

typedef struct retry {
    uv_timer_t timer;
    forum_req_t *req;
} retry_t;

static void retry_closed(uv_handle_t *h)
{
    free(h->data);
}

static void retry_on_fiber(void *arg)
{
    forum_req_t *req = arg;
    if (forum_req_alive(req)) {
        req->in_route = 1;
        req->fn(req);
        req->in_route = 0;
    }
    forum_req_release(req);
}

static void retry_run(uv_timer_t *timer)
{
    retry_t *r = timer->data;
    forum_req_t *req = r->req;
    uv_close((uv_handle_t *)timer, retry_closed);
    forum_fiber_run(retry_on_fiber, req);
}

int forum_req_retry(forum_req_t *req)
{
    int64_t now = forum_mono_ms();
    if (!forum_req_alive(req) || !req->in_route || req->fn == NULL || forum_server.loop == NULL)
        return 0;
    if (req->retry_since == 0)
        req->retry_since = now;
    else if (now - req->retry_since >= RETRY_WINDOW_MS)
        return 0;
    req->retry_ms = req->retry_ms == 0 ? RETRY_FIRST_MS : req->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : req->retry_ms * 2;
    retry_t *r = malloc(sizeof(*r));
    if (r == NULL)
        return 0;
    r->req = req;
    uv_timer_init(forum_server.loop, &r->timer);
    r->timer.data = r;
    forum_req_hold(req);
    uv_timer_start(&r->timer, retry_run, req->retry_ms, 0);
    return 1;
}

static void set_cookie(forum_req_t *req, const char *token, unsigned max_age)
{
    char buf[256];
    forum_client_t client;
    /* Secure when the browser used https, also when a trusted proxy terminated it */
    forum_client_of(req->h2o, &client);
    snprintf(buf, sizeof(buf), "sid=%s; Path=/; Max-Age=%u; HttpOnly; SameSite=Lax%s", token, max_age,
             client.scheme == &H2O_URL_SCHEME_HTTPS ? "; Secure" : "");
    forum_res_header(req, "set-cookie", buf);
}

int forum_req_session_start(forum_req_t *req, int64_t user_id)
{
    char token[80];
    unsigned lifetime = forum_server.conf->limits.session_lifetime_s;
    if (req->h2o == NULL || forum_session_create(user_id, (int64_t)lifetime * 1000, token, &req->session) != 0)
        return -1;
    req->has_session = 1;
    set_cookie(req, token, lifetime);
    return 0;
}

int forum_req_session_end(forum_req_t *req)
{
    if (!req->has_session)
        return 0;
    /* a session whose row is still there is still valid: nothing is closed or cleared */
    if (forum_session_delete(req->session.hash) != 0)
        return -1;
    forum_hub_close_session(req->session.user_id, req->session.hash, 1008, "logged out");
    req->has_session = 0;
    if (req->h2o != NULL)
        set_cookie(req, "", 0);
    return 0;
}

/* True when the request carries a body whose media type is application/json (parameters allowed). */
static int is_json(h2o_req_t *req)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (i == -1)
        return 0;
    h2o_iovec_t v = req->headers.entries[i].value;
    size_t n = 0;
    while (n < v.len && v.base[n] != ';' && v.base[n] != ' ')
        ++n;
    return h2o_lcstris(v.base, n, H2O_STRLIT("application/json"));
}

static int is_safe_method(h2o_iovec_t m)
{
    return h2o_memis(m.base, m.len, H2O_STRLIT("GET")) || h2o_memis(m.base, m.len, H2O_STRLIT("HEAD"));
}

/* The client's address, not a trusted proxy's: the limiters count clients */
static void fill_peer(forum_req_t *req, h2o_req_t *h)
{
    forum_client_t client;
    forum_client_of(h, &client);
    snprintf(req->peer, sizeof(req->peer), "%s", client.text);
}

/*
 * The session, the body, then the route: on a fiber of its own, since looking the session up may suspend
 * (PostgreSQL) while the loop serves others, and the client may go meanwhile (req->h2o becomes NULL).
 */
static void route_on_fiber(void *arg)
{
    forum_req_t *req = arg;
    int found = forum_session_of_request(req->h2o, &req->session);
    h2o_req_t *h = req->h2o;

    if (h == NULL)
        goto Done; /* the client went while its session was looked up */
    if (found == -2) {
        forum_send_db_error(h, "the session could not be looked up");
        goto Done;
    }
    req->has_session = found == 0;
    if (!req->has_session && !(req->route_flags & FORUM_ROUTE_PUBLIC)) {
        forum_send_error(h, 401, "unauthorized", "log in first", NULL);
        goto Done;
    }
    if (h->entity.len != 0) {
        char err[256];
        if (!is_json(h)) {
            forum_send_error(h, 415, "unsupported_media_type", "send the body as Content-Type: application/json", NULL);
            goto Done;
        }
        if ((req->body = forum_json_parse(h->entity.base, h->entity.len, err, sizeof(err))) == NULL) {
            forum_send_error(h, 400, "bad_request", err, NULL);
            goto Done;
        }
        if (!YAJL_IS_OBJECT(req->body)) {
            forum_send_error(h, 400, "bad_request", "the body must be a JSON object", NULL);
            goto Done;
        }
    }
    req->in_route = 1;
    req->fn(req);
    req->in_route = 0;
Done:
    forum_req_release(req);
}

static int on_req(h2o_handler_t *self, h2o_req_t *h)
{
    forum_route_match_t m;
    (void)self;

    /* routes match the raw path, so that an encoded '/' stays inside its segment; parameters are decoded after */
    h2o_iovec_t path = h2o_iovec_init(h->path.base, h->query_at != SIZE_MAX ? h->query_at : h->path.len);
    /* HEAD is answered as GET (h2o leaves the body out) */
    h2o_iovec_t method = h2o_memis(h->method.base, h->method.len, H2O_STRLIT("HEAD")) ? h2o_iovec_init(H2O_STRLIT("GET")) : h->method;
    switch (forum_plugins_route(method, path, &m)) {
    case 1:
        break;
    case -1:
        forum_send_error(h, 405, "method_not_allowed", "the route does not take this method", NULL);
        return 0;
    case -2:
        forum_send_error(h, 400, "bad_request", "the path has a \".\" or \"..\" segment", NULL);
        return 0;
    default:
        forum_send_error(h, 404, "not_found", "no such route", NULL);
        return 0;
    }
    /* the input gate: what reaches a plugin as a parameter or a query value is text */
    for (size_t i = 0; i != m.num_params; ++i) {
        h2o_iovec_t raw = m.params[i].value;
        char *out = h2o_mem_alloc_pool(&h->pool, raw.len + 1);
        ssize_t n = forum_route_decode(raw.base, raw.len, out);
        if (n < 0) {
            forum_send_error(h, 400, "bad_request", "a path parameter is not valid percent-encoded UTF-8 text", m.params[i].name);
            return 0;
        }
        m.params[i].value = h2o_iovec_init(out, (size_t)n);
    }
    const char *bad_query;
    if (forum_query_check(h, &bad_query) != 0) {
        forum_send_error(h, 400, "bad_request", "a query parameter is not valid percent-encoded UTF-8 text", bad_query);
        return 0;
    }
    if (!is_safe_method(h->method) && !forum_same_origin(h)) {
        forum_send_error(h, 403, "forbidden", "cross-origin request refused", NULL);
        return 0;
    }
    forum_req_t *req = calloc(1, sizeof(*req));
    if (req == NULL)
        h2o_fatal("no memory");
    req->h2o = h;
    req->refs = 1; /* the pool's */
    req->plugin = m.plugin;
    req->fn = m.fn;
    req->route_flags = m.flags;
    forum_plugin_pin(m.plugin);
    req->num_params = m.num_params;
    for (size_t i = 0; i != m.num_params; ++i) {
        req->params[i].name = m.params[i].name;
        req->params[i].value = h2o_strdup(NULL, m.params[i].value.base, m.params[i].value.len).base;
    }
    fill_peer(req, h);
    *(forum_req_t **)h2o_mem_alloc_shared(&h->pool, sizeof(forum_req_t *), on_h2o_req_disposed) = req;

    /* hold a reference across the call: answering may dispose the HTTP request at once */
    forum_req_hold(req);
    forum_fiber_run(route_on_fiber, req);
    return 0;
}

void forum_api_handler_register(h2o_pathconf_t *pathconf)
{
    h2o_handler_t *self = h2o_create_handler(pathconf, sizeof(*self));
    self->on_req = on_req;
}
