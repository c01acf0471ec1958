// Kernel interfaces of the userspace link emulator that Swift's Glibc module
// does not import well: AF_PACKET sockets with batched receive, epoll,
// timerfd, eventfd, ethtool offload switches, thread scheduling.
// No _GNU_SOURCE here: defining it clashes with Swift's Glibc module.
#ifndef WAYSIDE_CEMULATOR_H
#define WAYSIDE_CEMULATOR_H

#include <stdint.h>

/// CLOCK_MONOTONIC in nanoseconds: the emulator's time base (the same clock
/// in every namespace, so tests can compare sender and receiver stamps).
int64_t ws_monotonic_ns(void);
/// CLOCK_REALTIME in nanoseconds (what SO_TIMESTAMPNS stamps use).
int64_t ws_realtime_ns(void);

/// Moves the calling thread into the network namespace open at `fd`.
int ws_enter_netns(int fd);

/// An AF_PACKET raw socket for every protocol, bound to interface `ifindex`
/// of the calling thread's namespace, non-blocking, ignoring the frames the
/// interface sends (PACKET_IGNORE_OUTGOING), with `buffer` bytes of receive and
/// send buffer. Returns the descriptor or -errno.
int ws_packet_open(int ifindex, int buffer);

/// Receives up to `count` frames (recvmmsg) into `buffers` (`count` slots of
/// `stride` bytes); `lengths[i]` receives each frame's length and `stamps[i]`
/// the kernel's CLOCK_REALTIME time of its arrival (SO_TIMESTAMPNS; 0 if
/// absent). Frames the socket saw leaving (PACKET_OUTGOING) are skipped
/// (length 0). Returns the number of slots filled, 0 when none was waiting,
/// -errno on error.
int ws_packet_receive_batch(int fd, uint8_t *buffers, int stride, int count, int *lengths, int64_t *stamps);

/// Sends one frame; returns 0 or -errno.
int ws_packet_send(int fd, const uint8_t *frame, int length);

/// A capture socket (AF_PACKET) on interface `ifindex` of the calling thread's
/// namespace that sees both the frames the interface receives and those it
/// sends, with kernel timestamps (SO_TIMESTAMPNS: on arrival, and for frames
/// sent when they leave the queueing discipline), blocking for at most
/// `timeout_ms` per receive. Returns the descriptor or -errno.
int ws_packet_tap_open(int ifindex, int timeout_ms);

/// One captured frame: its length (0 on timeout, -errno on error), whether the
/// interface sent it (`*outgoing` = 1) and its CLOCK_REALTIME stamp.
int ws_packet_tap_receive(int fd, uint8_t *frame, int capacity, int *outgoing, int64_t *stamp_ns);

int ws_epoll_create(void);
/// Watches `fd` for input; `token` comes back from `ws_epoll_wait`.
int ws_epoll_add(int epfd, int fd, uint64_t token);
/// Waits for input (timeout in ms, -1 for ever); returns the number of tokens or -errno.
int ws_epoll_wait(int epfd, uint64_t *tokens, int max, int timeout_ms);

/// A CLOCK_MONOTONIC timerfd, non-blocking.
int ws_timer_create(void);
/// Arms the timer to fire once at the absolute monotonic time `at_ns`
/// (0 disarms it).
int ws_timer_arm(int fd, int64_t at_ns);
/// Reads the expiry count so the descriptor stops being readable.
void ws_drain(int fd);

/// Sleeps until the absolute CLOCK_MONOTONIC time `at_ns`.
void ws_sleep_until(int64_t at_ns);

int ws_event_create(void);
void ws_event_signal(int fd);

/// Turns off transmit checksum offload, TSO and GSO on interface `name` of the
/// calling thread's namespace, so that frames a packet socket sees are
/// complete, MTU-sized and carry correct checksums. Returns 0 or -errno.
int ws_disable_offloads(const char *name);

/// Real-time (SCHED_FIFO) priority for the calling thread and 1 ns timer
/// slack, so timer wake-ups are precise on a busy machine. Returns 0 or -errno
/// (best effort: the emulator runs without it).
int ws_precise_thread(int priority);

// Measurement probes (tests and `wayside bench emulator`): kernel UDP and TCP
// sockets in the calling thread's namespace. Addresses are IPv4 in network
// byte order; each returns a descriptor or -errno.

/// A UDP socket bound to `address`:`port` whose datagrams carry the kernel's
/// receive time (SO_TIMESTAMPNS), with a receive timeout.
int ws_udp_open(uint32_t address, uint16_t port, int timeout_ms);
int ws_udp_send(int fd, uint32_t address, uint16_t port, const uint8_t *data, int length);
/// Receives one datagram; `stamp_ns` gets the kernel's CLOCK_REALTIME receive
/// time. Returns its length, or -errno (-EAGAIN on timeout).
int ws_udp_receive(int fd, uint8_t *data, int capacity, int64_t *stamp_ns);
int ws_tcp_listen(uint32_t address, uint16_t port);
/// Accepts one connection, waiting at most `timeout_ms`; the connection gets the same receive timeout.
int ws_tcp_accept(int fd, int timeout_ms);
/// Connects from `source` to `address`:`port`; sends time out after `timeout_ms`.
int ws_tcp_connect(uint32_t source, uint32_t address, uint16_t port, int timeout_ms);

#endif
