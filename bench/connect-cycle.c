/*
 * connect-cycle: the connection-cycle probe of bench/connections.sh.
 *
 *   connect-cycle loop [ADDRESS] PORT N
 *       One process: listens on ADDRESS:PORT (default 127.0.0.1), then N times
 *       socket, blocking connect, accept, close the accepted socket, close the
 *       connecting one. Prints the mean microseconds per cycle.
 *   connect-cycle server ADDRESS PORT
 *       Listens on ADDRESS:PORT, accepts connections and closes each at once,
 *       until killed.
 *   connect-cycle client ADDRESS PORT N
 *       N times: socket, blocking connect to ADDRESS:PORT, read until the
 *       server's FIN (EOF), close. Prints the mean microseconds per cycle.
 *
 * The client waits up to 10 seconds for the server to listen (while connect is
 * refused), then makes one untimed cycle (which also resolves the peer's MAC
 * address across netvm's stacks) before the N timed ones. The server closes
 * first in both modes, so TIME_WAIT stays on the listening side. Any failure
 * in a timed cycle ends the program with a message and status 1: the figure
 * is the mean of N cycles that all succeeded.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static _Noreturn void die(const char *what, long cycle) {
    int err = errno;
    if (cycle >= 0)
        fprintf(stderr, "connect-cycle: cycle %ld: %s: %s\n", cycle, what, strerror(err));
    else
        fprintf(stderr, "connect-cycle: %s: %s\n", what, strerror(err));
    exit(1);
}

static struct sockaddr_in address(const char *host, const char *port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(port))};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
        fprintf(stderr, "connect-cycle: not a numeric IPv4 address: %s\n", host);
        exit(2);
    }
    return a;
}

static long count(const char *s) {
    long n = atol(s);
    if (n < 1) {
        fprintf(stderr, "connect-cycle: not a positive count: %s\n", s);
        exit(2);
    }
    return n;
}

static int listener(const struct sockaddr_in *a) {
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd < 0)
        die("socket", -1);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (const struct sockaddr *)a, sizeof *a) < 0)
        die("bind", -1);
    if (listen(fd, 1024) < 0)
        die("listen", -1);
    return fd;
}

static int loop(const struct sockaddr_in *a, long n) {
    int lfd = listener(a);
    double start = 0;
    for (long i = -1; i < n; i++) { /* cycle -1: the untimed warm-up */
        if (i == 0)
            start = now();
        int c = socket(AF_INET, SOCK_STREAM, 0);
        if (c < 0)
            die("socket", i);
        if (connect(c, (const struct sockaddr *)a, sizeof *a) < 0)
            die("connect", i);
        int s = accept(lfd, NULL, NULL);
        if (s < 0)
            die("accept", i);
        close(s);
        close(c);
    }
    printf("%.2f\n", (now() - start) / n * 1e6);
    return 0;
}

static _Noreturn void serve(const struct sockaddr_in *a) {
    int lfd = listener(a);
    for (;;) {
        int s = accept(lfd, NULL, NULL);
        if (s >= 0)
            close(s);
        else if (errno != EINTR && errno != ECONNABORTED)
            die("accept", -1);
    }
}

/* One client cycle; returns 0, or -1 with errno set and *what naming the call. */
static int cycle(const struct sockaddr_in *a, const char **what) {
    char buf[64];
    ssize_t r;
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0) {
        *what = "socket";
        return -1;
    }
    if (connect(c, (const struct sockaddr *)a, sizeof *a) < 0) {
        *what = "connect";
        goto fail;
    }
    while ((r = read(c, buf, sizeof buf)) > 0)
        ;
    if (r < 0) {
        *what = "read";
        goto fail;
    }
    close(c);
    return 0;
fail:;
    int err = errno;
    close(c);
    errno = err;
    return -1;
}

static int client(const struct sockaddr_in *a, long n) {
    const char *what = "";
    double deadline = now() + 10;
    while (cycle(a, &what) < 0) { /* the warm-up, once the server listens */
        if (errno != ECONNREFUSED || now() > deadline)
            die(what, -1);
        usleep(10000);
    }
    double start = now();
    for (long i = 0; i < n; i++)
        if (cycle(a, &what) < 0)
            die(what, i);
    printf("%.2f\n", (now() - start) / n * 1e6);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "loop") == 0) {
        struct sockaddr_in a = address("127.0.0.1", argv[2]);
        return loop(&a, count(argv[3]));
    }
    if (argc == 5 && strcmp(argv[1], "loop") == 0) {
        struct sockaddr_in a = address(argv[2], argv[3]);
        return loop(&a, count(argv[4]));
    }
    if (argc == 4 && strcmp(argv[1], "server") == 0) {
        struct sockaddr_in a = address(argv[2], argv[3]);
        serve(&a);
    }
    if (argc == 5 && strcmp(argv[1], "client") == 0) {
        struct sockaddr_in a = address(argv[2], argv[3]);
        return client(&a, count(argv[4]));
    }
    fprintf(stderr, "usage: connect-cycle loop [ADDRESS] PORT N\n"
                    "       connect-cycle server ADDRESS PORT\n"
                    "       connect-cycle client ADDRESS PORT N\n");
    return 2;
}
