/* Calls io_uring_setup(2) directly and prints what it returned:
 * "fd" if it made a ring, or "errno=N" if it failed. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
    unsigned char params[120]; /* struct io_uring_params */
    memset(params, 0, sizeof params);
    long ret = syscall(SYS_io_uring_setup, 4, params);
    if (ret >= 0)
        printf("fd\n");
    else
        printf("errno=%d\n", errno);
    return 0;
}
