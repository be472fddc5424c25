/* Probes of socket()/socketpair() as seccomp notifications (review_notify.rs).
 * Modes:
 *   table            results, errno, fd flags and owners of many socket calls
 *   emfile N         RLIMIT_NOFILE exhausted: N tries of each family, then one freed
 *   owner            fstat uid/gid of new sockets of each family vs AF_UNIX
 *   signals SECS RESTART [netlink]  SIGALRM every INTERVAL_US (default 50) us
 *                    while making sockets (AF_INET, or alternately AF_NETLINK)
 *   threads SECS     threads make sockets while others dup2 over / close numbers
 *   flood N          N AF_INET socket()+close() (for the supervisor's counts)
 *   race SECS        10 threads make AF_INET sockets and getsockname them while 2
 *                    others close and dup2 over fd numbers: prints the families seen
 *   killer ROUNDS    children whose 4 threads make sockets are SIGKILLed at random
 *   forkkill ROUNDS  the same, the threads forking instead
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>

static const char *ename(int e) {
    switch (e) {
    case EINVAL: return "EINVAL"; case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT"; case ESOCKTNOSUPPORT: return "ESOCKTNOSUPPORT";
    case EOPNOTSUPP: return "EOPNOTSUPP"; case EFAULT: return "EFAULT"; case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE"; case EPERM: return "EPERM"; case EACCES: return "EACCES";
    case EPROTOTYPE: return "EPROTOTYPE"; case EINTR: return "EINTR"; case ENOBUFS: return "ENOBUFS";
    case EBADF: return "EBADF";
    default: { static char b[32]; snprintf(b, sizeof b, "E%d", e); return b; }
    }
}

static void describe(const char *what, long r) {
    if (r < 0) { printf("%s = -1 %s\n", what, ename(errno)); return; }
    int fd = (int)r;
    struct stat st;
    fstat(fd, &st);
    int fl = fcntl(fd, F_GETFL), fdfl = fcntl(fd, F_GETFD);
    int ty = -1, dom = -1, proto = -1; socklen_t l = sizeof ty;
    getsockopt(fd, SOL_SOCKET, SO_TYPE, &ty, &l); l = sizeof dom;
    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l); l = sizeof proto;
    getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &l);
    printf("%s = fd%d nonblock=%d cloexec=%d rdwr=%d type=%d domain=%d proto=%d uid=%u gid=%u mode=%o\n",
           what, fd, !!(fl & O_NONBLOCK), !!(fdfl & FD_CLOEXEC), (fl & O_ACCMODE) == O_RDWR,
           ty, dom, proto, st.st_uid, st.st_gid, st.st_mode);
    close(fd);
}

static long raw_socket(long d, long t, long p) { return syscall(SYS_socket, d, t, p); }

static void table(void) {
    struct { long d, t, p; const char *n; } c[] = {
        {AF_INET, SOCK_STREAM, 0, "inet stream"},
        {AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0, "inet stream nonblock"},
        {AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0, "inet stream cloexec"},
        {AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, "inet dgram nb|cx"},
        {AF_INET6, SOCK_DGRAM, IPPROTO_UDP, "inet6 udp"},
        {AF_INET, SOCK_STREAM | 0x1000, 0, "inet stream badflag"},
        {AF_INET, SOCK_STREAM | O_APPEND, 0, "inet O_APPEND"},
        {AF_INET, 0, 0, "inet type0"},
        {AF_INET, 11, 0, "inet type11"},
        {AF_INET, 15, 0, "inet type15"},
        {AF_INET, SOCK_STREAM, IPPROTO_UDP, "inet stream udp"},
        {AF_INET, SOCK_DGRAM, IPPROTO_TCP, "inet dgram tcp"},
        {AF_INET, SOCK_STREAM, 999, "inet stream 999"},
        {AF_INET, SOCK_STREAM, -1, "inet stream -1"},
        {AF_INET, SOCK_SEQPACKET, 0, "inet seqpacket"},
        {AF_INET, SOCK_STREAM, IPPROTO_MPTCP, "inet mptcp"},
        {AF_INET | (1L << 32), SOCK_STREAM, 0, "inet hi-bits domain"},
        {AF_UNIX | (1L << 32), SOCK_STREAM, 0, "unix hi-bits domain"},
        {AF_INET, SOCK_STREAM | (1L << 32), 0, "inet hi-bits type"},
        {AF_NETLINK, SOCK_RAW, NETLINK_ROUTE, "netlink route"},
        {AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE, "netlink dgram nb|cx"},
        {AF_NETLINK, SOCK_STREAM, NETLINK_ROUTE, "netlink stream"},
        {AF_NETLINK, SOCK_RAW | 0x1000, NETLINK_ROUTE, "netlink badflag"},
        {AF_NETLINK, SOCK_RAW, 99, "netlink proto99"},
        {AF_NETLINK, SOCK_RAW, NETLINK_SOCK_DIAG, "netlink diag"},
        {AF_MAX, SOCK_STREAM, 0, "AF_MAX"},
        {-1, SOCK_STREAM, 0, "family -1"},
        {AF_APPLETALK, SOCK_DGRAM, 0, "appletalk"},
    };
    for (unsigned i = 0; i < sizeof c / sizeof c[0]; i++)
        describe(c[i].n, raw_socket(c[i].d, c[i].t, c[i].p));
    int sv[2] = {-7, -7};
    long r = syscall(SYS_socketpair, AF_INET, SOCK_STREAM, 0, sv);
    printf("socketpair inet = %ld %s sv=%d,%d\n", r, r < 0 ? ename(errno) : "", sv[0], sv[1]);
    sv[0] = sv[1] = -7;
    r = syscall(SYS_socketpair, AF_INET6, SOCK_DGRAM, 0, sv);
    printf("socketpair inet6 = %ld %s sv=%d,%d\n", r, r < 0 ? ename(errno) : "", sv[0], sv[1]);
    r = syscall(SYS_socketpair, AF_INET, SOCK_STREAM, 0, (void *)8);
    printf("socketpair inet bad vector = %ld %s\n", r, r < 0 ? ename(errno) : "");
    r = syscall(SYS_socketpair, AF_INET, SOCK_STREAM | 0x1000, 0, (void *)8);
    printf("socketpair inet badflag bad vector = %ld %s\n", r, r < 0 ? ename(errno) : "");
    void *ro = mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    r = syscall(SYS_socketpair, AF_INET, SOCK_STREAM, 0, ro);
    printf("socketpair inet readonly vector = %ld %s\n", r, r < 0 ? ename(errno) : "");
    sv[0] = sv[1] = -7;
    r = syscall(SYS_socketpair, AF_NETLINK, SOCK_RAW, 0, sv);
    printf("socketpair netlink = %ld %s sv=%d,%d\n", r, r < 0 ? ename(errno) : "", sv[0], sv[1]);
    sv[0] = sv[1] = -7;
    r = syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, sv);
    printf("socketpair unix = %ld %s\n", r, r < 0 ? ename(errno) : "");
    if (r == 0) { close(sv[0]); close(sv[1]); }
}

static int fill_fds(int limit) {
    struct rlimit rl = {limit, limit};
    if (setrlimit(RLIMIT_NOFILE, &rl)) { perror("setrlimit"); exit(1); }
    int last = -1, fd;
    while ((fd = open("/dev/null", O_RDONLY)) >= 0) last = fd;
    return last;
}

static void emfile(int n) {
    int last = fill_fds(64);
    struct { long d, t, p; const char *name; } c[] = {
        {AF_INET, SOCK_STREAM, 0, "inet stream"},
        {AF_INET6, SOCK_DGRAM, 0, "inet6 dgram"},
        {AF_NETLINK, SOCK_RAW, NETLINK_ROUTE, "netlink"},
        {AF_INET, SOCK_STREAM, 999, "inet bad proto"},
        {AF_INET, SOCK_STREAM | 0x1000, 0, "inet bad flag"},
        {AF_APPLETALK, SOCK_DGRAM, 0, "appletalk"},
    };
    for (unsigned i = 0; i < sizeof c / sizeof c[0]; i++) {
        int counts[200] = {0};
        for (int k = 0; k < n; k++) {
            long r = raw_socket(c[i].d, c[i].t, c[i].p);
            int e = r < 0 ? errno : 0;
            if (r >= 0) close(r);
            counts[e < 200 ? e : 199]++;
        }
        printf("%s:", c[i].name);
        for (int e = 0; e < 200; e++)
            if (counts[e]) printf(" %s=%d", e ? ename(e) : "ok", counts[e]);
        printf("\n");
    }
    int sv[2] = {-7, -7};
    long r = syscall(SYS_socketpair, AF_INET, SOCK_STREAM, 0, sv);
    printf("socketpair inet full = %ld %s\n", r, r < 0 ? ename(errno) : "");
    /* one free slot */
    close(last);
    for (unsigned i = 0; i < 3; i++) {
        long r = raw_socket(c[i].d, c[i].t, c[i].p);
        printf("freed one, %s = %s\n", c[i].name, r < 0 ? ename(errno) : "ok");
        if (r >= 0) close(r);
    }
    sv[0] = sv[1] = -7;
    r = syscall(SYS_socketpair, AF_INET, SOCK_STREAM, 0, sv);
    printf("socketpair inet one free = %ld %s\n", r, r < 0 ? ename(errno) : "");
}

static void owner(void) {
    describe("unix", raw_socket(AF_UNIX, SOCK_STREAM, 0));
    describe("inet", raw_socket(AF_INET, SOCK_STREAM, 0));
    describe("inet6 udp", raw_socket(AF_INET6, SOCK_DGRAM, 0));
    describe("netlink", raw_socket(AF_NETLINK, SOCK_RAW, 0));
}

static atomic_long alarms;
static void on_alarm(int s) { (void)s; alarms++; }

static long interval_us = 50;
static void signals(int secs, int restart, int netlink) {
    struct sigaction sa = {0};
    sa.sa_handler = on_alarm;
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigaction(SIGALRM, &sa, 0);
    struct itimerval it = {{0, interval_us}, {0, interval_us}};
    setitimer(ITIMER_REAL, &it, 0);
    time_t end = time(0) + secs;
    long made = 0, eintr = 0, other = 0;
    int first = 0;
    while (time(0) < end) {
        long fam = netlink && (made & 1) ? AF_NETLINK : AF_INET;
        long r = raw_socket(fam, fam == AF_INET ? SOCK_STREAM : SOCK_RAW, 0);
        if (r >= 0) { made++; close(r); }
        else if (errno == EINTR) eintr++;
        else { other++; if (!first) first = errno; }
    }
    struct itimerval off = {0};
    setitimer(ITIMER_REAL, &off, 0);
    printf("made=%ld eintr=%ld other=%ld first=%s alarms=%s\n", made, eintr, other,
           first ? ename(first) : "-", alarms > 100 ? "many" : "few");
}

static atomic_int stop_flag;
static atomic_long bad;
static void *maker(void *a) {
    (void)a;
    while (!stop_flag) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) { if (errno != EMFILE) bad++; continue; }
        int dom = -1; socklen_t l = sizeof dom;
        /* the fd we were given must be an inet socket, unless another thread dup2'd over it */
        struct sockaddr_in sin; socklen_t sl = sizeof sin;
        if (getsockname(fd, (struct sockaddr *)&sin, &sl) == 0 && sin.sin_family != AF_INET &&
            getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l) == 0 && dom == AF_INET)
            bad++;
        close(fd);
    }
    return 0;
}
static void *clobber(void *a) {
    (void)a;
    int null = open("/dev/null", O_RDONLY);
    while (!stop_flag) {
        for (int fd = 3; fd < 40; fd++) {
            if (fd == null) continue;
            if (rand() & 1) dup2(null, fd); else close(fd);
        }
    }
    return 0;
}
/* Runs 10 threads of `work` beside 2 that clobber fd numbers, for `secs` seconds. */
static void with_clobbers(void *(*work)(void *), int secs) {
    pthread_t t[12];
    for (int i = 0; i < 10; i++) pthread_create(&t[i], 0, work, 0);
    for (int i = 10; i < 12; i++) pthread_create(&t[i], 0, clobber, 0);
    sleep(secs);
    stop_flag = 1;
    for (int i = 0; i < 12; i++) pthread_join(t[i], 0);
}
static void threads(int secs) {
    with_clobbers(maker, secs);
    printf("threads done bad=%ld\n", (long)bad);
}

static void flood(long n) {
    for (long i = 0; i < n; i++) {
        int fd = socket(AF_INET, i & 1 ? SOCK_DGRAM : SOCK_STREAM, 0);
        if (fd < 0) { printf("flood: socket %ld: %s\n", i, ename(errno)); return; }
        close(fd);
    }
    printf("flood done\n");
}

static atomic_long families[64], race_errors;
static void *race_maker(void *a) {
    (void)a;
    while (!stop_flag) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) { race_errors++; continue; }
        struct sockaddr_storage ss; socklen_t l = sizeof ss;
        memset(&ss, 0, sizeof ss);
        if (getsockname(fd, (struct sockaddr *)&ss, &l) == 0)
            families[ss.ss_family < 64 ? ss.ss_family : 63]++;
        close(fd);
    }
    return 0;
}
static void race(int secs) {
    with_clobbers(race_maker, secs);
    printf("errors=%ld inet=%ld unix=%ld\n", (long)race_errors, (long)families[AF_INET],
           (long)families[AF_UNIX]);
}

static int forking;
static void *kill_maker(void *a) {
    long i = (long)a;
    for (;;) {
        if (forking) {
            pid_t c = fork();
            if (c == 0) _exit(0);
            if (c > 0) waitpid(c, 0, 0);
            continue;
        }
        int fd = i & 1 ? socket(AF_NETLINK, SOCK_RAW, 0) : socket(AF_INET, SOCK_DGRAM, 0);
        if (fd >= 0) close(fd);
    }
    return 0;
}
static void killer(int rounds) {
    srand(getpid());
    for (int r = 0; r < rounds; r++) {
        pid_t p = fork();
        if (p == 0) {
            pthread_t t;
            for (long i = 0; i < 4; i++) pthread_create(&t, 0, kill_maker, (void *)i);
            pause();
        }
        struct timespec ts = {0, (rand() % 3000) * 1000};
        nanosleep(&ts, 0);
        kill(p, SIGKILL);
        waitpid(p, 0, 0);
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    printf("killer done fd=%d\n", fd);
}

int main(int argc, char **argv) {
    setvbuf(stdout, 0, _IOLBF, 0);
    if (getenv("INTERVAL_US")) interval_us = atol(getenv("INTERVAL_US"));
    if (argc < 2) return 2;
    if (!strcmp(argv[1], "table")) table();
    else if (!strcmp(argv[1], "emfile")) emfile(argc > 2 ? atoi(argv[2]) : 100);
    else if (!strcmp(argv[1], "owner")) owner();
    else if (!strcmp(argv[1], "signals")) signals(atoi(argv[2]), atoi(argv[3]), argc > 4 && !strcmp(argv[4], "netlink"));
    else if (!strcmp(argv[1], "threads")) threads(atoi(argv[2]));
    else if (!strcmp(argv[1], "flood")) flood(atol(argv[2]));
    else if (!strcmp(argv[1], "race")) race(atoi(argv[2]));
    else if (!strcmp(argv[1], "killer")) killer(atoi(argv[2]));
    else if (!strcmp(argv[1], "forkkill")) { forking = 1; killer(atoi(argv[2])); }
    else return 2;
    return 0;
}
