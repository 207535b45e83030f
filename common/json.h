/* Just enough JSON output for the tools' --json modes. */
#ifndef TCPDIST_JSON_H
#define TCPDIST_JSON_H

#include <stdio.h>

/* Writes s as a JSON string, quotes included; bytes that are not valid
 * UTF-8 become U+FFFD, so the document stays valid whatever s holds. */
void json_string(FILE *f, const char *s);

#endif
