/* JSON in (yajl_tree, bounded) and out (yajl_gen). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "forum.h"

enum { MAX_DEPTH = 32 }; /* and in the message below */

/* The value of the four hex digits at `p` (checked by the caller to exist), or -1. */
static long hex4(const char *p)
{
    long v = 0;
    for (int i = 0; i != 4; ++i) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/*
 * True when the escape at `buf + i` (the backslash) is a \u escape that must not reach yajl: yajl decodes
 * \u0000 into a NUL that silently cuts the string, a lone low surrogate into bytes that are not UTF-8, a
 * high surrogate without a low one into '?' or into the wrong character. Other escapes are yajl's to judge.
 */
static int bad_escape(const char *buf, size_t len, size_t i)
{
    if (i + 6 > len || buf[i + 1] != 'u')
        return 0;
    long cp = hex4(buf + i + 2);
    if (cp == 0)
        return 1;
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return 1; /* a low surrogate here has no high one before it: pairs are consumed whole by precheck */
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        long low = i + 12 <= len && buf[i + 6] == '\\' && buf[i + 7] == 'u' ? hex4(buf + i + 8) : -1;
        return !(low >= 0xDC00 && low <= 0xDFFF);
    }
    return 0;
}

/*
 * yajl's tree builder recurses once per level and accepts comments; refuse deep documents and
 * comments (a '/' outside a string is never JSON) before handing the text over. Escapes that would
 * not decode to text are counted in `*bad` and, in `copy` (the same bytes, or NULL), replaced by
 * \ufffd, which has the same length.
 */
static const char *precheck(const char *buf, size_t len, char *copy, size_t *bad)
{
    int depth = 0, in_string = 0;
    *bad = 0;
    for (size_t i = 0; i < len; ++i) { /* `<`: an escape may step past the last byte */
        char c = buf[i];
        if (in_string) {
            if (c == '\\') {
                if (bad_escape(buf, len, i)) {
                    ++*bad;
                    if (copy != NULL)
                        memcpy(copy + i, "\\ufffd", 6);
                    i += 5;
                } else if (i + 12 <= len && buf[i + 1] == 'u' && hex4(buf + i + 2) >= 0xD800 && hex4(buf + i + 2) <= 0xDBFF) {
                    i += 11; /* a whole surrogate pair */
                } else {
                    ++i;
                }
            } else if (c == '"') {
                in_string = 0;
            }
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > MAX_DEPTH)
                return "the JSON is nested more than 32 levels deep";
        } else if (c == ']' || c == '}') {
            --depth;
        } else if (c == '/') {
            return "comments are not JSON";
        }
    }
    return NULL;
}

/* True when every string and every key of the tree is strict UTF-8 without NUL (the gate's last word). */
static int tree_is_text(yajl_val v, int depth)
{
    if (depth > MAX_DEPTH + 1)
        return 0;
    if (YAJL_IS_STRING(v))
        return forum_utf8_valid(v->u.string, strlen(v->u.string));
    if (YAJL_IS_OBJECT(v)) {
        for (size_t i = 0; i != v->u.object.len; ++i)
            if (!forum_utf8_valid(v->u.object.keys[i], strlen(v->u.object.keys[i])) || !tree_is_text(v->u.object.values[i], depth + 1))
                return 0;
    } else if (YAJL_IS_ARRAY(v)) {
        for (size_t i = 0; i != v->u.array.len; ++i)
            if (!tree_is_text(v->u.array.values[i], depth + 1))
                return 0;
    }
    return 1;
}

/* Parses with the checks of the gate; escapes that are not text are refused, or with `repair` read as U+FFFD and reported in `*repaired`. */
static yajl_val parse(const char *buf, size_t len, char *err, size_t errlen, int repair, int *repaired)
{
    char *copy = NULL;
    yajl_val v = NULL;
    size_t bad;
    const char *problem;

    if (repaired != NULL)
        *repaired = 0;
    /* before anything else: the raw bytes are text (this also refuses a NUL byte) */
    if (!forum_utf8_valid(buf, len)) {
        snprintf(err, errlen, memchr(buf, '\0', len) != NULL ? "the JSON contains a NUL byte" : "the JSON is not valid UTF-8");
        goto Exit;
    }
    copy = malloc(len + 1);
    memcpy(copy, buf, len);
    copy[len] = '\0';
    if ((problem = precheck(buf, len, copy, &bad)) != NULL) {
        snprintf(err, errlen, "%s", problem);
        goto Exit;
    }
    if (bad != 0 && !repair) {
        snprintf(err, errlen, "a string in the JSON holds \\u0000 or an unpaired surrogate escape (not text)");
        goto Exit;
    }
    if ((v = yajl_tree_parse(copy, err, errlen)) == NULL) {
        /* yajl's message spans lines and quotes the input: keep its first line */
        char *nl = strchr(err, '\n');
        if (nl != NULL)
            *nl = '\0';
        if (*err == '\0')
            snprintf(err, errlen, "malformed JSON");
        goto Exit;
    }
    if (!tree_is_text(v, 0)) {
        yajl_tree_free(v);
        v = NULL;
        snprintf(err, errlen, "a string in the JSON is not valid UTF-8");
        goto Exit;
    }
    if (repaired != NULL)
        *repaired = bad != 0;
Exit:
    free(copy);
    return v;
}

yajl_val forum_json_parse(const char *buf, size_t len, char *err, size_t errlen)
{
    return parse(buf, len, err, errlen, 0, NULL);
}

yajl_val forum_json_parse_repaired(const char *buf, size_t len, char *err, size_t errlen, int *repaired)
{
    return parse(buf, len, err, errlen, 1, repaired);
}

yajl_gen forum_json_gen(void)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    /* keep "/" as is: escaping it buys nothing in a JSON response */
    yajl_gen_config(g, yajl_gen_validate_utf8, 1);
    return g;
}

void forum_json_str(yajl_gen g, const char *s)
{
    size_t len;
    if (s == NULL) {
        yajl_gen_null(g);
    } else if (forum_utf8_valid(s, len = strlen(s))) {
        yajl_gen_string(g, (const unsigned char *)s, len);
    } else {
        /* the generator would drop the string and leave the document broken: repair it instead */
        char *fixed = forum_utf8_repair(s, len, &len);
        yajl_gen_string(g, (const unsigned char *)fixed, len);
        free(fixed);
    }
}

void forum_json_error_members(yajl_gen g, const char *code, const char *message, const char *field)
{
    forum_json_str(g, "code");
    forum_json_str(g, code);
    forum_json_str(g, "message");
    forum_json_str(g, message);
    if (field != NULL) {
        forum_json_str(g, "field");
        forum_json_str(g, field);
    }
}

yajl_val forum_json_member(yajl_val obj, const char *key)
{
    if (!YAJL_IS_OBJECT(obj))
        return NULL;
    for (size_t i = 0; i != obj->u.object.len; ++i)
        if (strcmp(obj->u.object.keys[i], key) == 0)
            return obj->u.object.values[i];
    return NULL;
}
