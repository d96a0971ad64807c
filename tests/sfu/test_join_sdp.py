"""Cheap joins (#14): SDP parsed by media sections (each section once per session context) gives what aiortc's
own parse gives, copies aiortc may change without touching the cache, and a forwarding connection's receivers
are built once."""

from __future__ import annotations

import pytest
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCSessionDescription, sdp

from loadtest.peers import PacketSubscriberPeer
from loadtest.sdp import compact_answer
from sfu.aiortc_seams import (
    ForwardingPeerConnection,
    ForwardingReceiver,
    ForwardingSender,
    _aiortc_sdp_parse,
    _checked_sdp,
    _shapes,
    check_seams,
    parse_by_sections,
)
from sfu.webrtc import Subscriber, configure_ice, rtc_configuration


def same(a: sdp.SessionDescription, b: sdp.SessionDescription) -> None:
    assert str(a) == str(b)
    assert [vars(m) | {"rtp": None} for m in a.media] == [vars(m) | {"rtp": None} for m in b.media]
    assert [m.rtp for m in a.media] == [m.rtp for m in b.media]
    assert (a.group, a.msid_semantic, a.origin, a.host) == (b.group, b.msid_semantic, b.origin, b.host)


async def offer_with(pc: RTCPeerConnection, video: int, audio: int) -> str:
    for _ in range(video):
        pc.addTransceiver("video", direction="sendonly")
    for _ in range(audio):
        pc.addTransceiver("audio", direction="sendonly")
    offer = await pc.createOffer()
    await pc.setLocalDescription(offer)
    return str(pc.localDescription.sdp)


async def test_sections_parse_like_aiortc_and_copies_are_independent() -> None:
    configure_ice(include_loopback=True)
    server = ForwardingPeerConnection(rtc_configuration([]))
    client = RTCPeerConnection(rtc_configuration([]))
    try:
        first = await offer_with(server, 2, 2)
        second = await offer_with(server, 1, 1)  # a renegotiation: four m-lines again, two new
        for text in (first, second, second):  # the last one entirely from the cache
            same(parse_by_sections(text), _aiortc_sdp_parse(text))
        await client.setRemoteDescription(RTCSessionDescription(sdp=second, type="offer"))
        await client.setLocalDescription(await client.createAnswer())
        answer = str(client.localDescription.sdp)
        same(parse_by_sections(answer), _aiortc_sdp_parse(answer))
        # aiortc changes what it parsed (candidates, ICE and DTLS parameters): the next parse does not see it.
        taken = parse_by_sections(answer)
        for media in taken.media:
            media.ice_candidates.clear()
            media.ice.usernameFragment = "changed"
            media.dtls.fingerprints.clear()
            media.rtp.codecs.clear()
            media.port = 1
        same(parse_by_sections(answer), _aiortc_sdp_parse(answer))
        await server.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        assert [t.mid for t in server.getTransceivers()] == [str(i) for i in range(6)]
        assert all(t._codecs for t in server.getTransceivers())
    finally:
        await client.close()
        await server.close()


def test_sections_keep_the_session_context() -> None:
    """The same m-line under another session fingerprint or ICE password is parsed under that context."""
    section = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=rtpmap:111 opus/48000/2\r\n"

    def session(fingerprint: str, pwd: str) -> str:
        return ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
                f"a=fingerprint:sha-256 {fingerprint}\r\na=setup:actpass\r\na=ice-ufrag:u\r\na=ice-pwd:{pwd}\r\n")

    for fingerprint, pwd in (("AA:BB", "p1"), ("CC:DD", "p1"), ("CC:DD", "p2")):
        text = session(fingerprint, pwd) + section
        parsed = parse_by_sections(text)
        same(parsed, _aiortc_sdp_parse(text))
        assert parsed.media[0].dtls.fingerprints[0].value == fingerprint
        assert parsed.media[0].ice.password == pwd


def in_every_section(text: str) -> str:
    """`text` with its session's ICE and DTLS lines moved into each media section, as browsers write them."""
    per_connection = ("a=ice-ufrag:", "a=ice-pwd:", "a=fingerprint:", "a=setup:")
    lines = text.strip().split("\r\n")
    moved = [line for line in lines if line.startswith(per_connection)]
    out: list[str] = []
    for line in lines:
        if line.startswith(per_connection):
            continue
        out.append(line)
        if line.startswith("m="):
            out.extend(moved)
    return "\r\n".join(out) + "\r\n"


async def test_another_connections_sections_come_from_the_cache_with_its_own_values() -> None:
    """Newcomers' answers are the same slots but for each one's port, address, ICE credentials, DTLS fingerprint
    and role: after the first, their sections come from the cache (but the one with the candidates), carrying
    their own values, whether the session holds them (aiortc) or each section does (browsers)."""
    configure_ice(include_loopback=True)
    server = Subscriber([], lambda: None)
    try:
        server.expect(3)
        offer, _ = await server.create_offer()
        answers = []
        for _ in range(3):  # as the load bots answer: ICE and DTLS once, the candidates in the first m-line only
            client = PacketSubscriberPeer(lambda mid, packet: None)
            answers.append(compact_answer(await client.answer(offer)))
            await client.close()
        for write in (str, in_every_section):
            texts = [write(answer) for answer in answers]
            same(parse_by_sections(texts[0]), _aiortc_sdp_parse(texts[0]))
            for text in texts[1:]:
                known = len(_shapes)
                parsed = parse_by_sections(text)
                same(parsed, _aiortc_sdp_parse(text))
                assert len(_shapes) == known  # all taken (the m-line with the candidates is parsed, not kept)
            ufrags = {parse_by_sections(text).media[-1].ice.usernameFragment for text in texts}
            ports = {parse_by_sections(text).media[-1].port for text in texts}
            assert len(ufrags) == len(ports) == 3
        # A role or fingerprint aiortc refuses is refused from the cache too.
        for bad in (answers[1].replace("a=setup:active", "a=setup:sideways"),
                    answers[1].replace("a=fingerprint:sha-256 ", "a=fingerprint:sha-256")):
            for write in (str, in_every_section):
                for parse in (parse_by_sections, _aiortc_sdp_parse):
                    with pytest.raises((KeyError, ValueError)):
                        parse(write(bad))
    finally:
        await server.close()


async def test_forwarding_connection_builds_its_senders_and_receivers_once() -> None:
    built: list[str] = []
    receiver_init, sender_init = RTCRtpReceiver.__init__, RTCRtpSender.__init__

    def counting_receiver(self: RTCRtpReceiver, kind: str, transport: object) -> None:
        built.append(type(self).__name__)
        receiver_init(self, kind, transport)  # type: ignore[arg-type]

    def counting_sender(self: RTCRtpSender, kind: str, transport: object) -> None:
        built.append(type(self).__name__)
        sender_init(self, kind, transport)  # type: ignore[arg-type]

    RTCRtpReceiver.__init__ = counting_receiver  # type: ignore[method-assign]
    RTCRtpSender.__init__ = counting_sender  # type: ignore[method-assign]
    pc = ForwardingPeerConnection(rtc_configuration([]))
    plain = RTCPeerConnection(rtc_configuration([]))
    try:
        transceiver = pc.addTransceiver("video", direction="sendonly")
        assert sorted(built) == ["ForwardingReceiver", "ForwardingSender"]
        assert isinstance(transceiver.receiver, ForwardingReceiver) and transceiver.receiver.kind == "video"
        assert isinstance(transceiver.sender, ForwardingSender) and transceiver.sender.kind == "video"
        assert transceiver.receiver.rtcp_ssrc == transceiver.sender._ssrc
        # Plain aiortc connections (the load-test bots) keep aiortc's own sender and receiver.
        built.clear()
        other = plain.addTransceiver("video", direction="recvonly")
        assert type(other.receiver) is RTCRtpReceiver and type(other.sender) is RTCRtpSender
        assert sorted(built) == ["RTCRtpReceiver", "RTCRtpSender"]
    finally:
        RTCRtpReceiver.__init__ = receiver_init  # type: ignore[method-assign]
        RTCRtpSender.__init__ = sender_init  # type: ignore[method-assign]
        await pc.close()
        await plain.close()
    assert check_seams() == []


async def test_common_codecs_kept_for_the_same_section_and_handed_out_as_copies() -> None:
    from aiortc.codecs import CODECS

    from sfu.aiortc_seams import _aiortc_find_common_codecs, _find_common_codecs

    configure_ice(include_loopback=True)
    client = RTCPeerConnection(rtc_configuration([]))
    try:
        client.addTransceiver("video", direction="sendrecv")
        client.addTransceiver("audio", direction="sendrecv")
        await client.setLocalDescription(await client.createOffer())
        text = str(client.localDescription.sdp)
        for _ in range(2):  # the second time from the section cache: the same codec objects, the kept outcome
            for media in parse_by_sections(text).media:
                mine = _find_common_codecs(CODECS[media.kind], media.rtp.codecs)
                assert mine == _aiortc_find_common_codecs(CODECS[media.kind], media.rtp.codecs)
                assert mine
                mine[0].parameters["changed"] = 1  # the caller's copy: the next answer does not see it
        for media in parse_by_sections(text).media:
            assert all("changed" not in c.parameters for c in _find_common_codecs(CODECS[media.kind],
                                                                                   media.rtp.codecs))
    finally:
        await client.close()


async def test_a_renegotiation_offer_is_the_local_description() -> None:
    """Subscriber.create_offer hands out aiortc's offer once ICE has gathered: the same text as the local
    description aiortc would write out again."""
    from sfu.webrtc import Subscriber

    configure_ice(include_loopback=True)
    subscriber = Subscriber([], lambda: None)
    client = RTCPeerConnection(rtc_configuration([]))
    try:
        for n in range(3):
            subscriber.add_track("video", f"v{n}", f"p{n}", "camera")
            subscriber.add_track("audio", f"a{n}", f"p{n}", "microphone")
            gathered = subscriber.pc.iceGatheringState == "complete"
            sdp_text, table = await subscriber.create_offer()
            assert sdp_text == str(subscriber.pc.localDescription.sdp)
            assert gathered == (n > 0)
            assert "a=candidate:" in sdp_text and len(table) == 2 * (n + 1)
            await client.setRemoteDescription(RTCSessionDescription(sdp=sdp_text, type="offer"))
            await client.setLocalDescription(await client.createAnswer())
            await subscriber.apply_answer(str(client.localDescription.sdp))
    finally:
        await subscriber.close()
        await client.close()


async def test_own_offers_and_answers_are_taken_as_built_not_parsed_again() -> None:
    """A forwarding connection's setLocalDescription takes the description aiortc built for its offer or answer:
    field by field what aiortc's parse of that text gives (its type set), in a first offer, a renegotiation with
    gathered candidates, and the answer of the other side."""
    configure_ice(include_loopback=True)
    server = ForwardingPeerConnection(rtc_configuration([]))
    client = ForwardingPeerConnection(rtc_configuration([]))
    try:
        for video, audio in ((2, 2), (1, 1)):
            for _ in range(video):
                server.addTransceiver("video", direction="sendonly")
            for _ in range(audio):
                server.addTransceiver("audio", direction="sendonly")
            offer = await server.createOffer()
            assert list(_checked_sdp) == [offer.sdp]  # kept for the setLocalDescription that follows
            kept = _checked_sdp[offer.sdp]
            parsed = _aiortc_sdp_parse(offer.sdp)
            parsed.type = "offer"
            same(kept, parsed)
            await server.setLocalDescription(offer)
            assert not _checked_sdp  # taken, not parsed again
            taken = server._RTCPeerConnection__pendingLocalDescription  # type: ignore[attr-defined]
            assert taken is kept and taken.type == "offer"
            await client.setRemoteDescription(RTCSessionDescription(sdp=str(server.localDescription.sdp),
                                                                    type="offer"))
            answer = await client.createAnswer()
            kept = _checked_sdp[answer.sdp]
            parsed = _aiortc_sdp_parse(answer.sdp)
            parsed.type = "answer"
            same(kept, parsed)
            await client.setLocalDescription(answer)
            assert not _checked_sdp
            assert client._RTCPeerConnection__currentLocalDescription is kept  # type: ignore[attr-defined]
            await server.setRemoteDescription(RTCSessionDescription(sdp=str(client.localDescription.sdp),
                                                                    type="answer"))
        # The kept description's lists are its own: the transceivers' codec lists are not the description's.
        for transceiver, media in zip(server.getTransceivers(), taken.media):
            assert media.rtp.codecs is not transceiver._codecs
        # A plain aiortc connection (the tests' browsers stand-ins) keeps nothing.
        plain = RTCPeerConnection(rtc_configuration([]))
        plain.addTransceiver("audio", direction="recvonly")
        await plain.createOffer()
        assert not _checked_sdp
        await plain.close()
    finally:
        await server.close()
        await client.close()
