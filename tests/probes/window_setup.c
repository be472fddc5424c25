/* The scratch window's set-up under pressure, at a process's first call that
 * stops in netvm (a bind: a socket() is a notification, which needs no window):
 *
 *   window_setup signals   SIGALRM every 50 us (SA_RESTART) during the first
 *                          bind(); then a sendto on a native AF_UNIX socket to a
 *                          name nothing binds must say ECONNREFUSED, as natively
 *   window_setup threads   8 threads make their first bind() at once, 20 times
 *                          in 20 children; prints the supervisor's VmSize growth
 *                          in kB (its mappings of set-ups that lost the race)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_alarm(int sig) { (void)sig; }

/* A new UDP socket bound to any port: its bind is a process's first stop. */
static int bound_socket(void)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in any = {.sin_family = AF_INET};
    return s >= 0 && bind(s, (struct sockaddr *)&any, sizeof any) == 0 ? s : -1;
}

static int signals(void)
{
    struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = SA_RESTART};
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval every = {{0, 50}, {0, 50}}, off = {0};
    setitimer(ITIMER_REAL, &every, NULL);
    int s = bound_socket();
    setitimer(ITIMER_REAL, &off, NULL);
    int u = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un to = {.sun_family = AF_UNIX};
    memcpy(to.sun_path, "\0netvm-test-nobody-here", 23);
    long r = sendto(u, "x", 1, 0, (struct sockaddr *)&to, offsetof(struct sockaddr_un, sun_path) + 23);
    printf("socket: %s\n", s >= 0 ? "ok" : strerrorname_np(errno));
    printf("sendto: %s\n", r < 0 ? strerrorname_np(errno) : "sent");
    return 0;
}

static atomic_int go;

static void *first_call(void *unused)
{
    (void)unused;
    while (!go)
        ;
    close(bound_socket());
    return NULL;
}

static long supervisor_vmsize(void)
{
    char line[256], path[64];
    int tracer = 0;
    FILE *f = fopen("/proc/self/status", "r");
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "TracerPid: %d", &tracer) == 1)
            break;
    fclose(f);
    snprintf(path, sizeof path, "/proc/%d/status", tracer);
    long kb = -1;
    f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %ld", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

static int threads(void)
{
    long before = supervisor_vmsize();
    for (int round = 0; round < 20; round++) {
        pid_t child = fork();
        if (child == 0) {
            pthread_t t[8];
            for (int i = 0; i < 8; i++)
                pthread_create(&t[i], NULL, first_call, NULL);
            go = 1;
            for (int i = 0; i < 8; i++)
                pthread_join(t[i], NULL);
            _exit(0);
        }
        waitpid(child, NULL, 0);
    }
    printf("growth: %ld\n", supervisor_vmsize() - before);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "signals"))
        return signals();
    if (argc == 2 && !strcmp(argv[1], "threads"))
        return threads();
    return 2;
}
