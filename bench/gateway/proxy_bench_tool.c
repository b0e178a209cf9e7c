/*
 * proxy_bench_tool.c — load helpers for bench/gateway/run.sh (not a test):
 *
 *   sink PORT                     accept, discard everything, close on EOF
 *   blast PORT SNI MIB            send a ClientHello for SNI then MIB MiB of
 *                                 zeros, half-close, wait for the close;
 *                                 prints MB/s (passthrough bulk throughput)
 *   hold PORT SNI N tls|raw       open N connections through a proxy, one
 *                                 HTTP request each, then hold them idle
 *                                 until stdin closes (RSS per connection)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static int dial(unsigned port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("connect");
		exit(1);
	}
	return fd;
}

static size_t hello_bytes(const char *sni, uint8_t *out, size_t cap)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = SSL_new(ctx);
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());

	SSL_set_bio(ssl, rb, wb);
	SSL_set_tlsext_host_name(ssl, sni);
	SSL_connect(ssl);
	int n = BIO_read(wb, out, (int)cap);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return n > 0 ? (size_t)n : 0;
}

static void *sink_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	static __thread uint8_t buf[1 << 18];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
	return NULL;
}

static int cmd_sink(unsigned port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1024) < 0) {
		perror("sink");
		return 1;
	}
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		pthread_t t;
		if (fd < 0)
			continue;
		pthread_create(&t, NULL, sink_conn, (void *)(intptr_t)fd);
		pthread_detach(t);
	}
}

static int cmd_blast(unsigned port, const char *sni, unsigned mib)
{
	static uint8_t buf[1 << 18];
	uint8_t hello[4096];
	size_t hl = hello_bytes(sni, hello, sizeof(hello)), total = (size_t)mib << 20;
	struct timespec a, b;
	int fd = dial(port);

	clock_gettime(CLOCK_MONOTONIC, &a);
	if (write(fd, hello, hl) != (ssize_t)hl)
		return 1;
	for (size_t sent = 0; sent < total;) {
		ssize_t n = write(fd, buf, sizeof(buf));
		if (n <= 0) {
			perror("blast");
			return 1;
		}
		sent += (size_t)n;
	}
	shutdown(fd, SHUT_WR);
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	clock_gettime(CLOCK_MONOTONIC, &b);
	double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	printf("%.0f\n", (double)total / s / 1e6);
	return 0;
}

static int cmd_hold(unsigned port, const char *sni, int n, bool tls)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	const char req[] = "GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
	char resp[4096];
	uint8_t hello[4096];
	size_t hl = hello_bytes(sni, hello, sizeof(hello));
	int held = 0;

	for (int i = 0; i < n; i++) {
		int fd = dial(port);
		if (tls) {
			SSL *ssl = SSL_new(ctx);
			SSL_set_fd(ssl, fd);
			SSL_set_tlsext_host_name(ssl, sni);
			if (SSL_connect(ssl) != 1 || SSL_write(ssl, req, sizeof(req) - 1) <= 0 ||
			    SSL_read(ssl, resp, sizeof(resp)) <= 0) {
				ERR_print_errors_fp(stderr);
				continue;
			}
			/* SSL object kept (leaked on purpose) so the connection stays open. */
		} else {
			/* Passthrough to a plain backend: the ClientHello then a request. */
			if (write(fd, hello, hl) != (ssize_t)hl || write(fd, req, sizeof(req) - 1) <= 0)
				continue;
		}
		held++;
	}
	printf("%d\n", held);
	fflush(stdout);
	while (read(0, resp, sizeof(resp)) > 0)
		;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "sink") == 0)
		return cmd_sink((unsigned)atoi(argv[2]));
	if (argc == 5 && strcmp(argv[1], "blast") == 0)
		return cmd_blast((unsigned)atoi(argv[2]), argv[3], (unsigned)atoi(argv[4]));
	if (argc == 6 && strcmp(argv[1], "hold") == 0)
		return cmd_hold((unsigned)atoi(argv[2]), argv[3], atoi(argv[4]), strcmp(argv[5], "tls") == 0);
	fprintf(stderr, "usage: see the comment at the top of proxy_bench_tool.c\n");
	return 2;
}
