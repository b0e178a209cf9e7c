/*
 * tcbinfo.c — parse the signed TCB Info and QE Identity JSON documents into
 * structs (collateral.h). Hex fields are checked for exact length, unknown
 * fields ignored, every allocation bounded by the document size.
 */
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/hex.h"
#include "tdx/collateral.h"

static const char *const status_names[] = {
    [TCB_UP_TO_DATE] = "UpToDate",
    [TCB_SW_HARDENING_NEEDED] = "SWHardeningNeeded",
    [TCB_CONFIGURATION_NEEDED] = "ConfigurationNeeded",
    [TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED] = "ConfigurationAndSWHardeningNeeded",
    [TCB_OUT_OF_DATE] = "OutOfDate",
    [TCB_OUT_OF_DATE_CONFIGURATION_NEEDED] = "OutOfDateConfigurationNeeded",
    [TCB_REVOKED] = "Revoked",
};

const char *tcb_status_name(enum tcb_status s)
{
	return (unsigned)s < ARRAY_SIZE(status_names) ? status_names[s] : "Unknown";
}

int tcb_status_parse(const char *s, enum tcb_status *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(status_names); i++) {
		if (s && strcmp(s, status_names[i]) == 0) {
			*out = (enum tcb_status)i;
			return 0;
		}
	}
	return -1;
}

int dcap_parse_time(const char *s, time_t *out, struct err *e)
{
	struct tm tm;
	char *end;

	memset(&tm, 0, sizeof(tm));
	if (!s || !(end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)))
		return err_set(e, "bad timestamp '%s'", s ? s : "(null)");
	if (*end == '.') { /* fractional seconds */
		end++;
		while (*end >= '0' && *end <= '9')
			end++;
	}
	if (strcmp(end, "Z") != 0)
		return err_set(e, "timestamp '%s' is not UTC", s);
	*out = timegm(&tm);
	return 0;
}

static int get_str(json_t *o, const char *key, const char **out, struct err *e)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_string(v))
		return err_set(e, "missing string '%s'", key);
	*out = json_string_value(v);
	return 0;
}

static int get_int(json_t *o, const char *key, long long min, long long max, long long *out, struct err *e)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return err_set(e, "missing or out-of-range integer '%s'", key);
	*out = json_integer_value(v);
	return 0;
}

static int get_hex(json_t *o, const char *key, void *out, size_t len, struct err *e)
{
	const char *s;

	if (get_str(o, key, &s, e) < 0)
		return -1;
	if (hex_decode_exact(s, out, len, e) < 0)
		return err_wrap(e, "'%s'", key);
	return 0;
}

static int get_time(json_t *o, const char *key, time_t *out, struct err *e)
{
	const char *s;

	if (get_str(o, key, &s, e) < 0)
		return -1;
	if (dcap_parse_time(s, out, e) < 0)
		return err_wrap(e, "'%s'", key);
	return 0;
}

static void strings_clear(struct dcap_strings *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

static int parse_status(json_t *level, enum tcb_status *st, struct dcap_strings *adv, struct err *e)
{
	const char *s;

	if (get_str(level, "tcbStatus", &s, e) < 0)
		return -1;
	if (tcb_status_parse(s, st) < 0)
		return err_set(e, "unknown tcbStatus '%s'", s);
	json_t *ids = json_object_get(level, "advisoryIDs");
	if (!ids)
		return 0;
	if (!json_is_array(ids))
		return err_set(e, "advisoryIDs is not an array");
	adv->v = calloc(json_array_size(ids) + 1, sizeof(char *));
	if (!adv->v)
		return err_set(e, "out of memory");
	size_t i;
	json_t *id;
	json_array_foreach(ids, i, id)
	{
		if (!json_is_string(id))
			return err_set(e, "advisory id is not a string");
		adv->v[adv->n] = strdup(json_string_value(id));
		if (!adv->v[adv->n])
			return err_set(e, "out of memory");
		adv->n++;
	}
	return 0;
}

static int parse_isv_levels(json_t *arr, struct dcap_isv_level **out, size_t *n, struct err *e)
{
	size_t i;
	json_t *lv;

	if (!json_is_array(arr) || json_array_size(arr) == 0)
		return err_set(e, "missing tcbLevels");
	*out = calloc(json_array_size(arr), sizeof(**out));
	if (!*out)
		return err_set(e, "out of memory");
	json_array_foreach(arr, i, lv)
	{
		struct dcap_isv_level *l = &(*out)[i];
		long long svn;

		*n = i + 1;
		if (get_int(json_object_get(lv, "tcb"), "isvsvn", 0, 0xffff, &svn, e) < 0 ||
		    parse_status(lv, &l->status, &l->advisories, e) < 0)
			return err_wrap(e, "tcbLevels[%zu]", i);
		l->isvsvn = (uint16_t)svn;
	}
	return 0;
}

static int parse_components(json_t *arr, uint8_t out[16], const char *what, struct err *e)
{
	size_t i;
	json_t *c;

	if (!json_is_array(arr) || json_array_size(arr) != 16)
		return err_set(e, "%s must have 16 entries", what);
	json_array_foreach(arr, i, c)
	{
		long long svn;
		if (get_int(c, "svn", 0, 255, &svn, e) < 0)
			return err_wrap(e, "%s[%zu]", what, i);
		out[i] = (uint8_t)svn;
	}
	return 0;
}

static int parse_platform_levels(json_t *arr, bool tdx, struct dcap_tcb_info *t, struct err *e)
{
	size_t i;
	json_t *lv;

	if (!json_is_array(arr) || json_array_size(arr) == 0)
		return err_set(e, "missing tcbLevels");
	t->levels = calloc(json_array_size(arr), sizeof(*t->levels));
	if (!t->levels)
		return err_set(e, "out of memory");
	json_array_foreach(arr, i, lv)
	{
		struct dcap_platform_level *l = &t->levels[i];
		json_t *tcb = json_object_get(lv, "tcb");
		long long pcesvn;

		t->n_levels = i + 1;
		if (parse_components(json_object_get(tcb, "sgxtcbcomponents"), l->sgx_svn, "sgxtcbcomponents",
				     e) < 0 ||
		    get_int(tcb, "pcesvn", 0, 0xffff, &pcesvn, e) < 0 ||
		    (tdx && parse_components(json_object_get(tcb, "tdxtcbcomponents"), l->tdx_svn,
					     "tdxtcbcomponents", e) < 0) ||
		    parse_status(lv, &l->status, &l->advisories, e) < 0)
			return err_wrap(e, "tcbLevels[%zu]", i);
		l->pcesvn = (uint16_t)pcesvn;
	}
	return 0;
}

static int parse_modules(json_t *arr, struct dcap_tcb_info *t, struct err *e)
{
	size_t i;
	json_t *m;

	if (!arr)
		return 0;
	if (!json_is_array(arr))
		return err_set(e, "tdxModuleIdentities is not an array");
	t->modules = calloc(json_array_size(arr) + 1, sizeof(*t->modules));
	if (!t->modules)
		return err_set(e, "out of memory");
	json_array_foreach(arr, i, m)
	{
		struct dcap_module_identity *mi = &t->modules[i];
		const char *id;

		t->n_modules = i + 1;
		if (get_str(m, "id", &id, e) < 0 || strlen(id) >= sizeof(mi->id) ||
		    get_hex(m, "mrsigner", mi->mrsigner, 48, e) < 0 ||
		    get_hex(m, "attributes", mi->attributes, 8, e) < 0 ||
		    get_hex(m, "attributesMask", mi->attributes_mask, 8, e) < 0 ||
		    parse_isv_levels(json_object_get(m, "tcbLevels"), &mi->levels, &mi->n_levels, e) < 0)
			return err_wrap(e, "tdxModuleIdentities[%zu]", i);
		strcpy(mi->id, id);
	}
	return 0;
}

static int tcb_info_fill(json_t *doc, struct dcap_tcb_info *t, struct err *e)
{
	const char *id;
	long long ver;

	if (!json_is_object(doc))
		return err_set(e, "not a JSON object");
	if (get_str(doc, "id", &id, e) < 0)
		return -1;
	if (strcmp(id, "TDX") != 0 && strcmp(id, "SGX") != 0)
		return err_set(e, "unknown id '%s'", id);
	strcpy(t->id, id);
	if (get_int(doc, "version", 0, 100, &ver, e) < 0)
		return -1;
	t->version = (int)ver;
	if (t->version != 2 && t->version != 3)
		return err_set(e, "unsupported version %d", t->version);
	if (strcmp(id, "TDX") == 0 && t->version < 3)
		return err_set(e, "TDX TCB Info must be version 3");
	if (get_time(doc, "issueDate", &t->issue_date, e) < 0 ||
	    get_time(doc, "nextUpdate", &t->next_update, e) < 0 ||
	    get_hex(doc, "fmspc", t->fmspc, 6, e) < 0 || get_hex(doc, "pceId", t->pce_id, 2, e) < 0)
		return -1;
	bool tdx = strcmp(id, "TDX") == 0;
	json_t *mod = json_object_get(doc, "tdxModule");
	if (mod) {
		t->has_tdx_module = true;
		if (get_hex(mod, "mrsigner", t->module_mrsigner, 48, e) < 0 ||
		    get_hex(mod, "attributes", t->module_attributes, 8, e) < 0 ||
		    get_hex(mod, "attributesMask", t->module_attributes_mask, 8, e) < 0)
			return err_wrap(e, "tdxModule");
	}
	if (parse_modules(json_object_get(doc, "tdxModuleIdentities"), t, e) < 0)
		return -1;
	return parse_platform_levels(json_object_get(doc, "tcbLevels"), tdx, t, e);
}

int dcap_tcb_info_parse(const char *text, struct dcap_tcb_info *t, struct err *e)
{
	json_error_t je;

	memset(t, 0, sizeof(*t));
	_cleanup_json_ json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	if (!doc)
		return err_set(e, "TCB Info: invalid JSON: %s", je.text);
	if (tcb_info_fill(doc, t, e) < 0) {
		dcap_tcb_info_clear(t);
		return err_wrap(e, "TCB Info");
	}
	return 0;
}

void dcap_tcb_info_clear(struct dcap_tcb_info *t)
{
	for (size_t i = 0; i < t->n_levels; i++)
		strings_clear(&t->levels[i].advisories);
	free(t->levels);
	for (size_t i = 0; i < t->n_modules; i++) {
		for (size_t j = 0; j < t->modules[i].n_levels; j++)
			strings_clear(&t->modules[i].levels[j].advisories);
		free(t->modules[i].levels);
	}
	free(t->modules);
	memset(t, 0, sizeof(*t));
}

static int qe_identity_fill(json_t *doc, struct dcap_qe_identity *q, struct err *e)
{
	const char *id;
	long long v;

	if (!json_is_object(doc))
		return err_set(e, "not a JSON object");
	if (get_str(doc, "id", &id, e) < 0)
		return -1;
	if (strcmp(id, "TD_QE") != 0 && strcmp(id, "QE") != 0)
		return err_set(e, "unknown id '%s'", id);
	strcpy(q->id, id);
	if (get_int(doc, "version", 0, 100, &v, e) < 0)
		return -1;
	q->version = (int)v;
	if (q->version != 2 && q->version != 3)
		return err_set(e, "unsupported version %d", q->version);
	uint8_t ms[4], msm[4];
	if (get_time(doc, "issueDate", &q->issue_date, e) < 0 ||
	    get_time(doc, "nextUpdate", &q->next_update, e) < 0 || get_hex(doc, "miscselect", ms, 4, e) < 0 ||
	    get_hex(doc, "miscselectMask", msm, 4, e) < 0 ||
	    get_hex(doc, "attributes", q->attributes, 16, e) < 0 ||
	    get_hex(doc, "attributesMask", q->attributes_mask, 16, e) < 0 ||
	    get_hex(doc, "mrsigner", q->mrsigner, 32, e) < 0 ||
	    get_int(doc, "isvprodid", 0, 0xffff, &v, e) < 0)
		return -1;
	/* Hex in the JSON is big-endian text of the little-endian report field. */
	q->miscselect = (uint32_t)ms[0] << 24 | (uint32_t)ms[1] << 16 | (uint32_t)ms[2] << 8 | ms[3];
	q->miscselect_mask = (uint32_t)msm[0] << 24 | (uint32_t)msm[1] << 16 | (uint32_t)msm[2] << 8 | msm[3];
	q->isvprodid = (uint16_t)v;
	return parse_isv_levels(json_object_get(doc, "tcbLevels"), &q->levels, &q->n_levels, e);
}

int dcap_qe_identity_parse(const char *text, struct dcap_qe_identity *q, struct err *e)
{
	json_error_t je;

	memset(q, 0, sizeof(*q));
	_cleanup_json_ json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	if (!doc)
		return err_set(e, "QE Identity: invalid JSON: %s", je.text);
	if (qe_identity_fill(doc, q, e) < 0) {
		dcap_qe_identity_clear(q);
		return err_wrap(e, "QE Identity");
	}
	return 0;
}

void dcap_qe_identity_clear(struct dcap_qe_identity *q)
{
	for (size_t i = 0; i < q->n_levels; i++)
		strings_clear(&q->levels[i].advisories);
	free(q->levels);
	memset(q, 0, sizeof(*q));
}
