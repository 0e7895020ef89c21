/*
 * The snapmem command: shared pieces of the subcommands. Only src/cli/ prints or exits.
 *
 * Each subcommand is `int cmd_NAME(int argc, char **argv)` (argv[0] is the subcommand's name),
 * owns its usage text and option table, answers -h/--help with its usage on stdout (exit 0) and
 * returns the process exit status of the contract: 0 done, 1 negative verdict, 2 bad input or
 * usage, 3 out of memory or over --max-mem, 128+signal when interrupted.
 */
#ifndef SNAPMEM_CLI_H
#define SNAPMEM_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "snapmem/error.h"
#include "snapmem/estimator.h"

int cmd_info(int argc, char **argv);
int cmd_mock(int argc, char **argv);
int cmd_estimate(int argc, char **argv);
int cmd_tradeoff(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_report(int argc, char **argv);

/* Prints "snapmem: MSG" (one line) on stderr and returns the exit status for err. */
int cli_fail(const sm_error *err);

/* Prints "snapmem CMD: MSG" and "usage: ..." hints for a usage error; returns 2. */
int cli_usage_error(const char *cmd, const char *usage, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Source and model options shared by estimate and tradeoff (defined in cmd_estimate.c). */
struct cli_est_args {
	const char *base, *snapshot, *out, *format;
	int snap, have_snap;
	uint64_t node_mem;
	sm_model_options opts;
};

int cli_est_parse(const char *cmd, const char *usage, int allow_node_mem, int argc, char **argv,
		  struct cli_est_args *a, int *done);
int cli_est_input(const struct cli_est_args *a, sm_est_input *in, sm_error *err);
char *cli_est_commas(uint64_t v, char *buf, size_t len);
char *cli_est_gib_repr(uint64_t bytes, char *buf, size_t len);
const char *cli_est_opts_text(const sm_model_options *o, char *buf, size_t len);
int cli_est_emit(const char *text, const char *out, sm_error *err);

/* MPI glue for `run --mpi` (mpi.c; docs/MPI.md). Only mpi.c includes <mpi.h>. */
struct sm_pipeline_comm;

/* 1 when this binary was built with MPI. */
int cli_mpi_available(void);

/* MPI_Init (once) and the collectives over MPI_COMM_WORLD into *comm. 0, or SM_EUNSUPPORTED
 * ("built without MPI") / SM_EIO with err filled. */
int cli_mpi_init(struct sm_pipeline_comm *comm, sm_error *err);

/* MPI_Finalize when cli_mpi_init started MPI; otherwise nothing. */
void cli_mpi_finalize(void);

/* This rank's host name (MPI_Get_processor_name, else gethostname). */
void cli_mpi_host(char *buf, size_t len);

#endif
