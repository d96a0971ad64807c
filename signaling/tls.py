"""HTTPS for `convene serve`: the server's own certificate, or a self-signed one made once and kept.

Browsers hand camera and microphone only to secure pages (https, or http on localhost), so a server people
reach at `http://10.1.2.3:8080` cannot get anyone's camera. `--tls-cert/--tls-key` load a certificate the
company already has; `--tls self-signed` (as Galène does) makes one the first time and keeps it in the data
dir, so its fingerprint stays the same across restarts and people who checked it once need not check it again.
The fingerprint is printed at start: it is what people compare with the browser's warning page.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import os
import socket
import ssl
from urllib.parse import urlsplit
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from common.config import Config
from common.errors import InvalidConfig
from common.private_files import FILE_MODE, private_dir

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

SELF_SIGNED_DIR = "tls"
SELF_SIGNED_CERT = "self-signed.crt"
SELF_SIGNED_KEY = "self-signed.key"
# Browsers cap what public CAs may issue at 398 days; staying under it keeps the cert usable if someone
# imports it as trusted. It is remade (same key) a month before it runs out.
VALID_DAYS = 397
RENEW_WITHIN = datetime.timedelta(days=30)
_UNSPECIFIED = {"", "0.0.0.0", "::"}


@dataclass(frozen=True)
class ServerCertificate:
    """The certificate this process serves, and what people need to check it."""

    cert_path: Path
    key_path: Path
    sha256: str  # of the certificate (DER), as browsers show it: AB:CD:…
    spki_sha256: str  # base64 SHA-256 of its public key (what `--ignore-certificate-errors-spki-list` takes)
    names: tuple[str, ...]  # its subjectAltNames
    self_signed: bool = False
    made: bool = False  # made (or remade) at this start


@dataclass(frozen=True)
class ServedNames:
    dns: frozenset[str]
    ips: frozenset[IPAddress]

    def as_strings(self) -> set[str]:
        return set(self.dns) | {str(ip) for ip in self.ips}


def prepare(config: Config) -> tuple[Config, ssl.SSLContext, ServerCertificate] | None:
    """What `convene serve` serves TLS with: None for plain http; otherwise the config with the certificate's
    paths filled in (spawned workers load the same files), the server's SSLContext and the certificate.
    Raises InvalidConfig for flags that do not go together or files that do not load."""
    own = config.data_dir / SELF_SIGNED_DIR
    given = (config.tls_cert, config.tls_key)
    # A spawned worker inherits CONVENE_TLS=self-signed and is handed the first process's files: that is fine.
    workers_copy = all(p is not None and p.parent == own for p in given)
    if config.tls_self_signed and any(p is not None for p in given) and not workers_copy:
        raise InvalidConfig("--tls self-signed and --tls-cert/--tls-key exclude each other")
    if config.tls_self_signed and not workers_copy:
        cert = ensure_self_signed(config.data_dir, served_names(config.host, config.public_url))
    elif config.tls_cert is not None or config.tls_key is not None:
        if config.tls_cert is None or config.tls_key is None:
            raise InvalidConfig("--tls-cert and --tls-key go together")
        cert = describe(config.tls_cert, config.tls_key)
    else:
        return None
    context = server_context(cert.cert_path, cert.key_path)
    return replace(config, tls_cert=cert.cert_path, tls_key=cert.key_path), context, cert


def server_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    """An SSLContext serving the chain in `cert_path` with `key_path`; TLS 1.2 at least."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])  # aiohttp speaks HTTP/1.1 only
    try:
        context.load_cert_chain(cert_path, key_path)
    except FileNotFoundError as exc:
        raise InvalidConfig(f"TLS: {exc.filename} does not exist") from exc
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise InvalidConfig(f"TLS: cannot load certificate {cert_path} with key {key_path}: {exc}") from exc
    return context


def describe(cert_path: Path, key_path: Path) -> ServerCertificate:
    """Fingerprints and names of the first certificate in a PEM file (the server's own, before its chain)."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except FileNotFoundError as exc:
        raise InvalidConfig(f"TLS: {cert_path} does not exist") from exc
    except (OSError, ValueError) as exc:
        raise InvalidConfig(f"TLS: {cert_path} is not a PEM certificate: {exc}") from exc
    return _describe(cert, cert_path, key_path)


def _describe(cert: x509.Certificate, cert_path: Path, key_path: Path, self_signed: bool = False,
              made: bool = False) -> ServerCertificate:
    return ServerCertificate(cert_path=cert_path, key_path=key_path, sha256=fingerprint(cert),
                             spki_sha256=spki_sha256(cert), names=tuple(sorted(_san_strings(cert))),
                             self_signed=self_signed, made=made)


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def spki_sha256(cert: x509.Certificate) -> str:
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def served_names(host: str, public_url: str | None) -> ServedNames:
    """The names and addresses people may reach this server by: localhost always, the host it listens on
    (every local address when that is 0.0.0.0 or ::), this machine's name and the public URL's host."""
    dns: set[str] = {"localhost"}
    ips: set[IPAddress] = {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}
    candidates = [host.strip("[]"), socket.gethostname()]
    if public_url:
        candidates.append(urlsplit(public_url).hostname or "")
    for name in candidates:
        if name in _UNSPECIFIED:
            continue
        try:
            ips.add(ipaddress.ip_address(name))
        except ValueError:
            if _is_dns_name(name):
                dns.add(name.lower().rstrip("."))
    if host.strip("[]") in _UNSPECIFIED:
        ips.update(_local_addresses())
    return ServedNames(frozenset(dns), frozenset(ips))


def _is_dns_name(name: str) -> bool:
    labels = name.rstrip(".").split(".")
    return bool(name) and len(name) <= 253 and all(
        0 < len(label) <= 63 and all(c.isalnum() or c == "-" for c in label) for label in labels)


def _local_addresses() -> set[IPAddress]:
    """This machine's interface addresses (link-local ones aside: they need a zone, no cert names them)."""
    import ifaddr  # aioice's dependency, so aiortc already brings it

    found: set[IPAddress] = set()
    for adapter in ifaddr.get_adapters():
        for entry in adapter.ips:
            raw = entry.ip if isinstance(entry.ip, str) else entry.ip[0]
            try:
                ip = ipaddress.ip_address(raw.split("%", 1)[0])
            except ValueError:
                continue
            if not ip.is_link_local:
                found.add(ip)
    return found


def ensure_self_signed(data_dir: Path, wanted: ServedNames, now: datetime.datetime | None = None) -> ServerCertificate:
    """The self-signed certificate in the data dir, made the first time. It is kept while it names everything
    wanted and has a month left; otherwise it is remade with the same key (names from before kept too), so
    the key's hash stays what people pinned."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    folder = private_dir(data_dir / SELF_SIGNED_DIR)
    cert_path, key_path = folder / SELF_SIGNED_CERT, folder / SELF_SIGNED_KEY
    key = _load_key(key_path)
    old = _load_cert(cert_path) if key is not None else None
    if old is not None and key is not None and _same_key(old, key):
        covers = wanted.as_strings() <= _san_strings(old)
        if covers and old.not_valid_after_utc - now > RENEW_WITHIN:
            os.chmod(cert_path, FILE_MODE)
            os.chmod(key_path, FILE_MODE)
            return _describe(old, cert_path, key_path, self_signed=True)
        wanted = ServedNames(wanted.dns | _san_dns(old), wanted.ips | _san_ips(old))
    if key is None:
        key = ec.generate_private_key(ec.SECP256R1())
        _write_private(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
    cert = _issue(key, wanted, now)
    _write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return _describe(cert, cert_path, key_path, self_signed=True, made=True)


def _issue(key: ec.EllipticCurvePrivateKey, names: ServedNames, now: datetime.datetime) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Convene"),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"Convene self-signed ({socket.gethostname()})"[:64])])
    alt: list[x509.GeneralName] = [x509.DNSName(n) for n in sorted(names.dns)]
    alt += [x509.IPAddress(ip) for ip in sorted(names.ips, key=lambda a: (a.version, int(a)))]
    return (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))  # clocks a little behind still accept it
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, content_commitment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey | None:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None  # missing or unreadable: a new one is made (and people see a new fingerprint)
    return key if isinstance(key, ec.EllipticCurvePrivateKey) else None


def _load_cert(path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None


def _same_key(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> bool:
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert.public_key().public_bytes(*fmt) == key.public_key().public_bytes(*fmt)


def _san(cert: x509.Certificate) -> x509.SubjectAlternativeName | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None


def _san_dns(cert: x509.Certificate) -> frozenset[str]:
    san = _san(cert)
    return frozenset(san.get_values_for_type(x509.DNSName)) if san else frozenset()


def _san_ips(cert: x509.Certificate) -> frozenset[IPAddress]:
    san = _san(cert)
    if san is None:
        return frozenset()
    return frozenset(ip for ip in san.get_values_for_type(x509.IPAddress)
                     if isinstance(ip, (ipaddress.IPv4Address, ipaddress.IPv6Address)))


def _san_strings(cert: x509.Certificate) -> set[str]:
    return set(_san_dns(cert)) | {str(ip) for ip in _san_ips(cert)}


def _write_private(path: Path, data: bytes) -> None:
    """Writes 0600 from the first byte (never briefly readable by others), then moves it into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE), "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(tmp, FILE_MODE)
    os.replace(tmp, path)


def banner(cert: ServerCertificate) -> list[str]:
    """What `convene serve` prints about its certificate."""
    lines = [f"TLS certificate SHA-256 fingerprint: {cert.sha256}"]
    if cert.self_signed:
        state = "made now" if cert.made else "kept"
        lines.append(f"  self-signed ({state}, {cert.cert_path}); browsers warn until people compare this "
                     f"fingerprint or trust the certificate. Names: {', '.join(cert.names)}")
    return lines
