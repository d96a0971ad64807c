"""Single sign-on's settings: flags and environment into Config, the secret never shown, bad issuers refused at
start, and the pieces of the flow that need no provider (the sealed flow cookie, the claim mapping)."""

from __future__ import annotations

import pytest

from common.config import config_from_env
from common.errors import InvalidConfig, OidcClaimInvalid, OidcStateMismatch
from identity.oidc import ClaimNames, OidcSettings, map_claims
from identity.oidc_flow import FlowSealer, PendingFlow
from identity.oidc_users import department_path, one_line
from signaling.cli import _oidc_values, build_parser


def test_flags_and_environment_fill_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVENE_OIDC_CLIENT_SECRET", "s3cret-from-env")
    args = build_parser().parse_args([
        "serve", "--oidc-issuer", "https://login.example.com/realms/corp/", "--oidc-client-id", "convene",
        "--oidc-scopes", "profile,email,org", "--oidc-claim-login", "email", "--oidc-claim-department", "dept",
        "--public-url", "https://meet.example.com/"])
    config = config_from_env(public_url=args.public_url, **_oidc_values(args))
    assert "s3cret-from-env" not in repr(config)
    settings = OidcSettings.from_config(config)
    assert settings is not None and "s3cret-from-env" not in repr(settings)
    assert settings.issuer == "https://login.example.com/realms/corp"
    assert settings.client_secret == "s3cret-from-env"
    assert settings.redirect_uri == "https://meet.example.com/v1/auth/oidc/callback"
    assert settings.scopes == ("openid", "profile", "email", "org")  # openid always, first
    assert settings.claims == ClaimNames(login="email", department="dept")


@pytest.mark.parametrize("issuer", ["http://login.example.com", "ftp://127.0.0.1", "https://"])
def test_an_issuer_that_is_not_https_is_refused_at_start(issuer: str) -> None:
    config = config_from_env(oidc_issuer=issuer, oidc_client_id="c", oidc_client_secret="s")
    with pytest.raises(InvalidConfig):
        OidcSettings.from_config(config)


def test_without_issuer_no_sso_and_without_secret_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONVENE_OIDC_CLIENT_SECRET", raising=False)
    assert OidcSettings.from_config(config_from_env()) is None
    with pytest.raises(InvalidConfig, match="secret"):
        OidcSettings.from_config(config_from_env(oidc_issuer="http://127.0.0.1:9", oidc_client_id="c"))


def test_the_flow_cookie_is_sealed_and_expires() -> None:
    sealer = FlowSealer(b"k" * 32)
    flow = PendingFlow.start(now=1000.0)
    cookie = sealer.seal(flow)
    assert flow.verifier not in cookie and flow.state not in cookie and flow.nonce not in cookie
    assert flow.verifier not in repr(flow)
    assert sealer.open(cookie, now=1001.0) == flow
    sealer.check_state(flow, flow.state)
    for bad in (cookie[:-2] + ("AA" if cookie[-2:] != "AA" else "BB"), "", None, "x" * 2000):
        with pytest.raises(OidcStateMismatch):
            sealer.open(bad, now=1001.0)
    with pytest.raises(OidcStateMismatch):
        FlowSealer(b"another server secret..........").open(cookie, now=1001.0)
    with pytest.raises(OidcStateMismatch):
        sealer.open(cookie, now=1000.0 + 601)
    with pytest.raises(OidcStateMismatch):
        sealer.check_state(flow, flow.state + "x")
    assert len(flow.challenge) == 43 and flow.challenge != flow.verifier


def test_claims_map_like_the_directory_attributes() -> None:
    claims = {"sub": "u1", "preferred_username": "wang.fang", "name": "王芳", "email": "wf@example.com",
              "department": ["研发部", "前端组"], "title": " Engineer "}
    identity = map_claims(claims, ClaimNames(), "https://idp")
    assert (identity.login, identity.name, identity.department, identity.title) == (
        "wang.fang", "王芳", "研发部/前端组", "Engineer")
    with pytest.raises(OidcClaimInvalid):
        map_claims({"sub": "u1", "name": "No login"}, ClaimNames(), "https://idp")
    assert one_line("Ann\nLee\u2028\x00", 128) == "Ann Lee"
    assert department_path(" 研发部 / /前端组 ") == "研发部/前端组"
