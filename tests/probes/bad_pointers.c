/* Makes socket calls with bad pointers and lengths and prints one line per call:
 * "name=0" on success or "name=ERRNO_NAME" on failure. argv[1] picks the family:
 * "unix" (abstract autobound addresses) or "inet" (127.0.0.1, OS-chosen ports).
 * Natively and under netvm the output must be the same: the supervisor neither
 * crashes on such calls nor changes their answers. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define BAD ((void *)8)

static int family;

static void report(const char *what, long ret)
{
    if (ret >= 0) {
        printf("%s=0\n", what);
        return;
    }
    switch (errno) {
    case EFAULT: printf("%s=EFAULT\n", what); break;
    case EINVAL: printf("%s=EINVAL\n", what); break;
    default: printf("%s=errno%d\n", what, errno); break;
    }
}

static int must(const char *what, int ret)
{
    if (ret < 0) {
        printf("setup %s: %s\n", what, strerror(errno));
        exit(1);
    }
    return ret;
}

/* A socket of `type` bound to a fresh local address, which is stored in `addr`. */
static int bound(int type, struct sockaddr_storage *addr, socklen_t *len)
{
    int fd = must("socket", socket(family, type, 0));
    memset(addr, 0, sizeof *addr);
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)addr;
        in->sin_family = AF_INET;
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        *len = sizeof *in;
    } else {
        addr->ss_family = AF_UNIX; /* autobind to an abstract name */
        *len = sizeof(sa_family_t);
    }
    must("bind", bind(fd, (struct sockaddr *)addr, *len));
    *len = sizeof *addr;
    must("getsockname", getsockname(fd, (struct sockaddr *)addr, len));
    return fd;
}

int main(int argc, char **argv)
{
    family = argc > 1 && strcmp(argv[1], "inet") == 0 ? AF_INET : AF_UNIX;
    struct sockaddr_storage la, da, ss;
    socklen_t llen, dlen, len;
    int one = 1;
    char byte = 'x';

    int listener = bound(SOCK_STREAM, &la, &llen);
    must("listen", listen(listener, 8));
    int client = must("socket", socket(family, SOCK_STREAM, 0));

    report("connect_bad_addr", connect(client, BAD, llen));
    report("connect_huge_len", connect(client, (struct sockaddr *)&la, (socklen_t)-1));
    report("bind_bad_addr", bind(client, BAD, llen));
    len = sizeof ss;
    report("getsockname_bad_addr", getsockname(listener, BAD, &len));
    report("getsockname_bad_len", getsockname(listener, (struct sockaddr *)&ss, BAD));
    report("setsockopt_bad_val", setsockopt(client, SOL_SOCKET, SO_REUSEADDR, BAD, sizeof one));
    len = sizeof one;
    report("getsockopt_bad_val", getsockopt(client, SOL_SOCKET, SO_TYPE, BAD, &len));
    report("getsockopt_bad_len", getsockopt(client, SOL_SOCKET, SO_TYPE, &one, BAD));

    /* Each failed accept may use up a pending connection: queue one for each. */
    must("connect", connect(client, (struct sockaddr *)&la, llen));
    for (int i = 0; i < 2; i++) {
        int extra = must("socket", socket(family, SOCK_STREAM, 0));
        must("connect", connect(extra, (struct sockaddr *)&la, llen));
    }
    len = sizeof ss;
    report("accept_bad_addr", accept4(listener, BAD, &len, SOCK_NONBLOCK));
    report("accept_bad_len", accept4(listener, (struct sockaddr *)&ss, BAD, SOCK_NONBLOCK));
    len = sizeof ss;
    report("getpeername_bad_addr", getpeername(client, BAD, &len));
    report("getpeername_bad_len", getpeername(client, (struct sockaddr *)&ss, BAD));

    int d1 = bound(SOCK_DGRAM, &da, &dlen);
    int d2 = bound(SOCK_DGRAM, &ss, &len);
    report("sendto_bad_addr", sendto(d2, &byte, 1, 0, BAD, dlen));
    report("sendto", sendto(d2, &byte, 1, 0, (struct sockaddr *)&da, dlen));
    len = sizeof ss;
    report("recvfrom_bad_addr", recvfrom(d1, &byte, 1, MSG_DONTWAIT, BAD, &len));
    report("sendmsg_bad_msg", sendmsg(d2, BAD, 0));
    report("recvmsg_bad_msg", recvmsg(d1, BAD, MSG_DONTWAIT));
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    struct msghdr msg = {.msg_name = BAD, .msg_namelen = dlen, .msg_iov = &iov, .msg_iovlen = 1};
    report("sendmsg_bad_name", sendmsg(d2, &msg, 0));
    report("sendmmsg_bad_vec", sendmmsg(d2, BAD, 1, 0));
    report("recvmmsg_bad_vec", recvmmsg(d1, BAD, 1, MSG_DONTWAIT, NULL));
    return 0;
}
