/* sendmmsg whose first entry names an abstract AF_UNIX address (argv[1], without
 * the leading NUL) and whose second lies on an unmapped page: the kernel sends
 * the first and stops at the second. Prints what each attempt returned. */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>

static void report(const char *what, int r) {
    printf("%s: %s\n", what, r < 0 ? strerrorname_np(errno) : "sent");
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t n = strlen(argv[1]);
    memcpy(addr.sun_path + 1, argv[1], n);
    socklen_t len = offsetof(struct sockaddr_un, sun_path) + 1 + n;
    int s = socket(AF_UNIX, SOCK_DGRAM, 0);
    char data[] = "crossed over";
    struct iovec iov = {data, sizeof data - 1};
    struct mmsghdr entry = {.msg_hdr = {.msg_name = &addr, .msg_namelen = len,
                                        .msg_iov = &iov, .msg_iovlen = 1}};
    char *pages = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(pages + 4096, 4096);
    struct mmsghdr *last = (void *)(pages + 4096 - sizeof entry);
    *last = entry;
    report("sendmmsg before an unmapped entry", sendmmsg(s, last, 2, 0) < 0 ? -1 : 0);
    return 0;
}
