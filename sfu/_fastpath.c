/* Convene's steady-state send for one subscriber: header rewrite, SRTP protect in place with the
 * connection's own libsrtp session (through pylibsrtp's loaded srtp_protect), send on the pair's socket.
 * Python decides everything else (keyframe waits, layer switches, RTX, NACKs, RTCP) and keeps the
 * counters; this only moves bytes. Built by sfu/fastpath_build.py. */
#include <errno.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

typedef int (*convene_protect_fn)(void *ctx, void *buf, int *len);

#define CONVENE_ROOM 1500

/* Fills `out` (a sockaddr_storage) for an IPv4 (4 bytes) or IPv6 (16 bytes) address; returns its length. */
int convene_sockaddr(void *out_, int family, const char *ip_, int port)
{
    unsigned char *out = out_;
    const unsigned char *ip = (const unsigned char *)ip_;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)out;
        memset(a, 0, sizeof(*a));
        a->sin_family = AF_INET;
        a->sin_port = htons((unsigned short)port);
        memcpy(&a->sin_addr, ip, 4);
        return (int)sizeof(*a);
    }
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
        memset(a, 0, sizeof(*a));
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((unsigned short)port);
        memcpy(&a->sin6_addr, ip, 16);
        return (int)sizeof(*a);
    }
    return -1;
}

static void put16(unsigned char *p, unsigned int v) { p[0] = (unsigned char)(v >> 8); p[1] = (unsigned char)v; }
static void put32(unsigned char *p, unsigned int v)
{
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16); p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}

/* The bytes sfu.rtp.RtpWriter.pack_into writes: 12-byte header (V=2, X=1), the extension block's constant part
 * (profile, length, MID element, abs-send-time id), the 3 abs-send-time bytes (unless NULL), the audio-level element when
 * level_word >= 0, `pad` zero bytes, the payload. Then protect in place and, when `send` is set, sendto.
 * Returns the protected length (sent, or left in buf when send == 0 or the socket would block: *blocked = 1);
 * -1 too big, -2 protect failed, -3 another send error (errno in *blocked). */
int convene_send(void *protect_, void *ctx, int fd, void *addr, int addrlen,
                 void *buf_, const char *constant, int constant_len,
                 int second, unsigned int seq, unsigned int ts, unsigned int ssrc,
                 const char *send_time, int level_word, int pad,
                 const char *payload, int payload_len, int send, int *blocked)
{
    /* pylibsrtp's srtp_protect (libsrtp 2: in place, int length), checked by sfu/aiortc_seams.srtp_problems */
    convene_protect_fn protect = (convene_protect_fn)protect_;
    unsigned char *buf = buf_;
    int n = 12 + constant_len + (send_time ? 3 : 0) + (level_word >= 0 ? 2 : 0) + pad;
    if (n + payload_len > CONVENE_ROOM)
        return -1;
    buf[0] = 0x90;
    buf[1] = (unsigned char)second;
    put16(buf + 2, seq);
    put32(buf + 4, ts);
    put32(buf + 8, ssrc);
    memcpy(buf + 12, constant, (size_t)constant_len);
    int at = 12 + constant_len;
    if (send_time) {  /* NULL: no abs-send-time negotiated (audio) */
        memcpy(buf + at, send_time, 3);
        at += 3;
    }
    if (level_word >= 0) {
        put16(buf + at, (unsigned int)level_word);
        at += 2;
    }
    memset(buf + at, 0, (size_t)pad);
    memcpy(buf + n, payload, (size_t)payload_len);
    int length = n + payload_len;
    *blocked = 0;
    if (protect(ctx, buf, &length) != 0)
        return -2;
    if (!send)
        return length;
    ssize_t sent = sendto(fd, buf, (size_t)length, 0, (const struct sockaddr *)addr, (socklen_t)addrlen);
    if (sent < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            *blocked = 1;
            return length;
        }
        *blocked = errno;
        return -3;
    }
    return length;
}

/* -- the batched fan-out: one call per incoming packet for every steady subscriber of a publication layer ----
 * Python fills an entry when a subscription becomes steady (started, on its target layer, its connection's path
 * resolved) and takes it out when that changes (layer switch, keyframe wait, pair change, pause: the last entry
 * moves into its place, so entries 0..n-1 are all steady); it reads the counters lazily (sender reports, NACK history, stats). Must match CONVENE_ENTRY in sfu/fastpath_build.py. */
struct convene_entry {
    void *ctx;                      /* the connection's own libsrtp session (one per transport) */
    unsigned char *buf;             /* its RtpPath buffer: an EAGAIN leaves the protected packet here */
    int fd;                         /* a dup() of the nominated pair's socket (never a TURN pair) */
    int addrlen;
    unsigned char addr[128];        /* sockaddr of the pair's remote address */
    unsigned char constant[2][64];  /* extension block's constant part: [0] without, [1] with the audio level */
    int constant_len[2];
    int pad[2];
    int with_time;                  /* an abs-send-time element follows the constant part */
    int level_id;                   /* negotiated audio-level id (0: none) */
    unsigned int ssrc;              /* the sender's own SSRC */
    int in_pt, out_pt;              /* the publisher's payload type and the subscriber's */
    unsigned int seq_offset, ts_offset;
    unsigned long long packets, octets, bytes, fast;  /* media packets, payload octets, plaintext bytes, sent here */
    unsigned int last_seq, last_ts;
    double last_wall;               /* CLOCK_MONOTONIC seconds of the newest sequence number (time.monotonic) */
};

/* status[i]: 0 sent; > 0 protected length left in the entry's buffer (EAGAIN: Python queues it on the transport);
 * -1 not handled here (skipped: the transport holds a backlog, another payload type, too big):
 * Python forwards it; -2 dropped (protect failed, a send error). Returns how many entries are not 0. */
int convene_fanout(void *protect_, struct convene_entry *entries, int n, int marker, int pt,
                   unsigned int seq, unsigned int ts, const char *send_time, int level,
                   const char *payload, int payload_len, const unsigned char *skip, int *status)
{
    convene_protect_fn protect = (convene_protect_fn)protect_;
    int others = 0;
    double now = -1.0;
    for (int i = 0; i < n; i++) {
        struct convene_entry *e = &entries[i];
        if ((skip && skip[i]) || e->in_pt != pt) {
            status[i] = -1;
            others++;
            continue;
        }
        int shape = (level >= 0 && e->level_id) ? 1 : 0;
        int clen = e->constant_len[shape];
        int head = 12 + clen + (e->with_time ? 3 : 0) + (shape ? 2 : 0) + e->pad[shape];
        if (head + payload_len > CONVENE_ROOM) {
            status[i] = -1;
            others++;
            continue;
        }
        unsigned char *buf = e->buf;
        unsigned int out_seq = (seq + e->seq_offset) & 0xFFFF;
        unsigned int out_ts = ts + e->ts_offset;
        buf[0] = 0x90;
        buf[1] = (unsigned char)((marker ? 0x80 : 0) | (e->out_pt & 0x7F));
        put16(buf + 2, out_seq);
        put32(buf + 4, out_ts);
        put32(buf + 8, e->ssrc);
        memcpy(buf + 12, e->constant[shape], (size_t)clen);
        int at = 12 + clen;
        if (e->with_time) {
            memcpy(buf + at, send_time, 3);
            at += 3;
        }
        if (shape) {
            put16(buf + at, (unsigned int)((e->level_id << 12) | (level & 0xFF)));
            at += 2;
        }
        memset(buf + at, 0, (size_t)e->pad[shape]);
        memcpy(buf + head, payload, (size_t)payload_len);
        int length = head + payload_len;
        if (protect(e->ctx, buf, &length) != 0) {
            status[i] = -2;
            others++;
            continue;
        }
        ssize_t sent = sendto(e->fd, buf, (size_t)length, 0, (const struct sockaddr *)e->addr, (socklen_t)e->addrlen);
        if (sent < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                status[i] = length;  /* protected: must go out as is (a second protect would reuse the nonce) */
                others++;
            } else {
                status[i] = -2;
                others++;
                continue;
            }
        } else {
            status[i] = 0;
            e->fast++;
        }
        e->packets++;
        e->octets += (unsigned long long)payload_len;
        e->bytes += (unsigned long long)(head + payload_len);
        unsigned int ahead = (out_seq - e->last_seq) & 0xFFFF;
        if (ahead != 0 && ahead < 0x8000) {
            if (now < 0) {
                struct timespec t;
                clock_gettime(CLOCK_MONOTONIC, &t);
                now = (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
            }
            e->last_seq = out_seq;
            e->last_ts = out_ts;
            e->last_wall = now;
        }
    }
    return others;
}
