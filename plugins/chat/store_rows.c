/*
 * A batch of new messages stored at once: a few statements of many rows each, where chat_store_row makes
 * five per message. On PostgreSQL each statement is a round trip and a pass through its executor (and the
 * statement triggers that tell other connections a table changed), so a batch of 64 costs what a handful of
 * messages did one by one. The writes are queued (db_queue): on PostgreSQL they go to the server with the
 * COMMIT, so a pass waits for two answers (its ids, drawn with the BEGIN, and the commit) whatever its size.
 * The rows are what chat_store_row writes, in the same order, with the same counts.
 */
#include <stdlib.h>
#include <string.h>
#include "chat.h"

#define api chat_api

/* Statements of 1, 2, 4, ... CHUNK_MAX rows: a batch of any size is a few of them, and each text is prepared once. */
enum { CHUNK_SIZES = 7, CHUNK_MAX = 1 << (CHUNK_SIZES - 1), PAIR_SLOTS = 4 * 256 };

enum { SQL_MESSAGES, SQL_INDEX, SQL_CONVERSATIONS, SQL_KINDS };
static char *sql[SQL_KINDS][CHUNK_SIZES];

/* `head`, then `row` `rows` times separated by commas, then `tail`. */
static char *rows_sql(const char *head, const char *row, size_t rows, const char *tail)
{
    size_t hl = strlen(head), rl = strlen(row), tl = strlen(tail);
    char *s = malloc(hl + rows * (rl + 2) + tl + 1), *d = s;
    if (s == NULL)
        return NULL;
    memcpy(d, head, hl), d += hl;
    for (size_t i = 0; i != rows; ++i) {
        if (i != 0)
            memcpy(d, ", ", 2), d += 2;
        memcpy(d, row, rl), d += rl;
    }
    memcpy(d, tail, tl), d += tl;
    *d = '\0';
    return s;
}

/* The statement of `kind` for 2^`shift` rows (messages, for the index: two rows each), built on first use. */
static forum_stmt_t *chunk_stmt(int kind, int shift)
{
    static const struct {
        const char *head, *row, *tail;
        size_t per_item;
    } form[SQL_KINDS] = {
        /*
         * What each side of the pair has sent, counted as chat_store_row does: what the other side had received
         * before this batch, read by the row itself (the conversations are written after it), plus what this
         * batch sent before it. A client_id used before fails the batch (a UNIQUE violation), which is then
         * stored one by one.
         */
        [SQL_MESSAGES] = {"INSERT INTO messages (id, sender_id, recipient_id, body, client_id, created_at, lo_sent, hi_sent) VALUES ",
                          "(?, ?, ?, ?, ?, ?, "
                          "COALESCE((SELECT received FROM conversations WHERE user_id = ? AND other_id = ?), 0) + ?, "
                          "COALESCE((SELECT received FROM conversations WHERE user_id = ? AND other_id = ?), 0) + ?)",
                          "", 1},
        [SQL_INDEX] = {"INSERT INTO message_index (user_id, message_id) VALUES ", "(?, ?)", "", 2},
        [SQL_CONVERSATIONS] = {"INSERT INTO conversations (user_id, other_id, last_message_id, last_message_at, unread, received) VALUES ",
                               "(?, ?, ?, ?, ?, ?)",
                               " ON CONFLICT (user_id, other_id) DO UPDATE SET last_message_id = excluded.last_message_id, "
                               "last_message_at = excluded.last_message_at, unread = conversations.unread + excluded.unread, "
                               "received = conversations.received + excluded.received",
                               1},
    };
    if (sql[kind][shift] == NULL &&
        (sql[kind][shift] = rows_sql(form[kind].head, form[kind].row, form[kind].per_item << shift, form[kind].tail)) == NULL)
        return NULL;
    return api->db_stmt(sql[kind][shift]);
}

void chat_store_rows_fini(void)
{
    for (int k = 0; k != SQL_KINDS; ++k)
        for (int i = 0; i != CHUNK_SIZES; ++i) {
            free(sql[k][i]);
            sql[k][i] = NULL;
        }
}

/* The largest chunk (as a shift) that `left` rows fill. */
static int chunk_shift(size_t left)
{
    int shift = CHUNK_SIZES - 1;
    while (((size_t)1 << shift) > left)
        --shift;
    return shift;
}

/* One side of a pair of users: the conversation row (user, other), and what this batch does to it. */
typedef struct pair {
    int64_t user, other;
    int64_t received;       /* messages `user` has received from `other` in this batch so far */
    int64_t last_id;        /* this batch's last message between them (0: none yet) */
    const char *last_at;
    int64_t added;          /* this batch's messages from `other` to `user` */
} pair_t;

typedef struct pairs {
    pair_t *list;
    size_t num;
    int32_t slot[PAIR_SLOTS]; /* index + 1 into list, 0 empty */
} pairs_t;

/* The side (user, other); added when `add` (there is room: at most two per message), else NULL when absent. */
static pair_t *pair_of(pairs_t *ps, int64_t user, int64_t other, int add)
{
    uint64_t h = ((uint64_t)user * 0x9E3779B97F4A7C15u) ^ ((uint64_t)other * 0xC2B2AE3D27D4EB4Fu);
    for (size_t i = (size_t)(h >> 40) % PAIR_SLOTS;; i = (i + 1) % PAIR_SLOTS) {
        if (ps->slot[i] == 0) {
            if (!add)
                return NULL;
            pair_t *p = &ps->list[ps->num];
            *p = (pair_t){.user = user, .other = other};
            ps->slot[i] = (int32_t)++ps->num;
            return p;
        }
        pair_t *p = &ps->list[ps->slot[i] - 1];
        if (p->user == user && p->other == other)
            return p;
    }
}

/* What a batch's rows are made of. */
typedef struct batch {
    const chat_message_t *m;
    const size_t *body_len;
    const int64_t *lo_sent, *hi_sent;
    const pairs_t *ps;
} batch_t;

/* The parameters of item `k` of one kind of row, from parameter *i on. */
static void bind_message(forum_stmt_t *s, int *i, size_t k, const batch_t *b)
{
    const chat_message_t *m = &b->m[k];
    int64_t lo = m->from < m->to ? m->from : m->to, hi = m->from < m->to ? m->to : m->from;
    api->db_bind_int(s, (*i)++, m->id);
    api->db_bind_int(s, (*i)++, m->from);
    api->db_bind_int(s, (*i)++, m->to);
    api->db_bind_text(s, (*i)++, m->body, b->body_len[k]);
    api->db_bind_text(s, (*i)++, m->client_id, strlen(m->client_id));
    api->db_bind_text(s, (*i)++, m->created_at, strlen(m->created_at));
    api->db_bind_int(s, (*i)++, hi); /* what hi has received from lo: what lo has sent */
    api->db_bind_int(s, (*i)++, lo);
    api->db_bind_int(s, (*i)++, b->lo_sent[k]);
    api->db_bind_int(s, (*i)++, lo);
    api->db_bind_int(s, (*i)++, hi);
    api->db_bind_int(s, (*i)++, b->hi_sent[k]);
}

/* A message's two index rows. */
static void bind_index(forum_stmt_t *s, int *i, size_t k, const batch_t *b)
{
    api->db_bind_int(s, (*i)++, b->m[k].from);
    api->db_bind_int(s, (*i)++, b->m[k].id);
    api->db_bind_int(s, (*i)++, b->m[k].to);
    api->db_bind_int(s, (*i)++, b->m[k].id);
}

/* One side of a pair: the last message, and (the receiving side) one more received and unread for each. */
static void bind_conversation(forum_stmt_t *s, int *i, size_t k, const batch_t *b)
{
    const pair_t *p = &b->ps->list[k];
    api->db_bind_int(s, (*i)++, p->user);
    api->db_bind_int(s, (*i)++, p->other);
    api->db_bind_int(s, (*i)++, p->last_id);
    api->db_bind_text(s, (*i)++, p->last_at, strlen(p->last_at));
    api->db_bind_int(s, (*i)++, p->added);
    api->db_bind_int(s, (*i)++, p->added);
}

/*
 * Queues `num` items of `kind` in statements of as many rows as fit (db_queue: on PostgreSQL they go to the
 * server with the COMMIT, in one round trip); false when one could not be made or sent.
 */
static int queue_rows(int kind, size_t num, void (*bind)(forum_stmt_t *s, int *i, size_t k, const batch_t *b), const batch_t *b)
{
    for (size_t at = 0; at != num;) {
        int shift = chunk_shift(num - at), i = 1;
        size_t rows = (size_t)1 << shift;
        forum_stmt_t *s = chunk_stmt(kind, shift);
        if (s == NULL)
            return 0;
        for (size_t k = at; k != at + rows; ++k)
            bind(s, &i, k, b);
        if (api->db_queue(s) != 0)
            return 0;
        at += rows;
    }
    return 1;
}

int chat_store_rows(chat_message_t *m, const size_t *body_len, size_t num)
{
    pairs_t *ps = NULL;
    int64_t *sent = NULL, *lo_sent, *hi_sent, first;
    int result = 0;

    if (num == 0)
        return 1;
    if (num > PAIR_SLOTS / 4)
        return -1;
    /* the same client_id twice from one sender: the second is a repeat of the first, told apart one by one */
    for (size_t i = 0; i != num; ++i)
        for (size_t j = 0; j != i; ++j)
            if (m[j].from == m[i].from && strcmp(m[j].client_id, m[i].client_id) == 0)
                return -1;
    if ((ps = calloc(1, sizeof(*ps))) == NULL || (ps->list = malloc(2 * num * sizeof(*ps->list))) == NULL ||
        (sent = malloc(2 * num * sizeof(*sent))) == NULL)
        goto Done;
    for (size_t i = 0; i != num; ++i) {
        pair_of(ps, m[i].to, m[i].from, 1);
        pair_of(ps, m[i].from, m[i].to, 1);
    }
    /* one sequence numbers private and room messages; this batch takes a run of it */
    if ((first = api->db_next_ids("messages", (int64_t)num)) == 0)
        goto Done;
    lo_sent = sent, hi_sent = sent + num;
    for (size_t i = 0; i != num; ++i) {
        /* what each side sent in this batch up to this message, to add to what the rows read (`to` received one more) */
        pair_t *to_side = pair_of(ps, m[i].to, m[i].from, 0), *from_side = pair_of(ps, m[i].from, m[i].to, 0);
        int64_t by_from = ++to_side->received, by_to = from_side->received;
        m[i].id = first + (int64_t)i;
        lo_sent[i] = m[i].from < m[i].to ? by_from : by_to;
        hi_sent[i] = m[i].from < m[i].to ? by_to : by_from;
        to_side->last_id = from_side->last_id = m[i].id;
        to_side->last_at = from_side->last_at = m[i].created_at;
        ++to_side->added;
    }
    batch_t b = {m, body_len, lo_sent, hi_sent, ps};
    result = queue_rows(SQL_MESSAGES, num, bind_message, &b) && queue_rows(SQL_INDEX, num, bind_index, &b) &&
             queue_rows(SQL_CONVERSATIONS, ps->num, bind_conversation, &b);
Done:
    free(sent);
    if (ps != NULL)
        free(ps->list);
    free(ps);
    return result;
}
