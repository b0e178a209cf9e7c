/*
 * acme_json.c — libFuzzer harness for what an ACME server (or a tampered
 * credentials file) controls: directory, order and authorization objects,
 * problem documents, and the credentials JSON (lib/acme). The first byte
 * picks the parser. Checks that what a parser keeps obeys its contract:
 * http(s) URLs, base64url tokens, DNS-name identifiers, printable problems.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acme/acme.h"
#include "acme/msg.h"
#include "core/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_url(const char *u)
{
	if (!u)
		return;
	if (strncmp(u, "https://", 8) != 0 && strncmp(u, "http://", 7) != 0)
		abort();
	for (; *u; u++)
		if (!isgraph((unsigned char)*u))
			abort();
}

static void check_printable(const char *s)
{
	for (; s && *s; s++)
		if (!isprint((unsigned char)*s))
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err e = ERR_INIT;
	char *text;

	if (size < 1 || size > 65536)
		return 0;
	text = malloc(size);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	switch (data[0] % 6) {
	case 0: {
		struct acme_directory d;

		if (acme_parse_directory(text, &d, &e) == 0) {
			check_url(d.new_nonce);
			check_url(d.new_account);
			check_url(d.new_order);
			acme_directory_clear(&d);
		}
		break;
	}
	case 1: {
		struct acme_order o;

		if (acme_parse_order(text, &o, &e) == 0) {
			if (o.status == ACME_STATUS_UNKNOWN || !o.finalize)
				abort();
			for (size_t i = 0; i < o.n_authorizations; i++)
				check_url(o.authorizations[i]);
			check_url(o.finalize);
			check_url(o.certificate);
			check_printable(o.error);
			acme_order_clear(&o);
		}
		break;
	}
	case 2: {
		struct acme_authz a;

		if (acme_parse_authz(text, &a, &e) == 0) {
			for (const char *p = a.identifier; *p; p++)
				if (!isalnum((unsigned char)*p) && !strchr("-._*", *p))
					abort();
			for (size_t i = 0; i < a.n_challenges; i++) {
				check_url(a.challenges[i].url);
				check_printable(a.challenges[i].error);
				for (const char *p = a.challenges[i].token; p && *p; p++)
					if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
						abort();
			}
			acme_authz_clear(&a);
		}
		break;
	}
	case 3: {
		struct buf b = BUF_INIT;
		char *type = acme_problem_type(text);

		acme_problem_format(text, 400, &b);
		check_printable((const char *)b.data);
		buf_free(&b);
		free(type);
		break;
	}
	case 4: {
		struct acme_account a;

		if (acme_account_load(text, &a, &e) == 0) {
			char *again = acme_account_dump(&a, &e);
			struct acme_account b;

			/* What loads dumps, and the dump loads to the same account. */
			if (!again || acme_account_load(again, &b, &e) < 0)
				abort();
			if (strcmp(a.account_url, b.account_url) ||
			    strcmp(a.directory_url, b.directory_url) || EVP_PKEY_eq(a.key, b.key) != 1)
				abort();
			acme_account_clear(&b);
			free(again);
			acme_account_clear(&a);
		}
		break;
	}
	default:
		(void)acme_credentials_match(text, "https://acme.example/dir");
		break;
	}
	free(text);
	return 0;
}
