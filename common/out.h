/* One print call, two formats (iproute2's -j): commands describe records
 * field by field and the layer prints them as tab-separated rows, KEY<TAB>VALUE
 * lines or JSON, so the formats cannot drift apart. Shared by tcppool and
 * tcpdist's control socket (which prints into open_memstream). */
#ifndef TCPDIST_OUT_H
#define TCPDIST_OUT_H

#include <stdio.h>

enum out_format { OUT_ROWS, OUT_PAIRS, OUT_JSON };

struct out {
	FILE *f;
	enum out_format format;
	int array;   /* the records make a JSON array */
	int records; /* begun so far */
	int fields;  /* in the current record */
	int listed;  /* values in the current out_list */
};

/* With array, JSON output is an array of the records, else one record. */
void out_init(struct out *o, FILE *f, enum out_format format, int array);
void out_record_begin(struct out *o);
void out_str(struct out *o, const char *key, const char *value);
void out_uint(struct out *o, const char *key, unsigned long long value);
/* A field with several values: out_list_begin, out_list_str..., out_list_end. */
void out_list_begin(struct out *o, const char *key);
void out_list_str(struct out *o, const char *key, const char *value);
void out_list_end(struct out *o);
void out_record_end(struct out *o);
/* Ends the output (the closing bracket of a JSON array). */
void out_end(struct out *o);

/* true or false in JSON, yes or no in text. */
void out_bool(struct out *o, const char *key, int value);
/* A number with decimals (a time in seconds, say). */
void out_fixed(struct out *o, const char *key, double value, int decimals);

#endif
