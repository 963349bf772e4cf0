#!/usr/bin/env bash
# Set up everything koji-kabi needs on a fresh Debian/Ubuntu or Fedora/RHEL machine:
# system packages (rpm bindings, rpmbuild, createrepo_c, dnf repoclosure, krb5 headers
# for koji's gssapi dependency) and a virtualenv in .venv with the project installed.
#
#   scripts/bootstrap.sh [--test]     --test also installs what the test-suite needs
#
# Re-running is cheap: installed packages and an up-to-date venv are left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

SUDO=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "bootstrap: run as root or install sudo" >&2; exit 2; }
    SUDO="sudo"
fi

debian_pkgs=(rpm python3-rpm python3-venv python3-dev gcc libkrb5-dev xz-utils)
# python3-yaml, python3-requests: the real hub and kojid of the real-Koji tier run our
# plugins under Debian's own python3 (and up.sh installs the rest of Koji's needs)
# linux-headers-amd64 (the metapackage: newest kbuild tree, whatever kernel is running;
# named after the arch, linux-headers-generic on Ubuntu), make: tests/test_kofile_kbuild.py
# builds a real module out of tree with kbuild
kheaders=linux-headers-$(dpkg --print-architecture 2>/dev/null || echo amd64)
grep -qs '^ID=ubuntu' /etc/os-release && kheaders=linux-headers-generic
# rabbitmq-server (its AMQP 1.0 plugin) + python3-qpid-proton: the real broker that Koji's
# protonmsg plugin publishes koji-kabi's messages to, in the real-Koji tier;
# chromium + a font: the HTML report rendered by a real browser (tests/test_html_browser.py)
debian_test_pkgs=(createrepo-c dnf dnf-plugins-core rpm2cpio kmod python3-yaml python3-requests
                  "$kheaders" make rabbitmq-server python3-qpid-proton chromium fonts-dejavu-core)
fedora_pkgs=(rpm-build python3-rpm python3-devel gcc krb5-devel xz)
fedora_test_pkgs=(createrepo_c dnf-plugins-core kmod kernel-devel make chromium)

missing=()
if command -v apt-get >/dev/null; then
    pkgs=("${debian_pkgs[@]}")
    [ $want_test = 1 ] && pkgs+=("${debian_test_pkgs[@]}")
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "bootstrap: apt-get install ${missing[*]}"
        $SUDO apt-get update -qq
        # the tests start their own private services: keep apt from starting the system's
        # (rabbitmq-server), as Debian's policy-rc.d convention allows, if nothing else does
        own_policy=0
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
            $SUDO chmod 755 /usr/sbin/policy-rc.d
            own_policy=1
        fi
        rc=0
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null || rc=$?
        [ $own_policy = 1 ] && $SUDO rm -f /usr/sbin/policy-rc.d
        [ $rc = 0 ] || { echo "bootstrap: apt-get install failed" >&2; exit 2; }
    fi
elif command -v dnf >/dev/null; then
    pkgs=("${fedora_pkgs[@]}")
    [ $want_test = 1 ] && pkgs+=("${fedora_test_pkgs[@]}")
    for p in "${pkgs[@]}"; do rpm -q "$p" >/dev/null 2>&1 || missing+=("$p"); done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "bootstrap: dnf install ${missing[*]}"
        $SUDO dnf install -y -q "${missing[@]}"
    fi
else
    echo "bootstrap: neither apt-get nor dnf found; install the rpm Python bindings," \
         "rpmbuild, createrepo_c and krb5 headers by hand" >&2
    exit 2
fi

# The venv uses the system Python, whose rpm bindings the PyPI `rpm` shim loads.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
stamp_src=$(cat setup.py requirements-test.txt scripts/bootstrap.sh | sha256sum | cut -c1-16)
stamp=".venv/.koji-kabi-$stamp_src-$want_test"
if [ ! -e "$stamp" ]; then
    [ -x .venv/bin/python ] || "$PY" -m venv .venv
    log=.venv/bootstrap.log
    {
        .venv/bin/python -m pip install -q --upgrade pip &&
        .venv/bin/python -m pip install -q -e . &&
        if [ $want_test = 1 ]; then
            .venv/bin/python -m pip install -q -r requirements-test.txt
        fi
    } >"$log" 2>&1 || { cat "$log" >&2; echo "bootstrap: pip install failed (log: $log)" >&2; exit 2; }
    rm -f .venv/.koji-kabi-*
    touch "$stamp"
fi
.venv/bin/python -c 'import rpm, koji, yaml, requests' || {
    echo "bootstrap: the venv cannot import rpm/koji/yaml/requests" >&2; exit 2; }
