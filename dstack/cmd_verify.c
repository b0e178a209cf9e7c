/*
 * cmd_verify.c — `dstack verify`: verify a TDX quote or a dstack
 * VersionedAttestation file and print the JSON report of lib/ratls/report.h.
 *
 *   dstack verify [--collateral FILE | --pccs URL [--cache DIR]]
 *                 [--root-ca FILE] [--at TIME] [--event-log FILE]
 *                 [--vm-config FILE] INPUT
 *
 * INPUT is binary or hex text; a quote is recognised by its header (version
 * 3-5, ECDSA-P256 key type), anything else is decoded as an attestation.
 * --root-ca selects a development trust anchor (warned about on stderr).
 * Exit status 0 only when the report says is_valid. Option parsing only.
 */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "ratls/report.h"
#include "ratls/verify.h"
#include "tdx/collateral.h"
#include "tdx/pccs.h"

#define INPUT_MAX (2 * ATTESTATION_MAX_LEN + 16)

static void usage(FILE *f)
{
	fputs("Usage: dstack verify [--collateral FILE | --pccs URL [--cache DIR]] [--root-ca FILE]\n"
	      "                     [--at TIME] [--event-log FILE] [--vm-config FILE] INPUT\n"
	      "\nINPUT: a TDX quote or a dstack attestation, binary or hex.\n"
	      "  --collateral FILE  DCAP collateral JSON (no network)\n"
	      "  --pccs URL         PCCS to fetch collateral from (default " PCCS_DEFAULT_URL ")\n"
	      "  --cache DIR        PCCS collateral cache directory\n"
	      "  --root-ca FILE     development trust anchor instead of the Intel SGX root (insecure)\n"
	      "  --at TIME          verification time: RFC 3339 (2025-06-20T00:00:00Z) or unix seconds\n"
	      "  --event-log FILE   event log JSON for a raw quote\n"
	      "  --vm-config FILE   vm_config JSON (os_image_hash)\n"
	      "Prints a JSON report; exit status 0 only when valid.\n",
	      f);
}

static int fail(struct err *e)
{
	fprintf(stderr, "dstack verify: %s\n", err_str(e));
	return 2;
}

/* Hex text (optionally 0x, surrounding whitespace) → bytes, in place. */
static void maybe_hex(uint8_t **data, size_t *len)
{
	size_t a = 0, b = *len;
	const char *s = (const char *)*data;

	while (a < b && isspace((unsigned char)s[a]))
		a++;
	while (b > a && isspace((unsigned char)s[b - 1]))
		b--;
	if (b - a >= 2 && s[a] == '0' && (s[a + 1] == 'x' || s[a + 1] == 'X'))
		a += 2;
	if (a == b || (b - a) % 2)
		return;
	for (size_t i = a; i < b; i++)
		if (!isxdigit((unsigned char)s[i]))
			return;
	uint8_t *bin;
	size_t n;
	if (hex_decode_alloc(s + a, b - a, &bin, &n, NULL) < 0)
		return;
	free(*data);
	*data = bin;
	*len = n;
}

static bool looks_like_quote(const uint8_t *d, size_t len)
{
	return len >= 48 && d[1] == 0 && d[0] >= 3 && d[0] <= 5 && d[2] == 2 && d[3] == 0;
}

static int parse_time(const char *s, time_t *out, struct err *e)
{
	char *end;

	if (*s && strspn(s, "0123456789") == strlen(s)) {
		unsigned long long v = strtoull(s, &end, 10);
		*out = (time_t)v;
		return 0;
	}
	/* RFC 3339: accept fractional seconds and a Z or +00:00 suffix. */
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end)
		return err_set(e, "--at: '%s' is neither RFC 3339 nor unix seconds", s);
	if (*end == '.')
		end += 1 + strspn(end + 1, "0123456789");
	long off = 0;
	if (*end == 'Z' || *end == 'z') {
		end++;
	} else if ((*end == '+' || *end == '-') && isdigit((unsigned char)end[1])) {
		int hh = 0, mm = 0;
		if (sscanf(end + 1, "%2d:%2d", &hh, &mm) != 2)
			return err_set(e, "--at: bad UTC offset in '%s'", s);
		off = (hh * 3600L + mm * 60L) * (*end == '-' ? -1 : 1);
		end += 6;
	} else {
		return err_set(e, "--at: '%s' needs a time zone (Z or ±hh:mm)", s);
	}
	if (*end)
		return err_set(e, "--at: trailing text in '%s'", s);
	*out = timegm(&tm) - off;
	return 0;
}

enum { O_COLL = 1, O_PCCS, O_CACHE, O_ROOT, O_AT, O_EVLOG, O_VMC, O_HELP };

static const struct option opts[] = {
    {"collateral", required_argument, NULL, O_COLL},
    {"pccs", required_argument, NULL, O_PCCS},
    {"cache", required_argument, NULL, O_CACHE},
    {"root-ca", required_argument, NULL, O_ROOT},
    {"at", required_argument, NULL, O_AT},
    {"event-log", required_argument, NULL, O_EVLOG},
    {"vm-config", required_argument, NULL, O_VMC},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

int cmd_verify(int argc, char **argv)
{
	struct err e = ERR_INIT;
	const char *coll = NULL, *evlog = NULL, *vmc = NULL, *at = NULL;
	struct ratls_verifier_opts vo = {0};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_COLL:
			coll = optarg;
			break;
		case O_PCCS:
			vo.pccs_url = optarg;
			break;
		case O_CACHE:
			vo.cache_dir = optarg;
			break;
		case O_ROOT:
			vo.root_ca_path = optarg;
			vo.insecure_allow_external_trust_anchors = true;
			break;
		case O_AT:
			at = optarg;
			break;
		case O_EVLOG:
			evlog = optarg;
			break;
		case O_VMC:
			vmc = optarg;
			break;
		case O_HELP:
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1 || (coll && vo.pccs_url)) {
		usage(stderr);
		return 2;
	}
	time_t now = time(NULL);
	if (at && parse_time(at, &now, &e) < 0)
		return fail(&e);

	_cleanup_free_ uint8_t *collateral = NULL, *input = NULL, *evlog_text = NULL, *vmc_text = NULL;
	size_t coll_len = 0, input_len = 0, n = 0;
	if (coll) {
		if (file_read_all(coll, 1 << 20, &collateral, &coll_len, &e) < 0)
			return fail(&e);
		vo.collateral_json = (const char *)collateral;
		vo.collateral_json_len = coll_len;
	}
	if (file_read_all(argv[optind], INPUT_MAX, &input, &input_len, &e) < 0 ||
	    (evlog && file_read_all(evlog, ATTESTATION_MAX_LEN, &evlog_text, &n, &e) < 0) ||
	    (vmc && file_read_all(vmc, 1 << 20, &vmc_text, &n, &e) < 0))
		return fail(&e);
	maybe_hex(&input, &input_len);

	struct ratls_verifier *v = NULL;
	if (ratls_verifier_new(&v, &vo, &e) < 0)
		return fail(&e);
	if (ratls_verifier_is_dev(v))
		fprintf(stderr,
			"dstack verify: WARNING: trust anchor %s is not the Intel SGX root CA; "
			"a quote it accepts proves nothing about real TDX hardware\n",
			vo.root_ca_path);

	struct ratls_report_input in = {.event_log = (const char *)evlog_text,
					.vm_config = (const char *)vmc_text};
	if (looks_like_quote(input, input_len)) {
		in.quote = input;
		in.quote_len = input_len;
	} else {
		in.attestation = input;
		in.attestation_len = input_len;
	}
	bool valid = false;
	json_t *report = ratls_verify_report(v, &in, now, &valid);
	ratls_verifier_free(v);
	char *text = json_dumps(report, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(report);
	if (text)
		puts(text);
	free(text);
	return valid ? 0 : 1;
}
