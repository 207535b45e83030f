/* The output layer (out.h). Text values have their control bytes written as
 * \xNN, so a value can never split a row or a line. */
#include "escape.h"
#include "json.h"
#include "out.h"

/* value with control bytes as \xNN: a tab or newline cannot split a row. */
static void text_put(FILE *f, const char *value)
{
	char buf[256];
	const char *rest = value;

	while (*rest) {
		escape_controls(buf, sizeof(buf), rest, &rest);
		fputs(buf, f);
	}
}

void out_init(struct out *o, FILE *f, enum out_format format, int array)
{
	o->f = f;
	o->format = format;
	o->array = array;
	o->records = 0;
	o->fields = 0;
	o->listed = 0;
	if (format == OUT_JSON && array)
		fputs("[\n", f);
}

void out_record_begin(struct out *o)
{
	if (o->format == OUT_JSON)
		fputs(o->records ? ",\n{" : "{", o->f);
	o->records++;
	o->fields = 0;
}

static void field_begin(struct out *o, const char *key)
{
	switch (o->format) {
	case OUT_ROWS:
		if (o->fields)
			putc('\t', o->f);
		break;
	case OUT_PAIRS:
		fprintf(o->f, "%s\t", key);
		break;
	case OUT_JSON:
		if (o->fields)
			fputs(", ", o->f);
		json_string(o->f, key);
		fputs(": ", o->f);
		break;
	}
	o->fields++;
}

static void field_end(struct out *o)
{
	if (o->format == OUT_PAIRS)
		putc('\n', o->f);
}

void out_str(struct out *o, const char *key, const char *value)
{
	field_begin(o, key);
	if (o->format == OUT_JSON)
		json_string(o->f, value);
	else
		text_put(o->f, value);
	field_end(o);
}

void out_bool(struct out *o, const char *key, int value)
{
	field_begin(o, key);
	fputs(o->format == OUT_JSON ? (value ? "true" : "false") : (value ? "yes" : "no"), o->f);
	field_end(o);
}

void out_fixed(struct out *o, const char *key, double value, int decimals)
{
	field_begin(o, key);
	fprintf(o->f, "%.*f", decimals, value);
	field_end(o);
}

void out_uint(struct out *o, const char *key, unsigned long long value)
{
	field_begin(o, key);
	fprintf(o->f, "%llu", value);
	field_end(o);
}

/* In KEY<TAB>VALUE form each value gets its own line; in rows they are
 * joined with commas; in JSON they make an array. */
void out_list_begin(struct out *o, const char *key)
{
	o->listed = 0;
	if (o->format == OUT_JSON) {
		field_begin(o, key);
		putc('[', o->f);
	} else if (o->format == OUT_ROWS) {
		field_begin(o, key);
	}
}

void out_list_str(struct out *o, const char *key, const char *value)
{
	switch (o->format) {
	case OUT_ROWS:
		if (o->listed)
			putc(',', o->f);
		text_put(o->f, value);
		break;
	case OUT_PAIRS:
		fprintf(o->f, "%s\t", key);
		text_put(o->f, value);
		putc('\n', o->f);
		o->fields++;
		break;
	case OUT_JSON:
		if (o->listed)
			fputs(", ", o->f);
		json_string(o->f, value);
		break;
	}
	o->listed++;
}

void out_list_end(struct out *o)
{
	if (o->format == OUT_JSON)
		putc(']', o->f);
}

void out_record_end(struct out *o)
{
	if (o->format == OUT_JSON)
		putc('}', o->f);
	else if (o->format == OUT_ROWS)
		putc('\n', o->f);
}

void out_end(struct out *o)
{
	if (o->format != OUT_JSON)
		return;
	if (o->array)
		fputs(o->records ? "\n]\n" : "]\n", o->f);
	else
		putc('\n', o->f);
}
