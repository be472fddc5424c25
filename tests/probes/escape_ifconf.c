/* Asks for, and tries to change, network interfaces with the SIOC* ioctls, on an
 * AF_UNIX socket and on an AF_INET one (the socket ioctls work on any socket).
 *
 *   escape_ifconf list
 *       SIOCGIFCONF on each socket: one line "FAMILY NAME ADDRESS" per interface
 *       listed, "FAMILY: ERRNO_NAME" if the socket or the call fails, and
 *       "FAMILY: end" after the list.
 *   escape_ifconf set IFNAME
 *       On each socket: SIOCSIFFLAGS with IFF_UP cleared ("FAMILY_down") and
 *       SIOCSIFMTU to 1300 ("FAMILY_mtu"); "NAME: ok" or "NAME: ERRNO_NAME". The
 *       flags start from what SIOCGIFFLAGS reads, or from IFF_BROADCAST if it fails.
 *
 * FAMILY is "unix" or "inet". */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "escape.h"

static void report_on(const char *family, const char *what, long ret)
{
    if (ret < 0)
        printf("%s_%s: %s\n", family, what, ename(errno));
    else
        printf("%s_%s: ok\n", family, what);
}

static void list(const char *family, int fd)
{
    static struct ifreq reqs[64];
    struct ifconf conf = {.ifc_len = sizeof reqs, .ifc_req = reqs};
    if (ioctl(fd, SIOCGIFCONF, &conf) < 0) {
        printf("%s: %s\n", family, ename(errno));
        return;
    }
    for (size_t i = 0; i < conf.ifc_len / sizeof reqs[0]; i++) {
        struct sockaddr_in *in = (struct sockaddr_in *)&reqs[i].ifr_addr;
        char address[INET_ADDRSTRLEN] = "?";
        if (in->sin_family == AF_INET)
            inet_ntop(AF_INET, &in->sin_addr, address, sizeof address);
        printf("%s %.*s %s\n", family, IFNAMSIZ, reqs[i].ifr_name, address);
    }
    printf("%s: end\n", family);
}

static void set(const char *family, int fd, const char *name)
{
    struct ifreq req;
    memset(&req, 0, sizeof req);
    strncpy(req.ifr_name, name, IFNAMSIZ - 1);
    short flags = ioctl(fd, SIOCGIFFLAGS, &req) == 0 ? req.ifr_flags : IFF_BROADCAST;
    req.ifr_flags = flags & ~IFF_UP;
    report_on(family, "down", ioctl(fd, SIOCSIFFLAGS, &req));
    memset(&req.ifr_ifru, 0, sizeof req.ifr_ifru);
    req.ifr_mtu = 1300;
    report_on(family, "mtu", ioctl(fd, SIOCSIFMTU, &req));
}

int main(int argc, char **argv)
{
    int setting = argc == 3 && strcmp(argv[1], "set") == 0;
    if (!setting && !(argc == 2 && strcmp(argv[1], "list") == 0)) {
        fprintf(stderr, "usage: escape_ifconf list | set IFNAME\n");
        return 2;
    }
    const struct {
        const char *name;
        int family;
    } families[] = {{"unix", AF_UNIX}, {"inet", AF_INET}};
    for (size_t i = 0; i < 2; i++) {
        int fd = socket(families[i].family, SOCK_DGRAM, 0);
        if (fd < 0)
            printf("%s: %s\n", families[i].name, ename(errno));
        else if (setting)
            set(families[i].name, fd, argv[2]);
        else
            list(families[i].name, fd);
        if (fd >= 0)
            close(fd);
    }
    return 0;
}
