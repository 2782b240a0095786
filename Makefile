# Makefile for the batchjob extension (PGXS)

MODULE_big = batchjob
OBJS = batchjob.o src/errors.o src/fold.o src/lifecycle.o src/limits.o \
	src/rollup.o src/schema.o src/spi_plans.o src/status.o src/tenant.o \
	src/followups.o

EXTENSION = batchjob
DATA = batchjob--1.0.sql batchjob--1.0--1.1.sql batchjob--1.1--1.2.sql \
	batchjob--1.2.sql
PGFILEDESC = "batchjob - parent/child batch jobs with in-database rollup"

REGRESS = core rollup errors followups
REGRESS_OPTS = --inputdir=. --load-extension=batchjob
ISOLATION = rollup_concurrent rollup_lock_order refresh_concurrent \
	split_concurrent claim_concurrent claim_fail_fast lifecycle_finish_race \
	lifecycle_cancel_complete lifecycle_reap_heartbeat lifecycle_no_deadlock \
	followups_race purge_concurrent
ISOLATION_OPTS = --load-extension=batchjob
# Perl TAP tests (PostgreSQL::Test::Cluster), each on servers of its own:
# make prove_installcheck runs them alone; make installcheck, as PGXS does,
# after the suites above.  Run them as a user that may run initdb (not
# root); test/t/README says more.
TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

PG_CPPFLAGS = -I$(srcdir)/src
# Warnings are errors.  -Wextra's unused-parameter check is off: inline
# functions in the PostgreSQL headers (lib/ilist.h, storage/bufpage.h in
# 15) leave parameters unused, as do the callbacks PostgreSQL defines the
# signatures of.  Only what PostgreSQL must find is exported
# (src/compat.h): the server loads modules with RTLD_GLOBAL.
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -fvisibility=hidden

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS knows nothing of our headers
$(OBJS): src/batchjob.h src/compat.h

# The isolation specs say which transaction folds into a parent and which
# defers; a folder that took the rollups over after a burst of deferrals in
# an earlier permutation would make that depend on timing.  The hand-off
# itself is tested by test/t/006_handoff.pl.
installcheck: export PGOPTIONS += -c batchjob.defer_when_busy=off

# PGXS says how to run the TAP tests, but has no target for them alone.
.PHONY: prove_installcheck
prove_installcheck:
	$(prove_installcheck)

# The proxy side of scale-out on PL/Proxy (README, "Scale-out on PL/Proxy"):
# SQL only, installed beside batchjob.
EXTENSION += batchjob_proxy
DATA += batchjob_proxy--1.2.sql
