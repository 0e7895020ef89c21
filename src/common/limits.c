/*
 * The memory this process may use (include/snapmem/limits.h): rlimits, the memory cgroup along the
 * process's cgroup path (v2 and v1 layouts, the tightest ancestor), MemAvailable; and the pure
 * comparison with a run's needs. Reading never fails: what cannot be read is no limit, so that a
 * machine without /proc or /sys runs as before. sm__vm_headroom allocates nothing (the malloc layer
 * calls it before malloc is usable).
 */
#include "snapmem/limits.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "snapmem/units.h"

/* cgroup v1 reports "no limit" as the largest page-aligned signed 64-bit value. */
#define V1_UNLIMITED (UINT64_C(1) << 62)

void sm_mem_limits_init(sm_mem_limits *l)
{
	memset(l, 0, sizeof(*l));
	l->as_max = SM_LIMIT_NONE;
	l->data_max = SM_LIMIT_NONE;
	l->cg_max = SM_LIMIT_NONE;
	l->avail = SM_LIMIT_NONE;
}

static uint64_t rlimit_bytes(int which)
{
	struct rlimit rl;

	if (getrlimit(which, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return SM_LIMIT_NONE;
	return (uint64_t)rl.rlim_cur;
}

ssize_t sm__read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;

	if (fd < 0)
		return -1;
	while (got + 1 < len) {
		ssize_t n = read(fd, buf + got, len - 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	return (ssize_t)got;
}

/* sm__read_small as 0 / -1 */
static int slurp(const char *path, char *buf, size_t len)
{
	return sm__read_small(path, buf, len) < 0 ? -1 : 0;
}

/* The value after "key" at the start of a line ("VmSize:\t  41384 kB"), times mult. */
static int keyed_u64(const char *text, const char *key, uint64_t mult, uint64_t *out)
{
	size_t kl = strlen(key);
	const char *p = text;

	while (p != NULL && *p != '\0') {
		if (strncmp(p, key, kl) == 0) {
			char *end;
			unsigned long long v;

			errno = 0;
			v = strtoull(p + kl, &end, 10);
			if (errno != 0 || end == p + kl)
				return -1;
			if (sm_mul_u64((uint64_t)v, mult, out) != 0)
				*out = UINT64_MAX;
			return 0;
		}
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return -1;
}

/* One number in a file: "max" (v2) or a v1 figure at or above 2^62 reads as no limit. */
static int file_u64(const char *path, uint64_t *out)
{
	char buf[64], *end;
	unsigned long long v;

	if (slurp(path, buf, sizeof(buf)) != 0)
		return -1;
	if (strncmp(buf, "max", 3) == 0) {
		*out = SM_LIMIT_NONE;
		return 0;
	}
	errno = 0;
	v = strtoull(buf, &end, 10);
	if (errno != 0 || end == buf)
		return -1;
	*out = (uint64_t)v >= V1_UNLIMITED ? SM_LIMIT_NONE : (uint64_t)v;
	return 0;
}

struct cg_layout {
	const char *limit, *usage, *stat_key; /* file names, and memory.stat's page-cache line */
};

static const struct cg_layout cg_v2 = {"memory.max", "memory.current", "file "};
static const struct cg_layout cg_v1 = {"memory.limit_in_bytes", "memory.usage_in_bytes",
				       "total_cache "};

/* Every level from dir/cgpath up to dir itself: keeps the one allowing the least. */
static void cg_walk(sm_mem_limits *l, const char *dir, const char *cgpath,
		    const struct cg_layout *ly)
{
	char path[sizeof(l->cg_file)], rel[sizeof(l->cg_file)], stat[8192];
	size_t n;

	snprintf(rel, sizeof(rel), "%s", cgpath);
	n = strlen(rel);
	while (n > 1 && rel[n - 1] == '/')
		rel[--n] = '\0';
	for (;;) {
		uint64_t max, usage = 0, cache = 0, other = 0;
		char *slash;

		snprintf(path, sizeof(path), "%s%s/%s", dir, strcmp(rel, "/") == 0 ? "" : rel,
			 ly->limit);
		if (file_u64(path, &max) == 0 && max != SM_LIMIT_NONE) {
			char up[sizeof(path)];

			snprintf(up, sizeof(up), "%s%s/%s", dir, strcmp(rel, "/") == 0 ? "" : rel,
				 ly->usage);
			(void)file_u64(up, &usage);
			snprintf(up, sizeof(up), "%s%s/memory.stat", dir,
				 strcmp(rel, "/") == 0 ? "" : rel);
			if (slurp(up, stat, sizeof(stat)) == 0 &&
			    keyed_u64(stat, ly->stat_key, 1, &cache) != 0 && ly == &cg_v1)
				(void)keyed_u64(stat, "cache ", 1, &cache);
			if (usage != SM_LIMIT_NONE && usage > cache + l->rss)
				other = usage - cache - l->rss;
			if (l->cg_max == SM_LIMIT_NONE ||
			    (max > other ? max - other : 0) <
				    (l->cg_max > l->cg_other ? l->cg_max - l->cg_other : 0)) {
				l->cg_max = max;
				l->cg_other = other;
				snprintf(l->cg_file, sizeof(l->cg_file), "%s", path);
			}
		}
		if (strcmp(rel, "/") == 0 || rel[0] == '\0')
			break;
		slash = strrchr(rel, '/');
		if (slash == NULL)
			break;
		if (slash == rel)
			slash[1] = '\0';
		else
			*slash = '\0';
	}
}

/* The cgroup v2 (unified) hierarchy's mount: /sys/fs/cgroup, or /sys/fs/cgroup/unified (hybrid). */
static void cg2_mount(const char *root, char *dir, size_t len)
{
	snprintf(dir, len, "%s/sys/fs/cgroup/cgroup.controllers", root);
	if (access(dir, F_OK) == 0)
		snprintf(dir, len, "%s/sys/fs/cgroup", root);
	else
		snprintf(dir, len, "%s/sys/fs/cgroup/unified", root);
}

int sm__cgroup2_dir(char *dir, size_t len)
{
	char text[4096], mnt[512], *s;
	size_t n;

	if (sm__read_small("/proc/self/cgroup", text, sizeof(text)) <= 0)
		return -1;
	s = strstr(text, "0::/");
	if (s == NULL || (s != text && s[-1] != '\n'))
		return -1;
	s += 3;
	s[strcspn(s, "\n")] = '\0';
	n = strlen(s);
	while (n > 1 && s[n - 1] == '/')
		s[--n] = '\0';
	cg2_mount("", mnt, sizeof(mnt));
	if ((size_t)snprintf(dir, len, "%s%s", mnt, strcmp(s, "/") == 0 ? "" : s) >= len)
		return -1;
	return 0;
}

static void read_cgroups(sm_mem_limits *l, const char *root)
{
	char path[sizeof(l->cg_file)], text[4096], dir[sizeof(l->cg_file)];
	char *line, *save = NULL;

	snprintf(path, sizeof(path), "%s/proc/self/cgroup", root);
	if (slurp(path, text, sizeof(text)) != 0)
		return;
	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

		if (c2 == NULL || c2[1] != '/')
			continue;
		*c1 = '\0';
		*c2 = '\0';
		if (strcmp(line, "0") == 0 && c1[1] == '\0') {
			cg2_mount(root, dir, sizeof(dir));
			cg_walk(l, dir, c2 + 1, &cg_v2);
		} else {
			char *ctl, *s2 = NULL;

			for (ctl = strtok_r(c1 + 1, ",", &s2); ctl != NULL;
			     ctl = strtok_r(NULL, ",", &s2)) {
				if (strcmp(ctl, "memory") != 0)
					continue;
				snprintf(dir, sizeof(dir), "%s/sys/fs/cgroup/memory", root);
				cg_walk(l, dir, c2 + 1, &cg_v1);
			}
		}
	}
}

int sm_mem_limits_read(sm_mem_limits *l, const char *root)
{
	char path[600], text[8192];

	if (root == NULL)
		root = "";
	sm_mem_limits_init(l);
	l->as_max = rlimit_bytes(RLIMIT_AS);
	l->data_max = rlimit_bytes(RLIMIT_DATA);
	snprintf(path, sizeof(path), "%s/proc/self/status", root);
	if (slurp(path, text, sizeof(text)) == 0) {
		(void)keyed_u64(text, "VmSize:", 1024, &l->as_used);
		(void)keyed_u64(text, "VmData:", 1024, &l->data_used);
		(void)keyed_u64(text, "VmRSS:", 1024, &l->rss);
	}
	snprintf(path, sizeof(path), "%s/proc/meminfo", root);
	if (slurp(path, text, sizeof(text)) != 0 ||
	    keyed_u64(text, "MemAvailable:", 1024, &l->avail) != 0)
		l->avail = SM_LIMIT_NONE;
	read_cgroups(l, root);
	return 0;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return b > UINT64_MAX - a ? UINT64_MAX : a + b;
}

int sm_mem_limits_check(const sm_mem_limits *l, uint64_t resident, uint64_t address,
			const char *what, sm_error *err)
{
	char a[32], b[32], c[32], d[32], e[32];
	uint64_t need;

	if (what == NULL)
		what = "the run";
	if (l->as_max != SM_LIMIT_NONE && (need = address) > l->as_max) {
		sm_error_set(err, SM_ELIMIT,
			     "%s needs %" PRIu64 " bytes (%s) of address space at least (estimate, the "
			     "whole process) but RLIMIT_AS (ulimit -v) allows %s", what, need,
			     sm_format_iec(need, a, sizeof(a)), sm_format_iec(l->as_max, d, sizeof(d)));
		goto limited;
	}
	/* what grows from now on is private and writable (the allocator's maps, thread stacks) */
	if (l->data_max != SM_LIMIT_NONE &&
	    (need = sat_add(l->data_used, address > l->as_used ? address - l->as_used : 0)) >
		    l->data_max) {
		sm_error_set(err, SM_ELIMIT,
			     "%s needs %" PRIu64 " bytes (%s) of data segment at least (estimate: %s of "
			     "address space for the whole process, %s of it mapped now, %s of that "
			     "data) but RLIMIT_DATA (ulimit -d) allows %s",
			     what, need, sm_format_iec(need, a, sizeof(a)),
			     sm_format_iec(address, b, sizeof(b)),
			     sm_format_iec(l->as_used, c, sizeof(c)),
			     sm_format_iec(l->data_used, e, sizeof(e)),
			     sm_format_iec(l->data_max, d, sizeof(d)));
		goto limited;
	}
	need = resident;
	if (l->cg_max != SM_LIMIT_NONE &&
	    need > (l->cg_max > l->cg_other ? l->cg_max - l->cg_other : 0)) {
		uint64_t allow = l->cg_max > l->cg_other ? l->cg_max - l->cg_other : 0;

		if (l->cg_other > 0)
			sm_error_set(err, SM_ELIMIT,
				     "%s needs %" PRIu64 " bytes (%s) resident (estimate, process "
				     "baseline included) but the memory cgroup allows %s ('%s': %s, "
				     "less %s held by the rest of the cgroup)", what, need,
				     sm_format_iec(need, a, sizeof(a)),
				     sm_format_iec(allow, b, sizeof(b)), l->cg_file,
				     sm_format_iec(l->cg_max, c, sizeof(c)),
				     sm_format_iec(l->cg_other, d, sizeof(d)));
		else
			sm_error_set(err, SM_ELIMIT,
				     "%s needs %" PRIu64 " bytes (%s) resident (estimate, process "
				     "baseline included) but the memory cgroup allows %s ('%s')", what,
				     need, sm_format_iec(need, a, sizeof(a)),
				     sm_format_iec(allow, b, sizeof(b)), l->cg_file);
		goto limited;
	}
	if (l->avail != SM_LIMIT_NONE && need > sat_add(l->avail, l->rss)) {
		sm_error_set(err, SM_ELIMIT,
			     "%s needs %" PRIu64 " bytes (%s) resident (estimate, process baseline "
			     "included) but the machine has %s available ('/proc/meminfo' "
			     "MemAvailable %s, plus %s this process holds)", what, need,
			     sm_format_iec(need, a, sizeof(a)),
			     sm_format_iec(sat_add(l->avail, l->rss), b, sizeof(b)),
			     sm_format_iec(l->avail, c, sizeof(c)), sm_format_iec(l->rss, d, sizeof(d)));
		goto limited;
	}
	return 0;
limited:
	if (err != NULL)
		err->needed_bytes = need;
	return SM_ELIMIT;
}

uint64_t sm__vm_headroom(uint64_t *limit, uint64_t *used)
{
	struct rlimit as, data;
	uint64_t best = SM_LIMIT_NONE, page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t f[6] = {0, 0, 0, 0, 0, 0}, size, dat;
	char buf[256];
	const char *p = buf;
	int have_as, have_data, i;

	*limit = SM_LIMIT_NONE;
	*used = 0;
	have_as = getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY;
	have_data = getrlimit(RLIMIT_DATA, &data) == 0 && data.rlim_cur != RLIM_INFINITY;
	if (!have_as && !have_data)
		return SM_LIMIT_NONE;
	if (slurp("/proc/self/statm", buf, sizeof(buf)) != 0)
		return SM_LIMIT_NONE;
	/* size resident shared text lib data, in pages; no sscanf (it may allocate) */
	for (i = 0; i < 6; i++) {
		while (*p == ' ')
			p++;
		if (*p < '0' || *p > '9')
			return SM_LIMIT_NONE;
		while (*p >= '0' && *p <= '9')
			f[i] = f[i] * 10 + (uint64_t)(*p++ - '0');
	}
	size = f[0];
	dat = f[5];
	if (have_as) {
		uint64_t u = size * page, lim = (uint64_t)as.rlim_cur;

		best = lim > u ? lim - u : 0;
		*limit = lim;
		*used = u;
	}
	if (have_data) {
		uint64_t u = dat * page, lim = (uint64_t)data.rlim_cur;
		uint64_t h = lim > u ? lim - u : 0;

		if (h < best) {
			best = h;
			*limit = lim;
			*used = u;
		}
	}
	return best;
}
