/*
 * Reading a run directory: estimate.json ("snapmem.estimate/1") and memory.json
 * ("snapmem.memory/1"), parsed with jansson and checked key by key. Anything malformed, foreign
 * (another schema) or inconsistent (timeline arrays of different lengths, negative byte counts) is
 * SM_EFORMAT with one line naming the file and the JSON path at fault; a missing file is
 * SM_ENOTFOUND. Both must carry the same run id ("run"."id", written by `snapmem run`) or, for
 * files written before run ids, neither; files of two runs are SM_EFORMAT. The two documents are
 * then joined per stage id and per array (name + stage): the
 * per-halo stages keep every measured instance and show the one with the highest requested peak.
 * A distributed run's per-rank figures (memory.json "mpi") are read by mpi.c.
 */
#include <errno.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "report/internal.h"
#include "snapmem/estimator.h"

struct docs {
	json_t *est, *mem;
	sm__report_mpi *mpi;   /* memory.json's "mpi" object, NULL for one process */
};

/* ---- checked JSON access -------------------------------------------------------------------- */

static int missing(sm__jdoc *d, const char *where, const char *key, const char *what)
{
	return sm_error_set(d->err, SM_EFORMAT, "'%s': %s%s%s %s", d->path, where,
			    where[0] != '\0' ? "." : "", key, what);
}

static int get(sm__jdoc *d, json_t *parent, const char *where, const char *key, json_t **out)
{
	if (!json_is_object(parent))
		return sm_error_set(d->err, SM_EFORMAT, "'%s': %s is not an object", d->path,
				    where[0] != '\0' ? where : "the document");
	*out = json_object_get(parent, key);
	if (*out == NULL)
		return missing(d, where, key, "is missing");
	return 0;
}

int sm__j_obj(sm__jdoc *d, json_t *parent, const char *where, const char *key, json_t **out)
{
	int rc = get(d, parent, where, key, out);

	if (rc == 0 && !json_is_object(*out))
		return missing(d, where, key, "is not an object");
	return rc;
}

int sm__j_arr(sm__jdoc *d, json_t *parent, const char *where, const char *key, json_t **out)
{
	int rc = get(d, parent, where, key, out);

	if (rc == 0 && !json_is_array(*out))
		return missing(d, where, key, "is not an array");
	return rc;
}

int sm__j_str(sm__jdoc *d, json_t *parent, const char *where, const char *key, const char **out)
{
	json_t *v;
	int rc = get(d, parent, where, key, &v);

	if (rc != 0)
		return rc;
	if (!json_is_string(v))
		return missing(d, where, key, "is not a string");
	*out = json_string_value(v);
	return 0;
}

int sm__j_str_opt(sm__jdoc *d, json_t *parent, const char *where, const char *key,
		  const char **out)
{
	json_t *v;

	*out = NULL;
	if (!json_is_object(parent))
		return get(d, parent, where, key, &v);
	v = json_object_get(parent, key);
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return missing(d, where, key, "is not a string or null");
	*out = json_string_value(v);
	return 0;
}

int sm__j_i64(sm__jdoc *d, json_t *parent, const char *where, const char *key, int64_t *out)
{
	json_t *v;
	int rc = get(d, parent, where, key, &v);

	if (rc != 0)
		return rc;
	if (!json_is_integer(v))
		return missing(d, where, key, "is not an integer");
	*out = (int64_t)json_integer_value(v);
	return 0;
}

int sm__j_i64_opt(sm__jdoc *d, json_t *parent, const char *where, const char *key, int64_t dflt,
		  int64_t *out)
{
	json_t *v;
	int rc = get(d, parent, where, key, &v);

	if (rc != 0)
		return rc;
	if (json_is_null(v)) {
		*out = dflt;
		return 0;
	}
	if (!json_is_integer(v))
		return missing(d, where, key, "is not an integer or null");
	*out = (int64_t)json_integer_value(v);
	return 0;
}

int sm__j_u64(sm__jdoc *d, json_t *parent, const char *where, const char *key, uint64_t *out)
{
	int64_t v;
	int rc = sm__j_i64(d, parent, where, key, &v);

	if (rc != 0)
		return rc;
	if (v < 0)
		return sm_error_set(d->err, SM_EFORMAT, "'%s': %s%s%s is negative (%lld)", d->path,
				    where, where[0] != '\0' ? "." : "", key, (long long)v);
	*out = (uint64_t)v;
	return 0;
}

int sm__j_num(sm__jdoc *d, json_t *parent, const char *where, const char *key, double *out)
{
	json_t *v;
	int rc = get(d, parent, where, key, &v);

	if (rc != 0)
		return rc;
	if (!json_is_number(v))
		return missing(d, where, key, "is not a number");
	*out = json_number_value(v);
	if (!isfinite(*out))
		return missing(d, where, key, "is not finite");
	return 0;
}

int sm__j_bool(sm__jdoc *d, json_t *parent, const char *where, const char *key, int *out)
{
	json_t *v;
	int rc = get(d, parent, where, key, &v);

	if (rc != 0)
		return rc;
	if (!json_is_boolean(v))
		return missing(d, where, key, "is not true or false");
	*out = json_is_true(v);
	return 0;
}

int sm__j_load(const char *path, const char *schema, json_t **out, sm_error *err)
{
	json_error_t je;
	json_t *root, *s;
	struct stat st;

	*out = NULL;
	if (stat(path, &st) != 0)
		return sm_error_set(err, errno == ENOENT ? SM_ENOTFOUND : SM_EIO, "'%s': %s", path,
				    errno == ENOENT ? "no such file" : strerror(errno));
	if (!S_ISREG(st.st_mode))
		return sm_error_set(err, SM_EIO, "'%s': not a regular file", path);
	/* One read and json_loadb: json_load_file reads with getc, a character at a time, which was
	 * several milliseconds of every `snapmem run`. */
	{
		FILE *f = fopen(path, "rb");
		char *text = f != NULL ? malloc((size_t)st.st_size + 1) : NULL;
		size_t got = text != NULL ? fread(text, 1, (size_t)st.st_size, f) : 0;
		int rerr = f == NULL || text == NULL || got != (size_t)st.st_size;

		if (f != NULL)
			fclose(f);
		if (rerr) {
			free(text);
			return sm_error_set(err, text == NULL && f != NULL ? SM_ENOMEM : SM_EIO,
					    "'%s': cannot read", path);
		}
		root = json_loadb(text, got, JSON_REJECT_DUPLICATES, &je);
		free(text);
	}
	if (root == NULL)
		return sm_error_set(err, SM_EFORMAT, "'%s': malformed JSON at line %d column %d: %s",
				    path, je.line, je.column, je.text);
	if (!json_is_object(root)) {
		json_decref(root);
		return sm_error_set(err, SM_EFORMAT, "'%s': not a JSON object, expected a %s document",
				    path, schema);
	}
	s = json_object_get(root, "schema");
	if (!json_is_string(s)) {
		json_decref(root);
		return sm_error_set(err, SM_EFORMAT, "'%s': no \"schema\" string: not a %s document",
				    path, schema);
	}
	if (strcmp(json_string_value(s), schema) != 0) {
		sm_error_set(err, SM_EFORMAT, "'%s': schema is '%s', expected '%s'", path,
			     json_string_value(s), schema);
		json_decref(root);
		return SM_EFORMAT;
	}
	*out = root;
	return 0;
}

/* ---- building the report ------------------------------------------------------------------- */

static void copy(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src != NULL ? src : "");
}

static sm_report_stage *find_stage(sm_report *r, const char *id)
{
	size_t i;

	for (i = 0; i < r->nstages; i++)
		if (strcmp(r->stages[i].id, id) == 0)
			return &r->stages[i];
	return NULL;
}

static sm_report_array *find_array(sm_report *r, const char *stage, const char *name)
{
	size_t i;

	for (i = 0; i < r->narrays; i++)
		if (strcmp(r->arrays[i].stage, stage) == 0 && strcmp(r->arrays[i].name, name) == 0)
			return &r->arrays[i];
	return NULL;
}

static int grow(void **p, size_t n, size_t size, sm_error *err)
{
	void *q = realloc(*p, (n + 1) * size);

	if (q == NULL)
		return sm_error_set(err, SM_ENOMEM, "cannot allocate the report");
	*p = q;
	memset((char *)q + n * size, 0, size);
	return 0;
}

/* Ids and names go into Markdown and HTML unescaped: letters, digits, '_', '-', '.' only. */
static int check_id(sm__jdoc *d, const char *where, const char *id)
{
	const char *c;

	if (id[0] == '\0' || strlen(id) >= SM_REPORT_ID_MAX)
		return sm_error_set(d->err, SM_EFORMAT, "'%s': %s: name '%.80s' is empty or too long",
				    d->path, where, id);
	for (c = id; *c != '\0'; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		      *c == '_' || *c == '-' || *c == '.'))
			return sm_error_set(d->err, SM_EFORMAT, "'%s': %s: name '%.80s' has a character "
					    "other than letters, digits, '_', '-' and '.'", d->path,
					    where, id);
	return 0;
}

/* An optional u64 key: absent or null leaves *out as it is. */
static int u64_opt(sm__jdoc *d, json_t *parent, const char *where, const char *key, uint64_t *out)
{
	json_t *v = json_is_object(parent) ? json_object_get(parent, key) : NULL;

	if (v == NULL || json_is_null(v))
		return 0;
	return sm__j_u64(d, parent, where, key, out);
}

/*
 * The head of an estimate of a pipeline description other than radial-profiles (`snapmem
 * estimate --pipeline FILE`): only "stages" is required; source.name, header.gas_cells,
 * halos.count, baseline_bytes and peak_total_bytes are read when present, and the description's
 * options ("pipeline"."options", else "options") are listed as they are, "ngrid 2048".
 */
static int load_estimate_other(sm_report *r, sm__jdoc *d, json_t *est)
{
	json_t *src = json_object_get(est, "source"), *hdr = json_object_get(est, "header");
	json_t *opt = json_object_get(est, "options"), *halos = json_object_get(est, "halos"), *v;
	json_t *pl = json_object_get(est, "pipeline");
	const char *key;
	size_t n;
	int rc;

	if (json_is_object(src) && json_is_string(json_object_get(src, "name")))
		copy(r->source, sizeof(r->source), json_string_value(json_object_get(src, "name")));
	if ((rc = u64_opt(d, hdr, "header", "gas_cells", &r->gas_cells)) != 0 ||
	    (rc = u64_opt(d, halos, "halos", "count", &r->nhalos_selected)) != 0 ||
	    (rc = u64_opt(d, est, "", "baseline_bytes", &r->est_baseline)) != 0 ||
	    (rc = u64_opt(d, est, "", "peak_total_bytes", &r->est_peak_total)) != 0)
		return rc;
	n = (size_t)snprintf(r->options_text, sizeof(r->options_text), "pipeline %s", r->pipeline);
	/* the description's own options (`snapmem estimate --pipeline`: "pipeline"."options"), else
	 * whatever "options" holds */
	if (json_is_object(pl) && json_is_object(json_object_get(pl, "options")))
		opt = json_object_get(pl, "options");
	if (!json_is_object(opt))
		return 0;
	json_object_foreach(opt, key, v) {
		char val[64];

		if (json_is_string(v))
			snprintf(val, sizeof(val), "%s", json_string_value(v));
		else if (json_is_integer(v))
			snprintf(val, sizeof(val), "%lld", (long long)json_integer_value(v));
		else if (json_is_real(v))
			snprintf(val, sizeof(val), "%g", json_real_value(v));
		else if (json_is_boolean(v))
			snprintf(val, sizeof(val), "%s", json_is_true(v) ? "true" : "false");
		else
			continue;
		if (strcmp(key, "positions") == 0)
			snprintf(r->positions, sizeof(r->positions), "%.15s", val);
		else if (strcmp(key, "select") == 0)
			snprintf(r->select, sizeof(r->select), "%.15s", val);
		else if (strcmp(key, "temperature") == 0)
			snprintf(r->temperature, sizeof(r->temperature), "%.15s", val);
		if (n < sizeof(r->options_text))
			n += (size_t)snprintf(r->options_text + n, sizeof(r->options_text) - n,
					      ", %s %s", key, val);
	}
	return 0;
}

static int load_estimate(sm_report *r, json_t *est, sm_error *err)
{
	sm__jdoc d = {r->estimate_path, err};
	json_t *src, *hdr, *opt, *halos, *stages, *st, *arrays, *a, *mpi, *rk, *pl;
	const char *name, *pos, *sel, *tmp, *pname = "radial-profiles";
	sm_dtype pos_v;
	sm_select sel_v;
	sm_temp_mode tmp_v;
	char where[96], w2[128];
	size_t i, j;
	int rc, ph;

	/* "pipeline": absent in estimates of the built-in pipeline; a description's id otherwise */
	pl = json_object_get(est, "pipeline");
	if (json_is_object(pl))
		pl = json_object_get(pl, "id");
	if (pl != NULL && !json_is_null(pl)) {
		if (!json_is_string(pl))
			return sm_error_set(err, SM_EFORMAT, "'%s': pipeline is not a pipeline id",
					    d.path);
		pname = json_string_value(pl);
		if ((rc = check_id(&d, "pipeline", pname)) != 0)
			return rc;
	}
	copy(r->pipeline, sizeof(r->pipeline), pname);
	if (strcmp(pname, "radial-profiles") != 0) {
		if ((rc = load_estimate_other(r, &d, est)) != 0 ||
		    (rc = sm__j_arr(&d, est, "", "stages", &stages)) != 0 ||
		    (rc = sm__report_load_resident_estimate(r, &d, est)) != 0)
			return rc;
		goto stages;
	}
	if ((rc = sm__j_obj(&d, est, "", "source", &src)) != 0 ||
	    (rc = sm__j_str(&d, src, "source", "name", &name)) != 0 ||
	    (rc = sm__j_obj(&d, est, "", "header", &hdr)) != 0 ||
	    (rc = sm__j_u64(&d, hdr, "header", "gas_cells", &r->gas_cells)) != 0 ||
	    (rc = sm__j_obj(&d, est, "", "options", &opt)) != 0 ||
	    (rc = sm__j_str(&d, opt, "options", "positions", &pos)) != 0 ||
	    (rc = sm__j_str(&d, opt, "options", "select", &sel)) != 0 ||
	    (rc = sm__j_str(&d, opt, "options", "temperature", &tmp)) != 0 ||
	    (rc = sm__j_u64(&d, opt, "options", "stream_block", &r->stream_block)) != 0 ||
	    (rc = sm__j_obj(&d, est, "", "halos", &halos)) != 0 ||
	    (rc = sm__j_u64(&d, halos, "halos", "count", &r->nhalos_selected)) != 0 ||
	    (rc = sm__j_u64(&d, est, "", "baseline_bytes", &r->est_baseline)) != 0 ||
	    (rc = sm__j_u64(&d, est, "", "peak_total_bytes", &r->est_peak_total)) != 0 ||
	    (rc = sm__j_arr(&d, est, "", "stages", &stages)) != 0)
		return rc;
	if ((rc = sm__report_load_resident_estimate(r, &d, est)) != 0)
		return rc;
	if (sm_model_positions_parse(pos, &pos_v) != 0)
		return sm_error_set(err, SM_EFORMAT, "'%s': options.positions '%.40s' is not %s or %s",
				    d.path, pos, SM_DTYPE_NAME_F32, SM_DTYPE_NAME_F64);
	if (sm_model_select_parse(sel, &sel_v) != 0)
		return sm_error_set(err, SM_EFORMAT, "'%s': options.select '%.40s' is not %s or %s",
				    d.path, sel, SM_SELECT_NAME_INDEX, SM_SELECT_NAME_MASK);
	if (sm_model_temperature_parse(tmp, &tmp_v) != 0)
		return sm_error_set(err, SM_EFORMAT, "'%s': options.temperature '%.40s' is not %s or "
				    "%s", d.path, tmp, SM_TEMP_NAME_IN_MEMORY, SM_TEMP_NAME_STREAMING);
	copy(r->source, sizeof(r->source), name);
	copy(r->positions, sizeof(r->positions), pos);
	copy(r->select, sizeof(r->select), sel);
	copy(r->temperature, sizeof(r->temperature), tmp);
	mpi = json_object_get(opt, "mpi");     /* optional keys: estimates before --mpi lack them */
	rk = json_object_get(opt, "ranks");
	if (json_is_true(mpi))
		snprintf(r->options_text, sizeof(r->options_text),
			 "distributed (--mpi, %lld ranks), positions %s, stream block %llu",
			 json_is_integer(rk) ? (long long)json_integer_value(rk) : 0LL, pos,
			 (unsigned long long)r->stream_block);
	else if (tmp_v == SM_TEMP_STREAMING)
		snprintf(r->options_text, sizeof(r->options_text),
			 "positions %s, select %s, temperature %s (block %llu)", pos, sel, tmp,
			 (unsigned long long)r->stream_block);
	else
		snprintf(r->options_text, sizeof(r->options_text),
			 "positions %s, select %s, temperature %s", pos, sel, tmp);
stages:
	json_array_foreach(stages, i, st) {
		const char *id;
		sm_report_stage *s;
		int64_t inst;

		snprintf(where, sizeof(where), "stages[%zu]", i);
		if ((rc = sm__j_str(&d, st, where, "id", &id)) != 0 ||
		    (rc = check_id(&d, where, id)) != 0 ||
		    (rc = sm__j_bool(&d, st, where, "per_halo", &ph)) != 0 ||
		    (rc = sm__j_i64_opt(&d, st, where, "instance", -1, &inst)) != 0 ||
		    (rc = sm__j_arr(&d, st, where, "arrays", &arrays)) != 0)
			return rc;
		if (find_stage(r, id) != NULL)
			return sm_error_set(err, SM_EFORMAT, "'%s': %s: stage '%s' appears twice",
					    d.path, where, id);
		if ((rc = grow((void **)&r->stages, r->nstages, sizeof(*r->stages), err)) != 0)
			return rc;
		s = &r->stages[r->nstages++];
		copy(s->id, sizeof(s->id), id);
		s->has_est = 1;
		s->per_halo = ph;
		s->est_instance = inst;
		s->instance = -1;
		if ((rc = sm__j_u64(&d, st, where, "peak_bytes", &s->est_peak)) != 0 ||
		    (rc = sm__j_u64(&d, st, where, "peak_allocated_bytes", &s->est_peak_allocated)) != 0)
			return rc;
		json_array_foreach(arrays, j, a) {
			sm_report_array *ra;

			snprintf(w2, sizeof(w2), "%s.arrays[%zu]", where, j);
			if ((rc = sm__j_str(&d, a, w2, "name", &name)) != 0 ||
			    (rc = check_id(&d, w2, name)) != 0)
				return rc;
			if ((rc = grow((void **)&r->arrays, r->narrays, sizeof(*r->arrays), err)) != 0)
				return rc;
			ra = &r->arrays[r->narrays++];
			copy(ra->name, sizeof(ra->name), name);
			copy(ra->stage, sizeof(ra->stage), id);
			ra->instance = inst;
			ra->has_est = 1;
			if ((rc = sm__j_u64(&d, a, w2, "requested_bytes", &ra->est_requested)) != 0 ||
			    (rc = sm__j_u64(&d, a, w2, "allocated_bytes", &ra->est_allocated)) != 0)
				return rc;
		}
	}
	return 0;
}

/* The innermost frame outside the profiler and the allocator, as "function (file:line)". */
static void site_where(json_t *site, char *buf, size_t len)
{
	static const char *skip[] = {"sm_prof", "sm__", "malloc", "calloc", "realloc", "free",
				     "posix_memalign", "aligned_alloc", "memalign", "je_", "valloc",
				     "__libc", "_int_"};
	json_t *frames = json_object_get(site, "frames"), *f;
	size_t i, k;
	const char *first = NULL;

	snprintf(buf, len, "?");
	if (!json_is_array(frames))
		return;
	json_array_foreach(frames, i, f) {
		json_t *fn = json_object_get(f, "function"), *file = json_object_get(f, "file"),
		       *line = json_object_get(f, "line"), *addr = json_object_get(f, "address");
		const char *name = json_is_string(fn) ? json_string_value(fn) : NULL;
		int skipped = 0;

		if (name == NULL) {
			if (first == NULL && json_is_string(addr))
				first = json_string_value(addr);
			continue;
		}
		for (k = 0; k < sizeof(skip) / sizeof(skip[0]); k++)
			if (strncmp(name, skip[k], strlen(skip[k])) == 0)
				skipped = 1;
		if (skipped)
			continue;
		if (json_is_string(file) && json_is_integer(line))
			snprintf(buf, len, "%s (%s:%lld)", name, json_string_value(file),
				 (long long)json_integer_value(line));
		else
			snprintf(buf, len, "%s", name);
		return;
	}
	if (first != NULL)
		snprintf(buf, len, "%s", first);
}

static json_t *site_by_id(json_t *sites, int64_t id)
{
	json_t *s;
	size_t i;

	json_array_foreach(sites, i, s) {
		json_t *v = json_object_get(s, "id");

		if (json_is_integer(v) && json_integer_value(v) == id)
			return s;
	}
	return NULL;
}

/* Highest resident bytes on the timeline within [t0, t1]. */
static uint64_t resident_in(const sm_report *r, double t0, double t1)
{
	uint64_t m = 0;
	size_t i;

	for (i = 0; i < r->ntl; i++)
		if (r->tl_t[i] >= t0 && r->tl_t[i] <= t1 && r->tl_resident[i] > m)
			m = r->tl_resident[i];
	return m;
}

/*
 * A run that measured stages none of which the estimate models was estimated for another program
 * (or from another description): one line naming both files and both lists of stage ids, rather
 * than a report in which every stage fails.
 */
static int common_stage(sm_report *r, size_t nmeasured, sm_error *err)
{
	char est[160] = "", run[160] = "";
	size_t i, ne = 0, nr = 0, le = 0, lr = 0;

	if (nmeasured == 0)
		return 0;
	for (i = 0; i < r->nstages; i++) {
		const sm_report_stage *s = &r->stages[i];
		char *buf = s->has_est ? est : run;
		size_t *len = s->has_est ? &le : &lr, *cnt = s->has_est ? &ne : &nr;

		if (s->has_est && s->has_meas)
			return 0;
		if (*cnt < 4 && *len < 120)
			*len += (size_t)snprintf(buf + *len, 160 - *len, "%s%s", *cnt ? ", " : "",
						 s->id);
		else if (*cnt == 4 && *len < 150)
			*len += (size_t)snprintf(buf + *len, 160 - *len, ", ...");
		(*cnt)++;
	}
	return sm_error_set(err, SM_EFORMAT, "'%s' and '%s' share no stage id (estimated: %s; "
			    "measured: %s): an estimate of another program", r->estimate_path,
			    r->memory_path, ne ? est : "none", nr ? run : "none");
}

struct mstage {
	json_t *js;
	const char *id;
	int64_t instance, depth;
	uint64_t peak;
};

static int load_timeline(sm_report *r, sm__jdoc *d, json_t *mem)
{
	json_t *tl, *t, *al, *re;
	size_t i, n;
	int rc;

	tl = json_object_get(mem, "timeline");
	if (tl == NULL || json_is_null(tl))
		return 0;
	if ((rc = sm__j_obj(d, mem, "", "timeline", &tl)) != 0 ||
	    (rc = sm__j_arr(d, tl, "timeline", "t", &t)) != 0 ||
	    (rc = sm__j_arr(d, tl, "timeline", "allocated", &al)) != 0 ||
	    (rc = sm__j_arr(d, tl, "timeline", "resident", &re)) != 0)
		return rc;
	n = json_array_size(t);
	if (json_array_size(al) != n || json_array_size(re) != n)
		return sm_error_set(d->err, SM_EFORMAT, "'%s': timeline.t, .allocated and .resident "
				    "have %zu, %zu and %zu samples", d->path, n, json_array_size(al),
				    json_array_size(re));
	if (n == 0)
		return 0;
	r->tl_t = calloc(n, sizeof(double));
	r->tl_allocated = calloc(n, sizeof(uint64_t));
	r->tl_resident = calloc(n, sizeof(uint64_t));
	if (r->tl_t == NULL || r->tl_allocated == NULL || r->tl_resident == NULL)
		return sm_error_set(d->err, SM_ENOMEM, "cannot allocate the timeline");
	for (i = 0; i < n; i++) {
		json_t *a = json_array_get(t, i), *b = json_array_get(al, i), *c = json_array_get(re, i);

		if (!json_is_number(a) || !isfinite(json_number_value(a)) || !json_is_integer(b) ||
		    json_integer_value(b) < 0 || !json_is_integer(c) || json_integer_value(c) < 0)
			return sm_error_set(d->err, SM_EFORMAT, "'%s': timeline sample %zu is not a "
					    "time and two byte counts", d->path, i);
		r->tl_t[i] = json_number_value(a);
		r->tl_allocated[i] = (uint64_t)json_integer_value(b);
		r->tl_resident[i] = (uint64_t)json_integer_value(c);
	}
	r->ntl = n;
	return 0;
}

static int load_memory(sm_report *r, json_t *mem, sm_error *err)
{
	sm__jdoc d = {r->memory_path, err};
	json_t *alloc, *base, *stages, *st, *arrays, *a, *sites, *sub;
	const char *s, *reason;
	struct mstage *ms = NULL;
	size_t nms, i, j, ntop = 0;
	char where[96], wal[112], wres[112], wreq[112];
	int rc, top;

	if ((rc = sm__j_bool(&d, mem, "", "complete", &r->complete)) != 0 ||
	    (rc = sm__j_str_opt(&d, mem, "", "incomplete_reason", &reason)) != 0 ||
	    (rc = sm__j_obj(&d, mem, "", "allocator", &alloc)) != 0 ||
	    (rc = sm__j_str(&d, alloc, "allocator", "name", &s)) != 0 ||
	    (rc = sm__j_bool(&d, alloc, "allocator", "measured", &r->measured)) != 0 ||
	    (rc = sm__j_obj(&d, mem, "", "baseline", &base)) != 0 ||
	    (rc = sm__j_u64(&d, base, "baseline", "allocated", &r->meas_baseline)) != 0 ||
	    (rc = sm__j_u64(&d, base, "baseline", "resident", &r->meas_baseline_resident)) != 0 ||
	    (rc = sm__j_arr(&d, mem, "", "stages", &stages)) != 0 ||
	    (rc = sm__j_arr(&d, mem, "", "arrays", &arrays)) != 0 ||
	    (rc = sm__j_arr(&d, mem, "", "sites", &sites)) != 0 ||
	    (rc = load_timeline(r, &d, mem)) != 0)
		return rc;
	copy(r->allocator, sizeof(r->allocator), s);
	copy(r->incomplete_reason, sizeof(r->incomplete_reason), reason);
	if ((rc = sm__report_load_resident_memory(r, &d, mem)) != 0)
		return rc;

	/* Pass 1: check every stage, keep what joins. */
	nms = json_array_size(stages);
	ms = calloc(nms + 1, sizeof(*ms));
	if (ms == NULL)
		return sm_error_set(err, SM_ENOMEM, "cannot allocate the report");
	json_array_foreach(stages, i, st) {
		snprintf(where, sizeof(where), "stages[%zu]", i);
		snprintf(wreq, sizeof(wreq), "stages[%zu].requested", i);
		ms[i].js = st;
		if ((rc = sm__j_str(&d, st, where, "id", &ms[i].id)) != 0 ||
		    (rc = check_id(&d, where, ms[i].id)) != 0 ||
		    (rc = sm__j_i64(&d, st, where, "instance", &ms[i].instance)) != 0 ||
		    (rc = sm__j_i64(&d, st, where, "depth", &ms[i].depth)) != 0 ||
		    (rc = sm__j_obj(&d, st, where, "requested", &sub)) != 0 ||
		    (rc = sm__j_u64(&d, sub, wreq, "peak", &ms[i].peak)) != 0)
			goto out;
	}
	/* A program under `snapmem profile`: its own stages nest in the stage "process" (depth 0),
	 * and its memory is what it holds above the moment its first modelled stage began. */
	r->profiled = json_is_object(json_object_get(mem, "command"));
	top = r->profiled ? 1 : 0;
	if (r->profiled) {
		size_t first = nms;

		for (i = 0; i < nms && first == nms; i++) {
			sm_report_stage *rs = find_stage(r, ms[i].id);

			if (ms[i].depth == top && rs != NULL && rs->has_est)
				first = i;
		}
		for (i = 0; i < nms && first == nms; i++)
			if (ms[i].depth == top)
				first = i;
		if (first < nms) {
			snprintf(where, sizeof(where), "stages[%zu]", first);
			snprintf(wal, sizeof(wal), "stages[%zu].allocated", first);
			if ((rc = sm__j_obj(&d, ms[first].js, where, "allocated", &sub)) != 0 ||
			    (rc = sm__j_u64(&d, sub, wal, "begin", &r->meas_baseline)) != 0)
				goto out;
		}
	}
	for (i = 0; i < nms; i++) {
		sm_report_stage *rs = find_stage(r, ms[i].id);
		sm_report_halo *h;
		uint64_t apeak, unexpl, res_b, res_e;
		double t0, wall;
		json_t *req, *al, *res;

		if (ms[i].depth < top || (rs == NULL && ms[i].depth > top))
			continue; /* the whole profiled process, or a nested stage the model does not
				   * know: not a report line */
		ntop++;
		if (rs == NULL) {
			if ((rc = grow((void **)&r->stages, r->nstages, sizeof(*r->stages), err)) != 0)
				goto out;
			rs = &r->stages[r->nstages++];
			copy(rs->id, sizeof(rs->id), ms[i].id);
			rs->instance = -1;
			rs->est_instance = -1;
		}
		snprintf(where, sizeof(where), "stages[%zu]", i);
		snprintf(wal, sizeof(wal), "stages[%zu].allocated", i);
		snprintf(wres, sizeof(wres), "stages[%zu].resident", i);
		snprintf(wreq, sizeof(wreq), "stages[%zu].requested", i);
		st = ms[i].js;
		if ((rc = sm__j_num(&d, st, where, "t_begin", &t0)) != 0 ||
		    (rc = sm__j_num(&d, st, where, "wall_s", &wall)) != 0 ||
		    (rc = sm__j_obj(&d, st, where, "allocated", &al)) != 0 ||
		    (rc = sm__j_u64(&d, al, wal, "peak", &apeak)) != 0 ||
		    (rc = sm__j_obj(&d, st, where, "resident", &res)) != 0 ||
		    (rc = sm__j_u64(&d, res, wres, "begin", &res_b)) != 0 ||
		    (rc = sm__j_u64(&d, res, wres, "end", &res_e)) != 0 ||
		    (rc = sm__j_u64(&d, st, where, "unexplained_bytes", &unexpl)) != 0 ||
		    (rc = sm__j_obj(&d, st, where, "requested", &req)) != 0)
			goto out;
		{
			uint64_t resident = res_b > res_e ? res_b : res_e, tl = resident_in(r, t0, t0 + wall);
			uint64_t above = apeak > r->meas_baseline ? apeak - r->meas_baseline : 0;
			int take;

			if (tl > resident)
				resident = tl;
			if ((rc = grow((void **)&r->bands, r->nbands, sizeof(*r->bands), err)) != 0)
				goto out;
			copy(r->bands[r->nbands].id, SM_REPORT_ID_MAX, ms[i].id);
			r->bands[r->nbands].instance = ms[i].instance;
			r->bands[r->nbands].t0 = t0;
			r->bands[r->nbands].t1 = t0 + wall;
			r->nbands++;
			if (ms[i].instance >= 0) {
				rs->per_halo = 1;
				if ((rc = grow((void **)&rs->halos, rs->nhalos, sizeof(*rs->halos), err)) != 0)
					goto out;
				h = &rs->halos[rs->nhalos++];
				h->instance = ms[i].instance;
				h->requested_peak = ms[i].peak;
				h->allocated_above = above;
				h->unexplained = unexpl;
				h->resident = resident;
				h->wall_s = wall;
			}
			/* the largest halo: highest requested peak, ties to the first (a profiled
			 * program: highest allocated peak, its temporaries are not tracked) */
			take = !rs->has_meas || (r->profiled ? above > rs->meas_allocated
							     : ms[i].peak > rs->meas_peak);
			if (!take)
				continue;
			rs->has_meas = 1;
			rs->instance = ms[i].instance;
			rs->meas_peak = ms[i].peak;
			rs->meas_allocated_peak = apeak;
			rs->meas_allocated = above;
			rs->meas_resident = resident;
			rs->unexplained = unexpl;
			rs->t_begin = t0;
			rs->wall_s = wall;
			if ((rc = sm__j_u64(&d, st, where, "tracked_allocated_peak",
					    &rs->tracked_allocated_peak)) != 0 ||
			    (rc = sm__j_u64(&d, req, wreq, "live_begin", &rs->live_begin)) != 0 ||
			    (rc = sm__j_u64(&d, req, wreq, "live_end", &rs->live_end)) != 0 ||
			    (rc = sm__j_arr(&d, st, where, "top_sites", &sub)) != 0)
				goto out;
			rs->nsites = 0;
			json_array_foreach(sub, j, a) {
				sm_report_site *site;
				char w2[128];
				json_t *sj;
				int64_t id;

				snprintf(w2, sizeof(w2), "%s.top_sites[%zu]", where, j);
				if (rs->nsites >= SM_REPORT_MAX_SITES)
					break;
				site = &rs->sites[rs->nsites];
				if ((rc = sm__j_i64(&d, a, w2, "site", &id)) != 0 ||
				    (rc = sm__j_u64(&d, a, w2, "bytes", &site->bytes)) != 0)
					goto out;
				site->id = id;
				sj = site_by_id(sites, id);
				if (sj != NULL) {
					json_t *tr = json_object_get(sj, "tracked");

					site->tracked = json_is_true(tr);
					site_where(sj, site->where, sizeof(site->where));
				} else {
					snprintf(site->where, sizeof(site->where), "site %lld",
						 (long long)id);
				}
				rs->nsites++;
			}
		}
	}
	if ((rc = common_stage(r, ntop, err)) != 0)
		goto out;
	/* estimated step line on the bands */
	for (i = 0; i < r->nbands; i++) {
		sm_report_stage *rs = find_stage(r, r->bands[i].id);

		if (rs != NULL && rs->has_est)
			r->bands[i].est_allocated = rs->est_peak_allocated + r->est_baseline;
	}

	/* Arrays: name + stage; per-halo stages keep the shown instance. */
	json_array_foreach(arrays, i, a) {
		const char *name, *stage;
		int64_t inst;
		uint64_t rq, al;
		sm_report_stage *rs;
		sm_report_array *ra;

		snprintf(where, sizeof(where), "arrays[%zu]", i);
		if ((rc = sm__j_str(&d, a, where, "name", &name)) != 0 ||
		    (rc = check_id(&d, where, name)) != 0 ||
		    (rc = sm__j_str(&d, a, where, "stage", &stage)) != 0 ||
		    (rc = sm__j_i64(&d, a, where, "instance", &inst)) != 0 ||
		    (rc = sm__j_u64(&d, a, where, "requested", &rq)) != 0 ||
		    (rc = sm__j_u64(&d, a, where, "allocated", &al)) != 0)
			goto out;
		if ((rc = check_id(&d, where, stage)) != 0)
			goto out;
		rs = find_stage(r, stage);
		if (rs != NULL && rs->per_halo && inst != rs->instance)
			continue;
		ra = find_array(r, stage, name);
		if (ra == NULL) {
			if ((rc = grow((void **)&r->arrays, r->narrays, sizeof(*r->arrays), err)) != 0)
				goto out;
			ra = &r->arrays[r->narrays++];
			copy(ra->name, sizeof(ra->name), name);
			copy(ra->stage, sizeof(ra->stage), stage);
			ra->instance = inst;
		}
		if (!ra->has_meas || rq > ra->meas_requested) {
			ra->has_meas = 1;
			ra->meas_requested = rq;
			ra->meas_allocated = al;
			ra->instance = inst;
		}
	}
	rc = 0;
out:
	free(ms);
	return rc;
}

static void dirname_of(const char *path, char *buf, size_t len)
{
	const char *s = strrchr(path, '/');

	if (s == NULL)
		snprintf(buf, len, ".");
	else if (s == path)
		snprintf(buf, len, "/");
	else
		snprintf(buf, len, "%.*s", (int)(s - path), path);
}

/* doc's "run"."id" (and "started") into id / started; absent: "". SM_EFORMAT when malformed. */
static int run_stamp(json_t *doc, const char *path, char *id, size_t idlen, char *started,
		     size_t stlen, sm_error *err)
{
	json_t *run = json_object_get(doc, "run"), *v, *t;

	id[0] = started[0] = '\0';
	if (run == NULL || (v = json_object_get(run, "id")) == NULL)
		return 0;
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= idlen)
		return sm_error_set(err, SM_EFORMAT, "'%s': run.id is not a run id", path);
	snprintf(id, idlen, "%s", json_string_value(v));
	t = json_object_get(run, "started");
	if (json_is_string(t))
		snprintf(started, stlen, "%s", json_string_value(t));
	return 0;
}

/*
 * estimate.json and memory.json must come from one run: the same run id, or (files written before
 * run ids) neither has one. One line naming both files otherwise.
 */
static int same_run(sm_report *r, const struct docs *docs, sm_error *err)
{
	char eid[48], mid[48], est[32], mst[32];
	int rc;

	if ((rc = run_stamp(docs->est, r->estimate_path, eid, sizeof(eid), est, sizeof(est),
			    err)) != 0 ||
	    (rc = run_stamp(docs->mem, r->memory_path, mid, sizeof(mid), mst, sizeof(mst),
			    err)) != 0)
		return rc;
	if (strcmp(eid, mid) != 0)
		return sm_error_set(err, SM_EFORMAT, "'%s' (run %s) and '%s' (run %s) come from "
				    "different runs", r->estimate_path, eid[0] ? eid : "without id",
				    r->memory_path, mid[0] ? mid : "without id");
	snprintf(r->run_id, sizeof(r->run_id), "%s", mid);
	snprintf(r->run_started, sizeof(r->run_started), "%s", mst);
	return 0;
}

int sm_report_load_files(sm_report *r, const char *estimate_path, const char *memory_path,
			 sm_error *err)
{
	struct docs *docs = NULL;
	int rc;

	memset(r, 0, sizeof(*r));
	r->tolerance_pct = SM_REPORT_DEFAULT_TOLERANCE;
	r->abs_bound = SM_REPORT_ABS_BOUND;
	if (strlen(estimate_path) >= SM_PATH_MAX || strlen(memory_path) >= SM_PATH_MAX) {
		rc = sm_error_set(err, SM_EINVAL, "'%.200s...': path too long", estimate_path);
		goto fail;
	}
	copy(r->estimate_path, sizeof(r->estimate_path), estimate_path);
	copy(r->memory_path, sizeof(r->memory_path), memory_path);
	dirname_of(memory_path, r->rundir, sizeof(r->rundir));
	docs = calloc(1, sizeof(*docs));
	if (docs == NULL) {
		rc = sm_error_set(err, SM_ENOMEM, "cannot allocate the report");
		goto fail;
	}
	r->priv = docs;
	if ((rc = sm__j_load(estimate_path, "snapmem.estimate/1", &docs->est, err)) != 0 ||
	    (rc = sm__j_load(memory_path, "snapmem.memory/1", &docs->mem, err)) != 0 ||
	    (rc = same_run(r, docs, err)) != 0 ||
	    (rc = load_estimate(r, docs->est, err)) != 0 ||
	    (rc = load_memory(r, docs->mem, err)) != 0 ||
	    (rc = sm__report_mpi_load(r, docs->est, docs->mem, &docs->mpi, err)) != 0)
		goto fail;
	return 0;
fail:
	sm_report_release(r);
	return rc;
}

int sm_report_load(sm_report *r, const char *rundir, sm_error *err)
{
	char e[SM_PATH_MAX], m[SM_PATH_MAX];
	int rc;

	if ((size_t)snprintf(e, sizeof(e), "%s/estimate.json", rundir) >= sizeof(e) ||
	    (size_t)snprintf(m, sizeof(m), "%s/memory.json", rundir) >= sizeof(m)) {
		memset(r, 0, sizeof(*r));
		return sm_error_set(err, SM_EINVAL, "'%.200s...': path too long", rundir);
	}
	rc = sm_report_load_files(r, e, m, err);
	if (rc == 0)
		copy(r->rundir, sizeof(r->rundir), rundir);
	return rc;
}

void sm_report_release(sm_report *r)
{
	struct docs *docs;
	size_t i;

	if (r == NULL)
		return;
	docs = r->priv;
	if (docs != NULL) {
		json_decref(docs->est);
		json_decref(docs->mem);
		sm__report_mpi_free(docs->mpi);
		free(docs);
	}
	for (i = 0; i < r->nstages; i++)
		free(r->stages[i].halos);
	free(r->stages);
	free(r->arrays);
	free(r->findings);
	free(r->capacity);
	free(r->tl_t);
	free(r->tl_allocated);
	free(r->tl_resident);
	free(r->bands);
	memset(r, 0, sizeof(*r));
}

json_t *sm__report_doc_estimate(const sm_report *r)
{
	return r->priv != NULL ? ((struct docs *)r->priv)->est : NULL;
}

json_t *sm__report_doc_memory(const sm_report *r)
{
	return r->priv != NULL ? ((struct docs *)r->priv)->mem : NULL;
}

sm__report_mpi *sm__report_mpi_of(const sm_report *r)
{
	return r->priv != NULL ? ((struct docs *)r->priv)->mpi : NULL;
}

int sm__report_model_options(const sm_report *r, struct sm_model_options *o, sm_error *err)
{
	json_t *est = sm__report_doc_estimate(r), *opt;
	sm__jdoc d = {r->estimate_path, err};
	int64_t halos;
	double mass_min;
	int rc;

	sm_model_options_init(o);
	/* the spellings were checked when the estimate was loaded; the defaults stay otherwise */
	(void)sm_model_positions_parse(r->positions, &o->positions);
	(void)sm_model_select_parse(r->select, &o->select);
	(void)sm_model_temperature_parse(r->temperature, &o->temperature);
	if (r->stream_block > 0)
		o->stream_block = r->stream_block;
	if (est == NULL)
		return 0;
	if ((rc = sm__j_obj(&d, est, "", "options", &opt)) != 0 ||
	    (rc = sm__j_i64_opt(&d, opt, "options", "halos", -1, &halos)) != 0 ||
	    (rc = sm__j_num(&d, opt, "options", "mass_min", &mass_min)) != 0)
		return rc;
	o->halos = halos;
	o->mass_min = mass_min;
	return 0;
}
