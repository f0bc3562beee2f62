//! A replay store with Envoy shared data's semantics, in memory: `set` on an existing key
//! fails unless `cas` is zero or the key's own; every write gives the key a new non-zero cas.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use callback_guard::replay::{SharedStore, StoreError};

#[derive(Default)]
pub struct MemoryStore {
    map: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    counter: Cell<u32>,
}

impl SharedStore for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        Ok(self.map.borrow().get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<bool, StoreError> {
        let mut map = self.map.borrow_mut();
        if let Some((_, current)) = map.get(key) {
            if cas != 0 && cas != *current {
                return Ok(false);
            }
        }
        let next = self.counter.get().wrapping_add(1).max(1);
        self.counter.set(next);
        map.insert(key.to_string(), (value.to_vec(), next));
        Ok(true)
    }
}
