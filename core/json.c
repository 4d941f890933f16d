/* JSON in (yajl_tree, bounded) and out (yajl_gen). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "forum.h"

enum { MAX_DEPTH = 32 }; /* and in the message below */

/*
 * yajl's tree builder recurses once per level and accepts comments; refuse deep documents and
 * comments (a '/' outside a string is never JSON) before handing the text over.
 */
static const char *precheck(const char *buf, size_t len)
{
    int depth = 0, in_string = 0;
    for (size_t i = 0; i < len; ++i) { /* `<`: an escape may step past the last byte */
        char c = buf[i];
        if (in_string) {
            if (c == '\\')
                ++i;
            else if (c == '"')
                in_string = 0;
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

yajl_val forum_json_parse(const char *buf, size_t len, char *err, size_t errlen)
{
    char *copy;
    yajl_val v;

    if (memchr(buf, '\0', len) != NULL) {
        snprintf(err, errlen, "the JSON contains a NUL byte");
        return NULL;
    }
    const char *problem = precheck(buf, len);
    if (problem != NULL) {
        snprintf(err, errlen, "%s", problem);
        return NULL;
    }
    copy = malloc(len + 1);
    memcpy(copy, buf, len);
    copy[len] = '\0';
    v = yajl_tree_parse(copy, err, errlen);
    free(copy);
    if (v == NULL) {
        /* yajl's message spans lines and quotes the input: keep its first line */
        char *nl = strchr(err, '\n');
        if (nl != NULL)
            *nl = '\0';
        if (*err == '\0')
            snprintf(err, errlen, "malformed JSON");
    }
    return v;
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
    if (s == NULL)
        yajl_gen_null(g);
    else
        yajl_gen_string(g, (const unsigned char *)s, strlen(s));
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
