/*
 * The snapmem command: shared pieces of the subcommands. Only src/cli/ prints or exits.
 *
 * Each subcommand is `int cmd_NAME(int argc, char **argv)` (argv[0] is the subcommand's name),
 * described by a `const cli_cmd cli_cmd_NAME` (opts.h: synopsis and ONE option table, from which
 * the parsing, --help, `snapmem help NAME` and the bash completion come), parses with cli_next,
 * and returns the process exit status of the contract (docs/CLI.md): 0 done, 1 negative verdict,
 * 2 bad input or usage, 3 out of memory or over --max-mem, 127 unknown command, 128+signal when
 * interrupted.
 */
#ifndef SNAPMEM_CLI_H
#define SNAPMEM_CLI_H

#include <stddef.h>
#include <stdint.h>

#include <stdio.h>

#include "cli/opts.h"
#include "snapmem/error.h"
#include "snapmem/estimator.h"
#include "snapmem/outfile.h"

int cmd_info(int argc, char **argv);
int cmd_mock(int argc, char **argv);
int cmd_estimate(int argc, char **argv);
int cmd_tradeoff(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_help(int argc, char **argv);
int cmd_completion(int argc, char **argv);
int cmd_profile(int argc, char **argv);
int cmd_diff(int argc, char **argv);

extern const cli_cmd cli_cmd_info, cli_cmd_mock, cli_cmd_estimate, cli_cmd_tradeoff, cli_cmd_run,
	cli_cmd_report, cli_cmd_help, cli_cmd_completion, cli_cmd_profile, cli_cmd_diff;

/* Every command, in the order `snapmem help` lists them (main.c). */
extern const cli_cmd *const cli_commands[];
extern const size_t cli_ncommands;

/* The command called name, or NULL. */
const cli_cmd *cli_find_command(const char *name);

/* "snapmem: 'NAME' is not a snapmem command; did you mean 'X'?" on stderr; returns 127. */
int cli_unknown_command(const char *name);

/* The list of commands (snapmem --help, snapmem help). */
void cli_usage(FILE *f);

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
	uint64_t headroom;        /* bytes, resolved from --headroom SIZE|PCT once --node-mem is known */
	sm_model_options opts;
	const char *pipeline;     /* --pipeline FILE, or NULL: the embedded radial-profiles */
	struct sm_pipeline_desc *desc; /* its description, loaded by cli_est_parse (opts.pipeline) */
};

/* Frees what cli_est_parse loaded (the description); a may be one it failed on. */
void cli_est_args_release(struct cli_est_args *a);

/* The ids of the source and output options in estimate's and tradeoff's tables. */
enum { CLI_EST_BASE = CLI_ID_FIRST, CLI_EST_SNAP, CLI_EST_SNAPSHOT, CLI_EST_NODE_MEM,
       CLI_EST_FORMAT, CLI_EST_OUTPUT, CLI_EST_HEADROOM, CLI_EST_PIPELINE, CLI_EST_SET,
       CLI_EST_FIRST_FREE };

/* The pipeline-description options of estimate and tradeoff (docs/PIPELINES.md), in both tables. */
#define CLI_EST_PIPELINE_OPTS                                                                      \
	{"pipeline", 0, CLI_FILE, "FILE", "the embedded radial-profiles description",               \
	 "estimate the pipeline described in FILE (docs/PIPELINES.md); the model options set the "  \
	 "description's options of the same names (--mpi and --ranks R > 1: strategy distributed); " \
	 "one the description does not declare is an error", CLI_EST_PIPELINE, 0},                  \
	{"set", 0, CLI_TEXT, "NAME=VALUE", "none",                                                 \
	 "set the description's option NAME (repeatable): one of its values, or an integer within "  \
	 "its bounds", CLI_EST_SET, 0}

/* The source options of estimate and tradeoff, in both tables. */
#define CLI_EST_SOURCE_OPTS                                                                        \
	{"base-path", 0, CLI_DIR, "DIR", "the embedded TNG300-1 snapshot 99 header (280 halos)", \
	 "a snapshot in the illustris layout (DIR/snapdir_NNN/, DIR/groups_NNN/), with --snap",   \
	 CLI_EST_BASE, 0},                                                                         \
	{"snap", 0, CLI_NUMBER, "N", "none", "the snapshot number under --base-path",             \
	 CLI_EST_SNAP, 0},                                                                         \
	{"snapshot", 0, CLI_FILE, "FILE", "none",                                                  \
	 "one snapshot file (instead of --base-path; a chunk of a larger snapshot is described "  \
	 "from its header)", CLI_EST_SNAPSHOT, 0}

/* The verdict options of estimate and tradeoff, in both tables. */
#define CLI_EST_NODE_OPTS                                                                          \
	{"node-mem", 0, CLI_SIZE, "SIZE", "none: no verdict",                                      \
	 "a node's memory (512G, 1.5TiB, 4096B; a unit is required): the verdict, one for every "  \
	 "writer: does the configured run fit (its resident peak with page tables), by how much, "  \
	 "and which option combinations fit, cheapest first, the distributed ones with ranks per "  \
	 "node and nodes; exit 0 when the configured run fits, 1 when not", CLI_EST_NODE_MEM, 0}, \
	{"headroom", 0, CLI_TEXT, "SIZE|PCT", "0: the figure is the job's own, as Slurm's --mem is", \
	 "memory of the node kept for the OS and other tenants: a size with a unit (8G) or a "      \
	 "percentage of --node-mem (10%); needs --node-mem", CLI_EST_HEADROOM, 0}

/* Parses estimate's or tradeoff's command line (cmd's table) into *a; *done after --help.
 * Returns 0 or the exit status of a usage error (printed). */
int cli_est_parse(const cli_cmd *cmd, int argc, char **argv, struct cli_est_args *a, int *done);
int cli_est_input(const struct cli_est_args *a, sm_est_input *in, sm_error *err);
char *cli_est_commas(uint64_t v, char *buf, size_t len);
char *cli_est_gib_repr(uint64_t bytes, char *buf, size_t len);
const char *cli_est_opts_text(const sm_model_options *o, char *buf, size_t len);
/* Writes text to a->out (or standard output), never over one of a's inputs (output.c). */
int cli_est_emit(const char *text, const struct cli_est_args *a, sm_error *err);

/* ---- -o FILE (output.c) ---------------------------------------------------------------------- */

/* The inputs of a command, which -o must not replace (sm_out_input, outfile.h). Zero it first. */
struct cli_inputs {
	sm_out_input *in;
	size_t n;
	int nomem;
};

/* A snapshot source's inputs: --snapshot FILE, or --base-path DIR --snap N (the .hdf5 files of
 * DIR, DIR/snapdir_NNN and DIR/groups_NNN), and --calibrate RUNDIR's memory.json. */
void cli_inputs_source(struct cli_inputs *l, const char *base, int snap, const char *snapshot,
		       const char *calibrate);

/* A run directory's estimate.json, memory.json and profiles.hdf5; a regular file itself. */
void cli_inputs_rundir(struct cli_inputs *l, const char *rundir);

void cli_inputs_release(struct cli_inputs *l);

/* Checks out before the work (nothing for NULL or "-"): sm_out_check against l. */
int cli_output_check(const char *out, const struct cli_inputs *l, sm_error *err);

/* text to standard output (out NULL or "-") or through sm_out_write to out, never over l's
 * inputs. 0 or SM_E* with err filled. */
int cli_emit(const char *text, const char *out, const struct cli_inputs *l, sm_error *err);

/* --headroom SIZE|PCT against node_mem (0: not given, an error), into *out. 0 or SM_EINVAL. */
int cli_est_headroom(const char *val, uint64_t node_mem, uint64_t *out, sm_error *err);

#include <stdio.h>

/* The four peaks of e, and the verdict v, as every writer prints them (cmd_estimate.c). */
void cli_est_render_peaks(FILE *f, const sm_estimate *e, int md);
void cli_est_render_verdict(FILE *f, const sm_est_verdict *v, int md);

/* `estimate --format slurm`: the #SBATCH lines for the verdict, malloc'd into *text
 * (cmd_estimate.c). 0 or SM_E* with err filled. */
int cli_est_slurm(const struct cli_est_args *a, const sm_est_input *in, const sm_estimate *e,
		  const sm_est_verdict *v, char **text, sm_error *err);

/* ---- libraries shipped with snapmem (companion.c) -------------------------------------------- */

/* The path of FILE, a library shipped with snapmem (the preload library, the MPI module), into
 * out: `given` when not NULL, else $ENV when set, else FILE beside this binary when readable, else
 * FILE where `make install` puts it (SM_COMPANION_DIR). 1 when that path is readable. */
int cli_companion(const char *given, const char *env, const char *file, char *out, size_t len);

/* MPI for `run --mpi` (mpi.c, through the MPI module: docs/MPI.md). */
struct sm_pipeline_comm;

/* MPI_Init (once) and the collectives over MPI_COMM_WORLD into *comm; the library's worker
 * threads set to this rank's share of its CPUs (sm_threads_share), and *idle_cpus the node's
 * CPUs no rank of the node may run on (mpirun's binding). 0, or SM_EUNSUPPORTED ("built without
 * MPI") / SM_EIO with err filled. */
int cli_mpi_init(struct sm_pipeline_comm *comm, unsigned *idle_cpus, sm_error *err);

/* MPI_Finalize when cli_mpi_init started MPI; otherwise nothing. */
void cli_mpi_finalize(void);

/* This rank's host name (MPI_Get_processor_name, else gethostname). */
void cli_mpi_host(char *buf, size_t len);

#endif
