/* The single-page client from public-dir: ETag, 304, Range, and precompressed .gz/.br siblings when present. */
#include "../core/forum.h"

void forum_files_register(h2o_pathconf_t *pathconf, const char *dir)
{
    static const char *index_files[] = {"index.html", NULL};
    h2o_file_register(pathconf, dir, index_files, NULL, H2O_FILE_FLAG_SEND_COMPRESSED);
}
