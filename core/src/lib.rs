//! callback-guard's pure core: everything the filter decides, with no proxy-wasm
//! dependency (the compiler keeps the host out), tested natively. The filter crate (the
//! repository's root) is the glue that runs it in Envoy.

pub mod config;
pub mod form;
pub mod guard;
pub mod keys;
pub mod metrics;
pub mod net;
pub mod path_view;
pub mod policy;
pub mod providers;
pub mod public_key;
pub mod remote_key;
pub mod replay;
pub mod request;
pub mod sealed;
pub mod store;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
pub mod timestamp;
pub mod verdict;
