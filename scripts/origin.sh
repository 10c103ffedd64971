#!/usr/bin/env bash
# A throwaway S3 origin for tests, the demo and the benchmarks: one Ceph mon, one memstore
# OSD and radosgw on a loopback (or caller-given) address, everything under one directory.
#   origin.sh start DIR [--port P] [--bind ADDR] [--mon-port M] [--mem-gib G]
#   origin.sh stop DIR
#   origin.sh user DIR NAME ACCESS SECRET
#   origin.sh env DIR
# start prints shell-sourceable lines (ORIGIN_URL=..., AWS_ACCESS_KEY_ID=..., ...), also
# kept in DIR/env. stop kills exactly the PIDs start recorded and removes DIR.
# ORIGIN_CONF_EXTRA (lines, may open their own [section]) is appended to ceph.conf.
set -euo pipefail

DEMO_USER=lotademo
DEMO_ACCESS=lotademo
DEMO_SECRET=lotademosecret
START_TIMEOUT=${ORIGIN_START_TIMEOUT:-60}
DAEMONS="radosgw osd mon"

die() {
	echo "origin.sh: $*" >&2
	exit 1
}

# report WHAT LOG: say what failed, with the end of the log that explains it.
report() {
	echo "origin.sh: $1" >&2
	if [ -n "${2:-}" ] && [ -f "$2" ]; then
		echo "--- last lines of $2:" >&2
		tail -n 25 "$2" >&2
	fi
}

# fail WHAT LOG: a start that went wrong: report, stop whatever already runs, keep DIR
# for a post-mortem.
fail() {
	report "$@"
	kill_daemons
	exit 1
}

# A ceph or radosgw-admin call, bounded in time, its output in DIR/log/cli.log.
cli() {
	timeout 30 "$@" -c "$conf" >>"$dir/log/cli.log" 2>&1
}

# bind_port ADDR PORT: print PORT (0: a free one) if it can be bound on ADDR now.
bind_port() {
	/usr/bin/python3 -c 'import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
s.bind((sys.argv[1], int(sys.argv[2]))); print(s.getsockname()[1])' "$1" "$2" 2>/dev/null
}

# s3_answers URL: radosgw (not some other server on that port) answers there.
s3_answers() {
	curl -s --noproxy '*' -m 2 -o /dev/null -D - "$1" | grep -qi '^x-amz-request-id:'
}

# is_ours NAME: the PID recorded for NAME still runs with this DIR's config (a recycled
# PID belongs to someone else and must not be killed).
is_ours() {
	local pid
	pid=$(cat "$dir/run/$1.pid" 2>/dev/null) || return 1
	[ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$conf"
}

kill_daemons() {
	local name pid pids=() i
	for name in $DAEMONS; do
		is_ours "$name" || continue
		pid=$(cat "$dir/run/$name.pid")
		# The data is thrown away: SIGKILL spares memstore dumping its RAM to disk.
		kill -KILL "$pid" 2>/dev/null && pids+=("$pid")
	done
	for ((i = 0; i < 50; i++)); do
		local alive=0
		# A zombie is dead enough: reaping it is up to whoever adopted it.
		for pid in "${pids[@]}"; do
			[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo Z)" = Z ] || alive=1
		done
		[ "$alive" -eq 0 ] && break
		sleep 0.1
	done
	rm -f "$dir"/run/*.pid
}

# spawn NAME CMD...: start CMD in its own session (so a terminal's ^C or the caller's
# exit does not reach it), record its PID.
spawn() {
	local name=$1 pid i
	shift
	setsid "$@" -c "$conf" -f </dev/null >>"$dir/log/$name.out" 2>&1 &
	pid=$!
	echo $pid >"$dir/run/$name.pid"
	disown $pid
	# Until the child has exec'd, its command line is this script's, and is_ours would
	# call it gone (a CI run's radosgw "exited" so, on a loaded machine): wait for the
	# exec, or the exit.
	for ((i = 0; i < 250; i++)); do
		is_ours "$name" && return 0
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.02
	done
}

# wait_for WHAT LOG CMD...: retry CMD until it succeeds or START_TIMEOUT runs out.
wait_for() {
	local what=$1 log=$2 name=$3
	shift 3
	while ! "$@" >/dev/null 2>&1; do
		is_ours "$name" || fail "$what: $name exited" "$log"
		[ "$SECONDS" -lt "$deadline" ] || fail "$what: not ready after ${START_TIMEOUT}s" "$log"
		sleep 0.1
	done
}

write_conf() {
	local asok="$dir/run/\$name.asok"
	# A UNIX socket path longer than sun_path cannot be bound: go without admin sockets.
	[ ${#asok} -gt 100 ] && asok=""
	cat >"$conf" <<EOF
[global]
fsid = $fsid
mon_host = v2:$hostaddr:$mon_port
mon_initial_members = a
public_addr = $bind
cluster_addr = $bind
ms_bind_msgr1 = false
ms_bind_ipv6 = $is_ipv6
ms_bind_ipv4 = $is_ipv4
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
# With auth none there is no session key: radosgw otherwise insists on "secure" mode to
# the mon and never connects. crc is also the cheaper mode.
ms_cluster_mode = crc
ms_service_mode = crc
ms_client_mode = crc
ms_mon_cluster_mode = crc
ms_mon_service_mode = crc
ms_mon_client_mode = crc
run_dir = $dir/run
admin_socket = $asok
log_file = $dir/log/\$name.log
log_to_stderr = false
err_to_stderr = true
keyring = $dir/keyring
mon_data = $dir/mon
osd_data = $dir/osd
# One OSD, no mgr: size-1 pools, few PGs, no autoscaler, quick paxos rounds.
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_max_pg_per_osd = 1000
paxos_propose_interval = 0.05
paxos_min_wait = 0.01
osd_crush_chooseleaf_type = 0
debug_ms = 0
debug_mon = 0
debug_paxos = 0
debug_osd = 0
debug_monc = 0
debug_objecter = 0
debug_rados = 0

[mon]
mon_data_avail_warn = 1
mon_data_avail_crit = 0

[osd]
osd_objectstore = memstore
memstore_device_bytes = $((mem_gib * 1024 * 1024 * 1024))
osd_max_object_size = 134217728

[client]
rgw_frontends = beast endpoint=$hostaddr:$port
rgw_dns_name = cwlota.com
# Level 1 logs one beast line per request: tests count the bodies the origin sent.
debug_rgw = 1
rgw_thread_pool_size = 128
# A single PUT stream keeps only this many bytes of 4 MiB chunk writes in flight to the
# OSD: the default 16 MiB makes a 512 MiB PUT take ~6 s, 64 MiB ~1.6 s. (Bigger
# rgw_max_chunk_size also speeds up GET a little but costs radosgw ~300 MB more RSS.)
rgw_put_obj_min_window_size = 67108864
# Deleted and overwritten objects keep their data until garbage collection, by default
# two hours later: in memstore that is RAM and the OSD fills up over a benchmark.
rgw_gc_obj_min_wait = 2
rgw_gc_processor_period = 5
rgw_dynamic_resharding = false
rgw_enable_usage_log = false
rgw_enable_ops_log = false
# SSE-C over plain http on loopback: the tests check that lotad never leaks SSE-C plaintext.
rgw_crypt_require_ssl = false
${ORIGIN_CONF_EXTRA:-}
EOF
}

start() {
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	conf=$dir/ceph.conf
	local name
	for name in $DAEMONS; do
		is_ours "$name" && die "$dir: already running (origin.sh stop $dir)"
	done
	rm -rf "${dir:?}"/{mon,osd,run,log,ceph.conf,monmap,keyring,env}
	mkdir -p "$dir"/{mon,osd,run,log}
	export CEPH_CONF=$conf
	is_ipv6=false is_ipv4=true hostaddr=$bind
	if [[ $bind == *:* ]]; then
		is_ipv6=true is_ipv4=false hostaddr="[$bind]"
	fi
	bind_port "$bind" "${port:-0}" >/dev/null || die "cannot bind $bind:${port:-0} (in use?)"
	bind_port "$bind" "${mon_port:-0}" >/dev/null ||
		die "cannot bind $bind:${mon_port:-0} (in use?)"
	[ -n "$port" ] || port=$(bind_port "$bind" 0)
	[ -n "$mon_port" ] || mon_port=$(bind_port "$bind" 0)
	[ "$port" != "$mon_port" ] || die "S3 port and mon port are both $port"
	fsid=$(cat /proc/sys/kernel/random/uuid)
	deadline=$((SECONDS + START_TIMEOUT))
	write_conf

	monmaptool --create --fsid "$fsid" --addv a "[v2:$hostaddr:$mon_port]" \
		"$dir/monmap" >>"$dir/log/cli.log" 2>&1 || fail "monmaptool failed" "$dir/log/cli.log"
	ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' \
		>>"$dir/log/cli.log" 2>&1 || fail "ceph-authtool failed" "$dir/log/cli.log"
	ceph-mon -c "$conf" -i a --mkfs --monmap "$dir/monmap" --keyring "$dir/keyring" \
		>>"$dir/log/cli.log" 2>&1 || fail "ceph-mon --mkfs failed" "$dir/log/cli.log"
	spawn mon ceph-mon -i a
	wait_for "mon on $hostaddr:$mon_port" "$dir/log/mon.a.log" mon \
		timeout 5 ceph -c "$conf" --connect-timeout 2 mon stat

	local uuid id
	uuid=$(cat /proc/sys/kernel/random/uuid)
	id=$(timeout 30 ceph -c "$conf" osd create "$uuid" 2>>"$dir/log/cli.log") ||
		fail "ceph osd create failed" "$dir/log/cli.log"
	[ "$id" = 0 ] || fail "ceph osd create gave id '$id', expected 0" "$dir/log/cli.log"
	ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$uuid" >>"$dir/log/cli.log" 2>&1 ||
		fail "ceph-osd --mkfs failed" "$dir/log/cli.log"
	spawn osd ceph-osd -i 0
	wait_for "osd.0 up" "$dir/log/osd.0.log" osd osd_up

	spawn radosgw radosgw -n client.rgw
	wait_for "radosgw on $hostaddr:$port" "$dir/log/client.rgw.log" radosgw \
		s3_answers "http://$hostaddr:$port/"

	cli radosgw-admin user create --uid "$DEMO_USER" --display-name "$DEMO_USER" \
		--access-key "$DEMO_ACCESS" --secret-key "$DEMO_SECRET" ||
		fail "radosgw-admin user create $DEMO_USER failed" "$dir/log/cli.log"
	is_ours radosgw || fail "radosgw exited" "$dir/log/client.rgw.log"
	cat >"$dir/env" <<EOF
ORIGIN_URL=http://$hostaddr:$port
ORIGIN_DIR=$dir
ORIGIN_LOG=$dir/log/client.rgw.log
CEPH_CONF=$conf
AWS_ACCESS_KEY_ID=$DEMO_ACCESS
AWS_SECRET_ACCESS_KEY=$DEMO_SECRET
AWS_DEFAULT_REGION=us-east-1
EOF
	cat "$dir/env"
}

osd_up() {
	timeout 5 ceph -c "$conf" --connect-timeout 2 osd dump 2>/dev/null | grep -q '^osd\.0 up'
}

stop() {
	[ -d "$dir" ] || return 0
	dir=$(cd "$dir" && pwd)
	conf=$dir/ceph.conf
	[ -f "$conf" ] || die "$dir: no ceph.conf, not an origin directory"
	kill_daemons
	rm -rf "$dir"
}

user() {
	dir=$(cd "$dir" && pwd)
	conf=$dir/ceph.conf
	is_ours radosgw || die "$dir: origin not running"
	cli radosgw-admin user create --uid "$1" --display-name "$1" \
		--access-key "$2" --secret-key "$3" ||
		{ report "radosgw-admin user create $1 failed" "$dir/log/cli.log"; exit 1; }
}

usage() {
	sed -n '2,10p' "$0" >&2
	exit 2
}

[ $# -ge 2 ] || usage
cmd=$1 dir=$2
shift 2
port="" bind=127.0.0.1 mon_port="" mem_gib=${ORIGIN_MEM_GIB:-6}
case "$cmd" in
start)
	while [ $# -gt 0 ]; do
		[ $# -ge 2 ] || usage
		case "$1" in
		--port) port=$2 ;;
		--bind) bind=$2 ;;
		--mon-port) mon_port=$2 ;;
		--mem-gib) mem_gib=$2 ;;
		*) usage ;;
		esac
		shift 2
	done
	start
	;;
stop) [ $# -eq 0 ] || usage; stop ;;
user) [ $# -eq 3 ] || usage; user "$@" ;;
env) cat "$dir/env" ;;
*) usage ;;
esac
