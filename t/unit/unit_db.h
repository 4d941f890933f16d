/* A fresh database file per test, opened without an event loop: the fixture of the DAL's tests. */
#ifndef UNIT_DB_H
#define UNIT_DB_H

#include "unit.h"
#include "../../core/forum.h"

typedef struct fixture {
    char dir[PATH_MAX];
    char db[PATH_MAX];
} fixture_t;

static inline int unit_db_setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    char err[512] = "";
    unit_mkdtemp(f->dir, sizeof(f->dir));
    unit_path(f->db, sizeof(f->db), f->dir, "forum.db");
    if (forum_db_open(f->db, NULL, err, sizeof(err)) != 0)
        unit_fail("forum_db_open: %s", err);
    *state = f;
    return 0;
}

static inline int unit_db_teardown(void **state)
{
    fixture_t *f = *state;
    forum_db_close();
    unit_rmtree(f->dir);
    free(f);
    return 0;
}

#endif
