#include "CEmulator.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>

int64_t ws_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t ws_realtime_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

// setns(2) is declared only under _GNU_SOURCE; call it by number.
int ws_enter_netns(int fd) {
    return syscall(SYS_setns, fd, 0x40000000 /* CLONE_NEWNET */) == 0 ? 0 : -errno;
}

int ws_packet_open(int ifindex, int buffer) {
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (fd < 0) return -errno;
    // Frames we send on an interface would otherwise come back to us as
    // PACKET_OUTGOING and be forwarded again (a loop). Kernels before 4.20
    // lack the option; the receive path also checks sll_pkttype.
    int one = 1;
    (void)setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
    // The arrival time of each frame: the loop may wake after it.
    (void)setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
    if (buffer > 0) {
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buffer, sizeof buffer) != 0)
            (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buffer, sizeof buffer) != 0)
            (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
    }
    struct sockaddr_ll addr;
    memset(&addr, 0, sizeof addr);
    addr.sll_family = AF_PACKET;
    addr.sll_protocol = htons(ETH_P_ALL);
    addr.sll_ifindex = ifindex;
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

// struct mmsghdr and recvmmsg(2) are declared only under _GNU_SOURCE; this is
// the kernel's layout, and the call goes by number.
struct ws_mmsghdr {
    struct msghdr msg_hdr;
    unsigned int msg_len;
};

enum { WS_MAX_BATCH = 64 };

typedef union {
    char buf[CMSG_SPACE(sizeof(struct timespec))];
    struct cmsghdr align;
} ws_stamp_control;

int ws_packet_receive_batch(int fd, uint8_t *buffers, int stride, int count, int *lengths, int64_t *stamps) {
    if (count > WS_MAX_BATCH) count = WS_MAX_BATCH;
    struct ws_mmsghdr msgs[WS_MAX_BATCH];
    ws_stamp_control control[WS_MAX_BATCH];
    struct iovec iov[WS_MAX_BATCH];
    struct sockaddr_ll from[WS_MAX_BATCH];
    memset(msgs, 0, sizeof(msgs[0]) * count);
    for (int i = 0; i < count; i++) {
        iov[i].iov_base = buffers + (size_t)i * stride;
        iov[i].iov_len = stride;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &from[i];
        msgs[i].msg_hdr.msg_namelen = sizeof from[i];
        msgs[i].msg_hdr.msg_control = control[i].buf;
        msgs[i].msg_hdr.msg_controllen = sizeof control[i].buf;
    }
    int n = (int)syscall(SYS_recvmmsg, fd, msgs, count, MSG_DONTWAIT, NULL);
    if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        int truncated = (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
        lengths[i] = (from[i].sll_pkttype == PACKET_OUTGOING || truncated) ? 0 : (int)msgs[i].msg_len;
        stamps[i] = 0;
        struct msghdr *m = &msgs[i].msg_hdr;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
                struct timespec ts;
                memcpy(&ts, CMSG_DATA(c), sizeof ts);
                stamps[i] = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
            }
        }
    }
    return n;
}

int ws_packet_send(int fd, const uint8_t *frame, int length) {
    ssize_t n = send(fd, frame, (size_t)length, MSG_DONTWAIT);
    return n == length ? 0 : (n < 0 ? -errno : -EMSGSIZE);
}

int ws_packet_tap_open(int ifindex, int timeout_ms) {
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (fd < 0) return -errno;
    int one = 1, buffer = 8 << 20;
    (void)setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buffer, sizeof buffer) != 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_ll addr;
    memset(&addr, 0, sizeof addr);
    addr.sll_family = AF_PACKET;
    addr.sll_protocol = htons(ETH_P_ALL);
    addr.sll_ifindex = ifindex;
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int ws_packet_tap_receive(int fd, uint8_t *frame, int capacity, int *outgoing, int64_t *stamp_ns) {
    struct sockaddr_ll from;
    char control[256];
    struct iovec iov = { frame, (size_t)capacity };
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_name = &from; m.msg_namelen = sizeof from;
    m.msg_iov = &iov; m.msg_iovlen = 1;
    m.msg_control = control; m.msg_controllen = sizeof control;
    ssize_t n = recvmsg(fd, &m, 0);
    if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -errno;
    *outgoing = from.sll_pkttype == PACKET_OUTGOING;
    *stamp_ns = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(c), sizeof ts);
            *stamp_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
        }
    }
    return (int)n;
}

int ws_epoll_create(void) {
    int fd = epoll_create1(EPOLL_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int ws_epoll_add(int epfd, int fd, uint64_t token) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.u64 = token;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

int ws_epoll_wait(int epfd, uint64_t *tokens, int max, int timeout_ms) {
    struct epoll_event evs[64];
    if (max > 64) max = 64;
    int n = epoll_wait(epfd, evs, max, timeout_ms);
    if (n < 0) return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) tokens[i] = evs[i].data.u64;
    return n;
}

int ws_timer_create(void) {
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int ws_timer_arm(int fd, int64_t at_ns) {
    struct itimerspec spec;
    memset(&spec, 0, sizeof spec);
    if (at_ns > 0) {
        spec.it_value.tv_sec = at_ns / 1000000000;
        spec.it_value.tv_nsec = at_ns % 1000000000;
    }
    return timerfd_settime(fd, TFD_TIMER_ABSTIME, &spec, NULL) == 0 ? 0 : -errno;
}

void ws_drain(int fd) {
    uint64_t value;
    (void)read(fd, &value, sizeof value);
}

void ws_sleep_until(int64_t at_ns) {
    struct timespec ts = { at_ns / 1000000000, at_ns % 1000000000 };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
}

int ws_event_create(void) {
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

void ws_event_signal(int fd) {
    uint64_t one = 1;
    (void)write(fd, &one, sizeof one);
}

// The legacy ethtool commands of <linux/ethtool.h> (ETHTOOL_STXCSUM,
// ETHTOOL_STSO, ETHTOOL_SGSO) with their value structure.
struct ws_ethtool_value { uint32_t cmd; uint32_t data; };

static int ws_ethtool_set(int sock, const char *name, uint32_t cmd, uint32_t value) {
    struct ifreq ifr;
    struct ws_ethtool_value ev = { cmd, value };
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    ifr.ifr_data = (char *)&ev;
    return ioctl(sock, SIOCETHTOOL, &ifr) == 0 ? 0 : -errno;
}

int ws_disable_offloads(const char *name) {
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) return -errno;
    int rc = ws_ethtool_set(sock, name, 0x00000017 /* ETHTOOL_STXCSUM */, 0);
    if (rc == 0) rc = ws_ethtool_set(sock, name, 0x0000001f /* ETHTOOL_STSO */, 0);
    if (rc == 0) rc = ws_ethtool_set(sock, name, 0x00000024 /* ETHTOOL_SGSO */, 0);
    close(sock);
    return rc;
}

int ws_precise_thread(int priority) {
    (void)prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    struct sched_param param;
    memset(&param, 0, sizeof param);
    param.sched_priority = priority;
    int rc = pthread_setschedparam(pthread_self(), SCHED_FIFO, &param);
    return -rc;
}

static void ws_timeout(int fd, int option, int timeout_ms) {
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    (void)setsockopt(fd, SOL_SOCKET, option, &tv, sizeof tv);
}

static struct sockaddr_in ws_inet(uint32_t address, uint16_t port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = address;
    a.sin_port = htons(port);
    return a;
}

int ws_udp_open(uint32_t address, uint16_t port, int timeout_ms) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1, buffer = 8 << 20;
    (void)setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buffer, sizeof buffer);
    ws_timeout(fd, SO_RCVTIMEO, timeout_ms);
    struct sockaddr_in a = ws_inet(address, port);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) { int e = errno; close(fd); return -e; }
    return fd;
}

int ws_udp_send(int fd, uint32_t address, uint16_t port, const uint8_t *data, int length) {
    struct sockaddr_in a = ws_inet(address, port);
    ssize_t n = sendto(fd, data, (size_t)length, 0, (struct sockaddr *)&a, sizeof a);
    return n < 0 ? -errno : (int)n;
}

int ws_udp_receive(int fd, uint8_t *data, int capacity, int64_t *stamp_ns) {
    struct iovec iov = { data, (size_t)capacity };
    union { char buf[CMSG_SPACE(sizeof(struct timespec))]; struct cmsghdr align; } control;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    ssize_t n = recvmsg(fd, &msg, 0);
    if (n < 0) return -errno;
    *stamp_ns = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(c), sizeof ts);
            *stamp_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
        }
    }
    return (int)n;
}

int ws_tcp_listen(uint32_t address, uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = ws_inet(address, port);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 16) != 0) { int e = errno; close(fd); return -e; }
    return fd;
}

int ws_tcp_accept(int fd, int timeout_ms) {
    ws_timeout(fd, SO_RCVTIMEO, timeout_ms);
    int c = accept(fd, NULL, NULL);
    if (c < 0) return -errno;
    ws_timeout(c, SO_RCVTIMEO, timeout_ms);
    return c;
}

int ws_tcp_connect(uint32_t source, uint32_t address, uint16_t port, int timeout_ms) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    ws_timeout(fd, SO_SNDTIMEO, timeout_ms);
    struct sockaddr_in local = ws_inet(source, 0), remote = ws_inet(address, port);
    if (bind(fd, (struct sockaddr *)&local, sizeof local) != 0 ||
        connect(fd, (struct sockaddr *)&remote, sizeof remote) != 0) { int e = errno; close(fd); return -e; }
    return fd;
}
