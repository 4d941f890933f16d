/*
 * The posts plugin: categories and posts. GET /api/categories, GET /api/posts (newest first, keyset
 * pagination, optional category), POST /api/posts, GET /api/posts/:id; `post.created` to everyone.
 */
#include <stdlib.h>
#include <string.h>
#include "../util/plugin_util.h"

#ifndef PLUGIN_VERSION
#define PLUGIN_VERSION "1.0.0" /* a build may set another, as the swap tests do */
#endif

static const forum_api_t *api;

enum { MAX_CATEGORIES = 3, TITLE_MAX = 200, BODY_MAX = 20000 };

/*
 * The columns of a post, in the order write_post reads them: its category slugs come in the same row, joined
 * by U+001F in their order (a page is one query, not one more per post: on PostgreSQL each is a round trip).
 * Only the aggregate is spelled differently: SQLite 3.40's group_concat keeps the order of the rows it is
 * given, PostgreSQL's string_agg takes its own ORDER BY. POST_SQL(rest) is a statement's two texts, by backend.
 */
#define POST_COLUMNS_BASE "p.id, p.title, p.body, u.id, u.nickname, p.created_at, p.comment_count, "
#define POST_SLUGS_FROM "FROM post_categories pc JOIN categories c ON c.id = pc.category_id WHERE pc.post_id = p.id"
#define POST_SQL(rest)                                                                                                 \
    {"SELECT " POST_COLUMNS_BASE "(SELECT group_concat(slug, char(31)) FROM (SELECT c.slug " POST_SLUGS_FROM          \
     " ORDER BY c.position)) " rest,                                                                                   \
     "SELECT " POST_COLUMNS_BASE "(SELECT string_agg(c.slug, chr(31) ORDER BY c.position) " POST_SLUGS_FROM ") " rest}

static forum_stmt_t *post_stmt(const char *const sql[2])
{
    return api->db_stmt(sql[api->db_backend() == FORUM_DB_POSTGRES]);
}

/* Writes the post of the current row of `s` (POST_SQL's columns). */
static void write_post(yajl_gen g, forum_stmt_t *s)
{
    int64_t id = api->db_col_int(s, 0);
    yajl_gen_map_open(g);
    pu_key_int(g, "id", id);
    pu_key_str(g, "title", api->db_col_text(s, 1));
    pu_key_str(g, "body", api->db_col_text(s, 2));
    pu_str(g, "categories");
    yajl_gen_array_open(g);
    for (const char *slug = api->db_col_text(s, 7); slug != NULL && *slug != '\0';) {
        const char *end = strchr(slug, '\x1f');
        size_t len = end != NULL ? (size_t)(end - slug) : strlen(slug);
        yajl_gen_string(g, (const unsigned char *)slug, len);
        slug = end != NULL ? end + 1 : slug + len;
    }
    yajl_gen_array_close(g);
    pu_str(g, "author");
    yajl_gen_map_open(g);
    pu_key_int(g, "id", api->db_col_int(s, 3));
    pu_key_str(g, "nickname", api->db_col_text(s, 4));
    yajl_gen_map_close(g);
    pu_key_str(g, "created_at", api->db_col_text(s, 5));
    pu_key_int(g, "comment_count", api->db_col_int(s, 6));
    yajl_gen_map_close(g);
}

/* Reads post `id` (POST_SQL's columns): FORUM_DB_ROW with its row in `*s`, FORUM_DB_DONE when there is none, or the failure. */
static int read_post(int64_t id, forum_stmt_t **s)
{
    static const char *const sql[2] = POST_SQL("FROM posts p JOIN users u ON u.id = p.author_id WHERE p.id = ?");
    *s = post_stmt(sql);
    api->db_bind_int(*s, 1, id);
    return api->db_step(*s);
}

static int categories_route(forum_req_t *req)
{
    forum_stmt_t *s = api->db_stmt("SELECT slug, name, post_count FROM categories ORDER BY position");
    yajl_gen g = api->res_json_begin(req, 200);
    yajl_gen_map_open(g);
    pu_str(g, "categories");
    yajl_gen_array_open(g);
    api->db_rows_json(s, g);
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    api->res_json_end(req);
    return 0;
}

/*
 * Rendered feed pages, each stamped with the versions of the tables it read: a page is answered from
 * here while none of them has changed since, which the core's db_version tells exactly (every post,
 * comment count, category or nickname change moves one). A small table, replaced round robin: the
 * pages asked again and again are the first ones.
 */
enum { PAGE_CACHE_SLOTS = 32, PAGE_CACHE_MAX_BYTES = 512 * 1024 };

typedef struct cached_page {
    int64_t category, before, limit;
    uint64_t version;
    char *json; /* NULL for an empty slot */
    size_t len;
} cached_page_t;

static cached_page_t page_cache[PAGE_CACHE_SLOTS];
static size_t page_cache_next;

static uint64_t feed_version(void)
{
    /* each version only grows, so their sum moves whenever one of them does */
    return api->db_version("posts") + api->db_version("post_categories") + api->db_version("categories") +
           api->db_version("users");
}

static const cached_page_t *cached_page(int64_t category, int64_t before, int64_t limit, uint64_t version)
{
    for (size_t i = 0; i != PAGE_CACHE_SLOTS; ++i) {
        const cached_page_t *c = &page_cache[i];
        if (c->json != NULL && c->version == version && c->category == category && c->before == before && c->limit == limit)
            return c;
    }
    return NULL;
}

static void cache_page(int64_t category, int64_t before, int64_t limit, uint64_t version, yajl_gen g)
{
    const unsigned char *buf;
    size_t len;
    cached_page_t *c = &page_cache[page_cache_next];
    char *copy;

    yajl_gen_get_buf(g, &buf, &len);
    if (len > PAGE_CACHE_MAX_BYTES || (copy = malloc(len)) == NULL)
        return;
    memcpy(copy, buf, len);
    free(c->json);
    *c = (cached_page_t){category, before, limit, version, copy, len};
    page_cache_next = (page_cache_next + 1) % PAGE_CACHE_SLOTS;
}

static int list_route(forum_req_t *req)
{
    int64_t limit = pu_query_int(api, req, "limit", 1, 50, 20), before, category = 0;
    const char *slug = api->req_query(req, "category");
    const cached_page_t *cached;
    forum_stmt_t *s;
    uint64_t version = 0;
    int cacheable = FORUM_API_HAS(api, res_json_raw);

    if (limit < 0 || (before = pu_query_int(api, req, "before", 1, INT64_MAX, INT64_MAX)) < 0)
        return 0;
    if (slug != NULL) {
        s = api->db_stmt("SELECT id FROM categories WHERE slug = ?");
        api->db_bind_text(s, 1, slug, strlen(slug));
        if (api->db_step(s) != FORUM_DB_ROW) {
            api->res_error(req, 400, "bad_request", "no such category", "category");
            return 0;
        }
        category = api->db_col_int(s, 0);
    }
    if (cacheable) {
        version = feed_version();
        if ((cached = cached_page(category, before, limit, version)) != NULL) {
            api->res_json_raw(req, 200, cached->json, cached->len);
            return 0;
        }
    }
    if (category != 0) {
        /* the (category_id, post_id) primary key walks the category newest first */
        static const char *const sql[2] = POST_SQL("FROM post_categories pcat JOIN posts p ON p.id = pcat.post_id "
                                                   "JOIN users u ON u.id = p.author_id WHERE pcat.category_id = ? AND pcat.post_id < ? "
                                                   "ORDER BY pcat.post_id DESC LIMIT ?");
        s = post_stmt(sql);
        api->db_bind_int(s, 1, category);
        api->db_bind_int(s, 2, before);
        api->db_bind_int(s, 3, limit + 1);
    } else {
        static const char *const sql[2] = POST_SQL("FROM posts p JOIN users u ON u.id = p.author_id WHERE p.id < ? ORDER BY p.id DESC LIMIT ?");
        s = post_stmt(sql);
        api->db_bind_int(s, 1, before);
        api->db_bind_int(s, 2, limit + 1);
    }

    yajl_gen g = api->res_json_begin(req, 200);
    yajl_gen_map_open(g);
    if (pu_write_page(api, g, s, "posts", limit, "next_before", write_post) != 0) {
        api->res_db_error(req, "the posts could not be read"); /* and nothing is cached */
        return 0;
    }
    yajl_gen_map_close(g);
    if (cacheable)
        cache_page(category, before, limit, version, g);
    api->res_json_end(req);
    return 0;
}

static void fini(forum_plugin_t *p)
{
    (void)p;
    for (size_t i = 0; i != PAGE_CACHE_SLOTS; ++i)
        free(page_cache[i].json);
}

static int get_route(forum_req_t *req)
{
    int64_t id = pu_parse_id(api->req_param(req, "id"));
    forum_stmt_t *s;
    int rc = id != 0 ? read_post(id, &s) : FORUM_DB_DONE;
    if (rc == FORUM_DB_DONE) {
        api->res_error(req, 404, "not_found", "no such post", NULL);
        return 0;
    }
    if (rc != FORUM_DB_ROW) {
        api->res_db_error(req, "the post could not be read"); /* a database that failed is not a post that does not exist */
        return 0;
    }
    yajl_gen g = api->res_json_begin(req, 200);
    yajl_gen_map_open(g);
    pu_str(g, "post");
    write_post(g, s);
    yajl_gen_map_close(g);
    api->res_json_end(req);
    return 0;
}

/* Reads 1..3 distinct known category slugs into ids; false after answering. */
static int read_categories(forum_req_t *req, yajl_val body, int64_t *ids, size_t *n)
{
    const char *path[] = {"categories", NULL};
    yajl_val v = yajl_tree_get(body, path, yajl_t_any);

    if (v == NULL || YAJL_IS_NULL(v)) {
        api->res_error(req, 422, "validation", "choose one to three categories", "categories");
        return 0;
    }
    if (!YAJL_IS_ARRAY(v)) {
        api->res_error(req, 400, "bad_request", "must be a list of category slugs", "categories");
        return 0;
    }
    if (v->u.array.len < 1 || v->u.array.len > MAX_CATEGORIES) {
        api->res_error(req, 422, "validation", "choose one to three categories", "categories");
        return 0;
    }
    *n = 0;
    for (size_t i = 0; i != v->u.array.len; ++i) {
        yajl_val item = v->u.array.values[i];
        if (!YAJL_IS_STRING(item)) {
            api->res_error(req, 400, "bad_request", "must be a list of category slugs", "categories");
            return 0;
        }
        forum_stmt_t *s = api->db_stmt("SELECT id FROM categories WHERE slug = ?");
        api->db_bind_text(s, 1, item->u.string, strlen(item->u.string));
        int found = api->db_step(s);
        if (found != FORUM_DB_ROW && found != FORUM_DB_DONE) {
            api->res_db_error(req, "the categories could not be read"); /* the server's trouble, not a wrong slug */
            return 0;
        }
        if (found != FORUM_DB_ROW) {
            api->res_error(req, 422, "validation", "no such category", "categories");
            return 0;
        }
        int64_t id = api->db_col_int(s, 0);
        for (size_t j = 0; j != *n; ++j) {
            if (ids[j] == id) {
                api->res_error(req, 422, "validation", "a category is listed twice", "categories");
                return 0;
            }
        }
        ids[(*n)++] = id;
    }
    return 1;
}

/* 201 with the post of the current row of `s` */
static void answer_post(forum_req_t *req, forum_stmt_t *s)
{
    yajl_gen g = api->res_json_begin(req, 201);
    yajl_gen_map_open(g);
    pu_str(g, "post");
    write_post(g, s);
    yajl_gen_map_close(g);
    api->res_json_end(req);
}

static int create_route(forum_req_t *req)
{
    yajl_val body = api->req_body(req);
    size_t title_len, body_len, num_categories;
    const char *title, *text, *client_id;
    int64_t categories[MAX_CATEGORIES], id;
    char now[32];
    forum_stmt_t *s;

    if ((title = pu_text_member(api, req, body, "title", TITLE_MAX, 0, &title_len)) == NULL ||
        (text = pu_text_member(api, req, body, "body", BODY_MAX, FORUM_TEXT_MULTILINE, &body_len)) == NULL ||
        !read_categories(req, body, categories, &num_categories) || !pu_client_id(api, req, body, &client_id))
        return 0;

    api->format_time(api->now_ms(), now);
    if (api->db_begin() != 0)
        goto Error;
    if (client_id != NULL) {
        /* a retry: the post its client_id names is the answer, whatever this body says; nothing is stored or published */
        s = api->db_stmt("SELECT id FROM posts WHERE author_id = ? AND client_id = ?");
        api->db_bind_int(s, 1, api->req_user(req));
        api->db_bind_text(s, 2, client_id, strlen(client_id));
        switch (api->db_step(s)) {
        case FORUM_DB_ROW:
            id = api->db_col_int(s, 0);
            api->db_rollback();
            /* read before the answer begins: one that fails is a 503, never a 201 with half a post */
            if (read_post(id, &s) != FORUM_DB_ROW) {
                api->res_db_error(req, "the post could not be read");
                return 0;
            }
            answer_post(req, s);
            return 0;
        case FORUM_DB_DONE:
            break;
        default:
            goto Rollback;
        }
    }
    s = api->db_stmt("INSERT INTO posts (author_id, title, body, created_at, client_id) VALUES (?, ?, ?, ?, ?) RETURNING id");
    api->db_bind_int(s, 1, api->req_user(req));
    api->db_bind_text(s, 2, title, title_len);
    api->db_bind_text(s, 3, text, body_len);
    api->db_bind_text(s, 4, now, strlen(now));
    if (client_id != NULL)
        api->db_bind_text(s, 5, client_id, strlen(client_id));
    else
        api->db_bind_null(s, 5);
    if (api->db_step(s) != FORUM_DB_ROW)
        goto Rollback;
    id = api->db_col_int(s, 0);
    if (api->db_step(s) != FORUM_DB_DONE)
        goto Rollback;
    for (size_t i = 0; i != num_categories; ++i) {
        s = api->db_stmt("INSERT INTO post_categories (category_id, post_id) VALUES (?, ?)");
        api->db_bind_int(s, 1, categories[i]);
        api->db_bind_int(s, 2, id);
        if (api->db_step(s) != FORUM_DB_DONE)
            goto Rollback;
    }
    if (api->db_commit() != 0)
        goto Error;

    /* committed: read back once; the frame to everyone and the answer are both written from that row */
    if (read_post(id, &s) != FORUM_DB_ROW) {
        /* stored, but not read back (the database went right after the commit): the answer says so much, in
         * JSON, and nobody gets a broken frame; the feed shows the post once the database is back */
        api->log(FORUM_LOG_WARN, "posts: post %lld was stored but could not be read back", (long long)id);
        yajl_gen g = api->res_json_begin(req, 201);
        yajl_gen_map_open(g);
        pu_str(g, "post");
        yajl_gen_map_open(g);
        pu_key_int(g, "id", id);
        yajl_gen_map_close(g);
        yajl_gen_map_close(g);
        api->res_json_end(req);
        return 0;
    }
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    pu_key_str(g, "type", "post.created");
    pu_str(g, "post");
    write_post(g, s);
    yajl_gen_map_close(g);
    pu_publish_all(api, g);
    yajl_gen_free(g);
    answer_post(req, s);
    return 0;

Rollback:
    api->db_rollback();
Error:
    api->res_db_error(req, "the post could not be stored");
    return 0;
}

static const char schema_v1[] =
    "CREATE TABLE categories ("
    "  id INTEGER PRIMARY KEY,"
    "  slug TEXT NOT NULL UNIQUE,"
    "  name TEXT NOT NULL,"
    "  position INTEGER NOT NULL,"
    "  post_count INTEGER NOT NULL DEFAULT 0"
    ");"
    "INSERT INTO categories (slug, name, position) VALUES"
    "  ('general', 'General', 1), ('news', 'News', 2), ('discussion', 'Discussion', 3),"
    "  ('technology', 'Technology', 4), ('sports', 'Sports', 5), ('entertainment', 'Entertainment', 6);"
    "CREATE TABLE posts ("
    "  id INTEGER PRIMARY KEY,"
    "  author_id INTEGER NOT NULL REFERENCES users (id),"
    "  title TEXT NOT NULL,"
    "  body TEXT NOT NULL,"
    "  created_at TEXT NOT NULL,"
    "  comment_count INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX posts_author ON posts (author_id);"
    "CREATE TABLE post_categories ("
    "  category_id INTEGER NOT NULL REFERENCES categories (id),"
    "  post_id INTEGER NOT NULL REFERENCES posts (id),"
    "  PRIMARY KEY (category_id, post_id)"
    ") WITHOUT ROWID;"
    "CREATE INDEX post_categories_post ON post_categories (post_id);"
    /* post counts are kept, not counted: a count over a million rows would cost a million steps */
    "CREATE TRIGGER post_categories_count AFTER INSERT ON post_categories BEGIN"
    "  UPDATE categories SET post_count = post_count + 1 WHERE id = NEW.category_id;"
    "END;";

/* client_id: a client's retry of POST /api/posts finds the post it stored the first time */
static const char schema_v2[] = "ALTER TABLE posts ADD COLUMN client_id TEXT;"
                                "CREATE UNIQUE INDEX posts_client_id ON posts (author_id, client_id) WHERE client_id IS NOT NULL;";

/* PostgreSQL: the same tables, numbered alike; the count is kept by a plpgsql trigger */
static const char pg_schema_v1[] =
    "CREATE TABLE categories ("
    "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    "  slug TEXT NOT NULL UNIQUE,"
    "  name TEXT NOT NULL,"
    "  position BIGINT NOT NULL,"
    "  post_count BIGINT NOT NULL DEFAULT 0"
    ");"
    "INSERT INTO categories (slug, name, position) VALUES"
    "  ('general', 'General', 1), ('news', 'News', 2), ('discussion', 'Discussion', 3),"
    "  ('technology', 'Technology', 4), ('sports', 'Sports', 5), ('entertainment', 'Entertainment', 6);"
    "CREATE TABLE posts ("
    "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    "  author_id BIGINT NOT NULL REFERENCES users (id),"
    "  title TEXT NOT NULL,"
    "  body TEXT NOT NULL,"
    "  created_at TEXT NOT NULL,"
    "  comment_count BIGINT NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX posts_author ON posts (author_id);"
    "CREATE TABLE post_categories ("
    "  category_id BIGINT NOT NULL REFERENCES categories (id),"
    "  post_id BIGINT NOT NULL REFERENCES posts (id),"
    "  PRIMARY KEY (category_id, post_id)"
    ");"
    "CREATE INDEX post_categories_post ON post_categories (post_id);"
    "CREATE FUNCTION post_categories_count() RETURNS trigger LANGUAGE plpgsql AS $$"
    "BEGIN"
    "  UPDATE categories SET post_count = post_count + 1 WHERE id = NEW.category_id;"
    "  RETURN NULL;"
    "END $$;"
    "CREATE TRIGGER post_categories_count AFTER INSERT ON post_categories FOR EACH ROW EXECUTE FUNCTION post_categories_count();";

static const char pg_schema_v2[] = "ALTER TABLE posts ADD COLUMN client_id TEXT;"
                                   "CREATE UNIQUE INDEX posts_client_id ON posts (author_id, client_id) WHERE client_id IS NOT NULL;";

static int init(forum_plugin_t *p, const forum_api_t *a)
{
    api = a;
    if (a->version < FORUM_API_VERSION || !FORUM_API_HAS(a, mono_ms))
        return -1;
    return api->migration_for(p, FORUM_DB_SQLITE, 1, schema_v1) || api->migration_for(p, FORUM_DB_SQLITE, 2, schema_v2) ||
           api->migration_for(p, FORUM_DB_POSTGRES, 1, pg_schema_v1) || api->migration_for(p, FORUM_DB_POSTGRES, 2, pg_schema_v2) ||
           api->route(p, "GET", "/api/categories", 0, categories_route) ||
           api->route(p, "GET", "/api/posts", 0, list_route) || api->route(p, "POST", "/api/posts", 0, create_route) ||
           api->route(p, "GET", "/api/posts/:id", 0, get_route);
}

FORUM_EXPORT const forum_plugin_desc_t forum_plugin = {
    .abi = FORUM_PLUGIN_ABI,
    .name = "posts",
    .version = PLUGIN_VERSION,
    .init = init,
    .fini = fini,
};
