#!/usr/bin/env bash
# Build the koji-kabi RPMs (and the SRPM) with rpmbuild from this tree:
#
#   scripts/build-rpms.sh [OUTDIR]        default OUTDIR: dist/rpm
#
# Works wherever rpmbuild does, Debian included (package `rpm`): there the build
# dependencies are dpkg's, not in rpm's database, so they are not checked (--nodeps).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-dist/rpm}")
if ! command -v rpmbuild >/dev/null; then
    echo "build-rpms: rpmbuild not found: install rpm-build (Fedora/EL) or rpm (Debian)" >&2
    exit 2
fi
version=$(sed -n 's/^Version:[[:space:]]*//p' koji-kabi.spec)
top=$(mktemp -d)
trap 'rm -rf "$top"' EXIT
mkdir -p "$top/SOURCES" "$out"
# the tree's files, tracked or new, that git does not ignore (a plain copy otherwise)
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do
        if [ -f "$f" ]; then printf '%s\0' "$f"; fi
    done > "$top/files"
else
    find . -type f ! -path './.*' ! -path '*/__pycache__/*' ! -path './dist/*' -printf '%P\0' \
        > "$top/files"
fi
tar --null -T "$top/files" --transform "s,^,koji-kabi-$version/," --owner=0 --group=0 \
    -czf "$top/SOURCES/koji-kabi-$version.tar.gz"
nodeps=()
rpm -q rpm >/dev/null 2>&1 || nodeps=(--nodeps)
if ! rpmbuild -ba "${nodeps[@]}" --define "_topdir $top" koji-kabi.spec >"$top/log" 2>&1; then
    cat "$top/log" >&2
    echo "build-rpms: rpmbuild failed" >&2
    exit 1
fi
rm -f "$out"/koji-kabi-*.rpm "$out"/python3-koji-kabi-*.rpm
cp "$top"/RPMS/noarch/*.rpm "$top"/SRPMS/*.src.rpm "$out/"
ls -1 "$out"/*.rpm
