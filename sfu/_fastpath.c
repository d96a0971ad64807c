/* Convene's steady-state send for one subscriber: header rewrite, SRTP protect in place with the
 * connection's own libsrtp session (through pylibsrtp's loaded srtp_protect), send on the pair's socket.
 * Python decides everything else (keyframe waits, layer switches, RTX, NACKs, RTCP) and keeps the
 * counters; this only moves bytes. Built by sfu/fastpath_build.py. */
#include <errno.h>
#include <stdlib.h>
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
static int fan(convene_protect_fn protect, struct convene_entry *entries, int n, int marker, int pt,
               unsigned int seq, unsigned int ts, const char *send_time, int level,
               const unsigned char *payload, int payload_len, const unsigned char *skip, int *status)
{
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

int convene_fanout(void *protect, struct convene_entry *entries, int n, int marker, int pt,
                   unsigned int seq, unsigned int ts, const char *send_time, int level,
                   const char *payload, int payload_len, const unsigned char *skip, int *status)
{
    return fan((convene_protect_fn)protect, entries, n, marker, pt, seq, ts, send_time, level,
               (const unsigned char *)payload, payload_len, skip, status);
}

/* -- the packet ring: the last 512 packets of one video stream, by sequence number, for NACKs --------------
 * Python's PacketCache keeps its packets here once its stream has a receive route, so that both paths keep
 * one ring (sfu/packet_cache.py). A slot's buffer is grown to the largest payload it held, never shrunk. */
#define CONVENE_RING 512

struct convene_slot {
    int seq;  /* -1: empty */
    int pt, marker, padding;
    unsigned int ts;
    int len, cap;
    unsigned char *data;
};

struct convene_ring {
    struct convene_slot slots[CONVENE_RING];
};

struct convene_ring *convene_ring_new(void)
{
    struct convene_ring *ring = calloc(1, sizeof(*ring));
    if (ring)
        for (int i = 0; i < CONVENE_RING; i++)
            ring->slots[i].seq = -1;
    return ring;
}

void convene_ring_free(struct convene_ring *ring)
{
    if (!ring)
        return;
    for (int i = 0; i < CONVENE_RING; i++)
        free(ring->slots[i].data);
    free(ring);
}

/* 0 kept; -1 out of memory (the slot is emptied: a NACK for it goes unanswered, as for an evicted packet) */
int convene_ring_put(struct convene_ring *ring, int seq, int pt, int marker, unsigned int ts, int padding,
                     const char *payload, int len)
{
    struct convene_slot *slot = &ring->slots[seq % CONVENE_RING];
    if (len > slot->cap) {
        unsigned char *grown = realloc(slot->data, (size_t)len);
        if (!grown) {
            slot->seq = -1;
            return -1;
        }
        slot->data = grown;
        slot->cap = len;
    }
    memcpy(slot->data, payload, (size_t)len);
    slot->seq = seq;
    slot->pt = pt;
    slot->marker = marker;
    slot->padding = padding;
    slot->ts = ts;
    slot->len = len;
    return 0;
}

/* The payload's length (copied into out, fields[0..2] = payload type, marker, padding, *ts); -1 not kept. */
int convene_ring_get(struct convene_ring *ring, int seq, int *fields, unsigned int *ts, char *out, int room)
{
    struct convene_slot *slot = &ring->slots[seq % CONVENE_RING];
    if (slot->seq != seq || slot->len > room)
        return -1;
    fields[0] = slot->pt;
    fields[1] = slot->marker;
    fields[2] = slot->padding;
    *ts = slot->ts;
    memcpy(out, slot->data, (size_t)slot->len);
    return slot->len;
}

/* -- the receive route: one incoming stream's steady packets, from datagram to subscribers in one call ---------
 * Python arms a route for one upstream SSRC while nothing about its packets needs a decision (every receiver of
 * the publication is in a batched fan-out, no pipe taps it, not muted, no loudest-speakers gate) and pushes its
 * receiver's statistics into it; it takes them back (`pull`) before it handles any packet of that receiver
 * itself. Here only a packet that continues the stream in order (the next sequence number, the route's payload
 * type, no padding, no CSRC, well-formed one-byte extensions) is handled: statistics as aiortc's
 * StreamStatistics.add keeps them, the ring (video), the audio-level counts, the fan-out. Anything else goes
 * back to Python as plaintext (it was unprotected here, and a second unprotect would be refused as a replay). */
struct convene_route {
    unsigned int ssrc;
    int pt;
    int clock_rate;
    int level_id;                /* the negotiated audio-level id (0: none): copied to subscribers, counted */
    int max_seq;
    long long cycles, received, jitter_q4, last_arrival, last_timestamp;
    /* handled here, ever: Python folds the difference (packets, payload octets; audio: levels heard, voiced
     * packets (level below VOICE_LEVEL -dBov), their loudness as 127 - level) */
    unsigned long long packets, octets, heard, voiced, loudness;
    struct convene_ring *ring;   /* video: the NACK ring; audio: NULL (never resent) */
    /* For convene_drain, set by Python before each call (ReceiveRoute.open): 1 when its publication allows
     * C-only handling now (routable, no subscriber's socket holds a backlog), the fan-out to serve, and 1 in
     * `after` when receivers outside the batch need each packet from Python (route's _after). */
    int open, after, members;
    struct convene_entry *entries;
    int *status;
    struct convene_log *log;     /* a client that only counts (the load-test bots): each packet logged, or NULL */
    /* The loudest-speakers gate of a big room (sfu.selection.AudioGate), set by Python with `open`: GATE_OFF, or
     * GATE_IN while the stream is among the loudest (C times its voiced packets in voiced_at, CLOCK_MONOTONIC
     * seconds as Python's time.monotonic()), or GATE_OUT: its voiced packets go to Python, which may let it in;
     * its unvoiced ones reach no subscriber (the gate left none active) and are only counted here. */
    int gate;
    double voiced_at;
};

/* What a counting client needs of one packet (loadtest/track_stats.py), logged here and read by Python once
 * per call in place of the packet entering Python. The layout is fixed: Python reads the records with
 * struct "=dIIIii12s" (sfu.aiortc_seams.RECORD). */
#define CONVENE_LOG 64  /* >= the drain's budget: Python empties the log after every call */
struct convene_record {
    double arrival;              /* CLOCK_MONOTONIC seconds: Python's time.monotonic() */
    unsigned int ssrc, seq, ts;
    int marker, size;            /* size: the payload's octets */
    unsigned char tail[12];      /* the payload's last min(size, 12) octets, at the end; zeros before */
};
struct convene_log {
    int n;
    unsigned long long lost;     /* records that found the log full (a bug if ever non-zero) */
    struct convene_record records[CONVENE_LOG];
};

static void log_packet(struct convene_log *log, unsigned int ssrc, unsigned int seq, unsigned int ts, int marker,
                       const unsigned char *payload, int size)
{
    if (log->n >= CONVENE_LOG) {
        log->lost++;
        return;
    }
    struct convene_record *r = &log->records[log->n++];
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    r->arrival = (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
    r->ssrc = ssrc;
    r->seq = seq;
    r->ts = ts;
    r->marker = marker;
    r->size = size;
    int tail = size < 12 ? size : 12;
    memset(r->tail, 0, 12);
    memcpy(r->tail + 12 - tail, payload + size - tail, (size_t)tail);
}

#define VOICE_LEVEL 60  /* sfu.publication.VOICE_LEVEL (tests/sfu/test_fastpath_constants.py checks the pairs) */
enum { GATE_OFF = 0, GATE_IN = 1, GATE_OUT = 2 };  /* sfu.selection.GATE_* */

typedef int (*convene_unprotect_fn)(void *ctx, void *buf, int *len);

#define CONVENE_MAX_SRTP (CONVENE_ROOM + 64)  /* longer: Python unprotects it */

static unsigned int get16(const unsigned char *p) { return ((unsigned int)p[0] << 8) | p[1]; }
static unsigned int get32(const unsigned char *p)
{
    return ((unsigned int)p[0] << 24) | ((unsigned int)p[1] << 16) | ((unsigned int)p[2] << 8) | p[3];
}

static double wall_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double monotonic_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* One-byte header extensions (RFC 8285) in [at, end): 0 when an element does not fit (or the audio level is not
 * one byte, as sfu.rtp.parse_forwarded refuses it), else 1 with *level the audio-level byte (-1: none). */
static int read_elements(const unsigned char *buf, int at, int end, int level_id, int *level)
{
    *level = -1;
    while (at < end) {
        if (buf[at] == 0) {
            at++;
            continue;
        }
        int id = buf[at] >> 4, length = (buf[at] & 0x0F) + 1;
        if (at + 1 + length > end)
            return 0;
        if (level_id && id == level_id) {
            if (length != 1)
                return 0;
            *level = buf[at + 1];
        }
        at += 1 + length;
    }
    return 1;
}

/* Returns 0: handled (*others entries have a status != 0 for Python, as convene_fanout's; send_time holds the
 * abs-send-time the packet went out with); 1: unprotected but not the route's, or a voice its gate holds out
 * (the plaintext is buf[0..*plain_len)); 2: not touched (too long: Python unprotects it); -2: not authentic,
 * replayed or malformed SRTP (dropped, as Python drops it). */
int convene_receive(void *unprotect_, void *ctx, const char *data, int len, unsigned char *buf, int *plain_len,
                    struct convene_route *route, void *protect,
                    struct convene_entry *entries, int n, int *status, int *others, char *send_time)
{
    convene_unprotect_fn unprotect = (convene_unprotect_fn)unprotect_;
    if (len > CONVENE_MAX_SRTP)
        return 2;
    memcpy(buf, data, (size_t)len);
    int length = len;
    if (unprotect(ctx, buf, &length) != 0)
        return -2;
    *plain_len = length;
    *others = 0;
    if (length < 12 || (buf[0] & 0xEF) != 0x80)  /* version 2, no padding, no CSRC; X either way */
        return 1;
    int pt = buf[1] & 0x7F, marker = buf[1] >> 7;
    unsigned int seq = get16(buf + 2), ts = get32(buf + 4);
    if (get32(buf + 8) != route->ssrc || pt != route->pt || seq != (((unsigned int)route->max_seq + 1) & 0xFFFF))
        return 1;
    int at = 12, level = -1;
    if (buf[0] & 0x10) {
        if (length < 16 || get16(buf + 12) != 0xBEDE)
            return 1;
        at = 16 + 4 * (int)get16(buf + 14);
        if (at > length || !read_elements(buf, 16, at, route->level_id, &level))
            return 1;
    }
    /* as Publication.on_rtp: a packet without a level can't be ranked, so it counts as a voice */
    int voiced = level < 0 || (level & 0x7F) < VOICE_LEVEL;
    if (route->gate == GATE_OUT && voiced)
        return 1;  /* Python's gate decides whether this voice gets a place (nothing counted here yet) */
    /* statistics, as aiortc's StreamStatistics.add for a packet in order */
    double now = wall_now();
    long long arrival = (long long)(now * route->clock_rate);
    route->received++;
    if ((int)seq < route->max_seq)
        route->cycles += 1 << 16;
    route->max_seq = (int)seq;
    if ((long long)ts != route->last_timestamp && route->received > 1) {
        long long diff = (arrival - route->last_arrival) - ((long long)ts - route->last_timestamp);
        if (diff < 0)
            diff = -diff;
        route->jitter_q4 += diff - ((route->jitter_q4 + 8) >> 4);
    }
    route->last_arrival = arrival;
    route->last_timestamp = (long long)ts;
    int payload_len = length - at;
    if (route->ring)
        convene_ring_put(route->ring, (int)seq, pt, marker, ts, 0, (const char *)buf + at, payload_len);
    route->packets++;
    route->octets += (unsigned long long)payload_len;
    if (route->log)
        log_packet(route->log, route->ssrc, seq, ts, marker, buf + at, payload_len);
    if (level >= 0) {  /* as Publication.on_rtp counts for the speaker detector */
        route->heard++;
        if ((level & 0x7F) < VOICE_LEVEL) {
            route->voiced++;
            route->loudness += (unsigned long long)(127 - (level & 0x7F));
        }
    }
    /* abs-send-time: 6.18 fixed-point NTP seconds, as sfu.rtp.abs_send_time (NTP_UNIX_OFFSET = 2208988800) */
    unsigned int abs = (unsigned int)((long long)((now + 2208988800.0) * 262144.0) & 0xFFFFFF);
    send_time[0] = (char)(abs >> 16);  /* also for Python: what it forwards of this packet carries the same */
    send_time[1] = (char)(abs >> 8);
    send_time[2] = (char)abs;
    *others = fan((convene_protect_fn)protect, entries, n, marker, pt, seq, ts, send_time, level, buf + at,
                  payload_len, NULL, status);
    if (route->gate == GATE_IN && voiced)
        route->voiced_at = monotonic_now();
    return 0;
}


/* -- the socket drain: a host socket's wake-up read in C, its steady routed packets never entering Python ------
 * asyncio reads one datagram per call into Python; here one call reads the socket until it is empty (or the
 * wake-up's budget is spent) and handles every datagram of an open route to the end (convene_receive). It
 * returns to Python at the first datagram that needs it, which Python handles before it calls again. No Python
 * runs between the datagrams of one call, so what Python checked before the call (ReceiveRoute.open) holds for
 * all of them, as it held for each one on the per-datagram path. */
#define CONVENE_ROUTES 64  /* a load-test bot receives up to ~50 streams on one connection */
#define CONVENE_DATAGRAM 65536  /* a UDP payload's upper bound: nothing is truncated */

/* One connection's armed routes by SSRC (its InlineReceive's, rebuilt at every arm and disarm). */
struct convene_routes {
    int n;
    unsigned int ssrc[CONVENE_ROUTES];
    struct convene_route *route[CONVENE_ROUTES];
};

struct convene_drain {
    int fd;
    int budget;                  /* datagrams this wake-up may still read (fairness between sockets) */
    int reads;                   /* datagrams read, ever */
    unsigned char *raw;          /* CONVENE_DATAGRAM bytes: the datagram handed back (DRAIN_RAW) */
    int raw_len;
    unsigned char addr[128];     /* its sender (a sockaddr) */
    int addrlen;
    int error;                   /* errno of a failed read (DRAIN_ERROR) */
    int index;                   /* the route a DRAIN_AFTER or DRAIN_PLAIN is about */
    unsigned long long rx_bytes, rx_packets;  /* consumed here, for the transport's statistics (Python folds) */
    unsigned long long handled;  /* datagrams handled to the end here, never entering Python, ever */
    /* the connection's receive (InlineReceive's): its own libsrtp session and the route's buffers */
    void *unprotect, *ctx, *protect;
    unsigned char *buf;
    int *plain_len, *others;
    char *send_time;
    struct convene_routes *routes;
};

enum { DRAIN_EMPTY = 0, DRAIN_RAW = 1, DRAIN_AFTER = 2, DRAIN_PLAIN = 3, DRAIN_SPENT = 4, DRAIN_ERROR = 5 };

/* The open route an SRTP (not SRTCP) datagram belongs to, or -1. */
static int open_route(const struct convene_routes *routes, const unsigned char *p, int len)
{
    if (len < 12 || len > CONVENE_MAX_SRTP || p[0] < 128 || p[0] > 191 || (p[1] >= 192 && p[1] <= 223))
        return -1;
    unsigned int ssrc = get32(p + 8);
    for (int i = 0; i < routes->n; i++)
        if (routes->ssrc[i] == ssrc)
            return routes->route[i]->open ? i : -1;
    return -1;
}

int convene_drain(struct convene_drain *d)
{
    while (d->budget > 0) {
        struct sockaddr_storage from;
        socklen_t fromlen = sizeof(from);
        ssize_t got = recvfrom(d->fd, d->raw, CONVENE_DATAGRAM, 0, (struct sockaddr *)&from, &fromlen);
        if (got < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return DRAIN_EMPTY;
            if (errno == EINTR)
                continue;
            d->error = errno;
            return DRAIN_ERROR;
        }
        d->budget--;
        d->reads++;
        int len = (int)got;
        int i = open_route(d->routes, d->raw, len);
        if (i < 0) {
            d->raw_len = len;
            d->addrlen = fromlen <= sizeof(d->addr) ? (int)fromlen : (int)sizeof(d->addr);
            memcpy(d->addr, &from, (size_t)d->addrlen);
            return DRAIN_RAW;
        }
        struct convene_route *r = d->routes->route[i];
        d->rx_bytes += (unsigned long long)len;
        d->rx_packets++;
        d->index = i;
        int result = convene_receive(d->unprotect, d->ctx, (const char *)d->raw, len, d->buf, d->plain_len, r,
                                     d->protect, r->entries, r->members, r->status, d->others, d->send_time);
        if (result == 0 && (*d->others || r->after))
            return DRAIN_AFTER;
        if (result == 1)
            return DRAIN_PLAIN;
        d->handled++;
        /* handled (0), or not authentic (-2: dropped, as Python drops it); 2 cannot happen (length checked) */
    }
    return DRAIN_SPENT;
}
