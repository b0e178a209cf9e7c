/*
 * pck_cache.c — see pck_cache.h. A small fixed table replaced round-robin:
 * a verifier sees few platforms per collateral (one FMSPC), so a linear scan
 * of 32 digests is cheaper than anything cleverer.
 */
#include "tdx/pck_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PCK_CACHE_SLOTS 32

struct slot {
	uint8_t digest[32];
	EVP_PKEY *pub;
	struct pck_ext ext;
	enum pck_ca_type ca;
	time_t from, until;
};

struct pck_cache {
	pthread_mutex_t mu;
	struct slot slots[PCK_CACHE_SLOTS];
	unsigned next;
};

struct pck_cache *pck_cache_new(void)
{
	struct pck_cache *c = calloc(1, sizeof(*c));

	if (c)
		pthread_mutex_init(&c->mu, NULL);
	return c;
}

void pck_cache_free(struct pck_cache *c)
{
	if (!c)
		return;
	for (int i = 0; i < PCK_CACHE_SLOTS; i++)
		EVP_PKEY_free(c->slots[i].pub);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

EVP_PKEY *pck_cache_get(struct pck_cache *c, const uint8_t digest[32], time_t now, struct pck_ext *ext,
			enum pck_ca_type *ca)
{
	EVP_PKEY *k = NULL;

	if (!c)
		return NULL;
	pthread_mutex_lock(&c->mu);
	for (int i = 0; i < PCK_CACHE_SLOTS; i++) {
		struct slot *s = &c->slots[i];
		if (s->pub && memcmp(s->digest, digest, 32) == 0 && now >= s->from && now <= s->until) {
			if (EVP_PKEY_up_ref(s->pub)) {
				k = s->pub;
				*ext = s->ext;
				*ca = s->ca;
			}
			break;
		}
	}
	pthread_mutex_unlock(&c->mu);
	return k;
}

void pck_cache_put(struct pck_cache *c, const uint8_t digest[32], EVP_PKEY *pub, const struct pck_ext *ext,
		   enum pck_ca_type ca, time_t valid_from, time_t valid_until)
{
	if (!c || !EVP_PKEY_up_ref(pub))
		return;
	pthread_mutex_lock(&c->mu);
	struct slot *s = &c->slots[c->next++ % PCK_CACHE_SLOTS];
	EVP_PKEY_free(s->pub);
	memcpy(s->digest, digest, 32);
	s->pub = pub;
	s->ext = *ext;
	s->ca = ca;
	s->from = valid_from;
	s->until = valid_until;
	pthread_mutex_unlock(&c->mu);
}
