/*
 * What the C unit tests share: cmocka, a scratch folder per test, small files written into it, and
 * the build folder the running test binary belongs to (BUILD/t/unit/test_NAME).
 * Every helper fails the current test through cmocka rather than returning an error.
 */
#ifndef UNIT_H
#define UNIT_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

/** Prints a TAP comment line ("# ...") on stdout, where cmocka's TAP output goes. */
static inline void unit_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void unit_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("# ", stdout);
    vprintf(fmt, ap);
    fputs("\n", stdout);
    fflush(stdout);
    va_end(ap);
}

/** Fails the current test with a message (cmocka's own fail_msg writes to stderr, outside the TAP stream). */
#define unit_fail(...)                                                                                                             \
    do {                                                                                                                           \
        unit_note(__VA_ARGS__);                                                                                                    \
        fail();                                                                                                                    \
    } while (0)

/** Creates a new empty folder under $TMPDIR (or /tmp) and writes its path into `dir`. */
static inline void unit_mkdtemp(char *dir, size_t len)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, len, "%s/forumd-unit-XXXXXX", tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        unit_fail("mkdtemp %s: %s", dir, strerror(errno));
}

/** Writes "dir/name" into `out`. */
static inline const char *unit_path(char *out, size_t len, const char *dir, const char *name)
{
    if ((size_t)snprintf(out, len, "%s/%s", dir, name) >= len)
        unit_fail("path too long: %s/%s", dir, name);
    return out;
}

/** Creates (or replaces) the file `path` holding `text`. */
static inline void unit_write(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    if (fp == NULL)
        unit_fail("cannot create %s: %s", path, strerror(errno));
    size_t len = strlen(text);
    if (fwrite(text, 1, len, fp) != len || fclose(fp) != 0)
        unit_fail("cannot write %s", path);
}

/** Reads the whole file `path` into a NUL-terminated malloc'ed buffer (NULL when it does not exist); `*len` gets its size. */
static inline char *unit_slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0, got;
    if (fp == NULL)
        return NULL;
    do {
        if (n + 4096 + 1 > cap) {
            cap = (cap + 4096) * 2;
            buf = realloc(buf, cap);
        }
        got = fread(buf + n, 1, cap - n - 1, fp);
        n += got;
    } while (got != 0);
    fclose(fp);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/** Copies the file `src` to `dst` (replacing it). */
static inline void unit_copy(const char *src, const char *dst)
{
    size_t len = 0;
    char *data = unit_slurp(src, &len);
    if (data == NULL)
        unit_fail("cannot read %s: %s", src, strerror(errno));
    FILE *fp = fopen(dst, "wb");
    if (fp == NULL) {
        free(data);
        unit_fail("cannot create %s: %s", dst, strerror(errno));
    }
    int ok = fwrite(data, 1, len, fp) == len;
    ok = fclose(fp) == 0 && ok;
    free(data);
    if (!ok)
        unit_fail("cannot write %s", dst);
}

/** Removes `path` and everything under it; a path that does not exist is fine. */
static inline void unit_rmtree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        char sub[PATH_MAX];
        while (d != NULL && (e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) < sizeof(sub))
                unit_rmtree(sub);
        }
        if (d != NULL)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/** The build folder of the running binary: the binary is BUILD/t/unit/NAME, so three levels up. */
static inline void unit_build_dir(char *out, size_t len)
{
    ssize_t n = readlink("/proc/self/exe", out, len - 1);
    if (n <= 0)
        unit_fail("readlink /proc/self/exe: %s", strerror(errno));
    out[n] = '\0';
    for (int up = 0; up != 3; ++up) {
        char *slash = strrchr(out, '/');
        if (slash == NULL || slash == out)
            unit_fail("the test binary %s is not under BUILD/t/unit", out);
        *slash = '\0';
    }
}

#endif
