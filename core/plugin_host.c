/*
 * The plugin host: loads each plugin generation from a private copy of its file, checks its ABI,
 * runs its init (which registers routes, frame types, events and migrations), makes it current,
 * and unloads the previous generation once nothing pins it any more.
 */
#include <assert.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "forum.h"

typedef struct route {
    char *method;
    char *pattern;
    char *segments[FORUM_ROUTE_MAX_SEGMENTS]; /* pointers into `pattern_buf`; ":name" marks a parameter */
    size_t num_segments;
    char *pattern_buf;
    int flags;
    forum_route_fn fn;
} route_t;

typedef struct named_fn {
    char *name;
    void *fn;
} named_fn_t;

typedef struct slot slot_t;

struct forum_plugin {
    slot_t *slot;
    h2o_linklist_t live; /* every generation not yet unloaded, current or retired */
    const forum_plugin_desc_t *desc;
    void *dl;
    unsigned generation;
    int64_t loaded_ms;
    size_t pins; /* one of them is held while the generation is current */
    int initializing;
    H2O_VECTOR(route_t) routes;
    H2O_VECTOR(named_fn_t) frames;
    H2O_VECTOR(named_fn_t) events;
    H2O_VECTOR(forum_migration_t) migrations;
};

/* What identifies one version of a file: a file renamed into place is new even with the same bytes. */
typedef struct file_id {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
} file_id_t;

struct slot {
    char *name;
    forum_plugin_t *current;
    unsigned generations;
    unsigned copies;
    file_id_t loaded;  /* the file the current generation came from */
    file_id_t refused; /* the last file refused, not retried until it changes */
    uv_timer_t debounce;
    int watching;
};

static const forum_config_t *config;
static h2o_linklist_t live_gens = {&live_gens, &live_gens};
static uv_fs_event_t dir_watch;
static int dir_watching;
static slot_t *slots;
static size_t num_slots;
static char private_dir[PATH_MAX];

static void *grow(void *entries, size_t *capacity, size_t size, size_t elem)
{
    if (size < *capacity)
        return entries;
    *capacity = *capacity == 0 ? 4 : *capacity * 2;
    return realloc(entries, *capacity * elem);
}
#define PUSH(vec) ((vec).entries = grow((vec).entries, &(vec).capacity, (vec).size, sizeof(*(vec).entries)), (vec).entries + (vec).size++)

int forum_plugins_init(const forum_config_t *conf)
{
    const char *tmp = getenv("TMPDIR");
    config = conf;
    snprintf(private_dir, sizeof(private_dir), "%s/forumd-plugins-XXXXXX", tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
    if (mkdtemp(private_dir) == NULL) {
        forum_log(FORUM_LOG_ERROR, "cannot create a folder for plugin copies (%s): %s", private_dir, strerror(errno));
        return -1;
    }
    slots = calloc(conf->plugins.num_load + 1, sizeof(*slots));
    for (size_t i = 0; i != conf->plugins.num_load; ++i)
        slots[num_slots++].name = strdup(conf->plugins.load[i]);
    return 0;
}

static slot_t *find_slot(const char *name)
{
    for (size_t i = 0; i != num_slots; ++i)
        if (strcmp(slots[i].name, name) == 0)
            return slots + i;
    return NULL;
}

static void free_registrations(forum_plugin_t *p)
{
    for (size_t i = 0; i != p->routes.size; ++i) {
        free(p->routes.entries[i].method);
        free(p->routes.entries[i].pattern);
        free(p->routes.entries[i].pattern_buf);
    }
    free(p->routes.entries);
    for (size_t i = 0; i != p->frames.size; ++i)
        free(p->frames.entries[i].name);
    free(p->frames.entries);
    for (size_t i = 0; i != p->events.size; ++i)
        free(p->events.entries[i].name);
    free(p->events.entries);
    for (size_t i = 0; i != p->migrations.size; ++i)
        free((char *)p->migrations.entries[i].sql);
    free(p->migrations.entries);
}

static void unload(forum_plugin_t *p)
{
    /* the descriptor, not the slot: slots are gone when the last pins of a shutdown drop */
    forum_log(FORUM_LOG_INFO, "plugin %s %s: generation %u unloaded", p->desc->name, p->desc->version, p->generation);
    h2o_linklist_unlink(&p->live);
    if (p->desc->fini != NULL)
        p->desc->fini(p);
    free_registrations(p);
    dlclose(p->dl);
    free(p);
}

void forum_plugin_pin(forum_plugin_t *p)
{
    ++p->pins;
}

void forum_plugin_unpin(forum_plugin_t *p)
{
    assert(p->pins != 0);
    if (--p->pins == 0)
        unload(p);
}

const char *forum_plugin_name(forum_plugin_t *p)
{
    return p->desc->name;
}

const char *forum_plugin_setting(forum_plugin_t *p, const char *key)
{
    for (size_t i = 0; i != config->plugins.num_settings; ++i) {
        const forum_setting_t *s = config->plugins.settings + i;
        if (strcmp(s->plugin, p->slot->name) == 0 && strcmp(s->key, key) == 0)
            return s->value;
    }
    return NULL;
}

static void file_id_of(const struct stat *st, file_id_t *id)
{
    memset(id, 0, sizeof(*id));
    id->dev = st->st_dev;
    id->ino = st->st_ino;
    id->size = st->st_size;
    id->mtime = st->st_mtim;
    id->ctime = st->st_ctim;
}

static int same_file(const file_id_t *a, const file_id_t *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
           a->mtime.tv_nsec == b->mtime.tv_nsec && a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* Copies `src` to a new private file, so that dlopen sees a path it has never loaded; `id` is the source's identity. */
static int private_copy(slot_t *slot, const char *src, char *dst, size_t dstlen, file_id_t *id)
{
    struct stat st;
    char buf[65536];
    ssize_t n;
    int in, out, ret = -1;

    if ((size_t)snprintf(dst, dstlen, "%s/%s.%u.so", private_dir, slot->name, ++slot->copies) >= dstlen) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if ((in = open(src, O_RDONLY | O_CLOEXEC)) == -1)
        return -1;
    if (fstat(in, &st) != 0) {
        close(in);
        return -1;
    }
    file_id_of(&st, id);
    if ((out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700)) == -1) {
        close(in);
        return -1;
    }
    while ((n = read(in, buf, sizeof(buf))) > 0)
        if (write(out, buf, (size_t)n) != n)
            goto Exit;
    ret = n == 0 ? 0 : -1;
Exit:
    close(in);
    if (close(out) != 0)
        ret = -1;
    if (ret != 0)
        unlink(dst);
    return ret;
}

static int refuse(const char *name, const char *file, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    forum_log(FORUM_LOG_ERROR, "plugin %s: refused %s: %s", name, file, msg);
    return -1;
}

int forum_plugins_load(const char *name)
{
    slot_t *slot = find_slot(name);
    char file[PATH_MAX], copy[PATH_MAX];
    const forum_plugin_desc_t *desc;
    forum_plugin_t *p = NULL, *old;
    file_id_t id;
    void *dl;

    if (slot == NULL)
        return refuse(name, "(none)", "not listed in plugins.load");
    snprintf(file, sizeof(file), "%s/%s.so", config->plugins.dir, name);
    if (private_copy(slot, file, copy, sizeof(copy), &id) != 0)
        return refuse(name, file, "cannot copy it: %s", strerror(errno));
    slot->refused = id; /* until it is accepted below */
    dl = dlopen(copy, RTLD_NOW | RTLD_LOCAL);
    unlink(copy); /* the mapping stays; the name is no longer needed */
    if (dl == NULL)
        return refuse(name, file, "%s", dlerror());
    if ((desc = dlsym(dl, "forum_plugin")) == NULL) {
        refuse(name, file, "it exports no forum_plugin descriptor");
        goto Error;
    }
    if (desc->abi != FORUM_PLUGIN_ABI) {
        refuse(name, file, "its plugin ABI is %u, this forumd speaks %u", desc->abi, FORUM_PLUGIN_ABI);
        goto Error;
    }
    if (desc->name == NULL || strcmp(desc->name, name) != 0 || desc->version == NULL || desc->init == NULL) {
        refuse(name, file, "its descriptor is incomplete or names another plugin (%s)", desc->name != NULL ? desc->name : "no name");
        goto Error;
    }

    p = calloc(1, sizeof(*p));
    p->slot = slot;
    p->desc = desc;
    p->dl = dl;
    p->loaded_ms = forum_now_ms();
    p->initializing = 1;
    if (desc->init(p, &forum_api) != 0) {
        refuse(name, file, "its init failed");
        goto Error;
    }
    p->initializing = 0;
    if (forum_db_migrate(name, p->migrations.entries, p->migrations.size) != 0) {
        refuse(name, file, "its schema migration failed");
        if (desc->fini != NULL)
            desc->fini(p);
        goto Error;
    }

    old = slot->current;
    p->generation = ++slot->generations;
    p->pins = 1;
    slot->current = p;
    slot->loaded = id;
    memset(&slot->refused, 0, sizeof(slot->refused));
    h2o_linklist_insert(&live_gens, &p->live);
    forum_log(FORUM_LOG_INFO, "plugin %s %s: generation %u loaded (%zu routes, %zu frame types, %zu events)", name, desc->version,
              p->generation, p->routes.size, p->frames.size, p->events.size);
    if (old != NULL)
        forum_plugin_unpin(old);
    return 0;

Error:
    if (p != NULL) {
        free_registrations(p);
        free(p);
    }
    dlclose(dl);
    return -1;
}

int forum_plugins_check(const char *name)
{
    slot_t *slot = find_slot(name);
    char file[PATH_MAX];
    struct stat st;
    file_id_t id;

    if (slot == NULL)
        return 0;
    snprintf(file, sizeof(file), "%s/%s.so", config->plugins.dir, name);
    if (stat(file, &st) != 0)
        return 0; /* gone for now (a rename in progress): the current generation stays */
    file_id_of(&st, &id);
    if (same_file(&id, &slot->loaded) || same_file(&id, &slot->refused))
        return 0;
    forum_log(FORUM_LOG_INFO, "plugin %s: %s changed, swapping", name, file);
    return forum_plugins_load(name) == 0 ? 1 : -1;
}

void forum_plugins_check_all(void)
{
    for (size_t i = 0; i != num_slots; ++i)
        forum_plugins_check(slots[i].name);
}

static void on_debounced(uv_timer_t *timer)
{
    forum_plugins_check(((slot_t *)timer->data)->name);
}

static void on_dir_event(uv_fs_event_t *handle, const char *filename, int events, int status)
{
    (void)handle;
    (void)events;
    if (status != 0 || filename == NULL) {
        forum_plugins_check_all();
        return;
    }
    for (size_t i = 0; i != num_slots; ++i) {
        size_t n = strlen(slots[i].name);
        if (strncmp(filename, slots[i].name, n) == 0 && strcmp(filename + n, ".so") == 0)
            uv_timer_start(&slots[i].debounce, on_debounced, 200, 0); /* a build writes in several steps */
    }
}

int forum_plugins_watch(uv_loop_t *loop)
{
    int r;
    for (size_t i = 0; i != num_slots; ++i) {
        uv_timer_init(loop, &slots[i].debounce);
        slots[i].debounce.data = slots + i;
        slots[i].watching = 1;
    }
    if (!config->plugins.watch)
        return 0;
    uv_fs_event_init(loop, &dir_watch);
    if ((r = uv_fs_event_start(&dir_watch, on_dir_event, config->plugins.dir, 0)) != 0) {
        forum_log(FORUM_LOG_ERROR, "plugins.watch: cannot watch %s: %s", config->plugins.dir, uv_strerror(r));
        return -1;
    }
    dir_watching = 1;
    forum_log(FORUM_LOG_INFO, "watching %s for new plugin files", config->plugins.dir);
    return 0;
}

void forum_plugins_shutdown(void)
{
    if (dir_watching) {
        uv_fs_event_stop(&dir_watch);
        uv_close((uv_handle_t *)&dir_watch, NULL);
        dir_watching = 0;
    }
    for (size_t i = 0; i != num_slots; ++i) {
        if (slots[i].watching) {
            uv_timer_stop(&slots[i].debounce);
            uv_close((uv_handle_t *)&slots[i].debounce, NULL);
        }
    }
    for (size_t i = 0; i != num_slots; ++i) {
        forum_plugin_t *p = slots[i].current;
        slots[i].current = NULL;
        if (p != NULL)
            forum_plugin_unpin(p);
        free(slots[i].name);
    }
    free(slots);
    slots = NULL;
    num_slots = 0;
    if (private_dir[0] != '\0')
        rmdir(private_dir);
}

/* --- registration (called through the api table during init) --- */

static int registering(forum_plugin_t *p, const char *what)
{
    if (!p->initializing) {
        forum_log(FORUM_LOG_ERROR, "plugin %s: %s registered outside init", p->slot->name, what);
        return 0;
    }
    return 1;
}

static int split_pattern(route_t *r)
{
    int n = forum_route_split_pattern(r->pattern_buf, r->segments, FORUM_ROUTE_MAX_SEGMENTS);
    if (n < 0)
        return -1;
    r->num_segments = (size_t)n;
    return 0;
}

static int same_shape(const route_t *a, const route_t *b)
{
    if (strcmp(a->method, b->method) != 0 || a->num_segments != b->num_segments)
        return 0;
    for (size_t i = 0; i != a->num_segments; ++i) {
        int pa = a->segments[i][0] == ':', pb = b->segments[i][0] == ':';
        if (pa != pb || (!pa && strcmp(a->segments[i], b->segments[i]) != 0))
            return 0;
    }
    return 1;
}

int forum_plugin_add_route(forum_plugin_t *p, const char *method, const char *pattern, int flags, forum_route_fn fn)
{
    route_t r = {0};
    if (!registering(p, "a route") || method == NULL || pattern == NULL || fn == NULL)
        return -1;
    r.method = strdup(method);
    r.pattern = strdup(pattern);
    r.pattern_buf = strdup(pattern);
    r.flags = flags;
    r.fn = fn;
    if (split_pattern(&r) != 0) {
        forum_log(FORUM_LOG_ERROR, "plugin %s: bad route pattern '%s'", p->slot->name, pattern);
        goto Error;
    }
    /* a route belongs to one plugin: refuse one that another plugin (or this one) already serves */
    for (size_t i = 0; i != num_slots; ++i) {
        forum_plugin_t *other = slots + i == p->slot ? p : slots[i].current;
        for (size_t j = 0; other != NULL && j != other->routes.size; ++j) {
            if (same_shape(&r, other->routes.entries + j)) {
                forum_log(FORUM_LOG_ERROR, "plugin %s: route %s %s is already served by plugin %s", p->slot->name, method, pattern,
                          other->slot->name);
                goto Error;
            }
        }
    }
    *PUSH(p->routes) = r;
    return 0;
Error:
    free(r.method);
    free(r.pattern);
    free(r.pattern_buf);
    return -1;
}

static int add_named(forum_plugin_t *p, void *vec_, const char *kind, const char *name, void *fn)
{
    H2O_VECTOR(named_fn_t) *vec = vec_;
    if (!registering(p, kind) || name == NULL || fn == NULL)
        return -1;
    for (size_t i = 0; i != vec->size; ++i)
        if (strcmp(vec->entries[i].name, name) == 0)
            return -1;
    named_fn_t *e = PUSH(*vec);
    e->name = strdup(name);
    e->fn = fn;
    return 0;
}

int forum_plugin_add_frame(forum_plugin_t *p, const char *type, forum_frame_fn fn)
{
    if (type != NULL && strcmp(type, "ping") == 0)
        return -1; /* answered by the hub itself */
    for (size_t i = 0; type != NULL && i != num_slots; ++i) {
        forum_plugin_t *other = slots + i == p->slot ? NULL : slots[i].current;
        for (size_t j = 0; other != NULL && j != other->frames.size; ++j) {
            if (strcmp(other->frames.entries[j].name, type) == 0) {
                forum_log(FORUM_LOG_ERROR, "plugin %s: frame type %s is already handled by plugin %s", p->slot->name, type,
                          other->slot->name);
                return -1;
            }
        }
    }
    return add_named(p, &p->frames, "a frame type", type, (void *)fn);
}

int forum_plugin_add_event(forum_plugin_t *p, const char *name, forum_event_fn fn)
{
    return add_named(p, &p->events, "an event", name, (void *)fn);
}

int forum_plugin_add_migration(forum_plugin_t *p, int number, const char *sql)
{
    if (!registering(p, "a migration") || sql == NULL)
        return -1;
    forum_migration_t *m = PUSH(p->migrations);
    m->number = number;
    m->sql = strdup(sql);
    return 0;
}

/* --- lookups on the request path --- */

int forum_plugins_route(h2o_iovec_t method, h2o_iovec_t path, forum_route_match_t *m)
{
    h2o_iovec_t segs[FORUM_ROUTE_MAX_SEGMENTS];
    int nsegs = forum_route_split_path(path.base, path.len, segs, FORUM_ROUTE_MAX_SEGMENTS);
    if (nsegs == FORUM_PATH_BAD)
        return -2;
    if (nsegs < 0)
        return 0;

    int other_method = 0;
    for (size_t s = 0; s != num_slots; ++s) {
        forum_plugin_t *p = slots[s].current;
        for (size_t r = 0; p != NULL && r != p->routes.size; ++r) {
            route_t *route = p->routes.entries + r;
            if (!forum_route_match(route->segments, route->num_segments, segs, (size_t)nsegs, m->params, FORUM_MAX_PARAMS,
                                   &m->num_params))
                continue;
            if (!h2o_memis(method.base, method.len, route->method, strlen(route->method))) {
                other_method = 1;
                continue;
            }
            m->plugin = p;
            m->fn = route->fn;
            m->flags = route->flags;
            return 1;
        }
    }
    return other_method ? -1 : 0;
}

forum_frame_fn forum_plugins_frame(const char *type, size_t len, forum_plugin_t **plugin)
{
    for (size_t s = 0; s != num_slots; ++s) {
        forum_plugin_t *p = slots[s].current;
        for (size_t i = 0; p != NULL && i != p->frames.size; ++i) {
            if (h2o_memis(type, len, p->frames.entries[i].name, strlen(p->frames.entries[i].name))) {
                *plugin = p;
                return (forum_frame_fn)p->frames.entries[i].fn;
            }
        }
    }
    return NULL;
}

void forum_plugins_emit(const forum_event_t *ev)
{
    if (strcmp(ev->name, "ws.close") == 0) {
        /* a retired generation may still hold the connection (a paced replay): it hears of the close too */
        for (h2o_linklist_t *n = live_gens.next, *next; n != &live_gens; n = next) {
            forum_plugin_t *p = H2O_STRUCT_FROM_MEMBER(forum_plugin_t, live, n);
            forum_plugin_pin(p);
            for (size_t i = 0; i != p->events.size; ++i)
                if (strcmp(p->events.entries[i].name, ev->name) == 0)
                    ((forum_event_fn)p->events.entries[i].fn)(ev);
            next = n->next;
            forum_plugin_unpin(p);
        }
        return;
    }
    for (size_t s = 0; s != num_slots; ++s) {
        forum_plugin_t *p = slots[s].current;
        if (p == NULL)
            continue;
        forum_plugin_pin(p); /* a handler may trigger a swap of its own plugin */
        for (size_t i = 0; i != p->events.size; ++i)
            if (strcmp(p->events.entries[i].name, ev->name) == 0)
                ((forum_event_fn)p->events.entries[i].fn)(ev);
        forum_plugin_unpin(p);
    }
}

void forum_plugins_status(yajl_gen g)
{
    char when[32];
    yajl_gen_array_open(g);
    for (size_t s = 0; s != num_slots; ++s) {
        forum_plugin_t *p = slots[s].current;
        if (p == NULL)
            continue;
        forum_format_time(p->loaded_ms, when);
        yajl_gen_map_open(g);
        forum_json_str(g, "name");
        forum_json_str(g, slots[s].name);
        forum_json_str(g, "version");
        forum_json_str(g, p->desc->version);
        forum_json_str(g, "generation");
        yajl_gen_integer(g, p->generation);
        forum_json_str(g, "loaded_at");
        forum_json_str(g, when);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
}
