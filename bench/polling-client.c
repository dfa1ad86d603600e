// A lock-step TFTP client (RFC 1350 + blksize, RFC 2348) that busy-polls its socket instead
// of sleeping in recv. Built by bench/run.ts with `cc -O2`; used only for the "server CPU
// per MiB" case.
//
// Why: on the bench's veth, a server's send runs the client's whole receive path in the
// server's own system call, including waking the client. When the client sleeps on the
// other vCPU of this VM, that wake-up is an interrupt into a halted vCPU, and its cost
// (tens of microseconds) is billed to the server, block after block. Behind a real NIC the
// client is another PC, and its wake-up costs the server nothing. A client that never
// sleeps is never woken. It keeps one vCPU busy while it runs.
//
// The server's send still runs the client's receive path up to its socket queue, and the
// client's ACK runs the server's: the figure is veth accounting, not what a NIC would show.
// But no wake-up of a sleeping client is billed, and every server is measured the same way.
//
// Block numbers wrap to 0 after 65535 (as Bootbench and most servers do). The transfer is
// tied to the port of the first reply; datagrams from any other port are ignored.
//
// usage: polling-client SERVER_IP FILE BLKSIZE OUT
// exit 0 when the file arrived whole; prints "blocks=N bytes=N" on stdout.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void ack(int fd, const struct sockaddr_in *to, unsigned block) {
  unsigned char a[4] = {0, 4, (unsigned char)(block >> 8), (unsigned char)block};
  sendto(fd, a, 4, 0, (const struct sockaddr *)to, sizeof *to);
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s SERVER_IP FILE BLKSIZE OUT\n", argv[0]);
    return 2;
  }
  const char *file = argv[2];
  int blksize = atoi(argv[3]);
  FILE *out = fopen(argv[4], "wb");
  if (!out) { perror("open output"); return 2; }
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) { perror("socket"); return 2; }
  struct sockaddr_in server = {.sin_family = AF_INET, .sin_port = htons(69)};
  if (inet_pton(AF_INET, argv[1], &server.sin_addr) != 1) { fprintf(stderr, "bad address %s\n", argv[1]); return 2; }

  // RRQ: opcode 1, file, "octet", "blksize", value
  unsigned char rrq[600];
  int n = snprintf((char *)rrq + 2, sizeof rrq - 2, "%s%coctet%cblksize%c%d%c", file, 0, 0, 0, blksize, 0);
  if (n < 0 || n >= (int)sizeof rrq - 2) { fprintf(stderr, "file name too long: %s\n", file); return 2; }
  rrq[0] = 0; rrq[1] = 1;
  int rrq_len = n + 2;
  sendto(fd, rrq, rrq_len, 0, (struct sockaddr *)&server, sizeof server);

  // One byte more than a datagram can fill, for the NUL that ends the last OACK string.
  unsigned char *buf = malloc(65537);
  if (!buf) { perror("malloc"); return 2; }
  struct sockaddr_in peer;
  int have_peer = 0;
  unsigned expected = 1, last_acked = 0;
  unsigned long blocks = 0, bytes = 0;
  int size = 512;
  double last_progress = now_s();
  int resends = 0;
  for (;;) {
    socklen_t plen = sizeof peer;
    ssize_t got = recvfrom(fd, buf, 65536, MSG_DONTWAIT, (struct sockaddr *)&peer, &plen);
    if (got < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) { perror("recvfrom"); return 1; }
      double t = now_s();
      if (t - last_progress > 1.0) {  // nothing for a second: say the last thing again
        if (++resends > 10) { fprintf(stderr, "timed out at block %u\n", expected); return 1; }
        if (have_peer) ack(fd, &server, last_acked);
        else sendto(fd, rrq, rrq_len, 0, (struct sockaddr *)&server, sizeof server);
        last_progress = t;
      }
      continue;
    }
    if (got < 4) continue;
    if (have_peer && (peer.sin_port != server.sin_port || peer.sin_addr.s_addr != server.sin_addr.s_addr)) continue;  // not our transfer
    buf[got] = 0;
    unsigned op = (buf[0] << 8) | buf[1];
    if (op == 5) { fprintf(stderr, "server error %u: %.*s\n", (buf[2] << 8) | buf[3], (int)got - 4, buf + 4); return 1; }
    if (!have_peer) { have_peer = 1; server = peer; }  // the transfer's port from now on
    if (op == 6) {  // OACK: take the blksize the server chose, then ACK block 0
      size = 512;
      for (unsigned char *p = buf + 2; p < buf + got;) {
        char *name = (char *)p; p += strlen(name) + 1; if (p >= buf + got) break;
        char *value = (char *)p; p += strlen(value) + 1;
        if (strcasecmp(name, "blksize") == 0) size = atoi(value);
      }
      ack(fd, &server, 0);
      last_progress = now_s();
      resends = 0;
      continue;
    }
    if (op != 3) continue;
    unsigned block = (buf[2] << 8) | buf[3];
    if (block != (expected & 0xffff)) { ack(fd, &server, last_acked); continue; }  // a duplicate
    size_t len = got - 4;
    if ((int)len > size) { fprintf(stderr, "block %u holds %zu bytes, more than the %d agreed\n", block, len, size); return 1; }
    if (len && fwrite(buf + 4, 1, len, out) != len) { perror("write"); return 1; }
    blocks++; bytes += len;
    last_acked = block;
    ack(fd, &server, block);
    last_progress = now_s();
    resends = 0;
    expected++;
    if ((int)len < size) break;
  }
  if (fclose(out) != 0) { perror("close output"); return 1; }
  printf("blocks=%lu bytes=%lu\n", blocks, bytes);
  return 0;
}
