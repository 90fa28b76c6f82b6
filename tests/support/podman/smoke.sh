#!/usr/bin/env bash
# End-to-end check of the podman test setup (test machine only): builds a tiny
# image FROM the stand-in python:3.11-slim (apt + libgomp1 inside the build),
# runs it with a published port, a non-root user, a named volume, --env, a
# secret (mount and env) and a health check, checks all of them, cleans up.
#   tests/support/podman/smoke.sh [CONF_DIR]     -> prints "podman smoke: OK"
set -euo pipefail

HERE="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
CONTAINERS_CONF="$("$HERE/prepare.sh" "${1:-}")"
export CONTAINERS_CONF

id="cs-smoke-$$"
tmp="$(mktemp -d)"
cleanup() {
    podman rm -f -t 0 "$id" >/dev/null 2>&1 || true
    podman volume rm -f "$id" >/dev/null 2>&1 || true
    podman secret rm "$id" >/dev/null 2>&1 || true
    podman rmi -f "localhost/$id:test" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "podman smoke: FAIL: $*" >&2; exit 1; }

cat >"$tmp/Dockerfile" <<'EOF'
FROM python:3.11-slim
RUN apt-get update && apt-get install -q -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
RUN useradd -m -u 1034 -r bentoml && mkdir /data && chown bentoml /data
WORKDIR /srv
RUN echo smoke-ok > index.html
EXPOSE 8000
CMD ["python", "-m", "http.server", "8000"]
EOF
start=$SECONDS
podman build -q -t "localhost/$id:test" "$tmp" >/dev/null 2>"$tmp/build.err" \
    || { cat "$tmp/build.err" >&2; fail "build"; }
echo "podman smoke: image built in $((SECONDS - start))s" >&2

printf 's3cr3t' >"$tmp/secret"
podman secret create "$id" "$tmp/secret" >/dev/null
podman volume create "$id" >/dev/null
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

# podman 4.3 schedules health checks with systemd timers; without systemd it
# logs an error but the container runs, and `podman healthcheck run` works.
podman run -d --name "$id" --user 1034 -p "127.0.0.1:$port:8000" \
    -v "$id:/data" --env SMOKE_ENV=ok \
    --secret "$id,type=mount,uid=1034,mode=0400" \
    --secret "$id,type=env,target=SMOKE_SECRET" \
    --health-cmd 'python -c "import urllib.request as u; u.urlopen(\"http://127.0.0.1:8000/\", timeout=2)"' \
    --health-interval 30s --health-retries 3 \
    "localhost/$id:test" >/dev/null 2>"$tmp/run.err" \
    || { cat "$tmp/run.err" >&2; fail "run"; }

for _ in $(seq 1 50); do
    body="$(curl -fsS "http://127.0.0.1:$port/index.html" 2>/dev/null)" && break
    sleep 0.2
done
[ "${body:-}" = smoke-ok ] || fail "curl through the published port"

got="$(podman exec "$id" sh -c 'id -u; echo "$SMOKE_ENV"; cat "/run/secrets/$0"; echo; echo "$SMOKE_SECRET"; touch /data/w && echo vol-ok; python -c "import ctypes; ctypes.CDLL(\"libgomp.so.1\"); print(\"gomp-ok\")"' "$id")"
[ "$got" = "$(printf '1034\nok\ns3cr3t\ns3cr3t\nvol-ok\ngomp-ok')" ] || fail "inside the container: $got"

podman healthcheck run "$id" >/dev/null || fail "healthcheck run"
[ "$(podman inspect --format '{{.State.Health.Status}}' "$id")" = healthy ] || fail "health status"

echo "podman smoke: OK"
