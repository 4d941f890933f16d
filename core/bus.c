/*
 * The bus: what one node publishes reaches the connections of every other node of the forum, over Redis
 * pub/sub (hiredis and its libuv adapter). One channel carries every event; a node skips its own.
 *
 * The database is the log and the bus the doorbell that carries what it rings for. Messages travel whole,
 * in announcements of the runs of numbers each node drew, and every node delivers them in number order
 * (core/bus_order.c). Other frames (presence, typing, new posts) travel whole and are delivered as they
 * come. While Redis cannot be reached, every connection is rung once a second (it reads what is new for it
 * from the database, core/replay.c), so messages keep arriving; when it is back, once more, and the log says
 * so. Frames that travel whole are lost meanwhile.
 *
 * One event on the channel:   NODE \n KIND \n FLAGS \n ID,ID,... \n PAYLOAD
 *   m  an announcement of messages (core/bus_order.c)    r  ring the users IDS (a plugin of API version 7's messages)
 *   u  the frame PAYLOAD to the users IDS                R  ring everyone
 *   a  the frame PAYLOAD to everyone but user ID (0)
 *   c  close user ID's connections of one session; PAYLOAD: HASH-IN-HEX \n CODE \n REASON
 *   p  the users IDS came online (FLAGS 1) or went offline (0), counted over every node
 *   h  a heartbeat, every second
 *
 * Presence lives in Redis: per live instance (NODE/PID/NONCE) the set of users with a connection there, and per
 * user on how many instances they are; a user is online while that count is not 0. Each instance keeps a key
 * that expires PRESENCE_TTL_MS after its last heartbeat; an instance that finds another's key gone takes its
 * users off (a script: one instance does it), so a node that dies takes its users offline within that time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netdb.h>
#include <sys/random.h>
#include <arpa/inet.h>
#include <openssl/sha.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libuv.h>
#include "db_private.h"

#define CHANNEL "forumd:events"

enum { TICK_MS = 1000, SILENCE_MS = 3000, MAX_IDS = 100000 };

static struct {
    uv_loop_t *loop;
    char *host;
    int port;
    char node[128];
    char instance[160]; /* node/pid/nonce: this process on the channel and in Redis's keys (a restart is another instance) */
    redisAsyncContext *pub, *sub;
    int pub_up, sub_up;
    forum_bus_state_t state;
    uv_timer_t tick;
    int64_t down_since_ms, attempt_ms;
    int64_t pub_wait_ms, sub_wait_ms; /* since when a heartbeat has waited for its answer, and to come back; 0: none */
    uint64_t published, received, dropped, losses, catch_ups;
} bus;

int forum_bus_enabled(void)
{
    return bus.state != FORUM_BUS_OFF;
}

int forum_bus_up(void)
{
    return bus.state == FORUM_BUS_UP;
}

const char *forum_bus_node(void)
{
    return bus.node;
}

static void publish(char kind, int flags, const int64_t *ids, size_t n, const char *payload, size_t len, const char *payload2,
                    size_t len2);
static void presence_changed(int64_t user, int on);

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
    if (node_len == strlen(bus.instance) && memcmp(node, bus.instance, node_len) == 0) {
        bus.sub_wait_ms = 0; /* the subscription works: what this node published came back */
        if (kind_len != 1 || kind[0] != 'p')
            return; /* delivered here when published; presence alone is heard from the channel, in Redis's order */
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
    case 'm':
        forum_order_heard(p, (size_t)(end - p));
        break;
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
    case 'p':
        for (long i = 0; i != n; ++i)
            presence_changed(ids[i], f & 1);
        break;
    default:
        forum_log(FORUM_LOG_WARN, "bus: an event of unknown kind '%c' was ignored", kind[0]);
    }
    free(ids);
}

/* --- presence --- */

#define KEY_COUNTS "forumd:presence"     /* hash: user -> on how many instances */
#define KEY_INSTANCES "forumd:instances" /* set: every instance that may have users */
#define KEY_USERS "forumd:users:"        /* + instance: set of its users */
#define KEY_ALIVE "forumd:alive:"        /* + instance: expires when it stops beating */

/*
 * The scripts change the counts and publish each change on the channel in the same step, so that every node
 * hears the changes in the order Redis made them (an instance publishing after the answer could come after
 * another instance's newer change). ARGV[1] is the instance's name, ARGV[2] the head of a presence event.
 */
#define LUA_TELL "local function tell(u, on) redis.call('PUBLISH', '" CHANNEL "', ARGV[2] .. on .. '\\n' .. u .. '\\n') end "
#define LUA_DROP /* one instance less for u: offline when none is left */                                                    \
    "local function drop(u, off) local n = redis.call('HINCRBY', KEYS[1], u, -1) "                                          \
    "  if n <= 0 then redis.call('HDEL', KEYS[1], u) tell(u, 0) off[#off + 1] = u end end "

/* KEYS: counts, the instance's users; ARGV: instance, head, user. {user} when they came online everywhere, else {}. */
static const char script_join[] = LUA_TELL "if redis.call('SADD', KEYS[2], ARGV[3]) == 1 and redis.call('HINCRBY', KEYS[1], ARGV[3], 1) == 1 "
                                           "then tell(ARGV[3], 1) return {ARGV[3]} end return {}";
/* {user} when they went offline everywhere, else {}. */
static const char script_leave[] = LUA_TELL LUA_DROP "local off = {} "
                                                     "if redis.call('SREM', KEYS[2], ARGV[3]) == 1 then drop(ARGV[3], off) end return off";
/*
 * KEYS: counts, instances, the instance's users; ARGV: instance, head, then its users now. Makes the
 * instance's set what it has now (after Redis was away, or lost its data). Returns {came online, went offline}.
 */
static const char script_sync[] =
    LUA_TELL LUA_DROP "local on, off, now = {}, {}, {} "
    "redis.call('SADD', KEYS[2], ARGV[1]) "
    "for i = 3, #ARGV do now[ARGV[i]] = true "
    "  if redis.call('SADD', KEYS[3], ARGV[i]) == 1 and redis.call('HINCRBY', KEYS[1], ARGV[i], 1) == 1 then "
    "    tell(ARGV[i], 1) on[#on + 1] = ARGV[i] end end "
    "for _, u in ipairs(redis.call('SMEMBERS', KEYS[3])) do "
    "  if not now[u] then redis.call('SREM', KEYS[3], u) drop(u, off) end end "
    "return {on, off}";
/*
 * KEYS: counts, instances, the instance's alive key; ARGV: instance, head, the key's time to live in ms. This
 * instance lives; every instance whose key expired is taken off. Returns the users now offline everywhere.
 */
static const char script_beat[] =
    LUA_TELL LUA_DROP "local off = {} "
    "redis.call('SET', KEYS[3], '1', 'PX', ARGV[3]) "
    "redis.call('SADD', KEYS[2], ARGV[1]) "
    "for _, inst in ipairs(redis.call('SMEMBERS', KEYS[2])) do "
    "  if redis.call('EXISTS', '" KEY_ALIVE "' .. inst) == 0 then "
    "    for _, u in ipairs(redis.call('SMEMBERS', '" KEY_USERS "' .. inst)) do drop(u, off) end "
    "    redis.call('DEL', '" KEY_USERS "' .. inst) redis.call('SREM', KEYS[2], inst) end end "
    "return off";

enum { PRESENCE_TTL_MS = 5000 };

/* A set of user ids (0 is no id), open-addressed. */
typedef struct idset {
    int64_t *slot;
    size_t cap, num;
} idset_t;

static size_t idset_home(const idset_t *s, int64_t id)
{
    return (size_t)(((uint64_t)id * 0x9E3779B97F4A7C15ull) >> 20) & (s->cap - 1);
}

static int idset_has(const idset_t *s, int64_t id)
{
    if (s->cap == 0 || id <= 0)
        return 0;
    for (size_t i = idset_home(s, id);; i = (i + 1) & (s->cap - 1)) {
        if (s->slot[i] == id)
            return 1;
        if (s->slot[i] == 0)
            return 0;
    }
}

static void idset_add(idset_t *s, int64_t id)
{
    if (id <= 0 || idset_has(s, id))
        return;
    if (2 * (s->num + 1) > s->cap) {
        idset_t bigger = {calloc(s->cap != 0 ? 2 * s->cap : 1024, sizeof(int64_t)), s->cap != 0 ? 2 * s->cap : 1024, 0};
        if (bigger.slot == NULL)
            return;
        for (size_t i = 0; i != s->cap; ++i)
            if (s->slot[i] != 0)
                idset_add(&bigger, s->slot[i]);
        free(s->slot);
        *s = bigger;
    }
    size_t i = idset_home(s, id);
    while (s->slot[i] != 0)
        i = (i + 1) & (s->cap - 1);
    s->slot[i] = id;
    ++s->num;
}

static void idset_remove(idset_t *s, int64_t id)
{
    size_t i, j;
    if (!idset_has(s, id))
        return;
    for (i = idset_home(s, id); s->slot[i] != id; i = (i + 1) & (s->cap - 1))
        ;
    /* backward shift: an id further in the run moves into the hole when its home is not between the hole and it */
    for (j = (i + 1) & (s->cap - 1); s->slot[j] != 0; j = (j + 1) & (s->cap - 1)) {
        size_t home = idset_home(s, s->slot[j]);
        if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
            s->slot[i] = s->slot[j];
            i = j;
        }
    }
    s->slot[i] = 0;
    --s->num;
}

/* Who is online on some node, as this one heard last; and while a snapshot is asked for, what was heard since. */
static idset_t online;
static struct {
    int asked;
    int64_t *user;
    uint8_t *on;
    size_t n, cap;
} heard;

int forum_bus_user_online(int64_t user_id)
{
    return bus.state != FORUM_BUS_OFF && idset_has(&online, user_id);
}

typedef struct presence_job {
    int64_t user;
    int on;
} presence_job_t;

/* The frame to everyone here, then the plugins' event, whose handlers may reach the database: on a fiber. */
static void presence_on_fiber(void *arg)
{
    presence_job_t *job = arg;
    forum_hub_presence(job->user, job->on);
    free(job);
}

/* A change Redis counted, heard on the channel. */
static void presence_changed(int64_t user, int on)
{
    if (heard.asked) {
        if (heard.n == heard.cap) {
            size_t cap = heard.cap != 0 ? 2 * heard.cap : 64;
            int64_t *u = realloc(heard.user, cap * sizeof(*u));
            uint8_t *o = u != NULL ? realloc(heard.on, cap) : NULL;
            if (u != NULL)
                heard.user = u;
            if (o != NULL)
                heard.on = o, heard.cap = cap;
        }
        if (heard.n != heard.cap)
            heard.user[heard.n] = user, heard.on[heard.n++] = (uint8_t)on;
    }
    if (on == idset_has(&online, user))
        return;
    if (on)
        idset_add(&online, user);
    else
        idset_remove(&online, user);
    presence_job_t *job = malloc(sizeof(*job));
    if (job == NULL)
        return;
    *job = (presence_job_t){user, on};
    forum_fiber_run(presence_on_fiber, job);
}

/*
 * The answer of a presence script. The changes it counted are not applied from it but from their events on
 * the channel, this instance's own included: answers come on one connection and other instances' events on
 * another, and only the channel has them all in the order Redis counted them.
 */
static void on_script(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply *reply = r;
    (void)privdata;
    if (ac == bus.pub && reply != NULL && reply->type == REDIS_REPLY_ERROR)
        forum_log(FORUM_LOG_ERROR, "bus: Redis refused a presence script: %s", reply->str);
}

/*
 * Everyone online anywhere, as Redis counted them when it answered (after the bus was away: changes were missed).
 * What was heard on the channel since the question came after or before that moment; either way each user's
 * last change heard is their state now, so it is applied over the answer. Connections here hear the difference.
 */
static void on_everyone(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply *reply = r;
    idset_t now = {NULL, 0, 0};
    int64_t *changed;
    size_t went = 0, came = 0;
    (void)privdata;
    heard.asked = 0;
    if (ac != bus.pub || reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        heard.n = 0;
        return;
    }
    for (size_t i = 0; i != reply->elements; ++i)
        if (reply->element[i]->type == REDIS_REPLY_STRING)
            idset_add(&now, strtoll(reply->element[i]->str, NULL, 10));
    for (size_t i = 0; i != heard.n; ++i)
        (heard.on[i] ? idset_add : idset_remove)(&now, heard.user[i]);
    heard.n = 0;
    /* who went and who came while this node was not hearing, told as the changes heard are */
    if ((changed = malloc((online.num + now.num + 1) * sizeof(*changed))) != NULL) {
        for (size_t i = 0; i != online.cap; ++i)
            if (online.slot[i] != 0 && !idset_has(&now, online.slot[i]))
                changed[went++] = online.slot[i];
        for (size_t i = 0; i != now.cap; ++i)
            if (now.slot[i] != 0 && !idset_has(&online, now.slot[i]))
                changed[went + came++] = now.slot[i];
        for (size_t i = 0; i != went + came; ++i)
            presence_changed(changed[i], i >= went);
        free(changed);
    }
    free(now.slot);
}

/* The head of this instance's presence events, which the scripts complete with "ON\nUSER\n" */
static void event_head(char *buf, size_t len)
{
    snprintf(buf, len, "%s\np\n", bus.instance);
}

void forum_bus_presence(int64_t user_id, int on)
{
    char users[200], head[200];
    if (bus.state != FORUM_BUS_UP)
        return; /* counted by the sync when Redis is back */
    snprintf(users, sizeof(users), KEY_USERS "%s", bus.instance);
    event_head(head, sizeof(head));
    redisAsyncCommand(bus.pub, on_script, NULL, "EVAL %s 2 %s %s %s %s %lld", on ? script_join : script_leave,
                      KEY_COUNTS, users, bus.instance, head, (long long)user_id);
}

/* This instance lives (its key's time to live starts again), and instances that stopped beating are taken off. */
static void presence_beat(void)
{
    char alive[200], head[200];
    snprintf(alive, sizeof(alive), KEY_ALIVE "%s", bus.instance);
    event_head(head, sizeof(head));
    redisAsyncCommand(bus.pub, on_script, NULL, "EVAL %s 3 %s %s %s %s %s %d", script_beat, KEY_COUNTS, KEY_INSTANCES, alive, bus.instance,
                      head, PRESENCE_TTL_MS);
}

/* Tells Redis who is on this instance (on connecting: Redis may have been away, or lost its data), then asks for everyone. */
static void presence_sync(void)
{
    char users[200], head[200];
    int64_t *ids;
    long got = forum_hub_local_users(&ids);
    size_t n = got > 0 ? (size_t)got : 0, argc = 0, at = 0;
    const char **argv = malloc((n + 8) * sizeof(*argv));
    size_t *lens = malloc((n + 8) * sizeof(*lens));
    char *nums = malloc(n * 21 + 1);

    /* without memory for the list nothing is sent: an empty one would take this node's users offline */
    if (got >= 0 && argv != NULL && lens != NULL && nums != NULL) {
        snprintf(users, sizeof(users), KEY_USERS "%s", bus.instance);
        event_head(head, sizeof(head));
        const char *fixed[] = {"EVAL", script_sync, "3", KEY_COUNTS, KEY_INSTANCES, users, bus.instance, head};
        for (size_t i = 0; i != FORUM_ARRAY_SIZE(fixed); ++i)
            argv[argc] = fixed[i], lens[argc++] = strlen(fixed[i]);
        for (size_t i = 0; i != n; ++i) {
            int len = snprintf(nums + at, 21, "%lld", (long long)ids[i]);
            argv[argc] = nums + at, lens[argc++] = (size_t)len;
            at += (size_t)len + 1;
        }
        presence_beat(); /* first: the instance lives before it is counted */
        redisAsyncCommandArgv(bus.pub, on_script, NULL, (int)argc, argv, lens);
        heard.asked = 1;
        heard.n = 0;
        redisAsyncCommand(bus.pub, on_everyone, NULL, "HKEYS %s", KEY_COUNTS);
    }
    free(ids);
    free(argv);
    free(lens);
    free(nums);
}

/* --- limits every node shares --- */

/* KEYS: the bucket; ARGV: burst, window in ms, tokens to take (< 0: to give back). The wait in ms, 0 when taken. */
static const char script_limit[] =
    "local burst, window, take = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]) "
    "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000) "
    "local v = redis.call('HMGET', KEYS[1], 'tokens', 'at') "
    "local tokens, at = tonumber(v[1]) or burst, tonumber(v[2]) or now "
    "if now > at then tokens = math.min(burst, tokens + (now - at) * burst / window) end "
    "local wait = 0 "
    "if take > 0 and tokens < take then wait = math.ceil((take - tokens) * window / burst) "
    "else tokens = math.min(burst, tokens - take) end "
    "redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now)) "
    "redis.call('PEXPIRE', KEYS[1], window) "
    "return wait";

typedef struct limit_call {
    forum_fiber_t *fiber;
    int done;
    int64_t wait;
} limit_call_t;

static void on_limit(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply *reply = r;
    limit_call_t *call = privdata;
    (void)ac;
    call->wait = reply != NULL && reply->type == REDIS_REPLY_INTEGER ? (int64_t)reply->integer : -1;
    call->done = 1;
    forum_fiber_wake(call->fiber);
}

int64_t forum_bus_shared_limit(const char *name, const char *key, unsigned burst, int64_t window_ms, int take)
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    char bucket[64 + 2 * 16 + 8];
    limit_call_t call = {forum_fiber_self(), 0, -1};
    size_t at;

    if (bus.state != FORUM_BUS_UP || call.fiber == NULL || burst == 0 || window_ms <= 0 || take == 0)
        return -1;
    /* the key (an address, an account) is kept as a digest: Redis holds no address, and every key is as long */
    SHA256((const unsigned char *)key, strlen(key), digest);
    at = (size_t)snprintf(bucket, 64, "forumd:limit:%.32s:", name);
    for (size_t i = 0; i != 16; ++i)
        at += (size_t)snprintf(bucket + at, 3, "%02x", digest[i]);
    if (redisAsyncCommand(bus.pub, on_limit, &call, "EVAL %s 1 %s %u %lld %d", script_limit, bucket, burst, (long long)window_ms,
                          take) != REDIS_OK)
        return -1;
    /* a callback waiting for Redis must not keep a database connection others need (unless in a transaction) */
    if (forum_pg_on())
        forum_pg_release();
    /* the answer, or the connection's end (hiredis then calls back with no reply), wakes this callback */
    while (!call.done)
        forum_fiber_suspend();
    return call.wait;
}

/*
 * --- the two connections: one publishes, one is subscribed (a subscribed connection can do nothing else) ---
 *
 * One timer ticks every second while there is a bus. Up, it publishes a heartbeat: the answer to the PUBLISH
 * shows the publishing connection alive, the heartbeat coming back on the channel the subscribed one. A
 * heartbeat left waiting SILENCE_MS means the bus is lost, as a connection that closes does: hiredis's libuv
 * adapter ignores a socket error (a refused connect, a reset), so its callbacks alone would wait forever.
 * What the sockets hold is read first, and the wait counts from the heartbeat's sending: a loop kept busy
 * (a broadcast to many) is not taken for a silent Redis. Down, the tick rings every connection (the
 * database is the doorbell meanwhile; not while the last such rings are still reading) and connects again.
 */

static void went_up(void)
{
    if (bus.state == FORUM_BUS_UP || !bus.pub_up || !bus.sub_up)
        return;
    bus.pub_wait_ms = bus.sub_wait_ms = 0;
    if (bus.state == FORUM_BUS_DOWN) {
        ++bus.catch_ups;
        forum_log(FORUM_LOG_INFO, "bus: Redis at %s:%d is back after %lld ms; every connection catches up from the database",
                  bus.host, bus.port, (long long)(forum_mono_ms() - bus.down_since_ms));
        bus.state = FORUM_BUS_UP;
        forum_order_sync(); /* what was published elsewhere meanwhile: every connection behind the sequence is rung */
        /* and what this node stored meanwhile (or whose PUBLISH went with the connection) rings everyone elsewhere */
        publish('R', FORUM_PUB_REPLAYABLE, NULL, 0, "", 0, "", 0);
        presence_sync();
        return;
    }
    bus.state = FORUM_BUS_UP;
    forum_log(FORUM_LOG_INFO, "bus: connected to Redis at %s:%d as node %s", bus.host, bus.port, bus.node);
    forum_order_sync();
    presence_sync();
}

/* Lets both connections go (the next tick opens new ones); the first loss after being up is logged. */
static void went_down(const char *why)
{
    redisAsyncContext *pub = bus.pub, *sub = bus.sub;
    bus.pub = bus.sub = NULL;
    bus.pub_up = bus.sub_up = 0;
    forum_order_lost();
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
    bus.pub_wait_ms = 0; /* answers come in order: every PUBLISH before this one was answered */
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
    /* named, so that CLIENT LIST shows which instance each connection is */
    if (bus.sub == NULL || redisAsyncCommand(bus.pub, NULL, NULL, "CLIENT SETNAME forumd:%s", bus.instance) != REDIS_OK ||
        redisAsyncCommand(bus.sub, NULL, NULL, "CLIENT SETNAME forumd:%s", bus.instance) != REDIS_OK ||
        redisAsyncCommand(bus.pub, on_answer, NULL, "PING") != REDIS_OK ||
        redisAsyncCommand(bus.sub, on_message, NULL, "SUBSCRIBE %s", CHANNEL) != REDIS_OK)
        went_down("cannot open a connection");
}

void forum_bus_read_pending(void)
{
    if (bus.state == FORUM_BUS_UP && bus.sub != NULL)
        redisAsyncHandleRead(bus.sub);
}

static void heartbeat(void);

static void on_tick(uv_timer_t *t)
{
    int64_t now = forum_mono_ms();
    (void)t;
    switch (bus.state) {
    case FORUM_BUS_UP:
        /* what waits in the sockets first (a callback may find the bus gone) */
        if (bus.pub != NULL)
            redisAsyncHandleRead(bus.pub);
        if (bus.sub != NULL)
            redisAsyncHandleRead(bus.sub);
        if (bus.state != FORUM_BUS_UP)
            break;
        if ((bus.pub_wait_ms != 0 && now - bus.pub_wait_ms > SILENCE_MS) || (bus.sub_wait_ms != 0 && now - bus.sub_wait_ms > SILENCE_MS)) {
            went_down("no answer for 3 s");
        } else {
            heartbeat();
            presence_beat();
        }
        break;
    case FORUM_BUS_CONNECTING:
    case FORUM_BUS_DOWN:
        if (bus.state == FORUM_BUS_DOWN && forum_replay_rings_busy() == 0)
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
    /* the pid tells a restart from the process before it; the nonce two nodes given one name (containers: pid 1) */
    uint32_t nonce = 0;
    if (getrandom(&nonce, sizeof(nonce), 0) != sizeof(nonce))
        nonce = (uint32_t)forum_now_ms();
    snprintf(bus.instance, sizeof(bus.instance), "%s/%ld/%08x", bus.node, (long)getpid(), nonce);
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
    /*
     * hiredis resolves a host name with a blocking getaddrinfo at every connect: done once here, before the
     * loop serves, so that reconnecting while DNS is slow never stalls it (a new address needs a restart)
     */
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    char numeric[INET6_ADDRSTRLEN];
    if (getaddrinfo(conf->bus_redis_host, NULL, &hints, &ai) == 0) {
        if (getnameinfo(ai->ai_addr, ai->ai_addrlen, numeric, sizeof(numeric), NULL, 0, NI_NUMERICHOST) != 0)
            snprintf(numeric, sizeof(numeric), "%s", conf->bus_redis_host);
        freeaddrinfo(ai);
    } else {
        snprintf(numeric, sizeof(numeric), "%s", conf->bus_redis_host);
    }
    bus.host = strdup(numeric);
    bus.port = (int)conf->bus_redis_port;
    bus.state = FORUM_BUS_CONNECTING;
    uv_timer_init(loop, &bus.tick);
    uv_unref((uv_handle_t *)&bus.tick);
    uv_timer_start(&bus.tick, on_tick, TICK_MS, TICK_MS);
    forum_order_start(loop);
    connect_both();
    return 0;
}

void forum_bus_stop(void)
{
    redisAsyncContext *pub = bus.pub, *sub = bus.sub;
    if (bus.state == FORUM_BUS_OFF)
        return;
    forum_order_stop(); /* before the state: runs of callbacks that will not end are left for the others to read */
    bus.state = FORUM_BUS_OFF;
    bus.pub = bus.sub = NULL;
    uv_timer_stop(&bus.tick);
    uv_close((uv_handle_t *)&bus.tick, NULL);
    if (pub != NULL) {
        /* the others take this instance's users off at their next beat, not when its key expires */
        char alive[200];
        snprintf(alive, sizeof(alive), KEY_ALIVE "%s", bus.instance);
        redisAsyncCommand(pub, NULL, NULL, "DEL %s", alive);
        redisAsyncDisconnect(pub); /* once what is queued is written */
    }
    if (sub != NULL)
        redisAsyncFree(sub);
    free(bus.host);
    bus.host = NULL;
    free(online.slot);
    free(heard.user);
    free(heard.on);
    memset(&online, 0, sizeof(online));
    memset(&heard, 0, sizeof(heard));
}

/* --- publishing --- */

static void publish(char kind, int flags, const int64_t *ids, size_t n, const char *payload, size_t len, const char *payload2,
                    size_t len2)
{
    char head[256];
    size_t cap, at;
    char *buf;

    if (bus.state == FORUM_BUS_OFF)
        return;
    if (bus.state != FORUM_BUS_UP) {
        ++bus.dropped; /* messages are rung from the database meanwhile (on_tick); this frame is lost */
        return;
    }
    at = (size_t)snprintf(head, sizeof(head), "%s\n%c\n%d\n", bus.instance, kind, flags & 0x7);
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
    int64_t now = forum_mono_ms();
    if (bus.pub_wait_ms == 0)
        bus.pub_wait_ms = now;
    if (bus.sub_wait_ms == 0)
        bus.sub_wait_ms = now;
    publish('h', 0, NULL, 0, "", 0, "", 0);
}

void forum_bus_publish_order(const char *msg, size_t len)
{
    publish('m', 0, NULL, 0, msg, len, "", 0);
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
    const struct {
        const char *name;
        uint64_t value;
    } counts[] = {{"published", bus.published}, {"received", bus.received}, {"dropped", bus.dropped}, {"losses", bus.losses},
                  {"catch_ups", bus.catch_ups}};
    for (size_t i = 0; i != FORUM_ARRAY_SIZE(counts); ++i) {
        forum_json_str(g, counts[i].name);
        yajl_gen_integer(g, (long long)counts[i].value);
    }
    forum_order_status(g);
    yajl_gen_map_close(g);
}
