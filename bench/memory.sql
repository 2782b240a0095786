-- bench/memory.sql - the memory of this session's backend around one call
-- on a parent with many children (psql -v parent=... -v call=refresh or
-- children).  It writes its backend's pid to $BENCH_MEMPID and the phase
-- it is in (trivial, scan, then the call) to $BENCH_PHASE, for bench/run's
-- sampler of RssAnon, and after each phase a line "phase VmHWM-kB
-- RssAnon-kB" to $BENCH_MEMLOG.  The plain scan of the same rows comes
-- before the call, so the shared buffers both map count before the call.
\o /dev/null
SELECT pg_backend_pid() AS pid \gset
\setenv BENCH_PID :pid
\setenv BENCH_CALL :call
\! echo trivial >"$BENCH_PHASE"; echo $BENCH_PID >"$BENCH_MEMPID"
SELECT 1;
SELECT pg_sleep(0.1);
\! awk '/^VmHWM/ { h = $2 } /^RssAnon/ { a = $2 } END { print "trivial", h, a }' /proc/$BENCH_PID/status >>"$BENCH_MEMLOG"
\! echo scan >"$BENCH_PHASE"
SELECT count(*), sum(processed_records) FROM batch_jobs WHERE parent_job_id = :parent;
SELECT pg_sleep(0.1);
\! awk '/^VmHWM/ { h = $2 } /^RssAnon/ { a = $2 } END { print "scan", h, a }' /proc/$BENCH_PID/status >>"$BENCH_MEMLOG"
\! echo "$BENCH_CALL" >"$BENCH_PHASE"
SELECT :'call' = 'refresh' AS refresh \gset
\if :refresh
SELECT child_completed FROM batchjob_refresh_parent(:parent);
\else
SELECT count(*) FROM batchjob_children(:parent);
\endif
SELECT pg_sleep(0.1);
\! awk -v s="$BENCH_CALL" '/^VmHWM/ { h = $2 } /^RssAnon/ { a = $2 } END { print s, h, a }' /proc/$BENCH_PID/status >>"$BENCH_MEMLOG"
\! echo done >"$BENCH_PHASE"
