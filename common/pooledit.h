/* Editing pool files the way people wrote them, and replacing them safely.
 *
 * A struct pool_doc holds a pool file as its lines: comments, blank lines,
 * indentation, alignment, order and line ends (LF or CR LF) are kept, and an
 * edit changes only the lines it must, so pool_doc_render() of an unedited
 * document gives back the very bytes that were parsed. The document knows
 * the file's shape (sections, KEY = VALUE lines, comments) but not what the
 * keys mean: pool_edit() checks the whole result with pool_parse(), the
 * loader tcpdist itself uses, before anything is written.
 *
 * Sections are named the way the functions below take them: NULL for
 * [pool], a backend's NAME for [backend NAME].
 *
 * Comment lines directly above a section header (no blank line between) are
 * that section's: pool_doc_remove_backend() removes them with it, and keys
 * are never added among them.
 *
 * Like the rest of common/, nothing here prints or exits: a failing call
 * returns -1 and writes one line into err (ERR_LEN bytes, see err.h). */
#ifndef TCPDIST_POOLEDIT_H
#define TCPDIST_POOLEDIT_H

#include <stddef.h>
#include <sys/types.h>

#include "err.h"

struct pool_doc;

/* Splits data (len bytes, need not end in a NUL) into lines. Any text is
 * accepted, even an invalid pool: it is validated after the edit. NULL only
 * when out of memory. */
struct pool_doc *pool_doc_parse(const char *data, size_t len, char *err);

void pool_doc_free(struct pool_doc *doc);

/* The document as text, in a malloc'd buffer of *len bytes (plus a NUL not
 * counted in *len) that the caller frees; NULL when out of memory. */
char *pool_doc_render(const struct pool_doc *doc, size_t *len, char *err);

/* The NAME of the i-th [backend NAME] section, in file order (i from 0);
 * NULL once i is past the last. The pointer lives until the next edit. */
const char *pool_doc_backend(const struct pool_doc *doc, size_t i);

/* 1 if the document has a [backend NAME] section, else 0. */
int pool_doc_has_backend(const struct pool_doc *doc, const char *name);

/* Copies the value of KEY in the section (NULL for [pool]) into buf, as
 * written without blanks or inline comment, and returns 1; returns 0 when the
 * section or the key is absent (the last occurrence counts, as in the
 * loader), -1 when the value does not fit in len bytes. */
int pool_doc_get(const struct pool_doc *doc, const char *section, const char *key, char *buf,
		 size_t len);

/* Sets KEY = VALUE in the section (NULL for [pool]). An existing line keeps
 * its indentation, its spacing around '=' and its inline comment, which
 * stays in its column when the new value leaves room. Every further line of
 * the same key in the section is removed (the one way to set a repeatable
 * key such as listen to a single value). An absent key gets a new line after
 * the section's last KEY = VALUE line (after its header, or the comment
 * lines under it, when it has none), spaced like the line before it. A
 * missing [pool] section is created at the top of the file. Fails for a
 * missing backend, and for a key or value that the file format could not
 * carry or would read differently (empty, blanks around it, control
 * characters, '=' or ':' or ';' or '[' in a key, " ;" in a value). */
int pool_doc_set(struct pool_doc *doc, const char *section, const char *key, const char *value,
		 char *err);

/* Adds a KEY = VALUE line after the section's last KEY = VALUE line, as
 * pool_doc_set() adds an absent key, whatever lines KEY has already: the
 * way to write a repeated key such as check_send in order. */
int pool_doc_append(struct pool_doc *doc, const char *section, const char *key, const char *value,
		    char *err);

/* Removes every KEY line of the section. Returns 1 if it removed any, 0 if
 * there were none, -1 for a missing backend. */
int pool_doc_unset(struct pool_doc *doc, const char *section, const char *key, char *err);

/* Appends a [backend NAME] section at the end of the file, after a blank
 * line. comment, when not NULL, is a line put right under the header, such
 * as "; managed by tcppeer" (it must start with ';' or '#'). Fails if the
 * backend exists or the name is not 1-63 of A-Z a-z 0-9 . _ -. Add its keys
 * with pool_doc_set(); they go below the comment. */
int pool_doc_add_backend(struct pool_doc *doc, const char *name, const char *comment, char *err);

/* Removes the [backend NAME] section: the comment lines directly above its
 * header, the header, its lines up to the next section (except the comment
 * lines directly above that one's header) and, when it was the last
 * section, the blank lines before it. Fails if there is no such backend. */
int pool_doc_remove_backend(struct pool_doc *doc, const char *name, char *err);

/* 1 if a comment line of the [backend NAME] section (under its header, or
 * directly above it) equals comment, blanks around both ignored; else 0. */
int pool_doc_backend_has_comment(const struct pool_doc *doc, const char *name, const char *comment);

/* What a pool_edit() callback returns besides 0 (write the result) and -1
 * (fail with err). */
#define POOL_EDIT_UNCHANGED 1

/* A pool_edit() flag: host names in the result are checked for their form
 * only (pool_parse_unresolved()), for a caller on an event loop that must not
 * wait on DNS and looks up the names it adds itself (tcppeer). */
#define POOL_EDIT_NO_DNS 1

typedef int (*pool_edit_fn)(struct pool_doc *doc, void *ctx, char *err);

/* Edits the pool file at path under an exclusive lock and replaces it
 * atomically (flags: 0 or POOL_EDIT_NO_DNS):
 *  - a symbolic link is followed to the file it names, which is edited in
 *    its own directory, so the link survives;
 *  - flock(2) on the sidecar ".NAME.lock" next to that file (opened
 *    read-only; readable by the file's owner and group, in the file's
 *    group; never removed) serialises every writer, so none loses
 *    another's change; temporary files left by writers that died are
 *    removed;
 *  - fn edits the current content; when it returns POOL_EDIT_UNCHANGED, or
 *    the result is byte-identical, nothing is written;
 *  - the result must pass pool_parse(), else it is refused with the loader's
 *    "FILE:LINE: key: reason" (FILE being path) and nothing is written;
 *  - it is written to a temporary file in the same directory, which gets the
 *    file's mode (and owner, when allowed), is fsync'd and renamed over the
 *    file, and the directory is fsync'd: a reader sees the old file or the
 *    new one, never a part, even if the writer is killed.
 * Returns 0 when the file was replaced, POOL_EDIT_UNCHANGED when nothing had
 * to change, -1 with err set (then the file is untouched). */
int pool_edit(const char *path, int flags, pool_edit_fn fn, void *ctx, char *err);

/* Creates a new pool file at path holding data (len bytes), which must pass
 * pool_parse(), with mode 0666 less the umask, by the same lock, temporary
 * file, fsync and link dance as pool_edit(). Fails, writing nothing, if path
 * exists (even as a dangling symbolic link). */
int pool_create(const char *path, const char *data, size_t len, char *err);

/* Replaces the file at path, whatever it holds, with data (len bytes) by
 * the lock, temporary file, fsync, rename and directory sync of
 * pool_edit(), without parsing it: a reader sees the old content or the
 * new, never a part. An existing file keeps its mode and owner; a new one
 * gets mode (not masked). tcppeer's keyring and snapshot use it. */
int file_replace(const char *path, const char *data, size_t len, mode_t mode, char *err);

#endif
