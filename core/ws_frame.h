/*
 * WebSocket framing (RFC 6455) as the server needs it: reading the headers of client frames, which are
 * always masked, and writing the headers of server frames, which never are.
 */
#ifndef FORUM_WS_FRAME_H
#define FORUM_WS_FRAME_H

#include <stddef.h>
#include <stdint.h>

enum {
    FORUM_WS_CONTINUATION = 0x0,
    FORUM_WS_TEXT = 0x1,
    FORUM_WS_BINARY = 0x2,
    FORUM_WS_CLOSE = 0x8,
    FORUM_WS_PING = 0x9,
    FORUM_WS_PONG = 0xa,
};

/* close codes */
enum {
    FORUM_WS_NORMAL = 1000,
    FORUM_WS_GOING_AWAY = 1001,
    FORUM_WS_PROTOCOL_ERROR = 1002,
    FORUM_WS_UNSUPPORTED_DATA = 1003,
    FORUM_WS_INVALID_PAYLOAD = 1007,
    FORUM_WS_POLICY_VIOLATION = 1008,
    FORUM_WS_MESSAGE_TOO_BIG = 1009,
};

/** The most a server frame header takes. */
#define FORUM_WS_MAX_HEADER 10

typedef struct forum_ws_frame {
    uint8_t fin;
    uint8_t opcode;
    uint8_t mask[4];
    uint64_t length; /* of the payload */
} forum_ws_frame_t;

/**
 * Reads the header of one client frame from the `len` bytes at `p`. Returns the header's length, 0 when
 * more bytes are needed, or minus the close code a malformed header deserves (reserved bits or opcodes,
 * an unmasked frame, a control frame that is fragmented or longer than 125 bytes).
 */
int forum_ws_frame_parse(const uint8_t *p, size_t len, forum_ws_frame_t *frame);
/** Writes the header of an unfragmented server frame into `dst` (FORUM_WS_MAX_HEADER bytes); returns its length. */
size_t forum_ws_frame_header(uint8_t *dst, unsigned opcode, size_t payload_len);
/** Unmasks a payload in place. */
void forum_ws_unmask(uint8_t *p, size_t len, const uint8_t mask[4]);
/** Whether a close code received from a peer is one a peer may send (RFC 6455 7.4, and IANA's 1012-1014). */
int forum_ws_close_code_valid(unsigned code);

#endif
