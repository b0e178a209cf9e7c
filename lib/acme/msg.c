/*
 * msg.c — parsing ACME server objects (see msg.h).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "acme/msg.h"
#include "core/cleanup.h"
#include "core/xalloc.h"

#define ACME_MAX_URL 2048
#define ACME_MAX_AUTHZ 100
#define ACME_MAX_CHALLENGES 16
#define ACME_MAX_TEXT 300

static const char *const status_names[] = {
    [ACME_STATUS_UNKNOWN] = "unknown", [ACME_STATUS_PENDING] = "pending",
    [ACME_STATUS_READY] = "ready",     [ACME_STATUS_PROCESSING] = "processing",
    [ACME_STATUS_VALID] = "valid",     [ACME_STATUS_INVALID] = "invalid",
    [ACME_STATUS_EXPIRED] = "expired", [ACME_STATUS_DEACTIVATED] = "deactivated",
    [ACME_STATUS_REVOKED] = "revoked",
};

const char *acme_status_name(enum acme_status s)
{
	return (size_t)s < sizeof(status_names) / sizeof(status_names[0]) ? status_names[s] : "unknown";
}

static enum acme_status status_of(json_t *v)
{
	if (!json_is_string(v))
		return ACME_STATUS_UNKNOWN;
	for (size_t i = 1; i < sizeof(status_names) / sizeof(status_names[0]); i++)
		if (strcmp(json_string_value(v), status_names[i]) == 0)
			return (enum acme_status)i;
	return ACME_STATUS_UNKNOWN;
}

/* An http(s) URL of printable characters without spaces, of bounded size. */
static bool valid_url(json_t *v)
{
	const char *s = json_string_value(v);

	if (!s || json_string_length(v) > ACME_MAX_URL || strlen(s) != json_string_length(v) ||
	    (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0))
		return false;
	for (const char *p = s; *p; p++)
		if (!isgraph((unsigned char)*p))
			return false;
	return true;
}

/* A member that must be an http(s) URL (NULL if absent and optional). */
static int url_member(json_t *o, const char *name, bool required, char **out, struct err *e)
{
	json_t *v = json_object_get(o, name);

	*out = NULL;
	if (!v && !required)
		return 0;
	if (!json_is_string(v))
		return err_set(e, "%s is missing or not a string", name);
	if (!valid_url(v))
		return err_set(e, "%s is not an http(s) URL", name);
	*out = xstrdup(json_string_value(v));
	return 0;
}

static json_t *load_object(const char *body, const char *what, struct err *e)
{
	json_error_t je;
	json_t *root = json_loads(body ? body : "", JSON_REJECT_DUPLICATES, &je);

	if (!json_is_object(root)) {
		json_decref(root);
		err_set(e, "%s: reply is not a JSON object", what);
		return NULL;
	}
	return root;
}

/* Printable, bounded copy of server text. */
static void put_text(struct buf *b, const char *s)
{
	size_t i;

	for (i = 0; s[i] && i < ACME_MAX_TEXT; i++)
		buf_putc(b, isprint((unsigned char)s[i]) ? (uint8_t)s[i] : '?');
	if (s[i])
		buf_puts(b, "...");
}

static void format_problem(json_t *p, struct buf *out, int depth)
{
	json_t *type = json_object_get(p, "type"), *detail = json_object_get(p, "detail");
	json_t *sub = json_object_get(p, "subproblems"), *it;
	size_t i;

	if (json_is_string(type))
		put_text(out, json_string_value(type));
	else
		buf_puts(out, "error");
	if (json_is_string(detail) && json_string_length(detail)) {
		buf_puts(out, ": ");
		put_text(out, json_string_value(detail));
	}
	if (depth > 0 || !json_is_array(sub))
		return;
	json_array_foreach(sub, i, it)
	{
		json_t *id = json_object_get(json_object_get(it, "identifier"), "value");

		if (i >= 5)
			break;
		buf_puts(out, "; ");
		if (json_is_string(id)) {
			put_text(out, json_string_value(id));
			buf_puts(out, ": ");
		}
		format_problem(it, out, depth + 1);
	}
}

void acme_problem_format(const char *body, long status, struct buf *out)
{
	_cleanup_json_ json_t *root = json_loads(body ? body : "", 0, NULL);

	if (json_is_object(root) && (json_object_get(root, "type") || json_object_get(root, "detail"))) {
		format_problem(root, out, 0);
		buf_printf(out, " (HTTP %ld)", status);
		return;
	}
	buf_printf(out, "HTTP %ld", status);
}

char *acme_problem_type(const char *body)
{
	_cleanup_json_ json_t *root = json_loads(body ? body : "", 0, NULL);
	json_t *type = json_object_get(root, "type");

	return xstrdup(json_is_string(type) ? json_string_value(type) : "");
}

/* A formatted problem member ("error" of orders and challenges), or NULL. */
static char *problem_member(json_t *o)
{
	json_t *p = json_object_get(o, "error");
	_cleanup_buf_ struct buf b = BUF_INIT;

	if (!json_is_object(p))
		return NULL;
	format_problem(p, &b, 0);
	return (char *)buf_steal(&b, NULL);
}

int acme_parse_directory(const char *body, struct acme_directory *out, struct err *e)
{
	_cleanup_json_ json_t *root = load_object(body, "directory", e);
	json_t *tos;

	memset(out, 0, sizeof(*out));
	if (!root)
		return -1;
	if (url_member(root, "newNonce", true, &out->new_nonce, e) < 0 ||
	    url_member(root, "newAccount", true, &out->new_account, e) < 0 ||
	    url_member(root, "newOrder", true, &out->new_order, e) < 0) {
		acme_directory_clear(out);
		return err_wrap(e, "directory");
	}
	tos = json_object_get(json_object_get(root, "meta"), "termsOfService");
	if (json_is_string(tos) && json_string_length(tos) <= ACME_MAX_URL)
		out->terms_of_service = xstrdup(json_string_value(tos));
	return 0;
}

int acme_parse_order(const char *body, struct acme_order *out, struct err *e)
{
	_cleanup_json_ json_t *root = load_object(body, "order", e);
	json_t *authz, *it;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (!root)
		return -1;
	out->status = status_of(json_object_get(root, "status"));
	if (out->status == ACME_STATUS_UNKNOWN)
		return err_set(e, "order: missing or unknown status");
	authz = json_object_get(root, "authorizations");
	if (!json_is_array(authz) || json_array_size(authz) > ACME_MAX_AUTHZ) {
		err_set(e, "order: authorizations is not an array of at most %d URLs", ACME_MAX_AUTHZ);
		goto fail;
	}
	out->authorizations = calloc(json_array_size(authz) + 1, sizeof(char *));
	if (!out->authorizations)
		abort();
	json_array_foreach(authz, i, it)
	{
		if (!valid_url(it)) {
			err_set(e, "order: authorization %zu is not an http(s) URL", i);
			goto fail;
		}
		out->authorizations[out->n_authorizations++] = xstrdup(json_string_value(it));
	}
	if (url_member(root, "finalize", true, &out->finalize, e) < 0 ||
	    url_member(root, "certificate", false, &out->certificate, e) < 0) {
		err_wrap(e, "order");
		goto fail;
	}
	out->error = problem_member(root);
	return 0;
fail:
	acme_order_clear(out);
	return -1;
}

static bool is_base64url(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_')
			return false;
	return true;
}

static int parse_challenge(json_t *c, struct acme_challenge *out, struct err *e)
{
	json_t *type = json_object_get(c, "type"), *token = json_object_get(c, "token");

	memset(out, 0, sizeof(*out));
	if (!json_is_string(type) || json_string_length(type) == 0 || json_string_length(type) > 64)
		return err_set(e, "challenge type is missing");
	out->type = xstrdup(json_string_value(type));
	if (url_member(c, "url", true, &out->url, e) < 0)
		return -1;
	if (token) {
		if (!json_is_string(token) || json_string_length(token) > 256 ||
		    strlen(json_string_value(token)) != json_string_length(token) ||
		    !is_base64url(json_string_value(token)))
			return err_set(e, "challenge token is not base64url");
		out->token = xstrdup(json_string_value(token));
	}
	out->status = status_of(json_object_get(c, "status"));
	out->error = problem_member(c);
	return 0;
}

static void challenge_clear(struct acme_challenge *c)
{
	free(c->type);
	free(c->url);
	free(c->token);
	free(c->error);
	memset(c, 0, sizeof(*c));
}

int acme_parse_authz(const char *body, struct acme_authz *out, struct err *e)
{
	_cleanup_json_ json_t *root = load_object(body, "authorization", e);
	json_t *ident, *type, *value, *chals, *it;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (!root)
		return -1;
	out->status = status_of(json_object_get(root, "status"));
	if (out->status == ACME_STATUS_UNKNOWN)
		return err_set(e, "authorization: missing or unknown status");
	ident = json_object_get(root, "identifier");
	type = json_object_get(ident, "type");
	value = json_object_get(ident, "value");
	if (!json_is_string(type) || strcmp(json_string_value(type), "dns") != 0 || !json_is_string(value) ||
	    json_string_length(value) == 0 || json_string_length(value) > 253 ||
	    strlen(json_string_value(value)) != json_string_length(value))
		return err_set(e, "authorization: identifier is not a DNS name");
	for (const char *p = json_string_value(value); *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_' && *p != '*')
			return err_set(e, "authorization: identifier is not a DNS name");
	out->identifier = xstrdup(json_string_value(value));
	out->wildcard = json_is_true(json_object_get(root, "wildcard"));
	chals = json_object_get(root, "challenges");
	if (!json_is_array(chals) || json_array_size(chals) > ACME_MAX_CHALLENGES) {
		err_set(e, "authorization %s: challenges is not an array of at most %d", out->identifier,
			ACME_MAX_CHALLENGES);
		goto fail;
	}
	out->challenges = calloc(json_array_size(chals) + 1, sizeof(*out->challenges));
	if (!out->challenges)
		abort();
	json_array_foreach(chals, i, it)
	{
		if (parse_challenge(it, &out->challenges[i], e) < 0) {
			out->n_challenges = i + 1;
			err_wrap(e, "authorization %s: challenge %zu", out->identifier, i);
			goto fail;
		}
		out->n_challenges = i + 1;
	}
	return 0;
fail:
	acme_authz_clear(out);
	return -1;
}

void acme_directory_clear(struct acme_directory *d)
{
	free(d->new_nonce);
	free(d->new_account);
	free(d->new_order);
	free(d->terms_of_service);
	memset(d, 0, sizeof(*d));
}

void acme_order_clear(struct acme_order *o)
{
	for (size_t i = 0; i < o->n_authorizations; i++)
		free(o->authorizations[i]);
	free(o->authorizations);
	free(o->finalize);
	free(o->certificate);
	free(o->error);
	memset(o, 0, sizeof(*o));
}

void acme_authz_clear(struct acme_authz *a)
{
	for (size_t i = 0; i < a->n_challenges; i++)
		challenge_clear(&a->challenges[i]);
	free(a->challenges);
	free(a->identifier);
	memset(a, 0, sizeof(*a));
}
