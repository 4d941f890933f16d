/*
 * Sessions: a 256-bit random token travels in the `sid` cookie; the database keeps only its
 * SHA-256, so a copy of the database opens no session.
 *
 * On PostgreSQL the sessions found are also kept in memory (a direct-mapped cache by hash), so that a
 * request does not cost a round trip to the database server before its route runs. A deleted or changed
 * session row is named on the channel forum_sessions by a trigger (core migration 3), heard on every
 * connection: its entry goes, on every forumd. A lookup answered while such a notice came is not kept
 * (the cache's generation moved), and a connection that comes back after a loss empties the cache.
 */
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include "forum.h"

enum { TOKEN_BYTES = 32, TOKEN_HEX = 2 * TOKEN_BYTES, CACHE_SLOTS = 1 << 16 };

typedef struct cached {
    uint8_t hash[FORUM_SESSION_HASH_LEN];
    int64_t user_id, expires_ms; /* expires_ms 0: the slot is empty */
} cached_t;

static cached_t *cache;
static uint64_t cache_generation;

static cached_t *slot_of(const uint8_t *hash)
{
    uint32_t i;
    memcpy(&i, hash, sizeof(i)); /* a SHA-256: its bytes are as good as any hash of them */
    return cache + (i & (CACHE_SLOTS - 1));
}

void forum_session_cache_enable(int on)
{
    free(cache);
    cache = on ? calloc(CACHE_SLOTS, sizeof(*cache)) : NULL;
    ++cache_generation;
}

void forum_session_cache_clear(void)
{
    if (cache != NULL)
        memset(cache, 0, CACHE_SLOTS * sizeof(*cache));
    ++cache_generation;
}

static void cache_forget(const uint8_t *hash)
{
    ++cache_generation;
    if (cache == NULL)
        return;
    cached_t *c = slot_of(hash);
    if (memcmp(c->hash, hash, sizeof(c->hash)) == 0)
        c->expires_ms = 0;
}

static int unhex(const char *s, size_t len, uint8_t *out)
{
    if (len != TOKEN_HEX)
        return -1;
    for (size_t i = 0; i != TOKEN_BYTES; ++i) {
        int v = 0;
        for (int j = 0; j != 2; ++j) {
            char c = s[2 * i + j];
            v <<= 4;
            if (c >= '0' && c <= '9')
                v |= c - '0';
            else if (c >= 'a' && c <= 'f')
                v |= c - 'a' + 10;
            else
                return -1;
        }
        out[i] = (uint8_t)v;
    }
    return 0;
}

int forum_session_create(int64_t user_id, int64_t lifetime_ms, char *token, forum_session_t *out)
{
    static const char digits[] = "0123456789abcdef";
    uint8_t raw[TOKEN_BYTES];
    forum_stmt_t *s;
    int64_t now = forum_now_ms();

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        forum_db_fail_other();
        return -1;
    }
    for (size_t i = 0; i != TOKEN_BYTES; ++i) {
        token[2 * i] = digits[raw[i] >> 4];
        token[2 * i + 1] = digits[raw[i] & 15];
    }
    token[TOKEN_HEX] = '\0';
    out->user_id = user_id;
    out->expires_ms = now + lifetime_ms;
    SHA256(raw, sizeof(raw), out->hash);

    if ((s = forum_db_stmt("INSERT INTO sessions (token_hash, user_id, created_ms, expires_ms) VALUES (?, ?, ?, ?)")) == NULL)
        return -1;
    forum_db_bind_blob(s, 1, out->hash, sizeof(out->hash));
    forum_db_bind_int(s, 2, user_id);
    forum_db_bind_int(s, 3, now);
    forum_db_bind_int(s, 4, out->expires_ms);
    return forum_db_step(s) == FORUM_DB_DONE ? 0 : -1;
}

int forum_session_find(const char *token, size_t len, forum_session_t *out)
{
    uint8_t raw[TOKEN_BYTES];
    forum_stmt_t *s;

    if (unhex(token, len, raw) != 0)
        return -1;
    SHA256(raw, sizeof(raw), out->hash);
    uint64_t generation = cache_generation;
    if (cache != NULL) {
        cached_t *c = slot_of(out->hash);
        if (c->expires_ms > forum_now_ms() && memcmp(c->hash, out->hash, sizeof(c->hash)) == 0) {
            out->user_id = c->user_id;
            out->expires_ms = c->expires_ms;
            return 0;
        }
    }
    if ((s = forum_db_stmt("SELECT user_id, expires_ms FROM sessions WHERE token_hash = ? AND expires_ms > ?")) == NULL)
        return -2;
    forum_db_bind_blob(s, 1, out->hash, sizeof(out->hash));
    forum_db_bind_int(s, 2, forum_now_ms());
    switch (forum_db_step(s)) {
    case FORUM_DB_ROW:
        break;
    case FORUM_DB_DONE:
        return -1;
    default: /* not "no session": the client must not take it for a logout */
        return -2;
    }
    out->user_id = forum_db_col_int(s, 0);
    out->expires_ms = forum_db_col_int(s, 1);
    if (cache != NULL && cache_generation == generation) {
        cached_t *c = slot_of(out->hash);
        memcpy(c->hash, out->hash, sizeof(c->hash));
        c->user_id = out->user_id;
        c->expires_ms = out->expires_ms;
    }
    return 0;
}

void forum_session_forget_hex(const char *hex)
{
    uint8_t hash[FORUM_SESSION_HASH_LEN];
    if (unhex(hex, strlen(hex), hash) == 0)
        cache_forget(hash);
    else
        forum_session_cache_clear(); /* a notice without a hash: the table was emptied (TRUNCATE) */
}

int forum_session_delete(const uint8_t *hash)
{
    forum_stmt_t *s = forum_db_stmt("DELETE FROM sessions WHERE token_hash = ?");
    cache_forget(hash); /* before the delete: a lookup answered meanwhile is not kept either */
    if (s == NULL)
        return -1;
    forum_db_bind_blob(s, 1, hash, FORUM_SESSION_HASH_LEN);
    return forum_db_step(s) == FORUM_DB_DONE ? 0 : -1;
}

size_t forum_session_cookie(const char *header, size_t len, const char **value)
{
    const char *p = header, *end = header + len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == ';' || *p == '\t'))
            ++p;
        const char *name = p;
        while (p < end && *p != '=' && *p != ';')
            ++p;
        size_t name_len = (size_t)(p - name);
        while (name_len != 0 && (name[name_len - 1] == ' ' || name[name_len - 1] == '\t'))
            --name_len;
        if (p == end || *p == ';')
            continue;
        ++p;
        while (p < end && (*p == ' ' || *p == '\t'))
            ++p;
        const char *v = p;
        while (p < end && *p != ';')
            ++p;
        size_t vlen = (size_t)(p - v);
        while (vlen != 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
            --vlen;
        if (name_len == 3 && memcmp(name, "sid", 3) == 0 && vlen != 0) {
            *value = v;
            return vlen;
        }
    }
    return 0;
}

size_t forum_session_sids(const h2o_headers_t *headers, h2o_iovec_t *sids, size_t max)
{
    size_t n = 0, cookies = 0, bytes = 0;
    ssize_t i = -1;
    /* The scan is bounded as well as the values: an HTTP/2 client can repeat one 4 KB cookie header thousands of
     * times for the price of a byte each (HPACK), and every value costs a hash and a database lookup. */
    while (n != max && cookies != FORUM_SESSION_COOKIE_HEADERS_MAX &&
           (i = h2o_find_header(headers, H2O_TOKEN_COOKIE, i)) != -1) {
        const h2o_iovec_t *header = &headers->entries[i].value;
        size_t room = FORUM_SESSION_COOKIE_BYTES_MAX - bytes, len = header->len < room ? header->len : room;
        const char *p = header->base, *end = p + len, *v;
        size_t vlen;
        ++cookies;
        bytes += len;
        while (n != max && p < end && (vlen = forum_session_cookie(p, (size_t)(end - p), &v)) != 0) {
            sids[n++] = h2o_iovec_init(v, vlen);
            p = v + vlen;
        }
        if (bytes == FORUM_SESSION_COOKIE_BYTES_MAX)
            break;
    }
    return n;
}

int forum_session_of_request(h2o_req_t *req, forum_session_t *out)
{
    h2o_iovec_t sids[FORUM_SESSION_SIDS_MAX];
    char copies[FORUM_SESSION_SIDS_MAX][80];
    size_t n = forum_session_sids(&req->headers, sids, FORUM_SESSION_SIDS_MAX);
    int ret = -1;
    /* a lookup may suspend (PostgreSQL) while the request goes away: the tokens are copied out of it first */
    for (size_t i = 0; i != n; ++i) {
        size_t len = sids[i].len < sizeof(copies[i]) ? sids[i].len : sizeof(copies[i]) - 1; /* longer is no token anyway */
        memcpy(copies[i], sids[i].base, len);
        copies[i][len] = '\0';
        sids[i] = h2o_iovec_init(copies[i], sids[i].len < sizeof(copies[i]) ? len : 0);
    }
    /* the first few sids are all tried: a stale or planted one must not hide the live one behind it */
    for (size_t i = 0; i != n; ++i) {
        int found = forum_session_find(sids[i].base, sids[i].len, out);
        if (found == 0)
            return 0;
        if (found == -2)
            ret = -2;
    }
    return ret;
}

/* Removes expired sessions a bounded batch at a time; returns how many went. */
int forum_session_purge(void)
{
    forum_stmt_t *s = forum_db_stmt("DELETE FROM sessions WHERE token_hash IN "
                                    "(SELECT token_hash FROM sessions WHERE expires_ms <= ? LIMIT 1000)");
    if (s == NULL)
        return 0;
    forum_db_bind_int(s, 1, forum_now_ms());
    return forum_db_step(s) == FORUM_DB_DONE ? forum_db_changes() : 0;
}
