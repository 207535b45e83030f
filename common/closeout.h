/* Closing standard output at exit, the way sbase and gnulib do: output that
 * could not be written turns into a failure, a stream closed by the caller
 * (">&-") that was never written to does not. */
#ifndef TCPDIST_CLOSEOUT_H
#define TCPDIST_CLOSEOUT_H

/* Closes stdout: 0, or -1 with errno set when something written may be lost. */
int close_stdout(void);

#endif
