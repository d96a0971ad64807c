"""The address guard refuses IPv6 addresses that wrap a private IPv4 one (on Python 3.11 `is_global` calls
some of them global), and still lets public ones through."""

from __future__ import annotations

import pytest

from common.errors import InvalidField
from integrations.address_guard import check_url, public_address

PRIVATE = ["64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1", "64:ff9b:1::a00:1", "2002:a9fe:a9fe::1", "2002:7f00:1::",
           "::127.0.0.1", "::a9fe:a9fe", "::ffff:a9fe:a9fe", "::ffff:0:a9fe:a9fe", "::ffff:10.0.0.1", "::1", "::",
           "169.254.169.254", "127.0.0.1", "10.1.2.3", "fe80::1", "fc00::1"]
PUBLIC = ["8.8.8.8", "2606:4700:4700::1111", "64:ff9b::808:808", "2002:808:808::1"]


@pytest.mark.parametrize("address", PRIVATE)
def test_private_addresses_are_refused(address: str) -> None:
    assert not public_address(address)
    with pytest.raises(InvalidField):
        check_url(f"http://[{address}]/hook" if ":" in address else f"http://{address}/hook", allow_private=False)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert public_address(address)
    assert check_url(f"http://[{address}]/hook" if ":" in address else f"http://{address}/hook", False)
