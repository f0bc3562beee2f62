//! etcd's gRPC API on the wire: the two requests the store sends (`KV.Txn`, alone or
//! nesting several, and `Lease.LeaseGrant`) as protobuf in gRPC's length-prefixed framing,
//! and what comes back. Only the fields the store writes or reads, numbered as in etcd's
//! `api/etcdserverpb/rpc.proto` and `api/mvccpb/kv.proto`. The same requests as the JSON
//! gateway's, without the gateway: etcd spends about half the CPU on each.

use super::{
    Compare, Failure, Kv, PutLease, StoreError, Txn, TxnReply, TxnResult, LEASE_EXISTS,
    LEASE_NOT_FOUND,
};

pub const TXN_PATH: &str = "/etcdserverpb.KV/Txn";
pub const CONTENT_TYPE: &str = "application/grpc";
pub const GRANT_PATH: &str = "/etcdserverpb.Lease/LeaseGrant";

/// gRPC status codes the store tells apart.
const OK: u32 = 0;
const DEADLINE_EXCEEDED: u32 = 4;
const NOT_FOUND: u32 = 5;
const FAILED_PRECONDITION: u32 = 9;
const UNAVAILABLE: u32 = 14;
/// Envoy's own answer to a gRPC call it timed out: `UNAVAILABLE` with this message (where
/// the JSON gateway's call gets a plain 504).
const ENVOY_TIMEOUT: &str = "upstream request timeout";

/// No answer in time: etcd's deadline, or Envoy's.
fn timed_out(response: &GrpcResponse) -> bool {
    match (response.http_status, response.grpc_status) {
        (_, Some(DEADLINE_EXCEEDED)) | (Some(504), None) => true,
        (_, Some(UNAVAILABLE)) => response.message == ENVOY_TIMEOUT,
        _ => false,
    }
}

/// A gRPC answer as Envoy hands it over: the HTTP status (`None` when the callout failed
/// without a response), `grpc-status` and `grpc-message` (from the trailers, or the
/// headers of a trailers-only answer) and the framed body.
#[derive(Debug, Clone, Copy)]
pub struct GrpcResponse<'a> {
    pub http_status: Option<u16>,
    pub grpc_status: Option<u32>,
    pub message: &'a str,
    pub body: &'a [u8],
}

// ---- requests ----

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A varint field (int64, enum, bool); zero is the default and is left out.
fn number(out: &mut Vec<u8>, field: u32, value: i64) {
    if value != 0 {
        varint(out, u64::from(field) << 3);
        varint(out, value as u64);
    }
}

/// A length-delimited field (bytes or an embedded message).
fn delimited(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    varint(out, u64::from(field) << 3 | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// gRPC's framing: uncompressed, then the message's length (big-endian u32).
pub(super) fn framed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + message.len());
    out.push(0);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// `TxnRequest` of no comparison whose success branch is each transaction (each a
/// `TxnRequest`), nested (`RequestOp.request_txn` 4): etcd applies them all in one raft
/// entry.
pub(super) fn nest(txns: &[&[u8]]) -> Vec<u8> {
    let mut request = Vec::new();
    for txn in txns {
        let mut op = Vec::new();
        delimited(&mut op, 4, txn);
        delimited(&mut request, 2, &op);
    }
    request
}

/// `TxnRequest`: if `compare`, put `value` (with `lease`), else read the key.
pub(super) fn txn_request(txn: &Txn) -> Vec<u8> {
    let key = txn.key.as_bytes();
    // Compare: result EQUAL (0, the default), target CREATE 1 / MOD 2, key 3,
    // create_revision 5 / mod_revision 6.
    let mut cmp = Vec::with_capacity(key.len() + 16);
    match txn.compare {
        Compare::NeverCreated => {
            number(&mut cmp, 2, 1);
            delimited(&mut cmp, 3, key);
            // create_revision 0 is a set oneof field: it must be on the wire.
            varint(&mut cmp, 5 << 3);
            varint(&mut cmp, 0);
        }
        Compare::ModRevision(revision) => {
            number(&mut cmp, 2, 2);
            delimited(&mut cmp, 3, key);
            varint(&mut cmp, 6 << 3);
            varint(&mut cmp, revision as u64);
        }
    }
    // PutRequest: key 1, value 2, lease 3, ignore_lease 6.
    let mut put = Vec::with_capacity(key.len() + txn.value.len() + 16);
    delimited(&mut put, 1, key);
    delimited(&mut put, 2, &txn.value);
    match txn.lease {
        PutLease::Attach(id) => number(&mut put, 3, id),
        PutLease::Keep => number(&mut put, 6, 1),
    }
    // RequestOp: request_range 1, request_put 2; RangeRequest: key 1.
    let mut success = Vec::with_capacity(put.len() + 4);
    delimited(&mut success, 2, &put);
    let mut range = Vec::with_capacity(key.len() + 4);
    delimited(&mut range, 1, key);
    let mut failure = Vec::with_capacity(range.len() + 4);
    delimited(&mut failure, 1, &range);
    // TxnRequest: compare 1, success 2, failure 3.
    let mut request = Vec::with_capacity(cmp.len() + success.len() + failure.len() + 12);
    delimited(&mut request, 1, &cmp);
    delimited(&mut request, 2, &success);
    delimited(&mut request, 3, &failure);
    request
}

/// `LeaseGrantRequest`: TTL 1, ID 2.
pub(super) fn lease_grant(id: i64, ttl_secs: u64) -> Vec<u8> {
    let mut request = Vec::with_capacity(24);
    number(&mut request, 1, i64::try_from(ttl_secs).unwrap_or(i64::MAX));
    number(&mut request, 2, id);
    request
}

// ---- answers ----

/// One field of a protobuf message.
enum Field<'a> {
    Number(u64),
    Bytes(&'a [u8]),
    /// Fixed-width fields, which the store never reads.
    Other,
}

const MALFORMED: StoreError = StoreError::Malformed("gRPC answer is not the expected protobuf");

/// The fields of one message, in order; an error on anything truncated or unknown.
fn fields(mut bytes: &[u8]) -> impl Iterator<Item = Result<(u64, Field<'_>), StoreError>> {
    fn read_varint(bytes: &mut &[u8]) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = bytes.split_first()?;
            *bytes = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }
    std::iter::from_fn(move || {
        if bytes.is_empty() {
            return None;
        }
        let field = (|| {
            let key = read_varint(&mut bytes)?;
            let value = match key & 7 {
                0 => Field::Number(read_varint(&mut bytes)?),
                2 => {
                    let length = usize::try_from(read_varint(&mut bytes)?).ok()?;
                    let (value, rest) = bytes.split_at_checked(length)?;
                    bytes = rest;
                    Field::Bytes(value)
                }
                1 => {
                    bytes = bytes.get(8..)?;
                    Field::Other
                }
                5 => {
                    bytes = bytes.get(4..)?;
                    Field::Other
                }
                _ => return None,
            };
            Some((key >> 3, value))
        })();
        Some(match field {
            Some(field) => Ok(field),
            None => {
                bytes = &[];
                Err(MALFORMED)
            }
        })
    })
}

/// The message inside gRPC's framing: exactly one, uncompressed.
fn deframed(body: &[u8]) -> Result<&[u8], StoreError> {
    let (&[0, a, b, c, d], message) = body.split_first_chunk::<5>().ok_or(MALFORMED)? else {
        return Err(StoreError::Malformed("gRPC answer compressed"));
    };
    let length = u32::from_be_bytes([a, b, c, d]) as usize;
    (message.len() == length)
        .then_some(message)
        .ok_or(MALFORMED)
}

/// `TxnResponse`: header 1 (revision 3), succeeded 2, responses 3 (response_range 1:
/// kvs 2: KeyValue with mod_revision 3 and value 5).
fn txn_reply(message: &[u8]) -> Result<TxnReply, StoreError> {
    let reply = txn_fields(message, 0)?;
    if reply.revision <= 0 {
        return Err(StoreError::Malformed(
            "transaction reply without a revision",
        ));
    }
    Ok(reply)
}

/// `ResponseHeader.revision` (field 3), if the header carries one.
fn header_revision(header: &[u8]) -> Result<Option<i64>, StoreError> {
    let mut revision = None;
    for field in fields(header) {
        if let (3, Field::Number(value)) = field? {
            revision = Some(value as i64);
        }
    }
    Ok(revision)
}

/// A `TxnResponse`'s fields; `revision` where its header has none (a nested one's is
/// empty: the outer transaction's revision is the revision of every put in it).
fn txn_fields(message: &[u8], revision: i64) -> Result<TxnReply, StoreError> {
    let (mut revision, mut succeeded, mut kv, mut ranged) = (revision, false, None, false);
    for field in fields(message) {
        match field? {
            (1, Field::Bytes(header)) => revision = header_revision(header)?.unwrap_or(revision),
            (2, Field::Number(value)) => succeeded = value != 0,
            (3, Field::Bytes(response)) => {
                for field in fields(response) {
                    let (1, Field::Bytes(range)) = field? else {
                        continue;
                    };
                    ranged = true;
                    for field in fields(range) {
                        let (2, Field::Bytes(pair)) = field? else {
                            continue;
                        };
                        if kv.is_none() {
                            kv = Some(key_value(pair)?);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if !succeeded && !ranged {
        return Err(StoreError::Malformed(
            "failed transaction without its range",
        ));
    }
    Ok(TxnReply {
        succeeded,
        revision,
        kv,
    })
}

/// The outer `TxnResponse` of a [`batch`]: its revision, and each nested reply
/// (`ResponseOp.response_txn` 4), which must be `count`.
fn batch_replies(message: &[u8], count: usize) -> Result<Vec<TxnReply>, StoreError> {
    let mut revision = 0i64;
    let mut nested = Vec::with_capacity(count);
    for field in fields(message) {
        match field? {
            (1, Field::Bytes(header)) => revision = header_revision(header)?.unwrap_or(revision),
            (3, Field::Bytes(response)) => {
                for field in fields(response) {
                    if let (4, Field::Bytes(reply)) = field? {
                        nested.push(reply);
                    }
                }
            }
            _ => {}
        }
    }
    if revision <= 0 {
        return Err(StoreError::Malformed(
            "transaction reply without a revision",
        ));
    }
    if nested.len() != count {
        return Err(StoreError::Malformed(
            "batch reply without one answer per transaction",
        ));
    }
    nested
        .into_iter()
        .map(|reply| txn_fields(reply, revision))
        .collect()
}

fn key_value(pair: &[u8]) -> Result<Kv, StoreError> {
    let (mut value, mut mod_revision) = (Vec::new(), 0i64);
    for field in fields(pair) {
        match field? {
            (3, Field::Number(revision)) => mod_revision = revision as i64,
            (5, Field::Bytes(bytes)) => value = bytes.to_vec(),
            _ => {}
        }
    }
    if mod_revision <= 0 {
        return Err(StoreError::Malformed("key without a mod_revision"));
    }
    Ok(Kv {
        value,
        mod_revision,
    })
}

/// A failed callout or a gRPC error, in words for the log (bounded, escaped).
fn unavailable(response: GrpcResponse) -> StoreError {
    if timed_out(&response) {
        return StoreError::Timeout;
    }
    match (response.http_status, response.grpc_status) {
        (None, _) => StoreError::Unavailable("no response (connection failed or reset)".into()),
        (Some(http), None) => StoreError::Unavailable(format!("HTTP {http} without a gRPC status")),
        (_, Some(status)) => {
            let text: String = response.message.escape_default().take(160).collect();
            StoreError::Unavailable(format!("gRPC status {status}: {text}"))
        }
    }
}

/// A transaction's outcome, as the JSON gateway's parser gives it.
pub(super) fn txn_result(response: GrpcResponse) -> TxnResult {
    call_failure(&response)?;
    deframed(response.body)
        .and_then(txn_reply)
        .map_err(Failure::Etcd)
}

/// The outcome of each transaction of a [`batch`], or the call's failure for each.
pub(super) fn batch_results(response: GrpcResponse, count: usize) -> Vec<TxnResult> {
    let replies = call_failure(&response).and_then(|()| {
        deframed(response.body)
            .and_then(|message| batch_replies(message, count))
            .map_err(Failure::Etcd)
    });
    match replies {
        Ok(replies) => replies.into_iter().map(Ok).collect(),
        Err(failure) => vec![Err(failure); count],
    }
}

/// A call etcd did not answer with `OK`: a missing lease refuses the whole transaction.
fn call_failure(response: &GrpcResponse) -> Result<(), Failure> {
    match response.grpc_status {
        Some(OK) => Ok(()),
        Some(NOT_FOUND) if response.message.contains(LEASE_NOT_FOUND) => {
            Err(Failure::LeaseNotFound)
        }
        _ => Err(Failure::Etcd(unavailable(*response))),
    }
}

/// A grant succeeded, or the lease is already there (granted by another replica).
pub(super) fn grant_result(response: GrpcResponse) -> Result<(), StoreError> {
    match response.grpc_status {
        Some(OK) => Ok(()),
        Some(FAILED_PRECONDITION) if response.message.contains(LEASE_EXISTS) => Ok(()),
        _ => Err(unavailable(response)),
    }
}

/// How one call went, for the store metrics: any answer etcd gives on purpose is `Ok`.
pub(super) fn round_trip(response: GrpcResponse) -> super::RoundTrip {
    use super::RoundTrip;
    match response.grpc_status {
        Some(OK) => RoundTrip::Ok,
        Some(NOT_FOUND | FAILED_PRECONDITION)
            if response.message.contains(LEASE_NOT_FOUND)
                || response.message.contains(LEASE_EXISTS) =>
        {
            RoundTrip::Ok
        }
        _ if timed_out(&response) => RoundTrip::Timeout,
        _ => RoundTrip::Error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::{Record, Reservation, State, Timing};
    use crate::store::etcd::{
        callout, encode_value, Api, Etcd, Lease, Progress, Request, VALUE_SIZE,
    };
    use crate::store::{OnError, Stored};

    // Recorded with etcd's own generated protobuf code (python-etcd3 0.12's rpc_pb2) and
    // from etcd 3.4.23 (Debian's etcd-server) answering it over gRPC.
    const KEY: &[u8] = b"/callback-guard/vobiz-voice/q83vEjRWeJq83vEjRWeJqw";
    const CREATE: &str = "0a3810011a322f63616c6c6261636b2d67756172642f766f62697a2d766f6963652f71383376456a5257654a71383376456a5257654a71772800126412620a322f63616c6c6261636b2d67756172642f766f62697a2d766f6963652f71383376456a5257654a71383376456a5257654a717712220246464646464646464646464646464646a003c5693eb2c36900ed5eed5e0000000018def9aac8f8acd191011a360a340a322f63616c6c6261636b2d67756172642f766f62697a2d766f6963652f71383376456a5257654a71383376456a5257654a7177";
    const SETTLE: &str = "0a3810021a322f63616c6c6261636b2d67756172642f766f62697a2d766f6963652f71383376456a5257654a71383376456a5257654a71773029125c125a0a322f63616c6c6261636b2d67756172642f766f62697a2d766f6963652f71383376456a5257654a71383376456a5257654a717712220246464646464646464646464646464646a003c5693eb2c36900ed5eed5e0000000030011a360a340a322f63616c6c6261636b2d67756172642f766f62697a2d766f6963652f71383376456a5257654a71383376456a5257654a7177";
    const BATCH: &str = "12db0122d8010a3810011a322f63616c6c6261636b2d67756172642f766f62697a2d766f6963652f71383376456a5257654a71383376456a5257654a71772800126412620a322f63616c6c6261636b2d67756172642f766f62697a2d766f6963652f71383376456a5257654a71383376456a5257654a717712220246464646464646464646464646464646a003c5693eb2c36900ed5eed5e0000000018def9aac8f8acd191011a360a340a322f63616c6c6261636b2d67756172642f766f62697a2d766f6963652f71383376456a5257654a71383376456a5257654a717712d30122d0010a3810021a322f63616c6c6261636b2d67756172642f766f62697a2d766f6963652f71383376456a5257654a71383376456a5257654a71783029125c125a0a322f63616c6c6261636b2d67756172642f766f62697a2d766f6963652f71383376456a5257654a71383376456a5257654a717812220246464646464646464646464646464646a003c5693eb2c36900ed5eed5e0000000030011a360a340a322f63616c6c6261636b2d67756172642f766f62697a2d766f6963652f71383376456a5257654a71383376456a5257654a7178";
    const GRANT: &str = "08bcc10510def9aac8f8acd19101";
    /// etcd's answers to BATCH: first the create applied and the settle's key missing,
    /// then both failed, the create's key read back.
    const BATCH_APPLIED: &str = "0a180887d5edba8fd59dc10410c0c0caafc1ba96892e1802200210011a0e220c0a0010011a0612040a0218021a0c220a0a001a060a040a021802";
    const BATCH_FAILED: &str = "0a180887d5edba8fd59dc10410c0c0caafc1ba96892e1802200210011a7822760a001a720a700a02180212680a322f63616c6c6261636b2d67756172642f766f62697a2d766f6963652f71383376456a5257654a71383376456a5257654a71771002180220012a220246464646464646464646464646464646a003c5693eb2c36900ed5eed5e0000000030def9aac8f8acd1910120011a0c220a0a001a060a040a021802";
    const SUCCEEDED: &str =
        "0a1908e2889e81df8af4f9970110c38c8880b2d3fcc93b1802200210011a0612040a021802";
    const FAILED_WITH: &str = "0a1908e2889e81df8af4f9970110c38c8880b2d3fcc93b180220021a6a0a680a02180212600a322f63616c6c6261636b2d67756172642f766f62697a2d766f6963652f71383376456a5257654a71383376456a5257654a71771002180220012a1a0146464646464646464646464646464646a003c5693eb2c3690030def9aac8f8acd191012001";
    const FAILED_EMPTY: &str =
        "0a1908e2889e81df8af4f9970110c38c8880b2d3fcc93b180220021a060a040a021802";
    const LEASE: i64 = 0x1234567890abcde;

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    fn value() -> [u8; VALUE_SIZE] {
        encode_value(&Stored {
            record: Record {
                fingerprint: [b'F'; 16],
                expires_at: 1_774_519_200,
                deadline: 1_774_432_830,
                state: State::InFlight,
            },
            claim: 0x5eed_5eed,
        })
    }

    fn put(key: &[u8], compare: Compare, lease: PutLease) -> Txn {
        Txn {
            key: String::from_utf8(key.to_vec()).unwrap(),
            compare,
            value: value(),
            lease,
        }
    }

    fn answer(status: u32, message: &str, body: &[u8]) -> GrpcResponse<'static> {
        GrpcResponse {
            http_status: Some(200),
            grpc_status: Some(status),
            message: Box::leak(message.to_string().into_boxed_str()),
            body: Box::leak(body.to_vec().into_boxed_slice()),
        }
    }

    fn ok(message_hex: &str) -> GrpcResponse<'static> {
        answer(OK, "", &framed(&hex(message_hex)))
    }

    /// What goes on the wire for a transaction, a batch of them, a lease grant.
    fn txn(txn: &Txn) -> Vec<u8> {
        Request::Txn(txn.clone()).call(Api::Grpc).body
    }

    fn batch(txns: &[&Txn]) -> Vec<u8> {
        let steps: Vec<_> = txns
            .iter()
            .map(|txn| Request::Txn((*txn).clone()).step(Api::Grpc))
            .collect();
        callout(Api::Grpc, &steps).body
    }

    fn lease_grant(id: i64, ttl_secs: u64) -> Vec<u8> {
        Request::Grant(Lease { id, ttl_secs }).call(Api::Grpc).body
    }

    #[test]
    fn requests_are_byte_for_byte_what_etcds_own_code_encodes() {
        let create = put(KEY, Compare::NeverCreated, PutLease::Attach(LEASE));
        let encoded = txn(&create);
        assert_eq!(encoded, framed(&hex(CREATE)));
        let settle = put(KEY, Compare::ModRevision(41), PutLease::Keep);
        assert_eq!(txn(&settle), framed(&hex(SETTLE)));
        let other = [&KEY[..KEY.len() - 1], b"x"].concat();
        let settle_other = put(&other, Compare::ModRevision(41), PutLease::Keep);
        assert_eq!(batch(&[&create, &settle_other]), framed(&hex(BATCH)));
        assert_eq!(lease_grant(LEASE, 90_300), framed(&hex(GRANT)));
        assert_eq!(&encoded[..5], &[0, 0, 0, 0, (encoded.len() - 5) as u8]);
    }

    #[test]
    fn etcds_answers_are_read() {
        let reply = txn_result(ok(SUCCEEDED)).ok().unwrap();
        assert!(reply.succeeded && reply.revision == 2 && reply.kv.is_none());
        let reply = txn_result(ok(FAILED_WITH)).ok().unwrap();
        assert!(!reply.succeeded && reply.revision == 2);
        let kv = reply.kv.unwrap();
        // Recorded with the 26-byte value of format 1: the parser reads any bytes.
        assert_eq!((kv.value.len(), kv.value[0], kv.mod_revision), (26, 1, 2));
        let reply = txn_result(ok(FAILED_EMPTY)).ok().unwrap();
        assert!(!reply.succeeded && reply.kv.is_none());
    }

    #[test]
    fn a_batchs_answers_are_read_one_per_transaction() {
        let replies = batch_results(ok(BATCH_APPLIED), 2);
        let [Ok(create), Ok(settle)] = replies.as_slice() else {
            panic!("{replies:?}");
        };
        assert!(create.succeeded && create.revision == 2 && create.kv.is_none());
        assert!(!settle.succeeded && settle.kv.is_none());
        let replies = batch_results(ok(BATCH_FAILED), 2);
        let [Ok(create), Ok(settle)] = replies.as_slice() else {
            panic!("{replies:?}");
        };
        assert!(!create.succeeded && create.revision == 2);
        let kv = create.kv.as_ref().unwrap();
        assert_eq!(
            (kv.value.as_slice(), kv.mod_revision),
            (value().as_slice(), 2)
        );
        assert!(!settle.succeeded && settle.kv.is_none());
        // Another count than was sent, a cut answer, or a failed call: each gets an error.
        assert!(batch_results(ok(BATCH_FAILED), 3)
            .iter()
            .all(Result::is_err));
        let whole = framed(&hex(BATCH_FAILED));
        for cut in 0..whole.len() {
            let replies = batch_results(answer(OK, "", &whole[..cut]), 2);
            assert!(replies.iter().all(Result::is_err), "cut at {cut}");
        }
        let missing = answer(NOT_FOUND, "etcdserver: requested lease not found", &[]);
        assert_eq!(
            batch_results(missing, 2),
            vec![Err(Failure::LeaseNotFound), Err(Failure::LeaseNotFound)]
        );
    }

    #[test]
    fn anything_else_is_an_error_never_a_panic() {
        let whole = framed(&hex(FAILED_WITH));
        for cut in 0..whole.len() {
            let result = txn_result(answer(OK, "", &whole[..cut]));
            assert!(matches!(result, Err(Failure::Etcd(_))), "cut at {cut}");
        }
        let mut compressed = whole.clone();
        compressed[0] = 1;
        assert!(txn_result(answer(OK, "", &compressed)).is_err());
        // A success that is not a transaction reply: no revision.
        assert!(txn_result(ok(GRANT)).is_err());
        let mut longer = whole;
        longer.push(0);
        assert!(txn_result(answer(OK, "", &longer)).is_err());
    }

    #[test]
    fn statuses_mean_what_the_gateways_did() {
        let missing = answer(NOT_FOUND, "etcdserver: requested lease not found", &[]);
        assert!(matches!(txn_result(missing), Err(Failure::LeaseNotFound)));
        assert_eq!(round_trip(missing), crate::store::etcd::RoundTrip::Ok);
        let there = answer(FAILED_PRECONDITION, "etcdserver: lease already exists", &[]);
        assert_eq!(grant_result(there), Ok(()));
        assert_eq!(round_trip(there), crate::store::etcd::RoundTrip::Ok);
        let envoy_timeout = answer(UNAVAILABLE, ENVOY_TIMEOUT, &[]);
        assert!(matches!(
            txn_result(envoy_timeout),
            Err(Failure::Etcd(StoreError::Timeout))
        ));
        assert_eq!(
            round_trip(envoy_timeout),
            crate::store::etcd::RoundTrip::Timeout
        );
        let deadline = answer(DEADLINE_EXCEEDED, "context deadline exceeded", &[]);
        assert_eq!(grant_result(deadline), Err(StoreError::Timeout));
        let down = answer(UNAVAILABLE, "no healthy upstream", &[]);
        assert_eq!(round_trip(down), crate::store::etcd::RoundTrip::Error);
        assert!(matches!(
            grant_result(down),
            Err(StoreError::Unavailable(text)) if text == "gRPC status 14: no healthy upstream"
        ));
        let reset = GrpcResponse {
            http_status: None,
            grpc_status: None,
            message: "",
            body: &[],
        };
        assert_eq!(round_trip(reset), crate::store::etcd::RoundTrip::Error);
        assert!(matches!(
            grant_result(reset),
            Err(StoreError::Unavailable(_))
        ));
    }

    #[test]
    fn a_reservation_over_grpc_is_one_transaction() {
        let timing = Timing {
            window_secs: 86_400,
            inflight_secs: 30,
        };
        let etcd = Etcd::new(
            "etcd".into(),
            "etcd".into(),
            "/callback-guard/",
            "vobiz-voice",
            timing,
            250,
            OnError::FailClosed,
            3600,
        )
        .with_api(Api::Grpc);
        let mut op = etcd.reserve(&[7; 16], &[b'F'; 16], 1_774_432_800, 1);
        let request = op.request();
        let call = request.call(Api::Grpc);
        assert_eq!(
            (call.path, call.content_type),
            (TXN_PATH, "application/grpc")
        );
        assert_eq!(call.body, framed(&txn_request(request.txn().unwrap())));
        match op.on_answer(crate::store::etcd::Answered::Grpc(ok(SUCCEEDED))) {
            Progress::Done(Ok(answer)) => {
                assert_eq!(
                    (answer.reservation, answer.revision),
                    (Reservation::Fresh, 2)
                );
            }
            other => panic!("expected the reservation, got {other:?}"),
        }
    }
}
