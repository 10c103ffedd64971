#!/usr/bin/env bash
# make demo: a real S3 origin (Ceph radosgw) with sample data, lotad in front of it with
# BPF steering, and an unmodified aws cli talking to http://cwlota.com, twice per object:
# the first read is a miss (streamed and cached), the second a hit (origin says 304).
#
# Everything stays on this machine: the origin and lotad listen on 127.0.0.1; the name
# cwlota.com resolves to 127.0.0.77 (loopback) only inside the workload's private mount
# namespace; BPF is attached to a child cgroup that holds only the workload. The script
# stops what it started, whatever happens.
set -euo pipefail

build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/lota-demo.XXXXXX)
cg_root=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/self/mounts)
cg="$cg_root/lota-demo-$$"
vip=127.0.0.77
lotad_pid=""
AWS=/usr/bin/aws

cleanup() {
	set +e
	[ -n "$lotad_pid" ] && kill "$lotad_pid" 2>/dev/null && wait "$lotad_pid" 2>/dev/null
	"$top/scripts/origin.sh" stop "$work/origin" >/dev/null 2>&1
	[ -d "$cg" ] && rmdir "$cg" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

say() { printf '%s\n' "$*"; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

say "== lota demo =="
say "starting a throwaway Ceph radosgw origin on loopback..."
eval "$("$top/scripts/origin.sh" start "$work/origin")"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION=us-east-1 AWS_PAGER=""
unset AWS_PROFILE AWS_ENDPOINT_URL
say "  origin: $ORIGIN_URL"

say "uploading sample data (aws cli, straight to the origin)..."
mkdir -p "$work/data"
head -c $((48 * 1024 * 1024)) /dev/urandom >"$work/data/checkpoint-0001.bin"
head -c $((16 * 1024 * 1024)) /dev/urandom >"$work/data/shard-00.tar"
head -c $((512 * 1024)) /dev/urandom >"$work/data/labels.json"
$AWS --endpoint-url "$ORIGIN_URL" s3 mb s3://demo >/dev/null
for f in checkpoint-0001.bin shard-00.tar labels.json; do
	$AWS --endpoint-url "$ORIGIN_URL" s3 cp "$work/data/$f" "s3://demo/$f" --only-show-errors
done

port=$(free_port)
admin=$(free_port)
mkdir -p "$cg"
cat >"$work/lotad.conf" <<EOF
listen = 127.0.0.1:$port
admin = 127.0.0.1:$admin
admin-socket = $work/admin.sock
origin = $ORIGIN_URL
cache-dir = $work/cache
bpf = auto
cgroup = $cg
bpf-pin-dir = /sys/fs/bpf/lota-demo-$$
targets = $vip:80
service-credentials = $work/service-credentials
EOF
# lotad's own credentials, for whole-object fills after a client's ranged reads (the aws
# cli downloads big objects in parallel ranges, each signed by the client).
printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
	"$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$work/service-credentials"
say "starting lotad (config: $work/lotad.conf)..."
"$top/$build/lotad" --config "$work/lotad.conf" >"$work/lotad.log" 2>&1 &
lotad_pid=$!
for _ in $(seq 100); do
	curl -sf "http://127.0.0.1:$admin/healthz" >/dev/null 2>&1 && break
	sleep 0.05
done
grep -E 'bpf|listening' "$work/lotad.log" | sed 's/^[^ ]* [a-z]* *lotad: /  lotad: /'

steered=yes
grep -q 'bpf: steering attached' "$work/lotad.log" || steered=no
printf '127.0.0.1 localhost\n%s cwlota.com\n' "$vip" >"$work/hosts"
if [ "$steered" = yes ]; then
	endpoint=http://cwlota.com
	say "the workload runs in cgroup $cg; cwlota.com -> $vip:80, which BPF steers to lotad"
else
	endpoint="http://cwlota.com:$port"
	printf '127.0.0.1 localhost\n127.0.0.1 cwlota.com\n' >"$work/hosts"
	say "BPF steering is not available here: the workload talks to lotad directly"
fi

# One aws cli call as a pod would make it: in the demo cgroup, cwlota.com from a
# private hosts file, the endpoint left at http://cwlota.com.
pod_aws() {
	sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cg" \
		unshare -m --propagation private "$top/scripts/with-hosts.sh" "$work/hosts" \
		"$AWS" --endpoint-url "$endpoint" "$@"
}

metric() { curl -s "http://127.0.0.1:$admin/metrics" | awk -v m="lota_$1" '$1 == m {print $2}'; }
# A ranged first read starts a background fill; let it commit before the next read.
wait_fills() {
	for _ in $(seq 100); do
		[ "$(metric cache_fills_started)" = "$(($(metric cache_fills_committed) + $(metric cache_fills_aborted)))" ] && return
		sleep 0.1
	done
}

say ""
say "workload (aws s3 cp through $endpoint):"
printf '  %-28s %-6s %8s %8s  %s\n' object read seconds MB/s "lotad route"
for f in checkpoint-0001.bin shard-00.tar labels.json; do
	for pass in first second; do
		rm -f "$work/out"
		mark=$(wc -l <"$work/lotad.log")
		t0=$(date +%s.%N)
		pod_aws s3 cp "s3://demo/$f" "$work/out" --only-show-errors
		t1=$(date +%s.%N)
		cmp -s "$work/out" "$work/data/$f" || { say "BYTES DIFFER for $f"; exit 1; }
		size=$(stat -c %s "$work/out")
		route=$(tail -n +"$((mark + 1))" "$work/lotad.log" | grep " GET .*key=$f " |
			sed -n 's/.*status=\([0-9]*\).*route=\([a-z]*\).*/\2(\1)/p' | sort | uniq -c |
			awk '{printf "%s%s x%s", (NR > 1 ? ", " : ""), $2, $1}')
		awk -v f="$f" -v p="$pass" -v a="$t0" -v b="$t1" -v s="$size" -v r="$route" \
			'BEGIN { d = b - a; printf "  %-28s %-6s %8.3f %8.1f  %s\n", f, p, d, s / d / 1e6, r }'
		wait_fills
	done
done
pod_aws s3 ls s3://demo/ >/dev/null

say ""
say "origin's view (radosgw log): GETs answered with a body vs 304 Not Modified"
awk '/beast: / && /"GET \/demo\// { if ($0 ~ /" 304 /) n304++; else if ($0 ~ /" 200 /) n200++ }
	END { printf "  200 with body: %d   304 (served from lota'"'"'s cache): %d\n", n200, n304 }' "$ORIGIN_LOG"
say ""
say "lotad metrics (curl http://127.0.0.1:$admin/metrics):"
curl -s "http://127.0.0.1:$admin/metrics" | grep -E '^lota_(cache_(hits|misses|bypasses|bytes_served|fills_committed|entries|chunk_(hits|misses|fills))|bytes_from_origin|bpf_(attached|rewritten)) ' | sed 's/^/  /'
say ""
say "every byte matched the uploaded data; stopping lotad and the origin."
