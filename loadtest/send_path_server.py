"""`convene serve` with a chosen fan-out send path, for benchmarks that compare the paths in one run:

    python -m loadtest.send_path_server {aiortc,lean,c,batch} serve --port P ...

aiortc: RtpPacket bytes, Session.protect and the asyncio transport (the path before #14); lean: the Python fast
path; c: the compiled one, one call per subscriber; batch: the compiled one, one call per packet for a layer's steady
subscribers (the product default when built, else lean).
"""

from __future__ import annotations

import sys

from sfu.aiortc_seams import compiled_send, set_send_mode


def main() -> None:
    mode, rest = sys.argv[1], sys.argv[2:]
    set_send_mode(mode)
    if mode in ("c", "batch") and compiled_send() is None:
        raise SystemExit("the compiled send path is not built: python -m sfu.fastpath_build")
    from signaling.cli import main as convene

    sys.exit(convene(rest))


if __name__ == "__main__":
    main()
