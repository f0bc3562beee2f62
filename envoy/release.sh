#!/usr/bin/env bash
# Builds what users install, reproducibly (the same source and toolchain give the same bytes
# and digests, wherever the checkout and the cargo home are):
#
#   target/release-artifacts/callback_guard-<version>.wasm and .wasm.sha256
#       the module for plain Envoy (`vm_config.code.remote` with `sha256`, or a local file);
#   target/image/  an OCI image layout, tag <version>, in Istio's Wasm image format (the
#       "compat" variant istio-agent accepts: one layer whose only file is /plugin.wasm),
#       made with umoci; push it with skopeo (the command is printed).
#
# Usage: envoy/release.sh   (run from the repository root; `make image` does)
set -euo pipefail

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
cargo_home=${CARGO_HOME:-$HOME/.cargo}
out=target/release-artifacts
image=target/image
work=target/image-build

# Panic locations name source files: map the cargo home and the checkout to fixed prefixes,
# so the module does not depend on where they are. A target directory of its own keeps
# these flags from rebuilding the development build.
RUSTFLAGS="--remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$PWD=/callback-guard" \
  cargo build --release --target wasm32-wasip1 -p callback-guard --lib --locked --target-dir "$work/cargo" --quiet
module="$work/cargo/wasm32-wasip1/release/callback_guard.wasm"

mkdir -p "$out"
cp "$module" "$out/callback_guard-$version.wasm"
(cd "$out" && sha256sum "callback_guard-$version.wasm" > "callback_guard-$version.wasm.sha256")

# The image: a fresh layout every time; file times, owner and mode fixed; every timestamp
# the epoch, so nothing of the moment of the build reaches a digest.
epoch=1970-01-01T00:00:00Z
rm -rf "$image" "$work/bundle"
umoci init --layout "$image"
umoci new --image "$image:$version"
umoci unpack --image "$image:$version" "$work/bundle" > /dev/null
install -m 0644 "$module" "$work/bundle/rootfs/plugin.wasm"
touch -h -d @0 "$work/bundle/rootfs/plugin.wasm" "$work/bundle/rootfs"
umoci repack --image "$image:$version" --history.created "$epoch" "$work/bundle" > /dev/null
umoci config --image "$image:$version" --created "$epoch" --history.created "$epoch" \
  --config.label "org.opencontainers.image.title=callback-guard" \
  --config.label "org.opencontainers.image.version=$version" > /dev/null
rm -rf "$work/bundle"
umoci gc --layout "$image"

digest=$(skopeo inspect --raw "oci:$image:$version" | sha256sum | cut -d' ' -f1)
echo "module: $out/callback_guard-$version.wasm sha256:$(cut -d' ' -f1 "$out/callback_guard-$version.wasm.sha256")"
echo "image:  $image ($version), manifest digest sha256:$digest ($(rustc -V))"
echo "push:   skopeo copy --preserve-digests oci:$image:$version docker://<registry>/callback-guard:$version"
echo "pin:    oci://<registry>/callback-guard@sha256:$digest  (or WasmPlugin.spec.sha256: $digest)"
