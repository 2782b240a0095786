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
 * (the policy tests the setting first, so it costs nothing when off).  The
 * functions that change jobs work as the extension's owner, to whom
 * row-level security does not apply, so they check the tenant of every job
 * they are given here.
 *
 * The acting role.  What is judged is the current user at the call: the
 * role whose code called the function.  That is not the outer (session or
 * SET ROLE) user: a tenant's own SECURITY DEFINER function called by an
 * admin, or a tenant's index expression evaluated by a superuser's ANALYZE,
 * acts as the tenant.  So from 1.2 on these functions are SECURITY INVOKER
 * (EXECUTE is still the gate: batchjob_grant gives it); each call notes the
 * current user, then switches itself to the extension's owner for its
 * work, as fmgr_security_definer does for a SECURITY DEFINER function
 * (job_call_begin, job_call_end).  With a 1.1 schema they are still
 * SECURITY DEFINER, so the current user is the owner already and the
 * outer user is judged as before.
 *
 * Existence.  With isolation on, a job the acting role may not act on is
 * answered exactly as a job that does not exist (same SQLSTATE, message,
 * and result), so that no call tells a tenant which job ids another tenant
 * has.  Creating jobs in another tenant's name stays 42501: that says
 * nothing about any job.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "batchjob.h"

BJ_FUNCTION_INFO_V1(batchjob_tenant_visible);

/* batchjob.tenant_isolation, defined in _PG_init */
bool		batchjob_tenant_isolation = false;

/*
 * The tenants worker $1 serves.  Also prepared outside a pinned
 * search_path (the row-level security policy's call): operator qualified.
 * A NULL in a stored list (batchjob_grant refuses them from 1.2 on) names
 * no tenant and is dropped here.
 */
static JobStatement worker_tenants = {
	.sql = "SELECT pg_catalog.array_remove(tenants, NULL::pg_catalog.text)"
	" FROM %3$s WHERE worker OPERATOR(pg_catalog.=) $1",
	.nargs = 1, .argtypes = {OIDOID}
};

#define Anum_worker_tenants_tenants		1

/* the jobs $1 whose tenant is not among $2, in order */
static JobStatement foreign_jobs = {
	.sql = "SELECT job_id FROM %1$s WHERE job_id = ANY ($1)"
	" AND (created_by IS NULL OR NOT created_by = ANY ($2))"
	" ORDER BY job_id",
	.nargs = 2, .argtypes = {INT8ARRAYOID, TEXTARRAYOID}
};

#define Anum_foreign_jobs_job_id		1

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
	if (!batchjob_tenant_isolation || role_is_job_admin(nspid, roleid))
		return (Datum) 0;

	values[0] = ObjectIdGetDatum(roleid);
	job_run(&worker_tenants, nspid, values, NULL, true, SPI_OK_SELECT,
			"reading the tenants a worker serves");
	if (SPI_processed > 0)
	{
		served = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
							   Anum_worker_tenants_tenants, &served_null);
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

/*
 * Whether tenant is among the text[] scope: byte equality (texteq in the
 * C collation), so that no collation can make two tenant names equal.
 */
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

/*
 * The owner of the batchjob extension and its schema, as last read from
 * pg_extension, until a catalog change may have changed them.  pg_extension
 * has no syscache, so a change to it sends no invalidation of its own; but
 * nothing changes its owner or schema alone: DROP and CREATE EXTENSION drop
 * and create its functions and tables, REASSIGN OWNED gives them (owned by
 * the extension's owner) to the new owner, and a dropped or renamed role
 * changes pg_authid.  Each of those sends a relcache, pg_proc or pg_authid
 * invalidation, and any of them forgets the cache (forget_owner), so every
 * call after such a change reads pg_extension again.  Reading it at every
 * call cost a catalog index scan per worker call (issue 16).
 */
static Oid	owner_nspid = InvalidOid;
static Oid	owner_oid = InvalidOid;

/* Relcache and syscache callback: the cached owner may be stale. */
static void
forget_owner(Datum arg, int cacheid, uint32 hashvalue)
{
	owner_nspid = InvalidOid;
}

static void
forget_owner_rel(Datum arg, Oid relid)
{
	owner_nspid = InvalidOid;
}

/* Called once from _PG_init: the invalidations that forget the owner. */
void
batchjob_init_owner_cache(void)
{
	CacheRegisterRelcacheCallback(forget_owner_rel, (Datum) 0);
	CacheRegisterSyscacheCallback(PROCOID, forget_owner, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHOID, forget_owner, (Datum) 0);
	CacheRegisterSyscacheCallback(NAMESPACEOID, forget_owner, (Datum) 0);
}

/*
 * The owner of the batchjob extension, whose schema is nspid: the role the
 * functions work as.  Read from pg_extension, then remembered until an
 * invalidation that could change it (see above), so that it is right after
 * DROP and CREATE EXTENSION or REASSIGN OWNED.
 */
static Oid
extension_owner(Oid nspid)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			owner = InvalidOid;

	if (OidIsValid(owner_nspid) && owner_nspid == nspid)
		return owner_oid;
	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum("batchjob"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup) &&
		((Form_pg_extension) GETSTRUCT(tup))->extnamespace == nspid)
		owner = ((Form_pg_extension) GETSTRUCT(tup))->extowner;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (!OidIsValid(owner))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("batchjob functions work only in the schema of the batchjob extension")));
	owner_oid = owner;
	owner_nspid = nspid;
	return owner;
}

/*
 * Whether the calling function is SECURITY DEFINER, as every function that
 * judges a tenant is in a 1.1 schema (src/schema.c): then the current user
 * is the extension's owner already, and the outer user is the best guess
 * of the acting role.  Sets *nspid to the function's schema.
 */
static bool
function_is_definer(FunctionCallInfo fcinfo, Oid *nspid)
{
	*nspid = job_function_namespace(fcinfo);
	return job_schema(*nspid) == JOB_SCHEMA_1_1;
}

/* Works as the extension's owner until job_call_end (or an error). */
static void
switch_to_owner(JobCall *call)
{
	GetUserIdAndSecContext(&call->save_userid, &call->save_sec_context);
	SetUserIdAndSecContext(extension_owner(call->nspid),
						   call->save_sec_context |
						   SECURITY_LOCAL_USERID_CHANGE);
	call->switched = true;
}

/*
 * Starts a call of a function that workers and submitters use: notes the
 * acting role and switches to the extension's owner (see the file header).
 *
 * Like fmgr_security_definer, it does not restore the user on error: the
 * abort of the transaction or subtransaction the error ends does (each
 * saves the user and security context it started with), and nothing runs
 * in between.  The caller's security context is kept and only marked
 * SECURITY_LOCAL_USERID_CHANGE, so a call from a security-restricted
 * operation stays restricted.  The functions pin search_path with a SET
 * clause; fmgr applies and undoes that, so no GUC is set here.
 */
void
job_call_begin(FunctionCallInfo fcinfo, JobCall *call)
{
	bool		definer = function_is_definer(fcinfo, &call->nspid);

	call->switched = false;
	if (definer)
	{
		/* 1.1: already the owner; the outer user is the best guess left */
		call->role = GetOuterUserId();
		return;
	}
	call->role = GetUserId();

	/*
	 * A 1.0 schema's functions were never SECURITY DEFINER: they keep
	 * running as the caller, whose own table privileges decide.
	 */
	if (job_schema(call->nspid) >= JOB_SCHEMA_1_2)
		switch_to_owner(call);
}

/*
 * The same for the admin-only functions, which run as their caller
 * (SECURITY INVOKER, no switch): the acting role is the current user.
 */
void
job_call_invoker(FunctionCallInfo fcinfo, JobCall *call)
{
	call->nspid = job_function_namespace(fcinfo);
	call->role = GetUserId();
	call->switched = false;
}

/* Ends a call started by job_call_begin: back to the user it started as. */
void
job_call_end(const JobCall *call)
{
	if (call->switched)
		SetUserIdAndSecContext(call->save_userid, call->save_sec_context);
}

/*
 * Whether job_id is hidden from the acting role: isolation is on and the
 * job belongs to a tenant the role does not act for.  A job that does not
 * exist is not hidden (the caller reports it as missing).  Must be
 * connected to SPI.
 */
bool
job_hidden(const JobCall *call, int64 job_id)
{
	Datum		id = Int64GetDatum(job_id);
	int64	   *hidden;

	if (!batchjob_tenant_isolation)
		return false;
	return jobs_hidden(call,
					   PointerGetDatum(construct_array(&id, 1, INT8OID, 8,
													   FLOAT8PASSBYVAL,
													   TYPALIGN_DOUBLE)),
					   &hidden) > 0;
}

/*
 * The jobs of the bigint[] job_ids that are hidden from the acting role, in
 * ascending order, as *hidden; returns how many.  Must be connected to SPI.
 */
int
jobs_hidden(const JobCall *call, Datum job_ids, int64 **hidden)
{
	bool		unrestricted;
	Datum		values[2];
	uint64		i;

	*hidden = NULL;
	if (!batchjob_tenant_isolation)
		return 0;
	values[1] = tenant_scope_datum(call->nspid, call->role, &unrestricted);
	if (unrestricted)
		return 0;
	values[0] = job_ids;
	job_run(&foreign_jobs, call->nspid, values, NULL, true, SPI_OK_SELECT,
			"checking the jobs' tenants");
	*hidden = palloc(sizeof(int64) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		(*hidden)[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
												   SPI_tuptable->tupdesc,
												   Anum_foreign_jobs_job_id,
												   &isnull));
	}
	return (int) SPI_processed;
}

/*
 * Reports job_id as missing, as `missing` says the caller reports a job
 * that does not exist, when it is hidden from the acting role.  Must be
 * connected to SPI.
 */
void
check_job_tenant(const JobCall *call, int64 job_id, JobMissing missing)
{
	if (job_hidden(call, job_id))
		job_report_missing(missing, job_id);
}

/* 42501 unless the acting role may create jobs as created_by. */
void
check_created_by(const JobCall *call, text *created_by)
{
	bool		unrestricted;
	Datum		scope;

	if (!batchjob_tenant_isolation)
		return;
	scope = tenant_scope_datum(call->nspid, call->role, &unrestricted);
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
 * batchjob_tenant_visible(created_by): whether the acting role may see a
 * job of that tenant; the row-level security policy on batch_jobs.  Called
 * for every row, so only a change of role or transaction reads the
 * workers table, as the extension's owner.
 */
Datum
batchjob_tenant_visible(PG_FUNCTION_ARGS)
{
	JobCall		call;
	bool		definer;

	if (!batchjob_tenant_isolation)
		PG_RETURN_BOOL(true);

	definer = function_is_definer(fcinfo, &call.nspid);
	call.role = definer ? GetOuterUserId() : GetUserId();
	call.switched = false;
	if (cached_lxid != BJ_LOCAL_XID() || cached_role != call.role)
	{
		MemoryContext old;
		bool		unrestricted;
		Datum		scope;

		if (cache_cxt == NULL)
			cache_cxt = AllocSetContextCreate(TopMemoryContext,
											  "batchjob tenant scope",
											  ALLOCSET_SMALL_SIZES);
		MemoryContextReset(cache_cxt);
		cached_lxid = InvalidLocalTransactionId;

		if (!definer)
			switch_to_owner(&call);
		job_spi_connect();
		scope = tenant_scope_datum(call.nspid, call.role, &unrestricted);
		old = MemoryContextSwitchTo(cache_cxt);
		cached_scope = unrestricted ? (Datum) 0 :
			PointerGetDatum(DatumGetArrayTypePCopy(scope));
		MemoryContextSwitchTo(old);
		job_spi_finish();
		job_call_end(&call);

		cached_unrestricted = unrestricted;
		cached_role = call.role;
		cached_lxid = BJ_LOCAL_XID();
	}
	if (cached_unrestricted)
		PG_RETURN_BOOL(true);
	PG_RETURN_BOOL(!PG_ARGISNULL(0) &&
				   scope_contains(cached_scope, PG_GETARG_TEXT_PP(0)));
}
