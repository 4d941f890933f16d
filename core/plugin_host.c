/*
 * The plugin host: loads each plugin generation from a private copy of its file (core/plugin_copy.c,
 * checked as ELF before dlopen), checks its ABI, runs its init (which registers routes, frame types,
 * events and migrations), makes it current, and unloads the previous generation once nothing pins
 * it any more.
 *
 * Pins are counted, never assigned: the current generation holds one, and every request, thread-pool
 * job and timer holds one, including those a plugin's init queues before the host has decided to keep
 * it. A generation that is refused after its init queued something stays loaded (its code may still
 * run: a timer's callback must be able to free what it was given) until the last of them is done.
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
    h2o_linklist_t live; /* every generation not yet unloaded: current, retired, or refused and waiting for its pins */
    const forum_plugin_desc_t *desc;
    void *dl;
    forum_plugin_copy_t copy; /* what `dl` was loaded from; closed after dlclose */
    unsigned generation;      /* 0 for a copy that was refused */
    int64_t loaded_ms;
    size_t pins; /* the current generation's hold, requests, jobs, timers (some may be taken during init) */
    int initializing;
    int owes_fini; /* its init succeeded: fini runs when it is unloaded */
    int refused;   /* it never served; it waits only for what its init queued */
    H2O_VECTOR(route_t) routes;
    H2O_VECTOR(named_fn_t) frames;
    H2O_VECTOR(named_fn_t) events;
    H2O_VECTOR(forum_migration_t) migrations;
    const forum_replay_source_t *replay; /* NULL when it stores no message a connection replays */
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
    config = conf;
    num_slots = 0; /* a host shut down (or never started) before: start from no slot */
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
    memset(&p->routes, 0, sizeof(p->routes));
    memset(&p->frames, 0, sizeof(p->frames));
    memset(&p->events, 0, sizeof(p->events));
    memset(&p->migrations, 0, sizeof(p->migrations));
    p->replay = NULL;
}

static void unload(forum_plugin_t *p)
{
    /* the descriptor, not the slot: slots are gone when the last pins of a shutdown drop */
    if (p->refused)
        forum_log(FORUM_LOG_INFO, "plugin %s %s: refused copy unloaded", p->desc->name, p->desc->version);
    else
        forum_log(FORUM_LOG_INFO, "plugin %s %s: generation %u unloaded", p->desc->name, p->desc->version, p->generation);
    h2o_linklist_unlink(&p->live);
    if (p->owes_fini && p->desc->fini != NULL)
        p->desc->fini(p);
    free_registrations(p);
    dlclose(p->dl);
    forum_plugin_copy_close(&p->copy);
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

int forum_plugin_may_queue(forum_plugin_t *p)
{
    return !p->refused;
}

const char *forum_plugin_name(forum_plugin_t *p)
{
    return p->desc->name;
}

const forum_plugin_desc_t *forum_plugin_desc(forum_plugin_t *p)
{
    return p->desc;
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

/* A plugin file opened but not yet initialized. */
typedef struct candidate {
    forum_plugin_copy_t copy;
    void *dl;
    const forum_plugin_desc_t *desc;
    struct stat st; /* the source file's; st_ino 0 when it could not be read */
} candidate_t;

static int loaded_already(void *dl)
{
    for (h2o_linklist_t *n = live_gens.next; n != &live_gens; n = n->next)
        if (H2O_STRUCT_FROM_MEMBER(forum_plugin_t, live, n)->dl == dl)
            return 1;
    return 0;
}

/*
 * Opens `file` as plugin `name` up to its descriptor's and its settings' checks (against `conf`), all before
 * init runs. 0; -1 with one line in `msg` about the file; -2 with FILE:LINE: message about the configuration.
 */
static int open_candidate(const forum_config_t *conf, const char *name, const char *file, candidate_t *c, char *msg, size_t msglen)
{
    int ret = -1;
    memset(c, 0, sizeof(*c));
    if (forum_plugin_copy_open(file, &c->copy, &c->st, msg, msglen) != 0)
        return -1;
    if ((c->dl = dlopen(c->copy.path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
        snprintf(msg, msglen, "%s", dlerror());
        goto Error;
    }
    if (loaded_already(c->dl)) {
        /* glibc matched a live generation by name or inode: its code, not this file's, would run */
        snprintf(msg, msglen, "the loader returned a live generation's code for %s", c->copy.path);
        goto Error;
    }
    if ((c->desc = dlsym(c->dl, "forum_plugin")) == NULL) {
        snprintf(msg, msglen, "it exports no forum_plugin descriptor");
        goto Error;
    }
    if (c->desc->abi != FORUM_PLUGIN_ABI) {
        /* an older plugin assumes its data calls return at once: on PostgreSQL they suspend, so it is rebuilt, never guessed at */
        snprintf(msg, msglen, "its plugin ABI is %u, this forumd speaks %u%s", c->desc->abi, FORUM_PLUGIN_ABI,
                 c->desc->abi < FORUM_PLUGIN_ABI ? " (rebuild it against this forumd's forum_plugin.h: since ABI 3 a data call may suspend the callback that makes it)" : "");
        goto Error;
    }
    if (c->desc->name == NULL || strcmp(c->desc->name, name) != 0 || c->desc->version == NULL || c->desc->init == NULL) {
        snprintf(msg, msglen, "its descriptor is incomplete or names another plugin (%s)",
                 c->desc->name != NULL ? c->desc->name : "no name");
        goto Error;
    }
    if ((ret = forum_plugin_settings_check(conf, name, c->desc->settings, msg, msglen)) != 0)
        goto Error;
    return 0;

Error:
    if (c->dl != NULL)
        dlclose(c->dl);
    c->dl = NULL;
    forum_plugin_copy_close(&c->copy);
    return ret;
}

int forum_plugins_check_config(const forum_config_t *conf, char *err, size_t errlen)
{
    char file[PATH_MAX], msg[1024];
    candidate_t c;
    for (size_t i = 0; i != conf->plugins.num_load; ++i) {
        const char *name = conf->plugins.load[i];
        snprintf(file, sizeof(file), "%s/%s.so", conf->plugins.dir, name);
        switch (open_candidate(conf, name, file, &c, msg, sizeof(msg))) {
        case 0:
            dlclose(c.dl);
            forum_plugin_copy_close(&c.copy);
            break;
        case -2:
            snprintf(err, errlen, "%s", msg);
            return -1;
        default:
            snprintf(err, errlen, "%s:%d: plugins.load: plugin %s would be refused: %s: %s", conf->path, conf->plugins.load_lines[i], name,
                     file, msg);
            return -1;
        }
    }
    return 0;
}

/* A generation refused after its init ran never served: its registrations go now, its code when nothing it queued is pending. */
static int drop_refused(forum_plugin_t *p)
{
    p->initializing = 0;
    p->refused = 1;
    free_registrations(p);
    if (p->pins == 0)
        unload(p);
    else
        forum_log(FORUM_LOG_INFO, "plugin %s %s: the refused copy stays loaded until the %zu timers and jobs its init queued have run",
                  p->desc->name, p->desc->version, p->pins);
    return -1;
}

/* A swap whose migration met another process's lock is tried again after this long. */
enum { MIGRATION_RETRY_MS = 1000 };

static void on_debounced(uv_timer_t *timer);

int forum_plugins_load(const char *name)
{
    slot_t *slot = find_slot(name);
    char file[PATH_MAX], msg[1024];
    forum_plugin_t *p, *old;
    candidate_t c;
    file_id_t id;

    if (slot == NULL)
        return refuse(name, "(none)", "not listed in plugins.load");
    snprintf(file, sizeof(file), "%s/%s.so", config->plugins.dir, name);
    if (open_candidate(config, name, file, &c, msg, sizeof(msg)) != 0) {
        if (c.st.st_ino != 0)
            file_id_of(&c.st, &slot->refused); /* not retried until it changes */
        return refuse(name, file, "%s", msg);
    }
    file_id_of(&c.st, &id);
    slot->refused = id; /* until it is accepted below */

    p = calloc(1, sizeof(*p));
    p->slot = slot;
    p->desc = c.desc;
    p->dl = c.dl;
    p->copy = c.copy;
    p->loaded_ms = forum_now_ms();
    h2o_linklist_insert(&live_gens, &p->live);
    p->initializing = 1;
    if (p->desc->init(p, &forum_api) != 0) {
        refuse(name, file, "its init failed");
        return drop_refused(p);
    }
    p->initializing = 0;
    p->owes_fini = 1;
    if (forum_db_migrate(name, p->migrations.entries, p->migrations.size) != 0) {
        if (forum_db_failure() == FORUM_DB_BUSY && slot->watching) {
            /* another process's lock passes: the same file is tried again, not refused until it changes */
            memset(&slot->refused, 0, sizeof(slot->refused));
            uv_timer_start(&slot->debounce, on_debounced, MIGRATION_RETRY_MS, 0);
            refuse(name, file, "its schema migration met a lock held by another process: trying again in %u ms", MIGRATION_RETRY_MS);
        } else {
            refuse(name, file, "its schema migration failed");
        }
        return drop_refused(p);
    }

    old = slot->current;
    p->generation = ++slot->generations;
    forum_plugin_pin(p); /* the current generation's hold, added to those its init took */
    slot->current = p;
    slot->loaded = id;
    memset(&slot->refused, 0, sizeof(slot->refused));
    forum_log(FORUM_LOG_INFO, "plugin %s %s: generation %u loaded (%zu routes, %zu frame types, %zu events)", name, p->desc->version,
              p->generation, p->routes.size, p->frames.size, p->events.size);
    if (old != NULL)
        forum_plugin_unpin(old);
    return 0;
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

static void check_on_fiber(void *arg)
{
    forum_plugins_check(((slot_t *)arg)->name);
}

static void check_all_on_fiber(void *arg)
{
    (void)arg;
    forum_plugins_check_all();
}

/* a new generation's migrations reach the database: on a fiber of their own (PostgreSQL) */
static void on_debounced(uv_timer_t *timer)
{
    forum_fiber_run(check_on_fiber, timer->data);
}

static void on_dir_event(uv_fs_event_t *handle, const char *filename, int events, int status)
{
    (void)handle;
    (void)events;
    if (status != 0 || filename == NULL) {
        forum_fiber_run(check_all_on_fiber, NULL);
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
    return forum_plugin_add_migration_for(p, 0, number, sql);
}

int forum_plugin_add_migration_for(forum_plugin_t *p, int backend, int number, const char *sql)
{
    if (!registering(p, "a migration") || sql == NULL ||
        (backend != 0 && backend != FORUM_DB_SQLITE && backend != FORUM_DB_POSTGRES))
        return -1;
    /* only the running backend's list is kept: forum_db_migrate checks that it runs 1, 2, 3, ... */
    if (backend != 0 && backend != forum_db_backend())
        return 0;
    forum_migration_t *m = PUSH(p->migrations);
    m->number = number;
    m->sql = strdup(sql);
    return 0;
}

int forum_plugin_add_replay_source(forum_plugin_t *p, const forum_replay_source_t *src)
{
    if (!registering(p, "a replay source") || src == NULL || src->list == NULL || src->send == NULL || src->last_id == NULL ||
        p->replay != NULL)
        return -1;
    p->replay = src;
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

size_t forum_plugins_replay_sources(const forum_replay_source_t **out, size_t max)
{
    size_t n = 0;
    for (size_t s = 0; s != num_slots && n != max; ++s)
        if (slots[s].current != NULL && slots[s].current->replay != NULL)
            out[n++] = slots[s].current->replay;
    return n;
}

void forum_plugins_emit(const forum_event_t *ev)
{
    if (strcmp(ev->name, "ws.close") == 0) {
        /* a retired generation may still hold the connection (sends waiting for their batch's timer): it hears
         * of the close too */
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
