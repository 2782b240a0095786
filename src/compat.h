/*-------------------------------------------------------------------------
 *
 * src/compat.h
 *	  The one place that knows about PostgreSQL version differences.
 *
 * batchjob supports PostgreSQL 13 and later.  Most APIs it uses (slots with
 * TTSOps, attribute maps, transition tables, heap_modify_tuple_by_cols,
 * overflow-checked integer helpers) exist unchanged from 13 to 17; the few
 * that moved are wrapped here, and nowhere else.
 *
 *-------------------------------------------------------------------------
 */
#ifndef BATCHJOB_COMPAT_H
#define BATCHJOB_COMPAT_H

#if PG_VERSION_NUM < 130000
#error "batchjob requires PostgreSQL 13 or later"
#endif

/*
 * The module is built with -fvisibility=hidden (Makefile), so that its
 * helpers cannot collide with another module's: the server loads modules
 * with RTLD_GLOBAL.  What the server must find is marked PGDLLEXPORT
 * (BJ_FUNCTION_INFO_V1 below and PG_MODULE_MAGIC do it for the
 * SQL-callable functions and the magic block), which means default visibility only
 * from 16 on; before, it is empty outside Windows.  The macros expand at
 * their use, after this header, so redefining it here is enough.
 */
#if PG_VERSION_NUM < 160000 && defined(__GNUC__) && !defined(WIN32)
#undef PGDLLEXPORT
#define PGDLLEXPORT __attribute__((visibility("default")))
#endif

/*
 * PG_FUNCTION_INFO_V1 declares the function itself PGDLLEXPORT from 16 on;
 * before, only its info record.  The server looks both up by name.
 */
#if PG_VERSION_NUM < 160000
#define BJ_FUNCTION_INFO_V1(funcname) \
	extern PGDLLEXPORT Datum funcname(PG_FUNCTION_ARGS); \
	PG_FUNCTION_INFO_V1(funcname)
#else
#define BJ_FUNCTION_INFO_V1(funcname) PG_FUNCTION_INFO_V1(funcname)
#endif

/* the backend's local transaction id moved into a struct in 17 */
#if PG_VERSION_NUM >= 170000
#define BJ_LOCAL_XID() (MyProc->vxid.lxid)
#else
#define BJ_LOCAL_XID() (MyProc->lxid)
#endif

/* reserving a GUC prefix got its own function in 15 */
#if PG_VERSION_NUM >= 150000
#define BJ_RESERVE_GUC_PREFIX(p) MarkGUCPrefixReserved(p)
#else
#define BJ_RESERVE_GUC_PREFIX(p) EmitWarningsOnPlaceholders(p)
#endif

#endif							/* BATCHJOB_COMPAT_H */
