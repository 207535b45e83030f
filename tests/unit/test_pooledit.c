/* The pool file editor: struct pool_doc edits, pool_edit and pool_create. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "pool.h"
#include "pooledit.h"
#include "unit.h"

/* The document parsed from text, or NULL (a failed check). */
static struct pool_doc *doc_of(const char *text)
{
	char err[ERR_LEN] = "";
	struct pool_doc *doc = pool_doc_parse(text, strlen(text), err);

	unit_check(doc != NULL, __FILE__, __LINE__, "pool_doc_parse: %s", err);
	return doc;
}

/* The rendered text; the caller frees it. */
static char *text_of(const struct pool_doc *doc)
{
	char err[ERR_LEN];
	size_t len;
	char *s = pool_doc_render(doc, &len, err);

	if (s == NULL || strlen(s) != len)
		abort();
	return s;
}

/* Checks that doc renders as want, then frees doc. */
static void renders(struct pool_doc *doc, const char *want, const char *file, int line)
{
	char *got = text_of(doc);

	unit_check_str(got, want, file, line, "rendered", "expected");
	free(got);
	pool_doc_free(doc);
}

#define RENDERS(doc, want) renders(doc, want, __FILE__, __LINE__)

static const char *const roundtrips[] = {
    "",
    "\n",
    "[pool]",
    "[pool]\nlisten = 1.2.3.4:80",
    "[pool]\r\nlisten = 1.2.3.4:80\r\n\r\n; c\r\n",
    "\xef\xbb\xbf[pool]\n  ; indented comment\n\t\tbalance\t=\thash ; x\n",
    "[pool]\n\n\n\n[backend a]\naddress: 1.2.3.4:80\nnot a key line\n[odd section\n",
    "mixed\r\nends\nhere\r\n",
};

TEST(render_gives_back_the_parsed_bytes)
{
	for (size_t i = 0; i < sizeof(roundtrips) / sizeof(roundtrips[0]); i++) {
		struct pool_doc *doc = doc_of(roundtrips[i]);

		REQUIRE(doc != NULL);
		RENDERS(doc, roundtrips[i]);
	}
}

static const char commented[] = "; top\n"
				"[pool]\n"
				"listen = 0.0.0.0:80        ; where\n"
				"  balance  =  hash         ; how\n"
				"\n"
				"; web1 comment\n"
				"[backend web1]\n"
				"address = 10.0.0.1:80\n"
				"weight = 1                 ; share\n"
				"\n"
				"[backend web2]   ; spare\n"
				"\taddress\t= 10.0.0.2:80\n"
				"\t; weight = 2 later\n"
				"\n"
				"; about web3\n"
				"[backend web3]\n"
				"address = 10.0.0.3:80\n";

TEST(set_replaces_only_the_value_and_keeps_the_comment_column)
{
	char err[ERR_LEN];
	struct pool_doc *doc = doc_of(commented);
	char *want;

	REQUIRE(doc != NULL);
	CHECK_EQ_INT(pool_doc_set(doc, "web1", "weight", "200", err), 0);
	CHECK_EQ_INT(pool_doc_set(doc, NULL, "balance", "roundrobin", err), 0);
	want = strdup(commented);
	memcpy(strstr(want, "weight = 1                 ; share"),
	       "weight = 200               ; share", 34);
	{
		/* the longer value moves the comment one column, keeping one blank */
		char *b = strstr(want, "  balance  =  hash         ; how");
		const char *repl = "  balance  =  roundrobin   ; how";

		memcpy(b, repl, strlen(repl));
	}
	RENDERS(doc, want);
	free(want);
}

TEST(set_a_long_value_keeps_one_blank_before_the_comment)
{
	char err[ERR_LEN];
	struct pool_doc *doc = doc_of("[pool]\nretries = 2 ; n\n");

	REQUIRE(doc != NULL);
	CHECK_EQ_INT(pool_doc_set(doc, NULL, "retries", "12345", err), 0);
	RENDERS(doc, "[pool]\nretries = 12345 ; n\n");
}

/* A comment is never dropped to make room: the change is refused, and
 * nothing is changed. */
TEST(set_refuses_a_line_too_long_with_its_comment)
{
	char err[ERR_LEN], line[512], value[POOL_LINE_MAX + 8];
	struct pool_doc *doc;

	snprintf(line, sizeof(line), "[pool]\nlisten = 1.2.3.4:80 ; %0*d\n", POOL_LINE_MAX - 28, 0);
	doc = doc_of(line);
	REQUIRE(doc != NULL);
	memset(value, 'a', 40);
	snprintf(value + 40, sizeof(value) - 40, ".example:80");
	CHECK_EQ_INT(pool_doc_set(doc, NULL, "listen", value, err), -1);
	CHECK_CONTAINS(err, "listen: the line would be ");
	CHECK_CONTAINS(err, "with its comment (at most 198)");
	/* A new line too long for the loader is refused as well. */
	memset(value, 'b', POOL_LINE_MAX);
	snprintf(value + POOL_LINE_MAX - 10, 11, ".example:8");
	CHECK_EQ_INT(pool_doc_set(doc, NULL, "retries", value, err), -1);
	CHECK_CONTAINS(err, "retries: the line would be 208 bytes long (at most 198)");
	RENDERS(doc, line);
}

TEST(set_appends_an_absent_key_after_the_last_key_spaced_like_it)
{
	char err[ERR_LEN];
	struct pool_doc *doc = doc_of(commented);
	char *got;

	REQUIRE(doc != NULL);
	CHECK_EQ_INT(pool_doc_set(doc, "web2", "weight", "2", err), 0);
	CHECK_EQ_INT(pool_doc_set(doc, "web3", "state", "drain", err), 0);
	CHECK_EQ_INT(pool_doc_set(doc, NULL, "retries", "5", err), 0);
	got = text_of(doc);
	CHECK_CONTAINS(got, "\taddress\t= 10.0.0.2:80\n\tweight\t= 2\n\t; weight = 2 later\n");
	CHECK_CONTAINS(got, "address = 10.0.0.3:80\nstate = drain\n");
	CHECK(got[strlen(got) - 1] == '\n' && strstr(got, "drain\n") + 6 == got + strlen(got));
	CHECK_CONTAINS(got, "  balance  =  hash         ; how\n  retries  =  5\n\n; web1 comment");
	free(got);
	pool_doc_free(doc);
}

TEST(set_in_a_section_without_keys_goes_below_its_comments)
{
	char err[ERR_LEN];
	struct pool_doc *doc = doc_of("[pool]\n; keys follow\n\n; about b\n[backend b]\n");

	REQUIRE(doc != NULL);
	CHECK_EQ_INT(pool_doc_set(doc, NULL, "retries", "1", err), 0);
	CHECK_EQ_INT(pool_doc_set(doc, "b", "address", "1.2.3.4:5", err), 0);
	RENDERS(doc, "[pool]\n; keys follow\nretries = 1\n\n; about b\n[backend b]\n"
		     "address = 1.2.3.4:5\n");
}

TEST(set_of_a_repeated_key_leaves_one_line)
{
	char err[ERR_LEN];
	struct pool_doc *doc = doc_of("[pool]\nlisten = a:1 ; first\nretries = 1\nlisten = b:2\n"
				      "[backend x]\nlisten = kept:3\n");

	REQUIRE(doc != NULL);
	CHECK_EQ_INT(pool_doc_set(doc, NULL, "listen", "c:3", err), 0);
	RENDERS(doc, "[pool]\nlisten = c:3 ; first\nretries = 1\n[backend x]\nlisten = kept:3\n");
}

TEST(set_creates_a_missing_pool_section_at_the_top)
{
	char err[ERR_LEN];
	struct pool_doc *doc = doc_of("[backend a]\naddress = 1.2.3.4:5\n");
	struct pool_doc *empty = doc_of("");

	REQUIRE(doc != NULL && empty != NULL);
	CHECK_EQ_INT(pool_doc_set(doc, NULL, "retries", "1", err), 0);
	RENDERS(doc, "[pool]\nretries = 1\n\n[backend a]\naddress = 1.2.3.4:5\n");
	CHECK_EQ_INT(pool_doc_set(empty, NULL, "retries", "1", err), 0);
	RENDERS(empty, "[pool]\nretries = 1\n");
}

TEST(set_refuses_what_the_format_cannot_carry)
{
	static const char *const keys[] = {"", "a b", "a=b", "a:b", "a;b", "[a", "k\n"};
	static const char *const values[] = {"", " x", "x ", "x\ny", "x ;y", "x\t;y", "\x7f"};
	char err[ERR_LEN];
	struct pool_doc *doc = doc_of(commented);

	REQUIRE(doc != NULL);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		CHECK_EQ_INT(pool_doc_set(doc, NULL, keys[i], "1", err), -1);
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
		CHECK_EQ_INT(pool_doc_set(doc, NULL, "retries", values[i], err), -1);
	CHECK_EQ_INT(pool_doc_set(doc, "nosuch", "weight", "1", err), -1);
	CHECK_CONTAINS(err, "no backend named 'nosuch'");
	/* a ';' without a blank before it is part of the value, as for inih */
	CHECK_EQ_INT(pool_doc_set(doc, "web1", "address", "x;y:1", err), 0);
	pool_doc_free(doc);
}

TEST(crlf_files_get_crlf_lines)
{
	char err[ERR_LEN];
	struct pool_doc *doc = doc_of("[pool]\r\nretries = 1\r\n");

	REQUIRE(doc != NULL);
	CHECK_EQ_INT(pool_doc_set(doc, NULL, "max_conns", "5", err), 0);
	CHECK_EQ_INT(pool_doc_add_backend(doc, "a", NULL, err), 0);
	RENDERS(doc, "[pool]\r\nretries = 1\r\nmax_conns = 5\r\n\r\n[backend a]\r\n");
}

TEST(get_reads_the_value_as_the_loader_does)
{
	struct pool_doc *doc = doc_of(commented);
	char buf[64], tiny[4];

	REQUIRE(doc != NULL);
	CHECK_EQ_INT(pool_doc_get(doc, NULL, "balance", buf, sizeof(buf)), 1);
	CHECK_STR(buf, "hash");
	CHECK_EQ_INT(pool_doc_get(doc, "web2", "address", buf, sizeof(buf)), 1);
	CHECK_STR(buf, "10.0.0.2:80");
	CHECK_EQ_INT(pool_doc_get(doc, "web2", "weight", buf, sizeof(buf)), 0);
	CHECK_EQ_INT(pool_doc_get(doc, "nosuch", "weight", buf, sizeof(buf)), 0);
	CHECK_EQ_INT(pool_doc_get(doc, "web1", "address", tiny, sizeof(tiny)), -1);
	pool_doc_free(doc);
}

TEST(backends_are_listed_in_file_order)
{
	struct pool_doc *doc = doc_of(commented);

	REQUIRE(doc != NULL);
	CHECK_STR(pool_doc_backend(doc, 0), "web1");
	CHECK_STR(pool_doc_backend(doc, 1), "web2");
	CHECK_STR(pool_doc_backend(doc, 2), "web3");
	CHECK(pool_doc_backend(doc, 3) == NULL);
	CHECK(pool_doc_has_backend(doc, "web2"));
	CHECK(!pool_doc_has_backend(doc, "web"));
	pool_doc_free(doc);
}

TEST(add_backend_appends_a_section_with_its_comment)
{
	char err[ERR_LEN];
	struct pool_doc *doc = doc_of("[pool]\nretries = 1");

	REQUIRE(doc != NULL);
	CHECK_EQ_INT(pool_doc_add_backend(doc, "n1", "; managed by tcppeer", err), 0);
	CHECK_EQ_INT(pool_doc_set(doc, "n1", "address", "1.2.3.4:80", err), 0);
	CHECK_EQ_INT(pool_doc_add_backend(doc, "n2", NULL, err), 0);
	CHECK(pool_doc_backend_has_comment(doc, "n1", "  ; managed by tcppeer\t"));
	CHECK(!pool_doc_backend_has_comment(doc, "n1", "; managed"));
	CHECK(!pool_doc_backend_has_comment(doc, "n2", "; managed by tcppeer"));
	CHECK_EQ_INT(pool_doc_add_backend(doc, "n1", NULL, err), -1);
	CHECK_CONTAINS(err, "already exists");
	CHECK_EQ_INT(pool_doc_add_backend(doc, "bad name", NULL, err), -1);
	CHECK_EQ_INT(pool_doc_add_backend(doc, "n3", "not a comment", err), -1);
	CHECK_EQ_INT(pool_doc_add_backend(doc, "n3", "; two\nlines", err), -1);
	RENDERS(doc, "[pool]\nretries = 1\n\n[backend n1]\n; managed by tcppeer\n"
		     "address = 1.2.3.4:80\n\n[backend n2]\n");
}

TEST(has_comment_sees_comments_above_the_header_too)
{
	struct pool_doc *doc = doc_of(commented);

	REQUIRE(doc != NULL);
	CHECK(pool_doc_backend_has_comment(doc, "web1", "; web1 comment"));
	CHECK(pool_doc_backend_has_comment(doc, "web2", "; weight = 2 later"));
	CHECK(!pool_doc_backend_has_comment(doc, "web2", "; about web3"));
	pool_doc_free(doc);
}

/* The byte order mark belongs to the file, not to its first line: edits of
 * that line neither move it nor drop it. */
TEST(the_byte_order_mark_stays_first_whatever_the_edit)
{
	char err[ERR_LEN];
	struct pool_doc *doc = doc_of("\xef\xbb\xbf[backend a]\naddress = 1.2.3.4:80\n");

	REQUIRE(doc != NULL);
	CHECK_EQ_INT(pool_doc_set(doc, NULL, "retries", "2", err), 0);
	RENDERS(doc, "\xef\xbb\xbf[pool]\nretries = 2\n\n[backend a]\naddress = 1.2.3.4:80\n");

	doc = doc_of("\xef\xbb\xbf[backend a]\naddress = 1.2.3.4:80\n\n[pool]\n");
	REQUIRE(doc != NULL);
	CHECK_EQ_INT(pool_doc_remove_backend(doc, "a", err), 0);
	RENDERS(doc, "\xef\xbb\xbf[pool]\n");
}

TEST(remove_backend_takes_its_comments_and_leaves_the_others)
{
	char err[ERR_LEN];
	struct pool_doc *doc = doc_of(commented);
	char *got;

	REQUIRE(doc != NULL);
	CHECK_EQ_INT(pool_doc_remove_backend(doc, "web2", err), 0);
	CHECK_EQ_INT(pool_doc_remove_backend(doc, "web2", err), -1);
	CHECK_CONTAINS(err, "no backend named 'web2'");
	got = text_of(doc);
	CHECK_CONTAINS(got, "weight = 1                 ; share\n\n; about web3\n[backend web3]\n");
	CHECK(strstr(got, "spare") == NULL && strstr(got, "later") == NULL);
	free(got);
	CHECK_EQ_INT(pool_doc_remove_backend(doc, "web1", err), 0);
	got = text_of(doc);
	CHECK_CONTAINS(got, "; how\n\n; about web3\n[backend web3]\n");
	CHECK(strstr(got, "web1") == NULL);
	free(got);
	/* the last section: the blank line before it goes too */
	CHECK_EQ_INT(pool_doc_remove_backend(doc, "web3", err), 0);
	RENDERS(doc, "; top\n[pool]\nlisten = 0.0.0.0:80        ; where\n"
		     "  balance  =  hash         ; how\n");
}

TEST(add_then_remove_gives_back_the_same_bytes)
{
	char err[ERR_LEN];
	struct pool_doc *doc = doc_of(commented);

	REQUIRE(doc != NULL);
	CHECK_EQ_INT(pool_doc_add_backend(doc, "new", "# added", err), 0);
	CHECK_EQ_INT(pool_doc_set(doc, "new", "address", "[::1]:80", err), 0);
	CHECK_EQ_INT(pool_doc_set(doc, "new", "weight", "3", err), 0);
	CHECK_EQ_INT(pool_doc_remove_backend(doc, "new", err), 0);
	RENDERS(doc, commented);
}

TEST(unset_removes_every_line_of_the_key)
{
	char err[ERR_LEN];
	struct pool_doc *doc = doc_of("[pool]\nlisten = a:1\nlisten = b:2\nretries = 1\n");

	REQUIRE(doc != NULL);
	CHECK_EQ_INT(pool_doc_unset(doc, NULL, "listen", err), 1);
	CHECK_EQ_INT(pool_doc_unset(doc, NULL, "listen", err), 0);
	CHECK_EQ_INT(pool_doc_unset(doc, "x", "listen", err), -1);
	RENDERS(doc, "[pool]\nretries = 1\n");
}

/* ---- files ---- */

static void file_write(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(path);
		exit(2);
	}
}

/* The file's content (malloc'd, "" if missing). */
static char *file_text(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 1 << 16);
	size_t n = 0;

	if (buf == NULL)
		abort();
	if (f != NULL) {
		n = fread(buf, 1, (1 << 16) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

static char *join(const char *dir, const char *name)
{
	size_t len = strlen(dir) + strlen(name) + 2;
	char *p = malloc(len);

	if (p == NULL)
		abort();
	snprintf(p, len, "%s/%s", dir, name);
	return p;
}

/* Empties a directory made by unit_tmpdir, which the framework then removes. */
static void dir_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, ".."))
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
}

/* How many entries of dir start with prefix. */
static int dir_count(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
	closedir(d);
	return n;
}

struct setting {
	const char *section, *key, *value;
};

static int set_one(struct pool_doc *doc, void *ctx, char *err)
{
	const struct setting *s = ctx;

	return pool_doc_set(doc, s->section, s->key, s->value, err);
}

static int no_change(struct pool_doc *doc, void *ctx, char *err)
{
	(void)doc, (void)ctx, (void)err;
	return POOL_EDIT_UNCHANGED;
}

static int fail_edit(struct pool_doc *doc, void *ctx, char *err)
{
	(void)doc, (void)ctx;
	return err_set(err, "no thanks");
}

static const char small_pool[] = "; small\n[pool]\nretries = 1 ; r\n\n[backend a]\n"
				 "address = 127.0.0.1:80\n";

TEST(edit_replaces_the_file_and_keeps_its_mode)
{
	const char *dir = unit_tmpdir();
	char *path = join(dir, "web.pool"), *lock = join(dir, ".web.pool.lock"), *got;
	struct setting s = {"a", "weight", "7"};
	struct stat before, after;
	char err[ERR_LEN] = "";

	file_write(path, small_pool);
	chmod(path, 0640);
	stat(path, &before);
	CHECK_EQ_INT(pool_edit(path, 0, set_one, &s, err), 0);
	CHECK_STR(err, "");
	got = file_text(path);
	CHECK_STR(got, "; small\n[pool]\nretries = 1 ; r\n\n[backend a]\naddress = 127.0.0.1:80\n"
		       "weight = 7\n");
	free(got);
	stat(path, &after);
	CHECK_EQ_INT(after.st_mode & 07777, 0640);
	CHECK(after.st_ino != before.st_ino); /* replaced by rename, not rewritten */
	REQUIRE(stat(lock, &after) == 0);
	CHECK_EQ_INT(after.st_mode & 07777, 0640); /* the pool's owner and group may lock */
	CHECK_EQ_INT(dir_count(dir, ".web.pool.tmp"), 0);
	dir_empty(dir);
	free(path);
	free(lock);
}

TEST(edit_refuses_an_invalid_result_and_writes_nothing)
{
	const char *dir = unit_tmpdir();
	char *path = join(dir, "web.pool"), *got;
	struct setting bad_weight = {"a", "weight", "257"}, bad_key = {NULL, "colour", "red"};
	struct setting bad_addr = {"a", "address", "nowhere"};
	struct stat before, after;
	char err[ERR_LEN] = "", want[ERR_LEN + 32];

	file_write(path, small_pool);
	stat(path, &before);
	CHECK_EQ_INT(pool_edit(path, 0, set_one, &bad_weight, err), -1);
	snprintf(want, sizeof(want), "%s:7: weight: 257 is out of range (0-256)", path);
	CHECK_STR(err, want);
	CHECK_EQ_INT(pool_edit(path, 0, set_one, &bad_key, err), -1);
	snprintf(want, sizeof(want), "%s:4: colour: unknown key in [pool]", path);
	CHECK_STR(err, want);
	CHECK_EQ_INT(pool_edit(path, 0, set_one, &bad_addr, err), -1);
	CHECK_CONTAINS(err, ":6: address: 'nowhere' needs a port");
	CHECK_EQ_INT(pool_edit(path, 0, fail_edit, NULL, err), -1);
	CHECK_STR(err, "no thanks");
	got = file_text(path);
	CHECK_STR(got, small_pool);
	free(got);
	stat(path, &after);
	CHECK(after.st_ino == before.st_ino);
	CHECK_EQ_INT(dir_count(dir, ".web.pool.tmp"), 0);
	dir_empty(dir);
	free(path);
}

TEST(edit_with_nothing_to_change_writes_nothing)
{
	const char *dir = unit_tmpdir();
	char *path = join(dir, "web.pool");
	struct setting same = {NULL, "retries", "1"};
	struct stat before, after;
	char err[ERR_LEN];

	file_write(path, small_pool);
	stat(path, &before);
	CHECK_EQ_INT(pool_edit(path, 0, no_change, NULL, err), POOL_EDIT_UNCHANGED);
	CHECK_EQ_INT(pool_edit(path, 0, set_one, &same, err), POOL_EDIT_UNCHANGED);
	stat(path, &after);
	CHECK(after.st_ino == before.st_ino);
	dir_empty(dir);
	free(path);
}

TEST(edit_follows_a_symlink_and_keeps_it)
{
	const char *dir = unit_tmpdir();
	char *real = join(dir, "real.pool"), *link = join(dir, "web.pool"), *got;
	char *lock = join(dir, ".real.pool.lock"), target[256];
	struct setting s = {NULL, "retries", "3"};
	struct stat st;
	char err[ERR_LEN] = "";
	ssize_t n;

	file_write(real, small_pool);
	REQUIRE(symlink("real.pool", link) == 0);
	CHECK_EQ_INT(pool_edit(link, 0, set_one, &s, err), 0);
	CHECK_STR(err, "");
	REQUIRE(lstat(link, &st) == 0);
	CHECK(S_ISLNK(st.st_mode));
	n = readlink(link, target, sizeof(target) - 1);
	REQUIRE(n > 0);
	target[n] = '\0';
	CHECK_STR(target, "real.pool");
	got = file_text(real);
	CHECK_CONTAINS(got, "retries = 3 ; r\n");
	free(got);
	CHECK(stat(lock, &st) == 0); /* the lock sits beside the target */
	dir_empty(dir);
	free(real);
	free(link);
	free(lock);
}

TEST(edit_removes_temporaries_of_dead_writers)
{
	const char *dir = unit_tmpdir();
	char *path = join(dir, "web.pool"), *stale = join(dir, ".web.pool.tmpAbC123");
	char *other = join(dir, ".web.pool.tmp-not-ours");
	struct setting s = {NULL, "retries", "3"};
	char err[ERR_LEN];

	file_write(path, small_pool);
	file_write(stale, "half a fi");
	file_write(other, "x");
	CHECK_EQ_INT(pool_edit(path, 0, set_one, &s, err), 0);
	CHECK_EQ_INT(access(stale, F_OK), -1);
	CHECK_EQ_INT(access(other, F_OK), 0);
	dir_empty(dir);
	free(path);
	free(stale);
	free(other);
}

TEST(edit_of_a_missing_file_fails)
{
	const char *dir = unit_tmpdir();
	char *path = join(dir, "none.pool");
	char err[ERR_LEN];

	CHECK_EQ_INT(pool_edit(path, 0, no_change, NULL, err), -1);
	CHECK_CONTAINS(err, "No such file or directory");
	CHECK_EQ_INT(dir_count(dir, "."), 2); /* . and .. only: no lock file left */
	free(path);
}

TEST(create_makes_a_new_file_and_refuses_an_existing_one)
{
	const char *dir = unit_tmpdir();
	char *path = join(dir, "new.pool"), *link = join(dir, "dangling.pool"), *got;
	char err[ERR_LEN] = "";
	struct stat st;
	mode_t old = umask(027);

	CHECK_EQ_INT(pool_create(path, small_pool, strlen(small_pool), err), 0);
	CHECK_STR(err, "");
	umask(old);
	got = file_text(path);
	CHECK_STR(got, small_pool);
	free(got);
	REQUIRE(stat(path, &st) == 0);
	CHECK_EQ_INT(st.st_mode & 0777, 0640);
	CHECK_EQ_INT(pool_create(path, "[pool]\n", 7, err), -1);
	CHECK_CONTAINS(err, "already exists");
	REQUIRE(symlink("nowhere", link) == 0);
	CHECK_EQ_INT(pool_create(link, "[pool]\n", 7, err), -1);
	CHECK_CONTAINS(err, "already exists");
	CHECK_EQ_INT(pool_create(path, "[backend]\n", 10, err), -1);
	CHECK_EQ_INT(dir_count(dir, ".new.pool.tmp"), 0);
	dir_empty(dir);
	free(path);
	free(link);
}

UNIT_MAIN(T(render_gives_back_the_parsed_bytes),
	  T(set_replaces_only_the_value_and_keeps_the_comment_column),
	  T(set_a_long_value_keeps_one_blank_before_the_comment),
	  T(set_refuses_a_line_too_long_with_its_comment),
	  T(set_appends_an_absent_key_after_the_last_key_spaced_like_it),
	  T(set_in_a_section_without_keys_goes_below_its_comments),
	  T(set_of_a_repeated_key_leaves_one_line),
	  T(set_creates_a_missing_pool_section_at_the_top),
	  T(the_byte_order_mark_stays_first_whatever_the_edit),
	  T(set_refuses_what_the_format_cannot_carry), T(crlf_files_get_crlf_lines),
	  T(get_reads_the_value_as_the_loader_does), T(backends_are_listed_in_file_order),
	  T(add_backend_appends_a_section_with_its_comment),
	  T(has_comment_sees_comments_above_the_header_too),
	  T(remove_backend_takes_its_comments_and_leaves_the_others),
	  T(add_then_remove_gives_back_the_same_bytes), T(unset_removes_every_line_of_the_key),
	  T(edit_replaces_the_file_and_keeps_its_mode),
	  T(edit_refuses_an_invalid_result_and_writes_nothing),
	  T(edit_with_nothing_to_change_writes_nothing), T(edit_follows_a_symlink_and_keeps_it),
	  T(edit_removes_temporaries_of_dead_writers), T(edit_of_a_missing_file_fails),
	  T(create_makes_a_new_file_and_refuses_an_existing_one))
