#!/usr/bin/env bash
# scripts/test.sh - runs every test of batchjob: installs what is missing,
# builds and installs the extension, starts a throwaway cluster and runs
#   1. make installcheck: pg_regress (sql/) and the isolation specs (specs/)
#   2. pg_prove: the pgTAP suites (test/*.sql)
#   3. test/hostile/run.sh: the hostile-schema suite
#   4. make prove_installcheck: the Perl TAP tests (test/t/*.pl), as the
#      postgres user, each on servers of its own
#   5. the Node client's tests (clients/node: npm ci, build, strict
#      type-check, node --test), against the throwaway cluster
# test/README says which kind of test goes where.  Ends with the line
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

# count LOG RC: adds a suite's results to the totals.  pg_regress and
# pg_isolation_regress print "test name ... ok" (15) or "ok 1 - name" (16
# and later); pg_prove -v, prove -v and the TAP scripts print "ok N" or
# "not ok N" for every assertion.  A suite that exits non-zero without a
# failed test (it died before its plan was done) counts as one failure more.
count() {
	local log=$1 rc=$2 ok bad
	ok=$(grep -cE '^[[:space:]]*test [^ ]+ +\.\.\. ok|^[[:space:]]*ok [0-9]+' "$log" || true)
	bad=$(grep -cE '^[[:space:]]*test [^ ]+ +\.\.\. FAILED|^[[:space:]]*not ok [0-9]+' "$log" || true)
	if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
		bad=1
	fi
	passed=$((passed + ok))
	failed=$((failed + bad))
	bj_log "$ok passed, $bad failed"
}

# run NAME COMMAND...: runs a suite, shows and keeps its output, counts it.
run() {
	local name=$1 rc
	shift
	bj_log "$name"
	set +e
	"$@" >"$out/$name.log" 2>&1
	rc=$?
	set -e
	cat "$out/$name.log"
	count "$out/$name.log" $rc
	return 0
}

# The TAP tests are left out here (TAP_TESTS=): they run below, as postgres.
run regress make -C "$BJ_ROOT" PG_CONFIG="$PG_CONFIG" TAP_TESTS= installcheck
for f in "$BJ_ROOT"/regression.diffs "$BJ_ROOT"/output_iso{,_on}/regression.diffs; do
	if [ -f "$f" ]; then cat "$f"; fi
done

bj_psql -d postgres -c "CREATE DATABASE batchjob_tap"
bj_psql -d batchjob_tap -c "CREATE EXTENSION pgtap; CREATE EXTENSION batchjob;"
run pgtap pg_prove -v -d batchjob_tap "$BJ_ROOT"/test/*.sql

run hostile env PGDATABASE=batchjob_tap bash "$BJ_ROOT/test/hostile/run.sh"

# The Perl TAP tests start servers of their own, which initdb will not do
# as root: they run as postgres, from a copy of the tree in a directory
# postgres owns (the checkout may sit where postgres cannot read, a clone
# in a 0700 mktemp directory, say).  Each test's log and its servers' logs
# are kept in tmp_check/log there when a test fails.
tapdir=$(mktemp -d /tmp/batchjob-tap.XXXXXX)
mkdir "$tapdir/batchjob"
tar -C "$BJ_ROOT" --exclude=./.git --exclude=./tmp_check -cf - . |
	tar -C "$tapdir/batchjob" -xf -
chown -R postgres: "$tapdir"
run perl-tap runuser -u postgres -- make -C "$tapdir/batchjob" \
	PG_CONFIG="$PG_CONFIG" PROVE_FLAGS=-v prove_installcheck
if grep -qE '^[[:space:]]*not ok [0-9]+|^Result: FAIL' "$out/perl-tap.log"; then
	bj_log "TAP test logs kept in $tapdir/batchjob/tmp_check/log"
else
	rm -rf "$tapdir"
fi

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
