/* Tries the ways out of the tracer's sight and out of the network namespace that
 * process creation offers, and prints one line per attempt: "NAME: ok" if the call
 * succeeded (a child ran and ended at once), else "NAME: ERRNO_NAME".
 *
 *   clone_untraced          syscall(SYS_clone, CLONE_UNTRACED|SIGCHLD): a child the
 *                           tracer is not allowed to follow
 *   clone_vfork_untraced    the same with CLONE_VM|CLONE_VFORK (the child shares the
 *                           parent's memory: it exits from inline assembly)
 *   clone_wrapper_untraced  glibc's clone() with CLONE_UNTRACED
 *   clone3                  clone3 with no flags (a plain fork)
 *   clone3_untraced         clone3 with CLONE_UNTRACED
 *   unshare_net             unshare(CLONE_NEWNET), in a child
 *   unshare_user_net        unshare(CLONE_NEWUSER|CLONE_NEWNET), in a child (what an
 *                           unprivileged user can do natively)
 *   clone_newnet            syscall(SYS_clone, CLONE_NEWNET|SIGCHLD)
 *   clone_newuser_newnet    syscall(SYS_clone, CLONE_NEWUSER|CLONE_NEWNET|SIGCHLD) */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "escape.h"

#ifndef __x86_64__
#error "netvm serves the x86_64 system-call ABI"
#endif

/* Prints the outcome of a call that made a child (reaped here) or failed. */
static void report_child(const char *what, long ret)
{
    if (ret < 0) {
        printf("%s: %s\n", what, ename(errno));
    } else {
        waitpid((pid_t)ret, NULL, __WALL);
        printf("%s: ok\n", what);
    }
    fflush(stdout);
}

/* Runs `flags` through unshare(2) in a child, which reports by its exit status. */
static void unshare_in_child(const char *what, int flags)
{
    pid_t pid = fork();
    if (pid < 0) {
        printf("%s: fork failed: %s\n", what, ename(errno));
        exit(1);
    }
    if (pid == 0)
        _exit(unshare(flags) == 0 ? 0 : errno);
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
        printf("%s: the child did not exit\n", what);
        exit(1);
    }
    printf("%s: %s\n", what, WEXITSTATUS(status) == 0 ? "ok" : ename(WEXITSTATUS(status)));
    fflush(stdout);
}

/* A fork-like raw clone: the child has its own memory and leaves at once. */
static long raw_clone(unsigned long flags)
{
    long ret = syscall(SYS_clone, flags, 0L, 0L, 0L, 0L);
    if (ret == 0)
        _exit(0);
    return ret;
}

/* clone(CLONE_VM|CLONE_VFORK|...) on the parent's own stack: the child must not
 * touch memory, so it exits from the same assembly block. */
static long raw_vfork_clone(unsigned long flags)
{
    long ret;
    register long r10 __asm__("r10") = 0;
    register long r8 __asm__("r8") = 0;
    __asm__ volatile("syscall\n\t"
                     "test %%rax, %%rax\n\t"
                     "jnz 1f\n\t"
                     "mov $60, %%eax\n\t" /* exit(0) */
                     "xor %%edi, %%edi\n\t"
                     "syscall\n"
                     "1:"
                     : "=a"(ret)
                     : "0"((long)SYS_clone), "D"(flags), "S"(0L), "d"(0L), "r"(r10), "r"(r8)
                     : "rcx", "r11", "memory");
    if (ret < 0) {
        errno = (int)-ret;
        return -1;
    }
    return ret;
}

static int leave(void *arg)
{
    (void)arg;
    return 0;
}

static long raw_clone3(unsigned long long flags)
{
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = flags;
    args.exit_signal = SIGCHLD;
    long ret = syscall(SYS_clone3, &args, sizeof args);
    if (ret == 0)
        _exit(0);
    return ret;
}

int main(void)
{
    static char stack[64 * 1024] __attribute__((aligned(16)));
    fflush(stdout);
    report_child("clone_untraced", raw_clone(CLONE_UNTRACED | SIGCHLD));
    report_child("clone_vfork_untraced",
                 raw_vfork_clone(CLONE_VM | CLONE_VFORK | CLONE_UNTRACED | SIGCHLD));
    report_child("clone_wrapper_untraced",
                 clone(leave, stack + sizeof stack, CLONE_UNTRACED | SIGCHLD, NULL));
    report_child("clone3", raw_clone3(0));
    report_child("clone3_untraced", raw_clone3(CLONE_UNTRACED));
    unshare_in_child("unshare_net", CLONE_NEWNET);
    unshare_in_child("unshare_user_net", CLONE_NEWUSER | CLONE_NEWNET);
    report_child("clone_newnet", raw_clone(CLONE_NEWNET | SIGCHLD));
    report_child("clone_newuser_newnet", raw_clone(CLONE_NEWUSER | CLONE_NEWNET | SIGCHLD));
    return 0;
}
