/*
 * toml_suite_test.c — TOML 1.0 conformance against the toml-test suite.
 *
 * argv[1] is the toml-test folder. For every file listed in files-toml-1.0.0:
 * valid/X.toml must parse and equal valid/X.json (toml-test's tagged JSON),
 * compared semantically the way toml-test does: same keys and types,
 * integers exactly, floats numerically (nan equals nan), date/times by value
 * (so "Z" equals "+00:00" and ".600" equals ".6"); invalid/X.toml must be
 * rejected. One assertion per file.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/tap.h"
#include "toml/toml.h"

#define MAX_FILE (1u << 20)

static bool is_leaf(json_t *j)
{
	return json_is_object(j) && json_object_size(j) == 2 && json_is_string(json_object_get(j, "type")) &&
	       json_is_string(json_object_get(j, "value"));
}

/* Parse a date/time literal by wrapping it in a one-line document. */
static struct toml_node *parse_dt(const char *text)
{
	struct buf b = BUF_INIT;
	struct toml_node *doc;

	buf_printf(&b, "v = %s", text);
	doc = toml_parse((const char *)b.data, b.len, "datetime", NULL);
	buf_free(&b);
	return doc;
}

static bool datetime_equal(const char *got, const char *want)
{
	struct toml_node *g = parse_dt(got), *w = parse_dt(want);
	bool eq = false;

	if (g && w) {
		const struct toml_node *a = toml_get(g, "v"), *b = toml_get(w, "v");
		const struct toml_datetime *x = &a->v.dt, *y = &b->v.dt;

		eq = a->type == b->type && x->year == y->year && x->month == y->month && x->day == y->day &&
		     x->hour == y->hour && x->minute == y->minute && x->second == y->second &&
		     x->nanosecond == y->nanosecond && x->offset_minutes == y->offset_minutes;
	}
	toml_free(g);
	toml_free(w);
	return eq;
}

static bool leaf_equal(json_t *got, json_t *want, struct buf *why)
{
	const char *gt = json_string_value(json_object_get(got, "type"));
	const char *wt = json_string_value(json_object_get(want, "type"));
	json_t *gvj = json_object_get(got, "value"), *wvj = json_object_get(want, "value");
	const char *gv = json_string_value(gvj), *wv = json_string_value(wvj);
	bool eq;

	if (strcmp(gt, wt) != 0) {
		buf_printf(why, "type %s, want %s", gt, wt);
		return false;
	}
	if (strcmp(wt, "integer") == 0) {
		eq = strtoll(gv, NULL, 10) == strtoll(wv, NULL, 10);
	} else if (strcmp(wt, "float") == 0) {
		double a = strtod(gv, NULL), b = strtod(wv, NULL);
		eq = (isnan(a) && isnan(b)) || a == b;
	} else if (strcmp(wt, "string") == 0 || strcmp(wt, "bool") == 0) {
		eq = json_string_length(gvj) == json_string_length(wvj) &&
		     memcmp(gv, wv, json_string_length(wvj)) == 0;
	} else {
		eq = datetime_equal(gv, wv);
	}
	if (!eq)
		buf_printf(why, "%s value '%s', want '%s'", wt, gv, wv);
	return eq;
}

static bool tagged_equal(json_t *got, json_t *want, const char *path, struct buf *why)
{
	if (is_leaf(want)) {
		if (!is_leaf(got)) {
			buf_printf(why, "%s: not a scalar", path);
			return false;
		}
		if (!leaf_equal(got, want, why)) {
			buf_printf(why, " at %s", path);
			return false;
		}
		return true;
	}
	if (json_is_object(want)) {
		const char *k;
		json_t *v;

		if (!json_is_object(got) || json_object_size(got) != json_object_size(want)) {
			buf_printf(why, "%s: table keys differ", path);
			return false;
		}
		json_object_foreach(want, k, v)
		{
			char sub[512];

			snprintf(sub, sizeof(sub), "%s.%s", path, k);
			if (!json_object_get(got, k)) {
				buf_printf(why, "%s: missing", sub);
				return false;
			}
			if (!tagged_equal(json_object_get(got, k), v, sub, why))
				return false;
		}
		return true;
	}
	if (json_is_array(want)) {
		if (!json_is_array(got) || json_array_size(got) != json_array_size(want)) {
			buf_printf(why, "%s: array length differs", path);
			return false;
		}
		for (size_t i = 0; i < json_array_size(want); i++) {
			char sub[512];

			snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
			if (!tagged_equal(json_array_get(got, i), json_array_get(want, i), sub, why))
				return false;
		}
		return true;
	}
	buf_printf(why, "%s: unexpected JSON in the expected file", path);
	return false;
}

/*
 * jansson's loader refuses NUL in object keys (toml-test has a "\u0000" key),
 * so both sides go through JSON text with that escape renamed to U+2400.
 */
static json_t *load_renamed_nul(const char *text, size_t len, json_error_t *je)
{
	struct buf b = BUF_INIT;
	json_t *j;

	for (size_t i = 0; i < len; i++) {
		if (text[i] == '\\' && i + 5 < len && memcmp(text + i + 1, "u0000", 5) == 0) {
			buf_puts(&b, "\\u2400");
			i += 5;
		} else if (text[i] == '\\' && i + 1 < len) {
			buf_append(&b, text + i, 2);
			i++;
		} else {
			buf_putc(&b, (uint8_t)text[i]);
		}
	}
	j = json_loadb((const char *)b.data, b.len, JSON_DECODE_ANY, je);
	buf_free(&b);
	return j;
}

static json_t *renamed_copy(json_t *j)
{
	_cleanup_free_ char *text = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
	json_error_t je;

	return text ? load_renamed_nul(text, strlen(text), &je) : NULL;
}

static void check_valid(const char *dir, const char *rel, int *passed)
{
	char path[4096], jpath[4096];
	_cleanup_free_ uint8_t *text = NULL, *jtext = NULL;
	size_t len, jlen;
	struct err e = ERR_INIT;
	struct toml_node *doc = NULL;
	_cleanup_json_ json_t *got = NULL, *want = NULL, *tagged = NULL;
	json_error_t je;
	struct buf why = BUF_INIT;
	bool pass = false;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	snprintf(jpath, sizeof(jpath), "%s/%.*s.json", dir, (int)(strlen(rel) - 5), rel);
	if (file_read_all(path, MAX_FILE, &text, &len, &e) < 0 ||
	    file_read_all(jpath, MAX_FILE, &jtext, &jlen, &e) < 0) {
		buf_printf(&why, "%s", err_str(&e));
	} else if (!(want = load_renamed_nul((const char *)jtext, jlen, &je))) {
		buf_printf(&why, "expected JSON: %s", je.text);
	} else if (!(doc = toml_parse((const char *)text, len, rel, &e))) {
		buf_printf(&why, "%s", err_str(&e));
	} else if (!(got = toml_to_tagged_json(doc)) || !(got = renamed_copy(tagged = got))) {
		buf_printf(&why, "tagged JSON conversion failed");
	} else {
		pass = tagged_equal(got, want, "", &why);
	}
	if (ok(pass, "valid %s", rel))
		(*passed)++;
	else
		diag("  %s", why.data ? (char *)why.data : "");
	toml_free(doc);
	buf_free(&why);
}

static void check_invalid(const char *dir, const char *rel, int *passed)
{
	char path[4096];
	_cleanup_free_ uint8_t *text = NULL;
	size_t len;
	struct err e = ERR_INIT;
	struct toml_node *doc = NULL;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	if (file_read_all(path, MAX_FILE, &text, &len, &e) == 0)
		doc = toml_parse((const char *)text, len, rel, &e);
	if (ok(!doc && strstr(e.msg, "line "), "invalid %s rejected", rel))
		(*passed)++;
	else if (doc)
		diag("  accepted");
	else
		diag("  %s", err_str(&e));
	toml_free(doc);
}

int main(int argc, char **argv)
{
	char list[4096], line[4096];
	_cleanup_fclose_ FILE *f = NULL;
	int nvalid = 0, valid_ok = 0, ninvalid = 0, invalid_ok = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s TOML_TEST_DIR\n", argv[0]);
		return 2;
	}
	snprintf(list, sizeof(list), "%s/files-toml-1.0.0", argv[1]);
	f = fopen(list, "r");
	ok(f != NULL, "open %s", list);
	if (!f)
		return tap_done();
	while (fgets(line, sizeof(line), f)) {
		size_t n = strcspn(line, "\r\n");

		line[n] = '\0';
		if (n < 6 || strcmp(line + n - 5, ".toml") != 0)
			continue;
		if (strncmp(line, "valid/", 6) == 0) {
			nvalid++;
			check_valid(argv[1], line, &valid_ok);
		} else if (strncmp(line, "invalid/", 8) == 0) {
			ninvalid++;
			check_invalid(argv[1], line, &invalid_ok);
		}
	}
	ok(nvalid > 200 && ninvalid > 400, "file list has the TOML 1.0 suite");
	diag("valid: %d/%d, invalid: %d/%d", valid_ok, nvalid, invalid_ok, ninvalid);
	return tap_done();
}
