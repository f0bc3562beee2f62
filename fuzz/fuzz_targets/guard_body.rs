//! Whole requests (header lines, an empty line, the body) through `guard::on_headers` and
//! `guard::on_body`, with an in-memory replay store. Never panics; never forwards under keys
//! no input can know; under the spec's keys forwards only what an independent HMAC accepts,
//! and then never forwards it again: not while in flight, not once delivered, not with
//! another body. Near-misses of every valid input (one byte of a signature, nonce or path
//! changed) are judged too, so the fuzzer explores around signatures it cannot forge.
#![no_main]

mod common;

use callback_guard::guard::{self, Step};
use callback_guard::policy::Policy;
use callback_guard::replay::Outcome;
use callback_guard::request::{Header, RequestHead};
use callback_guard::timestamp::Stamp;
use callback_guard::verdict::Reason;
use libfuzzer_sys::fuzz_target;

use callback_guard::testing::MemoryStore;
use common::Secrets;

/// Both steps, as the filter runs them.
fn judge<'p>(policy: &'p Policy, headers: &[Header], body: &[u8], store: &MemoryStore) -> Step<'p> {
    let head = RequestHead::new(headers);
    let conn = common::Conn::for_request(&head);
    let step = match guard::on_headers(policy, &head, &conn) {
        Step::NeedBody(route) => guard::on_body(
            route,
            &head,
            body,
            Stamp::secs(common::NOW),
            store,
            common::CREATE_CAS,
        ),
        step => step,
    };
    if let Step::Reject(_, rejection) = &step {
        common::assert_loggable(rejection);
    }
    step
}

fn forwarded(step: &Step) -> bool {
    matches!(step, Step::Forward(_))
}

fn reason(step: &Step) -> Option<Reason> {
    match step {
        Step::Reject(_, rejection) => Some(rejection.reason),
        _ => None,
    }
}

/// Under the spec's keys: what is forwarded is authentic, and is not forwarded twice.
fn check_known(secrets: &Secrets, policy: &Policy, headers: &[Header], body: &[u8]) -> bool {
    let store = MemoryStore::default();
    let Step::Forward(accepted) = judge(policy, headers, body, &store) else {
        return false;
    };
    common::assert_authentic(&accepted, headers, body, secrets);
    let Some(reserved) = accepted.reserved else {
        return true;
    };
    let Some(replay) = &accepted.route.replay else {
        panic!("reserved without replay protection");
    };
    let again = judge(policy, headers, body, &store);
    assert_eq!(reason(&again), Some(Reason::InFlight), "{again:?}");
    let now = u32::try_from(common::NOW).unwrap_or(u32::MAX);
    let settled = replay.cache.settle(
        &store,
        &reserved.id,
        &reserved.fingerprint,
        Outcome::Delivered,
        now,
    );
    assert_eq!(settled, Ok(()));
    let again = judge(policy, headers, body, &store);
    assert!(
        matches!(
            reason(&again),
            Some(Reason::AlreadyDelivered | Reason::Duplicate)
        ),
        "{again:?}"
    );
    let mut other_body = body.to_vec();
    other_body.push(b'&');
    let other = judge(policy, headers, &other_body, &store);
    assert!(
        !forwarded(&other),
        "a delivered nonce went through with another body"
    );
    true
}

/// The byte at `at` (of the chosen header's value) replaced by `with`.
fn mutated(headers: &[Header], index: usize, at: usize, with: u8) -> Option<Vec<Header>> {
    let mut headers = headers.to_vec();
    let value = &mut headers.get_mut(index)?.1;
    let len = value.len();
    let byte = value.get_mut(at % len.max(1))?;
    if *byte == with {
        return None;
    }
    *byte = with;
    Some(headers)
}

fuzz_target!(|data: &[u8]| {
    let (headers, body) = common::parse_request(data);
    let (_, unknown) = common::unknown();
    let step = judge(unknown, &headers, body, &MemoryStore::default());
    assert!(
        !forwarded(&step),
        "forwarded under keys no input can know: {step:?}"
    );

    let (secrets, known) = common::known();
    if !check_known(secrets, known, &headers, body) {
        return;
    }
    // A valid request: judge single-byte changes of its signed headers. Each one that is
    // forwarded must still satisfy the oracle (another family's signature may carry it).
    let salt = data
        .iter()
        .fold(0usize, |h, &b| h.wrapping_mul(31).wrapping_add(b.into()));
    for (index, (name, _)) in headers.iter().enumerate() {
        let name = name.to_ascii_lowercase();
        let signed = name == ":path"
            || name.starts_with("x-vobiz-signature")
            || name == "x-webhook-signature";
        if !signed {
            continue;
        }
        for round in 0..4 {
            let at = salt.wrapping_add(round * 7919);
            let with = [b'A', b'0', b'/', (salt >> 8) as u8][round];
            if let Some(changed) = mutated(&headers, index, at, with) {
                check_known(secrets, known, &changed, body);
            }
        }
    }
    if !body.is_empty() {
        let mut changed = body.to_vec();
        let at = salt % changed.len();
        changed[at] = changed[at].wrapping_add(1);
        check_known(secrets, known, &headers, &changed);
    }
});
