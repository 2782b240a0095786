/* batchjob--1.1--1.2.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION batchjob UPDATE TO '1.2'" to load this file. \quit

/*
 * 1.2: a folder nothing but a superuser can stop, claims that identify
 * their holder, restores without a manual step.  Each section below names
 * what it is for.
 */
