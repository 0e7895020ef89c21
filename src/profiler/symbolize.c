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
 */
#include "profiler/prof-internal.h"

#include <dwarf.h>
#include <elfutils/libdwfl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct sm__symbolizer {
	Dwfl *dwfl;
};

static char *debuginfo_path;
static const Dwfl_Callbacks callbacks = {
	.find_elf = dwfl_linux_proc_find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
	.debuginfo_path = &debuginfo_path,
};

sm__symbolizer *sm__sym_open(void)
{
	sm__symbolizer *s = sm__raw_alloc(sizeof(*s));
	if (!s)
		return NULL;
	s->dwfl = dwfl_begin(&callbacks);
	if (!s->dwfl)
		goto fail;
	if (dwfl_linux_proc_report(s->dwfl, getpid()) != 0 ||
	    dwfl_report_end(s->dwfl, NULL, NULL) != 0)
		goto fail_dwfl;
	return s;
fail_dwfl:
	dwfl_end(s->dwfl);
fail:
	sm__raw_free(s);
	return NULL;
}

void sm__sym_close(sm__symbolizer *s)
{
	if (!s)
		return;
	dwfl_end(s->dwfl);
	sm__raw_free(s);
}

static const char *die_name(Dwarf_Die *die)
{
	Dwarf_Attribute attr;
	const char *n = NULL;
	/* an inlined instance names itself through DW_AT_abstract_origin: integrate follows it */
	if (dwarf_attr_integrate(die, DW_AT_linkage_name, &attr))
		n = dwarf_formstring(&attr);
	if (!n && dwarf_attr_integrate(die, DW_AT_name, &attr))
		n = dwarf_formstring(&attr);
	return n;
}

static json_t *inlined_chain(Dwfl_Module *m, Dwarf_Addr pc)
{
	json_t *out = json_array();
	Dwarf_Addr bias = 0;
	Dwarf_Die *cu = dwfl_module_addrdie(m, pc, &bias);
	Dwarf_Die *scopes = NULL;
	Dwarf_Files *files = NULL;
	size_t nfiles = 0;
	if (!cu || !out)
		return out;
	int n = dwarf_getscopes(cu, pc - bias, &scopes);
	if (n <= 0)
		return out;
	if (dwarf_getsrcfiles(cu, &files, &nfiles) != 0)
		files = NULL;
	for (int i = 0; i < n; i++) {
		if (dwarf_tag(&scopes[i]) != DW_TAG_inlined_subroutine)
			continue;
		Dwarf_Attribute attr;
		Dwarf_Word fidx = 0, cline = 0;
		const char *cfile = NULL;
		if (dwarf_attr(&scopes[i], DW_AT_call_file, &attr) &&
		    dwarf_formudata(&attr, &fidx) == 0 && files && fidx < nfiles)
			cfile = dwarf_filesrc(files, fidx, NULL, NULL);
		if (dwarf_attr(&scopes[i], DW_AT_call_line, &attr))
			dwarf_formudata(&attr, &cline);
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
	Dwfl_Module *m = dwfl_addrmodule(s->dwfl, pc);
	if (!m)
		return;
	GElf_Off off = 0;
	GElf_Sym sym;
	*function = dwfl_module_addrinfo(m, pc, &off, &sym, NULL, NULL, NULL);
	if (*function)
		*offset = (uint64_t)off + 1; /* from the symbol to the return address */
	Dwfl_Line *ln = dwfl_module_getsrc(m, pc);
	if (ln) {
		int l = 0;
		const char *f = dwfl_lineinfo(ln, NULL, &l, NULL, NULL, NULL);
		if (f && l > 0) {
			*file = f;
			*line = l;
		}
	}
	*inlined_json = inlined_chain(m, pc);
}
