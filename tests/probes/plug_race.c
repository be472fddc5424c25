/* A writer thread that writes "B" in a loop on a TCP socket while the main
 * thread connects it (non-blocking) to ADDR PORT, then polls it writable and
 * closes it. Prints "wrote N": the bytes the writer's writes took. Linux
 * refuses every write until the handshake ends (EPIPE, then EAGAIN). */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int fd = -1;
static volatile int go = 1;
static long wrote = 0;

static void *writer(void *unused) {
    (void)unused;
    while (go) {
        if (write(fd, "B", 1) == 1) wrote++;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    signal(SIGPIPE, SIG_IGN);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    pthread_t t;
    pthread_create(&t, 0, writer, 0);
    usleep(5000);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    inet_pton(AF_INET, argv[1], &sa.sin_addr);
    if (connect(fd, (void *)&sa, sizeof sa) != -1 || errno != EINPROGRESS) {
        printf("connect: %s\n", strerror(errno));
        return 1;
    }
    struct pollfd p = {fd, POLLOUT, 0};
    poll(&p, 1, 5000);
    usleep(20000);
    go = 0;
    pthread_join(t, 0);
    printf("wrote %ld\n", wrote);
    return close(fd);
}
