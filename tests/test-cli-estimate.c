/*
 * `snapmem estimate` and `snapmem tradeoff` through the binary: the TNG300-1 default prints the
 * notebook's exact figures in table, Markdown and JSON; --node-mem fits / does not fit / lists the
 * combinations that fit / exits 1 when none does; every bad input is exit 2 with one line on stderr;
 * -o is atomic (no file on error, an existing file untouched); header-only snapshots (600 chunks,
 * and counts whose bytes overflow 64 bits), written here with HDF5 and, when it is built, by
 * `snapmem mock --header-only`; the distributed strategy's plan (--ranks, --node-mem: ranks per node
 * and nodes needed for TNG300-1) and its work split over unequal chunk files.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <hdf5.h>
#include <jansson.h>
#include <sys/stat.h>

#include "snapmem/units.h"
#include "util.h"

/* 1234567 -> "1,234,567" */
static char *cli_commas(json_int_t v, char *buf, size_t len)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof(tmp), "%lld", (long long)v), i, k = 0;

	for (i = 0; i < n && (size_t)k + 2 < len; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			buf[k++] = ',';
		buf[k++] = tmp[i];
	}
	buf[k] = '\0';
	return buf;
}

static void assert_contains(const char *hay, const char *needle)
{
	if (strstr(hay, needle) == NULL)
		fail_msg("output lacks '%s'", needle);
}

/* A rank of the TNG300-1 distributed run: jemalloc's size classes of the 11,875,728 bytes
 * stream_cells requests (the halo tables and index, 280 halos' sums, a block of 131,072 cells;
 * load_halos holds one catalogue chunk, 600,980 bytes) plus the MPI baseline; without jemalloc
 * (sanitizer builds) allocated = requested. */
static json_int_t rank_total(void)
{
	return tu_sanitized() ? INT64_C(16987008) : INT64_C(17276912);
}

static void assert_containsf(const char *hay, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void assert_containsf(const char *hay, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	assert_contains(hay, buf);
}

/* Exit 2, nothing on stdout, exactly one line on stderr containing `want`. */
static void expect_bad(tu_result r, const char *want)
{
	if (r.status != 2 || tu_count_lines(r.err) != 1 || strstr(r.err, want) == NULL)
		fail_msg("want exit 2 and one line with '%s'; got %d, stderr: %s", want, r.status,
			 r.err);
	assert_string_equal(r.out, "");
	tu_result_free(&r);
}

static void test_default_table(void **state)
{
	tu_result r = tu_run("estimate", NULL);

	(void)state;
	assert_int_equal(r.status, 0);
	assert_string_equal(r.err, "");
	assert_contains(r.out, "TNG300-1 snapshot 99");
	assert_contains(r.out, "14,454,722,210");
	assert_contains(r.out, "1,569,820,322 + HighWord 3");
	assert_contains(r.out, "in 600 files");
	assert_contains(r.out, "halos 280");
	assert_contains(r.out, "57,818,888,840");          /* each gas field */
	assert_contains(r.out, "53.84803641587496");
	assert_contains(r.out, "173,456,666,520");         /* three fields; positions float32 */
	assert_contains(r.out, "161.54410924762487");
	assert_contains(r.out, "346,913,333,040");         /* positions float64 */
	assert_contains(r.out, "8,080");                   /* step 1, numpy arithmetic */
	assert_contains(r.out, "7.890625");
	assert_contains(r.out, "+20.06 GiB  UNEXPLAINED");
	assert_contains(r.out, "+40.11 GiB  UNEXPLAINED");
	assert_contains(r.out, "<- peak");
	assert_contains(r.out, "process baseline");
	assert_contains(r.out, "53.85 GiB");               /* IEC units */
	assert_contains(r.out, "assumptions");
	tu_result_free(&r);
}

static void test_default_json(void **state)
{
	tu_result r = tu_run("estimate", "--format", "json", NULL);
	json_error_t jerr;
	json_t *root, *stages, *doc, *v;
	size_t i, j;
	int seen_fields = 0, seen_coord = 0, seen_unexplained = 0;

	(void)state;
	assert_int_equal(r.status, 0);
	root = json_loads(r.out, 0, &jerr);
	assert_non_null(root);
	assert_string_equal(json_string_value(json_object_get(root, "schema")), "snapmem.estimate/1");
	stages = json_object_get(root, "stages");
	json_array_foreach(stages, i, v) {
		json_t *a;

		json_array_foreach(json_object_get(v, "arrays"), j, a) {
			const char *name = json_string_value(json_object_get(a, "name"));
			json_int_t req = json_integer_value(json_object_get(a, "requested_bytes"));

			if (strcmp(name, "InternalEnergy") == 0 || strcmp(name, "ElectronAbundance") == 0 ||
			    strcmp(name, "StarFormationRate") == 0) {
				assert_int_equal(req, INT64_C(57818888840));
				seen_fields++;
			}
			if (strcmp(name, "Coordinates") == 0) {
				assert_int_equal(req, INT64_C(173456666520));
				seen_coord++;
			}
			assert_true(json_integer_value(json_object_get(a, "allocated_bytes")) >= req);
		}
	}
	assert_int_equal(seen_fields, 3);
	assert_int_equal(seen_coord, 1);
	assert_true(json_is_string(json_object_get(root, "peak_stage")));
	assert_true(json_is_integer(json_object_get(root, "peak_total_bytes")));
	assert_true(json_is_null(json_object_get(root, "fits")));
	doc = json_object_get(root, "documented");
	json_array_foreach(doc, i, v) {
		const char *t = json_string_value(json_object_get(v, "documented_text"));

		if (strcmp(t, "7.890625 kB") == 0)
			assert_int_equal(json_integer_value(json_object_get(v, "notebook_arithmetic_bytes")),
					 8080);
		if (strcmp(t, "323 GB") == 0)
			assert_int_equal(json_integer_value(json_object_get(v, "estimated_bytes")),
					 INT64_C(346913333040));
		if (json_is_true(json_object_get(v, "unexplained")))
			seen_unexplained++;
	}
	assert_int_equal(seen_unexplained, 2);
	json_decref(root);
	tu_result_free(&r);
}

static void test_markdown(void **state)
{
	tu_result r = tu_run("estimate", "--format", "markdown", NULL);

	(void)state;
	assert_int_equal(r.status, 0);
	assert_contains(r.out, "# snapmem estimate");
	assert_contains(r.out, "| step | stage |");
	assert_contains(r.out, "**unexplained**");
	assert_contains(r.out, "161.54410924762487");
	tu_result_free(&r);
}

/* One JSON document's integer at a path of two keys ("" second: top level). */
static json_int_t jint(const char *text, const char *k1, const char *k2)
{
	json_error_t jerr;
	json_t *root = json_loads(text, 0, &jerr), *v;
	json_int_t x;

	assert_non_null(root);
	v = json_object_get(root, k1);
	if (k2[0] != '\0')
		v = json_object_get(v, k2);
	assert_true(json_is_integer(v));
	x = json_integer_value(v);
	json_decref(root);
	return x;
}

/* The IEC text of a byte count, as the writers print it. */
static const char *iec(json_int_t v, char *buf, size_t len)
{
	return sm_format_iec((uint64_t)v, buf, len);
}

static void test_node_mem(void **state)
{
	tu_result r, j;
	json_t *root;
	json_error_t jerr;
	json_int_t need;
	char a[32], b[32];

	(void)state;
	j = tu_run("estimate", "--format", "json", NULL);
	assert_int_equal(j.status, 0);
	need = jint(j.out, "need_bytes", "");
	/* need = resident peak + page tables; resident = tracked resident + baseline */
	assert_int_equal(need, jint(j.out, "peak_resident_bytes", "") +
			 jint(j.out, "page_tables_bytes", ""));
	if (!tu_sanitized()) /* size classes (56 GiB for a 53.85 GiB field) are never touched */
		assert_true(jint(j.out, "peak_resident_bytes", "") <
			    jint(j.out, "peak_total_bytes", ""));
	assert_true(jint(j.out, "peak_address_space_bytes", "") >
		    jint(j.out, "peak_allocated_bytes", ""));
	/* TNG300-1: 217.64 GiB requested, 218.08 GiB with the baseline, huge-page tails (docs/MODEL.md)
	 * and page tables */
	if (!tu_sanitized())
		assert_int_equal(need, INT64_C(234157620168));
	tu_result_free(&j);

	/* fits: exit 0, and by how much */
	r = tu_run("estimate", "--node-mem", "1TiB", NULL);
	assert_int_equal(r.status, 0);
	assert_containsf(r.out, "verdict: FITS — positions float32, select index, temperature "
			 "in-memory, one process: needs %s, %s to spare", iec(need, a, sizeof(a)),
			 iec((json_int_t)(UINT64_C(1) << 40) - need, b, sizeof(b)));
	tu_result_free(&r);
	/* the figures: 100 GiB does not hold the configured run (exit 1, the distributed
	 * run listed), 240 GiB does (exit 0) */
	r = tu_run("estimate", "--node-mem", "100G", NULL);
	assert_int_equal(r.status, 1);
	assert_contains(r.out, "verdict: does NOT fit");
	assert_contains(r.out, "option combinations fit, cheapest first");
	assert_contains(r.out, "distributed (--mpi), positions float32, stream block 1048576");
	assert_null(strstr(strstr(r.out, "cheapest first"), "one process "));
	tu_result_free(&r);
	r = tu_run("estimate", "--node-mem", "240G", NULL);
	assert_int_equal(r.status, 0);
	assert_contains(r.out, "verdict: FITS");
	tu_result_free(&r);
	r = tu_run("estimate", "--node-mem", "240G", "--format", "json", NULL);
	assert_int_equal(r.status, 0);
	root = json_loads(r.out, 0, &jerr);
	assert_non_null(root);
	assert_true(json_is_true(json_object_get(root, "fits")));
	assert_true(json_is_true(json_object_get(json_object_get(root, "verdict"), "fits")));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(root, "verdict"),
							    "margin_bytes")),
			 (json_int_t)(UINT64_C(240) << 30) - need);
	json_decref(root);
	tu_result_free(&r);
	/* float64 does not fit 300 GiB; the float32 combinations do: listed, exit 1 */
	r = tu_run("estimate", "--positions", "float64", "--node-mem", "300G", NULL);
	assert_int_equal(r.status, 1);
	assert_contains(r.out, "does NOT fit");
	assert_contains(r.out, "positions float32, select index, temperature in-memory");
	assert_null(strstr(strstr(r.out, "cheapest first"), "positions float64, select"));
	tu_result_free(&r);
	r = tu_run("estimate", "--node-mem", "128G", "--format", "json", NULL);
	assert_int_equal(r.status, 1);
	root = json_loads(r.out, 0, &jerr);
	assert_non_null(root);
	assert_true(json_is_false(json_object_get(root, "fits")));
	assert_int_equal(json_integer_value(json_object_get(root, "node_mem_bytes")),
			 INT64_C(137438953472));
	assert_int_equal(json_array_size(json_object_get(root, "alternatives")), 28);
	assert_int_equal(json_array_size(json_object_get(json_object_get(root, "verdict"),
							 "fitting")), 8);
	assert_int_equal(json_integer_value(json_object_get(root, "ranks_needed")), 1);
	assert_null(json_object_get(root, "mpi"));
	json_decref(root);
	tu_result_free(&r);
	/* nothing fits 16 MiB, not even a rank (the baseline alone is resident): exit 1, and no
	 * combination is called fitting */
	r = tu_run("estimate", "--node-mem", "16M", NULL);
	assert_int_equal(r.status, 1);
	assert_contains(r.out, "no option combination fits, not even the distributed run");
	assert_null(strstr(r.out, "cheapest first"));
	tu_result_free(&r);
	r = tu_run("estimate", "--ranks", "4", "--node-mem", "12M", "--format", "json", NULL);
	assert_int_equal(r.status, 1);
	root = json_loads(r.out, 0, &jerr);
	assert_non_null(root);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(root, "mpi"),
							    "ranks_per_node")), 0);
	assert_true(json_is_null(json_object_get(json_object_get(root, "mpi"), "nodes_needed")));
	assert_true(json_is_null(json_object_get(root, "ranks_needed")));
	json_decref(root);
	tu_result_free(&r);
	/* per rank: two ranks fit 128 GiB */
	r = tu_run("estimate", "--ranks", "2", "--node-mem", "128G", NULL);
	assert_int_equal(r.status, 0);
	assert_contains(r.out, "verdict: FITS — distributed (--mpi), positions float32, stream block "
			"131072, ranks 2");
	assert_contains(r.out, "2 ranks on 1 node");
	tu_result_free(&r);
	/* headroom: 10 % of 240 GiB leaves 216 GiB, under the need */
	r = tu_run("estimate", "--node-mem", "240G", "--headroom", "10%", NULL);
	assert_int_equal(r.status, 1);
	assert_contains(r.out, "less 24.00 GiB headroom: the job may use 216.00 GiB");
	tu_result_free(&r);
	r = tu_run("estimate", "--node-mem", "240G", "--headroom", "8G", NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
}

/* Every writer prints the same verdict: table, Markdown, JSON, Slurm, tradeoff, run --max-mem. */
static void test_one_verdict(void **state)
{
	static const char *nodes[] = {"100G", "240G", "16M"};
	char a[32], b[32], *dir = tu_tmpdir(), *mock = tu_path(dir, "mock"),
	     *out = tu_path(dir, "run");
	tu_result r, j, t, m, s;
	json_int_t need, margin;
	size_t i;

	(void)state;
	for (i = 0; i < 3; i++) {
		j = tu_run("estimate", "--node-mem", nodes[i], "--format", "json", NULL);
		t = tu_run("estimate", "--node-mem", nodes[i], NULL);
		m = tu_run("estimate", "--node-mem", nodes[i], "--format", "markdown", NULL);
		s = tu_run("estimate", "--node-mem", nodes[i], "--format", "slurm", NULL);
		r = tu_run("tradeoff", "--node-mem", nodes[i], NULL);
		assert_int_equal(j.status, i == 1 ? 0 : 1);
		assert_int_equal(t.status, j.status);
		assert_int_equal(m.status, j.status);
		assert_int_equal(s.status, j.status);
		assert_int_equal(r.status, j.status);
		need = jint(j.out, "need_bytes", "");
		margin = jint(j.out, "verdict", "margin_bytes");
		iec(need, a, sizeof(a));
		iec(margin < 0 ? -margin : margin, b, sizeof(b));
		if (i == 1) {
			assert_containsf(t.out, "needs %s, %s to spare", a, b);
			assert_containsf(m.out, "needs %s, %s to spare", a, b);
			assert_containsf(r.out, "needs %s, %s to spare", a, b);
			assert_contains(s.out, "# the configured run fits");
			assert_containsf(s.out, "#SBATCH --mem=%lldM",
					 (long long)((need + (1 << 20) - 1) >> 20));
		} else {
			assert_containsf(t.out, "needs %s, %s short", a, b);
			assert_containsf(m.out, "needs %s, %s short", a, b);
			assert_containsf(r.out, "needs %s, %s short", a, b);
			assert_contains(s.out, "# the configured run does NOT fit");
		}
		/* the same combinations, with the same figures, in the table and Markdown as in JSON */
		{
			json_error_t je;
			json_t *root = json_loads(j.out, 0, &je), *fit, *c;
			size_t k;

			assert_non_null(root);
			fit = json_object_get(json_object_get(root, "verdict"), "fitting");
			assert_true(json_is_array(fit));
			if (json_array_size(fit) > 0) {
				assert_containsf(t.out, "%zu option combinations fit, cheapest first",
						 json_array_size(fit));
				assert_containsf(m.out, "%zu option combinations fit, cheapest first",
						 json_array_size(fit));
			}
			json_array_foreach(fit, k, c) {
				json_int_t nb = json_integer_value(json_object_get(c, "need_bytes"));
				json_t *rpn = json_object_get(c, "ranks_per_node");

				cli_commas(nb, a, sizeof(a));
				assert_containsf(t.out, "(%s B)", a);
				assert_containsf(m.out, "(%s B)", a);
				if (json_is_true(json_object_get(c, "per_rank")) &&
				    json_is_integer(rpn)) {
					assert_containsf(t.out, "(%s B) in %s; %lld ranks per node", a,
							 json_string_value(json_object_get(c,
									   "peak_stage")),
							 (long long)json_integer_value(rpn));
				}
			}
			json_decref(root);
		}
		if (i == 2) {
			assert_null(strstr(s.out, "#SBATCH"));
		} else {
			/* the cheapest that fits: a distributed rank at 100G */
			assert_contains(s.out, "#SBATCH --nodes=1");
		}
		tu_result_free(&j);
		tu_result_free(&t);
		tu_result_free(&m);
		tu_result_free(&s);
		tu_result_free(&r);
	}
	/* run --max-mem refuses with the estimate's need and names what fits */
	r = tu_run("mock", mock, "--gas", "200000", "--halos", "4", NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	j = tu_run("estimate", "--base-path", mock, "--snap", "99", "--node-mem", "30M", "--format",
		   "json", NULL);
	need = jint(j.out, "need_bytes", "");
	r = tu_run("run", "--base-path", mock, "--snap", "99", "--out", out, "--max-mem", "30M",
		   NULL);
	assert_int_equal(j.status, need > (30 << 20) ? 1 : 0);
	if (need > (30 << 20)) {
		assert_int_equal(r.status, 3);
		assert_containsf(r.err, "needs %lld bytes", (long long)need);
		assert_false(tu_exists(out));
	}
	tu_result_free(&j);
	tu_result_free(&r);
	free(out);
	free(mock);
	tu_rmtree(dir);
	free(dir);
}

/* The planning question for TNG300-1: 64 ranks on nodes of 256 GiB. */
static void test_mpi_plan(void **state)
{
	tu_result r, j;
	json_t *root, *m;
	json_error_t jerr;
	json_int_t need, rpn;
	char a[32], b[32];

	(void)state;
	j = tu_run("estimate", "--ranks", "64", "--node-mem", "256GiB", "--format", "json", NULL);
	assert_int_equal(j.status, 0);
	need = jint(j.out, "need_bytes", "");
	rpn = jint(j.out, "mpi", "ranks_per_node");
	assert_int_equal(rpn, (json_int_t)((UINT64_C(256) << 30) / (uint64_t)need));
	if (!tu_sanitized()) /* 11,875,728 requested + the rank's resident baseline + PTEs */
		assert_int_equal(need, INT64_C(32068656));
	r = tu_run("estimate", "--ranks", "64", "--node-mem", "256GiB", NULL);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.err, "");
	assert_contains(r.out, "distributed (--mpi), positions float32, stream block 131072, ranks 64");
	assert_contains(r.out, "halo grid 27^3");
	assert_contains(r.out, "64 ranks share 600 chunk files");
	assert_contains(r.out, "an even split would be 225,855,035");  /* ceil(N / 64) */
	/* load_halos: one catalogue chunk, Gc = ceil(17,625,892 / 600) = 29,377 groups, 20 Gc + 48 K
	 * = 600,980 bytes; the peak is stream_cells' 11,875,728 */
	assert_contains(r.out, "600,980");
	assert_contains(r.out, "29,377");
	assert_contains(r.out, "ceil(Ngroups_Total / 600)");
	assert_contains(r.out, "11,875,728");
	assert_null(strstr(r.out, "17,625,892          70,503,568"));
	assert_containsf(r.out, "every rank needs %s (%s B, resident with page tables) at its peak "
			 "in stream_cells", iec(need, a, sizeof(a)), cli_commas(need, b, sizeof(b)));
	assert_containsf(r.out, "%s per rank, ", a);
	assert_containsf(r.out, "%lld ranks per node, 64 ranks on 1 node", (long long)rpn);
	assert_contains(r.out, "stream_cells");
	assert_contains(r.out, "halo_grid_halos");
	assert_null(strstr(r.out, "load_positions"));
	tu_result_free(&r);

	/* more ranks than one node holds: two nodes */
	{
		char ranks[32];

		snprintf(ranks, sizeof(ranks), "%lld", (long long)rpn + 1);
		r = tu_run("estimate", "--ranks", ranks, "--node-mem", "256GiB", NULL);
		assert_int_equal(r.status, 0);
		assert_containsf(r.out, "%s ranks on 2 nodes", ranks);
		tu_result_free(&r);
	}

	r = tu_run("estimate", "--ranks", "64", "--node-mem", "256GiB", "--format", "markdown", NULL);
	assert_int_equal(r.status, 0);
	assert_contains(r.out, "## Distributed run (--mpi)");
	assert_contains(r.out, "## Verdict: node memory 256.00 GiB");
	assert_containsf(r.out, "%lld ranks per node, 64 ranks on 1 node", (long long)rpn);
	tu_result_free(&r);

	root = json_loads(j.out, 0, &jerr);
	assert_non_null(root);
	assert_true(json_is_true(json_object_get(json_object_get(root, "options"), "mpi")));
	m = json_object_get(root, "mpi");
	assert_int_equal(json_integer_value(json_object_get(m, "ranks")), 64);
	assert_int_equal(json_integer_value(json_object_get(m, "files")), 600);
	assert_true(json_is_null(json_object_get(m, "cells_per_rank_max")));
	assert_int_equal(json_integer_value(json_object_get(m, "per_rank_peak_total_bytes")),
			 rank_total());
	assert_int_equal(json_integer_value(json_object_get(m, "per_rank_need_bytes")), need);
	assert_int_equal(json_integer_value(json_object_get(m, "nodes_needed")), 1);
	assert_int_equal(json_integer_value(json_object_get(root, "peak_total_bytes")),
			 rank_total());
	json_decref(root);
	tu_result_free(&j);

	/* --mpi alone: one rank, the same figures; no --node-mem: no node line */
	r = tu_run("estimate", "--mpi", NULL);
	assert_int_equal(r.status, 0);
	assert_contains(r.out, "1 rank share 600 chunk files");
	assert_contains(r.out, "give --node-mem SIZE");
	tu_result_free(&r);
	expect_bad(tu_run("estimate", "--mpi", "--select", "mask", NULL), "--select mask");
	expect_bad(tu_run("estimate", "--ranks", "2", "--temperature", "streaming", NULL),
		   "--temperature streaming");
}

static void test_bad_input(void **state)
{
	char *dir = tu_tmpdir(), *mem = tu_path(dir, "memory.json");
	FILE *f;

	(void)state;
	expect_bad(tu_run("estimate", "--positions", "float16", NULL), "float16");
	expect_bad(tu_run("estimate", "--halos", "-3", NULL), "--halos");
	expect_bad(tu_run("estimate", "--halos", NULL), "missing value");
	expect_bad(tu_run("estimate", "--halos", "many", NULL), "'many'");
	expect_bad(tu_run("estimate", "--node-mem", "12Gx", NULL), "12Gx");
	expect_bad(tu_run("estimate", "--node-mem", "0B", NULL), "--node-mem: must be more than 0");
	expect_bad(tu_run("estimate", "--node-mem", "99999999999999999999B", NULL), "64 bits");
	expect_bad(tu_run("estimate", "--node-mem", "256", NULL),
		   "--node-mem: '256' has no unit: 256 what? e.g. 256G");
	expect_bad(tu_run("estimate", "--frobnicate", NULL), "unknown option '--frobnicate'");
	expect_bad(tu_run("estimate", "--format", "xml", NULL), "'xml'");
	expect_bad(tu_run("estimate", "--snap", "99", NULL), "--base-path");
	expect_bad(tu_run("estimate", "--base-path", dir, NULL), "--snap");
	expect_bad(tu_run("estimate", "--base-path", dir, "--snap", "99", "--snapshot", "x.hdf5",
			  NULL), "not both");
	expect_bad(tu_run("estimate", "--stream-block", "0", NULL), "--stream-block");
	expect_bad(tu_run("estimate", "--ranks", "0", NULL), "--ranks");
	expect_bad(tu_run("estimate", "--mass-min", "heavy", NULL), "--mass-min");
	expect_bad(tu_run("estimate", "--sphere-cells", "-1", NULL), "--sphere-cells");
	expect_bad(tu_run("estimate", "--base-path", dir, "--snap", "99", NULL), dir);
	expect_bad(tu_run("estimate", "--snapshot", "/nonexistent/snap.hdf5", "--halos", "3", NULL),
		   "/nonexistent/snap.hdf5");
	expect_bad(tu_run("estimate", "--calibrate", dir, NULL), "memory.json");
	f = fopen(mem, "w");
	assert_non_null(f);
	fputs("{\"run\": {\"halos\": 7}}", f);
	fclose(f);
	expect_bad(tu_run("estimate", "--calibrate", dir, NULL), "run.halos");
	/* spheres measured on other data (a small mock) for TNG300-1: refused, not taken */
	f = fopen(mem, "w");
	assert_non_null(f);
	fputs("{\"run\": {\"gas_cells\": 1000, \"halos\": [{\"instance\": 0, "
	      "\"sphere_cells\": 10}]}}", f);
	fclose(f);
	expect_bad(tu_run("estimate", "--calibrate", dir, NULL),
		   "is a run of other data (1000 gas cells, not 14454722210 here)");
	f = fopen(mem, "w");
	assert_non_null(f);
	fputs("{\"run\": {\"gas_cells\": \"many\", \"halos\": []}}", f);
	fclose(f);
	expect_bad(tu_run("estimate", "--calibrate", dir, NULL), "run.gas_cells");
	expect_bad(tu_run("tradeoff", "--positions", "float128", NULL), "float128");
	expect_bad(tu_run("tradeoff", "--frobnicate", "1G", NULL), "unknown option");
	/* --headroom: negative, without a unit, larger than the node, without a node; --format
	 * slurm without --node-mem */
	expect_bad(tu_run("estimate", "--node-mem", "256G", "--headroom", "-8G", NULL), "negative");
	expect_bad(tu_run("estimate", "--node-mem", "256G", "--headroom", "8", NULL),
		   "'8' what? give a unit or a percentage, e.g. 8G or 8%");
	expect_bad(tu_run("estimate", "--node-mem", "256G", "--headroom", "300G", NULL),
		   "leaves nothing of --node-mem 256.00 GiB");
	expect_bad(tu_run("estimate", "--node-mem", "256G", "--headroom", "100%", NULL),
		   "leaves nothing");
	expect_bad(tu_run("estimate", "--node-mem", "256G", "--headroom", "120%", NULL),
		   "--headroom");
	expect_bad(tu_run("estimate", "--headroom", "8G", NULL), "--headroom needs --node-mem");
	expect_bad(tu_run("estimate", "--format", "slurm", NULL), "--format slurm needs --node-mem");
	expect_bad(tu_run("tradeoff", "--format", "slurm", "--node-mem", "1G", NULL), "'slurm'");
	free(mem);
	tu_rmtree(dir);
	free(dir);
}

static void test_snapshot_without_catalogue(void **state)
{
	char *snap = tu_real_data("reduced_snap_247.hdf5");
	tu_result r;

	(void)state;
	expect_bad(tu_run("estimate", "--snapshot", snap, NULL), "--mass-min needs one");
	r = tu_run("estimate", "--snapshot", snap, "--halos", "3", "--format", "json", NULL);
	assert_int_equal(r.status, 0);
	assert_contains(r.out, "\"kind\": \"snapshot\"");
	tu_result_free(&r);
	free(snap);
}

static void test_output_atomic(void **state)
{
	char *dir = tu_tmpdir(), *out = tu_path(dir, "estimate.json"),
	     *bad = tu_path(dir, "missing/estimate.json"), *got;
	tu_result r;

	(void)state;
	r = tu_run("estimate", "--format", "json", "-o", out, NULL);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "");
	tu_result_free(&r);
	got = tu_read_file(out, NULL);
	assert_non_null(got);
	assert_contains(got, "snapmem.estimate/1");
	free(got);
	assert_int_equal(tu_entries(dir), 1);

	/* An error before writing leaves the existing file as it was. */
	expect_bad(tu_run("estimate", "--positions", "float16", "-o", out, NULL), "float16");
	expect_bad(tu_run("estimate", "--calibrate", dir, "-o", out, NULL), "memory.json");
	got = tu_read_file(out, NULL);
	assert_contains(got, "snapmem.estimate/1");
	free(got);

	/* A failing write leaves no file behind. */
	expect_bad(tu_run("estimate", "-o", bad, NULL), "missing/estimate.json");
	assert_false(tu_exists(bad));
	assert_int_equal(tu_entries(dir), 1);

	/* Table over the JSON: replaced whole; tradeoff too. */
	r = tu_run("tradeoff", "-o", out, NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	got = tu_read_file(out, NULL);
	assert_contains(got, "f64/mask/stream");
	assert_null(strstr(got, "snapmem.estimate/1"));
	free(got);
	assert_int_equal(tu_entries(dir), 1);
	free(out);
	free(bad);
	tu_rmtree(dir);
	free(dir);
}

static void test_tradeoff(void **state)
{
	tu_result r = tu_run("tradeoff", NULL);
	json_t *root;
	json_error_t jerr;

	(void)state;
	assert_int_equal(r.status, 0);
	assert_contains(r.out, "f32/index/mem");
	assert_contains(r.out, "f64/index/mem");
	/* float64 positions cost more than float32: a negative saving on the f64 rows */
	assert_non_null(strstr(strstr(r.out, "f64/index/mem"), " -"));
	assert_contains(r.out, "precision");
	tu_result_free(&r);
	r = tu_run("tradeoff", "--format", "json", NULL);
	assert_int_equal(r.status, 0);
	root = json_loads(r.out, 0, &jerr);
	assert_non_null(root);
	assert_string_equal(json_string_value(json_object_get(root, "schema")), "snapmem.tradeoff/1");
	assert_int_equal(json_array_size(json_object_get(root, "variants")), 10);
	json_decref(root);
	tu_result_free(&r);
	r = tu_run("tradeoff", "--format", "markdown", NULL);
	assert_int_equal(r.status, 0);
	assert_contains(r.out, "| combination |");
	assert_contains(r.out, "| f32/mpi/rank | ");
	tu_result_free(&r);
	/* with --ranks: the one-process combinations beside the distributed ones, stream_cells in
	 * its place before histogram_write */
	r = tu_run("tradeoff", "--ranks", "4", NULL);
	assert_int_equal(r.status, 0);
	assert_contains(r.out, "your options: distributed (--mpi)");
	assert_contains(r.out, "f32/mask/stream");
	assert_contains(r.out, "f64/mpi/rank");
	assert_non_null(strstr(strstr(r.out, "build_index"), "stream_cells"));
	assert_non_null(strstr(strstr(r.out, "stream_cells"), "histogram_write"));
	tu_result_free(&r);
}

/* Runs `sh FILE` (stderr with stdout); the output, to free. */
static char *run_sh(const char *file)
{
	char *cmd = tu_fmt("sh '%s' 2>&1", file), *out;
	FILE *p = popen(cmd, "r");
	size_t cap = 1 << 16, n;

	assert_non_null(p);
	out = calloc(1, cap + 1);
	assert_non_null(out);
	n = fread(out, 1, cap, p);
	out[n] = '\0';
	assert_int_equal(pclose(p), 0);
	free(cmd);
	return out;
}

/*
 * --format slurm with a base path and a description holding a quote, spaces, a newline and a $:
 * the job script, run by sh with `snapmem` a function printing its arguments, gives the paths back
 * exactly, one argument each, and nothing else (a comment line broken by the newline would run
 * `with`: sh's complaint would come first).
 */
static void test_slurm_quoting(void **state)
{
	char *dir = tu_tmpdir(), *base = tu_path(dir, "it's a \"base\"\nwith $HOME"),
	     *desc = tu_path(base, "my 'dm' projection.yaml"), *job = tu_path(dir, "job.sh"), *out,
	     *text, *want, *p, *src = tu_real_data("pipelines/dm-projection.yaml");
	size_t len, wl;
	tu_result r;
	FILE *f;
	int k;

	(void)state;
	r = tu_run("mock", base, "--gas", "10000", "--halos", "2", "--files", "2", NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	text = tu_read_file(src, &len);
	assert_non_null(text);
	f = fopen(desc, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	free(text);
	for (k = 0; k < 2; k++) {
		r = k == 0 ? tu_run("estimate", "--base-path", base, "--snap", "99", "--node-mem", "1G",
				    "--format", "slurm", NULL)
			   : tu_run("estimate", "--pipeline", desc, "--base-path", base, "--snap", "99",
				    "--node-mem", "1G", "--format", "slurm", NULL);
		assert_int_equal(r.status, 0);
		/* the description's estimate line is a comment: uncommented here to run it */
		text = k == 0 ? tu_fmt("%s", r.out) : NULL;
		if (k == 1) {
			char *c = strstr(r.out, "its estimate: snapmem estimate ");
			size_t i, j = 0;

			assert_non_null(c);
			c += strlen("its estimate: ");
			text = calloc(1, strlen(c) + 1);
			assert_non_null(text);
			for (i = 0; c[i] != '\0'; i++) {
				text[j++] = c[i];
				if (c[i] == '\n' && strncmp(c + i + 1, "# ", 2) == 0)
					i += 2;
			}
		}
		f = fopen(job, "w");
		assert_non_null(f);
		fprintf(f, "snapmem() { printf '[%%s]' \"$@\"; }\n%s", text);
		assert_int_equal(fclose(f), 0);
		out = run_sh(job);
		want = k == 0 ? tu_fmt("[run][--base-path][%s][--snap][99][--positions]", base)
			      : tu_fmt("[estimate][--pipeline][%s][--set][method=whole]", desc);
		wl = strlen(want);
		if (strncmp(out, want, wl) != 0)
			fail_msg("job script gives '%s', not '%s...'", out, want);
		if (k == 1 && (p = strstr(out, "[--base-path]")) != NULL)
			assert_non_null(strstr(p, base));
		else if (k == 1)
			fail_msg("no --base-path in '%s'", out);
		free(out);
		free(want);
		free(text);
		tu_result_free(&r);
	}
	/* the description's comment line continues commented past the path's newline */
	r = tu_run("estimate", "--pipeline", desc, "--base-path", base, "--snap", "99", "--node-mem",
		   "1G", "--format", "slurm", NULL);
	for (p = r.out; (p = strchr(p, '\n')) != NULL && p[1] != '\0'; p++)
		assert_true(p[1] == '#');
	tu_result_free(&r);
	tu_rmtree(dir);
	free(src);
	free(job);
	free(desc);
	free(base);
	free(dir);
}

static void test_help(void **state)
{
	tu_result r = tu_run("estimate", "-h", NULL);

	(void)state;
	assert_int_equal(r.status, 0);
	assert_contains(r.out, "--node-mem");
	assert_contains(r.out, "--positions float32|float64");
	tu_result_free(&r);
	r = tu_run("tradeoff", "--help", NULL);
	assert_int_equal(r.status, 0);
	assert_contains(r.out, "--select");
	tu_result_free(&r);
}


/* ---- header-only snapshots written here with HDF5 (independent of `snapmem mock`) ------------ */

static void put_attr(hid_t g, const char *name, hid_t type, int n, const void *v)
{
	hsize_t d = (hsize_t)n;
	hid_t sp = n == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &d, NULL);
	hid_t a = H5Acreate2(g, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);

	assert_true(a >= 0);
	assert_true(H5Awrite(a, type, v) >= 0);
	H5Aclose(a);
	H5Sclose(sp);
}

/* One TNG-style header chunk: `total` gas cells over `nfiles` chunks, this one holding `mine`. */
static void write_header(const char *path, uint64_t total, int32_t nfiles, int32_t mine)
{
	hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), g;
	int32_t tf[6] = {mine, 0, 0, 0, 0, 0};
	uint32_t tot[6] = {(uint32_t)(total & 0xffffffffu), 0, 0, 0, 0, 0};
	uint32_t hw[6] = {(uint32_t)(total >> 32), 0, 0, 0, 0, 0};
	double mt[6] = {0}, box = 205000, h = 0.6774, o0 = 0.3089, ob = 0.0486, ol = 0.6911, z = 0,
	       a = 1;

	assert_true(f >= 0);
	g = H5Gcreate2(f, "Header", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	put_attr(g, "NumPart_ThisFile", H5T_NATIVE_INT32, 6, tf);
	put_attr(g, "NumPart_Total", H5T_NATIVE_UINT32, 6, tot);
	put_attr(g, "NumPart_Total_HighWord", H5T_NATIVE_UINT32, 6, hw);
	put_attr(g, "MassTable", H5T_NATIVE_DOUBLE, 6, mt);
	put_attr(g, "BoxSize", H5T_NATIVE_DOUBLE, 1, &box);
	put_attr(g, "HubbleParam", H5T_NATIVE_DOUBLE, 1, &h);
	put_attr(g, "Omega0", H5T_NATIVE_DOUBLE, 1, &o0);
	put_attr(g, "OmegaBaryon", H5T_NATIVE_DOUBLE, 1, &ob);
	put_attr(g, "OmegaLambda", H5T_NATIVE_DOUBLE, 1, &ol);
	put_attr(g, "Redshift", H5T_NATIVE_DOUBLE, 1, &z);
	put_attr(g, "Time", H5T_NATIVE_DOUBLE, 1, &a);
	put_attr(g, "NumFilesPerSnapshot", H5T_NATIVE_INT32, 1, &nfiles);
	H5Gclose(g);
	H5Fclose(f);
}

static void test_header_overflow(void **state)
{
	char *dir = tu_tmpdir(), *p = tu_path(dir, "snap_099.0.hdf5");
	tu_result r;

	(void)state;
	/* 2^62 cells: a float32 gas field (4 B x N = 2^64 bytes) does not fit 64 bits */
	write_header(p, UINT64_C(1) << 62, 1, 0);
	expect_bad(tu_run("estimate", "--snapshot", p, "--halos", "1", "--format", "json", NULL),
		   "InternalEnergy");
	/* 2^61 cells: each field fits (2^63), the live sum of three does not */
	write_header(p, UINT64_C(1) << 61, 1, 0);
	expect_bad(tu_run("estimate", "--snapshot", p, "--halos", "1", NULL), "64 bits");
	/* streaming: 4 B x N and the blocks fit, float64 Coordinates (24 B x N) do not */
	expect_bad(tu_run("estimate", "--snapshot", p, "--halos", "1", "--temperature", "streaming",
			  "--positions", "float64", NULL), "Coordinates");
	/* 2^58 cells: every figure fits */
	write_header(p, UINT64_C(1) << 58, 1, 0);
	r = tu_run("estimate", "--snapshot", p, "--halos", "1", "--format", "json", NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	free(p);
	tu_rmtree(dir);
	free(dir);
}

/* 600 chunk headers; the estimate opens chunk 0 alone (the others could be anything). */
static void test_600_chunks(void **state)
{
	char *dir = tu_tmpdir(), *sd = tu_path(dir, "snapdir_099"), name[64], *p;
	const uint64_t n = UINT64_C(14454722210);
	tu_result r;
	int i;

	(void)state;
	assert_int_equal(mkdir(sd, 0755), 0);
	for (i = 0; i < 600; i++) {
		snprintf(name, sizeof(name), "snap_099.%d.hdf5", i);
		p = tu_path(sd, name);
		write_header(p, n, 600, (int32_t)(n / 600 + ((uint64_t)i < n % 600)));
		free(p);
	}
	r = tu_run("estimate", "--base-path", dir, "--snap", "99", "--halos", "3", "--format", "json",
		   NULL);
	assert_int_equal(r.status, 0);
	assert_contains(r.out, "\"gas_cells\": 14454722210");
	assert_contains(r.out, "\"num_files\": 600");
	assert_contains(r.out, "57818888840");
	tu_result_free(&r);
	free(sd);
	tu_rmtree(dir);
	free(dir);
}

/* --mpi from a base path reads every chunk's NumPart_ThisFile and splits them over the ranks. */
static void test_mpi_chunks(void **state)
{
	static const int32_t gas[4] = {100, 400, 300, 250};  /* 1050 in all */
	char *dir = tu_tmpdir(), *sd = tu_path(dir, "snapdir_099"), name[64], *p;
	tu_result r;
	json_t *root, *m;
	json_error_t jerr;
	int i;

	(void)state;
	assert_int_equal(mkdir(sd, 0755), 0);
	for (i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "snap_099.%d.hdf5", i);
		p = tu_path(sd, name);
		write_header(p, 1050, 4, gas[i]);
		free(p);
	}
	/* 2 ranks: 400 -> r0, 300 -> r1, 250 -> r1, 100 -> r0: 500 and 550 */
	r = tu_run("estimate", "--base-path", dir, "--snap", "99", "--halos", "3", "--ranks", "2",
		   "--format", "json", NULL);
	assert_int_equal(r.status, 0);
	root = json_loads(r.out, 0, &jerr);
	assert_non_null(root);
	m = json_object_get(root, "mpi");
	assert_int_equal(json_integer_value(json_object_get(m, "files")), 4);
	assert_int_equal(json_integer_value(json_object_get(m, "files_with_gas")), 4);
	assert_int_equal(json_integer_value(json_object_get(m, "cells_per_rank_max")), 550);
	assert_int_equal(json_integer_value(json_object_get(m, "cells_per_rank_min")), 500);
	json_decref(root);
	tu_result_free(&r);
	/* 3 ranks: 400, 300, 250 + 100 */
	r = tu_run("estimate", "--base-path", dir, "--snap", "99", "--halos", "3", "--ranks", "3",
		   NULL);
	assert_int_equal(r.status, 0);
	assert_contains(r.out, "cells per rank (from the chunk headers): at most 400, at least 300");
	tu_result_free(&r);
	/* 6 ranks, 4 files: two ranks stream nothing */
	r = tu_run("estimate", "--base-path", dir, "--snap", "99", "--halos", "3", "--ranks", "6",
		   NULL);
	assert_int_equal(r.status, 0);
	assert_contains(r.out, "at most 400, at least 0; only 4 files hold gas: 2 ranks get none");
	tu_result_free(&r);
	/* a missing chunk: one rank would have no file to read; exit 2 naming it (one process reads
	 * chunk 0's header alone and does not notice) */
	p = tu_path(sd, "snap_099.2.hdf5");
	assert_int_equal(unlink(p), 0);
	expect_bad(tu_run("estimate", "--base-path", dir, "--snap", "99", "--halos", "3", "--mpi",
			  NULL), "snap_099.2.hdf5");
	r = tu_run("estimate", "--base-path", dir, "--snap", "99", "--halos", "3", NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	free(p);
	free(sd);
	tu_rmtree(dir);
	free(dir);
}

/* Header-only mocks written by `snapmem mock --header-only` (overflow: test_header_overflow). */
static int make_mock(const char *dir, const char *gas, const char *files)
{
	tu_result r = tu_run("mock", dir, "--header-only", "--gas-total", gas, "--files", files,
			     NULL);
	int ok = r.status == 0;

	tu_result_free(&r);
	return ok;
}

static void test_mock_600_chunks(void **state)
{
	char *dir = tu_tmpdir();
	tu_result r;

	(void)state;
	assert_true(make_mock(dir, "14454722210", "600"));
	r = tu_run("estimate", "--base-path", dir, "--snap", "99", "--halos", "5", "--format", "json",
		   NULL);
	assert_int_equal(r.status, 0);
	assert_contains(r.out, "\"gas_cells\": 14454722210");
	assert_contains(r.out, "\"num_files\": 600");
	assert_contains(r.out, "57818888840");
	tu_result_free(&r);
	tu_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_table),
		cmocka_unit_test(test_default_json),
		cmocka_unit_test(test_markdown),
		cmocka_unit_test(test_node_mem),
		cmocka_unit_test(test_one_verdict),
		cmocka_unit_test(test_mpi_plan),
		cmocka_unit_test(test_mpi_chunks),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_snapshot_without_catalogue),
		cmocka_unit_test(test_output_atomic),
		cmocka_unit_test(test_tradeoff),
		cmocka_unit_test(test_slurm_quoting),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_header_overflow),
		cmocka_unit_test(test_600_chunks),
		cmocka_unit_test(test_mock_600_chunks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
