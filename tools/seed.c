/*
 * seed: fills a forumd database quickly, for the benchmarks.
 *
 *   seed --db PATH [--users N] [--posts M] [--messages K] [--pairs P] [--sessions S --cookies FILE]
 *        [--prefix NAME] [--password-hash MCF | --copy-hash] [--body-size B] [--random-seed X]
 *
 * The schema must exist already (start forumd on the database once and stop it). Everything goes in
 * through one transaction with prepared statements, and keeps the invariants the server keeps:
 *   - users: nickname PREFIX<k>, email PREFIX<k>@bench.invalid, one valid scrypt hash for everyone
 *     (by default the hash of "bench-password" with forumd's default cost, N=32768 r=8 p=1);
 *   - posts with one to three distinct categories, inserted through post_categories so that its
 *     trigger keeps categories.post_count; no comments, so posts.comment_count stays 0;
 *   - messages between pairs of the seeded users (user 2i with user 2i+1), two message_index rows
 *     each with what each side had sent so far, and the two conversations rows of each pair (last
 *     message, unread = received = messages received);
 *   - sessions exactly as core/session.c makes them: 32 random bytes, the table keeps their SHA-256,
 *     the cookie is the lower-case hex of the raw bytes. One `sid=HEX` line per session in FILE.
 * Prints one JSON line: what was inserted and how long it took.
 */
#include <errno.h>
#include <getopt.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* scrypt of "bench-password", N=32768 r=8 p=1 (forumd's default cost), made by libscrypt_hash as auth does */
static const char default_hash[] = "$s1$0f0801$r3eHS+MHV3BFusj+9VvejA==$v5tRhdmv31SjSffP2ypbioeffsXNOy3H4b4vTeFJRZb3SrVCie3wsNGVZ503mgXwoOxr+Zc5C+sPIHMrPQ4MNQ==";

static sqlite3 *db;

static void die(const char *what)
{
    fprintf(stderr, "seed: %s: %s\n", what, db != NULL ? sqlite3_errmsg(db) : "no database");
    exit(1);
}

static sqlite3_stmt *prepare(const char *sql)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        die(sql);
    return st;
}

static void exec(const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "seed: %s: %s\n", sql, msg != NULL ? msg : "?");
        exit(1);
    }
}

static void step_done(sqlite3_stmt *st, const char *what)
{
    if (sqlite3_step(st) != SQLITE_DONE)
        die(what);
    sqlite3_reset(st);
}

static int64_t query_int(const char *sql)
{
    sqlite3_stmt *st = prepare(sql);
    int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return v;
}

static uint64_t rng_state = 0x243F6A8885A308D3ull;

static uint64_t rnd(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* forumd's time format: 2026-11-29T13:45:00.123Z */
static void format_time(int64_t ms, char *out, size_t len)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, len - n, ".%03dZ", (int)(ms % 1000));
}

static const char *const words[] = {"forum", "thread", "reply", "server", "socket", "message", "latency", "coffee", "garden",
                                    "river", "music", "football", "theatre", "science", "history", "travel", "kitchen", "winter",
                                    "summer", "library", "window", "bridge", "market", "planet", "signal", "pocket", "ladder",
                                    "candle", "harbor", "meadow", "engine", "castle"};

/* `len` bytes of words and spaces (no quotes, no backslashes: the load tools scan frames by hand) */
static void make_text(char *out, size_t len)
{
    size_t n = 0;
    while (n < len) {
        const char *w = words[rnd() % (sizeof(words) / sizeof(words[0]))];
        size_t wl = strlen(w);
        if (n != 0)
            out[n++] = ' ';
        for (size_t i = 0; i != wl && n < len; ++i)
            out[n++] = w[i];
    }
    if (len != 0 && out[len - 1] == ' ')
        out[len - 1] = 'x';
    out[len] = '\0';
}

static void usage(void)
{
    fprintf(stderr, "usage: seed --db PATH [--users N] [--posts M] [--messages K] [--pairs P] [--sessions S --cookies FILE]\n"
                    "            [--prefix NAME] [--password-hash MCF | --copy-hash] [--body-size B] [--random-seed X]\n");
    exit(2);
}

typedef struct pair_state {
    int64_t last_id;
    int64_t last_ms;
    int64_t received[2]; /* messages received by side 0 (the lower id) and side 1 */
} pair_state_t;

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},         {"users", required_argument, NULL, 'u'},
        {"posts", required_argument, NULL, 'p'},      {"messages", required_argument, NULL, 'm'},
        {"pairs", required_argument, NULL, 'P'},      {"sessions", required_argument, NULL, 's'},
        {"cookies", required_argument, NULL, 'c'},    {"prefix", required_argument, NULL, 'x'},
        {"password-hash", required_argument, NULL, 'H'}, {"copy-hash", no_argument, NULL, 'C'},
        {"body-size", required_argument, NULL, 'b'},  {"random-seed", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},             {NULL, 0, NULL, 0},
    };
    const char *path = NULL, *cookies_path = NULL, *prefix = "bench", *hash = default_hash;
    long long num_users = 0, num_posts = 0, num_messages = 0, num_pairs = -1, num_sessions = 0, body_size = 300;
    int copy_hash = 0, c;
    char *copied = NULL;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': path = optarg; break;
        case 'u': num_users = atoll(optarg); break;
        case 'p': num_posts = atoll(optarg); break;
        case 'm': num_messages = atoll(optarg); break;
        case 'P': num_pairs = atoll(optarg); break;
        case 's': num_sessions = atoll(optarg); break;
        case 'c': cookies_path = optarg; break;
        case 'x': prefix = optarg; break;
        case 'H': hash = optarg; break;
        case 'C': copy_hash = 1; break;
        case 'b': body_size = atoll(optarg); break;
        case 'r': rng_state = (uint64_t)atoll(optarg) * 0x9E3779B97F4A7C15ull | 1; break;
        default: usage();
        }
    }
    if (path == NULL || optind != argc || num_users < 0 || num_posts < 0 || num_messages < 0 || num_sessions < 0 || body_size < 1 ||
        body_size > 20000 || strlen(prefix) > 16 || (num_sessions > 0 && cookies_path == NULL))
        usage();

    double t0 = now_s();
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
        die(path);
    sqlite3_busy_timeout(db, 5000);
    if (query_int("SELECT COUNT(*) FROM sqlite_master WHERE name IN ('users', 'posts', 'messages', 'sessions')") != 4) {
        fprintf(stderr, "seed: %s has no forumd schema: start forumd on it once first\n", path);
        return 1;
    }
    /* a bulk load needs no crash safety: no WAL (every page would be written twice, to the WAL and back), no
     * syncing, pages kept in memory; the database goes back to WAL, forumd's mode, at the end. Leaving WAL
     * needs the only connection: while forumd has the database open, the load goes through the WAL. */
    int left_wal = sqlite3_exec(db, "PRAGMA journal_mode=MEMORY", NULL, NULL, NULL) == SQLITE_OK;
    if (!left_wal)
        fprintf(stderr, "seed: the database is in use (is forumd running?): loading through the WAL, more slowly\n");
    exec("PRAGMA synchronous=OFF; PRAGMA cache_size=-262144; PRAGMA temp_store=MEMORY");
    if (copy_hash) {
        sqlite3_stmt *st = prepare("SELECT password_hash FROM users ORDER BY id LIMIT 1");
        if (sqlite3_step(st) == SQLITE_ROW)
            hash = copied = strdup((const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
    }

    exec("BEGIN");
    int64_t now = wall_ms();
    char when[32];

    /* --- users: the pool that authors posts, exchanges messages and holds sessions --- */
    int64_t first_user, pool_size;
    {
        sqlite3_stmt *st = prepare("INSERT INTO users (nickname, email, password_hash, first_name, last_name, age, gender, created_at) "
                                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
        static const char *const genders[] = {"female", "male", "other"};
        first_user = 0;
        format_time(now - 86400000, when, sizeof(when));
        for (long long k = 1; k <= num_users; ++k) {
            char nick[48], email[80];
            snprintf(nick, sizeof(nick), "%s%lld", prefix, k);
            snprintf(email, sizeof(email), "%s%lld@bench.invalid", prefix, k);
            sqlite3_bind_text(st, 1, nick, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 2, email, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 3, hash, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 4, "Bench", -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 5, nick, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int(st, 6, 20 + (int)(k % 50));
            sqlite3_bind_text(st, 7, genders[k % 3], -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 8, when, -1, SQLITE_STATIC);
            step_done(st, "insert user");
            if (k == 1)
                first_user = sqlite3_last_insert_rowid(db);
        }
        sqlite3_finalize(st);
        if (num_users > 0) {
            pool_size = num_users;
        } else {
            /* no new users: the existing ones (assumed numbered without gaps) */
            first_user = query_int("SELECT MIN(id) FROM users");
            pool_size = first_user == 0 ? 0 : query_int("SELECT MAX(id) FROM users") - first_user + 1;
        }
        if (pool_size == 0 && (num_posts > 0 || num_messages > 0 || num_sessions > 0)) {
            fprintf(stderr, "seed: there are no users: give --users\n");
            return 1;
        }
    }

    /* --- posts, their categories through the counting trigger --- */
    if (num_posts > 0) {
        int64_t cats[64];
        int num_cats = 0;
        sqlite3_stmt *st = prepare("SELECT id FROM categories ORDER BY position");
        while (sqlite3_step(st) == SQLITE_ROW && num_cats < 64)
            cats[num_cats++] = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        if (num_cats == 0) {
            fprintf(stderr, "seed: no categories\n");
            return 1;
        }
        sqlite3_stmt *post = prepare("INSERT INTO posts (author_id, title, body, created_at) VALUES (?, ?, ?, ?)");
        sqlite3_stmt *pc = prepare("INSERT INTO post_categories (category_id, post_id) VALUES (?, ?)");
        char *body = malloc((size_t)body_size + 1), title[96];
        for (long long i = 0; i != num_posts; ++i) {
            char t[64];
            make_text(t, 24 + (size_t)(rnd() % 30));
            snprintf(title, sizeof(title), "Post %lld: %s", i + 1, t);
            make_text(body, (size_t)body_size);
            format_time(now - (num_posts - i) * 1000, when, sizeof(when));
            sqlite3_bind_int64(post, 1, first_user + (int64_t)(rnd() % (uint64_t)pool_size));
            sqlite3_bind_text(post, 2, title, -1, SQLITE_STATIC);
            sqlite3_bind_text(post, 3, body, -1, SQLITE_STATIC);
            sqlite3_bind_text(post, 4, when, -1, SQLITE_STATIC);
            step_done(post, "insert post");
            int64_t id = sqlite3_last_insert_rowid(db);
            int n = 1 + (int)(rnd() % 3), chosen[3];
            if (n > num_cats)
                n = num_cats;
            for (int j = 0; j != n; ++j) {
                int pick, again;
                do {
                    pick = (int)(rnd() % (uint64_t)num_cats);
                    again = 0;
                    for (int q = 0; q != j; ++q)
                        again |= chosen[q] == pick;
                } while (again);
                chosen[j] = pick;
                sqlite3_bind_int64(pc, 1, cats[pick]);
                sqlite3_bind_int64(pc, 2, id);
                step_done(pc, "insert post category");
            }
        }
        free(body);
        sqlite3_finalize(post);
        sqlite3_finalize(pc);
    }

    /* --- messages between pairs, their index rows and the pairs' conversations --- */
    long long pairs_used = 0;
    if (num_messages > 0) {
        long long max_pairs = pool_size / 2;
        pairs_used = num_pairs < 0 || num_pairs > max_pairs ? max_pairs : num_pairs;
        if (pairs_used == 0) {
            fprintf(stderr, "seed: messages need at least two users\n");
            return 1;
        }
        pair_state_t *pairs = calloc((size_t)pairs_used, sizeof(*pairs));
        /* lo_sent and hi_sent: what each side of the pair had sent up to this message (the chat plugin's counters) */
        sqlite3_stmt *msg = prepare("INSERT INTO messages (sender_id, recipient_id, body, client_id, created_at, lo_sent, hi_sent) "
                                    "VALUES (?, ?, ?, ?, ?, ?, ?)");
        sqlite3_stmt *idx = prepare("INSERT INTO message_index (user_id, message_id) VALUES (?, ?)");
        char body[128], cid[32];
        for (long long i = 0; i != num_messages; ++i) {
            long long p = i % pairs_used;
            int side = (int)((i / pairs_used) & 1); /* the pair takes turns */
            int64_t a = first_user + 2 * p, b = a + 1;
            int64_t from = side == 0 ? a : b, to = side == 0 ? b : a;
            int64_t ms = now - (num_messages - i);
            make_text(body, 20 + (size_t)(rnd() % 60));
            snprintf(cid, sizeof(cid), "seed-%lld", i);
            format_time(ms, when, sizeof(when));
            sqlite3_bind_int64(msg, 1, from);
            sqlite3_bind_int64(msg, 2, to);
            sqlite3_bind_text(msg, 3, body, -1, SQLITE_STATIC);
            sqlite3_bind_text(msg, 4, cid, -1, SQLITE_STATIC);
            sqlite3_bind_text(msg, 5, when, -1, SQLITE_STATIC);
            pairs[p].received[side == 0 ? 1 : 0]++;
            sqlite3_bind_int64(msg, 6, pairs[p].received[1]); /* a (the lower id) sent what b received */
            sqlite3_bind_int64(msg, 7, pairs[p].received[0]);
            step_done(msg, "insert message");
            int64_t id = sqlite3_last_insert_rowid(db);
            sqlite3_bind_int64(idx, 1, from);
            sqlite3_bind_int64(idx, 2, id);
            step_done(idx, "insert message_index");
            sqlite3_bind_int64(idx, 1, to);
            sqlite3_bind_int64(idx, 2, id);
            step_done(idx, "insert message_index");
            pairs[p].last_id = id;
            pairs[p].last_ms = ms;
        }
        sqlite3_finalize(msg);
        sqlite3_finalize(idx);
        /* the same upsert the chat plugin runs per message, once per side of each pair */
        sqlite3_stmt *conv = prepare("INSERT INTO conversations (user_id, other_id, last_message_id, last_message_at, unread, received) "
                                     "VALUES (?, ?, ?, ?, ?5, ?5) ON CONFLICT (user_id, other_id) DO UPDATE SET "
                                     "last_message_id = excluded.last_message_id, last_message_at = excluded.last_message_at, "
                                     "unread = unread + excluded.unread, received = received + excluded.received");
        for (long long p = 0; p != pairs_used; ++p) {
            if (pairs[p].last_id == 0)
                continue;
            int64_t a = first_user + 2 * p, b = a + 1;
            format_time(pairs[p].last_ms, when, sizeof(when));
            for (int side = 0; side != 2; ++side) {
                sqlite3_bind_int64(conv, 1, side == 0 ? a : b);
                sqlite3_bind_int64(conv, 2, side == 0 ? b : a);
                sqlite3_bind_int64(conv, 3, pairs[p].last_id);
                sqlite3_bind_text(conv, 4, when, -1, SQLITE_STATIC);
                sqlite3_bind_int64(conv, 5, pairs[p].received[side]);
                step_done(conv, "insert conversation");
            }
        }
        sqlite3_finalize(conv);
        free(pairs);
        /* the core's one sequence of message ids (private and room messages) goes on past the seeded ones */
        exec("INSERT INTO forum_sequences (name, value) SELECT 'messages', COALESCE(MAX(id), 0) FROM messages WHERE true "
                 "ON CONFLICT (name) DO UPDATE SET value = MAX(value, excluded.value)");
    }

    /* --- sessions, as core/session.c makes them --- */
    if (num_sessions > 0) {
        FILE *out = fopen(cookies_path, "w");
        if (out == NULL) {
            fprintf(stderr, "seed: %s: %s\n", cookies_path, strerror(errno));
            return 1;
        }
        sqlite3_stmt *st = prepare("INSERT INTO sessions (token_hash, user_id, created_ms, expires_ms) VALUES (?, ?, ?, ?)");
        static const char digits[] = "0123456789abcdef";
        for (long long i = 0; i != num_sessions; ++i) {
            uint8_t raw[32], digest[SHA256_DIGEST_LENGTH];
            char hex[65];
            if (RAND_bytes(raw, sizeof(raw)) != 1) {
                fprintf(stderr, "seed: RAND_bytes failed\n");
                return 1;
            }
            for (size_t j = 0; j != sizeof(raw); ++j) {
                hex[2 * j] = digits[raw[j] >> 4];
                hex[2 * j + 1] = digits[raw[j] & 15];
            }
            hex[64] = '\0';
            SHA256(raw, sizeof(raw), digest);
            sqlite3_bind_blob(st, 1, digest, sizeof(digest), SQLITE_STATIC);
            sqlite3_bind_int64(st, 2, first_user + (int64_t)(i % pool_size));
            sqlite3_bind_int64(st, 3, now);
            sqlite3_bind_int64(st, 4, now + 30ll * 86400 * 1000);
            step_done(st, "insert session");
            fprintf(out, "sid=%s\n", hex);
        }
        sqlite3_finalize(st);
        if (fclose(out) != 0) {
            fprintf(stderr, "seed: %s: %s\n", cookies_path, strerror(errno));
            return 1;
        }
    }

    exec("COMMIT");
    if (left_wal)
        exec("PRAGMA journal_mode=WAL");
    sqlite3_close(db);
    free(copied);
    printf("{\"users\":%lld,\"first_user\":%lld,\"posts\":%lld,\"messages\":%lld,\"pairs\":%lld,\"sessions\":%lld,\"seconds\":%.3f}\n",
           num_users, (long long)first_user, num_posts, num_messages, pairs_used, num_sessions, now_s() - t0);
    return 0;
}
