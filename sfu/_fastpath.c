/* Convene's steady-state send for one subscriber: header rewrite, SRTP protect in place with the
 * connection's own libsrtp session (through pylibsrtp's loaded srtp_protect), send on the pair's socket.
 * Python decides everything else (keyframe waits, layer switches, RTX, NACKs, RTCP) and keeps the
 * counters; this only moves bytes. Built by sfu/fastpath_build.py. */
#include <errno.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

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
