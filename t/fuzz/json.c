/*
 * Fuzzes core/json.c's forum_json_parse and what every caller does right after it (handlers/api.c and
 * core/hub.c: is it an object, its "type" member). Invariants: a refusal comes with a one-line message;
 * an accepted document has no more levels than the parser promises, and it survives a round trip
 * through forum_json_gen unchanged (the generator validates UTF-8, so a string yajl let in that is not
 * UTF-8 would fail there).
 */
#include <string.h>
#include "../../core/forum.h"
#include "fuzz.h"

enum { PROMISED_DEPTH = 32 }; /* core/json.c's bound */

static size_t depth_of(yajl_val v)
{
    size_t deepest = 0;
    if (YAJL_IS_OBJECT(v)) {
        for (size_t i = 0; i != v->u.object.len; ++i) {
            size_t d = depth_of(v->u.object.values[i]);
            deepest = d > deepest ? d : deepest;
        }
        return deepest + 1;
    }
    if (YAJL_IS_ARRAY(v)) {
        for (size_t i = 0; i != v->u.array.len; ++i) {
            size_t d = depth_of(v->u.array.values[i]);
            deepest = d > deepest ? d : deepest;
        }
        return deepest + 1;
    }
    return 0;
}

/* Writes `v` with the project's generator; returns the generator's status. */
static yajl_gen_status generate(yajl_gen g, yajl_val v)
{
    yajl_gen_status st = yajl_gen_status_ok;
    if (YAJL_IS_OBJECT(v)) {
        if ((st = yajl_gen_map_open(g)) != yajl_gen_status_ok)
            return st;
        for (size_t i = 0; i != v->u.object.len; ++i) {
            const char *k = v->u.object.keys[i];
            if ((st = yajl_gen_string(g, (const unsigned char *)k, strlen(k))) != yajl_gen_status_ok ||
                (st = generate(g, v->u.object.values[i])) != yajl_gen_status_ok)
                return st;
        }
        return yajl_gen_map_close(g);
    }
    if (YAJL_IS_ARRAY(v)) {
        if ((st = yajl_gen_array_open(g)) != yajl_gen_status_ok)
            return st;
        for (size_t i = 0; i != v->u.array.len; ++i)
            if ((st = generate(g, v->u.array.values[i])) != yajl_gen_status_ok)
                return st;
        return yajl_gen_array_close(g);
    }
    if (YAJL_IS_STRING(v))
        return yajl_gen_string(g, (const unsigned char *)v->u.string, strlen(v->u.string));
    if (YAJL_IS_NUMBER(v))
        return yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
    if (YAJL_IS_TRUE(v))
        return yajl_gen_bool(g, 1);
    if (YAJL_IS_FALSE(v))
        return yajl_gen_bool(g, 0);
    return yajl_gen_null(g);
}

/* The text forum_json_gen makes of `v`, malloc'ed, or NULL when the generator refuses it. */
static char *to_text(yajl_val v, size_t *len)
{
    yajl_gen g = forum_json_gen();
    const unsigned char *buf;
    char *out = NULL;
    if (generate(g, v) == yajl_gen_status_ok && yajl_gen_get_buf(g, &buf, len) == yajl_gen_status_ok) {
        out = malloc(*len + 1);
        memcpy(out, buf, *len);
        out[*len] = '\0';
    }
    yajl_gen_free(g);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    const char *text = (const char *)data;
    yajl_val v, again;
    char *first, *second;
    size_t first_len, second_len;

    err[0] = '\0';
    if ((v = forum_json_parse(text, size, err, sizeof(err))) == NULL) {
        FUZZ_CHECK(err[0] != '\0');
        FUZZ_CHECK(strchr(err, '\n') == NULL);
        return 0;
    }
    FUZZ_CHECK(memchr(text, '\0', size) == NULL);
    FUZZ_CHECK(depth_of(v) <= PROMISED_DEPTH);
    /* what the callers do next */
    if (YAJL_IS_OBJECT(v)) {
        yajl_val type = forum_json_member(v, "type");
        if (type != NULL && YAJL_IS_STRING(type))
            FUZZ_CHECK(type->u.string != NULL);
    }
    first = to_text(v, &first_len);
    FUZZ_CHECK(first != NULL);
    again = forum_json_parse(first, first_len, err, sizeof(err));
    FUZZ_CHECK(again != NULL);
    second = to_text(again, &second_len);
    FUZZ_CHECK(second != NULL && second_len == first_len && memcmp(first, second, first_len) == 0);
    free(first);
    free(second);
    yajl_tree_free(again);
    yajl_tree_free(v);
    return 0;
}
