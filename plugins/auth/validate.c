/* Account fields as API.md "Accounts" defines them. */
#include <stdio.h>
#include <string.h>
#include "auth.h"

static int fail(auth_error_t *err, int status, const char *field, const char *message)
{
    err->status = status;
    err->field = field;
    err->message = message;
    return -1;
}

/*
 * A string member read by the core's one validator (one line; passwords verbatim: neither trimmed nor held
 * to the control-character rule), between min and max characters, copied into `out`. Missing or empty is
 * a validation failure; another JSON type is a bad request. A length failure says `range_message`.
 */
static int text_field(yajl_val body, const char *name, int verbatim, size_t min, size_t max, char *out, size_t out_size,
                      auth_error_t *err, const char *range_message)
{
    forum_text_t t;
    int status = auth_api->text_field(body, name, min, max, verbatim ? FORUM_TEXT_VERBATIM : 0, &t);

    if (status == 0 && t.len >= out_size)
        return fail(err, 422, name, range_message);
    if (status != 0) {
        if (status == 422 && t.text != NULL && (t.chars < min || t.chars > max))
            return fail(err, 422, name, range_message);
        snprintf(err->message_buf, sizeof(err->message_buf), "%s", t.message);
        return fail(err, status, name, err->message_buf);
    }
    memcpy(out, t.text, t.len);
    out[t.len] = '\0';
    return 0;
}

static int valid_nickname(const char *s)
{
    for (; *s != '\0'; ++s)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' || *s == '-'))
            return 0;
    return 1;
}

static void lower_ascii(char *s)
{
    for (; *s != '\0'; ++s)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

/* local@domain.tld: one '@', a local part without spaces, a domain of dot-separated labels, a TLD of two or more */
static int plausible_email(const char *s)
{
    const char *at = strchr(s, '@'), *p;
    size_t label = 0, labels = 0;

    if (at == NULL || at == s || strchr(at + 1, '@') != NULL || at - s > 64)
        return 0;
    for (p = s; p != at; ++p)
        if (*p == ' ' || *p == '"' || *p == '(' || *p == ')' || *p == ',' || *p == ':' || *p == ';' || *p == '<' || *p == '>' ||
            *p == '[' || *p == ']' || *p == '\\')
            return 0;
    for (p = at + 1;; ++p) {
        if (*p == '.' || *p == '\0') {
            if (label == 0 || p[-1] == '-')
                return 0;
            ++labels;
            if (*p == '\0')
                break;
            label = 0;
        } else {
            unsigned char c = (unsigned char)*p;
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && label != 0) || c >= 0x80))
                return 0;
            ++label;
        }
    }
    return labels >= 2 && label >= 2;
}

int auth_validate_registration(yajl_val body, auth_registration_t *out, auth_error_t *err)
{
    const char *path[] = {"age", NULL};
    yajl_val age;

    if (body == NULL)
        return fail(err, 400, NULL, "send the account as a JSON object");
    if (text_field(body, "nickname", 0, 3, 32, out->nickname, sizeof(out->nickname), err,
                   "must be 3 to 32 characters") != 0)
        return -1;
    if (!valid_nickname(out->nickname))
        return fail(err, 422, "nickname", "may contain only letters, digits, _ . and -");
    if (text_field(body, "email", 0, 3, 254, out->email, sizeof(out->email), err, "must be at most 254 characters") != 0)
        return -1;
    lower_ascii(out->email);
    if (!plausible_email(out->email))
        return fail(err, 422, "email", "is not an email address");
    if (text_field(body, "password", 1, 8, 128, out->password, sizeof(out->password), err, "must be 8 to 128 characters") != 0)
        return -1;
    if (text_field(body, "first_name", 0, 1, 64, out->first_name, sizeof(out->first_name), err, "must be 1 to 64 characters") != 0)
        return -1;
    if (text_field(body, "last_name", 0, 1, 64, out->last_name, sizeof(out->last_name), err, "must be 1 to 64 characters") != 0)
        return -1;
    age = yajl_tree_get(body, path, yajl_t_any);
    if (age == NULL || YAJL_IS_NULL(age))
        return fail(err, 422, "age", "required");
    if (!YAJL_IS_INTEGER(age))
        return fail(err, 400, "age", "must be a whole number");
    if (YAJL_GET_INTEGER(age) < 13 || YAJL_GET_INTEGER(age) > 130)
        return fail(err, 422, "age", "must be between 13 and 130");
    out->age = (int)YAJL_GET_INTEGER(age);
    if (text_field(body, "gender", 0, 1, 6, out->gender, sizeof(out->gender), err, "must be female, male or other") != 0)
        return -1;
    if (strcmp(out->gender, "female") != 0 && strcmp(out->gender, "male") != 0 && strcmp(out->gender, "other") != 0)
        return fail(err, 422, "gender", "must be female, male or other");
    return 0;
}

int auth_validate_login(yajl_val body, char *login, size_t login_size, char *password, size_t password_size, auth_error_t *err)
{
    if (body == NULL)
        return fail(err, 400, NULL, "send login and password as a JSON object");
    if (text_field(body, "login", 0, 1, 254, login, login_size, err, "must be your nickname or email") != 0)
        return -1;
    lower_ascii(login);
    /* any length is looked up: a password that cannot exist simply fails like a wrong one */
    return text_field(body, "password", 1, 1, 1024, password, password_size, err, "required");
}
