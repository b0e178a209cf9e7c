/*
 * vmm_auth_test.c — the API authentication rules of spec §2: admin token
 * header, Bearer, Basic with a token as password or as user, GET ?token=,
 * bcrypt htpasswd entries (crypt(3) $2b$/$2y$), and refusal of everything
 * else; disabled auth lets all through.
 */
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec/base64.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/tap.h"
#include "vmm/config.h"
#include "vmm/rpc/rpc.h"
#include "vmm/util.h"

static char *basic(const char *userpass)
{
	_cleanup_free_ char *b = base64_encode(userpass, strlen(userpass));

	return xasprintf("Basic %s", b);
}

int main(void)
{
	struct vmm_config c;
	char tmpl[] = "/tmp/vmm-auth-XXXXXX";
	char *dir = mkdtemp(tmpl);
	_cleanup_free_ char *ht = path_join(dir, "htpasswd"), *line = NULL;
	_cleanup_free_ char *b1 = basic("admin:s3cret"), *b2 = basic("admin:wrong"), *b3 = basic("x:tok-1");
	_cleanup_free_ char *b4 = basic("tok-1:"), *b5 = basic("tok-1:nope"), *b6 = basic("nobody:");
	struct crypt_data cd;
	const char *salt, *hash;

	vmm_config_init(&c);
	ok(vmm_auth_check(&c, NULL, NULL, NULL), "auth disabled: anonymous passes");
	c.auth.enabled = true;
	strv_push(&c.auth.tokens, "tok-1");
	memset(&cd, 0, sizeof(cd));
	salt = crypt_gensalt_rn("$2b$", 5, NULL, 0, cd.setting, sizeof(cd.setting));
	hash = salt ? crypt_r("s3cret", salt, &cd) : NULL;
	ok(hash && !strncmp(hash, "$2b$", 4), "libcrypt makes bcrypt hashes");
	line = xasprintf("other:$2y$05$abcdefghijklmnopqrstuu5s8KUnoG7Vx/ALxiYJK3QDt8MEBMNsy\nadmin:%s\n",
			 hash ? hash : "");
	file_write_atomic(ht, line, strlen(line), 0600, NULL);
	str_set(&c.auth.htpasswd_file, ht);

	ok(!vmm_auth_check(&c, NULL, NULL, NULL), "no credentials: refused");
	ok(vmm_auth_check(&c, "tok-1", NULL, NULL), "X-Admin-Token");
	ok(!vmm_auth_check(&c, "tok-2", NULL, NULL), "wrong X-Admin-Token");
	ok(!vmm_auth_check(&c, "tok-", NULL, NULL), "token prefix refused");
	ok(vmm_auth_check(&c, NULL, "Bearer tok-1", NULL), "Bearer token");
	ok(!vmm_auth_check(&c, NULL, "Bearer tok-11", NULL), "wrong Bearer token");
	ok(vmm_auth_check(&c, NULL, b1, NULL), "Basic with the htpasswd bcrypt password");
	ok(!vmm_auth_check(&c, NULL, b2, NULL), "Basic with a wrong password");
	ok(vmm_auth_check(&c, NULL, b3, NULL), "Basic with a token as the password");
	ok(vmm_auth_check(&c, NULL, b4, NULL), "Basic with a token as the user and an empty password");
	ok(!vmm_auth_check(&c, NULL, b5, NULL), "Basic token user with a non-empty wrong password");
	ok(!vmm_auth_check(&c, NULL, b6, NULL), "Basic unknown user");
	ok(!vmm_auth_check(&c, NULL, "Basic !!!notbase64", NULL), "Basic garbage");
	ok(vmm_auth_check(&c, NULL, NULL, "tok-1"), "?token=");
	ok(!vmm_auth_check(&c, NULL, NULL, "bad"), "wrong ?token=");
	unlink(ht);
	rmdir(dir);
	vmm_config_free(&c);
	return tap_done();
}
