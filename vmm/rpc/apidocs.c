/*
 * apidocs.c — `GET /api-docs/openapi.json` and `GET /api-docs/docs` (spec
 * §3): an OpenAPI 3.0 document of the external server, and a readable HTML
 * page made from it. Both are generated from the Vmm method table and the
 * protobuf-c descriptors the server itself decodes with, so the documented
 * field names and types cannot drift from what the API accepts (JSON
 * mapping of §2: snake_case names, bytes as hex, u64 as numbers, proto3
 * optionals nullable). The page is self-contained: no scripts, nothing
 * fetched from elsewhere.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "prpc/json.h"
#include "vmm/rpc/guest.h"
#include "vmm/rpc/rpc.h"
#include "vmm/util.h"
#include "vmm_rpc.pb-c.h"

static const char *const guest_methods[] = {"Info", "SysInfo", "NetworkInfo", "ListContainers", "Shutdown"};

static json_t *ref(const ProtobufCMessageDescriptor *d)
{
	return json_pack("{s:s+}", "$ref", "#/components/schemas/", d->name);
}

static void add_schema(json_t *schemas, const ProtobufCMessageDescriptor *d);

static json_t *field_schema(json_t *schemas, const ProtobufCFieldDescriptor *f)
{
	json_t *s;

	switch (f->type) {
	case PROTOBUF_C_TYPE_BOOL:
		s = json_pack("{s:s}", "type", "boolean");
		break;
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		s = json_pack("{s:s,s:s}", "type", "integer", "format", "int32");
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		s = json_pack("{s:s,s:s,s:i}", "type", "integer", "format", "uint32", "minimum", 0);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		s = json_pack("{s:s,s:s}", "type", "integer", "format", "int64");
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		s = json_pack("{s:s,s:s,s:i}", "type", "integer", "format", "uint64", "minimum", 0);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_DOUBLE:
		s = json_pack("{s:s}", "type", "number");
		break;
	case PROTOBUF_C_TYPE_BYTES:
		s = json_pack("{s:s,s:s,s:s,s:s}", "type", "string", "format", "hex", "pattern",
			      "^(0x)?([0-9a-fA-F]{2})*$", "description",
			      "bytes as lowercase hex (0x accepted)");
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor *ed = f->descriptor;
		json_t *vals = json_array();

		for (unsigned i = 0; i < ed->n_values; i++)
			json_array_append_new(vals, json_string(ed->values[i].name));
		s = json_pack("{s:s,s:o}", "type", "string", "enum", vals);
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		add_schema(schemas, f->descriptor);
		s = ref(f->descriptor);
		break;
	default:
		s = json_pack("{s:s}", "type", "string");
	}
	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return json_pack("{s:s,s:o}", "type", "array", "items", s);
	if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) || f->type == PROTOBUF_C_TYPE_MESSAGE) {
		/* optional / sub-message: JSON null when unset ($ref siblings are ignored in 3.0) */
		if (json_object_get(s, "$ref")) {
			json_t *w = json_pack("{s:[o],s:b}", "allOf", s, "nullable", 1);

			return w;
		}
		json_object_set_new(s, "nullable", json_true());
	}
	return s;
}

static void add_schema(json_t *schemas, const ProtobufCMessageDescriptor *d)
{
	json_t *props, *s;

	if (json_object_get(schemas, d->name))
		return;
	props = json_object();
	s = json_pack("{s:s,s:o}", "type", "object", "properties", props);
	json_object_set_new(schemas, d->name, s); /* before recursing: message cycles */
	for (unsigned i = 0; i < d->n_fields; i++)
		json_object_set_new(props, d->fields[i].name, field_schema(schemas, &d->fields[i]));
}

static const char logs_path[] =
    "{\"get\":{\"operationId\":\"Logs\",\"tags\":[\"Logs\"],\"parameters\":["
    "{\"name\":\"id\",\"in\":\"query\",\"required\":true,\"schema\":{\"type\":\"string\"}},"
    "{\"name\":\"ch\",\"in\":\"query\",\"schema\":{\"type\":\"string\",\"enum\":[\"serial\",\"stdout\","
    "\"stderr\"]}},"
    "{\"name\":\"lines\",\"in\":\"query\",\"schema\":{\"type\":\"integer\"}},"
    "{\"name\":\"follow\",\"in\":\"query\",\"schema\":{\"type\":\"boolean\"}},"
    "{\"name\":\"ansi\",\"in\":\"query\",\"schema\":{\"type\":\"boolean\"}}],"
    "\"responses\":{\"200\":{\"description\":\"the log as text/plain (a stream with follow)\"},"
    "\"400\":{\"description\":\"Unknown channel\"},\"404\":{\"description\":\"VM not found\"}}}}";

static json_t *error_response(void)
{
	return json_pack("{s:s,s:{s:{s:{s:s,s:{s:{s:s}}}}}}", "description",
			 "decode, dispatch or handler error (protobuf requests get prpc.PrpcError)",
			 "content", "application/json", "schema", "type", "object", "properties", "error",
			 "type", "string");
}

static json_t *json_body(json_t *schema)
{
	return json_pack("{s:{s:{s:o}}}", "content", "application/json", "schema", schema);
}

static json_t *rpc_operation(json_t *schemas, const struct prpc_method *m)
{
	json_t *op = json_pack("{s:s,s:[s]}", "operationId", m->name, "tags", "Vmm");
	json_t *ok = json_pack("{s:s}", "description", "success; Empty replies are null");

	if (!prpc_desc_is_empty(m->input)) {
		add_schema(schemas, m->input);
		json_object_set_new(op, "requestBody", json_body(ref(m->input)));
	}
	if (!prpc_desc_is_empty(m->output)) {
		add_schema(schemas, m->output);
		json_object_update(ok, json_body(ref(m->output)));
	}
	json_object_set_new(op, "responses", json_pack("{s:o,s:o}", "200", ok, "400", error_response()));
	return op;
}

json_t *vmm_openapi_json(void)
{
	size_t n;
	const struct prpc_method *ms = vmm_rpc_methods(&n);
	json_t *schemas = json_object(), *paths = json_object();

	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *p = xasprintf("/prpc/%s", ms[i].name);

		json_object_set_new(paths, p, json_pack("{s:o}", "post", rpc_operation(schemas, &ms[i])));
	}
	add_schema(schemas, &vmm__id__descriptor);
	for (size_t i = 0; i < ARRAY_SIZE(guest_methods); i++) {
		_cleanup_free_ char *p = xasprintf("/guest/%s", guest_methods[i]);
		json_t *op = json_pack("{s:s+,s:[s],s:s,s:o,s:{s:{s:s,s:{s:{s:{}}}},s:o}}", "operationId",
				       "Guest", guest_methods[i], "tags", "ProxiedGuestApi", "description",
				       "Forwarded to the VM's guest agent (vsock <cid>:8000 "
				       "/api/<Method>?json); the agent's JSON "
				       "reply is returned as is.",
				       "requestBody", json_body(ref(&vmm__id__descriptor)), "responses",
				       "200", "description", "the guest agent's reply", "content",
				       "application/json", "schema", "400", error_response());

		json_object_set_new(paths, p, json_pack("{s:o}", "post", op));
	}
	json_object_set_new(paths, "/logs", json_loads(logs_path, 0, NULL));
	return json_pack("{s:s,s:{s:s,s:s,s:s},s:o,s:{s:o}}", "openapi", "3.0.3", "info", "title",
			 "dstack-vmm", "version", VMM_VERSION, "description",
			 "pRPC: POST or GET /prpc/<Method>; JSON when GET, ?json or a JSON Content-Type, "
			 "otherwise protobuf. Errors are HTTP 400.",
			 "paths", paths, "components", "schemas", schemas);
}

static void html_text(struct buf *b, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '<')
			buf_puts(b, "&lt;");
		else if (*s == '>')
			buf_puts(b, "&gt;");
		else if (*s == '&')
			buf_puts(b, "&amp;");
		else if (*s == '"')
			buf_puts(b, "&quot;");
		else
			buf_putc(b, (uint8_t)*s);
	}
}

/* A schema as a one-line type: "string", "vmm.Id", "array of uint32", "…|null". */
static void type_text(struct buf *b, const json_t *s)
{
	const char *r = json_string_value(json_object_get(s, "$ref"));
	const json_t *all = json_object_get(s, "allOf");

	if (all) {
		type_text(b, json_array_get(all, 0));
	} else if (r) {
		const char *name = strrchr(r, '/') + 1;

		buf_puts(b, "<a href=\"#");
		html_text(b, name);
		buf_puts(b, "\">");
		html_text(b, name);
		buf_puts(b, "</a>");
	} else if (!strcmp(json_string_value(json_object_get(s, "type")) ?: "", "array")) {
		buf_puts(b, "array of ");
		type_text(b, json_object_get(s, "items"));
	} else {
		const char *f = json_string_value(json_object_get(s, "format"));

		html_text(b, f ? f : json_string_value(json_object_get(s, "type")));
	}
	if (json_is_true(json_object_get(s, "nullable")))
		buf_puts(b, " | null");
}

char *vmm_api_docs_html(void)
{
	_cleanup_json_ json_t *doc = vmm_openapi_json();
	json_t *paths = json_object_get(doc, "paths"),
	       *schemas = json_object_get(json_object_get(doc, "components"), "schemas");
	struct buf b = BUF_INIT;
	const char *path, *name;
	json_t *item, *s;

	buf_puts(&b, "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>dstack-vmm API</title>\n"
		     "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
		     "code,td{font-family:monospace}table{border-collapse:collapse}"
		     "td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}</style></head><body>\n"
		     "<h1>dstack-vmm API ");
	buf_puts(&b, VMM_VERSION);
	buf_puts(&b, "</h1>\n<p>");
	html_text(&b, json_string_value(json_object_get(json_object_get(doc, "info"), "description")));
	buf_puts(&b, " Machine-readable: <a href=\"openapi.json\">openapi.json</a>.</p>\n<h2>Methods</h2>\n"
		     "<table><tr><th>Route</th><th>Input</th><th>Output</th></tr>\n");
	json_object_foreach(paths, path, item)
	{
		json_t *op = json_object_get(item, "post");
		json_t *in = json_object_get(
		    json_object_get(json_object_get(json_object_get(op, "requestBody"), "content"),
				    "application/json"),
		    "schema");
		json_t *out = json_object_get(
		    json_object_get(
			json_object_get(json_object_get(json_object_get(op, "responses"), "200"), "content"),
			"application/json"),
		    "schema");

		if (!op)
			continue;
		buf_puts(&b, "<tr><td>");
		html_text(&b, path);
		buf_puts(&b, "</td><td>");
		if (in)
			type_text(&b, in);
		else
			buf_puts(&b, "(none)");
		buf_puts(&b, "</td><td>");
		if (out && json_object_size(out))
			type_text(&b, out);
		else
			buf_puts(&b, json_object_get(item, "post") && strncmp(path, "/guest/", 7) ? "null"
												  : "JSON");
		buf_puts(&b, "</td></tr>\n");
	}
	buf_puts(&b,
		 "</table>\n<p><code>GET /logs?id=&amp;ch=serial|stdout|stderr&amp;lines=&amp;follow=&amp;"
		 "ansi=</code>: a VM's log as plain text.</p>\n<h2>Messages</h2>\n");
	json_object_foreach(schemas, name, s)
	{
		const char *field;
		json_t *fs;

		buf_puts(&b, "<h3 id=\"");
		html_text(&b, name);
		buf_puts(&b, "\">");
		html_text(&b, name);
		buf_puts(&b, "</h3>\n<table><tr><th>Field</th><th>Type</th></tr>\n");
		json_object_foreach(json_object_get(s, "properties"), field, fs)
		{
			buf_puts(&b, "<tr><td>");
			html_text(&b, field);
			buf_puts(&b, "</td><td>");
			type_text(&b, fs);
			buf_puts(&b, "</td></tr>\n");
		}
		buf_puts(&b, "</table>\n");
	}
	buf_puts(&b, "</body></html>\n");
	buf_putc(&b, 0);
	return (char *)buf_steal(&b, NULL);
}
