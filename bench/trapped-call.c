/* Cost of one trapped call: a bare ptrace stop, and a call under netvm.
 *
 *   trapped-call bare N      a minimal tracer: the child traps getsockname with
 *                            SECCOMP_RET_TRACE and the parent answers each stop with
 *                            waitpid + PTRACE_CONT, nothing else. The floor.
 *   trapped-call unix N      N getsockname calls on an AF_UNIX socket (under netvm:
 *                            trapped, left to the kernel).
 *   trapped-call inet N      N getsockname calls on an AF_INET socket (under netvm:
 *                            trapped and answered by the stack, through a seccomp
 *                            notification).
 *   trapped-call stop N      N listen calls on an AF_INET datagram socket, each
 *                            EOPNOTSUPP (under netvm: a ptrace stop answered by the
 *                            stack: the path of calls that may need the thread).
 *
 * Each prints one line: "<mode> <microseconds per call>".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void calls(const char *mode, int fd, long n) {
    struct sockaddr_storage ss;
    socklen_t len;
    double start = now_us();
    for (long i = 0; i < n; i++) {
        len = sizeof ss;
        if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
            perror("getsockname");
            exit(1);
        }
    }
    printf("%s %.3f\n", mode, (now_us() - start) / n);
}

static void listens(int fd, long n) {
    double start = now_us();
    for (long i = 0; i < n; i++) {
        if (listen(fd, 1) != -1 || errno != EOPNOTSUPP) {
            perror("listen");
            exit(1);
        }
    }
    printf("stop %.3f\n", (now_us() - start) / n);
}

static int bare(long n) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 1;
    pid_t child = fork();
    if (child == 0) {
        struct sock_filter filter[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getsockname, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = {sizeof filter / sizeof filter[0], filter};
        raise(SIGSTOP); /* let the parent seize us first */
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
            _exit(2);
        calls("bare", sv[0], n);
        _exit(0);
    }
    int status;
    waitpid(child, &status, WUNTRACED);
    if (ptrace(PTRACE_SEIZE, child, 0, PTRACE_O_TRACESECCOMP | PTRACE_O_EXITKILL) != 0) return 1;
    kill(child, SIGCONT);
    for (;;) {
        if (waitpid(child, &status, __WALL) < 0 || WIFEXITED(status) || WIFSIGNALED(status)) break;
        int sig = WSTOPSIG(status);
        int deliver = (status >> 16) == 0 && sig != SIGTRAP && sig != SIGSTOP ? sig : 0;
        if ((status >> 16) == PTRACE_EVENT_STOP) deliver = 0;
        ptrace(PTRACE_CONT, child, 0, deliver);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s bare|unix|inet|stop N\n", argv[0]);
        return 2;
    }
    long n = atol(argv[2]);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(argv[1], "bare")) return bare(n);
    if (!strcmp(argv[1], "unix")) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 1;
        calls("unix", sv[0], n);
        return 0;
    }
    if (!strcmp(argv[1], "stop")) {
        listens(socket(AF_INET, SOCK_DGRAM, 0), n);
        return 0;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in any = {.sin_family = AF_INET};
    if (fd < 0 || bind(fd, (struct sockaddr *)&any, sizeof any) != 0) return 1;
    calls("inet", fd, n);
    return 0;
}
