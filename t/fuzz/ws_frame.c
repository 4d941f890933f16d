/*
 * Fuzzes core/ws_frame.c as core/hub.c's read loop uses it: the input is the byte stream a client sends,
 * read frame after frame until a header is refused or the bytes run out. Invariants: a header is never
 * longer than the input and has the size its length form says; a prefix of a good header asks for more
 * instead of failing; a refusal is a protocol error; control frames are final and short; unmasking is
 * the byte-wise XOR of RFC 6455 5.3 and undoes itself; a header forum_ws_frame_header writes reads back
 * (once masked) as the same frame; close payloads are judged as a strict reference decoder would.
 *
 * The reassembly of fragmented messages lives in core/hub.c on a connection with a socket and is not
 * reachable here; the order of data frames it enforces is checked by t/44-websocket-frames.t.
 */
#include <string.h>
#include "../../core/forum.h"
#include "../../core/ws_frame.h"
#include "fuzz.h"

/* Table 3-7 of the Unicode standard (well-formed UTF-8 byte sequences), written as ranges on purpose:
 * a second formulation to compare forum_utf8_valid's decoding with. NUL is refused as forumd does. */
static int reference_utf8(const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t b = p[i];
        uint8_t lo = 0x80, hi = 0xbf;
        size_t n;
        if (b == 0)
            return 0;
        if (b <= 0x7f) {
            ++i;
            continue;
        }
        if (b >= 0xc2 && b <= 0xdf) {
            n = 1;
        } else if (b >= 0xe0 && b <= 0xef) {
            n = 2;
            if (b == 0xe0)
                lo = 0xa0;
            else if (b == 0xed)
                hi = 0x9f;
        } else if (b >= 0xf0 && b <= 0xf4) {
            n = 3;
            if (b == 0xf0)
                lo = 0x90;
            else if (b == 0xf4)
                hi = 0x8f;
        } else {
            return 0;
        }
        if (len - i - 1 < n)
            return 0;
        if (p[i + 1] < lo || p[i + 1] > hi)
            return 0;
        for (size_t k = 2; k <= n; ++k)
            if (p[i + k] < 0x80 || p[i + k] > 0xbf)
                return 0;
        i += n + 1;
    }
    return 1;
}

static void check_header(const uint8_t *p, size_t len, int header_len, const forum_ws_frame_t *f)
{
    forum_ws_frame_t again;
    uint8_t form = p[1] & 0x7f;

    FUZZ_CHECK((size_t)header_len <= len);
    FUZZ_CHECK(header_len == (form == 127 ? 14 : form == 126 ? 8 : 6));
    FUZZ_CHECK(f->length < (UINT64_C(1) << 63));
    FUZZ_CHECK(memcmp(f->mask, p + header_len - 4, 4) == 0);
    FUZZ_CHECK(f->fin == p[0] >> 7 && f->opcode == (p[0] & 0x0f));
    switch (f->opcode) {
    case FORUM_WS_CONTINUATION:
    case FORUM_WS_TEXT:
    case FORUM_WS_BINARY:
        break;
    case FORUM_WS_CLOSE:
    case FORUM_WS_PING:
    case FORUM_WS_PONG:
        FUZZ_CHECK(f->fin && f->length <= 125);
        break;
    default:
        FUZZ_CHECK(!"an opcode RFC 6455 reserves was accepted");
    }
    /* a header cut short is incomplete, never wrong: the parser must not decide on missing bytes */
    for (size_t k = 0; k != (size_t)header_len; ++k)
        FUZZ_CHECK(forum_ws_frame_parse(p, k, &again) == 0);
    /* and bytes after it change nothing */
    FUZZ_CHECK(forum_ws_frame_parse(p, header_len, &again) == header_len);
    FUZZ_CHECK(again.fin == f->fin && again.opcode == f->opcode && again.length == f->length &&
               memcmp(again.mask, f->mask, 4) == 0);
}

/* What forumd would write for this frame's opcode and length reads back as the same frame once masked. */
static void check_writer(const forum_ws_frame_t *f)
{
    uint8_t hdr[FORUM_WS_MAX_HEADER + 4];
    forum_ws_frame_t back;
    if (f->length > SIZE_MAX)
        return;
    size_t n = forum_ws_frame_header(hdr, f->opcode, (size_t)f->length);
    FUZZ_CHECK(n == 2 || n == 4 || n == 10);
    FUZZ_CHECK(n == (f->length < 126 ? 2u : f->length <= 0xffff ? 4u : 10u));
    FUZZ_CHECK(forum_ws_frame_parse(hdr, n, &back) < 0); /* unmasked: a client may not send it */
    hdr[1] |= 0x80;
    memcpy(hdr + n, f->mask, 4);
    FUZZ_CHECK(forum_ws_frame_parse(hdr, n + 4, &back) == (int)(n + 4));
    FUZZ_CHECK(back.fin == 1 && back.opcode == f->opcode && back.length == f->length);
}

static void check_payload(const forum_ws_frame_t *f, const uint8_t *masked)
{
    size_t len = (size_t)f->length;
    uint8_t *p = malloc(len != 0 ? len : 1);

    memcpy(p, masked, len);
    forum_ws_unmask(p, len, f->mask);
    for (size_t i = 0; i != len; ++i)
        FUZZ_CHECK(p[i] == (masked[i] ^ f->mask[i % 4]));
    if (f->opcode == FORUM_WS_CLOSE && len >= 2) {
        /* core/hub.c's judgement of a close frame */
        unsigned code = (unsigned)p[0] << 8 | p[1];
        int valid = forum_ws_close_code_valid(code);
        FUZZ_CHECK(valid == ((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999)));
        FUZZ_CHECK(forum_utf8_valid((const char *)p + 2, len - 2) == reference_utf8(p + 2, len - 2));
    }
    /* an unaligned start: the word-at-a-time path must give the same bytes */
    if (len > 1) {
        forum_ws_unmask(p + 1, len - 1, f->mask);
        forum_ws_unmask(p + 1, len - 1, f->mask);
        for (size_t i = 0; i != len; ++i)
            FUZZ_CHECK(p[i] == (masked[i] ^ f->mask[i % 4]));
    }
    forum_ws_unmask(p, len, f->mask);
    FUZZ_CHECK(memcmp(p, masked, len) == 0);
    free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t at = 0;

    while (at < size) {
        forum_ws_frame_t f;
        const uint8_t *p = data + at;
        size_t left = size - at;
        int header_len = forum_ws_frame_parse(p, left, &f);

        if (header_len == 0)
            break; /* more bytes needed */
        if (header_len < 0) {
            FUZZ_CHECK(-header_len == FORUM_WS_PROTOCOL_ERROR);
            break; /* the connection would be closed */
        }
        check_header(p, left, header_len, &f);
        check_writer(&f);
        if (left - (size_t)header_len < f.length)
            break; /* the payload is still to come */
        check_payload(&f, p + header_len);
        at += (size_t)header_len + (size_t)f.length;
    }
    /* the whole stream as one close payload: the UTF-8 check against the reference on any bytes */
    FUZZ_CHECK(forum_utf8_valid((const char *)data, size) == reference_utf8(data, size));
    return 0;
}
