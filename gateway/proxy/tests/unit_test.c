/*
 * unit_test.c — the pure parsers of the proxy: the SNI name grammar (the
 * edge-case table of spec §5), ClientHello sniffing on real OpenSSL client
 * hellos, PROXY protocol v1/v2, TXT values and listen port ranges; and the
 * client write BIO (tlstx.c) on a real loopback TCP pair: held records,
 * OpenSSL's ignored flushes, partial flushes and the pooled chunk.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "core/cleanup.h"
#include "core/tap.h"
#include "gateway/proxy/internal.h"

struct name_case {
	const char *sub;
	int ok;
	const char *id;
	int port;
	int s, g;
};

static const struct name_case names[] = {
    {"abc", 1, "abc", 80, 0, 0},
    {"abc-8080", 1, "abc", 8080, 0, 0},
    {"abc-s", 1, "abc", 443, 1, 0},
    {"abc-443s", 1, "abc", 443, 1, 0},
    {"abc-50051g", 1, "abc", 50051, 0, 1},
    {"abc-g", 1, "abc", 80, 0, 1},
    {"abc-", 1, "abc", 80, 0, 0},
    {"abcs", 1, "abcs", 80, 0, 0},
    {"abcg", 1, "abcg", 80, 0, 0},
    {"abc-443gs", 0, NULL, 0, 0, 0},
    {"abc-443sg", 0, NULL, 0, 0, 0},
    {"abc-sg", 0, NULL, 0, 0, 0},
    {"abc-+80", 1, "abc", 80, 0, 0},
    {"abc-0", 1, "abc", 0, 0, 0},
    {"abc-65535s", 1, "abc", 65535, 1, 0},
    {"abc-65536", 0, NULL, 0, 0, 0},
    {"a-b-c", 0, NULL, 0, 0, 0},
    {"-80", 0, NULL, 0, 0, 0},
    {"", 0, NULL, 0, 0, 0},
    {"abc-8x", 0, NULL, 0, 0, 0},
    {"abc-+", 0, NULL, 0, 0, 0},
    {"abc-ss", 0, NULL, 0, 0, 0},
    {"localhost-8080s", 1, "localhost", 8080, 1, 0},
};

static void test_names(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		const struct name_case *t = &names[i];
		struct proxy_name n;
		struct err e = ERR_INIT;
		int rc = proxy_name_parse(t->sub, strlen(t->sub), &n, &e);
		if (!t->ok) {
			ok(rc < 0, "'%s' rejected (%s)", t->sub, err_str(&e));
			continue;
		}
		ok(rc == 0 && strcmp(n.id, t->id) == 0 && n.port == t->port && n.tls_passthrough == t->s &&
		       n.h2 == t->g,
		   "'%s' -> id=%s port=%d s=%d g=%d", t->sub, t->id, t->port, t->s, t->g);
	}
	const char *sub, *base;
	size_t l;
	ok(proxy_sni_split("app-8080.gw.example.com", &sub, &l, &base) == 0 && l == 8 &&
	       strcmp(base, "gw.example.com") == 0,
	   "split at the first dot");
	ok(proxy_sni_split("nodot", &sub, &l, &base) < 0, "no dot is rejected");
}

/* A real ClientHello from OpenSSL, written into a memory BIO. */
static size_t client_hello(const char *sni, const char *alpn, uint8_t *out, size_t cap)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = SSL_new(ctx);
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());

	SSL_set_bio(ssl, rb, wb);
	if (sni)
		SSL_set_tlsext_host_name(ssl, sni);
	if (alpn)
		SSL_set_alpn_protos(ssl, (const unsigned char *)alpn, (unsigned)strlen(alpn));
	SSL_connect(ssl);
	int n = BIO_read(wb, out, (int)cap);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return n > 0 ? (size_t)n : 0;
}

static void test_sni(void)
{
	uint8_t hello[4096], big[8192];
	struct sni_info si;
	size_t n = client_hello("app-443s.gw.test", "\x02h2\x08http/1.1", hello, sizeof(hello));

	ok(n > 100, "OpenSSL produced a ClientHello (%zu bytes)", n);
	is_int(sni_parse(hello, n, &si), SNI_FOUND, "SNI found");
	is_str(si.host, "app-443s.gw.test", "host_name");
	ok(si.has_alpn && si.alpn_h2, "ALPN offer with h2 seen");
	int partial_ok = 1;
	for (size_t k = 0; k < n; k++)
		partial_ok &= sni_parse(hello, k, &si) == SNI_NEED_MORE;
	ok(partial_ok, "every proper prefix asks for more");

	n = client_hello(NULL, NULL, hello, sizeof(hello));
	is_int(sni_parse(hello, n, &si), SNI_INVALID, "ClientHello without SNI is invalid");
	is_int(sni_parse((const uint8_t *)"GET / HTTP/1.1\r\n\r\n", 18, &si), SNI_INVALID, "HTTP is invalid");

	/* Split over two records. */
	n = client_hello("split.gw.test", NULL, hello, sizeof(hello));
	size_t body = n - 5, first = body / 2;
	memcpy(big, hello, 5);
	big[3] = (uint8_t)(first >> 8);
	big[4] = (uint8_t)first;
	memcpy(big + 5, hello + 5, first);
	memcpy(big + 5 + first, hello, 5);
	big[5 + first + 3] = (uint8_t)((body - first) >> 8);
	big[5 + first + 4] = (uint8_t)(body - first);
	memcpy(big + 10 + first, hello + 5 + first, body - first);
	is_int(sni_parse(big, n + 5, &si), SNI_FOUND, "ClientHello split over two records");
	is_str(si.host, "split.gw.test", "host_name from split hello");

	/* A handshake claiming more than the sniff window. */
	memset(big, 0, sizeof(big));
	memcpy(big, "\x16\x03\x01\x1f\x40\x01\x00\x1f\x3c", 9);
	is_int(sni_parse(big, 4096, &si), SNI_INVALID, "oversized ClientHello is invalid");
}

static void test_pp(void)
{
	struct pp_addrs a, b;
	size_t used;
	uint8_t out[256];
	const char *v1 = "PROXY TCP4 1.2.3.4 5.6.7.8 1111 443\r\nrest";

	is_int(pp_parse((const uint8_t *)v1, strlen(v1), &a, &used), PP_OK, "v1 parses");
	is_int(used, strlen(v1) - 4, "v1 length");
	is_int(ntohs(((struct sockaddr_in *)&a.src)->sin_port), 1111, "v1 source port");
	is_int(pp_parse((const uint8_t *)v1, 20, &a, &used), PP_NEED_MORE, "partial v1 needs more");
	is_int(pp_parse((const uint8_t *)"PROXY TCP4 1.2.3.4 x 1 2\r\n", 26, &a, &used), PP_INVALID,
	       "bad v1 address");
	is_int(pp_parse((const uint8_t *)"\x16\x03\x01", 3, &a, &used), PP_INVALID, "TLS is not PROXY");
	is_int(pp_parse((const uint8_t *)"PROXY UNKNOWN\r\n", 15, &a, &used), PP_OK, "v1 UNKNOWN");

	pp_parse((const uint8_t *)v1, strlen(v1), &a, &used);
	size_t n = pp_build(&a, out, sizeof(out));
	ok(n == strlen(v1) - 4 && memcmp(out, v1, n) == 0, "v1 rebuilds byte-exact");
	a.version = 2;
	n = pp_build(&a, out, sizeof(out));
	is_int(n, 28, "v2 IPv4 header is 28 bytes");
	is_int(pp_parse(out, n, &b, &used), PP_OK, "v2 parses");
	ok(used == 28 && b.version == 2 && memcmp(&a.src, &b.src, sizeof(struct sockaddr_in)) == 0 &&
	       memcmp(&a.dst, &b.dst, sizeof(struct sockaddr_in)) == 0,
	   "v2 round trip");
	is_int(pp_parse(out, 20, &b, &used), PP_NEED_MORE, "partial v2 needs more");
	out[12] = 0x31;
	is_int(pp_parse(out, n, &b, &used), PP_INVALID, "v2 wrong version rejected");
}

static void test_txt_and_ports(void)
{
	char id[PROXY_ID_MAX];
	uint16_t port, lo, hi;

	ok(txt_parse_value("abc123:8080", 11, id, sizeof(id), &port) == 0 && strcmp(id, "abc123") == 0 &&
	       port == 8080,
	   "TXT <id>:<port>");
	ok(txt_parse_value("abc", 3, id, sizeof(id), &port) < 0, "TXT without port rejected");
	ok(txt_parse_value(":80", 3, id, sizeof(id), &port) < 0, "TXT without id rejected");
	ok(txt_parse_value("a:99999", 7, id, sizeof(id), &port) < 0, "TXT port out of range");
	ok(proxy_parse_port_range("8443", &lo, &hi, NULL) == 0 && lo == 8443 && hi == 8443, "single port");
	ok(proxy_parse_port_range("8443-8445", &lo, &hi, NULL) == 0 && lo == 8443 && hi == 8445,
	   "port range");
	ok(proxy_parse_port_range("9-8", &lo, &hi, NULL) < 0, "inverted range rejected");
	ok(proxy_parse_port_range("80x", &lo, &hi, NULL) < 0, "junk rejected");

	struct proxy_config c;
	proxy_config_defaults(&c);
	ok(c.timeouts.idle == 600000 && c.timeouts.total == 18000000 && c.connect_top_n == 3 &&
	       c.max_connections_per_app == 2000 && c.buffer_size == 65536,
	   "§9 defaults");
}

/* A connected loopback TCP pair with small buffers, so the sender fills up
 * after a few KiB. */
static int tcp_pair(int fds[2])
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM, 0), small = 4096, one = 1;

	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&sa, &sl) < 0)
		return -1;
	fds[0] = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(fds[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fds[0], (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -1;
	fds[1] = accept(l, NULL, NULL);
	setsockopt(fds[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	close(l);
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	fcntl(fds[1], F_SETFL, O_NONBLOCK);
	return fds[1] < 0 ? -1 : 0;
}

/* Reads what is there (after a moment for loopback to deliver). */
static size_t drain(int fd, uint8_t *out, size_t cap)
{
	size_t got = 0;
	ssize_t n;

	usleep(20000);
	while (got < cap && (n = recv(fd, out + got, cap - got, 0)) > 0)
		got += (size_t)n;
	return got;
}

static void test_tls_tx(void)
{
	static struct proxy_engine pe;
	static struct worker w;
	static uint8_t sent[1 << 20], got[1 << 20];
	struct tls_tx tx = {.w = &w};
	BIO_METHOD *m = tls_tx_method_new();
	int fds[2] = {-1, -1};
	size_t ns = 0, ng = 0;

	pe.cfg.buffer_size = 8192;
	w.pe = &pe;
	if (!ok(m && tcp_pair(fds) == 0, "tls_tx: BIO method and a loopback TCP pair"))
		return;
	tx.fd = fds[0];
	BIO *b = tls_tx_bio(m, &tx);
	for (size_t i = 0; i < sizeof(sent); i++)
		sent[i] = (uint8_t)(i * 7 + (i >> 9));

	tx.hold = true;
	ok(BIO_write(b, sent, 300) == 300 && BIO_flush(b) == 1 && tx.len == 300 && tx.buf,
	   "held: a write is kept and OpenSSL's flush ignored");
	ok(drain(fds[1], got, sizeof(got)) == 0, "held: nothing on the wire");
	tx.hold = false;
	ok(BIO_write(b, sent + 300, 200) == 200 && tx.len == 0 && !tx.buf && w.n_free_bufs == 1,
	   "not held: the next write sends the held bytes first, the chunk goes back to the pool");
	ng = drain(fds[1], got, sizeof(got));
	ok(ng == 500 && memcmp(got, sent, 500) == 0, "held bytes then the new ones, in order");
	ns = 500;

	/* Fill the socket, then hold more: the flush can only be partial.
	 * A Unix stream socket, whose send buffer limit is strict (a TCP
	 * socket on loopback takes a whole write into one skb). */
	int up[2], small = 4096;
	if (!ok(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, up) == 0, "tls_tx: Unix socket pair"))
		return;
	setsockopt(up[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	tx.fd = up[0];
	ns = ng = 0;
	int r;
	while ((r = BIO_write(b, sent + ns, 1000)) > 0)
		ns += (size_t)r;
	ok(r <= 0 && BIO_should_retry(b) && BIO_should_write(b),
	   "full socket: write asks to retry (%zu sent)", ns);
	tx.hold = true;
	ok(BIO_write(b, sent + ns, 5000) == 5000 && tx.len == 5000, "held while the socket is full");
	ns += 5000;
	ok(BIO_write(b, sent + ns, 5000) <= 0 && BIO_should_retry(b),
	   "held chunk full: the overflow goes to the socket, which is full: retry");
	tx.hold = false;
	ok(tls_tx_flush(&tx, false) == 0 && tx.len == 5000, "flush into a full socket: 0, nothing lost");
	bool partial = false, ordered = true;
	for (int i = 0; i < 2000 && tx.len; i++) {
		size_t k = drain(up[1], got, 1500);
		ordered &= memcmp(got, sent + ng, k) == 0;
		ng += k;
		uint32_t before = tx.len;
		r = tls_tx_flush(&tx, false);
		partial |= r == 0 && tx.len < before;
	}
	ok(tx.len == 0 && !tx.buf, "flushed in the end, chunk released");
	ok(partial, "some flushes were partial (the rest kept for later)");
	/* Writes after held bytes, until the socket is full again: the held
	 * bytes must leave first (checked by the order below). */
	tx.hold = true;
	BIO_write(b, sent + ns, 700);
	ns += 700;
	tx.hold = false;
	while ((r = BIO_write(b, sent + ns, 900)) > 0)
		ns += (size_t)r;
	for (int i = 0; i < 2000 && (ng < ns || tx.len); i++) {
		size_t k = drain(up[1], got, 1500);
		ordered &= memcmp(got, sent + ng, k) == 0;
		ng += k;
		tls_tx_flush(&tx, false);
	}
	ok(ordered && ng == ns && tx.len == 0, "every byte arrived once, in order (%zu of %zu)", ng, ns);
	close(up[0]);
	close(up[1]);
	tx.fd = fds[0];

	tx.hold = true;
	BIO_write(b, "bye", 3);
	tx.hold = false;
	ok(tls_tx_flush(&tx, true) == 1 && shutdown(fds[0], SHUT_WR) == 0,
	   "last bytes with MSG_MORE, then FIN");
	usleep(20000);
	ok(recv(fds[1], got, sizeof(got), 0) == 3 && memcmp(got, "bye", 3) == 0 &&
	       recv(fds[1], got, 1, 0) == 0,
	   "the peer reads them, then EOF");
	BIO_free(b);
	BIO_meth_free(m);
	tls_tx_release(&tx);
	while (w.free_bufs) {
		struct pool_chunk *c = w.free_bufs;
		w.free_bufs = c->next;
		free(c);
	}
	close(fds[0]);
	close(fds[1]);
}

int main(void)
{
	test_names();
	test_sni();
	test_pp();
	test_txt_and_ports();
	test_tls_tx();
	return tap_done();
}
