/*
 * Sequences several plugins draw numbers from. Private messages (chat) and room messages (rooms) are
 * numbered from one sequence, "messages", so that one id orders them all and one resume point replays
 * them all. A number is drawn inside the caller's transaction: the row stays locked by it until it
 * commits, so numbers grow in commit order, and a rollback gives the number back.
 */
#include <string.h>
#include "db_private.h"

int64_t forum_db_next_ids(const char *name, int64_t count)
{
    forum_stmt_t *s = forum_db_stmt("INSERT INTO forum_sequences (name, value) VALUES (?, ?) "
                                    "ON CONFLICT (name) DO UPDATE SET value = forum_sequences.value + excluded.value RETURNING value");
    int64_t last;
    if (count < 1 || s == NULL || name == NULL || forum_db_bind_text(s, 1, name, strlen(name)) != 0 ||
        forum_db_bind_int(s, 2, count) != 0 || forum_db_step(s) != FORUM_DB_ROW)
        return 0;
    last = forum_db_col_int(s, 0);
    if (forum_db_step(s) != FORUM_DB_DONE)
        return 0;
    if (strcmp(name, "messages") == 0 && forum_bus_enabled())
        forum_order_drawn(last - count + 1, last); /* announced to every node once committed (core/bus_order.c) */
    return last - count + 1;
}

int64_t forum_db_next_id(const char *name)
{
    return forum_db_next_ids(name, 1);
}
