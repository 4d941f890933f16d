/*
 * A plugin for the tests only: it exercises every service the core offers plugins (routes with
 * parameters, public routes, JSON bodies, sessions, the thread pool, migrations and the DAL, hub
 * frames, events and publishing), so that the core is tested before any feature plugin exists.
 * It is built into build/t-plugins and never loaded by the shipped configuration.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "forum_plugin.h"

#ifndef PROBE_VERSION
#define PROBE_VERSION "1.0.0"
#endif
#ifndef PROBE_ANSWER_MAX
#define PROBE_ANSWER_MAX 100 /* a variant narrows it, as a new version of a plugin may */
#endif

static const forum_api_t *api;
static forum_plugin_t *self;

static void str(yajl_gen g, const char *s)
{
    if (s == NULL)
        yajl_gen_null(g);
    else
        yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

static void value(yajl_gen g, yajl_val v)
{
    if (YAJL_IS_STRING(v)) {
        str(g, v->u.string);
    } else if (YAJL_IS_INTEGER(v)) {
        yajl_gen_integer(g, YAJL_GET_INTEGER(v));
    } else if (YAJL_IS_NUMBER(v)) {
        yajl_gen_double(g, YAJL_GET_DOUBLE(v));
    } else if (YAJL_IS_OBJECT(v)) {
        yajl_gen_map_open(g);
        for (size_t i = 0; i != v->u.object.len; ++i) {
            str(g, v->u.object.keys[i]);
            value(g, v->u.object.values[i]);
        }
        yajl_gen_map_close(g);
    } else if (YAJL_IS_ARRAY(v)) {
        yajl_gen_array_open(g);
        for (size_t i = 0; i != v->u.array.len; ++i)
            value(g, v->u.array.values[i]);
        yajl_gen_array_close(g);
    } else if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) {
        yajl_gen_bool(g, YAJL_IS_TRUE(v));
    } else {
        yajl_gen_null(g);
    }
}

static yajl_val member(yajl_val obj, const char *key)
{
    const char *path[] = {key, NULL};
    return obj != NULL ? yajl_tree_get(obj, path, yajl_t_any) : NULL;
}

static int whoami(forum_req_t *req)
{
    yajl_gen g = api->res_json_begin(req, 200);
    yajl_gen_map_open(g);
    str(g, "user");
    yajl_gen_integer(g, api->req_user(req));
    str(g, "version");
    str(g, PROBE_VERSION);
    yajl_gen_map_close(g);
    api->res_json_end(req);
    return 0;
}

static int login(forum_req_t *req)
{
    yajl_val id = member(api->req_body(req), "user_id");
    if (id == NULL || !YAJL_IS_INTEGER(id) || YAJL_GET_INTEGER(id) <= 0) {
        api->res_error(req, 422, "validation", "user_id must be a positive integer", "user_id");
        return 0;
    }
    if (api->session_start(req, YAJL_GET_INTEGER(id)) != 0) {
        api->res_error(req, 500, "internal", "could not start a session", NULL);
        return 0;
    }
    return whoami(req);
}

static int logout(forum_req_t *req)
{
    if (api->session_end(req) != 0) {
        if (FORUM_API_HAS(api, res_db_error))
            api->res_db_error(req, "the session could not be ended");
        else
            api->res_error(req, 500, "internal", "the session could not be ended", NULL);
        return 0;
    }
    api->res_empty(req, 204);
    return 0;
}

static int echo_params(forum_req_t *req)
{
    yajl_gen g = api->res_json_begin(req, 200);
    yajl_gen_map_open(g);
    str(g, "a");
    str(g, api->req_param(req, "a"));
    str(g, "b");
    str(g, api->req_param(req, "b"));
    str(g, "q");
    str(g, api->req_query(req, "q"));
    str(g, "user");
    yajl_gen_integer(g, api->req_user(req));
    yajl_gen_map_close(g);
    api->res_json_end(req);
    return 0;
}

static int echo_body(forum_req_t *req)
{
    yajl_gen g = api->res_json_begin(req, 200);
    yajl_gen_map_open(g);
    str(g, "body");
    if (api->req_body(req) != NULL)
        value(g, api->req_body(req));
    else
        yajl_gen_null(g);
    yajl_gen_map_close(g);
    api->res_json_end(req);
    return 0;
}

typedef struct nap {
    unsigned ms;
} nap_t;

static void nap_work(void *arg)
{
    usleep(((nap_t *)arg)->ms * 1000);
}

static void nap_done(void *arg, forum_req_t *req)
{
    nap_t *nap = arg;
    if (api->req_alive(req)) {
        yajl_gen g = api->res_json_begin(req, 200);
        yajl_gen_map_open(g);
        str(g, "slept_ms");
        yajl_gen_integer(g, nap->ms);
        str(g, "version");
        str(g, PROBE_VERSION);
        yajl_gen_map_close(g);
        api->res_json_end(req);
    }
    free(nap);
}

/* POST /api/probe/sleep {"ms": N}: answers after N ms spent on the thread pool */
static int sleep_route(forum_req_t *req)
{
    yajl_val ms = member(api->req_body(req), "ms");
    nap_t *nap = malloc(sizeof(*nap));
    nap->ms = ms != NULL && YAJL_IS_INTEGER(ms) && YAJL_GET_INTEGER(ms) >= 0 && YAJL_GET_INTEGER(ms) <= 10000
                  ? (unsigned)YAJL_GET_INTEGER(ms)
                  : 100;
    if (api->work_queue(self, req, nap_work, nap_done, nap) != 0) {
        free(nap);
        api->res_error(req, 503, "unavailable", "busy", NULL);
    }
    return 0;
}

/* POST /api/probe/items {"name": "..."}: stores a row, answers with every row */
static int add_item(forum_req_t *req)
{
    yajl_val name = member(api->req_body(req), "name");
    forum_stmt_t *s;
    if (name == NULL || !YAJL_IS_STRING(name)) {
        api->res_error(req, 422, "validation", "name must be a string", "name");
        return 0;
    }
    s = api->db_stmt("INSERT INTO probe_items (name, owner) VALUES (?, ?)");
    api->db_bind_text(s, 1, name->u.string, strlen(name->u.string));
    api->db_bind_int(s, 2, api->req_user(req));
    if (api->db_step(s) == FORUM_DB_CONSTRAINT) {
        api->res_error(req, 409, "conflict", "name taken", "name");
        return 0;
    }
    s = api->db_stmt("SELECT i.id, i.name, i.owner AS \"owner.id\", 'user' || i.owner AS \"owner.label\" FROM probe_items i ORDER BY i.id");
    yajl_gen g = api->res_json_begin(req, 201);
    yajl_gen_map_open(g);
    str(g, "items");
    yajl_gen_array_open(g);
    api->db_rows_json(s, g);
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    api->res_json_end(req);
    return 0;
}

/*
 * POST /api/probe/storage-full {"full": bool}: caps the loop connection's database at the pages it has
 * (PRAGMA max_page_count), so that every write needing one more page fails as a full disk would; false
 * lifts the cap. The number in the statement is the database's own page count, never the client's.
 */
static int storage_full(forum_req_t *req)
{
    yajl_val full = member(api->req_body(req), "full");
    char sql[64];
    int64_t pages = 4294967294LL;
    forum_stmt_t *s;
    if (full != NULL && YAJL_IS_TRUE(full)) {
        s = api->db_stmt("PRAGMA page_count");
        if (s == NULL || api->db_step(s) != FORUM_DB_ROW) {
            api->res_error(req, 500, "internal", "no page count", NULL);
            return 0;
        }
        pages = api->db_col_int(s, 0);
    }
    snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld", (long long)pages);
    s = api->db_stmt(sql);
    if (s == NULL || api->db_step(s) != FORUM_DB_ROW) {
        api->res_error(req, 500, "internal", "max_page_count refused", NULL);
        return 0;
    }
    yajl_gen g = api->res_json_begin(req, 200);
    yajl_gen_map_open(g);
    str(g, "max_page_count");
    yajl_gen_integer(g, api->db_col_int(s, 0));
    yajl_gen_map_close(g);
    api->res_json_end(req);
    return 0;
}

/*
 * POST /api/probe/db-sleep {"seconds": S, "statements": N}: a slow query, on PostgreSQL only. Runs N
 * statements (default 1) of S/N seconds each (pg_sleep), all on the one connection the request's fiber
 * holds until it ends, so a test can hold a connection longer than the statement timeout without any
 * statement reaching it (N > 1) or make one statement outlast it (N = 1). Public: without a cookie the
 * request touches the database only here. SQLite has no sleep that leaves the loop free: 404 there.
 */
static int db_sleep(forum_req_t *req)
{
    yajl_val body = api->req_body(req), seconds = member(body, "seconds"), statements = member(body, "statements");
    double total;
    long long n = 1;
    char each[32];

    if (api->db_backend() != FORUM_DB_POSTGRES) {
        api->res_error(req, 404, "not_found", "db-sleep needs the PostgreSQL backend", NULL);
        return 0;
    }
    total = YAJL_IS_DOUBLE(seconds) ? YAJL_GET_DOUBLE(seconds) : YAJL_IS_INTEGER(seconds) ? (double)YAJL_GET_INTEGER(seconds) : -1;
    if (total < 0 || total > 60) {
        api->res_error(req, 422, "validation", "seconds must be a number from 0 to 60", "seconds");
        return 0;
    }
    if (statements != NULL && (!YAJL_IS_INTEGER(statements) || (n = YAJL_GET_INTEGER(statements)) < 1 || n > 1000)) {
        api->res_error(req, 422, "validation", "statements must be an integer from 1 to 1000", "statements");
        return 0;
    }
    snprintf(each, sizeof(each), "%.6f", total / (double)n);
    for (long long i = 0; i != n; ++i) {
        forum_stmt_t *s = api->db_stmt("SELECT pg_sleep(CAST(? AS DOUBLE PRECISION))");
        api->db_bind_text(s, 1, each, strlen(each));
        if (api->db_step(s) != FORUM_DB_ROW) {
            api->res_db_error(req, "the sleep");
            return 0;
        }
    }
    yajl_gen g = api->res_json_begin(req, 200);
    yajl_gen_map_open(g);
    str(g, "seconds");
    yajl_gen_double(g, total);
    str(g, "statements");
    yajl_gen_integer(g, n);
    yajl_gen_map_close(g);
    api->res_json_end(req);
    return 0;
}

/* POST /api/probe/publish {"to": ID or absent, "text": "..."} */
static int publish(forum_req_t *req)
{
    yajl_val body = api->req_body(req), to = member(body, "to"), text = member(body, "text");
    yajl_gen g = yajl_gen_alloc(NULL);
    const unsigned char *buf;
    size_t len;

    yajl_gen_map_open(g);
    str(g, "type");
    str(g, "probe.note");
    str(g, "text");
    str(g, text != NULL && YAJL_IS_STRING(text) ? text->u.string : "");
    yajl_gen_map_close(g);
    yajl_gen_get_buf(g, &buf, &len);
    if (to != NULL && YAJL_IS_INTEGER(to))
        api->publish_user(YAJL_GET_INTEGER(to), (const char *)buf, len, 0);
    else
        api->publish_all((const char *)buf, len, 0);
    yajl_gen_free(g);
    api->res_empty(req, 204);
    return 0;
}

static void on_echo_frame(forum_ws_t *ws, yajl_val frame)
{
    yajl_val data = member(frame, "data");
    yajl_gen g = yajl_gen_alloc(NULL);
    const unsigned char *buf;
    size_t len;

    if (data == NULL) {
        api->ws_error(ws, "validation", "data is required", "probe.echo");
        yajl_gen_free(g);
        return;
    }
    yajl_gen_map_open(g);
    str(g, "type");
    str(g, "probe.echo");
    str(g, "user");
    yajl_gen_integer(g, api->ws_user(ws));
    str(g, "data");
    value(g, data);
    yajl_gen_map_close(g);
    yajl_gen_get_buf(g, &buf, &len);
    api->ws_send(ws, (const char *)buf, len, 0);
    yajl_gen_free(g);
}

static void on_hello(const forum_event_t *ev)
{
    str(ev->gen, "probe");
    yajl_gen_bool(ev->gen, 1);
}

static void on_open(const forum_event_t *ev)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    const unsigned char *buf;
    size_t len;
    yajl_gen_map_open(g);
    str(g, "type");
    str(g, "probe.open");
    str(g, "query");
    str(g, ev->query);
    str(g, "online");
    yajl_gen_bool(g, api->user_online(ev->user_id));
    yajl_gen_map_close(g);
    yajl_gen_get_buf(g, &buf, &len);
    api->ws_send(ev->ws, (const char *)buf, len, 0);
    yajl_gen_free(g);
}

/* GET /api/probe/settings: the declared settings as the typed getters give them */
static int settings_route(forum_req_t *req)
{
    yajl_gen g = api->res_json_begin(req, 200);
    yajl_gen_map_open(g);
    str(g, "answer");
    yajl_gen_integer(g, (long long)api->setting_uint(self, "answer"));
    str(g, "fail-init");
    yajl_gen_bool(g, api->setting_bool(self, "fail-init"));
    yajl_gen_map_close(g);
    api->res_json_end(req);
    return 0;
}

static const forum_setting_decl_t settings[] = {
    {.name = "fail-init", .type = FORUM_SETTING_BOOL, .def = 0},
    {.name = "answer", .type = FORUM_SETTING_UINT, .min = 1, .max = PROBE_ANSWER_MAX, .def = 5},
    {.name = NULL},
};

#ifdef PROBE_INIT_DEFER_MS
/*
 * The pin tests' variants: init defers a timer (and, with PROBE_INIT_FAILS, fails after it), so the
 * generation is pinned by a timer before the host has decided whether to keep it.
 */
static void deferred_again(void *arg)
{
    (void)arg;
}

static void queued_in_init(void *arg, forum_req_t *req)
{
    (void)req;
    api->log(FORUM_LOG_INFO, "probe %s: the job queued in init finished (slept %u ms)", PROBE_VERSION, ((nap_t *)arg)->ms);
    free(arg);
}

static void deferred_in_init(void *arg)
{
    api->log(FORUM_LOG_INFO, "probe %s: the timer deferred in init fired (%s)", PROBE_VERSION, (const char *)arg);
    free(arg);
    /* a refused generation may finish what it queued, but not queue more */
    api->log(FORUM_LOG_INFO, "probe %s: deferring again from the timer: %s", PROBE_VERSION,
             api->defer(self, 1, deferred_again, NULL) == 0 ? "accepted" : "refused");
}
#endif

static int init(forum_plugin_t *p, const forum_api_t *a)
{
    api = a;
    self = p;
#ifdef PROBE_INIT_DEFER_MS
    nap_t *nap = malloc(sizeof(*nap));
    nap->ms = PROBE_INIT_DEFER_MS / 2;
    if (api->defer(p, PROBE_INIT_DEFER_MS, deferred_in_init, strdup("its argument still allocated")) != 0 ||
        api->work_queue(p, NULL, nap_work, queued_in_init, nap) != 0)
        return -1;
#ifdef PROBE_INIT_FAILS
    return -1;
#endif
#endif
    if (api->version < 3 || !FORUM_API_HAS(api, setting_bool) || !FORUM_API_HAS(api, migration_for))
        return -1;
    if (api->setting_bool(p, "fail-init"))
        return -1;
    return api->route(p, "GET", "/api/probe/whoami", FORUM_ROUTE_PUBLIC, whoami) ||
           api->route(p, "GET", "/api/probe/settings", FORUM_ROUTE_PUBLIC, settings_route) ||
           api->route(p, "POST", "/api/probe/login", FORUM_ROUTE_PUBLIC, login) ||
           api->route(p, "POST", "/api/probe/logout", 0, logout) ||
           api->route(p, "GET", "/api/probe/echo/:a/:b", 0, echo_params) ||
           api->route(p, "POST", "/api/probe/echo", 0, echo_body) ||
           api->route(p, "POST", "/api/probe/sleep", 0, sleep_route) ||
           api->route(p, "POST", "/api/probe/items", 0, add_item) ||
           api->route(p, "POST", "/api/probe/publish", 0, publish) ||
           api->route(p, "POST", "/api/probe/storage-full", 0, storage_full) ||
           api->route(p, "POST", "/api/probe/db-sleep", FORUM_ROUTE_PUBLIC, db_sleep) ||
           api->on_frame(p, "probe.echo", on_echo_frame) ||
           api->on_event(p, "ws.hello", on_hello) ||
           api->on_event(p, "ws.open", on_open) ||
           api->migration_for(p, FORUM_DB_SQLITE, 1,
                              "CREATE TABLE probe_items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, owner INTEGER NOT NULL)") ||
           api->migration_for(p, FORUM_DB_POSTGRES, 1,
                              "CREATE TABLE probe_items (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
                              "name TEXT NOT NULL UNIQUE, owner BIGINT NOT NULL)");
}

FORUM_EXPORT const forum_plugin_desc_t forum_plugin = {
    .abi = FORUM_PLUGIN_ABI,
    .name = "probe",
    .version = PROBE_VERSION,
    .settings = settings,
    .init = init,
};
