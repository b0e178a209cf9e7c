/*
 * cmd_simtee.c — `dstack simtee`: the simulated TDX for machines without TDX.
 *
 *   dstack simtee init DIR [--seed-file F] [--validity-days N]
 *   dstack simtee td-create --state FILE [--mr-td HEX] [--mr-config-id HEX]
 *   dstack simtee extend --state FILE --index 2|3 --digest HEX
 *   dstack simtee quote --dir DIR --state FILE [--report-data HEX] [--out FILE]
 *   dstack simtee verify --dir DIR [--pccs URL [--cache DIR]] QUOTE_FILE
 *   dstack simtee serve --dir DIR --listen ADDR
 *
 * Option parsing only; the work is in lib/simtee and lib/tdx. The seed is
 * read from a file, never taken from argv.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "core/mem.h"
#include "simtee/pki.h"
#include "simtee/serve.h"
#include "simtee/td.h"
#include "tdx/pccs.h"
#include "tdx/verify.h"

static void usage(FILE *f)
{
	fputs("Usage:\n"
	      "  dstack simtee init DIR [--seed-file FILE] [--validity-days N]\n"
	      "  dstack simtee td-create --state FILE [--mr-td HEX48] [--mr-config-id HEX48]\n"
	      "  dstack simtee extend --state FILE --index 2|3 --digest HEX48\n"
	      "  dstack simtee quote --dir DIR --state FILE [--report-data HEX64] [--out FILE]\n"
	      "  dstack simtee verify --dir DIR [--pccs URL [--cache DIR]] QUOTE_FILE\n"
	      "  dstack simtee serve --dir DIR --listen tcp:HOST:PORT\n"
	      "\nA development stand-in for Intel TDX: quotes are real ECDSA-signed DCAP quotes\n"
	      "under a development root CA that production verifiers refuse unless configured.\n",
	      f);
}

static int fail(struct err *e)
{
	fprintf(stderr, "dstack simtee: %s\n", err_str(e));
	return 1;
}

/* Decode a hex option of exactly n bytes, right-padded with zeros if shorter. */
static int hex_opt(const char *s, uint8_t *out, size_t n, const char *what, struct err *e)
{
	_cleanup_free_ uint8_t *d = NULL;
	size_t l;

	if (hex_decode_alloc(s, strlen(s), &d, &l, e) < 0)
		return err_wrap(e, "%s", what);
	if (l > n)
		return err_set(e, "%s: %zu bytes, at most %zu", what, l, n);
	memset(out, 0, n);
	memcpy(out, d, l);
	return 0;
}

enum {
	O_DIR = 1,
	O_STATE,
	O_SEED_FILE,
	O_VALIDITY,
	O_MR_TD,
	O_MR_CONFIG,
	O_INDEX,
	O_DIGEST,
	O_RD,
	O_OUT,
	O_PCCS,
	O_CACHE,
	O_LISTEN,
	O_HELP
};

static const struct option opts[] = {
    {"dir", required_argument, NULL, O_DIR},
    {"state", required_argument, NULL, O_STATE},
    {"seed-file", required_argument, NULL, O_SEED_FILE},
    {"validity-days", required_argument, NULL, O_VALIDITY},
    {"mr-td", required_argument, NULL, O_MR_TD},
    {"mr-config-id", required_argument, NULL, O_MR_CONFIG},
    {"index", required_argument, NULL, O_INDEX},
    {"digest", required_argument, NULL, O_DIGEST},
    {"report-data", required_argument, NULL, O_RD},
    {"out", required_argument, NULL, O_OUT},
    {"pccs", required_argument, NULL, O_PCCS},
    {"cache", required_argument, NULL, O_CACHE},
    {"listen", required_argument, NULL, O_LISTEN},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

struct args {
	const char *dir, *state, *seed_file, *mr_td, *mr_config, *digest, *rd, *out, *pccs, *cache, *listen;
	int validity_days, index;
	const char *positional;
};

static int parse(int argc, char **argv, struct args *a)
{
	int c;

	memset(a, 0, sizeof(*a));
	a->index = -1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_DIR:
			a->dir = optarg;
			break;
		case O_STATE:
			a->state = optarg;
			break;
		case O_SEED_FILE:
			a->seed_file = optarg;
			break;
		case O_VALIDITY:
			a->validity_days = atoi(optarg);
			break;
		case O_MR_TD:
			a->mr_td = optarg;
			break;
		case O_MR_CONFIG:
			a->mr_config = optarg;
			break;
		case O_INDEX:
			a->index = atoi(optarg);
			break;
		case O_DIGEST:
			a->digest = optarg;
			break;
		case O_RD:
			a->rd = optarg;
			break;
		case O_OUT:
			a->out = optarg;
			break;
		case O_PCCS:
			a->pccs = optarg;
			break;
		case O_CACHE:
			a->cache = optarg;
			break;
		case O_LISTEN:
			a->listen = optarg;
			break;
		case O_HELP:
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc)
		a->positional = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "dstack simtee: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	return 0;
}

static int do_init(struct args *a)
{
	struct err e = ERR_INIT;
	struct simtee_pki_opts o = {.validity_days = a->validity_days};
	_cleanup_free_ uint8_t *seed = NULL;
	size_t seed_len = 0;

	if (!a->positional) {
		usage(stderr);
		return 2;
	}
	if (a->seed_file) {
		if (file_read_all(a->seed_file, 4096, &seed, &seed_len, &e) < 0)
			return fail(&e);
		o.seed = seed;
		o.seed_len = seed_len;
	}
	int rc = simtee_pki_init(a->positional, &o, &e);
	if (seed)
		secure_zero(seed, seed_len);
	if (rc < 0)
		return fail(&e);
	printf("simulated TDX PKI written to %s (trust anchor: %s/root_ca.pem)\n", a->positional,
	       a->positional);
	return 0;
}

static int do_td_create(struct args *a)
{
	struct err e = ERR_INIT;
	uint8_t mr_td[48], cfg[48];
	struct simtee_td_init init = {0};

	if (!a->state) {
		usage(stderr);
		return 2;
	}
	if (a->mr_td) {
		if (hex_opt(a->mr_td, mr_td, 48, "--mr-td", &e) < 0)
			return fail(&e);
		init.mr_td = mr_td;
	}
	if (a->mr_config) {
		if (hex_opt(a->mr_config, cfg, 48, "--mr-config-id", &e) < 0)
			return fail(&e);
		init.mr_config_id = cfg;
	}
	return simtee_td_create(a->state, &init, &e) < 0 ? fail(&e) : 0;
}

static int do_extend(struct args *a)
{
	struct err e = ERR_INIT;
	uint8_t d[48];

	if (!a->state || !a->digest || a->index < 0) {
		usage(stderr);
		return 2;
	}
	if (hex_decode_exact(a->digest, d, 48, &e) < 0)
		return fail(&e);
	return simtee_td_extend(a->state, (unsigned)a->index, d, &e) < 0 ? fail(&e) : 0;
}

static int do_quote(struct args *a)
{
	struct err e = ERR_INIT;
	uint8_t rd[64] = {0};
	_cleanup_free_ uint8_t *q = NULL;
	size_t len;

	if (!a->dir || !a->state) {
		usage(stderr);
		return 2;
	}
	if (a->rd && hex_opt(a->rd, rd, 64, "--report-data", &e) < 0)
		return fail(&e);
	if (simtee_td_quote(a->dir, a->state, rd, &q, &len, &e) < 0)
		return fail(&e);
	if (a->out)
		return file_write_atomic(a->out, q, len, 0644, &e) < 0 ? fail(&e) : 0;
	_cleanup_free_ char *h = hex_encode_alloc(q, len);
	printf("%s\n", h);
	return 0;
}

static int do_verify(struct args *a)
{
	struct err e = ERR_INIT;
	char root_path[4096];
	_cleanup_(X509_freep) X509 *root = NULL;
	_cleanup_free_ uint8_t *qb = NULL;
	size_t len;
	struct dcap_result r;
	struct quote q;
	time_t now = time(NULL);

	if (!a->dir || !a->positional) {
		usage(stderr);
		return 2;
	}
	snprintf(root_path, sizeof(root_path), "%s/root_ca.pem", a->dir);
	/* This command exists to check simulated quotes: the dev root is the explicit choice. */
	if (dcap_trust_anchor_select(true, root_path, &root, &e) < 0 ||
	    file_read_all(a->positional, QUOTE_MAX_LEN, &qb, &len, &e) < 0)
		return fail(&e);
	/* Accept hex text as well as binary. */
	if (len > 2 && qb[0] == '0') { /* binary quotes start with version 3..5 */
		uint8_t *bin;
		size_t bl;
		size_t tl = len;
		while (tl > 0 && (qb[tl - 1] == '\n' || qb[tl - 1] == ' '))
			tl--;
		if (hex_decode_alloc((const char *)qb, tl, &bin, &bl, NULL) == 0) {
			free(qb);
			qb = bin;
			len = bl;
		}
	}
	if (a->pccs) {
		struct pccs_client *pc;
		if (pccs_client_new(&pc, a->pccs, a->cache, root, &e) < 0)
			return fail(&e);
		int rc = pccs_verify_quote(pc, qb, len, now, &r, &q, &e);
		pccs_client_free(pc);
		if (rc < 0)
			return fail(&e);
	} else {
		struct dcap_collateral_raw raw;
		struct dcap_collateral *c = NULL;
		if (simtee_pki_collateral(a->dir, &raw, &e) < 0)
			return fail(&e);
		int rc = dcap_collateral_load(&c, &raw, root, now, &e);
		dcap_collateral_raw_free(&raw);
		if (rc < 0)
			return fail(&e);
		rc = quote_parse(&q, qb, len, &e);
		if (rc == 0 && (rc = dcap_verify(&q, c, now, &r, &e)) < 0)
			quote_free(&q);
		dcap_collateral_free(c);
		if (rc < 0)
			return fail(&e);
	}
	char fmspc[13], mrtd[97], rdh[129];
	hex_encode(r.pck.fmspc, 6, fmspc);
	hex_encode(q.td.mr_td, 48, mrtd);
	hex_encode(quote_report_data(&q), 64, rdh);
	printf("{\"status\":\"%s\",\"advisory_ids\":[", tcb_status_name(r.status));
	for (size_t i = 0; i < r.advisory_ids.n; i++)
		printf("%s\"%s\"", i ? "," : "", r.advisory_ids.v[i]);
	printf("],\"fmspc\":\"%s\",\"mr_td\":\"%s\",\"report_data\":\"%s\"}\n", fmspc, mrtd, rdh);
	quote_free(&q);
	dcap_result_free(&r);
	return 0;
}

static int do_serve(struct args *a)
{
	struct err e = ERR_INIT;

	if (!a->dir || !a->listen) {
		usage(stderr);
		return 2;
	}
	return simtee_pccs_run(a->dir, a->listen, &e) < 0 ? fail(&e) : 0;
}

int cmd_simtee(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(struct args *a);
	} subs[] = {
	    {"init", do_init},   {"td-create", do_td_create}, {"extend", do_extend},
	    {"quote", do_quote}, {"verify", do_verify},       {"serve", do_serve},
	};
	struct args a;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(subs); i++) {
		if (strcmp(argv[1], subs[i].name) == 0) {
			if (parse(argc - 1, argv + 1, &a) < 0)
				return 2;
			return subs[i].run(&a);
		}
	}
	fprintf(stderr, "dstack simtee: unknown subcommand '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
