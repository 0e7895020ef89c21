/*
 * File and line of frame addresses, with elfutils libdw: the running process's modules are reported
 * once (from /proc/PID/maps) when a document is written, and every distinct address is looked up
 * once (json.c caches per address): the function from the ELF symbol table (.symtab too, so static
 * functions are named without -rdynamic), file and line from the DWARF line table, and the chain of
 * inlined subroutines around the address (innermost first, each with the place it was inlined at)
 * from the DWARF scopes. Addresses are return addresses: the call instruction is at addr - 1.
 *
 * Nothing here runs while the program allocates; a module without DWARF gets function only; a
 * failure anywhere leaves the fields unknown (the caller falls back to dladdr). The strings handed
 * out belong to libdw and live until sm__sym_close.
 *
 * libdw is opened with dlopen when a document is first symbolised, not linked: a program that
 * links libsnapmem (and snapmem itself) does not carry libdw, libelf and their compressors in its
 * address space while it runs (a run under a tight RLIMIT_AS keeps the room it had); without
 * libdw.so.1 the caller falls back to dladdr.
 */
#include "profiler/prof-internal.h"

#include <dlfcn.h>
#include <dwarf.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <elfutils/libdwfl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct sm__symbolizer {
	Dwfl *dwfl;
};

/* the libdw functions used, from dlopen("libdw.so.1") */
static struct {
	__typeof__(dwfl_begin) *begin;
	__typeof__(dwfl_linux_proc_find_elf) *find_elf;
	__typeof__(dwfl_standard_find_debuginfo) *find_debuginfo;
	__typeof__(dwfl_linux_proc_report) *proc_report;
	__typeof__(dwfl_report_end) *report_end;
	__typeof__(dwfl_end) *end;
	__typeof__(dwfl_addrmodule) *addrmodule;
	__typeof__(dwfl_module_addrinfo) *addrinfo;
	__typeof__(dwfl_module_getsrc) *getsrc;
	__typeof__(dwfl_lineinfo) *lineinfo;
	__typeof__(dwfl_module_addrdie) *addrdie;
	__typeof__(dwarf_getscopes) *getscopes;
	__typeof__(dwarf_getsrcfiles) *getsrcfiles;
	__typeof__(dwarf_tag) *tag;
	__typeof__(dwarf_attr) *attr;
	__typeof__(dwarf_attr_integrate) *attr_integrate;
	__typeof__(dwarf_formudata) *formudata;
	__typeof__(dwarf_formstring) *formstring;
	__typeof__(dwarf_filesrc) *filesrc;
	__typeof__(dwfl_module_info) *modinfo;
	__typeof__(dwfl_module_build_id) *build_id;
} dw;
static int dw_state; /* 0 not tried, 1 loaded, -1 unavailable */
static pthread_mutex_t dw_lock = PTHREAD_MUTEX_INITIALIZER;

static char *debuginfo_path;
static Dwfl_Callbacks callbacks = { .debuginfo_path = &debuginfo_path };

/*
 * A module's separate debug file, from this machine only: libdwfl's standard search
 * (dwfl_standard_find_debuginfo), asked only when one of the files it looks for is there. Its last
 * resort for a module it finds none for is debuginfod: elfutils (0.188) then dlopens
 * libdebuginfod, and with it curl, GnuTLS, Kerberos and LDAP, whatever DEBUGINFOD_URLS says. A
 * profiled run's stacks pass through stripped libraries without a debug file (libjansson,
 * libcmocka, a user's numpy), and the first frame in one cost the document 15-20 ms: symbolize_s
 * of runs of the 1e6-cell mock 0.031-0.042 s in the 3 of 10 whose sites passed through
 * libjansson, 0.012-0.018 s in the others (0.011-0.027 s in 10 runs since). The candidates are
 * the standard search's with its default path (":.debug:/usr/lib/debug"): the build ID's file
 * under /usr/lib/debug/.build-id, and the debug link's name (or the file's name + ".debug") beside
 * the file, in its .debug directory and under /usr/lib/debug. A module without any has no debug
 * file: its functions come from its own symbol table, as before.
 */
#define DEBUG_ROOT "/usr/lib/debug"

static int readable(const char *path)
{
	return access(path, R_OK) == 0;
}

static int debug_file_here(Dwfl_Module *mod, const char *file_name, const char *debuglink)
{
	char path[4096], name[1024];
	const unsigned char *id = NULL;
	GElf_Addr vaddr;
	int n = dw.build_id(mod, &id, &vaddr);
	if (n > 1 && (size_t)n * 2 + sizeof(DEBUG_ROOT "/.build-id//.debug") < sizeof(path)) {
		size_t k = (size_t)snprintf(path, sizeof(path), DEBUG_ROOT "/.build-id/%02x/", id[0]);
		for (int i = 1; i < n; i++)
			k += (size_t)snprintf(path + k, sizeof(path) - k, "%02x", id[i]);
		snprintf(path + k, sizeof(path) - k, ".debug");
		if (readable(path))
			return 1;
	}
	if (file_name == NULL || file_name[0] == '\0')
		return 0;
	const char *slash = strrchr(file_name, '/');
	const char *dir = slash ? file_name : "."; /* its first dlen bytes */
	int dlen = slash ? (int)(slash - file_name) : 1;
	if (debuglink == NULL || debuglink[0] == '\0') {
		if ((size_t)snprintf(name, sizeof(name), "%s.debug", slash ? slash + 1 : file_name) >=
		    sizeof(name))
			return 0;
		debuglink = name;
	}
	if (debuglink[0] == '/')
		return readable(debuglink);
	/* beside the file, in its .debug directory, under DEBUG_ROOT (an absolute directory only) */
	static const char *const root[] = {"", "", DEBUG_ROOT}, *const sub[] = {"", "/.debug", ""};
	for (int i = 0; i < 3; i++)
		if ((root[i][0] == '\0' || dir[0] == '/') &&
		    (size_t)snprintf(path, sizeof(path), "%s%.*s%s/%s", root[i], dlen, dir, sub[i],
				     debuglink) < sizeof(path) &&
		    readable(path))
			return 1;
	return 0;
}

static int find_debuginfo_local(Dwfl_Module *mod, void **userdata, const char *modname,
				Dwarf_Addr base, const char *file_name, const char *debuglink_file,
				GElf_Word debuglink_crc, char **debuginfo_file_name)
{
	if (!debug_file_here(mod, file_name, debuglink_file)) {
		errno = ENOENT; /* what the standard search says when it finds none */
		return -1;
	}
	return dw.find_debuginfo(mod, userdata, modname, base, file_name, debuglink_file,
				 debuglink_crc, debuginfo_file_name);
}

static int dw_load(void)
{
	pthread_mutex_lock(&dw_lock);
	if (dw_state == 0) {
#ifdef __SANITIZE_ADDRESS__
		/* Under AddressSanitizer libdw stays unloaded: with it dlopen'ed, LeakSanitizer's
		 * tracer crashed (SIGSEGV in ScanRangeForPointers) at exit of `snapmem run` in
		 * test-badinput's zero-gas case, failing make sanitize. Sites keep dladdr's names. */
		void *h = NULL;
#else
		void *h = dlopen("libdw.so.1", RTLD_LAZY | RTLD_LOCAL);
#endif
		dw_state = -1;
#define DW(field, name) *(void **)&dw.field = h ? dlsym(h, name) : NULL
		DW(begin, "dwfl_begin");
		DW(find_elf, "dwfl_linux_proc_find_elf");
		DW(find_debuginfo, "dwfl_standard_find_debuginfo");
		DW(proc_report, "dwfl_linux_proc_report");
		DW(report_end, "dwfl_report_end");
		DW(end, "dwfl_end");
		DW(addrmodule, "dwfl_addrmodule");
		DW(addrinfo, "dwfl_module_addrinfo");
		DW(getsrc, "dwfl_module_getsrc");
		DW(lineinfo, "dwfl_lineinfo");
		DW(addrdie, "dwfl_module_addrdie");
		DW(getscopes, "dwarf_getscopes");
		DW(getsrcfiles, "dwarf_getsrcfiles");
		DW(tag, "dwarf_tag");
		DW(attr, "dwarf_attr");
		DW(attr_integrate, "dwarf_attr_integrate");
		DW(formudata, "dwarf_formudata");
		DW(formstring, "dwarf_formstring");
		DW(filesrc, "dwarf_filesrc");
		DW(modinfo, "dwfl_module_info");
		DW(build_id, "dwfl_module_build_id");
#undef DW
		void **f = (void **)&dw;
		int ok = h != NULL;
		for (size_t i = 0; i < sizeof(dw) / sizeof(void *); i++)
			ok = ok && f[i] != NULL;
		if (ok) {
			callbacks.find_elf = dw.find_elf;
			callbacks.find_debuginfo = find_debuginfo_local;
			dw_state = 1;
		} else if (h) {
			dlclose(h);
		}
	}
	int ok = dw_state == 1;
	pthread_mutex_unlock(&dw_lock);
	return ok;
}

/*
 * libdw maps every object of the process and reads their symbol and line tables: tens of MiB of
 * address space. Under an address-space limit (RLIMIT_AS) without that much room left, taking it
 * would push the allocator into failures of its own while the document is built (jemalloc's
 * statistics merge does not survive every one of them), so frames are then named by dladdr.
 */
#define DW_ROOM ((uint64_t)256 << 20)

static int room_for_libdw(void)
{
	struct rlimit rl;
	char buf[4096];
	if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return 1;
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	const char *v = strstr(buf, "\nVmSize:");
	if (!v)
		return 0;
	uint64_t size = strtoull(v + 8, NULL, 10) * 1024;
	return size + DW_ROOM <= (uint64_t)rl.rlim_cur;
}

sm__symbolizer *sm__sym_open(void)
{
	if (!room_for_libdw() || !dw_load())
		return NULL;
	sm__symbolizer *s = sm__raw_alloc(sizeof(*s));
	if (!s)
		return NULL;
	s->dwfl = dw.begin(&callbacks);
	if (!s->dwfl)
		goto fail;
	if (dw.proc_report(s->dwfl, getpid()) != 0 ||
	    dw.report_end(s->dwfl, NULL, NULL) != 0)
		goto fail_dwfl;
	return s;
fail_dwfl:
	dw.end(s->dwfl);
fail:
	sm__raw_free(s);
	return NULL;
}

void sm__sym_close(sm__symbolizer *s)
{
	if (!s)
		return;
	dw.end(s->dwfl);
	sm__raw_free(s);
}

static const char *die_name(Dwarf_Die *die)
{
	Dwarf_Attribute attr;
	const char *n = NULL;
	/* an inlined instance names itself through DW_AT_abstract_origin: integrate follows it */
	if (dw.attr_integrate(die, DW_AT_linkage_name, &attr))
		n = dw.formstring(&attr);
	if (!n && dw.attr_integrate(die, DW_AT_name, &attr))
		n = dw.formstring(&attr);
	return n;
}

static json_t *inlined_chain(Dwfl_Module *m, Dwarf_Addr pc)
{
	json_t *out = json_array();
	Dwarf_Addr bias = 0;
	Dwarf_Die *cu = dw.addrdie(m, pc, &bias);
	Dwarf_Die *scopes = NULL;
	Dwarf_Files *files = NULL;
	size_t nfiles = 0;
	if (!cu || !out)
		return out;
	int n = dw.getscopes(cu, pc - bias, &scopes);
	if (n <= 0)
		return out;
	if (dw.getsrcfiles(cu, &files, &nfiles) != 0)
		files = NULL;
	for (int i = 0; i < n; i++) {
		if (dw.tag(&scopes[i]) != DW_TAG_inlined_subroutine)
			continue;
		Dwarf_Attribute attr;
		Dwarf_Word fidx = 0, cline = 0;
		const char *cfile = NULL;
		if (dw.attr(&scopes[i], DW_AT_call_file, &attr) &&
		    dw.formudata(&attr, &fidx) == 0 && files && fidx < nfiles)
			cfile = dw.filesrc(files, fidx, NULL, NULL);
		if (dw.attr(&scopes[i], DW_AT_call_line, &attr))
			dw.formudata(&attr, &cline);
		const char *name = die_name(&scopes[i]);
		json_array_append_new(out, json_pack("{s:o,s:o,s:o}", "function",
						     name ? json_string(name) : json_null(),
						     "call_file", cfile ? json_string(cfile) : json_null(),
						     "call_line", cline ? json_integer((json_int_t)cline)
									: json_null()));
	}
	free(scopes);
	return out;
}

/*
 * Frames named from the symbol table alone, without file, line and inlined frames: those in the C
 * library (libc.so.6; libc-2.x.so before glibc 2.34) and the entry frames every stack ends in
 * below main and a thread's start routine (the program's _start, and the C library's again under
 * another name, e.g. a static build's). Their file and line are glibc's own sources
 * (../csu/libc-start.c:360 under every stack), and looking any of them up made libdw decompress
 * the C library's separate debug file when one is installed (libc6-dbg: ~3 MB of zlib in
 * .debug_info and .debug_line) at every document: symbolize_s of a profiled run of the 1e6-cell
 * mock 0.058-0.071 s, 0.017-0.019 s without. The frame of the caller, in the program or another
 * library, keeps its file and line.
 */
static int entry_frame(const char *f)
{
	static const char *const names[] = {"_start", "__libc_start_main", "__libc_start_main_impl",
					     "__libc_start_call_main", "start_thread", "clone",
					     "clone3", "__clone", "__clone3", "__clone_internal"};
	size_t n = strcspn(f, "@"); /* __libc_start_main@@GLIBC_2.34: the name before the version */
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == n && strncmp(f, names[i], n) == 0)
			return 1;
	return 0;
}

static int c_library(Dwfl_Module *m)
{
	const char *path = dw.modinfo(m, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
	const char *base = path ? strrchr(path, '/') : NULL;
	base = base ? base + 1 : path;
	return base && (strncmp(base, "libc.so", 7) == 0 || strncmp(base, "libc-", 5) == 0);
}

void sm__sym_lookup(sm__symbolizer *s, void *addr, const char **function, uint64_t *offset,
		    const char **file, int *line, void **inlined_json)
{
	*function = *file = NULL;
	*line = 0;
	*offset = 0;
	*inlined_json = NULL;
	if (!s || !addr)
		return;
	Dwarf_Addr pc = (Dwarf_Addr)(uintptr_t)addr - 1;
	Dwfl_Module *m = dw.addrmodule(s->dwfl, pc);
	if (!m)
		return;
	GElf_Off off = 0;
	GElf_Sym sym;
	*function = dw.addrinfo(m, pc, &off, &sym, NULL, NULL, NULL);
	if (*function)
		*offset = (uint64_t)off + 1; /* from the symbol to the return address */
	if ((*function && entry_frame(*function)) || c_library(m))
		return;
	Dwfl_Line *ln = dw.getsrc(m, pc);
	if (ln) {
		int l = 0;
		const char *f = dw.lineinfo(ln, NULL, &l, NULL, NULL, NULL);
		if (f && l > 0) {
			*file = f;
			*line = l;
		}
	}
	*inlined_json = inlined_chain(m, pc);
}
