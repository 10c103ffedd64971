#!/usr/bin/env bash
# Installs lota on one Debian/Ubuntu node: runtime packages, lotad and lotactl, a config
# at /etc/lota/lotad.conf (kept if present), the systemd unit, bpffs, and starts lotad.
# Idempotent: every step says what it did, and a second run says "unchanged" throughout.
#
#   scripts/install.sh --origin https://s3.example.com [options]
#
# Options:
#   --origin URL          origin S3 endpoint (required unless the config exists)
#   --cache-dir DIR       object cache directory (default /var/cache/lota)
#   --capacity SIZE       cache capacity, e.g. 500G (default: 90% of the file system)
#   --peers LIST          peer list HOST:PORT,... or dns:NAME:PORT
#   --listen ADDR         client address:port (default 127.0.0.1:8080)
#   --admin ADDR          admin address:port for /healthz and /metrics (default 127.0.0.1:9090);
#                         the rest of the admin API (lotactl) is on /run/lota/admin.sock
#   --admin-token FILE    also serve the admin API on ADDR to holders of the token in FILE
#                         (made with a random token, mode 0600, if missing)
#   --bpf on|off|auto     BPF steering (default auto)
#   --prefix DIR          where bin/lotad and bin/lotactl go (default /usr/local)
#   --root DIR            install under DIR as if it were / (packaging; implies --no-start)
#   --prebuilt DIR        take lotad and lotactl from DIR instead of building
#   --no-deps             do not install packages with apt
#   --no-start            install only; do not enable or start the service
#   --dry-run             print every step and change nothing
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
origin="" cache_dir=/var/cache/lota capacity="" peers="" listen="" admin="" admin_token="" bpf=""
prefix=/usr/local root="" prebuilt="" no_deps=0 no_start=0 dry=0

die() { echo "install: $*" >&2; exit 1; }
need() { [ $# -ge 2 ] || die "$1 needs a value"; }
while [ $# -gt 0 ]; do
	case "$1" in
	--origin) need "$@"; origin=$2; shift ;;
	--cache-dir) need "$@"; cache_dir=$2; shift ;;
	--capacity) need "$@"; capacity=$2; shift ;;
	--peers) need "$@"; peers=$2; shift ;;
	--listen) need "$@"; listen=$2; shift ;;
	--admin) need "$@"; admin=$2; shift ;;
	--admin-token) need "$@"; admin_token=$2; shift ;;
	--bpf) need "$@"; bpf=$2; shift ;;
	--prefix) need "$@"; prefix=$2; shift ;;
	--root) need "$@"; root=${2%/}; no_start=1; shift ;;
	--prebuilt) need "$@"; prebuilt=$2; shift ;;
	--no-deps) no_deps=1 ;;
	--no-start) no_start=1 ;;
	--dry-run) dry=1 ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown option '$1' (see --help)" ;;
	esac
	shift
done
case "$cache_dir" in /*) ;; *) die "--cache-dir must be absolute" ;; esac
case "$prefix" in /*) ;; *) die "--prefix must be absolute" ;; esac
case "$admin_token" in "" | /*) ;; *) die "--admin-token must be absolute" ;; esac
case "$bpf" in "" | on | off | auto) ;; *) die "--bpf must be on, off or auto" ;; esac

bindir=$prefix/bin
conf=/etc/lota/lotad.conf
unit=/etc/systemd/system/lotad.service
changed=0 # something the running service reads changed: restart it

step() { printf 'install: %-10s %s\n' "$1:" "$2"; }
# Runs a command, or only shows it with --dry-run.
run() {
	if [ "$dry" -eq 1 ]; then
		echo "  would run: $*"
	else
		"$@"
	fi
}

[ "$dry" -eq 1 ] || [ "$(id -u)" -eq 0 ] || [ -n "$root" ] || die "run as root (or --dry-run)"

# -- 1. packages ------------------------------------------------------------------------
runtime_pkgs=(libevent-2.1-7 libevent-openssl-2.1-7 libevent-pthreads-2.1-7 libssl3 libbpf1
	libelf1 zlib1g ca-certificates util-linux)
build_pkgs=(make gcc clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev libevent-dev libssl-dev)
deps() {
	local want=("${runtime_pkgs[@]}") missing=() p
	[ -n "$prebuilt" ] || want+=("${build_pkgs[@]}")
	if [ "$no_deps" -eq 1 ]; then
		step packages "skipped (--no-deps)"
		return
	fi
	for p in "${want[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		step packages "unchanged (${#want[@]} present)"
		return
	fi
	step packages "installing ${missing[*]}"
	run env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# -- 2. build ---------------------------------------------------------------------------
src=""
build() {
	if [ -n "$prebuilt" ]; then
		if [ ! -x "$prebuilt/lotad" ] || [ ! -x "$prebuilt/lotactl" ]; then
			die "--prebuilt $prebuilt: no lotad and lotactl there"
		fi
		src=$(cd "$prebuilt" && pwd)
		step build "unchanged (prebuilt $src)"
		return
	fi
	src=$top/build
	if make -C "$top" -q all >/dev/null 2>&1; then
		step build "unchanged (up to date)"
	else
		step build "building in $top"
		run make -C "$top" -s all
	fi
}

# Installs file $1 as $2 with mode $3 unless identical; says which.
put() {
	local from=$1 to=$root$2 mode=$3 what=$4
	if [ -f "$to" ] && cmp -s "$from" "$to" && [ "$(stat -c %a "$to")" = "$mode" ]; then
		step "$what" "unchanged ($2)"
		return
	fi
	step "$what" "$([ -e "$to" ] && echo updated || echo installed) $2"
	run install -D -m "$mode" "$from" "$to"
	changed=1
}

# -- 3. config --------------------------------------------------------------------------
render_config() {
	cat <<CONF
# lotad configuration: written by scripts/install.sh, kept by later runs. Every key is
# listed by 'lotad --help'; restart with 'systemctl restart lotad' after an edit.
origin = $origin
cache-dir = $cache_dir
CONF
	[ -z "$capacity" ] || echo "capacity = $capacity"
	[ -z "$peers" ] || echo "peers = $peers"
	[ -z "$listen" ] || echo "listen = $listen"
	[ -z "$admin" ] || echo "admin = $admin"
	echo "bpf = ${bpf:-auto}"
	cat <<'CONF'
host = cwlota.com
log-level = info
# The admin API: /healthz and /metrics on the admin address; everything lotactl does on
# this unix socket (root only, mode 0600), and on the admin address only with the bearer
# token in admin-token (a file: openssl rand -hex 32 >FILE; chmod 600 FILE).
admin-socket = /run/lota/admin.sock
CONF
	if [ -n "$admin_token" ]; then
		echo "admin-token = $admin_token"
	else
		echo "# admin-token = /etc/lota/admin-token"
	fi
	cat <<'CONF'
# Credentials lotad uses for its own whole-object fills and pre-staging (AWS shared
# credentials file format, mode 0600):
# service-credentials = /etc/lota/credentials
CONF
}

config() {
	if [ -f "$root$conf" ]; then
		local note=""
		if [ -n "$origin$capacity$peers$listen$admin$admin_token$bpf" ] && ! render_config | cmp -s - "$root$conf"; then
			note="; it differs from these options, which only a first install writes: edit it"
		fi
		step config "unchanged (kept $conf$note)"
		return
	fi
	[ -n "$origin" ] || die "--origin URL is required for a first install"
	step config "written $conf"
	if [ "$dry" -eq 1 ]; then
		render_config | sed 's/^/  | /'
		return
	fi
	install -d -m 0755 "$root/etc/lota"
	render_config >"$root$conf.tmp"
	chmod 0644 "$root$conf.tmp"
	mv "$root$conf.tmp" "$root$conf"
	changed=1
}

# -- 3b. admin token -------------------------------------------------------------------
# 32 random bytes as hex: printable, one word, what lotad's admin-token wants.
token() {
	local to=$root$admin_token
	if [ -z "$admin_token" ]; then
		step token "skipped (no --admin-token)"
		return
	fi
	if [ -f "$to" ]; then
		step token "unchanged (kept $admin_token)"
		return
	fi
	step token "created $admin_token (random, mode 0600)"
	if [ "$dry" -eq 1 ]; then
		echo "  would write 32 random bytes, as hex, to $admin_token"
		return
	fi
	install -d -m 0755 "$(dirname "$to")"
	(
		umask 077
		head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$to.tmp"
		echo >>"$to.tmp"
	)
	mv "$to.tmp" "$to"
}

# -- 4. cache directory -----------------------------------------------------------------
cachedir() {
	if [ -d "$root$cache_dir" ]; then
		step cache "unchanged ($cache_dir)"
		return
	fi
	step cache "created $cache_dir"
	run install -d -m 0750 "$root$cache_dir"
}

# -- 5. systemd unit --------------------------------------------------------------------
unitfile() {
	local tmp
	tmp=$(mktemp)
	# shellcheck disable=SC2064
	trap "rm -f '$tmp'" EXIT
	sed -e "s|@BINDIR@|$bindir|g" -e "s|@CONF@|$conf|g" -e "s|@CACHE_DIR@|$cache_dir|g" \
		"$top/deploy/lotad.service" >"$tmp"
	put "$tmp" "$unit" 644 unit
}

# -- 6. bpffs ---------------------------------------------------------------------------
bpffs() {
	if [ -n "$root" ]; then
		step bpffs "skipped (--root)"
	elif mountpoint -q /sys/fs/bpf; then
		step bpffs "unchanged (mounted)"
	else
		step bpffs "mounting /sys/fs/bpf"
		run mount -t bpf bpf /sys/fs/bpf
	fi
}

# -- 7. service -------------------------------------------------------------------------
service() {
	if [ "$no_start" -eq 1 ]; then
		step service "skipped (--no-start)"
		return
	fi
	if [ ! -d /run/systemd/system ]; then
		step service "skipped: systemd is not running; start it with: $bindir/lotad --config $conf"
		return
	fi
	[ "$changed" -eq 0 ] || run systemctl daemon-reload
	if ! systemctl is-enabled -q lotad 2>/dev/null; then
		step service "enabling and starting lotad"
		run systemctl enable --now lotad
	elif ! systemctl is-active -q lotad; then
		step service "starting lotad"
		run systemctl start lotad
	elif [ "$changed" -eq 1 ]; then
		step service "restarting lotad (files changed)"
		run systemctl restart lotad
	else
		step service "unchanged (running)"
	fi
}

[ "$dry" -eq 0 ] || echo "install: dry run: nothing is changed"
deps
build
if [ "$dry" -eq 1 ] && [ ! -x "$src/lotad" ]; then
	step lotad "would install $bindir/lotad (after the build)"
	step lotactl "would install $bindir/lotactl (after the build)"
else
	put "$src/lotad" "$bindir/lotad" 755 lotad
	put "$src/lotactl" "$bindir/lotactl" 755 lotactl
fi
config
token
cachedir
unitfile
bpffs
service
