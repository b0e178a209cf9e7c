/*
 * prpc_test.c — integration test of lib/http + lib/prpc against a real
 * prpc_demo_server child process on loopback: the wire rules byte for byte
 * (JSON and protobuf, errors, ?json, GET query, prefixes, bare /Method,
 * /health, X-App-Version), the clients (JSON, protobuf, unix socket, TLS with
 * and without client certificate, verify hook), and hostile clients
 * (truncated and oversized bodies, bad UTF-8, deep nesting, garbage, huge
 * headers, a one-byte-per-second client, the JS SDK's half-close), then a
 * graceful SIGTERM with a request in flight.
 *
 *     prpc_test DEMO_SERVER_PATH
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "codec/pem.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/tap.h"
#include "http/client.h"
#include "prpc.pb-c.h"
#include "prpc/client.h"
#include "prpc/json.h"
#include "prpc_demo.pb-c.h"

static char tmpdir[256], unix_path[300];
static uint16_t tcp_port, tls_port;
static pid_t server_pid;
static char *ca_pem, *client_cert_pem, *client_key_pem;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ certificates */

static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, bool ca)
{
	X509 *x = X509_new();
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(now_s() * 1000) & 0x7fffffff);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)cn,
				   -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : X509_get_subject_name(x));
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	if (!ca) {
		ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256());
	return x;
}

static void make_pki(void)
{
	EVP_PKEY *cak = EVP_EC_gen("P-256"), *sk = EVP_EC_gen("P-256"), *ck = EVP_EC_gen("P-256");
	X509 *ca = make_cert("demo-ca", cak, NULL, NULL, true);
	X509 *srv = make_cert("localhost", sk, ca, cak, false);
	X509 *cli = make_cert("demo-client", ck, ca, cak, false);
	char path[400];
	struct buf chain = BUF_INIT;
	_cleanup_free_ char *srv_pem = pem_write_cert(srv, NULL), *srv_key = pem_write_private_key(sk, NULL);

	ca_pem = pem_write_cert(ca, NULL);
	client_cert_pem = pem_write_cert(cli, NULL);
	client_key_pem = pem_write_private_key(ck, NULL);
	buf_puts(&chain, srv_pem);
	snprintf(path, sizeof(path), "%s/server.pem", tmpdir);
	file_write_atomic(path, chain.data, chain.len, 0644, NULL);
	snprintf(path, sizeof(path), "%s/server.key", tmpdir);
	file_write_atomic(path, srv_key, strlen(srv_key), 0600, NULL);
	snprintf(path, sizeof(path), "%s/ca.pem", tmpdir);
	file_write_atomic(path, ca_pem, strlen(ca_pem), 0644, NULL);
	buf_free(&chain);
	X509_free(ca);
	X509_free(srv);
	X509_free(cli);
	EVP_PKEY_free(cak);
	EVP_PKEY_free(sk);
	EVP_PKEY_free(ck);
}

/* ------------------------------------------------------------ raw HTTP */

static int connect_tcp(uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int connect_unix(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void send_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

/* Read until EOF (or timeout); returns bytes read, -1 on timeout. */
static ssize_t read_all(int fd, struct buf *out, int timeout_ms)
{
	double deadline = now_s() + timeout_ms / 1000.0;

	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int left = (int)((deadline - now_s()) * 1000);
		char tmp[65536];
		ssize_t n;

		if (left <= 0 || poll(&p, 1, left) <= 0)
			return -1;
		n = recv(fd, tmp, sizeof(tmp), 0);
		if (n < 0 && errno == ECONNRESET)
			return (ssize_t)out->len;
		if (n <= 0)
			return (ssize_t)out->len;
		buf_append(out, tmp, (size_t)n);
	}
}

struct reply {
	int status;
	char headers[8192];
	const char *body;
	size_t body_len;
	struct buf raw;
};

static void reply_free(struct reply *r)
{
	buf_free(&r->raw);
}

static void parse_reply(struct reply *r)
{
	const char *raw = (const char *)r->raw.data;
	const char *end = raw ? strstr(raw, "\r\n\r\n") : NULL;

	r->status = 0;
	r->body = "";
	r->body_len = 0;
	r->headers[0] = '\0';
	if (!end)
		return;
	sscanf(raw, "HTTP/1.1 %d", &r->status);
	snprintf(r->headers, sizeof(r->headers), "%.*s", (int)(end - raw), raw);
	r->body = end + 4;
	r->body_len = r->raw.len - (size_t)(end + 4 - raw);
}

/* Send raw bytes on a new connection, optionally half-close, read to EOF. */
static int raw_exchange(int fd, const void *req, size_t len, bool half_close, struct reply *r)
{
	memset(r, 0, sizeof(*r));
	if (fd < 0)
		return -1;
	send_all(fd, req, len);
	if (half_close)
		shutdown(fd, SHUT_WR);
	ssize_t n = read_all(fd, &r->raw, 8000);

	close(fd);
	parse_reply(r);
	return n < 0 ? -1 : 0;
}

static int http_tcp(const char *method, const char *target, const char *ctype, const void *body, size_t len,
		    struct reply *r)
{
	struct buf req = BUF_INIT;
	int rc;

	buf_printf(&req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n", method, target);
	if (ctype)
		buf_printf(&req, "Content-Type: %s\r\n", ctype);
	if (body)
		buf_printf(&req, "Content-Length: %zu\r\n", len);
	buf_puts(&req, "\r\n");
	if (body)
		buf_append(&req, body, len);
	rc = raw_exchange(connect_tcp(tcp_port), req.data, req.len, false, r);
	buf_free(&req);
	return rc;
}

static bool has_header(const struct reply *r, const char *line)
{
	return strstr(r->headers, line) != NULL;
}

static bool server_alive(void)
{
	struct reply r;
	bool ok;

	http_tcp("GET", "/health", NULL, NULL, 0, &r);
	ok = r.status == 200 && r.body_len == 2 && memcmp(r.body, "OK", 2) == 0;
	reply_free(&r);
	return ok;
}

/* ------------------------------------------------------------ tests */

static const char full_in[] =
    "{\"s\":\"h\\u00e9\\\"llo\\n\",\"b\":\"0x00FF10\",\"rb\":[\"aa\",\"0xBB\",\"\"],\"u\":9007199254740993,"
    "\"ou\":0,\"inner\":{\"name\":\"n\",\"n\":3},\"inners\":[{\"name\":\"a\"},{\"n\":7}],\"flag\":true,"
    "\"i\":-5,\"tags\":[\"t1\",\"t2\"],\"counts\":{\"k\":1},\"i32\":-2,\"d\":1.5,\"unknown\":{\"x\":[1]}}";
static const char full_out[] =
    "{\"s\":\"h\xc3\xa9\\\"llo\\n\",\"b\":\"00ff10\",\"rb\":[\"aa\",\"bb\",\"\"],\"u\":9007199254740993,"
    "\"ou\":0,\"os\":null,\"inner\":{\"name\":\"n\",\"n\":3},\"inners\":[{\"name\":\"a\",\"n\":0},"
    "{\"name\":\"\",\"n\":7}],\"flag\":true,\"i\":-5,\"tags\":[\"t1\",\"t2\"],\"counts\":{\"k\":1},"
    "\"oinner\":null,\"i32\":-2,\"d\":1.5,\"ob\":null}";
static const char default_out[] = "{\"s\":\"\",\"b\":\"\",\"rb\":[],\"u\":0,\"ou\":null,\"os\":null,"
				  "\"inner\":null,\"inners\":[],\"flag\":false,\"i\":0,\"tags\":[],"
				  "\"counts\":{},\"oinner\":null,\"i32\":0,\"d\":0.0,\"ob\":null}";

static void test_json_and_proto(void)
{
	struct reply r;
	ProtobufCMessage *m;
	struct err e = ERR_INIT;
	uint8_t *packed;
	size_t n;

	http_tcp("POST", "/prpc/Echo?json", NULL, full_in, strlen(full_in), &r);
	is_int(r.status, 200, "Echo?json: 200");
	ok(has_header(&r, "Content-Type: application/json\r\n"), "Echo?json: JSON content type");
	ok(has_header(&r, "X-App-Version: v0.6.0 (git:test)\r\n"), "X-App-Version on prpc replies");
	ok(has_header(&r, "Content-Length: "), "Content-Length present");
	is_str(r.body, full_out, "Echo?json: every field emitted, bytes as hex, u64 exact, optionals null");
	reply_free(&r);

	/* The protobuf client sends the same request in binary and must get the same answer. */
	m = prpc_json_decode_text(&demo__echo_request__descriptor, full_in, strlen(full_in), &e);
	ok(m != NULL, "decode request for protobuf client: %s", e.msg);
	n = protobuf_c_message_get_packed_size(m);
	packed = malloc(n);
	protobuf_c_message_pack(m, packed);
	prpc_msg_free(m);
	http_tcp("POST", "/prpc/Echo", "application/octet-stream", packed, n, &r);
	free(packed);
	is_int(r.status, 200, "Echo protobuf: 200");
	ok(has_header(&r, "Content-Type: application/octet-stream\r\n"), "Echo protobuf: octet-stream");
	m = protobuf_c_message_unpack(&demo__echo_request__descriptor, NULL, r.body_len,
				      (const uint8_t *)r.body);
	ok(m != NULL, "protobuf reply decodes");
	if (m) {
		struct buf j = BUF_INIT;

		prpc_json_encode(m, &j);
		is_str((char *)j.data, full_out, "protobuf and JSON clients get identical answers");
		buf_free(&j);
		prpc_msg_free(m);
	}
	reply_free(&r);

	http_tcp("POST", "/prpc/Echo", "application/json; charset=utf-8", "{\"s\":\"x\"}", 9, &r);
	ok(r.status == 200 && strncmp(r.body, "{\"s\":\"x\"", 8) == 0, "JSON selected by Content-Type");
	reply_free(&r);
	http_tcp("POST", "/prpc/Echo?json=true", NULL, "", 0, &r);
	is_str(r.body, default_out, "?json=true, empty body = default message");
	reply_free(&r);
	http_tcp("POST", "/prpc/Echo?a=b&json=1", NULL, "  ", 2, &r);
	is_str(r.body, default_out, "?json=1 after another key, whitespace body = default");
	reply_free(&r);
	http_tcp("POST", "/prpc/Echo?json=no", NULL, "", 0, &r);
	ok(r.status == 200 && has_header(&r, "application/octet-stream") && r.body_len == 0,
	   "?json=no is protobuf (empty message → empty body)");
	reply_free(&r);
}

static void test_get_and_routes(void)
{
	struct reply r;

	http_tcp("GET",
		 "/prpc/Echo?s=a+b%21&u=42&b=0x0102&rb[0]=aa&rb[1]=bb&inner[name]=in&tags[]=x&tags[]=y"
		 "&counts[z]=5&flag=true&ou=7&json",
		 NULL, NULL, 0, &r);
	is_int(r.status, 200, "GET with query: 200");
	is_str(
	    r.body,
	    "{\"s\":\"a b!\",\"b\":\"0102\",\"rb\":[\"aa\",\"bb\"],\"u\":42,\"ou\":7,\"os\":null,"
	    "\"inner\":{\"name\":\"in\",\"n\":0},\"inners\":[],\"flag\":true,\"i\":0,\"tags\":[\"x\",\"y\"],"
	    "\"counts\":{\"z\":5},\"oinner\":null,\"i32\":0,\"d\":0.0,\"ob\":null}",
	    "GET query string decoded serde_qs style");
	reply_free(&r);
	http_tcp("GET", "/prpc/Echo?u=notanumber", NULL, NULL, 0, &r);
	ok(r.status == 400 && strstr(r.body, "\"error\": \"u: invalid digit"), "GET bad number → 400 error");
	reply_free(&r);

	http_tcp("POST", "/prpc/Demo.Echo?json", NULL, "{\"s\":\"p\"}", 9, &r);
	ok(r.status == 200 && strncmp(r.body, "{\"s\":\"p\"", 8) == 0, "/prpc/Demo.Echo: prefix stripped");
	reply_free(&r);
	http_tcp("POST", "/prpc/Legacy.Ping?json", NULL, NULL, 0, &r);
	ok(r.status == 200 && r.body_len == 4 && memcmp(r.body, "null", 4) == 0, "Empty reply is JSON null");
	reply_free(&r);
	http_tcp("POST", "/prpc/Ping", "application/octet-stream", "", 0, &r);
	ok(r.status == 200 && r.body_len == 0 && has_header(&r, "Content-Length: 0\r\n"),
	   "Empty reply in protobuf is a zero-length body");
	reply_free(&r);
	http_tcp("POST", "/prpc/Ping?json", NULL, "garbage that is ignored", 23, &r);
	ok(r.status == 200, "Empty-input method ignores the body");
	reply_free(&r);

	http_tcp("POST", "/prpc/Nope?json", NULL, "{}", 2, &r);
	is_int(r.status, 400, "unknown method: 400");
	is_str(r.body, "{\n  \"error\": \"Service not found: Nope\"\n}", "unknown method error text");
	reply_free(&r);
	http_tcp("POST", "/prpc/Gateway.Echo?json", NULL, "{}", 2, &r);
	is_str(r.body, "{\n  \"error\": \"Service not found: Gateway.Echo\"\n}",
	       "undeclared prefix not stripped");
	reply_free(&r);
	http_tcp("GET", "/health", NULL, NULL, 0, &r);
	ok(r.status == 200 && r.body_len == 2 && memcmp(r.body, "OK", 2) == 0, "GET /health → OK");
	ok(has_header(&r, "X-App-Version: v0.6.0 (git:test)"), "X-App-Version on /health");
	reply_free(&r);
	const char *ua = "GET /prpc/Peer HTTP/1.1\r\nUser-Agent: tester/1\r\nConnection: close\r\n\r\n";

	raw_exchange(connect_tcp(tcp_port), ua, strlen(ua), false, &r);
	is_str(r.body, "{\"subject\":\"\",\"user_agent\":\"tester/1\"}", "handler sees request headers");
	reply_free(&r);
	http_tcp("GET", "/", NULL, NULL, 0, &r);
	ok(r.status == 200 && strstr(r.body, "demo"), "program route GET / beside prpc");
	reply_free(&r);
	http_tcp("GET", "/nothing/here", NULL, NULL, 0, &r);
	is_int(r.status, 404, "unrouted path → 404");
	reply_free(&r);
	http_tcp("PUT", "/prpc/Echo", NULL, "{}", 2, &r);
	is_int(r.status, 404, "PUT is not a prpc route");
	reply_free(&r);
}

static void test_errors(void)
{
	struct reply r;
	const char *in = "{\"s\":\"compose hash \\\"x\\\" \\u0001 not allowed\"}";

	http_tcp("POST", "/prpc/Fail?json", NULL, in, strlen(in), &r);
	is_int(r.status, 400, "handler error → 400");
	ok(has_header(&r, "Content-Type: application/json\r\n"), "error content type JSON");
	is_str(
	    r.body,
	    "{\n  \"error\": \"App not allowed: Boot denied: compose hash \\\"x\\\" \\u0001 not allowed\"\n}",
	    "error body is serde_json pretty {\"error\": chain}");
	reply_free(&r);

	http_tcp("POST", "/prpc/Fail", "application/octet-stream",
		 "\x0a\x03"
		 "abc",
		 5, &r);
	is_int(r.status, 400, "protobuf error → 400");
	ok(has_header(&r, "Content-Type: application/octet-stream"), "protobuf error content type");
	Prpc__PrpcError *pe = prpc__prpc_error__unpack(NULL, r.body_len, (const uint8_t *)r.body);

	ok(pe && strcmp(pe->message, "App not allowed: Boot denied: abc") == 0,
	   "PrpcError.message carries the chain");
	if (pe)
		prpc__prpc_error__free_unpacked(pe, NULL);
	reply_free(&r);

	http_tcp("POST", "/prpc/Echo", "application/octet-stream", "\xff\xff\xff", 3, &r);
	ok(r.status == 400 && r.body_len > 0, "invalid protobuf body → 400 PrpcError");
	reply_free(&r);
	http_tcp("POST", "/prpc/Echo", "application/octet-stream", "\x0a\x02\xc3\x28", 4, &r);
	pe = r.status == 400 ? prpc__prpc_error__unpack(NULL, r.body_len, (const uint8_t *)r.body) : NULL;
	ok(pe && strcmp(pe->message, "s: invalid utf-8 sequence") == 0,
	   "invalid UTF-8 string in protobuf → 400");
	if (pe)
		prpc__prpc_error__free_unpacked(pe, NULL);
	reply_free(&r);
	http_tcp("POST", "/prpc/Later?json", NULL, "{\"s\":\"async\"}", 13, &r);
	ok(r.status == 200 && strncmp(r.body, "{\"s\":\"async\"", 12) == 0,
	   "PRPC_ASYNC handler answers later");
	reply_free(&r);
	http_tcp("POST", "/prpc/Later?json", NULL, "{\"flag\":true}", 13, &r);
	is_str(r.body, "{\n  \"error\": \"later failure\"\n}", "PRPC_ASYNC handler error");
	reply_free(&r);
	http_tcp("POST", "/prpc/Echo?json", NULL, "{\"s\":\"\xc3\x28\"}", 8, &r);
	ok(r.status == 400 && strstr(r.body, "\"error\""), "invalid UTF-8 in JSON → 400");
	reply_free(&r);
	http_tcp("POST", "/prpc/Echo?json", NULL, "{\"b\":\"abc\"}", 11, &r);
	ok(r.status == 400 && strstr(r.body, "\"error\": \"b: "), "odd-length hex → 400 naming the field");
	reply_free(&r);
	http_tcp("POST", "/prpc/Echo?json", NULL, "{\"u\":-1}", 8, &r);
	ok(r.status == 400, "negative u64 → 400");
	reply_free(&r);
	http_tcp("POST", "/prpc/Echo?json", NULL, "[1,2]", 5, &r);
	ok(r.status == 400 && strstr(r.body, "expected struct EchoRequest"), "non-object body → 400");
	reply_free(&r);

	/* 100k '[' must be rejected, not overflow a stack. */
	size_t n = 100000;
	char *deep = malloc(n);

	memset(deep, '[', n);
	http_tcp("POST", "/prpc/Echo?json", NULL, deep, n, &r);
	is_int(r.status, 400, "100k nested arrays → 400");
	reply_free(&r);
	/* Deep but valid message nesting is capped too. */
	struct buf b = BUF_INIT;

	for (int i = 0; i < 40; i++)
		buf_puts(&b, "{\"child\":");
	buf_puts(&b, "null");
	for (int i = 0; i < 40; i++)
		buf_putc(&b, '}');
	http_tcp("POST", "/prpc/Depth?json", NULL, b.data, b.len, &r);
	ok(r.status == 400 && strstr(r.body, "nesting exceeds"), "message nesting beyond the limit → 400");
	reply_free(&r);
	buf_free(&b);
	free(deep);
	ok(server_alive(), "server alive after malformed bodies");
}

static void test_hostile(void)
{
	struct reply r;
	int fd;

	/* Truncated body: promise 100 bytes, send 10, close. */
	fd = connect_tcp(tcp_port);
	raw_exchange(fd, "POST /prpc/Echo?json HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"s\":\"abc", 63, true,
		     &r);
	ok(r.raw.len == 0, "truncated body then FIN: connection closed without a reply");
	reply_free(&r);
	ok(server_alive(), "server alive after truncated body");

	/* 11 MiB body → 413 before reading it all. */
	size_t big = 11 * 1024 * 1024;
	char *body = calloc(1, big);
	struct buf req = BUF_INIT;

	buf_printf(&req, "POST /prpc/Echo?json HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", big);
	fd = connect_tcp(tcp_port);
	send_all(fd, req.data, req.len);
	send_all(fd, body, 256 * 1024);
	memset(&r, 0, sizeof(r));
	read_all(fd, &r.raw, 5000);
	close(fd);
	parse_reply(&r);
	is_int(r.status, 413, "11 MiB body → 413");
	ok(has_header(&r, "Connection: close"), "413 closes the connection");
	reply_free(&r);
	buf_free(&req);
	free(body);

	raw_exchange(connect_tcp(tcp_port), "GARBAGE\r\n\r\n", 11, false, &r);
	is_int(r.status, 400, "garbage request line → 400");
	reply_free(&r);
	raw_exchange(connect_tcp(tcp_port), "GET /health HTTP/2.0\r\n\r\n", 24, false, &r);
	is_int(r.status, 505, "unsupported HTTP version → 505");
	reply_free(&r);
	raw_exchange(connect_tcp(tcp_port), "GET /health HTTP/1.1\r\n Folded: x\r\n\r\n", 37, false, &r);
	is_int(r.status, 400, "obsolete header folding → 400");
	reply_free(&r);
	raw_exchange(connect_tcp(tcp_port),
		     "POST /prpc/Echo?json HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 66,
		     false, &r);
	is_int(r.status, 411, "chunked request body → 411");
	reply_free(&r);
	raw_exchange(connect_tcp(tcp_port),
		     "POST /prpc/Echo?json HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 74,
		     false, &r);
	is_int(r.status, 400, "conflicting Content-Length → 400");
	reply_free(&r);

	/* 70 KiB of headers → 431. */
	buf_puts(&req, "GET /health HTTP/1.1\r\n");
	for (int i = 0; i < 700; i++)
		buf_printf(&req, "X-Pad-%d: %0100d\r\n", i, 0);
	buf_puts(&req, "\r\n");
	raw_exchange(connect_tcp(tcp_port), req.data, req.len, false, &r);
	is_int(r.status, 431, "70 KiB of headers → 431");
	reply_free(&r);
	buf_free(&req);
	/* Headers that never end: cut off at the limit, not buffered forever. */
	fd = connect_tcp(tcp_port);
	buf_puts(&req, "GET /health HTTP/1.1\r\nX-Long: ");
	for (int i = 0; i < 70 * 1024; i++)
		buf_putc(&req, 'a');
	raw_exchange(fd, req.data, req.len, false, &r);
	is_int(r.status, 431, "endless header line → 431");
	reply_free(&r);
	buf_free(&req);
	ok(server_alive(), "server alive after hostile requests");
}

static void test_slow_client(void)
{
	const char *req = "POST /prpc/Echo?json HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}";
	int fd = connect_tcp(tcp_port);
	double start = now_s(), closed_at = 0;
	int served = 0;
	size_t i = 0;

	/* One byte every 300 ms: the 2 s whole-request deadline must cut it off,
	 * while other clients are served in the meantime. */
	while (now_s() - start < 6) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		char c;

		if (i < strlen(req))
			send(fd, &req[i++], 1, MSG_NOSIGNAL);
		if (server_alive())
			served++;
		if (poll(&p, 1, 300) > 0) {
			ssize_t n = recv(fd, &c, 1, 0);

			if (n <= 0) {
				closed_at = now_s() - start;
				break;
			}
		}
	}
	close(fd);
	ok(closed_at > 1.5 && closed_at < 3.5, "slow client cut off at the request deadline (%.2f s)",
	   closed_at);
	ok(served >= 3, "other clients served meanwhile (%d)", served);
}

static void test_keepalive_and_halfclose(void)
{
	struct reply r;
	const char *two =
	    "GET /health HTTP/1.1\r\n\r\n\r\nPOST /prpc/Ping?json HTTP/1.1\r\nContent-Length: 0\r\n"
	    "Connection: close\r\n\r\n";
	char *second;

	raw_exchange(connect_tcp(tcp_port), two, strlen(two), false, &r);
	second = r.raw.data ? strstr((char *)r.raw.data + 4, "HTTP/1.1 200") : NULL;
	ok(r.status == 200 && second && strstr(second, "\r\n\r\nnull"),
	   "two pipelined requests, two replies");
	ok(second && strstr(second, "Connection: close"), "Connection: close honoured");
	reply_free(&r);

	/* JS SDK: raw request with Content-Length, then shutdown(SHUT_WR), read reply and EOF. */
	const char *js = "POST /Echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
			 "Content-Length: 10\r\n\r\n{\"s\":\"js\"}";
	int fd = connect_unix(unix_path);

	ok(fd >= 0, "connect to unix socket");
	ok(raw_exchange(fd, js, strlen(js), true, &r) == 0, "half-closed client gets EOF after the reply");
	is_int(r.status, 200, "half-close: full reply arrives");
	ok(has_header(&r, "Content-Length: ") && !has_header(&r, "chunked"),
	   "half-close reply has Content-Length");
	ok(r.body_len > 8 && strncmp(r.body, "{\"s\":\"js\"", 9) == 0,
	   "bare /Echo on the guest-agent style mount");
	reply_free(&r);

	/* Keep-alive client that half-closes after two requests. */
	const char *ka = "POST /Ping HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 0\r\n\r\n"
			 "GET /Echo?s=q HTTP/1.1\r\n\r\n";
	raw_exchange(connect_unix(unix_path), ka, strlen(ka), true, &r);
	ok(r.status == 200 && r.raw.data && strstr((char *)r.raw.data, "{\"s\":\"q\""),
	   "keep-alive + half-close: both replies, then EOF");
	reply_free(&r);
	struct stat st;

	ok(stat(unix_path, &st) == 0 && (st.st_mode & 0777) == 0777, "unix socket mode set");
}

static void test_clients(void)
{
	char base[128];
	struct err e = ERR_INIT;
	struct prpc_client c = {.base = base};
	Demo__EchoRequest req = DEMO__ECHO_REQUEST__INIT;
	Demo__Inner inner = DEMO__INNER__INIT;
	ProtobufCBinaryData rb[2] = {{2, (uint8_t *)"\x01\x02"}, {0, NULL}};
	ProtobufCMessage *out = NULL;
	json_t *jo = NULL;

	snprintf(base, sizeof(base), "http://127.0.0.1:%u/prpc", tcp_port);
	req.s = "client";
	req.u = UINT64_MAX;
	req.n_rb = 2;
	req.rb = rb;
	inner.name = "i";
	req.inner = &inner;
	req._ou_case = DEMO__ECHO_REQUEST___OU_OU;
	req.ou = 1;
	ok(prpc_client_call(&c, "Echo", &req.base, &demo__echo_request__descriptor, &out, &e) == 0,
	   "prpc_client_call Echo: %s", e.msg);
	if (out) {
		Demo__EchoRequest *o = (Demo__EchoRequest *)out;

		ok(strcmp(o->s, "client") == 0 && o->n_rb == 2 && o->rb[0].len == 2 && o->rb[1].len == 0 &&
		       o->inner && strcmp(o->inner->name, "i") == 0 &&
		       o->_ou_case == DEMO__ECHO_REQUEST___OU_OU && o->ou == 1 && o->_os_case == 0,
		   "client round trip of bytes, nested, optional");
		ok(o->u == UINT64_MAX, "uint64 max survives JSON both ways");
		prpc_msg_free(out);
	}
	req.s = "no";
	ok(prpc_client_call(&c, "Fail", &req.base, &google__protobuf__empty__descriptor, NULL, &e) < 0 &&
	       strcmp(e.msg, "App not allowed: Boot denied: no") == 0,
	   "client error carries the server's error string (%s)", e.msg);
	ok(prpc_client_call_json(&c, "Ping", NULL, &jo, &e) == 0 && json_is_null(jo), "Ping → null");
	json_decref(jo);
	ok(prpc_client_call_json(&c, "Missing", NULL, NULL, &e) < 0 &&
	       strcmp(e.msg, "Service not found: Missing") == 0,
	   "client: unknown method error");

	/* Unix socket (guest agent style, bare methods). */
	struct prpc_client uc = {.base = "http://localhost", .http = {.unix_socket = unix_path}};
	json_t *in = json_pack("{s:s}", "s", "unix");

	ok(prpc_client_call_json(&uc, "Echo", in, &jo, &e) == 0 &&
	       strcmp(json_string_value(json_object_get(jo, "s")), "unix") == 0,
	   "client over unix socket: %s", e.msg);
	json_decref(in);
	json_decref(jo);
}

static X509_NAME *hook_seen;

static int record_cb(int preverify, X509_STORE_CTX *ctx)
{
	if (X509_STORE_CTX_get_error_depth(ctx) == 0 && !hook_seen)
		hook_seen = X509_NAME_dup(X509_get_subject_name(X509_STORE_CTX_get_current_cert(ctx)));
	return 1; /* the hook decides: accept */
}

static int reject_cb(int preverify, X509_STORE_CTX *ctx)
{
	return 0;
}

static int verify_hook(SSL_CTX *ctx, void *arg)
{
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, arg ? reject_cb : record_cb);
	return 0;
}

static void test_tls(void)
{
	char base[128];
	struct err e = ERR_INIT;
	json_t *jo = NULL;
	struct prpc_client c = {.base = base, .http = {.ca_pem = ca_pem}};

	snprintf(base, sizeof(base), "https://localhost:%u/prpc", tls_port);
	ok(prpc_client_call_json(&c, "Peer", NULL, &jo, &e) == 0, "TLS without client cert: %s", e.msg);
	is_str(jo ? json_string_value(json_object_get(jo, "subject")) : NULL, "",
	       "handler sees no peer cert");
	ok(jo && !json_object_get(jo, "user_agent"), "omit_if_empty field left out when empty");
	json_decref(jo);
	jo = NULL;
	c.http.cert_pem = client_cert_pem;
	c.http.key_pem = client_key_pem;
	ok(prpc_client_call_json(&c, "Peer", NULL, &jo, &e) == 0, "TLS with client cert: %s", e.msg);
	is_str(jo ? json_string_value(json_object_get(jo, "subject")) : NULL, "/CN=demo-client",
	       "handler sees the client certificate subject");
	json_decref(jo);
	jo = NULL;

	/* No CA: fails with the default store, succeeds with a verify hook. */
	struct prpc_client h = {.base = base};

	ok(prpc_client_call_json(&h, "Ping", NULL, NULL, &e) < 0, "unknown server CA rejected (%s)", e.msg);
	h.http.ssl_ctx_hook = verify_hook;
	h.http.insecure = true;
	ok(prpc_client_call_json(&h, "Ping", NULL, NULL, &e) == 0,
	   "verify hook accepts the server itself: %s", e.msg);
	h.http.ssl_ctx_arg = "reject";
	ok(prpc_client_call_json(&h, "Ping", NULL, NULL, &e) < 0, "verify hook can reject the server (%s)",
	   e.msg);
	char name[128] = "";

	if (hook_seen)
		X509_NAME_oneline(hook_seen, name, sizeof(name));
	is_str(name, "/CN=localhost", "verify hook saw the server certificate");
	X509_NAME_free(hook_seen);

	/* Raw http client: status, body, headers, body cap. */
	struct http_client_opts o = {.ca_pem = ca_pem, .max_body = 1};
	struct http_response resp;
	char url[128];

	snprintf(url, sizeof(url), "https://localhost:%u/health", tls_port);
	ok(http_fetch(&o, "GET", url, NULL, NULL, 0, &resp, &e) < 0 && strstr(e.msg, "exceeds"),
	   "http client body cap");
	o.max_body = 0;
	ok(http_fetch(&o, "GET", url, NULL, NULL, 0, &resp, &e) == 0 && resp.status == 200,
	   "http client GET over TLS");
	char *v = http_response_header(&resp, "x-app-version");

	is_str(v, "v0.6.0 (git:test)", "http client reads response headers");
	free(v);
	http_response_free(&resp);
}

static void test_graceful_shutdown(void)
{
	const char *req = "POST /prpc/Slow?json HTTP/1.1\r\nContent-Length: 10\r\n\r\n{\"u\":1000}";
	struct reply r;
	int fd = connect_tcp(tcp_port), status = 0;

	send_all(fd, req, strlen(req));
	usleep(300 * 1000);
	kill(server_pid, SIGTERM);
	memset(&r, 0, sizeof(r));
	read_all(fd, &r.raw, 5000);
	close(fd);
	parse_reply(&r);
	ok(r.status == 200 && strstr(r.body, "\"u\":1000"),
	   "in-flight blocking request finishes after SIGTERM");
	ok(has_header(&r, "Connection: close"), "reply during shutdown closes the connection");
	reply_free(&r);
	ok(connect_tcp(tcp_port) < 0, "listener closed during shutdown");
	waitpid(server_pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "server exits cleanly after SIGTERM");
	server_pid = 0;
}

static int start_server(const char *exe)
{
	char portfile[300];

	snprintf(portfile, sizeof(portfile), "%s/ports", tmpdir);
	server_pid = fork();
	if (server_pid == 0) {
		execl(exe, exe, portfile, unix_path, tmpdir, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100; i++) {
		uint8_t *data;
		size_t len;

		if (file_read_all(portfile, 64, &data, &len, NULL) == 0) {
			unsigned a, b;
			int n = sscanf((char *)data, "%u %u", &a, &b);

			free(data);
			if (n == 2) {
				tcp_port = (uint16_t)a;
				tls_port = (uint16_t)b;
				return 0;
			}
		}
		usleep(100 * 1000);
	}
	return -1;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DEMO_SERVER\n", argv[0]);
		return 2;
	}
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/prpc-test-XXXXXX");
	if (!mkdtemp(tmpdir))
		return 1;
	snprintf(unix_path, sizeof(unix_path), "%s/agent.sock", tmpdir);
	make_pki();
	if (!ok(start_server(argv[1]) == 0, "demo server started"))
		return tap_done();
	test_json_and_proto();
	test_get_and_routes();
	test_errors();
	test_hostile();
	test_keepalive_and_halfclose();
	test_clients();
	test_tls();
	test_slow_client();
	test_graceful_shutdown();
	if (server_pid > 0) {
		kill(server_pid, SIGKILL);
		waitpid(server_pid, NULL, 0);
	}
	free(ca_pem);
	free(client_cert_pem);
	free(client_key_pem);
	char cmd[400];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		diag("could not remove %s", tmpdir);
	return tap_done();
}
