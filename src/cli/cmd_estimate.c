/*
 * `snapmem estimate`: the memory of every pipeline stage, array by array, from headers alone; the
 * peak; whether it fits a node (--node-mem) and, when not, which option combinations do; beside the
 * embedded TNG300-1 default, the notebook's documented figures and the differences.
 *
 * Output: a table for people (IEC units, exact byte counts, the peak stage marked), Markdown, or
 * estimate.json (docs/MODEL.md). -o writes atomically. Exit 0 done, 1 nothing fits --node-mem,
 * 2 bad input (one line on stderr), 3 out of memory.
 *
 * The source and model-option parsing (cli_est_parse) and the number formatting helpers are shared
 * with cmd_tradeoff.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
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

	if (o->mpi || o->ranks > 1) {
		snprintf(buf, len, "distributed (--mpi), positions %s, stream block %llu, ranks %u",
			 o->positions == SM_DTYPE_F64 ? "float64" : "float32",
			 (unsigned long long)o->stream_block, o->ranks);
		return buf;
	}
	if (o->temperature == SM_TEMP_STREAMING)
		snprintf(blk, sizeof(blk), " (block %llu)", (unsigned long long)o->stream_block);
	snprintf(buf, len, "positions %s, select %s, temperature %s%s, one process",
		 o->positions == SM_DTYPE_F64 ? "float64" : "float32",
		 o->select == SM_SELECT_MASK ? "mask" : "index",
		 o->temperature == SM_TEMP_STREAMING ? "streaming" : "in-memory", blk);
	return buf;
}

int cli_est_emit(const char *text, const char *out, sm_error *err)
{
	if (out == NULL) {
		fputs(text, stdout);
		if (fflush(stdout) != 0)
			return sm_error_set(err, SM_EIO, "cannot write to standard output");
		return 0;
	}
	return sm_est_write_text(out, text, err);
}

int cli_est_parse(const cli_cmd *cmd, int argc, char **argv, struct cli_est_args *a, int *done)
{
	sm_error err = {0};
	cli_parser p;
	const cli_opt *o;
	const char *val;
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
			    strcmp(val, "markdown") != 0)
				return cli_parse_error(&p, "--format: '%s' is not table, json or markdown",
						       val);
			a->format = val;
		} else if (o->id == CLI_EST_NODE_MEM) {
			if (sm_parse_size(p.name, val, &a->node_mem, &err) != 0)
				return cli_parse_error(&p, "%s", err.msg);
			if (a->node_mem == 0)
				return cli_parse_error(&p, "--node-mem: must be more than 0 bytes");
		} else if (o->id == CLI_EST_OUTPUT) {
			a->out = val;
		}
	}
	if (sm_model_options_check(&a->opts, &err) != 0)
		return cli_parse_error(&p, "%s", err.msg);
	if (a->base != NULL && a->snapshot != NULL)
		return cli_parse_error(&p, "give --base-path DIR --snap N or --snapshot FILE, not both");
	if (a->base != NULL && !a->have_snap)
		return cli_parse_error(&p, "--base-path needs --snap N");
	if (a->have_snap && a->base == NULL)
		return cli_parse_error(&p, "--snap needs --base-path DIR");
	return 0;
}

int cli_est_input(const struct cli_est_args *a, sm_est_input *in, sm_error *err)
{
	if (a->base != NULL)
		return sm_est_input_from_base(in, a->base, a->snap, &a->opts, err);
	if (a->snapshot != NULL)
		return sm_est_input_from_file(in, a->snapshot, &a->opts, err);
	return sm_est_input_embedded(in, &a->opts, err);
}

/* ---- rendering ------------------------------------------------------------------------------ */

static const cli_opt estimate_opts[] = {
	CLI_EST_SOURCE_OPTS,
	{"node-mem", 0, CLI_SIZE, "SIZE", "none: no verdict",
	 "a node's memory (512G, 1.5TiB, 4096B; a unit is required): does the run fit, and which "
	 "option combinations do; exit 1 when none does. With --ranks R (or --mpi): how many ranks "
	 "fit one node and how many nodes R ranks need", CLI_EST_NODE_MEM, 0},
	{"format", 0, CLI_CHOICE, "table|json|markdown", "table",
	 "the output: a table for people, estimate.json (docs/MODEL.md) or Markdown",
	 CLI_EST_FORMAT, 0},
	{"output", 'o', CLI_FILE, "FILE", "standard output",
	 "write there (atomically) instead of standard output", CLI_EST_OUTPUT, 0},
	{NULL, 0, CLI_FLAG, NULL, NULL, NULL, 0, 0},
};

const cli_cmd cli_cmd_estimate = {
	"estimate", "predict the memory of every pipeline stage from headers",
	"usage: snapmem estimate [--base-path DIR --snap N | --snapshot FILE] [MODEL OPTIONS]\n"
	"                        [--node-mem SIZE] [--format table|json|markdown] [-o FILE]\n",
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
	fprintf(c->f, " in %lld files; BoxSize %g, h %g, Omega0 %g, OmegaBaryon %g, z %g\n",
		(long long)h->num_files, h->box_size, h->hubble_param, h->omega0, h->omega_baryon,
		h->redshift);
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
	else
		fprintf(c->f, "; largest sphere (2 R200) %s cells, %s\n",
			cli_est_commas(largest, a, sizeof(a)), e->sphere_cells_source);
	fprintf(c->f, "%soptions: %s%s\n", c->md ? "- " : "  ",
		cli_est_opts_text(&e->options, o, sizeof(o)),
		e->mpi ? " (figures per rank, the same on every rank)" : "");
	na = sm_est_assumptions(in, e, as, 32);
	fprintf(c->f, c->md ? "\nAssumptions of the sphere-cells model:\n\n" : "  assumptions:\n");
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
					sm_dtype_name(a->dtype), cnt, byt, r, al, fr);
			else
				fprintf(c->f, "    %-28s %-8s %16s %19s %11s %11s  %s\n", a->name,
					sm_dtype_name(a->dtype), cnt, byt, r, al, fr);
		}
	}
	fputc('\n', c->f);
}

static void render_totals(struct ctx *c)
{
	const sm_estimate *e = c->e;
	const sm_est_stage *ps = &e->stages[e->peak_stage];
	char b[32], x[32], y[32], z[32];
	const char *li = c->md ? "- " : "  ";

	fprintf(c->f, "%s%-20s %19s B  %s requested, %s allocated, in %s%s\n", li, "tracked peak",
		cli_est_commas(e->peak, b, sizeof(b)), iec(e->peak, x, sizeof(x)),
		iec(e->peak_allocated, y, sizeof(y)), ps->id, ps->per_halo ? " (largest halo)" : "");
	fprintf(c->f, "%s%-20s %19s B  %s allocated (predicted%s: libraries, %sHDF5, jemalloc, "
		"profiler)\n", li, "process baseline", cli_est_commas(e->baseline, b, sizeof(b)),
		iec(e->baseline, z, sizeof(z)), e->mpi ? " per rank" : "", e->mpi ? "MPI, " : "");
	fprintf(c->f, "%s%-20s %19s B  %s: allocated peak + baseline, what a node must hold%s\n", li,
		"peak total", cli_est_commas(e->peak_total, b, sizeof(b)),
		iec(e->peak_total, x, sizeof(x)), e->mpi ? " per rank" : "");
	fputc('\n', c->f);
}

/*
 * The distributed run's plan: the work split, what every rank holds, and with --node-mem the
 * planning answer in plain words: how many ranks fit one node and how many nodes R ranks need.
 */
static void render_mpi(struct ctx *c)
{
	const sm_estimate *e = c->e;
	const sm_est_stage *ps = &e->stages[e->peak_stage];
	uint32_t r = e->options.ranks;
	uint64_t n = c->in->header.npart_total[0], rpn = 0, nodes = 0, used;
	char a[32], b[32], x[32], y[32], z[32];
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
	fprintf(c->f, "%severy rank peaks at %s (%s B with the baseline) in %s, whatever its share: "
		"the group and halo tables, the halo index, %s %s profile sums and one block of "
		"%s cells\n", li, iec(e->peak_total, a, sizeof(a)),
		cli_est_commas(e->peak_total, b, sizeof(b)), ps->id,
		cli_est_commas(e->nhalos, x, sizeof(x)), e->nhalos != 1 ? "halos'" : "halo's",
		cli_est_commas(e->options.stream_block < n ? e->options.stream_block : n, y,
			       sizeof(y)));
	if (c->node_mem == 0) {
		fprintf(c->f, "%sgive --node-mem SIZE for how many ranks fit a node\n\n", li);
		return;
	}
	sm_est_node_fit(e->peak_total, c->node_mem, r, &rpn, &nodes);
	iec(c->node_mem, a, sizeof(a));
	if (rpn == 0) {
		fprintf(c->f, "%sa node of %s does NOT hold even one rank (%s per rank)\n\n", li, a,
			iec(e->peak_total, b, sizeof(b)));
		return;
	}
	fprintf(c->f, "%sa node of %s holds %s rank%s; %u rank%s need%s %s node%s\n", li, a,
		cli_est_commas(rpn, x, sizeof(x)), rpn != 1 ? "s" : "", r, r > 1 ? "s" : "",
		r > 1 ? "" : "s", cli_est_commas(nodes, y, sizeof(y)), nodes != 1 ? "s" : "");
	used = (uint64_t)(r < rpn ? r : rpn) * e->peak_total;
	fprintf(c->f, c->md ? "\n**Answer:** %u rank%s of %s each fit on %s node%s of %s "
			    "(the ranks on one node use %s of it; at most %s ranks per node).\n\n"
			  : "  answer: %u rank%s of %s each fit on %s node%s of %s (the ranks on one "
			    "node use %s of it; at most %s ranks per node)\n\n",
		r, r > 1 ? "s" : "", iec(e->peak_total, b, sizeof(b)),
		cli_est_commas(nodes, y, sizeof(y)), nodes != 1 ? "s" : "", a,
		iec(used, x, sizeof(x)), cli_est_commas(rpn, z, sizeof(z)));
}

/* Returns 1 when nothing fits node_mem (exit 1). */
static int render_node(struct ctx *c, sm_error *err, int *failed)
{
	const sm_estimate *e = c->e;
	sm_est_alternative *alts = NULL;
	size_t n = 0, i, nfit = 0;
	uint32_t ranks = 0;
	char a[32], b[32], o[200];
	int fits = e->peak_total <= c->node_mem;

	*failed = 0;
	if (c->node_mem == 0)
		return 0;
	if (sm_est_alternatives(c->in, &e->options, c->node_mem, &alts, &n, err) != 0 ||
	    sm_est_ranks_needed(c->in, &e->options, c->node_mem, &ranks, err) != 0) {
		free(alts);
		*failed = 1;
		return 0;
	}
	if (c->md)
		fprintf(c->f, "## Node memory %s\n\n", iec(c->node_mem, a, sizeof(a)));
	fprintf(c->f, "%snode memory %s: %s (peak total %s%s)\n", c->md ? "" : "  ",
		iec(c->node_mem, a, sizeof(a)), fits ? "fits" : "does NOT fit",
		iec(e->peak_total, b, sizeof(b)), e->mpi ? " per rank" : "");
	for (i = 0; i < n; i++)
		nfit += alts[i].fits;
	if (!fits) {
		if (nfit == 0)
			fprintf(c->f, "%sno option combination fits at %u rank%s\n", c->md ? "\n" : "  ",
				e->options.ranks, e->options.ranks > 1 ? "s" : "");
		else
			fprintf(c->f, "%soption combinations that fit (peak total, peak stage):\n",
				c->md ? "\n" : "  ");
		if (c->md && nfit > 0)
			fprintf(c->f, "\n");
		for (i = 0; i < n; i++) {
			if (!alts[i].fits)
				continue;
			fprintf(c->f, c->md ? "- %s: %s (%s B), peak in `%s`\n"
					    : "    %-78s %11s  %19s B  %s\n",
				cli_est_opts_text(&alts[i].options, o, sizeof(o)),
				iec(alts[i].peak_total, a, sizeof(a)),
				cli_est_commas(alts[i].peak_total, b, sizeof(b)), alts[i].peak_stage);
		}
	}
	if (!fits && !e->mpi) {
		const sm_est_alternative *d = NULL;

		for (i = 0; i < n && d == NULL; i++)
			if (alts[i].options.mpi && alts[i].options.positions == e->options.positions &&
			    alts[i].options.stream_block == e->options.stream_block)
				d = &alts[i];
		if (ranks > 0 && d != NULL)
			fprintf(c->f, "%sthe distributed strategy fits with any number of ranks: "
				"snapmem run --mpi, %s per rank (every rank holds the same arrays; "
				"estimate --ranks R --node-mem SIZE says how many nodes R ranks need)\n",
				c->md ? "\n" : "  ", iec(d->peak_total, a, sizeof(a)));
		else
			fprintf(c->f, "%snot even the distributed strategy fits: one rank needs more "
				"than %s\n", c->md ? "\n" : "  ", iec(c->node_mem, a, sizeof(a)));
	}
	fputc('\n', c->f);
	free(alts);
	return !fits && nfit == 0;
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

static int render_text(struct ctx *c, char **text, int *nofit, sm_error *err)
{
	size_t len = 0;
	int failed = 0;

	*text = NULL;
	c->f = open_memstream(text, &len);
	if (c->f == NULL)
		return sm_error_set(err, SM_ENOMEM, "cannot allocate the output");
	render_head(c);
	render_stages(c);
	render_totals(c);
	render_mpi(c);
	*nofit = render_node(c, err, &failed);
	render_documented(c);
	if (fclose(c->f) != 0 && !failed)
		return sm_error_set(err, SM_ENOMEM, "cannot allocate the output");
	if (failed) {
		free(*text);
		*text = NULL;
		return err->code != 0 ? err->code : SM_EINVAL;
	}
	return 0;
}

int cmd_estimate(int argc, char **argv)
{
	struct cli_est_args a;
	sm_est_input in;
	sm_estimate e;
	sm_error err = {0};
	char *text = NULL;
	int done = 0, rc, status = 0, nofit = 0, have_in = 0, have_e = 0;

	rc = cli_est_parse(&cli_cmd_estimate, argc, argv, &a, &done);
	if (rc != 0 || done)
		return rc;
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
	if (strcmp(a.format, "json") == 0) {
		text = sm_estimate_json(&in, &e, a.node_mem);
		if (text == NULL) {
			/* every number in it is checked finite when read (the header, the
			 * selected halos): what is left is memory */
			sm_error_set(&err, SM_ENOMEM, "'%s': cannot build the estimate JSON: out of "
				     "memory", in.path[0] != '\0' ? in.path : in.source_name);
			status = cli_fail(&err);
			goto out;
		}
		if (a.node_mem > 0 && e.peak_total > a.node_mem) {
			sm_est_alternative *alts = NULL;
			size_t n = 0, i;

			if (sm_est_alternatives(&in, &a.opts, a.node_mem, &alts, &n, &err) != 0) {
				status = cli_fail(&err);
				goto out;
			}
			nofit = 1;
			for (i = 0; i < n; i++)
				if (alts[i].fits)
					nofit = 0;
			free(alts);
		}
		{
			size_t l = strlen(text);
			char *t2 = realloc(text, l + 2);

			if (t2 == NULL) {
				sm_error_set(&err, SM_ENOMEM, "cannot allocate the output");
				status = cli_fail(&err);
				goto out;
			}
			text = t2;
			strcpy(text + l, "\n");
		}
	} else {
		struct ctx c = {NULL, strcmp(a.format, "markdown") == 0, &in, &e, a.node_mem};

		if (render_text(&c, &text, &nofit, &err) != 0) {
			status = cli_fail(&err);
			goto out;
		}
	}
	if (cli_est_emit(text, a.out, &err) != 0) {
		status = cli_fail(&err);
		goto out;
	}
	status = nofit ? 1 : 0;
out:
	free(text);
	if (have_e)
		sm_estimate_release(&e);
	if (have_in)
		sm_est_input_release(&in);
	return status;
}
