#!/usr/bin/env bash
# scripts/test.sh - runs every test suite of batchjob against a throwaway
# cluster: pg_regress (sql/), the isolation tester (specs/), pgTAP (test/),
# the notification and upgrade scripts, the multi-client stress test
# (test/stress/) and the TAP tests (test/t/: crashes, the folder, restore,
# upgrade).  Ends with the line
# "N passed, N failed" counting every test of every suite; exits non-zero
# when any failed.
#
# Usage (as root on Debian 12): bash scripts/test.sh

source "$(dirname "$0")/lib.sh"

bj_install_packages
bj_build
bj_start_cluster

passed=0
failed=0
out=$(mktemp -d /tmp/batchjob-test.XXXXXX)

# pg_regress and pg_isolation_regress print one line per test:
# "test name ... ok" (15) or "ok 1 - name" (16 and later).
count_regress() {
	local log=$1 ok bad
	ok=$(grep -cE '\.\.\. ok|^ok [0-9]+ ' "$log" || true)
	bad=$(grep -cE '\.\.\. FAILED|^not ok [0-9]+ ' "$log" || true)
	passed=$((passed + ok))
	failed=$((failed + bad))
}

# pg_prove -v prints every pgTAP assertion as "ok N" or "not ok N"; a file
# that dies before its plan is done counts as one more failure.
count_tap() {
	local log=$1 rc=$2 ok bad
	ok=$(grep -cE '^[[:space:]]*ok [0-9]+' "$log" || true)
	bad=$(grep -cE '^[[:space:]]*not ok [0-9]+' "$log" || true)
	if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
		bad=1
	fi
	passed=$((passed + ok))
	failed=$((failed + bad))
}

bj_log "pg_regress and isolation suites"
set +e
make -C "$BJ_ROOT" PG_CONFIG="$PG_CONFIG" installcheck >"$out/regress.log" 2>&1
rc=$?
set -e
cat "$out/regress.log"
count_regress "$out/regress.log"
if [ $rc -ne 0 ]; then
	for f in "$BJ_ROOT"/regression.diffs "$BJ_ROOT"/output_iso/regression.diffs; do
		[ -f "$f" ] && cat "$f"
	done
	if ! grep -qE '\.\.\. FAILED|^not ok ' "$out/regress.log"; then
		failed=$((failed + 1))
	fi
fi

bj_log "pgTAP suites"
bj_psql -d postgres -c "CREATE DATABASE batchjob_tap"
bj_psql -d batchjob_tap -c "CREATE EXTENSION pgtap; CREATE EXTENSION batchjob;"
set +e
pg_prove -v -d batchjob_tap "$BJ_ROOT"/test/*.sql >"$out/tap.log" 2>&1
rc=$?
set -e
cat "$out/tap.log"
count_tap "$out/tap.log" $rc

# The hostile-schema suite, on databases of its own.
for t in test/hostile/run.sh; do
	bj_log "$t"
	set +e
	PGDATABASE=batchjob_tap bash "$BJ_ROOT/$t" >"$out/extra.log" 2>&1
	rc=$?
	set -e
	cat "$out/extra.log"
	count_tap "$out/extra.log" $rc
done

# TAP tests (test/t/*.pl, PostgreSQL::Test::Cluster): each starts servers
# of its own, so they run as postgres, in a directory postgres owns.  They
# run from a copy of test/t in that directory: the checkout may sit where
# postgres cannot read (a clone under a 0700 mktemp directory, say).
bj_log "TAP tests (test/t)"
tapdir=$(mktemp -d /tmp/batchjob-tap.XXXXXX)
cp -R "$BJ_ROOT/test/t" "$tapdir/t"
chown -R postgres: "$tapdir"
set +e
(cd "$tapdir" && runuser -u postgres -- env PG_CONFIG="$PG_CONFIG" \
	prove -v t/*.pl) >"$out/crash.log" 2>&1
rc=$?
set -e
cat "$out/crash.log"
count_tap "$out/crash.log" $rc
if [ $rc -eq 0 ]; then rm -rf "$tapdir"; else bj_log "crash test logs kept in $tapdir/tmp_check/log"; fi

rm -rf "$out"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
