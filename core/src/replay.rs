//! The replay cache: remembers each verified nonce for a window, bound to a fingerprint of
//! the request it first carried. Vobiz voice signatures cover only URL and nonce, never the
//! body, so this memory is the security control against replays with a swapped body.
//!
//! Pure algorithm over a [`SharedStore`] (Envoy shared data in the filter, an in-memory map
//! in tests). The store has no delete, no TTL and no listing, so the key space is fixed:
//! `slots` keys per cache, each holding fixed-size entries, expired lazily whenever a slot
//! is rewritten. A nonce lives in exactly one slot, so its reservation is one
//! compare-and-swap on one key: exactly-once under races needs nothing more.
//!
//! # Layout: room where the nonces fall
//!
//! Nonces hash into slots unevenly (the live ones in a slot are Poisson distributed), so
//! slots are sized for [`NONCES_PER_SLOT`] = 24 nonces each but hold up to [`SLOT_ENTRIES`]
//! = 64. At 90 % of `max_entries` a slot holds 21.6 live nonces on average, and the chance
//! that the slot of a new nonce is full is P(Poisson(21.6) >= 64) = 1.2e-13: no refusal in
//! a lifetime of callbacks. At 100 % it is 1e-11, at 120 % 1e-8; refusals (or, if the
//! operator chose so, forgetting the oldest delivered entries: [`WhenFull`]) start only
//! well beyond `max_entries`. (Slots of 32 holding 32, the previous layout, had 30 % of
//! slots full at 90 %.)
//!
//! # Memory per remembered nonce
//!
//! * Entry: [`ENTRY_SIZE`] = 16 (id) + 16 (fingerprint) + 4 (expires_at) + 4 (deadline)
//!   + 1 (state) = **41 bytes**.
//! * Per slot key in Envoy, estimated at [`ENVOY_KEY_OVERHEAD`] = **160 bytes**: the
//!   `unordered_map` node (next pointer, cached hash, key `std::string`, value
//!   `pair<std::string, uint32_t>`: about 88 bytes, ~96 after malloc rounding), the key's
//!   heap buffer (`cg2/vobiz-voice/1234` is past the 15-byte SSO: ~32), the value buffer's
//!   malloc overhead (~16) and a bucket pointer (8). That is ~152; rounded up. Plus the
//!   1-byte format version.
//! * At 90 % occupancy a slot holds 21.6 nonces: 41 + 161 / 21.6 = **~49 bytes per
//!   nonce** ([`BYTES_PER_NONCE`]), measured by `make bench`. Under the 64-byte budget.
//!
//! Hard bound for a cache: `slots × (ENVOY_KEY_OVERHEAD + MAX_SLOT_VALUE)` bytes, reached
//! only with every slot full (about 2.6 × `max_entries` live nonces): 100 000 entries ->
//! 4 167 slots -> ~11.6 MB.
//!
//! The slot of an id depends on the slot count: a cache with another `max_entries` under the
//! same prefix looks in other slots. Put anything that changes the slot count (or the format)
//! into the prefix, and expect a resize to forget, like a restart does.

use std::cell::RefCell;

use crate::store::StoreError;

/// Slots are sized for this many live nonces each: `max_entries / 24` slots.
pub const NONCES_PER_SLOT: u32 = 24;
/// Entries a slot holds at most: room for the slots that Poisson fills above the mean.
pub const SLOT_ENTRIES: usize = 64;
/// Bytes of one encoded entry.
pub const ENTRY_SIZE: usize = 16 + 16 + 4 + 4 + 1;
/// Largest slot value: the version byte and a full slot.
pub const MAX_SLOT_VALUE: usize = 1 + SLOT_ENTRIES * ENTRY_SIZE;
/// Estimated bytes Envoy spends per shared-data key besides the value bytes (see module doc).
pub const ENVOY_KEY_OVERHEAD: usize = 160;
/// Estimated bytes per remembered nonce at 90 % occupancy (21.6 nonces a slot), everything
/// included.
pub const BYTES_PER_NONCE: usize = ENTRY_SIZE + ((ENVOY_KEY_OVERHEAD + 1) * 10).div_ceil(216);
const _: () = assert!(BYTES_PER_NONCE < 64);
/// Slots sampled for the occupancy estimate: evenly spaced, the same in every worker.
pub const OCCUPANCY_SAMPLE: u32 = 256;

/// Leading byte of every slot value. A new layout needs a new key prefix as well, since old
/// and new filter versions share the store during a rollout.
const FORMAT_VERSION: u8 = 1;
/// CAS attempts per operation before giving up; each failure means another worker wrote the
/// same slot between our get and set, so 16 in a row means the slot is hot beyond reason.
const MAX_ATTEMPTS: usize = 16;
/// Used when the caller passes a zero `create_cas`: zero would make the create unconditional
/// (racy), while any fixed non-zero value only risks colliding with a live key's CAS.
const FALLBACK_CREATE_CAS: u32 = 0x9e37_79b9;

/// A key -> (value, cas) store with Envoy shared-data semantics: `set` on an existing key
/// fails when `cas` is non-zero and differs from the stored one; `set` on an absent key
/// always inserts; every write gives the key a new non-zero cas.
pub trait SharedStore {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError>;
    /// Ok(true) = written, Ok(false) = CasMismatch.
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<bool, StoreError>;
}

/// What `reserve` found, and what the caller does with the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// First sight of this nonce: forward, then settle.
    Fresh,
    /// Same request again after a failed or lost attempt: forward, then settle.
    Retry,
    /// Same request, already delivered: do not deliver twice.
    Duplicate,
    /// Same request, an earlier attempt is still in flight: 409 so the provider retries.
    InFlight,
    /// Same nonce, different request: a replay with altered content. Refuse.
    Tampered,
    /// The slot is full of live entries and none may be forgotten. 503.
    Full,
}

/// What a cache does for a new nonce whose slot is full of live entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Refuse the new nonce (503 `replay_cache_full`): nothing remembered is ever lost.
    #[default]
    Refuse,
    /// Forget the slot's oldest *delivered* entry to make room: the callback goes through,
    /// and a replay of the forgotten one would be taken as new for the rest of its window.
    /// Never an entry in flight or failed (their retries are still owed an answer).
    ForgetOldestDelivered,
}

/// How the upstream answered a forwarded request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Failed,
}

/// Where a remembered request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    InFlight = 0,
    Delivered = 1,
    Failed = 2,
}

impl State {
    pub fn from_byte(byte: u8) -> Result<Self, StoreError> {
        match byte {
            0 => Ok(State::InFlight),
            1 => Ok(State::Delivered),
            2 => Ok(State::Failed),
            _ => Err(StoreError::Corrupt),
        }
    }
}

/// What is remembered about one id, whatever the store: the fingerprint it is bound to,
/// its state and its two deadlines. The rules below are the replay model; every store
/// (this cache, the fleet-wide one in [`crate::store::etcd`]) applies them and no other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    pub fingerprint: [u8; 16],
    /// Unix seconds; the id is forgotten once `now >= expires_at`.
    pub expires_at: u32,
    /// Unix seconds; an `InFlight` claim lapses once `now >= deadline`.
    pub deadline: u32,
    pub state: State,
}

impl Record {
    pub fn live(&self, now: u32) -> bool {
        now < self.expires_at
    }
}

/// How long ids are remembered and claims held: the two durations of a replay window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub window_secs: u32,
    pub inflight_secs: u32,
}

impl Timing {
    /// The claim a request makes on an id nobody remembers.
    pub fn first_sight(&self, fingerprint: &[u8; 16], now: u32) -> Record {
        Record {
            fingerprint: *fingerprint,
            expires_at: now.saturating_add(self.window_secs),
            deadline: now.saturating_add(self.inflight_secs),
            state: State::InFlight,
        }
    }

    /// The claim a retry makes on a failed or lapsed one. The expiry stays, so retries
    /// cannot stretch the window.
    pub fn reclaim(&self, record: &Record, now: u32) -> Record {
        Record {
            state: State::InFlight,
            deadline: now.saturating_add(self.inflight_secs),
            ..*record
        }
    }
}

/// What a live record means for a request with `fingerprint` at `now`: `Tampered`,
/// `Duplicate`, `InFlight`, or `Retry` when the request may claim the id again (the earlier
/// attempt failed, or was in flight past its deadline and so was lost).
pub fn judge(record: &Record, fingerprint: &[u8; 16], now: u32) -> Reservation {
    if record.fingerprint != *fingerprint {
        return Reservation::Tampered;
    }
    match record.state {
        State::Delivered => Reservation::Duplicate,
        State::InFlight if now < record.deadline => Reservation::InFlight,
        State::InFlight | State::Failed => Reservation::Retry,
    }
}

/// The record after the request that claimed it ended with `outcome`; `None` when it
/// must not change: only an in-flight claim with this fingerprint is settled, so a late
/// or foreign settle never reopens a delivered callback.
pub fn settled(record: &Record, fingerprint: &[u8; 16], outcome: Outcome) -> Option<Record> {
    if record.fingerprint != *fingerprint || record.state != State::InFlight {
        return None;
    }
    let state = match outcome {
        Outcome::Delivered => State::Delivered,
        Outcome::Failed => State::Failed,
    };
    Some(Record { state, ..*record })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    id: [u8; 16],
    fingerprint: [u8; 16],
    /// Unix seconds; the entry is forgotten once `now >= expires_at`.
    expires_at: u32,
    /// Unix seconds; an `InFlight` claim lapses once `now >= deadline`.
    deadline: u32,
    state: State,
}

impl Entry {
    fn new(id: [u8; 16], record: Record) -> Self {
        Entry {
            id,
            fingerprint: record.fingerprint,
            expires_at: record.expires_at,
            deadline: record.deadline,
            state: record.state,
        }
    }

    fn record(&self) -> Record {
        Record {
            fingerprint: self.fingerprint,
            expires_at: self.expires_at,
            deadline: self.deadline,
            state: self.state,
        }
    }

    fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let (id, rest) = bytes.split_first_chunk::<16>().ok_or(StoreError::Corrupt)?;
        let (fingerprint, rest) = rest.split_first_chunk::<16>().ok_or(StoreError::Corrupt)?;
        let (expires_at, rest) = rest.split_first_chunk::<4>().ok_or(StoreError::Corrupt)?;
        let (deadline, rest) = rest.split_first_chunk::<4>().ok_or(StoreError::Corrupt)?;
        let state = match rest {
            [byte] => State::from_byte(*byte)?,
            _ => return Err(StoreError::Corrupt),
        };
        Ok(Entry {
            id: *id,
            fingerprint: *fingerprint,
            expires_at: u32::from_le_bytes(*expires_at),
            deadline: u32::from_le_bytes(*deadline),
            state,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&self.fingerprint);
        out.extend_from_slice(&self.expires_at.to_le_bytes());
        out.extend_from_slice(&self.deadline.to_le_bytes());
        out.push(self.state as u8);
    }
}

/// Fails closed on anything but the exact layout: a wrong version, a partial entry, more
/// entries than a slot may hold, or an unknown state.
fn decode_slot(value: &[u8]) -> Result<Vec<Entry>, StoreError> {
    let mut entries = Vec::new();
    decode_slot_into(value, &mut entries)?;
    Ok(entries)
}

/// [`decode_slot`], appending to `entries`.
fn decode_slot_into(value: &[u8], entries: &mut Vec<Entry>) -> Result<(), StoreError> {
    // Any layout's slots decode: SLOT_ENTRIES bounds them all.
    let (&version, body) = value.split_first().ok_or(StoreError::Corrupt)?;
    if version != FORMAT_VERSION
        || body.len() % ENTRY_SIZE != 0
        || body.len() / ENTRY_SIZE > SLOT_ENTRIES
    {
        return Err(StoreError::Corrupt);
    }
    for entry in body.chunks_exact(ENTRY_SIZE) {
        entries.push(Entry::decode(entry)?);
    }
    Ok(())
}

#[cfg(test)]
fn encode_slot(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_slot_into(entries, &mut out);
    out
}

/// The value of a slot holding `entries`, appended to `out`.
fn encode_slot_into(entries: &[Entry], out: &mut Vec<u8>) {
    out.reserve(1 + entries.len() * ENTRY_SIZE);
    out.push(FORMAT_VERSION);
    for entry in entries {
        entry.encode(out);
    }
}

/// The buffers a transaction reuses: the slot's key, its entries and their encoding. One
/// per VM (a wasm VM is one thread), so a reservation or a settle allocates none of its own.
#[derive(Default)]
struct Scratch {
    key: String,
    entries: Vec<Entry>,
    encoded: Vec<u8>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

/// What a transaction decided after reading a slot.
enum Step<T> {
    /// Answer without writing.
    Done(T),
    /// Write the (pruned, modified) entries, then answer.
    Write(T),
}

/// How a cache spreads its entries over slot keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub slots: u32,
    /// Live entries one slot holds at most (at most [`SLOT_ENTRIES`]).
    pub slot_capacity: usize,
}

impl Layout {
    /// The layout for `max_entries` live nonces: a slot per [`NONCES_PER_SLOT`] (at least
    /// one), each with room for [`SLOT_ENTRIES`].
    pub fn for_entries(max_entries: u32) -> Self {
        Layout {
            slots: max_entries.div_ceil(NONCES_PER_SLOT).max(1),
            slot_capacity: SLOT_ENTRIES,
        }
    }
}

/// A replay cache over a fixed set of slot keys.
#[derive(Debug, Clone)]
pub struct ReplayCache {
    prefix: String,
    layout: Layout,
    max_entries: u32,
    when_full: WhenFull,
    timing: Timing,
}

impl ReplayCache {
    /// `max_entries` live nonces, each remembered `window_secs` from first sight; an
    /// in-flight claim lasts `inflight_secs`. Slot keys are `{prefix}{slots}/{index}`: a
    /// cache of another size never reads them.
    pub fn new(prefix: &str, max_entries: u32, window_secs: u32, inflight_secs: u32) -> Self {
        let timing = Timing {
            window_secs,
            inflight_secs,
        };
        Self::with_layout(
            prefix,
            max_entries,
            Layout::for_entries(max_entries),
            timing,
        )
    }

    /// A cache with another layout than the one `max_entries` gets (benchmarks compare).
    pub fn with_layout(prefix: &str, max_entries: u32, layout: Layout, timing: Timing) -> Self {
        let layout = Layout {
            slots: layout.slots.max(1),
            slot_capacity: layout.slot_capacity.clamp(1, SLOT_ENTRIES),
        };
        ReplayCache {
            prefix: format!("{prefix}{}/", layout.slots),
            layout,
            max_entries: max_entries.max(1),
            when_full: WhenFull::default(),
            timing,
        }
    }

    /// What to do for a new nonce whose slot is full (default: refuse it).
    pub fn when_full(self, when_full: WhenFull) -> Self {
        ReplayCache { when_full, ..self }
    }

    pub fn window_secs(&self) -> u32 {
        self.timing.window_secs
    }

    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// Number of slot keys this cache may ever write.
    pub fn slots(&self) -> u32 {
        self.layout.slots
    }

    fn slot_of(&self, id: &[u8; 16]) -> u32 {
        let [a, b, c, d, e, f, g, h, ..] = *id;
        let index = u64::from_le_bytes([a, b, c, d, e, f, g, h]) % u64::from(self.layout.slots);
        // Less than `slots`, which is a u32.
        index as u32
    }

    fn key(&self, id: &[u8; 16]) -> String {
        self.slot_key(self.slot_of(id))
    }

    fn slot_key(&self, slot: u32) -> String {
        let mut key = String::new();
        self.write_slot_key(slot, &mut key);
        key
    }

    fn write_slot_key(&self, slot: u32, key: &mut String) {
        use std::fmt::Write;
        key.push_str(&self.prefix);
        let _ = write!(key, "{slot}");
    }

    /// Atomically claims `id` for a request with `fingerprint`; also says whether a
    /// delivered entry was forgotten to make room ([`WhenFull::ForgetOldestDelivered`]).
    /// `create_cas` is a random non-zero value used only when the slot does not exist yet,
    /// so that two workers creating it at once cannot both succeed (see `SharedStore`).
    pub fn reserve(
        &self,
        store: &dyn SharedStore,
        id: &[u8; 16],
        fingerprint: &[u8; 16],
        now: u32,
        create_cas: u32,
    ) -> Result<(Reservation, bool), StoreError> {
        self.transact(store, id, now, create_cas, |entries| {
            let Some(entry) = entries.iter_mut().find(|e| e.id == *id) else {
                let forgot = entries.len() >= self.layout.slot_capacity;
                if forgot && !self.make_room(entries) {
                    return Step::Done((Reservation::Full, false));
                }
                entries.push(Entry::new(*id, self.timing.first_sight(fingerprint, now)));
                return Step::Write((Reservation::Fresh, forgot));
            };
            match judge(&entry.record(), fingerprint, now) {
                Reservation::Retry => {
                    *entry = Entry::new(*id, self.timing.reclaim(&entry.record(), now));
                    Step::Write((Reservation::Retry, false))
                }
                answer => Step::Done((answer, false)),
            }
        })
    }

    /// Frees one entry of a full slot if the policy allows: the delivered entry seen first.
    fn make_room(&self, entries: &mut Vec<Entry>) -> bool {
        if self.when_full == WhenFull::Refuse {
            return false;
        }
        let oldest = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.state == State::Delivered)
            .min_by_key(|(_, e)| e.expires_at)
            .map(|(i, _)| i);
        match oldest {
            Some(i) => {
                entries.remove(i);
                true
            }
            None => false,
        }
    }

    /// Live entries as a percentage of `max_entries` (above 100 when over it), estimated
    /// from at most [`OCCUPANCY_SAMPLE`] evenly spaced slots: the same slots in every worker,
    /// so they all report the same number.
    pub fn occupancy_percent(&self, store: &dyn SharedStore, now: u32) -> Result<u32, StoreError> {
        let slots = u64::from(self.layout.slots);
        let sampled = slots.min(u64::from(OCCUPANCY_SAMPLE));
        let mut live = 0u64;
        for i in 0..sampled {
            // Less than `slots`, which is a u32.
            let slot = (i * slots / sampled) as u32;
            if let Some((value, _)) = store.get(&self.slot_key(slot))? {
                live += decode_slot(&value)?
                    .iter()
                    .filter(|e| e.expires_at > now)
                    .count() as u64;
            }
        }
        let percent = live * slots * 100 / (sampled * u64::from(self.max_entries));
        Ok(u32::try_from(percent).unwrap_or(u32::MAX))
    }

    /// Read-only: what this cache alone can answer for a request, without writing. `None`
    /// when it cannot decide (the id is unknown here, or it may be claimed again): then a
    /// fleet-wide store in front of which this cache sits must be asked.
    pub fn peek(
        &self,
        store: &dyn SharedStore,
        id: &[u8; 16],
        fingerprint: &[u8; 16],
        now: u32,
    ) -> Result<Option<Reservation>, StoreError> {
        let Some((value, _)) = store.get(&self.key(id))? else {
            return Ok(None);
        };
        let entries = decode_slot(&value)?;
        let found = entries.iter().find(|e| e.id == *id && e.expires_at > now);
        Ok(match found.map(|e| judge(&e.record(), fingerprint, now)) {
            None | Some(Reservation::Retry) => None,
            answer => answer,
        })
    }

    /// Remembers what a fleet-wide store knows about `id`, so that repeats reaching this
    /// Envoy are answered without asking it again. Best effort, as befits a cache: a full
    /// slot records nothing (`Ok(false)`). For the same fingerprint, what this Envoy knows
    /// is never made less precise: a delivered entry stays (delivered is final; an older
    /// answer must not undo it), and a failed record (how someone else's claim is
    /// remembered) does not replace an entry this Envoy holds.
    pub fn remember(
        &self,
        store: &dyn SharedStore,
        id: &[u8; 16],
        record: Record,
        now: u32,
        create_cas: u32,
    ) -> Result<bool, StoreError> {
        if !record.live(now) {
            return Ok(false);
        }
        self.transact(store, id, now, create_cas, |entries| {
            let full = entries.len() >= self.layout.slot_capacity;
            match entries.iter_mut().find(|e| e.id == *id) {
                Some(entry) if entry.record() == record => Step::Done(true),
                Some(entry)
                    if entry.fingerprint == record.fingerprint
                        && (entry.state == State::Delivered || record.state == State::Failed) =>
                {
                    Step::Done(true)
                }
                Some(entry) => {
                    *entry = Entry::new(*id, record);
                    Step::Write(true)
                }
                None if full => Step::Done(false),
                None => {
                    entries.push(Entry::new(*id, record));
                    Step::Write(true)
                }
            }
        })
    }

    /// Records how a reserved request ended. Only a live, in-flight entry with this id and
    /// fingerprint changes; anything else (expired, settled, another request) is left alone,
    /// so a late settle never resurrects a forgotten nonce.
    pub fn settle(
        &self,
        store: &dyn SharedStore,
        id: &[u8; 16],
        fingerprint: &[u8; 16],
        outcome: Outcome,
        now: u32,
    ) -> Result<(), StoreError> {
        self.transact(store, id, now, FALLBACK_CREATE_CAS, |entries| {
            let found = entries.iter_mut().find(|e| e.id == *id).and_then(|entry| {
                settled(&entry.record(), fingerprint, outcome).map(|record| (entry, record))
            });
            match found {
                Some((entry, record)) => {
                    *entry = Entry::new(*id, record);
                    Step::Write(())
                }
                None => Step::Done(()),
            }
        })
    }

    /// Read, prune expired entries, decide, CAS-write; on a CAS mismatch start over from a
    /// fresh read. `decide` sees only live entries and may be called once per attempt.
    fn transact<T>(
        &self,
        store: &dyn SharedStore,
        id: &[u8; 16],
        now: u32,
        create_cas: u32,
        decide: impl FnMut(&mut Vec<Entry>) -> Step<T>,
    ) -> Result<T, StoreError> {
        SCRATCH.with(|shared| match shared.try_borrow_mut() {
            Ok(mut scratch) => self.transact_in(&mut scratch, store, id, now, create_cas, decide),
            // A transaction inside another's (a test's hook writing between get and set).
            Err(_) => {
                let scratch = &mut Scratch::default();
                self.transact_in(scratch, store, id, now, create_cas, decide)
            }
        })
    }

    fn transact_in<T>(
        &self,
        scratch: &mut Scratch,
        store: &dyn SharedStore,
        id: &[u8; 16],
        now: u32,
        create_cas: u32,
        mut decide: impl FnMut(&mut Vec<Entry>) -> Step<T>,
    ) -> Result<T, StoreError> {
        scratch.key.clear();
        self.write_slot_key(self.slot_of(id), &mut scratch.key);
        let create_cas = if create_cas == 0 {
            FALLBACK_CREATE_CAS
        } else {
            create_cas
        };
        for _ in 0..MAX_ATTEMPTS {
            scratch.entries.clear();
            let cas = match store.get(&scratch.key)? {
                // Envoy never hands out cas 0; passing it back would write unconditionally.
                Some((_, 0)) => return Err(StoreError::Host),
                Some((value, cas)) => {
                    decode_slot_into(&value, &mut scratch.entries)?;
                    cas
                }
                None => create_cas,
            };
            scratch.entries.retain(|e| e.expires_at > now);
            match decide(&mut scratch.entries) {
                Step::Done(answer) => return Ok(answer),
                Step::Write(answer) => {
                    scratch.encoded.clear();
                    encode_slot_into(&scratch.entries, &mut scratch.encoded);
                    if store.set(&scratch.key, &scratch.encoded, cas)? {
                        return Ok(answer);
                    }
                }
            }
        }
        Err(StoreError::Contention)
    }
}

/// The replay identity of a signed message: the route it came to, the scheme family that
/// signed it and the hash of the whole message, as length-prefixed parts (see
/// [`Digest16`]), so no two distinct triples share an encoding.
pub fn replay_id(route: &[u8], family: &[u8], message: &[u8; 32]) -> [u8; 16] {
    let mut id = Digest16::new("cg3/replay-id");
    id.part(route);
    id.part(family);
    id.part(message);
    id.finish()
}

/// Truncated BLAKE3 over length-prefixed parts, in its key-derivation mode under a context
/// string that names what is hashed (the replay identity, the fingerprint): no two uses
/// share a hash. Parts are fed one by one, so a fingerprint need not be assembled first.
pub struct Digest16(blake3::Hasher);

impl Digest16 {
    pub fn new(context: &'static str) -> Self {
        Digest16(blake3::Hasher::new_derive_key(context))
    }

    pub fn part(&mut self, bytes: &[u8]) {
        self.0.update(&(bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    /// A number, as its own part.
    pub fn number(&mut self, value: u64) {
        self.part(&value.to_le_bytes());
    }

    pub fn finish(self) -> [u8; 16] {
        let mut out = [0; 16];
        self.0.finalize_xof().fill(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use super::*;
    use crate::testing::MemoryStore;

    const T0: u32 = 1_700_000_000;
    const WINDOW: u32 = 600;
    const INFLIGHT: u32 = 30;
    const CREATE: u32 = 0x5eed_1234;

    /// One slot, so every id shares it (what the race and Full tests need).
    fn cache() -> ReplayCache {
        ReplayCache::new("cg1/test/", 16, WINDOW, INFLIGHT)
    }

    /// The id of a message whose digest is that of `nonce` (the guard hashes the whole
    /// signed message), scoped to `scope`.
    fn id_of(scope: &[u8], nonce: &[u8]) -> [u8; 16] {
        replay_id(scope, b"test", blake3::hash(nonce).as_bytes())
    }

    fn digest16(tag: &'static str, parts: &[&[u8]]) -> [u8; 16] {
        let mut digest = Digest16::new(tag);
        for part in parts {
            digest.part(part);
        }
        digest.finish()
    }

    /// A fingerprint of method, path and body, as the guard binds them (and more).
    fn fingerprint(method: &[u8], path: &[u8], body: &[u8]) -> [u8; 16] {
        digest16("cg3/fingerprint", &[method, path, body])
    }

    fn id(n: u32) -> [u8; 16] {
        id_of(b"route", n.to_string().as_bytes())
    }

    fn fp(body: &str) -> [u8; 16] {
        fingerprint(b"POST", b"/vobiz/answer", body.as_bytes())
    }

    fn reserve(c: &ReplayCache, s: &MemoryStore, n: u32, body: &str, now: u32) -> Reservation {
        c.reserve(s, &id(n), &fp(body), now, CREATE).unwrap().0
    }

    fn settle(c: &ReplayCache, s: &MemoryStore, n: u32, body: &str, o: Outcome, now: u32) {
        c.settle(s, &id(n), &fp(body), o, now).unwrap();
    }

    fn live_ids(c: &ReplayCache, s: &MemoryStore, n: u32, now: u32) -> Vec<[u8; 16]> {
        let (value, _) = s.raw(&c.key(&id(n))).unwrap();
        decode_slot(&value)
            .unwrap()
            .into_iter()
            .filter(|e| e.expires_at > now)
            .map(|e| e.id)
            .collect()
    }

    #[test]
    fn entry_and_slot_sizes_match_the_documented_memory_cost() {
        let entry = Entry {
            id: [1; 16],
            fingerprint: [2; 16],
            expires_at: 3,
            deadline: 4,
            state: State::Failed,
        };
        let mut bytes = Vec::new();
        entry.encode(&mut bytes);
        assert_eq!(bytes.len(), 41);
        assert_eq!(ENTRY_SIZE, 41);
        assert_eq!(Entry::decode(&bytes), Ok(entry));
        assert_eq!(encode_slot(&[entry; SLOT_ENTRIES]).len(), MAX_SLOT_VALUE);
        assert_eq!(MAX_SLOT_VALUE, 2625);
        // 41 + ceil((160 + 1) / 21.6) = 41 + 8: a slot at 90 % of its 24.
        assert_eq!(BYTES_PER_NONCE, 49);
    }

    #[test]
    fn fresh_then_in_flight_then_duplicate_after_delivery() {
        let (c, s) = (cache(), MemoryStore::new());
        assert_eq!(reserve(&c, &s, 1, "a", T0), Reservation::Fresh);
        assert_eq!(reserve(&c, &s, 1, "a", T0 + 1), Reservation::InFlight);
        settle(&c, &s, 1, "a", Outcome::Delivered, T0 + 2);
        let writes = s.sets.get();
        assert_eq!(reserve(&c, &s, 1, "a", T0 + 3), Reservation::Duplicate);
        assert_eq!(
            reserve(&c, &s, 1, "a", T0 + INFLIGHT + 5),
            Reservation::Duplicate
        );
        assert_eq!(s.sets.get(), writes, "answers without a write");
    }

    #[test]
    fn failed_delivery_lets_the_retry_through_once() {
        let (c, s) = (cache(), MemoryStore::new());
        assert_eq!(reserve(&c, &s, 1, "a", T0), Reservation::Fresh);
        settle(&c, &s, 1, "a", Outcome::Failed, T0 + 1);
        assert_eq!(reserve(&c, &s, 1, "a", T0 + 2), Reservation::Retry);
        assert_eq!(reserve(&c, &s, 1, "a", T0 + 3), Reservation::InFlight);
        settle(&c, &s, 1, "a", Outcome::Delivered, T0 + 4);
        assert_eq!(reserve(&c, &s, 1, "a", T0 + 5), Reservation::Duplicate);
    }

    #[test]
    fn in_flight_claim_lapses_into_retry_and_keeps_the_expiry() {
        let (c, s) = (cache(), MemoryStore::new());
        assert_eq!(reserve(&c, &s, 1, "a", T0), Reservation::Fresh);
        assert_eq!(
            reserve(&c, &s, 1, "a", T0 + INFLIGHT - 1),
            Reservation::InFlight
        );
        assert_eq!(reserve(&c, &s, 1, "a", T0 + INFLIGHT), Reservation::Retry);
        let later = T0 + INFLIGHT + 1;
        assert_eq!(reserve(&c, &s, 1, "a", later), Reservation::InFlight);
        let (value, _) = s.raw(&c.key(&id(1))).unwrap();
        let entry = decode_slot(&value).unwrap()[0];
        assert_eq!(entry.expires_at, T0 + WINDOW);
        assert_eq!(entry.deadline, T0 + 2 * INFLIGHT);
        assert_eq!(entry.state, State::InFlight);
    }

    #[test]
    fn different_fingerprint_is_tampering_in_every_state() {
        let (c, s) = (cache(), MemoryStore::new());
        for (n, outcome) in [
            (1, None),
            (2, Some(Outcome::Failed)),
            (3, Some(Outcome::Delivered)),
        ] {
            assert_eq!(reserve(&c, &s, n, "a", T0), Reservation::Fresh);
            if let Some(outcome) = outcome {
                settle(&c, &s, n, "a", outcome, T0);
            }
            let writes = s.sets.get();
            assert_eq!(reserve(&c, &s, n, "b", T0 + 1), Reservation::Tampered);
            // Also after the in-flight claim would have lapsed.
            assert_eq!(
                reserve(&c, &s, n, "b", T0 + INFLIGHT + 1),
                Reservation::Tampered
            );
            let other_path = fingerprint(b"POST", b"/vobiz/hangup", b"a");
            assert_eq!(
                c.reserve(&s, &id(n), &other_path, T0 + 2, CREATE)
                    .map(|r| r.0),
                Ok(Reservation::Tampered)
            );
            assert_eq!(s.sets.get(), writes, "tampering writes nothing");
        }
        // A tampered settle does not touch the genuine entry.
        c.settle(&s, &id(1), &fp("b"), Outcome::Delivered, T0 + 3)
            .unwrap();
        assert_eq!(reserve(&c, &s, 1, "a", T0 + 4), Reservation::InFlight);
    }

    #[test]
    fn entry_is_forgotten_after_the_window() {
        let (c, s) = (cache(), MemoryStore::new());
        assert_eq!(reserve(&c, &s, 1, "a", T0), Reservation::Fresh);
        settle(&c, &s, 1, "a", Outcome::Delivered, T0 + 1);
        assert_eq!(
            reserve(&c, &s, 1, "b", T0 + WINDOW - 1),
            Reservation::Tampered
        );
        assert_eq!(
            reserve(&c, &s, 1, "a", T0 + WINDOW - 1),
            Reservation::Duplicate
        );
        // Once expired, the nonce is unknown again, whatever it carries.
        assert_eq!(reserve(&c, &s, 1, "b", T0 + WINDOW), Reservation::Fresh);
        let (value, _) = s.raw(&c.key(&id(1))).unwrap();
        assert_eq!(decode_slot(&value).unwrap().len(), 1, "old entry pruned");
    }

    #[test]
    fn settle_after_expiry_does_nothing_and_does_not_resurrect() {
        let (c, s) = (cache(), MemoryStore::new());
        assert_eq!(reserve(&c, &s, 1, "a", T0), Reservation::Fresh);
        let before = s.raw(&c.key(&id(1)));
        settle(&c, &s, 1, "a", Outcome::Delivered, T0 + WINDOW);
        assert_eq!(s.raw(&c.key(&id(1))), before, "no write at all");
        assert_eq!(reserve(&c, &s, 1, "a", T0 + WINDOW), Reservation::Fresh);
        // And the fresh reservation is in flight, not the stale Delivered.
        assert_eq!(
            reserve(&c, &s, 1, "a", T0 + WINDOW + 1),
            Reservation::InFlight
        );
    }

    #[test]
    fn settle_leaves_unknown_and_settled_entries_alone() {
        let (c, s) = (cache(), MemoryStore::new());
        // Slot absent: no key is created.
        settle(&c, &s, 1, "a", Outcome::Failed, T0);
        assert!(s.written.borrow().is_empty());
        assert_eq!(reserve(&c, &s, 1, "a", T0), Reservation::Fresh);
        settle(&c, &s, 1, "a", Outcome::Delivered, T0 + 1);
        let writes = s.sets.get();
        // A late Failed from the same attempt does not reopen a delivered callback.
        settle(&c, &s, 1, "a", Outcome::Failed, T0 + 2);
        settle(&c, &s, 2, "a", Outcome::Failed, T0 + 2);
        assert_eq!(s.sets.get(), writes);
        assert_eq!(reserve(&c, &s, 1, "a", T0 + 3), Reservation::Duplicate);
    }

    #[test]
    fn settle_prunes_expired_entries_when_it_writes() {
        let (c, s) = (cache(), MemoryStore::new());
        assert_eq!(reserve(&c, &s, 1, "a", T0), Reservation::Fresh);
        assert_eq!(reserve(&c, &s, 2, "a", T0 + 10), Reservation::Fresh);
        settle(&c, &s, 2, "a", Outcome::Delivered, T0 + WINDOW);
        let (value, _) = s.raw(&c.key(&id(2))).unwrap();
        let entries = decode_slot(&value).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].id, id(2));
        assert_eq!(entries[0].state, State::Delivered);
    }

    #[test]
    fn full_slot_refuses_new_ids_without_evicting() {
        let (c, s) = (cache(), MemoryStore::new());
        for n in 0..SLOT_ENTRIES as u32 {
            assert_eq!(reserve(&c, &s, n, "a", T0 + n), Reservation::Fresh);
        }
        let before = s.raw(&c.key(&id(0)));
        assert_eq!(reserve(&c, &s, 99, "a", T0 + 20), Reservation::Full);
        assert_eq!(s.raw(&c.key(&id(0))), before, "nothing evicted or written");
        // Known ids still answer normally in a full slot.
        assert_eq!(reserve(&c, &s, 0, "a", T0 + 20), Reservation::InFlight);
        assert_eq!(reserve(&c, &s, 0, "b", T0 + 20), Reservation::Tampered);
        assert_eq!(reserve(&c, &s, 1, "a", T0 + 40), Reservation::Retry);
    }

    #[test]
    fn expired_entries_free_room_in_a_full_slot() {
        let (c, s) = (cache(), MemoryStore::new());
        for n in 0..SLOT_ENTRIES as u32 {
            assert_eq!(reserve(&c, &s, n, "a", T0 + n), Reservation::Fresh);
        }
        // Entry 0 expires at T0 + WINDOW, entry 1 a second later.
        assert_eq!(reserve(&c, &s, 99, "a", T0 + WINDOW - 1), Reservation::Full);
        assert_eq!(reserve(&c, &s, 99, "a", T0 + WINDOW), Reservation::Fresh);
        assert_eq!(reserve(&c, &s, 100, "a", T0 + WINDOW), Reservation::Full);
        assert_eq!(
            reserve(&c, &s, 100, "a", T0 + WINDOW + 1),
            Reservation::Fresh
        );
        assert_eq!(live_ids(&c, &s, 0, T0 + WINDOW + 1).len(), SLOT_ENTRIES);
    }

    /// Reserves `count` distinct nonces in `c`, in order; the refusals.
    fn fill(c: &ReplayCache, s: &MemoryStore, count: u32) -> usize {
        (0..count)
            .filter(|&n| reserve(c, s, n, "a", T0) == Reservation::Full)
            .count()
    }

    #[test]
    fn a_fill_to_ninety_percent_of_max_entries_never_refuses() {
        for max_entries in [10_000, 111_112] {
            let c = ReplayCache::new("cg2/test/", max_entries, WINDOW, INFLIGHT);
            let s = MemoryStore::new();
            let live = max_entries / 10 * 9;
            assert_eq!(fill(&c, &s, live), 0, "max_entries {max_entries}");
            // Every nonce is found where it was placed.
            for n in (0..live).step_by(97) {
                assert_eq!(reserve(&c, &s, n, "a", T0 + 1), Reservation::InFlight);
                assert_eq!(reserve(&c, &s, n, "b", T0 + 1), Reservation::Tampered);
            }
            let occupancy = c.occupancy_percent(&s, T0 + 1).unwrap();
            assert!((85..=95).contains(&occupancy), "{occupancy} %");
            assert!(s.largest.get() < MAX_SLOT_VALUE, "no slot filled up");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 6, ..Default::default() })]

        /// Any size, any ids (random bytes, not counters), any arrival times within the
        /// window: at 90 % no refusal, and every nonce is found where it was placed.
        #[test]
        fn any_cache_at_ninety_percent_refuses_nothing(
            max_entries in 10_000u32..40_000,
            seed in proptest::prelude::any::<u64>(),
        ) {
            let c = ReplayCache::new("cg2/prop/", max_entries, WINDOW, INFLIGHT);
            let s = MemoryStore::new();
            let ids: Vec<[u8; 16]> = (0..max_entries / 10 * 9)
                .map(|n| id_of(&seed.to_le_bytes(), &n.to_le_bytes()))
                .collect();
            for (n, id) in ids.iter().enumerate() {
                let now = T0 + (n as u32) % (WINDOW / 2);
                let (answer, forgot) = c.reserve(&s, id, &fp("a"), now, CREATE).unwrap();
                proptest::prop_assert_eq!((answer, forgot), (Reservation::Fresh, false));
            }
            for id in ids.iter().step_by(31) {
                let again = c.reserve(&s, id, &fp("b"), T0 + WINDOW / 2, CREATE).unwrap();
                proptest::prop_assert_eq!(again, (Reservation::Tampered, false));
            }
        }
    }

    #[test]
    fn the_previous_layout_refused_long_before_ninety_percent() {
        // Slots of 32 holding 32: what `make bench` compares against.
        let max_entries: u32 = 10_000;
        let layout = Layout {
            slots: max_entries.div_ceil(32),
            slot_capacity: 32,
        };
        let timing = Timing {
            window_secs: WINDOW,
            inflight_secs: INFLIGHT,
        };
        let c = ReplayCache::with_layout("cg1/test/", max_entries, layout, timing);
        let refused = fill(&c, &MemoryStore::new(), max_entries / 10 * 9);
        assert!(refused > 100, "{refused}");
    }

    #[test]
    fn occupancy_counts_only_live_entries_and_goes_past_a_hundred() {
        let c = ReplayCache::new("cg2/test/", 100, WINDOW, INFLIGHT);
        let s = MemoryStore::new();
        assert_eq!(c.occupancy_percent(&s, T0), Ok(0));
        assert_eq!(fill(&c, &s, 50), 0);
        // A cache of 5 slots is sampled whole: exact.
        assert_eq!(c.occupancy_percent(&s, T0), Ok(50));
        assert_eq!(c.occupancy_percent(&s, T0 + WINDOW), Ok(0), "all expired");
        for n in 50..150 {
            reserve(&c, &s, n, "a", T0);
        }
        assert_eq!(c.occupancy_percent(&s, T0), Ok(150));
    }

    #[test]
    fn forgetting_makes_room_only_from_delivered_entries_oldest_first() {
        let c = cache().when_full(WhenFull::ForgetOldestDelivered);
        let s = MemoryStore::new();
        for n in 0..SLOT_ENTRIES as u32 {
            assert_eq!(reserve(&c, &s, n, "a", T0 + n), Reservation::Fresh);
        }
        for n in [7, 3] {
            settle(&c, &s, n, "a", Outcome::Delivered, T0 + 70);
        }
        settle(&c, &s, 1, "a", Outcome::Failed, T0 + 70);
        let forgets = |n| c.reserve(&s, &id(n), &fp("a"), T0 + 71, CREATE).unwrap();
        // Entry 3 is the oldest delivered (entries 0 and 2 are in flight or lapsed, 1 failed).
        assert_eq!(forgets(100), (Reservation::Fresh, true));
        assert!(!live_ids(&c, &s, 0, T0 + 71).contains(&id(3)));
        assert_eq!(forgets(101), (Reservation::Fresh, true));
        assert!(!live_ids(&c, &s, 0, T0 + 71).contains(&id(7)));
        // Nothing delivered is left: refused, nothing forgotten.
        assert_eq!(forgets(102), (Reservation::Full, false));
        assert_eq!(live_ids(&c, &s, 0, T0 + 71).len(), SLOT_ENTRIES);
        // A forgotten nonce is new again: the weakened protection the operator chose.
        settle(&c, &s, 100, "a", Outcome::Delivered, T0 + 72);
        assert_eq!(forgets(3), (Reservation::Fresh, true));
    }

    #[test]
    fn key_space_and_value_size_stay_bounded() {
        let c = ReplayCache::new("cg1/test/", 100, WINDOW, INFLIGHT);
        assert_eq!(c.slots(), 5);
        let s = MemoryStore::new();
        let mut outcomes = [0usize; 6];
        // 20 000 distinct nonces at 10 per second: far more than the cache holds.
        for n in 0..20_000u32 {
            let now = T0 + n / 10;
            let r = reserve(&c, &s, n, "a", now);
            outcomes[r as usize] += 1;
            if r == Reservation::Fresh && n % 3 == 0 {
                settle(&c, &s, n, "a", Outcome::Delivered, now);
            }
        }
        let keys = s.written.borrow();
        assert!(keys.len() <= c.slots() as usize, "{} keys", keys.len());
        assert!(keys.iter().all(|k| k.starts_with("cg1/test/")));
        assert!(s.largest.get() <= MAX_SLOT_VALUE);
        assert_eq!(s.largest.get(), MAX_SLOT_VALUE, "slots did fill up");
        assert!(outcomes[Reservation::Fresh as usize] > 0);
        assert!(outcomes[Reservation::Full as usize] > 0);
    }

    #[test]
    fn slots_round_up_and_never_reach_zero() {
        let slots = |max| ReplayCache::new("", max, 1, 1).slots();
        assert_eq!(slots(0), 1);
        assert_eq!(slots(1), 1);
        assert_eq!(slots(24), 1);
        assert_eq!(slots(25), 2);
        assert_eq!(slots(u32::MAX), u32::MAX.div_ceil(24));
    }

    #[test]
    fn slot_index_is_the_first_eight_bytes_little_endian() {
        let c = ReplayCache::new("p/", 24 * 1000, 1, 1);
        let mut id = [0xff; 16];
        id[..8].copy_from_slice(&1_234_567u64.to_le_bytes());
        assert_eq!(c.slot_of(&id), 567);
        assert_eq!(c.key(&id), "p/1000/567");
    }

    /// Another worker reserves between our get and set. `other` picks its id.
    fn race(slot_exists: bool, other: u32) -> (MemoryStore, Rc<Cell<Option<Reservation>>>) {
        let (c, s) = (cache(), MemoryStore::new());
        if slot_exists {
            assert_eq!(reserve(&c, &s, 50, "a", T0), Reservation::Fresh);
        }
        let theirs = Rc::new(Cell::new(None));
        let (c2, seen) = (c.clone(), theirs.clone());
        s.before_next_set(move |s| {
            // A different worker: its own random create_cas.
            seen.set(Some(
                c2.reserve(s, &id(other), &fp("a"), T0 + 1, 0x0bad_cafe)
                    .unwrap()
                    .0,
            ));
        });
        let ours = reserve(&c, &s, 1, "a", T0 + 1);
        assert_eq!(theirs.get(), Some(Reservation::Fresh));
        let expected = if other == 1 {
            Reservation::InFlight
        } else {
            Reservation::Fresh
        };
        assert_eq!(ours, expected, "exactly one Fresh per id");
        (s, theirs)
    }

    #[test]
    fn create_race_on_an_absent_slot_yields_one_fresh() {
        let (s, _) = race(false, 1);
        assert_eq!(live_ids(&cache(), &s, 1, T0 + 1), vec![id(1)]);
    }

    #[test]
    fn create_race_keeps_the_other_writers_entry() {
        let (s, _) = race(false, 2);
        assert_eq!(live_ids(&cache(), &s, 1, T0 + 1), vec![id(2), id(1)]);
    }

    #[test]
    fn update_race_on_an_existing_slot_yields_one_fresh() {
        let (s, _) = race(true, 1);
        assert_eq!(live_ids(&cache(), &s, 1, T0 + 1), vec![id(50), id(1)]);
    }

    #[test]
    fn update_race_keeps_the_other_writers_entry() {
        let (s, _) = race(true, 2);
        assert_eq!(
            live_ids(&cache(), &s, 1, T0 + 1),
            vec![id(50), id(2), id(1)]
        );
    }

    #[test]
    fn settle_race_keeps_the_other_writers_entry() {
        let (c, s) = (cache(), MemoryStore::new());
        assert_eq!(reserve(&c, &s, 1, "a", T0), Reservation::Fresh);
        let c2 = c.clone();
        s.before_next_set(move |s| {
            assert_eq!(
                c2.reserve(s, &id(2), &fp("a"), T0 + 1, 7),
                Ok((Reservation::Fresh, false))
            );
        });
        settle(&c, &s, 1, "a", Outcome::Delivered, T0 + 1);
        assert_eq!(reserve(&c, &s, 1, "a", T0 + 2), Reservation::Duplicate);
        assert_eq!(reserve(&c, &s, 2, "a", T0 + 2), Reservation::InFlight);
    }

    #[test]
    fn zero_create_cas_still_creates_conditionally() {
        let (c, s) = (cache(), MemoryStore::new());
        let c2 = c.clone();
        s.before_next_set(move |s| {
            assert_eq!(
                c2.reserve(s, &id(1), &fp("a"), T0, 0),
                Ok((Reservation::Fresh, false))
            );
        });
        assert_eq!(
            c.reserve(&s, &id(1), &fp("a"), T0, 0),
            Ok((Reservation::InFlight, false))
        );
    }

    #[test]
    fn exhausted_retries_fail_closed() {
        let (c, s) = (cache(), MemoryStore::new());
        assert_eq!(reserve(&c, &s, 1, "a", T0), Reservation::Fresh);
        let key = c.key(&id(1));
        // A worker that rewrites the slot before every one of our sets.
        let bump = |s: &MemoryStore, key: &str| {
            let (value, _) = s.raw(key).unwrap();
            assert!(s.set(key, &value, 0).unwrap());
        };
        for _ in 0..MAX_ATTEMPTS {
            let key = key.clone();
            s.before_next_set(move |s| bump(s, &key));
        }
        assert_eq!(
            c.reserve(&s, &id(2), &fp("a"), T0, CREATE),
            Err(StoreError::Contention)
        );
        for _ in 0..MAX_ATTEMPTS {
            let key = key.clone();
            s.before_next_set(move |s| bump(s, &key));
        }
        assert_eq!(
            c.settle(&s, &id(1), &fp("a"), Outcome::Delivered, T0),
            Err(StoreError::Contention)
        );
        // One contended attempt fewer than the limit still succeeds.
        for _ in 0..MAX_ATTEMPTS - 1 {
            let key = key.clone();
            s.before_next_set(move |s| bump(s, &key));
        }
        assert_eq!(reserve(&c, &s, 2, "a", T0), Reservation::Fresh);
        assert_eq!(live_ids(&c, &s, 1, T0), vec![id(1), id(2)]);
    }

    #[test]
    fn corrupt_slot_values_fail_closed() {
        let c = cache();
        let mut good = Vec::new();
        good.push(FORMAT_VERSION);
        Entry {
            id: id(1),
            fingerprint: fp("a"),
            expires_at: T0 + WINDOW,
            deadline: T0 + INFLIGHT,
            state: State::InFlight,
        }
        .encode(&mut good);
        let mut bad_state = good.clone();
        bad_state[ENTRY_SIZE] = 3;
        let mut bad_version = good.clone();
        bad_version[0] = 2;
        let mut too_many = vec![FORMAT_VERSION];
        for _ in 0..=SLOT_ENTRIES {
            too_many.extend_from_slice(&good[1..]);
        }
        let cases: [&[u8]; 6] = [
            b"",
            &bad_version,
            &good[..good.len() - 1],
            &[good.as_slice(), b"x"].concat(),
            &bad_state,
            &too_many,
        ];
        for value in cases {
            let s = MemoryStore::new();
            assert!(s.set(&c.key(&id(1)), value, 0).unwrap());
            let before = s.raw(&c.key(&id(1)));
            assert_eq!(
                c.reserve(&s, &id(1), &fp("a"), T0, CREATE),
                Err(StoreError::Corrupt),
                "{value:?}"
            );
            assert_eq!(
                c.settle(&s, &id(1), &fp("a"), Outcome::Delivered, T0),
                Err(StoreError::Corrupt)
            );
            assert_eq!(s.raw(&c.key(&id(1))), before, "left untouched");
        }
        // The good value itself decodes; an empty slot is just the version byte.
        assert_eq!(decode_slot(&good).unwrap().len(), 1);
        assert_eq!(decode_slot(&[FORMAT_VERSION]), Ok(Vec::new()));
    }

    struct BrokenStore {
        get_fails: bool,
        zero_cas: bool,
    }

    impl SharedStore for BrokenStore {
        fn get(&self, _: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
            if self.get_fails {
                return Err(StoreError::Host);
            }
            let cas = if self.zero_cas { 0 } else { 1 };
            Ok(Some((vec![FORMAT_VERSION], cas)))
        }

        fn set(&self, _: &str, _: &[u8], _: u32) -> Result<bool, StoreError> {
            Err(StoreError::Host)
        }
    }

    #[test]
    fn host_failures_propagate() {
        let c = cache();
        for (get_fails, zero_cas) in [(true, false), (false, true), (false, false)] {
            let s = BrokenStore {
                get_fails,
                zero_cas,
            };
            assert_eq!(
                c.reserve(&s, &id(1), &fp("a"), T0, CREATE),
                Err(StoreError::Host)
            );
        }
    }

    #[test]
    fn peek_answers_only_what_is_final_here_and_never_writes() {
        let (c, s) = (cache(), MemoryStore::new());
        let peek = |n: u32, body: &str, now: u32| c.peek(&s, &id(n), &fp(body), now).unwrap();
        assert_eq!(peek(1, "a", T0), None, "unknown");
        assert_eq!(reserve(&c, &s, 1, "a", T0), Reservation::Fresh);
        let writes = s.sets.get();
        assert_eq!(peek(1, "a", T0 + 1), Some(Reservation::InFlight));
        assert_eq!(peek(1, "b", T0 + 1), Some(Reservation::Tampered));
        assert_eq!(
            peek(1, "a", T0 + INFLIGHT),
            None,
            "lapsed: may be claimed again"
        );
        settle(&c, &s, 1, "a", Outcome::Failed, T0 + 2);
        assert_eq!(peek(1, "a", T0 + 3), None, "failed: may be claimed again");
        assert_eq!(peek(1, "b", T0 + 3), Some(Reservation::Tampered));
        assert_eq!(reserve(&c, &s, 1, "a", T0 + 4), Reservation::Retry);
        settle(&c, &s, 1, "a", Outcome::Delivered, T0 + 5);
        let writes_after = s.sets.get();
        assert_eq!(peek(1, "a", T0 + 6), Some(Reservation::Duplicate));
        assert_eq!(peek(1, "a", T0 + WINDOW), None, "expired");
        assert_eq!(peek(2, "a", T0 + 6), None, "another id in the same slot");
        assert_eq!(s.sets.get(), writes_after);
        assert!(writes < writes_after);
    }

    #[test]
    fn remember_upserts_best_effort_and_never_undoes_a_delivery() {
        let (c, s) = (cache(), MemoryStore::new());
        let peek = |body: &str, now: u32| c.peek(&s, &id(1), &fp(body), now).unwrap();
        let claim = c.timing().first_sight(&fp("a"), T0);
        let with_state = |state| Record { state, ..claim };
        // Someone else's claim is remembered as failed: tampering is caught, the same
        // request asks again.
        assert_eq!(
            c.remember(&s, &id(1), with_state(State::Failed), T0, CREATE),
            Ok(true)
        );
        assert_eq!(peek("a", T0 + 1), None);
        assert_eq!(peek("b", T0 + 1), Some(Reservation::Tampered));
        // Our own claim replaces it; a failed record (another worker's late answer about
        // the claim before ours) does not replace ours.
        assert_eq!(c.remember(&s, &id(1), claim, T0 + 1, CREATE), Ok(true));
        assert_eq!(peek("a", T0 + 1), Some(Reservation::InFlight));
        let writes = s.sets.get();
        assert_eq!(
            c.remember(&s, &id(1), with_state(State::Failed), T0 + 1, CREATE),
            Ok(true)
        );
        assert_eq!(s.sets.get(), writes);
        assert_eq!(peek("a", T0 + 2), Some(Reservation::InFlight));
        let delivered = with_state(State::Delivered);
        assert_eq!(c.remember(&s, &id(1), delivered, T0 + 2, CREATE), Ok(true));
        let writes = s.sets.get();
        // An older answer arriving late does not undo the delivery, nor does the same again.
        for late in [with_state(State::Failed), claim, delivered] {
            assert_eq!(c.remember(&s, &id(1), late, T0 + 3, CREATE), Ok(true));
        }
        assert_eq!(s.sets.get(), writes);
        assert_eq!(peek("a", T0 + 4), Some(Reservation::Duplicate));
        // Another fingerprint replaces it (the fleet's record is the truth).
        let other = Record {
            fingerprint: fp("b"),
            ..claim
        };
        assert_eq!(c.remember(&s, &id(1), other, T0 + 4, CREATE), Ok(true));
        assert_eq!(peek("a", T0 + 5), Some(Reservation::Tampered));
        // Expired records are not written; a full slot records nothing and evicts nothing.
        let expired = Record {
            expires_at: T0 + 5,
            ..claim
        };
        assert_eq!(c.remember(&s, &id(2), expired, T0 + 5, CREATE), Ok(false));
        for n in 3..=SLOT_ENTRIES as u32 + 1 {
            assert_eq!(reserve(&c, &s, n, "a", T0 + 5), Reservation::Fresh);
        }
        let full = s.raw(&c.key(&id(1)));
        assert_eq!(c.remember(&s, &id(99), claim, T0 + 5, CREATE), Ok(false));
        assert_eq!(s.raw(&c.key(&id(1))), full);
    }

    #[test]
    fn peek_and_remember_fail_closed_on_corrupt_slots() {
        let (c, s) = (cache(), MemoryStore::new());
        assert!(s.set(&c.key(&id(1)), b"garbage", 0).unwrap());
        assert_eq!(c.peek(&s, &id(1), &fp("a"), T0), Err(StoreError::Corrupt));
        let claim = c.timing().first_sight(&fp("a"), T0);
        assert_eq!(
            c.remember(&s, &id(1), claim, T0, CREATE),
            Err(StoreError::Corrupt)
        );
    }

    #[test]
    fn judge_and_settled_are_the_replay_model() {
        let t = Timing {
            window_secs: WINDOW,
            inflight_secs: INFLIGHT,
        };
        let claim = t.first_sight(&fp("a"), T0);
        assert_eq!(claim.expires_at, T0 + WINDOW);
        assert_eq!(claim.deadline, T0 + INFLIGHT);
        assert_eq!(claim.state, State::InFlight);
        assert!(claim.live(T0 + WINDOW - 1) && !claim.live(T0 + WINDOW));
        assert_eq!(judge(&claim, &fp("b"), T0), Reservation::Tampered);
        assert_eq!(judge(&claim, &fp("a"), T0), Reservation::InFlight);
        assert_eq!(judge(&claim, &fp("a"), T0 + INFLIGHT), Reservation::Retry);
        let failed = settled(&claim, &fp("a"), Outcome::Failed).unwrap();
        assert_eq!(judge(&failed, &fp("a"), T0 + 1), Reservation::Retry);
        assert_eq!(settled(&failed, &fp("a"), Outcome::Delivered), None);
        assert_eq!(settled(&claim, &fp("b"), Outcome::Delivered), None);
        let again = t.reclaim(&failed, T0 + 100);
        assert_eq!(
            (again.state, again.deadline),
            (State::InFlight, T0 + 100 + INFLIGHT)
        );
        assert_eq!(
            again.expires_at, claim.expires_at,
            "retries do not stretch the window"
        );
        let delivered = settled(&again, &fp("a"), Outcome::Delivered).unwrap();
        assert_eq!(
            judge(&delivered, &fp("a"), T0 + 200),
            Reservation::Duplicate
        );
    }

    #[test]
    fn memory_store_matches_envoy_semantics() {
        let s = MemoryStore::new();
        assert_eq!(s.get("k"), Ok(None));
        // Absent key: inserted whatever the cas.
        assert_eq!(s.set("k", b"1", 12345), Ok(true));
        let (_, cas) = s.get("k").unwrap().unwrap();
        assert_ne!(cas, 0);
        assert_eq!(s.set("k", b"2", cas.wrapping_add(1)), Ok(false));
        assert_eq!(s.set("k", b"2", cas), Ok(true));
        assert_eq!(s.set("k", b"3", cas), Ok(false), "cas moved on");
        assert_eq!(s.set("k", b"3", 0), Ok(true), "zero is unconditional");
        s.set_counter(u32::MAX);
        assert_eq!(s.set("k", b"4", 0), Ok(true));
        assert_eq!(s.get("k"), Ok(Some((b"4".to_vec(), 1))), "skips 0 on wrap");
    }

    #[test]
    fn replay_id_and_fingerprint_are_unambiguous() {
        let message = [7u8; 32];
        assert_ne!(
            replay_id(b"ab", b"c", &message),
            replay_id(b"a", b"bc", &message)
        );
        assert_ne!(
            replay_id(b"", b"ab", &message),
            replay_id(b"ab", b"", &message)
        );
        assert_ne!(
            replay_id(b"r1", b"n", &message),
            replay_id(b"r2", b"n", &message)
        );
        assert_ne!(
            replay_id(b"r", b"v2", &message),
            replay_id(b"r", b"v3", &message)
        );
        assert_eq!(
            replay_id(b"r", b"n", &message),
            replay_id(b"r", b"n", &message)
        );
        assert_ne!(
            fingerprint(b"POST", b"/a", b"b"),
            fingerprint(b"POST", b"/ab", b"")
        );
        assert_ne!(
            fingerprint(b"GE", b"T/", b""),
            fingerprint(b"GET", b"/", b"")
        );
        assert_ne!(
            fingerprint(b"POST", b"/", b"x"),
            fingerprint(b"POST", b"/", b"y")
        );
        // Different domain tags: the same bytes never give the same id and fingerprint.
        assert_ne!(
            digest16("cg3/replay-id", &[b"a"]),
            digest16("cg3/fingerprint", &[b"a"])
        );
    }
}
