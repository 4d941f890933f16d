/* core/text.c: strict UTF-8, its repair for output, and the one validator of text fields (api->text_field). */
#include "unit.h"
#include "../../core/forum.h"

static int check(const char *s, size_t min, size_t max, int flags, forum_text_t *t)
{
    return forum_text_check(s, strlen(s), min, max, flags, t);
}

static void test_utf8_valid_is_strict(void **state)
{
    (void)state;
    assert_true(forum_utf8_valid("", 0));
    static const char good[] = "h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf \xed\x9f\xbf";
    assert_true(forum_utf8_valid(good, sizeof(good) - 1));
    static const char *bad[] = {"\xed\xa0\x80", "\xed\xbf\xbf", "\xc0\x80", "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf",
                                "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff", "\x80", "\xc3", "\xe2\x82", "\xf0\x9f\x98"};
    for (size_t i = 0; i != FORUM_ARRAY_SIZE(bad); ++i)
        if (forum_utf8_valid(bad[i], strlen(bad[i])))
            unit_fail("accepted bad[%zu]", i);
    assert_false(forum_utf8_valid("a\0b", 3));
}

/* ASCII is checked eight bytes at a time: a NUL, a byte past ASCII or a good sequence is seen at every offset of a word */
static void test_utf8_valid_at_every_offset(void **state)
{
    (void)state;
    char buf[40];
    for (size_t len = 1; len <= 24; ++len)
        for (size_t at = 0; at != len; ++at) {
            memset(buf, 'a', sizeof(buf));
            assert_true(forum_utf8_valid(buf, len));
            buf[at] = '\0';
            if (forum_utf8_valid(buf, len))
                unit_fail("a NUL at %zu of %zu was accepted", at, len);
            buf[at] = '\x80';
            if (forum_utf8_valid(buf, len))
                unit_fail("a lone continuation byte at %zu of %zu was accepted", at, len);
            buf[at] = '\x7f';
            if (!forum_utf8_valid(buf, len))
                unit_fail("DEL at %zu of %zu was refused", at, len);
            if (at + 2 < len) {
                memcpy(buf + at, "\xe2\x82\xac", 3);
                if (!forum_utf8_valid(buf, len))
                    unit_fail("a euro sign at %zu of %zu was refused", at, len);
                if (forum_utf8_valid(buf, at + 2))
                    unit_fail("a euro sign cut at %zu was accepted", at + 2);
            }
        }
}

static void test_repair_replaces_each_bad_byte(void **state)
{
    (void)state;
    size_t len = 0;
    assert_null(forum_utf8_repair("fine \xc3\xa9", 7, &len));
    char *r = forum_utf8_repair("a\xc0\xaf" "b\xed\xa0\x80" "c\0d", 10, &len);
    assert_non_null(r);
    static const char want[] = "a\xef\xbf\xbd\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" "c\xef\xbf\xbd" "d";
    assert_int_equal(len, sizeof(want) - 1);
    assert_memory_equal(r, want, len);
    assert_true(forum_utf8_valid(r, len));
    free(r);
    /* a truncated sequence at the end */
    r = forum_utf8_repair("ok\xf0\x9f", 4, &len);
    assert_string_equal(r, "ok\xef\xbf\xbd\xef\xbf\xbd");
    free(r);
}

static void test_field_trims_and_counts_characters(void **state)
{
    (void)state;
    forum_text_t t;
    assert_int_equal(check("  h\xc3\xa9llo \xf0\x9f\x98\x80 \n", 1, 7, 0, &t), 0);
    assert_int_equal(t.len, strlen("h\xc3\xa9llo \xf0\x9f\x98\x80"));
    assert_memory_equal(t.text, "h\xc3\xa9llo \xf0\x9f\x98\x80", t.len);
    assert_int_equal(t.chars, 7);
    assert_int_equal(check("abcdefgh", 1, 7, 0, &t), 422);
    assert_string_equal(t.message, "must be 1 to 7 characters");
    assert_int_equal(check("   ", 1, 7, 0, &t), 422);
    /* verbatim: neither trimmed nor held to the control rule */
    assert_int_equal(check(" pass\tword\x01 ", 8, 128, FORUM_TEXT_VERBATIM, &t), 0);
    assert_int_equal(t.len, 12);
}

static void test_one_control_character_rule(void **state)
{
    (void)state;
    forum_text_t t;
    /* refused everywhere: C0 controls, DEL, C1 controls (U+0080..U+009F) */
    static const char *controls[] = {"a\x01" "b", "a\x1b" "b", "a\x7f" "b", "a\xc2\x80" "b", "a\xc2\x85" "b", "a\xc2\x9f" "b", "a\x0b" "b"};
    for (size_t i = 0; i != FORUM_ARRAY_SIZE(controls); ++i) {
        assert_int_equal(check(controls[i], 1, 100, FORUM_TEXT_MULTILINE, &t), 422);
        assert_string_equal(t.message, "must not contain control characters");
        assert_int_equal(check(controls[i], 1, 100, 0, &t), 422);
    }
    /* multi-line text keeps tab, newline and carriage return; one line does not, nor U+2028 / U+2029 */
    assert_int_equal(check("a\tb\r\nc", 1, 100, FORUM_TEXT_MULTILINE, &t), 0);
    assert_int_equal(check("a\nb", 1, 100, 0, &t), 422);
    assert_string_equal(t.message, "must be a single line");
    assert_int_equal(check("a\tb", 1, 100, 0, &t), 422);
    assert_int_equal(check("a\xe2\x80\xa8" "b", 1, 100, 0, &t), 422);
    assert_int_equal(check("a\xe2\x80\xa9" "b", 1, 100, FORUM_TEXT_MULTILINE, &t), 0);
    /* U+00A0 and U+00A1 are just after the C1 block: fine */
    assert_int_equal(check("a\xc2\xa0\xc2\xa1" "b", 1, 100, 0, &t), 0);
    /* not text at all */
    assert_int_equal(check("a\xc0\xaf", 1, 100, FORUM_TEXT_MULTILINE, &t), 422);
}

static void test_field_of_a_json_object(void **state)
{
    (void)state;
    char err[128];
    forum_text_t t;
    static const char json[] = "{\"title\":\"  hi  \",\"n\":3,\"nil\":null}";
    yajl_val v = forum_json_parse(json, strlen(json), err, sizeof(err));
    assert_non_null(v);
    assert_int_equal(forum_text_field(v, "title", 1, 10, 0, &t), 0);
    assert_int_equal(t.len, 2);
    assert_memory_equal(t.text, "hi", 2);
    assert_int_equal(forum_text_field(v, "missing", 1, 10, 0, &t), 422);
    assert_string_equal(t.message, "required");
    assert_int_equal(forum_text_field(v, "nil", 1, 10, 0, &t), 422);
    assert_int_equal(forum_text_field(v, "n", 1, 10, 0, &t), 400);
    assert_string_equal(t.message, "must be a string");
    assert_int_equal(forum_text_field(NULL, "title", 1, 10, 0, &t), 400);
    assert_int_equal(forum_text_field(v->u.object.values[1], "title", 1, 10, 0, &t), 400);
    yajl_tree_free(v);
}

static void test_trim_reports_the_same_controls(void **state)
{
    (void)state;
    forum_text_info_t info;
    size_t len = 4;
    forum_text_trim("a\xc2\x85" "b", &len, &info);
    assert_int_equal(info.chars, 3);
    assert_true(info.has_control);
    len = 5;
    forum_text_trim(" a\tb ", &len, &info);
    assert_false(info.has_control);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_valid_is_strict),
        cmocka_unit_test(test_utf8_valid_at_every_offset),
        cmocka_unit_test(test_repair_replaces_each_bad_byte),
        cmocka_unit_test(test_field_trims_and_counts_characters),
        cmocka_unit_test(test_one_control_character_rule),
        cmocka_unit_test(test_field_of_a_json_object),
        cmocka_unit_test(test_trim_reports_the_same_controls),
    };
    return cmocka_run_group_tests_name("text", tests, NULL, NULL);
}
