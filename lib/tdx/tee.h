/*
 * tee.h — the guest's view of its TEE, behind one interface so the same
 * guest code runs on real TDX and on the simulated TDX (lib/simtee), chosen
 * at run time.
 *
 *   quote(report_data[64])   → a DCAP quote (v4) for this TD
 *   extend_rtmr(i, digest48) → RTMR[i] = SHA-384(RTMR[i] ‖ digest)
 *   event_log()              → the boot event log (CCEL, TCG crypto-agile)
 *
 * Real TDX backend (guest.md §4.1): configfs-tsm report directory
 * (`DCAP_TDX_QUOTE_CONFIGFS_PATH`, default
 * /sys/kernel/config/tsm/report/com.intel.dcap; provider must start with
 * "tdx_guest"), quotes serialised by flock on inblob, generation polled for
 * 5 s; RTMR extend by writing 48 bytes to `<measurements>/rtmr<i>:sha384`
 * (`DCAP_TDX_RTMR_SYSFS_PATH` names that directory, default
 * /sys/devices/virtual/misc/tdx_guest/measurements) or the TDX_CMD_EXTEND_RTMR
 * ioctl on /dev/tdx_guest; CCEL from /sys/firmware/acpi/tables/data/CCEL
 * (`DSTACK_CCEL_FILE`). When configfs-tsm is absent, quotes go through QGS
 * over vsock (CID 2, port from /etc/tdx-attest.conf, default 4050) with the
 * TDREPORT from the TDX_CMD_GET_REPORT0 ioctl.
 */
#ifndef DSTACK_TDX_TEE_H
#define DSTACK_TDX_TEE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

struct tee;

struct tee_ops {
	const char *name; /* "tdx" or "simtee" */
	int (*quote)(struct tee *t, const uint8_t report_data[64], uint8_t **quote, size_t *len,
		     struct err *e);
	int (*extend_rtmr)(struct tee *t, unsigned index, const uint8_t digest[48], struct err *e);
	int (*event_log)(struct tee *t, uint8_t **ccel, size_t *len, struct err *e);
	void (*close)(struct tee *t);
};

struct tee {
	const struct tee_ops *ops;
	void *ctx;
};

/* Paths of the real backend; NULL fields take the env / default values above. */
struct tee_tdx_paths {
	const char *configfs_report; /* .../tsm/report/<name> */
	const char *rtmr_dir;        /* .../measurements */
	const char *tdx_guest_dev;   /* /dev/tdx_guest */
	const char *ccel;            /* CCEL table */
	const char *qgs_conf;        /* /etc/tdx-attest.conf */
};

/*
 * backend: "tdx", "simtee" or "auto" (tdx when the configfs-tsm provider or
 * /dev/tdx_guest exists, else simtee). simtee needs `simtee_dir` (the PKI of
 * `dstack simtee init`) and `simtee_state` (the TD state file).
 */
struct tee_config {
	const char *backend;
	struct tee_tdx_paths tdx;
	const char *simtee_dir;
	const char *simtee_state;
};

int tee_open(struct tee **out, const struct tee_config *cfg, struct err *e);
void tee_close(struct tee *t);

static inline int tee_quote(struct tee *t, const uint8_t report_data[64], uint8_t **quote, size_t *len,
			    struct err *e)
{
	return t->ops->quote(t, report_data, quote, len, e);
}

static inline int tee_extend_rtmr(struct tee *t, unsigned index, const uint8_t digest[48], struct err *e)
{
	return t->ops->extend_rtmr(t, index, digest, e);
}

static inline int tee_event_log(struct tee *t, uint8_t **ccel, size_t *len, struct err *e)
{
	return t->ops->event_log(t, ccel, len, e);
}

/* The real backend alone (tee_open picks it for "tdx"). */
int tee_tdx_open(struct tee **out, const struct tee_tdx_paths *paths, struct err *e);

/* QGS wire format (exposed for tests): request for a TDREPORT, reply → quote. */
void tee_qgs_encode_request(const uint8_t tdreport[1024], struct buf *out);
int tee_qgs_decode_reply(const uint8_t *msg, size_t len, const uint8_t **quote, size_t *quote_len,
			 struct err *e);

#endif
