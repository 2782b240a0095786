#!/usr/bin/env bash
# scripts/test.sh - runs every test of batchjob: installs what is missing,
# builds and installs the extension, starts a throwaway cluster and runs
#   1. make installcheck: pg_regress (sql/) and the isolation specs (specs/),
#      against the throwaway cluster
#   2. make prove_installcheck: the Perl TAP tests (test/t/*.pl), each on
#      servers of its own, as the postgres user: among them the pgTAP
#      suites (017), the hostile-schema suite (018) and the Node client's
#      tests (019)
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

# run NAME COMMAND...: runs a suite, shows and keeps its output, and adds
# its results to the totals.  pg_regress and pg_isolation_regress print
# "test name ... ok" (15) or "ok 1 - name" (16 and later); prove -v prints
# "ok N" or "not ok N" for every assertion (a test's diagnostics start
# with "#").  A suite that exits non-zero without a failed test (it died
# before its plan was done) counts as one failure more.
run() {
	local name=$1 rc ok bad
	shift
	bj_log "$name"
	set +e
	"$@" >"$out/$name.log" 2>&1
	rc=$?
	set -e
	cat "$out/$name.log"
	ok=$(grep -cE '^[[:space:]]*test [^ ]+ +\.\.\. ok|^[[:space:]]*ok [0-9]+' "$out/$name.log" || true)
	bad=$(grep -cE '^[[:space:]]*test [^ ]+ +\.\.\. FAILED|^[[:space:]]*not ok [0-9]+' "$out/$name.log" || true)
	if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
		bad=1
	fi
	passed=$((passed + ok))
	failed=$((failed + bad))
	bj_log "$name: $ok passed, $bad failed"
}

# The TAP tests are left out here (TAP_TESTS=): they run below, as postgres.
run installcheck make -C "$BJ_ROOT" PG_CONFIG="$PG_CONFIG" TAP_TESTS= installcheck
for f in "$BJ_ROOT"/regression.diffs "$BJ_ROOT"/output_iso{,_on}/regression.diffs; do
	if [ -f "$f" ]; then cat "$f"; fi
done

# The TAP tests start servers of their own, which initdb will not do as
# root: they run as postgres, from a copy of the tree in a directory
# postgres owns (the checkout may sit where postgres cannot read, a clone
# in a 0700 mktemp directory, say).  The Node client's build output is
# left behind: its test builds it afresh.  Each test's log and its
# servers' logs are kept in tmp_check/log there when a test fails.
tapdir=$(mktemp -d /tmp/batchjob-tap.XXXXXX)
mkdir "$tapdir/batchjob"
tar -C "$BJ_ROOT" --exclude=./.git --exclude=./tmp_check \
	--exclude=./clients/node/node_modules --exclude=./clients/node/build \
	--exclude=./clients/node/dist -cf - . |
	tar -C "$tapdir/batchjob" -xf -
chown -R postgres: "$tapdir"
run prove_installcheck runuser -u postgres -- make -C "$tapdir/batchjob" \
	PG_CONFIG="$PG_CONFIG" PROVE_FLAGS=-v prove_installcheck
if grep -qE '^[[:space:]]*not ok [0-9]+|^Result: FAIL' "$out/prove_installcheck.log"; then
	bj_log "TAP test logs kept in $tapdir/batchjob/tmp_check/log"
else
	rm -rf "$tapdir"
fi

rm -rf "$out"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
