/*
 * The auth plugin: accounts. POST /api/auth/register, POST /api/auth/login, POST /api/auth/logout,
 * GET /api/auth/me, the user in every WebSocket hello, and `user.created` for every open client.
 */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include <libscrypt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "auth.h"

#ifndef PLUGIN_VERSION
#define PLUGIN_VERSION "1.0.0" /* a build may set another, as the swap tests do */
#endif

const forum_api_t *auth_api;
forum_plugin_t *auth_self;
#define api auth_api

/*
 * Failed logins are counted per client address and per account, in two tables: addresses are cheap to
 * come by and would otherwise push accounts out of a shared table, resetting their budgets. With several
 * nodes (a bus) every node counts in one place, Redis (api->shared_limit); this node's own table counts
 * when there is none, or while Redis is away.
 */
typedef struct limit {
    const char *name;
    auth_limiter_t *here;
    unsigned burst, window_s;
} limit_t;

static limit_t peer_limit = {"login-address", NULL, 0, 0}, account_limit = {"login-account", NULL, 0, 0},
               register_limit = {"register-address", NULL, 0, 0};

/* 0 when the attempt may go (it is counted), else the seconds to wait; *shared: where it was counted. */
static unsigned limit_reserve(limit_t *l, const char *key, uint8_t *shared)
{
    int64_t ms = FORUM_API_HAS(api, shared_limit) ? api->shared_limit(l->name, key, l->burst, (int64_t)l->window_s * 1000, 1) : -1;
    *shared = ms >= 0;
    if (ms < 0)
        return auth_limiter_reserve(l->here, key, api->mono_ms());
    return (unsigned)((ms + 999) / 1000);
}

/* Gives back an attempt where it was counted. */
static void limit_refund(limit_t *l, const char *key, uint8_t shared)
{
    if (!shared || api->shared_limit(l->name, key, l->burst, (int64_t)l->window_s * 1000, -1) < 0)
        auth_limiter_refund(l->here, key, api->mono_ms());
}

#define USER_COLUMNS "id, nickname, first_name, last_name, age, gender, email, created_at"

/* --- answers --- */

static void answer_error(forum_req_t *req, const auth_error_t *err)
{
    api->res_error(req, err->status, err->status == 400 ? "bad_request" : "validation", err->message, err->field);
}

static void answer_busy(forum_req_t *req)
{
    api->res_header(req, "retry-after", "1");
    api->res_error(req, 503, "unavailable", "too many sign-ins at once; try again in a moment", NULL);
}

static void answer_limited(forum_req_t *req, unsigned seconds)
{
    char buf[16];
    snprintf(buf, sizeof(buf), "%u", seconds != 0 ? seconds : 1);
    api->res_header(req, "retry-after", buf);
    api->res_error(req, 429, "rate_limited", "too many attempts; try again later", NULL);
}

/* Writes the user's own object; false when there is no such user. */
static int write_user(yajl_gen g, int64_t id)
{
    forum_stmt_t *s = api->db_stmt("SELECT " USER_COLUMNS " FROM users WHERE id = ?");
    if (s == NULL)
        return 0;
    api->db_bind_int(s, 1, id);
    if (api->db_step(s) != FORUM_DB_ROW)
        return 0;
    api->db_row_json(s, g);
    return 1;
}

static void answer_user(forum_req_t *req, int status, int64_t id)
{
    yajl_gen g = api->res_json_begin(req, status);
    yajl_gen_map_open(g);
    yajl_gen_string(g, (const unsigned char *)"user", 4);
    if (!write_user(g, id)) {
        api->res_error(req, 401, "unauthorized", "log in first", NULL);
        return;
    }
    yajl_gen_map_close(g);
    api->res_json_end(req);
}

static int taken(const char *sql, const char *value)
{
    forum_stmt_t *s = api->db_stmt(sql);
    api->db_bind_text(s, 1, value, strlen(value));
    return api->db_step(s) == FORUM_DB_ROW;
}

/*
 * A nickname is compared case-insensitively: COLLATE NOCASE on SQLite, citext on PostgreSQL. There a parameter
 * bound as text would make the comparison text's (case-sensitive), so it is cast to citext; on SQLite the cast is
 * one to TEXT and the column's collation decides. Emails are stored and looked up in lower case: plain text on both.
 */

/* 0, or the field whose value another account has */
static const char *conflicting_field(const auth_registration_t *r)
{
    if (taken("SELECT 1 FROM users WHERE nickname = CAST(? AS CITEXT)", r->nickname))
        return "nickname";
    if (taken("SELECT 1 FROM users WHERE email = ?", r->email))
        return "email";
    return NULL;
}

static void publish_user_created(int64_t id, const char *nickname)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    const unsigned char *buf;
    size_t len;
    yajl_gen_map_open(g);
    yajl_gen_string(g, (const unsigned char *)"type", 4);
    yajl_gen_string(g, (const unsigned char *)"user.created", 12);
    yajl_gen_string(g, (const unsigned char *)"user", 4);
    yajl_gen_map_open(g);
    yajl_gen_string(g, (const unsigned char *)"id", 2);
    yajl_gen_integer(g, id);
    yajl_gen_string(g, (const unsigned char *)"nickname", 8);
    yajl_gen_string(g, (const unsigned char *)nickname, strlen(nickname));
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    yajl_gen_get_buf(g, &buf, &len);
    api->publish_all((const char *)buf, len, 0);
    yajl_gen_free(g);
}

/* --- register --- */

typedef struct register_job {
    auth_hash_job_t super;
    auth_registration_t reg;
    char hash[SCRYPT_MCF_LEN];
    int hashed;
} register_job_t;

static void register_work(auth_hash_job_t *job)
{
    register_job_t *self = (register_job_t *)job;
    self->hashed = libscrypt_hash(self->hash, self->reg.password, auth_scrypt_params.N, auth_scrypt_params.r,
                                  auth_scrypt_params.p) > 0;
}

static void register_done(auth_hash_job_t *job, forum_req_t *req)
{
    register_job_t *self = (register_job_t *)job;
    const auth_registration_t *r = &self->reg;
    char now[32];
    forum_stmt_t *s;
    int ret;

    if (!job->ran) {
        answer_busy(req);
        goto Exit;
    }
    if (!self->hashed) {
        api->log(FORUM_LOG_ERROR, "auth: scrypt failed while registering %s", r->nickname);
        api->res_error(req, 500, "internal", "the account could not be created", NULL);
        goto Exit;
    }
    api->format_time(api->now_ms(), now);
    /* the account and its first session commit together: a 503 means that neither exists */
    if (api->db_begin() != 0) {
        api->res_db_error(req, "the account could not be created");
        goto Exit;
    }
    s = api->db_stmt("INSERT INTO users (nickname, email, password_hash, first_name, last_name, age, gender, created_at) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id");
    api->db_bind_text(s, 1, r->nickname, strlen(r->nickname));
    api->db_bind_text(s, 2, r->email, strlen(r->email));
    api->db_bind_text(s, 3, self->hash, strlen(self->hash));
    api->db_bind_text(s, 4, r->first_name, strlen(r->first_name));
    api->db_bind_text(s, 5, r->last_name, strlen(r->last_name));
    api->db_bind_int(s, 6, r->age);
    api->db_bind_text(s, 7, r->gender, strlen(r->gender));
    api->db_bind_text(s, 8, now, strlen(now));
    if ((ret = api->db_step(s)) == FORUM_DB_CONSTRAINT) {
        /* someone took the name while the password was being hashed */
        api->db_rollback();
        const char *field = conflicting_field(r);
        api->res_error(req, 409, "conflict", "already taken", field != NULL ? field : "nickname");
        goto Exit;
    }
    if (ret != FORUM_DB_ROW)
        goto Rollback;
    int64_t id = api->db_col_int(s, 0);
    if (api->db_step(s) != FORUM_DB_DONE)
        goto Rollback;
    /* the account exists once committed, whether or not its creator is still there to hear it */
    if ((api->req_alive(req) && api->session_start(req, id) != 0) || api->db_commit() != 0)
        goto Rollback;
    api->log(FORUM_LOG_INFO, "auth: user %lld (%s) registered", (long long)id, r->nickname);
    publish_user_created(id, r->nickname);
    answer_user(req, 201, id);
    goto Exit;
Rollback:
    api->db_rollback();
    api->res_db_error(req, "the account could not be created");
Exit:
    memset(self->reg.password, 0, sizeof(self->reg.password));
    free(self);
}

static int register_route(forum_req_t *req)
{
    register_job_t *job = calloc(1, sizeof(*job));
    auth_error_t err;
    const char *field;
    char key[96];

    if (register_limit.here != NULL) {
        /* every registration attempt counts, whatever becomes of it */
        uint8_t shared;
        snprintf(key, sizeof(key), "addr:%s", api->req_peer(req));
        unsigned wait = limit_reserve(&register_limit, key, &shared);
        if (wait != 0) {
            answer_limited(req, wait);
            goto Error;
        }
    }
    if (auth_validate_registration(api->req_body(req), &job->reg, &err) != 0) {
        answer_error(req, &err);
        goto Error;
    }
    if ((field = conflicting_field(&job->reg)) != NULL) {
        api->res_error(req, 409, "conflict", "already taken", field);
        goto Error;
    }
    job->super.req = req;
    job->super.work = register_work;
    job->super.done = register_done;
    if (auth_hasher_submit(&job->super) != 0) {
        answer_busy(req);
        goto Error;
    }
    return 0;
Error:
    memset(job->reg.password, 0, sizeof(job->reg.password));
    free(job);
    return 0;
}

/* --- login --- */

typedef struct login_job {
    auth_hash_job_t super;
    int64_t user_id; /* 0: no such account; the password is hashed all the same so that both answers take as long */
    char stored[SCRYPT_MCF_LEN];
    char login[255];
    char password[4 * 1024 + 1];
    char peer_key[96];
    char acct_key[32]; /* "acct:<user id>"; empty for an unknown login, which no account's budget pays for */
    uint8_t peer_shared, acct_shared; /* where each attempt was counted (limit_reserve) */
    int matched;
} login_job_t;

static void login_work(auth_hash_job_t *job)
{
    login_job_t *self = (login_job_t *)job;
    char scratch[SCRYPT_MCF_LEN];
    if (self->user_id != 0) {
        /* libscrypt_check cuts its argument apart: give it a copy */
        memcpy(scratch, self->stored, sizeof(scratch));
        self->matched = libscrypt_check(scratch, self->password) > 0;
    } else {
        libscrypt_hash(scratch, self->password, auth_scrypt_params.N, auth_scrypt_params.r, auth_scrypt_params.p);
        self->matched = 0;
    }
}

/* Gives back the attempts a login reserved: its outcome is not a failed guess. */
static void refund_attempts(const login_job_t *self)
{
    limit_refund(&peer_limit, self->peer_key, self->peer_shared);
    if (self->acct_key[0] != '\0')
        limit_refund(&account_limit, self->acct_key, self->acct_shared);
}

static void login_done(auth_hash_job_t *job, forum_req_t *req)
{
    login_job_t *self = (login_job_t *)job;

    if (!job->ran) {
        refund_attempts(self);
        answer_busy(req);
    } else if (self->matched) {
        refund_attempts(self);
        /* a client that left gets no session */
        if (api->req_alive(req) && api->session_start(req, self->user_id) == 0)
            answer_user(req, 200, self->user_id);
        else if (api->req_alive(req))
            api->res_db_error(req, "no session could be started");
    } else {
        /* the attempt was spent when it was reserved */
        api->res_error(req, 401, "unauthorized", "wrong login or password", NULL);
    }
    memset(self->password, 0, sizeof(self->password));
    free(self);
}

/*
 * An attempt is charged to the client's address and to the account before its hash is queued, so that
 * guesses in flight count at once: past the limit the answer is 429 without hashing. A success or a
 * hash that never ran gives both back; a wrong password keeps them spent.
 *
 * The account is found first (one indexed SELECT on the loop) so that its budget is keyed by its id:
 * the nickname, the email and their cases are one account and spend one budget. A login that finds no
 * account is charged to the address only, and is hashed against nothing all the same, so that it is
 * answered as slowly and as alike as a wrong password.
 */
static int login_route(forum_req_t *req)
{
    login_job_t *job = calloc(1, sizeof(*job));
    auth_error_t err;
    unsigned wait;
    forum_stmt_t *s;

    if (auth_validate_login(api->req_body(req), job->login, sizeof(job->login), job->password, sizeof(job->password), &err) != 0) {
        answer_error(req, &err);
        goto Error;
    }
    s = api->db_stmt("SELECT id, password_hash FROM users WHERE nickname = CAST(? AS CITEXT) OR email = ?");
    api->db_bind_text(s, 1, job->login, strlen(job->login));
    api->db_bind_text(s, 2, job->login, strlen(job->login));
    if (api->db_step(s) == FORUM_DB_ROW) {
        const char *stored = api->db_col_text(s, 1);
        job->user_id = api->db_col_int(s, 0);
        snprintf(job->stored, sizeof(job->stored), "%s", stored != NULL ? stored : "");
        snprintf(job->acct_key, sizeof(job->acct_key), "acct:%lld", (long long)job->user_id);
    }
    snprintf(job->peer_key, sizeof(job->peer_key), "addr:%s", api->req_peer(req));
    if ((wait = limit_reserve(&peer_limit, job->peer_key, &job->peer_shared)) != 0) {
        answer_limited(req, wait);
        goto Error;
    }
    if (job->acct_key[0] != '\0' && (wait = limit_reserve(&account_limit, job->acct_key, &job->acct_shared)) != 0) {
        limit_refund(&peer_limit, job->peer_key, job->peer_shared);
        answer_limited(req, wait);
        goto Error;
    }
    job->super.req = req;
    job->super.work = login_work;
    job->super.done = login_done;
    if (auth_hasher_submit(&job->super) != 0) {
        refund_attempts(job);
        answer_busy(req);
        goto Error;
    }
    return 0;
Error:
    memset(job->password, 0, sizeof(job->password));
    free(job);
    return 0;
}

/* --- session routes and events --- */

static int logout_route(forum_req_t *req)
{
    /* a session that could not be deleted still works: never answer as if logged out */
    if (api->session_end(req) != 0) {
        api->res_db_error(req, "the session could not be ended");
        return 0;
    }
    api->res_empty(req, 204);
    return 0;
}

static int me_route(forum_req_t *req)
{
    answer_user(req, 200, api->req_user(req));
    return 0;
}

/* GET /api/auth/session: who this browser is, null when nobody; always 200, so the client's first question on a
 * signed-out load is not an error the browser logs in its console */
static int session_route(forum_req_t *req)
{
    yajl_gen g = api->res_json_begin(req, 200);
    yajl_gen_map_open(g);
    yajl_gen_string(g, (const unsigned char *)"user", 4);
    if (!write_user(g, api->req_user(req)))
        yajl_gen_null(g);
    yajl_gen_map_close(g);
    api->res_json_end(req);
    return 0;
}

static void on_hello(const forum_event_t *ev)
{
    yajl_gen_string(ev->gen, (const unsigned char *)"user", 4);
    if (!write_user(ev->gen, ev->user_id))
        yajl_gen_null(ev->gen);
}

/* --- settings --- */

/* checked by the host against plugins.settings.auth before init runs (README, "Plugin settings") */
static const forum_setting_decl_t settings[] = {
    {.name = "scrypt-n", .type = FORUM_SETTING_UINT, .flags = FORUM_SETTING_POWER_OF_TWO, .min = 1024, .max = 1u << 24, .def = 32768},
    {.name = "scrypt-r", .type = FORUM_SETTING_UINT, .min = 1, .max = 64, .def = 8},
    {.name = "scrypt-p", .type = FORUM_SETTING_UINT, .min = 1, .max = 64, .def = 1},
    {.name = "hash-workers", .type = FORUM_SETTING_UINT, .min = 0, .max = 256, .def = 0}, /* 0: the cores we may use, less one */
    {.name = "hash-queue", .type = FORUM_SETTING_UINT, .min = 0, .max = 100000, .def = 64},
    {.name = "login-limit", .type = FORUM_SETTING_UINT, .min = 1, .max = 1000000, .def = 10},
    {.name = "login-window", .type = FORUM_SETTING_UINT, .min = 1, .max = 86400, .def = 60},
    {.name = "register-limit", .type = FORUM_SETTING_UINT, .min = 0, .max = 1000000, .def = 0}, /* 0: no limit */
    {.name = "register-window", .type = FORUM_SETTING_UINT, .min = 1, .max = 86400, .def = 3600},
    /* entries of each limiter table (addresses, accounts, registrations); past it the least recently used goes */
    {.name = "limiter-entries", .type = FORUM_SETTING_UINT, .min = 16, .max = 1u << 24, .def = 100000},
    {.name = NULL},
};

static void read_settings(forum_plugin_t *p)
{
    unsigned workers = (unsigned)api->setting_uint(p, "hash-workers");
    unsigned register_max = (unsigned)api->setting_uint(p, "register-limit");
    unsigned login_limit = (unsigned)api->setting_uint(p, "login-limit");
    unsigned login_window = (unsigned)api->setting_uint(p, "login-window");
    size_t entries = (size_t)api->setting_uint(p, "limiter-entries");

    if (workers == 0) {
        /* the cores this process may run on (its affinity), not those the machine has */
        cpu_set_t cpus;
        long cores = sched_getaffinity(0, sizeof(cpus), &cpus) == 0 ? CPU_COUNT(&cpus) : sysconf(_SC_NPROCESSORS_ONLN);
        workers = cores > 1 ? (unsigned)cores - 1 : 1;
    }
    auth_scrypt_params.N = (uint32_t)api->setting_uint(p, "scrypt-n");
    auth_scrypt_params.r = (uint8_t)api->setting_uint(p, "scrypt-r");
    auth_scrypt_params.p = (uint8_t)api->setting_uint(p, "scrypt-p");
    auth_hasher_init(workers, (unsigned)api->setting_uint(p, "hash-queue"));
    /*
     * The account table is as large as the address table: only accounts that exist and were tried lately
     * have an entry, so pushing one out takes that many real accounts under attack at once, each of which
     * is still held to its own limit until then, and every attempt still pays its address's limit too.
     */
    account_limit.here = auth_limiter_new(login_limit, login_window, entries);
    peer_limit.here = auth_limiter_new(login_limit, login_window, entries);
    account_limit.burst = peer_limit.burst = login_limit;
    account_limit.window_s = peer_limit.window_s = login_window;
    register_limit.burst = register_max;
    register_limit.window_s = (unsigned)api->setting_uint(p, "register-window");
    if (register_max != 0)
        register_limit.here = auth_limiter_new(register_max, register_limit.window_s, entries);
}

static const char schema_v1[] = "CREATE TABLE users ("
                                "  id INTEGER PRIMARY KEY,"
                                "  nickname TEXT NOT NULL COLLATE NOCASE UNIQUE,"
                                "  email TEXT NOT NULL UNIQUE,"
                                "  password_hash TEXT NOT NULL,"
                                "  first_name TEXT NOT NULL,"
                                "  last_name TEXT NOT NULL,"
                                "  age INTEGER NOT NULL CHECK (age BETWEEN 13 AND 130),"
                                "  gender TEXT NOT NULL CHECK (gender IN ('female', 'male', 'other')),"
                                "  created_at TEXT NOT NULL"
                                ")";

/* PostgreSQL: the same table; citext is PostgreSQL's case-insensitive text, as NOCASE is SQLite's */
static const char pg_schema_v1[] = "CREATE EXTENSION IF NOT EXISTS citext;"
                                   "CREATE TABLE users ("
                                   "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
                                   "  nickname CITEXT NOT NULL UNIQUE,"
                                   "  email TEXT NOT NULL UNIQUE,"
                                   "  password_hash TEXT NOT NULL,"
                                   "  first_name TEXT NOT NULL,"
                                   "  last_name TEXT NOT NULL,"
                                   "  age BIGINT NOT NULL CHECK (age BETWEEN 13 AND 130),"
                                   "  gender TEXT NOT NULL CHECK (gender IN ('female', 'male', 'other')),"
                                   "  created_at TEXT NOT NULL"
                                   ")";

static void fini(forum_plugin_t *p);

static int init(forum_plugin_t *p, const forum_api_t *a)
{
    auth_api = a;
    auth_self = p;
    if (a->version < FORUM_API_VERSION || !FORUM_API_HAS(a, mono_ms))
        return -1;
    read_settings(p);
    /* no memory for the tables: refuse rather than run without limits */
    if (peer_limit.here == NULL || account_limit.here == NULL || (register_limit.here == NULL && api->setting_uint(p, "register-limit") != 0) ||
        api->migration_for(p, FORUM_DB_SQLITE, 1, schema_v1) || api->migration_for(p, FORUM_DB_POSTGRES, 1, pg_schema_v1) || api->route(p, "POST", "/api/auth/register", FORUM_ROUTE_PUBLIC, register_route) ||
        api->route(p, "POST", "/api/auth/login", FORUM_ROUTE_PUBLIC, login_route) ||
        api->route(p, "POST", "/api/auth/logout", 0, logout_route) || api->route(p, "GET", "/api/auth/me", 0, me_route) ||
        api->route(p, "GET", "/api/auth/session", FORUM_ROUTE_PUBLIC, session_route) ||
        api->on_event(p, "ws.hello", on_hello)) {
        fini(p); /* the host runs fini only after an init that succeeded */
        return -1;
    }
    return 0;
}

static void fini(forum_plugin_t *p)
{
    (void)p;
    auth_limiter_free(peer_limit.here);
    auth_limiter_free(account_limit.here);
    auth_limiter_free(register_limit.here);
    peer_limit.here = account_limit.here = register_limit.here = NULL;
}

FORUM_EXPORT const forum_plugin_desc_t forum_plugin = {
    .abi = FORUM_PLUGIN_ABI,
    .name = "auth",
    .version = PLUGIN_VERSION,
    .settings = settings,
    .init = init,
    .fini = fini,
};
