/* Uses host sockets the program inherited from whoever launched netvm.
 *
 *   escape_inherited TCP_FD UDP_FD TCP_PORT UDP_PORT
 *
 * TCP_FD and UDP_FD are unconnected AF_INET sockets of the host's network; the
 * ports are a TCP and a UDP socket of the test on 127.0.0.1. Prints "fdN: open" or
 * "fdN: EBADF" for fds 0, 1, 2, TCP_FD and UDP_FD, then, for each of the two that
 * is open, one line per call on it ("NAME: ok" or "NAME: ERRNO_NAME"):
 * tcp_bind, tcp_connect (to TCP_PORT), udp_bind, udp_sendto, udp_sendmsg and
 * udp_sendmmsg (each with UDP_PORT as the address). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "escape.h"

static int is_open(int fd)
{
    int open = fcntl(fd, F_GETFD) >= 0;
    printf("fd%d: %s\n", fd, open ? "open" : ename(errno));
    return open;
}

static struct sockaddr_in loopback(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: escape_inherited TCP_FD UDP_FD TCP_PORT UDP_PORT\n");
        return 2;
    }
    int tcp = atoi(argv[1]), udp = atoi(argv[2]);
    struct sockaddr_in any = loopback(0), tcp_to = loopback(atoi(argv[3]));
    struct sockaddr_in udp_to = loopback(atoi(argv[4]));
    for (int fd = 0; fd < 3; fd++)
        is_open(fd);
    int tcp_open = is_open(tcp), udp_open = is_open(udp);
    fflush(stdout);
    if (tcp_open) {
        report("tcp_bind", bind(tcp, (struct sockaddr *)&any, sizeof any));
        report("tcp_connect", connect(tcp, (struct sockaddr *)&tcp_to, sizeof tcp_to));
    }
    if (udp_open) {
        char byte = 'x';
        struct iovec iov = {&byte, 1};
        struct msghdr msg = {.msg_name = &udp_to, .msg_namelen = sizeof udp_to, .msg_iov = &iov,
                             .msg_iovlen = 1};
        struct mmsghdr mmsg = {.msg_hdr = msg};
        report("udp_bind", bind(udp, (struct sockaddr *)&any, sizeof any));
        report("udp_sendto",
               sendto(udp, &byte, 1, 0, (struct sockaddr *)&udp_to, sizeof udp_to));
        report("udp_sendmsg", sendmsg(udp, &msg, 0));
        report("udp_sendmmsg", sendmmsg(udp, &mmsg, 1, 0));
    }
    return 0;
}
