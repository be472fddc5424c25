/*
 * call_surface: random socket calls with a fixed seed, one line per call with
 * what it returned, for tests/call_surface.rs to compare natively and under
 * netvm.
 *
 *   call_surface SEED CALLS
 *
 * The calls (socket, socketpair, bind, connect, listen, accept4, getsockname,
 * getpeername, getsockopt, setsockopt, shutdown, sendto, recvfrom, sendmsg,
 * recvmsg, ioctl, close) take their arguments from small sets of good and bad
 * values: the program's own sockets and fds that are not open, addresses on
 * loopback and on 10.0.0.2 with a few fixed ports, wrong families and
 * lengths, NULL and unmapped pointers, unknown flags, levels and options.
 * Every socket is non-blocking and every receive is MSG_DONTWAIT, so no call
 * waits. A line says only what both runs can agree on: the call, its
 * arguments' choices, and "ok" or the errno name (returned fds and lengths are
 * the same in both runs when the calls agree; ports and addresses are not
 * printed).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static uint64_t state;

/* xorshift64*: the same sequence on every machine for a seed. */
static uint32_t next(void)
{
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return (uint32_t)((state * 2685821657736338717ULL) >> 32);
}

static int pick(int n) { return (int)(next() % (uint32_t)n); }

#define POOL 12
static int pool[POOL];

static void *const BAD = (void *)8;

/* An fd: one of the program's sockets, or one that is not open. */
static int any_fd(void)
{
    int roll = pick(10);
    if (roll == 0)
        return -1;
    if (roll == 1)
        return 900;
    return pool[pick(POOL)];
}

static const int ports[] = {7001, 7002, 7003, 0};

/* A socket address (in `room`), and its length. */
static socklen_t any_address(struct sockaddr_storage *room, int *choice)
{
    memset(room, 0, sizeof *room);
    struct sockaddr_in *in = (struct sockaddr_in *)room;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)room;
    int port = htons(ports[pick(4)]);
    *choice = pick(9);
    switch (*choice) {
    case 0: in->sin_family = AF_INET; in->sin_port = port;
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK); return sizeof *in;
    case 1: in->sin_family = AF_INET; in->sin_port = port;
        inet_pton(AF_INET, "10.0.0.2", &in->sin_addr); return sizeof *in;
    case 2: in->sin_family = AF_INET; in->sin_port = port; return sizeof *in;
    case 3: in6->sin6_family = AF_INET6; in6->sin6_port = port;
        in6->sin6_addr = in6addr_loopback; return sizeof *in6;
    case 4: in6->sin6_family = AF_INET6; in6->sin6_port = port; return sizeof *in6;
    case 5: in->sin_family = AF_INET; in->sin_port = port;
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK); return 8; /* too short */
    case 6: in->sin_family = AF_UNSPEC; return sizeof *in;
    case 7: in->sin_family = 77; return sizeof *in;
    default: in->sin_family = AF_INET; in->sin_port = port;
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK); return 129;
    }
}

static const int flag_set[] = {0, MSG_DONTWAIT, MSG_OOB | MSG_DONTWAIT, MSG_PEEK | MSG_DONTWAIT,
                               MSG_TRUNC | MSG_DONTWAIT, 0x40000000 | MSG_DONTWAIT};
static const int levels[] = {SOL_SOCKET, IPPROTO_IP, IPPROTO_IPV6, IPPROTO_TCP, IPPROTO_UDP, 999};
static const int names[] = {SO_REUSEADDR, SO_ERROR, SO_TYPE, SO_RCVBUF, SO_KEEPALIVE, IP_TTL,
                            IP_TOS, IPV6_V6ONLY, TCP_NODELAY, TCP_MAXSEG, 0, 12345};
static const int lengths[] = {0, 1, 4, 8, 16, -1};

static void report(int i, const char *what, long rc)
{
    printf("%d %s %s\n", i, what, rc >= 0 ? "ok" : strerrorname_np(errno) ?: "E?");
}

static void one(int i)
{
    char what[96];
    struct sockaddr_storage address;
    int choice;
    socklen_t len;
    char buffer[256] = {0};
    int fd = any_fd();
    long rc;
    errno = 0;
    switch (pick(17)) {
    case 0: {
        int domains[] = {AF_INET, AF_INET6, AF_UNIX, -1, 99};
        int types[] = {SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, 77, SOCK_STREAM | 0x40000000};
        int protos[] = {0, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, -1};
        int d = pick(5), t = pick(5), p = pick(5);
        rc = socket(domains[d], types[t] | SOCK_NONBLOCK, protos[p]);
        snprintf(what, sizeof what, "socket d%d t%d p%d", d, t, p);
        /* The slot is picked whatever the answer, so that one different
         * answer does not change every call after it. */
        int slot = pick(POOL);
        if (rc >= 0) {
            if (pool[slot] >= 0)
                close(pool[slot]);
            pool[slot] = (int)rc;
        }
        break;
    }
    case 1: {
        int d = pick(3), t = pick(2);
        int pair[2];
        int domains[] = {AF_INET, AF_INET6, AF_UNIX};
        int bad = pick(2);
        rc = socketpair(domains[d], (t ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK, 0,
                        bad ? BAD : pair);
        snprintf(what, sizeof what, "socketpair d%d t%d bad%d", d, t, bad);
        if (rc == 0) {
            close(pair[0]);
            close(pair[1]);
        }
        break;
    }
    case 2:
        len = any_address(&address, &choice);
        rc = bind(fd, (struct sockaddr *)&address, len);
        snprintf(what, sizeof what, "bind a%d", choice);
        break;
    case 3:
        len = any_address(&address, &choice);
        rc = connect(fd, (struct sockaddr *)&address, len);
        snprintf(what, sizeof what, "connect a%d", choice);
        break;
    case 4: {
        int backlog = pick(3) - 1;
        rc = listen(fd, backlog);
        snprintf(what, sizeof what, "listen %d", backlog);
        break;
    }
    case 5: {
        int k = pick(4);
        socklen_t room = sizeof address;
        void *addr = k == 0 ? NULL : (void *)&address;
        socklen_t *roomp = k == 1 ? BAD : &room;
        int flags = k == 3 ? 0x1234 : SOCK_NONBLOCK;
        rc = accept4(fd, addr, roomp, flags);
        snprintf(what, sizeof what, "accept4 k%d", k);
        if (rc >= 0)
            close((int)rc);
        break;
    }
    case 6:
    case 7: {
        int k = pick(3);
        socklen_t room = k == 2 ? 4 : sizeof address;
        int peer = pick(2);
        rc = peer ? getpeername(fd, k == 1 ? BAD : (struct sockaddr *)&address, &room)
                  : getsockname(fd, k == 1 ? BAD : (struct sockaddr *)&address, &room);
        snprintf(what, sizeof what, "%s k%d", peer ? "getpeername" : "getsockname", k);
        break;
    }
    case 8: {
        int l = pick(6), n = pick(12), k = pick(3);
        int value = 0;
        socklen_t room = k == 2 ? 1 : sizeof value;
        rc = getsockopt(fd, levels[l], names[n], k == 1 ? BAD : (void *)&value, &room);
        snprintf(what, sizeof what, "getsockopt l%d n%d k%d", l, n, k);
        break;
    }
    case 9: {
        int l = pick(6), n = pick(12), k = pick(6);
        int value = pick(3);
        rc = setsockopt(fd, levels[l], names[n], k == 5 ? BAD : (void *)&value,
                        (socklen_t)lengths[k]);
        snprintf(what, sizeof what, "setsockopt l%d n%d k%d", l, n, k);
        break;
    }
    case 10: {
        int how = pick(5) - 1;
        rc = shutdown(fd, how);
        snprintf(what, sizeof what, "shutdown %d", how);
        break;
    }
    case 11: {
        int f = pick(6), k = pick(3);
        len = any_address(&address, &choice);
        int named = pick(4);
        rc = sendto(fd, k == 1 ? BAD : buffer, k == 2 ? 0 : 8, flag_set[f] | MSG_NOSIGNAL,
                    named ? (struct sockaddr *)&address : NULL, len);
        /* "a-": no address, a plain send. */
        if (named)
            snprintf(what, sizeof what, "sendto f%d k%d a%d", f, k, choice);
        else
            snprintf(what, sizeof what, "sendto f%d k%d a-", f, k);
        break;
    }
    case 12: {
        int f = pick(6), k = pick(3);
        socklen_t room = sizeof address;
        rc = recvfrom(fd, k == 1 ? BAD : buffer, sizeof buffer, flag_set[f] | MSG_DONTWAIT,
                      k == 2 ? NULL : (struct sockaddr *)&address, k == 2 ? NULL : &room);
        snprintf(what, sizeof what, "recvfrom f%d k%d", f, k);
        break;
    }
    case 13: {
        int f = pick(6), k = pick(3);
        struct iovec iov = {k == 1 ? BAD : buffer, 8};
        len = any_address(&address, &choice);
        struct msghdr msg = {.msg_name = pick(2) ? &address : NULL, .msg_namelen = len,
                             .msg_iov = &iov, .msg_iovlen = k == 2 ? 0 : 1};
        rc = sendmsg(fd, &msg, flag_set[f] | MSG_NOSIGNAL);
        snprintf(what, sizeof what, "sendmsg f%d k%d a%d", f, k, choice);
        break;
    }
    case 14: {
        int f = pick(6), k = pick(3);
        struct iovec iov = {buffer, sizeof buffer};
        struct msghdr msg = {.msg_name = &address, .msg_namelen = sizeof address,
                             .msg_iov = &iov, .msg_iovlen = 1};
        rc = recvmsg(fd, k == 1 ? BAD : &msg, flag_set[f] | MSG_DONTWAIT);
        snprintf(what, sizeof what, "recvmsg f%d k%d", f, k);
        break;
    }
    case 15: {
        unsigned long requests[] = {FIONREAD, TIOCOUTQ, FIONBIO, 0x8906, 0x8915, 0x1234};
        int r = pick(6), k = pick(2);
        int value = 1;
        rc = ioctl(fd, requests[r], k ? BAD : (void *)&value);
        snprintf(what, sizeof what, "ioctl r%d k%d", r, k);
        break;
    }
    default: {
        int slot = pick(POOL);
        if (pick(3)) {
            /* Mostly make a fresh socket in its place, so that the pool stays full. */
            close(pool[slot]);
            pool[slot] = socket(pick(2) ? AF_INET6 : AF_INET,
                                (pick(2) ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK, 0);
            rc = pool[slot];
            snprintf(what, sizeof what, "replace");
            break;
        }
        rc = close(pool[slot]);
        pool[slot] = -1;
        snprintf(what, sizeof what, "close");
        break;
    }
    }
    report(i, what, rc);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: call_surface SEED CALLS\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    state = strtoull(argv[1], NULL, 10) * 0x9E3779B97F4A7C15ULL + 1;
    int calls = atoi(argv[2]);
    /* Sockets of each family and type to start with; the last four listen or
     * are bound on loopback. */
    for (int i = 0; i < POOL; i++) {
        pool[i] = socket(i % 2 ? AF_INET6 : AF_INET, ((i / 2) % 2 ? SOCK_DGRAM : SOCK_STREAM)
                         | SOCK_NONBLOCK, 0);
        if (i >= POOL - 4) {
            struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(7001 + i % 3),
                                     .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
            struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(7001 + i % 3),
                                       .sin6_addr = in6addr_loopback};
            if (i % 2)
                bind(pool[i], (struct sockaddr *)&in6, sizeof in6);
            else
                bind(pool[i], (struct sockaddr *)&in, sizeof in);
            listen(pool[i], 8);
        }
    }
    for (int i = 0; i < calls; i++)
        one(i);
    return 0;
}
