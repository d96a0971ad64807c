"""sfu/_fastpath.c and the Python around it agree on the numbers they share: cffi reads the C values from the
compiled module (`#define X ...` in fastpath_build's declarations), so changing one side alone fails here."""

from __future__ import annotations

from sfu import aiortc_seams, packet_cache, publication, selection
from sfu.aiortc_seams import compiled_send


def test_the_compiled_module_and_python_share_their_constants() -> None:
    compiled = compiled_send()
    assert compiled is not None, "run: python -m sfu.fastpath_build"
    lib = compiled[1]
    assert hasattr(lib, "DRAIN_ERROR"), "the compiled module predates its constants: python -m sfu.fastpath_build"
    shared = {
        "CONVENE_ROOM": (aiortc_seams.PACKET_ROOM, packet_cache.PAYLOAD_ROOM),
        "VOICE_LEVEL": (publication.VOICE_LEVEL,),
        "GATE_OFF": (selection.GATE_OFF,),
        "GATE_IN": (selection.GATE_IN,),
        "GATE_OUT": (selection.GATE_OUT,),
        "DRAIN_EMPTY": (aiortc_seams.DRAIN_EMPTY,),
        "DRAIN_RAW": (aiortc_seams.DRAIN_RAW,),
        "DRAIN_AFTER": (aiortc_seams.DRAIN_AFTER,),
        "DRAIN_PLAIN": (aiortc_seams.DRAIN_PLAIN,),
        "DRAIN_SPENT": (aiortc_seams.DRAIN_SPENT,),
        "DRAIN_ERROR": (aiortc_seams.DRAIN_ERROR,),
    }
    differ = {name: (getattr(lib, name), values) for name, values in shared.items()
              if any(value != getattr(lib, name) for value in values)}
    assert not differ, f"C value vs Python's: {differ}"
