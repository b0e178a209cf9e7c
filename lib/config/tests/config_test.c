/*
 * config_test.c — layered configuration: layer order and deep merge, every
 * value kind of the typed binder, unknown-key warnings and wrong-type errors
 * (with file, key and line), JSON layers, -c handling, and the KMS dev
 * config through a small schema. Files are real files in a temp folder.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/tap.h"

static char tmp[256];

static void write_file(const char *rel, const char *text)
{
	char path[512];
	struct err e = ERR_INIT;

	snprintf(path, sizeof(path), "%s/%s", tmp, rel);
	if (file_write_atomic(path, text, strlen(text), 0644, &e) < 0)
		diag("write %s: %s", path, err_str(&e));
}

static char *path_of(const char *rel)
{
	static char path[512];

	snprintf(path, sizeof(path), "%s/%s", tmp, rel);
	return path;
}

/* Run config_bind with stderr captured; returns bind's result. */
static int bind_capture(const struct config *c, const struct cfg_field *s, size_t n, void *obj, struct err *e,
			char *log, size_t log_size)
{
	char logpath[512];
	int saved = dup(STDERR_FILENO), fd, rc;
	ssize_t got;

	snprintf(logpath, sizeof(logpath), "%s/stderr.log", tmp);
	fd = open(logpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
	dup2(fd, STDERR_FILENO);
	rc = config_bind(c, s, n, obj, e);
	dup2(saved, STDERR_FILENO);
	close(saved);
	got = pread(fd, log, log_size - 1, 0);
	log[got > 0 ? got : 0] = '\0';
	close(fd);
	return rc;
}

/* ---- layering ---- */

struct layered {
	char *a, *b, *c, *d, *e;
	int64_t n;
	struct cfg_strings list;
	char *deep;
};

static const struct cfg_field layered_schema[] = {
    {"t.a", CFG_STRING, CFG_AT(struct layered, a)},
    {"t.b", CFG_STRING, CFG_AT(struct layered, b)},
    {"t.c", CFG_STRING, CFG_AT(struct layered, c)},
    {"t.d", CFG_STRING, CFG_AT(struct layered, d)},
    {"t.e", CFG_STRING, CFG_AT(struct layered, e)},
    {"n", CFG_INT, CFG_AT(struct layered, n)},
    {"list", CFG_STRINGS, CFG_AT(struct layered, list)},
    {"t.sub.deep", CFG_STRING, CFG_AT(struct layered, deep)},
};

static void test_layering(void)
{
	static const char defaults[] =
	    "n = 1\n"
	    "list = [\"x\", \"y\", \"z\"]\n"
	    "[t]\n"
	    "a = \"defaults\"\nb = \"defaults\"\nc = \"defaults\"\nd = \"defaults\"\n"
	    "e = \"defaults\"\n"
	    "[t.sub]\n"
	    "deep = \"defaults\"\n";
	struct config c = CONFIG_INIT;
	struct err e = ERR_INIT;
	struct layered l = {0};
	char origin[512], want[512], log[4096];
	struct config_search s = {.name = "svc", .defaults = defaults};
	char etc[512], cwd[512], file[512];

	snprintf(etc, sizeof(etc), "%s/etc", tmp);
	snprintf(cwd, sizeof(cwd), "%s/cwd", tmp);
	snprintf(file, sizeof(file), "%s/explicit.toml", tmp);
	s.etc_dir = etc;
	s.cwd_dir = cwd;
	write_file("etc/svc.toml",
		   "[t]\nb = \"etc-toml\"\nc = \"etc-toml\"\nd = \"etc-toml\"\ne = \"etc-toml\"\n");
	write_file("etc/svc.json",
		   "{\"t\": {\"c\": \"etc-json\", \"d\": \"etc-json\", \"e\": \"etc-json\"}}");
	write_file("cwd/svc.toml", "list = [\"only\"]\n[t]\nd = \"cwd-toml\"\ne = \"cwd-toml\"\n");
	write_file("explicit.toml", "# the -c file\n\n[t]\ne = \"explicit\"\n");
	s.file = file;

	if (!ok(config_load(&c, &s, &e) == 0, "all layers load"))
		diag("%s", err_str(&e));
	ok(bind_capture(&c, layered_schema, ARRAY_SIZE(layered_schema), &l, &e, log, sizeof(log)) == 0,
	   "bind");
	is_str(l.a, "defaults", "layer 1: embedded defaults");
	is_str(l.b, "etc-toml", "layer 2: /etc/<svc>/<svc>.toml overrides defaults");
	is_str(l.c, "etc-json", "layer 2b: /etc/<svc>/<svc>.json overrides the .toml");
	is_str(l.d, "cwd-toml", "layer 3: ./<svc>.toml overrides /etc");
	is_str(l.e, "explicit", "layer 4: -c FILE overrides everything");
	is_str(l.deep, "defaults", "tables merge deeply: untouched nested key survives");
	is_int(l.n, 1, "untouched top-level key survives");
	ok(l.list.count == 1 && strcmp(l.list.items[0], "only") == 0, "arrays replace, not append");
	is_str(log, "", "no warnings for a fully known config");

	snprintf(want, sizeof(want), "%s/explicit.toml:4", tmp);
	is_str(config_origin(&c, "t.e", origin, sizeof(origin)), want, "origin of t.e is -c file line 4");
	snprintf(want, sizeof(want), "%s/etc/svc.json", tmp);
	is_str(config_origin(&c, "t.c", origin, sizeof(origin)), want, "origin of a JSON value is the file");
	is_str(config_origin(&c, "t.sub.deep", origin, sizeof(origin)), "built-in defaults:10",
	       "origin of a default value");
	is_str(config_origin(&c, "t.nope", origin, sizeof(origin)), "", "no origin for an absent key");
	ok(json_is_object(config_get(&c, "t.sub")), "config_get returns raw tables");
	config_unbind(layered_schema, ARRAY_SIZE(layered_schema), &l);
	ok(l.a == NULL && l.list.items == NULL, "unbind frees and clears");
	config_free(&c);

	/* Missing optional files are skipped; a missing -c file is an error. */
	s.etc_dir = "/nonexistent/etc";
	s.cwd_dir = "/nonexistent/cwd";
	s.file = NULL;
	ok(config_load(&c, &s, &e) == 0, "missing optional files are skipped");
	config_free(&c);
	s.file = "/nonexistent/explicit.toml";
	ok(config_load(&c, &s, &e) < 0 && strstr(e.msg, "/nonexistent/explicit.toml"),
	   "missing -c file fails: %s", e.msg);
	ok(c.root == NULL, "failed load leaves the config empty");
	write_file("broken.toml", "[rpc]\nport = = 1\n");
	s.file = path_of("broken.toml");
	ok(config_load(&c, &s, &e) < 0 && strstr(e.msg, "broken.toml: line 2, column 8:"),
	   "malformed -c TOML names file, line, column: %s", e.msg);
	write_file("broken.conf", "{\"rpc\": {\"port\": }}");
	s.file = path_of("broken.conf");
	ok(config_load(&c, &s, &e) < 0 && strstr(e.msg, "broken.conf: line 1"), "malformed -c JSON fails: %s",
	   e.msg);
	write_file("etc2/svc.toml", "x = [1,\n");
	s.etc_dir = path_of("etc2");
	s.file = NULL;
	ok(config_load(&c, &s, &e) < 0 && strstr(e.msg, "etc2/svc.toml: line 2"),
	   "malformed optional file is still an error: %s", e.msg);
}

/* ---- every value kind ---- */

struct kinds {
	bool flag;
	int8_t i8;
	int64_t i64;
	uint16_t u16;
	uint32_t u32;
	double f;
	char *s;
	struct cfg_strings list;
	uint64_t d_s, d_m, d_h, d_d, d_never, d_ms, d_int, d_mix;
	uint64_t sz_m, sz_hex, sz_int, sz_k, sz_g, sz_t;
	struct cfg_addr a_tcp, a_unix, a_unix_rel, a_vsock, a_vsock_port, a_bare, a_v6, a_host;
	struct cfg_ports p_one, p_range, p_str;
	json_t *raw;
	int ignored_sentinel;
};

static const struct cfg_field kinds_schema[] = {
    {"flag", CFG_BOOL, CFG_AT(struct kinds, flag)},
    {"int.i8", CFG_INT, CFG_AT(struct kinds, i8)},
    {"int.i64", CFG_INT, CFG_AT(struct kinds, i64)},
    {"int.u16", CFG_UINT, CFG_AT(struct kinds, u16)},
    {"int.u32", CFG_UINT, CFG_AT(struct kinds, u32), .min = 10, .max = 20},
    {"f", CFG_FLOAT, CFG_AT(struct kinds, f)},
    {"s", CFG_STRING, CFG_AT(struct kinds, s)},
    {"list", CFG_STRINGS, CFG_AT(struct kinds, list)},
    {"dur.s", CFG_DURATION, CFG_AT(struct kinds, d_s)},
    {"dur.m", CFG_DURATION, CFG_AT(struct kinds, d_m)},
    {"dur.h", CFG_DURATION, CFG_AT(struct kinds, d_h)},
    {"dur.d", CFG_DURATION, CFG_AT(struct kinds, d_d)},
    {"dur.never", CFG_DURATION, CFG_AT(struct kinds, d_never)},
    {"dur.ms", CFG_DURATION, CFG_AT(struct kinds, d_ms)},
    {"dur.int", CFG_DURATION, CFG_AT(struct kinds, d_int)},
    {"dur.mix", CFG_DURATION, CFG_AT(struct kinds, d_mix)},
    {"size.m", CFG_SIZE, CFG_AT(struct kinds, sz_m)},
    {"size.hex", CFG_SIZE, CFG_AT(struct kinds, sz_hex)},
    {"size.int", CFG_SIZE, CFG_AT(struct kinds, sz_int)},
    {"size.k", CFG_SIZE, CFG_AT(struct kinds, sz_k)},
    {"size.g", CFG_SIZE, CFG_AT(struct kinds, sz_g)},
    {"size.t", CFG_SIZE, CFG_AT(struct kinds, sz_t)},
    {"addr.tcp", CFG_ADDR, CFG_AT(struct kinds, a_tcp)},
    {"addr.unix", CFG_ADDR, CFG_AT(struct kinds, a_unix)},
    {"addr.unix_rel", CFG_ADDR, CFG_AT(struct kinds, a_unix_rel)},
    {"addr.vsock", CFG_ADDR, CFG_AT(struct kinds, a_vsock)},
    {"addr.vsock_port", CFG_ADDR, CFG_AT(struct kinds, a_vsock_port)},
    {"addr.bare", CFG_ADDR, CFG_AT(struct kinds, a_bare)},
    {"addr.v6", CFG_ADDR, CFG_AT(struct kinds, a_v6)},
    {"addr.host", CFG_ADDR, CFG_AT(struct kinds, a_host)},
    {"ports.one", CFG_PORTS, CFG_AT(struct kinds, p_one)},
    {"ports.range", CFG_PORTS, CFG_AT(struct kinds, p_range)},
    {"ports.str", CFG_PORTS, CFG_AT(struct kinds, p_str)},
    {"cvm.port_mapping.range", CFG_JSON, CFG_AT(struct kinds, raw)},
    {.key = "legacy", .kind = CFG_IGNORE},
};

static const char kinds_toml[] = "flag = true\n"
				 "f = 2.5\n"
				 "s = \"hello\"\n"
				 "list = [\"a\", \"b\"]\n"
				 "legacy = { anything = 1 }\n"
				 "[int]\n"
				 "i8 = -128\n"
				 "i64 = -9223372036854775808\n"
				 "u16 = 65535\n"
				 "u32 = 15\n"
				 "[dur]\n"
				 "s = \"5s\"\n"
				 "m = \"10m\"\n"
				 "h = \"5h\"\n"
				 "d = \"1d\"\n"
				 "never = \"never\"\n"
				 "ms = \"500ms\"\n"
				 "int = 30\n"
				 "mix = \"1h 30m\"\n"
				 "[size]\n"
				 "m = \"4M\"\n"
				 "hex = \"0x1000\"\n"
				 "int = 12345\n"
				 "k = \"8K\"\n"
				 "g = \"2GiB\"\n"
				 "t = \"1T\"\n"
				 "[addr]\n"
				 "tcp = \"tcp:0.0.0.0:9080\"\n"
				 "unix = \"unix:/run/dstack/vmm.sock\"\n"
				 "unix_rel = \"unix:./vmm.sock\"\n"
				 "vsock = \"vsock:2\"\n"
				 "vsock_port = \"vsock:3:10000\"\n"
				 "bare = \"127.0.0.1:8011\"\n"
				 "v6 = \"[::1]:80\"\n"
				 "host = \"0.0.0.0\"\n"
				 "[ports]\n"
				 "one = 8443\n"
				 "range = \"8000-8100\"\n"
				 "str = \"443\"\n"
				 "[[cvm.port_mapping.range]]\n"
				 "protocol = \"tcp\"\n"
				 "from = 1\n"
				 "to = 20000\n"
				 "[[cvm.port_mapping.range]]\n"
				 "protocol = \"udp\"\n"
				 "from = 5000\n"
				 "to = 6000\n";

static void test_kinds(void)
{
	struct config c = CONFIG_INIT;
	struct err e = ERR_INIT;
	struct kinds k = {0};
	char log[4096];

	ok(config_add_toml(&c, kinds_toml, strlen(kinds_toml), "kinds.toml", &e) == 0, "kinds.toml loads");
	if (!ok(bind_capture(&c, kinds_schema, ARRAY_SIZE(kinds_schema), &k, &e, log, sizeof(log)) == 0,
		"every kind binds"))
		diag("%s", err_str(&e));
	is_str(log, "", "ignored keys do not warn");
	ok(k.flag, "bool");
	is_int(k.i8, -128, "int8 minimum");
	ok(k.i64 == INT64_MIN, "int64 minimum");
	is_int(k.u16, 65535, "uint16 maximum");
	is_int(k.u32, 15, "uint32 within schema range");
	ok(k.f == 2.5, "float");
	is_str(k.s, "hello", "string");
	ok(k.list.count == 2 && strcmp(k.list.items[1], "b") == 0, "string array");
	is_int(k.d_s, 5000, "duration 5s");
	is_int(k.d_m, 600000, "duration 10m");
	is_int(k.d_h, 5 * 3600000, "duration 5h");
	is_int(k.d_d, 86400000, "duration 1d");
	ok(k.d_never == CFG_DURATION_NEVER, "duration never");
	is_int(k.d_ms, 500, "duration 500ms");
	is_int(k.d_int, 30000, "bare integer duration is seconds");
	is_int(k.d_mix, 5400000, "duration 1h 30m");
	is_int(k.sz_m, 4 << 20, "size 4M");
	is_int(k.sz_hex, 4096, "size 0x1000");
	is_int(k.sz_int, 12345, "bare integer size is bytes");
	is_int(k.sz_k, 8192, "size 8K");
	ok(k.sz_g == 2ull << 30, "size 2GiB");
	ok(k.sz_t == 1ull << 40, "size 1T");
	ok(k.a_tcp.kind == CFG_ADDR_TCP && strcmp(k.a_tcp.host, "0.0.0.0") == 0 && k.a_tcp.port == 9080,
	   "tcp:0.0.0.0:9080");
	ok(k.a_unix.kind == CFG_ADDR_UNIX && strcmp(k.a_unix.path, "/run/dstack/vmm.sock") == 0,
	   "unix:/path");
	ok(k.a_unix_rel.kind == CFG_ADDR_UNIX && strcmp(k.a_unix_rel.path, "./vmm.sock") == 0, "unix:./rel");
	ok(k.a_vsock.kind == CFG_ADDR_VSOCK && k.a_vsock.cid == 2 && k.a_vsock.port == 0, "vsock:2");
	ok(k.a_vsock_port.kind == CFG_ADDR_VSOCK && k.a_vsock_port.cid == 3 && k.a_vsock_port.port == 10000,
	   "vsock:3:10000");
	ok(k.a_bare.kind == CFG_ADDR_TCP && strcmp(k.a_bare.host, "127.0.0.1") == 0 && k.a_bare.port == 8011,
	   "bare host:port");
	ok(k.a_v6.kind == CFG_ADDR_TCP && strcmp(k.a_v6.host, "::1") == 0 && k.a_v6.port == 80, "[::1]:80");
	ok(k.a_host.kind == CFG_ADDR_TCP && strcmp(k.a_host.host, "0.0.0.0") == 0 && k.a_host.port == 0,
	   "host without port");
	ok(k.p_one.first == 8443 && k.p_one.last == 8443, "port as integer");
	ok(k.p_range.first == 8000 && k.p_range.last == 8100, "port range a-b");
	ok(k.p_str.first == 443 && k.p_str.last == 443, "port as string");
	ok(json_is_array(k.raw) && json_array_size(k.raw) == 2 &&
	       json_integer_value(json_object_get(json_array_get(k.raw, 1), "from")) == 5000,
	   "raw sub-tree (array of tables) as json");
	config_unbind(kinds_schema, ARRAY_SIZE(kinds_schema), &k);
	config_free(&c);
}

/* ---- errors and warnings ---- */

struct one {
	uint16_t port;
	bool enabled;
	uint64_t dur;
	struct cfg_addr addr;
	char *s;
};

static const struct cfg_field port_schema[] = {
    {"core.admin.port", CFG_UINT, CFG_AT(struct one, port)},
    {"core.admin.enabled", CFG_BOOL, CFG_AT(struct one, enabled)},
};

static int bind_text(const char *source, const char *text, const struct cfg_field *schema, size_t n,
		     struct err *e, char *log, size_t log_size)
{
	struct config c = CONFIG_INIT;
	struct one o = {0};
	int rc;

	if (config_add_toml(&c, text, strlen(text), source, e) < 0)
		return -2;
	rc = bind_capture(&c, schema, n, &o, e, log, log_size);
	config_unbind(schema, n, &o);
	config_free(&c);
	return rc;
}

static void expect_bind_error(const char *text, const struct cfg_field *field, const char *want,
			      const char *name)
{
	struct err e = ERR_INIT;
	char log[4096];

	ok(bind_text("t.toml", text, field, 1, &e, log, sizeof(log)) == -1 && strcmp(e.msg, want) == 0, "%s",
	   name);
	if (strcmp(e.msg, want) != 0)
		diag("got  '%s'\n# want '%s'", e.msg, want);
}

static void test_errors(void)
{
	static const char kms[] = "# kms.toml\n"
				  "[rpc]\n"
				  "address = \"0.0.0.0\"\n"
				  "port = 9201\n"
				  "\n"
				  "[core]\n"
				  "cert_dir = \"/etc/kms/certs\"\n"
				  "\n"
				  "[core.admin]\n"
				  "enabled = true\n"
				  "# the next line is wrong\n"
				  "port = \"8001\"\n";
	static const char unknown[] = "[core.admin]\n"
				      "enabled = true\n"
				      "bogus = 1\n"
				      "[extra]\n"
				      "x = 1\n";
	static const struct cfg_field dur_f = {"d", CFG_DURATION, CFG_AT(struct one, dur)};
	static const struct cfg_field addr_f = {"a", CFG_ADDR, CFG_AT(struct one, addr)};
	static const struct cfg_field req_f = {"needed", CFG_STRING, CFG_AT(struct one, s),
					       .flags = CFG_REQUIRED};
	static const struct cfg_field range_f = {"p", CFG_UINT, CFG_AT(struct one, port), .max = 1024};
	struct err e = ERR_INIT;
	char log[4096];

	ok(bind_text("kms.toml", kms, port_schema, ARRAY_SIZE(port_schema), &e, log, sizeof(log)) == -1,
	   "wrong type fails the bind");
	is_str(e.msg, "kms.toml:12: core.admin.port: expected integer, got string", "wrong-type error text");

	ok(bind_text("svc.toml", unknown, port_schema, ARRAY_SIZE(port_schema), &e, log, sizeof(log)) == 0,
	   "unknown keys do not fail the bind");
	ok(strstr(log, "WARN") && strstr(log, "svc.toml:3: unknown configuration key 'core.admin.bogus'"),
	   "unknown key warning names file, line and key");
	ok(strstr(log, "svc.toml:4: unknown configuration key 'extra'") && !strstr(log, "'extra.x'"),
	   "an unknown table warns once, at its header");
	if (!strstr(log, "svc.toml:3"))
		diag("log: %s", log);

	expect_bind_error("p = 1025\n", &range_f, "t.toml:1: p: 1025 is out of range [0, 1024]",
			  "integer range");
	expect_bind_error("p = -1\n", &range_f, "t.toml:1: p: -1 is out of range [0, 1024]",
			  "negative unsigned");
	expect_bind_error(
	    "\n\nd = \"5 parsecs\"\n", &dur_f,
	    "t.toml:3: d: invalid duration '5 parsecs': unknown or missing unit (ms, s, m, h, d)",
	    "bad duration");
	expect_bind_error("d = 1.5\n", &dur_f, "t.toml:1: d: expected duration, got float", "duration type");
	expect_bind_error("a = \"tcp:host:99999\"\n", &addr_f,
			  "t.toml:1: a: invalid address 'host:99999': invalid port '99999'",
			  "bad address port");
	expect_bind_error("a = \"vsock:x\"\n", &addr_f,
			  "t.toml:1: a: invalid address 'vsock:x': expected vsock:CID or vsock:CID:PORT",
			  "bad vsock");
	{
		static const struct cfg_field wrong_size = {"s", CFG_BOOL, CFG_AT(struct one, port)};

		expect_bind_error("x = 1\n", &wrong_size,
				  "config schema error: 's': member has size 2, its kind needs 1",
				  "schema member size checked");
	}
	expect_bind_error("x = 1\n", &req_f, "config: missing required key 'needed'", "required key");
	expect_bind_error("needed = \"a\\u0000b\"\n", &req_f,
			  "t.toml:1: needed: string contains a NUL character", "NUL in string");
}

static void test_value_syntax(void)
{
	struct err e = ERR_INIT;
	uint64_t v;
	struct cfg_addr a;
	struct cfg_ports p;

	ok(cfg_parse_duration("", &v, &e) < 0, "empty duration rejected");
	ok(cfg_parse_duration("5", &v, &e) == 0 && v == 5000, "duration '5' is seconds");
	ok(cfg_parse_duration("2m", &v, &e) == 0 && v == 120000, "duration 2m");
	ok(cfg_parse_duration("5x", &v, &e) < 0, "unknown unit rejected");
	ok(cfg_parse_duration("s", &v, &e) < 0, "unit without number rejected");
	ok(cfg_parse_duration("99999999999999999999s", &v, &e) < 0, "overflow rejected");
	ok(cfg_parse_duration("999999999999999d", &v, &e) < 0, "overflow after multiplying rejected");
	ok(cfg_parse_size("4X", &v, &e) < 0, "unknown size suffix rejected");
	ok(cfg_parse_size("0x", &v, &e) < 0, "empty hex rejected");
	ok(cfg_parse_size("20000000T", &v, &e) < 0, "size overflow rejected");
	ok(cfg_parse_size("0", &v, &e) == 0 && v == 0, "size 0");
	ok(cfg_parse_addr("unix:", &a, &e) < 0, "empty unix path rejected");
	ok(cfg_parse_addr("tcp::80", &a, &e) < 0, "missing host rejected");
	ok(cfg_parse_addr("unix:/"
			  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
			  &a, &e) < 0,
	   "unix path longer than sun_path rejected");
	ok(cfg_parse_addr("[::1", &a, &e) < 0, "unclosed bracket rejected");
	ok(cfg_parse_addr("::1", &a, &e) == 0 && strcmp(a.host, "::1") == 0 && a.port == 0,
	   "bare IPv6 without port");
	ok(cfg_parse_addr("example.com:443", &a, &e) == 0 && a.port == 443, "hostname:port");
	ok(cfg_parse_ports("9000-8000", &p, &e) < 0, "reversed range rejected");
	ok(cfg_parse_ports("1-", &p, &e) < 0, "half range rejected");
	ok(cfg_parse_ports("65536", &p, &e) < 0, "port above 65535 rejected");
}

/* ---- JSON config and the KMS dev config ---- */

struct kms_cfg {
	char *rpc_address;
	uint16_t rpc_port;
	char *tls_key, *tls_certs, *tls_ca;
	bool tls_mandatory;
	char *cert_dir;
	bool image_verify;
	uint64_t download_timeout_ms;
	char *auth_type;
	bool onboard_enabled;
	char *onboard_domain;
	char *onboard_address;
	uint16_t onboard_port;
	bool admin_enabled;
};

static const struct cfg_field kms_schema[] = {
    {"rpc.address", CFG_STRING, CFG_AT(struct kms_cfg, rpc_address)},
    {"rpc.port", CFG_UINT, CFG_AT(struct kms_cfg, rpc_port)},
    {"rpc.tls.key", CFG_STRING, CFG_AT(struct kms_cfg, tls_key), .flags = CFG_REQUIRED},
    {"rpc.tls.certs", CFG_STRING, CFG_AT(struct kms_cfg, tls_certs)},
    {"rpc.tls.mutual.ca_certs", CFG_STRING, CFG_AT(struct kms_cfg, tls_ca)},
    {"rpc.tls.mutual.mandatory", CFG_BOOL, CFG_AT(struct kms_cfg, tls_mandatory)},
    {"core.cert_dir", CFG_STRING, CFG_AT(struct kms_cfg, cert_dir)},
    {"core.image.verify", CFG_BOOL, CFG_AT(struct kms_cfg, image_verify)},
    {"core.image.download_timeout", CFG_DURATION, CFG_AT(struct kms_cfg, download_timeout_ms)},
    {"core.auth_api.type", CFG_STRING, CFG_AT(struct kms_cfg, auth_type)},
    {"core.onboard.enabled", CFG_BOOL, CFG_AT(struct kms_cfg, onboard_enabled)},
    {"core.onboard.auto_bootstrap_domain", CFG_STRING, CFG_AT(struct kms_cfg, onboard_domain)},
    {"core.onboard.address", CFG_STRING, CFG_AT(struct kms_cfg, onboard_address)},
    {"core.onboard.port", CFG_UINT, CFG_AT(struct kms_cfg, onboard_port)},
    {"core.admin.enabled", CFG_BOOL, CFG_AT(struct kms_cfg, admin_enabled)},
};

static const char kms_defaults[] = "[rpc]\naddress = \"0.0.0.0\"\nport = 8000\n"
				   "[core.image]\nverify = true\ndownload_timeout = \"2m\"\n"
				   "[core.admin]\nenabled = false\n"
				   "[core.auth_api]\ntype = \"webhook\"\n";

static const char kms_dev[] = "[rpc]\n"
			      "address = \"0.0.0.0\"\n"
			      "port = 9201\n"
			      "[rpc.tls]\n"
			      "key = \"/etc/kms/certs/rpc.key\"\n"
			      "certs = \"/etc/kms/certs/rpc.crt\"\n"
			      "[rpc.tls.mutual]\n"
			      "ca_certs = \"/etc/kms/certs/tmp-ca.crt\"\n"
			      "mandatory = false\n"
			      "[core]\n"
			      "cert_dir = \"/etc/kms/certs\"\n"
			      "[core.image]\n"
			      "verify = false\n"
			      "download_timeout = \"2m\"\n"
			      "[core.auth_api]\n"
			      "type = \"dev\"\n"
			      "[core.onboard]\n"
			      "enabled = true\n"
			      "auto_bootstrap_domain = \"\"\n"
			      "address = \"0.0.0.0\"\n"
			      "port = 9203\n";

static void test_kms_dev(void)
{
	struct config c = CONFIG_INIT;
	struct err e = ERR_INIT;
	struct kms_cfg k = {0};
	char log[4096];
	struct config_search s = {.name = "kms", .defaults = kms_defaults};

	s.etc_dir = "/nonexistent";
	s.cwd_dir = "/nonexistent";
	write_file("kms-dev.toml", kms_dev);
	s.file = path_of("kms-dev.toml");
	if (!ok(config_load(&c, &s, &e) == 0, "KMS dev config loads"))
		diag("%s", err_str(&e));
	if (!ok(bind_capture(&c, kms_schema, ARRAY_SIZE(kms_schema), &k, &e, log, sizeof(log)) == 0,
		"KMS dev config binds"))
		diag("%s", err_str(&e));
	is_str(log, "", "KMS dev config has no unknown keys");
	is_str(k.rpc_address, "0.0.0.0", "rpc.address");
	is_int(k.rpc_port, 9201, "rpc.port overrides the default 8000");
	is_str(k.tls_key, "/etc/kms/certs/rpc.key", "rpc.tls.key");
	is_str(k.tls_certs, "/etc/kms/certs/rpc.crt", "rpc.tls.certs");
	is_str(k.tls_ca, "/etc/kms/certs/tmp-ca.crt", "rpc.tls.mutual.ca_certs");
	ok(!k.tls_mandatory, "rpc.tls.mutual.mandatory");
	is_str(k.cert_dir, "/etc/kms/certs", "core.cert_dir");
	ok(!k.image_verify, "core.image.verify overrides the default");
	is_int(k.download_timeout_ms, 120000, "core.image.download_timeout = 2m");
	is_str(k.auth_type, "dev", "core.auth_api.type");
	ok(k.onboard_enabled, "core.onboard.enabled");
	is_str(k.onboard_domain, "", "core.onboard.auto_bootstrap_domain empty");
	is_str(k.onboard_address, "0.0.0.0", "core.onboard.address");
	is_int(k.onboard_port, 9203, "core.onboard.port");
	ok(!k.admin_enabled, "core.admin.enabled from the defaults");
	config_unbind(kms_schema, ARRAY_SIZE(kms_schema), &k);
	config_free(&c);

	/* The same settings as a JSON -c file (any name not ending in .toml). */
	write_file(
	    "kms-dev.conf",
	    "{\"rpc\": {\"port\": 9301, \"tls\": {\"key\": \"/k\"}},"
	    " \"core\": {\"image\": {\"download_timeout\": \"never\"}, \"onboard\": {\"port\": \"x\"}}}");
	s.file = path_of("kms-dev.conf");
	ok(config_load(&c, &s, &e) == 0, "JSON -c file loads");
	memset(&k, 0, sizeof(k));
	ok(config_bind(&c, kms_schema, ARRAY_SIZE(kms_schema), &k, &e) < 0,
	   "JSON value of the wrong type fails");
	ok(strstr(e.msg, "kms-dev.conf: core.onboard.port: expected integer, got string") != NULL,
	   "JSON error names file and key: %s", e.msg);
	config_unbind(kms_schema, ARRAY_SIZE(kms_schema), &k);
	config_free(&c);
	write_file("kms-dev.json", "{\"rpc\": {\"port\": 9301, \"tls\": {\"key\": \"/k\"}},"
				   " \"core\": {\"image\": {\"download_timeout\": \"never\"}}}");
	s.file = path_of("kms-dev.json");
	ok(config_load(&c, &s, &e) == 0 && config_bind(&c, kms_schema, ARRAY_SIZE(kms_schema), &k, &e) == 0,
	   "JSON config binds");
	is_int(k.rpc_port, 9301, "JSON overrides the TOML defaults");
	ok(k.download_timeout_ms == CFG_DURATION_NEVER, "JSON duration 'never'");
	ok(k.image_verify, "defaults survive under a JSON layer");
	config_unbind(kms_schema, ARRAY_SIZE(kms_schema), &k);
	config_free(&c);
}

/* config_load_bound with the shared rows (CFG_SERVER_FIELDS, CFG_TLS_FIELDS) and its checks. */
struct daemon_cfg {
	uint32_t workers;
	char *log_level;
	char *tls_key, *tls_certs, *tls_ca_certs;
	bool tls_mandatory;
	char *token;
};

static const struct cfg_field daemon_schema[] = {
    CFG_SERVER_FIELDS("default.", struct daemon_cfg),
    CFG_TLS_FIELDS("rpc.tls", struct daemon_cfg, CFG_REQUIRED),
    {"admin.token", CFG_STRING, CFG_AT(struct daemon_cfg, token), .flags = CFG_SECRET},
};

static int raw_calls, check_calls;

static int raw_ok(const struct config *c, struct err *e)
{
	(void)e;
	raw_calls++;
	return config_get(c, "rpc.tls") ? 0 : -1;
}

static int raw_refuses(const struct config *c, struct err *e)
{
	(void)c;
	return err_set(e, "raw check refuses");
}

static int check_token(void *obj, const struct config *c, struct err *e)
{
	struct daemon_cfg *d = obj;
	char where[128];

	check_calls++;
	if (strcmp(d->token, "ok"))
		return err_set(e, "%s: admin.token is not ok",
			       config_origin(c, "admin.token", where, sizeof(where)));
	return 0;
}

static void test_load_bound(void)
{
	struct daemon_cfg d;
	struct err e = ERR_INIT;
	char log[4096];
	struct config_search s = {.name = "daemon",
				  .defaults = "[default]\nworkers = 8\nlog_level = \"info\"\nident = \"x\"\n"
					      "keep_alive = 10\nbogus = 1\n",
				  .etc_dir = "/nonexistent",
				  .cwd_dir = "/nonexistent"};

	write_file("daemon.toml", "[rpc.tls]\nkey = \"k.pem\"\ncerts = \"c.pem\"\n"
				  "[rpc.tls.mutual]\nca_certs = \"ca.pem\"\nmandatory = true\n"
				  "[admin]\ntoken = \"ok\"\n");
	s.file = path_of("daemon.toml");
	{
		char logpath[512];
		int saved = dup(STDERR_FILENO), fd, rc;
		ssize_t got;

		snprintf(logpath, sizeof(logpath), "%s/stderr.log", tmp);
		fd = open(logpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
		dup2(fd, STDERR_FILENO);
		rc = config_load_bound(&s, daemon_schema, ARRAY_SIZE(daemon_schema), &d, sizeof(d), raw_ok,
				       check_token, &e);
		dup2(saved, STDERR_FILENO);
		close(saved);
		got = pread(fd, log, sizeof(log) - 1, 0);
		log[got > 0 ? got : 0] = '\0';
		close(fd);
		ok(rc == 0, "config_load_bound: loads, binds, checks (%s)", err_str(&e));
	}
	ok(strstr(log, "default.bogus") && !strstr(log, "ident") && !strstr(log, "keep_alive"),
	   "the reference's server keys are known, a misspelt one is warned about (%s)", log);
	ok(raw_calls == 1 && check_calls == 1, "both checks ran once");
	ok(d.workers == 8 && !strcmp(d.log_level, "info"), "CFG_SERVER_FIELDS: workers and log_level");
	ok(!strcmp(d.tls_key, "k.pem") && !strcmp(d.tls_certs, "c.pem") &&
	       !strcmp(d.tls_ca_certs, "ca.pem") && d.tls_mandatory,
	   "CFG_TLS_FIELDS: key, certs, mutual.ca_certs, mutual.mandatory");
	config_unbind(daemon_schema, ARRAY_SIZE(daemon_schema), &d);

	write_file("daemon.toml", "[rpc.tls]\nkey = \"k.pem\"\ncerts = \"c.pem\"\n"
				  "[rpc.tls.mutual]\nca_certs = \"ca.pem\"\n[admin]\ntoken = \"bad\"\n");
	ok(config_load_bound(&s, daemon_schema, ARRAY_SIZE(daemon_schema), &d, sizeof(d), NULL, check_token,
			     &e) < 0 &&
	       strstr(e.msg, "daemon.toml:7: admin.token is not ok"),
	   "a failing check fails the load, its message has the origin (%s)", e.msg);
	ok(!d.tls_key && !d.token && !d.workers, "and the struct is unbound and zeroed");
	ok(config_load_bound(&s, daemon_schema, ARRAY_SIZE(daemon_schema), &d, sizeof(d), raw_refuses,
			     check_token, &e) < 0 &&
	       !strcmp(e.msg, "raw check refuses") && check_calls == 2,
	   "a failing raw check stops before the bound check (%s)", e.msg);
	write_file("daemon.toml", "[rpc.tls]\nkey = \"k.pem\"\n");
	ok(config_load_bound(&s, daemon_schema, ARRAY_SIZE(daemon_schema), &d, sizeof(d), NULL, NULL, &e) <
		   0 &&
	       strstr(e.msg, "rpc.tls.certs"),
	   "CFG_TLS_FIELDS with CFG_REQUIRED: a missing file key fails (%s)", e.msg);
}

int main(void)
{
	struct err e = ERR_INIT;

	snprintf(tmp, sizeof(tmp), "/tmp/config_test.XXXXXX");
	if (!mkdtemp(tmp))
		return 1;
	mkdir_p(path_of("etc"), 0755, &e);
	mkdir_p(path_of("etc2"), 0755, &e);
	mkdir_p(path_of("cwd"), 0755, &e);
	test_layering();
	test_kinds();
	test_errors();
	test_value_syntax();
	test_kms_dev();
	test_load_bound();
	{
		char cmd[600];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
		if (system(cmd) != 0)
			diag("cleanup of %s failed", tmp);
	}
	return tap_done();
}
