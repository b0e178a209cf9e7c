/*
 * err.h — error values with a cause chain.
 *
 * Every fallible function returns 0 on success or -1 on failure and fills a
 * caller-provided `struct err`. Callers that add context prefix it, so the
 * message reads outermost-first, the way operators and clients expect:
 *
 *     App not allowed: Boot denied: compose hash not allowed
 *
 * This is the string the prpc layer returns as {"error": "..."}. A fixed
 * buffer keeps error paths allocation-free; `err` may be NULL everywhere.
 */
#ifndef DSTACK_CORE_ERR_H
#define DSTACK_CORE_ERR_H

#include <stdarg.h>
#include <stdbool.h>

#define ERR_MSG_MAX 1024

struct err {
	char msg[ERR_MSG_MAX];
};

#define ERR_INIT                                                                                             \
	{                                                                                                    \
		.msg = { 0 }                                                                                 \
	}

/* Set the message (replacing any previous one). Always returns -1. */
int err_set(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int err_vset(struct err *e, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Prefix context: "<fmt>: <previous message>". Always returns -1. */
int err_wrap(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Set from errno: "<fmt>: strerror(errno)". Always returns -1. */
int err_errno(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Set from the OpenSSL error queue (drains it): "<fmt>: <openssl reason>". */
int err_ssl(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline const char *err_str(const struct err *e)
{
	return e && e->msg[0] ? e->msg : "unknown error";
}

static inline void err_clear(struct err *e)
{
	if (e)
		e->msg[0] = '\0';
}

#endif
