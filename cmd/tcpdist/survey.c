/* Questions put to every worker: list your connections, reset these ones,
 * lend me your listening sockets. A worker changes its connections without
 * locks, so no other thread may walk them: the main thread queues the
 * question on each worker, each answers on its own thread into its own slot,
 * and the last to answer wakes the main loop, where the asker's done
 * callback runs. A worker whose loop has ended answers what is left before
 * its thread goes, so no question waits for ever. */
#include <stdlib.h>

#include "tcpdist.h"

struct survey_node {
	struct survey_node *next;
	struct survey *s;
};

struct survey *survey_new(struct proc *p, survey_ask_fn ask, survey_done_fn done, void *ctx)
{
	struct survey *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->nodes = calloc((size_t)p->nworkers, sizeof(*s->nodes));
	if (s->nodes == NULL) {
		free(s);
		return NULL;
	}
	s->p = p;
	s->ask = ask;
	s->done = done;
	s->ctx = ctx;
	atomic_init(&s->left, p->nworkers);
	return s;
}

void survey_start(struct survey *s)
{
	struct proc *p = s->p;

	pthread_mutex_lock(&p->lock);
	for (int k = 0; k < p->nworkers; k++) {
		struct survey_node **tail = &p->workers[k].surveys;

		while (*tail)
			tail = &(*tail)->next;
		s->nodes[k].s = s;
		*tail = &s->nodes[k];
	}
	pthread_mutex_unlock(&p->lock);
	for (int k = 0; k < p->nworkers; k++)
		ev_async_send(p->workers[k].loop, &p->workers[k].survey);
}

static void survey_answered(struct survey *s)
{
	struct proc *p = s->p;

	if (atomic_fetch_sub(&s->left, 1) != 1)
		return;
	pthread_mutex_lock(&p->lock);
	s->next_done = p->surveys_done;
	p->surveys_done = s;
	pthread_mutex_unlock(&p->lock);
	ev_async_send(p->loop, &p->survey_done);
}

/* On a worker: answers every question queued for it. */
void survey_answer(struct worker *w)
{
	struct survey_node *n;

	pthread_mutex_lock(&w->proc->lock);
	n = w->surveys;
	w->surveys = NULL;
	pthread_mutex_unlock(&w->proc->lock);
	while (n) {
		struct survey_node *next = n->next;
		struct survey *s = n->s;

		s->ask(w, s);
		survey_answered(s);
		n = next;
	}
}

static void survey_worker_cb(struct ev_loop *loop, ev_async *a, int revents)
{
	(void)loop;
	(void)revents;
	survey_answer(container_of(a, struct worker, survey));
}

void survey_worker_init(struct worker *w)
{
	ev_async_init(&w->survey, survey_worker_cb);
	ev_async_start(w->loop, &w->survey);
}

/* Main loop: runs the done callbacks of the surveys every worker answered.
 * done owns s from then on (survey_free). */
void survey_finish(struct proc *p)
{
	struct survey *s;

	pthread_mutex_lock(&p->lock);
	s = p->surveys_done;
	p->surveys_done = NULL;
	pthread_mutex_unlock(&p->lock);
	while (s) {
		struct survey *next = s->next_done;

		s->done(s);
		s = next;
	}
}

static void survey_done_cb(struct ev_loop *loop, ev_async *a, int revents)
{
	(void)loop;
	(void)revents;
	survey_finish(container_of(a, struct proc, survey_done));
}

void survey_proc_init(struct proc *p)
{
	ev_async_init(&p->survey_done, survey_done_cb);
	ev_async_start(p->loop, &p->survey_done);
}

void survey_free(struct survey *s)
{
	if (s) {
		free(s->nodes);
		free(s);
	}
}
