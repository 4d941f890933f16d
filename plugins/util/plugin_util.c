/* Helpers shared by the feature plugins' sources (see plugin_util.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "plugin_util.h"

void pu_str(yajl_gen g, const char *s)
{
    if (s == NULL)
        yajl_gen_null(g);
    else
        yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

void pu_key_str(yajl_gen g, const char *key, const char *value)
{
    pu_str(g, key);
    pu_str(g, value);
}

void pu_key_int(yajl_gen g, const char *key, int64_t value)
{
    pu_str(g, key);
    yajl_gen_integer(g, value);
}

int64_t pu_parse_id(const char *s)
{
    int64_t v = 0;
    if (s == NULL || *s < '1' || *s > '9')
        return 0;
    for (; *s != '\0'; ++s) {
        if (*s < '0' || *s > '9' || v > (INT64_MAX - 9) / 10)
            return 0;
        v = v * 10 + (*s - '0');
    }
    return v;
}

int64_t pu_query_int(const forum_api_t *api, forum_req_t *req, const char *name, int64_t min, int64_t max, int64_t dflt)
{
    const char *s = api->req_query(req, name);
    char msg[128];
    int64_t v;

    if (s == NULL)
        return dflt;
    v = *s == '0' && s[1] == '\0' ? 0 : pu_parse_id(s);
    if ((v == 0 && strcmp(s, "0") != 0) || v < min || v > max) {
        snprintf(msg, sizeof(msg), "%s must be a whole number from %lld to %lld", name, (long long)min, (long long)max);
        api->res_error(req, 400, "bad_request", msg, name);
        return -1;
    }
    return v;
}

int pu_write_page(const forum_api_t *api, yajl_gen g, forum_stmt_t *s, const char *name, int64_t limit, const char *cursor_key,
                  void (*write_row)(yajl_gen g, forum_stmt_t *s))
{
    int64_t n = 0, last = 0;
    int rc = FORUM_DB_DONE;
    pu_str(g, name);
    yajl_gen_array_open(g);
    while (n < limit && (rc = api->db_step(s)) == FORUM_DB_ROW) {
        write_row(g, s);
        last = api->db_col_int(s, 0);
        ++n;
    }
    yajl_gen_array_close(g);
    pu_str(g, cursor_key);
    if (n == limit)
        rc = api->db_step(s); /* one more row: there is a next page */
    if (rc == FORUM_DB_ROW)
        yajl_gen_integer(g, last);
    else
        yajl_gen_null(g);
    return rc == FORUM_DB_ROW || rc == FORUM_DB_DONE ? 0 : -1;
}

void pu_ws_send_gen(const forum_api_t *api, forum_ws_t *ws, yajl_gen g)
{
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    api->ws_send(ws, (const char *)buf, len, 0);
}

yajl_val pu_member(yajl_val frame, const char *key)
{
    const char *path[] = {key, NULL};
    return yajl_tree_get(frame, path, yajl_t_any);
}

void pu_publish_all(const forum_api_t *api, yajl_gen g)
{
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    api->publish_all((const char *)buf, len, 0);
}

const char *pu_text_member(const forum_api_t *api, forum_req_t *req, yajl_val body, const char *name, size_t max, int flags,
                           size_t *len)
{
    forum_text_t t;
    int status = api->text_field(body, name, 1, max, flags, &t);
    if (status != 0) {
        /* a body that is not an object has no field at fault */
        api->res_error(req, status, status == 400 ? "bad_request" : "validation", t.message, YAJL_IS_OBJECT(body) ? name : NULL);
        return NULL;
    }
    *len = t.len;
    return t.text;
}

void pu_ws_field_error(const forum_api_t *api, forum_ws_t *ws, int status, const char *field, const forum_text_t *t, const char *ref)
{
    char msg[sizeof(t->message) + 32];
    snprintf(msg, sizeof(msg), "%s %s", field, t->message);
    api->ws_error(ws, status == 400 ? "bad_request" : "validation", msg, ref);
}

int pu_frame_bool(const forum_api_t *api, forum_ws_t *ws, yajl_val frame, const char *key, const char *ref)
{
    const char *path[] = {key, NULL};
    yajl_val v = yajl_tree_get(frame, path, yajl_t_any);
    char msg[64];
    if (v == NULL || !(YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v))) {
        snprintf(msg, sizeof(msg), "%s must be true or false", key);
        api->ws_error(ws, "bad_request", msg, ref);
        return -1;
    }
    return YAJL_IS_TRUE(v);
}

int64_t pu_frame_up_to(const forum_api_t *api, forum_ws_t *ws, yajl_val frame, const char *ref)
{
    const char *path[] = {"up_to", NULL};
    yajl_val v = yajl_tree_get(frame, path, yajl_t_any);
    if (v == NULL || !YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < 0) {
        api->ws_error(ws, "bad_request", "up_to must be a message id", ref);
        return -1;
    }
    return YAJL_GET_INTEGER(v);
}

int pu_client_id(const forum_api_t *api, forum_req_t *req, yajl_val body, const char **out)
{
    const char *path[] = {"client_id", NULL};
    yajl_val v = body != NULL ? yajl_tree_get(body, path, yajl_t_any) : NULL;
    size_t chars = 0;

    *out = NULL;
    if (v == NULL || YAJL_IS_NULL(v))
        return 1;
    if (!YAJL_IS_STRING(v)) {
        api->res_error(req, 400, "bad_request", "must be a string", "client_id");
        return 0;
    }
    /* opaque, as message.send's: taken as sent (not trimmed), counted in characters */
    for (const char *p = v->u.string; *p != '\0'; ++p)
        chars += ((unsigned char)*p & 0xC0) != 0x80;
    if (chars == 0 || chars > PU_CLIENT_ID_MAX) {
        api->res_error(req, 422, "validation", "must be 1 to 64 characters", "client_id");
        return 0;
    }
    *out = v->u.string;
    return 1;
}
