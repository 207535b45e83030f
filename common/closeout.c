#include <errno.h>
#include <stdio.h>
#include <stdio_ext.h>

#include "closeout.h"

int close_stdout(void)
{
	int pending = __fpending(stdout) != 0;
	int failed_before = ferror(stdout);

	if (fclose(stdout) != 0) {
		/* EBADF with nothing to write: the caller closed it, and we
		 * had nothing to say. */
		if (failed_before || pending || errno != EBADF)
			return -1;
		return 0;
	}
	if (failed_before) {
		errno = EIO;
		return -1;
	}
	return 0;
}
