//! Group commit of reservations. While one of this VM's reservation callouts is out,
//! the next reservations wait for it instead of each sending their own; when it comes
//! back, they go together in one callout, where the store batches (etcd over gRPC nests
//! them in one transaction, and under load commits one raft entry for many callbacks);
//! alone, a reservation goes at once as before.
//!
//! Envoy hands every callout's answer to the SDK, which passes it to the context that
//! was running when it was sent, or drops it if that context has ended. So a request
//! sends a callout only from its own callbacks (its answer comes back to it); the
//! requests that waited are sent by the root context on its next tick (the root lives
//! as long as the VM), and a callout's answer is handed to each request it carried under
//! that request's context (`set_effective_context`), where the verdict is made as if it
//! had asked alone.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::time::Instant;

use proxy_wasm::hostcalls;

use super::{GuardRequest, State};
use callback_guard::store::{FleetStore, Step};

/// Reservation callouts a VM keeps out at once; more wait to go in the next.
const MAX_IN_FLIGHT: usize = 2;

type Shared = Rc<RefCell<GuardRequest>>;

#[derive(Default)]
pub struct Lane {
    /// The root context's id, and the context whose callback is running now.
    root: u32,
    running: u32,
    /// Reservation callouts out: the request whose callout it is, and whether the root
    /// sent it (so that its answer comes even if the request ends first).
    in_flight: HashMap<u32, (Weak<RefCell<GuardRequest>>, bool)>,
    waiting: Vec<Weak<RefCell<GuardRequest>>>,
}

impl Lane {
    pub fn set_root(&mut self, root: u32) {
        self.root = root;
    }

    /// Entering a callback of context `id`.
    pub fn running(&mut self, id: u32) {
        self.running = id;
    }

    pub fn running_root(&mut self) {
        self.running = self.root;
    }

    pub fn root(&self) -> u32 {
        self.root
    }

    /// Whether request `id` may send a callout to `store` now: from its own callback or
    /// the root's, with room for another reservation callout (where the store batches).
    pub fn may_send(&self, id: u32, store: &dyn FleetStore) -> bool {
        let here = self.running == id || self.running == self.root;
        here && (store.max_batch() == 1 || self.in_flight.len() < MAX_IN_FLIGHT)
    }

    /// Whether waiting requests could go now, on the root's next tick.
    pub fn launchable(&self) -> bool {
        !self.waiting.is_empty() && self.in_flight.len() < MAX_IN_FLIGHT
    }

    pub fn wait(&mut self, request: Weak<RefCell<GuardRequest>>) {
        self.waiting.push(request);
    }

    pub fn sent(&mut self, token: u32, request: Weak<RefCell<GuardRequest>>) {
        let by_root = self.running == self.root;
        self.in_flight.insert(token, (request, by_root));
    }

    /// The request whose callout `token` answers, if it is a reservation's.
    pub fn came_back(&mut self, token: u32) -> Option<Shared> {
        self.in_flight.remove(&token)?.0.upgrade()
    }

    /// A request ends with callout `token` out: unless the root sent it, its answer will
    /// never come.
    pub fn abandoned(&mut self, token: u32) {
        if self
            .in_flight
            .get(&token)
            .is_some_and(|(_, by_root)| !by_root)
        {
            self.in_flight.remove(&token);
        }
    }

    /// Up to `room` waiting reservations that can go with one to `store` on `keys` (same
    /// link, a key of their own, time left until `by`), each with its step. Requests that
    /// no longer wait are dropped from the queue.
    pub fn followers(
        &mut self,
        store: &dyn FleetStore,
        keys: &mut Vec<String>,
        by: Instant,
        room: usize,
    ) -> Vec<(Shared, Step)> {
        let mut taken = Vec::new();
        let mut kept = Vec::with_capacity(self.waiting.len());
        for weak in self.waiting.drain(..) {
            let Some(request) = weak.upgrade() else {
                continue;
            };
            let fits = match request.try_borrow() {
                Ok(theirs) => match waiting_step(&theirs, store, by) {
                    // No longer waiting (it ended, or went on its own).
                    None => continue,
                    Some((key, Some(step))) if taken.len() < room && !keys.contains(&key) => {
                        keys.push(key);
                        Some(step)
                    }
                    Some(_) => None,
                },
                // The caller itself, busy: it waits for the next one.
                Err(_) => None,
            };
            if let Some(step) = fits {
                taken.push((request, step));
            } else {
                kept.push(weak);
            }
        }
        self.waiting = kept;
        taken
    }

    /// The first waiting reservation, if a callout may go now, to send as a leader (out
    /// of the queue).
    pub fn next_leader(&mut self) -> Option<Shared> {
        while self.launchable() {
            let Some(request) = self.waiting.remove(0).upgrade() else {
                continue;
            };
            if request.try_borrow().is_ok_and(|theirs| waits(&theirs)) {
                return Some(request);
            }
        }
        None
    }
}

fn waits(request: &GuardRequest) -> bool {
    matches!(&request.state, State::Reserving(r) if r.token.is_none())
}

/// The key a waiting reservation writes, and its step if it can go with one to `store`
/// answered by `by` (same link, a step that nests, time enough); `None` when it no longer
/// waits.
fn waiting_step(
    request: &GuardRequest,
    store: &dyn FleetStore,
    by: Instant,
) -> Option<(String, Option<Step>)> {
    let State::Reserving(reserving) = &request.state else {
        return None;
    };
    if !waits(request) {
        return None;
    }
    let fits = request
        .plugin
        .as_ref()
        .and_then(|plugin| plugin.fleet(reserving.route))
        .is_some_and(|(_, theirs)| theirs.link() == store.link())
        && reserving.deadline >= by
        && reserving.op.nests();
    let step = fits.then(|| reserving.op.step());
    Some((reserving.op.key().to_string(), step))
}

/// Runs `f` on `request` under its own context, then returns to context `back`.
pub fn as_context(back: u32, request: &Shared, f: impl FnOnce(&mut GuardRequest)) {
    let Ok(mut theirs) = request.try_borrow_mut() else {
        return;
    };
    let _ = hostcalls::set_effective_context(theirs.id);
    f(&mut theirs);
    drop(theirs);
    let _ = hostcalls::set_effective_context(back);
}
