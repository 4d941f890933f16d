/* core/json.c and core/clock.c: bounded JSON parsing, the generator helpers, and API.md's time format. */
#include "unit.h"
#include "../../core/forum.h"

static yajl_val parse(const char *text, char *err, size_t errlen)
{
    err[0] = '\0';
    return forum_json_parse(text, strlen(text), err, errlen);
}

/* Fails the test unless `text` is refused with a one-line, non-empty message. */
static void expect_refused(const char *text, size_t len)
{
    char err[256] = "";
    yajl_val v = forum_json_parse(text, len, err, sizeof(err));
    if (v != NULL) {
        yajl_tree_free(v);
        unit_fail("accepted: %.*s", (int)len, text);
    }
    assert_true(err[0] != '\0');
    assert_null(strchr(err, '\n'));
}

/* `depth` arrays nested in each other, each holding the next: "[[[...]]]". */
static char *nested(int depth, char open, char close)
{
    char *s = malloc((size_t)depth * 2 + 1);
    for (int i = 0; i != depth; ++i) {
        s[i] = open;
        s[2 * depth - 1 - i] = close;
    }
    s[2 * depth] = '\0';
    return s;
}

/* The generator's output as a string the test compares. */
static void expect_gen(yajl_gen g, const char *want)
{
    const unsigned char *buf;
    size_t len;
    assert_int_equal(yajl_gen_get_buf(g, &buf, &len), yajl_gen_status_ok);
    char *got = strndup((const char *)buf, len);
    assert_string_equal(got, want);
    free(got);
}

static void test_parse_accepts_an_object(void **state)
{
    (void)state;
    char err[128];
    yajl_val v = parse("{\"a\": 1, \"b\": [true, null, \"x\"], \"c\": {\"d\": -2.5}}", err, sizeof(err));
    assert_non_null(v);
    assert_true(YAJL_IS_OBJECT(v));
    assert_int_equal(v->u.object.len, 3);
    yajl_val a = forum_json_member(v, "a"), b = forum_json_member(v, "b"), c = forum_json_member(v, "c");
    assert_true(YAJL_IS_INTEGER(a));
    assert_int_equal(YAJL_GET_INTEGER(a), 1);
    assert_true(YAJL_IS_ARRAY(b));
    assert_int_equal(b->u.array.len, 3);
    assert_true(YAJL_IS_TRUE(b->u.array.values[0]));
    assert_true(YAJL_IS_NULL(b->u.array.values[1]));
    assert_string_equal(YAJL_GET_STRING(b->u.array.values[2]), "x");
    assert_true(YAJL_IS_DOUBLE(forum_json_member(c, "d")));
    assert_true(YAJL_GET_DOUBLE(forum_json_member(c, "d")) == -2.5);
    yajl_tree_free(v);
}

static void test_parse_accepts_an_array(void **state)
{
    (void)state;
    char err[128];
    yajl_val v = parse("[1, \"two\", {}, []]", err, sizeof(err));
    assert_non_null(v);
    assert_true(YAJL_IS_ARRAY(v));
    assert_int_equal(v->u.array.len, 4);
    assert_int_equal(YAJL_GET_INTEGER(v->u.array.values[0]), 1);
    assert_string_equal(YAJL_GET_STRING(v->u.array.values[1]), "two");
    assert_true(YAJL_IS_OBJECT(v->u.array.values[2]));
    assert_true(YAJL_IS_ARRAY(v->u.array.values[3]));
    yajl_tree_free(v);
}

static void test_parse_reads_only_len_bytes(void **state)
{
    (void)state;
    /* the buffer is not NUL-terminated in real use: whatever follows `len` must not be read */
    static const char text[] = "{\"a\":1}garbage";
    char err[128];
    yajl_val v = forum_json_parse(text, 7, err, sizeof(err));
    assert_non_null(v);
    assert_int_equal(YAJL_GET_INTEGER(forum_json_member(v, "a")), 1);
    yajl_tree_free(v);
}

static void test_parse_refuses_malformed_json(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",     "   ",   "{",       "{\"a\":}",  "{\"a\" 1}",      "{\"a\":1,}",
        "[1,]", "[1 2]", "{'a':1}", "{a:1}",     "\"unterminated", "{} x",
        "{}{}", "[01]",  "[tru]",   "{\"a\":1]", "[\"\\q\"]",      "[\"tab\there\"]",
    };
    for (size_t i = 0; i != FORUM_ARRAY_SIZE(bad); ++i)
        expect_refused(bad[i], strlen(bad[i]));
}

static void test_parse_refuses_comments(void **state)
{
    (void)state;
    /* comments are not JSON (RFC 8259); API.md answers malformed JSON with 400 */
    static const char *bad[] = {"{\"a\": 1 /* note */}", "[1, // note\n 2]"};
    for (size_t i = 0; i != FORUM_ARRAY_SIZE(bad); ++i)
        expect_refused(bad[i], strlen(bad[i]));
}

static void test_parse_refuses_a_nul_byte(void **state)
{
    (void)state;
    static const char in_string[] = "{\"a\":\"x\0y\"}";
    static const char after[] = "{\"a\":1}\0";
    char err[128] = "";
    assert_null(forum_json_parse(in_string, sizeof(in_string) - 1, err, sizeof(err)));
    assert_non_null(strstr(err, "NUL"));
    expect_refused(after, sizeof(after) - 1);
}

static void test_parse_accepts_nesting_32_deep(void **state)
{
    (void)state;
    char err[128];
    char *arrays = nested(32, '[', ']');
    yajl_val v = parse(arrays, err, sizeof(err));
    assert_non_null(v);
    yajl_tree_free(v);
    free(arrays);

    /* objects count like arrays: 16 objects each holding an array, 32 levels */
    char mixed[512] = "";
    for (int i = 0; i != 16; ++i)
        strcat(mixed, "{\"k\":[");
    for (int i = 0; i != 16; ++i)
        strcat(mixed, "]}");
    v = parse(mixed, err, sizeof(err));
    assert_non_null(v);
    yajl_tree_free(v);
}

static void test_parse_refuses_nesting_33_deep(void **state)
{
    (void)state;
    char err[128] = "";
    char *arrays = nested(33, '[', ']');
    assert_null(parse(arrays, err, sizeof(err)));
    assert_non_null(strstr(err, "32"));
    free(arrays);

    char *objects = malloc(33 * 8 + 1);
    objects[0] = '\0';
    for (int i = 0; i != 33; ++i)
        strcat(objects, i == 32 ? "{" : "{\"k\":");
    for (int i = 0; i != 33; ++i)
        strcat(objects, "}");
    expect_refused(objects, strlen(objects));
    free(objects);

    /* far deeper than any stack should be asked to recurse */
    char *deep = nested(100000, '[', ']');
    expect_refused(deep, strlen(deep));
    free(deep);
}

static void test_parse_brackets_inside_strings_do_not_count(void **state)
{
    (void)state;
    char err[128];
    char text[256];

    /* 40 opening brackets inside a string, at depth 1 */
    snprintf(text, sizeof(text), "{\"s\":\"%s\"}", "[[[[[[[[[[{{{{{{{{{{[[[[[[[[[[{{{{{{{{{{");
    yajl_val v = parse(text, err, sizeof(err));
    assert_non_null(v);
    const char *s = YAJL_GET_STRING(forum_json_member(v, "s"));
    assert_non_null(s);
    assert_int_equal(strlen(s), 40);
    yajl_tree_free(v);

    /* an escaped quote does not end the string */
    snprintf(text, sizeof(text), "[\"\\\"%s\"]", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[");
    v = parse(text, err, sizeof(err));
    assert_non_null(v);
    yajl_tree_free(v);

    /* an escaped backslash does end it: the brackets after it are real and too deep */
    char *deep = nested(33, '[', ']');
    snprintf(text, sizeof(text), "[\"\\\\\",%s]", deep);
    free(deep);
    expect_refused(text, strlen(text));
}

static void test_parse_refuses_invalid_utf8(void **state)
{
    (void)state;
    static const char *bad[] = {
        "[\"\xff\"]",     /* never valid */
        "[\"\xc3\"]",     /* truncated two-byte sequence */
        "[\"\xe2\x82\"]", /* truncated three-byte sequence */
        "[\"\x80\"]",     /* lone continuation byte */
        "{\"\xfe\":1}",   /* in a key */
    };
    for (size_t i = 0; i != FORUM_ARRAY_SIZE(bad); ++i)
        expect_refused(bad[i], strlen(bad[i]));

    char err[128];
    yajl_val v = parse("[\"h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"]", err, sizeof(err));
    assert_non_null(v);
    assert_string_equal(YAJL_GET_STRING(v->u.array.values[0]), "h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    yajl_tree_free(v);
}

static void test_parse_refuses_strings_that_are_not_strict_utf8(void **state)
{
    (void)state;
    /* structurally fine for yajl's lexer, but not UTF-8: the gate refuses the bytes themselves */
    static const char *bad[] = {
        "[\"\xed\xa0\x80\"]",     /* an encoded surrogate */
        "[\"\xc0\x80\"]",         /* overlong NUL */
        "[\"\xc0\xaf\"]",         /* overlong '/' */
        "[\"\xe0\x80\xaf\"]",     /* overlong in three bytes */
        "[\"\xf4\x90\x80\x80\"]", /* past U+10FFFF */
        "{\"\xed\xb0\x80\":1}",   /* in a key */
    };
    for (size_t i = 0; i != FORUM_ARRAY_SIZE(bad); ++i)
        expect_refused(bad[i], strlen(bad[i]));
}

static void test_parse_refuses_escapes_that_are_not_text(void **state)
{
    (void)state;
    static const char *bad[] = {
        "[\"password1\\u0000x\"]", /* yajl would cut the string at the NUL */
        "[\"\\u0000\"]",
        "[\"\\udc00\"]",           /* a lone low surrogate: yajl decodes it into ED B0 80 */
        "[\"\\uDFFF\"]",
        "[\"\\ud800\"]",           /* a high surrogate at the end */
        "[\"\\ud800x\"]",          /* followed by something else */
        "[\"\\ud800\\u0041\"]",    /* followed by an escape that is not a low surrogate */
        "[\"\\udc00\\ud800\"]",    /* a pair the wrong way round */
        "{\"k\\u0000\":1}",        /* in a key */
        "{\"k\\udc00\":1}",
    };
    for (size_t i = 0; i != FORUM_ARRAY_SIZE(bad); ++i)
        expect_refused(bad[i], strlen(bad[i]));

    /* a real pair, escaped, is text; so is an escaped backslash before "u0000" */
    char err[128];
    yajl_val v = parse("[\"\\ud83d\\ude00\", \"\\\\u0000\", \"\\u00e9\"]", err, sizeof(err));
    assert_non_null(v);
    assert_string_equal(YAJL_GET_STRING(v->u.array.values[0]), "\xf0\x9f\x98\x80");
    assert_string_equal(YAJL_GET_STRING(v->u.array.values[1]), "\\u0000");
    assert_string_equal(YAJL_GET_STRING(v->u.array.values[2]), "\xc3\xa9");
    yajl_tree_free(v);
}

static void test_parse_repaired_reads_bad_escapes_as_fffd(void **state)
{
    (void)state;
    char err[128];
    int repaired = -1;
    static const char text[] = "{\"client_id\":\"c1\",\"body\":\"a\\udc00b\\u0000\"}";
    yajl_val v = forum_json_parse_repaired(text, strlen(text), err, sizeof(err), &repaired);
    assert_non_null(v);
    assert_int_equal(repaired, 1);
    assert_string_equal(YAJL_GET_STRING(forum_json_member(v, "client_id")), "c1");
    assert_string_equal(YAJL_GET_STRING(forum_json_member(v, "body")), "a\xef\xbf\xbd" "b\xef\xbf\xbd");
    yajl_tree_free(v);

    v = forum_json_parse_repaired("{\"a\":\"b\"}", 9, err, sizeof(err), &repaired);
    assert_non_null(v);
    assert_int_equal(repaired, 0);
    yajl_tree_free(v);
    /* raw bytes that are not UTF-8 are never repaired */
    assert_null(forum_json_parse_repaired("[\"\xc0\x80\"]", 6, err, sizeof(err), &repaired));
}

static void test_member_finds_a_key_or_gives_null(void **state)
{
    (void)state;
    char err[128];
    yajl_val v = parse("{\"name\": \"ann\", \"age\": 30, \"nothing\": null}", err, sizeof(err));
    assert_non_null(v);
    assert_string_equal(YAJL_GET_STRING(forum_json_member(v, "name")), "ann");
    assert_int_equal(YAJL_GET_INTEGER(forum_json_member(v, "age")), 30);
    assert_true(YAJL_IS_NULL(forum_json_member(v, "nothing")));
    assert_non_null(forum_json_member(v, "nothing"));
    assert_null(forum_json_member(v, "missing"));
    assert_null(forum_json_member(v, "Name"));
    assert_null(forum_json_member(v, "nam"));
    /* not an object: no members */
    assert_null(forum_json_member(forum_json_member(v, "name"), "name"));
    assert_null(forum_json_member(NULL, "name"));
    yajl_tree_free(v);

    v = parse("[\"name\"]", err, sizeof(err));
    assert_null(forum_json_member(v, "name"));
    yajl_tree_free(v);
}

static void test_str_writes_null_for_null(void **state)
{
    (void)state;
    yajl_gen g = forum_json_gen();
    yajl_gen_array_open(g);
    forum_json_str(g, "a");
    forum_json_str(g, NULL);
    forum_json_str(g, "");
    forum_json_str(g, "say \"hi\" \\ a/b\n\xc3\xa9");
    yajl_gen_array_close(g);
    expect_gen(g, "[\"a\",null,\"\",\"say \\\"hi\\\" \\\\ a/b\\n\xc3\xa9\"]");
    yajl_gen_free(g);
}

static void test_gen_refuses_invalid_utf8(void **state)
{
    (void)state;
    yajl_gen g = forum_json_gen();
    assert_int_equal(yajl_gen_string(g, (const unsigned char *)"\xff", 1), yajl_gen_invalid_string);
    yajl_gen_free(g);
}

static void test_error_members_include_the_field(void **state)
{
    (void)state;
    yajl_gen g = forum_json_gen();
    yajl_gen_map_open(g);
    forum_json_error_members(g, "validation", "nickname is too short", "nickname");
    yajl_gen_map_close(g);
    expect_gen(g, "{\"code\":\"validation\",\"message\":\"nickname is too short\",\"field\":\"nickname\"}");
    yajl_gen_free(g);
}

static void test_error_members_omit_a_null_field(void **state)
{
    (void)state;
    yajl_gen g = forum_json_gen();
    yajl_gen_map_open(g);
    forum_json_str(g, "error");
    yajl_gen_map_open(g);
    forum_json_error_members(g, "not_found", "no such \"post\"", NULL);
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    expect_gen(g, "{\"error\":{\"code\":\"not_found\",\"message\":\"no such \\\"post\\\"\"}}");
    yajl_gen_free(g);
}

static void test_format_time_of_the_epoch(void **state)
{
    (void)state;
    char buf[25];
    forum_format_time(0, buf);
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
}

static void test_format_time_of_known_instants(void **state)
{
    (void)state;
    char buf[25]; /* the documented minimum: ASan catches a write past it */
    forum_format_time(1796039100123LL, buf);
    assert_string_equal(buf, "2026-11-30T11:45:00.123Z");
    forum_format_time(951782400005LL, buf); /* 2000-02-29, a leap day; milliseconds keep their zeros */
    assert_string_equal(buf, "2000-02-29T00:00:00.005Z");
    forum_format_time(253402300799999LL, buf); /* the last millisecond of year 9999 */
    assert_string_equal(buf, "9999-12-31T23:59:59.999Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_accepts_an_object),
        cmocka_unit_test(test_parse_accepts_an_array),
        cmocka_unit_test(test_parse_reads_only_len_bytes),
        cmocka_unit_test(test_parse_refuses_malformed_json),
        cmocka_unit_test(test_parse_refuses_comments),
        cmocka_unit_test(test_parse_refuses_a_nul_byte),
        cmocka_unit_test(test_parse_accepts_nesting_32_deep),
        cmocka_unit_test(test_parse_refuses_nesting_33_deep),
        cmocka_unit_test(test_parse_brackets_inside_strings_do_not_count),
        cmocka_unit_test(test_parse_refuses_invalid_utf8),
        cmocka_unit_test(test_parse_refuses_strings_that_are_not_strict_utf8),
        cmocka_unit_test(test_parse_refuses_escapes_that_are_not_text),
        cmocka_unit_test(test_parse_repaired_reads_bad_escapes_as_fffd),
        cmocka_unit_test(test_member_finds_a_key_or_gives_null),
        cmocka_unit_test(test_str_writes_null_for_null),
        cmocka_unit_test(test_gen_refuses_invalid_utf8),
        cmocka_unit_test(test_error_members_include_the_field),
        cmocka_unit_test(test_error_members_omit_a_null_field),
        cmocka_unit_test(test_format_time_of_the_epoch),
        cmocka_unit_test(test_format_time_of_known_instants),
    };
    forum_log_set_level(FORUM_LOG_WARN);
    return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
