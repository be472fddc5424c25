/* review: sendmsg on a UDP socket whose iovec lengths sum past i64 (debug:
 * "attempt to add with overflow" in total_iov_len) or wrap to a small total
 * (release: iov_data allocates 2^63 bytes, "capacity overflow"). Linux: EINVAL. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
static void try(int u, struct msghdr *m, unsigned long a, unsigned long b, const char *what) {
  m->msg_iov[0].iov_len = a; m->msg_iov[1].iov_len = b;
  int r = sendmsg(u, m, 0);
  printf("%s: %d %s\n", what, r, r < 0 ? strerrorname_np(errno) : "");
  fflush(stdout);
}
int main(void) {
  int u = socket(AF_INET, SOCK_DGRAM, 0);
  char buf[16] = "hi";
  /* the host's own address, a port nobody bound */
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9), .sin_addr.s_addr = inet_addr("10.0.0.2")};
  struct iovec iov[2] = {{buf, 0}, {buf, 0}};
  struct msghdr m = {.msg_name = &to, .msg_namelen = sizeof to, .msg_iov = iov, .msg_iovlen = 2};
  try(u, &m, 1UL << 63, (1UL << 63) + 10, "wrapping to 10");
  try(u, &m, 1UL << 62, 1UL << 62, "2^62 twice");
  printf("still alive\n");
  return 0;
}
