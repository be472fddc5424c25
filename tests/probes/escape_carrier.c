/* Names carriers directly with the program's own native AF_UNIX sockets.
 *
 *   escape_carrier NAMES_FILE [bind]
 *
 * NAMES_FILE holds, in hex, the abstract name of a listening stream carrier on
 * its first line and of a datagram carrier on its second. Prints one line per
 * attempt, "NAME: ok" or "NAME: ERRNO_NAME":
 *   stream_connect   connect a stream socket to the stream name
 *   dgram_connect    connect a datagram socket to the datagram name
 *   dgram_sendto     sendto the datagram name
 *   dgram_sendmsg    sendmsg with the datagram name as msg_name
 *   dgram_sendmmsg   sendmmsg of one message with the datagram name
 * and with "bind", also stream_bind and dgram_bind (bind fresh sockets to the
 * names). Every send is MSG_DONTWAIT and each attempt uses a fresh socket. */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "escape.h"

#define NAME_LEN 13

static int fresh(int type)
{
    int fd = socket(AF_UNIX, type, 0);
    if (fd < 0) {
        printf("socket: %s\n", ename(errno));
        exit(1);
    }
    return fd;
}

/* The sockaddr_un of the hex name `hex`; its length goes to `len`. */
static struct sockaddr_un parse(const char *hex, socklen_t *len)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(hex) != 2 * NAME_LEN) {
        fprintf(stderr, "not a carrier name: %s\n", hex);
        exit(2);
    }
    for (int i = 0; i < NAME_LEN; i++)
        sscanf(hex + 2 * i, "%2hhx", (unsigned char *)&a.sun_path[1 + i]);
    *len = offsetof(struct sockaddr_un, sun_path) + 1 + NAME_LEN;
    return a;
}

int main(int argc, char **argv)
{
    char hex[2][64];
    FILE *f = argc >= 2 ? fopen(argv[1], "r") : NULL;
    if (!f || fscanf(f, "%63s %63s", hex[0], hex[1]) != 2) {
        fprintf(stderr, "usage: escape_carrier NAMES_FILE [bind]\n");
        return 2;
    }
    fclose(f);
    int binding = argc == 3 && strcmp(argv[2], "bind") == 0;
    socklen_t slen, dlen;
    struct sockaddr_un stream = parse(hex[0], &slen), dgram = parse(hex[1], &dlen);
    struct sockaddr *s = (struct sockaddr *)&stream, *d = (struct sockaddr *)&dgram;

    report("stream_connect", connect(fresh(SOCK_STREAM), s, slen));
    report("dgram_connect", connect(fresh(SOCK_DGRAM), d, dlen));
    report("dgram_sendto", sendto(fresh(SOCK_DGRAM), "x", 1, MSG_DONTWAIT, d, dlen));
    char byte = 'x';
    struct iovec iov = {&byte, 1};
    struct msghdr msg = {.msg_name = d, .msg_namelen = dlen, .msg_iov = &iov, .msg_iovlen = 1};
    report("dgram_sendmsg", sendmsg(fresh(SOCK_DGRAM), &msg, MSG_DONTWAIT));
    struct mmsghdr mmsg = {.msg_hdr = msg};
    report("dgram_sendmmsg", sendmmsg(fresh(SOCK_DGRAM), &mmsg, 1, MSG_DONTWAIT));
    if (binding) {
        report("stream_bind", bind(fresh(SOCK_STREAM), s, slen));
        report("dgram_bind", bind(fresh(SOCK_DGRAM), d, dlen));
    }
    return 0;
}
