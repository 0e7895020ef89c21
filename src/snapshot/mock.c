/*
 * The mock writer (include/snapmem/mock.h): a TNG-layout snapshot and FoF catalogue with known
 * content, laid out and typed as AREPO writes them.
 *
 * Content model (all deterministic from the seed; every cell draws from its own splitmix64 stream
 * keyed by (seed, global index), so cells can be generated block by block in any chunk):
 *  - `halos` big halos, M200c log-uniform in [1.2e14, 1e15] Msun, and `small_halos` small ones in
 *    [1e12, 5e13] Msun; R200 = 643 ckpc/h * (M200c / 1e14 Msun)^(1/3) (close to 200 rho_crit at
 *    z = 0 for h = 0.6774; exact agreement does not matter, the catalogue states R200).
 *    Big halo 0 sits at x = 0.5 R200 and big halo 1 at y = BoxSize - 0.7 R200, so their 2 R200
 *    spheres wrap the periodic boundary; the other centres are uniform in the box.
 *  - A cell is in a big halo with probability 0.45, a small one 0.10, else background (the halo is
 *    drawn uniformly among its kind). Halo cells: r = 2 R200 u^(1/1.5) (density ~ r^-1.5), isotropic
 *    direction, positions wrapped into [0, BoxSize). Big-halo temperature
 *    log10 T = 7.5 - 1.5 r/(2 R200) + 0.1 N(0,1) (10^7.5 K at the centre, 10^6 K at 2 R200), small
 *    halos 6.3 - 1.0 r/(2 R200); half the big-halo cells inside 0.1 R200 form stars
 *    (StarFormationRate in [0.01, 1) Msun/yr, T ~ 10^4 K). Background: uniform positions,
 *    log10 T uniform in [4, 5).
 *  - InternalEnergy from T by inverting DESIGN.md's formula with the cell's ElectronAbundance
 *    (1.157, fully ionised, for hot gas; 1.0 below 2e4 K; 0.1 for star-forming cells).
 *  - Masses = OmegaBaryon rho_crit BoxSize^3 / N_gas (uniform); Density from the profile.
 *  - Snapshot chunks: chunk 1 (when files >= 2) holds no gas and has no PartType0 group; the others
 *    hold gas in weights 1 + (i mod 4), remainder to chunk 0. Every chunk holds dark matter
 *    (PartType1: Coordinates, ParticleIDs; MassTable[1] set), `dm` particles in all (default
 *    gas/16 + files), uniform in the box, spread evenly over the chunks (remainder to the first).
 *  - Catalogue: max(2, files/2) chunks, chunk 1 empty (Ngroups_ThisFile 0, /Group without datasets),
 *    big and small halos shuffled (not sorted by mass) and spread evenly over the other chunks.
 *    GroupLen is the number of gas cells generated for the halo (expected number with header_only).
 */
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapmem/mock.h"
#include "snapmem/outfile.h"
#include "snapshot/snapshot-internal.h"

#define BLOCK 65536
#define RHO_CRIT 27.7536627e-9 /* 1e10 Msun/h per (ckpc/h)^3: 27.7536627 per (cMpc/h)^3 */
#define HUBBLE 0.6774
#define OMEGA0 0.3089
#define OMEGA_B 0.0486
#define OMEGA_L 0.6911
#define UNIT_VEL 1e5
#define GAMMA_M1 (2.0 / 3.0)
#define X_H 0.76
#define K_B 1.380649e-16
#define M_P 1.672621924e-24
#define MAX_HALOS 1000000u
#define MAX_FILES 100000u
#define GOLDEN 0x9E3779B97F4A7C15ull

void sm_mock_options_init(sm_mock_options *o)
{
	memset(o, 0, sizeof(*o));
	o->gas = 1000000;
	o->halos = 30;
	o->small_halos = 30;
	o->files = 8;
	o->seed = 1;
	o->snap = 99;
	o->box_size = 75000;
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += GOLDEN);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static double uniform(uint64_t *s)
{
	return (double)(splitmix64(s) >> 11) * 0x1.0p-53;
}

/* Approximately standard normal: the sum of four uniforms, rescaled. */
static double gauss(uint64_t *s)
{
	double a = uniform(s) + uniform(s) + uniform(s) + uniform(s);

	return (a - 2.0) * 1.7320508075688772;
}

typedef struct halo {
	double pos[3];
	double m_msun, r200;
	int big;
	uint64_t ncells;
} halo;

typedef struct ctx {
	const sm_mock_options *o;
	uint64_t key;            /* per-cell stream key from the seed */
	uint64_t gas;            /* gas cells (gas_total with header_only) */
	double box, mass;
	halo *h;                 /* big first, then small */
	uint32_t nh;
	uint64_t *chunk_gas, *chunk_dm;
	uint64_t dm;
	char snapdir[SM_PATH_MAX - 128], groupdir[SM_PATH_MAX - 128];
	sm_outfile *snapf, *catf;    /* the chunk files being written (outfile.h) */
} ctx;

/* Creation properties without modification times, so that the same options give the same bytes. */
static hid_t gcpl = -1, dcpl = -1;

static int make_plists(void)
{
	if (gcpl < 0) {
		gcpl = H5Pcreate(H5P_GROUP_CREATE);
		if (gcpl < 0 || H5Pset_obj_track_times(gcpl, 0) < 0)
			return -1;
	}
	if (dcpl < 0) {
		dcpl = H5Pcreate(H5P_DATASET_CREATE);
		if (dcpl < 0 || H5Pset_obj_track_times(dcpl, 0) < 0)
			return -1;
	}
	return 0;
}

static void free_plists(void)
{
	if (dcpl >= 0)
		H5Pclose(dcpl);
	if (gcpl >= 0)
		H5Pclose(gcpl);
	dcpl = gcpl = -1;
}

static double r200_of(double m_msun)
{
	return 643.0 * cbrt(m_msun / 1e14);
}

static double energy_of(double t, double xe)
{
	double mu = 4.0 * M_P / (1.0 + 3.0 * X_H + 4.0 * X_H * xe);

	return t * K_B / (GAMMA_M1 * mu * UNIT_VEL * UNIT_VEL);
}

static double wrap(double x, double box)
{
	x = fmod(x, box);
	if (x < 0)
		x += box;
	if (x >= box)
		x = 0;
	return x;
}

struct cell {
	double pos[3];
	float u, xe, sfr, dens;
};

static void gen_cell(ctx *c, uint64_t i, struct cell *out, int64_t *hidx)
{
	uint64_t s = c->key ^ (i * GOLDEN);
	double u0, logt, t, xe = 1.157, sfr = 0, dens;
	uint32_t nbig = c->o->halos, nsmall = c->o->small_halos;
	int k;

	splitmix64(&s);
	u0 = uniform(&s);
	*hidx = -1;
	if (u0 < 0.45 && nbig > 0)
		*hidx = (int64_t)(splitmix64(&s) % nbig);
	else if (u0 >= 0.45 && u0 < 0.55 && nsmall > 0)
		*hidx = (int64_t)nbig + (int64_t)(splitmix64(&s) % nsmall);
	if (*hidx >= 0) {
		const halo *h = &c->h[*hidx];
		double r = 2.0 * h->r200 * pow(uniform(&s), 1.0 / 1.5);
		double ct = 2.0 * uniform(&s) - 1.0, phi = 2.0 * M_PI * uniform(&s);
		double st = sqrt(1.0 - ct * ct), x = r / (2.0 * h->r200);
		double dir[3] = {st * cos(phi), st * sin(phi), ct};

		for (k = 0; k < 3; k++)
			out->pos[k] = wrap(h->pos[k] + r * dir[k], c->box);
		if (h->big) {
			logt = 7.5 - 1.5 * x + 0.1 * gauss(&s);
			if (r < 0.1 * h->r200 && uniform(&s) < 0.5) {
				sfr = pow(10.0, -2.0 + 2.0 * uniform(&s));
				logt = 4.0 + 0.05 * gauss(&s);
				xe = 0.1;
			}
		} else {
			logt = 6.3 - 1.0 * x + 0.1 * gauss(&s);
		}
		dens = 200.0 * OMEGA_B * RHO_CRIT * 0.5 * pow(fmax(r / h->r200, 0.01), -1.5);
	} else {
		for (k = 0; k < 3; k++)
			out->pos[k] = wrap(uniform(&s) * c->box, c->box);
		logt = 4.0 + uniform(&s);
		dens = OMEGA_B * RHO_CRIT * (0.5 + uniform(&s));
	}
	t = pow(10.0, logt);
	if (sfr == 0 && t < 2e4)
		xe = 1.0;
	else if (sfr == 0)
		xe = 1.157 * (1.0 + 0.002 * gauss(&s));
	out->xe = (float)xe;
	out->u = (float)energy_of(t, (double)out->xe);
	out->sfr = (float)sfr;
	out->dens = (float)dens;
}

/* --- small HDF5 writing helpers ---------------------------------------------------------- */

static int put_attr(hid_t loc, const char *name, hid_t ftype, hid_t mtype, int n, const void *v)
{
	hsize_t dim = (hsize_t)n;
	hid_t sp = n == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dim, NULL);
	hid_t a = -1;
	int rc = -1;

	if (sp < 0)
		return -1;
	a = H5Acreate2(loc, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT);
	if (a >= 0 && H5Awrite(a, mtype, v) >= 0)
		rc = 0;
	if (a >= 0)
		H5Aclose(a);
	H5Sclose(sp);
	return rc;
}

static int put_f64(hid_t loc, const char *name, double v)
{
	return put_attr(loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, &v);
}

static int put_i32(hid_t loc, const char *name, int32_t v)
{
	return put_attr(loc, name, H5T_STD_I32LE, H5T_NATIVE_INT32, 0, &v);
}

static int put_i64(hid_t loc, const char *name, int64_t v)
{
	return put_attr(loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, 0, &v);
}

static hid_t make_dset(hid_t g, const char *name, hid_t ftype, uint64_t n, int ncomp)
{
	hsize_t dims[2] = {(hsize_t)n, (hsize_t)ncomp};
	hid_t sp = H5Screate_simple(ncomp == 1 ? 1 : 2, dims, NULL), d;

	if (sp < 0)
		return -1;
	d = H5Dcreate2(g, name, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
	H5Sclose(sp);
	return d;
}

/* Writes rows [off, off + n) of a dataset with ncomp components from buf. */
static int put_rows(hid_t d, hid_t mtype, uint64_t off, uint64_t n, int ncomp, const void *buf)
{
	hsize_t start[2] = {(hsize_t)off, 0}, cnt[2] = {(hsize_t)n, (hsize_t)ncomp};
	hid_t fsp = H5Dget_space(d), msp = H5Screate_simple(ncomp == 1 ? 1 : 2, cnt, NULL);
	int rc = -1;

	if (fsp >= 0 && msp >= 0 &&
	    H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, cnt, NULL) >= 0 &&
	    H5Dwrite(d, mtype, msp, fsp, H5P_DEFAULT, buf) >= 0)
		rc = 0;
	if (msp >= 0)
		H5Sclose(msp);
	if (fsp >= 0)
		H5Sclose(fsp);
	return rc;
}

static int mkdir_p(const char *dir, sm_error *err)
{
	char tmp[SM_PATH_MAX];
	size_t n = strlen(dir), i;

	if (n == 0 || n >= sizeof(tmp))
		return sm_error_set(err, SM_EINVAL, "'%s': bad output directory", dir);
	memcpy(tmp, dir, n + 1);
	for (i = 1; i <= n; i++) {
		if (tmp[i] != '/' && tmp[i] != '\0')
			continue;
		tmp[i] = '\0';
		if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
			return sm_error_set(err, SM_EIO, "cannot create '%s': %s", tmp,
					    strerror(errno));
		tmp[i] = i < n ? '/' : '\0';
	}
	return 0;
}

/* --- the snapshot ----------------------------------------------------------------------- */

static void split_counts(uint64_t *tot_lo, uint32_t *hw, uint64_t total)
{
	*tot_lo = total & 0xFFFFFFFFull;
	*hw = (uint32_t)(total >> 32);
}

static int write_snap_header(ctx *c, hid_t f, uint32_t i)
{
	int32_t thisfile[SM_NTYPES] = {0};
	uint32_t tot[SM_NTYPES] = {0}, hw[SM_NTYPES] = {0};
	double mt[SM_NTYPES] = {0};
	uint64_t lo;
	hid_t g = H5Gcreate2(f, "Header", H5P_DEFAULT, gcpl, H5P_DEFAULT);
	int rc = 0;

	if (g < 0)
		return -1;
	thisfile[0] = (int32_t)c->chunk_gas[i];
	thisfile[1] = (int32_t)c->chunk_dm[i];
	split_counts(&lo, &hw[0], c->gas);
	tot[0] = (uint32_t)lo;
	split_counts(&lo, &hw[1], c->dm);
	tot[1] = (uint32_t)lo;
	/* dark matter carries the rest of Omega0 */
	mt[1] = (OMEGA0 - OMEGA_B) * RHO_CRIT * c->box * c->box * c->box / (double)c->dm;
	rc |= put_attr(g, "NumPart_ThisFile", H5T_STD_I32LE, H5T_NATIVE_INT32, 6, thisfile);
	rc |= put_attr(g, "NumPart_Total", H5T_STD_U32LE, H5T_NATIVE_UINT32, 6, tot);
	rc |= put_attr(g, "NumPart_Total_HighWord", H5T_STD_U32LE, H5T_NATIVE_UINT32, 6, hw);
	rc |= put_attr(g, "MassTable", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 6, mt);
	rc |= put_f64(g, "BoxSize", c->box);
	rc |= put_f64(g, "HubbleParam", HUBBLE);
	rc |= put_f64(g, "Omega0", OMEGA0);
	rc |= put_f64(g, "OmegaBaryon", OMEGA_B);
	rc |= put_f64(g, "OmegaLambda", OMEGA_L);
	rc |= put_f64(g, "Redshift", 0.0);
	rc |= put_f64(g, "Time", 1.0);
	rc |= put_i32(g, "NumFilesPerSnapshot", (int32_t)c->o->files);
	rc |= put_f64(g, "UnitLength_in_cm", 3.085678e21);
	rc |= put_f64(g, "UnitMass_in_g", 1.989e43);
	rc |= put_f64(g, "UnitVelocity_in_cm_per_s", UNIT_VEL);
	rc |= put_i32(g, "Flag_DoublePrecision", 0);
	H5Gclose(g);
	return rc;
}

struct blockbuf {
	double *pos;
	float *u, *xe, *sfr, *mass, *dens;
	uint64_t *ids;
};

static int write_gas(ctx *c, hid_t f, uint64_t first, uint64_t n, struct blockbuf *b)
{
	static const char *const names[] = {"Coordinates", "InternalEnergy", "ElectronAbundance",
					    "StarFormationRate", "Masses", "Density", "ParticleIDs"};
	hid_t d[7] = {-1, -1, -1, -1, -1, -1, -1};
	hid_t g = H5Gcreate2(f, "PartType0", H5P_DEFAULT, gcpl, H5P_DEFAULT);
	uint64_t off, j;
	int k, rc = -1;

	if (g < 0)
		return -1;
	for (k = 0; k < 7; k++) {
		hid_t ft = k == 0 ? H5T_IEEE_F64LE : k == 6 ? H5T_STD_U64LE : H5T_IEEE_F32LE;

		d[k] = make_dset(g, names[k], ft, n, k == 0 ? 3 : 1);
		if (d[k] < 0)
			goto out;
	}
	for (off = 0; off < n; off += BLOCK) {
		uint64_t m = n - off < BLOCK ? n - off : BLOCK;

		for (j = 0; j < m; j++) {
			struct cell cl;
			int64_t h;
			uint64_t gi = first + off + j;

			gen_cell(c, gi, &cl, &h);
			if (h >= 0)
				c->h[h].ncells++;
			memcpy(b->pos + 3 * j, cl.pos, sizeof(cl.pos));
			b->u[j] = cl.u;
			b->xe[j] = cl.xe;
			b->sfr[j] = cl.sfr;
			b->mass[j] = (float)c->mass;
			b->dens[j] = cl.dens;
			b->ids[j] = gi + 1;
		}
		if (put_rows(d[0], H5T_NATIVE_DOUBLE, off, m, 3, b->pos) < 0 ||
		    put_rows(d[1], H5T_NATIVE_FLOAT, off, m, 1, b->u) < 0 ||
		    put_rows(d[2], H5T_NATIVE_FLOAT, off, m, 1, b->xe) < 0 ||
		    put_rows(d[3], H5T_NATIVE_FLOAT, off, m, 1, b->sfr) < 0 ||
		    put_rows(d[4], H5T_NATIVE_FLOAT, off, m, 1, b->mass) < 0 ||
		    put_rows(d[5], H5T_NATIVE_FLOAT, off, m, 1, b->dens) < 0 ||
		    put_rows(d[6], H5T_NATIVE_UINT64, off, m, 1, b->ids) < 0)
			goto out;
	}
	rc = 0;
out:
	for (k = 6; k >= 0; k--)
		if (d[k] >= 0)
			H5Dclose(d[k]);
	H5Gclose(g);
	return rc;
}

static int write_dm(ctx *c, hid_t f, uint64_t first, uint64_t n, struct blockbuf *b)
{
	hid_t g = H5Gcreate2(f, "PartType1", H5P_DEFAULT, gcpl, H5P_DEFAULT);
	hid_t dp = -1, di = -1;
	uint64_t off, j;
	int k, rc = -1;

	if (g < 0)
		return -1;
	dp = make_dset(g, "Coordinates", H5T_IEEE_F64LE, n, 3);
	di = make_dset(g, "ParticleIDs", H5T_STD_U64LE, n, 1);
	if (dp < 0 || di < 0)
		goto out;
	for (off = 0; off < n; off += BLOCK) {
		uint64_t m = n - off < BLOCK ? n - off : BLOCK;

		for (j = 0; j < m; j++) {
			uint64_t s = (c->key + 1) ^ ((first + off + j) * GOLDEN) ^ 0xD1B54A32D192ED03ull;

			for (k = 0; k < 3; k++)
				b->pos[3 * j + (uint64_t)k] = wrap(uniform(&s) * c->box, c->box);
			b->ids[j] = c->gas + first + off + j + 1;
		}
		if (put_rows(dp, H5T_NATIVE_DOUBLE, off, m, 3, b->pos) < 0 ||
		    put_rows(di, H5T_NATIVE_UINT64, off, m, 1, b->ids) < 0)
			goto out;
	}
	rc = 0;
out:
	if (di >= 0)
		H5Dclose(di);
	if (dp >= 0)
		H5Dclose(dp);
	H5Gclose(g);
	return rc;
}

/* Closes a file written under its temporary name (outfile.h); the renames wait for commit_files,
 * once every file of the mock is whole, so that a failure leaves no mix of new and old chunks. */
static int finish_file(hid_t f, sm_outfile *of, int rc, sm_error *err)
{
	if (f >= 0 && H5Fclose(f) < 0 && rc == 0)
		rc = sm_error_set(err, SM_EIO, "'%s': closing failed", of->tmp);
	if (rc != 0)
		sm_outfile_abort(of);
	return rc;
}

/* Renames (ok) or removes (!ok) the temporary files of[0..n). The mock is data that can be made
 * again: its files are not synced one by one (nosync). */
static int commit_files(sm_outfile *of, uint32_t n, int ok, sm_error *err)
{
	uint32_t i;
	int rc = 0;

	for (i = 0; of != NULL && i < n; i++) {
		if (of[i].tmp == NULL)
			continue;
		if (ok && rc == 0) {
			of[i].nosync = 1;
			rc = sm_outfile_commit(&of[i], err);
		} else {
			sm_outfile_abort(&of[i]);
		}
	}
	return rc;
}

/* A temporary for path in *of, its descriptor closed (HDF5 opens the file itself). */
static int start_file(sm_outfile *of, const char *path, sm_error *err)
{
	int rc = sm_outfile_open(of, path, NULL, 0, err);

	if (rc == 0) {
		close(of->fd);
		of->fd = -1;
	}
	return rc;
}

static int write_snapshot(ctx *c, sm_error *err)
{
	struct blockbuf b = {0};
	char path[SM_PATH_MAX];
	uint64_t gfirst = 0, dfirst = 0;
	uint32_t i;
	int rc = 0;

	if (!c->o->header_only) {
		b.pos = malloc(BLOCK * 3 * sizeof(double));
		b.u = malloc(BLOCK * 5 * sizeof(float));
		b.ids = malloc(BLOCK * sizeof(uint64_t));
		if (b.pos == NULL || b.u == NULL || b.ids == NULL) {
			rc = sm_error_set(err, SM_ENOMEM, "mock: out of memory for write blocks");
			goto out;
		}
		b.xe = b.u + BLOCK;
		b.sfr = b.u + 2 * BLOCK;
		b.mass = b.u + 3 * BLOCK;
		b.dens = b.u + 4 * BLOCK;
	}
	for (i = 0; i < c->o->files; i++) {
		sm_outfile *of = &c->snapf[i];
		hid_t f;

		snprintf(path, sizeof(path), "%s/snap_%03d.%u.hdf5", c->snapdir, c->o->snap, i);
		if ((rc = start_file(of, path, err)) != 0)
			goto out;
		f = H5Fcreate(of->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
		if (f < 0) {
			rc = sm_error_set(err, SM_EIO, "cannot create '%s'", of->tmp);
			sm_outfile_abort(of);
			goto out;
		}
		if (write_snap_header(c, f, i) < 0 ||
		    (!c->o->header_only && c->chunk_gas[i] > 0 &&
		     write_gas(c, f, gfirst, c->chunk_gas[i], &b) < 0) ||
		    (!c->o->header_only && c->chunk_dm[i] > 0 &&
		     write_dm(c, f, dfirst, c->chunk_dm[i], &b) < 0))
			rc = sm_error_set(err, SM_EIO, "'%s': writing failed (disk full?)", of->tmp);
		if ((rc = finish_file(f, of, rc, err)) != 0)
			goto out;
		gfirst += c->chunk_gas[i];
		dfirst += c->chunk_dm[i];
	}
out:
	free(b.pos);
	free(b.u);
	free(b.ids);
	return rc;
}

/* --- the catalogue ---------------------------------------------------------------------- */

static int write_catalog(ctx *c, sm_error *err)
{
	uint32_t nfiles = c->o->files / 2 < 2 ? 2 : c->o->files / 2;
	uint32_t *order = NULL, i, nonempty = nfiles - 1;
	uint64_t s = c->key ^ 0xC47A1060ull, gfirst = 0, nids_total = 0;
	char path[SM_PATH_MAX];
	sm_outfile *of;
	float *fbuf = NULL;
	int32_t *ibuf = NULL;
	int rc = 0;

	order = malloc((c->nh ? c->nh : 1) * sizeof(*order));
	fbuf = malloc((c->nh ? c->nh : 1) * 3 * sizeof(float));
	ibuf = malloc((c->nh ? c->nh : 1) * sizeof(int32_t));
	if (order == NULL || fbuf == NULL || ibuf == NULL) {
		rc = sm_error_set(err, SM_ENOMEM, "mock: out of memory for %u groups", c->nh);
		goto out;
	}
	for (i = 0; i < c->nh; i++) {
		order[i] = i;
		nids_total += c->h[i].ncells;
	}
	for (i = c->nh; i > 1; i--) {
		uint32_t j = (uint32_t)(splitmix64(&s) % i), t = order[i - 1];

		order[i - 1] = order[j];
		order[j] = t;
	}
	for (i = 0; i < nfiles; i++) {
		/* chunk 1 is empty; the groups go evenly to the others, earlier ones first */
		uint32_t slot = i == 0 ? 0 : i - 1, ng = 0, j;
		uint64_t nids = 0;
		hid_t f, hg = -1, gg = -1, sg = -1;
		int e = 0;

		if (i != 1)
			ng = c->nh / nonempty + (slot < c->nh % nonempty ? 1 : 0);
		for (j = 0; j < ng; j++)
			nids += c->h[order[gfirst + j]].ncells;
		snprintf(path, sizeof(path), "%s/fof_subhalo_tab_%03d.%u.hdf5", c->groupdir,
			 c->o->snap, i);
		of = &c->catf[i];
		if ((rc = start_file(of, path, err)) != 0)
			goto out;
		f = H5Fcreate(of->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
		if (f < 0) {
			rc = sm_error_set(err, SM_EIO, "cannot create '%s'", of->tmp);
			sm_outfile_abort(of);
			goto out;
		}
		hg = H5Gcreate2(f, "Header", H5P_DEFAULT, gcpl, H5P_DEFAULT);
		gg = H5Gcreate2(f, "Group", H5P_DEFAULT, gcpl, H5P_DEFAULT);
		sg = H5Gcreate2(f, "Subhalo", H5P_DEFAULT, gcpl, H5P_DEFAULT);
		e |= hg < 0 || gg < 0 || sg < 0;
		if (!e) {
			e |= put_i32(hg, "Ngroups_ThisFile", (int32_t)ng);
			e |= put_i32(hg, "Ngroups_Total", (int32_t)c->nh);
			e |= put_i32(hg, "Nsubgroups_ThisFile", 0);
			e |= put_i32(hg, "Nsubgroups_Total", 0);
			e |= put_i32(hg, "NumFiles", (int32_t)nfiles);
			if (nids <= INT32_MAX)
				e |= put_i32(hg, "Nids_ThisFile", (int32_t)nids);
			else
				e |= put_i64(hg, "Nids_ThisFile", (int64_t)nids);
			e |= put_i64(hg, "Nids_Total", (int64_t)nids_total);
			e |= put_f64(hg, "BoxSize", c->box);
			e |= put_f64(hg, "HubbleParam", HUBBLE);
			e |= put_f64(hg, "Omega0", OMEGA0);
			e |= put_f64(hg, "OmegaLambda", OMEGA_L);
			e |= put_f64(hg, "Redshift", 0.0);
			e |= put_f64(hg, "Time", 1.0);
		}
		if (!e && ng > 0) {
			static const char *const fnames[] = {"GroupPos", "Group_M_Crit200",
							     "Group_R_Crit200", "GroupMass"};
			int k;

			for (k = 0; k < 4 && !e; k++) {
				hid_t d = make_dset(gg, fnames[k], H5T_IEEE_F32LE, ng, k == 0 ? 3 : 1);

				for (j = 0; j < ng; j++) {
					const halo *h = &c->h[order[gfirst + j]];
					double m_code = h->m_msun * HUBBLE / 1e10;

					if (k == 0) {
						fbuf[3 * j] = (float)h->pos[0];
						fbuf[3 * j + 1] = (float)h->pos[1];
						fbuf[3 * j + 2] = (float)h->pos[2];
					} else {
						fbuf[j] = (float)(k == 1 ? m_code
								  : k == 2 ? h->r200 : 1.3 * m_code);
					}
				}
				e |= d < 0 ||
				     H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT,
					      fbuf) < 0;
				if (d >= 0)
					H5Dclose(d);
			}
			for (k = 0; k < 3 && !e; k++) {
				static const char *const inames[] = {"GroupLen", "GroupNsubs",
								     "GroupFirstSub"};
				hid_t d = make_dset(gg, inames[k], H5T_STD_I32LE, ng, 1);

				for (j = 0; j < ng; j++) {
					uint64_t n = c->h[order[gfirst + j]].ncells;

					ibuf[j] = k == 0 ? (int32_t)(n > INT32_MAX ? INT32_MAX : n)
					                 : k == 1 ? 0 : -1;
				}
				e |= d < 0 ||
				     H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT,
					      ibuf) < 0;
				if (d >= 0)
					H5Dclose(d);
			}
		}
		if (sg >= 0)
			H5Gclose(sg);
		if (gg >= 0)
			H5Gclose(gg);
		if (hg >= 0)
			H5Gclose(hg);
		if (e)
			rc = sm_error_set(err, SM_EIO, "'%s': writing failed (disk full?)", of->tmp);
		if ((rc = finish_file(f, of, rc, err)) != 0)
			goto out;
		gfirst += ng;
	}
out:
	free(ibuf);
	free(fbuf);
	free(order);
	return rc;
}

/* --- set-up ----------------------------------------------------------------------------- */

static int validate(const sm_mock_options *o, uint64_t gas, sm_error *err)
{
	double minbox = o->halos > 0 ? 12000.0 : 5000.0;

	if (o->header_only && gas == 0)
		return sm_error_set(err, SM_EINVAL, "mock: --header-only needs --gas-total N > 0");
	if (!o->header_only && gas == 0)
		return sm_error_set(err, SM_EINVAL, "mock: --gas must be at least 1");
	if (!o->header_only && gas > ((uint64_t)1 << 40))
		return sm_error_set(err, SM_EINVAL, "mock: --gas %llu is too many cells to write",
				    (unsigned long long)gas);
	if (o->dm > ((uint64_t)1 << 40))
		return sm_error_set(err, SM_EINVAL,
				    "mock: --dm %llu is too many dark-matter particles to write",
				    (unsigned long long)o->dm);
	if (o->files < 1 || o->files > MAX_FILES)
		return sm_error_set(err, SM_EINVAL, "mock: --files %u is outside [1, %u]", o->files,
				    MAX_FILES);
	if (o->halos > MAX_HALOS || o->small_halos > MAX_HALOS)
		return sm_error_set(err, SM_EINVAL, "mock: at most %u halos of each kind",
				    MAX_HALOS);
	if (o->snap < 0 || o->snap > 999)
		return sm_error_set(err, SM_EINVAL, "mock: snapshot number %d is outside [0, 999]",
				    o->snap);
	if (!(o->box_size >= minbox) || !(o->box_size <= 1e7))
		return sm_error_set(err, SM_EINVAL,
				    "mock: box size %g ckpc/h is outside [%g, 1e7] (the halos' 2 R200 "
				    "spheres must fit)", o->box_size, minbox);
	return 0;
}

static void make_halos(ctx *c)
{
	uint64_t s = c->key ^ 0x4A105ull;
	uint32_t i;
	int k;

	for (i = 0; i < c->nh; i++) {
		halo *h = &c->h[i];
		int big = i < c->o->halos;
		double lo = big ? log(1.2e14) : log(1e12), hi = big ? log(1e15) : log(5e13);

		h->big = big;
		h->m_msun = exp(lo + (hi - lo) * uniform(&s));
		h->r200 = r200_of(h->m_msun);
		for (k = 0; k < 3; k++)
			h->pos[k] = uniform(&s) * c->box;
		if (i == 0 && big)
			h->pos[0] = 0.5 * h->r200;
		if (i == 1 && big)
			h->pos[1] = c->box - 0.7 * h->r200;
	}
}

/* Gas per snapshot chunk: chunk 1 none (files >= 2), others weighted 1 + (i mod 4). */
static int split_chunks(ctx *c, sm_error *err)
{
	uint32_t f = c->o->files, i;
	uint64_t wsum = 0, given = 0;

	for (i = 0; i < f; i++)
		wsum += (f >= 2 && i == 1) ? 0 : 1 + i % 4;
	for (i = 0; i < f; i++) {
		uint64_t w = (f >= 2 && i == 1) ? 0 : 1 + i % 4;

		/* gas * w / wsum without overflow: gas < 2^63 and w <= 4 */
		c->chunk_gas[i] = (uint64_t)((long double)c->gas * (long double)w / (long double)wsum);
		given += c->chunk_gas[i];
		c->chunk_dm[i] = c->dm / f + (i < c->dm % f ? 1 : 0);
	}
	c->chunk_gas[0] += c->gas - given;
	for (i = 0; i < f; i++)
		if (c->chunk_gas[i] > INT32_MAX || c->chunk_dm[i] > INT32_MAX)
			return sm_error_set(err, SM_EINVAL,
					    "mock: %llu %s in %u files puts more than 2^31 - 1 in "
					    "one chunk (NumPart_ThisFile is int32): use more --files",
					    (unsigned long long)(c->chunk_gas[i] > INT32_MAX ? c->gas
											: c->dm),
					    c->chunk_gas[i] > INT32_MAX ? "cells" : "dark-matter particles",
					    f);
	return 0;
}

int sm_mock_write(const char *outdir, const sm_mock_options *o, sm_error *err)
{
	ctx c;
	uint64_t s;
	uint32_t i;
	int rc, made_outdir = 0, made_snapdir = 0, made_groupdir = 0;

	sm_hdf5_quiet();
	memset(&c, 0, sizeof(c));
	c.o = o;
	c.gas = o->header_only ? o->gas_total : o->gas;
	if (outdir == NULL || *outdir == '\0')
		return sm_error_set(err, SM_EINVAL, "mock: empty output directory");
	if ((rc = validate(o, c.gas, err)) != 0)
		return rc;
	s = o->seed;
	c.key = splitmix64(&s);
	c.box = o->box_size;
	c.dm = o->dm != 0 ? o->dm : c.gas / 16 + o->files;
	c.mass = OMEGA_B * RHO_CRIT * c.box * c.box * c.box / (double)c.gas;
	c.nh = o->halos + o->small_halos;
	if (snprintf(c.snapdir, sizeof(c.snapdir), "%s/snapdir_%03d", outdir, o->snap) >=
		    (int)sizeof(c.snapdir) ||
	    snprintf(c.groupdir, sizeof(c.groupdir), "%s/groups_%03d", outdir, o->snap) >=
		    (int)sizeof(c.groupdir))
		return sm_error_set(err, SM_EOVERFLOW, "'%s': path too long", outdir);
	c.h = calloc(c.nh ? c.nh : 1, sizeof(*c.h));
	c.chunk_gas = calloc(o->files, sizeof(uint64_t));
	c.chunk_dm = calloc(o->files, sizeof(uint64_t));
	c.snapf = calloc(o->files, sizeof(*c.snapf));
	c.catf = calloc(o->files / 2 < 2 ? 2 : o->files / 2, sizeof(*c.catf));
	if (c.h == NULL || c.chunk_gas == NULL || c.chunk_dm == NULL || c.snapf == NULL ||
	    c.catf == NULL) {
		rc = sm_error_set(err, SM_ENOMEM, "mock: out of memory");
		goto out;
	}
	for (i = 0; i < o->files; i++)
		c.snapf[i].fd = -1;
	for (i = 0; i < (o->files / 2 < 2 ? 2 : o->files / 2); i++)
		c.catf[i].fd = -1;
	if (make_plists() != 0) {
		rc = sm_error_set(err, SM_ENOMEM, "mock: cannot create HDF5 property lists");
		goto out;
	}
	make_halos(&c);
	if ((rc = split_chunks(&c, err)) != 0)
		goto out;
	made_outdir = access(outdir, F_OK) != 0;
	made_snapdir = access(c.snapdir, F_OK) != 0;
	made_groupdir = access(c.groupdir, F_OK) != 0;
	if ((rc = mkdir_p(c.snapdir, err)) != 0 || (rc = mkdir_p(c.groupdir, err)) != 0)
		goto out;
	if ((rc = write_snapshot(&c, err)) != 0)
		goto out;
	if (o->header_only) {
		/* expected gas cells per halo, for GroupLen */
		for (i = 0; i < c.nh; i++)
			c.h[i].ncells = (uint64_t)((double)c.gas *
						   (c.h[i].big ? 0.45 / o->halos
							       : 0.10 / o->small_halos));
	}
	rc = write_catalog(&c, err);
out:
	/* every file whole: rename them all; else remove every temporary file and the directories
	 * made here (rmdir leaves a directory that held something before) */
	{
		uint32_t ncat = o->files / 2 < 2 ? 2 : o->files / 2, k;
		char path[SM_PATH_MAX];
		int ok = rc == 0, rc2;

		if (c.snapdir[0] != '\0') {
			rc2 = commit_files(c.snapf, o->files, ok, err);
			if (rc2 != 0 && rc == 0)
				rc = rc2;
			rc2 = commit_files(c.catf, ncat, rc == 0, err);
			if (rc2 != 0 && rc == 0)
				rc = rc2;
		}
		if (rc == 0) {
			/* chunks of an earlier, larger mock of the same snapshot would confuse
			 * readers */
			for (k = o->files;; k++) {
				snprintf(path, sizeof(path), "%s/snap_%03d.%u.hdf5", c.snapdir,
					 o->snap, k);
				if (unlink(path) != 0)
					break;
			}
			for (k = ncat;; k++) {
				snprintf(path, sizeof(path), "%s/fof_subhalo_tab_%03d.%u.hdf5",
					 c.groupdir, o->snap, k);
				if (unlink(path) != 0)
					break;
			}
		} else {
			if (made_snapdir)
				rmdir(c.snapdir);
			if (made_groupdir)
				rmdir(c.groupdir);
			if (made_outdir)
				rmdir(outdir);
		}
	}
	free_plists();
	free(c.catf);
	free(c.snapf);
	free(c.chunk_dm);
	free(c.chunk_gas);
	free(c.h);
	return rc;
}
