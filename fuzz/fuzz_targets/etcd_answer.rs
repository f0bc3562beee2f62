//! etcd's answers, as the fleet-wide store reads them: the input is the body of a gRPC
//! answer (and, the same bytes, of a JSON gateway answer) to a reservation, to the grant it
//! may ask for, and to a settle. Never panics; an answer is a decision, another call or a
//! store error; a call is always a well-formed request of the route's API.
#![no_main]

use callback_guard::replay::{Outcome, Record, State, Timing};
use callback_guard::store::etcd::{Answered, Etcd, GrpcResponse, Progress, Response};
use callback_guard::store::{Api, Claim, OnError, Stored};
use libfuzzer_sys::fuzz_target;

const NOW: u32 = 1_774_432_800;

fn etcd(api: Api) -> Etcd {
    let timing = Timing {
        window_secs: 86_400,
        inflight_secs: 30,
    };
    Etcd::new(
        "etcd".into(),
        "etcd".into(),
        "/callback-guard/",
        "voice",
        timing,
        250,
        OnError::FailClosed,
        3600,
    )
    .with_api(api)
}

fn answers(data: &[u8]) -> [Answered<'_>; 4] {
    let (status, message) = match data.first() {
        Some(&code) if code < 17 => (u32::from(code), "etcdserver: requested lease not found"),
        _ => (0, ""),
    };
    [
        Answered::Grpc(GrpcResponse {
            http_status: Some(200),
            grpc_status: Some(0),
            message: "",
            body: data,
        }),
        Answered::Grpc(GrpcResponse {
            http_status: Some(200),
            grpc_status: Some(status),
            message,
            body: data,
        }),
        Answered::Json(Response {
            status: Some(200),
            body: data,
        }),
        Answered::Json(Response {
            status: Some(404),
            body: data,
        }),
    ]
}

fn check_call<T: std::fmt::Debug>(api: Api, progress: &Progress<T>) {
    if let Progress::Send(request) = progress {
        let call = request.call(api);
        match api {
            // gRPC's framing (uncompressed, then the length) around a message.
            Api::Grpc => assert!(
                call.content_type == "application/grpc"
                    && call.body.len() > 5
                    && call.body[0] == 0
                    && call.body[1..5] == ((call.body.len() - 5) as u32).to_be_bytes()
            ),
            Api::Json => {
                assert!(call.content_type == "application/json" && call.body.starts_with(b"{"))
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    for answer in answers(data) {
        let api = match answer {
            Answered::Grpc(_) => Api::Grpc,
            Answered::Json(_) => Api::Json,
        };
        let store = etcd(api);
        let mut op = store.reserve(&[7; 16], &[1; 16], NOW, 1);
        let progress = op.on_answer(answer);
        check_call(api, &progress);
        if let Progress::Send(_) = progress {
            // The grant or the next transaction: answered with the same bytes.
            check_call(api, &op.on_answer(answer));
        }
        let claim = Claim {
            revision: 5,
            stored: Stored {
                record: Record {
                    fingerprint: [1; 16],
                    expires_at: NOW + 86_400,
                    deadline: NOW + 30,
                    state: State::InFlight,
                },
                claim: 1,
            },
        };
        if let Some(mut settle) = store.settle(&[7; 16], claim, Outcome::Delivered, NOW) {
            check_call(api, &settle.on_reply(answer.txn()));
        }
        let _ = answer.round_trip();
    }
});
