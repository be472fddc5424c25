/* Races the name of a netlink sendmsg: while the main thread sends on a netlink
 * socket with no name, another thread flips the header's msg_name between NULL
 * and the address of an AF_UNIX datagram socket (a stand-in for another stack's
 * carrier). The netlink socket's carrier is an AF_UNIX socket too: had netvm let
 * the kernel read the program's header, it would send where the name points.
 *
 *   escape_netlink_race ATTEMPTS
 *
 * Prints "reached: N", how many datagrams the stand-in received. */
#define _GNU_SOURCE
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "escape.h"

static volatile struct msghdr msg;
static struct sockaddr_un target;
static volatile int done;

static void *flipper(void *unused)
{
    (void)unused;
    while (!done) {
        msg.msg_namelen = sizeof target;
        msg.msg_name = &target;
        for (volatile int i = 0; i < 200; i++) {
        }
        msg.msg_name = NULL;
        msg.msg_namelen = 0;
        for (volatile int i = 0; i < 200; i++) {
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: escape_netlink_race ATTEMPTS\n");
        return 2;
    }
    int stand_in = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    target.sun_family = AF_UNIX;
    snprintf(target.sun_path + 1, sizeof target.sun_path - 1, "stand-in-%d", getpid());
    if (bind(stand_in, (struct sockaddr *)&target, sizeof target) < 0) {
        printf("bind: %s\n", ename(errno));
        return 2;
    }
    int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK, NETLINK_ROUTE);
    struct {
        struct nlmsghdr header;
        struct rtgenmsg body;
    } request = {{sizeof request, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, 0}, {AF_UNSPEC}};
    struct iovec iov = {&request, sizeof request};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    pthread_t thread;
    pthread_create(&thread, NULL, flipper, NULL);
    char sink[8192];
    for (int i = 0; i < atoi(argv[1]); i++) {
        sendmsg(nl, (struct msghdr *)&msg, 0);
        while (recv(nl, sink, sizeof sink, 0) > 0) {
        }
    }
    done = 1;
    pthread_join(thread, NULL);
    int reached = 0;
    while (recv(stand_in, sink, sizeof sink, 0) > 0)
        reached++;
    printf("reached: %d\n", reached);
    return 0;
}
