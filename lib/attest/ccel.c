/*
 * ccel.c — see ccel.h. A bounds-checked little-endian cursor walks the log;
 * every size field is checked against what remains before use.
 */
#include "attest/ccel.h"

#include <string.h>

#define TPM_ALG_SHA384 0x000c
#define EV_NO_ACTION 3
#define MAX_ALGS 16

struct cursor {
	const uint8_t *p;
	size_t len, pos;
};

static int take(struct cursor *c, size_t n, const uint8_t **out, struct err *e)
{
	if (c->len - c->pos < n)
		return err_set(e, "CCEL truncated at offset %zu (need %zu bytes)", c->pos, n);
	*out = c->p + c->pos;
	c->pos += n;
	return 0;
}

static int u16le(struct cursor *c, uint16_t *v, struct err *e)
{
	const uint8_t *p = NULL;

	if (take(c, 2, &p, e) < 0)
		return -1;
	*v = (uint16_t)(p[0] | p[1] << 8);
	return 0;
}

static int u32le(struct cursor *c, uint32_t *v, struct err *e)
{
	const uint8_t *p = NULL;

	if (take(c, 4, &p, e) < 0)
		return -1;
	*v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	return 0;
}

struct alg {
	uint16_t id, size;
};

static int parse_header(struct cursor *c, struct alg *algs, uint32_t *nalgs, struct err *e)
{
	static const char sig[16] = "Spec ID Event03";
	uint32_t pcr, type, size;
	const uint8_t *digest = NULL, *ev = NULL;
	struct cursor s;
	const uint8_t *skip = NULL;
	uint8_t vendor;

	if (u32le(c, &pcr, e) < 0 || u32le(c, &type, e) < 0 || take(c, 20, &digest, e) < 0 ||
	    u32le(c, &size, e) < 0 || take(c, size, &ev, e) < 0)
		return err_wrap(e, "CCEL header");
	if (type != EV_NO_ACTION || size < 16 || memcmp(ev, sig, 16) != 0)
		return err_set(e, "CCEL header is not a Spec ID Event03");
	s = (struct cursor){ev, size, 16};
	/* platformClass u32, version minor/major/errata u8, uintnSize u8 */
	if (take(&s, 8, &skip, e) < 0 || u32le(&s, nalgs, e) < 0)
		return err_wrap(e, "CCEL Spec ID event");
	if (*nalgs == 0 || *nalgs > MAX_ALGS)
		return err_set(e, "CCEL Spec ID event lists %u algorithms", *nalgs);
	for (uint32_t i = 0; i < *nalgs; i++)
		if (u16le(&s, &algs[i].id, e) < 0 || u16le(&s, &algs[i].size, e) < 0)
			return err_wrap(e, "CCEL Spec ID algorithm %u", i);
	if (take(&s, 1, &skip, e) < 0)
		return err_wrap(e, "CCEL Spec ID vendor info");
	vendor = skip[0];
	if (take(&s, vendor, &skip, e) < 0)
		return err_wrap(e, "CCEL Spec ID vendor info");
	return 0;
}

/* Parse one TCG_PCR_EVENT2 after its pcr field; appends it unless pcr is 0. */
static int parse_event(struct cursor *c, uint32_t pcr, const struct alg *algs, uint32_t nalgs, unsigned *acpi,
		       struct event_log *out, struct err *e)
{
	static const char *const acpi_names[] = {"acpi-loader", "acpi-rsdp", "acpi-tables"};
	uint32_t type = 0, count = 0, size = 0;
	const uint8_t *sha384 = NULL, *ev = NULL;
	const char *name = "";

	if (u32le(c, &type, e) < 0 || u32le(c, &count, e) < 0)
		return -1;
	if (count > nalgs)
		return err_set(e, "digest count %u exceeds the %u algorithms of the header", count, nalgs);
	for (uint32_t i = 0; i < count; i++) {
		uint16_t id = 0;
		uint32_t k;
		const uint8_t *d = NULL;

		if (u16le(c, &id, e) < 0)
			return -1;
		for (k = 0; k < nalgs && algs[k].id != id; k++)
			;
		if (k == nalgs)
			return err_set(e, "digest algorithm 0x%04x not declared in the header", id);
		if (take(c, algs[k].size, &d, e) < 0)
			return -1;
		if (id == TPM_ALG_SHA384 && algs[k].size == RTMR_LEN)
			sha384 = d;
	}
	if (u32le(c, &size, e) < 0 || take(c, size, &ev, e) < 0)
		return -1;
	if (pcr == 0)
		return 0;
	if (!sha384)
		return err_set(e, "no SHA-384 digest");
	if (pcr == 1 && type == EVENT_TYPE_ACPI_DATA && size == 9 && memcmp(ev, "ACPI DATA", 9) == 0 &&
	    *acpi < 3)
		name = acpi_names[(*acpi)++];
	return event_log_append(out, pcr - 1, type, sha384, RTMR_LEN, name, ev, size, 0, e);
}

int ccel_parse(const uint8_t *data, size_t len, struct event_log *out, struct err *e)
{
	struct cursor c = {data, len, 0};
	struct alg algs[MAX_ALGS];
	uint32_t nalgs = 0;
	unsigned acpi = 0;

	if (parse_header(&c, algs, &nalgs, e) < 0)
		return -1;
	while (c.len - c.pos >= 8) {
		size_t start = c.pos;
		uint32_t pcr = 0;

		if (u32le(&c, &pcr, e) < 0)
			return -1;
		if (pcr == 0xffffffffu)
			break;
		if (parse_event(&c, pcr, algs, nalgs, &acpi, out, e) < 0)
			return err_wrap(e, "CCEL event at offset %zu", start);
	}
	return 0;
}
