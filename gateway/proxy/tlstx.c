/*
 * tlstx.c — the write side of a terminated client connection: the BIO that
 * OpenSSL writes TLS records into, in place of its socket BIO.
 *
 * On loopback and on a WireGuard link every segment a process sends runs
 * the receiver's TCP path inside the sender's syscall, so records that can
 * leave together should: the TLS 1.3 session ticket with the first bytes of
 * the response, and the last bytes with close_notify and the FIN. While
 * `hold` is set, records are appended to a pooled chunk and OpenSSL's own
 * flushes are ignored; tls_tx_flush() writes them out (MSG_MORE when the
 * caller shuts the socket down next, so the FIN joins the same segment).
 * Otherwise a write goes straight to the socket, after whatever is still
 * held (one sendmsg for both). The chunk is held only while records wait
 * (a partial flush keeps the rest until the socket is writable again) and
 * goes back to the worker's pool when it is empty, so an idle connection
 * holds none.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "internal.h"

static void tx_release(struct tls_tx *tx)
{
	worker_buf_put(tx->w, tx->buf);
	tx->buf = NULL;
	tx->off = tx->len = 0;
}

void tls_tx_release(struct tls_tx *tx)
{
	tx_release(tx);
}

/* Writes what is held, then `n` bytes of `p`. Returns how many bytes of `p`
 * were written (0 when only held bytes, or nothing, went out), -1 with
 * errno set (EAGAIN: nothing at all could be written). */
static ssize_t tx_send(struct tls_tx *tx, const void *p, size_t n, int flags)
{
	struct iovec iov[2];
	struct msghdr msg = {.msg_iov = iov};
	size_t held = tx->len;
	ssize_t r;

	if (held) {
		iov[msg.msg_iovlen++] = (struct iovec){.iov_base = tx->buf + tx->off, .iov_len = held};
	}
	if (n)
		iov[msg.msg_iovlen++] = (struct iovec){.iov_base = (void *)p, .iov_len = n};
	if (!msg.msg_iovlen)
		return 0;
	do
		r = sendmsg(tx->fd, &msg, MSG_NOSIGNAL | flags);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -1;
	if ((size_t)r < held) {
		tx->off += (uint32_t)r;
		tx->len -= (uint32_t)r;
		return 0;
	}
	if (held)
		tx_release(tx);
	return r - (ssize_t)held;
}

int tls_tx_flush(struct tls_tx *tx, bool more)
{
	if (!tx->len)
		return 1;
	if (tx_send(tx, NULL, 0, more ? MSG_MORE : 0) < 0)
		return errno == EAGAIN ? 0 : -1;
	return tx->len ? 0 : 1;
}

static int tx_write(BIO *b, const char *p, size_t n, size_t *written)
{
	struct tls_tx *tx = BIO_get_data(b);
	size_t cap = tx->w->pe->cfg.buffer_size;
	ssize_t r;

	BIO_clear_retry_flags(b);
	*written = 0;
	if (tx->hold && tx->off + tx->len + n <= cap) {
		if (!tx->buf)
			tx->buf = worker_buf_get(tx->w);
		memcpy(tx->buf + tx->off + tx->len, p, n);
		tx->len += (uint32_t)n;
		*written = n;
		return 1;
	}
	r = tx_send(tx, p, n, 0);
	if (r > 0) {
		*written = (size_t)r;
		return 1;
	}
	if (r == 0 || errno == EAGAIN)
		BIO_set_retry_write(b);
	return 0;
}

static long tx_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct tls_tx *tx = BIO_get_data(b);

	switch (cmd) {
	case BIO_CTRL_FLUSH:
		/* OpenSSL flushes after each handshake message it sends on
		 * its own, the session ticket among them: while holding,
		 * the caller decides when records leave. */
		if (tx->hold)
			return 1;
		BIO_clear_retry_flags(b);
		switch (tls_tx_flush(tx, false)) {
		case 1:
			return 1;
		case 0:
			BIO_set_retry_write(b);
			return 0;
		default:
			return -1;
		}
	case BIO_CTRL_WPENDING:
		return (long)tx->len;
	case BIO_C_GET_FD:
		if (ptr)
			*(int *)ptr = tx->fd;
		return tx->fd;
	case BIO_CTRL_GET_CLOSE:
		return BIO_NOCLOSE;
	case BIO_CTRL_SET_CLOSE:
	case BIO_CTRL_DUP:
		return 1;
	default:
		return 0;
	}
}

static int tx_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

BIO_METHOD *tls_tx_method_new(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
				     "dstack client tx");

	if (!m || BIO_meth_set_write_ex(m, tx_write) != 1 || BIO_meth_set_ctrl(m, tx_ctrl) != 1 ||
	    BIO_meth_set_create(m, tx_create) != 1) {
		BIO_meth_free(m);
		return NULL;
	}
	return m;
}

BIO *tls_tx_bio(const BIO_METHOD *m, struct tls_tx *tx)
{
	BIO *b = BIO_new(m);

	if (b)
		BIO_set_data(b, tx);
	return b;
}
