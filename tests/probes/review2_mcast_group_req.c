#define _GNU_SOURCE
/* Joins a group on the stack's eth0 (index 2) with the protocol-independent
 * API (RFC 3678: MCAST_JOIN_GROUP, IP_ADD_SOURCE_MEMBERSHIP) and, to compare,
 * with IP_ADD_MEMBERSHIP. Linux (eth0 at index 2, a default route): all 0. */
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
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ip_mreqn m;
    memset(&m, 0, sizeof m);
    inet_pton(AF_INET, "239.7.7.1", &m.imr_multiaddr);
    m.imr_ifindex = 2;
    say("IP_ADD_MEMBERSHIP", setsockopt(s, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m));
    struct group_req gr;
    memset(&gr, 0, sizeof gr);
    gr.gr_interface = 2;
    struct sockaddr_in *sin = (struct sockaddr_in *)&gr.gr_group;
    sin->sin_family = AF_INET;
    inet_pton(AF_INET, "239.7.7.2", &sin->sin_addr);
    say("MCAST_JOIN_GROUP", setsockopt(s, IPPROTO_IP, MCAST_JOIN_GROUP, &gr, sizeof gr));
    struct ip_mreq_source ms;
    memset(&ms, 0, sizeof ms);
    inet_pton(AF_INET, "239.7.7.3", &ms.imr_multiaddr);
    inet_pton(AF_INET, "10.0.0.3", &ms.imr_sourceaddr);
    say("IP_ADD_SOURCE_MEMBERSHIP",
        setsockopt(s, IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP, &ms, sizeof ms));
    return 0;
}
