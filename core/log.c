/* One line per event on stderr: "2026-11-29T13:45:00.123Z forumd[pid] LEVEL message". */
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>
#include "forum.h"

static int max_level = FORUM_LOG_INFO;

void forum_log_set_level(int level)
{
    max_level = level;
}

void forum_log(int level, const char *fmt, ...)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    char when[32], msg[2048];
    va_list ap;

    if (level > max_level)
        return;
    forum_format_time(forum_now_ms(), when);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* one fprintf per line so that lines from concurrent writers (test harnesses) do not interleave */
    fprintf(stderr, "%s forumd[%d] %s: %s\n", when, (int)getpid(), names[level < 0 ? 0 : level > 3 ? 3 : level], msg);
}
