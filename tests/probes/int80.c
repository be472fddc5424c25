/* Makes i386 system calls with `int $0x80` from a 64-bit program.
 *   int80 socketcall: socketcall(SYS_SOCKET, {AF_INET, SOCK_STREAM, 0}); prints
 *                     "ret=N" with the raw return value (a fd, or -errno).
 *   int80 exit N:     exit(N) through the i386 ABI; never returns. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>

static long int80(long nr, long a, long b)
{
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b) : "memory");
    return ret;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "exit") == 0) {
        int80(1 /* __NR_exit (i386) */, atoi(argv[2]), 0);
        return 99; /* the call did not end the process */
    }
    if (argc != 2 || strcmp(argv[1], "socketcall") != 0) {
        fprintf(stderr, "usage: int80 socketcall | int80 exit N\n");
        return 2;
    }
    /* The i386 ABI passes 32-bit pointers: the arguments must live below 4 GiB. */
    unsigned int *args = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    if (args == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    args[0] = AF_INET;
    args[1] = SOCK_STREAM;
    args[2] = 0;
    long ret = int80(102 /* __NR_socketcall */, 1 /* SYS_SOCKET */, (long)args);
    printf("ret=%ld\n", ret);
    return 0;
}
