/*
 * pool.h — worker threads for handlers that block (webhooks, disk, QEMU).
 *
 * Jobs run on a pool thread; their completion callback runs on the event
 * loop thread, woken through an eventfd, so handlers never touch libevent
 * objects from another thread and libevent needs no locking. Threads start
 * on the first submit, so programs that never block pay nothing.
 */
#ifndef DSTACK_HTTP_POOL_H
#define DSTACK_HTTP_POOL_H

#include <event2/event.h>

#include "core/err.h"

struct http_pool;

struct http_pool *http_pool_new(struct event_base *base, unsigned threads, struct err *e);
/* Lets queued jobs finish, joins the threads, runs pending `done` callbacks. */
void http_pool_free(struct http_pool *p);
int http_pool_submit(struct http_pool *p, void (*work)(void *), void (*done)(void *), void *arg,
		     struct err *e);

#endif
