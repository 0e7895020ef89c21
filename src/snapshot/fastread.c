/*
 * The snapshot reader's fast path: a contiguous, unfiltered dataset's bytes read straight from its
 * file with pread(2) on the worker threads (src/common/parallel.c), byte order swapped and
 * float64 narrowed to float32 in the same pass, instead of HDF5's read and conversion path on one
 * thread.
 *
 * sm__extent_probe decides, per opened dataset, whether its bytes may be read directly, and
 * checks every precondition rather than assuming it: the fast path is on (SNAPMEM_FASTREAD is not
 * "0"); the file is open through HDF5's default sec2 driver (its descriptor is the one read); the
 * layout is H5D_CONTIGUOUS with no filter and no external storage; the data are allocated
 * (H5Dget_offset is defined); the element type is exactly one of the standard IEEE float or
 * integer types, little- or big-endian; the storage size equals elements x element size; and the
 * whole byte range lies inside both the file (fstat) and HDF5's end of allocation. When any of
 * these fails the caller reads through HDF5 as before, so a damaged or unusual file gets exactly
 * HDF5's behaviour and messages, and nothing is ever read past the end of the file.
 *
 * sm__fast_read does only the conversions it can do bit for bit as HDF5 does them: the same type
 * (a copy, or a byte swap for big-endian data, which HDF5 does as a pure reorder), float64 to
 * float32 and float32 to float64 from little-endian data (HDF5's hardware conversion: the C cast,
 * and +-inf for values beyond FLT_MAX), and, for a bounds-checked read, float64 of either byte
 * order to float32 by swap and cast (what the HDF5 path of a checked read does too: HDF5 reads
 * float64, the reader narrows). Anything else returns 1 and goes through HDF5.
 *
 * sm__fast_read_here does the same on the calling thread alone, for callers whose own worker
 * threads each read a part of a range (src/snapshot/direct.h: the distributed run's blocks).
 *
 * Memory: copies and swaps land in the destination directly; conversions go through the caller's
 * scratch buffer (the sm_io_buffer, 1 MiB in the pipeline, tracked there as io_buffer), split
 * into one slice per worker thread. Nothing is allocated here, on any thread.
 */
#include <errno.h>
#include <stdatomic.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "common/parallel.h"
#include "snapshot/snapshot-internal.h"

#define PART_MIN_BYTES (UINT64_C(256) << 10) /* a worker thread per this many bytes read */
#define PIECE_BYTES (UINT64_C(1) << 20)      /* the threads take the work in pieces this size */
#define PIECE_MIN_BYTES (UINT64_C(64) << 10) /* or smaller, 4 a thread at least, down to this */
#define BLOCK_BYTES (UINT64_C(128) << 10)  /* swapped, converted or checked in blocks this size */
#define SLICE_MIN_BYTES 4096u              /* smallest per-thread scratch slice worth using */

int sm__fast_enabled(void)
{
	const char *e = getenv("SNAPMEM_FASTREAD");

	return e == NULL || strcmp(e, "0") != 0;
}

struct std_type {
	hid_t (*id)(void);
	sm_dtype t;
	int swap;
};

#define STD_TYPE_FN(NAME)                                                                         \
	static hid_t t_##NAME(void)                                                               \
	{                                                                                         \
		return H5T_##NAME;                                                                \
	}
STD_TYPE_FN(IEEE_F32LE)
STD_TYPE_FN(IEEE_F32BE)
STD_TYPE_FN(IEEE_F64LE)
STD_TYPE_FN(IEEE_F64BE)
STD_TYPE_FN(STD_I32LE)
STD_TYPE_FN(STD_I32BE)
STD_TYPE_FN(STD_U32LE)
STD_TYPE_FN(STD_U32BE)
STD_TYPE_FN(STD_I64LE)
STD_TYPE_FN(STD_I64BE)
STD_TYPE_FN(STD_U64LE)
STD_TYPE_FN(STD_U64BE)
STD_TYPE_FN(STD_U8LE)

int sm__host_big_endian(void)
{
	const uint16_t one = 1;
	unsigned char b;

	memcpy(&b, &one, 1);
	return b == 0;
}

/* The sm_dtype and byte order of a standard type, else NONE. */
static sm_dtype std_type_of(hid_t t, int *swap)
{
	static const struct std_type tab[] = {
		{t_IEEE_F32LE, SM_DTYPE_F32, 0}, {t_IEEE_F32BE, SM_DTYPE_F32, 1},
		{t_IEEE_F64LE, SM_DTYPE_F64, 0}, {t_IEEE_F64BE, SM_DTYPE_F64, 1},
		{t_STD_I32LE, SM_DTYPE_I32, 0},  {t_STD_I32BE, SM_DTYPE_I32, 1},
		{t_STD_U32LE, SM_DTYPE_U32, 0},  {t_STD_U32BE, SM_DTYPE_U32, 1},
		{t_STD_I64LE, SM_DTYPE_I64, 0},  {t_STD_I64BE, SM_DTYPE_I64, 1},
		{t_STD_U64LE, SM_DTYPE_U64, 0},  {t_STD_U64BE, SM_DTYPE_U64, 1},
		{t_STD_U8LE, SM_DTYPE_U8, 0},
	};
	size_t i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (H5Tequal(t, tab[i].id()) > 0) {
			*swap = tab[i].swap != sm__host_big_endian() && tab[i].t != SM_DTYPE_U8;
			return tab[i].t;
		}
	return SM_DTYPE_NONE;
}

void sm__extent_probe(hid_t file, hid_t dset, sm__extent *x)
{
	hid_t dcpl = -1, t = -1, sp = -1, fapl = -1, fcpl = -1;
	hssize_t npts;
	haddr_t off, eoa;
	hsize_t ub = 0;
	uint64_t bytes, end, limit;
	void *h = NULL;
	struct stat st;
	sm_dtype dt;
	int swap = 0, fd;

	memset(x, 0, sizeof(*x));
	x->fd = -1;
	if (!sm__fast_enabled())
		return;
	dcpl = H5Dget_create_plist(dset);
	if (dcpl < 0 || H5Pget_layout(dcpl) != H5D_CONTIGUOUS || H5Pget_nfilters(dcpl) != 0 ||
	    H5Pget_external_count(dcpl) != 0)
		goto out;
	off = H5Dget_offset(dset);
	if (off == HADDR_UNDEF)
		goto out;
	t = H5Dget_type(dset);
	if (t < 0 || (dt = std_type_of(t, &swap)) == SM_DTYPE_NONE)
		goto out;
	sp = H5Dget_space(dset);
	npts = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
	if (npts < 0 || sm_mul_u64((uint64_t)npts, sm_dtype_size(dt), &bytes) != 0 ||
	    H5Dget_storage_size(dset) != bytes)
		goto out;
	fapl = H5Fget_access_plist(file);
	fcpl = H5Fget_create_plist(file);
	if (fapl < 0 || fcpl < 0 || H5Pget_driver(fapl) != H5FD_SEC2 ||
	    H5Pget_userblock(fcpl, &ub) < 0 || H5Fget_eoa(file, &eoa) < 0 || eoa == HADDR_UNDEF ||
	    H5Fget_vfd_handle(file, fapl, &h) < 0 || h == NULL)
		goto out;
	fd = *(int *)h;
	/* The data must lie after the user block, inside what HDF5 allocated (EOA, relative to the
	 * user block's end) and inside the file as it is now. */
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0 ||
	    (uint64_t)off < (uint64_t)ub || sm_add_u64((uint64_t)off, bytes, &end) != 0 ||
	    sm_add_u64((uint64_t)eoa, (uint64_t)ub, &limit) != 0 || end > limit ||
	    end > (uint64_t)st.st_size)
		goto out;
	x->ok = 1;
	x->fd = fd;
	x->offset = (uint64_t)off;
	x->bytes = bytes;
	x->disk = dt;
	x->swap = swap;
out:
	if (fcpl >= 0)
		H5Pclose(fcpl);
	if (fapl >= 0)
		H5Pclose(fapl);
	if (sp >= 0)
		H5Sclose(sp);
	if (t >= 0)
		H5Tclose(t);
	if (dcpl >= 0)
		H5Pclose(dcpl);
}

/* ---- the per-block work ------------------------------------------------------------------- */

enum mode { M_COPY, M_SWAP, M_NARROW, M_WIDEN };

static void swap_block(void *p, uint64_t n, size_t size)
{
	uint64_t i;

	if (size == 4) {
		uint32_t *w = p;

		for (i = 0; i < n; i++)
			w[i] = __builtin_bswap32(w[i]);
	} else if (size == 8) {
		uint64_t *w = p;

		for (i = 0; i < n; i++)
			w[i] = __builtin_bswap64(w[i]);
	}
}

/* HDF5's hardware float64 -> float32 conversion: the C cast, and +-inf beyond FLT_MAX. */
static inline float narrow_one(double v)
{
	return v > FLT_MAX ? INFINITY : v < -FLT_MAX ? -INFINITY : (float)v;
}

static inline int inside(double v, const sm__bounds *b)
{
	return v >= b->lo && v < b->hi;
}

/* The first element of out[0, n) (memtype t, as double) outside the bounds, or n. */
static uint64_t first_outside(const void *out, sm_dtype t, uint64_t n, const sm__bounds *b)
{
	uint64_t i = 0;

	if (t == SM_DTYPE_F32) {
		const float *f = out;
#if defined(__SSE2__)
		const __m128d lo = _mm_set1_pd(b->lo), hi = _mm_set1_pd(b->hi);

		for (; i + 4 <= n; i += 4) {
			__m128 v = _mm_loadu_ps(f + i);
			__m128d a = _mm_cvtps_pd(v), c = _mm_cvtps_pd(_mm_movehl_ps(v, v));
			__m128d ok = _mm_and_pd(_mm_and_pd(_mm_cmpge_pd(a, lo), _mm_cmplt_pd(a, hi)),
						_mm_and_pd(_mm_cmpge_pd(c, lo), _mm_cmplt_pd(c, hi)));

			if (_mm_movemask_pd(ok) != 3)
				break;
		}
#endif
		for (; i < n; i++)
			if (!inside(f[i], b))
				return i;
		return n;
	}
	if (t == SM_DTYPE_F64) {
		const double *d = out;
#if defined(__SSE2__)
		const __m128d lo = _mm_set1_pd(b->lo), hi = _mm_set1_pd(b->hi);

		for (; i + 2 <= n; i += 2) {
			__m128d a = _mm_loadu_pd(d + i);

			if (_mm_movemask_pd(_mm_and_pd(_mm_cmpge_pd(a, lo), _mm_cmplt_pd(a, hi))) != 3)
				break;
		}
#endif
		for (; i < n; i++)
			if (!inside(d[i], b))
				return i;
		return n;
	}
	return sm__first_outside_any(out, t, n, b);
}

uint64_t sm__first_outside_any(const void *out, sm_dtype t, uint64_t n, const sm__bounds *b)
{
	uint64_t i;
	double v;

	for (i = 0; i < n; i++) {
		switch (t) {
		case SM_DTYPE_F32:
			v = ((const float *)out)[i];
			break;
		case SM_DTYPE_F64:
			v = ((const double *)out)[i];
			break;
		case SM_DTYPE_I32:
			v = ((const int32_t *)out)[i];
			break;
		case SM_DTYPE_U32:
			v = ((const uint32_t *)out)[i];
			break;
		case SM_DTYPE_I64:
			v = (double)((const int64_t *)out)[i];
			break;
		case SM_DTYPE_U64:
			v = (double)((const uint64_t *)out)[i];
			break;
		case SM_DTYPE_U8:
			v = ((const unsigned char *)out)[i];
			break;
		default:
			return i;
		}
		if (!inside(v, b))
			return i;
	}
	return n;
}

#if defined(__x86_64__) && defined(__GNUC__)
/* The vector loop of sm__narrow_f64 four values at a time, for CPUs with AVX (chosen at the first
 * call): the same conversion and the same ordered comparisons as the SSE2 loop below (whose
 * cmpge/cmplt/cmpgt are the signalling predicates used here), so the same floats and the same
 * first value outside. Returns how far it got (a multiple of 4: it stops before a block holding
 * a value outside the bounds, which the loops after it then find); *big as below. */
__attribute__((target("avx"))) static uint64_t narrow_avx(const double *in, float *out, uint64_t n,
							  const sm__bounds *b, int *big)
{
	const __m256d fmax = _mm256_set1_pd(FLT_MAX);
	const __m256d absm = _mm256_castsi256_pd(_mm256_set1_epi64x(INT64_MAX));
	const __m256d lo = _mm256_set1_pd(b != NULL ? b->lo : 0.0);
	const __m256d hi = _mm256_set1_pd(b != NULL ? b->hi : 0.0);
	__m256d amax = _mm256_setzero_pd();
	uint64_t i = 0;

	for (; i + 4 <= n; i += 4) {
		const __m256d v = _mm256_loadu_pd(in + i);
		const __m128 f = _mm256_cvtpd_ps(v);

		if (b != NULL) {
			const __m256d fd = _mm256_cvtps_pd(f);
			const __m256d ok = _mm256_and_pd(
				_mm256_and_pd(_mm256_cmp_pd(v, lo, _CMP_GE_OS),
					      _mm256_cmp_pd(v, hi, _CMP_LT_OS)),
				_mm256_and_pd(_mm256_cmp_pd(fd, lo, _CMP_GE_OS),
					      _mm256_cmp_pd(fd, hi, _CMP_LT_OS)));

			if (_mm256_movemask_pd(ok) != 15)
				break;
		}
		_mm_storeu_ps(out + i, f);
		amax = _mm256_max_pd(amax, _mm256_and_pd(v, absm));
	}
	*big = _mm256_movemask_pd(_mm256_cmp_pd(amax, fmax, _CMP_GT_OS)) != 0;
	return i;
}

#endif

int sm__narrow_avx = -1;

/*
 * float64 -> float32 of n values; with bounds, the first value outside them (as read or as
 * narrowed) is returned (the values before it are converted), else n.
 */
uint64_t sm__narrow_f64(const double *in, float *out, uint64_t n, const sm__bounds *b)
{
	uint64_t i = 0, j;
	int big = 0;
#if defined(__x86_64__) && defined(__GNUC__)
	if (sm__narrow_avx != 0 && sm__cpu_avx())
		i = narrow_avx(in, out, n, b, &big);
#endif
#if defined(__SSE2__)
	const __m128d fmax = _mm_set1_pd(FLT_MAX);
	const __m128d absm = _mm_castsi128_pd(_mm_set1_epi64x(INT64_MAX));
	__m128d amax = _mm_setzero_pd();

	if (b == NULL) {
		for (; i + 2 <= n; i += 2) {
			__m128d v = _mm_loadu_pd(in + i);

			_mm_storel_pi((__m64 *)(void *)(out + i), _mm_cvtpd_ps(v));
			amax = _mm_max_pd(amax, _mm_and_pd(v, absm));
		}
		big |= _mm_movemask_pd(_mm_cmpgt_pd(amax, fmax)) != 0;
	} else {
		const __m128d lo = _mm_set1_pd(b->lo), hi = _mm_set1_pd(b->hi);

		for (; i + 2 <= n; i += 2) {
			__m128d v = _mm_loadu_pd(in + i);
			__m128 f = _mm_cvtpd_ps(v);
			__m128d fd = _mm_cvtps_pd(f);
			__m128d ok = _mm_and_pd(_mm_and_pd(_mm_cmpge_pd(v, lo), _mm_cmplt_pd(v, hi)),
						_mm_and_pd(_mm_cmpge_pd(fd, lo), _mm_cmplt_pd(fd, hi)));

			if (_mm_movemask_pd(ok) != 3)
				break;
			_mm_storel_pi((__m64 *)(void *)(out + i), f);
			amax = _mm_max_pd(amax, _mm_and_pd(v, absm));
		}
		big |= _mm_movemask_pd(_mm_cmpgt_pd(amax, fmax)) != 0;
	}
#endif
	if (big) /* a value beyond FLT_MAX in the vector part: HDF5 makes it inf, not FLT_MAX */
		for (j = 0; j < i; j++)
			out[j] = narrow_one(in[j]);
	for (; i < n; i++) {
		float f = narrow_one(in[i]);

		if (b != NULL && (!inside(in[i], b) || !inside(f, b)))
			return i;
		out[i] = f;
	}
	return n;
}

static uint64_t widen_f32(const float *in, double *out, uint64_t n, const sm__bounds *b)
{
	uint64_t i;

	for (i = 0; i < n; i++)
		out[i] = in[i];
	return b != NULL ? first_outside(out, SM_DTYPE_F64, n, b) : n;
}

/* ---- the parallel read --------------------------------------------------------------------- */

struct job {
	const sm__extent *x;
	enum mode mode;
	sm_dtype memtype;
	size_t ds, ms;             /* element sizes on disk and in memory */
	uint64_t e0, ne;           /* elements of the dataset to read */
	uint64_t grain;            /* elements a piece */
	uint64_t npieces;
	atomic_uint_fast64_t next; /* the next piece to take */
	atomic_uint_fast64_t stop; /* pieces from this one on are not needed (a bad value before) */
	unsigned char *out;
	unsigned char *scratch;
	size_t slice;              /* scratch bytes per part */
	const sm__bounds *b;
	uint64_t bad[SM__MAX_THREADS];  /* first element outside the bounds, or UINT64_MAX */
	int errnum[SM__MAX_THREADS];    /* errno of a failed pread; -1 for end of file */
};

/* Reads len bytes at off in full (short reads and EINTR retried). 0, or an errno (-1: EOF). */
static int pread_full(int fd, void *buf, uint64_t len, uint64_t off)
{
	unsigned char *p = buf;

	while (len > 0) {
		size_t want = len > (UINT64_C(1) << 30) ? (size_t)1 << 30 : (size_t)len;
		ssize_t got = pread(fd, p, want, (off_t)off);

		if (got < 0) {
			if (errno == EINTR)
				continue;
			return errno != 0 ? errno : EIO;
		}
		if (got == 0)
			return -1;
		p += got;
		off += (uint64_t)got;
		len -= (uint64_t)got;
	}
	return 0;
}

/* Elements [a, z) of the job: 0, or an errno of the read (-1: EOF); *bad as for the job. */
static int read_piece(struct job *J, unsigned part, uint64_t a, uint64_t z, uint64_t *bad)
{
	int direct = J->mode == M_COPY || J->mode == M_SWAP;
	unsigned char *scr = J->scratch + (size_t)part * J->slice;
	uint64_t i, k, blk, e;
	int rc;

	*bad = UINT64_MAX;
	if (J->mode == M_COPY && J->b == NULL)
		blk = z - a; /* one pread straight into the destination */
	else if (direct)
		blk = BLOCK_BYTES / J->ds;
	else
		blk = (J->slice < BLOCK_BYTES ? J->slice : BLOCK_BYTES) / J->ds;
	for (i = a; i < z; i += k) {
		unsigned char *o = J->out + i * J->ms;
		unsigned char *dst = direct ? o : scr;

		k = z - i < blk ? z - i : blk;
		rc = pread_full(J->x->fd, dst, k * J->ds, J->x->offset + (J->e0 + i) * J->ds);
		if (rc != 0)
			return rc;
		switch (J->mode) {
		case M_COPY:
			e = J->b != NULL ? first_outside(o, J->memtype, k, J->b) : k;
			break;
		case M_SWAP:
			swap_block(o, k, J->ds);
			e = J->b != NULL ? first_outside(o, J->memtype, k, J->b) : k;
			break;
		case M_NARROW:
			if (J->x->swap)
				swap_block(scr, k, 8);
			e = sm__narrow_f64((const double *)(void *)scr, (float *)(void *)o, k, J->b);
			break;
		default:
			e = widen_f32((const float *)(void *)scr, (double *)(void *)o, k, J->b);
			break;
		}
		if (e < k) {
			*bad = i + e;
			return 0;
		}
	}
	return 0;
}

/*
 * One worker: takes pieces in increasing order until none is left (a thread that the machine
 * slows down takes fewer, instead of holding the others up). Pieces are taken in order, so once
 * a bad value is found in piece j, every piece before j has been taken and will be finished, and
 * later pieces are skipped.
 */
static void read_part(void *arg, unsigned part, unsigned parts)
{
	struct job *J = arg;
	uint64_t j, a, z, bad;

	(void)parts;
	J->bad[part] = UINT64_MAX;
	J->errnum[part] = 0;
	for (;;) {
		j = atomic_fetch_add(&J->next, 1);
		if (j >= J->npieces || j >= atomic_load(&J->stop))
			return;
		a = j * J->grain;
		z = J->ne - a < J->grain ? J->ne : a + J->grain;
		J->errnum[part] = read_piece(J, part, a, z, &bad);
		if (J->errnum[part] != 0) {
			atomic_store(&J->stop, 0);
			return;
		}
		if (bad != UINT64_MAX) {
			uint_fast64_t cur = atomic_load(&J->stop);

			if (bad < J->bad[part])
				J->bad[part] = bad;
			while (j < cur && !atomic_compare_exchange_weak(&J->stop, &cur, j))
				;
			return;
		}
	}
}

int sm__fast_converts(const sm__extent *x, sm_dtype memtype, int bounded)
{
	return x->disk == memtype ||
	       (x->disk == SM_DTYPE_F64 && memtype == SM_DTYPE_F32 && (!x->swap || bounded)) ||
	       (x->disk == SM_DTYPE_F32 && memtype == SM_DTYPE_F64 && !x->swap);
}

/* The job's mode, sizes and range for elements [e0, e0 + ne) of x as memtype: 0, or 1 when the
 * conversion is not one done here exactly as HDF5 does it, or the range is not inside x. */
static int job_init(struct job *J, const sm__extent *x, sm_dtype memtype, uint64_t e0,
		    uint64_t ne, void *out, const sm__bounds *b, uint64_t *bytes)
{
	uint64_t end;

	memset(J, 0, sizeof(*J));
	J->x = x;
	J->memtype = memtype;
	J->ds = sm_dtype_size(x->disk);
	J->ms = sm_dtype_size(memtype);
	if (!sm__fast_converts(x, memtype, b != NULL))
		return 1;
	J->mode = x->disk == memtype ? (x->swap ? M_SWAP : M_COPY)
				     : x->disk == SM_DTYPE_F64 ? M_NARROW : M_WIDEN;
	if (J->ds == 0 || J->ms == 0 || sm_mul_u64(ne, J->ds, bytes) != 0 ||
	    sm_mul_u64(e0, J->ds, &end) != 0 || sm_add_u64(end, *bytes, &end) != 0 ||
	    end > x->bytes)
		return 1;
	atomic_init(&J->next, 0);
	atomic_init(&J->stop, UINT64_MAX);
	J->e0 = e0;
	J->ne = ne;
	J->out = out;
	J->b = b;
	return 0;
}

int sm__fast_read(const sm__extent *x, sm_dtype memtype, uint64_t e0, uint64_t ne, void *out,
		  void *scratch, size_t scratch_bytes, const sm__bounds *b, uint64_t *bad,
		  int *errnum)
{
	struct job J;
	uint64_t bytes, want, piece;
	unsigned parts, p;

	*bad = ne;
	*errnum = 0;
	if (x == NULL || !x->ok || ne == 0)
		return ne == 0 && x != NULL && x->ok ? 0 : 1;
	if (job_init(&J, x, memtype, e0, ne, out, b, &bytes) != 0)
		return 1;
	want = bytes / PART_MIN_BYTES;
	parts = sm__threads();
	if (want < parts)
		parts = want > 0 ? (unsigned)want : 1;
	piece = PIECE_BYTES;
	if (parts > 1 && bytes / (4 * (uint64_t)parts) < piece)
		piece = bytes / (4 * (uint64_t)parts) > PIECE_MIN_BYTES ? bytes / (4 * (uint64_t)parts)
									: PIECE_MIN_BYTES;
	J.grain = piece / J.ds > 0 ? piece / J.ds : 1;
	J.npieces = (ne + J.grain - 1) / J.grain;
	if (J.mode == M_NARROW || J.mode == M_WIDEN) {
		if (scratch == NULL)
			return 1;
		while (parts > 1 && scratch_bytes / parts < SLICE_MIN_BYTES)
			parts--;
		J.slice = scratch_bytes / parts / 64 * 64;
		if (J.slice < J.ds)
			return 1;
		J.scratch = scratch;
	}
	sm__parallel(read_part, &J, parts);
	for (p = 0; p < parts; p++)
		if (J.errnum[p] != 0) {
			*errnum = J.errnum[p];
			return SM_EIO;
		}
	for (p = 0; p < parts; p++)
		if (J.bad[p] < *bad)
			*bad = J.bad[p];
	return 0;
}

int sm__fast_read_here(const sm__extent *x, sm_dtype memtype, uint64_t e0, uint64_t ne, void *out,
		       void *scratch, size_t scratch_bytes, const sm__bounds *b, uint64_t *bad,
		       int *errnum)
{
	struct job J;
	uint64_t bytes, e;

	*bad = ne;
	*errnum = 0;
	if (x == NULL || !x->ok || ne == 0)
		return ne == 0 && x != NULL && x->ok ? 0 : 1;
	if (job_init(&J, x, memtype, e0, ne, out, b, &bytes) != 0)
		return 1;
	if (J.mode == M_NARROW || J.mode == M_WIDEN) {
		if (scratch == NULL || scratch_bytes < J.ds)
			return 1;
		J.slice = scratch_bytes;
		J.scratch = scratch;
	}
	if ((*errnum = read_piece(&J, 0, 0, ne, &e)) != 0)
		return SM_EIO;
	if (e != UINT64_MAX)
		*bad = e;
	return 0;
}
