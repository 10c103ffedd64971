#!/usr/bin/env bash
# Installs what lota needs to build and test, from Debian. Idempotent and quiet when
# everything is already there. Extra package names may be passed as arguments.
set -euo pipefail

pkgs=(make gcc clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev libevent-dev libssl-dev
	libcunit1-dev libclang-rt-14-dev pkg-config iproute2 procps psmisc util-linux
	python3 python3-pytest python3-boto3 awscli s3cmd rclone curl openssl
	radosgw ceph-mon ceph-osd ceph-common nginx wrk python3-awscrt gnuplot-nox "$@")

# The manifest validator runs on node; a machine may already have node and npm from
# another source than Debian's packages (whose npm would then conflict).
command -v npm >/dev/null 2>&1 || pkgs+=(nodejs npm)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages: ${missing[*]}; run as root or install them" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's nginx and ceph packages may start services on install; lota's tests start their own.
for s in nginx ceph-mon.target ceph-osd.target radosgw.target ceph.target; do
	systemctl disable --now "$s" >/dev/null 2>&1 || true
done
