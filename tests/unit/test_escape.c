/* escape_controls: control bytes as \xNN, never an escape cut in two; UTF-8
 * cut only between characters; JSON strings valid whatever the bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "json.h"
#include "unit.h"

TEST(controls_become_hex_and_the_rest_passes)
{
	char out[64];
	const char *rest;

	CHECK_EQ_INT(escape_controls(out, sizeof(out), "a\nb\x1b[1m\x7f\xc3\xa9", &rest), 19);
	CHECK_STR(out, "a\\x0ab\\x1b[1m\\x7f\xc3\xa9");
	CHECK(*rest == '\0');
}

TEST(what_does_not_fit_is_left_whole)
{
	char out[8];
	const char *rest;

	/* "ab" + "\x0a" is 6 bytes; the next escape would need 4 more. */
	CHECK_EQ_INT(escape_controls(out, sizeof(out), "ab\n\ncd", &rest), 6);
	CHECK_STR(out, "ab\\x0a");
	CHECK_STR(rest, "\ncd");
	CHECK_EQ_INT(escape_controls(out, 1, "abc", &rest), 0);
	CHECK_STR(out, "");
	CHECK_STR(rest, "abc");
	CHECK_EQ_INT(escape_controls(out, sizeof(out), "", NULL), 0);
}

TEST(utf8_is_cut_between_characters)
{
	char s[16];

	strcpy(s, "ab\xc3\xa9" "cd"); /* "abécd" */
	utf8_cut(s, 3);                 /* would split é */
	CHECK_STR(s, "ab");
	strcpy(s, "ab\xc3\xa9" "cd");
	utf8_cut(s, 4);
	CHECK_STR(s, "ab\xc3\xa9");
	strcpy(s, "\xe2\x82\xac");    /* € */
	utf8_cut(s, 2);
	CHECK_STR(s, "");
	strcpy(s, "abc");
	utf8_cut(s, 10);
	CHECK_STR(s, "abc");
}

TEST(a_partial_character_at_the_end_is_dropped)
{
	char s[16];

	strcpy(s, "ab\xc3\xa9");
	utf8_drop_partial(s);
	CHECK_STR(s, "ab\xc3\xa9"); /* whole: kept */
	strcpy(s, "ab\xc3");
	utf8_drop_partial(s);
	CHECK_STR(s, "ab");
	strcpy(s, "ab\xe2\x82");
	utf8_drop_partial(s);
	CHECK_STR(s, "ab");
	strcpy(s, "abc");
	utf8_drop_partial(s);
	CHECK_STR(s, "abc");
	strcpy(s, "");
	utf8_drop_partial(s);
	CHECK_STR(s, "");
}

TEST(long_text_is_clipped_with_an_ellipsis)
{
	char out[TEXT_CLIP_LEN], in[200];

	CHECK_STR(text_clip(out, "short"), "short");
	memset(in, 'k', TEXT_CLIP_MAX);
	in[TEXT_CLIP_MAX] = '\0';
	CHECK_STR(text_clip(out, in), in); /* exactly the limit: whole */
	/* 47 bytes, then a 2-byte character across the limit. */
	memset(in, 'k', TEXT_CLIP_MAX - 1);
	strcpy(in + TEXT_CLIP_MAX - 1, "\xc3\xa9tail");
	text_clip(out, in);
	CHECK_EQ_INT(strlen(out), TEXT_CLIP_MAX - 1 + 3);
	CHECK_STR(out + TEXT_CLIP_MAX - 1, "...");
}

TEST(utf8_characters_are_measured_and_bad_ones_refused)
{
	CHECK_EQ_INT(utf8_char_len((const unsigned char *)"a"), 1);
	CHECK_EQ_INT(utf8_char_len((const unsigned char *)"\xc3\xa9"), 2);
	CHECK_EQ_INT(utf8_char_len((const unsigned char *)"\xe2\x82\xac"), 3);
	CHECK_EQ_INT(utf8_char_len((const unsigned char *)"\xf0\x9f\x98\x80"), 4);
	CHECK_EQ_INT(utf8_char_len((const unsigned char *)"\xc3"), 0);         /* cut short */
	CHECK_EQ_INT(utf8_char_len((const unsigned char *)"\xa9"), 0);         /* stray */
	CHECK_EQ_INT(utf8_char_len((const unsigned char *)"\xc0\xaf"), 0);     /* overlong */
	CHECK_EQ_INT(utf8_char_len((const unsigned char *)"\xe0\x80\xaf"), 0); /* overlong */
	CHECK_EQ_INT(utf8_char_len((const unsigned char *)"\xed\xa0\x80"), 0); /* surrogate */
	CHECK_EQ_INT(utf8_char_len((const unsigned char *)"\xf4\x90\x80\x80"), 0); /* > U+10FFFF */
}

TEST(json_strings_stay_valid_whatever_the_bytes)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	CHECK(f != NULL);
	json_string(f, "a\"b\\c\n\x01\xc3\xa9\xc3|\xff\xed\xa0\x80");
	fclose(f);
	CHECK_STR(buf, "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\\ufffd|\\ufffd\\ufffd\\ufffd\\ufffd\"");
	free(buf);
}

UNIT_MAIN(T(controls_become_hex_and_the_rest_passes), T(what_does_not_fit_is_left_whole),
	  T(utf8_is_cut_between_characters), T(a_partial_character_at_the_end_is_dropped),
	  T(long_text_is_clipped_with_an_ellipsis),
	  T(utf8_characters_are_measured_and_bad_ones_refused),
	  T(json_strings_stay_valid_whatever_the_bytes))
