/*
 * Measurement-only reports (include/snapmem/measured.h): a profiled run directory's memory.json
 * and memory.PID.json documents rendered without an estimate, as a table, Markdown, JSON or HTML
 * (with an inline-SVG flame graph of the peak and a timeline plot, no script); stacks.folded; and
 * the diff of two runs.
 *
 * Figures, all read from the documents (nothing recomputed from guesses):
 *   - the allocated peak of a process is the largest stages[].allocated.peak (the stage "process"
 *     spans a `snapmem profile` run), shown absolute and above the baseline; resident is the
 *     largest vm_hwm.end; when the peak happened is profiler.peak_t, and the stage at the peak is
 *     the deepest stage open at that moment;
 *   - the sites at the peak are sites[].peak_bytes (the profiler's snapshot at its highest live
 *     estimate), leaks the document's "leaks" (live when it was written: at exit);
 *   - a site is named by its innermost frame outside snapmem itself (the profiler's and the
 *     preloaded library's own frames are skipped), as "function (file:line)" when DWARF knew the
 *     line, "function (object)" otherwise, the address when nothing is known.
 * With several processes (--follow-fork) each is shown, and their peaks are added up: an upper
 * bound of the process tree's peak, since the peaks need not coincide.
 */
#include "snapmem/measured.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "report/internal.h"
#include "snapmem/units.h"

#define SCHEMA "snapmem.memory/1"

typedef struct proc {
	json_t *doc;
	char path[SM_PATH_MAX];
	long pid;              /* from the file name; 0 for memory.json */
} proc;

struct sm_measured {
	char dir[SM_PATH_MAX];
	proc *v;
	size_t n;
};

/* ---- reading ------------------------------------------------------------------------------ */

static uint64_t ju(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

static uint64_t ju2(json_t *o, const char *k1, const char *k2)
{
	return ju(json_object_get(o, k1), k2);
}

static double jd(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_number(v) ? json_number_value(v) : 0;
}

static const char *js(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int cmp_proc(const void *a, const void *b)
{
	const proc *x = a, *y = b;
	return x->pid < y->pid ? -1 : x->pid > y->pid;
}

/* The document at path (name == NULL) or at m->dir/name. */
static int load_one(sm_measured *m, const char *name, long pid, sm_error *err)
{
	proc *v = realloc(m->v, (m->n + 1) * sizeof(*v));
	if (!v)
		return sm_error_set(err, SM_ENOMEM, "'%s': cannot allocate the run's documents", m->dir);
	m->v = v;
	proc *p = &m->v[m->n];
	memset(p, 0, sizeof(*p));
	if ((size_t)(name ? snprintf(p->path, sizeof(p->path), "%s/%s", m->dir, name)
			  : snprintf(p->path, sizeof(p->path), "%s", m->dir)) >= sizeof(p->path))
		return sm_error_set(err, SM_EINVAL, "'%s': path too long", m->dir);
	p->pid = pid;
	int rc = sm__j_load(p->path, SCHEMA, &p->doc, err);
	if (rc != 0)
		return rc;
	if (!json_is_array(json_object_get(p->doc, "stages")) ||
	    !json_is_array(json_object_get(p->doc, "sites"))) {
		json_decref(p->doc);
		return sm_error_set(err, SM_EFORMAT, "'%s': stages and sites must be arrays", p->path);
	}
	m->n++;
	return 0;
}

int sm_measured_load(const char *dir, sm_measured **out, sm_error *err)
{
	int rc = 0;
	DIR *d = NULL;
	struct stat st;
	sm_measured *m = calloc(1, sizeof(*m));
	*out = NULL;
	if (!m)
		return sm_error_set(err, SM_ENOMEM, "'%s': cannot allocate the run", dir);
	snprintf(m->dir, sizeof(m->dir), "%s", dir);
	/* a memory.json file itself (heaptrack and memray compare files): that document alone */
	if (stat(dir, &st) == 0 && S_ISREG(st.st_mode)) {
		rc = load_one(m, NULL, 0, err);
		if (rc != 0)
			goto fail;
		*out = m;
		return 0;
	}
	rc = load_one(m, "memory.json", 0, err);
	if (rc != 0)
		goto fail;
	d = opendir(dir);
	if (!d) {
		rc = sm_error_set(err, SM_EIO, "'%s': cannot list: %s", dir, strerror(errno));
		goto fail;
	}
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		char *end;
		if (strncmp(e->d_name, "memory.", 7) != 0)
			continue;
		long pid = strtol(e->d_name + 7, &end, 10);
		if (end == e->d_name + 7 || pid <= 0 || strcmp(end, ".json") != 0)
			continue;
		rc = load_one(m, e->d_name, pid, err);
		if (rc != 0)
			goto fail;
	}
	closedir(d);
	d = NULL;
	if (m->n > 2)
		qsort(m->v + 1, m->n - 1, sizeof(proc), cmp_proc);
	*out = m;
	return 0;
fail:
	if (d)
		closedir(d);
	sm_measured_free(m);
	return rc;
}

void sm_measured_free(sm_measured *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		json_decref(m->v[i].doc);
	free(m->v);
	free(m);
}

/* ---- facts of one process ------------------------------------------------------------------ */

typedef struct facts {
	uint64_t base_alloc, alloc_peak, above, hwm, requested_peak;
	double peak_t, wall;
	const char *peak_stage;
	int64_t peak_instance;
	int complete, measured;
	const char *reason;
	long pid;
	char argv[512];
	int have_exit, exit_status, exit_signal;
	const char *exit_via; /* "_exit", "_Exit": the process skipped its exit handlers */
} facts;

static void argv_text(json_t *doc, char *buf, size_t len)
{
	json_t *argv = json_object_get(json_object_get(doc, "command"), "argv");
	size_t i, off = 0;
	json_t *a;
	buf[0] = '\0';
	json_array_foreach(argv, i, a) {
		if (!json_is_string(a) || off + 2 >= len)
			break;
		int n = snprintf(buf + off, len - off, "%s%s", i ? " " : "", json_string_value(a));
		if (n < 0 || (size_t)n >= len - off) {
			buf[len - 1] = '\0';
			break;
		}
		off += (size_t)n;
	}
}

static void get_facts(const proc *p, facts *f)
{
	json_t *doc = p->doc, *stages = json_object_get(doc, "stages"), *st;
	size_t i;
	int best_depth = -1;
	memset(f, 0, sizeof(*f));
	f->pid = p->pid;
	json_t *cmd = json_object_get(doc, "command");
	if (!f->pid && json_is_integer(json_object_get(cmd, "pid")))
		f->pid = (long)json_integer_value(json_object_get(cmd, "pid"));
	argv_text(doc, f->argv, sizeof(f->argv));
	f->complete = json_is_true(json_object_get(doc, "complete"));
	f->reason = js(doc, "incomplete_reason");
	f->measured = json_is_true(json_object_get(json_object_get(doc, "allocator"), "measured"));
	f->base_alloc = ju2(doc, "baseline", "allocated");
	f->peak_t = jd(json_object_get(doc, "profiler"), "peak_t");
	json_t *ex = json_object_get(doc, "exit");
	if (json_is_object(ex)) {
		f->have_exit = 1;
		f->exit_status = (int)json_integer_value(json_object_get(ex, "status"));
		f->exit_signal = (int)json_integer_value(json_object_get(ex, "signal"));
		f->exit_via = js(ex, "via");
	}
	json_array_foreach(stages, i, st) {
		uint64_t a = ju2(st, "allocated", "peak"), h = ju2(st, "vm_hwm", "end"),
			 r = ju2(st, "requested", "peak");
		double t0 = jd(st, "t_begin"), w = jd(st, "wall_s");
		int depth = (int)json_integer_value(json_object_get(st, "depth"));
		if (a > f->alloc_peak)
			f->alloc_peak = a;
		if (h > f->hwm)
			f->hwm = h;
		if (r > f->requested_peak)
			f->requested_peak = r;
		if (t0 + w > f->wall)
			f->wall = t0 + w;
		if (f->peak_t >= t0 && f->peak_t <= t0 + w && depth > best_depth) {
			best_depth = depth;
			f->peak_stage = js(st, "id");
			f->peak_instance = json_integer_value(json_object_get(st, "instance"));
		}
	}
	f->above = f->alloc_peak > f->base_alloc ? f->alloc_peak - f->base_alloc : 0;
}

/* ---- frames and sites ---------------------------------------------------------------------- */

static const char *base_name(const char *path)
{
	const char *s = path ? strrchr(path, '/') : NULL;
	return s ? s + 1 : path;
}

/* snapmem's own frames: the profiler's entry points, the preloaded library, the malloc layer */
static int own_frame(json_t *fr)
{
	const char *fn = js(fr, "function"), *obj = base_name(js(fr, "object"));
	if (obj && (strncmp(obj, "libsnapmem-preload.so", 21) == 0 ||
		    strncmp(obj, "libsnapmem.so", 13) == 0))
		return 1;
	if (fn && (strncmp(fn, "sm_prof_", 8) == 0 || strncmp(fn, "op_", 3) == 0 ||
		   strcmp(fn, "alloc_common") == 0 || strncmp(fn, "sm__", 4) == 0))
		return 1;
	return 0;
}

static void frame_name(json_t *fr, char *buf, size_t len)
{
	const char *fn = js(fr, "function"), *obj = base_name(js(fr, "object"));
	if (json_is_true(json_object_get(fr, "python")))
		snprintf(buf, len, "%s:%s:%lld", fn ? fn : "?", base_name(js(fr, "file")),
			 (long long)json_integer_value(json_object_get(fr, "line")));
	else if (fn)
		snprintf(buf, len, "%s", fn);
	else if (obj)
		snprintf(buf, len, "%s+0x%llx", obj, (unsigned long long)ju(fr, "offset"));
	else
		snprintf(buf, len, "%s", js(fr, "address") ? js(fr, "address") : "?");
	for (char *c = buf; *c; c++)
		if (*c == ';' || *c == ' ' || *c == '\n')
			*c = '_'; /* folded-stack separators */
}

static void site_where(json_t *site, char *buf, size_t len)
{
	json_t *frames = json_object_get(site, "frames"), *fr, *pick = NULL;
	size_t i;
	json_array_foreach(frames, i, fr) {
		if (json_is_true(json_object_get(fr, "python"))) {
			pick = fr; /* the script's own line (--python-lines) says most */
			break;
		}
	}
	json_array_foreach(frames, i, fr) {
		if ((pick && json_is_true(json_object_get(pick, "python"))) || i > 6)
			break; /* deeper than the allocating code: keep the first named frame */
		if (own_frame(fr))
			continue;
		if (!pick)
			pick = fr;
		if (js(fr, "file")) {
			pick = fr;
			break;
		}
		if (js(fr, "function") && !js(pick, "function"))
			pick = fr;
	}
	if (!pick) {
		snprintf(buf, len, "(no frames)");
		return;
	}
	char name[200];
	frame_name(pick, name, sizeof(name));
	if (json_is_true(json_object_get(pick, "python")))
		snprintf(buf, len, "%s", name);
	else if (js(pick, "file"))
		snprintf(buf, len, "%s (%s:%lld)", name, js(pick, "file"),
			 (long long)json_integer_value(json_object_get(pick, "line")));
	else if (js(pick, "object"))
		snprintf(buf, len, "%s (%s)", name, base_name(js(pick, "object")));
	else
		snprintf(buf, len, "%s", name);
}

typedef struct ranked {
	json_t *site;
	uint64_t bytes;
} ranked;

static int cmp_ranked(const void *a, const void *b)
{
	const ranked *x = a, *y = b;
	return x->bytes < y->bytes ? 1 : x->bytes > y->bytes ? -1 : 0;
}

/* Sites by a byte key, largest first; n set to how many have a nonzero value. */
static ranked *rank_sites(json_t *doc, const char *key, size_t *n)
{
	json_t *sites = json_object_get(doc, "sites"), *s;
	size_t i, k = 0;
	ranked *r = calloc(json_array_size(sites) + 1, sizeof(*r));
	*n = 0;
	if (!r)
		return NULL;
	json_array_foreach(sites, i, s) {
		uint64_t b = ju(s, key);
		if (b) {
			r[k].site = s;
			r[k].bytes = b;
			k++;
		}
	}
	qsort(r, k, sizeof(*r), cmp_ranked);
	*n = k;
	return r;
}

/* ---- stacks.folded ------------------------------------------------------------------------- */

/* One process's folded lines, with an optional root frame ("pid_123"). */
static void folded_proc(FILE *f, json_t *doc, const char *root)
{
	json_t *sites = json_object_get(doc, "sites"), *s;
	size_t i;
	json_array_foreach(sites, i, s) {
		uint64_t b = ju(s, "peak_bytes");
		json_t *frames = json_object_get(s, "frames");
		if (!b)
			continue;
		int first = 1;
		if (root) {
			fputs(root, f);
			first = 0;
		}
		for (size_t k = json_array_size(frames); k-- > 0;) {
			json_t *fr = json_array_get(frames, k);
			char name[256];
			if (own_frame(fr))
				continue;
			frame_name(fr, name, sizeof(name));
			fprintf(f, "%s%s", first ? "" : ";", name);
			first = 0;
		}
		if (first)
			fputs("[unknown]", f);
		fprintf(f, " %llu\n", (unsigned long long)b);
	}
}

int sm_measured_folded(const sm_measured *m, char **out, sm_error *err)
{
	size_t len = 0;
	*out = NULL;
	FILE *f = open_memstream(out, &len);
	if (!f)
		return sm_error_set(err, SM_ENOMEM, "cannot allocate the folded stacks");
	for (size_t i = 0; i < m->n; i++) {
		char root[48];
		snprintf(root, sizeof(root), "pid_%ld", m->v[i].pid);
		folded_proc(f, m->v[i].doc, m->n > 1 ? root : NULL);
	}
	if (fclose(f) != 0 || !*out) {
		free(*out);
		*out = NULL;
		return sm_error_set(err, SM_ENOMEM, "cannot allocate the folded stacks");
	}
	return 0;
}

/* ---- the flame graph (inline SVG) ------------------------------------------------------------ */

typedef struct fnode {
	char *name;
	uint64_t bytes;
	struct fnode *kids;   /* first child */
	struct fnode *next;   /* sibling */
} fnode;

static fnode *fchild(fnode *n, const char *name)
{
	for (fnode *k = n->kids; k; k = k->next)
		if (strcmp(k->name, name) == 0)
			return k;
	fnode *k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	k->name = strdup(name);
	if (!k->name) {
		free(k);
		return NULL;
	}
	k->next = n->kids;
	n->kids = k;
	return k;
}

static void ffree(fnode *n)
{
	while (n) {
		fnode *next = n->next;
		ffree(n->kids);
		free(n->name);
		free(n);
		n = next;
	}
}

static int fdepth(const fnode *n)
{
	int d = 0;
	for (const fnode *k = n->kids; k; k = k->next) {
		int x = fdepth(k);
		if (x > d)
			d = x;
	}
	return d + 1;
}

static void fbuild(fnode *root, json_t *doc)
{
	json_t *sites = json_object_get(doc, "sites"), *s;
	size_t i;
	json_array_foreach(sites, i, s) {
		uint64_t b = ju(s, "peak_bytes");
		json_t *frames = json_object_get(s, "frames");
		if (!b)
			continue;
		fnode *n = root;
		root->bytes += b;
		for (size_t k = json_array_size(frames); k-- > 0 && n;) {
			json_t *fr = json_array_get(frames, k);
			char name[256];
			if (own_frame(fr))
				continue;
			frame_name(fr, name, sizeof(name));
			n = fchild(n, name);
			if (n)
				n->bytes += b;
		}
	}
}

#define FG_W 1200.0
#define FG_ROW 17

static void fdraw(FILE *f, const fnode *n, double x, double w, int depth, int rows, uint64_t total)
{
	if (w < 0.3)
		return;
	double y = (rows - 1 - depth) * FG_ROW;
	unsigned h = 0;
	for (const char *c = n->name; *c; c++)
		h = h * 31 + (unsigned char)*c;
	char iec[32];
	fprintf(f, "<g><title>");
	sm__html_escape(f, n->name);
	fprintf(f, ": %s (%.1f%%)</title><rect x=\"%.1f\" y=\"%.0f\" width=\"%.1f\" height=\"%d\" "
		   "fill=\"rgb(%u,%u,%u)\"/>",
		sm__iec(n->bytes, iec, sizeof(iec)), total ? 100.0 * (double)n->bytes / (double)total : 0,
		x, y, w, FG_ROW - 1, 205 + h % 50, 80 + (h >> 8) % 120, 40 + (h >> 16) % 50);
	int chars = (int)(w / 7.0);
	if (chars >= 3) {
		char label[256];
		snprintf(label, sizeof(label), "%s", n->name);
		if ((int)strlen(label) > chars) {
			label[chars > 2 ? chars - 2 : 0] = '\0';
			strcat(label, "..");
		}
		fprintf(f, "<text x=\"%.1f\" y=\"%.0f\">", x + 3, y + FG_ROW - 5);
		sm__html_escape(f, label);
		fputs("</text>", f);
	}
	fputs("</g>\n", f);
	double cx = x;
	for (const fnode *k = n->kids; k; k = k->next) {
		double kw = n->bytes ? w * (double)k->bytes / (double)n->bytes : 0;
		fdraw(f, k, cx, kw, depth + 1, rows, total);
		cx += kw;
	}
}

static void flamegraph(FILE *f, const sm_measured *m)
{
	fnode root = { .name = "all" };
	for (size_t i = 0; i < m->n; i++) {
		if (m->n > 1) {
			char pid[48];
			snprintf(pid, sizeof(pid), "pid_%ld", m->v[i].pid);
			fnode *p = fchild(&root, pid);
			if (!p)
				continue;
			fnode tmp = { .name = pid };
			fbuild(&tmp, m->v[i].doc);
			p->bytes += tmp.bytes;
			root.bytes += tmp.bytes;
			/* hand the subtree over */
			fnode *last = p->kids;
			if (!last) {
				p->kids = tmp.kids;
			} else {
				while (last->next)
					last = last->next;
				last->next = tmp.kids;
			}
		} else {
			fbuild(&root, m->v[i].doc);
		}
	}
	if (!root.bytes) {
		fputs("<p>No allocation site was live at the peak.</p>\n", f);
		ffree(root.kids);
		return;
	}
	int rows = fdepth(&root);
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%d\" "
		   "font-family=\"monospace\" font-size=\"11\" role=\"img\" "
		   "aria-label=\"flame graph of the bytes live at the peak\">\n",
		FG_W, rows * FG_ROW);
	fdraw(f, &root, 0, FG_W, 0, rows, root.bytes);
	fputs("</svg>\n", f);
	ffree(root.kids);
}

/* ---- the timeline (inline SVG) --------------------------------------------------------------- */

static void timeline_svg(FILE *f, json_t *doc)
{
	json_t *tl = json_object_get(doc, "timeline");
	json_t *t = json_object_get(tl, "t"), *al = json_object_get(tl, "allocated"),
	       *rs = json_object_get(tl, "resident");
	size_t n = json_array_size(t);
	if (n < 2 || json_array_size(al) != n || json_array_size(rs) != n) {
		fputs("<p>No timeline.</p>\n", f);
		return;
	}
	double tmax = json_number_value(json_array_get(t, n - 1));
	uint64_t ymax = 1;
	for (size_t i = 0; i < n; i++) {
		uint64_t a = (uint64_t)json_integer_value(json_array_get(al, i)),
			 r = (uint64_t)json_integer_value(json_array_get(rs, i));
		if (a > ymax)
			ymax = a;
		if (r > ymax)
			ymax = r;
	}
	const double W = 900, H = 220;
	char iec[32];
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
		   "font-family=\"sans-serif\" font-size=\"11\">\n"
		   "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"#fafafa\" stroke=\"#ccc\"/>\n",
		W, H + 20, W, H);
	const char *names[2] = { "allocated", "resident" }, *colors[2] = { "#c33", "#36c" };
	json_t *series[2] = { al, rs };
	for (int s = 0; s < 2; s++) {
		fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", colors[s]);
		for (size_t i = 0; i < n; i++) {
			double x = tmax > 0 ? W * json_number_value(json_array_get(t, i)) / tmax : 0;
			double y = H - H * (double)json_integer_value(json_array_get(series[s], i)) /
					       (double)ymax;
			fprintf(f, "%.1f,%.1f ", x, y);
		}
		fprintf(f, "\"/>\n<text x=\"%d\" y=\"%.0f\" fill=\"%s\">%s</text>\n", 10 + 90 * s, H + 15,
			colors[s], names[s]);
	}
	fprintf(f, "<text x=\"%.0f\" y=\"12\" text-anchor=\"end\">%s</text>\n", W - 5,
		sm__iec(ymax, iec, sizeof(iec)));
	fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">%.3f s</text>\n</svg>\n", W - 5,
		H + 15, tmax);
}

/* ---- rendering ------------------------------------------------------------------------------- */

enum { TOP_SITES = 10, TOP_LEAKS = 10, MAX_STAGE_ROWS = 200 };

static const char *yes_no(int v)
{
	return v ? "yes" : "no";
}

static void exit_text(const facts *fa, char *buf, size_t len)
{
	if (!fa->have_exit)
		snprintf(buf, len, "not recorded");
	else if (fa->exit_signal)
		snprintf(buf, len, "killed by signal %d (exit status %d)", fa->exit_signal,
			 128 + fa->exit_signal);
	else if (fa->exit_via)
		snprintf(buf, len, "exit status %d (through %s)", fa->exit_status, fa->exit_via);
	else
		snprintf(buf, len, "exit status %d", fa->exit_status);
}

/* Markdown (md = 1) or a plain table (md = 0). */
static void render_text(FILE *f, const sm_measured *m, int md)
{
	char a[32], b[32], c[32], where[512];
	uint64_t sum_peak = 0, sum_above = 0, sum_hwm = 0;
	for (size_t pi = 0; pi < m->n; pi++) {
		const proc *p = &m->v[pi];
		facts fa;
		get_facts(p, &fa);
		sum_peak += fa.alloc_peak;
		sum_above += fa.above;
		sum_hwm += fa.hwm;
		if (pi == 0)
			fprintf(f, md ? "# snapmem profile: " : "snapmem profile: ");
		else
			fprintf(f, md ? "\n## process %ld: " : "\nprocess %ld: ", fa.pid);
		if (md)
			sm__md_escape(f, fa.argv[0] ? fa.argv : p->path);
		else
			fputs(fa.argv[0] ? fa.argv : p->path, f);
		fputs("\n\n", f);
		exit_text(&fa, where, sizeof(where));
		fprintf(f, "%sdocument: %s, complete: %s%s%s%s; %s; pid %ld\n", md ? "- " : "",
			p->path, yes_no(fa.complete), fa.complete ? "" : " (",
			fa.complete ? "" : (fa.reason ? fa.reason : "no reason given"),
			fa.complete ? "" : ")", where, fa.pid);
		/* written by snapmem profile for a program that wrote none: no figures to show */
		if (!fa.complete && json_array_size(json_object_get(p->doc, "stages")) == 0) {
			fprintf(f, "%sno figures: the profiler in this process wrote no document\n",
				md ? "- " : "");
			continue;
		}
		if (!fa.measured)
			fprintf(f, "%sallocator figures not measured (no jemalloc)\n", md ? "- " : "");
		fprintf(f, "%sallocated peak: %s (%s above the baseline of %s), at %.3f s in stage '%s'\n",
			md ? "- " : "", sm__iec(fa.alloc_peak, a, sizeof(a)),
			sm__iec(fa.above, b, sizeof(b)), sm__iec(fa.base_alloc, c, sizeof(c)), fa.peak_t,
			fa.peak_stage ? fa.peak_stage : "?");
		fprintf(f, "%sresident high-water mark (VmHWM): %s; tracked arrays' requested peak: %s; "
			   "wall %.3f s\n",
			md ? "- " : "", sm__iec(fa.hwm, a, sizeof(a)),
			sm__iec(fa.requested_peak, b, sizeof(b)), fa.wall);
		json_t *prof = json_object_get(p->doc, "profiler");
		fprintf(f, "%sprofiler: own memory %s, %llu sites, %llu samples, symbols by %s in %.3f s\n",
			md ? "- " : "", sm__iec(ju(prof, "self_bytes"), a, sizeof(a)),
			(unsigned long long)ju(prof, "sites"), (unsigned long long)ju(prof, "samples"),
			js(prof, "symbolizer") ? js(prof, "symbolizer") : "?", jd(prof, "symbolize_s"));

		fprintf(f, md ? "\n### Stages\n\n| stage | instance | depth | requested peak | allocated peak "
				"| above baseline | VmHWM at end | wall s |\n|---|---:|---:|---:|---:|---:|---:|---:|\n"
			      : "\nstages:\n  %-28s %8s %5s %14s %14s %14s %14s %9s\n",
			"stage", "instance", "depth", "requested pk", "allocated pk", "above base",
			"VmHWM end", "wall s");
		json_t *stages = json_object_get(p->doc, "stages"), *st;
		size_t i;
		json_array_foreach(stages, i, st) {
			if (i >= MAX_STAGE_ROWS) {
				fprintf(f, "%s(%zu more stages in the document)\n", md ? "\n" : "  ",
					json_array_size(stages) - i);
				break;
			}
			uint64_t pk = ju2(st, "allocated", "peak");
			char d[32];
			const char *id = js(st, "id") ? js(st, "id") : "?";
			if (md) {
				fputs("| ", f);
				sm__md_escape(f, id);
				fprintf(f, " | %lld | %lld | %s | %s | %s | %s | %.4f |\n",
					(long long)json_integer_value(json_object_get(st, "instance")),
					(long long)json_integer_value(json_object_get(st, "depth")),
					sm__iec(ju2(st, "requested", "peak"), a, sizeof(a)),
					sm__iec(pk, b, sizeof(b)),
					sm__iec(pk > fa.base_alloc ? pk - fa.base_alloc : 0, c, sizeof(c)),
					sm__iec(ju2(st, "vm_hwm", "end"), d, sizeof(d)), jd(st, "wall_s"));
			} else {
				fprintf(f, "  %-28.28s %8lld %5lld %14s %14s %14s %14s %9.4f\n", id,
					(long long)json_integer_value(json_object_get(st, "instance")),
					(long long)json_integer_value(json_object_get(st, "depth")),
					sm__iec(ju2(st, "requested", "peak"), a, sizeof(a)),
					sm__iec(pk, b, sizeof(b)),
					sm__iec(pk > fa.base_alloc ? pk - fa.base_alloc : 0, c, sizeof(c)),
					sm__iec(ju2(st, "vm_hwm", "end"), d, sizeof(d)), jd(st, "wall_s"));
			}
		}

		size_t n;
		ranked *r = rank_sites(p->doc, "peak_bytes", &n);
		fprintf(f, md ? "\n### Sites live at the peak\n\n| bytes | kind | where |\n|---:|---|---|\n"
			      : "\nsites live at the peak:\n");
		for (size_t k = 0; r && k < n && k < TOP_SITES; k++) {
			site_where(r[k].site, where, sizeof(where));
			const char *kind = json_is_true(json_object_get(r[k].site, "tracked"))
						   ? "tracked" : "sampled";
			if (md) {
				fprintf(f, "| %s | %s | ", sm__iec(r[k].bytes, a, sizeof(a)), kind);
				sm__md_escape(f, where);
				fputs(" |\n", f);
			} else {
				fprintf(f, "  %12s  %-8s %s\n", sm__iec(r[k].bytes, a, sizeof(a)), kind,
					where);
			}
		}
		if (!n)
			fprintf(f, "%snone recorded\n", md ? "\n" : "  ");
		free(r);

		json_t *leaks = json_object_get(p->doc, "leaks"), *lk;
		fprintf(f, md ? "\n### Leaks (live at exit)\n\n| bytes | where | arrays |\n|---:|---|---|\n"
			      : "\nleaks (live at exit):\n");
		json_array_foreach(leaks, i, lk) {
			if (i >= TOP_LEAKS)
				break;
			json_t *site = json_array_get(json_object_get(p->doc, "sites"),
						      ju(lk, "site"));
			site_where(site, where, sizeof(where));
			char names[256] = "";
			json_t *nm;
			size_t j;
			json_array_foreach(json_object_get(lk, "arrays"), j, nm) {
				size_t o = strlen(names);
				snprintf(names + o, sizeof(names) - o, "%s%s", o ? ", " : "",
					 json_string_value(nm));
			}
			if (md) {
				fprintf(f, "| %s | ", sm__iec(ju(lk, "bytes"), a, sizeof(a)));
				sm__md_escape(f, where);
				fputs(" | ", f);
				sm__md_escape(f, names);
				fputs(" |\n", f);
			} else {
				fprintf(f, "  %12s  %s%s%s\n", sm__iec(ju(lk, "bytes"), a, sizeof(a)), where,
					names[0] ? "  arrays: " : "", names);
			}
		}
		if (json_array_size(leaks) == 0)
			fprintf(f, "%snone\n", md ? "\n" : "  ");
	}
	if (m->n > 1)
		fprintf(f, "\n%s%zu processes measured: peaks added up %s allocated (%s above their "
			   "baselines), VmHWM %s (an upper bound: the peaks need not coincide)%s\n",
			md ? "**" : "", m->n, sm__iec(sum_peak, a, sizeof(a)),
			sm__iec(sum_above, b, sizeof(b)), sm__iec(sum_hwm, c, sizeof(c)),
			md ? "**" : "");
}

static void render_html(FILE *f, const sm_measured *m)
{
	char a[32], b[32], c[32], where[512];
	facts fa0;
	get_facts(&m->v[0], &fa0);
	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>snapmem profile: ",
	      f);
	sm__html_escape(f, fa0.argv);
	fputs("</title>\n<style>body{font-family:sans-serif;max-width:1240px;margin:1em auto;}"
	      "table{border-collapse:collapse;}td,th{border:1px solid #ccc;padding:2px 6px;}"
	      "td.n{text-align:right;font-variant-numeric:tabular-nums;}"
	      "svg text{pointer-events:none;}.bad{color:#b00;}</style>\n</head><body>\n", f);
	for (size_t pi = 0; pi < m->n; pi++) {
		const proc *p = &m->v[pi];
		facts fa;
		get_facts(p, &fa);
		fprintf(f, pi ? "<h2>process %ld: " : "<h1>snapmem profile: ", fa.pid);
		sm__html_escape(f, fa.argv[0] ? fa.argv : p->path);
		fputs(pi ? "</h2>\n<ul>\n" : "</h1>\n<ul>\n", f);
		exit_text(&fa, where, sizeof(where));
		fputs("<li>document: ", f);
		sm__html_escape(f, p->path);
		fprintf(f, ", complete: %s", fa.complete ? "yes" : "<b class=\"bad\">no</b>");
		if (!fa.complete) {
			fputs(" (", f);
			sm__html_escape(f, fa.reason ? fa.reason : "no reason given");
			fputs(")", f);
		}
		fprintf(f, "; %s; pid %ld</li>\n", where, fa.pid);
		fprintf(f, "<li>allocated peak: <b>%s</b> (%s above the baseline of %s), at %.3f s in "
			   "stage '",
			sm__iec(fa.alloc_peak, a, sizeof(a)), sm__iec(fa.above, b, sizeof(b)),
			sm__iec(fa.base_alloc, c, sizeof(c)), fa.peak_t);
		sm__html_escape(f, fa.peak_stage ? fa.peak_stage : "?");
		fprintf(f, "'</li>\n<li>resident high-water mark (VmHWM): %s; tracked arrays' requested "
			   "peak: %s; wall %.3f s</li>\n</ul>\n",
			sm__iec(fa.hwm, a, sizeof(a)), sm__iec(fa.requested_peak, b, sizeof(b)), fa.wall);

		fputs("<h3>Stages</h3>\n<table><tr><th>stage</th><th>instance</th><th>depth</th>"
		      "<th>requested peak</th><th>allocated peak</th><th>above baseline</th>"
		      "<th>VmHWM at end</th><th>wall s</th></tr>\n", f);
		json_t *st;
		size_t i;
		json_array_foreach(json_object_get(p->doc, "stages"), i, st) {
			if (i >= MAX_STAGE_ROWS)
				break;
			uint64_t pk = ju2(st, "allocated", "peak");
			char d[32];
			fputs("<tr><td>", f);
			sm__html_escape(f, js(st, "id") ? js(st, "id") : "?");
			fprintf(f, "</td><td class=\"n\">%lld</td><td class=\"n\">%lld</td><td class=\"n\">%s"
				   "</td><td class=\"n\">%s</td><td class=\"n\">%s</td><td class=\"n\">%s"
				   "</td><td class=\"n\">%.4f</td></tr>\n",
				(long long)json_integer_value(json_object_get(st, "instance")),
				(long long)json_integer_value(json_object_get(st, "depth")),
				sm__iec(ju2(st, "requested", "peak"), a, sizeof(a)), sm__iec(pk, b, sizeof(b)),
				sm__iec(pk > fa.base_alloc ? pk - fa.base_alloc : 0, c, sizeof(c)),
				sm__iec(ju2(st, "vm_hwm", "end"), d, sizeof(d)), jd(st, "wall_s"));
		}
		fputs("</table>\n<h3>Sites live at the peak</h3>\n<table><tr><th>bytes</th><th>kind</th>"
		      "<th>where</th></tr>\n", f);
		size_t n;
		ranked *r = rank_sites(p->doc, "peak_bytes", &n);
		for (size_t k = 0; r && k < n && k < TOP_SITES; k++) {
			site_where(r[k].site, where, sizeof(where));
			fprintf(f, "<tr><td class=\"n\">%s</td><td>%s</td><td>", sm__iec(r[k].bytes, a, sizeof(a)),
				json_is_true(json_object_get(r[k].site, "tracked")) ? "tracked" : "sampled");
			sm__html_escape(f, where);
			fputs("</td></tr>\n", f);
		}
		free(r);
		fputs("</table>\n<h3>Leaks (live at exit)</h3>\n<table><tr><th>bytes</th><th>where</th>"
		      "</tr>\n", f);
		json_t *lk;
		json_array_foreach(json_object_get(p->doc, "leaks"), i, lk) {
			if (i >= TOP_LEAKS)
				break;
			site_where(json_array_get(json_object_get(p->doc, "sites"), ju(lk, "site")), where,
				   sizeof(where));
			fprintf(f, "<tr><td class=\"n\">%s</td><td>", sm__iec(ju(lk, "bytes"), a, sizeof(a)));
			sm__html_escape(f, where);
			fputs("</td></tr>\n", f);
		}
		fputs("</table>\n<h3>Timeline</h3>\n", f);
		timeline_svg(f, p->doc);
	}
	fputs("<h2>Flame graph of the bytes live at the peak</h2>\n<p>Width is bytes live at the "
	      "process's peak (stacks.folded holds the same stacks); hover a frame for its figure.</p>\n",
	      f);
	flamegraph(f, m);
	fputs("</body></html>\n", f);
}

static json_t *render_json(const sm_measured *m)
{
	json_t *procs = json_array();
	char where[512];
	for (size_t pi = 0; pi < m->n; pi++) {
		facts fa;
		get_facts(&m->v[pi], &fa);
		json_t *top = json_array();
		size_t n;
		ranked *r = rank_sites(m->v[pi].doc, "peak_bytes", &n);
		for (size_t k = 0; r && k < n && k < TOP_SITES; k++) {
			site_where(r[k].site, where, sizeof(where));
			json_array_append_new(top, json_pack("{s:O,s:I,s:s}", "site",
							     json_object_get(r[k].site, "id"), "bytes",
							     (json_int_t)r[k].bytes, "where", where));
		}
		free(r);
		json_array_append_new(
			procs,
			json_pack("{s:s,s:I,s:s,s:b,s:o,s:I,s:I,s:I,s:I,s:f,s:o,s:o,s:O}", "document",
				  m->v[pi].path, "pid", (json_int_t)fa.pid, "command", fa.argv,
				  "complete", fa.complete, "incomplete_reason",
				  fa.reason ? json_string(fa.reason) : json_null(), "baseline_allocated",
				  (json_int_t)fa.base_alloc, "allocated_peak", (json_int_t)fa.alloc_peak,
				  "allocated_above_baseline", (json_int_t)fa.above, "vm_hwm",
				  (json_int_t)fa.hwm, "peak_t", fa.peak_t, "peak_stage",
				  fa.peak_stage ? json_string(fa.peak_stage) : json_null(), "top_sites", top,
				  "leaks", json_object_get(m->v[pi].doc, "leaks") ? json_object_get(m->v[pi].doc, "leaks") : json_null()));
	}
	return json_pack("{s:s,s:s,s:o}", "schema", "snapmem.measured/1", "dir", m->dir, "processes",
			 procs);
}

int sm_measured_render(const sm_measured *m, sm_report_format fmt, char **out, sm_error *err)
{
	size_t len = 0;
	*out = NULL;
	if (fmt == SM_REPORT_JSON) {
		json_t *j = render_json(m);
		*out = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
		json_decref(j);
		if (!*out)
			return sm_error_set(err, SM_ENOMEM, "cannot build the report");
		return 0;
	}
	FILE *f = open_memstream(out, &len);
	if (!f)
		return sm_error_set(err, SM_ENOMEM, "cannot build the report");
	if (fmt == SM_REPORT_HTML)
		render_html(f, m);
	else
		render_text(f, m, fmt == SM_REPORT_MARKDOWN);
	if (fclose(f) != 0 || !*out) {
		free(*out);
		*out = NULL;
		return sm_error_set(err, SM_ENOMEM, "cannot build the report");
	}
	return 0;
}

int sm_measured_write_files(const char *dir, sm_error *err)
{
	sm_measured *m = NULL;
	char *md = NULL, *html = NULL, *folded = NULL, path[SM_PATH_MAX];
	int rc = sm_measured_load(dir, &m, err);
	if (rc != 0)
		return rc;
	if ((rc = sm_measured_render(m, SM_REPORT_MARKDOWN, &md, err)) != 0 ||
	    (rc = sm_measured_render(m, SM_REPORT_HTML, &html, err)) != 0 ||
	    (rc = sm_measured_folded(m, &folded, err)) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/report.md", dir);
	if ((rc = sm_report_write_text(path, md, err)) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/report.html", dir);
	if ((rc = sm_report_write_text(path, html, err)) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/stacks.folded", dir);
	rc = sm_report_write_text(path, folded, err);
out:
	free(md);
	free(html);
	free(folded);
	sm_measured_free(m);
	return rc;
}

/* ---- diff ------------------------------------------------------------------------------------ */

typedef struct dstage {
	const char *id;
	int64_t instance;
	uint64_t req, above, hwm;
} dstage;

static void stage_fig(json_t *st, uint64_t base, dstage *d)
{
	uint64_t pk = ju2(st, "allocated", "peak");
	d->id = js(st, "id") ? js(st, "id") : "?";
	d->instance = json_integer_value(json_object_get(st, "instance"));
	d->req = ju2(st, "requested", "peak");
	d->above = pk > base ? pk - base : 0;
	d->hwm = ju2(st, "vm_hwm", "end");
}

static json_t *find_stage(json_t *doc, const char *id, int64_t instance)
{
	json_t *st;
	size_t i;
	json_array_foreach(json_object_get(doc, "stages"), i, st)
		if (js(st, "id") && strcmp(js(st, "id"), id) == 0 &&
		    json_integer_value(json_object_get(st, "instance")) == instance)
			return st;
	return NULL;
}

static double growth_pct(uint64_t a, uint64_t b)
{
	if (a == 0)
		return b ? INFINITY : 0;
	return 100.0 * ((double)b - (double)a) / (double)a;
}

/* bytes per site "where" in doc (sum over sites sharing it), key "peak_bytes" */
static uint64_t where_bytes(json_t *doc, const char *want)
{
	json_t *s;
	size_t i;
	uint64_t t = 0;
	char where[512];
	json_array_foreach(json_object_get(doc, "sites"), i, s) {
		if (!ju(s, "peak_bytes"))
			continue;
		site_where(s, where, sizeof(where));
		if (strcmp(where, want) == 0)
			t += ju(s, "peak_bytes");
	}
	return t;
}

int sm_measured_diff(const sm_measured *ma, const sm_measured *mb, double budget, sm_report_format fmt,
		     char **out, size_t *nover, sm_error *err)
{
	size_t len = 0;
	json_t *A = ma->v[0].doc, *B = mb->v[0].doc, *st, *jstages = NULL, *jsites = NULL;
	uint64_t baseA = ju2(A, "baseline", "allocated"), baseB = ju2(B, "baseline", "allocated");
	int measured = json_is_true(json_object_get(json_object_get(A, "allocator"), "measured")) &&
		       json_is_true(json_object_get(json_object_get(B, "allocator"), "measured"));
	size_t i;
	char a1[32], a2[32], a3[32], b1[32], b2[32], b3[32];
	*out = NULL;
	*nover = 0;
	if (fmt != SM_REPORT_TABLE && fmt != SM_REPORT_MARKDOWN && fmt != SM_REPORT_JSON)
		return sm_error_set(err, SM_EINVAL, "diff: format must be table, markdown or json");
	FILE *f = NULL;
	int md = fmt == SM_REPORT_MARKDOWN;
	if (fmt == SM_REPORT_JSON) {
		jstages = json_array();
		jsites = json_array();
	} else {
		f = open_memstream(out, &len);
		if (!f)
			return sm_error_set(err, SM_ENOMEM, "cannot build the diff");
		fprintf(f, md ? "# snapmem diff\n\n- A: %s\n- B: %s\n" : "snapmem diff\n  A: %s\n  B: %s\n",
			ma->dir, mb->dir);
		if (budget >= 0)
			fprintf(f, "%sbudget: %.2f%% growth of a stage's %s (and more than %s)\n",
				md ? "- " : "  ", budget, measured ? "allocated peak above the baseline" : "requested peak",
				sm__iec(SM_REPORT_ABS_BOUND, a1, sizeof(a1)));
		fprintf(f, md ? "\n## Stages\n\n| stage | instance | requested A | requested B | allocated A | "
				"allocated B | growth | VmHWM A | VmHWM B | verdict |\n"
				"|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
			      : "\nstages (allocated = peak above the baseline):\n  %-24s %8s %12s %12s %12s "
				"%12s %9s %12s %12s  %s\n",
			"stage", "instance", "requested A", "requested B", "allocated A", "allocated B",
			"growth", "VmHWM A", "VmHWM B", "verdict");
	}
	json_array_foreach(json_object_get(A, "stages"), i, st) {
		dstage da, db;
		stage_fig(st, baseA, &da);
		json_t *sb = find_stage(B, da.id, da.instance);
		if (!sb || find_stage(A, da.id, da.instance) != st)
			continue; /* only in A, or a repeat: the first occurrence is compared */
		stage_fig(sb, baseB, &db);
		uint64_t fa = measured ? da.above : da.req, fb = measured ? db.above : db.req;
		double g = growth_pct(fa, fb);
		int over = budget >= 0 && fb > fa && fb - fa > SM_REPORT_ABS_BOUND && g > budget;
		*nover += (size_t)over;
		const char *verdict = budget < 0 ? "" : over ? "OVER" : "ok";
		if (jstages) {
			json_array_append_new(jstages, json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:s}",
				"stage", da.id, "instance", (json_int_t)da.instance, "requested_a",
				(json_int_t)da.req, "requested_b", (json_int_t)db.req, "allocated_a",
				(json_int_t)da.above, "allocated_b", (json_int_t)db.above, "vm_hwm_a",
				(json_int_t)da.hwm, "vm_hwm_b", (json_int_t)db.hwm, "growth_pct",
				isinf(g) ? 1e308 : g, "verdict", budget < 0 ? "n/a" : over ? "over" : "ok"));
			continue;
		}
		char gt[32];
		if (isinf(g))
			snprintf(gt, sizeof(gt), "new");
		else
			snprintf(gt, sizeof(gt), "%+.2f%%", g);
		if (md) {
			fputs("| ", f);
			sm__md_escape(f, da.id);
			fprintf(f, " | %lld | %s | %s | %s | %s | %s | %s | %s | %s |\n",
				(long long)da.instance, sm__iec(da.req, a1, sizeof(a1)),
				sm__iec(db.req, b1, sizeof(b1)), sm__iec(da.above, a2, sizeof(a2)),
				sm__iec(db.above, b2, sizeof(b2)), gt, sm__iec(da.hwm, a3, sizeof(a3)),
				sm__iec(db.hwm, b3, sizeof(b3)), verdict);
		} else {
			fprintf(f, "  %-24.24s %8lld %12s %12s %12s %12s %9s %12s %12s  %s\n", da.id,
				(long long)da.instance, sm__iec(da.req, a1, sizeof(a1)),
				sm__iec(db.req, b1, sizeof(b1)), sm__iec(da.above, a2, sizeof(a2)),
				sm__iec(db.above, b2, sizeof(b2)), gt, sm__iec(da.hwm, a3, sizeof(a3)),
				sm__iec(db.hwm, b3, sizeof(b3)), verdict);
		}
	}
	/* sites: every place live at either peak, by name */
	if (f)
		fprintf(f, md ? "\n## Sites live at the peak\n\n| where | A | B | growth |\n|---|---:|---:|---:|\n"
			      : "\nsites live at the peak:\n  %12s %12s %9s  %s\n", "A", "B", "growth", "where");
	json_t *seen = json_object();
	for (int side = 0; side < 2; side++) {
		json_t *doc = side ? B : A, *s;
		size_t k;
		char where[512];
		json_array_foreach(json_object_get(doc, "sites"), k, s) {
			if (!ju(s, "peak_bytes"))
				continue;
			site_where(s, where, sizeof(where));
			if (json_object_get(seen, where))
				continue;
			json_object_set_new(seen, where, json_true());
			uint64_t wa = where_bytes(A, where), wb = where_bytes(B, where);
			double g = growth_pct(wa, wb);
			if (jsites) {
				json_array_append_new(jsites, json_pack("{s:s,s:I,s:I,s:f}", "where", where,
					"bytes_a", (json_int_t)wa, "bytes_b", (json_int_t)wb, "growth_pct",
					isinf(g) ? 1e308 : g));
				continue;
			}
			char gt[32];
			if (isinf(g))
				snprintf(gt, sizeof(gt), "new");
			else
				snprintf(gt, sizeof(gt), "%+.2f%%", g);
			if (md) {
				fputs("| ", f);
				sm__md_escape(f, where);
				fprintf(f, " | %s | %s | %s |\n", sm__iec(wa, a1, sizeof(a1)),
					sm__iec(wb, b1, sizeof(b1)), gt);
			} else {
				fprintf(f, "  %12s %12s %9s  %s\n", sm__iec(wa, a1, sizeof(a1)),
					sm__iec(wb, b1, sizeof(b1)), gt, where);
			}
		}
	}
	json_decref(seen);
	if (jstages) {
		json_t *doc = json_pack("{s:s,s:s,s:s,s:o,s:I,s:o,s:o}", "schema", "snapmem.diff/1", "a",
					ma->dir, "b", mb->dir, "budget_pct",
					budget >= 0 ? json_real(budget) : json_null(), "over_budget",
					(json_int_t)*nover, "stages", jstages, "sites", jsites);
		*out = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
		json_decref(doc);
		return *out ? 0 : sm_error_set(err, SM_ENOMEM, "cannot build the diff");
	}
	if (budget >= 0)
		fprintf(f, "\n%s%zu stage%s over the budget\n", md ? "" : "", *nover,
			*nover == 1 ? "" : "s");
	if (fclose(f) != 0 || !*out) {
		free(*out);
		*out = NULL;
		return sm_error_set(err, SM_ENOMEM, "cannot build the diff");
	}
	return 0;
}
