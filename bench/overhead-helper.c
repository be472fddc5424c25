/*
 * Helper for bench/overhead.sh; compiled at run time with `cc -O2`.
 *
 *   overhead-helper loop N       N rounds of stat, read, futex and getppid: a
 *                                syscall-heavy loop with no network call at all
 *   overhead-helper floor CMD... run CMD under an allow-all seccomp filter (with
 *                                PR_SET_NO_NEW_PRIVS, as netvm sets it): the cost any
 *                                seccomp-based supervisor pays, without ptrace
 *   overhead-helper trapped N    N getsockname calls on an AF_UNIX socket, a call
 *                                netvm always stops and leaves to the kernel; prints
 *                                the mean time of one call in microseconds
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int loop(long rounds)
{
    static int word;
    char buf[64];
    struct stat st;
    long sum = 0;
    int zero = open("/dev/zero", O_RDONLY | O_CLOEXEC);
    if (zero < 0) {
        perror("overhead-helper: /dev/zero");
        return 1;
    }
    for (long i = 0; i < rounds; i++) {
        if (stat("/", &st) != 0 || read(zero, buf, sizeof buf) != (ssize_t)sizeof buf) {
            perror("overhead-helper: loop");
            return 1;
        }
        /* No waiter: returns 0 at once. */
        sum += syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
        sum += syscall(SYS_getppid);
    }
    /* Use the results, so that nothing is optimized away. */
    return sum == -1 ? 2 : 0;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int trapped(long calls)
{
    struct sockaddr_un addr;
    socklen_t len;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("overhead-helper: socket");
        return 1;
    }
    double start = now();
    for (long i = 0; i < calls; i++) {
        len = sizeof addr;
        if (getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
            perror("overhead-helper: getsockname");
            return 1;
        }
    }
    printf("%.3f\n", (now() - start) / (double)calls * 1e6);
    return 0;
}

static int floor_exec(char **argv)
{
    struct sock_filter allow[] = { BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW) };
    struct sock_fprog prog = { .len = 1, .filter = allow };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
        || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
        perror("overhead-helper: seccomp");
        return 125;
    }
    execvp(argv[0], argv);
    fprintf(stderr, "overhead-helper: %s: %s\n", argv[0], strerror(errno));
    return errno == ENOENT ? 127 : 126;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "loop") == 0)
        return loop(atol(argv[2]));
    if (argc == 3 && strcmp(argv[1], "trapped") == 0)
        return trapped(atol(argv[2]));
    if (argc >= 3 && strcmp(argv[1], "floor") == 0)
        return floor_exec(argv + 2);
    fprintf(stderr, "usage: overhead-helper loop N | trapped N | floor CMD [ARGS...]\n");
    return 2;
}
