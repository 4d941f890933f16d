/*
 * plugins/rooms/mentions.c: the @nickname tokens of a message body, as auth's nickname rule reads them,
 * distinct whatever their case, at most ROOMS_MENTIONS_MAX, and none inside a word (an address).
 */
#include "unit.h"
#include "../../plugins/rooms/rooms.h"

/* mentions.c's lookups are not called by rooms_mention_tokens: the plugin's globals and store are stand-ins */
const forum_api_t *rooms_api;
forum_plugin_t *rooms_self;
int rooms_is_member(int64_t room, int64_t user)
{
    (void)room;
    (void)user;
    return 0;
}

/* The tokens of `body` joined with commas. */
static char *tokens_of(const char *body, char *out, size_t size)
{
    char *list = rooms_mention_tokens(body, strlen(body));
    size_t off = 0;
    assert_non_null(list);
    out[0] = '\0';
    for (const char *t = list; *t != '\0'; t += strlen(t) + 1)
        off += (size_t)snprintf(out + off, size - off, "%s%s", off == 0 ? "" : ",", t);
    free(list);
    return out;
}

static void test_tokens_of_the_nickname_charset(void **state)
{
    char buf[4096];
    (void)state;
    assert_string_equal(tokens_of("hi @bob and @Carol_2, @d.e-f!", buf, sizeof(buf)), "bob,Carol_2,d.e-f");
    assert_string_equal(tokens_of("(@dave) @@eve", buf, sizeof(buf)), "dave,eve");
    assert_string_equal(tokens_of("thanks @bob.", buf, sizeof(buf)), "bob."); /* the dots are tried off when resolving */
    assert_string_equal(tokens_of("@bob", buf, sizeof(buf)), "bob");
}

static void test_no_token_inside_a_word_or_out_of_length(void **state)
{
    char buf[4096];
    (void)state;
    assert_string_equal(tokens_of("mail bob@example.org", buf, sizeof(buf)), "");
    assert_string_equal(tokens_of("@ab @ and @", buf, sizeof(buf)), "");
    assert_string_equal(tokens_of("@abcdefghijklmnopqrstuvwxyz0123456", buf, sizeof(buf)), ""); /* 33 characters */
    assert_string_equal(tokens_of("@abcdefghijklmnopqrstuvwxyz012345", buf, sizeof(buf)), "abcdefghijklmnopqrstuvwxyz012345");
    assert_string_equal(tokens_of("@b\xc3\xb8""b @bo\xc3\xb8", buf, sizeof(buf)), ""); /* ø ends a token: "b" and "bo" are too short */
}

static void test_distinct_whatever_the_case(void **state)
{
    char buf[4096];
    (void)state;
    assert_string_equal(tokens_of("@bob @BOB @Bob @alice @bob", buf, sizeof(buf)), "bob,alice");
}

static void test_at_most_the_bound(void **state)
{
    char body[8192], buf[8192];
    size_t off = 0, count = 0;
    (void)state;
    for (int i = 0; i != 3 * ROOMS_MENTIONS_MAX; ++i)
        off += (size_t)snprintf(body + off, sizeof(body) - off, "@user%03d ", i % (ROOMS_MENTIONS_MAX + 10));
    tokens_of(body, buf, sizeof(buf));
    for (const char *p = buf; *p != '\0'; ++p)
        count += *p == ',';
    assert_int_equal(count + 1, ROOMS_MENTIONS_MAX);
    assert_non_null(strstr(buf, "user049"));
    assert_null(strstr(buf, "user050"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokens_of_the_nickname_charset),
        cmocka_unit_test(test_no_token_inside_a_word_or_out_of_length),
        cmocka_unit_test(test_distinct_whatever_the_case),
        cmocka_unit_test(test_at_most_the_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
