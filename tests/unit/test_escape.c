/* escape_controls: control bytes as \xNN, never an escape cut in two. */
#include <string.h>

#include "escape.h"
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

UNIT_MAIN(T(controls_become_hex_and_the_rest_passes), T(what_does_not_fit_is_left_whole))
