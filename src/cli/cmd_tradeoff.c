/*
 * `snapmem tradeoff`: float32 vs float64 positions and the other switches (select index|mask,
 * temperature in-memory|streaming; and the distributed strategy, per rank) side by side, estimated from headers: each combination's peak,
 * the live memory after each stage, and the bytes saved against the options given; with the
 * precision a float32 coordinate keeps at the box's scale. Same SOURCE and MODEL OPTIONS as
 * `estimate` (parsing shared with cmd_estimate.c); with --node-mem the verdict of `estimate`, the
 * same struct printed by the same code. Exit 0 done, 1 the configured run does not fit --node-mem,
 * 2 bad input, 3 out of memory.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "snapmem/describe.h"
#include "snapmem/estimator.h"
#include "snapmem/units.h"

static const cli_opt tradeoff_opts[] = {
	CLI_EST_SOURCE_OPTS,
	CLI_EST_PIPELINE_OPTS,
	CLI_EST_NODE_OPTS,
	{"format", 0, CLI_CHOICE, "table|json|markdown", "table",
	 "the output: a table for people, JSON (snapmem.tradeoff/1) or Markdown", CLI_EST_FORMAT, 0},
	{"output", 'o', CLI_FILE, "FILE", "standard output",
	 "write there (atomically) instead of standard output", CLI_EST_OUTPUT, 0},
	{NULL, 0, CLI_FLAG, NULL, NULL, NULL, 0, 0},
};

const cli_cmd cli_cmd_tradeoff = {
	"tradeoff", "compare float32/float64 and the other switches, estimated",
	"usage: snapmem tradeoff [--base-path DIR --snap N | --snapshot FILE] [MODEL OPTIONS]\n"
	"                        [--pipeline FILE [--set NAME=VALUE ...]]\n"
	"                        [--node-mem SIZE [--headroom SIZE|PCT]]\n"
	"                        [--format table|json|markdown] [-o FILE]\n",
	"float32 vs float64 positions, spatial index vs mask, in-memory vs streaming temperature in one\n"
	"process, and the distributed strategy (--mpi, per rank), side by side: need (the resident peak\n"
	"with page tables), live memory after each stage, bytes saved against the options given; with\n"
	"--node-mem the verdict of `estimate --node-mem`, the same (exit 1 when the configured run does\n"
	"not fit).\n",
	tradeoff_opts, 1, NULL, cmd_tradeoff,
};

#define NVAR 10  /* 8 one-process combinations, then the distributed strategy per rank (f32, f64) */
#define MAX_IDS 16
#define MAX_VARIANTS 64 /* a description's own variants (docs/PIPELINES.md "Variants": at most 64) */
#define LABEL_MAX 48

/* Variants 0-7: one process (mpi off); 8, 9: --mpi with the given ranks, figures per rank. */
static void variant(const sm_model_options *base, int i, sm_model_options *o, char *label,
		    size_t len)
{
	*o = *base;
	if (i >= 8) {
		o->mpi = 1;
		o->positions = i == 9 ? SM_DTYPE_F64 : SM_DTYPE_F32;
		o->select = SM_SELECT_INDEX;
		o->temperature = SM_TEMP_IN_MEMORY;
		snprintf(label, len, "%s/mpi/rank", i == 9 ? "f64" : "f32");
		return;
	}
	o->mpi = 0;
	o->ranks = 1;
	o->positions = (i & 4) ? SM_DTYPE_F64 : SM_DTYPE_F32;
	o->select = (i & 2) ? SM_SELECT_MASK : SM_SELECT_INDEX;
	o->temperature = (i & 1) ? SM_TEMP_STREAMING : SM_TEMP_IN_MEMORY;
	snprintf(label, len, "%s/%s/%s", (i & 4) ? "f64" : "f32", sm_model_select_name(o->select),
		 (i & 1) ? "stream" : "mem");
}

static int render(FILE *f, int md, const sm_est_input *in, const sm_model_options *base,
		  const sm_est_verdict *v, sm_error *err)
{
	/* on the heap: ten estimates are 176 KiB, too much for a small stack */
	struct render_heap {
		sm_estimate ref, e[MAX_VARIANTS];
		sm_model_options o[MAX_VARIANTS];
		char label[MAX_VARIANTS][LABEL_MAX];
	} *hp = calloc(1, sizeof(*hp));
	sm_estimate *ref, *e;
	sm_model_options *o, *dv = NULL;
	char (*label)[LABEL_MAX], a[64], b[48], t[200];
	const char *ids[MAX_IDS];
	const sm_pipeline_desc *desc = base->pipeline != NULL && !sm_desc_is_default(base->pipeline)
				       ? base->pipeline : NULL;
	int i, n = 0, rc, nvar = NVAR, lw = 18, cw = 17;
	size_t ndv = 0;
	size_t s, nids = 0, k;
	double box = in->header.box_size > 0 ? in->header.box_size : 1;
	double sp32 = (double)(nextafterf((float)box, INFINITY) - (float)box);
	double sp64 = nextafter(box, INFINITY) - box;

	if (hp == NULL)
		return sm_error_set(err, SM_ENOMEM, "out of memory for the estimates (%zu bytes)",
				    sizeof(*hp));
	ref = &hp->ref;
	e = hp->e;
	o = hp->o;
	label = hp->label;
	if ((rc = sm_estimate_compute(in, base, ref, err)) != 0) {
		free(hp);
		return rc;
	}
	/* a description's own variants (docs/PIPELINES.md "Variants"), at the given numbers */
	if (base->pipeline != NULL && !sm_desc_is_default(base->pipeline)) {
		if ((rc = sm_est_variants(base, 0, &dv, &ndv, err)) != 0)
			goto out;
		nvar = ndv < MAX_VARIANTS ? (int)ndv : MAX_VARIANTS;
	}
	for (n = 0; n < nvar; n++) {
		if (dv != NULL) {
			o[n] = dv[n];
			sm_est_variant_label(&o[n], label[n], sizeof(label[n]));
			if (label[n][0] == '\0') /* nothing varies: the description itself */
				snprintf(label[n], sizeof(label[n]), "%s", sm_desc_id(desc));
		} else {
			variant(base, n, &o[n], label[n], sizeof(label[n]));
		}
		if ((rc = sm_estimate_compute(in, &o[n], &e[n], err)) != 0)
			goto out;
	}
	fprintf(f, md ? "# snapmem tradeoff: %s\n\n" : "snapmem tradeoff: %s (%s)\n", in->source_name,
		in->source_kind);
	fprintf(f, "%syour options: %s; need %s (resident with page tables), allocated %s\n",
		md ? "- " : "  ", cli_est_opts_text(base, t, sizeof(t)),
		sm_format_iec(ref->need, a, sizeof(a)), sm_format_iec(ref->peak_total, b, sizeof(b)));
	/* the precision of float32 positions: only where positions is an option */
	if (desc == NULL || sm_desc_has_option(desc, "positions"))
		fprintf(f, "%sprecision: float32 positions are spaced %g (code length) at BoxSize %g "
			"(relative %.2g); float64 %.3g\n", md ? "- " : "  ", sp32, box, sp32 / box, sp64);
	if (desc != NULL && nvar == 1)
		fprintf(f, "%svariants: one: pipeline '%s' (%s) has no option that varies\n",
			md ? "- " : "  ", sm_desc_id(desc), sm_desc_file(desc));
	else if (desc != NULL)
		fprintf(f, "%svariants: the %d combinations of the options pipeline '%s' declares "
			"(%s)\n", md ? "- " : "  ", nvar, sm_desc_id(desc), sm_desc_file(desc));
	fputc('\n', f);
	for (i = 0; i < nvar; i++) {
		int l = (int)strlen(label[i]);

		if (l > lw)
			lw = l;
		if (l > cw)
			cw = l;
	}
	if (md)
		fprintf(f, "## Combinations\n\n| combination | need | bytes | allocated | peak stage | "
			"saved vs yours |\n|---|---:|---:|---:|---|---:|\n");
	else
		fprintf(f, "  %-*s %12s %19s %12s  %-22s %14s\n", lw, "combination", "need", "bytes",
			"allocated", "peak stage", "saved vs yours");
	for (i = 0; i < nvar; i++) {
		int64_t saved = (int64_t)(ref->need - e[i].need);
		char al[32];

		sm_format_iec(e[i].need, a, sizeof(a));
		sm_format_iec(e[i].peak_total, al, sizeof(al));
		sm_format_iec_signed(saved, b, sizeof(b));
		if (md)
			fprintf(f, "| %s | %s | %s | %s | `%s` | %s |\n", label[i], a,
				cli_est_commas(e[i].need, t, sizeof(t)), al,
				e[i].stages[e[i].peak_resident_stage].id, b);
		else
			fprintf(f, "  %-*s %12s %19s %12s  %-22s %14s\n", lw, label[i], a,
				cli_est_commas(e[i].need, t, sizeof(t)), al,
				e[i].stages[e[i].peak_resident_stage].id, b);
	}
	fprintf(f, md ? "\n## Live memory after each stage (requested; peak in brackets)\n\n| stage |"
		      : "\n  live memory after each stage, requested (peak of the stage below it)\n  %-20s",
		"stage");
	for (i = 0; i < nvar; i++) {
		if (md)
			fprintf(f, " %s |", label[i]);
		else
			fprintf(f, " %*s", cw, label[i]);
	}
	if (md) {
		fprintf(f, "\n|---|");
		for (i = 0; i < nvar; i++)
			fprintf(f, "---:|");
	}
	fputc('\n', f);
	/* Stages lined up by id: variant 0 (index) has every one-process stage, the distributed
	 * variants add stream_cells. */
	for (i = 0; i < nvar; i++) {
		size_t after = 0;  /* where the variant's previous stage sits in ids, + 1 */

		for (s = 0; s < e[i].nstages; s++) {
			for (k = 0; k < nids && strcmp(ids[k], e[i].stages[s].id) != 0; k++)
				;
			if (k == nids && nids < MAX_IDS) {
				memmove(&ids[after + 1], &ids[after], (nids - after) * sizeof(ids[0]));
				ids[after] = e[i].stages[s].id;
				nids++;
				k = after;
			}
			after = k + 1;
		}
	}
	for (s = 0; s < nids; s++) {
		const char *id = ids[s];
		int row;

		/* Mask variants have no build_index: stages are lined up by id. */
		for (row = 0; row < 2; row++) {
			fprintf(f, md ? "| %s%s |" : "  %-20s", row == 0 ? id : "",
				md && row == 1 ? "(peak)" : "");
			for (i = 0; i < nvar; i++) {
				const sm_est_stage *st = NULL;

				for (k = 0; k < e[i].nstages; k++)
					if (strcmp(e[i].stages[k].id, id) == 0)
						st = &e[i].stages[k];
				if (st == NULL)
					snprintf(a, sizeof(a), "-");
				else if (row == 0)
					sm_format_iec(st->live_after, a, sizeof(a));
				else {
					sm_format_iec(st->peak, b, sizeof(b));
					snprintf(a, sizeof(a), md ? "%s" : "(%s)", b);
				}
				if (md)
					fprintf(f, " %s |", a);
				else
					fprintf(f, " %*s", cw, a);
			}
			fputc('\n', f);
		}
	}
	fputc('\n', f);
	cli_est_render_verdict(f, v, md);
	rc = 0;
out:
	for (i = 0; i < n; i++)
		sm_estimate_release(&e[i]);
	sm_estimate_release(ref);
	free(hp);
	free(dv);
	return rc;
}

int cmd_tradeoff(int argc, char **argv)
{
	struct cli_est_args a;
	sm_est_input in;
	sm_estimate e;
	sm_est_verdict v;
	sm_error err = {0};
	char *text = NULL;
	size_t len = 0;
	int done = 0, rc, status = 0, have_in = 0, have_v = 0;

	rc = cli_est_parse(&cli_cmd_tradeoff, argc, argv, &a, &done);
	if (rc != 0 || done) {
		cli_est_args_release(&a);
		return rc;
	}
	if (cli_est_input(&a, &in, &err) != 0) {
		status = cli_fail(&err);
		goto out;
	}
	have_in = 1;
	if (sm_estimate_compute(&in, &a.opts, &e, &err) != 0) {
		status = cli_fail(&err);
		goto out;
	}
	rc = sm_est_verdict_compute(&in, &e, a.node_mem, a.headroom, &v, &err);
	sm_estimate_release(&e);
	if (rc != 0) {
		status = cli_fail(&err);
		goto out;
	}
	have_v = 1;
	if (strcmp(a.format, "json") == 0) {
		char *j = sm_tradeoff_json(&in, &a.opts, &v, &err);

		if (j == NULL) {
			status = cli_fail(&err);
			goto out;
		}
		text = malloc(strlen(j) + 2);
		if (text != NULL)
			sprintf(text, "%s\n", j);
		free(j);
	} else {
		FILE *f = open_memstream(&text, &len);

		if (f == NULL) {
			sm_error_set(&err, SM_ENOMEM, "cannot allocate the output");
			status = cli_fail(&err);
			goto out;
		}
		rc = render(f, strcmp(a.format, "markdown") == 0, &in, &a.opts, &v, &err);
		fclose(f);
		if (rc != 0) {
			status = cli_fail(&err);
			goto out;
		}
	}
	if (text == NULL) {
		sm_error_set(&err, SM_ENOMEM, "cannot allocate the output");
		status = cli_fail(&err);
		goto out;
	}
	if (cli_est_emit(text, &a, &err) != 0) {
		status = cli_fail(&err);
		goto out;
	}
	status = v.fits == 0 ? 1 : 0;
out:
	free(text);
	if (have_v)
		sm_est_verdict_release(&v);
	if (have_in)
		sm_est_input_release(&in);
	cli_est_args_release(&a);
	return status;
}
