/* Just enough JSON output for the tools' --json modes. */
#ifndef TCPDIST_JSON_H
#define TCPDIST_JSON_H

#include <stdio.h>

/* Writes s as a JSON string, quotes included. */
void json_string(FILE *f, const char *s);

#endif
