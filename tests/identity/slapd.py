"""A real OpenLDAP server (Debian's slapd) for tests: a temp dir, a slapd.conf, a CA and a server certificate
(so ldap:// is upgraded with StartTLS, as in production), loaded from an LDIF with slapadd, on a free port.

`start_slapd(tmp, ldif)` returns a running Slapd; `slapd.stop()` ends it. `slapd.modify(ldif)` changes the
directory while it runs (ldapmodify as the directory's root). scripts/bootstrap.sh --test installs slapd and
ldap-utils; without them `ensure_slapd` fails with a message saying so (never a silent skip).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import free_port

SUFFIX = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PW = "root-secret"
SERVICE_DN = f"cn=convene,ou=services,{SUFFIX}"
SERVICE_PW = "service-secret"

# Active Directory's attributes, with AD's own OIDs, on an auxiliary class: the ACCOUNTDISABLE bit and the AD
# login name can be tested against a real directory server.
AD_SCHEMA = """
attributetype ( 1.2.840.113556.1.4.8 NAME 'userAccountControl'
    EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName'
    EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.55555.1.1 NAME 'adAccount' AUXILIARY MAY ( userAccountControl $ sAMAccountName ) )
"""

SLAPD_CONF = """
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
include {dir}/ad.schema
pidfile {dir}/slapd.pid
argsfile {dir}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile {dir}/ca.pem
TLSCertificateFile {dir}/server.pem
TLSCertificateKeyFile {dir}/server.key
database mdb
suffix "{suffix}"
rootdn "{root_dn}"
rootpw {root_pw}
directory {dir}/db
maxsize 1073741824
index objectClass eq
index uid,sAMAccountName eq
# The sync lists every person in pages; OpenLDAP caps even paged searches at 500 entries in total unless the
# searching account may read more (production directories need the same line for their service account).
limits dn.exact="{service_dn}" size.soft=unlimited size.hard=unlimited size.prtotal=unlimited
access to attrs=userPassword by anonymous auth by self write by * none
access to * by * read
"""


def ensure_slapd() -> None:
    """slapd and ldap-utils must be installed (scripts/bootstrap.sh --test): a test never installs packages, and
    the LDAP tests fail rather than skip without them, so CI cannot pass them silently."""
    if (shutil.which("slapd") or Path("/usr/sbin/slapd").exists()) and shutil.which("ldapmodify"):
        return
    raise RuntimeError("the LDAP tests need slapd and ldap-utils: run scripts/bootstrap.sh --test "
                       "(or apt-get install slapd ldap-utils)")


def _certificates(d: Path) -> None:
    """A CA, and a server certificate for 127.0.0.1 / localhost signed by it."""
    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=Convene test LDAP CA")
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=localhost")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "san.ext")


@dataclass
class Slapd:
    dir: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.dir / "ca.pem"

    def _client_env(self) -> dict[str, str]:
        return {**os.environ, "LDAPTLS_CACERT": str(self.ca_file)}

    def modify(self, ldif: str) -> None:
        """Applies an LDIF of changes (changetype: add / modify / delete) as the directory's root, over StartTLS."""
        subprocess.run(["ldapmodify", "-ZZ", "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PW],
                       input=ldif.encode(), check=True, env=self._client_env(), stdout=subprocess.DEVNULL)

    def restart(self) -> None:
        """Stops slapd and starts it again on the same port and data: its clients' connections drop."""
        self.stop()
        self.process = subprocess.Popen(["slapd", "-d", "0", "-f", str(self.dir / "slapd.conf"), "-h",
                                         f"ldap://127.0.0.1:{self.port}/"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_listening(self.port, self.process)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def base_ldif() -> str:
    """The suffix, the service account that searches, and the ou's people and groups live in."""
    return f"""dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=services,{SUFFIX}
objectClass: organizationalUnit
ou: services

dn: {SERVICE_DN}
objectClass: person
objectClass: simpleSecurityObject
cn: convene
sn: convene
userPassword: {SERVICE_PW}

dn: ou=people,{SUFFIX}
objectClass: organizationalUnit
ou: people

dn: ou=groups,{SUFFIX}
objectClass: organizationalUnit
ou: groups

"""


def person_ldif(uid: str, password: str, name: str = "", department: str = "", title: str = "",
                email: str = "", uac: int | None = None) -> str:
    lines = [f"dn: uid={uid},ou=people,{SUFFIX}", "objectClass: inetOrgPerson"]
    if uac is not None:
        lines.append("objectClass: adAccount")
    lines += [f"uid: {uid}", f"cn: {name or uid}", f"sn: {uid}", f"userPassword: {password}"]
    if name:
        lines.append(f"displayName: {name}")
    if department:
        lines.append(f"departmentNumber: {department}")
    if title:
        lines.append(f"title: {title}")
    if email:
        lines.append(f"mail: {email}")
    if uac is not None:
        lines += [f"userAccountControl: {uac}", f"sAMAccountName: {uid}"]
    return "\n".join(lines) + "\n\n"


def group_ldif(cn: str, member_uids: list[str]) -> str:
    members = "".join(f"member: uid={u},ou=people,{SUFFIX}\n" for u in member_uids) or f"member: {SERVICE_DN}\n"
    return f"dn: cn={cn},ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: {cn}\n{members}\n"


def _wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"slapd exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("slapd did not start listening")


def start_slapd(tmp: Path, ldif: str) -> Slapd:
    """slapd on a free loopback port in `tmp`, holding base_ldif() + `ldif` (loaded offline with slapadd)."""
    ensure_slapd()
    d = tmp / "slapd"
    (d / "db").mkdir(parents=True)
    _certificates(d)
    (d / "ad.schema").write_text(AD_SCHEMA)
    conf = d / "slapd.conf"
    conf.write_text(SLAPD_CONF.format(dir=d, suffix=SUFFIX, root_dn=ROOT_DN, root_pw=ROOT_PW, service_dn=SERVICE_DN))
    (d / "data.ldif").write_text(base_ldif() + ldif, encoding="utf-8")
    subprocess.run(["slapadd", "-q", "-f", str(conf), "-l", str(d / "data.ldif")], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    port = free_port()
    # -d 0: stay in the foreground (so we own the process and end it), log nothing.
    process = subprocess.Popen(["slapd", "-d", "0", "-f", str(conf), "-h", f"ldap://127.0.0.1:{port}/"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port, process)
    except RuntimeError:
        process.kill()
        process.wait()
        raise
    return Slapd(dir=d, port=port, process=process)


@contextlib.contextmanager
def running_slapd(tmp: Path, ldif: str) -> Iterator[Slapd]:
    """start_slapd for the length of a `with`: stopped however the block ends."""
    server = start_slapd(tmp, ldif)
    try:
        yield server
    finally:
        server.stop()
