/*
 * Route patterns and request paths, as pure functions (no plugin, no request): the plugin host keeps
 * the table, these split and match. A path is matched as it came on the wire (up to '?'): segments
 * are split on the raw '/', so that "%2F" inside a parameter never becomes a separator, and each
 * parameter is percent-decoded only after the match.
 */
#include <string.h>
#include "forum.h"

static int is_dot_segment(const char *s, size_t len)
{
    return (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.');
}

int forum_route_split_pattern(char *buf, char **segments, size_t max)
{
    size_t n = 0;
    char *s = buf;
    if (*s != '/')
        return -1;
    while (*s == '/') {
        *s++ = '\0';
        if (n == max || *s == '\0' || *s == '/')
            return -1;
        char *seg = segments[n++] = s;
        while (*s != '\0' && *s != '/')
            ++s;
        /* a parameter needs a name; a literal is never a dot segment (no path matches one) */
        if ((seg[0] == ':' && s == seg + 1) || is_dot_segment(seg, (size_t)(s - seg)))
            return -1;
    }
    return (int)n;
}

int forum_route_split_path(const char *path, size_t len, h2o_iovec_t *segments, size_t max)
{
    size_t n = 0, i = 0;
    /* an empty segment ("//", a trailing "/") or more segments than a pattern can have matches no route */
    while (i < len && path[i] == '/') {
        size_t start = ++i;
        while (i < len && path[i] != '/')
            ++i;
        if (i == start || n == max)
            return FORUM_PATH_NO_ROUTE;
        segments[n] = h2o_iovec_init(path + start, i - start);
        /* "." and ".." mean something to every proxy and client: a path that still has them is refused, not guessed */
        if (is_dot_segment(segments[n].base, segments[n].len))
            return FORUM_PATH_BAD;
        ++n;
    }
    if (i != len || n == 0)
        return FORUM_PATH_NO_ROUTE;
    return (int)n;
}

int forum_route_match(char *const *pattern, size_t num_pattern, const h2o_iovec_t *segments, size_t num_segments,
                      forum_route_param_t *params, size_t max_params, size_t *num_params)
{
    size_t np = 0;
    if (num_pattern != num_segments)
        return 0;
    for (size_t k = 0; k != num_segments; ++k) {
        const char *want = pattern[k];
        if (want[0] == ':') {
            if (np == max_params)
                return 0;
            params[np].name = want + 1;
            params[np++].value = segments[k];
        } else if (!h2o_memis(segments[k].base, segments[k].len, want, strlen(want))) {
            /* literals match their raw spelling: an encoded letter is another segment */
            return 0;
        }
    }
    *num_params = np;
    return 1;
}

int forum_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

ssize_t forum_route_decode(const char *s, size_t len, char *out)
{
    char *d = out;
    for (size_t i = 0; i != len; ++i) {
        if (s[i] == '%') {
            int hi, lo;
            if (len - i < 3 || (hi = forum_hex_digit(s[i + 1])) < 0 || (lo = forum_hex_digit(s[i + 2])) < 0)
                return -1;
            *d++ = (char)(hi * 16 + lo);
            i += 2;
        } else {
            *d++ = s[i]; /* in a path '+' is a plus */
        }
    }
    *d = '\0';
    size_t n = (size_t)(d - out);
    /* the decoded value is text (no NUL: forum_utf8_valid refuses it), and not a dot segment in disguise ("%2e%2e") */
    if (!forum_utf8_valid(out, n) || is_dot_segment(out, n))
        return -1;
    return (ssize_t)n;
}
