/*
 * option_surface: every option number 0..79 at the IP, IPv6, TCP and UDP
 * levels (and SO_DOMAIN, SO_PROTOCOL), on fresh TCP and UDP sockets of both
 * families, asked as a program would: getsockopt with an int's room and with
 * one byte's, setsockopt of 0, 1 and 2 (each on a fresh socket) and of one
 * byte, and getsockopt again after the set of 1. One line per option and
 * socket kind, for tests/option_surface.rs to compare natively and under
 * netvm. Netfilter's options are left out for a process that may administer
 * the network (see may_administer).
 *
 *   option_surface
 */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *err(void) { return strerrorname_np(errno) ?: "E?"; }

/* getsockopt with `room` bytes: the answer, the length and the value. */
static void get(char *out, size_t size, int fd, int level, int name, socklen_t room)
{
    unsigned char value[4] = {0x5a, 0x5a, 0x5a, 0x5a};
    socklen_t len = room;
    if (getsockopt(fd, level, name, value, &len) != 0) {
        snprintf(out, size, "%s", err());
        return;
    }
    int v;
    memcpy(&v, value, sizeof v);
    /* TCP_TIMESTAMP's value is the clock's. */
    if (level == IPPROTO_TCP && name == TCP_TIMESTAMP)
        snprintf(out, size, "ok l%u", len);
    else
        snprintf(out, size, "ok l%u v%d", len, len >= 4 ? v : value[0]);
}

/* setsockopt of `value`, `len` bytes of it, on a fresh socket. */
static void set(char *out, size_t size, int family, int type, int level, int name,
                int value, socklen_t len)
{
    int fd = socket(family, type, 0);
    int rc = setsockopt(fd, level, name, &value, len);
    snprintf(out, size, "%s", rc ? err() : "ok");
    close(fd);
}

/* Whether this process may administer the network (CAP_NET_ADMIN): root's
 * netfilter options reach a packet filter natively, and a stack has none, so
 * they are asked only where both refuse them (EPERM). */
static int may_administer(void)
{
    char line[256];
    unsigned long long caps = 0;
    FILE *status = fopen("/proc/self/status", "r");
    while (status && fgets(line, sizeof line, status))
        if (sscanf(line, "CapEff: %llx", &caps) == 1)
            break;
    if (status)
        fclose(status);
    return (caps >> 12) & 1;
}

/* Netfilter's options: iptables' at IPv4's level, ip6tables' at IPv6's. */
static int is_packet_filter(int family, int level, int name)
{
    if (level == IPPROTO_IP)
        return name >= 64 && name <= 67;
    return level == IPPROTO_IPV6 && family == AF_INET6 && name >= 64 && name <= 69 && name != 66
           && name != 67;
}

int main(void)
{
    int admin = may_administer();
    const int levels[] = {IPPROTO_IP, IPPROTO_IPV6, IPPROTO_TCP, IPPROTO_UDP, SOL_SOCKET};
    for (int f = 0; f < 2; f++)
        for (int t = 0; t < 2; t++)
            for (int l = 0; l < 5; l++)
                for (int n = 0; n < 80; n++) {
                    int level = levels[l];
                    if (level == SOL_SOCKET && n != SO_DOMAIN && n != SO_PROTOCOL)
                        continue;
                    int family = f ? AF_INET6 : AF_INET, type = t ? SOCK_DGRAM : SOCK_STREAM;
                    if (admin && is_packet_filter(family, level, n))
                        continue;
                    char get4[48], get1[48], set0[24], set1[24], set2[24], set_char[24],
                        after[48];
                    int fd = socket(family, type, 0);
                    get(get4, sizeof get4, fd, level, n, 4);
                    get(get1, sizeof get1, fd, level, n, 1);
                    close(fd);
                    set(set0, sizeof set0, family, type, level, n, 0, 4);
                    set(set1, sizeof set1, family, type, level, n, 1, 4);
                    set(set2, sizeof set2, family, type, level, n, 2, 4);
                    set(set_char, sizeof set_char, family, type, level, n, 1, 1);
                    fd = socket(family, type, 0);
                    int one = 1;
                    setsockopt(fd, level, n, &one, sizeof one);
                    get(after, sizeof after, fd, level, n, 4);
                    close(fd);
                    printf("v%d %s level %d name %d: get %s, get1 %s, set 0 %s, 1 %s, 2 %s, "
                           "char %s, after %s\n",
                           f ? 6 : 4, t ? "udp" : "tcp", level, n, get4, get1, set0, set1,
                           set2, set_char, after);
                }
    return 0;
}
