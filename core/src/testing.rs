//! What the tests of the core, its property tests and the fuzz targets share (the
//! `test-support` feature; never in the filter): an in-memory store with Envoy's exact
//! shared-data semantics, plus hooks that run just before a `set`, standing in for another
//! worker writing between our get and set.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet, VecDeque};

use crate::replay::SharedStore;
use crate::store::StoreError;

type Hook = Box<dyn FnOnce(&MemoryStore)>;

#[derive(Default)]
pub struct MemoryStore {
    map: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    counter: Cell<u32>,
    hooks: RefCell<VecDeque<Hook>>,
    in_hook: Cell<bool>,
    /// Every key ever written, and the longest value ever written.
    pub written: RefCell<HashSet<String>>,
    pub largest: Cell<usize>,
    pub sets: Cell<usize>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `hook` once, just before the next `set` (not counting sets made by hooks).
    pub fn before_next_set(&self, hook: impl FnOnce(&MemoryStore) + 'static) {
        self.hooks.borrow_mut().push_back(Box::new(hook));
    }

    pub fn set_counter(&self, value: u32) {
        self.counter.set(value);
    }

    pub fn raw(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.map.borrow().get(key).cloned()
    }

    fn next_cas(&self) -> u32 {
        let next = match self.counter.get().wrapping_add(1) {
            0 => 1,
            n => n,
        };
        self.counter.set(next);
        next
    }
}

impl SharedStore for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        Ok(self.raw(key))
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<bool, StoreError> {
        if !self.in_hook.get() {
            let hook = self.hooks.borrow_mut().pop_front();
            if let Some(hook) = hook {
                self.in_hook.set(true);
                hook(self);
                self.in_hook.set(false);
            }
        }
        let stored = self.map.borrow().get(key).map(|(_, c)| *c);
        if let Some(stored) = stored {
            if cas != 0 && cas != stored {
                return Ok(false);
            }
        }
        let cas = self.next_cas();
        self.map
            .borrow_mut()
            .insert(key.to_string(), (value.to_vec(), cas));
        self.written.borrow_mut().insert(key.to_string());
        self.largest.set(self.largest.get().max(value.len()));
        self.sets.set(self.sets.get() + 1);
        Ok(true)
    }
}
