/*
 * `snapmem info`: what a snapshot and its group catalogue hold, from headers and the catalogue's
 * masses (no particle data is read). Particle counts per type (64-bit), chunk files, box,
 * cosmology, redshift, units; the gas fields with their on-disk type, shape and bytes; the number
 * of groups and how many pass the mass cut (M200c * 1e10 / h > --mass-min, strictly).
 *
 * Opened by base path (or a single file whose header says it is the whole snapshot), every chunk
 * is checked: it exists, its counts add up, every gas field is there with the same type and the
 * right number of rows. A single chunk of a multi-file snapshot is described from its header.
 * Exit 0 done, 2 bad input (one line on stderr naming the file and the fault), 3 out of memory.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "snapmem/snapshot.h"
#include "snapmem/units.h"
#include "snapshot/snapshot-internal.h"

enum { IO_BASE = CLI_ID_FIRST, IO_SNAP, IO_SNAPSHOT, IO_CATALOG, IO_MASS_MIN, IO_FORMAT };

static const cli_opt info_opts[] = {
	{"base-path", 0, CLI_DIR, "DIR", "none",
	 "a snapshot in the illustris layout (its catalogue is found too), with --snap", IO_BASE, 0},
	{"snap", 0, CLI_NUMBER, "N", "none", "the snapshot number under --base-path", IO_SNAP, 0},
	{"snapshot", 0, CLI_FILE, "FILE", "none", "one snapshot file (instead of --base-path)",
	 IO_SNAPSHOT, 0},
	{"catalog", 0, CLI_FILE, "FILE", "BASE/groups_NNN/ when present",
	 "a group-catalogue file", IO_CATALOG, 0},
	{"mass-min", 0, CLI_NUMBER, "MSUN", "1e14",
	 "the mass cut: halos with M200c strictly above MSUN solar masses", IO_MASS_MIN, 0},
	{"format", 0, CLI_CHOICE, "table|json", "table", "the output", IO_FORMAT, 0},
	{NULL, 0, CLI_FLAG, NULL, NULL, NULL, 0, 0},
};

const cli_cmd cli_cmd_info = {
	"info", "what a snapshot and its group catalogue hold",
	"usage: snapmem info [--base-path DIR --snap N | --snapshot FILE] [--catalog FILE]\n"
	"                    [--mass-min MSUN] [--format table|json]\n",
	"Particle counts, chunk files, box, cosmology, units and the gas fields of a snapshot, from\n"
	"its headers (no particle data is read), and the halos above the mass cut.\n",
	info_opts, 0, NULL, cmd_info,
};

struct field {
	char *name;
	sm_field_info fi;
};

struct facts {
	sm_snapshot s;
	int scanned;
	struct field *fields;
	size_t nfields;
	int have_cat;
	sm_catalog c;
	char cat_path[SM_PATH_MAX + 32];
	double h;
	uint64_t above;
};

/* Expected components of the TNG gas fields the pipeline reads; 0 for any other. */
static int known_ncomp(const char *name)
{
	static const char *const vec[] = {"Coordinates", "Velocities"};
	static const char *const sc[] = {"InternalEnergy", "ElectronAbundance",
					 "StarFormationRate", "Masses", "Density", "ParticleIDs"};
	size_t i;

	for (i = 0; i < 2; i++)
		if (strcmp(name, vec[i]) == 0)
			return 3;
	for (i = 0; i < sizeof(sc) / sizeof(sc[0]); i++)
		if (strcmp(name, sc[i]) == 0)
			return 1;
	return 0;
}

static int gather_fields(struct facts *f, sm_error *err)
{
	char **names = NULL, path[SM_PATH_MAX];
	size_t n = 0, i;
	int rc;

	if ((rc = sm_snapshot_field_names(&f->s, 0, &names, &n, err)) != 0)
		return rc;
	f->fields = calloc(n ? n : 1, sizeof(*f->fields));
	if (f->fields == NULL) {
		sm_field_names_free(names, n);
		return sm_error_set(err, SM_ENOMEM, "out of memory");
	}
	for (i = 0; i < n; i++) {
		struct field *fl = &f->fields[i];
		int want = known_ncomp(names[i]);

		fl->name = names[i];
		names[i] = NULL;
		f->nfields = i + 1;
		if ((rc = sm_snapshot_field_info(&f->s, 0, fl->name, &fl->fi, err)) != 0)
			break;
		if (f->scanned) {
			if ((rc = sm_snapshot_check_field(&f->s, 0, fl->name, want, err)) != 0)
				break;
		} else if (want > 0 && fl->fi.ncomp != want) {
			sm_snapshot_chunk_path(&f->s, 0, path, sizeof(path), NULL);
			rc = sm_error_set(err, SM_EFORMAT,
					  "'%s': /PartType0/%s has %d component%s per cell, expected "
					  "%d", path, fl->name, fl->fi.ncomp,
					  fl->fi.ncomp == 1 ? "" : "s", want);
			break;
		}
	}
	sm_field_names_free(names, n);
	return rc;
}

static int gather_catalog(struct facts *f, const char *cat, double mass_min, sm_error *err)
{
	float *m = NULL;
	uint64_t i, n;
	int rc;

	if (cat != NULL) {
		rc = sm_catalog_open_file(&f->c, cat, err);
		snprintf(f->cat_path, sizeof(f->cat_path), "%s", cat);
	} else if (f->s.base[0] != '\0') {
		rc = sm_catalog_open_base(&f->c, f->s.base, f->s.snap, err);
		if (rc == SM_ENOTFOUND) {
			sm_error_clear(err);
			return 0;
		}
		snprintf(f->cat_path, sizeof(f->cat_path), "%s/groups_%03d", f->s.base, f->s.snap);
	} else {
		return 0;
	}
	if (rc != 0)
		return rc;
	f->have_cat = 1;
	f->h = f->c.hubble_param > 0 ? f->c.hubble_param : f->s.header.hubble_param;
	if (!(f->h > 0))
		return sm_error_set(err, SM_EFORMAT, "'%s': HubbleParam is missing or not positive: "
				    "cannot convert Group_M_Crit200 to Msun", f->cat_path);
	if ((rc = sm__catalog_scan(&f->c, err)) != 0)
		return rc;
	n = f->c.ngroups_read;
	if (n > SIZE_MAX / sizeof(float))
		return sm_error_set(err, SM_EOVERFLOW, "'%s': %llu groups", f->cat_path,
				    (unsigned long long)n);
	m = malloc((n ? n : 1) * sizeof(float));
	if (m == NULL) {
		rc = sm_error_set(err, SM_ENOMEM, "'%s': cannot hold the masses of %llu groups",
				  f->cat_path, (unsigned long long)n);
		rc = SM_ENOMEM;
		goto out;
	}
	if (n > 0 &&
	    (rc = sm_catalog_read_group_field(&f->c, "Group_M_Crit200", SM_DTYPE_F32, 1, m, err)) != 0)
		goto out;
	for (i = 0; i < n; i++)
		if ((double)m[i] * 1e10 / f->h > mass_min)
			f->above++;
	rc = 0;
out:
	free(m);
	return rc;
}

static char *commas(uint64_t v, char *buf, size_t len)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v), i, j = 0;

	for (i = 0; i < n && (size_t)j + 2 < len; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			buf[j++] = ',';
		buf[j++] = tmp[i];
	}
	buf[j] = '\0';
	return buf;
}

static const char *source_name(const struct facts *f)
{
	return f->s.base[0] != '\0' ? f->s.base : f->s.pattern;
}

static int headers_only(const struct facts *f)
{
	return f->nfields == 0 && f->s.header.npart_total[0] > 0;
}

static void print_table(const struct facts *f, double mass_min)
{
	const sm_header *h = &f->s.header;
	char b1[48], b2[48];
	size_t i;
	int t;

	if (f->s.base[0] != '\0')
		printf("snapshot    '%s', snapshot %03d: %lld chunk file%s\n", f->s.base, f->s.snap,
		       (long long)f->s.nfiles, f->s.nfiles == 1 ? "" : "s");
	else
		printf("snapshot    '%s': one file%s\n", f->s.pattern,
		       h->num_files > 1 ? " (chunk of a multi-file snapshot; counts are the header "
					  "totals, chunks not checked)" : "");
	if (h->num_files > 1 && f->s.base[0] == '\0')
		printf("            NumFilesPerSnapshot %lld\n", (long long)h->num_files);
	printf("particles  ");
	for (t = 0; t < SM_NTYPES; t++)
		printf(" type %d: %s%s", t, commas(h->npart_total[t], b1, sizeof(b1)),
		       t + 1 < SM_NTYPES ? "," : "\n");
	printf("box         %g (code length; ckpc/h for TNG), redshift %g, time %g\n", h->box_size,
	       h->redshift, h->time);
	printf("cosmology   h %g, Omega0 %g, OmegaBaryon %g, OmegaLambda %g\n", h->hubble_param,
	       h->omega0, h->omega_baryon, h->omega_lambda);
	printf("units       length %.7g cm, mass %.7g g, velocity %.7g cm/s%s\n", h->unit_length_cm,
	       h->unit_mass_g, h->unit_velocity_cm_s, h->has_units ? "" : " (defaults: not in header)");
	if (headers_only(f)) {
		printf("gas fields  none: no datasets (headers only)\n");
	} else if (f->nfields == 0) {
		printf("gas fields  none: no gas cells\n");
	} else {
		printf("gas fields  (PartType0)\n");
		printf("  %-20s %-8s %-24s %12s  %s\n", "name", "dtype", "shape", "size", "bytes");
		for (i = 0; i < f->nfields; i++) {
			const sm_field_info *fi = &f->fields[i].fi;
			char shape[64];

			if (fi->ncomp == 1)
				snprintf(shape, sizeof(shape), "[%llu]", (unsigned long long)fi->count);
			else
				snprintf(shape, sizeof(shape), "[%llu,%d]",
					 (unsigned long long)fi->count, fi->ncomp);
			printf("  %-20s %-8s %-24s %12s  %s\n", f->fields[i].name,
			       sm_dtype_name(fi->disk_type), shape,
			       sm_format_iec(fi->bytes, b1, sizeof(b1)),
			       commas(fi->bytes, b2, sizeof(b2)));
		}
	}
	if (!f->have_cat) {
		printf("halos       no group catalogue\n");
		return;
	}
	printf("halos       '%s': %s groups (Ngroups_Total), %s above %.4g Msun", f->cat_path,
	       commas(f->c.ngroups_total, b1, sizeof(b1)), commas(f->above, b2, sizeof(b2)),
	       mass_min);
	if (f->c.ngroups_read != f->c.ngroups_total)
		printf(" among the %llu groups of this chunk", (unsigned long long)f->c.ngroups_read);
	printf("\n");
}

static json_t *u64_array(const uint64_t *v, int n)
{
	json_t *a = json_array();
	int i;

	for (i = 0; i < n; i++)
		json_array_append_new(a, json_integer((json_int_t)v[i]));
	return a;
}

static int print_json(const struct facts *f, double mass_min, sm_error *err)
{
	const sm_header *h = &f->s.header;
	json_t *root = json_object(), *fields = json_array(), *cat, *units, *mt = json_array();
	char *text;
	size_t i;
	int t;

	json_object_set_new(root, "source", json_string(source_name(f)));
	json_object_set_new(root, "source_kind",
			    json_string(f->s.base[0] != '\0' ? "base_path" : "snapshot"));
	json_object_set_new(root, "snap", json_integer(f->s.snap));
	json_object_set_new(root, "chunk_files", json_integer(f->s.nfiles));
	json_object_set_new(root, "num_files_per_snapshot", json_integer(h->num_files));
	json_object_set_new(root, "chunks_checked", json_boolean(f->scanned));
	json_object_set_new(root, "npart_total", u64_array(h->npart_total, SM_NTYPES));
	json_object_set_new(root, "npart_this_file", u64_array(h->npart_file0, SM_NTYPES));
	for (t = 0; t < SM_NTYPES; t++)
		json_array_append_new(mt, json_real(h->mass_table[t]));
	json_object_set_new(root, "mass_table", mt);
	json_object_set_new(root, "box_size", json_real(h->box_size));
	json_object_set_new(root, "redshift", json_real(h->redshift));
	json_object_set_new(root, "time", json_real(h->time));
	json_object_set_new(root, "hubble_param", json_real(h->hubble_param));
	json_object_set_new(root, "omega0", json_real(h->omega0));
	json_object_set_new(root, "omega_baryon", json_real(h->omega_baryon));
	json_object_set_new(root, "omega_lambda", json_real(h->omega_lambda));
	units = json_object();
	json_object_set_new(units, "length_cm", json_real(h->unit_length_cm));
	json_object_set_new(units, "mass_g", json_real(h->unit_mass_g));
	json_object_set_new(units, "velocity_cm_s", json_real(h->unit_velocity_cm_s));
	json_object_set_new(units, "from_header", json_boolean(h->has_units));
	json_object_set_new(root, "units", units);
	json_object_set_new(root, "headers_only", json_boolean(headers_only(f)));
	for (i = 0; i < f->nfields; i++) {
		const sm_field_info *fi = &f->fields[i].fi;
		json_t *o = json_object(), *shape = json_array();

		json_array_append_new(shape, json_integer((json_int_t)fi->count));
		if (fi->ncomp > 1)
			json_array_append_new(shape, json_integer(fi->ncomp));
		json_object_set_new(o, "name", json_string(f->fields[i].name));
		json_object_set_new(o, "dtype", json_string(sm_dtype_name(fi->disk_type)));
		json_object_set_new(o, "shape", shape);
		json_object_set_new(o, "bytes", json_integer((json_int_t)fi->bytes));
		json_array_append_new(fields, o);
	}
	json_object_set_new(root, "gas_fields", fields);
	if (f->have_cat) {
		cat = json_object();
		json_object_set_new(cat, "path", json_string(f->cat_path));
		json_object_set_new(cat, "chunk_files", json_integer(f->c.nfiles));
		json_object_set_new(cat, "ngroups_total", json_integer((json_int_t)f->c.ngroups_total));
		json_object_set_new(cat, "nsubgroups_total",
				    json_integer((json_int_t)f->c.nsubgroups_total));
		json_object_set_new(cat, "groups_examined",
				    json_integer((json_int_t)f->c.ngroups_read));
		json_object_set_new(cat, "mass_min_msun", json_real(mass_min));
		json_object_set_new(cat, "halos_above_mass_min", json_integer((json_int_t)f->above));
		json_object_set_new(root, "catalog", cat);
	} else {
		json_object_set_new(root, "catalog", json_null());
	}
	text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (text == NULL)
		return sm_error_set(err, SM_ENOMEM, "cannot render JSON");
	puts(text);
	free(text);
	return 0;
}

int cmd_info(int argc, char **argv)
{
	const char *base = NULL, *snapfile = NULL, *cat = NULL, *format = "table";
	double mass_min = 1e14;
	struct facts f;
	sm_error err = {0};
	uint64_t snap = 0;
	cli_parser p;
	const cli_opt *o;
	const char *val;
	int have_snap = 0, rc, status = 0;
	size_t k;

	memset(&f, 0, sizeof(f));
	cli_parser_init(&p, &cli_cmd_info, argc, argv);
	while ((rc = cli_next(&p, &o, &val)) != CLI_END) {
		if (rc < 0)
			return cli_parse_status(rc);
		if (o->id == IO_BASE) {
			base = val;
		} else if (o->id == IO_SNAPSHOT) {
			snapfile = val;
		} else if (o->id == IO_CATALOG) {
			cat = val;
		} else if (o->id == IO_SNAP) {
			if (sm_parse_u64(p.name, val, &snap, &err) != 0)
				return cli_parse_error(&p, "%s", err.msg);
			if (snap > 99999)
				return cli_parse_error(&p, "--snap: '%s' is too large", val);
			have_snap = 1;
		} else if (o->id == IO_MASS_MIN) {
			if (sm_parse_double(p.name, val, 0, 1e30, &mass_min, &err) != 0)
				return cli_parse_error(&p, "%s", err.msg);
		} else if (o->id == IO_FORMAT) {
			if (strcmp(val, "table") != 0 && strcmp(val, "json") != 0)
				return cli_parse_error(&p, "--format: '%s' is not table or json", val);
			format = val;
		}
	}
	if ((base == NULL) == (snapfile == NULL))
		return cli_parse_error(&p, "give either --base-path DIR --snap N or --snapshot FILE");
	if (base != NULL && !have_snap)
		return cli_parse_error(&p, "--base-path needs --snap N");
	if (snapfile != NULL && have_snap)
		return cli_parse_error(&p, "--snap goes with --base-path, not --snapshot");

	rc = base != NULL ? sm_snapshot_open_base(&f.s, base, (int)snap, &err)
			  : sm_snapshot_open_file(&f.s, snapfile, &err);
	if (rc != 0)
		return cli_fail(&err);
	if (f.s.base[0] != '\0' || f.s.header.num_files == 1) {
		if ((rc = sm_snapshot_scan(&f.s, &err)) != 0)
			goto fail;
		f.scanned = 1;
	}
	if ((rc = gather_fields(&f, &err)) != 0 ||
	    (rc = gather_catalog(&f, cat, mass_min, &err)) != 0)
		goto fail;
	if (strcmp(format, "json") == 0) {
		if ((rc = print_json(&f, mass_min, &err)) != 0)
			goto fail;
	} else {
		print_table(&f, mass_min);
	}
	goto out;
fail:
	status = cli_fail(&err);
out:
	for (k = 0; k < f.nfields; k++)
		free(f.fields[k].name);
	free(f.fields);
	sm_catalog_release(&f.c);
	sm_snapshot_release(&f.s);
	return status;
}
