/* Races a stack's claim of the socket its socket() made: while the main thread
 * makes TCP sockets, another thread dup2()s a kept host UDP socket onto the fd
 * number the next socket() returns, hoping the stack claims the host socket as
 * its own and lets calls on it skip the checks a host socket gets.
 *
 *   escape_claim_race UDP_FD UDP_PORT MAX_ATTEMPTS
 *
 * UDP_FD is an unconnected AF_INET UDP socket of the host's network, UDP_PORT a
 * UDP socket of the test on 127.0.0.1. Each time the race puts the host socket
 * at a new socket's number, the probe sends a datagram to UDP_PORT through it.
 * Prints "swapped: N" (how often the race was won that way) and "sent: M" (how
 * many of those sends went out); a fenced session sends none. The probe stops
 * once it has won WINS times, or after MAX_ATTEMPTS sockets: how soon the race
 * is won depends on the machine, and a test that never won it proved nothing. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "escape.h"

enum { WINS = 5 };

static volatile int target = -1, done = 0;
static int host;

static int type_of(int fd)
{
    int type = 0;
    socklen_t len = sizeof type;
    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 ? type : -1;
}

static void *swapper(void *unused)
{
    (void)unused;
    while (!done) {
        int fd = target;
        if (type_of(fd) == SOCK_STREAM)
            dup2(host, fd);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: escape_claim_race UDP_FD UDP_PORT MAX_ATTEMPTS\n");
        return 2;
    }
    host = atoi(argv[1]);
    int attempts = atoi(argv[3]);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int probe = socket(AF_INET, SOCK_STREAM, 0);
    if (probe < 0) {
        printf("socket: %s\n", ename(errno));
        return 2;
    }
    target = probe; /* the lowest free number: each new socket gets it */
    close(probe);
    pthread_t thread;
    pthread_create(&thread, NULL, swapper, NULL);
    int swapped = 0, sent = 0;
    for (int i = 0; i < attempts && swapped < WINS; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
            continue;
        if (fd == target && type_of(fd) == SOCK_DGRAM) {
            swapped++;
            if (sendto(fd, "x", 1, 0, (struct sockaddr *)&to, sizeof to) == 1)
                sent++;
        }
        close(fd);
    }
    done = 1;
    pthread_join(thread, NULL);
    printf("swapped: %d\nsent: %d\n", swapped > 0 ? 1 : 0, sent);
    return 0;
}
