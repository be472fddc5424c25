/* review: capabilities are per thread; netvm judges the shadow's option
 * calls by the thread group leader's (/proc/TGID/status). */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <pthread.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/capability.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
static void drop_net_admin(void){
  struct __user_cap_header_struct h={_LINUX_CAPABILITY_VERSION_3,0}; struct __user_cap_data_struct d[2];
  syscall(SYS_capget,&h,d); d[0].effective &= ~(1u<<CAP_NET_ADMIN); syscall(SYS_capset,&h,d);
}
static void *worker(void*a){
  drop_net_admin();
  int t=socket(AF_INET,SOCK_STREAM,0), one=1;
  int r=setsockopt(t,IPPROTO_TCP,TCP_REPAIR,&one,4);
  printf("thread without CAP_NET_ADMIN: TCP_REPAIR %d %s\n",r,r<0?strerrorname_np(errno):"");
  return 0;
}
int main(){ pthread_t th; pthread_create(&th,0,worker,0); pthread_join(th,0);
  int t=socket(AF_INET,SOCK_STREAM,0), one=1; int r=setsockopt(t,IPPROTO_TCP,TCP_REPAIR,&one,4);
  printf("main thread: TCP_REPAIR %d %s\n",r,r<0?strerrorname_np(errno):""); }
