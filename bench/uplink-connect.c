/*
 * uplink-connect: the connection-rate probe of bench/uplink.sh.
 *
 *   uplink-connect server PORT
 *       Listens on [::]:PORT (IPv4 and IPv6), accepts connections and closes each
 *       at once, for ever.
 *   uplink-connect client ADDRESS PORT SECONDS
 *       For SECONDS seconds, one connection after the other: socket, blocking
 *       connect to ADDRESS:PORT, read until the server's FIN (EOF), close.
 *       Prints "SUCCEEDED FAILED ELAPSED_SECONDS" on standard output and, when
 *       some failed, the errno of the first failure on standard error.
 *
 * The server closes first, so the TIME_WAIT state stays in the server's namespace
 * and the client's side (and a NAT's host socket) never runs out of ports. A
 * connection counts when connect succeeded and the read saw the EOF; anything
 * else (refused, reset, timed out, EADDRNOTAVAIL) counts as a failure and the
 * client goes on. An alarm at the deadline interrupts a connect or read that
 * hangs (the handler is installed without SA_RESTART); that attempt counts as
 * neither, and if even that does not end it the caller's timeout(1) does.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t expired;

static void on_alarm(int sig) {
    (void)sig;
    expired = 1;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int serve(int port) {
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0) {
        perror("socket");
        return 1;
    }
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    struct sockaddr_in6 addr = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 4096) < 0) {
        perror("bind/listen");
        return 1;
    }
    for (;;) {
        int c = accept(fd, NULL, NULL);
        if (c >= 0)
            close(c);
        else if (errno != EINTR && errno != ECONNABORTED && errno != EMFILE && errno != ENFILE)
            perror("accept");
    }
}

static int client(const char *host, int port, int seconds) {
    struct sockaddr_storage ss = {0};
    socklen_t len;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        len = sizeof *a4;
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        len = sizeof *a6;
    } else {
        fprintf(stderr, "uplink-connect: not a numeric address: %s\n", host);
        return 2;
    }

    struct sigaction sa = {.sa_handler = on_alarm}; /* no SA_RESTART */
    sigaction(SIGALRM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    long ok = 0, failed = 0;
    int first_errno = 0;
    const char *first_what = NULL;
    double start = now(), deadline = start + seconds;
    alarm(seconds + 1);
    while (!expired && now() < deadline) {
        const char *what = "socket";
        int fd = socket(ss.ss_family, SOCK_STREAM, 0);
        if (fd >= 0) {
            what = "connect";
            if (connect(fd, (struct sockaddr *)&ss, len) == 0) {
                char buf[64];
                ssize_t n;
                what = "read";
                while ((n = read(fd, buf, sizeof buf)) > 0)
                    ;
                if (n == 0) {
                    ok++;
                    close(fd);
                    continue;
                }
            }
        }
        int err = errno;
        if (fd >= 0)
            close(fd);
        if (expired && err == EINTR)
            break; /* cut short by the deadline: neither success nor failure */
        if (failed++ == 0) {
            first_errno = err;
            first_what = what;
        }
    }
    double elapsed = now() - start;
    printf("%ld %ld %.3f\n", ok, failed, elapsed);
    if (failed)
        fprintf(stderr, "uplink-connect: %ld of %ld attempts failed; the first: %s: %s\n",
                failed, ok + failed, first_what, strerror(first_errno));
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "server") == 0)
        return serve(atoi(argv[2]));
    if (argc == 5 && strcmp(argv[1], "client") == 0)
        return client(argv[2], atoi(argv[3]), atoi(argv[4]));
    fprintf(stderr, "usage: uplink-connect server PORT\n"
                    "       uplink-connect client ADDRESS PORT SECONDS\n");
    return 2;
}
