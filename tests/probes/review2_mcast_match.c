#define _GNU_SOURCE
/* IPv6 memberships as Linux matches them (ipv6_sock_mc_join/drop): index 0
 * in a join or drop matches a membership of the group on any link. Linux:
 * join lo 0, join again by index 0 EADDRINUSE, drop by index 0 0, drop lo
 * EADDRNOTAVAIL (it is gone). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static void say(const char *what, int r) {
    printf("%s: %d %s\n", what, r, r ? strerrorname_np(errno) : "");
}

int main(void) {
    int s = socket(AF_INET6, SOCK_DGRAM, 0);
    struct ipv6_mreq m;
    memset(&m, 0, sizeof m);
    inet_pton(AF_INET6, "ff02::1:3", &m.ipv6mr_multiaddr);
    m.ipv6mr_interface = 1;
    say("join lo", setsockopt(s, IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, &m, sizeof m));
    m.ipv6mr_interface = 0;
    say("join any", setsockopt(s, IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, &m, sizeof m));
    say("drop any", setsockopt(s, IPPROTO_IPV6, IPV6_DROP_MEMBERSHIP, &m, sizeof m));
    m.ipv6mr_interface = 1;
    say("drop lo", setsockopt(s, IPPROTO_IPV6, IPV6_DROP_MEMBERSHIP, &m, sizeof m));
    return 0;
}
