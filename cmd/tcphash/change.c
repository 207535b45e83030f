/* tcphash --diff POOL --without NAME --set NAME.KEY=VALUE: the pool against
 * a copy of itself edited in memory by tcppool's own document code
 * (common/pooledit.c), so that planning a change needs no scratch file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pooledit.h"
#include "tcphash.h"

/* NAME.KEY=VALUE: NAME may hold dots, a key never does; "pool" is [pool],
 * as in tcppool set. An empty VALUE removes the key. */
static int change_set(struct pool_doc *doc, const char *arg, char *err)
{
	const char *eq = strchr(arg, '='), *dot;
	char name[POOL_NAME_MAX + 1], key[64];

	for (dot = eq ? eq : arg; dot > arg && dot[-1] != '.'; dot--)
		;
	if (eq == NULL || dot == arg || dot - 1 == arg || (size_t)(dot - 1 - arg) > POOL_NAME_MAX ||
	    eq == dot || (size_t)(eq - dot) >= sizeof(key))
		return err_set(err, "--set: '%s': expected NAME.KEY=VALUE", arg);
	snprintf(name, sizeof(name), "%.*s", (int)(dot - 1 - arg), arg);
	snprintf(key, sizeof(key), "%.*s", (int)(eq - dot), dot);
	if (strcmp(name, "pool") != 0 && !pool_doc_has_backend(doc, name))
		return err_set(err, "--set: no backend named '%s'", name);
	if (eq[1] == '\0')
		return pool_doc_unset(doc, strcmp(name, "pool") ? name : NULL, key, err) < 0 ? -1 : 0;
	return pool_doc_set(doc, strcmp(name, "pool") ? name : NULL, key, eq + 1, err);
}

int hashed_load_changed(struct hashed *h, const char *path, const struct pool_change *changes,
			size_t n, char *err)
{
	char why[ERR_LEN], shown[ERR_LEN / 2];
	struct pool_doc *doc = NULL;
	char *data, *text = NULL;
	struct pool *p = NULL;
	size_t len;
	int rc = -1;

	memset(h, 0, sizeof(*h));
	if ((data = pool_read(path, &len, why)) == NULL)
		return err_set(err, "%s: %s", path, why);
	if ((doc = pool_doc_parse(data, len, err)) == NULL)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (changes[i].without && !pool_doc_has_backend(doc, changes[i].arg)) {
			err_set(err, "--without: no backend named '%s'", changes[i].arg);
			goto out;
		}
		if (changes[i].without ? pool_doc_remove_backend(doc, changes[i].arg, err) < 0
				       : change_set(doc, changes[i].arg, err) < 0)
			goto out;
	}
	if ((text = pool_doc_render(doc, &len, err)) == NULL)
		goto out;
	/* Lines of the edited copy: say so, not to be looked up in the file. */
	snprintf(shown, sizeof(shown), "%s (changed)", path);
	if ((p = pool_parse(shown, text, len, err)) == NULL)
		goto out;
	rc = hashed_build(h, path, p, NULL, 0, err);
out:
	free(text);
	free(data);
	pool_doc_free(doc);
	return rc;
}
