/* Starting a thread that leaves signals to the main thread's loop: the new
 * thread has every signal blocked, so a SIGTERM or SIGHUP is never handled
 * on a thread that cannot act on it. */
#ifndef TCPDIST_THREAD_H
#define TCPDIST_THREAD_H

#include <pthread.h>

/* pthread_create(t, NULL, fn, arg) with all signals blocked in the new
 * thread; the caller's mask is unchanged. 0, or pthread_create's error. */
int thread_start(pthread_t *t, void *(*fn)(void *), void *arg);

#endif
