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
