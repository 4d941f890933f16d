/*
 * GET /api/users: everyone but you, in two parts that follow each other. First those you exchanged
 * messages with, by their conversation's last message id, newest first (the conversations_recent
 * index); then everyone else by nickname, case-insensitive (the nickname column's NOCASE unique index).
 *
 * A page costs the same however many accounts exist: it examines at most `limit` + USERS_SCAN_ROWS
 * index entries. Entries are skipped when they do not belong on the list (a nickname outside the prefix
 * among your conversations, someone you have a conversation with among the others, yourself); when the
 * budget runs out first the page is shorter than `limit`, possibly empty, and `next` goes on from the
 * last entry examined. `next` is null only once both parts are exhausted.
 *
 * The cursor is opaque to clients: base64url of "1:<last message id>" (go on below that id among the
 * conversations) or "2:<nickname>" (go on after that nickname among the others; empty: from the start).
 */
#include <stdio.h>
#include <string.h>
#include "chat.h"

#define api chat_api

enum {
    USERS_LIMIT_DEFAULT = 50,
    USERS_LIMIT_MAX = 200,
    USERS_SCAN_ROWS = 1000, /* index entries a page may examine beyond the rows it returns */
    NICKNAME_MAX = CHAT_LISTED_NICKNAME_MAX, /* bytes of a nickname in a cursor (longer ones are not in part 2) */
    PREFIX_MAX = 256,       /* bytes of q */
};

typedef struct position {
    int part;          /* 1: conversations, 2: everyone else */
    int64_t before_id; /* part 1: the next conversation's last message id is below it */
    char nickname[NICKNAME_MAX + 1]; /* part 2: the next nickname is after it; "" from the start */
} position_t;

typedef struct prefix {
    char low[PREFIX_MAX + 1];  /* the prefix, ASCII letters folded as NOCASE folds them; "" matches all */
    char high[PREFIX_MAX + 2]; /* the least NOCASE key above every nickname with the prefix (a last character may grow a byte) */
    int has_high;
} prefix_t;

/* --- UTF-8, strictly (shortest form, no surrogates, nothing above U+10FFFF), as the core's gate reads it --- */

/* The code point at `p` (of `len` bytes) into `*cp`; its length in bytes, or 0 when it is not UTF-8. */
static size_t utf8_next(const unsigned char *p, size_t len, uint32_t *cp)
{
    static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
    size_t n = p[0] < 0x80 ? 1 : (p[0] & 0xe0) == 0xc0 ? 2 : (p[0] & 0xf0) == 0xe0 ? 3 : (p[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (n == 0 || n > len)
        return 0;
    *cp = n == 1 ? p[0] : p[0] & (0x7f >> n);
    for (size_t i = 1; i != n; ++i) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        *cp = *cp << 6 | (p[i] & 0x3f);
    }
    if (*cp < least[n] || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
        return 0;
    return n;
}

static int utf8_valid(const unsigned char *p, size_t len)
{
    uint32_t cp;
    for (size_t n; len != 0; p += n, len -= n)
        if ((n = utf8_next(p, len, &cp)) == 0)
            return 0;
    return 1;
}

/* Writes `cp` at `out`; the bytes written. */
static size_t utf8_put(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    size_t n = cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    for (size_t i = n - 1; i != 0; --i, cp >>= 6)
        out[i] = (char)(0x80 | (cp & 0x3f));
    out[0] = (char)((0xf00 >> n) | cp); /* 0xc0, 0xe0 or 0xf0 and what is left of cp */
    return n;
}

/* --- the cursor --- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void base64url(const unsigned char *in, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < len ? in[i + 2] : 0);
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        if (i + 1 < len)
            out[o++] = b64[v >> 6 & 63];
        if (i + 2 < len)
            out[o++] = b64[v & 63];
    }
    out[o] = '\0';
}

/* Decodes unpadded base64url; the length written, or -1 when `in` is not that or does not fit. */
static long unbase64url(const char *in, unsigned char *out, size_t size)
{
    size_t len = strlen(in), o = 0;
    uint32_t v = 0;
    int bits = 0;
    if (len % 4 == 1)
        return -1;
    for (size_t i = 0; i != len; ++i) {
        const char *p = in[i] != '\0' ? strchr(b64, in[i]) : NULL;
        if (p == NULL)
            return -1;
        v = v << 6 | (uint32_t)(p - b64);
        if ((bits += 6) >= 8) {
            bits -= 8;
            if (o == size)
                return -1;
            out[o++] = (unsigned char)(v >> bits);
        }
    }
    if ((v & ((1u << bits) - 1)) != 0)
        return -1; /* leftover bits must be zero: one text per cursor */
    return (long)o;
}

static void write_cursor(yajl_gen g, const position_t *pos)
{
    char text[NICKNAME_MAX + 32], coded[(sizeof(text) + 2) / 3 * 4 + 1];
    int len = pos->part == 1 ? snprintf(text, sizeof(text), "1:%lld", (long long)pos->before_id)
                             : snprintf(text, sizeof(text), "2:%s", pos->nickname);
    base64url((const unsigned char *)text, (size_t)len, coded);
    pu_str(g, coded);
}

/* Reads a cursor into `pos`; false when it is not one this server wrote. */
static int read_cursor(const char *cursor, position_t *pos)
{
    unsigned char text[NICKNAME_MAX + 32];
    long len = unbase64url(cursor, text, sizeof(text) - 1);
    if (len < 2 || text[1] != ':' || memchr(text, '\0', (size_t)len) != NULL)
        return 0;
    text[len] = '\0';
    if (text[0] == '1') {
        int64_t id = pu_parse_id((const char *)text + 2);
        pos->part = 1;
        pos->before_id = id;
        return id != 0;
    }
    /* a nickname is text: bytes that are not UTF-8 were never a cursor of this server (nor can they be bound) */
    if (text[0] == '2' && len - 2 <= NICKNAME_MAX && utf8_valid(text + 2, (size_t)len - 2)) {
        pos->part = 2;
        memcpy(pos->nickname, text + 2, (size_t)len - 1);
        return 1;
    }
    return 0;
}

/* --- the prefix, as NOCASE sees it: ASCII letters folded to lower case, every other byte as it is --- */

static unsigned char fold(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

static int nocase_cmp(const char *a, const char *b)
{
    for (;; ++a, ++b) {
        unsigned char x = fold((unsigned char)*a), y = fold((unsigned char)*b);
        if (x != y || x == '\0')
            return x - y;
    }
}

static int has_prefix(const char *nickname, const prefix_t *p)
{
    for (const char *q = p->low; *q != '\0'; ++q, ++nickname)
        if (*nickname == '\0' || fold((unsigned char)*nickname) != (unsigned char)*q)
            return 0;
    return 1;
}

/*
 * A prefix as a range of the NOCASE index: [low, high). `high` is `low` with its last character raised by
 * one code point: UTF-8 orders bytes as it orders code points, so every key with the prefix is below it
 * and every key from it on is not. The bound is text, as every bound a statement takes must be: a
 * surrogate is skipped, and U+10FFFF, which has no next, is dropped and the character before it raised
 * instead (no upper bound when nothing is left). A character that would land on an upper-case letter
 * goes past them (to '['), because NOCASE folds them and no folded key holds one. `_`, `%` and every
 * other character are themselves: no LIKE, no escaping. False when `q` is too long or not UTF-8.
 */
static int make_prefix(const char *q, prefix_t *p)
{
    size_t len = strlen(q);
    if (len > PREFIX_MAX || !utf8_valid((const unsigned char *)q, len))
        return 0;
    for (size_t i = 0; i != len; ++i)
        p->low[i] = (char)fold((unsigned char)q[i]);
    p->low[len] = '\0';
    p->has_high = 0;
    while (len != 0) {
        size_t start = len - 1;
        uint32_t cp;
        while (start != 0 && ((unsigned char)p->low[start] & 0xc0) == 0x80)
            --start;
        utf8_next((const unsigned char *)p->low + start, len - start, &cp); /* valid: checked above */
        len = start;
        if (cp == 0x10ffff)
            continue; /* no next code point: carry to the character before */
        cp = cp + 1 == 0xd800 ? 0xe000 : cp + 1;
        if (cp >= 'A' && cp <= 'Z')
            cp = '[';
        memcpy(p->high, p->low, start);
        p->high[start + utf8_put(cp, p->high + start)] = '\0';
        p->has_high = 1;
        break;
    }
    return 1;
}

/* --- the page --- */

/* `preview`: the last message's first characters, NULL without one (written as null) */
static void write_user(yajl_gen g, int64_t id, const char *nickname, const char *last_at, int64_t unread, int64_t last_id,
                       const char *preview)
{
    yajl_gen_map_open(g);
    pu_key_int(g, "id", id);
    pu_key_str(g, "nickname", nickname);
    pu_str(g, "online");
    yajl_gen_bool(g, api->user_online(id));
    pu_key_str(g, "last_message_at", last_at);
    pu_key_int(g, "unread", unread);
    /* the order's own key: ties of last_message_at (same millisecond) are broken by it */
    pu_str(g, "last_message_id");
    if (last_id == 0)
        yajl_gen_null(g);
    else
        yajl_gen_integer(g, last_id);
    pu_key_str(g, "last_message_preview", preview);
    yajl_gen_map_close(g);
}

typedef struct page {
    yajl_gen g;
    int64_t me, limit, written, budget;
    const prefix_t *prefix;
    position_t pos; /* after the last entry examined, or written once the page is full */
    int full;       /* a row past `limit` was found: there is more */
    int done;       /* both parts are exhausted */
} page_t;

/* Part 1 from page->pos; -1 on a database error. */
static int walk_conversations(page_t *page)
{
    int64_t asked = page->budget, seen = 0;
    forum_stmt_t *s = chat_conversations_page(page->me, page->pos.before_id, asked);
    int ret;
    if (s == NULL)
        return -1;
    while ((ret = api->db_step(s)) == FORUM_DB_ROW) {
        ++seen;
        --page->budget;
        const char *nickname = api->db_col_text(s, 1);
        int64_t last_id = api->db_col_int(s, 4);
        if (has_prefix(nickname, page->prefix)) {
            if (page->written == page->limit) {
                page->full = 1;
                return 0;
            }
            write_user(page->g, api->db_col_int(s, 0), nickname, api->db_col_text(s, 2), api->db_col_int(s, 3), last_id,
                       api->db_col_text(s, 5));
            ++page->written;
        }
        page->pos.before_id = last_id;
    }
    if (ret != FORUM_DB_DONE)
        return -1;
    if (seen < asked) {
        /* no conversation left: everyone else, from the first nickname */
        page->pos.part = 2;
        page->pos.nickname[0] = '\0';
    }
    return 0;
}

/* Part 2 from page->pos; -1 on a database error. */
static int walk_others(page_t *page)
{
    int64_t asked = page->budget, seen = 0;
    const prefix_t *p = page->prefix;
    /* a cursor below the prefix (from another search) starts at the prefix */
    int inclusive = page->pos.nickname[0] == '\0' || nocase_cmp(page->pos.nickname, p->low) < 0;
    forum_stmt_t *s = chat_nicknames_page(page->me, inclusive ? p->low : page->pos.nickname, inclusive, p->has_high ? p->high : NULL,
                                          asked);
    int ret;
    if (s == NULL)
        return -1;
    while ((ret = api->db_step(s)) == FORUM_DB_ROW) {
        ++seen;
        --page->budget;
        int64_t id = api->db_col_int(s, 0);
        const char *nickname = api->db_col_text(s, 1);
        if (id != page->me && !api->db_col_int(s, 2) && has_prefix(nickname, p)) {
            if (page->written == page->limit) {
                page->full = 1;
                return 0;
            }
            write_user(page->g, id, nickname, NULL, 0, 0, NULL);
            ++page->written;
        }
        /* whole: the statement leaves out nicknames longer than the position holds, so none is cut mid-character */
        snprintf(page->pos.nickname, sizeof(page->pos.nickname), "%s", nickname);
    }
    if (ret != FORUM_DB_DONE)
        return -1;
    page->done = seen < asked;
    return 0;
}

int chat_users_route(forum_req_t *req)
{
    const char *q = api->req_query(req, "q"), *after = api->req_query(req, "after");
    prefix_t prefix;
    page_t page = {.me = api->req_user(req), .pos = {.part = 1, .before_id = INT64_MAX}, .prefix = &prefix};

    if ((page.limit = pu_query_int(api, req, "limit", 1, USERS_LIMIT_MAX, USERS_LIMIT_DEFAULT)) < 0)
        return 0;
    if (after != NULL && !read_cursor(after, &page.pos)) {
        api->res_error(req, 400, "bad_request", "after must be a cursor this server gave (next)", "after");
        return 0;
    }
    if (!make_prefix(q != NULL ? q : "", &prefix)) {
        api->res_error(req, 400, "bad_request", "q is too long", "q");
        return 0;
    }
    page.budget = page.limit + 1 + USERS_SCAN_ROWS;
    page.g = api->res_json_begin(req, 200);
    yajl_gen_map_open(page.g);
    pu_str(page.g, "users");
    yajl_gen_array_open(page.g);
    if (page.pos.part == 1 && walk_conversations(&page) != 0)
        goto Error;
    if (!page.full && page.pos.part == 2 && page.budget > 0 && walk_others(&page) != 0)
        goto Error;
    yajl_gen_array_close(page.g);
    pu_str(page.g, "next");
    if (page.done && !page.full)
        yajl_gen_null(page.g);
    else
        write_cursor(page.g, &page.pos);
    yajl_gen_map_close(page.g);
    api->res_json_end(req);
    return 0;
Error:
    api->res_db_error(req, "the users list could not be read");
    return 0;
}
