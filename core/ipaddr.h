/* IP addresses and CIDR blocks (core/ipaddr.c): what trusted-proxies lists and X-Forwarded-For names. */
#ifndef FORUM_IPADDR_H
#define FORUM_IPADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Every address is kept as 16 bytes, an IPv4 one as ::ffff:a.b.c.d, so that one comparison serves both families. */
typedef struct forum_cidr {
    uint8_t addr[16]; /* host bits cleared */
    unsigned bits;    /* prefix length out of 128 */
} forum_cidr_t;

/** Parses `len` bytes of a numeric IPv4 or IPv6 address (no port, no brackets) into `out`; 0 on success. */
int forum_ip_parse(const char *s, size_t len, uint8_t out[16]);
/** The address of an AF_INET or AF_INET6 socket address; 0 on success, -1 for another family. */
int forum_ip_of_sockaddr(const struct sockaddr *sa, uint8_t out[16]);
/** Parses "ADDRESS" or "ADDRESS/BITS" (BITS within the family's width); host bits are cleared. 0 on success. */
int forum_cidr_parse(const char *s, forum_cidr_t *out);
/** True when `addr` is inside the block. */
int forum_cidr_contains(const forum_cidr_t *c, const uint8_t addr[16]);
/** True for 127.0.0.0/8 and ::1. */
int forum_ip_is_loopback(const uint8_t addr[16]);
/** Writes the address as text (dotted for IPv4) into buf, which holds at least 46 bytes. */
void forum_ip_format(const uint8_t addr[16], char *buf, size_t len);

#endif
