// libnl-3 and libnl-route-3, as the Netlink module uses them.
// No _GNU_SOURCE here: defining it clashes with Swift's Glibc module.
#ifndef WAYSIDE_CNETLINK_SHIM_H
#define WAYSIDE_CNETLINK_SHIM_H

#include <netlink/netlink.h>
#include <netlink/errno.h>
#include <netlink/socket.h>
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/addr.h>
#include <netlink/route/route.h>
#include <netlink/route/nexthop.h>
#include <netlink/route/rule.h>
#include <netlink/route/tc.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/netem.h>
#include <netlink/route/qdisc/tbf.h>
#include <netlink/route/link/bridge.h>
#include <linux/rtnetlink.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

// setns(2) and unshare(2) are declared by glibc only under _GNU_SOURCE, which
// this shim must not define; call them by number instead. Both act on the
// calling thread only (its network namespace), which is why Wayside calls them
// on a dedicated thread and never from a Swift concurrency task.
static inline int wayside_setns(int fd, int nstype) { return (int)syscall(SYS_setns, fd, nstype); }
static inline int wayside_unshare(int flags) { return (int)syscall(SYS_unshare, flags); }

static const int wayside_CLONE_NEWNET = 0x40000000;
static const int wayside_CLONE_NEWNS = 0x00020000;
static const unsigned long wayside_MS_BIND = 4096;
static const unsigned long wayside_MS_REC = 16384;
static const unsigned long wayside_MS_SHARED = 1 << 20;
static const unsigned long wayside_MS_SLAVE = 1 << 19;
static const int wayside_MNT_DETACH = 2;

#endif
