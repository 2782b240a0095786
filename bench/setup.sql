/* bench/setup.sql - helpers bench/run loads into each benchmark database */

/*
 * Adds per_parent children to each of parents, all in one INSERT (so the
 * rollup runs once for the lot), in the given status, batches of 100
 * records.  Job ids come out contiguous (one id step apart: 64 on a
 * partition): grouped, parent i's children are
 * first + (i - 1) * per_parent + 0 .. per_parent - 1; interleaved, they
 * take turns, so consecutive job ids (the claim order) belong to
 * different parents.  Into batch_jobs, or a plain copy of it (tbl).
 * Returns the first job id.
 */
CREATE FUNCTION bench_add_children(parents bigint[], per_parent integer,
                                   status text,
                                   interleave boolean DEFAULT false,
                                   tbl regclass DEFAULT 'batch_jobs')
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    np integer := cardinality(parents);
    first_id bigint;
    last_id bigint;
    n bigint;
    step bigint;
BEGIN
    EXECUTE format(
        'WITH ins AS (
             INSERT INTO %s (status, is_parent, parent_job_id, batch_number,
                             batch_offset, batch_size, total_records)
             SELECT $1, false, p, b, (b - 1) * 100, 100, 100
               FROM (SELECT g, $2[CASE WHEN $4 THEN g %% $3 ELSE g / $5 END + 1] AS p,
                            (CASE WHEN $4 THEN g / $3 ELSE g %% $5 END + 1)::int AS b
                       FROM generate_series(0, $3 * $5 - 1) AS g) s
              ORDER BY g
          RETURNING job_id)
         SELECT min(job_id), max(job_id), count(*) FROM ins', tbl)
        INTO first_id, last_id, n
        USING status, parents, np, interleave, per_parent;
    /* ids step by more than 1 on a partition (batchjob_set_partition) */
    SELECT seqincrement INTO step FROM pg_sequence
     WHERE seqrelid = pg_get_serial_sequence(tbl::text, 'job_id')::regclass;
    IF last_id - first_id <> (n - 1) * step THEN
        RAISE EXCEPTION 'children of % got job ids % .. % for % rows: not contiguous',
            parents, first_id, last_id, n;
    END IF;
    RETURN first_id;
END
$$;

/* n new parents; returns their ids in order. */
CREATE FUNCTION bench_parents(n integer)
RETURNS bigint[]
LANGUAGE sql
AS $$
    SELECT array_agg((batchjob_create_parent(jsonb_build_object('bench', i),
                                             'bench')).job_id ORDER BY i)
      FROM generate_series(1, n) AS i
$$;

/*
 * An indexed copy of batch_jobs without the extension's triggers.  Its ids
 * start far above the parents' (in batch_jobs) that its rows name, so the
 * copied "not its own parent" check cannot trip.
 */
CREATE TABLE bench_plain (LIKE batch_jobs INCLUDING ALL);
ALTER TABLE bench_plain ALTER COLUMN job_id RESTART WITH 1000000000000;
