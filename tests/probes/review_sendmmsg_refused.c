/* review: a datagram to a port of the host itself nobody bound: sendmsg gets
 * the port unreachable (IP_RECVERR queues it), sendmmsg (argument) does not. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
int main(int argc,char**argv){
  int mmsg = argc>1;
  int u=socket(AF_INET,SOCK_DGRAM,0), one=1;
  setsockopt(u,IPPROTO_IP,IP_RECVERR,&one,4);
  struct sockaddr_in to={.sin_family=AF_INET,.sin_port=htons(9),.sin_addr.s_addr=inet_addr("10.0.0.2")};
  char buf[4]="abc"; struct iovec iov={buf,3};
  struct mmsghdr m={0}; m.msg_hdr.msg_name=&to; m.msg_hdr.msg_namelen=sizeof to; m.msg_hdr.msg_iov=&iov; m.msg_hdr.msg_iovlen=1;
  int r = mmsg ? sendmmsg(u,&m,1,0) : sendmsg(u,&m.msg_hdr,0);
  printf("%s: %d\n", mmsg?"sendmmsg":"sendmsg", r);
  usleep(300000);
  char cb[512]; struct msghdr e={0}; char d[64]; struct iovec di={d,64}; e.msg_iov=&di; e.msg_iovlen=1; e.msg_control=cb; e.msg_controllen=sizeof cb;
  r=recvmsg(u,&e,MSG_ERRQUEUE|MSG_DONTWAIT); printf("errqueue: %d %s\n",r,r<0?strerrorname_np(errno):"");
}
