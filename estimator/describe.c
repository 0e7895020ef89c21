/*
 * Reading a pipeline description (docs/PIPELINES.md): libyaml's event stream is built into a small
 * tree of mappings, sequences and scalars, each with its line and column (anchors, aliases, tags
 * and more than one document are refused), then walked against the schema into an
 * sm_pipeline_desc whose names are resolved and checked before anything is evaluated: unknown keys,
 * quantities, functions, dtypes, options and option values (with the closest known name
 * suggested), a cycle among the let definitions, a stage id used twice, a free in a stage before
 * the allocation or after: an array that is not allocated later in the same stage, a per-halo array
 * that outlives the loop. Every error is one line "FILE:LINE:COL: what is wrong" (SM_EFORMAT).
 * What depends on the data (overflow, a count that is not an integer, an array allocated while
 * still live) is found when the description is replayed (interp.c), with the same line form.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "snapmem/units.h"

#include "describe.h"

/* ---- the YAML tree ------------------------------------------------------------------------- */

enum { Y_MAP, Y_SEQ, Y_SCALAR };

typedef struct ynode {
	int kind;
	int line, col;        /* 1-based */
	int quoted;           /* a quoted scalar: its text starts one column later */
	char *text;           /* scalar */
	struct ynode **kids;  /* map: key, value, key, value...; seq: items */
	size_t n, cap;
} ynode;

static void ynode_free(ynode *y)
{
	size_t i;

	if (y == NULL)
		return;
	for (i = 0; i < y->n; i++)
		ynode_free(y->kids[i]);
	free(y->kids);
	free(y->text);
	free(y);
}

static int ynode_add(ynode *p, ynode *k)
{
	if (p->n == p->cap) {
		size_t nc = p->cap ? 2 * p->cap : 8;
		ynode **nk = realloc(p->kids, nc * sizeof(*nk));

		if (nk == NULL)
			return -1;
		p->kids = nk;
		p->cap = nc;
	}
	p->kids[p->n++] = k;
	return 0;
}

struct rd {
	const char *file;
	sm_error *err;
	sm_pipeline_desc *d;
};

static int ferr(struct rd *R, int line, int col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int ferr(struct rd *R, int line, int col, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return sm_error_set(R->err, SM_EFORMAT, "%s:%d:%d: %s", R->file, line, col, msg);
}

static int nomem(struct rd *R)
{
	return sm_error_set(R->err, SM_ENOMEM, "%s: out of memory reading the description", R->file);
}

static const char *event_what(yaml_event_type_t t)
{
	switch (t) {
	case YAML_ALIAS_EVENT: return "an alias";
	default: return "an event";
	}
}

/* Builds the tree of the one document in text. */
static int load_tree(struct rd *R, const char *text, size_t len, ynode **out)
{
	yaml_parser_t p;
	yaml_event_t ev;
	ynode *stack[SM__DESC_MAX_DEPTH + 1], *root = NULL;
	int depth = 0, rc = 0, done = 0, docs = 0;

	*out = NULL;
	if (!yaml_parser_initialize(&p))
		return nomem(R);
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	while (!done) {
		ynode *y = NULL;
		int line, col;

		if (!yaml_parser_parse(&p, &ev)) {
			const yaml_mark_t *m = p.problem != NULL ? &p.problem_mark : &p.context_mark;

			rc = ferr(R, (int)m->line + 1, (int)m->column + 1, "not YAML: %s%s%s",
				  p.problem != NULL ? p.problem : "a syntax error",
				  p.context != NULL ? " " : "", p.context != NULL ? p.context : "");
			break;
		}
		line = (int)ev.start_mark.line + 1;
		col = (int)ev.start_mark.column + 1;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1)
				rc = ferr(R, line, col, "more than one YAML document");
			break;
		case YAML_ALIAS_EVENT:
			rc = ferr(R, line, col, "%s: anchors and aliases are not allowed",
				  event_what(ev.type));
			break;
		case YAML_SCALAR_EVENT:
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT: {
			const yaml_char_t *anchor = ev.type == YAML_SCALAR_EVENT
				? ev.data.scalar.anchor : ev.type == YAML_SEQUENCE_START_EVENT
				? ev.data.sequence_start.anchor : ev.data.mapping_start.anchor;
			const yaml_char_t *tag = ev.type == YAML_SCALAR_EVENT
				? ev.data.scalar.tag : ev.type == YAML_SEQUENCE_START_EVENT
				? ev.data.sequence_start.tag : ev.data.mapping_start.tag;

			if (anchor != NULL) {
				rc = ferr(R, line, col, "anchor '&%s': anchors and aliases are not "
					  "allowed", (const char *)anchor);
				break;
			}
			if (tag != NULL) {
				rc = ferr(R, line, col, "tag '%s': tags are not allowed",
					  (const char *)tag);
				break;
			}
			if ((y = calloc(1, sizeof(*y))) == NULL) {
				rc = nomem(R);
				break;
			}
			y->line = line;
			y->col = col;
			if (ev.type == YAML_SCALAR_EVENT) {
				y->kind = Y_SCALAR;
				y->quoted = ev.data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
					    ev.data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
				if (memchr(ev.data.scalar.value, '\0', ev.data.scalar.length) != NULL) {
					free(y);
					y = NULL;
					rc = ferr(R, line, col, "a scalar holds a NUL character");
					break;
				}
				y->text = strndup((const char *)ev.data.scalar.value,
						  ev.data.scalar.length);
				if (y->text == NULL) {
					free(y);
					y = NULL;
					rc = nomem(R);
					break;
				}
			} else {
				y->kind = ev.type == YAML_MAPPING_START_EVENT ? Y_MAP : Y_SEQ;
			}
			if (depth == 0) {
				if (root != NULL) {
					ynode_free(y);
					rc = ferr(R, line, col, "more than one YAML document");
					break;
				}
				root = y;
			} else if (ynode_add(stack[depth - 1], y) != 0) {
				ynode_free(y);
				rc = nomem(R);
				break;
			}
			if (y->kind != Y_SCALAR) {
				if (depth >= SM__DESC_MAX_DEPTH) {
					rc = ferr(R, line, col, "nested deeper than %d levels",
						  SM__DESC_MAX_DEPTH);
					break;
				}
				stack[depth++] = y;
			}
			break;
		}
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			if (depth > 0)
				depth--;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
		if (rc != 0)
			break;
	}
	yaml_parser_delete(&p);
	if (rc == 0 && root == NULL)
		rc = ferr(R, 1, 1, "empty description: a mapping with pipeline: and stages: is "
			  "expected");
	if (rc != 0) {
		ynode_free(root);
		return rc;
	}
	*out = root;
	return 0;
}

/* ---- schema helpers ------------------------------------------------------------------------ */

static const char *kind_word(int k)
{
	return k == Y_MAP ? "a mapping" : k == Y_SEQ ? "a sequence" : "a scalar";
}

static int want(struct rd *R, const ynode *y, int kind, const char *what)
{
	if (y->kind == kind)
		return 0;
	return ferr(R, y->line, y->col, "%s must be %s, not %s", what, kind_word(kind),
		    kind_word(y->kind));
}

/* Checks the keys of map y against allowed (NULL-terminated): scalar, known, not repeated. */
static int check_keys(struct rd *R, const ynode *y, const char *const *allowed, const char *what)
{
	size_t i, j, n = 0;

	while (allowed[n] != NULL)
		n++;
	for (i = 0; i < y->n; i += 2) {
		const ynode *k = y->kids[i];
		const char *near;
		int known = 0;

		if (k->kind != Y_SCALAR)
			return ferr(R, k->line, k->col, "a key of %s must be a scalar", what);
		for (j = 0; j < n; j++)
			known |= strcmp(allowed[j], k->text) == 0;
		if (!known) {
			near = sm__closest(k->text, allowed, n);
			if (near != NULL)
				return ferr(R, k->line, k->col, "unknown key '%s' in %s (did you mean "
					    "'%s'?)", k->text, what, near);
			return ferr(R, k->line, k->col, "unknown key '%s' in %s", k->text, what);
		}
		for (j = 0; j < i; j += 2)
			if (strcmp(y->kids[j]->text, k->text) == 0)
				return ferr(R, k->line, k->col, "duplicate key '%s' (first at %d:%d)",
					    k->text, y->kids[j]->line, y->kids[j]->col);
	}
	return 0;
}

static const ynode *get(const ynode *map, const char *key)
{
	size_t i;

	for (i = 0; i + 1 < map->n; i += 2)
		if (strcmp(map->kids[i]->text, key) == 0)
			return map->kids[i + 1];
	return NULL;
}

/* A word of lower-case letters, digits and the characters of extra (first_letter: starting with a
 * letter); said is the alphabet as the error says it. */
static int check_word(struct rd *R, const ynode *y, const char *what, const char *extra,
		      int first_letter, const char *said)
{
	const char *s = y->text;
	size_t i;

	if (s[0] == '\0')
		return ferr(R, y->line, y->col, "%s is empty", what);
	if (strlen(s) > 63)
		return ferr(R, y->line, y->col, "%s '%.63s...' is longer than 63 characters", what, s);
	for (i = 0; s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!(islower(c) || isdigit(c) || (extra != NULL && strchr(extra, c) != NULL)) ||
		    (i == 0 && first_letter && !isalpha(c)))
			return ferr(R, y->line, y->col, "%s '%s': only %s%s", what, s,
				    !first_letter ? "" : extra != NULL && strchr(extra, 'A') != NULL
				    ? "a letter, then " : "a lower-case letter, then ", said);
	}
	return 0;
}

static int boolean(struct rd *R, const ynode *y, const char *what, int *out)
{
	int rc = want(R, y, Y_SCALAR, what);

	if (rc != 0)
		return rc;
	if (strcmp(y->text, "true") == 0)
		*out = 1;
	else if (strcmp(y->text, "false") == 0)
		*out = 0;
	else
		return ferr(R, y->line, y->col, "%s must be true or false, not '%s'", what, y->text);
	return 0;
}

static int expr(struct rd *R, const ynode *y, const char *what, sm__expr **out)
{
	int rc = want(R, y, Y_SCALAR, what);

	if (rc != 0)
		return rc;
	if (y->text[0] == '\0')
		return ferr(R, y->line, y->col, "%s is empty", what);
	if (!y->quoted && strchr(y->text, '\n') != NULL)
		return ferr(R, y->line, y->col, "%s spans lines: write it on one line", what);
	return sm__expr_parse(R->file, y->text, y->line, y->col + y->quoted, out, R->err);
}

static int dup_text(struct rd *R, const char *s, char **out)
{
	if ((*out = strdup(s)) == NULL)
		return nomem(R);
	return 0;
}

static int parse_u64_text(const char *s, uint64_t *out)
{
	sm_error e = {0};

	return sm_parse_u64("value", s, out, &e);
}

/* ---- sections -------------------------------------------------------------------------------- */

static int read_option(struct rd *R, const ynode *k, const ynode *v)
{
	static const char *const keys[] = {"values", "default", "min", "max", "sweep", "when",
					   "note", NULL};
	sm_pipeline_desc *d = R->d;
	sm__desc_option *o;
	const ynode *vals, *def, *y;
	size_t i;
	int rc;

	if (d->noptions >= SM__DESC_MAX_OPTIONS)
		return ferr(R, k->line, k->col, "more than %d options", SM__DESC_MAX_OPTIONS);
	if ((rc = check_word(R, k, "option name", "_", 1,
				    "lower-case letters, digits and '_'")) != 0 ||
	    (rc = want(R, v, Y_MAP, "an option")) != 0 ||
	    (rc = check_keys(R, v, keys, "an option")) != 0)
		return rc;
	if (sm__quantity_lookup(k->text) >= 0 || sm__dtype_lookup(k->text) >= 0)
		return ferr(R, k->line, k->col, "option '%s' has the name of a %s", k->text,
			    sm__quantity_lookup(k->text) >= 0 ? "quantity" : "dtype");
	o = &d->options[d->noptions++];
	o->line = k->line;
	o->col = k->col;
	if ((rc = dup_text(R, k->text, &o->name)) != 0)
		return rc;
	def = get(v, "default");
	if (def == NULL)
		return ferr(R, v->line, v->col, "option '%s' has no default", k->text);
	if ((rc = want(R, def, Y_SCALAR, "default")) != 0 ||
	    (rc = dup_text(R, def->text, &o->def)) != 0)
		return rc;
	vals = get(v, "values");
	if (vals != NULL) {
		int found = 0;

		if ((rc = want(R, vals, Y_SEQ, "values")) != 0)
			return rc;
		if (vals->n == 0 || vals->n > SM__DESC_MAX_VALUES)
			return ferr(R, vals->line, vals->col, "option '%s': 1 to %d values", k->text,
				    SM__DESC_MAX_VALUES);
		for (i = 0; i < vals->n; i++) {
			y = vals->kids[i];
			if ((rc = want(R, y, Y_SCALAR, "a value")) != 0 ||
			    (rc = check_word(R, y, "option value", "-_.", 0,
					    "lower-case letters, digits, '_', '-' and '.'")) != 0)
				return rc;
			for (size_t j = 0; j < i; j++)
				if (strcmp(o->values[j], y->text) == 0)
					return ferr(R, y->line, y->col, "value '%s' listed twice",
						    y->text);
			if ((rc = dup_text(R, y->text, &o->values[o->nvalues])) != 0)
				return rc;
			o->nvalues++;
			found |= strcmp(y->text, def->text) == 0;
		}
		if (!found) {
			const char *near = sm__closest(def->text, (const char *const *)o->values,
						       o->nvalues);

			return ferr(R, def->line, def->col, "default '%s' is not one of the values of "
				    "'%s'%s%s%s", def->text, k->text, near ? " (did you mean '" : "",
				    near ? near : "", near ? "'?)" : "");
		}
		if (get(v, "min") != NULL || get(v, "max") != NULL || get(v, "sweep") != NULL) {
			y = get(v, "min") ? get(v, "min") : get(v, "max") ? get(v, "max")
									: get(v, "sweep");
			return ferr(R, y->line, y->col, "min, max and sweep are for numeric options, "
				    "not for one with values");
		}
	} else {
		o->numeric = 1;
		o->min = 0;
		o->max = UINT64_MAX;
		if (parse_u64_text(def->text, &o->def_u) != 0)
			return ferr(R, def->line, def->col, "default '%s' of numeric option '%s' is not "
				    "an integer", def->text, k->text);
		if ((y = get(v, "min")) != NULL &&
		    (want(R, y, Y_SCALAR, "min") != 0 || parse_u64_text(y->text, &o->min) != 0))
			return ferr(R, y->line, y->col, "min must be an integer");
		if ((y = get(v, "max")) != NULL &&
		    (want(R, y, Y_SCALAR, "max") != 0 || parse_u64_text(y->text, &o->max) != 0))
			return ferr(R, y->line, y->col, "max must be an integer");
		if (o->min > o->max)
			return ferr(R, v->line, v->col, "option '%s': min %llu above max %llu", k->text,
				    (unsigned long long)o->min, (unsigned long long)o->max);
		if (o->def_u < o->min || o->def_u > o->max)
			return ferr(R, def->line, def->col, "default %llu of '%s' is outside %llu..%llu",
				    (unsigned long long)o->def_u, k->text,
				    (unsigned long long)o->min, (unsigned long long)o->max);
		if ((y = get(v, "sweep")) != NULL) {
			if ((rc = want(R, y, Y_SEQ, "sweep")) != 0)
				return rc;
			if (y->n > SM__DESC_MAX_VALUES - 1)
				return ferr(R, y->line, y->col, "sweep: at most %d values",
					    SM__DESC_MAX_VALUES - 1);
			for (i = 0; i < y->n; i++) {
				const ynode *s = y->kids[i];

				if (want(R, s, Y_SCALAR, "a sweep value") != 0 ||
				    parse_u64_text(s->text, &o->sweep[i]) != 0 ||
				    o->sweep[i] < o->min || o->sweep[i] > o->max)
					return ferr(R, s->line, s->col, "sweep value '%s' is not an "
						    "integer from %llu to %llu",
						    s->kind == Y_SCALAR ? s->text : "?",
						    (unsigned long long)o->min,
						    (unsigned long long)o->max);
			}
			o->nsweep = y->n;
		}
	}
	if ((y = get(v, "when")) != NULL && (rc = expr(R, y, "when", &o->when)) != 0)
		return rc;
	return 0;
}

static int read_options(struct rd *R, const ynode *y)
{
	size_t i;
	int rc;

	if ((rc = want(R, y, Y_MAP, "options")) != 0)
		return rc;
	for (i = 0; i + 1 < y->n; i += 2) {
		size_t j;

		if ((rc = want(R, y->kids[i], Y_SCALAR, "an option name")) != 0)
			return rc;
		for (j = 0; j < i; j += 2)
			if (strcmp(y->kids[j]->text, y->kids[i]->text) == 0)
				return ferr(R, y->kids[i]->line, y->kids[i]->col, "option '%s' "
					    "declared twice", y->kids[i]->text);
		if ((rc = read_option(R, y->kids[i], y->kids[i + 1])) != 0)
			return rc;
	}
	return 0;
}

static int read_lets(struct rd *R, const ynode *y)
{
	sm_pipeline_desc *d = R->d;
	size_t i, j;
	int rc;

	if ((rc = want(R, y, Y_MAP, "let")) != 0)
		return rc;
	for (i = 0; i + 1 < y->n; i += 2) {
		const ynode *k = y->kids[i];
		sm__desc_let *l;

		if ((rc = want(R, k, Y_SCALAR, "a let name")) != 0 ||
		    (rc = check_word(R, k, "let name", "_ABCDEFGHIJKLMNOPQRSTUVWXYZ", 1,
				    "letters, digits and '_'")) != 0)
			return rc;
		if (d->nlets >= SM__DESC_MAX_LETS)
			return ferr(R, k->line, k->col, "more than %d let definitions",
				    SM__DESC_MAX_LETS);
		for (j = 0; j < d->nlets; j++)
			if (strcmp(d->lets[j].name, k->text) == 0)
				return ferr(R, k->line, k->col, "'%s' defined twice (first at %d:%d)",
					    k->text, d->lets[j].line, d->lets[j].col);
		if (sm__quantity_lookup(k->text) >= 0 || sm__dtype_lookup(k->text) >= 0 ||
		    sm__desc_option_index(d, k->text) >= 0)
			return ferr(R, k->line, k->col, "'%s' is already the name of a %s", k->text,
				    sm__quantity_lookup(k->text) >= 0 ? "quantity"
				    : sm__dtype_lookup(k->text) >= 0 ? "dtype" : "option");
		l = &d->lets[d->nlets++];
		l->line = k->line;
		l->col = k->col;
		if ((rc = dup_text(R, k->text, &l->name)) != 0 ||
		    (rc = expr(R, y->kids[i + 1], "a definition", &l->x)) != 0)
			return rc;
	}
	return 0;
}

/* Pending free targets, resolved once every stage is read. */
struct pending {
	const ynode *stage_name;  /* free: STAGE */
	const ynode *after;       /* free: {after: NAME} */
};

static int read_array(struct rd *R, sm__desc_stage *st, const ynode *y, struct pending *pend)
{
	static const char *const keys[] = {"name", "dtype", "count", "touched", "free", "when",
					   "pages", "note", NULL};
	sm__desc_array *a;
	const ynode *v;
	int rc;

	if ((rc = want(R, y, Y_MAP, "an array")) != 0 ||
	    (rc = check_keys(R, y, keys, "an array")) != 0)
		return rc;
	if (st->narrays >= SM_EST_MAX_ARRAYS)
		return ferr(R, y->line, y->col, "stage '%s': more than %d arrays", st->id,
			    SM_EST_MAX_ARRAYS);
	a = &st->arrays[st->narrays++];
	a->line = y->line;
	a->col = y->col;
	if ((v = get(y, "name")) == NULL)
		return ferr(R, y->line, y->col, "an array without name:");
	if ((rc = want(R, v, Y_SCALAR, "name")) != 0 ||
	    (rc = check_word(R, v, "array name", "_ABCDEFGHIJKLMNOPQRSTUVWXYZ", 0,
			    "letters, digits and '_'")) != 0 ||
	    (rc = dup_text(R, v->text, &a->name)) != 0)
		return rc;
	a->line = v->line;
	a->col = v->col;
	if ((v = get(y, "dtype")) == NULL)
		return ferr(R, y->line, y->col, "array '%s' without dtype:", a->name);
	if ((rc = expr(R, v, "dtype", &a->dtype)) != 0)
		return rc;
	if ((v = get(y, "count")) == NULL)
		return ferr(R, y->line, y->col, "array '%s' without count:", a->name);
	if ((rc = expr(R, v, "count", &a->count)) != 0)
		return rc;
	if ((v = get(y, "touched")) != NULL && (rc = expr(R, v, "touched", &a->touched)) != 0)
		return rc;
	if ((v = get(y, "when")) != NULL && (rc = expr(R, v, "when", &a->when)) != 0)
		return rc;
	if ((v = get(y, "pages")) != NULL) {
		if ((rc = want(R, v, Y_SCALAR, "pages")) != 0)
			return rc;
		if (strcmp(v->text, "huge") != 0 && strcmp(v->text, "4k") != 0)
			return ferr(R, v->line, v->col, "pages: '%s': 4k or huge", v->text);
		a->huge = strcmp(v->text, "huge") == 0;
	}
	a->free = SM__FREE_NEVER;
	if ((v = get(y, "free")) != NULL) {
		a->free_line = v->line;
		a->free_col = v->col;
		if (v->kind == Y_SCALAR) {
			a->free = SM__FREE_STAGE;
			pend->stage_name = v;
		} else if (v->kind == Y_MAP) {
			static const char *const fkeys[] = {"after", NULL};
			const ynode *af;

			if ((rc = check_keys(R, v, fkeys, "free")) != 0)
				return rc;
			if ((af = get(v, "after")) == NULL)
				return ferr(R, v->line, v->col, "free: a stage id, end, or {after: "
					    "ARRAY}");
			if ((rc = want(R, af, Y_SCALAR, "after")) != 0)
				return rc;
			a->free = SM__FREE_AFTER;
			pend->after = af;
		} else {
			return ferr(R, v->line, v->col, "free: a stage id, end, or {after: ARRAY}");
		}
	}
	return 0;
}

static int read_stages(struct rd *R, const ynode *y, struct pending (*pend)[SM_EST_MAX_ARRAYS])
{
	static const char *const keys[] = {"id", "when", "per_halo", "all_halos", "arrays", "note",
					   NULL};
	sm_pipeline_desc *d = R->d;
	size_t i, j;
	int rc;

	if ((rc = want(R, y, Y_SEQ, "stages")) != 0)
		return rc;
	if (y->n == 0)
		return ferr(R, y->line, y->col, "stages: at least one stage");
	if (y->n > SM_EST_MAX_STAGES)
		return ferr(R, y->kids[SM_EST_MAX_STAGES]->line, y->kids[SM_EST_MAX_STAGES]->col,
			    "more than %d stages", SM_EST_MAX_STAGES);
	for (i = 0; i < y->n; i++) {
		const ynode *s = y->kids[i], *v;
		sm__desc_stage *st = &d->stages[d->nstages];

		if ((rc = want(R, s, Y_MAP, "a stage")) != 0 ||
		    (rc = check_keys(R, s, keys, "a stage")) != 0)
			return rc;
		if ((v = get(s, "id")) == NULL)
			return ferr(R, s->line, s->col, "a stage without id:");
		if ((rc = want(R, v, Y_SCALAR, "id")) != 0 ||
		    (rc = check_word(R, v, "stage id", "_", 1,
				    "lower-case letters, digits and '_'")) != 0)
			return rc;
		if (strcmp(v->text, "end") == 0)
			return ferr(R, v->line, v->col, "'end' cannot be a stage id (free: end means "
				    "the stage's own end)");
		for (j = 0; j < d->nstages; j++)
			if (strcmp(d->stages[j].id, v->text) == 0)
				return ferr(R, v->line, v->col, "stage id '%s' used twice (first at "
					    "%d:%d)", v->text, d->stages[j].line, d->stages[j].col);
		d->nstages++;
		st->line = v->line;
		st->col = v->col;
		if ((rc = dup_text(R, v->text, &st->id)) != 0)
			return rc;
		if ((v = get(s, "when")) != NULL && (rc = expr(R, v, "when", &st->when)) != 0)
			return rc;
		if ((v = get(s, "per_halo")) != NULL) {
			if (v->kind == Y_SCALAR && strcmp(v->text, "true") != 0 &&
			    strcmp(v->text, "false") != 0)
				rc = expr(R, v, "per_halo", &st->per_halo_x);
			else
				rc = boolean(R, v, "per_halo", &st->per_halo);
			if (rc != 0)
				return rc;
		}
		if ((v = get(s, "all_halos")) != NULL &&
		    (rc = boolean(R, v, "all_halos", &st->all_halos)) != 0)
			return rc;
		if ((st->per_halo || st->per_halo_x != NULL) && st->all_halos)
			return ferr(R, v->line, v->col, "a stage is per_halo or all_halos, not both");
		if ((v = get(s, "arrays")) != NULL) {
			if ((rc = want(R, v, Y_SEQ, "arrays")) != 0)
				return rc;
			for (j = 0; j < v->n; j++)
				if ((rc = read_array(R, st, v->kids[j], &pend[i][j])) != 0)
					return rc;
		}
	}
	return 0;
}

static void stage_ids(const sm_pipeline_desc *d, const char **buf)
{
	size_t i;

	for (i = 0; i < d->nstages; i++)
		buf[i] = d->stages[i].id;
}

/* Frees: free: STAGE names a stage at or after the allocation (end: its own); after: an array
 * listed later in the same stage; a per-halo array is freed within the loop. */
static int resolve_frees(struct rd *R, struct pending (*pend)[SM_EST_MAX_ARRAYS])
{
	sm_pipeline_desc *d = R->d;
	const char *ids[SM_EST_MAX_STAGES];
	size_t i, j, k;
	int first_loop = -1, last_loop = -1;

	stage_ids(d, ids);
	for (i = 0; i < d->nstages; i++) {
		if (!d->stages[i].per_halo && d->stages[i].per_halo_x == NULL)
			continue;
		if (first_loop >= 0 && last_loop != (int)i - 1)
			return ferr(R, d->stages[i].line, d->stages[i].col, "per_halo stage '%s' is "
				    "not next to the other per_halo stages (one loop: consecutive "
				    "stages)", d->stages[i].id);
		if (first_loop < 0)
			first_loop = (int)i;
		last_loop = (int)i;
	}
	for (i = 0; i < d->nstages; i++) {
		sm__desc_stage *st = &d->stages[i];

		for (j = 0; j < st->narrays; j++) {
			sm__desc_array *a = &st->arrays[j];
			const ynode *v = pend[i][j].stage_name, *af = pend[i][j].after;

			if (a->free == SM__FREE_STAGE) {
				if (strcmp(v->text, "end") == 0) {
					a->free_stage = (int)i;
				} else {
					for (k = 0; k < d->nstages; k++)
						if (strcmp(ids[k], v->text) == 0)
							break;
					if (k == d->nstages) {
						const char *near = sm__closest(v->text, ids,
									       d->nstages);

						return ferr(R, v->line, v->col, "free: unknown stage "
							    "'%s'%s%s%s", v->text,
							    near ? " (did you mean '" : "",
							    near ? near : "", near ? "'?)" : "");
					}
					if (k < i)
						return ferr(R, v->line, v->col, "'%s' freed in stage "
							    "'%s', before its allocation in stage "
							    "'%s'", a->name, v->text, st->id);
					a->free_stage = (int)k;
				}
			} else if (a->free == SM__FREE_AFTER) {
				for (k = j + 1; k < st->narrays; k++)
					if (strcmp(st->arrays[k].name, af->text) == 0)
						break;
				if (strcmp(af->text, a->name) == 0 && k == st->narrays)
					return ferr(R, af->line, af->col, "'%s' freed after itself: "
						    "after: names an array allocated later in the "
						    "same stage", a->name);
				if (k == st->narrays)
					return ferr(R, af->line, af->col, "free: after '%s': no array "
						    "of that name is allocated later in stage '%s'",
						    af->text, st->id);
				a->free_after = (int)k;
				a->free_stage = (int)i;
			}
			if (st->per_halo &&
			    (a->free == SM__FREE_NEVER || a->free_stage > last_loop))
				return ferr(R, a->line, a->col, "per-halo array '%s' must be freed "
					    "within the per-halo loop (stages '%s' to '%s')",
					    a->name, d->stages[first_loop].id,
					    d->stages[last_loop].id);
		}
	}
	return 0;
}

static int read_process(struct rd *R, const ynode *y)
{
	static const char *const keys[] = {"baseline_allocated", "baseline_resident",
					   "baseline_resident_other_ranks", "baseline_address_space",
					   "arrays_address_space", "note", NULL};
	sm_pipeline_desc *d = R->d;
	const ynode *v;
	int rc;

	if ((rc = want(R, y, Y_MAP, "process")) != 0 ||
	    (rc = check_keys(R, y, keys, "process")) != 0)
		return rc;
	if ((v = get(y, "baseline_allocated")) != NULL &&
	    (rc = expr(R, v, "baseline_allocated", &d->baseline_allocated)) != 0)
		return rc;
	if ((v = get(y, "baseline_resident")) != NULL &&
	    (rc = expr(R, v, "baseline_resident", &d->baseline_resident)) != 0)
		return rc;
	if ((v = get(y, "baseline_resident_other_ranks")) != NULL &&
	    (rc = expr(R, v, "baseline_resident_other_ranks", &d->baseline_resident_other)) != 0)
		return rc;
	if ((v = get(y, "baseline_address_space")) != NULL &&
	    (rc = expr(R, v, "baseline_address_space", &d->baseline_address_space)) != 0)
		return rc;
	if ((v = get(y, "arrays_address_space")) != NULL &&
	    (rc = expr(R, v, "arrays_address_space", &d->arrays_address_space)) != 0)
		return rc;
	return 0;
}

static int read_assumptions(struct rd *R, const ynode *y)
{
	static const char *const keys[] = {"text", "when", NULL};
	sm_pipeline_desc *d = R->d;
	size_t i;
	int rc;

	if ((rc = want(R, y, Y_SEQ, "assumptions")) != 0)
		return rc;
	if (y->n > SM__DESC_MAX_ASSUMPTIONS)
		return ferr(R, y->line, y->col, "more than %d assumptions", SM__DESC_MAX_ASSUMPTIONS);
	for (i = 0; i < y->n; i++) {
		const ynode *a = y->kids[i], *t = a, *w = NULL;
		sm__desc_text *x = &d->assumptions[d->nassumptions++];

		if (a->kind == Y_MAP) {
			if ((rc = check_keys(R, a, keys, "an assumption")) != 0)
				return rc;
			if ((t = get(a, "text")) == NULL)
				return ferr(R, a->line, a->col, "an assumption without text:");
			w = get(a, "when");
		}
		if ((rc = want(R, t, Y_SCALAR, "an assumption")) != 0 ||
		    (rc = dup_text(R, t->text, &x->text)) != 0)
			return rc;
		if (w != NULL && (rc = expr(R, w, "when", &x->when)) != 0)
			return rc;
	}
	return 0;
}

/*
 * documented: reference figures of the stages (a measurement, a paper's table), each printed
 * beside the model's figure for its stage: the requested peak, or the bytes of the arrays named.
 */
static int read_documented(struct rd *R, const ynode *y)
{
	static const char *const keys[] = {"stage", "what", "value", "text", "arrays", "source",
					   "note", "when", NULL};
	sm_pipeline_desc *d = R->d;
	const char *ids[SM_EST_MAX_STAGES];
	size_t i, k;
	int rc;

	if ((rc = want(R, y, Y_SEQ, "documented")) != 0)
		return rc;
	if (y->n > SM_EST_MAX_DOCUMENTED)
		return ferr(R, y->line, y->col, "more than %d documented figures",
			    SM_EST_MAX_DOCUMENTED);
	for (k = 0; k < d->nstages; k++)
		ids[k] = d->stages[k].id;
	for (i = 0; i < y->n; i++) {
		const ynode *a = y->kids[i], *v;
		sm__desc_documented *x = &d->documented[d->ndocumented++];
		const sm__desc_stage *st;
		sm_error perr = {0};
		size_t m = 0;

		if ((rc = want(R, a, Y_MAP, "a documented figure")) != 0 ||
		    (rc = check_keys(R, a, keys, "a documented figure")) != 0)
			return rc;
		if ((v = get(a, "stage")) == NULL || get(a, "what") == NULL ||
		    get(a, "value") == NULL || get(a, "source") == NULL)
			return ferr(R, a->line, a->col, "a documented figure needs stage:, what:, "
				    "value: and source:");
		if ((rc = want(R, v, Y_SCALAR, "stage")) != 0)
			return rc;
		for (k = 0; k < d->nstages && strcmp(ids[k], v->text) != 0; k++)
			;
		if (k == d->nstages) {
			const char *near = sm__closest(v->text, ids, d->nstages);

			return ferr(R, v->line, v->col, "documented: unknown stage '%s'%s%s%s",
				    v->text, near ? " (did you mean '" : "", near ? near : "",
				    near ? "'?)" : "");
		}
		x->stage = (int)k;
		st = &d->stages[k];
		v = get(a, "value");
		if ((rc = want(R, v, Y_SCALAR, "value")) != 0)
			return rc;
		if (sm_parse_size("value", v->text, &x->value, &perr) != 0)
			return ferr(R, v->line, v->col, "documented %s", perr.msg);
		if ((rc = want(R, get(a, "what"), Y_SCALAR, "what")) != 0 ||
		    (rc = dup_text(R, get(a, "what")->text, &x->what)) != 0 ||
		    (rc = want(R, get(a, "source"), Y_SCALAR, "source")) != 0 ||
		    (rc = dup_text(R, get(a, "source")->text, &x->source)) != 0)
			return rc;
		v = get(a, "text");
		if (v != NULL && ((rc = want(R, v, Y_SCALAR, "text")) != 0 ||
				  (rc = dup_text(R, v->text, &x->text)) != 0))
			return rc;
		if (v == NULL && (rc = dup_text(R, get(a, "value")->text, &x->text)) != 0)
			return rc;
		v = get(a, "note");
		if (v != NULL && ((rc = want(R, v, Y_SCALAR, "note")) != 0 ||
				  (rc = dup_text(R, v->text, &x->note)) != 0))
			return rc;
		if ((v = get(a, "when")) != NULL && (rc = expr(R, v, "when", &x->when)) != 0)
			return rc;
		v = get(a, "arrays");
		if (v != NULL) {
			char buf[SM_EST_MAX_ARRAYS * 72];
			size_t n = 0, j;

			if ((rc = want(R, v, Y_SEQ, "arrays")) != 0)
				return rc;
			if (st->narrays == 0)
				return ferr(R, v->line, v->col, "documented arrays: stage '%s' "
					    "allocates no array", st->id);
			if (v->n == 0 || v->n > st->narrays)
				return ferr(R, v->line, v->col, "documented arrays: 1 to %zu arrays of "
					    "stage '%s'", st->narrays, st->id);
			buf[0] = '\0';
			for (j = 0; j < v->n; j++) {
				const ynode *an = v->kids[j];
				const char *names[SM_EST_MAX_ARRAYS];

				if ((rc = want(R, an, Y_SCALAR, "an array name")) != 0)
					return rc;
				for (m = 0; m < st->narrays; m++)
					names[m] = st->arrays[m].name;
				for (m = 0; m < st->narrays && strcmp(names[m], an->text) != 0; m++)
					;
				if (m == st->narrays) {
					const char *near = sm__closest(an->text, names, st->narrays);

					return ferr(R, an->line, an->col, "documented: stage '%s' "
						    "allocates no array '%s'%s%s%s", st->id, an->text,
						    near ? " (did you mean '" : "", near ? near : "",
						    near ? "'?)" : "");
				}
				x->arrays[x->narrays++] = (int)m;
				n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s",
						      j > 0 ? " + " : "", an->text);
				if (n >= sizeof(buf))
					n = sizeof(buf) - 1;
			}
			if ((rc = dup_text(R, buf, &x->model)) != 0)
				return rc;
		} else if ((rc = dup_text(R, "the stage's requested peak", &x->model)) != 0) {
			return rc;
		}
	}
	return 0;
}

/* ---- name resolution ------------------------------------------------------------------------- */

int sm__desc_option_index(const sm_pipeline_desc *d, const char *name)
{
	size_t i;

	for (i = 0; i < d->noptions; i++)
		if (strcmp(d->options[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int option_has_value(const sm__desc_option *o, const char *w)
{
	size_t i;

	for (i = 0; i < o->nvalues; i++)
		if (strcmp(o->values[i], w) == 0)
			return 1;
	return 0;
}

static int unknown_name(struct rd *R, const sm__expr *x)
{
	const sm_pipeline_desc *d = R->d;
	const char *cands[SM__Q_COUNT + SM__DESC_MAX_LETS + SM__DESC_MAX_OPTIONS + 16], *near;
	size_t n = 0, i;

	for (i = 0; i < SM__Q_COUNT; i++)
		cands[n++] = sm__quantity_name((int)i);
	for (i = 0; i < d->nlets; i++)
		cands[n++] = d->lets[i].name;
	for (i = 0; i < d->noptions; i++)
		cands[n++] = d->options[i].name;
	for (i = 0; i < 12; i++)
		cands[n++] = sm__dtype_name((int)i);
	near = sm__closest(x->name, cands, n);
	if (near != NULL)
		return ferr(R, x->line, x->col, "unknown quantity '%s' (did you mean '%s'?)", x->name,
			    near);
	return ferr(R, x->line, x->col, "unknown quantity '%s'", x->name);
}

/* What name refers to, without an error: SM__R_NONE when nothing. */
static enum sm__xref lookup(const sm_pipeline_desc *d, const char *name, int *idx)
{
	size_t i;

	for (i = 0; i < d->nlets; i++) {
		if (strcmp(d->lets[i].name, name) == 0) {
			*idx = (int)i;
			return SM__R_LET;
		}
	}
	if ((*idx = sm__quantity_lookup(name)) >= 0)
		return SM__R_QUANTITY;
	if ((*idx = sm__desc_option_index(d, name)) >= 0)
		return SM__R_OPTION;
	if ((*idx = sm__dtype_lookup(name)) >= 0)
		return SM__R_DTYPE;
	return SM__R_NONE;
}

static int resolve_name(struct rd *R, sm__expr *x)
{
	int idx;
	enum sm__xref r = lookup(R->d, x->name, &idx);

	if (r == SM__R_NONE)
		return unknown_name(R, x);
	x->ref = r;
	x->idx = idx;
	return 0;
}

/* `option == word` (either way round): a word that is one of the option's values is that value;
 * a string or a bare word naming nothing else must be one. */
static int resolve_word(struct rd *R, const sm__expr *opt, sm__expr *w)
{
	const sm__desc_option *o;
	const char *near;
	int idx;

	if (opt->kind != SM__X_IDENT || lookup(R->d, opt->name, &idx) != SM__R_OPTION)
		return 0;
	o = &R->d->options[idx];
	if (o->numeric || (w->kind != SM__X_IDENT && w->kind != SM__X_STR))
		return 0;
	if (option_has_value(o, w->name)) {
		if (w->kind == SM__X_IDENT) {
			w->ref = SM__R_WORD;
			w->idx = -1;
		}
		return 0;
	}
	if (w->kind == SM__X_IDENT && lookup(R->d, w->name, &idx) != SM__R_NONE)
		return 0;
	near = sm__closest(w->name, (const char *const *)o->values, o->nvalues);
	return ferr(R, w->line, w->col, "unknown value '%s' of option '%s'%s%s%s", w->name,
		    o->name, near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
}

static int resolve(struct rd *R, sm__expr *x)
{
	int rc, i;

	if (x == NULL)
		return 0;
	if (x->kind == SM__X_BINARY && (x->op == SM__OP_EQ || x->op == SM__OP_NE) &&
	    ((rc = resolve_word(R, x->a, x->b)) != 0 || (rc = resolve_word(R, x->b, x->a)) != 0))
		return rc;
	if (x->kind == SM__X_IDENT && x->ref == SM__R_NONE && (rc = resolve_name(R, x)) != 0)
		return rc;
	if ((rc = resolve(R, x->a)) != 0 || (rc = resolve(R, x->b)) != 0 ||
	    (rc = resolve(R, x->c)) != 0)
		return rc;
	for (i = 0; i < x->nargs; i++)
		if ((rc = resolve(R, x->args[i])) != 0)
			return rc;
	return 0;
}

/* The lets x refers to, as a bit set over let indices (at most 64). */
static uint64_t let_refs(const sm__expr *x)
{
	uint64_t m = 0;
	int i;

	if (x == NULL)
		return 0;
	if (x->kind == SM__X_IDENT && x->ref == SM__R_LET)
		m |= UINT64_C(1) << x->idx;
	m |= let_refs(x->a) | let_refs(x->b) | let_refs(x->c);
	for (i = 0; i < x->nargs; i++)
		m |= let_refs(x->args[i]);
	return m;
}

/* Depth-first search for a cycle through the let graph; path receives it. */
static int find_cycle(const uint64_t *refs, size_t n, size_t at, int *color, int *path,
		      int *plen)
{
	size_t j;

	color[at] = 1;
	path[(*plen)++] = (int)at;
	for (j = 0; j < n; j++) {
		if (!(refs[at] & (UINT64_C(1) << j)))
			continue;
		if (color[j] == 1) {
			path[(*plen)++] = (int)j;
			return 1;
		}
		if (color[j] == 0 && find_cycle(refs, n, j, color, path, plen))
			return 1;
	}
	color[at] = 2;
	(*plen)--;
	return 0;
}

static int check_cycles(struct rd *R)
{
	sm_pipeline_desc *d = R->d;
	uint64_t refs[SM__DESC_MAX_LETS];
	int color[SM__DESC_MAX_LETS] = {0}, path[SM__DESC_MAX_LETS + 1], plen = 0;
	size_t i;

	for (i = 0; i < d->nlets; i++)
		refs[i] = let_refs(d->lets[i].x);
	for (i = 0; i < d->nlets; i++) {
		if (color[i] == 0 && find_cycle(refs, d->nlets, i, color, path, &plen)) {
			char chain[300] = "";
			int s = 0, k;
			size_t len = 0;

			/* the cycle starts where its last name first appears */
			while (path[s] != path[plen - 1])
				s++;
			for (k = s; k < plen && len + 70 < sizeof(chain); k++)
				len += (size_t)snprintf(chain + len, sizeof(chain) - len, "%s%s",
							k > s ? " -> " : "", d->lets[path[k]].name);
			return ferr(R, d->lets[path[s]].line, d->lets[path[s]].col, "'%s' is defined "
				    "in terms of itself: %s", d->lets[path[s]].name, chain);
		}
	}
	return 0;
}

/*
 * Every use of a let name evaluates its definition again (docs/PIPELINES.md: "evaluated where
 * used"), so lets that each use the next one twice make a few hundred bytes that would take 2^63
 * steps to evaluate. The terms an expression expands to, once every let it names is written out,
 * bound the steps of one evaluation: past EXPAND_MAX the description is refused when it is read.
 */
#define EXPAND_MAX 10000

static uint64_t terms(const sm__expr *x, const uint64_t *let_terms)
{
	uint64_t n;
	int i;

	if (x == NULL)
		return 0;
	n = x->kind == SM__X_IDENT && x->ref == SM__R_LET ? let_terms[x->idx] : 1;
	n += terms(x->a, let_terms) + terms(x->b, let_terms) + terms(x->c, let_terms);
	for (i = 0; i < x->nargs; i++)
		n += terms(x->args[i], let_terms);
	return n > EXPAND_MAX ? EXPAND_MAX + 1 : n;
}

static int check_terms(struct rd *R, const sm__expr *x, const uint64_t *let_terms)
{
	if (x == NULL || terms(x, let_terms) <= EXPAND_MAX)
		return 0;
	return ferr(R, x->line, x->col, "expression: more than %d steps to evaluate (definitions "
		    "that use each other many times over)", EXPAND_MAX);
}

/* After check_cycles: the lets' own expansions (at their definitions), then every expression's. */
static int check_expansion(struct rd *R)
{
	sm_pipeline_desc *d = R->d;
	uint64_t let_terms[SM__DESC_MAX_LETS] = {0}, refs[SM__DESC_MAX_LETS];
	size_t i, j, done = 0;
	int rc;

	for (i = 0; i < d->nlets; i++)
		refs[i] = let_refs(d->lets[i].x);
	/* acyclic: each pass sizes at least one let whose lets are all sized */
	while (done < d->nlets) {
		for (i = 0; i < d->nlets; i++) {
			if (let_terms[i] != 0)
				continue;
			for (j = 0; j < d->nlets; j++)
				if ((refs[i] & (UINT64_C(1) << j)) && let_terms[j] == 0)
					break;
			if (j < d->nlets)
				continue;
			let_terms[i] = terms(d->lets[i].x, let_terms);
			done++;
		}
	}
	for (i = 0; i < d->nlets; i++)
		if (let_terms[i] > EXPAND_MAX)
			return ferr(R, d->lets[i].line, d->lets[i].col, "'%s': more than %d steps to "
				    "evaluate (definitions that use each other many times over)",
				    d->lets[i].name, EXPAND_MAX);
	for (i = 0; i < d->noptions; i++)
		if ((rc = check_terms(R, d->options[i].when, let_terms)) != 0)
			return rc;
	for (i = 0; i < d->nstages; i++) {
		const sm__desc_stage *st = &d->stages[i];

		if ((rc = check_terms(R, st->when, let_terms)) != 0 ||
		    (rc = check_terms(R, st->per_halo_x, let_terms)) != 0)
			return rc;
		for (j = 0; j < st->narrays; j++) {
			const sm__desc_array *a = &st->arrays[j];

			if ((rc = check_terms(R, a->dtype, let_terms)) != 0 ||
			    (rc = check_terms(R, a->count, let_terms)) != 0 ||
			    (rc = check_terms(R, a->touched, let_terms)) != 0 ||
			    (rc = check_terms(R, a->when, let_terms)) != 0)
				return rc;
		}
	}
	if ((rc = check_terms(R, d->baseline_allocated, let_terms)) != 0 ||
	    (rc = check_terms(R, d->baseline_resident, let_terms)) != 0 ||
	    (rc = check_terms(R, d->baseline_resident_other, let_terms)) != 0 ||
	    (rc = check_terms(R, d->baseline_address_space, let_terms)) != 0 ||
	    (rc = check_terms(R, d->arrays_address_space, let_terms)) != 0)
		return rc;
	for (i = 0; i < d->nassumptions; i++)
		if ((rc = check_terms(R, d->assumptions[i].when, let_terms)) != 0)
			return rc;
	for (i = 0; i < d->ndocumented; i++)
		if ((rc = check_terms(R, d->documented[i].when, let_terms)) != 0)
			return rc;
	return 0;
}

static int resolve_all(struct rd *R)
{
	sm_pipeline_desc *d = R->d;
	size_t i, j;
	int rc;

	for (i = 0; i < d->noptions; i++)
		if ((rc = resolve(R, d->options[i].when)) != 0)
			return rc;
	for (i = 0; i < d->nlets; i++)
		if ((rc = resolve(R, d->lets[i].x)) != 0)
			return rc;
	if ((rc = check_cycles(R)) != 0)
		return rc;
	for (i = 0; i < d->nstages; i++) {
		sm__desc_stage *st = &d->stages[i];

		if ((rc = resolve(R, st->when)) != 0 || (rc = resolve(R, st->per_halo_x)) != 0)
			return rc;
		for (j = 0; j < st->narrays; j++) {
			sm__desc_array *a = &st->arrays[j];

			if ((rc = resolve(R, a->dtype)) != 0 || (rc = resolve(R, a->count)) != 0 ||
			    (rc = resolve(R, a->touched)) != 0 || (rc = resolve(R, a->when)) != 0)
				return rc;
			/* a literal dtype is checked here, whatever the variant */
			if (a->dtype->kind == SM__X_IDENT && a->dtype->ref == SM__R_OPTION &&
			    !d->options[a->dtype->idx].numeric) {
				const sm__desc_option *o = &d->options[a->dtype->idx];
				size_t v;

				for (v = 0; v < o->nvalues; v++)
					if (sm__dtype_lookup(o->values[v]) < 0)
						return ferr(R, a->dtype->line, a->dtype->col,
							    "dtype from option '%s', whose value '%s' "
							    "is not a dtype", o->name, o->values[v]);
			}
		}
	}
	if ((rc = resolve(R, d->baseline_allocated)) != 0 ||
	    (rc = resolve(R, d->baseline_resident)) != 0 ||
	    (rc = resolve(R, d->baseline_resident_other)) != 0 ||
	    (rc = resolve(R, d->baseline_address_space)) != 0 ||
	    (rc = resolve(R, d->arrays_address_space)) != 0)
		return rc;
	for (i = 0; i < d->nassumptions; i++)
		if ((rc = resolve(R, d->assumptions[i].when)) != 0)
			return rc;
	for (i = 0; i < d->ndocumented; i++)
		if ((rc = resolve(R, d->documented[i].when)) != 0)
			return rc;
	return check_expansion(R);
}

/* ---- the description ------------------------------------------------------------------------- */

void sm_desc_free(sm_pipeline_desc *d)
{
	size_t i, j;

	if (d == NULL)
		return;
	for (i = 0; i < d->noptions; i++) {
		free(d->options[i].name);
		free(d->options[i].def);
		for (j = 0; j < d->options[i].nvalues; j++)
			free(d->options[i].values[j]);
		sm__expr_free(d->options[i].when);
	}
	for (i = 0; i < d->nlets; i++) {
		free(d->lets[i].name);
		sm__expr_free(d->lets[i].x);
	}
	for (i = 0; i < d->nstages; i++) {
		sm__desc_stage *st = &d->stages[i];

		free(st->id);
		sm__expr_free(st->when);
		sm__expr_free(st->per_halo_x);
		for (j = 0; j < st->narrays; j++) {
			free(st->arrays[j].name);
			sm__expr_free(st->arrays[j].dtype);
			sm__expr_free(st->arrays[j].count);
			sm__expr_free(st->arrays[j].touched);
			sm__expr_free(st->arrays[j].when);
		}
	}
	sm__expr_free(d->baseline_allocated);
	sm__expr_free(d->baseline_resident);
	sm__expr_free(d->baseline_resident_other);
	sm__expr_free(d->baseline_address_space);
	sm__expr_free(d->arrays_address_space);
	for (i = 0; i < d->nassumptions; i++) {
		free(d->assumptions[i].text);
		sm__expr_free(d->assumptions[i].when);
	}
	for (i = 0; i < d->ndocumented; i++) {
		free(d->documented[i].what);
		free(d->documented[i].text);
		free(d->documented[i].source);
		free(d->documented[i].note);
		free(d->documented[i].model);
		sm__expr_free(d->documented[i].when);
	}
	free(d->file);
	free(d->id);
	free(d->title);
	free(d);
}

int sm_desc_parse(const char *file, const char *text, size_t len, sm_pipeline_desc **out,
		  sm_error *err)
{
	static const char *const keys[] = {"pipeline", "title", "note", "allocator", "options", "let",
					   "stages", "process", "assumptions", "documented", NULL};
	struct pending (*pend)[SM_EST_MAX_ARRAYS] = NULL;
	struct rd R = {file, err, NULL};
	ynode *root = NULL;
	const ynode *v;
	int rc;

	*out = NULL;
	if (len > SM__DESC_MAX_BYTES)
		return sm_error_set(err, SM_EFORMAT, "%s: %zu bytes: a description holds at most %u",
				    file, len, SM__DESC_MAX_BYTES);
	if (memchr(text, '\0', len) != NULL)
		return sm_error_set(err, SM_EFORMAT, "%s: a NUL byte: not a text file", file);
	R.d = calloc(1, sizeof(*R.d));
	pend = calloc(SM_EST_MAX_STAGES, sizeof(*pend));
	if (R.d == NULL || pend == NULL || (R.d->file = strdup(file)) == NULL) {
		rc = nomem(&R);
		goto out;
	}
	if ((rc = load_tree(&R, text, len, &root)) != 0)
		goto out;
	if ((rc = want(&R, root, Y_MAP, "a description")) != 0 ||
	    (rc = check_keys(&R, root, keys, "the description")) != 0)
		goto out;
	if ((v = get(root, "pipeline")) == NULL) {
		rc = ferr(&R, root->line, root->col, "no pipeline: (the description's id)");
		goto out;
	}
	if ((rc = want(&R, v, Y_SCALAR, "pipeline")) != 0 ||
	    (rc = check_word(&R, v, "pipeline id", "-", 0,
			       "lower-case letters, digits and '-'")) != 0 ||
	    (rc = dup_text(&R, v->text, &R.d->id)) != 0)
		goto out;
	if ((v = get(root, "title")) != NULL) {
		if ((rc = want(&R, v, Y_SCALAR, "title")) != 0 ||
		    (rc = dup_text(&R, v->text, &R.d->title)) != 0)
			goto out;
	} else if ((rc = dup_text(&R, R.d->id, &R.d->title)) != 0) {
		goto out;
	}
	if ((v = get(root, "allocator")) != NULL) {
		if ((rc = want(&R, v, Y_SCALAR, "allocator")) != 0)
			goto out;
		if (strcmp(v->text, "profile") == 0) {
			R.d->profile_allocator = 1;
		} else if (strcmp(v->text, "jemalloc") != 0) {
			rc = ferr(&R, v->line, v->col,
				  "allocator '%s': jemalloc (snapmem run, programs linked with "
				  "libsnapmem) or profile (a program under snapmem profile)",
				  v->text);
			goto out;
		}
	}
	if ((v = get(root, "options")) != NULL && (rc = read_options(&R, v)) != 0)
		goto out;
	if ((v = get(root, "let")) != NULL && (rc = read_lets(&R, v)) != 0)
		goto out;
	if ((v = get(root, "stages")) == NULL) {
		rc = ferr(&R, root->line, root->col, "no stages:");
		goto out;
	}
	if ((rc = read_stages(&R, v, pend)) != 0 || (rc = resolve_frees(&R, pend)) != 0)
		goto out;
	if ((v = get(root, "process")) != NULL && (rc = read_process(&R, v)) != 0)
		goto out;
	if ((v = get(root, "assumptions")) != NULL && (rc = read_assumptions(&R, v)) != 0)
		goto out;
	if ((v = get(root, "documented")) != NULL && (rc = read_documented(&R, v)) != 0)
		goto out;
	if ((rc = resolve_all(&R)) != 0)
		goto out;
	R.d->is_default = strcmp(R.d->id, "radial-profiles") == 0;
	*out = R.d;
	R.d = NULL;
out:
	ynode_free(root);
	free(pend);
	sm_desc_free(R.d);
	return rc;
}

int sm_desc_load(const char *path, sm_pipeline_desc **out, sm_error *err)
{
	FILE *f = NULL;
	int fd = -1;
	char *buf = NULL;
	size_t n = 0;
	struct stat st;
	int rc = 0;

	*out = NULL;
	/* O_NONBLOCK: a FIFO without a writer is refused at once instead of blocking the open */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		rc = sm_error_set(err, errno == ENOENT ? SM_ENOTFOUND : SM_EIO, "'%s': cannot open: %s",
				  path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = sm_error_set(err, SM_EIO, "'%s': not a regular file", path);
		goto out;
	}
	if ((f = fdopen(fd, "rb")) == NULL) {
		rc = sm_error_set(err, SM_EIO, "'%s': cannot open: %s", path, strerror(errno));
		goto out;
	}
	fd = -1;
	if ((buf = malloc(SM__DESC_MAX_BYTES + 1)) == NULL) {
		rc = sm_error_set(err, SM_ENOMEM, "'%s': out of memory", path);
		goto out;
	}
	n = fread(buf, 1, SM__DESC_MAX_BYTES + 1, f);
	if (ferror(f)) {
		rc = sm_error_set(err, SM_EIO, "'%s': cannot read", path);
		goto out;
	}
	if (n > SM__DESC_MAX_BYTES) {
		rc = sm_error_set(err, SM_EFORMAT, "%s: larger than %u bytes: not a description", path,
				  SM__DESC_MAX_BYTES);
		goto out;
	}
	rc = sm_desc_parse(path, buf, n, out, err);
out:
	free(buf);
	if (f != NULL)
		fclose(f);
	if (fd >= 0)
		close(fd);
	return rc;
}

extern const char sm__desc_radial_profiles[];

const char *sm_desc_default_text(void)
{
	return sm__desc_radial_profiles;
}

static pthread_once_t default_once = PTHREAD_ONCE_INIT;
static sm_pipeline_desc *default_desc;
static sm_error default_err;
static int default_rc;

static void parse_default(void)
{
	default_rc = sm_desc_parse("estimator/pipelines/radial-profiles.yaml",
				   sm__desc_radial_profiles, strlen(sm__desc_radial_profiles),
				   &default_desc, &default_err);
}

int sm_desc_default(const sm_pipeline_desc **out, sm_error *err)
{
	pthread_once(&default_once, parse_default);
	*out = default_desc;
	if (default_rc != 0)
		return sm_error_set(err, default_rc, "%s", default_err.msg);
	return 0;
}

const char *sm_desc_id(const sm_pipeline_desc *d)
{
	return d->id;
}

const char *sm_desc_title(const sm_pipeline_desc *d)
{
	return d->title;
}

const char *sm_desc_file(const sm_pipeline_desc *d)
{
	return d->file;
}

int sm_desc_is_default(const sm_pipeline_desc *d)
{
	return d->is_default;
}

size_t sm_desc_noptions(const sm_pipeline_desc *d)
{
	return d->noptions;
}

int sm_desc_option(const sm_pipeline_desc *d, size_t i, sm_desc_option_info *out)
{
	if (i >= d->noptions)
		return SM_EINVAL;
	out->name = d->options[i].name;
	out->numeric = d->options[i].numeric;
	out->values = (const char *const *)d->options[i].values;
	out->nvalues = d->options[i].nvalues;
	out->def = d->options[i].def;
	return 0;
}

int sm_desc_has_option(const sm_pipeline_desc *d, const char *name)
{
	return sm__desc_option_index(d, name) >= 0;
}

int sm_desc_check_setting(const sm_pipeline_desc *d, const char *setting, sm_error *err)
{
	const char *eq = strchr(setting, '=');
	char name[64];
	const sm__desc_option *o;
	size_t n;
	int i;

	if (eq == NULL || eq == setting)
		return sm_error_set(err, SM_EINVAL, "--set '%s': NAME=VALUE expected", setting);
	n = (size_t)(eq - setting);
	if (n >= sizeof(name))
		return sm_error_set(err, SM_EINVAL, "--set '%s': option name too long", setting);
	memcpy(name, setting, n);
	name[n] = '\0';
	if ((i = sm__desc_option_index(d, name)) < 0) {
		const char *cands[SM__DESC_MAX_OPTIONS], *near;
		size_t k;

		for (k = 0; k < d->noptions; k++)
			cands[k] = d->options[k].name;
		near = sm__closest(name, cands, d->noptions);
		return sm_error_set(err, SM_EINVAL, "--set '%s': pipeline '%s' declares no option "
				    "'%s'%s%s%s", setting, d->id, name, near ? " (did you mean '" : "",
				    near ? near : "", near ? "'?)" : "");
	}
	o = &d->options[i];
	if (o->numeric) {
		uint64_t u;
		sm_error e = {0};

		if (sm_parse_u64("--set", eq + 1, &u, &e) != 0 || u < o->min || u > o->max)
			return sm_error_set(err, SM_EINVAL, "--set '%s': option '%s' takes an integer "
					    "from %llu to %llu", setting, name,
					    (unsigned long long)o->min, (unsigned long long)o->max);
		return 0;
	}
	if (!option_has_value(o, eq + 1)) {
		char vals[300] = "";
		size_t k, len = 0;

		for (k = 0; k < o->nvalues && len + 70 < sizeof(vals); k++)
			len += (size_t)snprintf(vals + len, sizeof(vals) - len, "%s%s",
						k > 0 ? ", " : "", o->values[k]);
		return sm_error_set(err, SM_EINVAL, "--set '%s': option '%s' is one of %s", setting,
				    name, vals);
	}
	return 0;
}
