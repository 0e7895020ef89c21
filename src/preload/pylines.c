/*
 * Python lines for `snapmem profile --python-lines`: when the measured process is a CPython
 * interpreter, the sites of large allocations (site_threshold_bytes and more: numpy arrays, big
 * lists, bytes) and of arrays tracked with snapmem.track also name the script's own lines, as
 * memray does: "line 47 of my script made this 48 MiB temporary".
 *
 * How: at such an allocation, on a thread that holds the GIL, the Python frames (innermost first)
 * are read through CPython's C API, found by name in the process (PyGILState_Check,
 * PyEval_GetFrame, PyFrame_GetLineNumber, PyFrame_GetCode, PyFrame_GetBack,
 * PyObject_GetAttrString, PyUnicode_AsUTF8, Py_DecRef): nothing of Python is linked. Each distinct
 * (function, file, line) is interned in a table mapped once (SM__PYFRAMES entries) and stands in
 * the site's stack as a fake frame address (SM__PYFRAME_TAG | index, never a user-space address),
 * placed after the two innermost native frames of a large allocation (the C function that
 * allocated, e.g. numpy's; none for a tracked array, whose native frames are ctypes'): so
 * two lines with the same native stack are two sites, and root first the stack reads
 * script frames, then the allocating C function. json.c names those addresses through
 * sm__pyframe_name. Only large allocations: a small one may be the interpreter building the very
 * frame it would read.
 */
#include "profiler/prof-internal.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define SM__PYFRAMES 16384
#define INDEX_CAP (2 * SM__PYFRAMES)
#define TAG ((uintptr_t)0xfff0000000000000ull)
#define PY_DEPTH 48

typedef struct pyframe {
	uint64_t hash;
	int line;
	char fn[96];
	char file[232];
} pyframe;

typedef void *pyobj;
static struct {
	int (*initialized)(void);
	int (*gil)(void);
	pyobj (*frame)(void);
	int (*lineno)(pyobj);
	pyobj (*code)(pyobj);
	pyobj (*back)(pyobj);
	pyobj (*getattr)(pyobj, const char *);
	const char *(*utf8)(pyobj);
	void (*decref)(pyobj);
	void (*fetch)(pyobj *, pyobj *, pyobj *);
	void (*restore)(pyobj, pyobj, pyobj);
} py;
static int state; /* 0 unresolved, 1 ready, -1 not a CPython process */
static pyframe *tab;
static uint32_t *tindex;
static size_t ntab;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static int resolve(void)
{
	if (state)
		return state > 0;
	state = -1;
#define SYM(field, name) *(void **)&py.field = dlsym(RTLD_DEFAULT, name)
	SYM(initialized, "Py_IsInitialized");
	SYM(gil, "PyGILState_Check");
	SYM(frame, "PyEval_GetFrame");
	SYM(lineno, "PyFrame_GetLineNumber");
	SYM(code, "PyFrame_GetCode");
	SYM(back, "PyFrame_GetBack");
	SYM(getattr, "PyObject_GetAttrString");
	SYM(utf8, "PyUnicode_AsUTF8");
	SYM(decref, "Py_DecRef");
	SYM(fetch, "PyErr_Fetch");
	SYM(restore, "PyErr_Restore");
#undef SYM
	if (!py.initialized || !py.gil || !py.frame || !py.lineno || !py.code || !py.back ||
	    !py.getattr || !py.utf8 || !py.decref || !py.fetch || !py.restore)
		return 0;
	size_t bytes = SM__PYFRAMES * sizeof(pyframe) + INDEX_CAP * sizeof(uint32_t);
	void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return 0;
	tab = m;
	tindex = (uint32_t *)((char *)m + SM__PYFRAMES * sizeof(pyframe));
	state = 1;
	return 1;
}

static uint64_t hash_str(uint64_t h, const char *s)
{
	for (; s && *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* index of (fn, file, line) in the table, -1 when full */
static long intern(const char *fn, const char *file, int line)
{
	uint64_t h = hash_str(hash_str(1469598103934665603ull ^ (uint64_t)line, fn), file);
	long ret = -1;
	pthread_mutex_lock(&mu);
	for (size_t i = h & (INDEX_CAP - 1);; i = (i + 1) & (INDEX_CAP - 1)) {
		uint32_t e = tindex[i];
		if (e == 0) {
			if (ntab >= SM__PYFRAMES)
				break;
			pyframe *f = &tab[ntab];
			f->hash = h;
			f->line = line;
			snprintf(f->fn, sizeof(f->fn), "%s", fn ? fn : "?");
			snprintf(f->file, sizeof(f->file), "%s", file ? file : "?");
			tindex[i] = (uint32_t)++ntab;
			ret = (long)ntab - 1;
			break;
		}
		pyframe *f = &tab[e - 1];
		if (f->hash == h && f->line == line && strcmp(f->fn, fn ? fn : "?") == 0 &&
		    strcmp(f->file, file ? file : "?") == 0) {
			ret = (long)e - 1;
			break;
		}
	}
	pthread_mutex_unlock(&mu);
	return ret;
}

static int frames_hook(void **frames, int n, int max, int keep)
{
	void *pf[PY_DEPTH];
	int k = 0, owned = 0;
	pyobj t = NULL, v = NULL, tb = NULL;
	if (!resolve() || !py.initialized() || !py.gil())
		return n;
	pyobj cur = py.frame(); /* borrowed */
	if (!cur)
		return n;
	py.fetch(&t, &v, &tb); /* a pending exception stays as it was */
	while (cur && k < PY_DEPTH) {
		int line = py.lineno(cur);
		pyobj code = py.code(cur);
		pyobj fo = code ? py.getattr(code, "co_filename") : NULL;
		pyobj no = code ? py.getattr(code, "co_name") : NULL;
		const char *file = fo ? py.utf8(fo) : NULL, *name = no ? py.utf8(no) : NULL;
		/* the markers module's own frames (snapmem.track) are not the program's */
		size_t fl = file ? strlen(file) : 0;
		long i = fl >= 20 && strcmp(file + fl - 20, "/snapmem/__init__.py") == 0
				 ? -1 : intern(name, file, line);
		if (fo)
			py.decref(fo);
		if (no)
			py.decref(no);
		if (code)
			py.decref(code);
		if (i >= 0)
			pf[k++] = (void *)(TAG | (uintptr_t)i);
		pyobj back = py.back(cur); /* new reference */
		if (owned)
			py.decref(cur);
		cur = back;
		owned = 1;
	}
	if (owned && cur)
		py.decref(cur);
	py.restore(t, v, tb);
	if (k == 0)
		return n;
	if (keep > n)
		keep = n;
	if (keep + k > max)
		k = max - keep;
	if (k <= 0)
		return n;
	memcpy(frames + keep, pf, (size_t)k * sizeof(void *));
	return keep + k;
}

static int name_hook(void *addr, const char **fn, const char **file, int *line)
{
	uintptr_t a = (uintptr_t)addr;
	if ((a & TAG) != TAG || !tab)
		return 0;
	size_t i = (size_t)(a & ~TAG);
	if (i >= ntab)
		return 0;
	*fn = tab[i].fn;
	*file = tab[i].file;
	*line = tab[i].line;
	return 1;
}

void sm__pylines_enable(void)
{
	sm__py_frames = frames_hook;
	sm__py_name = name_hook;
}
