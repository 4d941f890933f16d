/*
 * Plugin settings: what a plugin declares in its descriptor (name, type, range, default) against
 * what plugins.settings gives it. The host checks the configuration against the declarations before
 * the plugin's init runs, at every load and in `forumd -t`, so a misspelled key or a bad value stops
 * forumd with FILE:LINE: message as every other key does. The getters then hand plugins values that
 * were checked, or the declared default, so no plugin parses text itself.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "forum.h"

enum { MAX_DECLS = 256 }; /* a table this long is one whose NULL end was forgotten */

static int parse_uint(const char *s, uint64_t *out)
{
    char *end;
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 || strcmp(s, "on") == 0)
        *out = 1;
    else if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0 || strcmp(s, "off") == 0)
        *out = 0;
    else
        return -1;
    return 0;
}

static int power_of_two(uint64_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

static const forum_setting_decl_t *find_decl(const forum_setting_decl_t *decls, const char *key)
{
    for (size_t i = 0; decls != NULL && i != MAX_DECLS && decls[i].name != NULL; ++i)
        if (strcmp(decls[i].name, key) == 0)
            return decls + i;
    return NULL;
}

/* A declaration table that contradicts itself is the plugin's bug: refuse it rather than guess. */
static int check_decls(const forum_setting_decl_t *decls, char *msg, size_t msglen)
{
    size_t i;
    for (i = 0; decls != NULL && i != MAX_DECLS && decls[i].name != NULL; ++i) {
        const forum_setting_decl_t *d = decls + i;
        const char *why = NULL;
        if (d->name[0] == '\0')
            why = "an empty name";
        else if (find_decl(decls, d->name) != d)
            why = "declared twice";
        else if (d->type == FORUM_SETTING_UINT && (d->min > d->max || d->def < d->min || d->def > d->max))
            why = "its default is outside its range";
        else if (d->type == FORUM_SETTING_UINT && (d->flags & FORUM_SETTING_POWER_OF_TWO) != 0 && !power_of_two(d->def))
            why = "its default is not a power of two";
        else if (d->type == FORUM_SETTING_BOOL && (d->def > 1 || d->flags != 0))
            why = "a yes/no setting with a default other than 0 or 1, or with flags";
        else if (d->type != FORUM_SETTING_UINT && d->type != FORUM_SETTING_BOOL)
            why = "an unknown type";
        else if ((d->flags & ~(unsigned)FORUM_SETTING_POWER_OF_TWO) != 0)
            why = "unknown flags";
        if (why != NULL) {
            snprintf(msg, msglen, "its declaration of setting '%s' is wrong: %s", d->name, why);
            return -1;
        }
    }
    if (i == MAX_DECLS) {
        snprintf(msg, msglen, "its settings table has no end (an entry whose name is NULL)");
        return -1;
    }
    return 0;
}

/* Why `value` does not fit `d`, or NULL when it does. */
static const char *misfit(const forum_setting_decl_t *d, const char *value, char *buf, size_t buflen)
{
    uint64_t n;
    int b;
    if (d->type == FORUM_SETTING_BOOL)
        return parse_bool(value, &b) == 0 ? NULL : "expected true or false";
    if (parse_uint(value, &n) != 0 || n < d->min || n > d->max) {
        snprintf(buf, buflen, "expected a whole number from %llu to %llu", (unsigned long long)d->min, (unsigned long long)d->max);
        return buf;
    }
    if ((d->flags & FORUM_SETTING_POWER_OF_TWO) != 0 && !power_of_two(n))
        return "must be a power of two";
    return NULL;
}

static void list_names(const forum_setting_decl_t *decls, char *buf, size_t buflen)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; decls != NULL && decls[i].name != NULL && used < buflen; ++i)
        used += (size_t)snprintf(buf + used, buflen - used, "%s%s", i == 0 ? "" : ", ", decls[i].name);
}

int forum_plugin_settings_check(const forum_config_t *conf, const char *plugin, const forum_setting_decl_t *decls, char *msg,
                                size_t msglen)
{
    char why[128], names[512];
    if (check_decls(decls, msg, msglen) != 0)
        return -1;
    for (size_t i = 0; i != conf->plugins.num_settings; ++i) {
        const forum_setting_t *s = conf->plugins.settings + i;
        const forum_setting_decl_t *d;
        const char *bad;
        if (strcmp(s->plugin, plugin) != 0)
            continue;
        if ((d = find_decl(decls, s->key)) == NULL) {
            list_names(decls, names, sizeof(names));
            if (names[0] == '\0')
                snprintf(msg, msglen, "%s:%d: plugins.settings.%s.%s: plugin %s has no settings", conf->path, s->line, plugin,
                         s->key, plugin);
            else
                snprintf(msg, msglen, "%s:%d: plugins.settings.%s.%s: unknown setting (plugin %s has: %s)", conf->path, s->line,
                         plugin, s->key, plugin, names);
            return -2;
        }
        if ((bad = misfit(d, s->value, why, sizeof(why))) != NULL) {
            snprintf(msg, msglen, "%s:%d: plugins.settings.%s.%s: %s (found \"%s\")", conf->path, s->line, plugin, s->key, bad,
                     s->value);
            return -2;
        }
    }
    return 0;
}

static const forum_setting_decl_t *declared(forum_plugin_t *p, const char *key, int type, const char *as)
{
    const forum_setting_decl_t *d = find_decl(forum_plugin_desc(p)->settings, key);
    if (d == NULL || d->type != type) {
        forum_log(FORUM_LOG_ERROR, "plugin %s: asked for setting '%s' as %s, which it does not declare", forum_plugin_name(p), key,
                  as);
        return NULL;
    }
    return d;
}

uint64_t forum_plugin_setting_uint(forum_plugin_t *p, const char *key)
{
    const forum_setting_decl_t *d = declared(p, key, FORUM_SETTING_UINT, "a whole number");
    const char *v;
    uint64_t n;
    if (d == NULL)
        return 0;
    v = forum_plugin_setting(p, key);
    return v != NULL && parse_uint(v, &n) == 0 ? n : d->def;
}

int forum_plugin_setting_bool(forum_plugin_t *p, const char *key)
{
    const forum_setting_decl_t *d = declared(p, key, FORUM_SETTING_BOOL, "true or false");
    const char *v;
    int b;
    if (d == NULL)
        return 0;
    v = forum_plugin_setting(p, key);
    return v != NULL && parse_bool(v, &b) == 0 ? b : (int)d->def;
}
