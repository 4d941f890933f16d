/*
 * Fuzzes core/route.c as handlers/api.c drives it: a raw request path (without its query) is split on
 * the raw '/', matched against the forum's own route patterns, and each parameter is percent-decoded.
 * The input is the path; when it holds a '\n', what comes before is a route pattern of its own, split
 * and matched too. Invariants: segments are non-empty, hold no '/', lie inside the path and are never
 * dot segments; a match fills one parameter per ":name", each the raw segment at its place, and every
 * literal equals its segment; a decoded parameter is strict UTF-8 without NUL, never "." or "..", no
 * longer than its raw form, equal to it when it has no '%', and decodes again from its own
 * percent-encoding to the same bytes.
 */
#include <string.h>
#include "../../core/forum.h"
#include "fuzz.h"

static const char *const patterns[] = {
    "/api/posts",       "/api/posts/:id",          "/api/posts/:id/comments", "/api/messages/:user_id",
    "/api/messages/:user_id/read", "/api/probe/echo/:a/:b", "/api/auth/login",        "/api/users",
};

static int is_dot(const char *s, size_t len)
{
    return (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.');
}

static void check_decode(h2o_iovec_t raw)
{
    char *out = malloc(raw.len + 1), *again, *encoded;
    ssize_t n = forum_route_decode(raw.base, raw.len, out);
    if (n >= 0) {
        FUZZ_CHECK((size_t)n <= raw.len);
        FUZZ_CHECK(out[n] == '\0');
        FUZZ_CHECK(forum_utf8_valid(out, (size_t)n));
        FUZZ_CHECK(!is_dot(out, (size_t)n));
        if (memchr(raw.base, '%', raw.len) == NULL)
            FUZZ_CHECK((size_t)n == raw.len && memcmp(out, raw.base, raw.len) == 0);
        /* every byte percent-encoded decodes back to the same value */
        encoded = malloc((size_t)n * 3 + 1);
        for (ssize_t i = 0; i != n; ++i)
            snprintf(encoded + i * 3, 4, "%%%02X", (unsigned char)out[i]);
        again = malloc((size_t)n + 1);
        FUZZ_CHECK(forum_route_decode(encoded, (size_t)n * 3, again) == n);
        FUZZ_CHECK(memcmp(again, out, (size_t)n) == 0);
        free(again);
        free(encoded);
    }
    free(out);
}

static void check_match(char *const *pat, size_t npat, const h2o_iovec_t *segs, size_t nsegs)
{
    forum_route_param_t params[FORUM_MAX_PARAMS];
    size_t np = 0, want = 0;
    if (!forum_route_match(pat, npat, segs, nsegs, params, FORUM_MAX_PARAMS, &np))
        return;
    FUZZ_CHECK(npat == nsegs);
    for (size_t k = 0; k != npat; ++k) {
        if (pat[k][0] == ':') {
            FUZZ_CHECK(want < np);
            FUZZ_CHECK(strcmp(params[want].name, pat[k] + 1) == 0);
            FUZZ_CHECK(params[want].value.base == segs[k].base && params[want].value.len == segs[k].len);
            check_decode(params[want].value);
            ++want;
        } else {
            FUZZ_CHECK(strlen(pat[k]) == segs[k].len && memcmp(pat[k], segs[k].base, segs[k].len) == 0);
        }
    }
    FUZZ_CHECK(want == np);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data, *nl = memchr(text, '\n', size), *path = text;
    size_t path_len = size;
    char *own = NULL, *own_segs[FORUM_ROUTE_MAX_SEGMENTS];
    int own_n = -1;
    h2o_iovec_t segs[FORUM_ROUTE_MAX_SEGMENTS];

    if (nl != NULL) {
        /* a pattern of the input's own, as a plugin's init could register it */
        own = strndup(text, (size_t)(nl - text));
        if (strlen(own) == (size_t)(nl - text) && (own_n = forum_route_split_pattern(own, own_segs, FORUM_ROUTE_MAX_SEGMENTS)) >= 0) {
            FUZZ_CHECK(own_n >= 1 && own_n <= FORUM_ROUTE_MAX_SEGMENTS);
            for (int k = 0; k != own_n; ++k) {
                size_t len = strlen(own_segs[k]);
                FUZZ_CHECK(len != 0 && strchr(own_segs[k], '/') == NULL && !is_dot(own_segs[k], len));
                FUZZ_CHECK(!(own_segs[k][0] == ':' && len == 1));
            }
        }
        path = nl + 1;
        path_len = size - (size_t)(nl + 1 - text);
    }

    int n = forum_route_split_path(path, path_len, segs, FORUM_ROUTE_MAX_SEGMENTS);
    FUZZ_CHECK(n == FORUM_PATH_NO_ROUTE || n == FORUM_PATH_BAD || (n >= 1 && n <= FORUM_ROUTE_MAX_SEGMENTS));
    for (int k = 0; k < n; ++k) {
        FUZZ_CHECK(segs[k].len != 0);
        FUZZ_CHECK(segs[k].base > path && segs[k].base + segs[k].len <= path + path_len);
        FUZZ_CHECK(segs[k].base[-1] == '/');
        FUZZ_CHECK(memchr(segs[k].base, '/', segs[k].len) == NULL);
        FUZZ_CHECK(!is_dot(segs[k].base, segs[k].len));
        check_decode(segs[k]);
    }
    if (n > 0) {
        for (size_t i = 0; i != FORUM_ARRAY_SIZE(patterns); ++i) {
            char buf[64], *pat[FORUM_ROUTE_MAX_SEGMENTS];
            snprintf(buf, sizeof(buf), "%s", patterns[i]);
            int np = forum_route_split_pattern(buf, pat, FORUM_ROUTE_MAX_SEGMENTS);
            FUZZ_CHECK(np > 0);
            check_match(pat, (size_t)np, segs, (size_t)n);
        }
        if (own_n >= 0)
            check_match(own_segs, (size_t)own_n, segs, (size_t)n);
    }
    free(own);
    return 0;
}
