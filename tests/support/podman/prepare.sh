#!/usr/bin/env bash
# Test-machine support only: makes podman usable in this sandbox and provides
# the python:3.11-slim base that BentoML's generated Dockerfile starts FROM.
# Nothing here is part of what a user runs.
#
#   export CONTAINERS_CONF="$(tests/support/podman/prepare.sh [CONF_DIR])"
#
# 1. Writes CONF_DIR/containers.conf (default /tmp/credit-scoring-podman) that
#    makes podman run runc through ./oci-runtime, which strips process.rlimits
#    (the sandbox refuses every setrlimit). Prints that file's path on stdout.
# 2. If docker.io/library/python:3.11-slim is not in podman's storage (no
#    registry is reachable here) or is a stand-in from an older BASE_REV,
#    builds a Debian bookworm minbase rootfs with debootstrap (python3.11, pip,
#    venv, ca-certificates; apt pointed at the host's Debian mirror; the
#    sandbox's TLS-intercepting CAs trusted, SSL_CERT_FILE set for uv) and
#    imports it under that name. Cold: about 45-70 s; afterwards: < 0.1 s.
# Idempotent; quiet on success (a few lines on stderr); needs root.
set -euo pipefail

HERE="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
RUNTIME="$HERE/oci-runtime"
CONF_DIR="${1:-/tmp/credit-scoring-podman}"
BASE_IMAGE="docker.io/library/python:3.11-slim"
BASE_REV=1   # bump when the recipe below changes: an older stand-in gets rebuilt
SUITE="bookworm"
PACKAGES="python3.11,python3.11-venv,python3-pip,ca-certificates"

log() { echo "podman/prepare: $*" >&2; }

[ "$(id -u)" = 0 ] || { log "must run as root"; exit 1; }
PATH="$PATH:/usr/sbin:/sbin"
need() {
    command -v "$1" >/dev/null || { log "missing $1 (apt-get install -y --no-install-recommends podman runc debootstrap uidmap slirp4netns)"; exit 1; }
}
need podman
need runc
[ -x "$RUNTIME" ] || chmod +x "$RUNTIME"

mkdir -p "$CONF_DIR"
CONF_DIR="$(cd -- "$CONF_DIR" && pwd -P)"
CONF="$CONF_DIR/containers.conf"

# One run at a time (a second caller waits, then finds everything in place).
exec 9>"$CONF_DIR/.lock"
flock 9

# --- 1. containers.conf ---------------------------------------------------
conf_text="# written by $HERE/prepare.sh (test machine only)
[engine]
runtime = \"runc\"
cgroup_manager = \"cgroupfs\"
events_logger = \"file\"

[engine.runtimes]
runc = [\"$RUNTIME\"]
"
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "${conf_text%$'\n'}" ]; then
    printf '%s' "$conf_text" >"$CONF.tmp"
    mv -f "$CONF.tmp" "$CONF"
fi
export CONTAINERS_CONF="$CONF"

# --- 2. base image ---------------------------------------------------------
MARKER="test-only-debootstrap-stand-in-for-python:3.11-slim"
rev=""
if podman image exists "$BASE_IMAGE"; then
    labels="$(podman image inspect --format \
        '{{ index .Labels "org.opencontainers.image.description" }}|{{ index .Labels "credit-scoring.test-base-rev" }}' \
        "$BASE_IMAGE")"
    case "$labels" in
        "$MARKER|$BASE_REV") rev=$BASE_REV ;;  # ours, current recipe
        "$MARKER|"*) rev=old                   # ours, older recipe: rebuild
            old_id="$(podman image inspect --format '{{.Id}}' "$BASE_IMAGE")" ;;
        *) rev=$BASE_REV ;;                    # a real python:3.11-slim: keep
    esac
fi
if [ "$rev" != "$BASE_REV" ]; then
    need debootstrap
    start=$SECONDS
    # The Debian mirror the host's apt uses (deb822 first, then one-line format).
    mirror="$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\/\?\)$/\1/p' \
                /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1 || true)"
    if [ -z "$mirror" ]; then
        mirror="$(awk '$1=="deb" && $0 ~ /\/debian\/? / && $0 !~ /security/ {for (i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' \
                    /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)"
    fi
    mirror="${mirror:-http://deb.debian.org/debian}"

    rootfs="$(mktemp -d "$CONF_DIR/rootfs.XXXXXX")"
    # --one-file-system: never descend into a /proc or /dev debootstrap left mounted
    trap 'rm -rf --one-file-system "$rootfs"' EXIT
    mkdir -p "$CONF_DIR/debs"   # kept: a rebuild then downloads nothing
    log "building $BASE_IMAGE with debootstrap from $mirror ..."
    if ! debootstrap --variant=minbase --include="$PACKAGES" \
            --cache-dir="$CONF_DIR/debs" "$SUITE" "$rootfs" "$mirror" \
            >"$CONF_DIR/debootstrap.log" 2>&1; then
        tail -n 30 "$CONF_DIR/debootstrap.log" >&2
        exit 1
    fi

    # apt inside builds uses the host's Debian sources (keyring: debian-archive-keyring).
    host_sources=""
    for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
        if [ -s "$f" ] && grep -qv '^[[:space:]]*\(#\|$\)' "$f"; then host_sources=$f; break; fi
    done
    if [ -n "$host_sources" ]; then
        rm -f "$rootfs/etc/apt/sources.list"
        mkdir -p "$rootfs/etc/apt/sources.list.d"
        cp "$host_sources" "$rootfs${host_sources}"
    fi
    # as the host: accept the mirror's Release files whatever the clock says
    printf 'Acquire::Check-Valid-Until "false";\nAcquire::Languages "none";\n' \
        >"$rootfs/etc/apt/apt.conf.d/99test-base"
    # TLS here goes through the sandbox's intercepting CAs (host:
    # /usr/local/share/ca-certificates). Install them as local CAs so the bundle
    # survives the update-ca-certificates that apt triggers inside builds.
    mkdir -p "$rootfs/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/" 2>/dev/null || true
    chroot "$rootfs" update-ca-certificates >/dev/null 2>&1 \
        || cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
    # python:3.11-slim lets pip install into the system interpreter
    rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
    mkdir -p "$rootfs/usr/local/bin"
    ln -sf /usr/bin/python3.11 "$rootfs/usr/local/bin/python"
    ln -sf /usr/bin/python3.11 "$rootfs/usr/local/bin/python3"
    [ -e "$rootfs/usr/bin/pip" ] || ln -sf /usr/bin/pip3 "$rootfs/usr/local/bin/pip"
    # smaller: no package lists, .deb cache, docs, man pages, logs
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
           "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/debconf/*-old \
           "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
           "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* "$rootfs"/root/.cache
    find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
    find "$rootfs/usr/lib/python3" "$rootfs/usr/lib/python3.11" -name __pycache__ -prune -exec rm -rf {} + 2>/dev/null || true
    : >"$rootfs/etc/resolv.conf"
    : >"$rootfs/etc/hostname"

    tar --numeric-owner -C "$rootfs" -cf - . | podman import --quiet \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
        --change 'CMD ["python3"]' \
        --change "LABEL credit-scoring.test-base-rev=$BASE_REV" \
        --change "LABEL org.opencontainers.image.description=$MARKER" \
        - "$BASE_IMAGE" >/dev/null
    rm -rf --one-file-system "$rootfs"
    trap - EXIT
    [ -z "${old_id:-}" ] || podman rmi "$old_id" >/dev/null 2>&1 || true
    log "imported $BASE_IMAGE ($(podman image inspect --format '{{.Size}}' "$BASE_IMAGE") bytes) in $((SECONDS - start))s"
fi

echo "$CONF"
