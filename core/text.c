/*
 * Text as API.md defines it: strict UTF-8, trimmed of white space at both ends, measured in characters,
 * and the one rule about control characters that every text field of every plugin follows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "forum.h"

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* The length of the strict UTF-8 character at `p` (before `end`) with its code point in `*cp`; 0 when there is none. */
static size_t utf8_char(const unsigned char *p, const unsigned char *end, uint32_t *cp)
{
    unsigned char c = *p;
    size_t more;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        more = 1, *cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        more = 2, *cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        more = 3, *cp = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - p) <= more)
        return 0;
    for (size_t i = 1; i <= more; ++i) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        *cp = (*cp << 6) | (p[i] & 0x3F);
    }
    /* overlong forms, surrogates and values past U+10FFFF are not UTF-8 */
    if ((more == 1 && *cp < 0x80) || (more == 2 && *cp < 0x800) || (more == 3 && *cp < 0x10000) || *cp > 0x10FFFF ||
        (*cp >= 0xD800 && *cp <= 0xDFFF))
        return 0;
    return more + 1;
}

/* True when none of the 8 bytes at `p` is NUL or past ASCII: the common case, checked a word at a time. */
static int plain_ascii8(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    /* a high bit set, or a byte that borrows when 1 is taken from it (only a 0 does, once no high bit is set) */
    return ((v | (v - UINT64_C(0x0101010101010101))) & UINT64_C(0x8080808080808080)) == 0;
}

int forum_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        uint32_t cp;
        /* every response passes through here, most of it ASCII */
        while (end - p >= 8 && plain_ascii8(p))
            p += 8;
        if (p == end)
            break;
        size_t n = utf8_char(p, end, &cp);
        if (n == 0 || cp == 0)
            return 0;
        p += n;
    }
    return 1;
}

char *forum_utf8_repair(const char *s, size_t len, size_t *outlen)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    char *out, *d;

    if (forum_utf8_valid(s, len))
        return NULL;
    /* each offending byte becomes the three bytes of U+FFFD */
    d = out = malloc(len * 3 + 1);
    while (p < end) {
        uint32_t cp;
        size_t n = utf8_char(p, end, &cp);
        if (n == 0 || cp == 0) {
            memcpy(d, "\xEF\xBF\xBD", 3);
            d += 3;
            ++p;
        } else {
            memcpy(d, p, n);
            d += n;
            p += n;
        }
    }
    *d = '\0';
    *outlen = (size_t)(d - out);
    return out;
}

/*
 * The one rule for control characters: C0 controls (tab, newline and carriage return are allowed in
 * multi-line text only), DEL and the C1 controls U+0080-U+009F are refused everywhere; a single line
 * refuses the Unicode line and paragraph separators too. Returns 1 for a control, 2 for a line break
 * a single line may not hold, 0 for a character that is fine.
 */
static int control_class(uint32_t cp, int multiline)
{
    if (cp == '\t' || cp == '\n' || cp == '\r')
        return multiline ? 0 : 2;
    if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F))
        return 1;
    if (cp == 0x2028 || cp == 0x2029)
        return multiline ? 0 : 2;
    return 0;
}

const char *forum_text_trim(const char *s, size_t *len, forum_text_info_t *info)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + *len;
    size_t chars = 0;
    int control = 0;

    while (p < end && is_space(*p))
        ++p;
    while (end > p && is_space(end[-1]))
        --end;
    for (const unsigned char *q = p; q < end;) {
        uint32_t cp;
        size_t n = utf8_char(q, end, &cp);
        if (n == 0) { /* not text (the gate keeps such strings out): count the byte, call it a control */
            n = 1;
            control = 1;
        } else if (control_class(cp, 1) != 0) {
            control = 1;
        }
        ++chars;
        q += n;
    }
    *len = (size_t)(end - p);
    if (info != NULL) {
        info->chars = chars;
        info->has_control = control;
    }
    return (const char *)p;
}

int forum_text_check(const char *s, size_t len, size_t min_chars, size_t max_chars, int flags, forum_text_t *out)
{
    const unsigned char *p, *end;
    int line_break = 0, control = 0;

    out->message[0] = '\0';
    out->chars = 0;
    if (!forum_utf8_valid(s, len)) {
        snprintf(out->message, sizeof(out->message), "must be valid UTF-8 text");
        return 422;
    }
    if (!(flags & FORUM_TEXT_VERBATIM)) {
        p = (const unsigned char *)s, end = p + len;
        while (p < end && is_space(*p))
            ++p;
        while (end > p && is_space(end[-1]))
            --end;
        s = (const char *)p, len = (size_t)(end - p);
    }
    out->text = s;
    out->len = len;
    p = (const unsigned char *)s, end = p + len;
    while (p < end) {
        uint32_t cp;
        p += utf8_char(p, end, &cp);
        ++out->chars;
        if (!(flags & FORUM_TEXT_VERBATIM)) {
            int c = control_class(cp, flags & FORUM_TEXT_MULTILINE);
            control |= c == 1;
            line_break |= c == 2;
        }
    }
    if (out->chars < min_chars || out->chars > max_chars) {
        if (min_chars == max_chars)
            snprintf(out->message, sizeof(out->message), "must be %zu characters", min_chars);
        else
            snprintf(out->message, sizeof(out->message), "must be %zu to %zu characters", min_chars, max_chars);
        return 422;
    }
    if (control) {
        snprintf(out->message, sizeof(out->message), "must not contain control characters");
        return 422;
    }
    if (line_break) {
        snprintf(out->message, sizeof(out->message), "must be a single line");
        return 422;
    }
    return 0;
}

int forum_text_field(yajl_val obj, const char *name, size_t min_chars, size_t max_chars, int flags, forum_text_t *out)
{
    yajl_val v = forum_json_member(obj, name);

    out->text = NULL;
    out->len = out->chars = 0;
    if (!YAJL_IS_OBJECT(obj)) {
        snprintf(out->message, sizeof(out->message), "send a JSON object");
        return 400;
    }
    if (v == NULL || YAJL_IS_NULL(v)) {
        snprintf(out->message, sizeof(out->message), "required");
        return 422;
    }
    if (!YAJL_IS_STRING(v)) {
        snprintf(out->message, sizeof(out->message), "must be a string");
        return 400;
    }
    return forum_text_check(v->u.string, strlen(v->u.string), min_chars, max_chars, flags, out);
}
