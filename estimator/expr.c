/*
 * The expression language of pipeline descriptions (docs/PIPELINES.md "Expressions"): a lexer, a
 * recursive-descent parser with a bounded depth (SM__DESC_MAX_EXPR_DEPTH: a hostile file cannot
 * exhaust the stack) and the evaluator. Integers are uint64 with every operation checked (an
 * overflow, a negative result, a division by zero is an error naming FILE:LINE:COL of the operator
 * and the values); reals are doubles; dtypes and the words of enumerated options are values too.
 * Names are resolved by describe.c after the whole file is read; this file only evaluates them.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapmem/model.h"
#include "snapmem/units.h"

#include "describe.h"
#include "internal.h"

/* ---- tables ------------------------------------------------------------------------------------ */

static const struct {
	const char *name;
	uint64_t size;
	sm_dtype model;
} dtypes[] = {
	/* the snapshots' dtypes by their one spelling (snapshot.h), then numpy's others */
	{"bool", 1, SM_DTYPE_NONE},             {"int8", 1, SM_DTYPE_NONE},
	{SM_DTYPE_NAME_U8, 1, SM_DTYPE_U8},     {"int16", 2, SM_DTYPE_NONE},
	{"uint16", 2, SM_DTYPE_NONE},           {"float16", 2, SM_DTYPE_NONE},
	{SM_DTYPE_NAME_I32, 4, SM_DTYPE_I32},   {SM_DTYPE_NAME_U32, 4, SM_DTYPE_U32},
	{SM_DTYPE_NAME_F32, 4, SM_DTYPE_F32},   {SM_DTYPE_NAME_I64, 8, SM_DTYPE_I64},
	{SM_DTYPE_NAME_U64, 8, SM_DTYPE_U64},   {SM_DTYPE_NAME_F64, 8, SM_DTYPE_F64},
};
#define NDTYPES (sizeof(dtypes) / sizeof(dtypes[0]))

int sm__dtype_lookup(const char *name)
{
	size_t i;

	for (i = 0; i < NDTYPES; i++)
		if (strcmp(dtypes[i].name, name) == 0)
			return (int)i;
	return -1;
}

const char *sm__dtype_name(int id)
{
	return id >= 0 && (size_t)id < NDTYPES ? dtypes[id].name : "none";
}

uint64_t sm__dtype_size(int id)
{
	return id >= 0 && (size_t)id < NDTYPES ? dtypes[id].size : 0;
}

sm_dtype sm__dtype_model(int id)
{
	return id >= 0 && (size_t)id < NDTYPES ? dtypes[id].model : SM_DTYPE_NONE;
}

static const char *const quantities[SM__Q_COUNT] = {
	[SM__Q_GAS_CELLS] = "gas_cells",
	[SM__Q_NPART_GAS] = "npart_gas",
	[SM__Q_NPART_DM] = "npart_dm",
	[SM__Q_NPART_TRACERS] = "npart_tracers",
	[SM__Q_NPART_STARS] = "npart_stars",
	[SM__Q_NPART_BH] = "npart_bh",
	[SM__Q_GROUPS] = "groups",
	[SM__Q_SUBHALOS] = "subhalos",
	[SM__Q_FILES] = "files",
	[SM__Q_GROUPS_CHUNK_MAX] = "groups_chunk_max",
	[SM__Q_HALOS] = "halos",
	[SM__Q_SPHERE] = "sphere",
	[SM__Q_SPHERE_MAX] = "sphere_max",
	[SM__Q_SPHERE_RADIUS_MAX] = "sphere_radius_max",
	[SM__Q_BOX_SIZE] = "box_size",
	[SM__Q_MASS_TABLE_DM] = "mass_table_dm",
	[SM__Q_RANKS] = "ranks",
	[SM__Q_CELLS_PER_RANK_MAX] = "cells_per_rank_max",
	[SM__Q_CELLS_PER_RANK_MIN] = "cells_per_rank_min",
	[SM__Q_GAS_CHUNK_MAX] = "gas_chunk_max",
	[SM__Q_DM_CHUNK_MAX] = "dm_chunk_max",
	[SM__Q_PEAK_ALLOCATED] = "peak_allocated",
	[SM__Q_PEAK_REQUESTED] = "peak_requested",
	[SM__Q_ALLOCATED_TOTAL] = "allocated_total",
};

const char *sm__quantity_name(int q)
{
	return q >= 0 && q < SM__Q_COUNT ? quantities[q] : "?";
}

int sm__quantity_lookup(const char *name)
{
	int i;

	for (i = 0; i < SM__Q_COUNT; i++)
		if (strcmp(quantities[i], name) == 0)
			return i;
	return -1;
}

static const struct {
	const char *name;
	int min, max;  /* arguments */
} functions[SM__F_COUNT] = {
	[SM__F_MIN] = {"min", 2, SM__DESC_MAX_ARGS},
	[SM__F_MAX] = {"max", 2, SM__DESC_MAX_ARGS},
	[SM__F_FLOOR] = {"floor", 1, 1},
	[SM__F_CEIL] = {"ceil", 1, 1},
	[SM__F_CEIL_DIV] = {"ceil_div", 2, 2},
	[SM__F_GRID_SIDE] = {"grid_side", 1, 1},
	[SM__F_HALO_GRID_SIDE] = {"halo_grid_side", 2, 2},
	[SM__F_SIZEOF] = {"sizeof", 1, 1},
	[SM__F_IF] = {"if", 3, 3},
	[SM__F_CBRT] = {"cbrt", 1, 1},
};

/* Levenshtein distance, capped (the words are short). */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j, row[64], prev, tmp;

	if (la > 63 || lb > 63)
		return 99;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t best = prev + (tolower((unsigned char)a[i - 1]) !=
					      tolower((unsigned char)b[j - 1]));

			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			tmp = row[j];
			row[j] = best;
			prev = tmp;
		}
	}
	return row[lb];
}

const char *sm__closest(const char *word, const char *const *cands, size_t n)
{
	const char *best = NULL;
	size_t bd = 99, i, lim = strlen(word) / 3 + 1;

	if (lim > 3)
		lim = 3;
	for (i = 0; i < n; i++) {
		size_t dd;

		if (cands[i] == NULL)
			continue;
		dd = edit_distance(word, cands[i]);
		if (dd < bd) {
			bd = dd;
			best = cands[i];
		}
	}
	return bd <= lim ? best : NULL;
}

/* ---- lexer and parser ---------------------------------------------------------------------- */

enum { T_END = 0, T_INT = 300, T_REAL, T_IDENT, T_STR };

struct lex {
	const char *file, *s;
	size_t pos;
	int line, col0;       /* where s starts */
	int tok;              /* current token */
	size_t tpos;          /* its offset */
	uint64_t u;
	double d;
	char text[128];
	int depth;
	sm_error *err;
};

static int col_of(const struct lex *L, size_t off)
{
	return L->col0 + (int)off;
}

static int lerr(struct lex *L, size_t off, const char *fmt, const char *a)
{
	char msg[200];

	snprintf(msg, sizeof(msg), fmt, a);
	return sm_error_set(L->err, SM_EFORMAT, "%s:%d:%d: %s", L->file, L->line, col_of(L, off),
			    msg);
}

static int is_ident0(int c)
{
	return isalpha(c) || c == '_';
}

static int is_ident(int c)
{
	return isalnum(c) || c == '_';
}

static int next(struct lex *L)
{
	const char *s = L->s;
	size_t p = L->pos;

	while (s[p] == ' ' || s[p] == '\t' || s[p] == '\n' || s[p] == '\r')
		p++;
	L->tpos = p;
	if (s[p] == '\0') {
		L->tok = T_END;
		L->pos = p;
		return 0;
	}
	if (isdigit((unsigned char)s[p])) {
		size_t q = p;
		int real = 0;

		while (isdigit((unsigned char)s[q]))
			q++;
		if (s[q] == '.' && isdigit((unsigned char)s[q + 1])) {
			real = 1;
			q++;
			while (isdigit((unsigned char)s[q]))
				q++;
		}
		if ((s[q] == 'e' || s[q] == 'E') &&
		    (isdigit((unsigned char)s[q + 1]) ||
		     ((s[q + 1] == '+' || s[q + 1] == '-') && isdigit((unsigned char)s[q + 2])))) {
			real = 1;
			q += 2;
			while (isdigit((unsigned char)s[q]))
				q++;
		}
		if (is_ident(s[q]))
			return lerr(L, p, "expression: bad number '%.20s'", s + p);
		if (real) {
			char buf[64];
			size_t n = q - p < sizeof(buf) - 1 ? q - p : sizeof(buf) - 1;

			memcpy(buf, s + p, n);
			buf[n] = '\0';
			L->d = strtod(buf, NULL);
			if (!isfinite(L->d))
				return lerr(L, p, "expression: number '%.20s' is out of range", s + p);
			L->tok = T_REAL;
		} else {
			uint64_t v = 0;
			size_t i;

			for (i = p; i < q; i++) {
				unsigned dg = (unsigned)(s[i] - '0');

				if (v > (UINT64_MAX - dg) / 10)
					return lerr(L, p, "expression: integer '%.24s' does not fit in "
						    "64 bits", s + p);
				v = v * 10 + dg;
			}
			L->u = v;
			L->tok = T_INT;
		}
		L->pos = q;
		return 0;
	}
	if (is_ident0((unsigned char)s[p])) {
		size_t q = p;

		for (;;) {
			while (is_ident((unsigned char)s[q]))
				q++;
			/* in-memory: a hyphen between letters joins a word (subtract with spaces) */
			if (s[q] == '-' && isalpha((unsigned char)s[q + 1]) && isalpha((unsigned char)s[q - 1])) {
				q++;
				continue;
			}
			break;
		}
		if (q - p >= sizeof(L->text))
			return lerr(L, p, "expression: name '%.40s...' is too long", s + p);
		memcpy(L->text, s + p, q - p);
		L->text[q - p] = '\0';
		L->tok = T_IDENT;
		L->pos = q;
		return 0;
	}
	if (s[p] == '\'' || s[p] == '"') {
		char qc = s[p];
		size_t q = p + 1;

		while (s[q] != '\0' && s[q] != qc)
			q++;
		if (s[q] != qc)
			return lerr(L, p, "expression: unterminated string %s", "");
		if (q - p - 1 >= sizeof(L->text))
			return lerr(L, p, "expression: string '%.40s...' is too long", s + p + 1);
		memcpy(L->text, s + p + 1, q - p - 1);
		L->text[q - p - 1] = '\0';
		L->tok = T_STR;
		L->pos = q + 1;
		return 0;
	}
#define TWO(a, b, t) if (s[p] == (a) && s[p + 1] == (b)) { L->tok = (t); L->pos = p + 2; return 0; }
	TWO('=', '=', SM__OP_EQ)
	TWO('!', '=', SM__OP_NE)
	TWO('<', '=', SM__OP_LE)
	TWO('>', '=', SM__OP_GE)
	TWO('&', '&', SM__OP_AND)
	TWO('|', '|', SM__OP_OR)
#undef TWO
	if (strchr("+-*/%<>!?:(),", s[p]) != NULL) {
		L->tok = (unsigned char)s[p];
		L->pos = p + 1;
		return 0;
	}
	{
		char c[2] = {s[p], '\0'};

		return lerr(L, p, "expression: unexpected character '%s'", c);
	}
}

static sm__expr *node(struct lex *L, enum sm__xkind k, size_t off)
{
	sm__expr *x = calloc(1, sizeof(*x));

	if (x == NULL) {
		sm_error_set(L->err, SM_ENOMEM, "%s:%d:%d: out of memory", L->file, L->line,
			     col_of(L, off));
		return NULL;
	}
	x->kind = k;
	x->line = L->line;
	x->col = col_of(L, off);
	return x;
}

void sm__expr_free(sm__expr *x)
{
	int i;

	if (x == NULL)
		return;
	sm__expr_free(x->a);
	sm__expr_free(x->b);
	sm__expr_free(x->c);
	for (i = 0; i < x->nargs; i++)
		sm__expr_free(x->args[i]);
	free(x->name);
	free(x);
}

static const char *tok_text(const struct lex *L)
{
	static const char *const ops[] = {"==", "!=", "<=", ">=", "&&", "||"};

	if (L->tok == T_END)
		return "the end";
	if (L->tok >= SM__OP_EQ && L->tok <= SM__OP_OR)
		return ops[L->tok - SM__OP_EQ];
	return NULL;
}

static int unexpected(struct lex *L)
{
	const char *t = tok_text(L);
	char buf[48];

	if (t == NULL) {
		size_t n = L->pos - L->tpos < 40 ? L->pos - L->tpos : 40;

		memcpy(buf, L->s + L->tpos, n);
		buf[n] = '\0';
		t = buf;
	}
	return lerr(L, L->tpos, L->tok == T_END ? "expression: unexpected %s"
						: "expression: unexpected '%s'", t);
}

static int parse_cond(struct lex *L, sm__expr **out);

static int parse_primary(struct lex *L, sm__expr **out)
{
	sm__expr *x = NULL;
	int rc;

	if (++L->depth > SM__DESC_MAX_EXPR_DEPTH)
		return lerr(L, L->tpos, "expression: nested deeper than %s levels", "64");
	if (L->tok == '(') {
		if ((rc = next(L)) != 0 || (rc = parse_cond(L, &x)) != 0)
			goto fail;
		if (L->tok != ')') {
			rc = L->tok == T_END ? lerr(L, L->tpos, "expression: missing '%s'", ")")
					     : unexpected(L);
			goto fail;
		}
		if ((rc = next(L)) != 0)
			goto fail;
	} else if (L->tok == '-' || L->tok == '!') {
		size_t at = L->tpos;
		int op = L->tok;

		if ((x = node(L, SM__X_UNARY, at)) == NULL)
			return SM_ENOMEM;
		x->op = op;
		if ((rc = next(L)) != 0 || (rc = parse_primary(L, &x->a)) != 0)
			goto fail;
	} else if (L->tok == T_INT || L->tok == T_REAL) {
		if ((x = node(L, L->tok == T_INT ? SM__X_INT : SM__X_REAL, L->tpos)) == NULL)
			return SM_ENOMEM;
		x->u = L->u;
		x->d = L->d;
		if ((rc = next(L)) != 0)
			goto fail;
	} else if (L->tok == T_IDENT || L->tok == T_STR) {
		int str = L->tok == T_STR;

		if ((x = node(L, str ? SM__X_STR : SM__X_IDENT, L->tpos)) == NULL ||
		    (x->name = strdup(L->text)) == NULL) {
			free(x);
			return sm_error_set(L->err, SM_ENOMEM, "%s: out of memory", L->file);
		}
		if ((rc = next(L)) != 0)
			goto fail;
		if (!str && L->tok == '(') {
			int f;

			for (f = 0; f < SM__F_COUNT; f++)
				if (strcmp(functions[f].name, x->name) == 0)
					break;
			if (f == SM__F_COUNT) {
				const char *names[SM__F_COUNT], *near;
				int i;

				for (i = 0; i < SM__F_COUNT; i++)
					names[i] = functions[i].name;
				near = sm__closest(x->name, names, SM__F_COUNT);
				if (near != NULL)
					rc = sm_error_set(L->err, SM_EFORMAT, "%s:%d:%d: unknown function "
							  "'%s' (did you mean '%s'?)", L->file,
							  x->line, x->col, x->name, near);
				else
					rc = sm_error_set(L->err, SM_EFORMAT, "%s:%d:%d: unknown function "
							  "'%s'", L->file, x->line, x->col, x->name);
				goto fail;
			}
			x->kind = SM__X_CALL;
			x->op = f;
			if ((rc = next(L)) != 0)
				goto fail;
			if (L->tok != ')') {
				for (;;) {
					if (x->nargs >= SM__DESC_MAX_ARGS) {
						rc = lerr(L, L->tpos, "expression: more than %s arguments",
							  "8");
						goto fail;
					}
					if ((rc = parse_cond(L, &x->args[x->nargs])) != 0)
						goto fail;
					x->nargs++;
					if (L->tok == ',') {
						if ((rc = next(L)) != 0)
							goto fail;
						continue;
					}
					if (L->tok == ')')
						break;
					rc = L->tok == T_END ? lerr(L, L->tpos, "expression: missing '%s'",
								    ")")
							     : unexpected(L);
					goto fail;
				}
			}
			if ((rc = next(L)) != 0)
				goto fail;
			if (x->nargs < functions[f].min || x->nargs > functions[f].max) {
				char m[120];

				if (functions[f].min == functions[f].max)
					snprintf(m, sizeof(m), "%d argument%s", functions[f].min,
						 functions[f].min == 1 ? "" : "s");
				else
					snprintf(m, sizeof(m), "%d to %d arguments", functions[f].min,
						 functions[f].max);
				rc = sm_error_set(L->err, SM_EFORMAT, "%s:%d:%d: %s() takes %s, not %d",
						  L->file, x->line, x->col, x->name, m, x->nargs);
				goto fail;
			}
		}
	} else {
		return unexpected(L);
	}
	L->depth--;
	*out = x;
	return 0;
fail:
	sm__expr_free(x);
	return rc;
}

/* Binary levels, lowest first. */
static int level_of(int tok)
{
	switch (tok) {
	case SM__OP_OR: return 1;
	case SM__OP_AND: return 2;
	case SM__OP_EQ: case SM__OP_NE: return 3;
	case '<': case '>': case SM__OP_LE: case SM__OP_GE: return 4;
	case '+': case '-': return 5;
	case '*': case '/': case '%': return 6;
	default: return 0;
	}
}

static int parse_binary(struct lex *L, int level, sm__expr **out)
{
	sm__expr *x = NULL, *y;
	int rc;

	if (level > 6)
		return parse_primary(L, out);
	if ((rc = parse_binary(L, level + 1, &x)) != 0)
		return rc;
	while (level_of(L->tok) == level) {
		int op = L->tok;
		size_t at = L->tpos;

		if ((y = node(L, SM__X_BINARY, at)) == NULL) {
			rc = SM_ENOMEM;
			goto fail;
		}
		y->op = op;
		y->a = x;
		x = y;
		if ((rc = next(L)) != 0 || (rc = parse_binary(L, level + 1, &x->b)) != 0)
			goto fail;
		/* comparisons do not chain: a < b < c is refused */
		if ((level == 3 || level == 4) && level_of(L->tok) == level) {
			rc = lerr(L, L->tpos, "expression: comparisons do not chain: use %s", "&&");
			goto fail;
		}
	}
	*out = x;
	return 0;
fail:
	sm__expr_free(x);
	return rc;
}

static int parse_cond(struct lex *L, sm__expr **out)
{
	sm__expr *x = NULL, *c;
	int rc;

	if ((rc = parse_binary(L, 1, &x)) != 0)
		return rc;
	if (L->tok == '?') {
		if (++L->depth > SM__DESC_MAX_EXPR_DEPTH) {
			rc = lerr(L, L->tpos, "expression: nested deeper than %s levels", "64");
			goto fail;
		}
		if ((c = node(L, SM__X_COND, L->tpos)) == NULL) {
			rc = SM_ENOMEM;
			goto fail;
		}
		c->a = x;
		x = c;
		if ((rc = next(L)) != 0 || (rc = parse_cond(L, &x->b)) != 0)
			goto fail;
		if (L->tok != ':') {
			rc = L->tok == T_END ? lerr(L, L->tpos, "expression: missing '%s' of '?'", ":")
					     : unexpected(L);
			goto fail;
		}
		if ((rc = next(L)) != 0 || (rc = parse_cond(L, &x->c)) != 0)
			goto fail;
		L->depth--;
	}
	*out = x;
	return 0;
fail:
	sm__expr_free(x);
	return rc;
}

int sm__expr_parse(const char *file, const char *text, int line, int col, sm__expr **out,
		   sm_error *err)
{
	struct lex L;
	sm__expr *x = NULL;
	int rc;

	memset(&L, 0, sizeof(L));
	L.file = file;
	L.s = text;
	L.line = line;
	L.col0 = col;
	L.err = err;
	*out = NULL;
	if (strlen(text) > SM__DESC_MAX_EXPR_LEN)
		return sm_error_set(err, SM_EFORMAT, "%s:%d:%d: expression longer than %u characters",
				    file, line, col, (unsigned)SM__DESC_MAX_EXPR_LEN);
	if ((rc = next(&L)) != 0)
		return rc;
	if (L.tok == T_END)
		return sm_error_set(err, SM_EFORMAT, "%s:%d:%d: empty expression", file, line, col);
	if ((rc = parse_cond(&L, &x)) != 0)
		return rc;
	if (L.tok != T_END) {
		rc = unexpected(&L);
		sm__expr_free(x);
		return rc;
	}
	*out = x;
	return 0;
}

/* ---- evaluation ---------------------------------------------------------------------------- */

#define EVAL_MAX_DEPTH 512  /* lets referring to lets: bounded by the acyclic let graph anyway */
/* Nodes visited by one evaluation: definitions that use each other twice over (a1: a0 + a0,
 * a2: a1 + a1, ...) would otherwise take 2^64 steps. */
#define EVAL_MAX_STEPS 1000000u

struct ev {
	sm__env *env;
	sm_error *err;
	int depth;
	unsigned steps;
};

static const char *file_of(const struct ev *E)
{
	return E->env->d->file;
}

static int xerr(const struct ev *E, const sm__expr *x, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int xerr(const struct ev *E, const sm__expr *x, int code, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return sm_error_set(E->err, code, "%s:%d:%d: %s", file_of(E), x->line, x->col, msg);
}

static const char *kind_name(enum sm__vkind k)
{
	switch (k) {
	case SM__V_INT: return "an integer";
	case SM__V_REAL: return "a real";
	case SM__V_DTYPE: return "a dtype";
	default: return "an option value";
	}
}

static int eval(struct ev *E, const sm__expr *x, sm__val *v);

static int numeric(const struct ev *E, const sm__expr *x, const sm__val *v)
{
	if (v->k == SM__V_INT || v->k == SM__V_REAL)
		return 0;
	return xerr(E, x, SM_EFORMAT, "expected a number, got %s", kind_name(v->k));
}

static double as_real(const sm__val *v)
{
	return v->k == SM__V_REAL ? v->d : (double)v->u;
}

static void set_int(sm__val *v, uint64_t u)
{
	memset(v, 0, sizeof(*v));
	v->k = SM__V_INT;
	v->u = u;
}

static void set_real(sm__val *v, double d)
{
	memset(v, 0, sizeof(*v));
	v->k = SM__V_REAL;
	v->d = d;
}

static int truth(const struct ev *E, const sm__expr *x, const sm__val *v, int *out)
{
	int rc = numeric(E, x, v);

	if (rc == 0)
		*out = v->k == SM__V_INT ? v->u != 0 : v->d != 0;
	return rc;
}

/* A real to an integer (floor/ceil already applied): must be finite, >= 0, < 2^64. */
static int real_to_u64(const struct ev *E, const sm__expr *x, double d, uint64_t *out)
{
	if (!isfinite(d) || d < 0 || d >= 18446744073709551616.0)
		return xerr(E, x, SM_EOVERFLOW, "%g is not an integer from 0 to 2^64 - 1", d);
	*out = (uint64_t)d;
	return 0;
}

static int eval_quantity(struct ev *E, const sm__expr *x, sm__val *v)
{
	sm__env *env = E->env;
	int q = x->idx;

	if ((q == SM__Q_SPHERE) && !(env->ctx & SM__CTX_HALO))
		return xerr(E, x, SM_EFORMAT, "'sphere' is a halo's sphere: only in per_halo "
			    "stages (sphere_max is the largest)");
	if ((q == SM__Q_PEAK_ALLOCATED || q == SM__Q_PEAK_REQUESTED ||
	     q == SM__Q_ALLOCATED_TOTAL) && !(env->ctx & SM__CTX_PROCESS))
		return xerr(E, x, SM_EFORMAT, "'%s' is known after the replay: only under process:",
			    quantities[q]);
	if ((q == SM__Q_SPHERE || q == SM__Q_SPHERE_MAX) && env->sphere_rc != 0)
		return sm_error_set(E->err, env->sphere_rc, "%s", env->sphere_err.msg);
	if (q == SM__Q_GROUPS_CHUNK_MAX && env->gc_rc != 0)
		return sm_error_set(E->err, env->gc_rc, "%s", env->gc_err.msg);
	if ((q == SM__Q_HALOS || q == SM__Q_SPHERE || q == SM__Q_SPHERE_MAX ||
	     q == SM__Q_SPHERE_RADIUS_MAX) && env->halos_err != NULL)
		return xerr(E, x, env->halos_err->code != 0 ? env->halos_err->code : SM_EINVAL,
			    "'%s': %s", quantities[q], env->halos_err->msg);
	if (q == SM__Q_SUBHALOS && env->subhalos_unknown != NULL)
		return xerr(E, x, SM_EINVAL, "'subhalos': %s has no subhalo count (the group "
			    "catalogue's Nsubgroups_Total or Nsubhalos_Total): give --base-path DIR "
			    "--snap N of a snapshot whose catalogue holds one", env->subhalos_unknown);
	env->used |= UINT64_C(1) << q;
	if (env->q_real[q])
		set_real(v, env->qd[q]);
	else
		set_int(v, env->q[q]);
	return 0;
}

static int eval_ident(struct ev *E, const sm__expr *x, sm__val *v)
{
	sm__env *env = E->env;
	const sm_pipeline_desc *d = env->d;
	int rc;

	memset(v, 0, sizeof(*v));
	switch (x->ref) {
	case SM__R_QUANTITY:
		return eval_quantity(E, x, v);
	case SM__R_LET:
		if (++E->depth > EVAL_MAX_DEPTH)
			return xerr(E, x, SM_EFORMAT, "'%s': definitions nested too deep", x->name);
		rc = eval(E, d->lets[x->idx].x, v);
		E->depth--;
		return rc;
	case SM__R_OPTION:
		if (d->options[x->idx].numeric) {
			set_int(v, env->opt_u[x->idx]);
		} else {
			v->k = SM__V_WORD;
			v->s = env->opt_word[x->idx];
		}
		return 0;
	case SM__R_DTYPE:
		v->k = SM__V_DTYPE;
		v->dtype = x->idx;
		return 0;
	case SM__R_WORD:
		v->k = SM__V_WORD;
		v->s = x->name;
		return 0;
	default:
		return xerr(E, x, SM_EFORMAT, "unknown quantity '%s'", x->name);
	}
}

/* The word of v for a comparison by name: an option's word or a dtype's name. */
static const char *word_of(const sm__val *v)
{
	return v->k == SM__V_WORD ? v->s : v->k == SM__V_DTYPE ? sm__dtype_name(v->dtype) : NULL;
}

static int compare(struct ev *E, const sm__expr *x, const sm__val *a, const sm__val *b, int *cmp)
{
	const char *wa = word_of(a), *wb = word_of(b);

	if (wa != NULL || wb != NULL) {
		if (wa == NULL || wb == NULL)
			return xerr(E, x, SM_EFORMAT, "cannot compare %s with %s", kind_name(a->k),
				    kind_name(b->k));
		if (x->op != SM__OP_EQ && x->op != SM__OP_NE)
			return xerr(E, x, SM_EFORMAT, "words compare only with == and !=");
		*cmp = strcmp(wa, wb) != 0;
		return 0;
	}
	if (a->k == SM__V_INT && b->k == SM__V_INT)
		*cmp = a->u < b->u ? -1 : a->u > b->u;
	else
		*cmp = as_real(a) < as_real(b) ? -1 : as_real(a) > as_real(b);
	return 0;
}

static int eval_binary(struct ev *E, const sm__expr *x, sm__val *v)
{
	sm__val a, b;
	int rc, t = 0, cmp = 0;
	uint64_t r;

	if (x->op == SM__OP_AND || x->op == SM__OP_OR) {
		if ((rc = eval(E, x->a, &a)) != 0 || (rc = truth(E, x->a, &a, &t)) != 0)
			return rc;
		if ((x->op == SM__OP_AND && !t) || (x->op == SM__OP_OR && t)) {
			set_int(v, (uint64_t)t);
			return 0;
		}
		if ((rc = eval(E, x->b, &b)) != 0 || (rc = truth(E, x->b, &b, &t)) != 0)
			return rc;
		set_int(v, (uint64_t)t);
		return 0;
	}
	if ((rc = eval(E, x->a, &a)) != 0 || (rc = eval(E, x->b, &b)) != 0)
		return rc;
	switch (x->op) {
	case SM__OP_EQ: case SM__OP_NE: case '<': case '>': case SM__OP_LE: case SM__OP_GE:
		if ((rc = compare(E, x, &a, &b, &cmp)) != 0)
			return rc;
		t = x->op == SM__OP_EQ ? cmp == 0 : x->op == SM__OP_NE ? cmp != 0
		    : x->op == '<' ? cmp < 0 : x->op == '>' ? cmp > 0
		    : x->op == SM__OP_LE ? cmp <= 0 : cmp >= 0;
		set_int(v, (uint64_t)t);
		return 0;
	default:
		break;
	}
	if ((rc = numeric(E, x->a, &a)) != 0 || (rc = numeric(E, x->b, &b)) != 0)
		return rc;
	if (a.k == SM__V_REAL || b.k == SM__V_REAL) {
		double p = as_real(&a), q = as_real(&b), res;

		switch (x->op) {
		case '+': res = p + q; break;
		case '-': res = p - q; break;
		case '*': res = p * q; break;
		case '/':
			if (q == 0)
				return xerr(E, x, SM_EFORMAT, "division by zero (%g / %g)", p, q);
			res = p / q;
			break;
		default:
			return xerr(E, x, SM_EFORMAT, "'%%' takes integers, not reals (%g %% %g)", p, q);
		}
		if (!isfinite(res))
			return xerr(E, x, SM_EOVERFLOW, "%g %c %g is not finite", p, x->op, q);
		set_real(v, res);
		return 0;
	}
	switch (x->op) {
	case '+':
		if (sm_add_u64(a.u, b.u, &r) != 0)
			return xerr(E, x, SM_EOVERFLOW, "overflow: %llu + %llu does not fit in 64 bits",
				    (unsigned long long)a.u, (unsigned long long)b.u);
		break;
	case '-':
		if (b.u > a.u)
			return xerr(E, x, SM_EOVERFLOW, "negative: %llu - %llu is below 0",
				    (unsigned long long)a.u, (unsigned long long)b.u);
		r = a.u - b.u;
		break;
	case '*':
		if (sm_mul_u64(a.u, b.u, &r) != 0)
			return xerr(E, x, SM_EOVERFLOW, "overflow: %llu * %llu does not fit in 64 bits",
				    (unsigned long long)a.u, (unsigned long long)b.u);
		break;
	case '/': case '%':
		if (b.u == 0)
			return xerr(E, x, SM_EFORMAT, "division by zero (%llu %c 0)",
				    (unsigned long long)a.u, x->op);
		r = x->op == '/' ? a.u / b.u : a.u % b.u;
		break;
	default:
		return xerr(E, x, SM_EFORMAT, "unknown operator");
	}
	set_int(v, r);
	return 0;
}

static int eval_call(struct ev *E, const sm__expr *x, sm__val *v)
{
	sm__val a[SM__DESC_MAX_ARGS];
	int rc, i, t = 0;

	if (x->op == SM__F_IF) {  /* lazy: only the branch taken is evaluated */
		if ((rc = eval(E, x->args[0], &a[0])) != 0 ||
		    (rc = truth(E, x->args[0], &a[0], &t)) != 0)
			return rc;
		return eval(E, x->args[t ? 1 : 2], v);
	}
	for (i = 0; i < x->nargs; i++)
		if ((rc = eval(E, x->args[i], &a[i])) != 0)
			return rc;
	if (x->op == SM__F_SIZEOF) {
		int dt;

		if (a[0].k == SM__V_DTYPE)
			dt = a[0].dtype;
		else if (a[0].k == SM__V_WORD && (dt = sm__dtype_lookup(a[0].s)) >= 0)
			;
		else
			return xerr(E, x->args[0], SM_EFORMAT, "sizeof() takes a dtype, not %s",
				    kind_name(a[0].k));
		set_int(v, sm__dtype_size(dt));
		return 0;
	}
	for (i = 0; i < x->nargs; i++)
		if ((rc = numeric(E, x->args[i], &a[i])) != 0)
			return rc;
	switch (x->op) {
	case SM__F_MIN: case SM__F_MAX: {
		int real = 0, best = 0;

		for (i = 0; i < x->nargs; i++)
			real |= a[i].k == SM__V_REAL;
		for (i = 1; i < x->nargs; i++) {
			int less = real ? as_real(&a[i]) < as_real(&a[best]) : a[i].u < a[best].u;
			int more = real ? as_real(&a[i]) > as_real(&a[best]) : a[i].u > a[best].u;

			if (x->op == SM__F_MIN ? less : more)
				best = i;
		}
		if (real)
			set_real(v, as_real(&a[best]));
		else
			*v = a[best];
		return 0;
	}
	case SM__F_FLOOR: case SM__F_CEIL: {
		uint64_t u = 0;

		if (a[0].k == SM__V_INT) {
			*v = a[0];
			return 0;
		}
		if ((rc = real_to_u64(E, x, x->op == SM__F_FLOOR ? floor(a[0].d) : ceil(a[0].d),
				      &u)) != 0)
			return rc;
		set_int(v, u);
		return 0;
	}
	case SM__F_CBRT:
		set_real(v, cbrt(as_real(&a[0])));
		return 0;
	case SM__F_CEIL_DIV:
		if (a[0].k != SM__V_INT || a[1].k != SM__V_INT)
			return xerr(E, x, SM_EFORMAT, "ceil_div() takes integers");
		if (a[1].u == 0)
			return xerr(E, x, SM_EFORMAT, "division by zero (ceil_div(%llu, 0))",
				    (unsigned long long)a[0].u);
		set_int(v, a[0].u / a[1].u + (a[0].u % a[1].u != 0));
		return 0;
	case SM__F_GRID_SIDE:
		if (a[0].k != SM__V_INT)
			return xerr(E, x, SM_EFORMAT, "grid_side() takes an integer");
		set_int(v, sm_model_grid_side(a[0].u));
		return 0;
	case SM__F_HALO_GRID_SIDE:
		set_int(v, sm__est_halo_grid_side(as_real(&a[0]), as_real(&a[1])));
		return 0;
	default:
		return xerr(E, x, SM_EFORMAT, "unknown function");
	}
}

static int eval(struct ev *E, const sm__expr *x, sm__val *v)
{
	sm__val a, b;
	int rc, t = 0;

	if (++E->steps > EVAL_MAX_STEPS)
		return xerr(E, x, SM_EFORMAT, "expression: more than %u steps to evaluate (definitions "
			    "that use each other many times over)", EVAL_MAX_STEPS);
	switch (x->kind) {
	case SM__X_INT:
		set_int(v, x->u);
		return 0;
	case SM__X_REAL:
		set_real(v, x->d);
		return 0;
	case SM__X_STR:
		memset(v, 0, sizeof(*v));
		v->k = SM__V_WORD;
		v->s = x->name;
		return 0;
	case SM__X_IDENT:
		return eval_ident(E, x, v);
	case SM__X_UNARY:
		if ((rc = eval(E, x->a, &a)) != 0 || (rc = numeric(E, x->a, &a)) != 0)
			return rc;
		if (x->op == '!') {
			truth(E, x->a, &a, &t);
			set_int(v, (uint64_t)!t);
		} else if (a.k == SM__V_REAL) {
			set_real(v, -a.d);
		} else if (a.u == 0) {
			set_int(v, 0);
		} else {
			return xerr(E, x, SM_EOVERFLOW, "negative: -%llu is below 0",
				    (unsigned long long)a.u);
		}
		return 0;
	case SM__X_BINARY:
		return eval_binary(E, x, v);
	case SM__X_COND:
		if ((rc = eval(E, x->a, &a)) != 0 || (rc = truth(E, x->a, &a, &t)) != 0)
			return rc;
		return eval(E, t ? x->b : x->c, v);
	case SM__X_CALL:
		return eval_call(E, x, v);
	}
	(void)b;
	return xerr(E, x, SM_EFORMAT, "bad expression");
}

int sm__expr_eval(const sm__expr *x, sm__env *env, sm__val *out, sm_error *err)
{
	struct ev E = {env, err, 0, 0};

	return eval(&E, x, out);
}

int sm__expr_u64(const sm__expr *x, sm__env *env, const char *what, uint64_t *out, sm_error *err)
{
	struct ev E = {env, err, 0, 0};
	sm__val v;
	int rc;

	if ((rc = eval(&E, x, &v)) != 0)
		return rc;
	if (v.k == SM__V_INT) {
		*out = v.u;
		return 0;
	}
	if (v.k == SM__V_REAL) {
		if (v.d != floor(v.d))
			return xerr(&E, x, SM_EFORMAT, "%s %.17g is not an integer (use floor() or "
				    "ceil())", what, v.d);
		return real_to_u64(&E, x, v.d, out);
	}
	return xerr(&E, x, SM_EFORMAT, "%s must be a number, not %s", what, kind_name(v.k));
}

int sm__expr_bool(const sm__expr *x, sm__env *env, int *out, sm_error *err)
{
	struct ev E = {env, err, 0, 0};
	sm__val v;
	int rc;

	if ((rc = eval(&E, x, &v)) != 0)
		return rc;
	return truth(&E, x, &v, out);
}

int sm__expr_dtype(const sm__expr *x, sm__env *env, int *out, sm_error *err)
{
	struct ev E = {env, err, 0, 0};
	sm__val v;
	int rc;

	if ((rc = eval(&E, x, &v)) != 0)
		return rc;
	if (v.k == SM__V_DTYPE) {
		*out = v.dtype;
		return 0;
	}
	if (v.k == SM__V_WORD && (*out = sm__dtype_lookup(v.s)) >= 0)
		return 0;
	if (v.k == SM__V_WORD)
		return xerr(&E, x, SM_EFORMAT, "unknown dtype '%s'", v.s);
	return xerr(&E, x, SM_EFORMAT, "a dtype is expected, not %s", kind_name(v.k));
}
