# tcpdist toolkit. `make` leaves the binaries in bin/.
# make check | make demo | make install | make bench | make SANITIZE=address,undefined

VERSION   = 0.1.0
PREFIX   ?= /usr/local
BINDIR   ?= $(PREFIX)/bin
MANPREFIX ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
DOCDIR   ?= $(PREFIX)/share/doc/tcpdist
DESTDIR  ?=

CC       ?= cc
WARNINGS  = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wpointer-arith -Wvla -Wwrite-strings
CFLAGS   ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -DTCPDIST_VERSION='"$(VERSION)"' $(WARNINGS) \
             $(if $(WERROR),-Werror) -Icommon $(CFLAGS)
ALL_LDFLAGS = $(LDFLAGS)
ifneq ($(SANITIZE),)
ALL_CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ALL_LDFLAGS += -fsanitize=$(SANITIZE)
endif

INIH_CFLAGS := $(shell pkg-config --cflags inih 2>/dev/null)
INIH_LIBS   := $(shell pkg-config --libs inih 2>/dev/null || echo -linih)

# Objects go to a directory per build flavour, so a sanitized build never
# mixes with a plain one.
B = build/$(if $(SANITIZE),san,plain)

COMMON_SRC = $(wildcard common/*.c)
COMMON_OBJ = $(COMMON_SRC:common/%.c=$(B)/common/%.o)
COMMON_LIB = $(B)/libcommon.a

# Every folder in cmd/ is a tool; TOOL_LIBS names what it links beyond common/.
TOOLS = $(notdir $(wildcard cmd/*))
tcpdist_LIBS = -lev $(INIH_LIBS) -lpthread
tcphash_LIBS = $(INIH_LIBS)
tcppeer_LIBS = -lev -lmsgpackc -lz -lcrypto $(INIH_LIBS) -lm
tcppool_LIBS = $(INIH_LIBS)
tool_objs = $(patsubst cmd/%.c,$(B)/%.o,$(wildcard cmd/$(1)/*.c))

UNIT_SRC  = $(wildcard tests/unit/test_*.c)
UNIT_BIN  = $(UNIT_SRC:tests/unit/%.c=$(B)/unit/%)
HELPER_SRC = $(wildcard tests/helpers/*.c)
HELPER_BIN = $(HELPER_SRC:tests/helpers/%.c=build/helpers/%)

MANPAGES = $(wildcard man/*.[1-8])

.PHONY: FORCE all helpers check unit demo install uninstall clean bench lint deps-build deps-check deps-demo deps-bench
all: $(TOOLS:%=bin/%)

define tool_link
$(B)/bin/$(1): $(call tool_objs,$(1)) $(COMMON_LIB) | $(B)/bin/.dir
	$$(CC) $$(ALL_CFLAGS) -o $$@ $(call tool_objs,$(1)) $(COMMON_LIB) $$(ALL_LDFLAGS) $$($(1)_LIBS)
endef
$(foreach t,$(TOOLS),$(eval $(call tool_link,$(t))))

# bin/ holds whichever flavour was built last: copy when it differs.
bin/%: $(B)/bin/% FORCE | bin/.dir
	@cmp -s $< $@ || { cp $< $@.tmp && mv -f $@.tmp $@; }
FORCE:

$(COMMON_LIB): $(COMMON_OBJ)
	rm -f $@
	ar rcs $@ $^

$(B)/common/%.o: common/%.c common/*.h | $(B)/common/.dir
	$(CC) $(ALL_CFLAGS) $(INIH_CFLAGS) -c -o $@ $<

# Each tool's objects: $(B)/TOOL/FILE.o from cmd/TOOL/FILE.c.
.SECONDEXPANSION:
$(B)/%.o: cmd/%.c $$(wildcard $$(dir cmd/%)*.h) common/*.h | $$(@D)/.dir
	$(CC) $(ALL_CFLAGS) -I$(dir $<) -c -o $@ $<

$(B)/unit/%: tests/unit/%.c tests/unit/unit.h $(COMMON_LIB) | $(B)/unit/.dir
	$(CC) $(ALL_CFLAGS) -Itests/unit -o $@ $< $(COMMON_LIB) $(ALL_LDFLAGS) $(INIH_LIBS) \
	    -lev -lsodium -lpthread

# tcppeer's unit tests (tests/unit/test_tcppeer_*.c) link tcppeer's own
# objects as well, all but main.o; the rule with the longer prefix wins.
TCPPEER_UNIT_OBJ = $(filter-out $(B)/tcppeer/main.o,$(call tool_objs,tcppeer))
$(B)/unit/test_tcppeer_%: tests/unit/test_tcppeer_%.c tests/unit/unit.h $(TCPPEER_UNIT_OBJ) \
		$(COMMON_LIB) | $(B)/unit/.dir
	$(CC) $(ALL_CFLAGS) -Itests/unit -Icmd/tcppeer -o $@ $< $(TCPPEER_UNIT_OBJ) $(COMMON_LIB) \
	    $(ALL_LDFLAGS) $(tcppeer_LIBS)

# tcpdist's unit tests (tests/unit/test_tcpdist_*.c) link the parts of
# tcpdist that need no event loop.
TCPDIST_UNIT_OBJ = $(B)/tcpdist/checkproto.o $(B)/tcpdist/clients.o
$(B)/unit/test_tcpdist_%: tests/unit/test_tcpdist_%.c tests/unit/unit.h $(TCPDIST_UNIT_OBJ) \
		$(COMMON_LIB) | $(B)/unit/.dir
	$(CC) $(ALL_CFLAGS) -Itests/unit -Icmd/tcpdist -o $@ $< $(TCPDIST_UNIT_OBJ) $(COMMON_LIB) \
	    $(ALL_LDFLAGS) $(INIH_LIBS)

# Test helpers are plain programs: never sanitized, never -Werror'd by flavour.
build/helpers/%: tests/helpers/%.c tests/helpers/helper.h | build/helpers/.dir
	$(CC) -O2 -g -Wall -Wextra -D_GNU_SOURCE -pthread -o $@ $< -lcrypto

helpers: $(HELPER_BIN)

.PRECIOUS: %/.dir
%/.dir:
	mkdir -p $(@D) && touch $@

# The two commands of the README. Both install missing Debian packages first.
check: deps-check all helpers $(UNIT_BIN)
	@tests/run $(B)/unit

unit: $(UNIT_BIN)
	@for t in $(UNIT_BIN); do $$t || exit 1; done

demo: deps-demo all build/helpers/namesrv
	@examples/demo.sh

bench: deps-bench all helpers $(B)/hashbench $(B)/reloadbench
	@$(B)/hashbench; bash bench/run.sh; BENCH_BUILD=$(B) bash bench/reload.sh

$(B)/reloadbench: bench/reloadbench.c
	$(CC) -O2 -g -Wall -Wextra -D_GNU_SOURCE -pthread -o $@ $<

$(B)/hashbench: bench/hashbench.c $(COMMON_LIB)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(COMMON_LIB) $(ALL_LDFLAGS) $(INIH_LIBS)

deps-build:
	@scripts/deps.sh build
deps-check:
	@scripts/deps.sh check
deps-demo:
	@scripts/deps.sh demo
deps-bench:
	@scripts/deps.sh bench

lint:
	mandoc -T lint -W warning $(MANPAGES)

install: all install-systemd
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANPREFIX)/man1 $(DESTDIR)$(MANPREFIX)/man5 \
	    $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR)
	install -m 755 $(TOOLS:%=bin/%) $(DESTDIR)$(BINDIR)/
	install -m 644 $(wildcard man/*.1) $(DESTDIR)$(MANPREFIX)/man1/
	install -m 644 $(wildcard man/*.5) $(DESTDIR)$(MANPREFIX)/man5/
	for t in $(TOOLS); do \
	    install -m 644 completions/$$t.bash $(DESTDIR)$(BASHCOMPDIR)/$$t; \
	    install -m 644 completions/_$$t $(DESTDIR)$(ZSHCOMPDIR)/_$$t; \
	    install -m 644 completions/$$t.fish $(DESTDIR)$(FISHCOMPDIR)/$$t.fish; \
	done

# The systemd units (dist/systemd/*.in, with BINDIR filled in), the users and
# /etc/tcpdist they need (sysusers.d, tmpfiles.d), and the example layout of
# /etc under $(DOCDIR)/examples.
UNITS = $(notdir $(basename $(wildcard dist/systemd/*.in)))
EXAMPLES = $(patsubst dist/examples/%,%,$(shell find dist/examples -type f))
.PHONY: install-systemd
install-systemd:
	install -d $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR)
	for u in $(UNITS); do \
	    sed 's|@BINDIR@|$(BINDIR)|g' dist/systemd/$$u.in >$(DESTDIR)$(SYSTEMDUNITDIR)/$$u && \
	    chmod 644 $(DESTDIR)$(SYSTEMDUNITDIR)/$$u || exit 1; \
	done
	install -m 644 dist/sysusers.d/tcpdist.conf $(DESTDIR)$(SYSUSERSDIR)/tcpdist.conf
	install -m 644 dist/tmpfiles.d/tcpdist.conf $(DESTDIR)$(TMPFILESDIR)/tcpdist.conf
	for f in $(EXAMPLES); do \
	    install -D -m 644 "dist/examples/$$f" "$(DESTDIR)$(DOCDIR)/examples/$$f" || exit 1; \
	done

uninstall:
	for t in $(TOOLS); do \
	    rm -f $(DESTDIR)$(BINDIR)/$$t $(DESTDIR)$(BASHCOMPDIR)/$$t \
	          $(DESTDIR)$(ZSHCOMPDIR)/_$$t $(DESTDIR)$(FISHCOMPDIR)/$$t.fish; \
	done
	for m in $(notdir $(MANPAGES)); do \
	    rm -f $(DESTDIR)$(MANPREFIX)/man$${m##*.}/$$m; \
	done
	for u in $(UNITS); do rm -f $(DESTDIR)$(SYSTEMDUNITDIR)/$$u; done
	rm -f $(DESTDIR)$(SYSUSERSDIR)/tcpdist.conf $(DESTDIR)$(TMPFILESDIR)/tcpdist.conf
	rm -rf $(DESTDIR)$(DOCDIR)/examples
	rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null || true

# The Debian package, built by dpkg-buildpackage -us -uc -b in a copy of the
# tree (no build products in it), lands in $(DEB_OUT). make check-package
# builds it without its unit tests and tests it (tests/packaging/), once per
# CI run.
DEB_OUT ?= build/deb
.PHONY: deb check-package deps-package
deb: deps-package
	rm -rf $(DEB_OUT)/src && mkdir -p $(DEB_OUT)/src
	rm -f $(DEB_OUT)/tcpdist*_*
	tar -c --exclude=./build --exclude=./bin --exclude=./.git . | tar -x -C $(DEB_OUT)/src
	cd $(DEB_OUT)/src && dpkg-buildpackage -us -uc -b -Jauto
	rm -rf $(DEB_OUT)/src
check-package: deps-package
	@tests/run - tests/packaging/*.bats
deps-package:
	@scripts/deps.sh package

clean:
	rm -rf build bin

# tcppeer's packet and stream decoders under libFuzzer (clang), for
# FUZZ_TIME seconds per target, from its seeds (fuzz/corpus/ for tcppeer,
# fuzz/corpus-proxy/ for the PROXY and CIDR parsers); new inputs collect in
# build/fuzz/. Ends with "N passed, N failed", one per target, as .ci/run
# counts.
FUZZ_TIME ?= 20
FUZZ_CC ?= clang
FUZZ_SRC = fuzz/fuzz_tcppeer.c $(filter-out cmd/tcppeer/main.c,$(wildcard cmd/tcppeer/*.c)) \
           $(COMMON_SRC)
FUZZ_FLAGS = -std=c11 -D_GNU_SOURCE -DTCPDIST_VERSION='"$(VERSION)"' -g -O1 \
             -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Icommon

.PHONY: fuzz
fuzz: build/fuzz/fuzz_tcppeer build/fuzz/fuzz_proxy
	@mkdir -p build/fuzz/corpus build/fuzz/corpus-proxy
	@pass=0; fail=0; \
	fuzz_one() { \
	    echo "$$1 for $(FUZZ_TIME) s; its log: build/fuzz/$$1.log"; \
	    if build/fuzz/$$1 -max_total_time=$(FUZZ_TIME) -max_len=$$2 -timeout=10 \
	        -rss_limit_mb=2048 -print_final_stats=1 build/fuzz/$$3 fuzz/$$3 \
	        >build/fuzz/$$1.log 2>&1; then \
	        grep -E '^(Done|stat::)' build/fuzz/$$1.log; pass=$$((pass + 1)); \
	    else tail -n 60 build/fuzz/$$1.log; fail=$$((fail + 1)); fi; \
	}; \
	fuzz_one fuzz_tcppeer 70000 corpus; \
	fuzz_one fuzz_proxy 2100 corpus-proxy; \
	echo "$$pass passed, $$fail failed"; [ $$fail -eq 0 ]

FUZZ_PROXY_SRC = fuzz/fuzz_proxy.c common/proxy.c common/cidr.c common/escape.c common/num.c \
                 common/err.c
build/fuzz/fuzz_proxy: $(FUZZ_PROXY_SRC) common/*.h | build/fuzz/.dir
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $(FUZZ_PROXY_SRC)

build/fuzz/fuzz_tcppeer: $(FUZZ_SRC) $(wildcard cmd/tcppeer/*.h) common/*.h | build/fuzz/.dir
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -DTCPDIST_VERSION='"$(VERSION)"' -g -O1 \
	    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	    -Icommon -Icmd/tcppeer $(INIH_CFLAGS) -o $@ $(FUZZ_SRC) $(tcppeer_LIBS)
