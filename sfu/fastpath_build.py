"""Builds the optional compiled send path (sfu/_fastpath.c) with the system C compiler, through cffi, into
the virtual environment as the module `_convene_fastpath`. scripts/bootstrap.sh runs it after installing;
without it (no compiler, a failed build) the pure-Python path is used.

Usage: python -m sfu.fastpath_build
"""

from __future__ import annotations

import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

MODULE = "_convene_fastpath"
SOURCE = Path(__file__).with_name("_fastpath.c")
CDEF = """
#define CONVENE_ROOM ...
#define VOICE_LEVEL ...
#define GATE_OFF ...
#define GATE_IN ...
#define GATE_OUT ...
#define DRAIN_EMPTY ...
#define DRAIN_RAW ...
#define DRAIN_AFTER ...
#define DRAIN_PLAIN ...
#define DRAIN_SPENT ...
#define DRAIN_ERROR ...
int convene_sockaddr(void *out, int family, const char *ip, int port);
int convene_send(void *protect, void *ctx, int fd, void *addr, int addrlen,
                 void *buf, const char *constant, int constant_len,
                 int second, unsigned int seq, unsigned int ts, unsigned int ssrc,
                 const char *send_time, int level_word, int pad,
                 const char *payload, int payload_len, int send, int *blocked);
struct convene_entry {
    void *ctx;
    unsigned char *buf;
    int fd;
    int addrlen;
    unsigned char addr[128];
    unsigned char constant[2][64];
    int constant_len[2];
    int pad[2];
    int with_time;
    int level_id;
    unsigned int ssrc;
    int in_pt, out_pt;
    unsigned int seq_offset, ts_offset;
    unsigned long long packets, octets, bytes, fast;
    unsigned int last_seq, last_ts;
    double last_wall;
};
int convene_fanout(void *protect, struct convene_entry *entries, int n, int marker, int pt,
                   unsigned int seq, unsigned int ts, const char *send_time, int level,
                   const char *payload, int payload_len, const unsigned char *skip, int *status);
struct convene_ring;
struct convene_ring *convene_ring_new(void);
void convene_ring_free(struct convene_ring *ring);
int convene_ring_put(struct convene_ring *ring, int seq, int pt, int marker, unsigned int ts, int padding,
                     const char *payload, int len);
int convene_ring_get(struct convene_ring *ring, int seq, int *fields, unsigned int *ts, char *out, int room);
struct convene_route {
    unsigned int ssrc;
    int pt;
    int clock_rate;
    int level_id;
    int max_seq;
    long long cycles, received, jitter_q4, last_arrival, last_timestamp;
    unsigned long long packets, octets, heard, voiced, loudness;
    struct convene_ring *ring;
    int open, after, members;
    struct convene_entry *entries;
    int *status;
    struct convene_log *log;
    int gate;
    double voiced_at;
};
struct convene_record {
    double arrival;
    unsigned int ssrc, seq, ts;
    int marker, size;
    unsigned char tail[12];
};
struct convene_log {
    int n;
    unsigned long long lost;
    struct convene_record records[64];
};
int convene_receive(void *unprotect, void *ctx, const char *data, int len, unsigned char *buf, int *plain_len,
                    struct convene_route *route, void *protect,
                    struct convene_entry *entries, int n, int *status, int *others, char *send_time);
struct convene_routes {
    int n;
    unsigned int ssrc[64];
    struct convene_route *route[64];
};
struct convene_drain {
    int fd;
    int budget;
    int reads;
    unsigned char *raw;
    int raw_len;
    unsigned char addr[128];
    int addrlen;
    int error;
    int index;
    unsigned long long rx_bytes, rx_packets;
    unsigned long long handled;
    void *unprotect, *ctx, *protect;
    unsigned char *buf;
    int *plain_len, *others;
    char *send_time;
    struct convene_routes *routes;
};
int convene_drain(struct convene_drain *d);
"""


def build(target_dir: Path | None = None) -> Path:
    """Compiles the module and copies it into `target_dir` (default: the venv's site-packages)."""
    import cffi  # type: ignore[import-untyped]

    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    source = SOURCE.read_text(encoding="utf-8")
    ffi.set_source(MODULE, source, extra_compile_args=["-O2"])
    target = Path(target_dir or sysconfig.get_paths()["platlib"])
    with tempfile.TemporaryDirectory() as tmp:
        built = Path(ffi.compile(tmpdir=tmp, verbose=False))
        target.mkdir(parents=True, exist_ok=True)
        destination = target / built.name
        shutil.copyfile(built, destination)
    return destination


def main() -> int:
    try:
        path = build(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
    except Exception as exc:  # no compiler or headers: the Python path serves
        print(f"fastpath: not built ({exc}); the pure-Python send path will be used", file=sys.stderr)
        return 1
    print(f"fastpath: built {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
