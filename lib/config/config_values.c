/*
 * config_values.c — the value syntaxes of dstack configuration files:
 * durations ("5s", "2m", "never"), sizes ("4M", "0x1000"), addresses
 * ("tcp:0.0.0.0:9080", "unix:./vmm.sock", "vsock:2") and port ranges
 * ("8000-8100"). Strict: trailing junk, overflow and empty parts are errors.
 */
#include <string.h>
#include <strings.h>

#include "config/config.h"

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Decimal digits at *s (at least one), advancing *s; false on overflow. */
static bool take_u64(const char **s, uint64_t *out)
{
	uint64_t v = 0;

	if (!is_digit(**s))
		return false;
	for (; is_digit(**s); (*s)++) {
		uint64_t d = (uint64_t)(**s - '0');

		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

static bool mul_add(uint64_t *acc, uint64_t n, uint64_t mult)
{
	if (mult && n > (UINT64_MAX - 1 - *acc) / mult)
		return false;
	*acc += n * mult;
	return true;
}

struct unit {
	const char *name;
	uint64_t ms;
};

static const struct unit duration_units[] = {
    {"ms", 1},         {"msec", 1},         {"s", 1000},          {"sec", 1000},     {"secs", 1000},
    {"second", 1000},  {"seconds", 1000},   {"m", 60000},         {"min", 60000},    {"mins", 60000},
    {"minute", 60000}, {"minutes", 60000},  {"h", 3600000},       {"hr", 3600000},   {"hrs", 3600000},
    {"hour", 3600000}, {"hours", 3600000},  {"d", 86400000},      {"day", 86400000}, {"days", 86400000},
    {"w", 604800000},  {"week", 604800000}, {"weeks", 604800000},
};

int cfg_parse_duration(const char *s, uint64_t *ms, struct err *e)
{
	const char *p = s;
	uint64_t total = 0;

	if (strcmp(s, "never") == 0) {
		*ms = CFG_DURATION_NEVER;
		return 0;
	}
	if (!*s)
		return err_set(e, "empty duration");
	if (strspn(s, "0123456789") == strlen(s)) { /* bare number: seconds */
		uint64_t secs;

		if (!take_u64(&p, &secs) || !mul_add(&total, secs, 1000))
			return err_set(e, "duration '%s' is too large", s);
		*ms = total;
		return 0;
	}
	for (;;) {
		uint64_t n, mult = 0;
		size_t ulen = 0;

		while (*p == ' ')
			p++;
		if (!*p)
			break;
		if (!take_u64(&p, &n))
			return err_set(
			    e, "invalid duration '%s' (expected e.g. \"5s\", \"10m\", \"2h\", \"never\")", s);
		while ((p[ulen] >= 'a' && p[ulen] <= 'z') || (p[ulen] >= 'A' && p[ulen] <= 'Z'))
			ulen++;
		for (size_t i = 0; i < sizeof(duration_units) / sizeof(duration_units[0]); i++)
			if (strlen(duration_units[i].name) == ulen &&
			    strncasecmp(p, duration_units[i].name, ulen) == 0)
				mult = duration_units[i].ms;
		if (!mult)
			return err_set(e, "invalid duration '%s': unknown or missing unit (ms, s, m, h, d)",
				       s);
		p += ulen;
		if (!mul_add(&total, n, mult))
			return err_set(e, "duration '%s' is too large", s);
	}
	*ms = total;
	return 0;
}

int cfg_parse_size(const char *s, uint64_t *bytes, struct err *e)
{
	const char *p = s;
	uint64_t n = 0, mult = 1;

	if ((s[0] == '0') && (s[1] == 'x' || s[1] == 'X')) {
		p = s + 2;
		if (!*p)
			return err_set(e, "invalid size '%s'", s);
		for (; *p; p++) {
			int d = is_digit(*p)               ? *p - '0'
				: (*p >= 'a' && *p <= 'f') ? *p - 'a' + 10
				: (*p >= 'A' && *p <= 'F') ? *p - 'A' + 10
							   : -1;
			if (d < 0)
				return err_set(e, "invalid size '%s'", s);
			if (n >> 60)
				return err_set(e, "size '%s' is too large", s);
			n = n << 4 | (uint64_t)d;
		}
		*bytes = n;
		return 0;
	}
	if (!take_u64(&p, &n))
		return err_set(e, "invalid size '%s' (expected e.g. \"4096\", \"4K\", \"4M\", \"1G\")", s);
	while (*p == ' ')
		p++;
	switch (*p) {
	case 'k':
	case 'K':
		mult = 1ull << 10;
		break;
	case 'm':
	case 'M':
		mult = 1ull << 20;
		break;
	case 'g':
	case 'G':
		mult = 1ull << 30;
		break;
	case 't':
	case 'T':
		mult = 1ull << 40;
		break;
	}
	if (mult > 1)
		p++;
	if (mult > 1 && (*p == 'i' || *p == 'I') && (p[1] == 'b' || p[1] == 'B'))
		p++;
	if (*p == 'b' || *p == 'B')
		p++;
	if (*p)
		return err_set(e, "invalid size '%s': unknown suffix (K, M, G, T)", s);
	if (mult > 1 && n > UINT64_MAX / mult)
		return err_set(e, "size '%s' is too large", s);
	*bytes = n * mult;
	return 0;
}

static int parse_port(const char *s, size_t len, uint16_t *port, struct err *e)
{
	uint64_t v;
	const char *p = s;

	if (len == 0 || len > 5 || !take_u64(&p, &v) || (size_t)(p - s) != len || v > 65535)
		return err_set(e, "invalid port '%.*s'", (int)len, s);
	*port = (uint16_t)v;
	return 0;
}

/* host[:port] or [v6]:port or a bare IPv6 address. */
static int parse_host_port(const char *s, struct cfg_addr *a, struct err *e)
{
	const char *host = s, *port = NULL;
	size_t hlen;

	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (!close)
			return err_set(e, "invalid address '%s': missing ']'", s);
		host = s + 1;
		hlen = (size_t)(close - host);
		if (close[1] == ':')
			port = close + 2;
		else if (close[1])
			return err_set(e, "invalid address '%s'", s);
	} else {
		const char *colon = strrchr(s, ':');

		if (colon && strchr(s, ':') == colon) {
			hlen = (size_t)(colon - s);
			port = colon + 1;
		} else {
			hlen = strlen(s); /* no port, or a bare IPv6 address */
		}
	}
	if (hlen == 0)
		return err_set(e, "invalid address '%s': missing host", s);
	if (hlen >= sizeof(a->host))
		return err_set(e, "invalid address '%s': host too long", s);
	for (size_t i = 0; i < hlen; i++)
		if ((unsigned char)host[i] <= ' ' || host[i] == '/' || host[i] == '[' || host[i] == ']')
			return err_set(e, "invalid address '%s': bad character in host", s);
	memcpy(a->host, host, hlen);
	a->host[hlen] = '\0';
	if (port && parse_port(port, strlen(port), &a->port, e) < 0)
		return err_wrap(e, "invalid address '%s'", s);
	return 0;
}

int cfg_parse_addr(const char *s, struct cfg_addr *a, struct err *e)
{
	memset(a, 0, sizeof(*a));
	if (strncmp(s, "unix:", 5) == 0) {
		size_t n = strlen(s + 5);

		a->kind = CFG_ADDR_UNIX;
		if (n == 0)
			return err_set(e, "invalid address '%s': empty socket path", s);
		if (n >= sizeof(a->path))
			return err_set(e, "invalid address '%s': socket path longer than %zu bytes", s,
				       sizeof(a->path) - 1);
		memcpy(a->path, s + 5, n + 1);
		return 0;
	}
	if (strncmp(s, "vsock:", 6) == 0) {
		const char *p = s + 6;
		uint64_t cid;

		a->kind = CFG_ADDR_VSOCK;
		if (!take_u64(&p, &cid) || cid > UINT32_MAX)
			return err_set(e, "invalid address '%s': expected vsock:CID or vsock:CID:PORT", s);
		a->cid = (uint32_t)cid;
		if (*p == ':')
			return parse_port(p + 1, strlen(p + 1), &a->port, e) < 0
				   ? err_wrap(e, "invalid address '%s'", s)
				   : 0;
		if (*p)
			return err_set(e, "invalid address '%s': expected vsock:CID or vsock:CID:PORT", s);
		return 0;
	}
	a->kind = CFG_ADDR_TCP;
	if (strncmp(s, "tcp:", 4) == 0)
		s += 4;
	return parse_host_port(s, a, e);
}

int cfg_parse_ports(const char *s, struct cfg_ports *p, struct err *e)
{
	const char *dash = strchr(s, '-');

	if (!dash) {
		if (parse_port(s, strlen(s), &p->first, e) < 0)
			return -1;
		p->last = p->first;
		return 0;
	}
	if (parse_port(s, (size_t)(dash - s), &p->first, e) < 0 ||
	    parse_port(dash + 1, strlen(dash + 1), &p->last, e) < 0)
		return err_wrap(e, "invalid port range '%s'", s);
	if (p->first > p->last)
		return err_set(e, "invalid port range '%s': start is after end", s);
	return 0;
}
