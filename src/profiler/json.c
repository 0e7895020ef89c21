/*
 * The memory.json document ("snapmem.memory/1", docs/MODEL.md) built with jansson from the
 * profiler's tables, and written through the shared writer (sm_out_write: a temporary file, fsync,
 * rename, only over a regular file) so that a reader never sees a half-written file. Symbols are resolved here, once per distinct frame address: dladdr (object,
 * exported function, offset from it) and libdw (symbolize.c: unexported functions, file, line,
 * inlined frames); the time it took is profiler.symbolize_s.
 * A document written while stages are open closes them, marks them and marks the document
 * incomplete. The sampling guard is set throughout so that jansson's allocations are not sampled.
 */
#include "profiler/prof-internal.h"
#include "snapmem/outfile.h"

#include <dlfcn.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define U(x) json_integer((json_int_t)(x))

static json_t *je_pair(uint64_t a, uint64_t b)
{
	return json_pack("{s:o,s:o}", "begin", U(a), "end", U(b));
}

static json_t *options_json(const sm_prof_options *o)
{
	return json_pack("{s:b,s:b,s:b,s:o,s:o,s:i,s:f,s:o,s:o}", "jemalloc", o->jemalloc, "sites",
			 o->sites, "sample_untracked", o->sample_untracked, "site_threshold_bytes",
			 U(o->site_threshold_bytes), "sample_interval_bytes",
			 U(o->sample_interval_bytes), "max_frames", o->max_frames, "timeline_hz",
			 o->timeline_hz, "max_timeline_samples", U(o->max_timeline_samples),
			 "max_sites", U(o->max_sites));
}

static json_t *frame_json(void *addr, sm__symbolizer *sym)
{
	Dl_info di;
	char hex[32];
	snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)(uintptr_t)addr);
	json_t *fn = NULL, *obj = json_null();
	uint64_t off = 0;
	const char *dw_fn = NULL, *dw_file = NULL;
	int dw_line = 0;
	uint64_t dw_off = 0;
	void *inl = NULL;
	if (sm__py_name && sm__py_name(addr, &dw_fn, &dw_file, &dw_line))
		return json_pack("{s:s,s:i,s:s,s:n,s:s,s:i,s:b}", "function", dw_fn, "offset", 0,
				 "address", hex, "object", "file", dw_file, "line", dw_line, "python", 1);
	sm__sym_lookup(sym, addr, &dw_fn, &dw_off, &dw_file, &dw_line, &inl);
	/* a return address: look up the call instruction before it */
	if (dladdr((char *)addr - 1, &di) != 0) {
		if (di.dli_sname && di.dli_saddr) {
			fn = json_string(di.dli_sname);
			off = (uint64_t)((char *)addr - (char *)di.dli_saddr);
		} else if (di.dli_fbase) {
			off = (uint64_t)((char *)addr - (char *)di.dli_fbase);
		}
		if (di.dli_fname)
			obj = json_string(di.dli_fname);
	}
	if (!fn && dw_fn) {
		fn = json_string(dw_fn); /* a static or unexported function: named from .symtab */
		off = dw_off;
	}
	json_t *o = json_pack("{s:o,s:o,s:s,s:o,s:o,s:o}", "function", fn ? fn : json_null(), "offset",
			      U(off), "address", hex, "object", obj ? obj : json_null(), "file",
			      dw_file ? json_string(dw_file) : json_null(), "line",
			      dw_line > 0 ? json_integer(dw_line) : json_null());
	if (o && inl && json_array_size(inl) > 0)
		json_object_set_new(o, "inlined", inl);
	else
		json_decref(inl);
	return o;
}

/* Every distinct frame address of the site table, symbolised once: sites share most of their
 * frames (main, the pipeline's driver, ...) and dladdr scans symbol tables. */
typedef struct frame_cache {
	void **addr;   /* sorted, distinct */
	json_t **obj;
	size_t n;
} frame_cache;

static int cmp_addr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;
	return x < y ? -1 : x > y;
}

static void frames_build(sm_prof *p, frame_cache *fc)
{
	size_t total = 0;
	memset(fc, 0, sizeof(*fc));
	double t0 = sm__now();
	p->symbolize_s = 0;
	p->symbolizer = "dladdr";
	for (size_t i = 0; i < p->sites.n; i++)
		total += p->sites.v[i].nframes;
	if (!total)
		return;
	fc->addr = sm__raw_alloc(total * sizeof(void *));
	fc->obj = sm__raw_alloc(total * sizeof(json_t *));
	if (!fc->addr || !fc->obj) {
		sm__raw_free(fc->addr);
		sm__raw_free(fc->obj);
		memset(fc, 0, sizeof(*fc));
		return; /* frame_json per frame instead */
	}
	size_t k = 0;
	for (size_t i = 0; i < p->sites.n; i++)
		for (int f = 0; f < p->sites.v[i].nframes; f++)
			fc->addr[k++] = p->sites.v[i].frames[f];
	qsort(fc->addr, total, sizeof(void *), cmp_addr);
	size_t n = 0;
	for (size_t i = 0; i < total; i++)
		if (n == 0 || fc->addr[n - 1] != fc->addr[i])
			fc->addr[n++] = fc->addr[i];
	sm__symbolizer *sym = sm__sym_open();
	if (sym)
		p->symbolizer = "libdw";
	for (size_t i = 0; i < n; i++)
		fc->obj[i] = frame_json(fc->addr[i], sym);
	sm__sym_close(sym);
	fc->n = n;
	p->symbolize_s = sm__now() - t0;
}

/* A new reference to the frame's object. */
static json_t *frames_get(const frame_cache *fc, void *addr)
{
	void **hit = fc->n ? bsearch(&addr, fc->addr, fc->n, sizeof(void *), cmp_addr) : NULL;
	if (!hit || !fc->obj[hit - fc->addr])
		return frame_json(addr, NULL);
	return json_incref(fc->obj[hit - fc->addr]);
}

static void frames_free(frame_cache *fc)
{
	for (size_t i = 0; i < fc->n; i++)
		json_decref(fc->obj[i]);
	sm__raw_free(fc->addr);
	sm__raw_free(fc->obj);
	memset(fc, 0, sizeof(*fc));
}

static size_t self_bytes(const sm_prof *p)
{
	uint64_t s, d, l;
	size_t global;
	sm__sampling_counts(&s, &d, &l, &global);
	size_t b = sm__raw_usable((void *)p) + sm__raw_usable(p->stages) + sm__raw_usable(p->open) +
		   sm__raw_usable(p->arrays) + sm__raw_usable(p->amap) + sm__raw_usable(p->marks) +
		   sm__raw_usable(p->meta) + p->sites.map_bytes + p->tl.map_bytes;
	for (size_t i = 0; i < p->nmeta; i++)
		b += sm__raw_usable(p->meta[i].key) + sm__raw_usable(p->meta[i].json);
	if (p->sampling)
		b += global;
	sm__large_info li;
	sm__large_stats(&li);
	if (li.on)
		b += li.table_bytes + ((size_t)1 << SM__LARGE_FILTER_BITS);
	return b;
}

/* A stage's time by part: read, prefault and free as recorded, compute the rest of wall_s. */
static json_t *time_split(const sm__stage *st)
{
	double rest = st->wall;
	for (int k = 0; k < SM_PROF_NPARTS; k++)
		rest -= st->part_s[k];
	return json_pack("{s:f,s:f,s:f,s:f}", "read_s", st->part_s[SM_PROF_PART_READ],
			 "prefault_s", st->part_s[SM_PROF_PART_PREFAULT], "free_s",
			 st->part_s[SM_PROF_PART_FREE], "compute_s", rest > 0 ? rest : 0.0);
}

static json_t *stage_json(const sm_prof *p, const sm__stage *st)
{
	uint64_t unexplained = 0;
	if (p->je && st->alloc_peak > p->base.allocated + st->tracked_alloc_peak)
		unexplained = st->alloc_peak - p->base.allocated - st->tracked_alloc_peak;
	json_t *top = json_array();
	for (int i = 0; i < st->ntop; i++)
		json_array_append_new(top, json_pack("{s:i,s:o}", "site", (int)st->top[i].site,
						     "bytes", U(st->top[i].bytes)));
	json_t *alloc = json_pack("{s:o,s:o,s:o,s:o,s:o}", "begin", U(st->je_begin.allocated), "end",
				  U(st->je_end.allocated), "peak", U(st->alloc_peak), "others_net",
				  json_integer(st->others_net), "thread_peak",
				  U(p->je ? st->je_begin.allocated + (uint64_t)st->max_rel : 0));
	json_t *req = json_pack("{s:o,s:o,s:o}", "live_begin", U(st->req_begin), "live_end",
				U(st->req_end), "peak", U(st->req_peak));
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(st->id));
	json_object_set_new(o, "instance", json_integer(st->instance));
	json_object_set_new(o, "depth", json_integer(st->depth));
	json_object_set_new(o, "parent", json_integer(st->parent));
	json_object_set_new(o, "t_begin", json_real(st->t_begin));
	json_object_set_new(o, "wall_s", json_real(st->wall));
	json_object_set_new(o, "cpu_s", json_real(st->cpu));
	json_object_set_new(o, "time", time_split(st));
	json_object_set_new(o, "requested", req);
	json_object_set_new(o, "tracked_allocated_peak", U(st->tracked_alloc_peak));
	json_object_set_new(o, "allocated", alloc);
	json_object_set_new(o, "active", je_pair(st->je_begin.active, st->je_end.active));
	json_object_set_new(o, "resident", je_pair(st->je_begin.resident, st->je_end.resident));
	json_object_set_new(o, "mapped", je_pair(st->je_begin.mapped, st->je_end.mapped));
	json_object_set_new(o, "vm_rss", je_pair(st->rss_begin, st->rss_end));
	json_object_set_new(o, "vm_hwm", json_pack("{s:o}", "end", U(st->hwm_end)));
	json_object_set_new(o, "unexplained_bytes", U(unexplained));
	json_object_set_new(o, "top_sites", top);
	json_object_set_new(o, "closed_at_write", json_boolean(st->forced_closed));
	return o;
}

/* Under the lock: what is still live when the document is written (at the program's exit under
 * `snapmem profile`), by site, largest first: tracked arrays by name, untracked by sampled estimate. */
static json_t *leaks_json(const sm_prof *p)
{
	json_t *out = json_array();
	size_t *order = p->sites.n ? sm__raw_alloc(p->sites.n * sizeof(size_t)) : NULL;
	size_t k = 0;
	if (!order)
		return out;
	for (size_t i = 0; i < p->sites.n; i++) {
		if (!p->sites.v[i].live)
			continue;
		size_t j = k++;
		while (j > 0 && p->sites.v[order[j - 1]].live < p->sites.v[i].live) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = i;
	}
	for (size_t n = 0; n < k; n++) {
		const sm__site *s = &p->sites.v[order[n]];
		json_t *names = json_array();
		for (size_t a = 0; s->tracked && a < p->narrays; a++)
			if (p->arrays[a].live && p->arrays[a].site == (int)order[n])
				json_array_append_new(names, json_string(p->arrays[a].name));
		json_array_append_new(out, json_pack("{s:o,s:o,s:b,s:o}", "site", U(order[n]), "bytes",
						     U(s->live), "tracked", s->tracked, "arrays", names));
	}
	sm__raw_free(order);
	return out;
}

static json_t *build(sm_prof *p)
{
	if (p->nopen) {
		if (!p->incomplete) {
			char why[128];
			snprintf(why, sizeof(why), "stage '%s' still open when the document was written",
				 p->stages[p->open[p->nopen - 1]].id);
			sm_prof_mark_incomplete(p, why);
		}
		sm__prof_close_all(p);
	}
	json_t *doc = json_object();
	json_object_set_new(doc, "schema", json_string("snapmem.memory/1"));
	json_object_set_new(doc, "complete", json_boolean(!p->incomplete));
	json_object_set_new(doc, "incomplete_reason", p->incomplete && p->incomplete_reason
							      ? json_string(p->incomplete_reason)
							      : json_null());
	const char *ver = p->je ? sm__je_version() : NULL;
	json_object_set_new(doc, "allocator",
			    json_pack("{s:s,s:o,s:b,s:s}", "name", p->je ? "jemalloc" : "none",
				      "version", ver ? json_string(ver) : json_null(), "measured",
				      p->je, "untracked_sampling", p->untracked_sampling));
	{
		/* under `snapmem profile`: the large requests glibc serves (large.c), counted in
		 * every allocated/active/resident/mapped figure; null elsewhere */
		sm__large_info li;
		sm__large_stats(&li);
		json_object_set_new(json_object_get(doc, "allocator"), "large",
				    li.on ? json_pack("{s:s,s:o,s:o,s:o,s:o,s:o,s:o}", "allocator", "glibc",
						      "min_bytes", U(li.min_bytes), "blocks",
						      U(li.blocks), "bytes", U(li.bytes),
						      "live_blocks", U(li.live_blocks), "live_bytes",
						      U(li.live_bytes), "table_bytes",
						      U(li.table_bytes))
					  : json_null());
	}
	json_object_set_new(doc, "options", options_json(&p->o));
	json_object_set_new(doc, "baseline",
			    json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}", "allocated", U(p->base.allocated),
				      "active", U(p->base.active), "resident", U(p->base.resident),
				      "mapped", U(p->base.mapped), "vm_rss", U(p->base_rss), "vm_hwm",
				      U(p->base_hwm)));

	{
		uint64_t hwm, vpeak, pte, cpeak, cmax;
		int hp, hm, ok = sm__proc_peaks(&hwm, &vpeak, &pte) == 0;
		sm__proc_cgroup(&cpeak, &hp, &cmax, &hm);
		json_object_set_new(doc, "process",
				    json_pack("{s:o,s:o,s:o,s:o,s:o,s:s}",
					      "vm_hwm", ok ? U(hwm) : json_null(),
					      "vm_peak", ok ? U(vpeak) : json_null(),
					      "vm_pte", ok ? U(pte) : json_null(),
					      "cgroup_memory_peak", hp ? U(cpeak) : json_null(),
					      "cgroup_memory_max", hm ? U(cmax) : json_null(),
					      "note", "the whole process when this document was written "
					      "(/proc/self/status VmHWM, VmPeak, VmPTE; cgroup v2 memory.peak "
					      "and memory.max of its cgroup, null where absent or unlimited; "
					      "the cgroup also counts the page cache of the files read)"));
	}

	pthread_mutex_lock(&sm__lock);
	json_t *stages = json_array();
	for (size_t i = 0; i < p->nstages; i++)
		json_array_append_new(stages, stage_json(p, &p->stages[i]));
	json_object_set_new(doc, "stages", stages);

	json_t *arrays = json_array();
	for (size_t i = 0; i < p->narrays; i++) {
		const sm__array *a = &p->arrays[i];
		json_t *o = json_object();
		json_object_set_new(o, "name", json_string(a->name));
		json_object_set_new(o, "stage", json_string(a->stage >= 0 ? p->stages[a->stage].id : ""));
		json_object_set_new(o, "instance", json_integer(a->instance));
		json_object_set_new(o, "requested", U(a->requested));
		json_object_set_new(o, "allocated", U(a->allocated));
		json_object_set_new(o, "t_alloc", json_real(a->t_alloc));
		json_object_set_new(o, "t_free", a->live ? json_null() : json_real(a->t_free));
		json_object_set_new(o, "freed_in", !a->live && a->freed_stage >= 0
							   ? json_string(p->stages[a->freed_stage].id)
							   : json_null());
		json_object_set_new(o, "freed_in_instance",
				    !a->live && a->freed_stage >= 0
					    ? json_integer(p->stages[a->freed_stage].instance)
					    : json_null());
		json_object_set_new(o, "site", a->site >= 0 ? json_integer(a->site) : json_null());
		json_array_append_new(arrays, o);
	}
	json_object_set_new(doc, "arrays", arrays);

	json_t *sites = json_array();
	frame_cache fc;
	frames_build(p, &fc);
	for (size_t i = 0; i < p->sites.n; i++) {
		const sm__site *s = &p->sites.v[i];
		json_t *frames = json_array();
		for (int f = 0; f < s->nframes; f++)
			json_array_append_new(frames, frames_get(&fc, s->frames[f]));
		json_array_append_new(sites, json_pack("{s:o,s:o,s:o,s:o,s:o,s:b,s:o}", "id", U(i),
						       "bytes", U(s->bytes), "count", U(s->count),
						       "live_bytes", U(s->live), "peak_bytes",
						       U(i < p->peak_n ? p->peak_live[i] : 0),
						       "tracked", s->tracked, "frames", frames));
	}
	frames_free(&fc);
	json_object_set_new(doc, "sites", sites);
	json_object_set_new(doc, "leaks", leaks_json(p));
	uint64_t samples, dropped, live;
	size_t global;
	sm__sampling_counts(&samples, &dropped, &live, &global);
	if (!p->sampling)
		samples = dropped = 0;
	json_t *prof = json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}", "self_bytes", U(self_bytes(p)), "sites",
				 U(p->sites.n), "samples", U(samples), "unwind_failures",
				 U(p->sites.unwind_failures), "samples_dropped", U(dropped),
				 "sites_dropped", U(p->sites.dropped));
	json_object_set_new(prof, "symbolizer", json_string(p->symbolizer));
	json_object_set_new(prof, "symbolize_s", json_real(p->symbolize_s));
	json_object_set_new(prof, "peak_live_estimate", U(p->peak_level));
	json_object_set_new(prof, "peak_t", json_real(p->peak_t));
	json_object_set_new(prof, "boundaries", U(p->boundaries));
	json_object_set_new(prof, "boundary_s", json_real(p->boundary_s));
	json_object_set_new(prof, "boundary_readings", U(p->readings));
	json_object_set_new(prof, "boundary_reused", U(p->reused));
	json_object_set_new(doc, "profiler", prof);

	json_t *marks = json_array();
	for (size_t i = 0; i < p->nmarks; i++) {
		const sm__stage *st = &p->stages[p->marks[i].stage];
		json_array_append_new(marks, json_pack("{s:f,s:s,s:o,s:s}", "t", p->marks[i].t,
						       "stage", st->id, "instance",
						       json_integer(st->instance), "event",
						       p->marks[i].begin ? "begin" : "end"));
	}
	pthread_mutex_unlock(&sm__lock);

	json_t *t = json_array(), *al = json_array(), *rs = json_array();
	double rate = 0, tl_cpu = 0;
	uint64_t ticks = 0, fresh = 0;
	if (p->tl_on) {
		pthread_mutex_lock(&p->tl.mu);
		for (size_t i = 0; i < p->tl.n; i++) {
			json_array_append_new(t, json_real(p->tl.t[i]));
			json_array_append_new(al, U(p->tl.allocated[i]));
			json_array_append_new(rs, U(p->tl.resident[i]));
		}
		rate = 1.0 / p->tl.period;
		tl_cpu = p->tl.cpu_s;
		ticks = p->tl.ticks;
		fresh = p->tl.fresh_reads;
		pthread_mutex_unlock(&p->tl.mu);
	}
	json_object_set_new(doc, "timeline",
			    json_pack("{s:f,s:o,s:o,s:o,s:o,s:f,s:o,s:o}", "rate_hz", rate, "t", t,
				      "allocated", al, "resident", rs, "marks", marks,
				      "sampler_cpu_s", tl_cpu, "sampler_ticks", U(ticks),
				      "sampler_stats_reads", U(fresh)));

	for (size_t i = 0; i < p->nmeta; i++) {
		json_t *v = json_loads(p->meta[i].json, 0, NULL);
		if (v)
			json_object_set_new(doc, p->meta[i].key, v);
	}
	return doc;
}

char *sm_prof_json(sm_prof *p)
{
	if (!p)
		return NULL;
	int *g = sm__guard();
	int saved = *g;
	*g = 1;
	char *text = NULL;
	json_t *doc = build(p);
	if (doc) {
		char *s = json_dumps(doc, JSON_INDENT(1) | JSON_COMPACT | JSON_REAL_PRECISION(9));
		/* hand the caller memory from plain malloc, which it frees with free() */
		if (s) {
			size_t n = strlen(s) + 1;
			*g = saved;
			text = malloc(n);
			*g = 1;
			if (text)
				memcpy(text, s, n);
			free(s);
		}
		json_decref(doc);
	}
	*g = saved;
	return text;
}

int sm_prof_write_json(sm_prof *p, const char *path, sm_error *err)
{
	char *text;
	size_t len;
	int rc;

	if (!p)
		return sm_error_set(err, SM_EINVAL, "'%s': no profiler to write", path ? path : "");
	text = sm_prof_json(p);
	if (!text)
		return sm_error_set(err, SM_ENOMEM, "'%s': cannot build the memory document", path);
	/* the document and its final newline, through the shared writer (outfile.h) */
	len = strlen(text);
	text[len] = '\n';
	rc = sm_out_write(path, text, len + 1, NULL, 0, err);
	free(text);
	return rc;
}
