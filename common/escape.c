#include "escape.h"

int is_control_byte(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

size_t escape_controls(char *out, size_t outlen, const char *in, const char **rest)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *c = (const unsigned char *)in;
	size_t o = 0;

	for (; *c; c++) {
		if (!is_control_byte(*c)) {
			if (o + 1 >= outlen)
				break;
			out[o++] = (char)*c;
		} else {
			if (o + 4 >= outlen)
				break;
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[*c >> 4];
			out[o++] = hex[*c & 15];
		}
	}
	out[o] = '\0';
	if (rest != NULL)
		*rest = (const char *)c;
	return o;
}
