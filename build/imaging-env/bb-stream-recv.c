// bb-stream-recv: the receiving end of Bootbench's image stream (main/imaging/multicast-*.ts).
//
//   bb-stream-recv -g GROUP:PORT:SESSION -s http://HOST:PORT -m MAC -l LIST -o DIR
//                  [-w WINDOW] [-b BYTESFILE] [-e WHYFILE] [-S STATSFILE]
//
// LIST holds the image's chunks in manifest order, one "PART SHA256 BYTES" line each (the line
// number is the chunk's index in the stream; BYTES, the chunk's share of the partition's
// stream once decompressed, is what BYTESFILE counts for it: 4 MiB when a line has none). The chunks of partition N are written, each
// checked against its SHA-256 and still compressed, to DIR/part-N (a FIFO the agent reads
// with zstd -d), partition after partition. One process serves the whole deploy, so the
// group membership and the chunks buffered ahead survive the change of partition.
//
// A chunk comes from the stream when it can and from the host's chunk route (HTTP, only the
// missing byte ranges, all in one request) when it must: when the stream has passed it incomplete, or nothing of
// it arrived for a second. The write never waits for the stream's next pass. Chunks further
// ahead than WINDOW are dropped (memory stays bounded) and repaired when their turn comes.
// About every 100 ms it tells the host (unicast, to the stream's port) its position, what it
// holds ahead of it, and its losses; the host paces the stream by them.
//
// A deploy's stream may wait for the technician's Go or for the rest of the room. Until a
// datagram arrives the receiver asks the host once a second (GET /imaging/streams/SESSION)
// whether the stream has started, and waits as long as the answer is "waiting". Once the host
// says it started (or cannot say: an older host, no such stream), a receiver that still hears
// nothing (a switch port that drops multicast) fetches everything by HTTP after FIRST_MS.
//
// Build: gcc -O2 -static -pthread -DBB_LIBCRYPTO -o bb-stream-recv bb-stream-recv.c -lcrypto
// (libssl-dev): chunks are hashed by libcrypto (SHA instructions where the CPU has them);
// without -DBB_LIBCRYPTO and -lcrypto it uses its own portable SHA-256, several times slower.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DATA_MAGIC 0x42425331u
#define FEEDBACK_MAGIC 0x42425231u
#define HEADER 28
#define PAYLOAD 1400
#define MAX_CHUNK (4 * 1024 * 1024 + 64 * 1024)
#define CHUNK_MIB 4
#define FIRST_MS 5000 /* after the host says the stream started: time for its first datagrams to arrive */
#define POLL_MS 1000  /* asking the host whether the stream started */
#define STALL_MS 1000
#define FEEDBACK_MS 100
#define MAX_RANGES 512 /* keeps the request line within 8 KiB (the host takes 1024) */
#define RX_BATCH 16    /* messages per recvmmsg */
#define RX_BUF 65536   /* one message: a datagram, or with UDP_GRO a run of them up to 64 KiB */
#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_GRO
#define UDP_GRO 104 /* <linux/udp.h>, Linux 5.0 */
#endif

/* ---- SHA-256 (FIPS 180-4) ---------------------------------------------------------- */

#ifdef BB_LIBCRYPTO
#include <openssl/sha.h>

/* The writer hashes every chunk before writing it: at disk speed only libcrypto's keeps up. */
static void sha256_hex(const uint8_t *data, size_t len, char out[65]) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(data, len, d);
  for (int k = 0; k < SHA256_DIGEST_LENGTH; k++) sprintf(out + 2 * k, "%02x", d[k]);
}
#else

typedef struct {
  uint32_t h[8];
  uint64_t len;
  uint8_t buf[64];
  size_t fill;
} sha256_ctx;

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be,
    0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa,
    0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85,
    0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3,
    0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f,
    0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(sha256_ctx *c, const uint8_t *p) {
  uint32_t w[64], a, b, d, e, f, g, h, cc, t1, t2;
  for (int i = 0; i < 16; i++) w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3], e = c->h[4], f = c->h[5], g = c->h[6], h = c->h[7];
  for (int i = 0; i < 64; i++) {
    t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
    t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & cc) ^ (b & cc));
    h = g, g = f, f = e, e = d + t1, d = cc, cc = b, b = a, a = t1 + t2;
  }
  c->h[0] += a, c->h[1] += b, c->h[2] += cc, c->h[3] += d, c->h[4] += e, c->h[5] += f, c->h[6] += g, c->h[7] += h;
}

static void sha256_hex(const uint8_t *data, size_t len, char out[65]) {
  sha256_ctx c = {{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}, 0, {0}, 0};
  size_t i = 0;
  for (; i + 64 <= len; i += 64) sha256_block(&c, data + i);
  uint8_t tail[128] = {0};
  size_t rest = len - i;
  memcpy(tail, data + i, rest);
  tail[rest] = 0x80;
  size_t total = rest + 9 <= 64 ? 64 : 128;
  uint64_t bits = (uint64_t)len * 8;
  for (int k = 0; k < 8; k++) tail[total - 1 - k] = (uint8_t)(bits >> (8 * k));
  sha256_block(&c, tail);
  if (total == 128) sha256_block(&c, tail + 64);
  for (int k = 0; k < 8; k++) sprintf(out + 8 * k, "%08x", c.h[k]);
}
#endif

/* ---- state ------------------------------------------------------------------------- */

typedef struct {
  int64_t idx; /* -1: free */
  uint32_t size, nblocks, got;
  uint8_t *buf, *have; /* per block: 0 missing, 1 from the stream, 2 by repair */
  int64_t last_ms;
} slot_t;

static struct {
  struct in_addr group, server;
  uint16_t port, http_port;
  uint32_t session;
  uint8_t mac[6];
  const char *outdir, *bytes_file, *why_file, *stats_file;
  int window;
  uint32_t count;
  char (*sha)[65];
  int *part;
  uint64_t *raw; /* BYTES of each chunk */
} cfg;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static slot_t *slots;
static uint32_t next_idx;
static int64_t latest_idx = -1, last_rx_ms;
static int stream_seen, finished;
static uint32_t seq_high, received, lost, overrun, last_overrun = UINT32_MAX;
/* Bytes of the image written, by where they came from (they add up to the image), and bytes fetched by HTTP. */
static uint64_t stream_bytes, repair_bytes, http_bytes;
static uint32_t repaired_chunks;
static int fb_fd = -1;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int out_part = -1;

/*
 * Opens partition N's FIFO once its reader is there. Polling, not a blocking open: when the
 * agent gives up it removes its folder, and the receiver must not wait for a reader forever.
 */
static int open_output(int part) {
  char path[4096];
  snprintf(path, sizeof path, "%s/part-%d", cfg.outdir, part);
  for (;;) {
    int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) {
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      /* A chunk in a few writes rather than one per 64 KiB, each a switch to zstd and back. */
      fcntl(fd, F_SETPIPE_SZ, 1 << 20);
      return fd;
    }
    if (errno != ENXIO && errno != EINTR) return -1;
    usleep(20000);
  }
}

static void die(const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "bb-stream-recv: %s\n", msg);
  if (cfg.why_file) {
    FILE *f = fopen(cfg.why_file, "w");
    if (f) fprintf(f, "%s\n", msg), fclose(f);
  }
  /* The reader of the partition under way, or the next, sees the end of its stream at once. */
  for (uint32_t i = 0; i < cfg.count; i++) {
    if (i && cfg.part[i] == cfg.part[i - 1]) continue;
    if (out_part >= 0 && cfg.part[i] < out_part) continue;
    int fd = open_output(cfg.part[i]);
    if (fd < 0) break;
    close(fd);
  }
  exit(1);
}

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static void put32(uint8_t *p, uint32_t v) { p[0] = v >> 24, p[1] = v >> 16, p[2] = v >> 8, p[3] = v; }

static void free_slot(slot_t *s) {
  free(s->buf), free(s->have);
  s->buf = s->have = NULL;
  s->idx = -1, s->size = s->nblocks = s->got = 0;
}

static int init_slot(slot_t *s, int64_t idx, uint32_t size) {
  free_slot(s);
  s->buf = malloc(size ? size : 1);
  s->nblocks = (size + PAYLOAD - 1) / PAYLOAD;
  s->have = calloc(s->nblocks ? s->nblocks : 1, 1);
  if (!s->buf || !s->have) return free_slot(s), -1;
  s->idx = idx, s->size = size, s->got = 0, s->last_ms = now_ms();
  return 0;
}

/* ---- receiving --------------------------------------------------------------------- */

static void send_feedback(int done) {
  uint8_t p[44] = {0};
  pthread_mutex_lock(&mu);
  /* What it holds complete from its position on: the host does not send those again. */
  uint32_t need = next_idx;
  while (need < cfg.count && need < next_idx + (uint32_t)cfg.window) {
    slot_t *s = &slots[need % cfg.window];
    if (s->idx != need || s->got < s->nblocks) break;
    need++;
  }
  put32(p, FEEDBACK_MAGIC);
  put32(p + 4, cfg.session);
  memcpy(p + 8, cfg.mac, 6);
  p[14] = done ? 1 : 0;
  p[15] = (uint8_t)(cfg.window > 255 ? 255 : cfg.window);
  put32(p + 16, next_idx);
  put32(p + 20, received);
  put32(p + 24, lost);
  put32(p + 28, overrun);
  /* KiB, rounded so that the two add up to the written total's KiB. */
  put32(p + 32, (uint32_t)(stream_bytes >> 10));
  put32(p + 36, (uint32_t)(((stream_bytes + repair_bytes) >> 10) - (stream_bytes >> 10)));
  put32(p + 40, need);
  pthread_mutex_unlock(&mu);
  send(fb_fd, p, sizeof p, 0); /* best effort: feedback that is lost is sent again 100 ms later */
}

/* One data datagram; the caller holds `mu` (a whole batch of datagrams is taken under one lock). */
static void take(const uint8_t *p, ssize_t n) {
  if (n < HEADER || be32(p) != DATA_MAGIC || be32(p + 4) != cfg.session) return;
  uint32_t seq = be32(p + 8), idx = be32(p + 12), size = be32(p + 16), off = be32(p + 20), chunks = be32(p + 24);
  uint32_t len = (uint32_t)n - HEADER;
  if (chunks != cfg.count || idx >= cfg.count || size > MAX_CHUNK || off % PAYLOAD || off >= size) return;
  if (len != (size - off < PAYLOAD ? size - off : PAYLOAD)) return;
  if (!stream_seen) seq_high = seq - 1;
  int32_t gap = (int32_t)(seq - seq_high);
  if (gap > 0) lost += (uint32_t)gap - 1, seq_high = seq;
  else if (lost > 0) lost--; /* late or duplicated: not lost after all */
  received++;
  stream_seen = 1;
  latest_idx = idx;
  last_rx_ms = now_ms();
  if (idx >= next_idx && idx < next_idx + (uint32_t)cfg.window) {
    slot_t *s = &slots[idx % cfg.window];
    if (s->idx != idx && init_slot(s, idx, size) != 0) goto out;
    if (s->size == size && s->got < s->nblocks) {
      uint32_t b = off / PAYLOAD;
      if (!s->have[b]) {
        memcpy(s->buf + off, p + HEADER, len);
        s->have[b] = 1, s->got++, s->last_ms = last_rx_ms;
        if (idx == next_idx) pthread_cond_signal(&cv);
      }
    }
  } else if (idx >= next_idx + (uint32_t)cfg.window && idx != last_overrun) {
    overrun++, last_overrun = idx;
  }
out:
  return;
}

/*
 * Reads what the socket holds, RX_BATCH messages per recvmmsg(2). With UDP_GRO a message may
 * be a run of datagrams the kernel kept together (the sender's UDP GSO send, or GRO at the
 * NIC): the control message gives their size, the last may be shorter. Then the whole batch
 * is taken under one lock, and the writer woken once.
 */
static void receive_batches(int fd) {
  static uint8_t bufs[RX_BATCH][RX_BUF];
  static char ctrl[RX_BATCH][CMSG_SPACE(sizeof(int))];
  static struct mmsghdr msgs[RX_BATCH];
  static struct iovec iov[RX_BATCH];
  for (int round = 0; round < 64; round++) {
    for (int k = 0; k < RX_BATCH; k++) {
      iov[k] = (struct iovec){bufs[k], RX_BUF};
      msgs[k].msg_hdr = (struct msghdr){.msg_iov = &iov[k], .msg_iovlen = 1, .msg_control = ctrl[k], .msg_controllen = sizeof ctrl[k]};
    }
    int got = recvmmsg(fd, msgs, RX_BATCH, MSG_DONTWAIT, NULL);
    if (got <= 0) return;
    pthread_mutex_lock(&mu);
    for (int k = 0; k < got; k++) {
      size_t n = msgs[k].msg_len, seg = n;
      for (struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[k].msg_hdr); c; c = CMSG_NXTHDR(&msgs[k].msg_hdr, c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
          int size;
          memcpy(&size, CMSG_DATA(c), sizeof size);
          if (size > 0) seg = (size_t)size;
        }
      }
      for (size_t at = 0; at < n; at += seg) take(bufs[k] + at, (ssize_t)(n - at < seg ? n - at : seg));
    }
    pthread_mutex_unlock(&mu);
    pthread_cond_signal(&cv);
    if (got < RX_BATCH) return;
  }
}

static void *receiver(void *arg) {
  int fd = *(int *)arg;
  int64_t last_fb = 0;
  for (;;) {
    struct pollfd pfd = {fd, POLLIN, 0};
    if (poll(&pfd, 1, 20) > 0) receive_batches(fd);
    int64_t t = now_ms();
    pthread_mutex_lock(&mu);
    int done = finished;
    pthread_mutex_unlock(&mu);
    if (done) return NULL;
    if (t - last_fb >= FEEDBACK_MS) send_feedback(0), last_fb = t;
  }
}

/* ---- HTTP repair ------------------------------------------------------------------- */

static int http_fd = -1;
static uint8_t rbuf[65536];
static size_t rpos, rlen;

static void http_close(void);
static int http_open(void);
static int read_head(int *status, uint64_t *length, uint64_t *start, int *closes);
static int read_body(uint8_t *to, uint64_t len);

/*
 * Asks the host whether the stream has started. 1: it says the stream waits (for Go, or for
 * more PCs); 0: it started, or the host does not say (then the old rule holds: HTTP after
 * FIRST_MS without a datagram).
 */
static int stream_waiting(void) {
  char host[64], req[256], body[256];
  inet_ntop(AF_INET, &cfg.server, host, sizeof host);
  int len = snprintf(req, sizeof req, "GET /imaging/streams/%08x?mac=%02x:%02x:%02x:%02x:%02x:%02x HTTP/1.1\r\nHost: %s:%u\r\n\r\n", cfg.session,
                     cfg.mac[0], cfg.mac[1], cfg.mac[2], cfg.mac[3], cfg.mac[4], cfg.mac[5], host, cfg.http_port);
  for (int attempt = 0; attempt < 2; attempt++) { /* a kept-alive connection the host closed meanwhile: once more on a new one */
    if (http_open() != 0) return 0;
    if (send(http_fd, req, (size_t)len, MSG_NOSIGNAL) != len) {
      http_close();
      continue;
    }
    int status, closes;
    uint64_t length, start;
    if (read_head(&status, &length, &start, &closes) != 0) {
      http_close();
      continue;
    }
    int ok = length < sizeof body ? read_body((uint8_t *)body, length) == 0 : read_body(NULL, length) == 0;
    if (closes || !ok) http_close();
    if (!ok || status != 200 || length >= sizeof body) return 0;
    body[length] = 0;
    return strstr(body, "state=waiting") != NULL;
  }
  return 0;
}

static void http_close(void) {
  if (http_fd >= 0) close(http_fd);
  http_fd = -1, rpos = rlen = 0;
}

static int http_open(void) {
  if (http_fd >= 0) return 0;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(cfg.http_port), .sin_addr = cfg.server};
  struct timeval tv = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) return close(fd), -1;
  http_fd = fd;
  return 0;
}

static int fill(void) {
  if (rpos < rlen) return 0;
  ssize_t n = recv(http_fd, rbuf, sizeof rbuf, 0);
  if (n <= 0) return -1;
  rpos = 0, rlen = (size_t)n;
  return 0;
}

static int read_line(char *out, size_t max) {
  size_t n = 0;
  for (;;) {
    if (fill() != 0) return -1;
    char c = (char)rbuf[rpos++];
    if (c == '\n') break;
    if (c != '\r' && n + 1 < max) out[n++] = c;
  }
  out[n] = 0;
  return (int)n;
}

static int read_body(uint8_t *to, uint64_t len) {
  while (len > 0) {
    if (fill() != 0) return -1;
    size_t take_n = rlen - rpos < len ? rlen - rpos : (size_t)len;
    if (to) memcpy(to, rbuf + rpos, take_n), to += take_n;
    rpos += take_n, len -= take_n;
  }
  return 0;
}

typedef struct {
  uint32_t from, to; /* inclusive byte range */
} range_t;

/* One response: status, body length, and for a 206 where the range starts. */
static int read_head(int *status, uint64_t *length, uint64_t *start, int *closes) {
  char line[1024];
  if (read_line(line, sizeof line) < 0 || sscanf(line, "HTTP/1.%*d %d", status) != 1) return -1;
  *length = UINT64_MAX, *start = 0, *closes = 0;
  for (;;) {
    int n = read_line(line, sizeof line);
    if (n < 0) return -1;
    if (n == 0) break;
    if (!strncasecmp(line, "content-length:", 15)) *length = strtoull(line + 15, NULL, 10);
    else if (!strncasecmp(line, "content-range:", 14)) {
      const char *b = strstr(line, "bytes");
      if (b) *start = strtoull(b + 5, NULL, 10);
    } else if (!strncasecmp(line, "connection:", 11) && strcasestr(line, "close"))
      *closes = 1;
  }
  return *length == UINT64_MAX ? -1 : 0;
}

/*
 * Fetches chunk `sha` into `buf` (size bytes; or size 0 and buf NULL when nothing of it is
 * known, then it is allocated): the listed ranges in one request (?ranges=, answered with
 * their bytes back to back), or the whole chunk when nranges is 0 or the host sends all of
 * it. Returns the buffer, or NULL with a reason in `why`.
 */
static uint8_t *http_fetch(const char *sha, range_t *ranges, int nranges, uint8_t *buf, uint32_t *size, char *why, size_t whylen) {
  char host[64];
  inet_ntop(AF_INET, &cfg.server, host, sizeof host);
  uint64_t wanted = 0;
  for (int i = 0; i < nranges; i++) wanted += ranges[i].to - ranges[i].from + 1;
  for (int attempt = 0; attempt < 5; attempt++) {
    if (attempt) usleep(200000 * attempt);
    if (http_open() != 0) {
      snprintf(why, whylen, "cannot connect to %s:%u: %s", host, cfg.http_port, strerror(errno));
      continue;
    }
    size_t cap = 256 + (size_t)nranges * 24, used = 0;
    char *req = malloc(cap);
    used += (size_t)snprintf(req + used, cap - used, "GET /imaging/chunks/%s", sha);
    for (int i = 0; i < nranges; i++) used += (size_t)snprintf(req + used, cap - used, "%s%u-%u", i ? "," : "?ranges=", ranges[i].from, ranges[i].to);
    used += (size_t)snprintf(req + used, cap - used, " HTTP/1.1\r\nHost: %s:%u\r\n\r\n", host, cfg.http_port);
    size_t sent = 0;
    while (sent < used) {
      ssize_t n = send(http_fd, req + sent, used - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += (size_t)n;
    }
    free(req);
    if (sent < used) {
      snprintf(why, whylen, "sending to %s:%u failed: %s", host, cfg.http_port, strerror(errno));
      http_close();
      continue;
    }
    int status, closes;
    uint64_t length, start;
    if (read_head(&status, &length, &start, &closes) != 0) {
      snprintf(why, whylen, "the host closed the connection or sent no valid answer for chunk %s", sha);
      http_close();
      continue;
    }
    if (status != 200) {
      snprintf(why, whylen, "the host answered %d for chunk %s", status, sha);
      if (read_body(NULL, length) != 0 || closes) http_close();
      if (status == 404) break;
      continue;
    }
    int ok;
    if (nranges && length == wanted) {
      ok = 1;
      for (int i = 0; i < nranges && ok; i++) ok = read_body(buf + ranges[i].from, ranges[i].to - ranges[i].from + 1) == 0;
    } else if (length <= MAX_CHUNK && (!buf || length == *size)) { /* the whole chunk: asked for, or a host without ?ranges= */
      if (!buf) buf = malloc(length ? length : 1), *size = (uint32_t)length;
      ok = read_body(buf, length) == 0;
    } else {
      snprintf(why, whylen, "chunk %s: the host sent %llu bytes, expected %llu", sha, (unsigned long long)length, (unsigned long long)(nranges ? wanted : *size));
      http_close();
      continue;
    }
    if (closes || !ok) http_close();
    if (!ok) {
      snprintf(why, whylen, "the connection to the host broke while chunk %s arrived", sha);
      continue;
    }
    http_bytes += length;
    return buf;
  }
  return NULL;
}

/* Completes chunk `idx` in its slot: the missing ranges, or all of it. */
static void repair(uint32_t idx) {
  slot_t *s = &slots[idx % cfg.window];
  char why[512] = "";
  pthread_mutex_lock(&mu);
  int whole = s->idx != idx || s->got * 2 < s->nblocks;
  range_t *ranges = NULL;
  int n = 0;
  uint32_t size = s->size;
  if (!whole) {
    ranges = malloc(sizeof(range_t) * MAX_RANGES);
    for (uint32_t b = 0; b < s->nblocks && !whole; b++) {
      if (s->have[b]) continue;
      uint32_t from = b * PAYLOAD, to = (b + 1) * PAYLOAD > s->size ? s->size - 1 : (b + 1) * PAYLOAD - 1;
      /* A hole two blocks or less after the previous one joins it: fewer requests for a few bytes more. */
      if (n && from <= ranges[n - 1].to + 1 + 2 * PAYLOAD) ranges[n - 1].to = to;
      else if (n == MAX_RANGES) whole = 1;
      else ranges[n++] = (range_t){from, to};
    }
  }
  uint8_t *tmp = whole ? NULL : malloc(size);
  pthread_mutex_unlock(&mu);
  uint32_t got_size = whole ? 0 : size;
  uint8_t *data = http_fetch(cfg.sha[idx], ranges, whole ? 0 : n, tmp, &got_size, why, sizeof why);
  free(ranges);
  if (!data) die("chunk %u (%s) could not be fetched from the host: %s", idx, cfg.sha[idx], why);
  pthread_mutex_lock(&mu);
  if (whole || got_size != size || data != tmp) {
    if (init_slot(s, idx, got_size) != 0) die("out of memory for chunk %u", idx);
    memcpy(s->buf, data, got_size);
    memset(s->have, 2, s->nblocks);
    s->got = s->nblocks;
    free(data);
  } else {
    for (uint32_t b = 0; b < s->nblocks; b++) {
      if (s->have[b]) continue;
      uint32_t from = b * PAYLOAD, len = from + PAYLOAD > s->size ? s->size - from : PAYLOAD;
      memcpy(s->buf + from, data + from, len);
      s->have[b] = 2;
    }
    s->got = s->nblocks;
    free(data);
  }
  repaired_chunks++;
  pthread_mutex_unlock(&mu);
}

/* ---- writing ----------------------------------------------------------------------- */

static void write_all(int fd, const uint8_t *p, size_t len, int part) {
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) die("the writer of partition %d stopped reading: %s", part, strerror(errno));
    p += n, len -= (size_t)n;
  }
}

static void write_bytes_file(uint64_t value) {
  if (!cfg.bytes_file) return;
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.stream", cfg.bytes_file);
  FILE *f = fopen(tmp, "w");
  if (!f) return;
  fprintf(f, "%llu\n", (unsigned long long)value);
  fclose(f);
  rename(tmp, cfg.bytes_file);
}

static void usage(void) {
  fprintf(stderr, "usage: bb-stream-recv -g GROUP:PORT:SESSION -s http://HOST:PORT -m MAC -l LIST -o DIR [-w WINDOW] [-b BYTESFILE] [-e WHYFILE] [-S STATSFILE]\n");
  exit(64);
}

int main(int argc, char **argv) {
  const char *group = NULL, *server = NULL, *mac = NULL, *list = NULL;
  cfg.window = 16;
  int opt;
  while ((opt = getopt(argc, argv, "g:s:m:l:o:w:b:e:S:")) != -1) {
    switch (opt) {
      case 'g': group = optarg; break;
      case 's': server = optarg; break;
      case 'm': mac = optarg; break;
      case 'l': list = optarg; break;
      case 'o': cfg.outdir = optarg; break;
      case 'w': cfg.window = atoi(optarg); break;
      case 'b': cfg.bytes_file = optarg; break;
      case 'e': cfg.why_file = optarg; break;
      case 'S': cfg.stats_file = optarg; break;
      default: usage();
    }
  }
  if (!group || !server || !mac || !list || !cfg.outdir || cfg.window < 2 || cfg.window > 255) usage();
  char gaddr[64];
  unsigned port, session;
  if (sscanf(group, "%63[0-9.]:%u:%x", gaddr, &port, &session) != 3 || !inet_pton(AF_INET, gaddr, &cfg.group) || port == 0 || port > 65535)
    die("stream \"%s\" is not GROUP:PORT:SESSION", group);
  cfg.port = (uint16_t)port, cfg.session = session;
  char shost[64];
  unsigned sport = 80;
  if (sscanf(server, "http://%63[0-9.]:%u", shost, &sport) < 1 || !inet_pton(AF_INET, shost, &cfg.server))
    die("server \"%s\" is not http://IPV4[:PORT]", server);
  cfg.http_port = (uint16_t)sport;
  unsigned m[6];
  if (sscanf(mac, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6) die("\"%s\" is not a MAC address", mac);
  for (int i = 0; i < 6; i++) cfg.mac[i] = (uint8_t)m[i];

  FILE *lf = fopen(list, "r");
  if (!lf) die("cannot read the chunk list %s: %s", list, strerror(errno));
  size_t cap = 1024;
  cfg.sha = malloc(cap * sizeof *cfg.sha);
  cfg.part = malloc(cap * sizeof *cfg.part);
  cfg.raw = malloc(cap * sizeof *cfg.raw);
  int part;
  char sha[80], line[256];
  unsigned long long raw;
  while (fgets(line, sizeof line, lf)) {
    int fields = sscanf(line, "%d %79s %llu", &part, sha, &raw);
    if (fields <= 0) continue;
    if (fields < 2 || strlen(sha) != 64) die("chunk list line %u: \"%.80s\" is not PART SHA-256 [BYTES]", cfg.count + 1, line);
    if (cfg.count == cap) {
      cap *= 2;
      cfg.sha = realloc(cfg.sha, cap * sizeof *cfg.sha);
      cfg.part = realloc(cfg.part, cap * sizeof *cfg.part);
      cfg.raw = realloc(cfg.raw, cap * sizeof *cfg.raw);
    }
    memcpy(cfg.sha[cfg.count], sha, 65);
    cfg.raw[cfg.count] = fields == 3 ? raw : (uint64_t)CHUNK_MIB * 1048576;
    cfg.part[cfg.count++] = part;
  }
  fclose(lf);
  if (cfg.count == 0) die("the chunk list %s is empty", list);

  signal(SIGPIPE, SIG_IGN);
  /* Feedback goes to the stream's port on the host; its local address names the NIC to join on. */
  fb_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(cfg.port), .sin_addr = cfg.server};
  if (connect(fb_fd, (struct sockaddr *)&to, sizeof to) != 0) die("no route to the host %s: %s", shost, strerror(errno));
  struct sockaddr_in local;
  socklen_t ll = sizeof local;
  getsockname(fb_fd, (struct sockaddr *)&local, &ll);

  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int one = 1, zero = 0, rcvbuf = 16 << 20;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  /* The datagrams that arrive while a chunk is written or repaired wait here. */
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  struct sockaddr_in bind_to = {.sin_family = AF_INET, .sin_port = htons(cfg.port), .sin_addr = cfg.group};
  if (bind(fd, (struct sockaddr *)&bind_to, sizeof bind_to) != 0) die("cannot bind the stream's port %u: %s", cfg.port, strerror(errno));
  /* Only this group's datagrams, not every group another socket of this PC joined on the port. */
  setsockopt(fd, IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof zero);
  /* Runs of datagrams in one read where the kernel keeps them together; older kernels say no and each comes alone. */
  setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one);
  struct ip_mreq mreq = {.imr_multiaddr = cfg.group, .imr_interface = local.sin_addr};
  if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq) != 0)
    fprintf(stderr, "bb-stream-recv: cannot join %s (%s): everything comes by HTTP\n", gaddr, strerror(errno));

  slots = calloc((size_t)cfg.window, sizeof *slots);
  for (int i = 0; i < cfg.window; i++) slots[i].idx = -1;
  uint64_t bytes_done = 0;
  if (cfg.bytes_file) {
    FILE *bf = fopen(cfg.bytes_file, "r");
    if (bf) {
      unsigned long long v;
      if (fscanf(bf, "%llu", &v) == 1) bytes_done = v;
      fclose(bf);
    }
  }
  pthread_t rx;
  pthread_create(&rx, NULL, receiver, &fd);

  int64_t started = now_ms();
  /* Until the host says otherwise the stream may be waiting for its start; from `released` on it runs. */
  int held = 1;
  int64_t released = started, last_poll = 0, waited = 0;
  int out = -1;
  for (uint32_t i = 0; i < cfg.count; i++) {
    if (cfg.part[i] != out_part) {
      if (out >= 0) close(out);
      out = open_output(cfg.part[i]);
      if (out < 0) {
        fprintf(stderr, "bb-stream-recv: the agent stopped before partition %d: %s\n", cfg.part[i], strerror(errno));
        return 1;
      }
      out_part = cfg.part[i];
    }
    slot_t *s = &slots[i % cfg.window];
    int64_t waiting_since = now_ms();
    pthread_mutex_lock(&mu);
    for (;;) {
      if (s->idx == i && s->got == s->nblocks) break;
      int64_t t = now_ms();
      int64_t quiet = t - (s->idx == i && s->last_ms > waiting_since ? s->last_ms : waiting_since);
      /* The stream went past this chunk, is more than two chunks behind it, or has gone quiet: it will not bring it soon. */
      int passed = stream_seen && (latest_idx > (int64_t)i || latest_idx + 2 < (int64_t)i || t - last_rx_ms > STALL_MS);
      if (!stream_seen && held && t - last_poll >= POLL_MS) {
        pthread_mutex_unlock(&mu);
        last_poll = t;
        held = stream_waiting();
        int64_t answered = now_ms();
        if (held) waited = answered - started;
        else released = answered;
        pthread_mutex_lock(&mu);
        continue;
      }
      /* Nothing from the stream yet: wait while it waits to start, then FIRST_MS for its first datagrams. */
      int64_t limit = stream_seen ? STALL_MS : held || t - released <= FIRST_MS ? INT64_MAX : 0;
      if (passed || quiet > limit) {
        pthread_mutex_unlock(&mu);
        repair(i);
        pthread_mutex_lock(&mu);
        continue;
      }
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_nsec += 20 * 1000000;
      if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
      pthread_cond_timedwait(&cv, &mu, &ts);
    }
    pthread_mutex_unlock(&mu);
    char got[65];
    sha256_hex(s->buf, s->size, got);
    if (strcmp(got, cfg.sha[i]) != 0) {
      /* The stream and the repair disagree with the name: fetch all of it once more. */
      pthread_mutex_lock(&mu);
      free_slot(s);
      pthread_mutex_unlock(&mu);
      repair(i);
      sha256_hex(s->buf, s->size, got);
      if (strcmp(got, cfg.sha[i]) != 0) die("chunk %s arrived damaged (SHA-256 %s): nothing of it was written", cfg.sha[i], got);
    }
    write_all(out, s->buf, s->size, out_part);
    pthread_mutex_lock(&mu);
    for (uint32_t b = 0; b < s->nblocks; b++) {
      uint32_t len = (b + 1) * PAYLOAD > s->size ? s->size - b * PAYLOAD : PAYLOAD;
      if (s->have[b] == 2) repair_bytes += len;
      else stream_bytes += len;
    }
    free_slot(s);
    next_idx = i + 1;
    pthread_mutex_unlock(&mu);
    bytes_done += cfg.raw[i];
    write_bytes_file(bytes_done);
  }
  if (out >= 0) close(out);
  pthread_mutex_lock(&mu);
  finished = 1;
  pthread_mutex_unlock(&mu);
  pthread_join(rx, NULL);
  for (int k = 0; k < 3; k++) send_feedback(1), usleep(20000);
  fprintf(stderr,
          "bb-stream-recv: %llu bytes from the stream, %llu by repair (%u of %u chunks repaired, %llu bytes fetched by HTTP), %u datagrams lost, %lld ms waiting for "
          "the stream to start\n",
          (unsigned long long)stream_bytes, (unsigned long long)repair_bytes, repaired_chunks, cfg.count, (unsigned long long)http_bytes, lost, (long long)waited);
  if (cfg.stats_file) {
    FILE *f = fopen(cfg.stats_file, "w");
    if (f) fprintf(f, "stream=%llu repair=%llu http=%llu\n", (unsigned long long)stream_bytes, (unsigned long long)repair_bytes, (unsigned long long)http_bytes), fclose(f);
  }
  return 0;
}
