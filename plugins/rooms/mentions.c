/*
 * Mentions: `@nickname` in a message body marks that member as mentioned (anyone for the lobby; never the
 * sender). A token is `@` followed by the characters a nickname may hold (auth's rule: A-Z a-z 0-9 _ . -),
 * where the `@` does not continue a word (an address like a@b.org mentions nobody). A token that names
 * nobody and ends in dots is tried once more without them ("thanks @bob."). At most ROOMS_MENTIONS_MAX
 * distinct tokens are looked up per message, each one indexed lookup.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "rooms.h"

#define api rooms_api

enum { NICKNAME_MIN = 3, NICKNAME_MAX = 32 };

static int nickname_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

/* True when the token of `len` bytes at `t` is already in the list `list` of `used` bytes. */
static int listed(const char *list, size_t used, const char *t, size_t len)
{
    for (size_t off = 0; off < used;) {
        size_t l = strlen(list + off);
        if (l == len && strncasecmp(list + off, t, len) == 0)
            return 1;
        off += l + 1;
    }
    return 0;
}

char *rooms_mention_tokens(const char *body, size_t len)
{
    /* every token is at most NICKNAME_MAX bytes and its NUL: the buffer never grows */
    char *list = malloc(ROOMS_MENTIONS_MAX * (NICKNAME_MAX + 1) + 1);
    size_t used = 0, count = 0;
    if (list == NULL)
        return NULL;
    for (size_t i = 0; i < len && count != ROOMS_MENTIONS_MAX; ++i) {
        if (body[i] != '@' || (i > 0 && nickname_char((unsigned char)body[i - 1])))
            continue;
        size_t start = i + 1, end = start;
        while (end < len && nickname_char((unsigned char)body[end]))
            ++end;
        i = end - 1;
        size_t tlen = end - start;
        if (tlen < NICKNAME_MIN || tlen > NICKNAME_MAX || listed(list, used, body + start, tlen))
            continue;
        memcpy(list + used, body + start, tlen);
        list[used + tlen] = '\0';
        used += tlen + 1;
        ++count;
    }
    list[used] = '\0';
    return list;
}

/*
 * The user whose nickname is `t` (case-insensitive): 0 when none, -1 when the read failed. The column is NOCASE
 * on SQLite, citext on PostgreSQL, where a text parameter would compare case-sensitively: hence the cast.
 */
static int64_t user_named(const char *t, size_t len)
{
    forum_stmt_t *s = api->db_stmt("SELECT id FROM users WHERE nickname = CAST(? AS CITEXT)");
    if (s == NULL || api->db_bind_text(s, 1, t, len) != 0)
        return -1;
    switch (api->db_step(s)) {
    case FORUM_DB_ROW:
        return api->db_col_int(s, 0);
    case FORUM_DB_DONE:
        return 0;
    default:
        return -1;
    }
}

int rooms_resolve_mentions(rooms_message_t *m, const char *tokens)
{
    m->num_mentions = 0;
    for (const char *t = tokens; t != NULL && *t != '\0'; t += strlen(t) + 1) {
        size_t len = strlen(t);
        int64_t user = user_named(t, len);
        while (user == 0 && len > NICKNAME_MIN && t[len - 1] == '.') {
            while (len > 0 && t[len - 1] == '.')
                --len;
            if (len >= NICKNAME_MIN)
                user = user_named(t, len);
        }
        if (user < 0)
            return 0;
        if (user == 0 || user == m->from)
            continue;
        size_t i = 0;
        while (i != m->num_mentions && m->mentions[i] != user)
            ++i;
        if (i != m->num_mentions)
            continue;
        int member = rooms_is_member(m->room, user);
        if (member < 0)
            return 0;
        if (member)
            m->mentions[m->num_mentions++] = user;
    }
    return 1;
}
