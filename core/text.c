/* Text fields as API.md defines them: trimmed of white space at both ends, measured in characters. */
#include "forum.h"

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

int forum_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned char c = *p++;
        size_t more;
        uint32_t cp;
        if (c < 0x80) {
            if (c == 0)
                return 0;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            more = 1, cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            more = 2, cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            more = 3, cp = c & 0x07;
        } else {
            return 0;
        }
        if ((size_t)(end - p) < more)
            return 0;
        for (size_t i = 0; i != more; ++i) {
            if ((p[i] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        p += more;
        /* overlong forms, surrogates and values past U+10FFFF are not UTF-8 */
        if ((more == 1 && cp < 0x80) || (more == 2 && cp < 0x800) || (more == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
    }
    return 1;
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
    for (const unsigned char *q = p; q < end; ++q) {
        if ((*q & 0xC0) != 0x80) /* not a continuation byte: a new character (the JSON layer validated UTF-8) */
            ++chars;
        if ((*q < 0x20 && *q != '\n' && *q != '\t' && *q != '\r') || *q == 0x7F)
            control = 1;
    }
    *len = (size_t)(end - p);
    if (info != NULL) {
        info->chars = chars;
        info->has_control = control;
    }
    return (const char *)p;
}
