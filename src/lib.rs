//! callback-guard: an Envoy proxy-wasm filter that lets through only webhook callbacks
//! that are provably from their provider.
//!
//! Everything except `filter` is a pure core with no proxy-wasm dependency, tested natively.

pub mod config;
pub mod etcd;
pub mod form;
pub mod guard;
pub mod host_calls;
pub mod keys;
pub mod metrics;
pub mod net;
pub mod path_view;
pub mod policy;
pub mod providers;
pub mod public_key;
pub mod replay;
pub mod request;
#[cfg(target_arch = "wasm32")]
pub mod shared_data;
pub mod timestamp;
pub mod verdict;

/// The proxy-wasm glue; without the `filter` feature the crate is only the core, for other
/// modules built against it (the benchmark's probe filter).
#[cfg(all(target_arch = "wasm32", feature = "filter"))]
mod filter;
