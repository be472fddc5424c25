/* Which stack each kind of thread and process of a program is on, and whether
 * binds work from each: every one connects a UDP socket to 10.0.0.1 (the
 * router; an implicit bind) and binds a TCP socket explicitly, then prints
 * "WHO: SOURCE-ADDRESS bind=ok|ERRNO".
 *
 *   review_speed_lineage
 *
 * WHO: main, thread, thread-of-thread, fork-from-thread, clone-parent,
 * vfork, clone-files (clone(CLONE_FILES) without CLONE_THREAD, binding a socket
 * its parent made: the parent prints that socket's port), thread-creator-gone
 * (a thread whose creating thread exited at once). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void probe(const char *who)
{
    char line[200];
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9)};
    inet_pton(AF_INET, "10.0.0.1", &to.sin_addr);
    struct sockaddr_in me;
    socklen_t len = sizeof me;
    char source[64] = "?";
    if (connect(u, (struct sockaddr *)&to, sizeof to) != 0)
        snprintf(source, sizeof source, "connect-%s", strerrorname_np(errno));
    else if (getsockname(u, (struct sockaddr *)&me, &len) == 0)
        inet_ntop(AF_INET, &me.sin_addr, source, sizeof source);
    int t = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in any = {.sin_family = AF_INET};
    const char *bound = bind(t, (struct sockaddr *)&any, sizeof any) == 0 ? "ok" : strerrorname_np(errno);
    snprintf(line, sizeof line, "%s: %s bind=%s\n", who, source, bound);
    write(1, line, strlen(line));
    close(u);
    close(t);
}

static void *inner(void *arg) { probe(arg); return NULL; }

static void *outer(void *arg)
{
    (void)arg;
    probe("thread");
    pthread_t t;
    pthread_create(&t, NULL, inner, "thread-of-thread");
    pthread_join(t, NULL);
    pid_t p = fork();
    if (p == 0) {
        probe("fork-from-thread");
        _exit(0);
    }
    waitpid(p, NULL, 0);
    return NULL;
}

static void *short_lived(void *arg)
{
    (void)arg;
    pthread_t t;
    pthread_create(&t, NULL, inner, "thread-creator-gone");
    pthread_detach(t);
    return NULL; /* exits at once */
}

static int shared_fd = -1;
static char stack_a[256 * 1024], stack_b[256 * 1024];

static int clone_parent_child(void *arg) { probe(arg); return 0; }

static int clone_files_child(void *arg)
{
    (void)arg;
    struct sockaddr_in any = {.sin_family = AF_INET};
    const char *bound = bind(shared_fd, (struct sockaddr *)&any, sizeof any) == 0 ? "ok" : strerrorname_np(errno);
    char line[100];
    snprintf(line, sizeof line, "clone-files-child: bind=%s\n", bound);
    write(1, line, strlen(line));
    return 0;
}

int main(void)
{
    probe("main");
    pthread_t t;
    pthread_create(&t, NULL, outer, NULL);
    pthread_join(t, NULL);
    pthread_create(&t, NULL, short_lived, NULL);
    pthread_join(t, NULL);
    usleep(300 * 1000);

    /* clone(CLONE_PARENT): the child is our sibling (our parent's child). */
    pid_t p = clone(clone_parent_child, stack_a + sizeof stack_a, CLONE_PARENT, "clone-parent");
    if (p < 0)
        printf("clone-parent: clone %s\n", strerrorname_np(errno));
    usleep(300 * 1000); /* not ours to wait for */

    p = vfork();
    if (p == 0) {
        probe("vfork");
        _exit(0);
    }
    waitpid(p, NULL, 0);

    shared_fd = socket(AF_INET, SOCK_STREAM, 0);
    p = clone(clone_files_child, stack_b + sizeof stack_b, CLONE_FILES | SIGCHLD, NULL);
    waitpid(p, NULL, 0);
    struct sockaddr_in me;
    socklen_t len = sizeof me;
    getsockname(shared_fd, (struct sockaddr *)&me, &len);
    printf("clone-files: parent sees port %s\n", me.sin_port ? "nonzero" : "0");
    fflush(stdout);
    return 0;
}
