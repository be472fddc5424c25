/* Open sockets that other sockets' closes must not make netvm forget.
 *
 *   sweep_churn VICTIMS CALLS
 *
 * Opens VICTIMS TCP sockets (fewer if the descriptor limit, raised to its hard
 * limit, has no room) and keeps them open. Meanwhile a second thread makes and
 * closes AF_UNIX socket pairs as fast as it can (a ring of 1,000 pairs, the
 * oldest closed as each new one comes: calls the kernel runs natively, never
 * trapped), while this thread makes CALLS trapped calls (socket() of a TCP
 * socket, closed at once: after every 256 of them netvm sweeps its closed
 * sockets). Then asks each victim its name: an open TCP socket that was never
 * bound is 0.0.0.0 port 0. Prints "forgotten: N", N the victims that answered
 * anything else (netvm had taken them for closed and dropped their records). */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define RING 1000

static atomic_int stop;

static void *churn(void *unused) {
    static int ring[RING][2];
    int head = 0, filled = 0;
    (void)unused;
    while (!atomic_load(&stop)) {
        if (filled == RING) {
            close(ring[head][0]);
            close(ring[head][1]);
        } else {
            filled++;
        }
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, ring[head]) != 0) {
            perror("socketpair");
            exit(1);
        }
        head = (head + 1) % RING;
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: sweep_churn VICTIMS CALLS\n");
        return 2;
    }
    long wanted = atol(argv[1]), calls = atol(argv[2]);
    struct rlimit limit;
    getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    /* Room for the ring's pairs and a few more. */
    long room = (long)limit.rlim_cur - 2 * RING - 64;
    long count = wanted < room ? wanted : room;
    if (count < 1) {
        fprintf(stderr, "no room for victims (limit %ld)\n", (long)limit.rlim_cur);
        return 1;
    }
    int *victims = calloc(count, sizeof *victims);
    for (long i = 0; i < count; i++) {
        victims[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (victims[i] < 0) {
            perror("socket");
            return 1;
        }
    }
    pthread_t churner;
    pthread_create(&churner, NULL, churn, NULL);
    for (long i = 0; i < calls; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd >= 0)
            close(fd);
    }
    atomic_store(&stop, 1);
    pthread_join(churner, NULL);
    long forgotten = 0;
    for (long i = 0; i < count; i++) {
        struct sockaddr_in name = {0};
        socklen_t len = sizeof name;
        if (getsockname(victims[i], (struct sockaddr *)&name, &len) != 0 ||
            name.sin_family != AF_INET || name.sin_port != 0 || name.sin_addr.s_addr != 0)
            forgotten++;
    }
    printf("forgotten: %ld\n", forgotten);
    return 0;
}
