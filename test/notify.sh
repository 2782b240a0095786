#!/usr/bin/env bash
# test/notify.sh - the notifications of batchjob 1.1, which pgTAP cannot see
# (a NOTIFY is delivered at commit, to another session).
#
# One psql session LISTENs on batchjob_jobs_available and
# batchjob_parent_done for the whole run.  Each scenario runs in a psql
# session of its own, so the "received from server process with PID n"
# that psql prints for every notification says which scenario sent it.
# Prints TAP ("1..N", then "ok N - ..." or "not ok N - ..."); exits non-zero
# when a test fails.
#
# Usage: bash test/notify.sh, with PGHOST, PGPORT, PGUSER and PGDATABASE
# naming a database where batchjob 1.1 or later is installed.  The
# scenarios commit; the jobs they create (created_by 'notify.sh:<pid>', at
# a priority no other test uses) are deleted at the end.  Do not run it
# while another suite claims jobs in the same database.

set -uo pipefail

TAG="notify.sh:$$"
PRIO=2000000000
APP="bj_notify_listener_$$"
PLAN=22

work=$(mktemp -d /tmp/batchjob-notify.XXXXXX)
listener_pid=
failed=0
n=0

psql_q() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }

cleanup() {
	exec 3>&- 2>/dev/null
	if [ -n "$listener_pid" ] && kill -0 "$listener_pid" 2>/dev/null; then
		kill "$listener_pid" 2>/dev/null
		wait "$listener_pid" 2>/dev/null
	fi
	psql_q -v tag="$TAG" >/dev/null 2>&1 <<-'SQL'
		DELETE FROM batch_jobs WHERE created_by = :'tag' AND parent_job_id IS NULL;
		DELETE FROM batch_jobs WHERE created_by = :'tag';
	SQL
	psql_q -c "DROP ROLE IF EXISTS bj_notify_nobody" >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT

result() {	# result OK DESCRIPTION [DIAGNOSTIC]
	n=$((n + 1))
	if [ "$1" = 1 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		[ -n "${3:-}" ] && printf '%s\n' "$3" | sed 's/^/# /'
		failed=$((failed + 1))
	fi
}

# session NAME: runs the SQL on stdin in a new connection.  The SQL prints
# "key=value" lines (pid= first); get NAME KEY reads them back.
session() {
	psql_q -v tag="$TAG" -v prio="$PRIO" >"$work/$1.out" 2>"$work/$1.err"
	echo $? >"$work/$1.rc"
}
get() { sed -n "s/^$2=//p" "$work/$1.out" | head -n 1; }
ran() { [ "$(cat "$work/$1.rc")" = 0 ] && [ -n "$(get "$1" pid)" ]; }
why() { cat "$work/$1.err"; }

# how many notifications the listener got: from PID, on CHANNEL, with
# PAYLOAD ("-" for none, "*" for any)
received() {
	local pid=$1 chan=$2 payload=$3
	case $payload in
	"*") grep -c "^Asynchronous notification \"$chan\" .*server process with PID $pid\.\$" "$work/listener.out" ;;
	-) grep -cxF "Asynchronous notification \"$chan\" received from server process with PID $pid." "$work/listener.out" ;;
	*) grep -cxF "Asynchronous notification \"$chan\" with payload \"$payload\" received from server process with PID $pid." "$work/listener.out" ;;
	esac
}
received_any() { grep -c "server process with PID $1\.\$" "$work/listener.out"; }
done_payload() { printf '{"job_id": %s, "status": "%s"}' "$1" "$2"; }

echo "1..$PLAN"

ver=$(psql_q -c "SELECT extversion FROM pg_extension WHERE extname = 'batchjob'" 2>&1)
case "$ver" in
1.1 | 1.2) ;;
*)
	echo "Bail out! batchjob 1.1 or later is not installed in database ${PGDATABASE:-?} (got: $ver)"
	exit 1
	;;
esac

# the listener: reads its commands from a FIFO, so it stays connected
mkfifo "$work/listener.in"
# the listener is a role with no batchjob grant: anyone who can connect
psql_q -c "DROP ROLE IF EXISTS bj_notify_nobody" -c "CREATE ROLE bj_notify_nobody LOGIN" >/dev/null
PGAPPNAME=$APP PGUSER=bj_notify_nobody psql -X -q -A -t <"$work/listener.in" >"$work/listener.out" 2>&1 &
listener_pid=$!
exec 3>"$work/listener.in"
printf '%s\n' "LISTEN batchjob_jobs_available;" "LISTEN batchjob_parent_done;" \
	"SELECT 'listening';" >&3
listening=0
for _ in $(seq 1 100); do
	if [ "$(psql_q -c "SELECT count(*) FROM pg_stat_activity
	                   WHERE application_name = '$APP' AND state = 'idle'
	                     AND query = 'SELECT ''listening'';'")" = 1 ]; then
		listening=1
		break
	fi
	sleep 0.1
done
result $listening "the listener is connected and LISTENing"
[ $listening = 1 ] || exit 1

# A: a parent and two children
session A <<-'SQL'
	SELECT 'pid=' || pg_backend_pid();
	SELECT 'parent=' || job_id FROM batchjob_create_parent('{"notify": "A"}', :'tag', :prio);
	SELECT 'children=' || count(*)
	  FROM batchjob_split((SELECT max(job_id) FROM batch_jobs WHERE created_by = :'tag'), 20, 10);
SQL
P=$(get A parent)

# B1: claims both, completes one (the parent keeps running)
session B1 <<-SQL
	SELECT 'pid=' || pg_backend_pid();
	SELECT 1 / (coalesce((SELECT array_agg(job_id ORDER BY job_id) FROM batchjob_claim('notify', 2))
	                     = (SELECT array_agg(job_id ORDER BY job_id) FROM batch_jobs WHERE parent_job_id = ${P:-0}),
	                     false))::int;
	SELECT 'status=' || status FROM batchjob_complete((SELECT min(job_id) FROM batch_jobs WHERE parent_job_id = ${P:-0}));
SQL
# B2: completes the other one, finishing the parent
session B2 <<-SQL
	SELECT 'pid=' || pg_backend_pid();
	SELECT 'status=' || status FROM batchjob_complete((SELECT max(job_id) FROM batch_jobs WHERE parent_job_id = ${P:-0}));
	SELECT 'parent_status=' || status FROM batch_jobs WHERE job_id = ${P:-0};
SQL

# C: the same, rolled back
session C <<-'SQL'
	SELECT 'pid=' || pg_backend_pid();
	BEGIN;
	SELECT NULL FROM batchjob_create_parent('{"notify": "C"}', :'tag', :prio);
	SELECT NULL FROM batchjob_create_child((SELECT max(job_id) FROM batch_jobs WHERE created_by = :'tag' AND is_parent), 1, 0, 10);
	SELECT NULL FROM batchjob_claim('notify', 1);
	SELECT NULL FROM batchjob_complete((SELECT max(job_id) FROM batch_jobs WHERE created_by = :'tag'));
	SELECT 'parent_status=' || status FROM batch_jobs WHERE job_id = (SELECT max(job_id) FROM batch_jobs WHERE created_by = :'tag' AND is_parent);
	ROLLBACK;
SQL

# D0: a parent with one child; D: claims it and fails it with retries left
session D0 <<-'SQL'
	SELECT 'pid=' || pg_backend_pid();
	SELECT 'parent=' || job_id FROM batchjob_create_parent('{"notify": "D"}', :'tag', :prio);
	SELECT 'child=' || job_id FROM batchjob_create_child((SELECT max(job_id) FROM batch_jobs WHERE created_by = :'tag' AND is_parent), 1, 0, 10);
SQL
P2=$(get D0 parent)
C2=$(get D0 child)
session D <<-SQL
	SELECT 'pid=' || pg_backend_pid();
	SELECT 1 / (coalesce((SELECT array_agg(job_id) FROM batchjob_claim('notify', 1)) = ARRAY[${C2:-0}]::bigint[], false))::int;
	SELECT 'status=' || status || ' future=' || (run_at > clock_timestamp())
	  FROM batchjob_fail(${C2:-0}, 'try again');
SQL
# E: claims it again (after moving its run_at) and fails it for good
session E <<-SQL
	SELECT 'pid=' || pg_backend_pid();
	UPDATE batch_jobs SET run_at = now() - interval '1 second' WHERE job_id = ${C2:-0};
	SELECT 1 / (coalesce((SELECT array_agg(job_id) FROM batchjob_claim('notify', 1)) = ARRAY[${C2:-0}]::bigint[], false))::int;
	SELECT 'status=' || status FROM batchjob_fail(${C2:-0}, 'fatal', false);
SQL
# F: retries it; G: cancels the parent
session F <<-SQL
	SELECT 'pid=' || pg_backend_pid();
	SELECT 'status=' || status FROM batchjob_retry(${C2:-0});
SQL
session G <<-SQL
	SELECT 'pid=' || pg_backend_pid();
	SELECT 'cancelled=' || batchjob_cancel(${P2:-0});
SQL

# H0: a claimed job whose lease has expired; H: reaps it
session H0 <<-'SQL'
	SELECT 'pid=' || pg_backend_pid();
	SELECT 'parent=' || job_id FROM batchjob_create_parent('{"notify": "H"}', :'tag', :prio);
	SELECT 'child=' || job_id FROM batchjob_create_child((SELECT max(job_id) FROM batch_jobs WHERE created_by = :'tag' AND is_parent), 1, 0, 10);
SQL
P3=$(get H0 parent)
C3=$(get H0 child)
session H1 <<-SQL
	SELECT 'pid=' || pg_backend_pid();
	SELECT 1 / (coalesce((SELECT array_agg(job_id) FROM batchjob_claim('notify', 1)) = ARRAY[${C3:-0}]::bigint[], false))::int;
	UPDATE batch_jobs SET locked_until = clock_timestamp() - interval '1 minute' WHERE job_id = ${C3:-0};
SQL
session H <<-SQL
	SELECT 'pid=' || pg_backend_pid();
	SELECT 'reaped=' || batchjob_reap();
	SELECT 'status=' || status FROM batch_jobs WHERE job_id = ${C3:-0};
SQL
# H2: cancels that parent, so that its job is not claimed below
session H2 <<-SQL
	SELECT 'pid=' || pg_backend_pid();
	SELECT 'cancelled=' || batchjob_cancel(${P3:-0});
SQL

# I: root > middle > leaf; completing the leaf finishes both parents
session I <<-'SQL'
	SELECT 'pid=' || pg_backend_pid();
	SELECT 'root=' || job_id FROM batchjob_create_parent('{"notify": "I"}', :'tag', :prio);
	SELECT 'middle=' || job_id FROM batchjob_create_parent('{"notify": "I"}', :'tag', :prio,
	        parent_job_id => (SELECT max(job_id) FROM batch_jobs WHERE created_by = :'tag' AND is_parent));
	SELECT 'leaf=' || job_id FROM batchjob_create_child((SELECT max(job_id) FROM batch_jobs WHERE created_by = :'tag' AND is_parent), 1, 0, 10);
	SELECT 'claimed=' || job_id FROM batchjob_claim('notify', 1);
	SELECT 'status=' || status FROM batchjob_complete((SELECT max(job_id) FROM batch_jobs WHERE created_by = :'tag'));
SQL

# J: three children in one transaction
session J <<-'SQL'
	SELECT 'pid=' || pg_backend_pid();
	SELECT 'parent=' || job_id FROM batchjob_create_parent('{"notify": "J"}', :'tag', :prio);
	SELECT 'children=' || count(*)
	  FROM batchjob_split((SELECT max(job_id) FROM batch_jobs WHERE created_by = :'tag' AND is_parent), 30, 10);
SQL

# K: with batchjob.tenant_isolation on, a finishing parent says that some
# parent finished, not which one or how: the listener (any role that can
# connect) must not learn other tenants' job ids and statuses.
session K <<-'SQL'
	SELECT 'pid=' || pg_backend_pid();
	SET batchjob.tenant_isolation = on;
	SELECT 'parent=' || job_id FROM batchjob_create_parent('{"notify": "K"}', :'tag', :prio + 1);
	SELECT 'child=' || job_id FROM batchjob_create_child((SELECT max(job_id) FROM batch_jobs WHERE created_by = :'tag' AND is_parent), 1, 0, 10);
	SELECT 'claimed=' || job_id FROM batchjob_claim('notify', 1);
	SELECT 'status=' || status FROM batchjob_complete((SELECT max(job_id) FROM batch_jobs WHERE created_by = :'tag'));
SQL

# let the listener take in what was sent, then close it
printf '%s\n' "SELECT pg_sleep(0.5);" "SELECT 'done';" >&3
exec 3>&-
wait "$listener_pid"
listener_pid=

ok() { if "$@"; then echo 1; else echo 0; fi; }

A=$(get A pid) B1=$(get B1 pid) B2=$(get B2 pid) Cp=$(get C pid) D=$(get D pid)
E=$(get E pid) F=$(get F pid) G=$(get G pid) H=$(get H pid) I=$(get I pid)
J=$(get J pid) K=$(get K pid)

result "$(ok ran A)" "A: creating a parent and two children works" "$(why A)"
result "$(ok test "$(received "$A" batchjob_jobs_available -)" = 1)" \
	"A: new children send one batchjob_jobs_available (no payload)"
result "$(ok test "$(received "$A" batchjob_parent_done '*')" = 0)" \
	"A: creating jobs sends no batchjob_parent_done"
result "$(ok eval 'ran B1 && [ "$(received_any "$B1")" = 0 ]')" \
	"B1: claiming and completing one of two children sends nothing" "$(why B1)"
result "$(ok test "$(received "$B2" batchjob_parent_done "$(done_payload "$P" COMPLETED)")" = 1)" \
	"B2: completing the last child sends batchjob_parent_done {\"job_id\": $P, \"status\": \"COMPLETED\"} once" \
	"$(why B2; grep "PID $B2\." "$work/listener.out")"
result "$(ok eval 'ran C && [ "$(get C parent_status)" = COMPLETED ] && [ "$(received_any "$Cp")" = 0 ]')" \
	"C: a transaction that finished a parent, then rolled back, sends nothing" "$(why C)"
result "$(ok eval 'ran D && [ "$(get D status)" = "PENDING future=true" ] && [ "$(received "$D" batchjob_jobs_available -)" = 0 ]')" \
	"D: a failure with retries left (run_at in the future) sends no batchjob_jobs_available" \
	"$(why D; get D status)"
result "$(ok test "$(received "$E" batchjob_parent_done "$(done_payload "$P2" FAILED)")" = 1)" \
	"E: a final failure of the only child sends batchjob_parent_done {\"job_id\": $P2, \"status\": \"FAILED\"}" \
	"$(why E; grep "PID $E\." "$work/listener.out")"
result "$(ok eval 'ran E && [ "$(received "$E" batchjob_jobs_available -)" = 0 ]')" \
	"E: moving run_at of a PENDING job, claiming and failing for good send no batchjob_jobs_available"
result "$(ok eval 'ran F && [ "$(received "$F" batchjob_jobs_available -)" = 1 ]')" \
	"F: batchjob_retry() sends batchjob_jobs_available" "$(why F)"
result "$(ok test "$(received "$F" batchjob_parent_done '*')" = 0)" \
	"F: the reopened parent sends no batchjob_parent_done"
result "$(ok test "$(received "$G" batchjob_parent_done "$(done_payload "$P2" CANCELLED)")" = 1)" \
	"G: cancelling the parent sends batchjob_parent_done {\"job_id\": $P2, \"status\": \"CANCELLED\"}" \
	"$(why G; grep "PID $G\." "$work/listener.out")"
result "$(ok eval 'ran H1 && ran H && [ "$(get H status)" = PENDING ] && [ "$(received "$H" batchjob_jobs_available -)" = 1 ]')" \
	"H: batchjob_reap() putting a job back to PENDING sends batchjob_jobs_available" \
	"$(why H1; why H; get H reaped)"
MID=$(get I middle) ROOT=$(get I root)
result "$(ok test "$(received "$I" batchjob_parent_done "$(done_payload "$MID" COMPLETED)")" = 1)" \
	"I: the middle parent of a nested tree sends its batchjob_parent_done" \
	"$(why I; grep "PID $I\." "$work/listener.out")"
result "$(ok test "$(received "$I" batchjob_parent_done "$(done_payload "$ROOT" COMPLETED)")" = 1)" \
	"I: ... and so does the root"
result "$(ok test "$(received "$I" batchjob_parent_done '*')" = 2)" \
	"I: exactly two batchjob_parent_done for the two parents"
result "$(ok eval 'ran J && [ "$(get J children)" = 3 ]')" \
	"J: a split into three children works" "$(why J)"
result "$(ok test "$(received "$J" batchjob_jobs_available -)" = 1)" \
	"J: three new children in one transaction send one batchjob_jobs_available" \
	"$(grep "PID $J\." "$work/listener.out")"

result "$(ok eval 'ran K && [ "$(get K status)" = COMPLETED ]')" \
	"K: with tenant isolation on, a parent finishes as usual" "$(why K)"
result "$(ok test "$(received "$K" batchjob_parent_done -)" = 1)" \
	"K: with tenant isolation on, its batchjob_parent_done comes once, without a payload" \
	"$(grep "PID $K\." "$work/listener.out")"
result "$(ok test "$(received "$K" batchjob_parent_done '*')" = 1)" \
	"K: ... and no other batchjob_parent_done names the job"

[ "$n" = "$PLAN" ] || { echo "# planned $PLAN tests but ran $n"; failed=$((failed + 1)); }
[ "$failed" = 0 ]
