/*
 * tap.h — a tiny TAP producer for unit tests (test code only).
 *
 * Meson runs test executables with protocol 'tap' and counts every `ok`
 * line, so the CI summary counts assertions, not executables.
 *
 *     ok(x == 1, "x is one");
 *     is_str(got, "abc", "name");
 *     is_hex(buf, 32, "133e8c...", "GetKey(test)");
 *     return tap_done();
 */
#ifndef DSTACK_CORE_TAP_H
#define DSTACK_CORE_TAP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int tap_count, tap_failed;

__attribute__((format(printf, 4, 5))) static inline bool tap_ok(bool pass, const char *file, int line,
								const char *fmt, ...)
{
	va_list ap;

	tap_count++;
	printf("%s %d - ", pass ? "ok" : "not ok", tap_count);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!pass) {
		tap_failed++;
		printf("#   failed at %s:%d\n", file, line);
	}
	fflush(stdout);
	return pass;
}

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

#define is_int(got, want, ...)                                                                               \
	({                                                                                                   \
		long long _g = (long long)(got), _w = (long long)(want);                                     \
		bool _p = tap_ok(_g == _w, __FILE__, __LINE__, __VA_ARGS__);                                 \
		if (!_p)                                                                                     \
			printf("#   got %lld, want %lld\n", _g, _w);                                         \
		_p;                                                                                          \
	})

#define is_str(got, want, ...)                                                                               \
	({                                                                                                   \
		const char *_g = (got), *_w = (want);                                                        \
		bool _p = tap_ok(_g && _w && strcmp(_g, _w) == 0, __FILE__, __LINE__, __VA_ARGS__);          \
		if (!_p)                                                                                     \
			printf("#   got  '%s'\n#   want '%s'\n", _g ? _g : "(null)", _w ? _w : "(null)");    \
		_p;                                                                                          \
	})

static inline void tap_hex(const void *p, size_t len, char *out)
{
	static const char d[] = "0123456789abcdef";
	const uint8_t *b = p;

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = d[b[i] >> 4];
		out[2 * i + 1] = d[b[i] & 15];
	}
	out[2 * len] = '\0';
}

/* Compare bytes with an expected lowercase hex string. */
#define is_hex(data, len, want_hex, ...)                                                                     \
	({                                                                                                   \
		size_t _l = (len);                                                                           \
		char _h[2 * _l + 1];                                                                         \
		tap_hex((data), _l, _h);                                                                     \
		is_str(_h, (want_hex), __VA_ARGS__);                                                         \
	})

__attribute__((format(printf, 1, 2))) static inline void diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static inline int tap_done(void)
{
	printf("1..%d\n", tap_count);
	if (tap_failed)
		printf("# %d of %d assertions failed\n", tap_failed, tap_count);
	return tap_failed ? 1 : 0;
}

#endif
