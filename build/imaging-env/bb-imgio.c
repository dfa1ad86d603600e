// bb-imgio: the imaging agent's chunk mover, one process instead of dd, zstd, openssl and
// curl per batch of chunks staged in tmpfs files.
//
//   bb-imgio put -u URL -q QUERY -n PART [-L LEVEL] [-c CHUNKLIST] [-b BYTESFILE] [-e WHYFILE]
//       Cuts the stream on stdin into 4 MiB chunks, compresses each at LEVEL as its own zstd
//       frame, names it by the SHA-256 of the compressed bytes and uploads it with
//       PUT URL/imaging/chunks/SHA?QUERY over two keep-alive connections.
//       Appends "chunk=PART SHA" per chunk to CHUNKLIST in stream order once all are stored, and prints
//       "BYTES SHA256" of the whole stream on stdout at the end.
//   bb-imgio get -u URL -n PART -l LIST [-b BYTESFILE] [-e WHYFILE]
//       Fetches the chunks named in LIST (a SHA-256 first on each line) over one keep-alive connection,
//       checks each against its name before anything of it is written, and writes the
//       decompressed stream to stdout.
//   bb-imgio hash
//       Prints the SHA-256 of stdin.
//
// BYTESFILE holds the bytes done so far (the agent's reporter reads it every second): the
// value found there at the start plus this run's bytes, replaced by rename so a reader
// never sees half a number. WHYFILE gets the reason of a failure, in the agent's words.
//
// Reading, compressing and sending overlap (threads), as the processes of a pipe would.
// Only libc, libzstd and libcrypto: the imaging environment links it statically.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
// The SHA256_* calls, deprecated in OpenSSL 3 for EVP, link a fraction of libcrypto statically
// (EVP brings the provider machinery: about 3 MB more) and use the same CPU SHA code.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zstd.h>

#define CHUNK_BYTES (4u << 20)
// The host refuses a stored chunk above 4 MiB + 64 KiB (chunk-store.ts); a GET larger than
// that is not a chunk of ours.
#define MAX_STORED (CHUNK_BYTES + (64u << 10))
// Chunks in flight: one being read, two compressing, two uploading, one ready.
#define PUT_SLOTS 6
// Upload connections. With one, the next chunk waited while the host checked and stored
// the last; with two, one chunk travels while the host stores the other.
#define PUT_CONNS 2
// Chunks fetched ahead of the one being written.
#define GET_SLOTS 4

static const char *why_file;
static const char *bytes_file;
static unsigned long long bytes_base;

static void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fail(const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "bb-imgio: %s\n", msg);
  if (why_file) {
    FILE *f = fopen(why_file, "w");
    if (f) fprintf(f, "%s\n", msg), fclose(f);
  }
  exit(1);
}

static void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (!p) fail("out of memory (%zu bytes)", n);
  return p;
}

// ---- progress --------------------------------------------------------------------------

static void progress_start(void) {
  if (!bytes_file) return;
  FILE *f = fopen(bytes_file, "r");
  if (f) {
    if (fscanf(f, "%llu", &bytes_base) != 1) bytes_base = 0;
    fclose(f);
  }
}

static void progress_set(unsigned long long done) {
  if (!bytes_file) return;
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.bb-imgio", bytes_file);
  FILE *f = fopen(tmp, "w");
  if (!f) return;
  fprintf(f, "%llu\n", bytes_base + done);
  if (fclose(f) == 0) rename(tmp, bytes_file);
}

// ---- plain I/O ---------------------------------------------------------------------------

/** Reads up to n bytes, fewer only at the end of input. -1 on error. */
static ssize_t read_full(int fd, void *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, (char *)buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) break;
    got += (size_t)r;
  }
  return (ssize_t)got;
}

static int write_full(int fd, const void *buf, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, buf, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    buf = (const char *)buf + w;
    n -= (size_t)w;
  }
  return 0;
}

static void to_hex(const unsigned char *d, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (int i = 0; i < 32; i++) out[2 * i] = digits[d[i] >> 4], out[2 * i + 1] = digits[d[i] & 15];
  out[64] = 0;
}

static void sha256_hex(const void *data, size_t n, char *out) {
  unsigned char d[32];
  SHA256_CTX ctx; // not SHA256(): in OpenSSL 3 that one goes through EVP
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, data, n);
  SHA256_Final(d, &ctx);
  to_hex(d, out);
}

// ---- HTTP/1.1 client, one keep-alive connection ---------------------------------------

struct conn {
  struct sockaddr_storage addr;
  socklen_t addrlen;
  char hostport[300];
  char base[1024]; // path prefix of the URL, without a trailing slash
  int fd;
  char buf[64 << 10];
  size_t pos, len;
};

/** http://HOST[:PORT][/PREFIX]: HOST an IPv4 address, [IPv6] or a name. */
static void conn_init(struct conn *c, const char *url) {
  memset(c, 0, sizeof *c);
  c->fd = -1;
  if (strncmp(url, "http://", 7) != 0) fail("the host's address \"%s\" is not http://HOST[:PORT]", url);
  const char *h = url + 7, *path = strchr(h, '/');
  size_t hl = path ? (size_t)(path - h) : strlen(h);
  if (hl == 0 || hl >= sizeof c->hostport) fail("the host's address \"%s\" has no host", url);
  memcpy(c->hostport, h, hl);
  snprintf(c->base, sizeof c->base, "%s", path ? path : "");
  size_t bl = strlen(c->base);
  while (bl > 0 && c->base[bl - 1] == '/') c->base[--bl] = 0;

  char host[300], port[16] = "80";
  const char *colon;
  if (c->hostport[0] == '[') {
    const char *end = strchr(c->hostport, ']');
    if (!end) fail("the host's address \"%s\" has an unclosed [", url);
    snprintf(host, sizeof host, "%.*s", (int)(end - c->hostport - 1), c->hostport + 1);
    colon = end[1] == ':' ? end + 1 : NULL;
  } else {
    colon = strrchr(c->hostport, ':');
    snprintf(host, sizeof host, "%.*s", (int)(colon ? colon - c->hostport : (long)hl), c->hostport);
  }
  if (colon) snprintf(port, sizeof port, "%s", colon + 1);
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
  int rc = getaddrinfo(host, port, &hints, &res);
  if (rc != 0) fail("the host's address \"%s\" does not resolve: %s", host, gai_strerror(rc));
  memcpy(&c->addr, res->ai_addr, res->ai_addrlen);
  c->addrlen = res->ai_addrlen;
  freeaddrinfo(res);
}

static void conn_close(struct conn *c) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  c->pos = c->len = 0;
}

static int conn_open(struct conn *c) {
  if (c->fd >= 0) return 0;
  c->fd = socket(c->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c->fd < 0) return -1;
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  while (connect(c->fd, (struct sockaddr *)&c->addr, c->addrlen) != 0) {
    if (errno == EINTR) continue;
    int e = errno;
    conn_close(c);
    errno = e;
    return -1;
  }
  return 0;
}

static int conn_fill(struct conn *c) {
  if (c->pos > 0 && c->pos == c->len) c->pos = c->len = 0;
  if (c->len == sizeof c->buf) {
    memmove(c->buf, c->buf + c->pos, c->len - c->pos);
    c->len -= c->pos;
    c->pos = 0;
  }
  for (;;) {
    ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    c->len += (size_t)r;
    return 0;
  }
}

/** One header line (without CRLF) into line; -1 when the connection ends first. */
static int conn_line(struct conn *c, char *line, size_t size) {
  for (;;) {
    char *nl = memchr(c->buf + c->pos, '\n', c->len - c->pos);
    if (nl) {
      size_t n = (size_t)(nl - (c->buf + c->pos));
      size_t keep = n > 0 && nl[-1] == '\r' ? n - 1 : n;
      if (keep >= size) keep = size - 1;
      memcpy(line, c->buf + c->pos, keep);
      line[keep] = 0;
      c->pos += n + 1;
      return 0;
    }
    if (c->len - c->pos >= sizeof c->buf - 1) return -1; // a line longer than the buffer
    if (conn_fill(c) != 0) return -1;
  }
}

/** Exactly n body bytes into dst (NULL: discard). */
static int conn_body(struct conn *c, char *dst, size_t n) {
  while (n > 0) {
    if (c->pos == c->len) {
      // A large body goes straight into its buffer, not through ours.
      if (dst && n >= sizeof c->buf) {
        ssize_t r = read(c->fd, dst, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        dst += r, n -= (size_t)r;
        continue;
      }
      if (conn_fill(c) != 0) return -1;
    }
    size_t take = c->len - c->pos < n ? c->len - c->pos : n;
    if (dst) memcpy(dst, c->buf + c->pos, take), dst += take;
    c->pos += take;
    n -= take;
  }
  return 0;
}

struct response {
  int status;
  int close; // the host closes the connection after this response
  long long length; // Content-Length, or -1
  int chunked;
};

/**
 * Sends one request (head, then body when given) and reads the response's status and
 * headers. -1 when the connection failed before any of the response arrived: the caller
 * may open a new one and send again.
 */
static int http_send(struct conn *c, const char *method, const char *path, const void *body, size_t body_len, struct response *r) {
  char head[2048];
  int hl;
  if (body)
    hl = snprintf(head, sizeof head,
                  "%s %s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: bb-imgio\r\nContent-Type: application/octet-stream\r\nContent-Length: %zu\r\n\r\n",
                  method, c->base, path, c->hostport, body_len);
  else
    hl = snprintf(head, sizeof head, "%s %s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: bb-imgio\r\n\r\n", method, c->base, path, c->hostport);
  if (hl <= 0 || (size_t)hl >= sizeof head) fail("request path too long: %s", path);
  if (conn_open(c) != 0) return -1;
  struct iovec iov[2] = {{head, (size_t)hl}, {(void *)body, body ? body_len : 0}};
  int n = body ? 2 : 1;
  while (n > 0) {
    ssize_t w = writev(c->fd, iov, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      conn_close(c);
      return -1;
    }
    while (n > 0 && (size_t)w >= iov[0].iov_len) w -= (ssize_t)iov[0].iov_len, iov[0] = iov[1], n--;
    if (n > 0) iov[0].iov_base = (char *)iov[0].iov_base + w, iov[0].iov_len -= (size_t)w;
  }
  char line[1024];
  if (conn_line(c, line, sizeof line) != 0) {
    conn_close(c);
    return -1;
  }
  int minor = 1;
  if (sscanf(line, "HTTP/1.%d %d", &minor, &r->status) != 2) fail("the host sent \"%.80s\", not an HTTP/1.1 response", line);
  r->close = minor == 0;
  r->length = -1;
  r->chunked = 0;
  for (;;) {
    if (conn_line(c, line, sizeof line) != 0) fail("the host closed the connection in the middle of a response's headers");
    if (!line[0]) break;
    char *colon = strchr(line, ':');
    if (!colon) continue;
    *colon = 0;
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t') v++;
    if (!strcasecmp(line, "content-length")) r->length = strtoll(v, NULL, 10);
    else if (!strcasecmp(line, "transfer-encoding") && strcasestr(v, "chunked")) r->chunked = 1;
    else if (!strcasecmp(line, "connection") && strcasestr(v, "close")) r->close = 1;
  }
  return 0;
}

/**
 * The response body: into dst (at most cap bytes; the rest is read and dropped) when
 * dst is given. Returns the body's length; fails the run when the connection breaks.
 */
static size_t http_body(struct conn *c, const struct response *r, char *dst, size_t cap) {
  size_t total = 0;
  if (r->chunked) {
    char line[128];
    for (;;) {
      if (conn_line(c, line, sizeof line) != 0) fail("the host closed the connection in the middle of a response");
      unsigned long long n = strtoull(line, NULL, 16);
      if (n == 0) {
        do
          if (conn_line(c, line, sizeof line) != 0) fail("the host closed the connection in the middle of a response");
        while (line[0]);
        break;
      }
      size_t keep = total < cap ? (cap - total < n ? cap - total : n) : 0;
      if (conn_body(c, dst ? dst + total : NULL, dst ? keep : 0) != 0 || conn_body(c, NULL, n - (dst ? keep : 0)) != 0)
        fail("the host closed the connection in the middle of a response");
      total += dst ? keep : 0;
      if (conn_line(c, line, sizeof line) != 0) fail("the host closed the connection in the middle of a response");
    }
  } else if (r->length >= 0) {
    size_t n = (size_t)r->length, keep = dst ? (n < cap ? n : cap) : 0;
    if (conn_body(c, dst, keep) != 0 || conn_body(c, NULL, n - keep) != 0) fail("the host closed the connection in the middle of a response");
    total = keep;
  } else {
    // Neither length nor chunks: the body runs to the end of the connection.
    for (;;) {
      if (c->pos == c->len && conn_fill(c) != 0) break;
      size_t take = c->len - c->pos;
      if (dst && total < cap) memcpy(dst + total, c->buf + c->pos, take < cap - total ? take : cap - total);
      total += take;
      c->pos = c->len;
    }
    if (total > cap) total = cap;
    conn_close(c);
    return total;
  }
  if (r->close) conn_close(c);
  return total;
}

/** An error answer's text, one line, for a failure message. */
static void answer_text(struct conn *c, const struct response *r, char *out, size_t size) {
  size_t n = http_body(c, r, out, size - 1);
  out[n] = 0;
  for (char *p = out; *p; p++)
    if (*p == '\n' || *p == '\r') *p = ' ';
  while (n > 0 && out[n - 1] == ' ') out[--n] = 0;
}

// ---- put: capture ------------------------------------------------------------------------

enum { FREE, FILLED, PACKING, PACKED, SENDING };

struct put_slot {
  int state;
  unsigned long long seq;
  unsigned char *raw;
  size_t raw_len;
  unsigned char *packed;
  size_t packed_len;
  char sha[65];
};

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct put_slot slots[PUT_SLOTS];
  unsigned long long filled; // chunks read so far
  unsigned long long next_send; // the next chunk a sender takes: they go out in stream order
  unsigned long long sent_bytes; // stream bytes of the chunks the host has stored
  char (*names)[65]; // chunk names by stream position, for the chunk list
  size_t names_cap;
  int eof;
  int level;
  const char *error;
} put = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void *put_packer(void *arg) {
  (void)arg;
  ZSTD_CCtx *cctx = ZSTD_createCCtx();
  if (!cctx) fail("zstd: no compression context");
  // As the zstd program writes a chunk file: level, content size and checksum in the
  // frame, so a chunk captured here is byte for byte the one the program makes.
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, put.level);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1);
  pthread_mutex_lock(&put.mu);
  for (;;) {
    struct put_slot *s = NULL;
    for (int i = 0; i < PUT_SLOTS; i++)
      if (put.slots[i].state == FILLED && (!s || put.slots[i].seq < s->seq)) s = &put.slots[i];
    if (!s) {
      if (put.eof) break;
      pthread_cond_wait(&put.cv, &put.mu);
      continue;
    }
    s->state = PACKING;
    pthread_mutex_unlock(&put.mu);
    size_t n = ZSTD_compress2(cctx, s->packed, ZSTD_compressBound(CHUNK_BYTES), s->raw, s->raw_len);
    if (ZSTD_isError(n)) fail("zstd could not compress chunk %llu: %s", s->seq, ZSTD_getErrorName(n));
    s->packed_len = n;
    sha256_hex(s->packed, n, s->sha);
    pthread_mutex_lock(&put.mu);
    s->state = PACKED;
    pthread_cond_broadcast(&put.cv);
  }
  pthread_mutex_unlock(&put.mu);
  ZSTD_freeCCtx(cctx);
  return NULL;
}

struct put_args {
  struct conn conn;
  const char *query;
};

/** Uploads one chunk; "already stored" counts as stored. */
static void put_chunk(struct conn *c, const char *query, const struct put_slot *s) {
  char path[512];
  snprintf(path, sizeof path, "/imaging/chunks/%s%s%s", s->sha, query[0] ? "?" : "", query);
  struct response r;
  int tries = 0;
  // A keep-alive connection the host closed while idle fails at once: one new one is tried.
  while (http_send(c, "PUT", path, s->packed, s->packed_len, &r) != 0) {
    if (++tries > 1) fail("the host refused a chunk: could not send chunk %s: %s", s->sha, strerror(errno));
  }
  if (r.status != 200 && r.status != 201) {
    char text[400];
    answer_text(c, &r, text, sizeof text);
    fail("the host refused a chunk: HTTP %d for chunk %s: %s", r.status, s->sha, text);
  }
  http_body(c, &r, NULL, 0);
}

static void *put_sender(void *arg) {
  struct put_args *a = arg;
  for (;;) {
    pthread_mutex_lock(&put.mu);
    struct put_slot *s;
    for (;;) {
      s = &put.slots[put.next_send % PUT_SLOTS];
      if (s->state == PACKED && s->seq == put.next_send) break;
      if (put.eof && put.next_send == put.filled) {
        pthread_mutex_unlock(&put.mu);
        return NULL;
      }
      pthread_cond_wait(&put.cv, &put.mu);
    }
    s->state = SENDING;
    put.next_send++;
    pthread_mutex_unlock(&put.mu);
    put_chunk(&a->conn, a->query, s);
    pthread_mutex_lock(&put.mu);
    if (s->seq >= put.names_cap) {
      put.names_cap = put.names_cap ? put.names_cap * 2 : 256;
      if (!(put.names = realloc(put.names, put.names_cap * sizeof *put.names))) fail("out of memory");
    }
    memcpy(put.names[s->seq], s->sha, 65);
    put.sent_bytes += s->raw_len;
    progress_set(put.sent_bytes);
    s->state = FREE;
    pthread_cond_broadcast(&put.cv);
    pthread_mutex_unlock(&put.mu);
  }
}

static int cmd_put(const char *url, const char *query, const char *part, const char *list_path, int level) {
  static struct put_args senders[PUT_CONNS];
  for (int i = 0; i < PUT_CONNS; i++) conn_init(&senders[i].conn, url), senders[i].query = query;
  put.level = level;
  FILE *list = NULL;
  if (list_path && !(list = fopen(list_path, "a"))) fail("could not open the chunk list %s: %s", list_path, strerror(errno));
  for (int i = 0; i < PUT_SLOTS; i++) {
    put.slots[i].raw = xmalloc(CHUNK_BYTES);
    put.slots[i].packed = xmalloc(ZSTD_compressBound(CHUNK_BYTES));
  }
  // Two packers: the reader (and partclone before it) and the sender take little CPU, and
  // the imaging environment's PCs have at least two cores.
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  int packers = cores >= 4 ? 3 : 2;
  pthread_t threads[4];
  for (int i = 0; i < packers; i++) pthread_create(&threads[i], NULL, put_packer, NULL);
  pthread_t sender_threads[PUT_CONNS];
  for (int i = 0; i < PUT_CONNS; i++) pthread_create(&sender_threads[i], NULL, put_sender, &senders[i]);

  SHA256_CTX whole;
  SHA256_Init(&whole);
  unsigned long long total = 0, seq = 0;
  for (;;) {
    pthread_mutex_lock(&put.mu);
    struct put_slot *s = &put.slots[seq % PUT_SLOTS];
    while (s->state != FREE) pthread_cond_wait(&put.cv, &put.mu);
    pthread_mutex_unlock(&put.mu);
    ssize_t n = read_full(0, s->raw, CHUNK_BYTES);
    if (n < 0) fail("reading the partition's stream failed: %s", strerror(errno));
    if (n > 0) {
      SHA256_Update(&whole, s->raw, (size_t)n);
      total += (unsigned long long)n;
    }
    pthread_mutex_lock(&put.mu);
    if (n > 0) {
      s->raw_len = (size_t)n;
      s->seq = seq++;
      s->state = FILLED;
      put.filled = seq;
    }
    if (n < (ssize_t)CHUNK_BYTES) put.eof = 1;
    pthread_cond_broadcast(&put.cv);
    pthread_mutex_unlock(&put.mu);
    if (n < (ssize_t)CHUNK_BYTES) break;
  }
  for (int i = 0; i < packers; i++) pthread_join(threads[i], NULL);
  for (int i = 0; i < PUT_CONNS; i++) pthread_join(sender_threads[i], NULL);
  // Every chunk is stored: the list, in stream order.
  for (unsigned long long i = 0; list && i < put.filled; i++)
    if (fprintf(list, "chunk=%s %s\n", part, put.names[i]) < 0) fail("could not write the chunk list");
  if (list && fclose(list) != 0) fail("could not write the chunk list");
  unsigned char d[32];
  char hex[65];
  SHA256_Final(d, &whole);
  to_hex(d, hex);
  printf("%llu %s\n", total, hex);
  return fflush(stdout) == 0 ? 0 : 1;
}

// ---- get: deploy -------------------------------------------------------------------------

enum { EMPTY, FETCHING, READY };

struct get_slot {
  int state;
  size_t index;
  unsigned char *data;
  size_t len;
  char problem[512]; // set when the chunk must not be written
};

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct get_slot slots[GET_SLOTS];
  char (*names)[65];
  size_t count;
  struct conn conn;
  const char *part;
} get = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/** Fetches chunk i into s and checks it against its name; what is wrong goes to s->problem. */
static void get_chunk(struct get_slot *s, size_t i) {
  const char *sha = get.names[i];
  char path[128];
  snprintf(path, sizeof path, "/imaging/chunks/%s", sha);
  struct response r;
  int tries = 0;
  s->problem[0] = 0;
  while (http_send(&get.conn, "GET", path, NULL, 0, &r) != 0) {
    if (++tries > 1) {
      snprintf(s->problem, sizeof s->problem, "a chunk of partition %s could not be fetched: chunk %s: %s", get.part, sha, strerror(errno));
      return;
    }
  }
  if (r.status != 200) {
    char text[300];
    answer_text(&get.conn, &r, text, sizeof text);
    snprintf(s->problem, sizeof s->problem, "a chunk of partition %s could not be fetched: the host answered HTTP %d for chunk %s: %s", get.part, r.status, sha,
             text);
    return;
  }
  if (r.chunked || r.length < 0 || r.length > (long long)MAX_STORED) {
    snprintf(s->problem, sizeof s->problem, "a chunk of partition %s could not be fetched: chunk %s came without a length or larger than a chunk", get.part, sha);
    conn_close(&get.conn);
    return;
  }
  s->len = http_body(&get.conn, &r, (char *)s->data, MAX_STORED);
  char got[65];
  sha256_hex(s->data, s->len, got);
  if (strcmp(got, sha) != 0) snprintf(s->problem, sizeof s->problem, "chunk %s arrived damaged (SHA-256 %s): nothing of it was written", sha, got);
}

static void *get_fetcher(void *arg) {
  (void)arg;
  for (size_t i = 0; i < get.count; i++) {
    struct get_slot *s = &get.slots[i % GET_SLOTS];
    pthread_mutex_lock(&get.mu);
    while (s->state != EMPTY) pthread_cond_wait(&get.cv, &get.mu);
    s->state = FETCHING;
    pthread_mutex_unlock(&get.mu);
    get_chunk(s, i);
    pthread_mutex_lock(&get.mu);
    s->index = i;
    s->state = READY;
    pthread_cond_broadcast(&get.cv);
    pthread_mutex_unlock(&get.mu);
    if (s->problem[0]) break; // the writer stops at this one
  }
  return NULL;
}

static int cmd_get(const char *url, const char *part, const char *list_path) {
  conn_init(&get.conn, url);
  get.part = part;
  FILE *f = fopen(list_path, "r");
  if (!f) fail("could not read the chunk list %s: %s", list_path, strerror(errno));
  size_t cap = 64;
  get.names = xmalloc(cap * sizeof *get.names);
  char line[256];
  while (fgets(line, sizeof line, f)) {
    char sha[65];
    if (sscanf(line, "%64[0-9a-f]", sha) != 1 || strlen(sha) != 64) continue;
    if (get.count == cap) {
      get.names = realloc(get.names, (cap *= 2) * sizeof *get.names);
      if (!get.names) fail("out of memory");
    }
    memcpy(get.names[get.count++], sha, 65);
  }
  fclose(f);
  for (int i = 0; i < GET_SLOTS; i++) get.slots[i].data = xmalloc(MAX_STORED);

  pthread_t fetcher;
  pthread_create(&fetcher, NULL, get_fetcher, NULL);
  ZSTD_DCtx *dctx = ZSTD_createDCtx();
  size_t out_cap = CHUNK_BYTES + (1u << 20);
  unsigned char *out = xmalloc(out_cap);
  unsigned long long done = 0;
  for (size_t i = 0; i < get.count; i++) {
    struct get_slot *s = &get.slots[i % GET_SLOTS];
    pthread_mutex_lock(&get.mu);
    while (s->state != READY || s->index != i) pthread_cond_wait(&get.cv, &get.mu);
    pthread_mutex_unlock(&get.mu);
    if (s->problem[0]) fail("%s", s->problem);
    // The whole chunk is decompressed before any of it is written: a chunk that does not
    // decompress leaves nothing of itself behind.
    ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
    ZSTD_inBuffer in = {s->data, s->len, 0};
    ZSTD_outBuffer o = {out, out_cap, 0};
    size_t rc;
    do {
      if (o.pos == o.size) {
        if (out_cap >= (256u << 20)) fail("chunk %s decompresses to more than 256 MiB: not a chunk of ours", get.names[i]);
        out = realloc(out, out_cap *= 2);
        if (!out) fail("out of memory");
        o.dst = out, o.size = out_cap;
      }
      rc = ZSTD_decompressStream(dctx, &o, &in);
      if (ZSTD_isError(rc)) fail("a chunk of partition %s does not decompress: chunk %s: %s", part, get.names[i], ZSTD_getErrorName(rc));
    } while (in.pos < in.size || (rc != 0 && o.pos == o.size));
    if (rc != 0) fail("a chunk of partition %s does not decompress: chunk %s ends in the middle of a frame", part, get.names[i]);
    pthread_mutex_lock(&get.mu);
    s->state = EMPTY;
    pthread_cond_broadcast(&get.cv);
    pthread_mutex_unlock(&get.mu);
    if (write_full(1, out, o.pos) != 0) fail("writing partition %s's data failed: %s", part, strerror(errno));
    done += o.pos;
    progress_set(done);
  }
  pthread_join(fetcher, NULL);
  return 0;
}

// ---- hash --------------------------------------------------------------------------------

static int cmd_hash(void) {
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  size_t cap = 1u << 20;
  unsigned char *buf = xmalloc(cap);
  for (;;) {
    ssize_t n = read(0, buf, cap);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("reading stdin failed: %s", strerror(errno));
    if (n == 0) break;
    SHA256_Update(&ctx, buf, (size_t)n);
  }
  unsigned char d[32];
  char hex[65];
  SHA256_Final(d, &ctx);
  to_hex(d, hex);
  printf("%s\n", hex);
  return fflush(stdout) == 0 ? 0 : 1;
}

static void usage(void) {
  fprintf(stderr,
          "usage: bb-imgio put -u URL -q QUERY -n PART [-L LEVEL] [-c CHUNKLIST] [-b BYTESFILE] [-e WHYFILE]\n"
          "       bb-imgio get -u URL -n PART -l LIST [-b BYTESFILE] [-e WHYFILE]\n"
          "       bb-imgio hash\n");
  exit(64);
}

int main(int argc, char **argv) {
  if (argc < 2) usage();
  const char *mode = argv[1];
  const char *url = NULL, *query = "", *part = "?", *list = NULL, *chunks = NULL;
  int level = 4, opt;
  optind = 2;
  while ((opt = getopt(argc, argv, "u:q:n:l:c:b:e:L:")) != -1) {
    switch (opt) {
      case 'u': url = optarg; break;
      case 'q': query = optarg; break;
      case 'n': part = optarg; break;
      case 'l': list = optarg; break;
      case 'c': chunks = optarg; break;
      case 'b': bytes_file = optarg; break;
      case 'e': why_file = optarg; break;
      case 'L': level = atoi(optarg); break;
      default: usage();
    }
  }
  // A reader that went away (partclone.restore failed) shows as EPIPE on the write, and
  // its own failure is what the agent reports.
  signal(SIGPIPE, SIG_IGN);
  progress_start();
  if (!strcmp(mode, "put") && url) return cmd_put(url, query, part, chunks, level);
  if (!strcmp(mode, "get") && url && list) return cmd_get(url, part, list);
  if (!strcmp(mode, "hash")) return cmd_hash();
  usage();
}
