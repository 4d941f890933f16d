/*
 * The replay main of the fuzz harnesses for builds without libFuzzer (the normal and the sanitizer
 * builds): runs LLVMFuzzerTestOneInput once on each file named, and on each file of each folder named,
 * so that `make test` replays the saved corpus and the crashers with the ordinary compiler. Prints the
 * number of inputs it ran, which the test compares with the number of files it expects.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Runs one file; returns 0, or -1 when it cannot be read. */
static int replay_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    uint8_t *data = NULL;
    size_t size = 0, cap = 0, n;
    int ret = -1;

    if (fp == NULL) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    do {
        if (size == cap) {
            cap = cap != 0 ? cap * 2 : 4096;
            data = realloc(data, cap);
        }
        n = fread(data + size, 1, cap - size, fp);
        size += n;
    } while (n != 0);
    if (ferror(fp)) {
        fprintf(stderr, "%s: read error\n", path);
        goto Exit;
    }
    /* an input of exactly `size` bytes, as libFuzzer passes it: ASan sees any read past the end */
    uint8_t *exact = malloc(size != 0 ? size : 1);
    memcpy(exact, data, size);
    fprintf(stderr, "replaying %s (%zu bytes)\n", path, size);
    LLVMFuzzerTestOneInput(exact, size);
    free(exact);
    ret = 0;
Exit:
    free(data);
    fclose(fp);
    return ret;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every regular file of folder `dir` in name order; adds the count to `*count`. */
static int replay_dir(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0;
    int ret = 0;

    if (d == NULL) {
        fprintf(stderr, "%s: %s\n", dir, strerror(errno));
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue; /* README-like dotfiles and . and .. are not inputs */
        names = realloc(names, (n + 1) * sizeof(*names));
        names[n] = malloc(strlen(dir) + strlen(e->d_name) + 2);
        sprintf(names[n], "%s/%s", dir, e->d_name);
        ++n;
    }
    closedir(d);
    if (n != 0) /* qsort may not be given NULL */
        qsort(names, n, sizeof(*names), by_name);
    for (size_t i = 0; i != n; ++i) {
        struct stat st;
        if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
            if (replay_file(names[i]) != 0)
                ret = -1;
            else
                ++*count;
        }
        free(names[i]);
    }
    free(names);
    return ret;
}

int main(int argc, char **argv)
{
    size_t count = 0;
    int ret = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE-OR-FOLDER...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i != argc; ++i) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
            ret = 1;
        } else if (S_ISDIR(st.st_mode)) {
            if (replay_dir(argv[i], &count) != 0)
                ret = 1;
        } else if (replay_file(argv[i]) != 0) {
            ret = 1;
        } else {
            ++count;
        }
    }
    printf("replayed %zu inputs\n", count);
    return ret;
}
