/*
 * buf.h — growable byte buffer used by encoders (JSON, SCALE, MessagePack,
 * HTTP). Always NUL-terminated past `len` so text users can treat it as a
 * C string. Allocation failure aborts: a daemon that cannot allocate 1 KiB
 * cannot report anything useful, and it keeps every caller simple.
 */
#ifndef DSTACK_CORE_BUF_H
#define DSTACK_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

#define BUF_INIT                                                                                             \
	{                                                                                                    \
		NULL, 0, 0                                                                                   \
	}

void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *data, size_t len);
void buf_putc(struct buf *b, uint8_t c);
void buf_puts(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Append lowercase hex of data. */
void buf_put_hex(struct buf *b, const void *data, size_t len);
void buf_reset(struct buf *b);
/* Zero the contents (for secrets), then free. */
void buf_free_secure(struct buf *b);
void buf_free(struct buf *b);
/* Hand the storage to the caller (NUL-terminated); the buf becomes empty. */
uint8_t *buf_steal(struct buf *b, size_t *len);

static inline void buf_freep(struct buf *b)
{
	buf_free(b);
}
#define _cleanup_buf_ __attribute__((cleanup(buf_freep)))

#endif
