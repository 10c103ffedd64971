#!/usr/bin/env bash
# Removes what scripts/install.sh installed: the service, the unit, lotad and lotactl,
# /etc/lota (with the admin token), /run/lota (the admin socket's directory, which systemd
# removes itself when it stops lotad) and lotad's pinned BPF objects. The cache directory
# stays unless --purge.
#
#   scripts/uninstall.sh [--purge] [--prefix DIR] [--root DIR] [--cache-dir DIR] [--dry-run]
set -euo pipefail

prefix=/usr/local root="" purge=0 dry=0 cache_dir=""
die() { echo "uninstall: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
	case "$1" in
	--purge) purge=1 ;;
	--dry-run) dry=1 ;;
	--prefix) [ $# -ge 2 ] || die "--prefix needs a value"; prefix=$2; shift ;;
	--root) [ $# -ge 2 ] || die "--root needs a value"; root=${2%/}; shift ;;
	--cache-dir) [ $# -ge 2 ] || die "--cache-dir needs a value"; cache_dir=$2; shift ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown option '$1'" ;;
	esac
	shift
done
[ "$dry" -eq 1 ] || [ "$(id -u)" -eq 0 ] || [ -n "$root" ] || die "run as root (or --dry-run)"

conf=/etc/lota/lotad.conf
step() { printf 'uninstall: %-10s %s\n' "$1:" "$2"; }
run() { if [ "$dry" -eq 1 ]; then echo "  would run: $*"; else "$@"; fi; }
# Removes path $2 (under root) if it exists.
remove() {
	if [ -e "$root$2" ] || [ -L "$root$2" ]; then
		step "$1" "removed $2"
		run rm -rf -- "$root$2"
	else
		step "$1" "unchanged (absent: $2)"
	fi
}

# The cache directory and pin dir the config names, read before the config goes.
conf_key() {
	[ -f "$root$conf" ] || return 0
	sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$root$conf" | tail -1
}
[ -n "$cache_dir" ] || cache_dir=$(conf_key cache-dir)
cache_dir=${cache_dir:-/var/cache/lota}
pin_dir=$(conf_key bpf-pin-dir)
pin_dir=${pin_dir:-/sys/fs/bpf/lota}

if [ -z "$root" ] && [ -d /run/systemd/system ] && systemctl cat lotad >/dev/null 2>&1; then
	step service "stopping and disabling lotad"
	run systemctl disable --now lotad
else
	step service "unchanged (not installed or systemd not running)"
fi
remove unit /etc/systemd/system/lotad.service
[ -n "$root" ] || [ ! -d /run/systemd/system ] || run systemctl daemon-reload
remove lotad "$prefix/bin/lotad"
remove lotactl "$prefix/bin/lotactl"
remove config /etc/lota
remove runtime /run/lota
case "$root:$pin_dir" in
:/sys/fs/bpf/?*) remove bpf "$pin_dir" ;; # only ever under bpffs
*) step bpf "unchanged (no pins to remove)" ;;
esac
if [ "$purge" -eq 1 ]; then
	remove cache "$cache_dir"
else
	step cache "kept $cache_dir (--purge removes it)"
fi
