/*
 * toml_test.c — TOML parser API beyond conformance (toml_suite_test.c):
 * node values and positions, lookups, error message format and positions,
 * both JSON conversions, date/time rendering, and the limits that protect
 * against hostile input (depth, size, many keys, one huge line).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/tap.h"
#include "toml/toml.h"

static struct toml_node *parse(const char *text, struct err *e)
{
	return toml_parse(text, strlen(text), "t.toml", e);
}

static void expect_error(const char *text, const char *want, const char *name)
{
	struct err e = ERR_INIT;
	struct toml_node *doc = parse(text, &e);

	ok(!doc && strcmp(e.msg, want) == 0, "%s", name);
	if (doc || strcmp(e.msg, want) != 0)
		diag("got  '%s'\n# want '%s'", doc ? "(parsed)" : e.msg, want);
	toml_free(doc);
}

static void test_values(void)
{
	static const char text[] = "title = \"dstack\"\n"
				   "[server]\n"
				   "  port = 0x1F90 # 8080\n"
				   "  ratio = -1_000.5e-3\n"
				   "  on = true\n"
				   "  tags = [ \"a\",\n \"b\", ]\n"
				   "[server.limits]\n"
				   "  at = 1979-05-27T07:32:00.5-07:00\n"
				   "[[vm]]\n"
				   "name = \"one\"\n"
				   "[[vm]]\n"
				   "name = \"two\"\n"
				   "\"quoted.key\" = 'lit'\n";
	struct err e = ERR_INIT;
	struct toml_node *doc = parse(text, &e);
	const struct toml_node *n;
	char dt[64];

	if (!ok(doc != NULL, "document parses"))
		diag("%s", err_str(&e));
	if (!doc)
		return;
	n = toml_get(doc, "title");
	ok(n && n->type == TOML_STRING && strcmp(n->v.str.ptr, "dstack") == 0 && n->v.str.len == 6,
	   "string value");
	ok(n && n->line == 1 && n->col == 9 && n->key_line == 1 && n->key_col == 1, "string position");
	n = toml_path(doc, "server.port");
	ok(n && n->type == TOML_INTEGER && n->v.integer == 8080, "hex integer via toml_path");
	ok(n && n->line == 3 && n->col == 10 && n->key_col == 3, "integer position (line 3, col 10)");
	n = toml_path(doc, "server.ratio");
	ok(n && n->type == TOML_FLOAT && fabs(n->v.fp + 1.0005) < 1e-12,
	   "float with underscores and exponent");
	n = toml_path(doc, "server.on");
	ok(n && n->type == TOML_BOOL && n->v.boolean, "bool");
	n = toml_path(doc, "server.tags");
	ok(n && n->type == TOML_ARRAY && n->v.list.count == 2 &&
	       strcmp(n->v.list.items[1]->v.str.ptr, "b") == 0 && n->v.list.items[1]->line == 7,
	   "multi-line array with trailing comma; item line");
	n = toml_path(doc, "server.limits.at");
	ok(n && n->type == TOML_DATETIME && n->v.dt.offset_minutes == -420 && n->v.dt.nanosecond == 500000000,
	   "offset date-time");
	toml_datetime_format(n, dt, sizeof(dt));
	is_str(dt, "1979-05-27T07:32:00.5-07:00", "date-time rendered as written");
	n = toml_get(doc, "server");
	ok(n && n->type == TOML_TABLE && n->line == 2 && n->v.list.count == 5,
	   "table header position and size");
	n = toml_get(doc, "vm");
	ok(n && n->type == TOML_ARRAY && n->v.list.count == 2, "array of tables");
	ok(n && strcmp(toml_get(n->v.list.items[1], "name")->v.str.ptr, "two") == 0,
	   "second table of the array");
	ok(n && toml_get(n->v.list.items[1], "quoted.key") != NULL, "quoted key with a dot is one key");
	ok(toml_path(doc, "server.nope") == NULL && toml_path(doc, "title.x") == NULL,
	   "absent paths are NULL");
	is_str(toml_type_name(TOML_TIME_LOCAL), "time-local", "type names follow toml-test");
	toml_free(doc);
}

static void test_errors(void)
{
	expect_error("a = 1\na = 2\n", "t.toml: line 2, column 1: duplicate key 'a'", "duplicate key");
	expect_error("[x]\n[x]\n", "t.toml: line 2, column 2: table 'x' is already defined",
		     "table defined twice");
	expect_error("s = \"é\" x\n", "t.toml: line 1, column 9: expected end of line after a value",
		     "columns count characters, not bytes");
	expect_error("a = 07\n", "t.toml: line 1, column 5: leading zeros are not allowed in integers",
		     "leading zero");
	expect_error("a = 9223372036854775808\n",
		     "t.toml: line 1, column 5: integer '9223372036854775808' does not fit in 64 bits",
		     "overflow");
	expect_error("a = \"\"\"\nxx\n", "t.toml: line 1, column 5: unterminated multi-line string",
		     "unterminated multi-line string points at its start");
	expect_error("a = {b = 1}\n[a]\n", "t.toml: line 2, column 2: table 'a' is already defined",
		     "inline tables are closed");
	expect_error("a = \"\\q\"\n", "t.toml: line 1, column 6: invalid escape sequence", "bad escape");
	expect_error("a = 2021-02-29\n", "t.toml: line 1, column 5: date out of range", "not a leap year");
	expect_error("a = \xff\n", "t.toml: line 1, column 5: invalid UTF-8", "invalid UTF-8");
	expect_error("a =\n", "t.toml: line 1, column 4: expected a value", "missing value");
}

static void test_json(void)
{
	static const char text[] = "i = 1\nf = 1.5\nn = nan\nni = -inf\nb = false\nd = 2024-02-29\n"
				   "t = 07:32:00\nl = 1979-05-27T00:32:00.999999\nz = 1979-05-27 07:32:00Z\n"
				   "a = [1, \"two\", {x = [true]}]\n";
	struct toml_node *doc = parse(text, NULL);
	_cleanup_json_ json_t *plain = doc ? toml_to_json(doc) : NULL;
	_cleanup_json_ json_t *tagged = doc ? toml_to_tagged_json(doc) : NULL;
	_cleanup_free_ char *p = plain ? json_dumps(plain, JSON_COMPACT) : NULL;
	_cleanup_free_ char *t = tagged ? json_dumps(json_object_get(tagged, "a"), JSON_COMPACT) : NULL;

	is_str(p,
	       "{\"i\":1,\"f\":1.5,\"n\":\"nan\",\"ni\":\"-inf\",\"b\":false,\"d\":\"2024-02-29\",\"t\":\"07:"
	       "32:00\","
	       "\"l\":\"1979-05-27T00:32:00.999999\",\"z\":\"1979-05-27T07:32:00Z\",\"a\":[1,\"two\",{\"x\":["
	       "true]}]}",
	       "plain JSON: order kept, date/times as strings, nan/inf as strings");
	is_str(t,
	       "[{\"type\":\"integer\",\"value\":\"1\"},{\"type\":\"string\",\"value\":\"two\"},"
	       "{\"x\":[{\"type\":\"bool\",\"value\":\"true\"}]}]",
	       "tagged JSON");
	toml_free(doc);
}

static char *repeat(const char *head, const char *unit, size_t n, const char *tail)
{
	struct buf b = BUF_INIT;

	buf_puts(&b, head);
	for (size_t i = 0; i < n; i++)
		buf_puts(&b, unit);
	buf_puts(&b, tail);
	return (char *)buf_steal(&b, NULL);
}

static void test_limits(void)
{
	struct err e = ERR_INIT;
	struct toml_node *doc;
	char *s;
	struct buf b = BUF_INIT;
	clock_t start;

	s = repeat("a = ", "[", 100000, "");
	doc = parse(s, &e);
	ok(!doc && strstr(e.msg, "nested too deeply"), "100000 nested arrays rejected: %s", e.msg);
	free(s);
	s = repeat("a = ", "[", TOML_MAX_DEPTH - 1, "");
	ok(!parse(s, &e) && strstr(e.msg, "expected a value"), "arrays up to the depth limit are fine");
	free(s);
	s = repeat("x", ".x", 200, " = 1\n");
	ok(!parse(s, &e) && strstr(e.msg, "too many parts"), "dotted key with 201 parts rejected: %s", e.msg);
	free(s);
	s = repeat("", "[a.a.a.a.a.a.a.a.a.a]\n", 1, "");
	doc = parse(s, &e);
	ok(doc != NULL, "moderate header nesting is fine");
	toml_free(doc);
	free(s);
	/* Tree depth adds up across nested inline tables with dotted keys. */
	s = repeat("a = ", "{b.c.d = ", 60, "1");
	ok(!parse(s, &e) && strstr(e.msg, "too deeply"), "depth counted through inline tables: %s", e.msg);
	free(s);
	s = repeat("[a", ".a", 119, "]\nb.b.b.b.b.b.b.b.b.b = 1\n");
	ok(!parse(s, &e) && strstr(e.msg, "line 2, column 17: tables nested too deeply"),
	   "header plus dotted key deeper than the limit rejected: %s", e.msg);
	free(s);

	/* Many keys in one table and a huge one-line array stay fast. */
	start = clock();
	for (int i = 0; i < 100000; i++)
		buf_printf(&b, "key%d = %d\n", i, i);
	buf_puts(&b, "arr = [");
	for (int i = 0; i < 100000; i++)
		buf_puts(&b, "{x = 1}, ");
	buf_puts(&b, "]\n");
	doc = toml_parse((const char *)b.data, b.len, "big", &e);
	ok(doc && toml_get(doc, "key99999") && toml_get(doc, "key99999")->v.integer == 99999 &&
	       toml_get(doc, "arr")->v.list.items[99999]->col == 9 * 99999 + 8,
	   "100000 keys and a 100000-item line parse (hash lookup, column)");
	ok((double)(clock() - start) / CLOCKS_PER_SEC < 10.0, "in reasonable time");
	toml_free(doc);
	buf_free(&b);

	doc = toml_parse("a = 1", TOML_MAX_INPUT + 1, "huge", &e);
	ok(!doc && strstr(e.msg, "larger than"), "oversized input rejected before reading");
}

static void test_misc(void)
{
	struct err e = ERR_INIT;
	static const char bom[] = "\xEF\xBB\xBF\"a\\u0000b\" = 1\r\n";
	static const char nul[] = "a = 1\nb = \"x\0y\"\n";
	struct toml_node *doc = toml_parse(bom, sizeof(bom) - 1, "bom", &e);
	const struct toml_node *n = doc ? toml_getn(doc, "a\0b", 3) : NULL;

	ok(n && n->type == TOML_INTEGER && n->key_len == 3, "BOM skipped; key with NUL found by toml_getn");
	toml_free(doc);
	ok(!toml_parse(nul, sizeof(nul) - 1, "t.toml", &e) &&
	       strcmp(e.msg, "t.toml: line 2, column 7: control character U+0000 must be escaped") == 0,
	   "raw NUL byte rejected with its position: %s", e.msg);
	ok(!toml_parse("\xEF\xBB\xBF"
		       "a = ?",
		       8, "bom", &e) &&
	       strcmp(e.msg, "bom: line 1, column 5: expected a value") == 0,
	   "a byte-order mark is not a column: %s", e.msg);
	doc = toml_parse("", 0, NULL, &e);
	ok(doc && doc->type == TOML_TABLE && doc->v.list.count == 0, "empty document is an empty table");
	toml_free(doc);
	ok(!toml_parse("=", 1, NULL, &e) && strcmp(e.msg, "line 1, column 1: expected a key") == 0,
	   "without a source name the message starts at 'line'");
}

int main(void)
{
	test_values();
	test_errors();
	test_json();
	test_limits();
	test_misc();
	return tap_done();
}
