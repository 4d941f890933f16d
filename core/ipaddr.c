/* IP addresses and CIDR blocks as 16 bytes: parsing, matching, formatting. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ipaddr.h"

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static int is_v4(const uint8_t addr[16])
{
    return memcmp(addr, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0;
}

int forum_ip_parse(const char *s, size_t len, uint8_t out[16])
{
    char buf[64];
    struct in_addr a4;
    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET, buf, &a4) == 1) {
        memcpy(out, v4_mapped_prefix, sizeof(v4_mapped_prefix));
        memcpy(out + 12, &a4, 4);
        return 0;
    }
    return inet_pton(AF_INET6, buf, out) == 1 ? 0 : -1;
}

int forum_ip_of_sockaddr(const struct sockaddr *sa, uint8_t out[16])
{
    if (sa->sa_family == AF_INET) {
        memcpy(out, v4_mapped_prefix, sizeof(v4_mapped_prefix));
        memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return 0;
    }
    return -1;
}

int forum_cidr_parse(const char *s, forum_cidr_t *out)
{
    const char *slash = strchr(s, '/');
    size_t alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
    if (forum_ip_parse(s, alen, out->addr) != 0)
        return -1;
    /* an IPv4 block's width counts from the mapped prefix's end */
    unsigned base = is_v4(out->addr) && memchr(s, ':', alen) == NULL ? 96 : 0, max = 128 - base, bits = max;
    if (slash != NULL) {
        const char *d = slash + 1;
        if (*d < '0' || *d > '9' || strlen(d) > 3)
            return -1;
        char *end;
        unsigned long v = strtoul(d, &end, 10);
        if (*end != '\0' || v > max)
            return -1;
        bits = (unsigned)v;
    }
    out->bits = base + bits;
    for (unsigned i = out->bits; i != 128; ++i)
        out->addr[i / 8] &= (uint8_t)~(0x80u >> (i % 8));
    return 0;
}

int forum_cidr_contains(const forum_cidr_t *c, const uint8_t addr[16])
{
    unsigned full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->addr, addr, full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff00u >> rest);
    return (addr[full] & mask) == c->addr[full];
}

int forum_ip_is_loopback(const uint8_t addr[16])
{
    static const uint8_t v6_loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return (is_v4(addr) && addr[12] == 127) || memcmp(addr, v6_loopback, 16) == 0;
}

void forum_ip_format(const uint8_t addr[16], char *buf, size_t len)
{
    if (is_v4(addr) ? inet_ntop(AF_INET, addr + 12, buf, (socklen_t)len) == NULL
                    : inet_ntop(AF_INET6, addr, buf, (socklen_t)len) == NULL)
        snprintf(buf, len, "unknown");
}
