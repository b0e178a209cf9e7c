/*
 * vmm_apidocs_test.c — `GET /api-docs/openapi.json` and `GET /api-docs/docs`
 * from a real `dstack-vmm serve`: every Vmm method (the table the server
 * dispatches on) and every /guest/ method is documented, every $ref
 * resolves, the schemas follow the JSON mapping (snake_case names, bytes as
 * hex, proto3 optionals nullable), and the HTML page lists them.
 *
 * usage: vmm_apidocs_test <dstack-vmm> <supervisor>
 */
#include "core/tap.h"
#include "vmm/rpc/rpc.h"
#include "vmm/workdir.h"
#include "vmm_test_util.h"

/* Count $refs in j that do not name a schema of `schemas`. */
static size_t dangling_refs(const json_t *j, const json_t *schemas)
{
	size_t bad = 0, i;
	const char *k;
	json_t *v;

	if (json_is_object(j)) {
		const char *r = json_string_value(json_object_get(j, "$ref"));

		if (r && (strncmp(r, "#/components/schemas/", 21) || !json_object_get(schemas, r + 21))) {
			diag("dangling $ref %s", r);
			bad++;
		}
		json_object_foreach((json_t *)j, k, v) bad += dangling_refs(v, schemas);
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v) bad += dangling_refs(v, schemas);
	}
	return bad;
}

/* j["a"]["b"]…, NULL-terminated keys. */
static json_t *jpath(json_t *j, ...)
{
	va_list ap;
	const char *k;

	va_start(ap, j);
	while (j && (k = va_arg(ap, const char *)))
		j = json_object_get(j, k);
	va_end(ap);
	return j;
}

int main(int argc, char **argv)
{
	char tmpl[] = "/tmp/vmm-apidocs-XXXXXX";
	struct vt t = {0};
	_cleanup_free_ char *body = NULL, *ct = NULL, *html = NULL, *hct = NULL;
	_cleanup_json_ json_t *doc = NULL;
	json_t *paths, *schemas, *vc, *props;
	size_t n;
	const struct prpc_method *ms = vmm_rpc_methods(&n);

	if (argc < 3) {
		fprintf(stderr, "usage: %s dstack-vmm supervisor\n", argv[0]);
		return 2;
	}
	unsigned port = vt_init(&t, argv[1], tmpl);
	vt_write_config(&t, port, argv[2], "",
			"[cvm]\nbackend = \"process\"\ncid_start = 36000\ncid_pool_size = 2\n");
	ok(vt_start(&t), "dstack-vmm serve is up");

	is_int(vt_get(&t, "/api-docs/openapi.json", &body, &ct), 200, "GET /api-docs/openapi.json");
	ok(ct && !strncmp(ct, "application/json", 16), "served as JSON");
	doc = json_loads(body ? body : "", 0, NULL);
	is_str(json_string_value(json_object_get(doc, "openapi")), "3.0.3", "OpenAPI 3.0.3 document");
	is_str(json_string_value(json_object_get(json_object_get(doc, "info"), "version")), "0.6.0",
	       "API version");
	paths = json_object_get(doc, "paths");
	schemas = json_object_get(json_object_get(doc, "components"), "schemas");
	{
		size_t missing = 0;

		for (size_t i = 0; i < n; i++) {
			_cleanup_free_ char *p = xasprintf("/prpc/%s", ms[i].name);

			if (!json_object_get(json_object_get(paths, p), "post")) {
				diag("missing %s", p);
				missing++;
			}
		}
		ok(n > 20 && missing == 0, "all %zu Vmm methods documented", n);
	}
	ok(json_object_get(paths, "/guest/Info") && json_object_get(paths, "/guest/Shutdown") &&
	       json_object_get(paths, "/logs"),
	   "/guest/* and /logs documented");
	is_int(dangling_refs(doc, schemas), 0, "every $ref names a schema");
	is_str(json_string_value(jpath(paths, "/prpc/CreateVm", "post", "requestBody", "content",
				       "application/json", "schema", "$ref", NULL)),
	       "#/components/schemas/vmm.VmConfiguration", "CreateVm takes vmm.VmConfiguration");
	is_str(json_string_value(jpath(paths, "/prpc/Status", "post", "responses", "200", "content",
				       "application/json", "schema", "$ref", NULL)),
	       "#/components/schemas/vmm.StatusResponse", "Status returns vmm.StatusResponse");
	vc = json_object_get(schemas, "vmm.VmConfiguration");
	props = json_object_get(vc, "properties");
	is_str(json_string_value(json_object_get(json_object_get(props, "compose_file"), "type")), "string",
	       "compose_file is a string");
	is_str(json_string_value(json_object_get(json_object_get(props, "encrypted_env"), "format")), "hex",
	       "bytes fields are hex strings");
	ok(json_is_true(json_object_get(json_object_get(props, "app_id"), "nullable")),
	   "proto3 optional app_id is nullable");
	is_str(json_string_value(json_object_get(json_object_get(props, "ports"), "type")), "array",
	       "ports is an array");
	is_str(json_string_value(
		   json_object_get(json_object_get(json_object_get(props, "ports"), "items"), "$ref")),
	       "#/components/schemas/vmm.PortMapping", "of vmm.PortMapping");
	is_str(json_string_value(json_object_get(json_object_get(props, "memory"), "format")), "uint32",
	       "memory is uint32");

	is_int(vt_get(&t, "/api-docs/docs", &html, &hct), 200, "GET /api-docs/docs");
	ok(hct && !strncmp(hct, "text/html", 9), "served as HTML");
	ok(html && strstr(html, "/prpc/CreateVm") && strstr(html, "id=\"vmm.VmConfiguration\"") &&
	       strstr(html, "compose_file") && strstr(html, "/guest/NetworkInfo"),
	   "the page lists methods, messages and fields");
	ok(html && !strstr(html, "<script"), "the page is static (no scripts)");

	vt_finish(&t);
	free(t.dir);
	free(t.api);
	return tap_done();
}
