/* Pool files as people wrote them (struct pool_doc), and their safe
 * replacement (pool_edit, pool_create). The line classifier follows the
 * loader's reading (pool.c on inih): leading blanks ignored, ';' or '#'
 * starts a comment line, the first '=' or ':' separates KEY from VALUE, and
 * a ';' after a blank starts an inline comment. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pool.h"
#include "pooledit.h"

enum eol { EOL_NONE, EOL_LF, EOL_CRLF };

struct doc_line {
	char *text; /* without its line end */
	enum eol eol;
};

struct pool_doc {
	struct doc_line *lines;
	size_t n, cap;
	int bom; /* the file starts with a UTF-8 byte order mark, kept out of the lines */
	enum eol eol;		      /* for new lines: the file's first line end */
	char name[POOL_NAME_MAX + 1]; /* pool_doc_backend's answer */
};

enum kind { K_BLANK, K_COMMENT, K_POOL, K_BACKEND, K_SECTION, K_KEY, K_OTHER };

/* One line as the loader reads it; offsets are into the line's text. */
struct line_info {
	enum kind kind;
	size_t key, key_len;   /* K_KEY */
	size_t value, val_len; /* K_KEY: the value without blanks around it */
	size_t comment;	       /* K_KEY: the inline ';', or the text's length */
	size_t name, name_len; /* K_BACKEND */
};

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static int header_kind(enum kind k)
{
	return k == K_POOL || k == K_BACKEND || k == K_SECTION;
}

/* What inih's find_chars_or_comment does: the first of chars, or the ';' of
 * an inline comment (a ';' after a blank), or the end. */
static size_t find_or_comment(const char *s, size_t from, const char *chars)
{
	int was_blank = 0;
	size_t i;

	for (i = from; s[i] != '\0'; i++) {
		if ((chars && strchr(chars, s[i])) || (was_blank && s[i] == ';'))
			break;
		was_blank = is_blank(s[i]);
	}
	return i;
}

static void line_classify(const char *s, struct line_info *li)
{
	size_t i = 0, end, v;

	memset(li, 0, sizeof(*li));
	while (is_blank(s[i]))
		i++;
	if (s[i] == '\0') {
		li->kind = K_BLANK;
	} else if (s[i] == ';' || s[i] == '#') {
		li->kind = K_COMMENT;
	} else if (s[i] == '[') {
		const char *close = strchr(s + i, ']');
		size_t a = i + 1, b;

		li->kind = K_SECTION;
		if (close == NULL)
			return;
		b = (size_t)(close - s);
		while (a < b && is_blank(s[a]))
			a++;
		while (b > a && is_blank(s[b - 1]))
			b--;
		if (b - a == 4 && strncmp(s + a, "pool", 4) == 0) {
			li->kind = K_POOL;
		} else if (b - a > 7 && strncmp(s + a, "backend", 7) == 0 && is_blank(s[a + 7])) {
			for (a += 7; is_blank(s[a]); a++)
				;
			li->kind = K_BACKEND;
			li->name = a;
			li->name_len = b - a;
		}
	} else {
		end = find_or_comment(s, i, "=:");
		if (s[end] != '=' && s[end] != ':') {
			li->kind = K_OTHER;
			return;
		}
		li->kind = K_KEY;
		li->key = i;
		while (end > i && is_blank(s[end - 1]))
			end--;
		li->key_len = end - i;
		v = find_or_comment(s, i, "=:") + 1;
		while (is_blank(s[v]))
			v++;
		/* inih starts the value with no blank seen: a ';' first is value. */
		end = s[v] == '\0' ? v : find_or_comment(s, v + 1, NULL);
		li->comment = end;
		while (end > v && is_blank(s[end - 1]))
			end--;
		li->value = v;
		li->val_len = end - v;
	}
}

static void classify(const struct pool_doc *doc, size_t i, struct line_info *li)
{
	line_classify(doc->lines[i].text, li);
}

static int line_is(const struct pool_doc *doc, size_t i, enum kind k)
{
	struct line_info li;

	classify(doc, i, &li);
	return li.kind == k;
}

static int line_is_header(const struct pool_doc *doc, size_t i)
{
	struct line_info li;

	classify(doc, i, &li);
	return header_kind(li.kind);
}

/* ---- lines ---- */

static int lines_reserve(struct pool_doc *doc, size_t more)
{
	struct doc_line *nl;
	size_t cap;

	if (doc->n + more <= doc->cap)
		return 0;
	cap = doc->cap ? doc->cap : 64;
	while (cap < doc->n + more)
		cap *= 2;
	nl = realloc(doc->lines, cap * sizeof(*nl));
	if (nl == NULL)
		return -1;
	doc->lines = nl;
	doc->cap = cap;
	return 0;
}

/* Inserts text (copied) as line at; a line before it without a line end
 * gets one, since it is no longer the last. */
static int line_insert(struct pool_doc *doc, size_t at, const char *text, char *err)
{
	char *copy = strdup(text);

	if (copy == NULL || lines_reserve(doc, 1) < 0) {
		free(copy);
		return err_set(err, "out of memory");
	}
	memmove(doc->lines + at + 1, doc->lines + at, (doc->n - at) * sizeof(*doc->lines));
	doc->lines[at].text = copy;
	doc->lines[at].eol = doc->eol;
	if (at == doc->n && at > 0 && doc->lines[at - 1].eol == EOL_NONE)
		doc->lines[at - 1].eol = doc->eol;
	doc->n++;
	return 0;
}

/* Removes lines [from, to). */
static void lines_remove(struct pool_doc *doc, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		free(doc->lines[i].text);
	memmove(doc->lines + from, doc->lines + to, (doc->n - to) * sizeof(*doc->lines));
	doc->n -= to - from;
}

/* Gives line i the malloc'd text. */
static void line_replace(struct pool_doc *doc, size_t i, char *text)
{
	free(doc->lines[i].text);
	doc->lines[i].text = text;
}

struct pool_doc *pool_doc_parse(const char *data, size_t len, char *err)
{
	struct pool_doc *doc = calloc(1, sizeof(*doc));
	size_t pos = 0;

	if (doc == NULL)
		return err_set(err, "out of memory"), NULL;
	doc->eol = EOL_LF;
	/* Held apart, so that no edit of the first line can move or drop it. */
	if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0)
		doc->bom = 1, pos = 3;
	while (pos < len) {
		const char *s = data + pos, *nl = memchr(s, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - s) : len - pos;
		enum eol eol = nl ? EOL_LF : EOL_NONE;
		char *text;

		pos += n + (nl != NULL);
		if (nl && n > 0 && s[n - 1] == '\r')
			n--, eol = EOL_CRLF;
		if (lines_reserve(doc, 1) < 0 || (text = malloc(n + 1)) == NULL) {
			pool_doc_free(doc);
			return err_set(err, "out of memory"), NULL;
		}
		memcpy(text, s, n);
		text[n] = '\0';
		if (doc->n == 0 && eol != EOL_NONE)
			doc->eol = eol;
		doc->lines[doc->n].text = text;
		doc->lines[doc->n].eol = eol;
		doc->n++;
	}
	return doc;
}

void pool_doc_free(struct pool_doc *doc)
{
	if (doc == NULL)
		return;
	for (size_t i = 0; i < doc->n; i++)
		free(doc->lines[i].text);
	free(doc->lines);
	free(doc);
}

char *pool_doc_render(const struct pool_doc *doc, size_t *len, char *err)
{
	static const char *const ends[] = {"", "\n", "\r\n"};
	size_t total = doc->bom ? 3 : 0, o = 0;
	char *out;

	for (size_t i = 0; i < doc->n; i++)
		total += strlen(doc->lines[i].text) + strlen(ends[doc->lines[i].eol]);
	out = malloc(total + 1);
	if (out == NULL)
		return err_set(err, "out of memory"), NULL;
	if (doc->bom) {
		memcpy(out, "\xef\xbb\xbf", 3);
		o = 3;
	}
	for (size_t i = 0; i < doc->n; i++) {
		size_t n = strlen(doc->lines[i].text), e = strlen(ends[doc->lines[i].eol]);

		memcpy(out + o, doc->lines[i].text, n);
		memcpy(out + o + n, ends[doc->lines[i].eol], e);
		o += n + e;
	}
	out[o] = '\0';
	*len = o;
	return out;
}

/* ---- sections ---- */

/* The header line of the section (NULL for [pool]), or -1. */
static long section_find(const struct pool_doc *doc, const char *name)
{
	struct line_info li;

	for (size_t i = 0; i < doc->n; i++) {
		classify(doc, i, &li);
		if (name == NULL && li.kind == K_POOL)
			return (long)i;
		if (name != NULL && li.kind == K_BACKEND && li.name_len == strlen(name) &&
		    strncmp(doc->lines[i].text + li.name, name, li.name_len) == 0)
			return (long)i;
	}
	return -1;
}

/* The line after the last one of the section headed at h: the next header,
 * or the comment lines directly above it, or the end of the file. *next is
 * the next header (or doc->n). */
static size_t section_end(const struct pool_doc *doc, size_t h, size_t *next)
{
	size_t end = h + 1;

	while (end < doc->n && !line_is_header(doc, end))
		end++;
	*next = end;
	if (end < doc->n)
		while (end > h + 1 && line_is(doc, end - 1, K_COMMENT))
			end--;
	return end;
}

/* The first of the comment lines directly above line h (h if none). */
static size_t comments_above(const struct pool_doc *doc, size_t h)
{
	while (h > 0 && line_is(doc, h - 1, K_COMMENT))
		h--;
	return h;
}

static long section_or_fail(const struct pool_doc *doc, const char *name, char *err)
{
	long h = section_find(doc, name);

	if (h < 0) {
		if (name == NULL)
			err_set(err, "no [pool] section");
		else
			err_set(err, "no backend named '%s'", name);
	}
	return h;
}

const char *pool_doc_backend(const struct pool_doc *doc, size_t i)
{
	struct pool_doc *d = (struct pool_doc *)doc; /* the answer buffer only */
	struct line_info li;

	for (size_t l = 0; l < doc->n; l++) {
		classify(doc, l, &li);
		if (li.kind != K_BACKEND || i-- > 0)
			continue;
		if (li.name_len > POOL_NAME_MAX)
			li.name_len = POOL_NAME_MAX; /* invalid anyway: the loader says so */
		memcpy(d->name, doc->lines[l].text + li.name, li.name_len);
		d->name[li.name_len] = '\0';
		return d->name;
	}
	return NULL;
}

int pool_doc_has_backend(const struct pool_doc *doc, const char *name)
{
	return section_find(doc, name) >= 0;
}

static int key_is(const struct pool_doc *doc, size_t i, const struct line_info *li, const char *key)
{
	return li->kind == K_KEY && li->key_len == strlen(key) &&
	       strncmp(doc->lines[i].text + li->key, key, li->key_len) == 0;
}

int pool_doc_get(const struct pool_doc *doc, const char *section, const char *key, char *buf,
		 size_t len)
{
	struct line_info li, found = {0};
	long h = section_find(doc, section);
	size_t next, at = 0;

	if (h < 0)
		return 0;
	section_end(doc, (size_t)h, &next);
	for (size_t i = (size_t)h + 1; i < next; i++) {
		classify(doc, i, &li);
		if (key_is(doc, i, &li, key))
			found = li, at = i;
	}
	if (at == 0)
		return 0;
	if (found.val_len >= len)
		return -1;
	memcpy(buf, doc->lines[at].text + found.value, found.val_len);
	buf[found.val_len] = '\0';
	return 1;
}

/* Keys the format can carry: what the loader's keys are made of. */
static int key_valid(const char *key)
{
	size_t n = 0;

	for (; key[n] != '\0'; n++) {
		char c = key[n];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.'))
			return 0;
	}
	return n > 0;
}

/* A value is read back as written unless it has blanks at its ends, a line
 * break or other control character, or a ';' after a blank (a comment). */
static const char *value_problem(const char *v)
{
	size_t n = strlen(v);

	if (n == 0)
		return "empty value";
	if (is_blank(v[0]) || is_blank(v[n - 1]))
		return "blanks around the value";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return "control character in the value";
		if (c == ';' && i > 0 && is_blank(v[i - 1]))
			return "' ;' in the value would start a comment";
	}
	return NULL;
}

/* The line text with its value replaced. An inline comment stays in its
 * column when the new value leaves room, else it follows one blank. The
 * caller refuses a result longer than the loader accepts: a comment is never
 * dropped to make room. */
static char *value_replace(const char *text, const struct line_info *li, const char *value)
{
	size_t head = li->value, vlen = strlen(value), tlen = strlen(text);
	size_t gap_at = li->value + li->val_len, clen = tlen - li->comment, pad = 0, len;
	const char *gap = "";
	char *out;

	if (li->comment < tlen) {
		/* The blanks between the old value and the comment; tabs are kept
		 * as written, spaces pad to the old column. */
		size_t gap_len = li->comment - gap_at;

		if (memchr(text + gap_at, '\t', gap_len) != NULL)
			gap = text + gap_at, pad = gap_len;
		else if (head + vlen < li->comment)
			pad = li->comment - head - vlen;
		else
			pad = 1;
		if (head + vlen + pad + clen > POOL_LINE_MAX)
			gap = "", pad = 1;
	} else {
		clen = tlen - gap_at; /* trailing blanks, as written */
	}
	len = head + vlen + pad + clen;
	out = malloc(len + 1);
	if (out == NULL)
		return NULL;
	memcpy(out, text, head);
	memcpy(out + head, value, vlen);
	if (*gap != '\0')
		memcpy(out + head + vlen, gap, pad);
	else
		memset(out + head + vlen, ' ', pad);
	memcpy(out + head + vlen + pad, text + tlen - clen, clen);
	out[len] = '\0';
	return out;
}

/* A [pool] section at the top of the file, for a file without one. */
static long pool_section_create(struct pool_doc *doc, char *err)
{
	int had_lines = doc->n > 0;

	if (line_insert(doc, 0, "[pool]", err) < 0)
		return -1;
	if (had_lines && !line_is(doc, 1, K_BLANK) && line_insert(doc, 1, "", err) < 0)
		return -1;
	return 0;
}

static int doc_set(struct pool_doc *doc, const char *section, const char *key,
		   const char *value, int append, char *err);

int pool_doc_set(struct pool_doc *doc, const char *section, const char *key, const char *value,
		 char *err)
{
	return doc_set(doc, section, key, value, 0, err);
}

int pool_doc_append(struct pool_doc *doc, const char *section, const char *key, const char *value,
		    char *err)
{
	return doc_set(doc, section, key, value, 1, err);
}

/* pool_doc_set(), or with append a new line whatever lines KEY has. */
static int doc_set(struct pool_doc *doc, const char *section, const char *key,
		   const char *value, int append, char *err)
{
	struct line_info li, style;
	const char *why;
	size_t next, end, at, first = 0, last_key = 0;
	long h;
	char *text;

	if (!key_valid(key))
		return err_set(err, "'%s': invalid key (use A-Z a-z 0-9 _ - .)", key);
	if ((why = value_problem(value)) != NULL)
		return err_set(err, "%s: %s", key, why);
	h = section_find(doc, section);
	if (h < 0 && section == NULL) {
		if (pool_section_create(doc, err) < 0)
			return -1;
		h = 0;
	}
	if (h < 0)
		return section_or_fail(doc, section, err);

	end = section_end(doc, (size_t)h, &next);
	for (size_t i = (size_t)h + 1; i < next; i++) {
		classify(doc, i, &li);
		if (li.kind == K_KEY && i < end)
			last_key = i;
		if (append || !key_is(doc, i, &li, key))
			continue;
		if (first == 0) {
			first = i;
			if ((text = value_replace(doc->lines[i].text, &li, value)) == NULL)
				return err_set(err, "out of memory");
			if (strlen(text) > POOL_LINE_MAX) {
				err_set(err, "%s: the line would be %zu bytes long%s (at most %d)",
					key, strlen(text),
					li.comment < strlen(doc->lines[i].text) ? " with its comment" : "",
					POOL_LINE_MAX);
				free(text);
				return -1;
			}
			line_replace(doc, i, text);
		} else {
			lines_remove(doc, i, i + 1);
			i--, next--, end--;
		}
	}
	if (first != 0)
		return 0;

	/* A new line, after the last key, or else after the header and the
	 * comments under it; spaced like the section's last key. */
	if (last_key != 0) {
		at = last_key + 1;
	} else {
		at = (size_t)h + 1;
		for (size_t i = (size_t)h + 1; i < end; i++)
			if (!line_is(doc, i, K_BLANK))
				at = i + 1;
	}
	{
		const char *ref = last_key ? doc->lines[last_key].text : NULL;
		size_t indent = 0, sep_at = 0, sep_len = 0, len;

		if (ref) {
			classify(doc, last_key, &style);
			indent = style.key;
			sep_at = style.key + style.key_len;
			sep_len = style.value - sep_at;
		}
		len = indent + strlen(key) + (ref ? sep_len : 3) + strlen(value);
		if ((text = malloc(len + 1)) == NULL)
			return err_set(err, "out of memory");
		snprintf(text, len + 1, "%.*s%s%.*s%s", (int)indent, ref ? ref : "", key,
			 (int)(ref ? sep_len : 3), ref ? ref + sep_at : " = ", value);
		if (len > POOL_LINE_MAX) {
			free(text);
			return err_set(err, "%s: the line would be %zu bytes long (at most %d)",
				       key, len, POOL_LINE_MAX);
		}
	}
	if (line_insert(doc, at, text, err) < 0) {
		free(text);
		return -1;
	}
	free(text);
	return 0;
}

int pool_doc_unset(struct pool_doc *doc, const char *section, const char *key, char *err)
{
	struct line_info li;
	size_t next;
	long h = section_or_fail(doc, section, err);
	int removed = 0;

	if (h < 0)
		return -1;
	section_end(doc, (size_t)h, &next);
	for (size_t i = (size_t)h + 1; i < next; i++) {
		classify(doc, i, &li);
		if (key_is(doc, i, &li, key)) {
			lines_remove(doc, i, i + 1);
			i--, next--;
			removed = 1;
		}
	}
	return removed;
}

static int comment_valid(const char *c)
{
	while (is_blank(*c))
		c++;
	if (*c != ';' && *c != '#')
		return 0;
	for (; *c != '\0'; c++)
		if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
			return 0;
	return 1;
}

int pool_doc_add_backend(struct pool_doc *doc, const char *name, const char *comment, char *err)
{
	char header[POOL_NAME_MAX + sizeof("[backend ]")];

	if (!pool_name_valid(name))
		return err_set(err, "'%s': invalid backend name (use 1-%d of A-Z a-z 0-9 . _ -)",
			       name, POOL_NAME_MAX);
	if (pool_doc_has_backend(doc, name))
		return err_set(err, "backend '%s' already exists", name);
	if (comment != NULL && !comment_valid(comment))
		return err_set(err,
			       "a comment line starts with ';' or '#' and holds no line break");
	snprintf(header, sizeof(header), "[backend %s]", name);
	if (doc->n > 0 && !line_is(doc, doc->n - 1, K_BLANK) &&
	    line_insert(doc, doc->n, "", err) < 0)
		return -1;
	if (line_insert(doc, doc->n, header, err) < 0)
		return -1;
	if (comment != NULL && line_insert(doc, doc->n, comment, err) < 0)
		return -1;
	return 0;
}

int pool_doc_remove_backend(struct pool_doc *doc, const char *name, char *err)
{
	size_t from, to, next;
	long h = section_or_fail(doc, name, err);

	if (h < 0)
		return -1;
	from = comments_above(doc, (size_t)h);
	to = section_end(doc, (size_t)h, &next);
	if (to == doc->n)
		while (from > 0 && line_is(doc, from - 1, K_BLANK))
			from--;
	lines_remove(doc, from, to);
	return 0;
}

/* s without blanks at its ends, as a length and start. */
static const char *trimmed(const char *s, size_t *len)
{
	size_t n;

	while (is_blank(*s))
		s++;
	n = strlen(s);
	while (n > 0 && is_blank(s[n - 1]))
		n--;
	*len = n;
	return s;
}

int pool_doc_backend_has_comment(const struct pool_doc *doc, const char *name, const char *comment)
{
	size_t want_len, next, end, got_len;
	const char *want = trimmed(comment, &want_len), *got;
	long h = section_find(doc, name);

	if (h < 0)
		return 0;
	end = section_end(doc, (size_t)h, &next);
	for (size_t i = comments_above(doc, (size_t)h); i < end; i++) {
		if (!line_is(doc, i, K_COMMENT))
			continue;
		got = trimmed(doc->lines[i].text, &got_len);
		if (got_len == want_len && memcmp(got, want, want_len) == 0)
			return 1;
	}
	return 0;
}

/* ---- replacing the file ---- */

/* The file being edited: the pool file with links resolved, split into its
 * directory and name, and the sidecar lock held on it. */
struct target {
	char *path; /* realpath */
	char *dir;
	const char *base; /* in path */
	int lock_fd;
};

static void target_free(struct target *t)
{
	if (t->lock_fd >= 0)
		close(t->lock_fd); /* releases the lock */
	free(t->path);
	free(t->dir);
	memset(t, 0, sizeof(*t));
	t->lock_fd = -1;
}

/* Splits an absolute path into a malloc'd directory and a pointer to the name. */
static int target_split(struct target *t, char *err)
{
	char *slash = strrchr(t->path, '/');
	size_t n = slash == t->path ? 1 : (size_t)(slash - t->path);

	t->base = slash + 1;
	t->dir = strndup(t->path, n);
	return t->dir ? 0 : err_set(err, "out of memory");
}

static char *path_join(const char *dir, const char *prefix, const char *base, const char *suffix)
{
	size_t len = strlen(dir) + strlen(prefix) + strlen(base) + strlen(suffix) + 2;
	char *p = malloc(len);

	if (p != NULL)
		snprintf(p, len, "%s%s%s%s%s", dir, strcmp(dir, "/") ? "/" : "", prefix, base,
			 suffix);
	return p;
}

/* Opens and flocks the sidecar ".NAME.lock" of t. It is opened read-only
 * (flock needs no more) and made readable by the file's owner and group
 * (0640 with no file yet): a writer in the file's group, such as tcppeer,
 * can lock what root's tcppool made first. A lock of ours that an older
 * version made 0600 is brought in line. */
static int target_lock(struct target *t, const char *shown, char *err)
{
	char *lock = path_join(t->dir, ".", t->base, ".lock");
	struct stat file, now;
	mode_t mode = 0640;
	gid_t gid = (gid_t)-1;
	int rc;

	if (lock == NULL)
		return err_set(err, "out of memory");
	if (stat(t->path, &file) == 0) {
		mode = (file.st_mode & 0660) | 0400;
		gid = file.st_gid;
	}
	t->lock_fd = open(lock, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, mode);
	if (t->lock_fd < 0) {
		err_set(err, "%s: cannot open lock file %s: %s", shown, lock, strerror(errno));
		free(lock);
		return -1;
	}
	/* The umask may have taken bits. A failure leaves the lock as it was:
	 * it still works for us. */
	if (fstat(t->lock_fd, &now) == 0 && now.st_uid == geteuid() &&
	    ((gid != (gid_t)-1 && now.st_gid != gid && fchown(t->lock_fd, (uid_t)-1, gid) < 0) ||
	     ((now.st_mode & 07777) != mode && fchmod(t->lock_fd, mode) < 0))) {
	}
	while ((rc = flock(t->lock_fd, LOCK_EX)) < 0 && errno == EINTR)
		;
	if (rc < 0)
		err_set(err, "%s: cannot lock %s: %s", shown, lock, strerror(errno));
	free(lock);
	return rc;
}

/* Resolves path to the file it names and locks it. A link pointed elsewhere
 * while we waited for the lock (a swap, as with Kubernetes ConfigMaps) means
 * the lock is on the wrong file: start again. */
static int target_open(struct target *t, const char *path, char *err)
{
	memset(t, 0, sizeof(*t));
	t->lock_fd = -1;
	for (int attempt = 0; attempt < 100; attempt++) {
		char *again;

		t->path = realpath(path, NULL);
		if (t->path == NULL)
			return err_set(err, "%s: %s", path, strerror(errno));
		if (target_split(t, err) < 0 || target_lock(t, path, err) < 0) {
			target_free(t);
			return -1;
		}
		again = realpath(path, NULL);
		if (again != NULL && strcmp(again, t->path) == 0) {
			free(again);
			return 0;
		}
		free(again);
		target_free(t);
	}
	return err_set(err, "%s: the link keeps changing", path);
}

/* Temporary files are ".NAME.tmpXXXXXX"; under the lock, any such file is
 * the leftover of a writer that died before its rename. */
static const char temporary_digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";

/* Only our pattern, 6 letters or digits after ".NAME.tmp" (mkstemp's
 * alphabet, a superset of ours): ".web.tmp1.lock" is the lock of the pool
 * "web.tmp1", not a temporary of "web". */
static void stale_temporaries_remove(const struct target *t)
{
	char prefix[NAME_MAX + 8];
	struct dirent *e;
	size_t n;
	DIR *d = opendir(t->dir);

	if (d == NULL)
		return;
	n = (size_t)snprintf(prefix, sizeof(prefix), ".%s.tmp", t->base);
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, prefix, n) == 0 && strlen(e->d_name) == n + 6 &&
		    strspn(e->d_name + n, "0123456789abcdefghijklmnopqrstuvwxyz"
					  "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == 6)
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
}

/* Creates a temporary file next to t with the given mode (less the umask),
 * exclusively; *tmp is its malloc'd path. */
static int temporary_open(const struct target *t, mode_t mode, char **tmp, char *err)
{
	struct timespec ts;
	uint64_t x;

	clock_gettime(CLOCK_REALTIME, &ts);
	x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 16);
	for (int attempt = 0; attempt < 100; attempt++) {
		int fd;

		x = x * 6364136223846793005ull + 1442695040888963407ull;
		if ((*tmp = path_join(t->dir, ".", t->base, ".tmpXXXXXX")) == NULL)
			return err_set(err, "out of memory");
		for (size_t i = 0, n = strlen(*tmp); i < 6; i++)
			(*tmp)[n - 6 + i] = temporary_digits[(x >> (i * 6 + 20)) % 36];
		fd = open(*tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
		if (fd >= 0)
			return fd;
		if (errno != EEXIST) {
			err_set(err, "cannot create %s: %s", *tmp, strerror(errno));
			free(*tmp);
			return -1;
		}
		free(*tmp);
	}
	*tmp = NULL;
	return err_set(err, "cannot create a temporary file in %s", t->dir);
}

static int write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

static int dir_sync(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* Writes data to a new temporary file next to t and syncs it; with st, the
 * file gets st's owner (when allowed) and mode, else 0666 less the umask.
 * Returns the temporary path (malloc'd) or NULL. */
static char *temporary_write(const struct target *t, const struct stat *st, const char *data,
			     size_t len, const char *shown, char *err)
{
	char *tmp;
	int fd = temporary_open(t, st ? 0600 : 0666, &tmp, err);

	if (fd < 0)
		return NULL;
	if (write_all(fd, data, len) < 0) {
		err_set(err, "%s: cannot write %s: %s", shown, tmp, strerror(errno));
		goto fail;
	}
	if (st != NULL) {
		/* chown first: it may clear set-id bits that fchmod then restores.
		 * Only root may give a file away, so a failure is not an error. */
		if ((st->st_uid != geteuid() || st->st_gid != getegid()) &&
		    fchown(fd, st->st_uid, st->st_gid) < 0 &&
		    fchown(fd, (uid_t)-1, st->st_gid) < 0) {
			/* the group too is out of reach: the file becomes ours */
		}
		if (fchmod(fd, st->st_mode & 07777) < 0) {
			err_set(err, "%s: cannot set the mode of %s: %s", shown, tmp,
				strerror(errno));
			goto fail;
		}
	}
	if (fsync(fd) < 0) {
		err_set(err, "%s: cannot sync %s: %s", shown, tmp, strerror(errno));
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		err_set(err, "%s: cannot write %s: %s", shown, tmp, strerror(errno));
		goto fail;
	}
	return tmp;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	free(tmp);
	return NULL;
}

/* Reads the whole pool file (at most POOL_FILE_MAX bytes) with its stat. */
static char *file_read(const char *path, const char *shown, struct stat *st, size_t *len, char *err)
{
	const char *why = NULL;
	size_t got = 0;
	char *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return err_set(err, "%s: %s", shown, strerror(errno)), NULL;
	if (fstat(fd, st) < 0)
		why = strerror(errno);
	else if (!S_ISREG(st->st_mode))
		why = "not a regular file";
	else if ((unsigned long long)st->st_size > POOL_FILE_MAX)
		why = "file too large";
	if (why != NULL) {
		err_set(err, "%s: %s", shown, why);
		close(fd);
		return NULL;
	}
	if ((buf = malloc((size_t)st->st_size + 1)) == NULL) {
		close(fd);
		return err_set(err, "out of memory"), NULL;
	}
	for (;;) {
		ssize_t n = read(fd, buf + got, (size_t)st->st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err_set(err, "%s: %s", shown, strerror(errno));
			free(buf);
			close(fd);
			return NULL;
		}
		got += (size_t)n;
		if (n == 0 || got == (size_t)st->st_size)
			break;
	}
	close(fd);
	buf[got] = '\0';
	*len = got;
	return buf;
}

/* The loader's verdict on data: 0, or -1 with its first problem in err. */
static int validate(const char *shown, const char *data, size_t len, int flags, char *err)
{
	struct pool *p = (flags & POOL_EDIT_NO_DNS) ? pool_parse_unresolved(shown, data, len, err)
						    : pool_parse(shown, data, len, err);

	pool_free(p);
	return p ? 0 : -1;
}

int pool_edit(const char *path, int flags, pool_edit_fn fn, void *ctx, char *err)
{
	struct target t;
	struct pool_doc *doc = NULL;
	struct stat st;
	char *old = NULL, *new = NULL, *tmp = NULL;
	size_t old_len, new_len;
	int rc = -1;

	if (target_open(&t, path, err) < 0)
		return -1;
	stale_temporaries_remove(&t);
	if ((old = file_read(t.path, path, &st, &old_len, err)) == NULL ||
	    (doc = pool_doc_parse(old, old_len, err)) == NULL)
		goto out;
	if (err != NULL)
		err[0] = '\0';
	rc = fn(doc, ctx, err);
	if (rc < 0 && err != NULL && err[0] == '\0')
		err_set(err, "%s: edit failed", path);
	if (rc != 0)
		goto out;
	rc = -1;
	if ((new = pool_doc_render(doc, &new_len, err)) == NULL)
		goto out;
	if (new_len == old_len && memcmp(new, old, old_len) == 0) {
		rc = POOL_EDIT_UNCHANGED;
		goto out;
	}
	if (validate(path, new, new_len, flags, err) < 0 ||
	    (tmp = temporary_write(&t, &st, new, new_len, path, err)) == NULL)
		goto out;
	if (rename(tmp, t.path) < 0) {
		err_set(err, "%s: cannot replace %s: %s", path, t.path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	rc = 0;
	if (dir_sync(t.dir) < 0)
		rc = err_set(err, "%s: replaced, but syncing %s failed: %s", path, t.dir,
			     strerror(errno));
out:
	free(tmp);
	free(new);
	free(old);
	pool_doc_free(doc);
	target_free(&t);
	return rc;
}

int pool_create(const char *path, const char *data, size_t len, char *err)
{
	struct target t = {.lock_fd = -1};
	struct stat st;
	char *copy, *slash, *tmp = NULL;
	int rc = -1;

	if (validate(path, data, len, 0, err) < 0)
		return -1;
	if (lstat(path, &st) == 0)
		return err_set(err, "%s: already exists", path);
	/* The file does not exist yet: resolve its directory instead, so the
	 * lock is the one pool_edit takes on the file later. */
	if ((copy = strdup(path)) == NULL)
		return err_set(err, "out of memory");
	slash = strrchr(copy, '/');
	if (slash != NULL)
		*slash = '\0';
	t.dir = realpath(slash == NULL ? "." : slash == copy ? "/" : copy, NULL);
	if (t.dir == NULL) {
		err_set(err, "%s: %s", path, strerror(errno));
		free(copy);
		return -1;
	}
	t.path = path_join(t.dir, "", slash ? slash + 1 : copy, "");
	free(copy);
	if (t.path == NULL) {
		err_set(err, "out of memory");
		goto out;
	}
	t.base = strrchr(t.path, '/') + 1;
	if (target_lock(&t, path, err) < 0)
		goto out;
	stale_temporaries_remove(&t);
	if ((tmp = temporary_write(&t, NULL, data, len, path, err)) == NULL)
		goto out;
	/* link(2), unlike rename(2), never replaces: the file appears whole,
	 * or not at all if someone else made it first. */
	if (link(tmp, t.path) < 0) {
		if (errno == EEXIST)
			err_set(err, "%s: already exists", path);
		else
			err_set(err, "%s: %s", path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	unlink(tmp);
	rc = 0;
	if (dir_sync(t.dir) < 0)
		rc = err_set(err, "%s: created, but syncing %s failed: %s", path, t.dir,
			     strerror(errno));
out:
	free(tmp);
	target_free(&t);
	return rc;
}

/* ---- replacing any file ---- */

/* A target for a file that does not exist yet: its directory resolved, the
 * name as given. */
static int target_open_new(struct target *t, const char *path, char *err)
{
	char *copy = strdup(path), *slash, *dir;
	const char *base;

	memset(t, 0, sizeof(*t));
	t->lock_fd = -1;
	if (copy == NULL)
		return err_set(err, "out of memory");
	slash = strrchr(copy, '/');
	base = slash ? slash + 1 : copy;
	if (slash == copy)
		dir = realpath("/", NULL);
	else if (slash != NULL)
		*slash = '\0', dir = realpath(copy, NULL);
	else
		dir = realpath(".", NULL);
	if (dir == NULL || *base == '\0') {
		err_set(err, "%s: %s", path, dir ? "not a file name" : strerror(errno));
		free(dir);
		free(copy);
		return -1;
	}
	t->path = path_join(dir, "", base, "");
	free(dir);
	free(copy);
	if (t->path == NULL)
		return err_set(err, "out of memory");
	if (target_split(t, err) < 0 || target_lock(t, path, err) < 0) {
		target_free(t);
		return -1;
	}
	return 0;
}

int file_replace(const char *path, const char *data, size_t len, mode_t mode, char *err)
{
	struct target t;
	struct stat st, fresh;
	const struct stat *keep;
	char *tmp;
	int rc = -1;

	if (lstat(path, &st) < 0 && errno == ENOENT) {
		if (target_open_new(&t, path, err) < 0)
			return -1;
	} else if (target_open(&t, path, err) < 0) {
		return -1;
	}
	stale_temporaries_remove(&t);
	if (stat(t.path, &st) == 0) {
		if (!S_ISREG(st.st_mode)) {
			err_set(err, "%s: not a regular file", path);
			goto out;
		}
		keep = &st;
	} else {
		memset(&fresh, 0, sizeof(fresh));
		fresh.st_uid = geteuid();
		fresh.st_gid = getegid();
		fresh.st_mode = mode;
		keep = &fresh;
	}
	if ((tmp = temporary_write(&t, keep, data, len, path, err)) == NULL)
		goto out;
	if (rename(tmp, t.path) < 0) {
		err_set(err, "%s: cannot replace %s: %s", path, t.path, strerror(errno));
		unlink(tmp);
		free(tmp);
		goto out;
	}
	free(tmp);
	rc = 0;
	if (dir_sync(t.dir) < 0)
		rc = err_set(err, "%s: replaced, but syncing %s failed: %s", path, t.dir,
			     strerror(errno));
out:
	target_free(&t);
	return rc;
}
