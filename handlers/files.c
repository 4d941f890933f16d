/* The single-page client from public-dir: ETag, 304, Range, and precompressed .gz/.br siblings when present. */
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

void forum_files_register(h2o_pathconf_t *pathconf, const char *dir)
{
    static const char *index_files[] = {"index.html", NULL};
    h2o_create_handler(pathconf, sizeof(h2o_handler_t))->on_req = refuse_nul;
    h2o_file_register(pathconf, dir, index_files, NULL, H2O_FILE_FLAG_SEND_COMPRESSED);
}
