/* Tries every way a program has to change the sealed half of netvm's scratch
 * window (the mapping of /memfd:netvm-window): it first makes a call that stops
 * in netvm (a bind), so that the window exists, then prints one line per attempt. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <netinet/in.h>
#include <unistd.h>

static sigjmp_buf back;
static void on_segv(int sig) { (void)sig; siglongjmp(back, 1); }

static const char *outcome(long r) { return r < 0 ? strerrorname_np(errno) : "changed"; }

int main(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in any = {.sin_family = AF_INET};
    bind(s, (struct sockaddr *)&any, sizeof any); /* a ptrace stop: the window is made */
    close(s);
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[512];
    unsigned long start = 0, end = 0;
    while (fgets(line, sizeof line, maps))
        if (strstr(line, "netvm-window")) sscanf(line, "%lx-%lx", &start, &end);
    fclose(maps);
    if (!start) { puts("window: none"); return 1; }
    puts("window: found");
    signal(SIGSEGV, on_segv);
    if (sigsetjmp(back, 1) == 0) { *(volatile char *)start = 'x'; puts("store: changed"); }
    else puts("store: SIGSEGV");
    printf("mprotect: %s\n", outcome(mprotect((void *)start, 4096, PROT_READ | PROT_WRITE)));
    printf("munmap: %s\n", outcome(munmap((void *)start, 4096)));
    void *over = mmap((void *)start, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    printf("mmap_fixed: %s\n", over == MAP_FAILED ? strerrorname_np(errno) : "changed");
    int mem = open("/proc/self/mem", O_RDWR);
    printf("proc_mem: %s\n", outcome(pwrite(mem, "x", 1, (off_t)start)));
    /* Dropping the pages of a shared mapping loses nothing: they come back from
     * the memfd as the supervisor wrote them. */
    char before = *(volatile char *)start;
    madvise((void *)start, 4096, MADV_DONTNEED);
    printf("madvise_dontneed: %s\n", *(volatile char *)start == before ? "kept" : "changed");
    return 0;
}
