/*
 * `snapmem report`: estimate vs measured vs documented for a run directory, in three forms:
 *   snapmem report RUNDIR                         one run: stage verdicts, arrays, findings
 *   snapmem report --scale-to TNG300-1 RUNDIR...  runs at several sizes fitted and extrapolated
 *   ... --scale-to TNG300-1 --pipeline FILE RUNDIR...  the same for any described program
 *   snapmem report --tradeoff RUN_F32 RUN_F64     float32 vs float64: memory and precision
 * Output: table (default), markdown, json, html (single run only); -o writes atomically, only a
 * regular file that is none of the run directories' files (output.c); -o - is standard output.
 * Exit 0 done, 1 a stage misses the tolerance (or a figure that must match does not, or float32
 * changes a profile beyond the tolerance), 2 bad input or usage, 3 out of memory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "snapmem/measured.h"
#include "snapmem/report.h"
#include "snapmem/units.h"

enum { RO_TOLERANCE = CLI_ID_FIRST, RO_ABS_BOUND, RO_STRICT, RO_SCALE_TO, RO_PIPELINE, RO_TRADEOFF,
       RO_FORMAT, RO_OUTPUT, RO_NODE_MEM, RO_HEADROOM };

static const cli_opt report_opts[] = {
	{"tolerance", 0, CLI_NUMBER, "PCT", "1",
	 "allowed difference, in percent, for figures of 1 MiB and more", RO_TOLERANCE, 0},
	{"abs-bound", 0, CLI_SIZE, "SIZE", "64KiB",
	 "allowed difference below 1 MiB (a unit is required: 64KiB, 4096B)", RO_ABS_BOUND, 0},
	{"strict", 0, CLI_FLAG, NULL, "off",
	 "judge the process's allocated peak above the baseline instead, so that untracked memory "
	 "(HDF5's open-file state, libraries) counts too", RO_STRICT, 0},
	{"scale-to", 0, CLI_CHOICE, "TNG300-1", "none",
	 "fit bytes = a + b*N over runs of the same options at two or more sizes and compare at "
	 "TNG300-1 with the estimator and the notebook's figures", RO_SCALE_TO, 0},
	{"pipeline", 0, CLI_FILE, "FILE", "none",
	 "with --scale-to: the runs are of the program FILE describes (each with that description's "
	 "estimate.json): every stage's measured allocated bytes fitted against the description's "
	 "over the runs and evaluated at its estimate for the target", RO_PIPELINE, 0},
	{"node-mem", 0, CLI_SIZE, "SIZE", "none: no verdict",
	 "with --scale-to: a node's memory (a unit is required): the capacity verdict at the "
	 "target, the one `snapmem estimate --node-mem` gives for the runs' options; exit 1 when "
	 "the run does not fit", RO_NODE_MEM, 0},
	{"headroom", 0, CLI_TEXT, "SIZE|PCT", "0",
	 "with --node-mem: memory of the node kept for the OS and other tenants (8G or 10%)",
	 RO_HEADROOM, 0},
	{"tradeoff", 0, CLI_FLAG, NULL, "off",
	 "a float32 and a float64 run that differ in --positions only (another difference is "
	 "refused, exit 2): memory per stage and what float32 costs in precision (radii, bins, mean "
	 "temperatures)", RO_TRADEOFF, 0},
	{"format", 0, CLI_CHOICE, "table|markdown|json|html", "table",
	 "the output (html: a single run)", RO_FORMAT, 0},
	{"output", 'o', CLI_FILE, "FILE", "standard output",
	 "write there (atomically) instead of standard output", RO_OUTPUT, 0},
	{NULL, 0, CLI_FLAG, NULL, NULL, NULL, 0, 0},
};

const cli_cmd cli_cmd_report = {
	"report", "estimate vs measured vs documented, for a run directory",
	"usage: snapmem report RUNDIR [--tolerance PCT] [--abs-bound SIZE] [--strict]\n"
	"                      [--format table|markdown|json|html] [-o FILE]\n"
	"       snapmem report --scale-to TNG300-1 [--pipeline FILE] RUNDIR RUNDIR... [--tolerance PCT]\n"
	"                      [--node-mem SIZE [--headroom SIZE|PCT]] [--format F] [-o FILE]\n"
	"       snapmem report --tradeoff RUN_F32 RUN_F64 [--tolerance PCT] [--format F] [-o FILE]\n",
	"Compares a run directory's estimate.json (the model) with its memory.json (the measurement):\n"
	"per stage the requested peak and the allocated bytes of the tracked arrays against the\n"
	"estimate, resident bytes, per named array, the allocation sites at each peak and the bytes no\n"
	"tracked array explains (findings, shown first). Exit 1 when a stage misses the tolerance.\n"
	"A directory with memory.json and no estimate.json (snapmem profile) gets what was measured:\n"
	"the peak, stages, the sites live at the peak, leaks and the timeline (exit 0).\n",
	report_opts, 0, "RUNDIR...", cmd_report,
};

/* A run directory without estimate.json but with memory.json gets the measurement-only report. */
static int has_estimate(const char *dir)
{
	char e[4200], m[4200];
	snprintf(e, sizeof(e), "%s/estimate.json", dir);
	snprintf(m, sizeof(m), "%s/memory.json", dir);
	return access(e, F_OK) == 0 || access(m, F_OK) != 0;
}

/* The run directories' files, which -o must not replace (output.c). */
static void report_inputs(struct cli_inputs *l, const char **dirs, size_t ndirs)
{
	size_t i;

	for (i = 0; i < ndirs; i++)
		cli_inputs_rundir(l, dirs[i]);
}

int cmd_report(int argc, char **argv)
{
	const char *out = NULL, *scale_to = NULL, *pipeline = NULL, **dirs = NULL, *headroom = NULL;
	uint64_t node_mem = 0, room = 0;
	sm_report_format fmt = SM_REPORT_TABLE;
	double tol = SM_REPORT_DEFAULT_TOLERANCE;
	uint64_t abs_bound = SM_REPORT_ABS_BOUND;
	sm_error err = {0};
	struct cli_inputs inputs = {0};
	size_t ndirs = 0;
	char *text = NULL;
	cli_parser p;
	const cli_opt *o;
	const char *val;
	int rc, tradeoff = 0, strict = 0, status = 0, fmt_given = 0;

	dirs = calloc((size_t)argc + 1, sizeof(*dirs));
	if (dirs == NULL) {
		sm_error_set(&err, SM_ENOMEM, "cannot allocate the arguments");
		return cli_fail(&err);
	}
	cli_parser_init(&p, &cli_cmd_report, argc, argv);
	while ((rc = cli_next(&p, &o, &val)) != CLI_END) {
		if (rc < 0) {
			status = cli_parse_status(rc);
			goto out;
		}
		if (rc == CLI_OPERAND) {
			dirs[ndirs++] = val;
			continue;
		}
		if (o->id == RO_TRADEOFF) {
			tradeoff = 1;
		} else if (o->id == RO_STRICT) {
			strict = 1;
		} else if (o->id == RO_TOLERANCE) {
			if (sm_parse_double(p.name, val, 0.0, 100.0, &tol, &err) != 0) {
				status = cli_parse_error(&p, "%s", err.msg);
				goto out;
			}
		} else if (o->id == RO_ABS_BOUND) {
			if (sm_parse_size(p.name, val, &abs_bound, &err) != 0) {
				status = cli_parse_error(&p, "%s", err.msg);
				goto out;
			}
		} else if (o->id == RO_FORMAT) {
			if (sm_report_format_from_name(val, &fmt) != 0) {
				status = cli_parse_error(&p, "--format: '%s' is not table, markdown, json "
							 "or html", val);
				goto out;
			}
			fmt_given = 1;
		} else if (o->id == RO_SCALE_TO) {
			if (strcmp(val, "TNG300-1") != 0) {
				status = cli_parse_error(&p, "--scale-to: '%s' is not a known target "
							 "(TNG300-1)", val);
				goto out;
			}
			scale_to = val;
		} else if (o->id == RO_PIPELINE) {
			pipeline = val;
		} else if (o->id == RO_NODE_MEM) {
			if (sm_parse_size(p.name, val, &node_mem, &err) != 0) {
				status = cli_parse_error(&p, "%s", err.msg);
				goto out;
			}
			if (node_mem == 0) {
				status = cli_parse_error(&p, "--node-mem: must be more than 0 bytes");
				goto out;
			}
		} else if (o->id == RO_HEADROOM) {
			headroom = val;
		} else if (o->id == RO_OUTPUT) {
			out = val;
		}
	}
	if (scale_to != NULL && tradeoff) {
		status = cli_parse_error(&p, "--scale-to and --tradeoff are separate "
					 "reports");
		goto out;
	}
	if ((scale_to != NULL || tradeoff) && fmt_given && fmt == SM_REPORT_HTML) {
		status = cli_parse_error(&p, "--format html is for a single run");
		goto out;
	}
	if (node_mem > 0 && (scale_to == NULL || pipeline != NULL)) {
		status = cli_parse_error(&p, "--node-mem goes with --scale-to TNG300-1 (a run's own "
					 "verdict is its --max-mem's, in its report)");
		goto out;
	}
	if (headroom != NULL && cli_est_headroom(headroom, node_mem, &room, &err) != 0) {
		status = cli_parse_error(&p, "%s", err.msg);
		goto out;
	}
	if (pipeline != NULL && scale_to == NULL) {
		status = cli_parse_error(&p, "--pipeline goes with --scale-to (a single run is "
					 "compared with the estimate.json beside it)");
		goto out;
	}
	report_inputs(&inputs, dirs, ndirs);
	if (cli_output_check(out, &inputs, &err) != 0) {
		status = cli_fail(&err);
		goto out;
	}
	if (scale_to != NULL && pipeline != NULL) {
		sm_scalep s;

		if (ndirs < 2) {
			status = cli_parse_error(&p, "--scale-to needs two run "
						 "directories or more");
			goto out;
		}
		if (sm_scalep_compute(dirs, ndirs, scale_to, pipeline, tol, &s, &err) != 0) {
			status = cli_fail(&err);
			goto out;
		}
		if (sm_scalep_render(&s, fmt, &text, &err) != 0) {
			sm_scalep_release(&s);
			status = cli_fail(&err);
			goto out;
		}
		status = s.nfail > 0 ? 1 : 0;
		sm_scalep_release(&s);
	} else if (scale_to != NULL) {
		sm_scale s;

		if (ndirs < 2) {
			status = cli_parse_error(&p, "--scale-to needs two run "
						 "directories or more");
			goto out;
		}
		if (sm_scale_compute_node(dirs, ndirs, scale_to, tol, node_mem, room, &s, &err) != 0) {
			status = cli_fail(&err);
			goto out;
		}
		if (sm_scale_render(&s, fmt, &text, &err) != 0) {
			sm_scale_release(&s);
			status = cli_fail(&err);
			goto out;
		}
		status = s.nfail > 0 || s.fits == 0 ? 1 : 0;
		sm_scale_release(&s);
	} else if (tradeoff) {
		sm_tradeoff t;

		if (ndirs != 2) {
			status = cli_parse_error(&p, "--tradeoff needs RUN_F32 and "
						 "RUN_F64, got %zu director%s", ndirs,
						 ndirs == 1 ? "y" : "ies");
			goto out;
		}
		if (sm_tradeoff_compute(dirs[0], dirs[1], tol, &t, &err) != 0) {
			status = cli_fail(&err);
			goto out;
		}
		if (sm_tradeoff_render(&t, fmt, &text, &err) != 0) {
			sm_tradeoff_release(&t);
			status = cli_fail(&err);
			goto out;
		}
		status = t.profiles_changed ? 1 : 0;
		sm_tradeoff_release(&t);
	} else {
		sm_report r;

		if (ndirs != 1) {
			status = cli_parse_error(&p, ndirs == 0 ? "missing RUNDIR"
						 : "one RUNDIR, got %zu (--scale-to takes several)",
						 ndirs);
			goto out;
		}
		if (!has_estimate(dirs[0])) {
			/* a measurement without a model (snapmem profile): what it measured */
			sm_measured *m = NULL;
			if (sm_measured_load(dirs[0], &m, &err) != 0 ||
			    sm_measured_render(m, fmt, &text, &err) != 0) {
				sm_measured_free(m);
				status = cli_fail(&err);
				goto out;
			}
			sm_measured_free(m);
			goto emit;
		}
		if (sm_report_load(&r, dirs[0], &err) != 0) {
			status = cli_fail(&err);
			goto out;
		}
		r.strict = strict;
		if (sm_report_compare(&r, tol, abs_bound, &err) != 0 ||
		    sm_report_render(&r, fmt, &text, &err) != 0) {
			sm_report_release(&r);
			status = cli_fail(&err);
			goto out;
		}
		status = r.nfail > 0 ? 1 : 0;
		sm_report_release(&r);
	}
emit:
	if (cli_emit(text, out, &inputs, &err) != 0)
		status = cli_fail(&err);
out:
	cli_inputs_release(&inputs);
	free(text);
	free(dirs);
	return status;
}
