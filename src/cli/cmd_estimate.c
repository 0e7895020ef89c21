/*
 * `snapmem estimate`: the memory of every pipeline stage, array by array, from headers alone; the
 * peak; whether it fits a node (--node-mem) and, when not, which option combinations do; beside the
 * embedded TNG300-1 default, the notebook's documented figures and the differences.
 *
 * Output: a table for people (IEC units, exact byte counts, the peak stage marked), Markdown, or
 * estimate.json (docs/MODEL.md), or the #SBATCH lines (--format slurm). -o writes atomically, only a
 * regular file that is not an input (output.c); -o - is standard output.
 * The verdict is sm_est_verdict's, printed here and by tradeoff (cli_est_render_verdict). Exit 0
 * done (the configured run fits --node-mem), 1 it does not, 2 bad input (one line on stderr), 3 out
 * of memory.
 *
 * The source and model-option parsing (cli_est_parse) and the number formatting helpers are shared
 * with cmd_tradeoff.c.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "snapmem/describe.h"
#include "snapmem/estimator.h"
#include "snapmem/units.h"

char *cli_est_commas(uint64_t v, char *buf, size_t len)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v), i, j = 0;

	for (i = 0; i < n && (size_t)j + 1 < len; i++) {
		if (i > 0 && (n - i) % 3 == 0 && (size_t)j + 2 < len)
			buf[j++] = ',';
		buf[j++] = tmp[i];
	}
	buf[j] = '\0';
	return buf;
}

/* bytes / 2^30 printed as Python's repr prints a float: the shortest text that reads back. */
char *cli_est_gib_repr(uint64_t bytes, char *buf, size_t len)
{
	double g = sm_gib(bytes);
	int p;

	for (p = 1; p <= 17; p++) {
		snprintf(buf, len, "%.*g", p, g);
		if (strtod(buf, NULL) == g)
			break;
	}
	if (strchr(buf, '.') == NULL && strchr(buf, 'e') == NULL && strlen(buf) + 2 < len)
		strcat(buf, ".0");
	return buf;
}

const char *cli_est_opts_text(const sm_model_options *o, char *buf, size_t len)
{
	char blk[40] = "";

	if (sm_est_options_text(o, buf, len) != NULL)
		return buf;
	if (o->mpi || o->ranks > 1) {
		snprintf(buf, len, "distributed (--mpi), positions %s, stream block %llu, ranks %u",
			 sm_model_positions_name(o->positions),
			 (unsigned long long)o->stream_block, o->ranks);
		return buf;
	}
	if (o->temperature == SM_TEMP_STREAMING)
		snprintf(blk, sizeof(blk), " (block %llu)", (unsigned long long)o->stream_block);
	snprintf(buf, len, "positions %s, select %s, temperature %s%s, one process",
		 sm_model_positions_name(o->positions), sm_model_select_name(o->select),
		 sm_model_temperature_name(o->temperature), blk);
	return buf;
}

int cli_est_emit(const char *text, const struct cli_est_args *a, sm_error *err)
{
	struct cli_inputs l = {0};
	int rc;

	cli_inputs_source(&l, a->base, a->snap, a->snapshot, a->opts.calibrate);
	rc = cli_output_check(a->out, &l, err);
	if (rc == 0)
		rc = cli_emit(text, a->out, &l, err);
	cli_inputs_release(&l);
	return rc;
}

int cli_est_parse(const cli_cmd *cmd, int argc, char **argv, struct cli_est_args *a, int *done)
{
	sm_error err = {0};
	cli_parser p;
	const cli_opt *o;
	const char *val, *headroom = NULL;
	int rc;

	memset(a, 0, sizeof(*a));
	a->format = "table";
	a->snap = -1;
	sm_model_options_init(&a->opts);
	*done = 0;
	cli_parser_init(&p, cmd, argc, argv);
	while ((rc = cli_next(&p, &o, &val)) != CLI_END) {
		if (rc == CLI_HELP)
			*done = 1;
		if (rc < 0)
			return cli_parse_status(rc);
		if (o->id == CLI_ID_MODEL) {
			if (sm_model_option_apply(&a->opts, p.name, val, &err) < 0)
				return cli_parse_error(&p, "%s", err.msg);
		} else if (o->id == CLI_EST_BASE) {
			a->base = val;
		} else if (o->id == CLI_EST_SNAPSHOT) {
			a->snapshot = val;
		} else if (o->id == CLI_EST_SNAP) {
			uint64_t s;

			if (sm_parse_u64(p.name, val, &s, &err) != 0)
				return cli_parse_error(&p, "%s", err.msg);
			if (s > 999999999)
				return cli_parse_error(&p, "--snap: '%s' is too large", val);
			a->snap = (int)s;
			a->have_snap = 1;
		} else if (o->id == CLI_EST_FORMAT) {
			if (strcmp(val, "table") != 0 && strcmp(val, "json") != 0 &&
			    strcmp(val, "markdown") != 0 &&
			    !(cmd == &cli_cmd_estimate && strcmp(val, "slurm") == 0))
				return cli_parse_error(&p, cmd == &cli_cmd_estimate
						       ? "--format: '%s' is not table, json, markdown or slurm"
						       : "--format: '%s' is not table, json or markdown",
						       val);
			a->format = val;
		} else if (o->id == CLI_EST_NODE_MEM) {
			if (sm_parse_size(p.name, val, &a->node_mem, &err) != 0)
				return cli_parse_error(&p, "%s", err.msg);
			if (a->node_mem == 0)
				return cli_parse_error(&p, "--node-mem: must be more than 0 bytes");
		} else if (o->id == CLI_EST_HEADROOM) {
			headroom = val;
		} else if (o->id == CLI_EST_OUTPUT) {
			a->out = val;
		} else if (o->id == CLI_EST_PIPELINE) {
			a->pipeline = val;
		} else if (o->id == CLI_EST_SET) {
			if (sm_model_option_set(&a->opts, val, &err) != 0)
				return cli_parse_error(&p, "%s", err.msg);
		}
	}
	if (sm_model_options_check(&a->opts, &err) != 0)
		return cli_parse_error(&p, "%s", err.msg);
	if (a->pipeline != NULL) {
		const char *q;

		if (sm_desc_load(a->pipeline, &a->desc, &err) != 0)
			return cli_fail(&err);
		a->opts.pipeline = a->desc;
		for (q = a->opts.set; *q != '\0'; q += strlen(q) + 1)
			if (sm_desc_check_setting(a->desc, q, &err) != 0)
				return cli_parse_error(&p, "%s", err.msg);
	} else if (a->opts.set[0] != '\0') {
		const sm_pipeline_desc *d;

		if (sm_desc_default(&d, &err) != 0)
			return cli_fail(&err);
		if (sm_desc_check_setting(d, a->opts.set, &err) != 0)
			return cli_parse_error(&p, "%s", err.msg);
	}
	if (a->base != NULL && a->snapshot != NULL)
		return cli_parse_error(&p, "give --base-path DIR --snap N or --snapshot FILE, not both");
	if (a->base != NULL && !a->have_snap)
		return cli_parse_error(&p, "--base-path needs --snap N");
	if (a->have_snap && a->base == NULL)
		return cli_parse_error(&p, "--snap needs --base-path DIR");
	if (headroom != NULL && cli_est_headroom(headroom, a->node_mem, &a->headroom, &err) != 0)
		return cli_parse_error(&p, "%s", err.msg);
	if (strcmp(a->format, "slurm") == 0 && a->node_mem == 0)
		return cli_parse_error(&p, "--format slurm needs --node-mem SIZE (the memory of one "
				       "node, for --mem and the tasks per node)");
	return 0;
}

/*
 * --headroom SIZE|PCT: bytes kept for the OS and other tenants, a size with a unit ("8G") or a
 * percentage of --node-mem ("10%"). A bare number is refused (bytes or percent?), as are a sign,
 * no --node-mem, and a headroom that leaves nothing of the node.
 */
void cli_est_args_release(struct cli_est_args *a)
{
	sm_desc_free(a->desc);
	a->desc = NULL;
	a->opts.pipeline = NULL;
}

int cli_est_headroom(const char *val, uint64_t node_mem, uint64_t *out, sm_error *err)
{
	size_t n = strlen(val);

	*out = 0;
	if (node_mem == 0)
		return sm_error_set(err, SM_EINVAL, "--headroom needs --node-mem SIZE");
	if (n > 0 && val[0] == '-')
		return sm_error_set(err, SM_EINVAL, "--headroom: '%s' is negative", val);
	if (n > 1 && val[n - 1] == '%') {
		char num[64];
		double pct;

		if (n - 1 >= sizeof(num))
			return sm_error_set(err, SM_EINVAL, "--headroom: '%s' is not a percentage", val);
		memcpy(num, val, n - 1);
		num[n - 1] = '\0';
		if (sm_parse_double("--headroom", num, 0, 100, &pct, err) != 0)
			return err->code;
		*out = (uint64_t)((double)node_mem * pct / 100.0);
	} else {
		size_t i;

		for (i = 0; i < n && (val[i] == '.' || (val[i] >= '0' && val[i] <= '9')); i++)
			;
		if (n > 0 && i == n && strcmp(val, "0") != 0)
			return sm_error_set(err, SM_EINVAL, "--headroom: '%s' what? give a unit or a "
					    "percentage, e.g. %sG or %s%%", val, val, val);
		if (sm_parse_size("--headroom", val, out, err) != 0)
			return err->code;
	}
	if (*out >= node_mem) {
		char a[32], b[32];

		return sm_error_set(err, SM_EINVAL, "--headroom: '%s' (%s) leaves nothing of "
				    "--node-mem %s", val, sm_format_iec(*out, a, sizeof(a)),
				    sm_format_iec(node_mem, b, sizeof(b)));
	}
	return 0;
}

int cli_est_input(const struct cli_est_args *a, sm_est_input *in, sm_error *err)
{
	struct cli_inputs l = {0};
	int rc;

	/* -o is checked before the work (and again when written) */
	cli_inputs_source(&l, a->base, a->snap, a->snapshot, a->opts.calibrate);
	rc = cli_output_check(a->out, &l, err);
	cli_inputs_release(&l);
	if (rc != 0) {
		memset(in, 0, sizeof(*in));
		return rc;
	}
	if (a->base != NULL)
		return sm_est_input_from_base(in, a->base, a->snap, &a->opts, err);
	if (a->snapshot != NULL)
		return sm_est_input_from_file(in, a->snapshot, &a->opts, err);
	return sm_est_input_embedded(in, &a->opts, err);
}

/* ---- rendering ------------------------------------------------------------------------------ */

static const cli_opt estimate_opts[] = {
	CLI_EST_SOURCE_OPTS,
	CLI_EST_PIPELINE_OPTS,
	CLI_EST_NODE_OPTS,
	{"format", 0, CLI_CHOICE, "table|json|markdown|slurm", "table",
	 "the output: a table for people, estimate.json (docs/MODEL.md), Markdown, or the #SBATCH "
	 "lines of the job request (needs --node-mem)", CLI_EST_FORMAT, 0},
	{"output", 'o', CLI_FILE, "FILE", "standard output",
	 "write there (atomically) instead of standard output", CLI_EST_OUTPUT, 0},
	{NULL, 0, CLI_FLAG, NULL, NULL, NULL, 0, 0},
};

const cli_cmd cli_cmd_estimate = {
	"estimate", "predict the memory of every pipeline stage from headers",
	"usage: snapmem estimate [--base-path DIR --snap N | --snapshot FILE] [MODEL OPTIONS]\n"
	"                        [--pipeline FILE [--set NAME=VALUE ...]]\n"
	"                        [--node-mem SIZE [--headroom SIZE|PCT]]\n"
	"                        [--format table|json|markdown|slurm] [-o FILE]\n",
	"Predicts the memory of every pipeline stage, array by array, from the snapshot headers and\n"
	"the group catalogue alone. Without a source: the embedded TNG300-1 snapshot 99 (280 halos),\n"
	"shown beside the reference notebook's documented figures.\n",
	estimate_opts, 1, NULL, cmd_estimate,
};

struct ctx {
	FILE *f;
	int md;
	const sm_est_input *in;
	const sm_estimate *e;
	uint64_t node_mem;
	const sm_est_verdict *v;
};

static const char *iec(uint64_t v, char *buf, size_t len)
{
	return sm_format_iec(v, buf, len);
}

static void render_head(struct ctx *c)
{
	const sm_est_input *in = c->in;
	const sm_estimate *e = c->e;
	const sm_header *h = &in->header;
	char a[48], b[48], o[200];
	const char *as[32];
	size_t na, i;
	uint64_t largest = 0;
	unsigned rd = sm_est_reads(e);

	for (i = 0; i < e->nhalos; i++)
		if (e->halo_sphere_cells[i] > largest)
			largest = e->halo_sphere_cells[i];
	fprintf(c->f, c->md ? "# snapmem estimate: %s\n\n" : "snapmem estimate: %s (%s)\n",
		in->source_name, in->source_kind);
	if (c->md)
		fprintf(c->f, "- source: %s\n- ", in->source_kind);
	else
		fprintf(c->f, "  ");
	fprintf(c->f, "gas cells %s", cli_est_commas(h->npart_total[0], a, sizeof(a)));
	if (h->npart_total[0] >> 32)
		fprintf(c->f, " (NumPart_Total[0] %s + HighWord %llu x 2^32)",
			cli_est_commas(h->npart_total[0] & 0xffffffffu, b, sizeof(b)),
			(unsigned long long)(h->npart_total[0] >> 32));
	if (rd & SM_EST_READS_DM)
		fprintf(c->f, ", dark-matter particles %s",
			cli_est_commas(h->npart_total[1], a, sizeof(a)));
	fprintf(c->f, " in %lld files; BoxSize %g, h %g, Omega0 %g, OmegaBaryon %g, z %g\n",
		(long long)h->num_files, h->box_size, h->hubble_param, h->omega0, h->omega_baryon,
		h->redshift);
	/* the halos (and their spheres) only when the pipeline reads them */
	if (!(rd & SM_EST_READS_HALOS)) {
		if (rd & SM_EST_READS_GROUPS)
			fprintf(c->f, "%sgroups %s", c->md ? "- " : "  ",
				cli_est_commas(in->groups_total, a, sizeof(a)));
		if (rd & SM_EST_READS_SUBHALOS)
			fprintf(c->f, "%ssubhalos %s", (rd & SM_EST_READS_GROUPS) ? ", "
						       : c->md ? "- " : "  ",
				cli_est_commas(in->subhalos_total, a, sizeof(a)));
		if (rd & (SM_EST_READS_GROUPS | SM_EST_READS_SUBHALOS))
			fputc('\n', c->f);
		goto options;
	}
	fprintf(c->f, "%shalos %s", c->md ? "- " : "  ", cli_est_commas(in->nhalos, a, sizeof(a)));
	if (in->groups_total > 0)
		fprintf(c->f, " of %s groups", cli_est_commas(in->groups_total, b, sizeof(b)));
	if (e->options.halos >= 0)
		fprintf(c->f, " (the %lld most massive)", (long long)e->options.halos);
	else
		fprintf(c->f, " (M200c > %g Msun)", e->options.mass_min);
	if (e->mpi)
		fprintf(c->f, "; largest sphere radius 2 R200 %.6g (code length): halo grid %llu^3\n",
			e->sphere_radius_max, (unsigned long long)e->halo_grid_side);
	else if (rd & SM_EST_READS_SPHERES)
		fprintf(c->f, "; largest sphere (2 R200) %s cells, %s\n",
			cli_est_commas(largest, a, sizeof(a)), e->sphere_cells_source);
	else
		fputc('\n', c->f);
options:
	fprintf(c->f, "%soptions: %s%s\n", c->md ? "- " : "  ",
		cli_est_opts_text(&e->options, o, sizeof(o)),
		e->mpi ? " (figures per rank, the same on every rank)" : "");
	na = sm_est_assumptions(in, e, as, 32);
	if (c->md)
		fprintf(c->f, (rd & SM_EST_READS_SPHERES) ? "\nAssumptions of the sphere-cells model:\n\n"
							   : "\nAssumptions:\n\n");
	else if (na > 0)
		fprintf(c->f, "  assumptions:\n");
	for (i = 0; i < na; i++)
		fprintf(c->f, c->md ? "- %s\n" : "    - %s\n", as[i]);
	fputc('\n', c->f);
}

static void render_stages(struct ctx *c)
{
	const sm_estimate *e = c->e;
	char cnt[32], byt[32], r[32], al[32], pk[32], pa[32], la[32], lb[32], name[64];
	size_t i, j;

	if (c->md)
		fprintf(c->f, "## Stages\n\n| stage / array | dtype | count | bytes | requested | "
			"allocated | freed in |\n|---|---|---:|---:|---:|---:|---|\n");
	else
		fprintf(c->f, "  %-30s %-8s %16s %19s %11s %11s  %s\n", "stage / array", "dtype",
			"count", "bytes", "requested", "allocated", "freed in / live after");
	for (i = 0; i < e->nstages; i++) {
		const sm_est_stage *st = &e->stages[i];
		int is_peak = i == e->peak_stage;

		if (st->per_halo && st->instance >= 0)
			snprintf(name, sizeof(name), "%s%s [halo %lld]", is_peak ? "* " : "", st->id,
				 (long long)st->instance);
		else
			snprintf(name, sizeof(name), "%s%s", is_peak ? "* " : "", st->id);
		iec(st->peak, pk, sizeof(pk));
		iec(st->peak_allocated, pa, sizeof(pa));
		iec(st->live_after, la, sizeof(la));
		iec(st->live_after_allocated, lb, sizeof(lb));
		if (c->md)
			fprintf(c->f, "| **%s**%s | | | %s | peak %s | peak %s | live after %s (%s) |\n",
				name, is_peak ? " (peak)" : "", cli_est_commas(st->peak, byt, sizeof(byt)),
				pk, pa, la, lb);
		else
			fprintf(c->f, "  %-30s %-8s %16s %19s %11s %11s  live after %s (allocated %s)%s\n",
				name, "peak", "", cli_est_commas(st->peak, byt, sizeof(byt)), pk, pa, la,
				lb, is_peak ? "   <- peak" : "");
		for (j = 0; j < st->narrays; j++) {
			const sm_est_array *a = &st->arrays[j];
			const char *fr = a->freed_in != NULL ? a->freed_in : "kept";

			cli_est_commas(a->count, cnt, sizeof(cnt));
			cli_est_commas(a->requested, byt, sizeof(byt));
			iec(a->requested, r, sizeof(r));
			iec(a->allocated, al, sizeof(al));
			if (c->md)
				fprintf(c->f, "| `%s` | %s | %s | %s | %s | %s | %s |\n", a->name,
					(a->dtype_name != NULL ? a->dtype_name : sm_dtype_name(a->dtype)), cnt, byt, r, al, fr);
			else
				fprintf(c->f, "    %-28s %-8s %16s %19s %11s %11s  %s\n", a->name,
					(a->dtype_name != NULL ? a->dtype_name : sm_dtype_name(a->dtype)), cnt, byt, r, al, fr);
		}
	}
	fputc('\n', c->f);
}

/*
 * The four peaks, each on its own line, never mixed up (docs/MODEL.md "The four peaks"), and the
 * need the verdict judges.
 */
void cli_est_render_peaks(FILE *f, const sm_estimate *e, int md)
{
	const sm_est_stage *ps = &e->stages[e->peak_stage];
	const sm_est_stage *rs = &e->stages[e->peak_resident_stage];
	char b[32], x[32], y[32];
	const char *li = md ? "- " : "  ";
	const char *pr = e->mpi ? " per rank" : "";

	if (md)
		fprintf(f, "## The four peaks%s\n\n", pr);
	else
		fprintf(f, "  the four peaks%s\n", pr);
	fprintf(f, "%s%-15s %19s B  %11s  the arrays' own bytes, in %s%s\n", li, "requested",
		cli_est_commas(e->peak, b, sizeof(b)), sm_format_iec(e->peak, x, sizeof(x)), ps->id,
		ps->per_halo ? " (largest halo)" : "");
	fprintf(f, "%s%-15s %19s B  %11s  + jemalloc's size classes (and the baseline's %s): "
		"reserved, touched beyond the request only to end a huge page\n", li, "allocated",
		cli_est_commas(e->peak_total, b, sizeof(b)), sm_format_iec(e->peak_total, x, sizeof(x)),
		sm_format_iec(e->baseline, y, sizeof(y)));
	fprintf(f, "%s%-15s %19s B  %11s  pages touched, the process baseline's %s included: what "
		"VmHWM and Slurm's MaxRSS read, in %s\n", li, "resident",
		cli_est_commas(e->peak_resident, b, sizeof(b)),
		sm_format_iec(e->peak_resident, x, sizeof(x)),
		sm_format_iec(e->baseline_resident, y, sizeof(y)), rs->id);
	fprintf(f, "%s%-15s %19s B  %11s  mapped (size classes, retained extents, libraries, "
		"stacks): binds only under ulimit -v or strict overcommit\n", li, "address space",
		cli_est_commas(e->peak_address_space, b, sizeof(b)),
		sm_format_iec(e->peak_address_space, x, sizeof(x)));
	fprintf(f, "%s%-15s %19s B  %11s  resident + %s of page tables: what the node must give%s "
		"(judged)\n", li, "need", cli_est_commas(e->need, b, sizeof(b)),
		sm_format_iec(e->need, x, sizeof(x)), sm_format_iec(e->page_tables, y, sizeof(y)),
		e->mpi ? " each rank" : " the run");
	fputc('\n', f);
}

static void render_totals(struct ctx *c)
{
	cli_est_render_peaks(c->f, c->e, c->md);
}

/*
 * The distributed run's plan: the work split and what every rank holds; the node arithmetic is
 * the verdict's (cli_est_render_verdict).
 */
static void render_mpi(struct ctx *c)
{
	const sm_estimate *e = c->e;
	const sm_est_stage *ps = &e->stages[e->peak_resident_stage];
	uint32_t r = e->options.ranks;
	uint64_t n = c->in->header.npart_total[0];
	char a[32], b[32], x[32], y[32];
	const char *li = c->md ? "- " : "    ";

	if (!e->mpi)
		return;
	if (c->md)
		fprintf(c->f, "## Distributed run (--mpi)\n\n");
	else
		fprintf(c->f, "  distributed run (--mpi)\n");
	fprintf(c->f, "%s%u rank%s share %lld chunk file%s, dealt largest chunk first to the "
		"least-loaded rank\n", li, r, r > 1 ? "s" : "", (long long)e->files,
		e->files != 1 ? "s" : "");
	if (e->have_cells_per_rank) {
		fprintf(c->f, "%scells per rank (from the chunk headers): at most %s, at least %s",
			li, cli_est_commas(e->cells_per_rank_max, a, sizeof(a)),
			cli_est_commas(e->cells_per_rank_min, b, sizeof(b)));
		if (e->files_with_gas >= 0 && (uint64_t)e->files_with_gas < r)
			fprintf(c->f, "; only %lld file%s hold gas: %llu rank%s get none",
				(long long)e->files_with_gas, e->files_with_gas != 1 ? "s" : "",
				(unsigned long long)(r - (uint64_t)e->files_with_gas),
				r - (uint64_t)e->files_with_gas != 1 ? "s" : "");
		fputc('\n', c->f);
	} else {
		fprintf(c->f, "%scells per rank: not known (%s has no chunk sizes); an even split would "
			"be %s\n", li,
			strcmp(c->in->source_kind, "embedded") == 0 ? "the embedded header"
								     : "a single chunk's header",
			cli_est_commas(n / r + (n % r != 0), a, sizeof(a)));
	}
	fprintf(c->f, "%severy rank needs %s (%s B, resident with page tables) at its peak in %s, "
		"whatever its share: the group and halo tables, the halo index, %s %s profile sums "
		"and one block of %s cells\n", li, iec(e->need, a, sizeof(a)),
		cli_est_commas(e->need, b, sizeof(b)), ps->id,
		cli_est_commas(e->nhalos, x, sizeof(x)), e->nhalos != 1 ? "halos'" : "halo's",
		cli_est_commas(e->options.stream_block < n ? e->options.stream_block : n, y,
			       sizeof(y)));
	if (c->node_mem == 0)
		fprintf(c->f, "%sgive --node-mem SIZE for how many ranks fit a node\n", li);
	fputc('\n', c->f);
}

static void choice_line(FILE *f, const sm_est_alternative *a, int md)
{
	char o[200], x[32], b[32], sw[640];

	cli_est_opts_text(&a->options, o, sizeof(o));
	sm_est_options_switches(&a->options, sw, sizeof(sw));
	if (a->options.mpi)
		fprintf(f, md ? "- %s: %s per rank (%s B), peak in `%s`; %llu rank%s per node, %u "
				"rank%s on %llu node%s (`%s`)\n"
			      : "    %-86s %11s per rank (%s B) in %s; %llu rank%s per node, %u rank%s "
				"on %llu node%s\n",
			o, sm_format_iec(a->need, x, sizeof(x)), cli_est_commas(a->need, b, sizeof(b)),
			a->peak_stage, (unsigned long long)a->ranks_per_node,
			a->ranks_per_node != 1 ? "s" : "", a->options.ranks,
			a->options.ranks != 1 ? "s" : "", (unsigned long long)a->nodes,
			a->nodes != 1 ? "s" : "", sw);
	else
		fprintf(f, md ? "- %s: %s (%s B), peak in `%s` (`%s`)\n"
			      : "    %-86s %11s          (%s B) in %s\n",
			o, sm_format_iec(a->need, x, sizeof(x)), cli_est_commas(a->need, b, sizeof(b)),
			a->peak_stage, sw);
}

/* The pipeline has a distributed variant: the radial-profile default, or a description declaring
 * the strategy option (docs/PIPELINES.md "Options and the command line"). */
static int has_strategy(const sm_model_options *o)
{
	return o->pipeline == NULL || sm_desc_is_default(o->pipeline) ||
	       sm_desc_has_option(o->pipeline, "strategy");
}

/*
 * The verdict (sm_est_verdict), as every writer prints it: the configured run fits or not and by
 * how much, the node arithmetic of a distributed run, the combinations that fit (cheapest first,
 * distributed ones included), the address space on its own line.
 */
void cli_est_render_verdict(FILE *f, const sm_est_verdict *v, int md)
{
	const sm_est_alternative *c = &v->configured;
	char a[32], b[32], x[32], o[200];
	const char *li = md ? "" : "  ";
	size_t i;

	if (v->node_mem == 0)
		return;
	if (md)
		fprintf(f, "## Verdict: node memory %s\n\n", sm_format_iec(v->node_mem, a, sizeof(a)));
	fprintf(f, "%snode memory %s", li, sm_format_iec(v->node_mem, a, sizeof(a)));
	if (v->headroom > 0)
		fprintf(f, " less %s headroom: the job may use %s",
			sm_format_iec(v->headroom, b, sizeof(b)), sm_format_iec(v->usable, x, sizeof(x)));
	fprintf(f, "%s\n", md ? "  " : "");
	cli_est_opts_text(&c->options, o, sizeof(o));
	if (v->fits == 1 && c->options.mpi)
		fprintf(f, "%sverdict: FITS — %s: %s per rank, %s to spare on the busiest node; %llu rank%s per node, "
			"%u rank%s on %llu node%s\n", li, o, sm_format_iec(c->need, a, sizeof(a)),
			sm_format_iec((uint64_t)v->margin, b, sizeof(b)),
			(unsigned long long)c->ranks_per_node, c->ranks_per_node != 1 ? "s" : "",
			c->options.ranks, c->options.ranks != 1 ? "s" : "",
			(unsigned long long)c->nodes, c->nodes != 1 ? "s" : "");
	else if (v->fits == 1)
		fprintf(f, "%sverdict: FITS — %s: needs %s, %s to spare\n", li, o,
			sm_format_iec(c->need, a, sizeof(a)),
			sm_format_iec((uint64_t)v->margin, b, sizeof(b)));
	else
		fprintf(f, "%sverdict: does NOT fit — %s: needs %s%s, %s short\n", li, o,
			sm_format_iec(c->need, a, sizeof(a)), c->options.mpi ? " per rank" : "",
			sm_format_iec((uint64_t)(-v->margin), b, sizeof(b)));
	if (md)
		fputc('\n', f);
	if (v->nfit == 0 && v->nchoices <= 1 && !has_strategy(&c->options)) {
		fprintf(f, "%sno other combination to try: pipeline '%s' declares no option to vary\n",
			li, sm_desc_id(c->options.pipeline));
	} else if (v->nfit == 0) {
		fprintf(f, "%sno option combination fits%s: the cheapest, %s, needs %s%s\n", li,
			has_strategy(&c->options) ? ", not even the distributed run" : "",
			v->nchoices > 0 ? cli_est_opts_text(&v->choices[0].options, o, sizeof(o)) : "-",
			v->nchoices > 0 ? sm_format_iec(v->choices[0].need, a, sizeof(a)) : "-",
			v->nchoices > 0 && v->choices[0].options.mpi ? " per rank" : "");
	} else {
		fprintf(f, "%s%zu option combination%s fit%s, cheapest first (need: resident with page "
			"tables):\n", li, v->nfit, v->nfit != 1 ? "s" : "", v->nfit != 1 ? "" : "s");
		if (md)
			fputc('\n', f);
		for (i = 0; i < v->nchoices; i++)
			if (v->choices[i].fits)
				choice_line(f, &v->choices[i], md);
	}
	if (md)
		fputc('\n', f);
	fprintf(f, "%saddress space %s (%s B)%s: not judged; it binds only under ulimit -v "
		"(RLIMIT_AS) or strict overcommit (vm.overcommit_memory = 2)%s\n", li,
		sm_format_iec(c->peak_address_space, a, sizeof(a)),
		cli_est_commas(c->peak_address_space, b, sizeof(b)), c->options.mpi ? " per rank" : "",
		md ? "  " : "");
	fprintf(f, "%sa cgroup's memory.peak and Slurm's MaxRSS also count the page cache of the "
		"files read: compare them with the need plus the bytes read, not with it alone\n\n", li);
}

static void render_documented(struct ctx *c)
{
	sm_est_documented rows[SM_EST_MAX_DOCUMENTED];
	int n = sm_est_documented_rows(c->in, c->e, rows, SM_EST_MAX_DOCUMENTED, NULL), i;
	char d[32], m[32], g[40], nb[32], df[40], dfi[96];

	if (n <= 0)
		return;
	if (c->md)
		fprintf(c->f, "## The notebook's documented figures beside the model\n\n"
			"| step | stage | what | documented | notebook arithmetic | model | documented − model | note |\n"
			"|---|---|---|---:|---:|---:|---:|---|\n");
	else
		fprintf(c->f, "  documented figures (reference notebook; its GB are GiB) beside the model "
			"(notebook's choices: fields in memory, mask)\n"
			"  %-4s %-70s %-22s %17s %17s  %s\n", "step", "what", "documented",
			"documented bytes", "model bytes", "documented - model");
	for (i = 0; i < n; i++) {
		const sm_est_documented *r = &rows[i];

		cli_est_commas(r->documented, d, sizeof(d));
		if (r->estimated >= (UINT64_C(1) << 30) || r->estimated == 0)
			snprintf(g, sizeof(g), "%s GiB", cli_est_gib_repr(r->estimated, m, sizeof(m)));
		else
			snprintf(g, sizeof(g), "%s KiB",
				 cli_est_gib_repr(r->estimated << 20, m, sizeof(m)));
		cli_est_commas(r->estimated, m, sizeof(m));
		sm_format_iec_signed(r->difference, df, sizeof(df));
		snprintf(dfi, sizeof(dfi), "%s (%s%lld B)", df, r->difference >= 0 ? "+" : "",
			 (long long)r->difference);
		if (r->notebook > 0)
			cli_est_commas(r->notebook, nb, sizeof(nb));
		else
			snprintf(nb, sizeof(nb), "-");
		if (c->md) {
			fprintf(c->f, "| %s | `%s` | %s | %s (%s B) | %s | %s B (%s) | %s%s | %s |\n",
				r->step, r->stage, r->what, r->documented_text, d, nb, m, g, dfi,
				r->unexplained ? " **unexplained**" : "", r->note);
		} else {
			fprintf(c->f, "  %-4s %-70s %-22s %17s %17s  %s%s\n", r->step, r->what,
				r->documented_text, d, m, df, r->unexplained ? "  UNEXPLAINED" : "");
			fprintf(c->f, "  %-4s   model %s B = %s", "", m, g);
			if (r->notebook > 0 && r->notebook < (UINT64_C(1) << 30))
				fprintf(c->f, "; notebook arithmetic %s B = %s KiB", nb,
					cli_est_gib_repr(r->notebook << 20, df, sizeof(df)));
			else if (r->notebook > 0)
				fprintf(c->f, "; notebook arithmetic %s B = %s GiB", nb,
					cli_est_gib_repr(r->notebook, df, sizeof(df)));
			fprintf(c->f, "\n  %-4s   %s\n", "", r->note);
		}
	}
	fputc('\n', c->f);
}

/* A description's documented figures (documented:, docs/PIPELINES.md), each beside the model's
 * figure for its stage, with its source and the difference explained. */
static void render_desc_documented(struct ctx *c)
{
	const sm_estimate *e = c->e;
	char d[32], m[32], df[40], di[40], mi[40];
	size_t i;

	if (e->ndesc_documented == 0)
		return;
	if (c->md)
		fprintf(c->f, "## Documented figures beside the estimate\n\n"
			"| stage | what | documented | model | documented − model | source | note |\n"
			"|---|---|---:|---:|---:|---|---|\n");
	else
		fprintf(c->f, "  documented figures beside the estimate (pipeline '%s')\n"
			"  %-22s %-46s %-12s %19s %19s  %s\n", sm_desc_id(e->options.pipeline),
			"stage", "what", "documented", "documented bytes", "model bytes",
			"documented - model");
	for (i = 0; i < e->ndesc_documented; i++) {
		const sm_est_documented *r = &e->desc_documented[i];

		cli_est_commas(r->documented, d, sizeof(d));
		cli_est_commas(r->estimated, m, sizeof(m));
		sm_format_iec_signed(r->difference, df, sizeof(df));
		sm_format_iec(r->documented, di, sizeof(di));
		sm_format_iec(r->estimated, mi, sizeof(mi));
		if (c->md) {
			fprintf(c->f, "| `%s` | %s | %s (%s B) | %s B (%s: %s) | %s | %s | %s |\n",
				r->stage, r->what, r->documented_text, d, m, r->model, mi, df,
				r->source, r->note);
			continue;
		}
		fprintf(c->f, "  %-22s %-46s %-12s %19s %19s  %s\n", r->stage, r->what,
			r->documented_text, d, m, df);
		fprintf(c->f, "  %-22s   documented %s = %s; model: %s = %s\n", "", d, di, r->model,
			mi);
		fprintf(c->f, "  %-22s   source: %s\n", "", r->source);
		if (r->note[0] != '\0')
			fprintf(c->f, "  %-22s   %s\n", "", r->note);
	}
	fputc('\n', c->f);
}

static int render_text(struct ctx *c, char **text, sm_error *err)
{
	size_t len = 0;

	*text = NULL;
	c->f = open_memstream(text, &len);
	if (c->f == NULL)
		return sm_error_set(err, SM_ENOMEM, "cannot allocate the output");
	render_head(c);
	render_stages(c);
	render_totals(c);
	render_mpi(c);
	cli_est_render_verdict(c->f, c->v, c->md);
	render_documented(c);
	render_desc_documented(c);
	if (fclose(c->f) != 0) {
		free(*text);
		*text = NULL;
		return sm_error_set(err, SM_ENOMEM, "cannot allocate the output");
	}
	return 0;
}

/* Text inside a `# ...` line of the job script: a newline (a path may hold one) goes on commented. */
static void comment_text(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\n')
			fputs("\n# ", f);
		else
			fputc(*s, f);
	}
}

/*
 * The job request for the verdict: the configured run when it fits, else the cheapest combination
 * that does (the distributed one first when the configured run was distributed). --mem is per
 * node: the tasks on one node times the need, plus the headroom as a margin, never above
 * --node-mem.
 */
int cli_est_slurm(const struct cli_est_args *a, const sm_est_input *in, const sm_estimate *e,
		  const sm_est_verdict *v, char **text, sm_error *err)
{
	const sm_est_alternative *c = NULL;
	size_t len = 0;
	FILE *f;
	char o[200], sw[640], x[32], y[32];
	uint64_t tasks = 1, mem, mib;
	uint32_t ranks;

	(void)e;
	*text = NULL;
	f = open_memstream(text, &len);
	if (f == NULL)
		return sm_error_set(err, SM_ENOMEM, "cannot allocate the output");
	fprintf(f, "#!/bin/sh\n# snapmem estimate --format slurm: ");
	comment_text(f, in->source_name);
	fputc('\n', f);
	fprintf(f, "# node memory %s, headroom %s\n", sm_format_iec(v->node_mem, x, sizeof(x)),
		sm_format_iec(v->headroom, y, sizeof(y)));
	if (v->fits == 1) {
		c = &v->configured;
		fprintf(f, "# the configured run fits: %s\n",
			cli_est_opts_text(&c->options, o, sizeof(o)));
	} else {
		long i = v->configured.options.mpi && v->best_distributed >= 0 ? v->best_distributed
		       : v->nfit > 0 ? -2 : -1;

		fprintf(f, "# the configured run does NOT fit: %s needs %s\n",
			cli_est_opts_text(&v->configured.options, o, sizeof(o)),
			sm_format_iec(v->configured.need, x, sizeof(x)));
		if (i == -2) {
			size_t k;

			for (k = 0; k < v->nchoices && c == NULL; k++)
				if (v->choices[k].fits)
					c = &v->choices[k];
		} else if (i >= 0) {
			c = &v->choices[i];
		}
		if (c == NULL) {
			fprintf(f, "# no option combination fits%s: no job to request\n",
				has_strategy(&v->configured.options) ? ", not even the distributed run"
								     : "");
			goto done;
		}
		fprintf(f, "# the cheapest that fits instead: %s\n",
			cli_est_opts_text(&c->options, o, sizeof(o)));
	}
	ranks = c->options.mpi ? c->options.ranks : 1;
	if (c->options.mpi && c->nodes > 0)
		tasks = (ranks + c->nodes - 1) / c->nodes;
	mem = tasks * c->need + v->headroom;
	if (mem > v->node_mem)
		mem = v->node_mem;
	mib = (mem + (UINT64_C(1) << 20) - 1) >> 20;
	fprintf(f, "# need %s%s (resident peak with page tables) x %llu task%s + headroom %s\n",
		sm_format_iec(c->need, x, sizeof(x)), c->options.mpi ? " per rank" : "",
		(unsigned long long)tasks, tasks != 1 ? "s" : "",
		sm_format_iec(v->headroom, y, sizeof(y)));
	fprintf(f, "#SBATCH --nodes=%llu\n", (unsigned long long)(c->options.mpi ? c->nodes : 1));
	fprintf(f, "#SBATCH --ntasks-per-node=%llu\n", (unsigned long long)tasks);
	fprintf(f, "#SBATCH --mem=%lluM\n", (unsigned long long)mib);
	if (c->options.pipeline != NULL && !sm_desc_is_default(c->options.pipeline)) {
		fprintf(f, "# wall time: not predicted for a description (--calibrate times snapmem "
			"run's radial-profile pipeline, not your program)\n");
	} else if (a->opts.calibrate[0] == '\0') {
		fprintf(f, "# wall time: not predicted (give --calibrate RUNDIR of a profiled run of "
			"this snapshot)\n");
	} else {
		sm_est_speed sp;
		double w, cells = (double)in->header.npart_total[0];
		uint64_t minutes;

		if (strcmp(in->source_kind, "base_path") != 0) {
			sm_error_set(err, SM_EINVAL, "--calibrate: a predicted wall time needs a run of "
				     "the same snapshot: give --base-path DIR --snap N with it");
			goto fail;
		}
		if (sm_est_calibration_speed(a->opts.calibrate, in, &c->options, &sp, err) != 0)
			goto fail;
		/* the run's cells per second and rank, times the ranks asked for */
		w = cells / (sp.cells_per_s / sp.ranks * (c->options.mpi ? ranks : 1));
		minutes = (uint64_t)ceil(2.0 * w / 60.0);
		if (minutes < 1)
			minutes = 1;
		fprintf(f, "# wall time: %.1f s predicted from '%s' (%llu cells in %.3f s on %u "
			"rank%s, %.0f cells per second and rank), assuming the same filesystem "
			"bandwidth and cores; --time is twice that\n", w, a->opts.calibrate,
			(unsigned long long)sp.cells, sp.wall_s, sp.ranks, sp.ranks != 1 ? "s" : "",
			sp.cells_per_s / sp.ranks);
		fprintf(f, "#SBATCH --time=%llu:%02llu:00\n", (unsigned long long)(minutes / 60),
			(unsigned long long)(minutes % 60));
	}
	sm_est_options_switches(&c->options, sw, sizeof(sw));
	if (a->desc != NULL && !sm_desc_is_default(a->desc)) {
		/* `snapmem run` is the radial-profile pipeline: another is the user's own program */
		fprintf(f, "# then the program pipeline '%s' describes (", sm_desc_id(a->desc));
		comment_text(f, sm_desc_file(a->desc));
		fprintf(f, "), not snapmem run; its estimate: snapmem estimate ");
		comment_text(f, sw);
		if (a->base != NULL || a->snapshot != NULL) {
			char *q = sm_shell_quote(a->base != NULL ? a->base : a->snapshot, 0);

			if (q == NULL) {
				sm_error_set(err, SM_ENOMEM, "cannot allocate the output");
				goto fail;
			}
			fprintf(f, a->base != NULL ? " --base-path " : " --snapshot ");
			comment_text(f, q);
			if (a->base != NULL)
				fprintf(f, " --snap %d", a->snap);
			free(q);
		}
		fputc('\n', f);
		goto done;
	}
	if (a->base != NULL) {
		char *q = sm_shell_quote(a->base, 1);

		if (q == NULL) {
			sm_error_set(err, SM_ENOMEM, "cannot allocate the output");
			goto fail;
		}
		fprintf(f, "%ssnapmem run --base-path %s --snap %d %s\n",
			c->options.mpi ? "srun " : "", q, a->snap, sw);
		free(q);
	} else
		fprintf(f, "%ssnapmem run --base-path DIR --snap N %s\n",
			c->options.mpi ? "srun " : "", sw);
done:
	if (fclose(f) != 0) {
		free(*text);
		*text = NULL;
		return sm_error_set(err, SM_ENOMEM, "cannot allocate the output");
	}
	return 0;
fail:
	fclose(f);
	free(*text);
	*text = NULL;
	return err->code != 0 ? err->code : SM_EINVAL;
}

int cmd_estimate(int argc, char **argv)
{
	struct cli_est_args a;
	sm_est_input in;
	sm_estimate e;
	sm_est_verdict v;
	sm_error err = {0};
	char *text = NULL;
	int done = 0, rc, status = 0, have_in = 0, have_e = 0, have_v = 0;

	rc = cli_est_parse(&cli_cmd_estimate, argc, argv, &a, &done);
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
	have_e = 1;
	if (sm_est_verdict_compute(&in, &e, a.node_mem, a.headroom, &v, &err) != 0) {
		status = cli_fail(&err);
		goto out;
	}
	have_v = 1;
	if (strcmp(a.format, "json") == 0) {
		char *t2;

		text = sm_estimate_json(&in, &e, &v, NULL);
		if (text == NULL || (t2 = realloc(text, strlen(text) + 2)) == NULL) {
			/* every number in it is checked finite when read (the header, the
			 * selected halos): what is left is memory */
			sm_error_set(&err, SM_ENOMEM, "'%s': cannot build the estimate JSON: out of "
				     "memory", in.path[0] != '\0' ? in.path : in.source_name);
			status = cli_fail(&err);
			goto out;
		}
		text = t2;
		strcat(text, "\n");
	} else if (strcmp(a.format, "slurm") == 0) {
		if (cli_est_slurm(&a, &in, &e, &v, &text, &err) != 0) {
			status = cli_fail(&err);
			goto out;
		}
	} else {
		struct ctx c = {NULL, strcmp(a.format, "markdown") == 0, &in, &e, a.node_mem, &v};

		if (render_text(&c, &text, &err) != 0) {
			status = cli_fail(&err);
			goto out;
		}
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
	if (have_e)
		sm_estimate_release(&e);
	if (have_in)
		sm_est_input_release(&in);
	cli_est_args_release(&a);
	return status;
}
