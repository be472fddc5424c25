/* Reaches for a process outside the program: its supervisor (the TracerPid of
 * /proc/self/status), or a host process of the same user that holds a socket.
 * Prints one line per attempt: "NAME: ok" if the call succeeded, else
 * "NAME: ERRNO_NAME".
 *
 *   escape_reach supervisor PIDFD
 *       PIDFD is an inherited pidfd of the process that became the supervisor.
 *       Tries ptrace_attach, ptrace_seize, process_vm_readv, process_vm_writev,
 *       open_mem (/proc/PID/mem), kcmp, pidfd_open, and pidfd_getfd (its fd 2,
 *       through PIDFD).
 *   escape_reach host PID PIDFD FD PORT
 *       PID holds an unconnected TCP socket at FD; PIDFD is an inherited pidfd of
 *       PID. The same attempts but open_mem, then "stolen_connect": connect the
 *       socket taken with pidfd_getfd (if any) to 127.0.0.1:PORT ("no socket" if
 *       none was taken).
 *   escape_reach host-nondumpable PID PIDFD FD PORT
 *       The same, after making itself non-dumpable (PR_SET_DUMPABLE 0), which
 *       closes its /proc entries to a supervisor that does not run as root.
 *
 * An attach that succeeds is undone at once (interrupt, wait, detach), and
 * process_vm_writev writes back the very bytes process_vm_readv read, so that a
 * successful attack leaves its target as it was. Every signal is blocked: the
 * SIGCHLD of a stopped supervisor would otherwise stop this traced probe for the
 * very supervisor that cannot answer. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "escape.h"

static pid_t tracer_pid(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    pid_t pid = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "TracerPid: %d", &pid) == 1)
            break;
    if (f)
        fclose(f);
    return pid;
}

/* The start of the first writable private mapping of `pid`, or a made-up address
 * if its maps cannot be read (the access check comes before any address check). */
static unsigned long writable_address(pid_t pid)
{
    char path[64], line[512];
    unsigned long start = 0x10000, end;
    char perms[8];
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f)) {
        if (sscanf(line, "%lx-%lx %7s", &start, &end, perms) == 3 && strcmp(perms, "rw-p") == 0)
            break;
        start = 0x10000;
    }
    if (f)
        fclose(f);
    return start;
}

static void try_ptrace(pid_t pid)
{
    long ret = ptrace(PTRACE_ATTACH, pid, 0, 0);
    report("ptrace_attach", ret);
    if (ret == 0) {
        waitpid(pid, NULL, __WALL);
        ptrace(PTRACE_DETACH, pid, 0, 0);
    }
    ret = ptrace(PTRACE_SEIZE, pid, 0, 0);
    report("ptrace_seize", ret);
    if (ret == 0) {
        ptrace(PTRACE_INTERRUPT, pid, 0, 0);
        waitpid(pid, NULL, __WALL);
        ptrace(PTRACE_DETACH, pid, 0, 0);
    }
}

static void try_memory(pid_t pid)
{
    unsigned long address = writable_address(pid);
    unsigned char bytes[8] = {0};
    struct iovec local = {bytes, sizeof bytes};
    struct iovec remote = {(void *)address, sizeof bytes};
    long ret = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    report("process_vm_readv", ret);
    if (ret != (long)sizeof bytes)
        remote.iov_base = (void *)0x10000;
    report("process_vm_writev", process_vm_writev(pid, &local, 1, &remote, 1, 0));
}

/* The attempts both targets share; returns what pidfd_getfd took (or -1). */
static int try_all(pid_t pid, int pidfd, int target_fd)
{
    try_ptrace(pid);
    try_memory(pid);
    report("kcmp", syscall(SYS_kcmp, getpid(), pid, KCMP_VM, 0, 0));
    long opened = syscall(SYS_pidfd_open, pid, 0);
    report("pidfd_open", opened);
    if (opened >= 0)
        close((int)opened);
    long taken = syscall(SYS_pidfd_getfd, pidfd, target_fd, 0);
    report("pidfd_getfd", taken);
    return (int)taken;
}

int main(int argc, char **argv)
{
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    if (argc == 3 && strcmp(argv[1], "supervisor") == 0) {
        pid_t pid = tracer_pid();
        printf("tracer: %s\n", pid > 0 ? "found" : "none");
        fflush(stdout);
        if (pid <= 0)
            return 1;
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/mem", pid);
        int mem = open(path, O_RDWR);
        report("open_mem", mem);
        if (mem >= 0)
            close(mem);
        int taken = try_all(pid, atoi(argv[2]), 2);
        if (taken >= 0)
            close(taken);
        return 0;
    }
    if (argc == 6 && strcmp(argv[1], "host-nondumpable") == 0) {
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
            return 2;
        argv[1] = "host";
    }
    if (argc == 6 && strcmp(argv[1], "host") == 0) {
        int taken = try_all(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
        if (taken < 0) {
            printf("stolen_connect: no socket\n");
            return 0;
        }
        struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[5]))};
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        report("stolen_connect", connect(taken, (struct sockaddr *)&to, sizeof to));
        return 0;
    }
    fprintf(stderr, "usage: escape_reach supervisor PIDFD | host PID PIDFD FD PORT\n");
    return 2;
}
