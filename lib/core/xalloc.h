/*
 * xalloc.h — string copies that cannot fail: allocation failure aborts (a
 * daemon that cannot allocate a few bytes has no sane way to go on, and
 * every caller would otherwise carry an error path that is never tested).
 */
#ifndef DSTACK_CORE_XALLOC_H
#define DSTACK_CORE_XALLOC_H

/* A copy of s; NULL stays NULL. */
char *xstrdup(const char *s);
/* A copy of s, "" for NULL (protobuf string fields must not be NULL). */
char *xstrdup_or_empty(const char *s);

#endif
