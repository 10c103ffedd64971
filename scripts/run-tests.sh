#!/usr/bin/env bash
# Runs lota's tests and ends with one summary line: "N passed, N failed, N skipped".
#   run-tests.sh unit|e2e|all BUILD_DIR
# Unit tests are the CUnit binaries under BUILD_DIR/tests; end-to-end tests are pytest
# suites run with Debian's python (it sees python3-boto3), against BUILD_DIR's binaries.
set -uo pipefail
what=${1:-all}
build=${2:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
passed=0 failed=0 skipped=0
failures=()

run_unit() {
	local bin out p f
	for bin in "$build"/tests/test_*; do
		[ -x "$bin" ] || continue
		out=$("$bin" 2>&1)
		local rc=$?
		# CUnit basic mode: "tests   N   N   <passed>   <failed>   n/a"
		p=$(awk '$1=="tests" {print $4}' <<<"$out" | tail -1)
		f=$(awk '$1=="tests" {print $5}' <<<"$out" | tail -1)
		p=${p:-0} f=${f:-0}
		if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
		passed=$((passed + p)) failed=$((failed + f))
		if [ "$f" -ne 0 ]; then
			failures+=("unit: $(basename "$bin")")
			echo "$out" | tail -40
		fi
		printf 'unit %-28s %3s passed %3s failed\n' "$(basename "$bin")" "$p" "$f"
	done
}

run_layers() {
	# The include and call rules of the layers (scripts/check-layers.py): one test.
	if /usr/bin/python3 scripts/check-layers.py "$build"; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		failures+=("layers: scripts/check-layers.py $build")
	fi
}

run_fuzz() {
	# A short run of every libFuzzer target over its seeds: a crash is a failure.
	local f n
	for f in build-fuzz/fuzz_*; do
		[ -x "$f" ] || continue
		n=$(basename "$f")
		mkdir -p "build-fuzz/corpus-$n"
		if "$f" -max_total_time="${FUZZ_SECONDS:-15}" "build-fuzz/corpus-$n" \
			"tests/fuzz/seeds/${n#fuzz_}" >"build-fuzz/$n.log" 2>&1; then
			passed=$((passed + 1))
			printf 'fuzz %-28s ok\n' "$n"
		else
			failed=$((failed + 1))
			failures+=("fuzz: $n (build-fuzz/$n.log)")
			tail -30 "build-fuzz/$n.log"
		fi
	done
}

run_pytest() {
	local xml="$build/pytest.xml" dirs=()
	for d in tests/e2e tests/bpf tests/deploy; do
		ls "$d"/test_*.py >/dev/null 2>&1 && dirs+=("$d")
	done
	[ ${#dirs[@]} -eq 0 ] && return
	LOTA_BUILD="$top/$build" /usr/bin/python3 -m pytest -q -rfEs -p no:cacheprovider \
		--junitxml="$xml" "${dirs[@]}" ${PYTEST_ARGS:-}
	local rc=$?
	if [ -f "$xml" ]; then
		read -r t f e s < <(/usr/bin/python3 - "$xml" <<'PY'
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
suites = [r] if r.tag == "testsuite" else list(r)
g = lambda k: sum(int(x.get(k, 0)) for x in suites)
print(g("tests"), g("failures"), g("errors"), g("skipped"))
PY
)
		passed=$((passed + t - f - e - s)) failed=$((failed + f + e)) skipped=$((skipped + s))
		[ $((f + e)) -ne 0 ] && failures+=("pytest: $((f + e)) failed")
	elif [ "$rc" -ne 0 ]; then
		failed=$((failed + 1)) failures+=("pytest exited $rc")
	fi
}

case "$what" in
unit) run_layers; run_unit ;;
e2e) run_pytest ;;
all) run_layers; run_unit; run_fuzz; run_pytest ;;
*) echo "usage: $0 unit|e2e|all [build-dir]" >&2; exit 2 ;;
esac

for f in "${failures[@]}"; do echo "FAILED $f"; done
# A skipped test is a test that did not run: on these machines that is a failure too.
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$skipped" -eq 0 ] && [ "$passed" -gt 0 ]
