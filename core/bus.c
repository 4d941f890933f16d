/*
 * The bus: what one node publishes reaches the connections of every other node of the forum, over Redis
 * pub/sub (hiredis and its libuv adapter). One channel carries every event; a node skips its own.
 *
 * The database is the log and the bus only the doorbell. A frame that a replay can send again
 * (FORUM_PUB_REPLAYABLE: messages) never travels on it: the bus names the users it is for, and each node
 * rings their connections, which read what is new for them from the database (core/replay.c), in id order
 * and once. Other frames (presence, typing, new posts) travel whole and are delivered as they come. While
 * Redis cannot be reached, every connection is rung once a second, so messages keep arriving, from the
 * database; when it is back, once more, and the log says so. Frames that travel whole are lost meanwhile.
 *
 * One event on the channel:   NODE \n KIND \n FLAGS \n ID,ID,... \n PAYLOAD
 *   u  the frame PAYLOAD to the users IDS             r  ring the users IDS (their new messages)
 *   a  the frame PAYLOAD to everyone but user ID (0)  R  ring everyone
 *   c  close user ID's connections of one session; PAYLOAD: HASH-IN-HEX \n CODE \n REASON
 *   h  a heartbeat, every second
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libuv.h>
#include "forum.h"

#define CHANNEL "forumd:events"

enum { TICK_MS = 1000, SILENCE_MS = 3000, MAX_IDS = 100000 };

static struct {
    uv_loop_t *loop;
    char *host;
    int port;
    char node[128];
    redisAsyncContext *pub, *sub;
    int pub_up, sub_up;
    forum_bus_state_t state;
    uv_timer_t tick;
    int64_t down_since_ms, attempt_ms, pub_ok_ms, sub_ok_ms;
    uint64_t published, received, dropped, losses, catch_ups;
} bus;


int forum_bus_enabled(void)
{
    return bus.state != FORUM_BUS_OFF;
}

const char *forum_bus_node(void)
{
    return bus.node;
}

/* --- receiving --- */

/* The decimal ids of "1,2,3" into a new array; -1 on a malformed list. */
static long parse_ids(const char *s, size_t len, int64_t **out)
{
    long n = 0;
    size_t cap = 1;
    for (size_t i = 0; i != len; ++i)
        cap += s[i] == ',';
    if (len == 0) {
        *out = NULL;
        return 0;
    }
    if (cap > MAX_IDS || (*out = malloc(cap * sizeof(**out))) == NULL)
        return -1;
    for (size_t i = 0; i <= len; ++n, ++i) {
        int64_t v = 0;
        size_t start = i;
        for (; i != len && s[i] >= '0' && s[i] <= '9' && v <= (INT64_MAX - 9) / 10; ++i)
            v = v * 10 + (s[i] - '0');
        if (i == start || (i != len && s[i] != ',')) {
            free(*out);
            return -1;
        }
        (*out)[n] = v;
    }
    return n;
}

/* The next line of [*p, end) (without its \n) in *line; 0 when there is none. */
static int next_line(const char **p, const char *end, const char **line, size_t *len)
{
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    if (nl == NULL)
        return 0;
    *line = *p, *len = (size_t)(nl - *p);
    *p = nl + 1;
    return 1;
}

static int hex_value(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void close_session(int64_t user, const char *payload, size_t len)
{
    uint8_t hash[FORUM_SESSION_HASH_LEN];
    const char *p = payload, *end = payload + len, *line;
    size_t n;
    int code = 0;
    char reason[124];

    if (!next_line(&p, end, &line, &n) || n != 2 * sizeof(hash))
        return;
    for (size_t i = 0; i != sizeof(hash); ++i) {
        int hi = hex_value(line[2 * i]), lo = hex_value(line[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return;
        hash[i] = (uint8_t)(hi << 4 | lo);
    }
    if (!next_line(&p, end, &line, &n) || n == 0 || n > 4)
        return;
    for (size_t i = 0; i != n; ++i) {
        if (line[i] < '0' || line[i] > '9')
            return;
        code = code * 10 + (line[i] - '0');
    }
    n = (size_t)(end - p) < sizeof(reason) - 1 ? (size_t)(end - p) : sizeof(reason) - 1;
    memcpy(reason, p, n);
    reason[n] = '\0';
    forum_hub_close_session_local(user, hash, code, reason);
}

static void deliver(const char *msg, size_t len)
{
    const char *p = msg, *end = msg + len, *node, *kind, *flags, *ids_s;
    size_t node_len, kind_len, flags_len, ids_len;
    int64_t *ids = NULL;
    long n;

    if (!next_line(&p, end, &node, &node_len) || !next_line(&p, end, &kind, &kind_len) || !next_line(&p, end, &flags, &flags_len) ||
        !next_line(&p, end, &ids_s, &ids_len) || kind_len != 1 || flags_len != 1 || flags[0] < '0' || flags[0] > '9') {
        forum_log(FORUM_LOG_WARN, "bus: an event that is not forumd's was ignored (%zu bytes)", len);
        return;
    }
    if (node_len == strlen(bus.node) && memcmp(node, bus.node, node_len) == 0) {
        bus.sub_ok_ms = forum_mono_ms(); /* the subscription works; what it carries was delivered here when published */
        return;
    }
    if (kind_len == 1 && kind[0] == 'h')
        return; /* another node's heartbeat */
    if ((n = parse_ids(ids_s, ids_len, &ids)) < 0) {
        forum_log(FORUM_LOG_WARN, "bus: an event with a malformed list of users was ignored");
        return;
    }
    ++bus.received;
    int f = flags[0] - '0';
    switch (kind[0]) {
    case 'u':
        forum_hub_deliver_users(ids, (size_t)n, p, (size_t)(end - p), f);
        break;
    case 'a':
        forum_hub_deliver_all_but(n > 0 ? ids[0] : 0, p, (size_t)(end - p), f);
        break;
    case 'r':
        forum_hub_ring_users(ids, (size_t)n);
        break;
    case 'R':
        forum_hub_ring_all();
        break;
    case 'c':
        if (n == 1)
            close_session(ids[0], p, (size_t)(end - p));
        break;
    default:
        forum_log(FORUM_LOG_WARN, "bus: an event of unknown kind '%c' was ignored", kind[0]);
    }
    free(ids);
}

/*
 * --- the two connections: one publishes, one is subscribed (a subscribed connection can do nothing else) ---
 *
 * One timer ticks every second while there is a bus. Up, it publishes a heartbeat: the answer to the PUBLISH
 * shows the publishing connection alive, the heartbeat coming back on the channel the subscribed one. A
 * connection silent for SILENCE_MS is lost, as one that closes is: hiredis's libuv adapter ignores a socket
 * error (a refused connect, a reset), so its callbacks alone would wait forever. Down, the tick rings every
 * connection (the database is the doorbell meanwhile) and tries to connect again.
 */

static void went_up(void)
{
    if (bus.state == FORUM_BUS_UP || !bus.pub_up || !bus.sub_up)
        return;
    bus.pub_ok_ms = bus.sub_ok_ms = forum_mono_ms();
    if (bus.state == FORUM_BUS_DOWN) {
        ++bus.catch_ups;
        forum_log(FORUM_LOG_INFO, "bus: Redis at %s:%d is back after %lld ms; every connection catches up from the database",
                  bus.host, bus.port, (long long)(forum_mono_ms() - bus.down_since_ms));
        bus.state = FORUM_BUS_UP;
        forum_hub_ring_all(); /* what was published elsewhere meanwhile */
        return;
    }
    bus.state = FORUM_BUS_UP;
    forum_log(FORUM_LOG_INFO, "bus: connected to Redis at %s:%d as node %s", bus.host, bus.port, bus.node);
}

/* Lets both connections go (the next tick opens new ones); the first loss after being up is logged. */
static void went_down(const char *why)
{
    redisAsyncContext *pub = bus.pub, *sub = bus.sub;
    bus.pub = bus.sub = NULL;
    bus.pub_up = bus.sub_up = 0;
    if (bus.state == FORUM_BUS_UP || bus.state == FORUM_BUS_CONNECTING) {
        ++bus.losses;
        bus.state = FORUM_BUS_DOWN;
        bus.down_since_ms = forum_mono_ms();
        forum_log(FORUM_LOG_WARN, "bus: lost Redis at %s:%d (%s); messages reach this node's users from the database every %d ms "
                  "until it is back", bus.host, bus.port, why, TICK_MS);
    }
    /* the other one goes too (its callbacks then find nothing to do); the one whose callback runs is freed by hiredis */
    if (pub != NULL)
        redisAsyncFree(pub);
    if (sub != NULL)
        redisAsyncFree(sub);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    if (ac != bus.pub && ac != bus.sub)
        return; /* let go by went_down */
    if (ac == bus.pub)
        bus.pub = NULL;
    else
        bus.sub = NULL;
    went_down(ac->errstr[0] != '\0' ? ac->errstr : "connection closed");
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    if (status == REDIS_OK || (ac != bus.pub && ac != bus.sub))
        return;
    /* hiredis frees a context that failed to connect after this callback */
    if (ac == bus.pub)
        bus.pub = NULL;
    else
        bus.sub = NULL;
    went_down(ac->errstr[0] != '\0' ? ac->errstr : "cannot connect");
}

/* The publishing connection answered (hiredis notices a connection only once something is sent). */
static void on_answer(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)privdata;
    if (ac != bus.pub || r == NULL || ((redisReply *)r)->type == REDIS_REPLY_ERROR)
        return;
    bus.pub_ok_ms = forum_mono_ms();
    if (!bus.pub_up) {
        bus.pub_up = 1;
        went_up();
    }
}

static void on_message(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply *reply = r;
    (void)privdata;
    if (ac != bus.sub || reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING)
        return;
    if (strcmp(reply->element[0]->str, "subscribe") == 0) {
        bus.sub_up = 1;
        went_up();
    } else if (strcmp(reply->element[0]->str, "message") == 0 && reply->element[2]->type == REDIS_REPLY_STRING) {
        deliver(reply->element[2]->str, reply->element[2]->len);
    }
}

static redisAsyncContext *open_one(void)
{
    redisAsyncContext *ac = redisAsyncConnect(bus.host, bus.port);
    if (ac == NULL)
        return NULL;
    if (ac->err || redisLibuvAttach(ac, bus.loop) != REDIS_OK) {
        redisAsyncFree(ac);
        return NULL;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    return ac;
}

static void connect_both(void)
{
    bus.attempt_ms = forum_mono_ms();
    bus.pub = open_one();
    bus.sub = bus.pub != NULL ? open_one() : NULL;
    if (bus.sub == NULL || redisAsyncCommand(bus.pub, on_answer, NULL, "PING") != REDIS_OK ||
        redisAsyncCommand(bus.sub, on_message, NULL, "SUBSCRIBE %s", CHANNEL) != REDIS_OK)
        went_down("cannot open a connection");
}

static void heartbeat(void);

static void on_tick(uv_timer_t *t)
{
    int64_t now = forum_mono_ms();
    (void)t;
    switch (bus.state) {
    case FORUM_BUS_UP:
        if (now - bus.pub_ok_ms > SILENCE_MS || now - bus.sub_ok_ms > SILENCE_MS)
            went_down("no answer for 3 s");
        else
            heartbeat();
        break;
    case FORUM_BUS_CONNECTING:
    case FORUM_BUS_DOWN:
        if (bus.state == FORUM_BUS_DOWN)
            forum_hub_ring_all(); /* while the bus is down, the database is the doorbell */
        if (bus.pub != NULL && now - bus.attempt_ms > SILENCE_MS)
            went_down("no answer for 3 s");
        if (bus.pub == NULL && bus.sub == NULL)
            connect_both();
        break;
    case FORUM_BUS_OFF:
        break;
    }
}

int forum_bus_start(uv_loop_t *loop, const forum_config_t *conf, char *err, size_t errlen)
{
    char host[64];
    struct timeval tv = {2, 0};
    redisContext *c;
    redisReply *r;

    if (conf->node != NULL) {
        snprintf(bus.node, sizeof(bus.node), "%s", conf->node);
    } else {
        if (gethostname(host, sizeof(host)) != 0)
            snprintf(host, sizeof(host), "forumd");
        host[sizeof(host) - 1] = '\0';
        snprintf(bus.node, sizeof(bus.node), "%s-%ld", host, (long)getpid());
    }
    if (conf->bus_redis_host == NULL)
        return 0; /* a single node */
    /* Redis must answer at start, as the database must: a node that cannot hear the others would serve stale */
    c = redisConnectWithTimeout(conf->bus_redis_host, (int)conf->bus_redis_port, tv);
    if (c == NULL || c->err) {
        snprintf(err, errlen, "cannot connect to Redis at %s:%u: %s", conf->bus_redis_host, conf->bus_redis_port,
                 c != NULL ? c->errstr : "no memory");
        if (c != NULL)
            redisFree(c);
        return -1;
    }
    redisSetTimeout(c, tv);
    r = redisCommand(c, "PING");
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "cannot connect to Redis at %s:%u: %s", conf->bus_redis_host, conf->bus_redis_port,
                 r != NULL ? r->str : c->errstr);
        if (r != NULL)
            freeReplyObject(r);
        redisFree(c);
        return -1;
    }
    freeReplyObject(r);
    redisFree(c);

    bus.loop = loop;
    bus.host = strdup(conf->bus_redis_host);
    bus.port = (int)conf->bus_redis_port;
    bus.state = FORUM_BUS_CONNECTING;
    uv_timer_init(loop, &bus.tick);
    uv_unref((uv_handle_t *)&bus.tick);
    uv_timer_start(&bus.tick, on_tick, TICK_MS, TICK_MS);
    connect_both();
    return 0;
}

void forum_bus_stop(void)
{
    redisAsyncContext *pub = bus.pub, *sub = bus.sub;
    if (bus.state == FORUM_BUS_OFF)
        return;
    bus.state = FORUM_BUS_OFF;
    bus.pub = bus.sub = NULL;
    uv_timer_stop(&bus.tick);
    uv_close((uv_handle_t *)&bus.tick, NULL);
    if (pub != NULL)
        redisAsyncFree(pub);
    if (sub != NULL)
        redisAsyncFree(sub);
    free(bus.host);
    bus.host = NULL;
}

/* --- publishing --- */

static void publish(char kind, int flags, const int64_t *ids, size_t n, const char *payload, size_t len, const char *payload2,
                    size_t len2)
{
    char head[192];
    size_t cap, at;
    char *buf;

    if (bus.state == FORUM_BUS_OFF)
        return;
    if (bus.state != FORUM_BUS_UP) {
        ++bus.dropped; /* messages are rung from the database meanwhile (on_tick); this frame is lost */
        return;
    }
    at = (size_t)snprintf(head, sizeof(head), "%s\n%c\n%d\n", bus.node, kind, flags & 0x7);
    cap = at + n * 21 + 1 + len + len2;
    if ((buf = malloc(cap)) == NULL) {
        ++bus.dropped;
        return;
    }
    memcpy(buf, head, at);
    for (size_t i = 0; i != n; ++i)
        at += (size_t)snprintf(buf + at, 22, i == 0 ? "%lld" : ",%lld", (long long)ids[i]);
    buf[at++] = '\n';
    memcpy(buf + at, payload, len);
    memcpy(buf + at + len, payload2, len2);
    at += len + len2;
    if (redisAsyncCommand(bus.pub, on_answer, NULL, "PUBLISH %s %b", CHANNEL, buf, at) == REDIS_OK)
        ++bus.published;
    else
        ++bus.dropped;
    free(buf);
}

/* The heartbeat: a node alive on the bus, and its two connections (on_tick). */
static void heartbeat(void)
{
    publish('h', 0, NULL, 0, "", 0, "", 0);
}

void forum_bus_publish_users(const int64_t *ids, size_t n, const char *json, size_t len, int flags)
{
    if (n != 0)
        publish((flags & FORUM_PUB_REPLAYABLE) ? 'r' : 'u', flags, ids, n, (flags & FORUM_PUB_REPLAYABLE) ? "" : json,
                (flags & FORUM_PUB_REPLAYABLE) ? 0 : len, "", 0);
}

void forum_bus_publish_all_but(int64_t user_id, const char *json, size_t len, int flags)
{
    if (flags & FORUM_PUB_REPLAYABLE)
        publish('R', flags, NULL, 0, "", 0, "", 0);
    else
        publish('a', flags, &user_id, user_id != 0, json, len, "", 0);
}

void forum_bus_close_session(int64_t user_id, const uint8_t *hash, int code, const char *reason)
{
    char head[2 * FORUM_SESSION_HASH_LEN + 16];
    size_t at = 0;
    for (size_t i = 0; i != FORUM_SESSION_HASH_LEN; ++i)
        at += (size_t)snprintf(head + at, 3, "%02x", hash[i]);
    at += (size_t)snprintf(head + at, sizeof(head) - at, "\n%d\n", code);
    publish('c', 0, &user_id, 1, head, at, reason, strlen(reason));
}

/* --- /_status --- */

void forum_bus_status(yajl_gen g)
{
    static const char *const names[] = {"off", "connecting", "up", "down"};
    forum_json_str(g, "node");
    forum_json_str(g, bus.node);
    if (bus.state == FORUM_BUS_OFF)
        return;
    forum_json_str(g, "bus");
    yajl_gen_map_open(g);
    forum_json_str(g, "redis");
    char addr[300];
    snprintf(addr, sizeof(addr), strchr(bus.host, ':') != NULL ? "[%s]:%d" : "%s:%d", bus.host, bus.port);
    forum_json_str(g, addr);
    forum_json_str(g, "state");
    forum_json_str(g, names[bus.state]);
    forum_json_str(g, "published");
    yajl_gen_integer(g, (long long)bus.published);
    forum_json_str(g, "received");
    yajl_gen_integer(g, (long long)bus.received);
    forum_json_str(g, "dropped");
    yajl_gen_integer(g, (long long)bus.dropped);
    forum_json_str(g, "losses");
    yajl_gen_integer(g, (long long)bus.losses);
    forum_json_str(g, "catch_ups");
    yajl_gen_integer(g, (long long)bus.catch_ups);
    yajl_gen_map_close(g);
}
