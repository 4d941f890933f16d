/*
 * The hub: per user the set of their WebSocket connections (presence), and the publish paths that
 * reach a user, some users or everyone. A frame published to many connections is built once and
 * shared by every queue it goes on (core/ws_queue.c); a connection's own life is core/ws_conn.c.
 */
#include <stdlib.h>
#include <string.h>
#include "ws_conn.h"
#include "ws_frame.h"

h2o_linklist_t all_conns = {&all_conns, &all_conns};
static size_t num_conns;
static user_entry_t **users;
static size_t users_cap, num_users;
static int shutting_down;
static uint64_t publish_call; /* the publish that last reached a user (user_entry_t.published): each user once */

/* --- the user table: user id -> their connections --- */

static size_t user_bucket(int64_t id)
{
    uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) & (users_cap - 1);
}

static user_entry_t *find_user(int64_t id)
{
    if (users_cap == 0)
        return NULL;
    for (user_entry_t *u = users[user_bucket(id)]; u != NULL; u = u->next)
        if (u->id == id)
            return u;
    return NULL;
}

static void grow_users(void)
{
    size_t old_cap = users_cap;
    user_entry_t **old = users;
    users_cap = users_cap == 0 ? 1024 : users_cap * 2;
    users = calloc(users_cap, sizeof(*users));
    for (size_t i = 0; i != old_cap; ++i) {
        while (old[i] != NULL) {
            user_entry_t *u = old[i];
            old[i] = u->next;
            size_t b = user_bucket(u->id);
            u->next = users[b];
            users[b] = u;
        }
    }
    free(old);
}

static user_entry_t *add_user(int64_t id)
{
    if (num_users >= users_cap)
        grow_users();
    user_entry_t *u = calloc(1, sizeof(*u));
    u->id = id;
    h2o_linklist_init_anchor(&u->conns);
    size_t b = user_bucket(id);
    u->next = users[b];
    users[b] = u;
    ++num_users;
    return u;
}

static void remove_user(user_entry_t *u)
{
    user_entry_t **p = &users[user_bucket(u->id)];
    while (*p != u)
        p = &(*p)->next;
    *p = u->next;
    --num_users;
    free(u);
}

/*
 * Whether a frame published with `flags` is for `ws`: one the replay will send is not, while it catches up.
 * With a bus none is: nodes store messages at once, so one node's frames could come before another's older
 * ones. A message's frame then reaches connections in the order of every node (forum_hub_deliver_message); one
 * published without its number (a plugin built for version 7) rings the connection instead, which reads what
 * is new for it in id order (core/replay.c).
 */
static int wants(forum_ws_t *ws, int flags)
{
    if ((flags & FORUM_PUB_REPLAYABLE) && forum_bus_enabled()) {
        forum_replay_ring(ws);
        return 0;
    }
    if ((flags & FORUM_PUB_REPLAYABLE) && ws->replaying) {
        ws->replay_skipped = 1; /* the replay reads again before it may end (core/replay.c) */
        return 0;
    }
    return admit(ws, flags);
}

/* Queues one shared frame on every connection of `u`, but those in `except`. */
static void send_to_user(user_entry_t *u, ws_out_t **o, const char *json, size_t len, int flags, forum_ws_t *const *except,
                         size_t num_except)
{
    for (h2o_linklist_t *node = u->conns.next; node != &u->conns; node = node->next) {
        forum_ws_t *ws = H2O_STRUCT_FROM_MEMBER(forum_ws_t, of_user, node);
        size_t i = 0;
        while (i != num_except && except[i] != ws)
            ++i;
        if (i != num_except || !wants(ws, flags))
            continue;
        if (*o == NULL)
            *o = out_new(FORUM_WS_TEXT, json, len);
        enqueue(ws, *o);
    }
}

void forum_hub_publish_user(int64_t user_id, const char *json, size_t len, int flags)
{
    forum_hub_publish_user_except(user_id, json, len, flags, NULL, 0);
}

/* The other nodes get it whole: `except` names connections of this node. */
void forum_hub_publish_user_except(int64_t user_id, const char *json, size_t len, int flags, forum_ws_t *const *except, size_t n)
{
    user_entry_t *u = find_user(user_id);
    ws_out_t *o = NULL;
    forum_bus_publish_users(&user_id, 1, json, len, flags);
    if (u == NULL)
        return;
    send_to_user(u, &o, json, len, flags, except, n);
    if (o != NULL)
        out_release(o);
}

void forum_hub_publish_users(const int64_t *ids, size_t n, const char *json, size_t len, int flags)
{
    forum_bus_publish_users(ids, n, json, len, flags);
    forum_hub_deliver_users(ids, n, json, len, flags);
}

void forum_hub_deliver_users(const int64_t *ids, size_t n, const char *json, size_t len, int flags)
{
    ws_out_t *o = NULL;
    ++publish_call;
    for (size_t i = 0; i != n; ++i) {
        user_entry_t *u = find_user(ids[i]);
        if (u == NULL || u->published == publish_call)
            continue; /* offline, or listed twice */
        u->published = publish_call;
        send_to_user(u, &o, json, len, flags, NULL, 0);
    }
    if (o != NULL)
        out_release(o);
}

void forum_hub_publish_message(int64_t id, const int64_t *ids, size_t n, const char *json, size_t len)
{
    if (!forum_bus_enabled() || forum_order_frame(id, 'u', ids, n, json, len) != 0)
        forum_hub_publish_users(ids, n, json, len, FORUM_PUB_REPLAYABLE);
}

void forum_hub_publish_message_all_but(int64_t id, int64_t user_id, const char *json, size_t len)
{
    if (!forum_bus_enabled() || forum_order_frame(id, 'a', &user_id, 1, json, len) != 0)
        forum_hub_publish_all_but(user_id, json, len, FORUM_PUB_REPLAYABLE);
}

/*
 * Whether message `id`, delivered in order, is for `ws`: not while it catches up (its replay reads again before it
 * ends), nor when it has had the message already (from a replay that read past it).
 */
static int in_order(forum_ws_t *ws, int64_t id)
{
    if (ws->replaying) {
        if (id > ws->caught_up && id > ws->replay_after)
            ws->replay_skipped = 1; /* not one it has had or its replay has sent: the replay must read again */
        return 0;
    }
    if (id <= ws->caught_up || !admit(ws, FORUM_PUB_REPLAYABLE))
        return 0;
    ws->caught_up = id;
    return 1;
}

static void queue_in_order(forum_ws_t *ws, ws_out_t **o, int64_t id, const char *json, size_t len)
{
    if (!in_order(ws, id))
        return;
    if (*o == NULL)
        *o = out_new(FORUM_WS_TEXT, json, len);
    enqueue(ws, *o);
}

void forum_hub_deliver_message(int64_t id, int to_all, const int64_t *ids, size_t n, const char *json, size_t len)
{
    ws_out_t *o = NULL;
    if (to_all) {
        int64_t except = n != 0 ? ids[0] : 0;
        for (h2o_linklist_t *node = all_conns.next; node != &all_conns; node = node->next) {
            forum_ws_t *ws = H2O_STRUCT_FROM_MEMBER(forum_ws_t, all, node);
            if (ws->user->id != except)
                queue_in_order(ws, &o, id, json, len);
        }
    } else {
        ++publish_call;
        for (size_t i = 0; i != n; ++i) {
            user_entry_t *u = find_user(ids[i]);
            if (u == NULL || u->published == publish_call)
                continue;
            u->published = publish_call;
            for (h2o_linklist_t *node = u->conns.next; node != &u->conns; node = node->next)
                queue_in_order(H2O_STRUCT_FROM_MEMBER(forum_ws_t, of_user, node), &o, id, json, len);
        }
    }
    if (o != NULL)
        out_release(o);
}

void forum_hub_publish_all(const char *json, size_t len, int flags)
{
    forum_hub_publish_all_but(0, json, len, flags);
}

void forum_hub_publish_all_but(int64_t user_id, const char *json, size_t len, int flags)
{
    forum_bus_publish_all_but(user_id, json, len, flags);
    forum_hub_deliver_all_but(user_id, json, len, flags);
}

void forum_hub_deliver_all_but(int64_t user_id, const char *json, size_t len, int flags)
{
    ws_out_t *o = NULL;
    for (h2o_linklist_t *n = all_conns.next; n != &all_conns; n = n->next) {
        forum_ws_t *ws = H2O_STRUCT_FROM_MEMBER(forum_ws_t, all, n);
        if (ws->user->id == user_id || !wants(ws, flags))
            continue;
        if (o == NULL)
            o = out_new(FORUM_WS_TEXT, json, len);
        enqueue(ws, o);
    }
    if (o != NULL)
        out_release(o);
}

void send_gen(forum_ws_t *ws, yajl_gen g)
{
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    forum_hub_send(ws, (const char *)buf, len, 0);
}

void forum_hub_send_error(forum_ws_t *ws, const char *code, const char *message, const char *ref)
{
    yajl_gen g = forum_json_gen();
    yajl_gen_map_open(g);
    forum_json_str(g, "type");
    forum_json_str(g, "error");
    forum_json_error_members(g, code, message, NULL);
    forum_json_str(g, "ref");
    forum_json_str(g, ref);
    yajl_gen_map_close(g);
    send_gen(ws, g);
    yajl_gen_free(g);
}

int64_t forum_hub_ws_user(forum_ws_t *ws)
{
    return ws->user->id;
}


int forum_hub_user_online(int64_t user_id)
{
    return find_user(user_id) != NULL || forum_bus_user_online(user_id);
}

/* The users with a connection here (core/bus.c tells Redis after it was away); `*out` is malloc'ed. */
long forum_hub_local_users(int64_t **out)
{
    long n = 0;
    *out = malloc((num_users != 0 ? num_users : 1) * sizeof(**out));
    if (*out == NULL)
        return -1;
    for (size_t b = 0; b != users_cap; ++b)
        for (user_entry_t *u = users[b]; u != NULL; u = u->next)
            (*out)[n++] = u->id;
    return n;
}

size_t forum_hub_count(void)
{
    return num_conns;
}

/* --- presence --- */

/* A user's first connection on this node came, or their last went: with a bus, online means on any node. */
void publish_presence(int64_t user_id, int online)
{
    if (forum_bus_enabled())
        forum_bus_presence(user_id, online); /* Redis counts the nodes; forum_hub_presence comes if that changed */
    else
        forum_hub_presence(user_id, online);
}

void forum_hub_presence(int64_t user_id, int online)
{
    forum_event_t ev = {online ? "user.online" : "user.offline", user_id, NULL, NULL, NULL};
    yajl_gen g = forum_json_gen();
    const unsigned char *buf;
    size_t len;

    yajl_gen_map_open(g);
    forum_json_str(g, "type");
    forum_json_str(g, "presence");
    forum_json_str(g, "user_id");
    yajl_gen_integer(g, user_id);
    forum_json_str(g, "online");
    yajl_gen_bool(g, online);
    yajl_gen_map_close(g);
    yajl_gen_get_buf(g, &buf, &len);
    forum_hub_deliver_all_but(0, (const char *)buf, len, 0); /* each node delivers it to its own (core/bus.c) */
    yajl_gen_free(g);
    forum_plugins_emit(&ev);
}

int attach(forum_ws_t *ws, int64_t user_id)
{
    user_entry_t *u;
    int first;
    if ((u = find_user(user_id)) == NULL)
        u = add_user(user_id);
    first = u->num_conns++ == 0;
    ws->user = u;
    h2o_linklist_insert(&u->conns, &ws->of_user);
    h2o_linklist_insert(&all_conns, &ws->all);
    ++num_conns;
    return first;
}

/* Unlinks a connection that is going away; its user goes offline with their last connection. */
void detach(forum_ws_t *ws)
{
    user_entry_t *u = ws->user;
    forum_event_t ev = {"ws.close", u->id, ws, NULL, NULL};
    forum_plugins_emit(&ev);
    h2o_linklist_unlink(&ws->all);
    h2o_linklist_unlink(&ws->of_user);
    if (h2o_linklist_is_linked(&ws->pending))
        h2o_linklist_unlink(&ws->pending);
    --num_conns;
    if (--u->num_conns == 0) {
        int64_t id = u->id;
        remove_user(u);
        if (!shutting_down)
            publish_presence(id, 0);
    }
}

void forum_hub_ring_users(const int64_t *ids, size_t n)
{
    for (size_t i = 0; i != n; ++i) {
        user_entry_t *u = find_user(ids[i]);
        for (h2o_linklist_t *node = u != NULL ? u->conns.next : NULL; node != NULL && node != &u->conns; node = node->next)
            forum_replay_ring(H2O_STRUCT_FROM_MEMBER(forum_ws_t, of_user, node));
    }
}

void forum_hub_ring_all(void)
{
    forum_hub_ring_behind(INT64_MAX);
}

void forum_hub_ring_behind(int64_t id)
{
    for (h2o_linklist_t *n = all_conns.next; n != &all_conns; n = n->next) {
        forum_ws_t *ws = H2O_STRUCT_FROM_MEMBER(forum_ws_t, all, n);
        if (ws->caught_up < id)
            forum_replay_ring(ws);
    }
}

/* Logout: the session's connections close on every node. */
void forum_hub_close_session(int64_t user_id, const uint8_t *hash, int code, const char *reason)
{
    forum_bus_close_session(user_id, hash, code, reason);
    forum_hub_close_session_local(user_id, hash, code, reason);
}

void forum_hub_close_session_local(int64_t user_id, const uint8_t *hash, int code, const char *reason)
{
    user_entry_t *u = find_user(user_id);
    if (u == NULL)
        return;
    for (h2o_linklist_t *n = u->conns.next; n != &u->conns; n = n->next) {
        forum_ws_t *ws = H2O_STRUCT_FROM_MEMBER(forum_ws_t, of_user, n);
        if (memcmp(ws->session, hash, sizeof(ws->session)) == 0)
            begin_close(ws, code, reason, 1);
    }
}

void forum_hub_init(uv_loop_t *loop, const forum_config_t *conf)
{
    ws_queue_init(loop, conf);
    ws_conn_init(loop, conf);
    forum_replay_init(loop);
}

void forum_hub_shutdown(void)
{
    shutting_down = 1;
    for (h2o_linklist_t *n = all_conns.next; n != &all_conns; n = n->next)
        begin_close(H2O_STRUCT_FROM_MEMBER(forum_ws_t, all, n), FORUM_WS_GOING_AWAY, "server shutting down", 1);
}

/* Releases what the hub holds once the loop has stopped (every connection is gone by then). */
void forum_hub_dispose(void)
{
    ws_queue_dispose();
    ws_conn_dispose();
    free(users);
    users = NULL;
    users_cap = 0;
}
