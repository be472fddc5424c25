/* review: multicast membership goes to the shadow socket, which looks for the
 * interface in the supervisor's (empty) namespace: ENODEV for the stack's own
 * eth0 / 10.0.0.2, where a Linux host configured alike (eth0 10.0.0.2/24,
 * fd00::2/64, default via 10.0.0.1) says 0. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <net/if.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#define P(name, r) printf("%s %d %s\n", name, r, r < 0 ? strerrorname_np(errno) : "")
int main(void) {
  int u = socket(AF_INET, SOCK_DGRAM, 0), r;
  struct ip_mreqn m = {0};
  m.imr_multiaddr.s_addr = inet_addr("239.1.2.3");
  r = setsockopt(u, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m); P("IP_ADD_MEMBERSHIP any", r);
  m.imr_multiaddr.s_addr = inet_addr("239.1.2.4"); m.imr_address.s_addr = inet_addr("10.0.0.2");
  r = setsockopt(u, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m); P("IP_ADD_MEMBERSHIP 10.0.0.2", r);
  m.imr_multiaddr.s_addr = inet_addr("239.1.2.5"); m.imr_address.s_addr = 0; m.imr_ifindex = if_nametoindex("eth0");
  r = setsockopt(u, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m); P("IP_ADD_MEMBERSHIP eth0", r);
  int v6 = socket(AF_INET6, SOCK_DGRAM, 0);
  struct ipv6_mreq m6 = {0};
  inet_pton(AF_INET6, "ff02::fb", &m6.ipv6mr_multiaddr);
  m6.ipv6mr_interface = if_nametoindex("eth0");
  r = setsockopt(v6, IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, &m6, sizeof m6); P("IPV6_ADD_MEMBERSHIP eth0", r);
  return 0;
}
