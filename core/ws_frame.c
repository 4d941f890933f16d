#include <string.h>
#include "ws_frame.h"

int forum_ws_frame_parse(const uint8_t *p, size_t len, forum_ws_frame_t *frame)
{
    size_t header_len = 2 + 4;
    uint64_t length;

    if (len < 2)
        return 0;
    if ((p[0] & 0x70) != 0)
        return -FORUM_WS_PROTOCOL_ERROR; /* no extension was negotiated */
    frame->fin = p[0] >> 7;
    frame->opcode = p[0] & 0x0f;
    switch (frame->opcode) {
    case FORUM_WS_CONTINUATION:
    case FORUM_WS_TEXT:
    case FORUM_WS_BINARY:
        break;
    case FORUM_WS_CLOSE:
    case FORUM_WS_PING:
    case FORUM_WS_PONG:
        if (!frame->fin || (p[1] & 0x7f) > 125)
            return -FORUM_WS_PROTOCOL_ERROR;
        break;
    default:
        return -FORUM_WS_PROTOCOL_ERROR;
    }
    if ((p[1] & 0x80) == 0)
        return -FORUM_WS_PROTOCOL_ERROR; /* clients must mask */
    length = p[1] & 0x7f;
    if (length == 126)
        header_len += 2;
    else if (length == 127)
        header_len += 8;
    if (len < header_len)
        return 0;
    if (length == 126) {
        length = (uint64_t)p[2] << 8 | p[3];
    } else if (length == 127) {
        length = 0;
        for (int i = 0; i != 8; ++i)
            length = length << 8 | p[2 + i];
        if (length >> 63)
            return -FORUM_WS_PROTOCOL_ERROR;
    }
    frame->length = length;
    memcpy(frame->mask, p + header_len - 4, 4);
    return (int)header_len;
}

size_t forum_ws_frame_header(uint8_t *dst, unsigned opcode, size_t payload_len)
{
    dst[0] = 0x80 | (uint8_t)opcode;
    if (payload_len < 126) {
        dst[1] = (uint8_t)payload_len;
        return 2;
    }
    if (payload_len <= 0xffff) {
        dst[1] = 126;
        dst[2] = (uint8_t)(payload_len >> 8);
        dst[3] = (uint8_t)payload_len;
        return 4;
    }
    dst[1] = 127;
    for (int i = 0; i != 8; ++i)
        dst[2 + i] = (uint8_t)((uint64_t)payload_len >> (56 - 8 * i));
    return 10;
}

void forum_ws_unmask(uint8_t *p, size_t len, const uint8_t mask[4])
{
    uint8_t key[8];
    uint64_t key64, word;
    size_t i = 0;

    memcpy(key, mask, 4);
    memcpy(key + 4, mask, 4);
    memcpy(&key64, key, 8);
    for (; i + 8 <= len; i += 8) {
        memcpy(&word, p + i, 8);
        word ^= key64;
        memcpy(p + i, &word, 8);
    }
    for (; i != len; ++i)
        p[i] ^= mask[i & 3];
}

int forum_ws_close_code_valid(unsigned code)
{
    if (code >= 3000 && code <= 4999)
        return 1;
    switch (code) {
    case 1000: case 1001: case 1002: case 1003: case 1007: case 1008: case 1009: case 1010: case 1011: case 1012: case 1013:
    case 1014:
        return 1;
    default:
        return 0;
    }
}
