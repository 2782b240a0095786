#!/usr/bin/env bash
# scripts/test.sh - runs every test suite of batchjob against a throwaway
# cluster: pg_regress (sql/), the isolation tester (specs/), pgTAP (test/),
# the notification and upgrade scripts, the multi-client stress test
# (test/stress/), the crash and restore tests (test/t/) and the Node
# client's tests (clients/node).  Ends with the line
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

# TAP scripts that need sessions of their own: notifications (LISTEN in one
# session, work in others), the 1.0 -> 1.1 upgrade, the hostile-schema
# suite and the folder's hand-off under load (the last three on databases of
# their own).  After pg_prove, since notify.sh commits (and then deletes)
# jobs.
for t in test/notify.sh test/upgrade/run.sh test/hostile/run.sh test/handoff.sh; do
	bj_log "$t"
	set +e
	PGDATABASE=batchjob_tap bash "$BJ_ROOT/$t" >"$out/extra.log" 2>&1
	rc=$?
	set -e
	cat "$out/extra.log"
	count_tap "$out/extra.log" $rc
done

if [ -x "$BJ_ROOT/test/stress/run.sh" ]; then
	bj_log "stress test"
	set +e
	"$BJ_ROOT/test/stress/run.sh" >"$out/stress.log" 2>&1
	rc=$?
	set -e
	cat "$out/stress.log"
	count_tap "$out/stress.log" $rc
fi

# Crash and restore tests (test/t/*.pl, PostgreSQL::Test::Cluster): each starts servers
# of its own, so they run as postgres, in a directory postgres owns.
bj_log "crash and restore tests (TAP)"
tapdir=$(mktemp -d /tmp/batchjob-tap.XXXXXX)
chown postgres: "$tapdir"
set +e
(cd "$tapdir" && runuser -u postgres -- env PG_CONFIG="$PG_CONFIG" \
	prove -v "$BJ_ROOT"/test/t/*.pl) >"$out/crash.log" 2>&1
rc=$?
set -e
cat "$out/crash.log"
count_tap "$out/crash.log" $rc
if [ $rc -eq 0 ]; then rm -rf "$tapdir"; else bj_log "crash test logs kept in $tapdir/tmp_check/log"; fi

# ---- the Node client (clients/node) ----------------------------------------
# Its node:test suites run against this cluster (PGHOST, PGPORT and PGUSER
# from lib.sh), each test file in a database of its own (batchjob_node_*),
# after a strict type-check.  node --test ends with "# pass N" and
# "# fail N"; a build or type error counts as one failure.
bj_log "Node client (clients/node)"
set +e
(cd "$BJ_ROOT/clients/node" && npm ci --no-audit --no-fund --loglevel=error &&
	npm run build && npm run typecheck && npm test) >"$out/node.log" 2>&1
rc=$?
set -e
cat "$out/node.log"
ok=$(awk '/^# pass [0-9]+/ { s += $3 } END { print s + 0 }' "$out/node.log")
bad=$(awk '/^# fail [0-9]+/ { s += $3 } END { print s + 0 }' "$out/node.log")
if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
	bad=1
fi
passed=$((passed + ok))
failed=$((failed + bad))

rm -rf "$out"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
