/*
 * err.c — see err.h. Messages are truncated, never overflowed.
 */
#include "core/err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

void err_vset_(struct err *e, const char *fmt, va_list ap)
{
	if (e)
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
}

void err_set_(struct err *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vset_(e, fmt, ap);
	va_end(ap);
}

void err_wrap_(struct err *e, const char *fmt, ...)
{
	char prefix[ERR_MSG_MAX], old[ERR_MSG_MAX];
	va_list ap;

	if (!e)
		return;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	if (e->msg[0] == '\0') {
		snprintf(e->msg, sizeof(e->msg), "%s", prefix);
		return;
	}
	memcpy(old, e->msg, sizeof(old));
	snprintf(e->msg, sizeof(e->msg), "%s: %s", prefix, old);
}

void err_errno_(struct err *e, const char *fmt, ...)
{
	char prefix[ERR_MSG_MAX];
	int saved = errno;
	va_list ap;

	if (!e)
		return;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	snprintf(e->msg, sizeof(e->msg), "%s: %s", prefix, strerror(saved));
	errno = saved;
}

void err_ssl_(struct err *e, const char *fmt, ...)
{
	char prefix[ERR_MSG_MAX], reason[256] = "";
	unsigned long code, last = 0;
	va_list ap;

	/* Report the first queued error: it is the root cause. */
	while ((code = ERR_get_error()) != 0)
		if (!last)
			last = code;
	if (!e)
		return;
	if (last)
		ERR_error_string_n(last, reason, sizeof(reason));
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	if (reason[0])
		snprintf(e->msg, sizeof(e->msg), "%s: %s", prefix, reason);
	else
		snprintf(e->msg, sizeof(e->msg), "%s", prefix);
}
