// Kernel interfaces of the Swift stack's runtime that Swift's Glibc module
// does not import well: the TUN device (TUNSETIFF), interface flags and MTU
// (ioctl), epoll, timerfd, eventfd, and an rtnetlink socket that listens to
// link and IPv4 address events.
// No _GNU_SOURCE here: defining it clashes with Swift's Glibc module.
#ifndef WAYSIDE_CSTACK_H
#define WAYSIDE_CSTACK_H

#include <stdint.h>

/// CLOCK_MONOTONIC in nanoseconds.
int64_t wst_monotonic_ns(void);

/// Moves the calling thread into the network namespace open at `fd`.
int wst_enter_netns(int fd);

/// Opens (creating it if needed) the TUN device `name` (IFF_TUN | IFF_NO_PI:
/// whole IP packets, no extra header), non-blocking. On success writes the
/// kernel's name for it into `actual` (IFNAMSIZ bytes) and returns the
/// descriptor; else -errno.
int wst_tun_open(const char *name, char *actual);

/// Sets interface `name` up with the given MTU (0 keeps it); returns its
/// index or -errno.
int wst_link_up(const char *name, int mtu);

/// Reads one packet into `buffer`; returns its length, 0 if none is waiting, -errno on error.
int wst_read(int fd, uint8_t *buffer, int capacity);
/// Writes one packet; returns 0, -EAGAIN when the queue is full, or -errno.
int wst_write(int fd, const uint8_t *packet, int length);

int wst_epoll_create(void);
/// Watches `fd` for input; `token` comes back from `wst_epoll_wait`.
int wst_epoll_add(int epfd, int fd, uint64_t token);
/// Waits for input (timeout in ms, -1 for ever); returns the number of tokens, 0 on EINTR, or -errno.
int wst_epoll_wait(int epfd, uint64_t *tokens, int max, int timeout_ms);

/// A CLOCK_MONOTONIC timerfd, non-blocking.
int wst_timer_create(void);
/// Arms the timer to fire once at the absolute monotonic time `at_ns` (0 disarms it).
int wst_timer_arm(int fd, int64_t at_ns);
/// Reads a timerfd's or eventfd's counter so it stops being readable.
void wst_drain(int fd);

int wst_event_create(void);
void wst_event_signal(int fd);

/// One rtnetlink event: a link's flags, or an IPv4 address added or removed.
typedef struct {
    /// 1: link (RTM_NEWLINK), 2: link removed (RTM_DELLINK), 3: address added, 4: address removed.
    int kind;
    int ifindex;
    /// Link events: IFF_UP and IFF_LOWER_UP (carrier) as 0/1.
    int up;
    int carrier;
    /// Address events: the IPv4 address in network byte order and its prefix length.
    uint32_t address;
    int prefix_length;
    /// Link events: the interface's name ("" when absent).
    char name[16];
} wst_rt_event;

/// A non-blocking NETLINK_ROUTE socket subscribed to link and IPv4 address
/// groups, in the calling thread's namespace; the descriptor or -errno.
int wst_rtnl_open(void);
/// Reads what waits on the socket into at most `max` events; returns their
/// number (0 when nothing waits) or -errno. Messages it does not know are skipped.
int wst_rtnl_read(int fd, wst_rt_event *events, int max);

/// Asks for every link of the namespace (RTM_GETLINK dump); the answers
/// arrive on the socket as link events. 0 or -errno.
int wst_rtnl_dump_links(int fd);

#endif
