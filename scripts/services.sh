#!/usr/bin/env bash
# Starts (or stops) the services v2v-load needs on this machine, without systemd:
# virtlogd, then libvirtd, then warms libvirt's QEMU capability cache (~8 s the first time).
# Idempotent: a daemon that already answers is left alone. `start` prints one line
# `started: NAME...` naming what it started, so a caller can stop only that.
#   services.sh start | stop [NAME...] | status
set -euo pipefail

RUN_DIR=/run/v2v-load
mkdir -p "$RUN_DIR"

alive() { # pidfile -> true when the process named in it runs (and is no zombie)
  local pid state
  [ -s "$1" ] || return 1
  pid=$(cat "$1")
  [ -d "/proc/$pid" ] || return 1
  state=$(ps -o stat= -p "$pid" 2>/dev/null || true)
  [ -n "$state" ] && [[ "$state" != Z* ]]
}

libvirtd_answers() {
  timeout 10 virt-admin -c libvirtd:///system version >/dev/null 2>&1
}

virtlogd_answers() {
  [ -S /run/libvirt/virtlogd-sock ] && pgrep -x virtlogd >/dev/null
}

wait_for() { # seconds command...
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}

start() {
  local started=()
  if ! virtlogd_answers; then
    virtlogd -d --pid-file="$RUN_DIR/virtlogd.pid"
    wait_for 15 virtlogd_answers || { echo "services: virtlogd did not start" >&2; exit 1; }
    started+=(virtlogd)
  fi
  if ! libvirtd_answers; then
    libvirtd -d --pid-file="$RUN_DIR/libvirtd.pid"
    wait_for 30 libvirtd_answers || { echo "services: libvirtd did not answer" >&2; exit 1; }
    started+=(libvirtd)
  fi
  # The first connection probes QEMU's capabilities (~8 s); do it here, not in a test.
  timeout 120 virsh -c qemu:///system version >/dev/null
  echo "started: ${started[*]:-}"
}

stop_one() { # name
  local pidfile="$RUN_DIR/$1.pid" pid
  alive "$pidfile" || return 0
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    state=$(ps -o stat= -p "$pid" 2>/dev/null || true)
    [ -z "$state" ] || [[ "$state" == Z* ]] && break
    sleep 0.1
  done
  rm -f "$pidfile"
}

case "${1:-}" in
  start) start ;;
  stop)
    shift
    names=("$@")
    [ ${#names[@]} -gt 0 ] || names=(libvirtd virtlogd)
    # libvirtd before virtlogd: never stop virtlogd under running domains.
    for n in libvirtd virtlogd; do
      [[ " ${names[*]} " == *" $n "* ]] && stop_one "$n"
    done
    ;;
  status)
    virtlogd_answers && echo "virtlogd: running" || echo "virtlogd: stopped"
    libvirtd_answers && echo "libvirtd: running" || echo "libvirtd: stopped"
    ;;
  *) echo "usage: $0 start|stop [NAME...]|status" >&2; exit 2 ;;
esac
