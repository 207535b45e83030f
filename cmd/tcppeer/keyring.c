/* memberlist's encryption: AES-GCM (OpenSSL libcrypto) with a keyring whose
 * first key sends and whose every key is tried on receive. A sealed payload
 * is [version][12-byte nonce][ciphertext][16-byte tag]; version 1 is
 * unpadded, version 0 (protocol 1 senders) PKCS#7-padded. UDP packets are a
 * bare sealed payload with no additional data; a TCP stream is framed as
 * [10][u32 big-endian length][sealed payload], those 5 bytes being the
 * additional data. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <libgen.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "log.h"
#include "pooledit.h"
#include "tcppeer.h"

/* The node's keys: the ring in use (on: encryption is on), from --keyring,
 * read again on SIGHUP and changed by serf's key queries. */
struct keyring_state {
	struct keyring kr;
	int on;
	ev_signal sighup_w;
};

#define NONCE_LEN 12
#define TAG_LEN 16
#define KEYRING_FILE_MAX 65536

static const EVP_CIPHER *cipher_for(size_t keylen)
{
	switch (keylen) {
	case 16:
		return EVP_aes_128_gcm();
	case 24:
		return EVP_aes_192_gcm();
	case 32:
		return EVP_aes_256_gcm();
	}
	return NULL;
}

/* One base64 key; 0 or -1. */
static int key_decode(const char *s, size_t len, uint8_t *key, uint8_t *keylen)
{
	uint8_t out[64];
	size_t pad = 0;
	int n;

	if (len == 0 || len % 4 != 0 || len > 48)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == '=') {
			if (i < len - 2)
				return -1;
			pad++;
		} else if (pad || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
				    (c >= '0' && c <= '9') || c == '+' || c == '/')) {
			return -1;
		}
	}
	n = EVP_DecodeBlock(out, (const unsigned char *)s, (int)len);
	if (n < 0 || (size_t)n < pad)
		return -1;
	n -= (int)pad;
	if (cipher_for((size_t)n) == NULL)
		return -1;
	memcpy(key, out, (size_t)n);
	*keylen = (uint8_t)n;
	return 0;
}

int keyring_parse(const char *text, size_t len, struct keyring *kr, char *err)
{
	size_t off = 0;
	int line = 0;

	memset(kr, 0, sizeof(*kr));
	while (off < len) {
		const char *s = text + off, *nl = memchr(s, '\n', len - off);
		size_t l = nl ? (size_t)(nl - s) : len - off;

		off += l + (nl != NULL);
		line++;
		while (l > 0 && (s[l - 1] == '\r' || s[l - 1] == ' ' || s[l - 1] == '\t'))
			l--;
		while (l > 0 && (*s == ' ' || *s == '\t')) {
			s++;
			l--;
		}
		if (l == 0 || *s == '#')
			continue;
		if (kr->n == KEYRING_MAX)
			return err_set(err, "more than %d keys", KEYRING_MAX);
		if (key_decode(s, l, kr->key[kr->n], &kr->len[kr->n]) < 0)
			return err_set(err, "line %d: not a base64 AES key of 16, 24 or 32 bytes", line);
		for (int i = 0; i < kr->n; i++)
			if (kr->len[i] == kr->len[kr->n] &&
			    memcmp(kr->key[i], kr->key[kr->n], kr->len[i]) == 0)
				return err_set(err, "line %d: the same key twice", line);
		kr->n++;
	}
	if (kr->n == 0)
		return err_set(err, "no key");
	return 0;
}

int keyring_load(const char *path, struct keyring *kr, char *err)
{
	char buf[KEYRING_FILE_MAX], why[ERR_LEN];
	/* O_NONBLOCK: a FIFO put there must not hang the node in open(). */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	FILE *f;
	size_t n;

	if (fd < 0)
		return err_set(err, "keyring '%s': %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return err_set(err, "keyring '%s': not a regular file", path);
	}
	if ((f = fdopen(fd, "r")) == NULL) {
		close(fd);
		return err_set(err, "keyring '%s': %s", path, strerror(errno));
	}
	n = fread(buf, 1, sizeof(buf), f);
	if (ferror(f) || n == sizeof(buf)) {
		fclose(f);
		return err_set(err, "keyring '%s': %s", path,
			       n == sizeof(buf) ? "file too large" : "read error");
	}
	fclose(f);
	if (keyring_parse(buf, n, kr, why) < 0) {
		memset(buf, 0, sizeof(buf));
		return err_set(err, "keyring '%s': %s", path, why);
	}
	memset(buf, 0, sizeof(buf));
	return 0;
}

size_t keyring_sealed_len(size_t plainlen)
{
	return 1 + NONCE_LEN + plainlen + TAG_LEN;
}

int keyring_seal(const struct keyring *kr, const uint8_t *msg, size_t len, const uint8_t *aad,
		 size_t aadlen, uint8_t *out)
{
	const EVP_CIPHER *c = cipher_for(kr->len[0]);
	EVP_CIPHER_CTX *ctx;
	int outl, ok;

	if (c == NULL || len > INT32_MAX || (ctx = EVP_CIPHER_CTX_new()) == NULL)
		return -1;
	out[0] = 1;
	ok = RAND_bytes(out + 1, NONCE_LEN) == 1 &&
	     EVP_EncryptInit_ex(ctx, c, NULL, kr->key[0], out + 1) == 1 &&
	     (aadlen == 0 || EVP_EncryptUpdate(ctx, NULL, &outl, aad, (int)aadlen) == 1) &&
	     EVP_EncryptUpdate(ctx, out + 1 + NONCE_LEN, &outl, msg, (int)len) == 1 &&
	     EVP_EncryptFinal_ex(ctx, out + 1 + NONCE_LEN + outl, &outl) == 1 &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, out + 1 + NONCE_LEN + len) ==
		     1;
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : -1;
}

static int open_with(const uint8_t *key, size_t keylen, const uint8_t *in, size_t len,
		     const uint8_t *aad, size_t aadlen, uint8_t *out)
{
	size_t ctlen = len - 1 - NONCE_LEN - TAG_LEN;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int outl, ok;

	if (ctx == NULL)
		return -1;
	ok = EVP_DecryptInit_ex(ctx, cipher_for(keylen), NULL, key, in + 1) == 1 &&
	     (aadlen == 0 || EVP_DecryptUpdate(ctx, NULL, &outl, aad, (int)aadlen) == 1) &&
	     EVP_DecryptUpdate(ctx, out, &outl, in + 1 + NONCE_LEN, (int)ctlen) == 1 &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN,
				 (void *)(in + len - TAG_LEN)) == 1 &&
	     EVP_DecryptFinal_ex(ctx, out + outl, &outl) == 1;
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : -1;
}

int keyring_open(const struct keyring *kr, const uint8_t *in, size_t len, const uint8_t *aad,
		 size_t aadlen, uint8_t *out, size_t *outlen)
{
	size_t ctlen;

	if (len < 1 + NONCE_LEN + TAG_LEN || in[0] > 1 || len > INT32_MAX)
		return -1;
	ctlen = len - 1 - NONCE_LEN - TAG_LEN;
	for (int i = 0; i < kr->n; i++) {
		if (open_with(kr->key[i], kr->len[i], in, len, aad, aadlen, out) < 0)
			continue;
		if (in[0] == 0) { /* PKCS#7 padding to the AES block */
			uint8_t pad = ctlen ? out[ctlen - 1] : 0;

			if (pad == 0 || pad > 16 || pad > ctlen)
				return -1;
			ctlen -= pad;
		}
		*outlen = ctlen;
		return 0;
	}
	return -1;
}

int keyring_stream_seal(const struct keyring *kr, const uint8_t *msg, size_t len, struct wbuf *out)
{
	size_t sealed = keyring_sealed_len(len);
	uint8_t *buf = malloc(5 + sealed);
	int rc = -1;

	if (buf == NULL || sealed > STREAM_MAX)
		goto done;
	buf[0] = MSG_ENCRYPT;
	buf[1] = (uint8_t)(sealed >> 24);
	buf[2] = (uint8_t)(sealed >> 16);
	buf[3] = (uint8_t)(sealed >> 8);
	buf[4] = (uint8_t)sealed;
	if (keyring_seal(kr, msg, len, buf, 5, buf + 5) == 0 && wbuf_put(out, buf, 5 + sealed) == 0)
		rc = 0;
done:
	free(buf);
	return rc;
}

int keyring_stream_open(const struct keyring *kr, const uint8_t *buf, size_t len,
			struct wbuf *plain, const char **why)
{
	uint32_t sealed;
	uint8_t *out;
	size_t outlen;

	if (len < 5)
		return 0;
	if (buf[0] != MSG_ENCRYPT) {
		*why = "plaintext stream, and a keyring";
		return -1;
	}
	sealed = (uint32_t)buf[1] << 24 | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 8 | buf[4];
	if (sealed > STREAM_MAX || sealed < keyring_sealed_len(0)) {
		*why = "encrypted stream of an impossible length";
		return -1;
	}
	if (len < 5 + (size_t)sealed)
		return 0;
	out = malloc(sealed);
	if (out == NULL) {
		*why = "out of memory";
		return -1;
	}
	if (keyring_open(kr, buf + 5, sealed, buf, 5, out, &outlen) < 0) {
		free(out);
		*why = "stream not decryptable with any key";
		return -1;
	}
	wbuf_reset(plain);
	if (wbuf_put(plain, out, outlen) < 0) {
		free(out);
		*why = "decrypted stream over its size limit";
		return -1;
	}
	free(out);
	return 1;
}

void keyring_key_text(const struct keyring *kr, int i, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, kr->key[i], kr->len[i]);
}

static int key_index(const struct keyring *kr, const uint8_t *key, size_t len)
{
	for (int i = 0; i < kr->n; i++)
		if (kr->len[i] == len && memcmp(kr->key[i], key, len) == 0)
			return i;
	return -1;
}

/* memberlist's messages, so that serf keys prints what it would for a serf agent. */
int keyring_add(struct keyring *kr, const uint8_t *key, size_t len, char *err)
{
	if (cipher_for(len) == NULL)
		return err_set(err, "key size must be 16, 24 or 32 bytes");
	if (key_index(kr, key, len) >= 0)
		return 0;
	if (kr->n == KEYRING_MAX)
		return err_set(err, "keyring is full (%d keys)", KEYRING_MAX);
	memcpy(kr->key[kr->n], key, len);
	kr->len[kr->n++] = (uint8_t)len;
	return 0;
}

int keyring_use(struct keyring *kr, const uint8_t *key, size_t len, char *err)
{
	int i = key_index(kr, key, len);

	if (i < 0)
		return err_set(err, "Requested key is not in the keyring");
	/* The primary first, the others in their order. */
	memmove(kr->key[1], kr->key[0], (size_t)i * sizeof(kr->key[0]));
	memmove(kr->len + 1, kr->len, (size_t)i);
	memcpy(kr->key[0], key, len);
	kr->len[0] = (uint8_t)len;
	return 0;
}

int keyring_remove(struct keyring *kr, const uint8_t *key, size_t len, char *err)
{
	int i = key_index(kr, key, len);

	if (i == 0)
		return err_set(err, "Removing the primary key is not allowed");
	if (i < 0)
		return 0;
	memmove(kr->key[i], kr->key[i + 1], (size_t)(kr->n - i - 1) * sizeof(kr->key[0]));
	memmove(kr->len + i, kr->len + i + 1, (size_t)(kr->n - i - 1));
	kr->n--;
	memset(kr->key[kr->n], 0, sizeof(kr->key[0]));
	kr->len[kr->n] = 0;
	return 0;
}

int keyring_save(const char *path, const struct keyring *kr, char *err)
{
	char text[KEYRING_MAX * 46 + 1];
	size_t off = 0;
	int rc;

	for (int i = 0; i < kr->n; i++) {
		keyring_key_text(kr, i, text + off);
		off += strlen(text + off);
		text[off++] = '\n';
	}
	/* The atomic replace tcppool uses: a reader sees the old ring or the new. */
	rc = file_replace(path, text, off, 0600, err);
	memset(text, 0, sizeof(text));
	return rc;
}

const struct keyring *keyring_ring(const struct peer *p)
{
	return p->keys != NULL && p->keys->on ? &p->keys->kr : NULL;
}

/* SIGHUP: the keyring file again; a file that does not load leaves the
 * keys in use as they were. */
static void sighup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct peer *p = w->data;
	struct keyring kr;
	char err[ERR_LEN];

	(void)loop;
	(void)revents;
	if (keyring_ring(p) == NULL) {
		log_info("SIGHUP: no keyring to reload");
		return;
	}
	if (keyring_load(p->cfg.keyring_path, &kr, err) < 0) {
		log_warn("keyring reloading FAILED, keys unchanged: %s", err);
		return;
	}
	p->keys->kr = kr;
	memset(&kr, 0, sizeof(kr));
	log_info("keyring reloaded: %d key%s", p->keys->kr.n, p->keys->kr.n == 1 ? "" : "s");
}

int keyring_start(struct peer *p, char *err)
{
	struct keyring_state *ks = calloc(1, sizeof(*ks));

	if (ks == NULL)
		return err_set(err, "out of memory");
	p->keys = ks;
	if (p->cfg.keyring_path != NULL) {
		if (keyring_load(p->cfg.keyring_path, &ks->kr, err) < 0)
			return -1;
		ks->on = 1;
	}
	ev_signal_init(&ks->sighup_w, sighup_cb, SIGHUP);
	ks->sighup_w.data = p;
	ev_signal_start(p->loop, &ks->sighup_w);
	return 0;
}

int keyring_set(struct peer *p, const struct keyring *kr)
{
	if (kr == NULL) {
		keyring_stop(p);
		return 0;
	}
	if (p->keys == NULL && (p->keys = calloc(1, sizeof(*p->keys))) == NULL)
		return -1;
	p->keys->kr = *kr;
	p->keys->on = 1;
	return 0;
}

int keyring_change(struct peer *p, enum key_change op, const uint8_t *key, size_t len, char *err)
{
	struct keyring_state *ks = p->keys;
	struct keyring before;
	int rc, changed;

	if (keyring_ring(p) == NULL)
		return err_set(err, "no keyring");
	before = ks->kr;
	rc = op == KEY_INSTALL ? keyring_add(&ks->kr, key, len, err)
	     : op == KEY_USE   ? keyring_use(&ks->kr, key, len, err)
			       : keyring_remove(&ks->kr, key, len, err);
	changed = rc == 0 && memcmp(&before, &ks->kr, sizeof(before)) != 0;
	if (changed && p->cfg.keyring_path != NULL &&
	    keyring_save(p->cfg.keyring_path, &ks->kr, err) < 0) {
		ks->kr = before;
		rc = -1;
		changed = 0;
	}
	memset(&before, 0, sizeof(before));
	return rc < 0 ? -1 : changed;
}

void keyring_stop(struct peer *p)
{
	struct keyring_state *ks = p->keys;

	if (ks == NULL)
		return;
	if (ev_is_active(&ks->sighup_w))
		ev_signal_stop(p->loop, &ks->sighup_w);
	memset(ks, 0, sizeof(*ks));
	free(ks);
	p->keys = NULL;
}
