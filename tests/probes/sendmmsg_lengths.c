/* sendmmsg's per-message results: two datagrams (3 and 5 bytes) to ADDRESS
 * PORT, once on a connected UDP socket and once with an address in each
 * header, printing what the call returned and each header's msg_len. glibc's
 * resolver sends its A and AAAA queries this way and gives up on the socket
 * unless each msg_len is the query's length. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void batch(const struct sockaddr_in *to, int connected) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (connected && connect(s, (const struct sockaddr *)to, sizeof *to) != 0) {
        perror("connect");
        exit(1);
    }
    struct iovec first = {"abc", 3}, second = {"defgh", 5};
    struct mmsghdr messages[2];
    memset(messages, 0, sizeof messages);
    messages[0].msg_hdr.msg_iov = &first;
    messages[1].msg_hdr.msg_iov = &second;
    for (int i = 0; i < 2; i++) {
        messages[i].msg_hdr.msg_iovlen = 1;
        messages[i].msg_len = 77;
        if (!connected) {
            messages[i].msg_hdr.msg_name = (void *)to;
            messages[i].msg_hdr.msg_namelen = sizeof *to;
        }
    }
    int sent = sendmmsg(s, messages, 2, MSG_NOSIGNAL);
    printf("%s sent %d lengths %u %u\n", connected ? "connected" : "addressed", sent,
           messages[0].msg_len, messages[1].msg_len);
    close(s);
}

int main(int argc, char **argv) {
    if (argc != 3)
        return 2;
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    inet_pton(AF_INET, argv[1], &to.sin_addr);
    batch(&to, 1);
    batch(&to, 0);
    return 0;
}
