/* core/ws_frame.c: reading client frame headers, writing server frame headers, unmasking. */
#include "unit.h"
#include "../../core/ws_frame.h"

static int parse(const uint8_t *p, size_t len, forum_ws_frame_t *f)
{
    memset(f, 0xee, sizeof(*f));
    return forum_ws_frame_parse(p, len, f);
}

static void test_parse_reads_the_three_length_forms(void **state)
{
    (void)state;
    static const uint8_t small[] = {0x81, 0x85, 1, 2, 3, 4};
    static const uint8_t medium[] = {0x82, 0xfe, 0x01, 0x00, 9, 9, 9, 9};
    static const uint8_t large[] = {0x01, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 5, 6, 7, 8};
    forum_ws_frame_t f;

    assert_int_equal(parse(small, sizeof(small), &f), 6);
    assert_int_equal(f.fin, 1);
    assert_int_equal(f.opcode, FORUM_WS_TEXT);
    assert_int_equal(f.length, 5);
    assert_memory_equal(f.mask, small + 2, 4);

    assert_int_equal(parse(medium, sizeof(medium), &f), 8);
    assert_int_equal(f.opcode, FORUM_WS_BINARY);
    assert_int_equal(f.length, 256);

    assert_int_equal(parse(large, sizeof(large), &f), 14);
    assert_int_equal(f.fin, 0);
    assert_int_equal(f.length, 65536);
    assert_memory_equal(f.mask, large + 10, 4);
}

static void test_parse_asks_for_more_until_the_header_is_whole(void **state)
{
    (void)state;
    static const uint8_t large[] = {0x81, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 5, 6, 7, 8};
    forum_ws_frame_t f;
    for (size_t len = 0; len != sizeof(large); ++len)
        assert_int_equal(parse(large, len, &f), 0);
    assert_int_equal(parse(large, sizeof(large), &f), 14);
}

static void test_parse_refuses_malformed_headers(void **state)
{
    (void)state;
    static const struct {
        uint8_t bytes[2];
        const char *what;
    } cases[] = {
        {{0x81, 0x05}, "unmasked"},
        {{0xc1, 0x85}, "RSV1"},
        {{0x91, 0x85}, "RSV3"},
        {{0x83, 0x85}, "reserved data opcode"},
        {{0x8b, 0x85}, "reserved control opcode"},
        {{0x09, 0x85}, "fragmented ping"},
        {{0x88, 0xfe}, "close with a 16-bit length"},
        {{0x8a, 0xfe}, "pong of 126 bytes"},
    };
    forum_ws_frame_t f;
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        if (parse(cases[i].bytes, 2, &f) != -FORUM_WS_PROTOCOL_ERROR)
            unit_fail("accepted: %s", cases[i].what);
    }
    static const uint8_t top_bit[] = {0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    assert_int_equal(parse(top_bit, sizeof(top_bit), &f), -FORUM_WS_PROTOCOL_ERROR);
}

static void test_parse_accepts_control_frames_of_125_bytes(void **state)
{
    (void)state;
    static const uint8_t ping[] = {0x89, 0x80 | 125, 1, 2, 3, 4};
    forum_ws_frame_t f;
    assert_int_equal(parse(ping, sizeof(ping), &f), 6);
    assert_int_equal(f.opcode, FORUM_WS_PING);
    assert_int_equal(f.length, 125);
}

static void test_header_uses_the_shortest_form(void **state)
{
    (void)state;
    uint8_t h[FORUM_WS_MAX_HEADER];
    assert_int_equal(forum_ws_frame_header(h, FORUM_WS_TEXT, 0), 2);
    assert_memory_equal(h, "\x81\x00", 2);
    assert_int_equal(forum_ws_frame_header(h, FORUM_WS_TEXT, 125), 2);
    assert_int_equal(h[1], 125);
    assert_int_equal(forum_ws_frame_header(h, FORUM_WS_PONG, 126), 4);
    assert_memory_equal(h, "\x8a\x7e\x00\x7e", 4);
    assert_int_equal(forum_ws_frame_header(h, FORUM_WS_TEXT, 65535), 4);
    assert_memory_equal(h, "\x81\x7e\xff\xff", 4);
    assert_int_equal(forum_ws_frame_header(h, FORUM_WS_TEXT, 65536), 10);
    assert_memory_equal(h, "\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
}

static void test_unmask_at_every_length_and_alignment(void **state)
{
    (void)state;
    static const uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
    uint8_t buf[64 + 3], expect[64];
    for (size_t offset = 0; offset != 4; ++offset) {
        for (size_t len = 0; len <= 64; ++len) {
            for (size_t i = 0; i != len; ++i) {
                expect[i] = (uint8_t)(i * 7 + 1);
                buf[offset + i] = expect[i] ^ mask[i % 4];
            }
            forum_ws_unmask(buf + offset, len, mask);
            if (len != 0)
                assert_memory_equal(buf + offset, expect, len);
        }
    }
}

static void test_close_codes_a_peer_may_send(void **state)
{
    (void)state;
    static const unsigned valid[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999};
    static const unsigned invalid[] = {0, 999, 1004, 1005, 1006, 1015, 2999, 5000};
    for (size_t i = 0; i != sizeof(valid) / sizeof(valid[0]); ++i)
        assert_true(forum_ws_close_code_valid(valid[i]));
    for (size_t i = 0; i != sizeof(invalid) / sizeof(invalid[0]); ++i)
        assert_false(forum_ws_close_code_valid(invalid[i]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_reads_the_three_length_forms),
        cmocka_unit_test(test_parse_asks_for_more_until_the_header_is_whole),
        cmocka_unit_test(test_parse_refuses_malformed_headers),
        cmocka_unit_test(test_parse_accepts_control_frames_of_125_bytes),
        cmocka_unit_test(test_header_uses_the_shortest_form),
        cmocka_unit_test(test_unmask_at_every_length_and_alignment),
        cmocka_unit_test(test_close_codes_a_peer_may_send),
    };
    return cmocka_run_group_tests_name("ws_frame", tests, NULL, NULL);
}
