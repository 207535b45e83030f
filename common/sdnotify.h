/* systemd's readiness protocol (sd_notify(3)) without libsystemd: one
 * datagram of NAME=VALUE lines to the Unix socket named by $NOTIFY_SOCKET
 * ("@" for the abstract namespace). Without the variable, nothing is sent. */
#ifndef TCPDIST_SDNOTIFY_H
#define TCPDIST_SDNOTIFY_H

/* 0 when sent or when there is no NOTIFY_SOCKET; -1 with errno on failure. */
int sd_notify_send(const char *state);

/* Whether $NOTIFY_SOCKET is set: a service manager listens. */
int sd_notify_wanted(void);

#endif
