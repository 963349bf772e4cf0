#!/usr/bin/env bash
# Run the integration tier (tests/integration) against a real Koji brought up locally with
# ../shared/realkoji, with this checkout's hub, builder and CLI plugins.  Needs root (the
# harness runs its own PostgreSQL, Apache and kojid).  Not for CI.
#
#   scripts/realkoji-it.sh [--no-plain-pass] [--keep] [KOJI_SOURCE] [-- PYTEST_ARGS...]
#
# KOJI_SOURCE: a Koji git mirror or source tree (default: $REALKOJI_KOJI_SRC, else the one
# the running harness was started from).  Steps:
#   1. writes the plugin settings to $KABI_IT_DIR (/srv/kabi-it): hub.conf, builder.conf,
#      rules.yaml (kernel tag el8-kernel, kmod tags kmods8-candidate/-testing, target
#      kmods8, rebuild mode scratch), and a [policy] file in the hub's hub.conf.d gating
#      kmods8-testing on kabi_compatible;
#   2. (re)starts realkoji with the plugins (up.sh --restart) and seeds its tags (seed.sh);
#   3. runs `pytest -m integration tests/integration` with KOJI_KABI_IT_PROFILE=realkoji;
#   4. unless --no-plain-pass: restarts the hub WITHOUT the hub plugin (and without the
#      policy, which needs its test) and runs the tier again (read-only CLI commands must
#      work, kabi-rebuild must fail with one clear line), then restores the plugin.
# --keep leaves the test builds tagged and their tasks open (KOJI_KABI_IT_KEEP=1).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
realkoji=${REALKOJI_DIR:-$(cd "$here/../shared/realkoji" 2>/dev/null && pwd || true)}
conf=${KABI_IT_DIR:-/srv/kabi-it}
root=${REALKOJI_ROOT:-/srv/realkoji}
plain_pass=1
pytest_args=()
src=${REALKOJI_KOJI_SRC:-}
while [ $# -gt 0 ]; do
    case "$1" in
        --no-plain-pass) plain_pass=0 ;;
        --keep) export KOJI_KABI_IT_KEEP=1 ;;
        --) shift; pytest_args=("$@"); break ;;
        -*) echo "usage: $0 [--no-plain-pass] [--keep] [KOJI_SOURCE] [-- PYTEST_ARGS...]" >&2
            exit 2 ;;
        *) src=$1 ;;
    esac
    shift
done
log() { printf '[realkoji-it %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (realkoji runs its own PostgreSQL, Apache and kojid)"
[ -x "$realkoji/up.sh" ] || die "realkoji not found (set REALKOJI_DIR; looked in $here/../shared/realkoji)"
if [ -z "$src" ] && [ -s "$root/run/src" ]; then src=$(cat "$root/run/src"); fi
[ -n "$src" ] || die "give the Koji source (git mirror or tree) as argument or REALKOJI_KOJI_SRC"

python=${KOJI_KABI_IT_PYTHON:-$here/.venv/bin/python}
if [ ! -x "$python" ]; then
    log "no $python: scripts/bootstrap.sh --test"
    "$here/scripts/bootstrap.sh" --test
fi
# the hub and kojid run under Debian's python3: the core library needs PyYAML there
if ! /usr/bin/python3 -c 'import yaml, requests, rpm' 2>/dev/null; then
    log "apt-get install python3-yaml python3-requests python3-rpm"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q \
        --no-install-recommends python3-yaml python3-requests python3-rpm >/dev/null
fi

# ---------------------------------------------------------------- plugin settings --
mkdir -p "$conf/cache"
cat > "$conf/rules.yaml" <<'EOF'
# koji-kabi rules for the integration tier (scripts/realkoji-it.sh)
kernel_packages: [kernel]
watch:
  - kernel_tag: el8-kernel
    kmod_tags: [kmods8-candidate, kmods8-testing]
    target: kmods8
rebuild:
  mode: scratch
  dry_run: false
EOF
cat > "$conf/hub.conf" <<EOF
[kabi]
rules = $conf/rules.yaml
channel = kabi
priority = 25
EOF
cat > "$conf/builder.conf" <<EOF
[kabi]
rules = $conf/rules.yaml
cache_dir = $conf/cache
# koji import adds a kernel RPM by RPM: 5 s without a change means all are in
settle_seconds = 5
poll = 1
EOF
chmod -R a+rX "$conf"
policy_file=$root/etc/hub.conf.d/kabi-it-policy.conf
write_policy() {
    mkdir -p "$(dirname "$policy_file")"
    cat > "$policy_file" <<'EOF'
# koji-kabi integration tier: kmods8-testing only takes kmods matching the kernel's kABI
[policy]
tag =
    tag kmods8-testing :: {
        kabi_compatible !! deny kmod does not match the kABI of the kernel in this tag
    }
    all :: allow
EOF
    chmod 644 "$policy_file"
}

export KOJI_KABI_HUB_CONFIG=$conf/hub.conf KOJI_KABI_BUILDER_CONFIG=$conf/builder.conf
export REALKOJI_PYTHONPATH=${REALKOJI_PYTHONPATH:-$here}
export REALKOJI_HUB_PLUGIN_PATH=$here/koji_kabi_hub
export REALKOJI_BUILDER_PLUGINS=kabi_builder REALKOJI_BUILDER_PLUGIN_PATH=$here/koji_kabi_builder
export REALKOJI_CLI_PLUGIN_PATH=$here/cli_plugin

up() {  # up HUB_PLUGINS
    REALKOJI_HUB_PLUGINS=$1 "$realkoji/up.sh" --restart "$src"
}

run_tier() {  # run_tier yes|no
    log "pytest -m integration tests/integration (hub plugin: $1)"
    (cd "$here" && KOJI_KABI_IT_PROFILE=realkoji KOJI_KABI_IT_HUB_PLUGIN=$1 \
        KOJI_KABI_IT_GATED_TAG=kmods8-testing \
        "$python" -m pytest -m integration tests/integration -v "${pytest_args[@]}")
}

# ---------------------------------------------------------------------- pass 1 --
if [ -d "$root/etc" ]; then write_policy; fi
up kabi_hub
if [ ! -f "$policy_file" ]; then write_policy; up kabi_hub; fi   # first run: conf.d is new
"$realkoji/seed.sh"
status=0
run_tier yes || status=$?

# ---------------------------------------------------------------------- pass 2 --
if [ $plain_pass = 1 ]; then
    restore() { write_policy; up kabi_hub >/dev/null 2>&1 || log "restore failed: run $0 again"; }
    trap restore EXIT
    rm -f "$policy_file"   # its kabi_compatible test exists only with the plugin
    up ""
    run_tier no || status=$?
    trap - EXIT
    log "restoring the hub plugin"
    restore
fi
exit $status
