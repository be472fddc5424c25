/* Socket calls from a thread after the process's first thread has ended
 * (pthread_exit in main: the leader is a zombie, the process lives on).
 *
 *   review_speed_leader_gone
 *
 * The thread binds a TCP socket explicitly, listens, connects a second socket
 * to it (an implicit bind), accepts, and sends a UDP datagram from an unbound
 * socket (another implicit bind); prints one line per call, "CALL: ok" or
 * "CALL: ERRNO", then exits the process with status 0. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void report(const char *what, int rc)
{
    printf("%s: %s\n", what, rc < 0 ? strerrorname_np(errno) : "ok");
    fflush(stdout);
}

static void *worker(void *arg)
{
    (void)arg;
    usleep(200 * 1000); /* the first thread is gone by now */
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    report("bind", bind(l, (struct sockaddr *)&a, sizeof a));
    report("listen", listen(l, 4));
    getsockname(l, (struct sockaddr *)&a, &len);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    report("connect", connect(c, (struct sockaddr *)&a, sizeof a));
    report("accept", accept(l, NULL, NULL));
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    report("sendto", (int)sendto(u, "x", 1, 0, (struct sockaddr *)&to, sizeof to));
    int l2 = socket(AF_INET, SOCK_STREAM, 0);
    report("listen unbound", listen(l2, 4));
    exit(0);
}

int main(void)
{
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    pthread_exit(NULL);
}
