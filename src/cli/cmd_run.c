/*
 * `snapmem run`: the instrumented radial-profile pipeline on a snapshot, and the files that let a
 * reader check it: profiles.hdf5 (the science), estimate.json (the model, recomputed after the run
 * with the measured sphere counts so that per-halo stages are compared on equal terms), memory.json
 * (the profiler's measurement with a "run" object) and report.md / report.html.
 *
 * Order of work, so that nothing is read or written in vain: options; the run directory is
 * opened (sm_rundir_open, include/snapmem/outfile.h: created when absent, locked so that a
 * concurrent run into it fails at once, cleaned of what dead runs left, refused when not empty
 * without --force); the estimate from headers and the group catalogue (no particle data), refused
 * with exit 3 when over --max-mem; then the run. Every file is written into the run's staging
 * directory, stamped with the run id, and moved into the run directory at the end, together
 * (sm_rundir_commit; docs/PIPELINE.md "Run directories"). On failure the run directory is left as
 * it was (an earlier run whole; a directory this command created removed again); on
 * SIGINT/SIGTERM the run stops at the next check and memory.json is written marked incomplete with
 * the stages so far, as the only file moved in: as memory.json when the directory held no earlier
 * run, else as memory.interrupted.json beside the earlier run, which stays whole; the exit status
 * is 128 + the signal. A signal after the pipeline finished does not stop the commit.
 *
 * Test hooks (hidden from -h): --inject-oom NAME[:N] (or SNAPMEM_INJECT_OOM) fails the Nth tracked
 * allocation of array NAME ("*" any array) as out of memory; --inject-signal STAGE[:SIG] raises SIG
 * (default SIGINT; SIGTERM, or SIGKILL to leave what a killed run leaves) when STAGE begins.
 *
 * `--mpi` (docs/MPI.md; `mpirun -np R snapmem run --mpi ...`): MPI is started (mpi.c), every rank
 * parses the same options and runs sm_pipeline_run_distributed with its own profiler; rank 0 alone
 * checks and creates the run directory, computes the estimate (options.mpi, ranks = R), prints,
 * and writes the files, memory.json with an "mpi" object holding every rank's figures (gathered
 * after the run). Collectives here, in this order on every rank: one agreement before the run
 * (rank 0's directory and estimate checks, every rank's profiler), the pipeline's own, the gather
 * of the per-rank figures (when profiling, after a complete or interrupted run), one agreement at
 * the end (rank 0's writing), so that all ranks exit with the same status.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include <jansson.h>

#include "cli/cli.h"
#include "snapmem/estimator.h"
#include "snapmem/limits.h"
#include "snapmem/outfile.h"
#include "snapmem/pipeline.h"
#include "snapmem/profiler.h"
#include "snapmem/report.h"
#include "snapmem/units.h"

#pragma weak sm_report_write_files_as

enum { RU_BASE = CLI_ID_FIRST, RU_SNAP, RU_OUT, RU_FORCE, RU_MAX_MEM, RU_NO_PROFILE, RU_INJECT_OOM,
       RU_INJECT_SIGNAL };

static const cli_opt run_opts[] = {
	{"base-path", 0, CLI_DIR, "DIR", "required",
	 "illustris layout root (snapdir_NNN/, groups_NNN/)", RU_BASE, 0},
	{"snap", 0, CLI_NUMBER, "N", "required", "snapshot number", RU_SNAP, 0},
	{"out", 0, CLI_DIR, "DIR", "snapmem-run-<snap>", "run directory; must be new or empty",
	 RU_OUT, 0},
	{"force", 0, CLI_FLAG, NULL, "off",
	 "write into an existing non-empty run directory (replacing the earlier run's files, all "
	 "together at the end)", RU_FORCE, 0},
	{"max-mem", 0, CLI_SIZE, "SIZE", "none: no limit",
	 "refuse (exit 3) when the estimate is over SIZE (a unit is required: 200G, 512MiB); also "
	 "enforced while running on the tracked arrays", RU_MAX_MEM, 0},
	{"no-profile", 0, CLI_FLAG, NULL, "off",
	 "no profiler: no memory.json and no report (estimate.json still)", RU_NO_PROFILE, 0},
	/* test hooks (docs/CLI.md) */
	{"inject-oom", 0, CLI_TEXT, "NAME[:N]", "none",
	 "fail the Nth tracked allocation of array NAME (\"*\": any) as out of memory",
	 RU_INJECT_OOM, CLI_HIDDEN},
	{"inject-signal", 0, CLI_TEXT, "STAGE[:SIG]", "none",
	 "raise SIG (2, 15 or 9, default 2) when STAGE begins", RU_INJECT_SIGNAL, CLI_HIDDEN},
	{NULL, 0, CLI_FLAG, NULL, NULL, NULL, 0, 0},
};

const cli_cmd cli_cmd_run = {
	"run", "run the instrumented radial-profile pipeline and measure it",
	"usage: snapmem run --base-path DIR --snap N [MODEL OPTIONS] [--out DIR] [--max-mem SIZE]\n"
	"                   [--force] [--no-profile]\n"
	"       mpirun -np R snapmem run --mpi --base-path DIR --snap N [...]\n",
	"Runs the radial-profile pipeline, measuring every stage, and writes in DIR:\n"
	"profiles.hdf5, estimate.json, memory.json, report.md and report.html. With --mpi (started\n"
	"by mpirun), the distributed run over the MPI ranks (docs/MPI.md).\n",
	run_opts, 1, NULL, cmd_run,
};

static volatile sig_atomic_t got_signal;

/* MPI state of this run; quiet on ranks other than 0 (only rank 0 prints). */
struct mpi_run {
	int on;
	sm_pipeline_comm comm;
	int rank, size;
	unsigned idle_cpus; /* the node's CPUs no rank may run on (mpirun's binding) */
	int pre_agreed;   /* the agreement before the run is done */
	int run_reached;  /* every rank went into the pipeline: the final agreement is due */
};

static int quiet;

static int usage_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_err(const char *fmt, ...)
{
	char buf[SM_ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (quiet)
		return 2;
	return cli_usage_error("run", NULL, "%s", buf);
}

static int run_fail(const sm_error *err)
{
	return quiet ? sm_exit_code(err) : cli_fail(err);
}

/*
 * An agreement point of the CLI: every rank's exit status in, the lowest failing rank's status
 * out (0 when none). When that rank is not 0, its error comes over and rank 0 prints it, as the
 * failing rank printed nothing.
 */
static int agree_status(struct mpi_run *M, int status, sm_error *err)
{
	int fr = -1, fc = 0;

	if (!M->on)
		return status;
	if (M->comm.agree(M->comm.ctx, status, &fr, &fc) != 0)
		return status != 0 ? status : 2;
	if (fr < 0)
		return 0;
	if (M->comm.bcast(M->comm.ctx, fr, err, sizeof(*err)) == 0 && fr != 0 && M->rank == 0)
		fprintf(stderr, "snapmem: rank %d of %d: %s\n", fr, M->size,
			err->msg[0] != '\0' ? err->msg : sm_strerror(err->code));
	return fc;
}

static void on_signal(int sig)
{
	got_signal = sig;
}

struct progress_state {
	int tty;
	double last;
	char inject_stage[64];
	int inject_sig;
	int injected;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void draw_progress(const sm_pipeline_progress *pr, void *ctx)
{
	struct progress_state *ps = ctx;
	double t = now_s();

	if (ps->inject_stage[0] != '\0' && !ps->injected &&
	    strcmp(ps->inject_stage, pr->stage) == 0) {
		ps->injected = 1;
		raise(ps->inject_sig);
	}
	if (!ps->tty || (t - ps->last < 0.1 && pr->done != pr->total))
		return;
	ps->last = t;
	if (pr->halo >= 0) {
		double rate = pr->elapsed_s > 0 ? (double)pr->halo / pr->elapsed_s : 0;

		fprintf(stderr, "\r\033[Ksnapmem run: %-16s halo %lld of %llu  %.1f s", pr->stage,
			(long long)pr->halo + 1, (unsigned long long)pr->halos, pr->elapsed_s);
		(void)rate;
	} else if (pr->total > 0) {
		fprintf(stderr, "\r\033[Ksnapmem run: %-16s %5.1f%% of %llu  %.1f s", pr->stage,
			100.0 * (double)pr->done / (double)pr->total, (unsigned long long)pr->total,
			pr->elapsed_s);
	} else {
		fprintf(stderr, "\r\033[Ksnapmem run: %-16s %.1f s", pr->stage, pr->elapsed_s);
	}
	fflush(stderr);
}

static json_t *options_json(const sm_model_options *mo, const char *base, int snap,
			    const char *out, uint64_t max_mem)
{
	json_t *o = json_object();

	json_object_set_new(o, "positions", json_string(sm_model_positions_name(mo->positions)));
	json_object_set_new(o, "select", json_string(sm_model_select_name(mo->select)));
	json_object_set_new(o, "temperature",
			    json_string(sm_model_temperature_name(mo->temperature)));
	json_object_set_new(o, "stream_block", json_integer((json_int_t)mo->stream_block));
	json_object_set_new(o, "halos", mo->halos >= 0 ? json_integer(mo->halos) : json_null());
	json_object_set_new(o, "mass_min", json_real(mo->mass_min));
	json_object_set_new(o, "ranks", json_integer(mo->ranks));
	json_object_set_new(o, "mpi", json_boolean(mo->mpi));
	json_object_set_new(o, "base_path", json_string(base));
	json_object_set_new(o, "snap", json_integer(snap));
	json_object_set_new(o, "out", json_string(out));
	json_object_set_new(o, "max_mem", max_mem ? json_integer((json_int_t)max_mem) : json_null());
	return o;
}

/*
 * --max-mem refuses a run whose need (the verdict's figure: the resident peak with page tables)
 * is over it, with one line naming the figure and the cheapest combinations that fit, one
 * process and distributed (sm_est_verdict: the same answer `estimate --node-mem` gives).
 */
static void run_refusal(const char *base, const sm_estimate *pre, const sm_est_verdict *v,
			sm_error *err)
{
	char a[32], b[32], c[32], sw[200], hint[600] = "";
	size_t n = 0;

	if (v->best_one_process >= 0) {
		const sm_est_alternative *x = &v->choices[v->best_one_process];

		n += (size_t)snprintf(hint + n, sizeof(hint) - n, "; fits with %s (needs %s)",
				      sm_est_options_switches(&x->options, sw, sizeof(sw)),
				      sm_format_iec(x->need, a, sizeof(a)));
	}
	if (v->best_distributed >= 0 && n < sizeof(hint)) {
		const sm_est_alternative *x = &v->choices[v->best_distributed];

		n += (size_t)snprintf(hint + n, sizeof(hint) - n, "%s mpirun -np R snapmem run %s "
				      "(needs %s per rank)", n > 0 ? ", or distributed:" :
				      "; fits distributed:",
				      sm_est_options_switches(&x->options, sw, sizeof(sw)),
				      sm_format_iec(x->need, a, sizeof(a)));
	}
	if (n == 0)
		snprintf(hint, sizeof(hint), "; no option combination fits, not even the distributed "
			 "run");
	sm_format_iec(pre->need, a, sizeof(a));
	sm_format_iec(v->node_mem, b, sizeof(b));
	sm_format_iec(pre->peak, c, sizeof(c));
	sm_error_set(err, SM_ELIMIT,
		     "'%s': needs %llu bytes (%s) at peak in stage '%s' (resident with page tables; "
		     "%llu bytes (%s) requested), over --max-mem %llu bytes (%s); nothing was read%s",
		     base, (unsigned long long)pre->need, a, pre->stages[pre->peak_resident_stage].id,
		     (unsigned long long)pre->peak, c, (unsigned long long)v->node_mem, b, hint);
	err->needed_bytes = pre->need;
}

/* The "run" object of memory.json (docs/MODEL.md). */
static char *run_meta(const sm_model_options *mo, const char *base, int snap, const char *out,
		      uint64_t max_mem, const sm_pipeline_result *r, const sm_estimate *pre,
		      const char *status, int report_written, const sm_rundir *rd,
		      const char *memory_name)
{
	json_t *o = json_object(), *halos = json_array(), *files = json_object(),
	       *outs = json_array();
	uint64_t i;
	char *text;

	json_object_set_new(o, "id", json_string(rd->id));
	json_object_set_new(o, "started", json_string(rd->started));
	json_object_set_new(o, "options", options_json(mo, base, snap, out, max_mem));
	json_object_set_new(o, "status", json_string(status));
	json_object_set_new(o, "gas_cells", json_integer((json_int_t)r->gas_cells));
	json_object_set_new(o, "groups_total", json_integer((json_int_t)r->groups_total));
	json_object_set_new(o, "grid_side", json_integer((json_int_t)r->grid_side));
	json_object_set_new(o, "box_size", json_real(r->box_size));
	json_object_set_new(o, "hubble_param", json_real(r->hubble_param));
	json_object_set_new(o, "threads", json_integer((json_int_t)sm_threads()));
	for (i = 0; i < r->nhalos && r->halos != NULL; i++) {
		const sm_pipeline_halo *h = &r->halos[i];
		json_t *hv = json_object();

		json_object_set_new(hv, "instance", json_integer((json_int_t)i));
		json_object_set_new(hv, "group_index", json_integer(h->group_index));
		/* a NaN mass is "unknown" (docs/PIPELINE.md): null, not a key jansson drops */
		json_object_set_new(hv, "m200_msun", isfinite(h->m200_msun) ?
				    json_real(h->m200_msun) : json_null());
		json_object_set_new(hv, "r200", json_real(h->r200));
		json_object_set_new(hv, "sphere_cells", json_integer((json_int_t)h->sphere_cells));
		json_array_append_new(halos, hv);
	}
	json_object_set_new(o, "halos", halos);
	json_object_set_new(o, "empty", json_boolean(r->empty));
	if (r->empty)
		json_object_set_new(o, "note", json_string("no halo matched the selection: "
							   "profiles.hdf5 holds K = 0 rows"));
	json_object_set_new(files, "snapshot_chunks", json_integer(r->snapshot_files));
	json_object_set_new(files, "catalog_chunks", json_integer(r->catalog_files));
	if (strcmp(status, "complete") == 0) {
		json_array_append_new(outs, json_string("profiles.hdf5"));
		json_array_append_new(outs, json_string("estimate.json"));
	}
	json_array_append_new(outs, json_string(memory_name));
	if (report_written) {
		json_array_append_new(outs, json_string("report.md"));
		json_array_append_new(outs, json_string("report.html"));
	}
	json_object_set_new(files, "outputs", outs);
	json_object_set_new(o, "files", files);
	json_object_set_new(o, "wall_s", json_real(r->wall_s));
	json_object_set_new(o, "estimate_peak_bytes", json_integer((json_int_t)pre->peak));
	json_object_set_new(o, "estimate_peak_allocated_bytes",
			    json_integer((json_int_t)pre->peak_allocated));
	json_object_set_new(o, "estimate_peak_total_bytes",
			    json_integer((json_int_t)pre->peak_total));
	json_object_set_new(o, "estimate_peak_stage",
			    json_string(pre->nstages > 0 ? pre->stages[pre->peak_stage].id : ""));
	json_object_set_new(o, "estimate_peak_resident_bytes",
			    json_integer((json_int_t)pre->peak_resident));
	json_object_set_new(o, "estimate_peak_address_space_bytes",
			    json_integer((json_int_t)pre->peak_address_space));
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return text;
}

/* ---- --mpi: the per-rank figures of memory.json's "mpi" object (docs/MPI.md) ---------------- */

static const char *const rank_keys[] = {"requested_peak", "tracked_allocated_peak",
					"allocated_peak", "vm_hwm"};

/* This rank's figures as a JSON text (malloc'd; NULL on allocation failure). */
static char *rank_figures(const struct mpi_run *M, sm_prof *prof, const char *base, int snap,
			  double wall_s)
{
	json_t *o = json_object(), *files = json_array(), *stages = json_array(), *doc, *vp;
	uint64_t mx[4] = {0, 0, 0, 0}, cells = 0;
	int64_t *fl = NULL;
	size_t nf = 0, i, n = sm_prof_stage_count(prof);
	char host[256], *text;
	sm_error e;

	cli_mpi_host(host, sizeof(host));
	json_object_set_new(o, "rank", json_integer(M->rank));
	json_object_set_new(o, "host", json_string(host));
	if (sm_pipeline_rank_files(base, snap, (uint32_t)M->rank, (uint32_t)M->size, &fl, &nf,
				   &cells, &e) == 0)
		for (i = 0; i < nf; i++)
			json_array_append_new(files, json_integer(fl[i]));
	free(fl);
	json_object_set_new(o, "files", files);
	json_object_set_new(o, "cells", json_integer((json_int_t)cells));
	json_object_set_new(o, "wall_s", json_real(wall_s));
	text = sm_prof_json(prof);
	doc = text != NULL ? json_loads(text, 0, NULL) : NULL;
	free(text);
	json_object_set_new(o, "baseline_allocated",
			    json_integer(json_integer_value(
				    json_object_get(json_object_get(doc, "baseline"), "allocated"))));
	/* this rank's address space (VmPeak), judged against its own peak_address_space_bytes */
	vp = json_object_get(json_object_get(doc, "process"), "vm_peak");
	json_object_set(o, "vm_peak", vp != NULL ? vp : json_null());
	json_decref(doc);
	for (i = 0; i < n; i++) {
		sm_prof_stage_info si;
		json_t *st;
		uint64_t v[4];
		int j;

		if (sm_prof_stage_get(prof, i, &si) != 0 || si.depth != 0)
			continue;
		v[0] = si.requested_peak;
		v[1] = si.tracked_allocated_peak;
		v[2] = si.allocated_peak;
		v[3] = si.vm_hwm_end;
		st = json_object();
		json_object_set_new(st, "id", json_string(si.id));
		json_object_set_new(st, "instance", json_integer(si.instance));
		json_object_set_new(st, "wall_s", json_real(si.wall_s));
		for (j = 0; j < 4; j++) {
			json_object_set_new(st, rank_keys[j], json_integer((json_int_t)v[j]));
			if (v[j] > mx[j])
				mx[j] = v[j];
		}
		json_array_append_new(stages, st);
	}
	for (i = 0; i < 4; i++)
		json_object_set_new(o, rank_keys[i], json_integer((json_int_t)mx[i]));
	json_object_set_new(o, "stages", stages);
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return text;
}

/*
 * Gathers every rank's figures to rank 0 (collective) and, there, attaches memory.json's "mpi"
 * object to prof. *max_peak receives the largest requested peak of any rank (rank 0 only).
 * Returns 0 or an SM_E* code (rank 0: the object could not be built).
 */
static int gather_figures(struct mpi_run *M, sm_prof *prof, const char *base, int snap,
			  double wall_s, uint64_t *max_peak, sm_error *err)
{
	static const char *const sum_keys[] = {"cells", "requested_peak", "tracked_allocated_peak",
					       "allocated_peak", "vm_hwm"};
	char *mine = rank_figures(M, prof, base, snap, wall_s), *text;
	void **blobs = NULL;
	size_t *lens = NULL, j;
	json_t *o, *per, *mx, *sm;
	double wmax = 0, wsum = 0;
	int i, rc;

	*max_peak = 0;
	rc = M->comm.gather(M->comm.ctx, mine != NULL ? mine : "", mine != NULL ? strlen(mine) : 0,
			    &blobs, &lens);
	free(mine);
	if (rc != 0)
		return sm_error_set(err, rc, "run --mpi: gathering the ranks' figures failed: %s",
				    sm_strerror(rc));
	if (M->rank != 0)
		return 0;
	o = json_object();
	per = json_array();
	mx = json_object();
	sm = json_object();
	for (j = 0; j < 5; j++) {
		json_object_set_new(mx, sum_keys[j], json_integer(0));
		json_object_set_new(sm, sum_keys[j], json_integer(0));
	}
	for (i = 0; i < M->size; i++) {
		json_t *r = json_loadb(blobs[i], lens[i], 0, NULL);
		double w;

		free(blobs[i]);
		if (r == NULL) {
			r = json_object();
			json_object_set_new(r, "rank", json_integer(i));
			json_object_set_new(r, "error", json_string("figures not received"));
		}
		for (j = 0; j < 5; j++) {
			json_int_t v = json_integer_value(json_object_get(r, sum_keys[j]));

			if (v > json_integer_value(json_object_get(mx, sum_keys[j])))
				json_object_set_new(mx, sum_keys[j], json_integer(v));
			json_object_set_new(sm, sum_keys[j],
					    json_integer(json_integer_value(json_object_get(
							 sm, sum_keys[j])) + v));
		}
		w = json_number_value(json_object_get(r, "wall_s"));
		wmax = w > wmax ? w : wmax;
		wsum += w;
		json_array_append_new(per, r);
	}
	free(blobs);
	free(lens);
	json_object_set_new(mx, "wall_s", json_real(wmax));
	json_object_set_new(sm, "wall_s", json_real(wsum));
	*max_peak = (uint64_t)json_integer_value(json_object_get(mx, "requested_peak"));
	json_object_set_new(o, "ranks", json_integer(M->size));
	json_object_set_new(o, "assignment",
			    json_string("largest chunk first to the least-loaded rank"));
	json_object_set_new(o, "per_rank", per);
	json_object_set_new(o, "max", mx);
	json_object_set_new(o, "sum", sm);
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (text == NULL || sm_prof_set_meta(prof, "mpi", text) != 0) {
		free(text);
		return sm_error_set(err, SM_ENOMEM, "cannot build memory.json's mpi object");
	}
	free(text);
	return 0;
}

/* Whether the command line asks for the distributed run (--mpi, or --ranks R > 1), found before
 * the options are parsed for real so that MPI is up before anything is printed; *ranks_given
 * when --ranks appears. -h/--help anywhere: no MPI (the usage is printed). Quiet: errors are
 * skipped here and reported by the real parse (by rank 0 alone under mpirun). */
static int wants_mpi(int argc, char **argv, int *ranks_given)
{
	sm_model_options m;
	sm_error e;
	cli_parser p;
	const cli_opt *o;
	const char *val;
	int rc;

	sm_model_options_init(&m);
	*ranks_given = 0;
	cli_parser_init(&p, &cli_cmd_run, argc, argv);
	p.quiet = 1;
	while ((rc = cli_next(&p, &o, &val)) != CLI_END) {
		if (rc == CLI_HELP)
			return 0;
		if (rc != CLI_OPTION || o->id != CLI_ID_MODEL)
			continue;
		if (strcmp(p.name, "--ranks") == 0)
			*ranks_given = 1;
		sm_model_option_apply(&m, p.name, val, &e);
	}
	return m.mpi || m.ranks > 1;
}

static int parse_inject(const char *val, char *name, size_t len, uint64_t *n, sm_error *err)
{
	const char *colon = strrchr(val, ':');
	size_t nl = colon ? (size_t)(colon - val) : strlen(val);

	*n = 1;
	if (nl == 0 || nl >= len)
		return sm_error_set(err, SM_EINVAL, "--inject-oom: '%s' is not NAME[:N]", val);
	memcpy(name, val, nl);
	name[nl] = '\0';
	if (colon != NULL) {
		int rc = sm_parse_u64("--inject-oom", colon + 1, n, err);

		if (rc != 0)
			return rc;
		if (*n == 0)
			return sm_error_set(err, SM_EINVAL, "--inject-oom: N must be at least 1");
	}
	return 0;
}

/* Largest requested peak over the profiler's stages, and its stage. */
static uint64_t measured_peak(const sm_prof *p, const char **stage)
{
	size_t i, n = sm_prof_stage_count(p);
	uint64_t best = 0;

	*stage = "";
	for (i = 0; i < n; i++) {
		sm_prof_stage_info si;

		if (sm_prof_stage_get(p, i, &si) == 0 && si.requested_peak > best) {
			best = si.requested_peak;
			*stage = si.id;
		}
	}
	return best;
}

/*
 * The estimate against what this process may use (include/snapmem/limits.h, docs/PIPELINE.md
 * "Memory limits"): resident, the estimate's need (sm_estimate.need: the resident peak, baseline
 * included, with page tables: the verdict's figure); address space, the estimate's least address
 * space (sm_estimate.least_address_space: the one address-space model, docs/MODEL.md).
 * SNAPMEM_LIMIT_CHECK=0 skips it. 0 or SM_ELIMIT with err's line naming the figure and the limit.
 */
/*
 * The main thread's stack grows on demand, and under RLIMIT_AS (ulimit -v) a growth that finds no
 * room is SIGSEGV, not an error: a run under a limit just above its VmPeak crashed in the index
 * sort's 64 KiB stack buffers (split_near_f32, 8 of 30 runs of 500,000 cells with one worker
 * thread). So once the limit check has passed, the stack is grown by STACK_RESERVE at once, before
 * the arrays take the room, and the pages touched to grow it are given back (the mapping stays:
 * the stack's mapping never shrinks), so the resident set is as before. The main thread's stack
 * limit is at least 2 MiB here (src/cli/main.c runs the command on a 2 MiB thread otherwise, whose
 * stack is mapped whole).
 */
#define STACK_RESERVE_FRAME (64u << 10)
#define STACK_RESERVE_DEPTH 8u

static __attribute__((noinline)) uintptr_t stack_grow(unsigned depth)
{
	volatile char pad[STACK_RESERVE_FRAME];
	uintptr_t low;
	size_t i;

	for (i = 0; i < sizeof(pad); i += 4096)
		pad[i] = 0;
	pad[sizeof(pad) - 1] = 0;
	low = depth > 1 ? stack_grow(depth - 1) : (uintptr_t)&pad[0];
	pad[0] = 1; /* keeps the frame live across the call */
	return low;
}

static void reserve_stack(void)
{
	long page = sysconf(_SC_PAGESIZE);
	uintptr_t here = (uintptr_t)&page, low = stack_grow(STACK_RESERVE_DEPTH), lo, hi;

	if (page <= 0)
		return;
	lo = (low + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
	hi = (here - STACK_RESERVE_FRAME) & ~((uintptr_t)page - 1); /* below this frame and ours */
	if (hi > lo)
		(void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

struct run_need {
	uint64_t resident, address;
	char stage[48];
};

static int check_limits(const struct run_need *need, sm_error *err)
{
	const char *env = getenv("SNAPMEM_LIMIT_CHECK");
	sm_mem_limits l;
	size_t n;

	if (env != NULL && strcmp(env, "0") == 0)
		return 0;
	sm_mem_limits_read(&l, NULL);
	if (sm_mem_limits_check(&l, need->resident, need->address, "the run", err) == 0)
		return 0;
	n = strlen(err->msg);
	snprintf(err->msg + n, sizeof(err->msg) - n, ", at its peak in stage '%s'; nothing was "
		 "read (SNAPMEM_LIMIT_CHECK=0 skips this check)", need->stage);
	return SM_ELIMIT;
}

/* Everything one `snapmem run` holds, from its options to its files, so that its steps below are
 * functions of their own (the order of work: this file's comment). */
struct run_cli {
	struct mpi_run *M;
	int ranks_given;
	sm_error err;
	sm_model_options mo;
	sm_pipeline_result res;
	sm_est_input in;
	sm_estimate *pre, *post;   /* on the heap: 17 KiB each */
	sm_prof *prof;
	struct progress_state ps;
	struct sigaction old_int, old_term;
	const char *base, *out, *inject_env;
	char defout[64], path[SM_PATH_MAX + 32], inject_name[64];
	uint64_t max_mem, inject_n, mpi_peak;
	int snap, force, no_profile, status;
	int have_in, have_pre, have_post, sig_installed, report_written;
	struct run_need need;
	sm_rundir rd;
};

/* How a step ended: on to the next; failed (err says why: run_fail prints it and gives the exit
 * status); failed with the status set and the message still to print; done, the status set. */
enum run_step { STEP_NEXT, STEP_FAIL, STEP_FAIL_PRINT, STEP_DONE };

/* --inject-signal STAGE[:SIG] into C->ps. 0, or a usage error's status. */
static int parse_inject_signal(struct run_cli *C, const char *val)
{
	const char *colon = strrchr(val, ':');
	size_t nl = colon ? (size_t)(colon - val) : strlen(val);

	if (nl == 0 || nl >= sizeof(C->ps.inject_stage))
		return usage_err("--inject-signal: '%s' is not STAGE[:SIG]", val);
	memcpy(C->ps.inject_stage, val, nl);
	C->ps.inject_stage[nl] = '\0';
	C->ps.inject_sig = colon ? atoi(colon + 1) : SIGINT;
	if (C->ps.inject_sig != SIGINT && C->ps.inject_sig != SIGTERM &&
	    C->ps.inject_sig != SIGKILL)
		return usage_err("--inject-signal: signal must be %d, %d or %d", SIGINT, SIGTERM,
				 SIGKILL);
	return 0;
}

/* One option of the table into C. 0, or a usage error's status. */
static int apply_option(struct run_cli *C, const cli_parser *cp, const cli_opt *opt,
			const char *val)
{
	uint64_t s;

	switch (opt->id) {
	case RU_FORCE:
		C->force = 1;
		break;
	case RU_NO_PROFILE:
		C->no_profile = 1;
		break;
	case CLI_ID_MODEL:
		if (sm_model_option_apply(&C->mo, cp->name, val, &C->err) < 0)
			return usage_err("%s", C->err.msg);
		break;
	case RU_BASE:
		C->base = val;
		break;
	case RU_SNAP:
		if (sm_parse_u64(cp->name, val, &s, &C->err) != 0)
			return usage_err("%s", C->err.msg);
		if (s > 999999999)
			return usage_err("--snap: '%s' is too large", val);
		C->snap = (int)s;
		break;
	case RU_OUT:
		C->out = val;
		break;
	case RU_MAX_MEM:
		if (sm_parse_size(cp->name, val, &C->max_mem, &C->err) != 0)
			return usage_err("%s", C->err.msg);
		if (C->max_mem == 0)
			return usage_err("--max-mem: must be more than 0 bytes");
		break;
	case RU_INJECT_OOM:
		C->inject_env = val;
		break;
	case RU_INJECT_SIGNAL:
		return parse_inject_signal(C, val);
	}
	return 0;
}

/* The command line, checked whole (MPI ranks against mpirun's -np included). -1 to go on, else
 * the exit status of a usage error (nothing to undo yet). */
static int parse_options(struct run_cli *C, int argc, char **argv)
{
	struct mpi_run *M = C->M;
	cli_parser cp;
	const cli_opt *opt;
	const char *val;
	int rc;

	cli_parser_init(&cp, &cli_cmd_run, argc, argv);
	cp.quiet = quiet;
	while ((rc = cli_next(&cp, &opt, &val)) != CLI_END) {
		if (rc < 0)
			return cli_parse_status(rc);
		if ((rc = apply_option(C, &cp, opt, val)) != 0)
			return rc;
	}
	if (C->base == NULL || C->snap < 0)
		return usage_err("--base-path DIR and --snap N are needed");
	if (sm_model_options_check(&C->mo, &C->err) != 0)
		return usage_err("%s", C->err.msg);
	if (M->on) {
		/* One process (no mpirun, or -np 1) asked for more ranks: say how to start them. */
		if (C->ranks_given && M->size == 1 && C->mo.ranks > 1)
			return usage_err("--ranks %u: this process runs as 1 MPI rank (started "
					 "without mpirun, or with -np 1); start %u with 'mpirun -np %u "
					 "snapmem run --mpi ...' (as root add --allow-run-as-root; more "
					 "ranks than cores: --oversubscribe)", (unsigned)C->mo.ranks,
					 (unsigned)C->mo.ranks, (unsigned)C->mo.ranks);
		if (C->ranks_given && C->mo.ranks != (uint32_t)M->size)
			return usage_err("--ranks %u: the MPI job has %d rank%s (mpirun -np %d)",
					 (unsigned)C->mo.ranks, M->size, M->size == 1 ? "" : "s",
					 M->size);
		C->mo.ranks = (uint32_t)M->size;
		C->mo.mpi = 1;
	}
	if (C->inject_env != NULL && C->inject_env[0] != '\0' &&
	    parse_inject(C->inject_env, C->inject_name, sizeof(C->inject_name), &C->inject_n,
			 &C->err) != 0)
		return usage_err("%s", C->err.msg);
	if (C->out == NULL) {
		snprintf(C->defout, sizeof(C->defout), "snapmem-run-%d", C->snap);
		C->out = C->defout;
	}
	return -1;
}

/* SIGINT/SIGTERM from here on stop the run at its next check (the pipeline's first one when they
 * come during the estimate), so that the run directory, made next, is never left half-done by a
 * signal's default action. */
static void install_signals(struct run_cli *C)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGINT, &sa, &C->old_int);
	sigaction(SIGTERM, &sa, &C->old_term);
	C->sig_installed = 1;
}

/* Rank 0 (or the one process): the run directory, the estimate from headers and the catalogue
 * only, the --max-mem verdict and this process's limits. */
static enum run_step prepare(struct run_cli *C)
{
	/* The run directory: created when absent and locked before anything is read; refused when
	 * another run holds it, or when it is not empty without --force (outfile.h). */
	if (sm_rundir_open(&C->rd, C->out, C->force, &C->err) != 0) {
		C->status = 2;
		return STEP_FAIL_PRINT;
	}
	if (C->rd.lock_errno != 0 && !quiet)
		fprintf(stderr, "snapmem run: warning: '%s': cannot lock the run directory (%s): "
			"runs into it at the same time are not detected\n", C->out,
			strerror(C->rd.lock_errno));

	if (sm_est_input_from_base(&C->in, C->base, C->snap, &C->mo, &C->err) != 0)
		return STEP_FAIL;
	C->have_in = 1;
	C->pre = calloc(1, sizeof(*C->pre));
	C->post = calloc(1, sizeof(*C->post));
	if (C->pre == NULL || C->post == NULL) {
		sm_error_set(&C->err, SM_ENOMEM, "out of memory for the estimate (%zu bytes)",
			     2 * sizeof(*C->pre));
		return STEP_FAIL;
	}
	if (sm_estimate_compute(&C->in, &C->mo, C->pre, &C->err) != 0)
		return STEP_FAIL;
	C->have_pre = 1;
	if (C->max_mem > 0) {
		sm_est_verdict v;

		if (sm_est_verdict_compute(&C->in, C->pre, C->max_mem, 0, &v, &C->err) != 0)
			return STEP_FAIL;
		if (v.fits != 1) {
			run_refusal(C->base, C->pre, &v, &C->err);
			sm_est_verdict_release(&v);
			return STEP_FAIL;
		}
		sm_est_verdict_release(&v);
	}
	/* What this process may use (every rank checks its own after the agreement before the run). */
	C->need.resident = C->pre->need;
	C->need.address = C->pre->least_address_space;
	snprintf(C->need.stage, sizeof(C->need.stage), "%s",
		 C->pre->stages[C->pre->peak_resident_stage].id);
	if (check_limits(&C->need, &C->err) != 0)
		return STEP_FAIL;
	reserve_stack();
	return STEP_NEXT;
}

/* Every rank: the profiler (unless --no-profile), with the injected failure of the test hook. */
static enum run_step start_profiler(struct run_cli *C)
{
	sm_prof_options popt;

	sm_hdf5_lean();
	if (C->no_profile)
		return STEP_NEXT;
	sm_prof_options_init(&popt);
	if (sm_prof_create(&popt, &C->prof, &C->err) != 0)
		return STEP_FAIL;
	if (C->inject_n > 0)
		sm_prof_inject_failure(C->prof, strcmp(C->inject_name, "*") == 0 ? NULL
									  : C->inject_name,
				       C->inject_n);
	return STEP_NEXT;
}

/* --mpi: the agreement before the run (rank 0's directory and estimate, every rank's profiler),
 * then every rank's own limits against rank 0's estimate (one rank's figures). */
static enum run_step agree_before_run(struct run_cli *C)
{
	struct mpi_run *M = C->M;

	if (!M->on)
		return STEP_NEXT;
	M->pre_agreed = 1;
	C->status = agree_status(M, 0, &C->err);
	if (C->status != 0)
		return STEP_DONE;
	if (M->comm.bcast(M->comm.ctx, 0, &C->need, sizeof(C->need)) != 0)
		sm_error_set(&C->err, SM_EIO, "run --mpi: the estimate could not be sent to the "
			     "ranks");
	else if (M->rank != 0 && check_limits(&C->need, &C->err) == 0)
		reserve_stack();
	C->status = agree_status(M, C->err.code != 0 ? sm_exit_code(&C->err) : 0, &C->err);
	return C->status != 0 ? STEP_DONE : STEP_NEXT;
}

/* An interrupted run: the per-rank figures gathered, and on rank 0 memory.json marked incomplete
 * (or memory.interrupted.json beside an earlier run, which stays whole) moved in alone; err's
 * message says what was written. */
static void write_interrupted(struct run_cli *C)
{
	struct mpi_run *M = C->M;
	char reason[128], *meta;
	const char *name = C->rd.had_run ? "memory.interrupted.json" : "memory.json";
	sm_error werr;

	snprintf(reason, sizeof(reason), "interrupted by signal %d in stage '%s'", C->err.signal,
		 C->res.stage);
	if (C->prof != NULL && M->on) {
		uint64_t mpk;
		sm_error gerr;

		sm_error_clear(&gerr);
		(void)gather_figures(M, C->prof, C->base, C->snap, C->res.wall_s, &mpk, &gerr);
	}
	if (C->prof == NULL || M->rank != 0)
		return;
	sm_error_clear(&werr);
	sm_prof_mark_incomplete(C->prof, reason);
	meta = run_meta(&C->mo, C->base, C->snap, C->out, C->max_mem, &C->res, C->pre,
			"interrupted", 0, &C->rd, name);
	if (meta != NULL)
		sm_prof_set_meta(C->prof, "run", meta);
	free(meta);
	if (sm_rundir_staged(&C->rd, name, C->path, sizeof(C->path)) != NULL &&
	    sm_prof_write_json(C->prof, C->path, &werr) == 0 &&
	    sm_rundir_commit(&C->rd, &name, 1, !C->rd.had_run, &werr) == 0)
		snprintf(C->err.msg, sizeof(C->err.msg),
			 "%s; wrote '%.450s/%s' (incomplete, stages so far)%s", reason, C->out,
			 name, C->rd.had_run ? "; the earlier run there is unchanged" : "");
}

/* The pipeline itself, serial or distributed, into the staging directory (rank 0). */
static enum run_step run_pipeline(struct run_cli *C)
{
	struct mpi_run *M = C->M;
	sm_pipeline_options po;
	int rc;

	sm_pipeline_options_init(&po);
	po.base_path = C->base;
	po.snap = C->snap;
	po.model = C->mo;
	/* rank 0 writes profiles.hdf5 into the staging directory; the other ranks write nothing */
	po.out_dir = C->rd.stage != NULL ? C->rd.stage : C->out;
	po.run_id = C->rd.stage != NULL ? C->rd.id : NULL;
	po.run_started = C->rd.stage != NULL ? C->rd.started : NULL;
	po.sync_later = C->rd.stage != NULL; /* sm_rundir_commit syncs it before moving it in */
	po.max_mem = C->max_mem;
	C->ps.tty = isatty(2) && !quiet;
	if (C->ps.tty || C->ps.inject_stage[0] != '\0') {
		po.progress = draw_progress;
		po.progress_ctx = &C->ps;
	}
	po.cancel = &got_signal;
	M->run_reached = M->on;
	if (M->on)
		rc = sm_pipeline_run_distributed(&po, &M->comm, C->prof, &C->res, &C->err);
	else
		rc = sm_pipeline_run(&po, C->prof, &C->res, &C->err);
	if (C->ps.tty)
		fprintf(stderr, "\r\033[K");
	if (rc == SM_EINTR) {
		write_interrupted(C);
		return STEP_FAIL;
	}
	if (rc != 0) {
		if ((rc == SM_ENOMEM || rc == SM_ELIMIT) && C->have_pre) {
			char a[32], msg[SM_ERROR_MSG_MAX];

			sm_format_iec(C->pre->need, a, sizeof(a));
			snprintf(msg, sizeof(msg), "%.600s; the estimate for this run is %llu bytes "
				 "(%s) at peak in stage '%s' (resident with page tables)", C->err.msg,
				 (unsigned long long)C->pre->need, a,
				 C->pre->stages[C->pre->peak_resident_stage].id);
			memcpy(C->err.msg, msg, sizeof(msg));
		}
		return STEP_FAIL;
	}
	/* --mpi: every rank's figures to rank 0; the other ranks are done */
	if (M->on && C->prof != NULL &&
	    gather_figures(M, C->prof, C->base, C->snap, C->res.wall_s, &C->mpi_peak,
			   &C->err) != 0 && M->rank == 0)
		return STEP_FAIL;
	if (M->rank != 0) {
		C->status = 0;
		return STEP_DONE;
	}
	return STEP_NEXT;
}

/* The estimate again, with the measured sphere counts, into the staging directory's
 * estimate.json (the pre-run one under "pre_run"). */
static enum run_step write_estimate(struct run_cli *C)
{
	sm_model_options mo2 = C->mo;
	sm_est_input *in = &C->in;
	const sm_pipeline_result *res = &C->res;
	sm_est_verdict v;
	uint64_t k;
	int wrc;

	mo2.sphere_cells = 0;
	mo2.calibrate[0] = '\0';
	if (in->nhalos != res->nhalos)
		fprintf(stderr, "snapmem run: warning: the estimator selected %llu halos, the run "
			"%llu\n", (unsigned long long)in->nhalos, (unsigned long long)res->nhalos);
	for (k = 0; k < in->nhalos; k++) {
		in->halos[k].sphere_cells = 0;
		if (k >= res->nhalos)
			continue;
		if (in->halos[k].group_index != res->halos[k].group_index)
			fprintf(stderr, "snapmem run: warning: halo %llu is group %lld in the "
				"estimate, %lld in the run\n", (unsigned long long)k,
				(long long)in->halos[k].group_index,
				(long long)res->halos[k].group_index);
		in->halos[k].sphere_cells = res->halos[k].sphere_cells;
	}
	if (sm_estimate_compute(in, &mo2, C->post, &C->err) != 0)
		return STEP_FAIL;
	C->have_post = 1;
	if (sm_rundir_staged(&C->rd, "estimate.json", C->path, sizeof(C->path)) == NULL) {
		sm_error_set(&C->err, SM_EINVAL, "'%.200s...': path too long", C->out);
		return STEP_FAIL;
	}
	if (sm_est_verdict_compute(in, C->post, C->max_mem, 0, &v, &C->err) != 0)
		return STEP_FAIL;
	wrc = sm_estimate_write_json_run(in, C->post, &v, C->pre, C->rd.id, C->rd.started, C->path,
					 &C->err);
	sm_est_verdict_release(&v);
	return wrc != 0 ? STEP_FAIL : STEP_NEXT;
}

/* memory.json with its "run" object, and report.md / report.html when the report writer is built
 * in, into the staging directory. */
static enum run_step write_measurement(struct run_cli *C)
{
	int have_report = sm_report_write_files_as != NULL;
	char *meta;

	if (C->prof == NULL) {
		fprintf(stderr, "snapmem run: --no-profile: no memory.json and no report\n");
		return STEP_NEXT;
	}
	meta = run_meta(&C->mo, C->base, C->snap, C->out, C->max_mem, &C->res, C->pre, "complete",
			have_report, &C->rd, "memory.json");
	if (meta == NULL || sm_prof_set_meta(C->prof, "run", meta) != 0) {
		free(meta);
		sm_error_set(&C->err, SM_ENOMEM, "cannot build memory.json's run object");
		return STEP_FAIL;
	}
	free(meta);
	if (sm_rundir_staged(&C->rd, "memory.json", C->path, sizeof(C->path)) == NULL ||
	    sm_prof_write_json(C->prof, C->path, &C->err) != 0)
		return STEP_FAIL;
	if (!have_report) {
		fprintf(stderr, "snapmem run: the report writer is not built into this binary: no "
			"report.md / report.html (run 'snapmem report %s' later)\n", C->out);
		return STEP_NEXT;
	}
	if (sm_report_write_files_as(C->rd.stage, C->out, 1.0, &C->err) != 0)
		return STEP_FAIL;
	C->report_written = 1;
	return STEP_NEXT;
}

/* Everything is whole in the staging directory: moved into the run directory together,
 * replacing the earlier run's files (those this run does not write are removed). */
static enum run_step commit_files(struct run_cli *C)
{
	const char *names[5];
	size_t nn = 0;

	names[nn++] = "profiles.hdf5";
	names[nn++] = "estimate.json";
	if (C->prof != NULL)
		names[nn++] = "memory.json";
	if (C->report_written) {
		names[nn++] = "report.md";
		names[nn++] = "report.html";
	}
	return sm_rundir_commit(&C->rd, names, nn, 1, &C->err) != 0 ? STEP_FAIL : STEP_NEXT;
}

/* The lines a complete run prints on standard output. */
static void print_summary(const struct run_cli *C)
{
	const sm_pipeline_result *res = &C->res;
	char a[32], b[32];
	const char *pstage = "";
	uint64_t mp = C->prof ? measured_peak(C->prof, &pstage) : 0;

	if (res->empty)
		printf("snapmem run: no halo matched the selection (%s): an empty result, "
		       "profiles.hdf5 holds K = 0 rows\n",
		       C->mo.halos >= 0 ? "--halos 0" : "mass cut");
	else if (res->gas_cells == 0)
		printf("snapmem run: the snapshot holds no gas cells: an empty result, every "
		       "profile in profiles.hdf5 is empty (zero counts, NaN means)\n");
	printf("snapmem run: %llu halos, %llu gas cells in %llu chunk files, pipeline %.3f s\n",
	       (unsigned long long)res->nhalos, (unsigned long long)res->gas_cells,
	       (unsigned long long)res->snapshot_files, res->wall_s);
	if (C->M->on)
		printf("  distributed over %d MPI rank%s (largest chunk first to the "
		       "least-loaded rank)%s%s%s\n", C->M->size, C->M->size == 1 ? "" : "s",
		       C->prof ? "; largest rank peak requested " : "",
		       C->prof ? sm_format_iec(C->mpi_peak, a, sizeof(a)) : "",
		       C->prof ? " (memory.json \"mpi\" has every rank's figures)" : "");
	if (C->M->on && C->M->idle_cpus > 0)
		printf("  %u CPU%s of this node ran no rank: mpirun binds each of 2 ranks or fewer to "
		       "a core; --bind-to none (or --map-by slot:PE=N) gives the ranks' worker "
		       "threads the others\n", C->M->idle_cpus, C->M->idle_cpus == 1 ? "" : "s");
	if (C->prof != NULL)
		printf("  peak requested %llu bytes (%s, %.2f bytes per gas cell) in stage "
		       "'%s'; estimated before the run %llu bytes (%s)\n",
		       (unsigned long long)mp, sm_format_iec(mp, a, sizeof(a)),
		       res->gas_cells ? (double)mp / (double)res->gas_cells : 0.0, pstage,
		       (unsigned long long)C->pre->peak, sm_format_iec(C->pre->peak, b, sizeof(b)));
	printf("  wrote %s/profiles.hdf5, estimate.json%s%s\n", C->out,
	       C->prof ? ", memory.json" : "", C->report_written ? ", report.md, report.html" : "");
	if (C->report_written)
		printf("  report: %s/report.html\n", C->out);
}

/* The last agreement (--mpi), then everything undone in reverse; returns the exit status. */
static int finish(struct run_cli *C)
{
	struct mpi_run *M = C->M;

	if (M->on && !M->pre_agreed) {
		/* A rank that failed before the agreement before the run tells the others there. */
		M->pre_agreed = 1;
		(void)agree_status(M, C->status, &C->err);
	} else if (M->run_reached) {
		/* Rank 0's writing decides every rank's status. */
		C->status = agree_status(M, C->status, &C->err);
	}
	sm_rundir_close(&C->rd);
	if (C->sig_installed) {
		sigaction(SIGINT, &C->old_int, NULL);
		sigaction(SIGTERM, &C->old_term, NULL);
	}
	sm_pipeline_result_release(&C->res);
	sm_prof_free(C->prof);
	if (C->have_post)
		sm_estimate_release(C->post);
	if (C->have_pre)
		sm_estimate_release(C->pre);
	free(C->post);
	free(C->pre);
	if (C->have_in)
		sm_est_input_release(&C->in);
	return C->status;
}

static int run_main(int argc, char **argv, struct mpi_run *M, int ranks_given)
{
	struct run_cli C;
	enum run_step st = STEP_NEXT;
	int rc;

	memset(&C, 0, sizeof(C));
	C.M = M;
	C.ranks_given = ranks_given;
	C.snap = -1;
	C.inject_env = getenv("SNAPMEM_INJECT_OOM");
	C.rd.fd = -1;
	sm_error_clear(&C.err);
	sm_model_options_init(&C.mo);
	if ((rc = parse_options(&C, argc, argv)) != -1)
		return rc;
	install_signals(&C);
	/* With --mpi, rank 0 alone checks and creates the run directory and computes the estimate;
	 * the others learn the outcome at the agreement before the run. */
	if (M->rank == 0)
		st = prepare(&C);
	if (st == STEP_NEXT)
		st = start_profiler(&C);
	if (st == STEP_NEXT)
		st = agree_before_run(&C);
	if (st == STEP_NEXT)
		st = run_pipeline(&C);
	if (st == STEP_NEXT)
		st = write_estimate(&C);
	if (st == STEP_NEXT)
		st = write_measurement(&C);
	if (st == STEP_NEXT)
		st = commit_files(&C);
	if (st == STEP_NEXT) {
		print_summary(&C);
		C.status = 0;
	} else if (st == STEP_FAIL) {
		/* after the run a failed file leaves nothing moved in (sm_rundir_close removes the
		 * staging directory): the run directory stays as it was */
		C.status = run_fail(&C.err);
	} else if (st == STEP_FAIL_PRINT && !quiet) {
		fprintf(stderr, "snapmem: %s\n", C.err.msg);
	}
	return finish(&C);
}

int cmd_run(int argc, char **argv)
{
	struct mpi_run M;
	sm_error err;
	const char *env_rank = getenv("OMPI_COMM_WORLD_RANK");
	int ranks_given = 0, status;

	memset(&M, 0, sizeof(M));
	M.size = 1;
	quiet = 0;
	/* Started by mpirun over several ranks but without --mpi: every rank would run the whole
	 * serial pipeline into the same --out. Only the first says so; the others wait for it in an
	 * agreement (mpirun kills the job as soon as one rank exits non-zero). */
	if (!wants_mpi(argc, argv, &ranks_given) && getenv("OMPI_COMM_WORLD_SIZE") != NULL &&
	    atoi(getenv("OMPI_COMM_WORLD_SIZE")) > 1) {
		int fail_rank, fail_code;

		quiet = env_rank != NULL && strcmp(env_rank, "0") != 0;
		status = usage_err("started by mpirun as %d ranks without --mpi: each would run the "
				   "whole pipeline into the same --out; add --mpi for the "
				   "distributed run", atoi(getenv("OMPI_COMM_WORLD_SIZE")));
		sm_error_clear(&err);
		if (cli_mpi_init(&M.comm, &M.idle_cpus, &err) == 0) {
			M.comm.agree(M.comm.ctx, status, &fail_rank, &fail_code);
			cli_mpi_finalize();
		}
		quiet = 0;
		return status;
	}
	if (wants_mpi(argc, argv, &ranks_given)) {
		sm_error_clear(&err);
		if (cli_mpi_init(&M.comm, &M.idle_cpus, &err) != 0) {
			/* Started by mpirun without MPI in this binary: only the first process says so. */
			quiet = env_rank != NULL && strcmp(env_rank, "0") != 0;
			status = run_fail(&err);
			quiet = 0;
			return status;
		}
		M.on = 1;
		M.rank = M.comm.rank;
		M.size = M.comm.size;
		quiet = M.rank != 0;
	}
	status = run_main(argc, argv, &M, ranks_given);
	cli_mpi_finalize();
	quiet = 0;
	return status;
}
