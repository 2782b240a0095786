/*-------------------------------------------------------------------------
 *
 * src/compat.h
 *	  The one place that knows about PostgreSQL version differences.
 *
 * batchjob supports PostgreSQL 13 and later.  Every API it uses (slots with
 * TTSOps, attribute maps, transition tables, heap_modify_tuple_by_cols,
 * overflow-checked integer helpers) exists unchanged from 13 to 17, so this
 * header only enforces the floor; future shims go here, not in the code.
 *
 *-------------------------------------------------------------------------
 */
#ifndef BATCHJOB_COMPAT_H
#define BATCHJOB_COMPAT_H

#if PG_VERSION_NUM < 130000
#error "batchjob requires PostgreSQL 13 or later"
#endif

#endif							/* BATCHJOB_COMPAT_H */
