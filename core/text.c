/* Text fields as API.md defines them: trimmed of white space at both ends, measured in characters. */
#include "forum.h"

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
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
