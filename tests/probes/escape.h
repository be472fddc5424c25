/* What the escape probes share: naming errno values and reporting one attempt
 * per line. Include after the system headers (with _GNU_SOURCE defined). */
#ifndef ESCAPE_H
#define ESCAPE_H

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* The errno's name (EPERM), or errnoN for one without a name. */
static const char *ename(int e)
{
    static char buf[32];
    const char *name = strerrorname_np(e);
    if (name)
        return name;
    snprintf(buf, sizeof buf, "errno%d", e);
    return buf;
}

/* "WHAT: ok", or "WHAT: ERRNO_NAME" if the call returned < 0. */
static void report(const char *what, long ret)
{
    if (ret < 0)
        printf("%s: %s\n", what, ename(errno));
    else
        printf("%s: ok\n", what);
    fflush(stdout);
}

#endif
