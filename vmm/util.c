/*
 * util.c — see util.h.
 */
#include "vmm/util.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "codec/base64.h"

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p)
		abort();
	return p;
}

void str_set(char **dst, const char *src)
{
	char *n = xstrdup(src);

	free(*dst);
	*dst = n;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0)
		abort();
	return s;
}

char *path_join(const char *dir, const char *name)
{
	size_t l = strlen(dir);

	if (l && dir[l - 1] == '/')
		return xasprintf("%s%s", dir, name);
	return xasprintf("%s/%s", dir, name);
}

bool str_empty(const char *s)
{
	return !s || !*s;
}

void strv_push(struct strv *s, const char *str)
{
	s->v = xrealloc(s->v, (s->n + 2) * sizeof(char *));
	s->v[s->n++] = xstrdup(str);
	s->v[s->n] = NULL;
}

void strv_pushf(struct strv *s, const char *fmt, ...)
{
	va_list ap;
	char *str = NULL;

	va_start(ap, fmt);
	if (vasprintf(&str, fmt, ap) < 0)
		abort();
	va_end(ap);
	s->v = xrealloc(s->v, (s->n + 2) * sizeof(char *));
	s->v[s->n++] = str;
	s->v[s->n] = NULL;
}

void strv_free(struct strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

void strv_copy(struct strv *dst, const struct strv *src)
{
	struct strv tmp = {0};

	for (size_t i = 0; i < src->n; i++)
		strv_push(&tmp, src->v[i]);
	strv_free(dst);
	*dst = tmp;
}

int strv_from_json(struct strv *dst, const json_t *arr, const char *what, struct err *e)
{
	struct strv tmp = {0};
	size_t i;
	json_t *it;

	if (!json_is_array(arr))
		return err_set(e, "%s: expected an array of strings", what);
	json_array_foreach(arr, i, it)
	{
		if (!json_is_string(it)) {
			strv_free(&tmp);
			return err_set(e, "%s: expected an array of strings", what);
		}
		strv_push(&tmp, json_string_value(it));
	}
	strv_free(dst);
	*dst = tmp;
	return 0;
}

json_t *strv_to_json(const struct strv *s)
{
	json_t *a = json_array();

	for (size_t i = 0; i < s->n; i++)
		json_array_append_new(a, json_string(s->v[i]));
	return a;
}

char *strv_join(const struct strv *s, const char *sep)
{
	size_t len = 1, sl = strlen(sep);
	char *out, *p;

	for (size_t i = 0; i < s->n; i++)
		len += strlen(s->v[i]) + sl;
	out = p = xrealloc(NULL, len);
	*p = '\0';
	for (size_t i = 0; i < s->n; i++) {
		if (i) {
			memcpy(p, sep, sl);
			p += sl;
		}
		size_t l = strlen(s->v[i]);
		memcpy(p, s->v[i], l);
		p += l;
	}
	*p = '\0';
	return out;
}

void sha256_buf(const void *data, size_t len, uint8_t out[32])
{
	SHA256(data, len, out);
}

char *base64_encode_alloc(const void *data, size_t len)
{
	char *out = base64_encode(data, len);

	if (!out)
		abort();
	return out;
}

bool str_charset_ok(const char *s, const char *extra)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x80 && isalnum(c))
			continue;
		if (c && strchr(extra, c))
			continue;
		return false;
	}
	return true;
}

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

const char *json_str(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

int vmm_run(const struct strv *argv, struct err *e)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return err_errno(e, "fork");
	if (pid == 0) {
		dup2(2, 1); /* tool chatter belongs in the log, never on our stdout */
		execvp(argv->v[0], argv->v);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return err_errno(e, "waitpid");
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		return err_set(e, "%s failed (status %d)", argv->v[0], st);
	return 0;
}
