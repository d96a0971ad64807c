"""`convene serve` with a chosen fan-out send path and receive path, for benchmarks that compare the paths in
one run:

    python -m loadtest.send_path_server {aiortc,lean,c,batch,queue,single,python,route,inline}[+...] serve --port P ...

e.g. `lean+queue`: the Python send path, and received packets through aiortc's queue (the receive path before
the inline one, #14); `python`: inline without the compiled receive route (before it); `single`: python, one
datagram per wake-up (before a burst was read in one); `route`: the compiled route entered from Python once per
datagram (before the socket drain). A receive mode
alone keeps the default send path, a send mode alone the default receive path.

aiortc: RtpPacket bytes, Session.protect and the asyncio transport (the path before #14); lean: the Python fast
path; c: the compiled one, one call per subscriber; batch: the compiled one, one call per packet for a layer's steady
subscribers (the product default when built, else lean).
"""

from __future__ import annotations

import sys

from sfu.aiortc_seams import RECEIVE_MODES, compiled_send, send_mode, set_receive_mode, set_send_mode


def main() -> None:
    spec, rest = sys.argv[1], sys.argv[2:]
    for mode in spec.split("+"):
        if mode in RECEIVE_MODES:
            set_receive_mode(mode)
        else:
            set_send_mode(mode)  # ValueError names the modes
    if send_mode() in ("c", "batch") and compiled_send() is None:
        raise SystemExit("the compiled send path is not built: python -m sfu.fastpath_build")
    from signaling.cli import main as convene

    sys.exit(convene(rest))


if __name__ == "__main__":
    main()
