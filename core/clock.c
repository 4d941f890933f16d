/* Wall-clock time as the API shows it. */
#include <stdio.h>
#include <time.h>
#include "forum.h"

int64_t forum_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t forum_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void forum_format_time(int64_t ms, char *buf)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(buf, 25, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, 25 - n, ".%03uZ", (unsigned)(ms % 1000));
}
