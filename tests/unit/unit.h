/* A tiny TAP producer for the C unit tests of common/.
 *
 *	TEST(parses_zero) { CHECK_EQ_INT(parse("0"), 0); }
 *	UNIT_MAIN(T(parses_zero), ...)
 *
 * Each test prints "ok N - name" or "not ok N - name" followed by one
 * "# file:line: detail" line per failed check; the plan "1..N" comes first
 * and the exit status is 0 only if every test passed. A failed CHECK lets the
 * test go on; REQUIRE returns from the test (use it before a dereference).
 * An argument runs only the tests whose name contains it. Files made with
 * unit_tmpfile() and unit_tmpdir() are removed when the program ends. */
#ifndef TCPDIST_UNIT_H
#define TCPDIST_UNIT_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct unit_test {
	const char *name;
	void (*fn)(void);
};

#define TEST(name) static void name(void)
/* clang-format off */
#define T(name) {#name, name}
/* clang-format on */

#define UNIT_MAIN(...)                                                                             \
	int main(int argc, char **argv)                                                            \
	{                                                                                          \
		static const struct unit_test tests_[] = {__VA_ARGS__};                            \
		return unit_run(tests_, sizeof(tests_) / sizeof(tests_[0]),                        \
				argc > 1 ? argv[1] : NULL);                                        \
	}

/* Each CHECK is an expression: 1 if it held, 0 (and a recorded failure) if not. */
#define CHECK(cond) unit_check(!!(cond), __FILE__, __LINE__, "CHECK(%s)", #cond)
#define CHECK_EQ_INT(a, b)                                                                         \
	unit_check_int((long long)(a), (long long)(b), __FILE__, __LINE__, #a, #b)
#define CHECK_STR(a, b) unit_check_str((a), (b), __FILE__, __LINE__, #a, #b)
#define CHECK_CONTAINS(hay, needle)                                                                \
	unit_check_contains((hay), (needle), __FILE__, __LINE__, #hay, #needle)
#define REQUIRE(cond)                                                                              \
	do {                                                                                       \
		if (!CHECK(cond))                                                                  \
			return;                                                                    \
	} while (0)

/* One state per program; a function-local static keeps the header free of
 * unused-variable warnings in files that use only part of it. */
struct unit_state {
	int failed;      /* checks failed in the current test */
	char diag[8192]; /* its "# file:line: detail" lines, printed after the result */
	size_t ndiag;
	char *paths[64]; /* temporary files and directories to remove */
	int npaths;
};

static inline struct unit_state *unit_state(void)
{
	static struct unit_state state;
	return &state;
}

static inline void unit_diag(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static inline void unit_diag(const char *file, int line, const char *fmt, ...)
{
	struct unit_state *u = unit_state();
	size_t room = sizeof(u->diag) - u->ndiag;
	va_list ap;
	int n;

	n = snprintf(u->diag + u->ndiag, room, "# %s:%d: ", file, line);
	if (n > 0 && (size_t)n < room) {
		va_start(ap, fmt);
		n += vsnprintf(u->diag + u->ndiag + n, room - n, fmt, ap);
		va_end(ap);
	}
	if (n > 0 && (size_t)n + 1 < room) {
		u->ndiag += (size_t)n;
		u->diag[u->ndiag++] = '\n';
		u->diag[u->ndiag] = '\0';
	}
}

/* s as a C string literal (quoted, escaped) in buf: error texts may hold anything. */
static inline const char *unit_quote(const char *s, char *buf, size_t len)
{
	size_t o = 0;

	if (s == NULL)
		return "NULL";
	buf[o++] = '"';
	for (; *s != '\0' && o + 10 < len; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			o += (size_t)snprintf(buf + o, len - o, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", c);
		else
			buf[o++] = (char)c;
	}
	if (*s != '\0')
		o += (size_t)snprintf(buf + o, len - o, "...");
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

static inline int unit_check(int ok, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static inline int unit_check(int ok, const char *file, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (ok)
		return 1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	unit_state()->failed++;
	unit_diag(file, line, "%s", msg);
	return 0;
}

static inline int unit_check_int(long long a, long long b, const char *file, int line,
				 const char *as, const char *bs)
{
	return unit_check(a == b, file, line, "CHECK_EQ_INT(%s, %s): got %lld, expected %lld", as,
			  bs, a, b);
}

static inline int unit_check_str(const char *a, const char *b, const char *file, int line,
				 const char *as, const char *bs)
{
	char qa[400], qb[400];

	return unit_check(a != NULL && b != NULL && strcmp(a, b) == 0, file, line,
			  "CHECK_STR(%s, %s): got %s, expected %s", as, bs,
			  unit_quote(a, qa, sizeof(qa)), unit_quote(b, qb, sizeof(qb)));
}

static inline int unit_check_contains(const char *hay, const char *needle, const char *file,
				      int line, const char *hs, const char *ns)
{
	char qh[400], qn[400];

	return unit_check(hay != NULL && needle != NULL && strstr(hay, needle) != NULL, file, line,
			  "CHECK_CONTAINS(%s, %s): %s does not contain %s", hs, ns,
			  unit_quote(hay, qh, sizeof(qh)), unit_quote(needle, qn, sizeof(qn)));
}

static inline void unit_cleanup(void)
{
	struct unit_state *u = unit_state();

	while (u->npaths > 0) {
		char *p = u->paths[--u->npaths];

		if (unlink(p) < 0)
			rmdir(p);
		free(p);
	}
}

/* "$TMPDIR/unit-XXXXXX" (or /tmp) in a fresh malloc'd buffer, remembered for cleanup. */
static inline char *unit_tmpname(void)
{
	struct unit_state *u = unit_state();
	const char *dir = getenv("TMPDIR");
	size_t len;
	char *path;

	if (dir == NULL || *dir == '\0')
		dir = "/tmp";
	len = strlen(dir) + sizeof("/unit-XXXXXX");
	if (u->npaths == (int)(sizeof(u->paths) / sizeof(u->paths[0])) ||
	    (path = malloc(len)) == NULL) {
		fprintf(stderr, "unit: out of temporary file slots\n");
		exit(2);
	}
	snprintf(path, len, "%s/unit-XXXXXX", dir);
	u->paths[u->npaths++] = path;
	return path;
}

/* A temporary file holding len bytes of data; exits the program if it cannot. */
static inline const char *unit_tmpfile(const char *data, size_t len)
{
	char *path = unit_tmpname();
	int fd = mkstemp(path);

	if (fd < 0 || write(fd, data, len) != (ssize_t)len || close(fd) < 0) {
		perror(path);
		exit(2);
	}
	return path;
}

/* A temporary empty directory. */
static inline const char *unit_tmpdir(void)
{
	char *path = unit_tmpname();

	if (mkdtemp(path) == NULL) {
		perror(path);
		exit(2);
	}
	return path;
}

static inline int unit_run(const struct unit_test *tests, size_t n, const char *only)
{
	struct unit_state *u = unit_state();
	size_t i, planned = 0;
	int number = 0, failures = 0;

	setvbuf(stdout, NULL, _IOLBF, 0); /* results survive a crash in a later test */
	atexit(unit_cleanup);
	for (i = 0; i < n; i++)
		planned += only == NULL || strstr(tests[i].name, only) != NULL;
	printf("1..%zu\n", planned);
	for (i = 0; i < n; i++) {
		if (only != NULL && strstr(tests[i].name, only) == NULL)
			continue;
		u->failed = 0;
		u->ndiag = 0;
		u->diag[0] = '\0';
		tests[i].fn();
		printf("%sok %d - %s\n%s", u->failed ? "not " : "", ++number, tests[i].name,
		       u->diag);
		failures += u->failed != 0;
	}
	return failures == 0 && planned > 0 ? 0 : 1;
}

#endif
