#include <stdint.h>
#include <string.h>

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

static int is_continuation(unsigned char c)
{
	return (c & 0xc0) == 0x80;
}

void utf8_drop_partial(char *s)
{
	size_t n = strlen(s), start = n;

	while (start > 0 && n - start < 4 && is_continuation((unsigned char)s[start - 1]))
		start--;
	if (start > 0 && n - start < 4 && (unsigned char)s[start - 1] >= 0xc0)
		start--; /* the lead byte of the last character */
	else if (start == n)
		return; /* ends in ASCII */
	if (utf8_char_len((const unsigned char *)s + start) != n - start)
		s[start] = '\0';
}

void utf8_cut(char *s, size_t max)
{
	if (strlen(s) <= max)
		return;
	s[max] = '\0';
	utf8_drop_partial(s);
}

const char *text_clip(char out[TEXT_CLIP_LEN], const char *in)
{
	size_t n = strlen(in);

	if (n <= TEXT_CLIP_MAX)
		return memcpy(out, in, n + 1);
	memcpy(out, in, TEXT_CLIP_MAX);
	out[TEXT_CLIP_MAX] = '\0';
	utf8_drop_partial(out);
	strcat(out, "...");
	return out;
}

size_t utf8_char_len(const unsigned char *s)
{
	unsigned c = s[0];
	size_t len;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, cp = c & 0x07;
	else
		return 0;
	for (size_t i = 1; i < len; i++) {
		if (!is_continuation(s[i]))
			return 0; /* the NUL included */
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}
