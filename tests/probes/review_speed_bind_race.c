/* Races a bind() (explicit, or the implicit one before listen/connect) against
 * a thread that dup2()s another socket over the fd, then checks what Linux
 * guarantees whichever socket the bind reached: exactly one of the two is bound,
 * and the one that is not can still bind.
 *
 *   review_speed_bind_race MODE ROUNDS SECONDS
 *
 * Stops at the first anomaly, after ROUNDS rounds, or after SECONDS seconds.
 * MODE: "inet" (the other socket is a second AF_INET stream socket) or "unix"
 * (the program's own AF_UNIX stream socket). Prints one line:
 * "rounds=N raced=R anomalies=A first=..." where raced counts rounds whose bind
 * landed on the other socket, and anomalies rounds that broke the guarantee. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static atomic_int go, stop;
static int slot, sa, sb;
static long flips;

static void *flipper(void *arg)
{
    (void)arg;
    while (!atomic_load(&go))
        ;
    while (!atomic_load(&stop)) {
        dup2(sb, slot);
        dup2(sa, slot);
        flips++;
    }
    return NULL;
}

static int inet_port(int fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    if (getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        return -errno;
    return ntohs(a.sin_port);
}

/* 1 if the AF_UNIX socket has a name (bound), 0 if not. */
static int unix_named(int fd)
{
    struct sockaddr_un a;
    socklen_t len = sizeof a;
    if (getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        return -errno;
    return len > sizeof(sa_family_t);
}

int main(int argc, char **argv)
{
    int unix_mode = argc > 1 && strcmp(argv[1], "unix") == 0;
    int rounds = argc > 2 ? atoi(argv[2]) : 300;
    int raced = 0, anomalies = 0;
    int seconds = argc > 3 ? atoi(argv[3]) : 10;
    time_t until = time(NULL) + seconds;
    char first[256] = "none";
    int r;
    for (r = 0; r < rounds && !anomalies && time(NULL) < until; r++) {
        sa = socket(AF_INET, SOCK_STREAM, 0);
        sb = unix_mode ? socket(AF_UNIX, SOCK_STREAM, 0) : socket(AF_INET, SOCK_STREAM, 0);
        slot = dup(sa);
        atomic_store(&go, 0);
        atomic_store(&stop, 0);
        pthread_t t;
        pthread_create(&t, NULL, flipper, NULL);
        struct sockaddr_in any = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        atomic_store(&go, 1);
        int rc = bind(slot, (struct sockaddr *)&any, sizeof any);
        int err = rc ? errno : 0;
        atomic_store(&stop, 1);
        pthread_join(t, NULL);
        int pa = inet_port(sa);
        int bound_a = pa > 0;
        int bound_b = unix_mode ? unix_named(sb) == 1 : inet_port(sb) > 0;
        /* Linux: a bind that succeeded bound exactly one of them (and, in unix
         * mode, only sa: an AF_INET address cannot bind an AF_UNIX socket). */
        int bad = 0;
        char what[200] = "";
        if (rc == 0 && bound_a + bound_b != 1) {
            bad = 1;
            snprintf(what, sizeof what, "bind ok but a=%d b=%d", bound_a, bound_b);
        } else if (rc == 0 && unix_mode && bound_b) {
            bad = 1;
            snprintf(what, sizeof what, "bind of 127.0.0.1 ok and named the AF_UNIX socket");
        } else if (rc != 0 && (bound_a || bound_b)) {
            bad = 1;
            snprintf(what, sizeof what, "bind failed (%s) yet a=%d b=%d", strerrorname_np(err), bound_a, bound_b);
        }
        if (rc == 0 && !bound_a)
            raced++;
        if (!bad && !unix_mode && rc == 0) {
            /* The socket left unbound must still bind. */
            int other = bound_a ? sb : sa;
            if (bind(other, (struct sockaddr *)&any, sizeof any) != 0) {
                bad = 1;
                snprintf(what, sizeof what, "the unbound socket's bind: %s (a=%d b=%d)",
                         strerrorname_np(errno), bound_a, bound_b);
            }
        }
        if (bad) {
            if (!anomalies)
                snprintf(first, sizeof first, "round %d: %s", r, what);
            anomalies++;
        }
        close(slot);
        close(sa);
        close(sb);
    }
    printf("rounds=%d raced=%d anomalies=%d first=%s\n", r, raced, anomalies, first);
    return 0;
}
