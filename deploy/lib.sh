# Shared by deploy/test-image and deploy/test-systemd: a Docker engine, the stand-in base image, and
# cleanup.  Sourced, not run.  Needs root (dockerd, debootstrap, systemd-nspawn).

DEPLOY_CACHE="${SYNCD_DEPLOY_CACHE:-/var/cache/syncd-deploy}"
#: the stand-in for python:3.11-slim-bookworm (Docker Hub is not reachable from this machine)
STANDIN_IMAGE="syncd-standin/python:3.11-bookworm"

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }  # stderr: functions print their results on stdout
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

_cleanups=()
on_exit() { _cleanups+=("$1"); }
_run_cleanups() {
  local i
  for ((i = ${#_cleanups[@]} - 1; i >= 0; i--)); do eval "${_cleanups[i]}" >/dev/null 2>&1 || true; done
}
trap _run_cleanups EXIT

need_root() { [ "$(id -u)" = 0 ] || fail "run as root (dockerd, debootstrap and systemd-nspawn need it)"; }

apt_install() {  # package… (only those missing)
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} = 0 ] && return
  log "apt-get install ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_dockerd() {  # a Docker engine: the running one, or one started here and stopped at exit
  apt_install docker.io
  docker info >/dev/null 2>&1 && return
  log "starting dockerd"
  dockerd >"$DEPLOY_CACHE/dockerd.log" 2>&1 &
  local pid=$!
  on_exit "kill $pid; wait $pid"
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && return; sleep 0.5; done
  cat "$DEPLOY_CACHE/dockerd.log" >&2
  fail "dockerd did not start"
}

bookworm_rootfs() {  # a debootstrap'd Debian bookworm with Python 3.11 and pip, cached
  local rootfs="$DEPLOY_CACHE/rootfs"
  if [ ! -x "$rootfs/usr/bin/python3" ]; then
    apt_install debootstrap
    log "debootstrap bookworm into $rootfs (once; cached)"
    rm -rf "$rootfs"
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
      bookworm "$rootfs" http://deb.debian.org/debian >"$DEPLOY_CACHE/debootstrap.log" 2>&1 \
      || { tail -20 "$DEPLOY_CACHE/debootstrap.log" >&2; fail "debootstrap failed"; }
  fi
  printf '%s' "$rootfs"
}

standin_base() {
  # How the stand-in differs from python:3.11-slim-bookworm: Debian's own Python 3.11 (/usr/bin/python3,
  # 3.11.2, not a build in /usr/local), Debian's pip with its EXTERNALLY-MANAGED marker removed (so
  # that a system-wide pip install works, as in the official image), `python` linked to python3, and
  # this machine's CA bundle (its egress proxy re-signs TLS: pip reaches PyPI only trusting it).
  # Same Debian release, same glibc, no compiler, root by default: what the Dockerfile relies on.
  docker image inspect "$STANDIN_IMAGE" >/dev/null 2>&1 && return
  local rootfs tmp
  rootfs=$(bookworm_rootfs)
  tmp=$(mktemp -d)
  log "importing the stand-in base $STANDIN_IMAGE"
  cp -a "$rootfs" "$tmp/root"
  rm -f "$tmp"/root/usr/lib/python3*/EXTERNALLY-MANAGED
  ln -sf /usr/bin/python3 "$tmp/root/usr/local/bin/python"
  cp /etc/ssl/certs/ca-certificates.crt "$tmp/root/etc/ssl/certs/ca-certificates.crt"
  tar -C "$tmp/root" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$STANDIN_IMAGE" >/dev/null
  rm -rf "$tmp"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_for() {  # seconds command…: until the command succeeds
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.5
  done
}
