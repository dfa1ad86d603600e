/* A two-port Ethernet "cable" that adds a fixed one-way delay, for kernels without netem.
 *
 *   server ns --veth-- [ifA  delay-forwarder  ifB] --veth-- client ns
 *
 * Every frame read on one port (AF_PACKET, ETH_P_ALL, promiscuous) is held for DELAY_US
 * microseconds and then written to the other port. Both directions get the delay, so the
 * round trip grows by 2 x DELAY_US. The delay is constant, so each direction is a FIFO ring
 * and only its head needs a timer; ppoll() sleeps on a high-resolution timer until then.
 *
 * usage: delay-forwarder IF_A IF_B DELAY_US
 * Runs until killed. Built by bench/run.ts with `cc -O2`.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 32768        /* frames in flight per direction (100k pps x 0.5 ms = 50) */
#define FRAME_MAX (10 + 2048) /* virtio-net header + an MTU 1500 frame, stored in the slot */
#define GSO_FRAME_MAX (10 + 14 + 65535) /* header + Ethernet + the largest IP packet */

/* A UDP GSO or TSO run (one frame of up to 64 KiB that a NIC would cut into MTU-size
 * frames) goes through whole, in `big`; its virtio-net header says how to cut it, and the
 * kernel does so on the far side, as a NIC would on the wire. Dropping such frames would
 * make this cable lose what no real link loses. */
struct slot { uint64_t due_ns; uint32_t len; unsigned char *big; unsigned char data[FRAME_MAX]; };
struct ring { struct slot *slots; unsigned head, tail; uint64_t dropped; };

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

static int open_port(const char *ifname) {
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(ETH_P_ALL));
  if (fd < 0) { perror("socket(AF_PACKET)"); exit(1); }
  struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = (int)if_nametoindex(ifname) };
  if (!sll.sll_ifindex) { fprintf(stderr, "no interface %s\n", ifname); exit(1); }
  if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) { perror("bind"); exit(1); }
  /* Frames addressed to the far side's MAC must be seen too. */
  struct packet_mreq mr = { .mr_ifindex = sll.sll_ifindex, .mr_type = PACKET_MR_PROMISC };
  if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) < 0) { perror("promisc"); exit(1); }
  /* Our own transmissions must not loop back into the ring (Linux >= 4.20). */
  int one = 1;
  if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) < 0) { perror("PACKET_IGNORE_OUTGOING"); exit(1); }
  /* veth hands over frames whose UDP/TCP checksum is left for the "hardware" to fill in
   * (CHECKSUM_PARTIAL). A virtio-net header in front of each frame carries that note
   * through us, so the kernel completes the checksum when the frame is sent on. */
  if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0) { perror("PACKET_VNET_HDR"); exit(1); }
  int buf = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof buf);
  return fd;
}

/* Reads everything waiting on `in` into ring `r`, stamping each frame with its due time. */
static void take(int in, struct ring *r, uint64_t delay_ns) {
  static unsigned char overflow[GSO_FRAME_MAX - FRAME_MAX];
  for (;;) {
    unsigned next = (r->tail + 1) % SLOTS;
    struct slot *s = &r->slots[r->tail];
    struct iovec iov[2] = { { s->data, FRAME_MAX }, { overflow, sizeof overflow } };
    struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
    ssize_t n = recvmsg(in, &msg, MSG_TRUNC);
    if (n < 0) return; /* EAGAIN: drained */
    if (n > GSO_FRAME_MAX || next == r->head) { r->dropped++; continue; }
    s->big = NULL;
    if (n > FRAME_MAX) {
      s->big = malloc((size_t)n);
      if (!s->big) { r->dropped++; continue; }
      memcpy(s->big, s->data, FRAME_MAX);
      memcpy(s->big + FRAME_MAX, overflow, (size_t)n - FRAME_MAX);
    }
    s->len = (uint32_t)n;
    s->due_ns = now_ns() + delay_ns;
    r->tail = next;
  }
}

/* Sends every frame of `r` whose time has come; returns ns until the next one, or -1. */
static int64_t give(int out, struct ring *r) {
  uint64_t t = now_ns();
  while (r->head != r->tail) {
    struct slot *s = &r->slots[r->head];
    if (s->due_ns > t) return (int64_t)(s->due_ns - t);
    if (send(out, s->big ? s->big : s->data, s->len, 0) < 0 && errno == EAGAIN) return 20000; /* tx full: retry soon */
    free(s->big);
    s->big = NULL;
    r->head = (r->head + 1) % SLOTS;
  }
  return -1;
}

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: %s IF_A IF_B DELAY_US\n", argv[0]); return 2; }
  uint64_t delay_ns = strtoull(argv[3], NULL, 10) * 1000u;
  prctl(PR_SET_TIMERSLACK, 1UL); /* default 50 us slack would blur a 500 us delay */
  int fd[2] = { open_port(argv[1]), open_port(argv[2]) };
  struct ring ring[2]; /* ring[i]: frames read on port i, to be sent on port 1-i */
  for (int i = 0; i < 2; i++) {
    ring[i] = (struct ring){ .slots = malloc(sizeof(struct slot) * SLOTS) };
    if (!ring[i].slots) { perror("malloc"); return 1; }
  }
  fprintf(stderr, "delay-forwarder: %s <-> %s, %llu us each way\n", argv[1], argv[2], (unsigned long long)(delay_ns / 1000));
  struct pollfd pfd[2] = { { .fd = fd[0], .events = POLLIN }, { .fd = fd[1], .events = POLLIN } };
  for (;;) {
    int64_t wait_a = give(fd[1], &ring[0]);
    int64_t wait_b = give(fd[0], &ring[1]);
    int64_t wait = wait_a < 0 ? wait_b : (wait_b < 0 ? wait_a : (wait_a < wait_b ? wait_a : wait_b));
    struct timespec ts = { .tv_sec = wait / 1000000000, .tv_nsec = wait % 1000000000 };
    if (ppoll(pfd, 2, wait < 0 ? NULL : &ts, NULL) < 0 && errno != EINTR) { perror("ppoll"); return 1; }
    if (pfd[0].revents & POLLIN) take(fd[0], &ring[0], delay_ns);
    if (pfd[1].revents & POLLIN) take(fd[1], &ring[1], delay_ns);
  }
}
