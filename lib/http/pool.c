/*
 * pool.c — worker thread pool with completions delivered to the loop thread
 * (see pool.h). Two singly linked FIFO queues under one mutex: pending jobs
 * and finished jobs; an eventfd wakes the loop when a job finishes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "http/pool.h"

struct job {
	void (*work)(void *);
	void (*done)(void *);
	void *arg;
	struct job *next;
};

struct jobq {
	struct job *head, *tail;
};

struct http_pool {
	struct event_base *base;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct jobq pending, finished;
	pthread_t *threads;
	unsigned n_threads, max_threads;
	bool stop;
	int efd;
	struct event *ev;
};

static void q_push(struct jobq *q, struct job *j)
{
	j->next = NULL;
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
}

static struct job *q_pop(struct jobq *q)
{
	struct job *j = q->head;

	if (j) {
		q->head = j->next;
		if (!q->head)
			q->tail = NULL;
	}
	return j;
}

static void *worker_main(void *arg)
{
	struct http_pool *p = arg;
	uint64_t one = 1;

	for (;;) {
		struct job *j;

		pthread_mutex_lock(&p->lock);
		while (!p->stop && !p->pending.head)
			pthread_cond_wait(&p->cond, &p->lock);
		j = q_pop(&p->pending);
		pthread_mutex_unlock(&p->lock);
		if (!j)
			return NULL; /* stopping and nothing left */
		j->work(j->arg);
		pthread_mutex_lock(&p->lock);
		q_push(&p->finished, j);
		pthread_mutex_unlock(&p->lock);
		while (write(p->efd, &one, sizeof(one)) < 0 && errno == EINTR)
			;
	}
}

static void run_finished(struct http_pool *p)
{
	struct jobq done;

	pthread_mutex_lock(&p->lock);
	done = p->finished;
	p->finished.head = p->finished.tail = NULL;
	pthread_mutex_unlock(&p->lock);
	for (struct job *j = done.head, *next; j; j = next) {
		next = j->next;
		if (j->done)
			j->done(j->arg);
		free(j);
	}
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	run_finished(arg);
}

struct http_pool *http_pool_new(struct event_base *base, unsigned threads, struct err *e)
{
	struct http_pool *p = calloc(1, sizeof(*p));

	if (!p)
		abort();
	p->base = base;
	p->max_threads = threads ? threads : 1;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->efd < 0) {
		err_errno(e, "eventfd");
		goto fail;
	}
	p->ev = event_new(base, p->efd, EV_READ | EV_PERSIST, on_wake, p);
	if (!p->ev || event_add(p->ev, NULL) < 0) {
		err_set(e, "cannot add pool wake event");
		goto fail;
	}
	p->threads = calloc(p->max_threads, sizeof(pthread_t));
	if (!p->threads)
		abort();
	return p;
fail:
	if (p->ev)
		event_free(p->ev);
	if (p->efd >= 0)
		close(p->efd);
	free(p);
	return NULL;
}

int http_pool_submit(struct http_pool *p, void (*work)(void *), void (*done)(void *), void *arg,
		     struct err *e)
{
	struct job *j;

	if (p->stop)
		return err_set(e, "server is shutting down");
	j = calloc(1, sizeof(*j));
	if (!j)
		abort();
	j->work = work;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&p->lock);
	q_push(&p->pending, j);
	/* Grow the pool on demand up to its size. */
	if (p->n_threads < p->max_threads) {
		if (pthread_create(&p->threads[p->n_threads], NULL, worker_main, p) == 0)
			p->n_threads++;
	}
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	if (p->n_threads == 0) {
		/* Could not start any thread: undo. */
		pthread_mutex_lock(&p->lock);
		p->pending.head = p->pending.tail = NULL;
		pthread_mutex_unlock(&p->lock);
		free(j);
		return err_set(e, "cannot start worker thread");
	}
	return 0;
}

void http_pool_free(struct http_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->n_threads; i++)
		pthread_join(p->threads[i], NULL);
	run_finished(p);
	event_free(p->ev);
	close(p->efd);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p->threads);
	free(p);
}
