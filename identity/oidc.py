"""OpenID Connect sign-in against the company's identity provider: the authorization code flow with PKCE.

`OidcClient` reads the provider's discovery document (`{issuer}/.well-known/openid-configuration`), sends the
browser to its authorization endpoint, redeems the code at its token endpoint with the client secret and the
PKCE verifier, and verifies the ID token against the provider's published keys (JWKS): signature, issuer,
audience (and `azp` when there are several), expiry and the nonce of this sign-in. Profile claims missing from
the ID token (providers often keep them for the userinfo endpoint) are read from userinfo, whose `sub` must be
the ID token's. The claims map to a login and profile as the LDAP attributes do (`--oidc-claim-*`).

HTTP goes through aiohttp on the event loop; nothing here blocks it. The client secret, the code and the
tokens are never logged.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt

from common.config import Config
from common.errors import InvalidConfig, OidcClaimInvalid, OidcFailed, OidcUnavailable
from common.http_body import BodyTooLarge, read_capped
from identity.oidc_flow import PendingFlow

log = logging.getLogger("convene.oidc")

CALLBACK_PATH = "/v1/auth/oidc/callback"
METADATA_SECONDS = 3600.0  # discovery and keys are read again after this long
JWKS_REFRESH_SECONDS = 30.0  # an unknown key id fetches the keys again, at most this often (rotation)
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=10)
LEEWAY_SECONDS = 60  # clock skew tolerated between us and the provider
# Asymmetric algorithms only: "none" and the HMAC family (keyed with the client secret) are refused.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
MAX_DOCUMENT_BYTES = 256 * 1024


@dataclass(frozen=True)
class ClaimNames:
    login: str = "preferred_username"
    name: str = "name"
    email: str = "email"
    department: str = "department"
    title: str = "title"


@dataclass(frozen=True)
class OidcSettings:
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str
    scopes: tuple[str, ...] = ("openid", "profile", "email")
    claims: ClaimNames = ClaimNames()

    @classmethod
    def from_config(cls, config: Config) -> OidcSettings | None:
        """None when single sign-on is not configured (no issuer or no client id); InvalidConfig when the issuer
        is not https (plain http only on loopback: the code and tokens would cross the network in clear)."""
        if not config.oidc_issuer or not config.oidc_client_id:
            return None
        valid_issuer(config.oidc_issuer)
        if not config.oidc_client_secret:
            raise InvalidConfig("--oidc-client-id needs its secret: CONVENE_OIDC_CLIENT_SECRET or "
                                "--oidc-client-secret")
        scopes = tuple(dict.fromkeys(("openid", *config.oidc_scopes)))  # openid first, always, once
        return cls(issuer=config.oidc_issuer.rstrip("/"), client_id=config.oidc_client_id,
                   client_secret=config.oidc_client_secret, redirect_uri=config.url + CALLBACK_PATH,
                   scopes=scopes, claims=ClaimNames(
                       login=config.oidc_claim_login, name=config.oidc_claim_name, email=config.oidc_claim_email,
                       department=config.oidc_claim_department, title=config.oidc_claim_title))


def valid_issuer(url: str) -> str:
    """The issuer without a trailing slash; InvalidConfig unless https (plain http only on loopback: the code and
    tokens would cross the network in clear)."""
    issuer = urllib.parse.urlsplit(url)
    loopback = issuer.hostname in ("localhost", "127.0.0.1", "::1")
    if issuer.scheme != "https" and not (issuer.scheme == "http" and loopback) or not issuer.hostname:
        raise InvalidConfig(f"--oidc-issuer must be an https:// URL, not {url!r}", field="oidc_issuer")
    return url.rstrip("/")


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None

    @classmethod
    def from_document(cls, doc: dict[str, Any], expected_issuer: str) -> ProviderMetadata:
        # OpenID Connect Discovery 1.0 §4.3: the document's issuer must be exactly the one we asked.
        if str(doc.get("issuer", "")).rstrip("/") != expected_issuer:
            raise OidcUnavailable("the provider's discovery document names another issuer")
        try:
            return cls(issuer=str(doc["issuer"]), authorization_endpoint=str(doc["authorization_endpoint"]),
                       token_endpoint=str(doc["token_endpoint"]), jwks_uri=str(doc["jwks_uri"]),
                       userinfo_endpoint=str(doc["userinfo_endpoint"]) if doc.get("userinfo_endpoint") else None)
        except KeyError as exc:
            raise OidcUnavailable(f"the provider's discovery document lacks {exc.args[0]}") from None


@dataclass(frozen=True)
class OidcIdentity:
    """Who the provider says signed in, mapped to our fields."""

    issuer: str
    subject: str
    login: str
    name: str = ""
    email: str = ""
    department: str = ""
    title: str = ""


def _claim_text(claims: dict[str, Any], name: str) -> str:
    value = claims.get(name) if name else None
    if isinstance(value, list):  # e.g. a department given as a list of path parts
        value = "/".join(str(v) for v in value if v)
    return value.strip() if isinstance(value, str) else ""


def map_claims(claims: dict[str, Any], names: ClaimNames, issuer: str) -> OidcIdentity:
    login = _claim_text(claims, names.login)
    if not login:
        raise OidcClaimInvalid(f"the provider gave no {names.login!r} claim to sign in with")
    return OidcIdentity(issuer=issuer, subject=str(claims["sub"]), login=login,
                        name=_claim_text(claims, names.name), email=_claim_text(claims, names.email),
                        department=_claim_text(claims, names.department), title=_claim_text(claims, names.title))


class OidcClient:
    def __init__(self, settings: OidcSettings) -> None:
        self.settings = settings
        self._http: aiohttp.ClientSession | None = None
        self._metadata: tuple[float, ProviderMetadata] | None = None
        self._keys: tuple[float, jwt.PyJWKSet] | None = None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=HTTP_TIMEOUT)
        return self._http

    async def _get_json(self, url: str, what: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        try:
            async with self._session().get(url, headers=headers, allow_redirects=False) as resp:
                if resp.status != 200:
                    raise OidcUnavailable(f"the provider's {what} answered HTTP {resp.status}")
                body = await read_capped(resp, MAX_DOCUMENT_BYTES)
        except BodyTooLarge:
            raise OidcUnavailable(f"the provider's {what} is over {MAX_DOCUMENT_BYTES} bytes") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("OIDC %s unreachable: %s", what, type(exc).__name__)
            raise OidcUnavailable(f"the provider's {what} cannot be reached") from None
        return _json_object(body, what)

    async def metadata(self) -> ProviderMetadata:
        now = time.monotonic()
        if self._metadata is not None and self._metadata[0] > now:
            return self._metadata[1]
        url = self.settings.issuer + "/.well-known/openid-configuration"
        meta = ProviderMetadata.from_document(await self._get_json(url, "discovery document"),
                                              self.settings.issuer)
        self._metadata = (now + METADATA_SECONDS, meta)
        return meta

    async def authorization_url(self, flow: PendingFlow) -> str:
        meta = await self.metadata()
        query = urllib.parse.urlencode({
            "response_type": "code", "client_id": self.settings.client_id,
            "redirect_uri": self.settings.redirect_uri, "scope": " ".join(self.settings.scopes),
            "state": flow.state, "nonce": flow.nonce,
            "code_challenge": flow.challenge, "code_challenge_method": "S256"})
        separator = "&" if "?" in meta.authorization_endpoint else "?"
        return meta.authorization_endpoint + separator + query

    async def _key_set(self, refresh: bool) -> jwt.PyJWKSet:
        """The provider's keys, read at most every METADATA_SECONDS, or after JWKS_REFRESH_SECONDS when a token
        names a key we do not have (the provider rotated its keys)."""
        now = time.monotonic()
        if self._keys is not None:
            age = now - self._keys[0]
            if age < METADATA_SECONDS and not (refresh and age >= JWKS_REFRESH_SECONDS):
                return self._keys[1]
        doc = await self._get_json((await self.metadata()).jwks_uri, "keys (JWKS)")
        try:
            keys = jwt.PyJWKSet.from_dict(doc)
        except jwt.PyJWTError:
            raise OidcUnavailable("the provider's keys (JWKS) hold no usable key") from None
        self._keys = (now, keys)
        return keys

    async def _signing_key(self, kid: str | None) -> jwt.PyJWK:
        for refresh in (False, True):
            keys = [k for k in (await self._key_set(refresh)).keys
                    if k.public_key_use in (None, "sig") and (kid is None or k.key_id == kid)]
            if len(keys) == 1:
                return keys[0]
        raise OidcFailed("the ID token is signed with a key the provider does not publish")

    async def verify_id_token(self, raw: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims, once its signature, issuer, audience, expiry and nonce hold."""
        try:
            header = jwt.get_unverified_header(raw)
        except jwt.PyJWTError:
            raise OidcFailed("the ID token is not a JWT") from None
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise OidcFailed(f"the ID token's algorithm {alg!r} is not accepted")
        key = await self._signing_key(header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                raw, key.key, algorithms=[alg], audience=self.settings.client_id,
                issuer=(await self.metadata()).issuer, leeway=LEEWAY_SECONDS,
                options={"require": ["iss", "sub", "aud", "exp", "iat"]})
        except jwt.PyJWTError as exc:
            raise OidcFailed(f"the ID token was refused: {exc}") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.settings.client_id:
            raise OidcFailed("the ID token was issued to another party (azp)")
        if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"].encode(),
                                                                              nonce.encode()):
            raise OidcFailed("the ID token's nonce is not this sign-in's")
        return claims

    async def redeem(self, code: str, flow: PendingFlow) -> dict[str, Any]:
        """The token endpoint's answer for the authorization code (client_secret_basic, PKCE verifier)."""
        meta = await self.metadata()
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.settings.redirect_uri,
                "code_verifier": flow.verifier}
        auth = aiohttp.BasicAuth(urllib.parse.quote(self.settings.client_id, safe=""),
                                 urllib.parse.quote(self.settings.client_secret, safe=""))
        try:
            async with self._session().post(meta.token_endpoint, data=form, auth=auth,
                                            allow_redirects=False) as resp:
                body = await read_capped(resp, MAX_DOCUMENT_BYTES)
                status = resp.status
        except BodyTooLarge:
            raise OidcFailed(f"the provider's token endpoint answered over {MAX_DOCUMENT_BYTES} bytes") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("OIDC token endpoint unreachable: %s", type(exc).__name__)
            raise OidcUnavailable("the provider's token endpoint cannot be reached") from None
        answer = _json_object(body, "token endpoint", failure=OidcFailed)
        if status != 200:
            # The error code (e.g. invalid_grant) says what went wrong; the description may echo input, so
            # only the code is logged.
            log.info("OIDC code refused by the provider: %s", str(answer.get("error", status))[:64])
            raise OidcFailed("the provider refused the sign-in code")
        if not isinstance(answer.get("id_token"), str):
            raise OidcFailed("the provider's answer has no ID token")
        return answer

    async def userinfo(self, access_token: str, subject: str) -> dict[str, Any]:
        meta = await self.metadata()
        if meta.userinfo_endpoint is None:
            return {}
        info = await self._get_json(meta.userinfo_endpoint, "userinfo endpoint",
                                    headers={"Authorization": f"Bearer {access_token}"})
        if info.get("sub") != subject:  # OIDC Core §5.3.2: else the answer may be someone else's
            raise OidcFailed("the userinfo answer is about another subject")
        return info

    async def identity(self, code: str, flow: PendingFlow) -> OidcIdentity:
        """Redeems the code and returns who signed in (OidcFailed / OidcClaimInvalid / OidcUnavailable)."""
        answer = await self.redeem(code, flow)
        claims = await self.verify_id_token(answer["id_token"], flow.nonce)
        names = self.settings.claims
        wanted = {names.login, names.name, names.email, names.department, names.title} - {""}
        if not wanted <= claims.keys() and isinstance(answer.get("access_token"), str):
            info = await self.userinfo(answer["access_token"], claims["sub"])
            claims = {**info, **claims}  # the ID token's own (signed) claims win
        return map_claims(claims, names, claims["iss"])


def _json_object(body: bytes, what: str, failure: type[Exception] = OidcUnavailable) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        raise failure(f"the provider's {what} did not answer JSON") from None
    if not isinstance(value, dict):
        raise failure(f"the provider's {what} did not answer a JSON object")
    return value
