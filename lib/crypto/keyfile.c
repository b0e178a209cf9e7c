/*
 * keyfile.c — see keyfile.h. Every buffer that held key material is wiped
 * before it is freed; the PEM path goes through OpenSSL's decoder and then
 * kdf.c's scalar extraction so any P-256 key encoding OpenSSL reads works.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "core/mem.h"
#include "crypto/kdf.h"
#include "crypto/keyfile.h"

#define KEY_FILE_MAX (64 * 1024)

int key32_parse_hex(const char *text, size_t len, uint8_t out[32], struct err *e)
{
	char digits[65];
	int rc;

	while (len && text[0] && strchr(" \t\r\n", text[0])) {
		text++;
		len--;
	}
	while (len && text[len - 1] && strchr(" \t\r\n", text[len - 1]))
		len--;
	if (len >= 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
		text += 2;
		len -= 2;
	}
	if (len != 64)
		return err_set(e, "expected 32 bytes as 64 hex digits, got %zu characters", len);
	for (size_t i = 0; i < len; i++)
		if (!strchr("0123456789abcdefABCDEF", text[i]) || !text[i])
			return err_set(e, "key is not valid hex");
	memcpy(digits, text, 64);
	digits[64] = 0;
	rc = hex_decode_exact(digits, out, 32, e);
	secure_zero(digits, sizeof(digits));
	return rc;
}

static int key32_from_pem(const uint8_t *data, size_t len, uint8_t out[32], struct err *e)
{
	_cleanup_(BIO_free_allp) BIO *bio = BIO_new_mem_buf(data, (int)len);
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;

	if (!bio || !(pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)))
		return err_ssl(e, "cannot parse PEM private key");
	return p256_pkey_scalar(pkey, out, e);
}

int key32_load_file(const char *path, uint8_t out[32], struct err *e)
{
	uint8_t *data = NULL;
	size_t len = 0;
	int rc;

	if (input_read(path, KEY_FILE_MAX, &data, &len, e) < 0)
		return err_wrap(e, "key file %s", path);
	if (len == 32)
		rc = (memcpy(out, data, 32), 0);
	else if (len > 10 && memmem(data, len, "-----BEGIN", 10))
		rc = key32_from_pem(data, len, out, e);
	else
		rc = key32_parse_hex((const char *)data, len, out, e);
	secure_zero(data, len);
	free(data);
	if (rc < 0)
		return err_wrap(e, "key file %s", path);
	return 0;
}

int input_read(const char *path, size_t max_len, uint8_t **out, size_t *out_len, struct err *e)
{
	size_t cap = 4096, len = 0;
	uint8_t *data;

	if (strcmp(path, "-") != 0)
		return file_read_all(path, max_len, out, out_len, e);
	if (!(data = malloc(cap + 1)))
		abort();
	for (;;) {
		if (len == cap) {
			if (cap >= max_len + 1)
				break;
			cap = cap * 2 > max_len + 1 ? max_len + 1 : cap * 2;
			uint8_t *grown = malloc(cap + 1);
			if (!grown)
				abort();
			memcpy(grown, data, len);
			secure_zero(data, len);
			free(data);
			data = grown;
		}
		ssize_t n = read(STDIN_FILENO, data + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			secure_zero(data, len);
			free(data);
			return err_errno(e, "reading stdin");
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max_len) {
		secure_zero(data, len);
		free(data);
		return err_set(e, "stdin: input larger than %zu bytes", max_len);
	}
	data[len] = 0;
	*out = data;
	*out_len = len;
	return 0;
}
