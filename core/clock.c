/* Wall-clock time as the API shows it. */
#include <stdio.h>
#include <string.h>
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
    /* the date and time of day change once a second: keep them (per thread: plugins may call from work) */
    static __thread time_t last_secs = -1;
    static __thread char last[20];
    static __thread size_t last_len;
    time_t secs = (time_t)(ms / 1000);
    unsigned milli = (unsigned)(ms % 1000);

    if (secs != last_secs) {
        struct tm tm;
        gmtime_r(&secs, &tm);
        last_len = strftime(last, sizeof(last), "%Y-%m-%dT%H:%M:%S", &tm);
        last_secs = secs;
    }
    memcpy(buf, last, last_len);
    buf[last_len] = '.';
    buf[last_len + 1] = (char)('0' + milli / 100);
    buf[last_len + 2] = (char)('0' + milli / 10 % 10);
    buf[last_len + 3] = (char)('0' + milli % 10);
    buf[last_len + 4] = 'Z';
    buf[last_len + 5] = '\0';
}
