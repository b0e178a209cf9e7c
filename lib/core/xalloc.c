/*
 * xalloc.c — see xalloc.h.
 */
#include "core/xalloc.h"

#include <stdlib.h>
#include <string.h>

char *xstrdup(const char *s)
{
	char *d;

	if (!s)
		return NULL;
	if (!(d = strdup(s)))
		abort();
	return d;
}

char *xstrdup_or_empty(const char *s)
{
	return xstrdup(s ? s : "");
}
