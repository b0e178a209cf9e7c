/*
 * registry.c — see registry.h. The OCI distribution API over libcurl
 * directly (not lib/http's client) because layers are streamed to disk
 * through a sha256 as they arrive instead of being held in memory, and the
 * transfer must be abortable when the VMM shuts down.
 */
#include "vmm/registry.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "core/log.h"
#include "vmm/image.h"
#include "vmm/tarx.h"
#include "vmm/util.h"
#include "vmm/workdir.h"

#define JSON_MAX (4u << 20) /* manifests, tag lists, tokens */
#define ACCEPT_MANIFESTS                                                                                     \
	"Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "      \
	"application/vnd.docker.distribution.manifest.list.v2+json, "                                        \
	"application/vnd.docker.distribution.manifest.v2+json"

struct vmm_registry_pull {
	char *tag;
	bool pulling;
	char *error; /* last pull's failure, NULL when none */
	pthread_t thread;
	bool joinable;
	struct vmm_registry *owner;
};

/* ---- reference ------------------------------------------------------- */

static bool loopback_host(const char *host)
{
	return !strncmp(host, "localhost", 9) || !strncmp(host, "127.", 4) || !strncmp(host, "[::1]", 5);
}

int vmm_registry_ref_parse(const char *s, struct vmm_registry_ref *r, struct err *e)
{
	const char *scheme = NULL, *slash;
	_cleanup_free_ char *host = NULL, *repo = NULL;

	memset(r, 0, sizeof(*r));
	if (str_empty(s))
		return err_set(e, "Image registry is not configured");
	if (!strncmp(s, "https://", 8))
		scheme = "https", s += 8;
	else if (!strncmp(s, "http://", 7))
		scheme = "http", s += 7;
	slash = strchr(s, '/');
	if (slash && (memchr(s, '.', (size_t)(slash - s)) || memchr(s, ':', (size_t)(slash - s)) ||
		      !strncmp(s, "localhost/", 10))) {
		host = xasprintf("%.*s", (int)(slash - s), s);
		repo = xstrdup(slash + 1);
	} else if (scheme) {
		return err_set(e, "image.registry %s: a URL needs a host and a repository", s);
	} else {
		host = xstrdup("docker.io");
		repo = xstrdup(s);
	}
	if (!strcmp(host, "docker.io") || !strcmp(host, "index.docker.io")) {
		free(host);
		host = xstrdup("registry-1.docker.io");
		if (!strchr(repo, '/')) {
			char *lib = xasprintf("library/%s", repo);

			free(repo);
			repo = lib;
		}
	}
	while (*repo && repo[strlen(repo) - 1] == '/')
		repo[strlen(repo) - 1] = 0;
	if (!*repo || !str_charset_ok(repo, "._-/") || strstr(repo, "..") || strstr(repo, "//") ||
	    repo[0] == '/')
		return err_set(e, "image.registry: invalid repository name '%s'", repo);
	for (char *p = repo; *p; p++)
		if (isupper((unsigned char)*p))
			return err_set(e, "image.registry: repository names are lowercase: '%s'", repo);
	if (!scheme)
		scheme = loopback_host(host) ? "http" : "https";
	r->base = xasprintf("%s://%s", scheme, host);
	r->repo = repo;
	repo = NULL;
	return 0;
}

void vmm_registry_ref_free(struct vmm_registry_ref *r)
{
	free(r->base);
	free(r->repo);
	memset(r, 0, sizeof(*r));
}

bool vmm_registry_tag_valid(const char *tag)
{
	size_t n = tag ? strlen(tag) : 0;

	if (n == 0 || n > 64 - strlen("dstack-") || !(isalnum((unsigned char)tag[0]) || tag[0] == '_'))
		return false;
	return str_charset_ok(tag, "_.-") && !strstr(tag, "..");
}

/* ---- HTTP ------------------------------------------------------------ */

struct session {
	struct vmm_registry_ref ref;
	char *token; /* Bearer token once challenged */
	const atomic_bool *cancel;
};

struct fetch {
	const struct session *s;
	FILE *sink;      /* stream the body here, else into body */
	EVP_MD_CTX *sha; /* with sink: hash of the body */
	struct buf body;
	size_t max;
	bool too_big;
	long status;
	char *www_auth, *ctype, *link; /* headers of the final response */
};

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
	struct fetch *f = arg;
	size_t len = sz * n;

	if (f->sink) {
		if (fwrite(p, 1, len, f->sink) != len)
			return 0;
		EVP_DigestUpdate(f->sha, p, len);
		return len;
	}
	if (f->body.len + len > f->max) {
		f->too_big = true;
		return 0;
	}
	buf_append(&f->body, p, len);
	return len;
}

static void set_header(char **dst, const char *line, size_t len, const char *name)
{
	size_t nl = strlen(name);

	if (len <= nl || strncasecmp(line, name, nl))
		return;
	line += nl, len -= nl;
	while (len && (*line == ' ' || *line == '\t'))
		line++, len--;
	while (len && (line[len - 1] == '\r' || line[len - 1] == '\n' || line[len - 1] == ' '))
		len--;
	free(*dst);
	*dst = xasprintf("%.*s", (int)len, line);
}

static size_t on_header(char *p, size_t sz, size_t n, void *arg)
{
	struct fetch *f = arg;
	size_t len = sz * n;

	if (len >= 5 && !strncmp(p, "HTTP/", 5)) { /* a new response (after a redirect): forget the last */
		free(f->www_auth), free(f->ctype), free(f->link);
		f->www_auth = f->ctype = f->link = NULL;
	}
	set_header(&f->www_auth, p, len, "WWW-Authenticate:");
	set_header(&f->ctype, p, len, "Content-Type:");
	set_header(&f->link, p, len, "Link:");
	return len;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	const struct session *s = arg;

	(void)dt, (void)dn, (void)ut, (void)un;
	return s->cancel && *s->cancel ? 1 : 0;
}

static void fetch_free(struct fetch *f)
{
	buf_free(&f->body);
	free(f->www_auth), free(f->ctype), free(f->link);
}

/* One GET of url; f->status is the final HTTP status. */
static int get_once(struct session *s, const char *url, const char *accept, struct fetch *f, long timeout_ms,
		    struct err *e)
{
	struct curl_slist *h = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	_cleanup_free_ char *auth = s->token ? xasprintf("Authorization: Bearer %s", s->token) : NULL;
	CURLcode rc;
	CURL *c;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(c = curl_easy_init()))
		return err_set(e, "curl initialisation failed");
	if (accept)
		h = curl_slist_append(h, accept);
	if (auth)
		h = curl_slist_append(h, auth);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L); /* blobs redirect to storage; no auth sent there */
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, f);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, s);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	if (timeout_ms)
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	else /* layers: no overall limit, but a stalled transfer fails */
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L),
		    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "dstack-vmm/0.6.0");
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &f->status);
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	if (rc == CURLE_ABORTED_BY_CALLBACK)
		return err_set(e, "aborted: the VMM is shutting down");
	if (rc == CURLE_WRITE_ERROR && f->too_big)
		return err_set(e, "GET %s: reply larger than %zu bytes", url, f->max);
	if (rc != CURLE_OK)
		return err_set(e, "GET %s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
	return 0;
}

/* `key="value"` from a WWW-Authenticate challenge, malloc'd, or NULL. */
static char *challenge_param(const char *ch, const char *key)
{
	size_t kl = strlen(key);

	for (const char *p = ch; (p = strstr(p, key)); p += kl) {
		const char *v, *end;

		if (p != ch && p[-1] != ' ' && p[-1] != ',')
			continue;
		if (p[kl] != '=')
			continue;
		v = p + kl + 1;
		if (*v == '"') {
			end = strchr(++v, '"');
			if (!end)
				return NULL;
		} else {
			end = v + strcspn(v, ", ");
		}
		return xasprintf("%.*s", (int)(end - v), v);
	}
	return NULL;
}

static char *url_escape(const char *s)
{
	CURL *c = curl_easy_init();
	char *x = c ? curl_easy_escape(c, s, 0) : NULL;
	char *out = xstrdup(x ? x : "");

	curl_free(x);
	if (c)
		curl_easy_cleanup(c);
	return out;
}

/* Answer a Bearer challenge: GET realm?service=&scope= → {"token"|"access_token"}. */
static int fetch_token(struct session *s, const char *challenge, struct err *e)
{
	_cleanup_free_ char *realm = NULL, *service = NULL, *scope = NULL, *url = NULL, *es = NULL,
			    *esc = NULL;
	_cleanup_json_ json_t *j = NULL;
	struct fetch f = {.s = s, .max = JSON_MAX};
	const char *tok;
	char *saved = s->token;

	if (strncasecmp(challenge, "Bearer ", 7))
		return err_set(e,
			       "registry wants %s authentication; only anonymous Bearer tokens are supported",
			       challenge);
	realm = challenge_param(challenge + 7, "realm");
	service = challenge_param(challenge + 7, "service");
	scope = challenge_param(challenge + 7, "scope");
	if (!realm || (strncmp(realm, "https://", 8) && strncmp(realm, "http://", 7)))
		return err_set(e, "registry token challenge without a usable realm: %s", challenge);
	if (!scope)
		scope = xasprintf("repository:%s:pull", s->ref.repo);
	es = url_escape(service ? service : "");
	esc = url_escape(scope);
	url = xasprintf("%s%cservice=%s&scope=%s", realm, strchr(realm, '?') ? '&' : '?', es, esc);
	s->token = NULL; /* never send a token to the token service */
	if (get_once(s, url, NULL, &f, 30000, e) < 0) {
		s->token = saved;
		fetch_free(&f);
		return err_wrap(e, "registry token");
	}
	s->token = saved;
	if (f.status != 200) {
		err_set(e, "registry token: HTTP %ld from %s", f.status, realm);
		fetch_free(&f);
		return -1;
	}
	j = json_loadb((const char *)f.body.data, f.body.len, 0, NULL);
	fetch_free(&f);
	tok = json_string_value(json_object_get(j, "token"));
	if (!tok)
		tok = json_string_value(json_object_get(j, "access_token"));
	if (!tok || !*tok)
		return err_set(e, "registry token: no token in the reply");
	free(s->token);
	s->token = xstrdup(tok);
	return 0;
}

/* GET base/v2/<repo>/<path>, answering one token challenge; 200 required. */
static int get_api(struct session *s, const char *path_or_url, const char *accept, struct fetch *f,
		   long timeout_ms, struct err *e)
{
	_cleanup_free_ char *url = !strncmp(path_or_url, "http", 4)
				       ? xstrdup(path_or_url)
				       : xasprintf("%s/v2/%s/%s", s->ref.base, s->ref.repo, path_or_url);

	for (int attempt = 0;; attempt++) {
		if (get_once(s, url, accept, f, timeout_ms, e) < 0)
			return -1;
		if (f->status == 401 && attempt == 0 && f->www_auth) {
			_cleanup_free_ char *ch = xstrdup(f->www_auth);

			if (fetch_token(s, ch, e) < 0)
				return -1;
			buf_free(&f->body);
			if (f->sink &&
			    (fseek(f->sink, 0, SEEK_SET) < 0 || ftruncate(fileno(f->sink), 0) < 0 ||
			     EVP_DigestInit_ex(f->sha, EVP_sha256(), NULL) != 1))
				return err_errno(e, "rewind layer file");
			continue;
		}
		if (f->status != 200) {
			_cleanup_json_ json_t *j =
			    json_loadb((const char *)f->body.data, f->body.len, 0, NULL);
			const char *msg = json_string_value(
			    json_object_get(json_array_get(json_object_get(j, "errors"), 0), "message"));

			return err_set(e, "GET %s: HTTP %ld%s%s", url, f->status, msg ? ": " : "",
				       msg ? msg : "");
		}
		return 0;
	}
}

static json_t *get_json(struct session *s, const char *path, const char *accept, char **ctype, struct err *e)
{
	struct fetch f = {.s = s, .max = JSON_MAX};
	json_t *j;

	if (get_api(s, path, accept, &f, 60000, e) < 0) {
		fetch_free(&f);
		return NULL;
	}
	j = json_loadb((const char *)f.body.data, f.body.len, 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		fetch_free(&f);
		return err_set(e, "GET %s: reply is not a JSON object", path), NULL;
	}
	if (ctype) {
		*ctype = f.ctype;
		f.ctype = NULL;
	}
	fetch_free(&f);
	return j;
}

static int session_open(struct session *s, const char *registry, const atomic_bool *cancel, struct err *e)
{
	memset(s, 0, sizeof(*s));
	s->cancel = cancel;
	return vmm_registry_ref_parse(registry, &s->ref, e);
}

static void session_close(struct session *s)
{
	vmm_registry_ref_free(&s->ref);
	free(s->token);
}

/* ---- list ------------------------------------------------------------ */

/* `</v2/...?n=..&last=x>; rel="next"` → the URL, or NULL. */
static char *next_link(const struct session *s, const char *link)
{
	const char *lt, *gt;

	if (!link || !strstr(link, "rel=\"next\"") || !(lt = strchr(link, '<')) || !(gt = strchr(lt, '>')))
		return NULL;
	if (lt[1] == '/')
		return xasprintf("%s%.*s", s->ref.base, (int)(gt - lt - 1), lt + 1);
	return xasprintf("%.*s", (int)(gt - lt - 1), lt + 1);
}

static struct vmm_registry_pull *find_pull(struct vmm_registry *r, const char *tag)
{
	for (size_t i = 0; i < r->n_pulls; i++)
		if (!strcmp(r->pulls[i]->tag, tag))
			return r->pulls[i];
	return NULL;
}

static bool image_dir_exists(const char *image_path, const char *tag)
{
	_cleanup_free_ char *name = xasprintf("dstack-%s", tag);
	_cleanup_free_ char *dir = path_join(image_path, name);
	struct stat st;

	return stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}

static json_t *entry_json(struct vmm_registry *r, const char *tag, const struct vmm_registry_pull *p)
{
	return json_pack("{s:s,s:b,s:b,s:s}", "tag", tag, "local", image_dir_exists(r->image_path, tag),
			 "pulling", p && p->pulling, "error", p && p->error ? p->error : "");
}

json_t *vmm_registry_list(struct vmm_registry *r, struct err *e)
{
	struct session s;
	json_t *images = json_array(), *tag;
	_cleanup_json_ json_t *tags = json_array();
	_cleanup_free_ char *url = NULL;
	size_t i;

	if (session_open(&s, r->registry, &r->cancel, e) < 0) {
		json_decref(images);
		return NULL;
	}
	url = xasprintf("%s/v2/%s/tags/list?n=1000", s.ref.base, s.ref.repo);
	for (int page = 0; url && page < 100; page++) {
		struct fetch f = {.s = &s, .max = JSON_MAX};
		_cleanup_json_ json_t *j = NULL;

		if (get_api(&s, url, "Accept: application/json", &f, 60000, e) < 0) {
			fetch_free(&f);
			session_close(&s);
			json_decref(images);
			return err_wrap(e, "Failed to list registry images"), NULL;
		}
		j = json_loadb((const char *)f.body.data, f.body.len, 0, NULL);
		json_array_extend(tags, json_is_array(json_object_get(j, "tags")) ? json_object_get(j, "tags")
										  : json_array());
		free(url);
		url = next_link(&s, f.link);
		fetch_free(&f);
	}
	session_close(&s);
	pthread_mutex_lock(&r->lock);
	json_array_foreach(tags, i, tag)
	{
		const char *t = json_string_value(tag);

		if (t && strncmp(t, "sha256-", 7))
			json_array_append_new(images, entry_json(r, t, find_pull(r, t)));
	}
	/* pulls of tags the registry does not list (a typo, a deleted tag): their state still shows */
	for (i = 0; i < r->n_pulls; i++) {
		bool listed = false;
		json_t *x;
		size_t k;

		json_array_foreach(tags, k, x) listed |=
		    !strcmp(json_string_value(x) ?: "", r->pulls[i]->tag);
		if (!listed)
			json_array_append_new(images, entry_json(r, r->pulls[i]->tag, r->pulls[i]));
	}
	pthread_mutex_unlock(&r->lock);
	return json_pack("{s:o}", "images", images);
}

/* ---- pull ------------------------------------------------------------ */

static bool media_is_index(const char *mt)
{
	return mt && (!strncmp(mt, "application/vnd.oci.image.index.v1+json", 39) ||
		      !strncmp(mt, "application/vnd.docker.distribution.manifest.list.v2+json", 57));
}

static bool digest_ok(const char *d)
{
	return d && !strncmp(d, "sha256:", 7) && strlen(d) == 71 && str_charset_ok(d + 7, "") &&
	       strspn(d + 7, "0123456789abcdef") == 64;
}

/* The image manifest of tag: an index is resolved to linux/amd64 (else its first entry). */
static json_t *resolve_manifest(struct session *s, const char *tag, struct err *e)
{
	_cleanup_free_ char *ctype = NULL, *path = xasprintf("manifests/%s", tag);
	json_t *m = get_json(s, path, ACCEPT_MANIFESTS, &ctype, e), *pick = NULL, *d;
	const char *mt = json_string_value(json_object_get(m, "mediaType"));
	size_t i;

	if (!m)
		return NULL;
	if (!media_is_index(mt ? mt : ctype))
		return m;
	json_array_foreach(json_object_get(m, "manifests"), i, d)
	{
		json_t *pl = json_object_get(d, "platform");

		if (!pick)
			pick = d;
		if (!strcmp(json_string_value(json_object_get(pl, "os")) ?: "", "linux") &&
		    !strcmp(json_string_value(json_object_get(pl, "architecture")) ?: "", "amd64")) {
			pick = d;
			break;
		}
	}
	const char *digest = json_string_value(json_object_get(pick, "digest"));
	_cleanup_free_ char *mpath = digest_ok(digest) ? xasprintf("manifests/%s", digest) : NULL;

	if (!mpath) {
		json_decref(m);
		return err_set(e, "image index of %s has no usable manifest", tag), NULL;
	}
	json_t *inner = get_json(s, mpath, ACCEPT_MANIFESTS, NULL, e);

	json_decref(m);
	return inner;
}

static bool layer_type_ok(const char *mt)
{
	return !mt || !strcmp(mt, "application/vnd.oci.image.layer.v1.tar") ||
	       !strcmp(mt, "application/vnd.oci.image.layer.v1.tar+gzip") ||
	       !strcmp(mt, "application/vnd.docker.image.rootfs.diff.tar.gzip") ||
	       !strcmp(mt, "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip") ||
	       !strcmp(mt, "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip");
}

/* Download blob `digest` to file `path`, checking its sha256. */
static int fetch_blob(struct session *s, const char *digest, const char *path, struct err *e)
{
	_cleanup_free_ char *p = xasprintf("blobs/%s", digest);
	struct fetch f = {.s = s};
	unsigned char md[32];
	unsigned int mdlen = 0;
	char hex[65];
	int fd, rc = -1;

	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_errno(e, "create %s", path);
	f.sink = fdopen(fd, "w+");
	f.sha = EVP_MD_CTX_new();
	if (!f.sink || !f.sha || EVP_DigestInit_ex(f.sha, EVP_sha256(), NULL) != 1) {
		err_set(e, "cannot set up the layer download");
		goto out;
	}
	if (get_api(s, p, NULL, &f, 0, e) < 0)
		goto out;
	if (fflush(f.sink) != 0) {
		err_errno(e, "write %s", path);
		goto out;
	}
	EVP_DigestFinal_ex(f.sha, md, &mdlen);
	hex_encode(md, 32, hex);
	if (strcmp(hex, digest + 7)) {
		err_set(e, "layer %s: digest mismatch (got sha256:%s)", digest, hex);
		goto out;
	}
	rc = 0;
out:
	if (f.sink)
		fclose(f.sink);
	else if (fd >= 0)
		close(fd);
	EVP_MD_CTX_free(f.sha);
	fetch_free(&f);
	return rc;
}

int vmm_registry_pull_sync(const char *registry, const char *image_path, const char *tag,
			   const atomic_bool *cancel, struct err *e)
{
	_cleanup_free_ char *tmpname = xasprintf(".tmp-pull-%s", tag), *name = xasprintf("dstack-%s", tag);
	_cleanup_free_ char *tmp = path_join(image_path, tmpname), *final = path_join(image_path, name);
	_cleanup_free_ char *layer = xasprintf("%s.layer", tmp), *meta = NULL;
	_cleanup_json_ json_t *manifest = NULL, *md = NULL;
	struct session s;
	json_t *l;
	size_t i;
	int rc = -1;

	if (!vmm_registry_tag_valid(tag))
		return err_set(e, "invalid tag: %s", tag);
	if (session_open(&s, registry, cancel, e) < 0)
		return -1;
	/* a pull interrupted earlier (VMM stopped) left its directory: start over */
	if (mkdir_p(image_path, 0755, e) < 0 || vmm_workdir_remove(tmp, e) < 0)
		goto out;
	if (mkdir(tmp, 0755) < 0) {
		err_errno(e, "mkdir %s", tmp);
		goto out;
	}
	manifest = resolve_manifest(&s, tag, e);
	if (!manifest)
		goto out;
	if (!json_is_array(json_object_get(manifest, "layers"))) {
		err_set(e, "manifest of %s has no layers (schema 1 manifests are not supported)", tag);
		goto out;
	}
	json_array_foreach(json_object_get(manifest, "layers"), i, l)
	{
		const char *digest = json_string_value(json_object_get(l, "digest"));
		const char *mt = json_string_value(json_object_get(l, "mediaType"));
		struct tarx_stats st;

		if (!digest_ok(digest)) {
			err_set(e, "layer %zu has no sha256 digest", i);
			goto out;
		}
		if (!layer_type_ok(mt)) {
			err_set(e, "layer %s: unsupported media type %s (tar or tar+gzip only)", digest, mt);
			goto out;
		}
		if (fetch_blob(&s, digest, layer, e) < 0)
			goto out;
		if (tarx_unpack(layer, tmp, &st, e) < 0) {
			err_wrap(e, "layer %s", digest);
			goto out;
		}
		unlink(layer);
		log_info("pull %s: layer %s: %zu files, %zu directories, %zu skipped", tag, digest, st.files,
			 st.dirs, st.skipped);
	}
	meta = path_join(tmp, "metadata.json");
	md = json_load_file(meta, 0, NULL);
	if (!json_is_object(md)) {
		err_set(e, "image %s has no metadata.json at its top (not a dstack guest image)", tag);
		goto out;
	}
	if (file_exists(final)) {
		err_set(e, "image %s appeared while pulling; keeping it", name);
		goto out;
	}
	if (rename(tmp, final) < 0) {
		err_errno(e, "rename %s to %s", tmp, final);
		goto out;
	}
	log_info("pull %s: image %s is ready", tag, name);
	rc = 0;
out:
	unlink(layer);
	if (rc < 0)
		vmm_workdir_remove(tmp, NULL);
	session_close(&s);
	return rc;
}

static void *pull_thread(void *arg)
{
	struct vmm_registry_pull *p = arg;
	struct vmm_registry *r = p->owner;
	struct err e = ERR_INIT;
	int rc = vmm_registry_pull_sync(r->registry, r->image_path, p->tag, &r->cancel, &e);

	if (rc < 0)
		log_warn("pull %s: %s", p->tag, err_str(&e));
	pthread_mutex_lock(&r->lock);
	p->pulling = false;
	free(p->error);
	p->error = rc < 0 ? xstrdup(err_str(&e)) : NULL;
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

int vmm_registry_pull_start(struct vmm_registry *r, const char *tag, struct err *e)
{
	struct vmm_registry_ref ref;
	struct vmm_registry_pull *p;
	int rc = -1;

	if (vmm_registry_ref_parse(r->registry, &ref, e) < 0)
		return -1;
	vmm_registry_ref_free(&ref);
	if (!vmm_registry_tag_valid(tag))
		return err_set(e, "invalid tag: %s", tag ? tag : "");
	pthread_mutex_lock(&r->lock);
	p = find_pull(r, tag);
	if (p && p->pulling) {
		err_set(e, "%s is already being pulled", tag);
		goto out;
	}
	if (image_dir_exists(r->image_path, tag)) {
		err_set(e, "image dstack-%s already exists (delete it first to pull it again)", tag);
		goto out;
	}
	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p)
			abort();
		p->tag = xstrdup(tag);
		p->owner = r;
		r->pulls = realloc(r->pulls, (r->n_pulls + 1) * sizeof(*r->pulls));
		if (!r->pulls)
			abort();
		r->pulls[r->n_pulls++] = p;
	}
	if (p->joinable) {
		pthread_join(p->thread, NULL); /* the previous pull of this tag has finished */
		p->joinable = false;
	}
	free(p->error);
	p->error = NULL;
	p->pulling = true;
	if (pthread_create(&p->thread, NULL, pull_thread, p) != 0) {
		p->pulling = false;
		err_set(e, "cannot start the pull");
		goto out;
	}
	p->joinable = true;
	rc = 0;
out:
	pthread_mutex_unlock(&r->lock);
	return rc;
}

void vmm_registry_init(struct vmm_registry *r, const char *registry, const char *image_path)
{
	memset(r, 0, sizeof(*r));
	r->registry = xstrdup(registry ? registry : "");
	r->image_path = xstrdup(image_path);
	pthread_mutex_init(&r->lock, NULL);
}

void vmm_registry_free(struct vmm_registry *r)
{
	r->cancel = true;
	for (size_t i = 0; i < r->n_pulls; i++) {
		struct vmm_registry_pull *p = r->pulls[i];

		if (p->joinable)
			pthread_join(p->thread, NULL);
		free(p->tag);
		free(p->error);
		free(p);
	}
	free(r->pulls);
	free(r->registry);
	free(r->image_path);
	pthread_mutex_destroy(&r->lock);
}
