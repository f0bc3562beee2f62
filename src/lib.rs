//! callback-guard, the filter: the proxy-wasm glue that runs the pure core
//! ([`callback_guard`], the `core/` crate) inside Envoy. It holds what must talk to the host
//! (shared data, HTTP callouts, the request's headers and body) and nothing else.

pub mod host_calls;
#[cfg(target_arch = "wasm32")]
pub mod shared_data;

/// The proxy-wasm glue; without the `filter` feature the crate is only its host store, for
/// other modules built against it (the benchmark's probe filter).
#[cfg(all(target_arch = "wasm32", feature = "filter"))]
mod filter;
