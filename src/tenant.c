/*-------------------------------------------------------------------------
 *
 * src/tenant.c
 *	  Tenant isolation: with batchjob.tenant_isolation on, a role that is not
 *	  an admin sees and changes only the jobs of the tenants it acts for.
 *
 * A job's tenant is its created_by.  A role acts for itself (a submitter
 * submits as itself) and, if it is a worker given a list of tenants by
 * batchjob_grant(role, 'worker', tenants), for those; a worker given no
 * list serves every tenant.  Admins (roles that may UPDATE batch_jobs) and
 * superusers are never restricted (role_is_job_admin).
 *
 * Plain SELECTs (and the progress view) are filtered by a row-level
 * security policy that calls batchjob_tenant_visible() when isolation is on
 * (the policy tests the setting first, so it costs nothing when off).  The functions that
 * change jobs run as the extension's owner, to whom row-level security does
 * not apply, so they check the tenant of every job they are given here,
 * against the role that called them (the outer user: SECURITY DEFINER does
 * not change it).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "batchjob.h"

PG_FUNCTION_INFO_V1(batchjob_tenant_visible);

static bool tenant_isolation = false;

void
batchjob_define_gucs(void)
{
	DefineCustomBoolVariable("batchjob.tenant_isolation",
							 "Limits each role that is not a batchjob admin to the jobs of its own tenants.",
							 "A job's tenant is its created_by; workers serve the tenants batchjob_grant gave them.",
							 &tenant_isolation,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
	BJ_RESERVE_GUC_PREFIX("batchjob");
}

/* Is batchjob.tenant_isolation on in this session? */
bool
tenant_isolation_enabled(void)
{
	return tenant_isolation;
}

/*
 * Whether roleid is a batchjob admin: a superuser, or a role that may
 * UPDATE batch_jobs (the extension's owner and the roles batchjob_grant made
 * admins).  Admins are never limited to tenants, and may finish a job
 * without naming the worker that holds it (src/lifecycle.c).
 */
bool
role_is_job_admin(Oid nspid, Oid roleid)
{
	Oid			relid;

	if (superuser_arg(roleid))
		return true;
	relid = get_relname_relid("batch_jobs", nspid);
	return OidIsValid(relid) &&
		pg_class_aclcheck(relid, roleid, ACL_UPDATE) == ACLCHECK_OK;
}

/*
 * The tenants roleid acts for, as a text[] Datum, or *isnull when it is not
 * restricted (isolation off, superuser, admin, or a worker serving all).
 * Must be connected to SPI.
 */
Datum
tenant_scope_datum(Oid nspid, Oid roleid, bool *isnull)
{
	Datum		values[1];
	Datum		served;
	bool		served_null;
	ArrayType  *extra = NULL;
	Datum	   *elems = NULL;
	int			nelems = 0;
	Datum	   *all;
	int			i;

	*isnull = true;
	if (!tenant_isolation || role_is_job_admin(nspid, roleid))
		return (Datum) 0;

	values[0] = ObjectIdGetDatum(roleid);
	job_run_plan(job_plan(PLAN_WORKER_TENANTS, nspid), values, NULL, true,
				 SPI_OK_SELECT, "reading the tenants a worker serves");
	if (SPI_processed > 0)
	{
		served = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
							   1, &served_null);
		if (served_null)
			return (Datum) 0;	/* a worker serving every tenant */
		extra = DatumGetArrayTypeP(served);
		deconstruct_array(extra, TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, NULL, &nelems);
	}

	all = palloc(sizeof(Datum) * (nelems + 1));
	all[0] = CStringGetTextDatum(GetUserNameFromId(roleid, false));
	for (i = 0; i < nelems; i++)
		all[i + 1] = elems[i];
	*isnull = false;
	return PointerGetDatum(construct_array(all, nelems + 1, TEXTOID, -1,
										   false, TYPALIGN_INT));
}

static bool
scope_contains(Datum scope, text *tenant)
{
	ArrayType  *array = DatumGetArrayTypeP(scope);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;

	if (tenant == NULL)
		return false;
	deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	for (i = 0; i < n; i++)
		if (!nulls[i] &&
			DatumGetBool(DirectFunctionCall2Coll(texteq, C_COLLATION_OID,
												 elems[i],
												 PointerGetDatum(tenant))))
			return true;
	return false;
}

static void
report_foreign_job(int64 job_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied for job " INT64_FORMAT, job_id),
			 errdetail("The job belongs to a tenant this role does not act for, and batchjob.tenant_isolation is on.")));
}

/*
 * 42501 unless the calling role may act on job_id.  A job that does not
 * exist passes; the caller reports that.  Must be connected to SPI.
 */
void
check_job_tenant(Oid nspid, int64 job_id)
{
	bool		unrestricted;
	Datum		scope;
	Datum		values[2];
	Datum		id = Int64GetDatum(job_id);

	if (!tenant_isolation)
		return;
	scope = tenant_scope_datum(nspid, GetOuterUserId(), &unrestricted);
	if (unrestricted)
		return;
	values[0] = PointerGetDatum(construct_array(&id, 1, INT8OID, 8,
												FLOAT8PASSBYVAL,
												TYPALIGN_DOUBLE));
	values[1] = scope;
	job_run_plan(job_plan(PLAN_FOREIGN_JOB, nspid), values, NULL, true,
				 SPI_OK_SELECT, "checking the job's tenant");
	if (SPI_processed > 0)
		report_foreign_job(job_id);
}

/* The same for an array of job ids. */
void
check_jobs_tenant(Oid nspid, Datum job_ids)
{
	bool		unrestricted;
	Datum		scope;
	Datum		values[2];
	bool		isnull;

	if (!tenant_isolation)
		return;
	scope = tenant_scope_datum(nspid, GetOuterUserId(), &unrestricted);
	if (unrestricted)
		return;
	values[0] = job_ids;
	values[1] = scope;
	job_run_plan(job_plan(PLAN_FOREIGN_JOB, nspid), values, NULL, true,
				 SPI_OK_SELECT, "checking the jobs' tenants");
	if (SPI_processed > 0)
		report_foreign_job(DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
													   SPI_tuptable->tupdesc,
													   1, &isnull)));
}

/* 42501 unless the calling role may create jobs as created_by. */
void
check_created_by(Oid nspid, text *created_by)
{
	bool		unrestricted;
	Datum		scope;

	if (!tenant_isolation)
		return;
	scope = tenant_scope_datum(nspid, GetOuterUserId(), &unrestricted);
	if (!unrestricted && !scope_contains(scope, created_by))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to create jobs for tenant \"%s\"",
						text_to_cstring(created_by)),
				 errdetail("With batchjob.tenant_isolation on, a role creates jobs only as itself.")));
}

/*
 * The scope of one role, remembered for the rest of its transaction: the
 * row-level security policy asks once per row.
 */
static LocalTransactionId cached_lxid = InvalidLocalTransactionId;
static Oid	cached_role = InvalidOid;
static bool cached_unrestricted;
static Datum cached_scope;
static MemoryContext cache_cxt = NULL;

/*
 * batchjob_tenant_visible(created_by): whether the current role may see a
 * job of that tenant; the row-level security policy on batch_jobs.
 */
Datum
batchjob_tenant_visible(PG_FUNCTION_ARGS)
{
	/* it runs as the owner (to read batch_job_workers): ask for the caller */
	Oid			role = GetOuterUserId();

	if (!tenant_isolation)
		PG_RETURN_BOOL(true);

	if (cached_lxid != BJ_LOCAL_XID() || cached_role != role)
	{
		Oid			nspid = job_function_namespace(fcinfo);
		MemoryContext old;
		bool		unrestricted;
		Datum		scope;

		if (cache_cxt == NULL)
			cache_cxt = AllocSetContextCreate(TopMemoryContext,
											  "batchjob tenant scope",
											  ALLOCSET_SMALL_SIZES);
		MemoryContextReset(cache_cxt);
		cached_lxid = InvalidLocalTransactionId;

		job_spi_connect();
		scope = tenant_scope_datum(nspid, role, &unrestricted);
		old = MemoryContextSwitchTo(cache_cxt);
		cached_scope = unrestricted ? (Datum) 0 :
			PointerGetDatum(DatumGetArrayTypePCopy(scope));
		MemoryContextSwitchTo(old);
		job_spi_finish();

		cached_unrestricted = unrestricted;
		cached_role = role;
		cached_lxid = BJ_LOCAL_XID();
	}
	if (cached_unrestricted)
		PG_RETURN_BOOL(true);
	PG_RETURN_BOOL(!PG_ARGISNULL(0) &&
				   scope_contains(cached_scope, PG_GETARG_TEXT_PP(0)));
}
