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

/*
 * The setters below are macros whose value is the constant -1, so that
 * `return err_set(e, ...)` is visibly -1 to the optimizer at every call site
 * (it can then prove out-parameters are set on the success path).
 */
void err_set_(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void err_vset_(struct err *e, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
void err_wrap_(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void err_errno_(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void err_ssl_(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Set the message (replacing any previous one). Evaluates to -1. */
#define err_set(e, ...)                                                                                      \
	({                                                                                                   \
		err_set_((e), __VA_ARGS__);                                                                  \
		-1;                                                                                          \
	})
#define err_vset(e, fmt, ap)                                                                                 \
	({                                                                                                   \
		err_vset_((e), (fmt), (ap));                                                                 \
		-1;                                                                                          \
	})
/* Prefix context: "<fmt>: <previous message>". Evaluates to -1. */
#define err_wrap(e, ...)                                                                                     \
	({                                                                                                   \
		err_wrap_((e), __VA_ARGS__);                                                                 \
		-1;                                                                                          \
	})
/* Set from errno: "<fmt>: strerror(errno)". Evaluates to -1. */
#define err_errno(e, ...)                                                                                    \
	({                                                                                                   \
		err_errno_((e), __VA_ARGS__);                                                                \
		-1;                                                                                          \
	})
/* Set from the OpenSSL error queue (drains it): "<fmt>: <reason>". Evaluates to -1. */
#define err_ssl(e, ...)                                                                                      \
	({                                                                                                   \
		err_ssl_((e), __VA_ARGS__);                                                                  \
		-1;                                                                                          \
	})

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
