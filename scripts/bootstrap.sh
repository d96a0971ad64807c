#!/usr/bin/env bash
# Installs what Convene needs on a fresh Debian/Ubuntu machine, idempotently:
# Debian packages (only the missing ones), a venv in .venv and the Python packages.
# Usage: scripts/bootstrap.sh [--test]   (--test adds chromium, redis, postgresql, speech tools, test deps)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

# gcc and the Python headers build the optional compiled send path (sfu/_fastpath.c, through cffi).
debs=(python3-venv gcc python3-dev)
if [ "$want_test" = 1 ]; then
    debs+=(chromium redis-server postgresql espeak-ng flite sox)
fi
if [ "$want_test" = 1 ]; then
    # Network tests (tests/network/): namespaces and veth pairs (ip), a browser trusting a test CA (certutil).
    debs+=(iproute2 libnss3-tools)
fi
if [ "$want_test" = 1 ]; then
    # ICE tests (tests/network/test_nat.py, test_turn.py): NAT and blocked UDP (iptables), a TURN server (coturn).
    debs+=(iptables coturn)
fi
if [ "$want_test" = 1 ]; then
    # LDAP tests (tests/identity/slapd.py) start their own OpenLDAP server and load it with ldapadd.
    debs+=(slapd ldap-utils)
    # OIDC tests (tests/identity/oidc_idp.py) run a real OpenID provider (oidc-provider from npm, pinned by
    # tests/identity/oidc_provider/package-lock.json, installed with npm ci below) on Node. A Node that
    # came with its own npm (NodeSource) is kept: Debian's npm package would fight it.
    command -v node >/dev/null || debs+=(nodejs)
    command -v npm >/dev/null || debs+=(npm)
fi
if [ "$want_test" = 1 ]; then
    # The Firefox browser test (tests/browser/firefox.py drives firefox-esr over WebDriver BiDi; Xvfb gives
    # it a screen to share); a CJK font so screenshots of the Chinese interface show text, not boxes.
    debs+=(firefox-esr xvfb fonts-wqy-microhei)
fi
missing=()
for p in "${debs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    sudo_cmd=""
    [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
    echo "bootstrap: installing Debian packages: ${missing[*]}" >&2
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
    # Debian starts coturn's own service on install; the tests start their own, with their own config.
    if [[ " ${missing[*]} " == *" coturn "* ]] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        $sudo_cmd systemctl disable --now coturn >/dev/null 2>&1 || true
    fi
    # The same for slapd (a directory on port 389 nobody asked for); tests/identity/slapd.py starts its own.
    if [[ " ${missing[*]} " == *" slapd "* ]] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        $sudo_cmd systemctl disable --now slapd >/dev/null 2>&1 || true
    fi
fi

py="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$py" -m venv .venv
fi
stamp=".venv/.convene-installed-$want_test"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/pip install -q --upgrade pip >/dev/null
    if [ "$want_test" = 1 ]; then
        .venv/bin/pip install -q -e '.[test]'
    else
        .venv/bin/pip install -q -e .
    fi
    touch "$stamp"
fi
# The compiled send path, into the venv (a failure leaves the pure-Python path: logged, not fatal).
if [ ! -f .venv/.convene-fastpath ] || [ sfu/_fastpath.c -nt .venv/.convene-fastpath ] \
        || ! .venv/bin/python -c "import _convene_fastpath" 2>/dev/null; then
    .venv/bin/python -m sfu.fastpath_build && touch .venv/.convene-fastpath || true
fi
# The OIDC tests' provider (tests/identity/oidc_idp.py): npm ci from the pinned lock file into the test cache,
# in the directory the tests look for (named by the lock file's hash), so tests never install while running.
# Built in a staging directory and renamed into place: a concurrent run never sees half an install.
if [ "$want_test" = 1 ]; then
    cache="${CONVENE_TEST_CACHE:-$HOME/.cache/convene-tests}"
    lock=tests/identity/oidc_provider/package-lock.json
    target="$cache/oidc-provider-$(sha256sum "$lock" | cut -c1-16)"
    if [ ! -f "$target/node_modules/oidc-provider/package.json" ]; then
        mkdir -p "$cache"
        staging="$(mktemp -d "$target.tmp.XXXXXX")"
        cp tests/identity/oidc_provider/package.json "$lock" "$staging/"
        echo "bootstrap: npm ci for the OIDC test provider into $target" >&2
        (cd "$staging" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
        mv -T "$staging" "$target" 2>/dev/null || rm -rf "$staging"  # another run got there first: keep theirs
    fi
fi
