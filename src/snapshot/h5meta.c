/*
 * A reader of the few HDF5 metadata structures that a group catalogue chunk's /Header attributes
 * and /Group columns, and a snapshot chunk's /Header attributes, need, for files as HDF5 1.8 and later write them by default (and as AREPO's
 * and the TNG catalogues are): superblock version 0 or 1 at byte 0 with 8-byte offsets and
 * lengths, version-1 object headers, groups as symbol tables (a version-1 B-tree of symbol nodes
 * over a local heap), attributes stored in the object header, and contiguous datasets. It exists
 * because opening a file through HDF5 costs ~70 us of CPU (the metadata cache alone clears half
 * a megabyte per file), and an estimate of a 6000-chunk snapshot opens thousands of catalogue
 * chunks; here a chunk costs a few pread(2)s.
 *
 * Contract: every function answers 0 (done) or nonzero (this reader does not vouch for the
 * answer), never an error message. Anything unusual - another superblock or object header
 * version, a user block, a driver information block, shared or dense messages, soft links, a
 * non-IEEE float, an integer with padding bits, a name found twice, a structure that does not
 * fit, an address at or past the end of allocation (EOA), an EOA past the end of the file (HDF5's
 * "truncated file") - is nonzero, and the caller goes through HDF5, which gives its own answer and
 * its own errors. Every read is bounded by EOA and by the file's size; nothing is allocated and
 * nothing is global, so that worker threads may each read their own files at once.
 *
 * What it does not check that HDF5 might: the order of names inside a symbol table (a name is
 * looked for in every entry; HDF5 bisects), so a group whose names are out of order answers here
 * where HDF5 may report the name missing.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/snapshot-internal.h"

#define UNDEF UINT64_MAX
#define MAX_TREE_DEPTH 16
#define MAX_OH_CHUNKS 32
#define MAX_NODE_ENTRIES 1024 /* 2K of a group B-tree node / symbol node (K <= 512) */
#define MAX_NODES 4096        /* B-tree and symbol nodes visited by one lookup */

static const unsigned char SIGNATURE[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

static uint64_t le(const unsigned char *p, unsigned n)
{
	uint64_t v = 0;

	while (n-- > 0)
		v = v << 8 | p[n];
	return v;
}

static uint64_t be(const unsigned char *p, unsigned n)
{
	uint64_t v = 0;
	unsigned i;

	for (i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Reads len bytes at addr, inside [0, EOA). Reads of a block or less go through two cached
 * blocks (aligned to their size where the read fits: a symbol node's entries and the heap's names then
 * stay cached together); longer ones straight into dst. */
static int rd(sm__h5m *m, uint64_t addr, void *dst, size_t len)
{
	uint64_t end, start;
	size_t got = 0, want;
	ssize_t n;
	unsigned b;

	if (sm_add_u64(addr, len, &end) != 0 || end > m->eoa)
		return -1;
	for (b = 0; b < 2; b++)
		if (m->blk_len[b] > 0 && addr >= m->blk_addr[b] &&
		    end <= m->blk_addr[b] + m->blk_len[b]) {
			memcpy(dst, m->blk[b] + (addr - m->blk_addr[b]), len);
			m->blk_last = b;
			return 0;
		}
	if (len > SM__H5M_BLOCK) {
		while (got < len) {
			n = pread(m->fd, (unsigned char *)dst + got, len - got, (off_t)(addr + got));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return -1;
			got += (size_t)n;
		}
		return 0;
	}
	b = 1 - m->blk_last;
	start = addr / SM__H5M_BLOCK * SM__H5M_BLOCK;
	if (end > start + SM__H5M_BLOCK)
		start = addr;
	want = m->eoa - start < SM__H5M_BLOCK ? (size_t)(m->eoa - start) : SM__H5M_BLOCK;
	m->blk_len[b] = 0;
	while (got < want) {
		n = pread(m->fd, m->blk[b] + got, want - got, (off_t)(start + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (start + got < end)
		return -1;
	m->blk_addr[b] = start;
	m->blk_len[b] = got;
	m->blk_last = b;
	memcpy(dst, m->blk[b] + (addr - start), len);
	return 0;
}

int sm__h5m_open(sm__h5m *m, const char *path)
{
	return sm__h5m_open_at(m, AT_FDCWD, path);
}

int sm__h5m_open_at(sm__h5m *m, int dirfd, const char *path)
{
	unsigned char sb[128];
	struct stat st;
	uint64_t base, eof, drv;
	unsigned p;
	int fd;

	memset(m, 0, sizeof(*m));
	m->fd = -1;
	if (sm__host_big_endian())
		return -1;
	fd = openat(dirfd, path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -1;
	m->fd = fd;
	/* HDF5 takes a shared lock to read and fails when a writer holds the file: so does this */
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < (off_t)sizeof(sb) ||
	    flock(fd, LOCK_SH | LOCK_NB) != 0)
		goto no;
	m->size = (uint64_t)st.st_size;
	m->eoa = m->size < SM__H5M_BLOCK ? m->size : SM__H5M_BLOCK; /* until the superblock says */
	if (rd(m, 0, sb, sizeof(sb)) != 0 || memcmp(sb, SIGNATURE, 8) != 0 || sb[8] > 1 ||
	    sb[13] != 8 || sb[14] != 8)
		goto no;
	m->leaf_k = (unsigned)le(sb + 16, 2);
	m->node_k = (unsigned)le(sb + 18, 2);
	if (le(sb + 20, 4) != 0 || m->leaf_k == 0 || m->node_k == 0 ||
	    2 * m->leaf_k > MAX_NODE_ENTRIES || 2 * m->node_k > MAX_NODE_ENTRIES)
		goto no;
	p = sb[8] == 0 ? 24 : 28;
	base = le(sb + p, 8);
	eof = le(sb + p + 16, 8);
	drv = le(sb + p + 24, 8);
	/* root group symbol table entry at p + 32: name offset, object header address, ... */
	m->root = le(sb + p + 40, 8);
	if (base != 0 || drv != UNDEF || eof > m->size || eof < sizeof(sb) || m->root >= eof)
		goto no;
	m->eoa = eof;
	return 0;
no:
	sm__h5m_close(m);
	return -1;
}

void sm__h5m_close(sm__h5m *m)
{
	if (m->fd >= 0)
		close(m->fd); /* the lock goes with it */
	m->fd = -1;
	m->blk_len[0] = m->blk_len[1] = 0;
}

/* ---- object headers --------------------------------------------------------------------------- */

int sm__h5m_object(sm__h5m *m, uint64_t addr, sm__h5m_obj *o)
{
	unsigned char h[16];
	uint64_t chunk_addr[MAX_OH_CHUNKS], chunk_len[MAX_OH_CHUNKS];
	unsigned nchunks = 1, c, nmsgs, seen = 0;

	o->nmsg = 0;
	o->used = 0;
	if (rd(m, addr, h, sizeof(h)) != 0 || h[0] != 1)
		return -1;
	nmsgs = (unsigned)le(h + 2, 2);
	chunk_addr[0] = addr + 16;
	chunk_len[0] = le(h + 8, 4);
	for (c = 0; c < nchunks; c++) {
		uint64_t len = chunk_len[c], q = 0;
		unsigned char *buf = o->buf + o->used;

		if (len > sizeof(o->buf) - o->used || rd(m, chunk_addr[c], buf, (size_t)len) != 0)
			return -1;
		while (q + 8 <= len) {
			unsigned type = (unsigned)le(buf + q, 2), size = (unsigned)le(buf + q + 2, 2);
			unsigned flags = buf[q + 4];

			if (size > len - q - 8 || o->nmsg >= SM__H5M_MSGS)
				return -1;
			seen++;
			if (type == 0x10) { /* continuation: another chunk of messages */
				if (size < 16 || nchunks >= MAX_OH_CHUNKS || (flags & 0x02))
					return -1;
				chunk_addr[nchunks] = le(buf + q + 8, 8);
				chunk_len[nchunks] = le(buf + q + 16, 8);
				nchunks++;
			} else if (type != 0) {
				o->msg[o->nmsg].type = (uint16_t)type;
				o->msg[o->nmsg].flags = (uint8_t)flags;
				o->msg[o->nmsg].off = o->used + (uint32_t)q + 8;
				o->msg[o->nmsg].len = size;
				o->nmsg++;
			}
			q += 8 + size;
		}
		if (q != len)
			return -1;
		o->used += (uint32_t)len;
	}
	return seen == nmsgs ? 0 : -1;
}

/* The one message of type t (not shared): its index, or -1 when absent, twice or shared. */
static int one_message(const sm__h5m_obj *o, unsigned t)
{
	int at = -1;
	unsigned i;

	for (i = 0; i < o->nmsg; i++)
		if (o->msg[i].type == t) {
			if (at >= 0 || (o->msg[i].flags & 0x02))
				return -1;
			at = (int)i;
		}
	return at;
}

static int has_message(const sm__h5m_obj *o, unsigned t)
{
	unsigned i;

	for (i = 0; i < o->nmsg; i++)
		if (o->msg[i].type == t)
			return 1;
	return 0;
}

/* ---- groups ------------------------------------------------------------------------------------ */

struct lookup {
	const char *name;
	size_t len;           /* strlen(name) + 1 */
	uint64_t heap, heap_size;
	unsigned found;
	unsigned visits; /* a damaged tree may point back at its nodes: bounded */
	uint64_t oh;
};

/* Every entry of one symbol node. */
static int scan_snod(sm__h5m *m, uint64_t addr, struct lookup *L)
{
	unsigned char h[8], e[40], name[256];
	unsigned n, i;

	if (++L->visits > MAX_NODES || rd(m, addr, h, sizeof(h)) != 0 ||
	    memcmp(h, "SNOD", 4) != 0 || h[4] != 1)
		return -1;
	n = (unsigned)le(h + 6, 2);
	if (n > 2 * m->leaf_k)
		return -1;
	for (i = 0; i < n; i++) {
		uint64_t off;

		if (rd(m, addr + 8 + 40 * (uint64_t)i, e, sizeof(e)) != 0)
			return -1;
		off = le(e, 8);
		if (off >= L->heap_size || L->heap_size - off < L->len)
			continue; /* too long to be the name (its terminator is inside the heap) */
		if (rd(m, L->heap + off, name, L->len) != 0)
			return -1;
		if (memcmp(name, L->name, L->len) != 0)
			continue;
		if (le(e + 16, 4) > 1) /* cache type 2: a soft link */
			return -1;
		L->found++;
		L->oh = le(e + 8, 8);
	}
	return 0;
}

/* Every symbol node under a group B-tree node; level: the node's expected level, or -1 at the root. */
static int walk_tree(sm__h5m *m, uint64_t addr, int level, struct lookup *L)
{
	unsigned char h[24], kc[16];
	unsigned n, i;

	if (++L->visits > MAX_NODES || rd(m, addr, h, sizeof(h)) != 0 ||
	    memcmp(h, "TREE", 4) != 0 || h[4] != 0 ||
	    (level >= 0 && h[5] != level) || h[5] > MAX_TREE_DEPTH)
		return -1;
	level = h[5];
	n = (unsigned)le(h + 6, 2);
	if (n > 2 * m->node_k)
		return -1;
	for (i = 0; i < n; i++) {
		uint64_t child;

		/* key 0, child 0, key 1, child 1, ..., key n: 8 bytes each */
		if (rd(m, addr + 24 + 16 * (uint64_t)i, kc, sizeof(kc)) != 0)
			return -1;
		child = le(kc + 8, 8);
		if ((level > 0 ? walk_tree(m, child, level - 1, L) : scan_snod(m, child, L)) != 0)
			return -1;
	}
	return 0;
}

int sm__h5m_lookup(sm__h5m *m, const sm__h5m_obj *group, const char *name, uint64_t *oh)
{
	unsigned char hp[32];
	struct lookup L;
	int s = one_message(group, 0x11);

	if (s < 0 || group->msg[s].len < 16 || strchr(name, '/') != NULL)
		return -1;
	memset(&L, 0, sizeof(L));
	L.name = name;
	L.len = strlen(name) + 1;
	if (L.len > 256 || rd(m, le(group->buf + group->msg[s].off + 8, 8), hp, sizeof(hp)) != 0 ||
	    memcmp(hp, "HEAP", 4) != 0 || hp[4] != 0)
		return -1;
	L.heap_size = le(hp + 8, 8);
	L.heap = le(hp + 24, 8);
	if (walk_tree(m, le(group->buf + group->msg[s].off, 8), -1, &L) != 0 || L.found != 1 ||
	    L.oh == UNDEF || L.oh >= m->eoa)
		return -1;
	*oh = L.oh;
	return 0;
}

/* ---- types, spaces, attributes, layouts ------------------------------------------------------- */

/* A standard integer (no padding bits) or an IEEE float, of either byte order. */
static int parse_type(const unsigned char *t, uint32_t len, sm__h5m_type *out)
{
	unsigned cls, ver, bits;
	uint32_t size;

	if (len < 8)
		return -1;
	cls = t[0] & 0x0f;
	ver = t[0] >> 4;
	bits = (unsigned)le(t + 1, 3);
	size = (uint32_t)le(t + 4, 4);
	if (ver < 1 || ver > 3)
		return -1;
	memset(out, 0, sizeof(*out));
	out->size = size;
	out->big = bits & 1;
	if (cls == 0) {
		if (len < 12 || (bits & ~0x09u) != 0 || (size != 1 && size != 2 && size != 4 &&
							 size != 8) ||
		    le(t + 8, 2) != 0 || le(t + 10, 2) != 8 * size)
			return -1;
		out->cls = SM__H5M_INT;
		out->sign = (bits >> 3) & 1;
		return 0;
	}
	if (cls == 1) {
		/* byte order (bit 0; bit 6 would be VAX), no padding, implied mantissa msb, sign bit */
		unsigned sign = (bits >> 8) & 0xff;

		if (len < 20 || (bits & 0xce) != 0 || (bits >> 16) != 0 || ((bits >> 4) & 3) != 2 || le(t + 8, 2) != 0 ||
		    le(t + 10, 2) != 8 * size || t[14] != 0)
			return -1;
		if (size == 4 && sign == 31 && t[12] == 23 && t[13] == 8 && t[15] == 23 &&
		    le(t + 16, 4) == 127)
			out->cls = SM__H5M_FLOAT;
		else if (size == 8 && sign == 63 && t[12] == 52 && t[13] == 11 && t[15] == 52 &&
			 le(t + 16, 4) == 1023)
			out->cls = SM__H5M_FLOAT;
		else
			return -1;
		return 0;
	}
	return -1;
}

/* Rank and dimensions (at most 2) of a scalar or simple dataspace; a scalar has rank 0, 1 point. */
static int parse_space(const unsigned char *s, uint32_t len, unsigned *rank, uint64_t *dims,
		       uint64_t *npts)
{
	unsigned r, flags, at, i;

	if (len < 8)
		return -1;
	r = s[1];
	flags = s[2];
	if (s[0] == 1)
		at = 8;
	else if (s[0] == 2 && s[3] <= 1 && (s[3] == 1) == (r > 0))
		at = 4;
	else
		return -1;
	if (r > 2 || (flags & ~1u) != 0 || len < at + 8 * r * (1 + (flags & 1u)))
		return -1;
	*npts = 1;
	for (i = 0; i < r; i++) {
		dims[i] = le(s + at + 8 * i, 8);
		if (sm_mul_u64(*npts, dims[i], npts) != 0)
			return -1;
	}
	*rank = r;
	return 0;
}

int sm__h5m_find_attr(const sm__h5m_obj *o, const char *name, sm__h5m_attr *a)
{
	size_t nlen = strlen(name) + 1;
	unsigned i;
	int found = 0;

	/* an attribute info message: some attributes may live in dense storage, not here */
	if (has_message(o, 0x15))
		return -1;
	for (i = 0; i < o->nmsg; i++) {
		const unsigned char *p = o->buf + o->msg[i].off;
		uint32_t len = o->msg[i].len, ns, ts, ss, at;
		uint64_t bytes;

		if (o->msg[i].type != 0x0c)
			continue;
		if ((o->msg[i].flags & 0x02) || len < 8)
			return -1;
		ns = (uint32_t)le(p + 2, 2);
		ts = (uint32_t)le(p + 4, 2);
		ss = (uint32_t)le(p + 6, 2);
		if (p[0] == 1) {
			at = 8;
			ns = (ns + 7) & ~7u, ts = (ts + 7) & ~7u, ss = (ss + 7) & ~7u;
		} else if ((p[0] == 2 || p[0] == 3) && p[1] == 0) {
			at = p[0] == 2 ? 8 : 9;
		} else {
			return -1;
		}
		if ((uint64_t)at + ns + ts + ss > len || le(p + 2, 2) == 0)
			return -1;
		if (le(p + 2, 2) != nlen || memcmp(p + at, name, nlen) != 0)
			continue;
		if (found++ > 0 || parse_type(p + at + ns, ts, &a->type) != 0 ||
		    parse_space(p + at + ns + ts, ss, &a->rank, a->dims, &a->npts) != 0 ||
		    sm_mul_u64(a->npts, a->type.size, &bytes) != 0 ||
		    bytes > len - (at + ns + ts + ss) || bytes > sizeof(a->data))
			return -1;
		memcpy(a->data, p + at + ns + ts + ss, (size_t)bytes);
	}
	return found ? 0 : 1;
}

int sm__h5m_value_u64(const sm__h5m_attr *a, uint64_t i, int *negative, uint64_t *v)
{
	const unsigned char *p;
	unsigned n = a->type.size;
	uint64_t u;

	if (a->type.cls != SM__H5M_INT || i >= a->npts)
		return -1;
	p = a->data + i * n;
	u = a->type.big ? be(p, n) : le(p, n);
	*negative = a->type.sign && n > 0 && ((u >> (8 * n - 1)) & 1);
	*v = u;
	return 0;
}

int sm__h5m_value_double(const sm__h5m_attr *a, uint64_t i, double *v)
{
	const unsigned char *p;
	uint64_t u;
	int neg;

	if (i >= a->npts)
		return -1;
	p = a->data + i * a->type.size;
	if (a->type.cls == SM__H5M_FLOAT) {
		if (a->type.size == 8) {
			u = a->type.big ? be(p, 8) : le(p, 8);
			memcpy(v, &u, 8);
			return 0;
		}
		if (a->type.big) /* HDF5 widens big-endian float32 in software: not vouched for */
			return -1;
		{
			float f;
			uint32_t w = (uint32_t)le(p, 4);

			memcpy(&f, &w, 4);
			*v = (double)f;
		}
		return 0;
	}
	/* an integer is exact as a double up to 2^53, however HDF5 converts it */
	if (sm__h5m_value_u64(a, i, &neg, &u) != 0)
		return -1;
	if (neg) {
		unsigned n = a->type.size;
		int64_t s = n == 8 ? (int64_t)u : (int64_t)(u | ~((UINT64_C(1) << (8 * n)) - 1));

		if (s < -(INT64_C(1) << 53))
			return -1;
		*v = (double)s;
		return 0;
	}
	if (u > (UINT64_C(1) << 53))
		return -1;
	*v = (double)u;
	return 0;
}

int sm__h5m_dataset(sm__h5m *m, const sm__h5m_obj *o, sm__h5m_dset *d)
{
	int t = one_message(o, 0x03), s = one_message(o, 0x01), l = one_message(o, 0x08);
	const unsigned char *p;
	uint64_t bytes, end;

	memset(d, 0, sizeof(*d));
	/* no filters, no external storage, nothing shared */
	if (t < 0 || s < 0 || l < 0 || has_message(o, 0x0b) || has_message(o, 0x07) ||
	    has_message(o, 0x11) ||
	    parse_type(o->buf + o->msg[t].off, o->msg[t].len, &d->type) != 0 ||
	    parse_space(o->buf + o->msg[s].off, o->msg[s].len, &d->rank, d->dims, &d->npts) != 0)
		return -1;
	p = o->buf + o->msg[l].off;
	/* layout version 3, contiguous: address, size */
	if (o->msg[l].len < 18 || p[0] != 3 || p[1] != 1)
		return -1;
	d->addr = le(p + 2, 8);
	d->bytes = le(p + 10, 8);
	if (sm_mul_u64(d->npts, d->type.size, &bytes) != 0 || bytes != d->bytes ||
	    d->addr == UNDEF || sm_add_u64(d->addr, d->bytes, &end) != 0 || end > m->eoa ||
	    end > m->size)
		return -1;
	return 0;
}

/* sm__h5m_u64s and sm__h5m_doubles (snapshot-internal.h). */
int sm__h5m_u64s(const sm__h5m_obj *o, const char *name, uint64_t *out, int n)
{
	uint64_t v[SM_NTYPES];
	sm__h5m_attr a;
	int rc, neg, i;

	if (n < 1 || n > SM_NTYPES)
		return -1;
	if ((rc = sm__h5m_find_attr(o, name, &a)) != 0)
		return rc;
	if (a.rank > 1 || a.npts != (uint64_t)n || (n > 1 && a.rank != 1) ||
	    a.type.cls != SM__H5M_INT)
		return -1;
	for (i = 0; i < n; i++)
		if (sm__h5m_value_u64(&a, (uint64_t)i, &neg, &v[i]) != 0 || neg)
			return -1;
	memcpy(out, v, (size_t)n * sizeof(*out));
	return 0;
}

int sm__h5m_doubles(const sm__h5m_obj *o, const char *name, double *out, int n)
{
	double v[SM_NTYPES];
	sm__h5m_attr a;
	int rc, i;

	if (n < 1 || n > SM_NTYPES)
		return -1;
	if ((rc = sm__h5m_find_attr(o, name, &a)) != 0)
		return rc;
	if (a.rank > 1 || a.npts != (uint64_t)n || (n > 1 && a.rank != 1))
		return -1;
	for (i = 0; i < n; i++)
		if (sm__h5m_value_double(&a, (uint64_t)i, &v[i]) != 0)
			return -1;
	memcpy(out, v, (size_t)n * sizeof(*out));
	return 0;
}
