/*
 * json.h — protobuf-c messages ⇄ JSON, the way the reference serialises its
 * prost types with serde, driven only by ProtobufCMessageDescriptor so that
 * adding a message needs no code:
 *
 *   - keys are the proto (snake_case) field names; every field is emitted,
 *     in field-number order (multi-member oneofs last, only the set member);
 *   - bytes → lowercase hex without 0x (input: either case, optional 0x);
 *     repeated bytes → array of hex strings;
 *   - 64-bit integers → JSON numbers (full uint64 range on output);
 *     enums → their number (prost stores enums as i32);
 *   - proto3 `optional` (one-member oneof, see proto/protoc-c.py) and
 *     sub-messages → null when unset; maps → objects with string keys;
 *   - google.protobuf.Empty → null;
 *   - input: every field optional, null = default, unknown keys ignored.
 *
 * Output text matches serde_json's compact form (no spaces; strings escape
 * only '"', '\\' and control characters). Messages built here and passed to
 * handlers own all their memory (malloc); free with prpc_msg_free().
 */
#ifndef DSTACK_PRPC_JSON_H
#define DSTACK_PRPC_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "core/buf.h"
#include "core/err.h"

/* Maximum nesting of messages inside messages accepted on input. */
#define PRPC_MAX_DEPTH 32

/* A zero-initialised message with defaults (abort on OOM). */
ProtobufCMessage *prpc_msg_new(const ProtobufCMessageDescriptor *d);
void prpc_msg_free(ProtobufCMessage *m);

/* Every string field (recursively) is valid UTF-8, as prost requires of
 * protobuf input; the error names the field. */
int prpc_msg_check_utf8(const ProtobufCMessage *m, struct err *e);

/* True for google.protobuf.Empty (JSON null, empty protobuf body). */
bool prpc_desc_is_empty(const ProtobufCMessageDescriptor *d);

/* Append the JSON of `m` to out; NULL or an Empty message gives "null". */
void prpc_json_encode(const ProtobufCMessage *m, struct buf *out);
/* Same, but the named top-level fields are left out when empty/zero (the
 * reference's serde skip_serializing_if, e.g. GetQuoteResponse.attestation).
 * `omit_if_empty` is NULL-terminated and may be NULL. */
void prpc_json_encode_ex(const ProtobufCMessage *m, const char *const *omit_if_empty, struct buf *out);
/* Append a JSON string literal with serde_json's escaping. */
void prpc_json_put_string(struct buf *out, const char *s, size_t len);

/* Decode a JSON value (NULL or null: default message). */
ProtobufCMessage *prpc_json_decode(const ProtobufCMessageDescriptor *d, const json_t *j, struct err *e);
/* Parse JSON text and decode it; empty or all-whitespace text: default message. */
ProtobufCMessage *prpc_json_decode_text(const ProtobufCMessageDescriptor *d, const void *text, size_t len,
					struct err *e);
/*
 * Decode an urlencoded query string (serde_qs style: a=1&b[c]=x&d[0]=y&d[]=z)
 * into a message. Values are strings and are parsed into the field types.
 */
ProtobufCMessage *prpc_query_decode(const ProtobufCMessageDescriptor *d, const char *query, struct err *e);
/* The query string as a JSON tree of strings (objects/arrays as above). */
json_t *prpc_query_to_json(const char *query, struct err *e);

#endif
