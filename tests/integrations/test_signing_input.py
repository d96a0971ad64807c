"""Signature and token checks refuse odd header values as no match (401), never with an exception (500):
aiohttp hands header bytes that are not UTF-8 over as lone surrogates."""

from __future__ import annotations

import time

import pytest

from integrations.signing import InvalidSignature, sign, verify, verify_github, verify_token

ODD = ["sha256=\udcff\udcfe", "v0=\udcff", "t\u00f6ken", "\udcff"]


@pytest.mark.parametrize("presented", ODD)
def test_odd_values_are_no_match(presented: str) -> None:
    with pytest.raises(InvalidSignature):
        verify_github("secret", b"{}", presented)
    with pytest.raises(InvalidSignature):
        verify_token("token", presented)
    with pytest.raises(InvalidSignature):
        verify("secret", str(int(time.time())), b"{}", presented)


@pytest.mark.parametrize("timestamp", ["\u00b2", "\u0663", "\udcff1"])
def test_odd_timestamps_are_refused(timestamp: str) -> None:
    good = sign("secret", b"{}")
    with pytest.raises(InvalidSignature):
        verify("secret", timestamp, b"{}", good["X-Convene-Signature"])


def test_a_good_signature_still_passes() -> None:
    headers = sign("secret", b"{}")
    verify("secret", headers["X-Convene-Request-Timestamp"], b"{}", headers["X-Convene-Signature"])
