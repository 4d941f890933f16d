/*
 * The single-page client from public-dir: ETag, 304, Range, and precompressed .gz/.br siblings when present.
 * What lies under /assets/ is named by the hash of its content (tools/build-public) and never changes under
 * its name, so a browser keeps it a year without asking; everything else (index.html, and the plain sources
 * when public-dir is the source folder) is revalidated on every use.
 */
#include <string.h>
#include "../core/forum.h"

/* A %00 names no file, but h2o's file handler opens the name up to the NUL (a directory) and redirects to it with
 * a slash added, forever: such a path is refused before the file handler sees it. */
static int refuse_nul(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    if (memchr(req->path_normalized.base, '\0', req->path_normalized.len) == NULL)
        return -1;
    forum_send_error(req, 400, "bad_request", "the path contains a NUL", NULL);
    return 0;
}

#define ASSETS_PREFIX "/assets/"

static void add_cache_control(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    (void)self;
    int hashed = req->path_normalized.len > sizeof(ASSETS_PREFIX) - 1 &&
                 memcmp(req->path_normalized.base, H2O_STRLIT(ASSETS_PREFIX)) == 0;
    int found = req->res.status == 200 || req->res.status == 206 || req->res.status == 304;
    if (hashed && found)
        h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, H2O_STRLIT("public, max-age=31536000, immutable"), 0);
    else
        h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, H2O_STRLIT("no-cache"), 0);
    h2o_setup_next_ostream(req, slot);
}

void forum_files_register(h2o_pathconf_t *pathconf, const char *dir)
{
    static const char *index_files[] = {"index.html", NULL};
    h2o_create_handler(pathconf, sizeof(h2o_handler_t))->on_req = refuse_nul;
    h2o_create_filter(pathconf, sizeof(h2o_filter_t))->on_setup_ostream = add_cache_control;
    h2o_file_register(pathconf, dir, index_files, NULL, H2O_FILE_FLAG_SEND_COMPRESSED);
}
