/*
 * cleanup.h — scope-bound resource release, systemd style.
 *
 *     _cleanup_free_ char *s = strdup(x);
 *     _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL;
 *
 * Every early return frees what the function owns. To hand ownership out,
 * use TAKE_PTR(p) / TAKE_FD(fd), which return the value and reset the
 * variable so the cleanup becomes a no-op.
 */
#ifndef DSTACK_CORE_CLEANUP_H
#define DSTACK_CORE_CLEANUP_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                                              \
	static inline void func##p(type *p)                                                                  \
	{                                                                                                    \
		if (*p)                                                                                      \
			func(*p);                                                                            \
	}

static inline void freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

DEFINE_TRIVIAL_CLEANUP_FUNC(FILE *, fclose)
#define _cleanup_fclose_ _cleanup_(fclosep)

/* jansson >= 2.9 provides json_decrefp() itself. */
#define _cleanup_json_ _cleanup_(json_decrefp)

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY_CTX *, EVP_PKEY_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MD_CTX *, EVP_MD_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_CIPHER_CTX *, EVP_CIPHER_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free_all)
DEFINE_TRIVIAL_CLEANUP_FUNC(BIGNUM *, BN_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(BN_CTX *, BN_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_REQ *, X509_REQ_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_CRL *, X509_CRL_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_STORE *, X509_STORE_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_STORE_CTX *, X509_STORE_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_EXTENSION *, X509_EXTENSION_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(ECDSA_SIG *, ECDSA_SIG_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(SSL_CTX *, SSL_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(SSL *, SSL_free)

static inline void sk_X509_pop_freep(STACK_OF(X509) * *p)
{
	if (*p)
		sk_X509_pop_free(*p, X509_free);
}

#define TAKE_PTR(p)                                                                                          \
	({                                                                                                   \
		__typeof__(p) _tp = (p);                                                                     \
		(p) = NULL;                                                                                  \
		_tp;                                                                                         \
	})

#define TAKE_FD(fd)                                                                                          \
	({                                                                                                   \
		int _tf = (fd);                                                                              \
		(fd) = -1;                                                                                   \
		_tf;                                                                                         \
	})

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
