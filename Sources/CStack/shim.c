#include "CStack.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>

int64_t wst_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

// setns(2) is declared only under _GNU_SOURCE; call it by number.
int wst_enter_netns(int fd) {
    return syscall(SYS_setns, fd, 0x40000000 /* CLONE_NEWNET */) == 0 ? 0 : -errno;
}

int wst_tun_open(const char *name, char *actual) {
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    memcpy(actual, ifr.ifr_name, IFNAMSIZ);
    actual[IFNAMSIZ - 1] = 0;
    return fd;
}

int wst_link_up(const char *name, int mtu) {
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    int rc = 0;
    if (mtu > 0) {
        ifr.ifr_mtu = mtu;
        if (ioctl(sock, SIOCSIFMTU, &ifr) != 0) rc = -errno;
    }
    if (rc == 0 && ioctl(sock, SIOCGIFFLAGS, &ifr) != 0) rc = -errno;
    if (rc == 0) {
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(sock, SIOCSIFFLAGS, &ifr) != 0) rc = -errno;
    }
    if (rc == 0 && ioctl(sock, SIOCGIFINDEX, &ifr) != 0) rc = -errno;
    if (rc == 0) rc = ifr.ifr_ifindex;
    close(sock);
    return rc;
}

int wst_read(int fd, uint8_t *buffer, int capacity) {
    ssize_t n = read(fd, buffer, (size_t)capacity);
    if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -errno;
    return (int)n;
}

int wst_write(int fd, const uint8_t *packet, int length) {
    ssize_t n = write(fd, packet, (size_t)length);
    if (n < 0) return -errno;
    return n == length ? 0 : -EMSGSIZE;
}

int wst_epoll_create(void) {
    int fd = epoll_create1(EPOLL_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int wst_epoll_add(int epfd, int fd, uint64_t token) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.u64 = token;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

int wst_epoll_wait(int epfd, uint64_t *tokens, int max, int timeout_ms) {
    struct epoll_event evs[16];
    if (max > 16) max = 16;
    int n = epoll_wait(epfd, evs, max, timeout_ms);
    if (n < 0) return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) tokens[i] = evs[i].data.u64;
    return n;
}

int wst_timer_create(void) {
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int wst_timer_arm(int fd, int64_t at_ns) {
    struct itimerspec spec;
    memset(&spec, 0, sizeof spec);
    if (at_ns > 0) {
        spec.it_value.tv_sec = at_ns / 1000000000;
        spec.it_value.tv_nsec = at_ns % 1000000000;
    }
    return timerfd_settime(fd, TFD_TIMER_ABSTIME, &spec, NULL) == 0 ? 0 : -errno;
}

void wst_drain(int fd) {
    uint64_t value;
    (void)read(fd, &value, sizeof value);
}

int wst_event_create(void) {
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

void wst_event_signal(int fd) {
    uint64_t one = 1;
    (void)write(fd, &one, sizeof one);
}

int wst_rtnl_open(void) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) return -errno;
    struct sockaddr_nl addr;
    memset(&addr, 0, sizeof addr);
    addr.nl_family = AF_NETLINK;
    addr.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR;
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int wst_rtnl_dump_links(int fd) {
    struct {
        struct nlmsghdr header;
        struct ifinfomsg body;
    } request;
    memset(&request, 0, sizeof request);
    request.header.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
    request.header.nlmsg_type = RTM_GETLINK;
    request.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    request.header.nlmsg_seq = 1;
    request.body.ifi_family = AF_UNSPEC;
    struct sockaddr_nl kernel;
    memset(&kernel, 0, sizeof kernel);
    kernel.nl_family = AF_NETLINK;
    ssize_t n = sendto(fd, &request, request.header.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel);
    return n < 0 ? -errno : 0;
}

int wst_rtnl_read(int fd, wst_rt_event *events, int max) {
    // Messages of one datagram must all be read: the buffer holds a dump's part.
    static __thread char buffer[65536];
    int count = 0;
    while (count < max) {
        ssize_t n = recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return count;
            // ENOBUFS: events were lost; the caller may ask for a dump again.
            return count > 0 ? count : -errno;
        }
        int length = (int)n;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buffer; NLMSG_OK(h, length) && count < max; h = NLMSG_NEXT(h, length)) {
            wst_rt_event *e = &events[count];
            memset(e, 0, sizeof *e);
            if (h->nlmsg_type == RTM_NEWLINK || h->nlmsg_type == RTM_DELLINK) {
                if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifinfomsg))) continue;
                struct ifinfomsg *info = NLMSG_DATA(h);
                e->kind = h->nlmsg_type == RTM_NEWLINK ? 1 : 2;
                e->ifindex = info->ifi_index;
                e->up = (info->ifi_flags & IFF_UP) != 0;
                e->carrier = (info->ifi_flags & 0x10000 /* IFF_LOWER_UP */) != 0;
                int attributes = (int)IFLA_PAYLOAD(h);
                for (struct rtattr *a = IFLA_RTA(info); RTA_OK(a, attributes); a = RTA_NEXT(a, attributes)) {
                    if (a->rta_type == IFLA_IFNAME) {
                        size_t l = RTA_PAYLOAD(a);
                        if (l > sizeof e->name - 1) l = sizeof e->name - 1;
                        memcpy(e->name, RTA_DATA(a), l);
                        e->name[sizeof e->name - 1] = 0;
                    }
                }
                count++;
            } else if (h->nlmsg_type == RTM_NEWADDR || h->nlmsg_type == RTM_DELADDR) {
                if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifaddrmsg))) continue;
                struct ifaddrmsg *info = NLMSG_DATA(h);
                if (info->ifa_family != AF_INET) continue;
                e->kind = h->nlmsg_type == RTM_NEWADDR ? 3 : 4;
                e->ifindex = (int)info->ifa_index;
                e->prefix_length = info->ifa_prefixlen;
                int attributes = (int)IFA_PAYLOAD(h);
                for (struct rtattr *a = IFA_RTA(info); RTA_OK(a, attributes); a = RTA_NEXT(a, attributes)) {
                    if ((a->rta_type == IFA_LOCAL || (a->rta_type == IFA_ADDRESS && e->address == 0)) && RTA_PAYLOAD(a) >= 4) {
                        memcpy(&e->address, RTA_DATA(a), 4);
                    }
                }
                count++;
            }
        }
    }
    return count;
}
