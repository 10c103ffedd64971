#!/bin/sh
# with-hosts.sh HOSTS CMD...: run CMD with HOSTS bind-mounted over /etc/hosts. Meant to
# run inside `unshare -m --propagation private`, so the machine's file is never touched.
set -e
hosts=$1
shift
mount --bind "$hosts" /etc/hosts
exec "$@"
