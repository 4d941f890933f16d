/*
 * The private copy of a plugin file that dlopen loads: an anonymous memory file (memfd), sealed once
 * written, checked as ELF (core/elf_check.c), and opened through /proc/self/fd/N.
 *
 * Why a copy: a deploy may rewrite or truncate the file in plugins.dir while a generation runs from
 * it, and glibc's dlopen returns the handle it already has for a path or inode it has loaded. Why a
 * memfd: nothing lands in the file system, so a killed forumd leaves nothing behind. The descriptor
 * stays open for the generation's life, so no two live generations share a /proc/self/fd path (glibc
 * matches loaded objects by name first) and every copy is a new inode.
 */
#define _GNU_SOURCE /* memfd_create, F_ADD_SEALS */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "forum.h"

static int fail(char *msg, size_t msglen, const char *what, int err)
{
    snprintf(msg, msglen, "%s: %s", what, strerror(err));
    return -1;
}

/* Copies what `in` holds into `out`; the number of bytes in `*size`. */
static int copy_bytes(int in, int out, size_t *size)
{
    char buf[65536];
    ssize_t n;
    *size = 0;
    while ((n = read(in, buf, sizeof(buf))) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        for (ssize_t done = 0, w; done < n; done += w) {
            if ((w = write(out, buf + done, (size_t)(n - done))) < 0) {
                if (errno == EINTR) {
                    w = 0;
                    continue;
                }
                return -1;
            }
        }
        *size += (size_t)n;
    }
    return 0;
}

static int check_elf(int fd, size_t size, char *msg, size_t msglen)
{
    char why[400];
    void *map = NULL;
    int ret;
    if (size != 0 && (map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0)) == MAP_FAILED)
        return fail(msg, msglen, "cannot map the copy", errno);
    /* the copy is sealed against shrinking: reading the mapping cannot fault */
    ret = forum_elf_check(map, size, why, sizeof(why));
    if (map != NULL)
        munmap(map, size);
    if (ret != 0)
        snprintf(msg, msglen, "not a loadable ELF file: %s", why);
    return ret;
}

int forum_plugin_copy_open(const char *src, forum_plugin_copy_t *copy, struct stat *st, char *msg, size_t msglen)
{
    size_t size;
    int in;

    copy->fd = -1;
    copy->path[0] = '\0';
    if ((in = open(src, O_RDONLY | O_CLOEXEC)) == -1)
        return fail(msg, msglen, "cannot open it", errno);
    if (fstat(in, st) != 0) {
        fail(msg, msglen, "cannot stat it", errno);
        goto Error;
    }
    if ((copy->fd = memfd_create("forumd-plugin", MFD_CLOEXEC | MFD_ALLOW_SEALING)) == -1) {
        fail(msg, msglen, "cannot create a memory file for its copy (memfd_create)", errno);
        goto Error;
    }
    if (copy_bytes(in, copy->fd, &size) != 0) {
        fail(msg, msglen, "cannot copy it", errno);
        goto Error;
    }
    /* what is checked below is what dlopen maps: nothing can change it any more */
    if (fcntl(copy->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
        fail(msg, msglen, "cannot seal its copy", errno);
        goto Error;
    }
    if (check_elf(copy->fd, size, msg, msglen) != 0)
        goto Error;
    snprintf(copy->path, sizeof(copy->path), "/proc/self/fd/%d", copy->fd);
    if (access(copy->path, R_OK) != 0) {
        snprintf(msg, msglen, "cannot reach its copy as %s (%s): forumd loads plugins through /proc, which must be mounted",
                 copy->path, strerror(errno));
        goto Error;
    }
    close(in);
    return 0;

Error:
    close(in);
    forum_plugin_copy_close(copy);
    return -1;
}

void forum_plugin_copy_close(forum_plugin_copy_t *copy)
{
    if (copy->fd != -1)
        close(copy->fd);
    copy->fd = -1;
    copy->path[0] = '\0';
}
