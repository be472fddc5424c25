/* Makes every trapped socket call with little stack left, and checks that no byte
 * below the stack changed.
 *
 * Two contexts: a thread whose stack is 16 KiB, and a SIGUSR1 handler on a 16 KiB
 * sigaltstack. Each stack is the top of one mapping whose 256 KiB below it is a
 * canary (a fixed byte pattern). In each context the calls run with about 256
 * bytes of stack left: the thread (or handler) first takes the rest with alloca.
 * The calls go through syscall(2), so no libc frame is added below the caller's.
 *
 * The calls, on 127.0.0.1 with OS-chosen ports: socket, bind, getsockname, listen,
 * connect, accept4 (TCP); socket, bind, getsockname (three UDP sockets); sendto,
 * sendmsg, sendto again; sendmmsg of 1024 messages, each naming a second receiver
 * (MSG_DONTWAIT: natively UDP sends all 1024, dropping what the receiver cannot
 * hold; a send that blocks would hang the probe rather than show what differs);
 * recvfrom, recvmsg, recvmmsg (1024 entries, MSG_WAITFORONE) each with room for
 * the sender's address. Prints "CONTEXT CALL: RESULT" (the count, "ok" for a new
 * fd, or the errno name), "CONTEXT CALL_name: matches|differs" for the addresses
 * reported, and "CONTEXT canary: intact" or "CONTEXT canary: N bytes changed". */
#define _GNU_SOURCE
#include <alloca.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define STACK (16 * 1024)
#define CANARY (256 * 1024)
#define LEFT 256
#define VLEN 1024
#define PATTERN 0xa5
#define MAX_RESULTS 40

/* What one context's calls gave. */
struct result {
    const char *call;
    long ret;
    int err;
    int is_fd; /* print "ok" for a value >= 0 */
};

static struct result results[2][MAX_RESULTS];
static int counts[2];
static int context; /* 0: thread, 1: handler */

/* Everything the calls use lives here, away from the small stacks. */
static struct sockaddr_in listen_addr, rx1_addr, rx2_addr, tx_addr, client_addr, peer_addr;
static struct sockaddr_in from[VLEN];
static socklen_t len;
static char byte = 'x', inbox[VLEN];
static struct iovec iov[VLEN];
static struct msghdr msg;
static struct mmsghdr mmsg[VLEN];
static int fds[8];
static int names_match[2][3]; /* recvfrom, recvmsg, recvmmsg */

static void record(const char *call, long ret, int is_fd)
{
    struct result *r = &results[context][counts[context]++];
    r->call = call;
    r->ret = ret;
    r->err = ret < 0 ? errno : 0;
    r->is_fd = is_fd;
}

static int same(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
    return a->sin_family == b->sin_family && a->sin_port == b->sin_port &&
           a->sin_addr.s_addr == b->sin_addr.s_addr;
}

static long udp_bound(struct sockaddr_in *addr)
{
    long fd = syscall(SYS_socket, AF_INET, SOCK_DGRAM, 0);
    record("udp_socket", fd, 1);
    *addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    record("udp_bind", syscall(SYS_bind, fd, addr, sizeof *addr), 0);
    len = sizeof *addr;
    record("udp_getsockname", syscall(SYS_getsockname, fd, addr, &len), 0);
    return fd;
}

static void prepare_msg(struct msghdr *m, int i, struct sockaddr_in *name)
{
    iov[i] = (struct iovec){i ? &inbox[i] : &byte, 1};
    *m = (struct msghdr){.msg_name = name, .msg_namelen = sizeof *name, .msg_iov = &iov[i],
                         .msg_iovlen = 1};
}

/* The calls, with whatever stack the caller left. */
__attribute__((noinline)) static void calls(void)
{
    long listener = syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
    record("tcp_socket", listener, 1);
    listen_addr = (struct sockaddr_in){.sin_family = AF_INET,
                                       .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    record("tcp_bind", syscall(SYS_bind, listener, &listen_addr, sizeof listen_addr), 0);
    len = sizeof listen_addr;
    record("tcp_getsockname", syscall(SYS_getsockname, listener, &listen_addr, &len), 0);
    record("listen", syscall(SYS_listen, listener, 8), 0);
    long client = syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
    record("tcp_socket", client, 1);
    record("connect", syscall(SYS_connect, client, &listen_addr, sizeof listen_addr), 0);
    len = sizeof peer_addr;
    long accepted = syscall(SYS_accept4, listener, &peer_addr, &len, 0);
    record("accept4", accepted, 1);
    len = sizeof client_addr;
    syscall(SYS_getsockname, client, &client_addr, &len);
    record(same(&peer_addr, &client_addr) ? "accept4_name: matches" : "accept4_name: differs",
           0, 0);

    long rx1 = udp_bound(&rx1_addr), rx2 = udp_bound(&rx2_addr), tx = udp_bound(&tx_addr);
    record("sendto", syscall(SYS_sendto, tx, &byte, 1, 0, &rx2_addr, sizeof rx2_addr), 0);
    prepare_msg(&msg, 0, &rx2_addr);
    record("sendmsg", syscall(SYS_sendmsg, tx, &msg, 0), 0);
    record("sendto", syscall(SYS_sendto, tx, &byte, 1, 0, &rx2_addr, sizeof rx2_addr), 0);
    for (int i = 0; i < VLEN; i++)
        prepare_msg(&mmsg[i].msg_hdr, 0, &rx1_addr);
    record("sendmmsg", syscall(SYS_sendmmsg, tx, mmsg, VLEN, MSG_DONTWAIT), 0);

    memset(from, 0, sizeof from);
    len = sizeof from[0];
    record("recvfrom", syscall(SYS_recvfrom, rx2, inbox, 1, 0, &from[0], &len), 0);
    names_match[context][0] = same(&from[0], &tx_addr);
    memset(from, 0, sizeof from);
    prepare_msg(&msg, 1, &from[0]);
    record("recvmsg", syscall(SYS_recvmsg, rx2, &msg, 0), 0);
    names_match[context][1] = same(&from[0], &tx_addr);
    memset(from, 0, sizeof from);
    for (int i = 0; i < VLEN; i++)
        prepare_msg(&mmsg[i].msg_hdr, i, &from[i]);
    record("recvmmsg", syscall(SYS_recvmmsg, rx2, mmsg, VLEN, MSG_WAITFORONE, NULL), 0);
    names_match[context][2] = same(&from[0], &tx_addr);

    fds[0] = listener, fds[1] = client, fds[2] = accepted;
    fds[3] = rx1, fds[4] = rx2, fds[5] = tx;
}

/* Takes all but LEFT bytes of the stack that starts at `bottom`, then calls. */
__attribute__((noinline)) static void with_little_left(uintptr_t bottom)
{
    char here;
    size_t room = (uintptr_t)&here - bottom;
    volatile char *taken = alloca(room - LEFT);
    taken[0] = 0;
    calls();
    __asm__ volatile("" : : "r"(taken) : "memory");
}

/* A stack of STACK bytes above a canary of CANARY bytes; returns the canary. */
static unsigned char *stack_over_canary(void)
{
    unsigned char *area = mmap(NULL, CANARY + STACK, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    memset(area, PATTERN, CANARY);
    return area;
}

static long changed(const unsigned char *canary)
{
    long n = 0;
    for (long i = 0; i < CANARY; i++)
        n += canary[i] != PATTERN;
    return n;
}

static unsigned char *thread_area, *alt_area;

static void *thread_main(void *arg)
{
    (void)arg;
    with_little_left((uintptr_t)(thread_area + CANARY));
    return NULL;
}

static void handler(int sig)
{
    (void)sig;
    with_little_left((uintptr_t)(alt_area + CANARY));
}

static void print(const char *name, int c)
{
    for (int i = 0; i < counts[c]; i++) {
        struct result *r = &results[c][i];
        if (strchr(r->call, ':'))
            printf("%s %s\n", name, r->call);
        else if (r->ret < 0)
            printf("%s %s: %s\n", name, r->call, strerrorname_np(r->err));
        else if (r->is_fd)
            printf("%s %s: ok\n", name, r->call);
        else
            printf("%s %s: %ld\n", name, r->call, r->ret);
    }
    const char *calls[] = {"recvfrom", "recvmsg", "recvmmsg"};
    for (int i = 0; i < 3; i++)
        printf("%s %s_name: %s\n", name, calls[i], names_match[c][i] ? "matches" : "differs");
}

static void close_all(void)
{
    for (int i = 0; i < 6; i++)
        close(fds[i]);
}

int main(void)
{
    /* Resolve the lazily bound functions while the stack is large. */
    syscall(SYS_getpid);
    errno = 0;

    thread_area = stack_over_canary();
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstack(&attr, thread_area + CANARY, STACK);
    pthread_t thread;
    if (pthread_create(&thread, &attr, thread_main, NULL) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        return 1;
    }
    pthread_join(thread, NULL);
    close_all();

    context = 1;
    alt_area = stack_over_canary();
    stack_t alt = {.ss_sp = alt_area + CANARY, .ss_size = STACK};
    struct sigaction action = {.sa_handler = handler, .sa_flags = SA_ONSTACK};
    if (sigaltstack(&alt, NULL) != 0 || sigaction(SIGUSR1, &action, NULL) != 0) {
        perror("sigaltstack");
        return 1;
    }
    raise(SIGUSR1);
    close_all();

    print("thread", 0);
    long n = changed(thread_area);
    n ? printf("thread canary: %ld bytes changed\n", n) : printf("thread canary: intact\n");
    print("handler", 1);
    n = changed(alt_area);
    n ? printf("handler canary: %ld bytes changed\n", n) : printf("handler canary: intact\n");
    return 0;
}
