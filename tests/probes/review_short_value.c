/*
 * review_short_value: setsockopt of an int option whose value ends where
 * the program's memory does, with a length longer than the int: Linux reads
 * the int alone and succeeds; a value read whole would fault. Also a value
 * that starts on the unreadable page (EFAULT either way).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void)
{
    long page = sysconf(_SC_PAGESIZE);
    char *map = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mprotect(map + page, page, PROT_NONE);
    int *last = (int *)(map + page - sizeof(int));
    *last = 1;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    /* IP_BIND_ADDRESS_NO_PORT (24): an int option netvm does not model. */
    for (socklen_t len = 4; len <= 4096; len *= 8) {
        int rc = setsockopt(fd, IPPROTO_IP, 24, last, len);
        printf("int at the end, length %u: %d %s\n", len, rc, rc ? strerrorname_np(errno) : "");
    }
    int rc = setsockopt(fd, IPPROTO_IP, 24, map + page, 4);
    printf("on the unreadable page: %d %s\n", rc, rc ? strerrorname_np(errno) : "");
    return 0;
}
