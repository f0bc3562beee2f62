//! Envoy shared data as the replay cache's [`SharedStore`]: the store of the filter, and
//! of anything else built against the core in the same host (the benchmark's probe).

use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;

use crate::host_calls::{count, HostCall};
use callback_guard::replay::SharedStore;
use callback_guard::store::StoreError;

/// Envoy shared data, shared by every worker thread of this Envoy process.
pub struct HostStore;

impl SharedStore for HostStore {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        count(HostCall::SharedDataGet);
        match hostcalls::get_shared_data(key) {
            Ok((Some(value), Some(cas))) => Ok(Some((value, cas))),
            Ok(_) => Ok(None),
            Err(_) => Err(StoreError::Host),
        }
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<bool, StoreError> {
        count(HostCall::SharedDataSet);
        match hostcalls::set_shared_data(key, Some(value), Some(cas)) {
            Ok(()) => Ok(true),
            Err(Status::CasMismatch) => Ok(false),
            Err(_) => Err(StoreError::Host),
        }
    }
}
