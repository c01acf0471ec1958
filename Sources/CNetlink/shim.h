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
#include <linux/if.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <sys/mount.h>

// Flags that Glibc's Swift overlay does not import as constants on every libc.
static const int wayside_CLONE_NEWNET = 0x40000000;
static const int wayside_CLONE_NEWNS = 0x00020000;

#endif
