//! `PathView` and `Policy::protection` on arbitrary paths. Never panics; a path any modelled
//! server (tests/support/servers.rs) routes under a protected prefix is reached by the view
//! and protected by the policy; a path under a prefix as sent is reached; a canonical path
//! under a prefix is protected by that route and not refused.
#![no_main]

use std::sync::OnceLock;

use callback_guard::config;
use callback_guard::path_view::PathView;
use callback_guard::policy::{Policy, Protection};
use callback_guard::request::{Header, RequestHead};
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/servers.rs"]
mod servers;

const PREFIXES: [&str; 3] = ["/vobiz/", "/api/hooks/", "/wa"];

fn policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let routes: Vec<String> = PREFIXES
            .iter()
            .enumerate()
            .map(|(i, prefix)| {
                format!(
                    r#"{{"name": "r{i}", "path_prefix": "{prefix}", "scheme": "vobiz_whatsapp", "keys": [{{"value": "s"}}]}}"#
                )
            })
            .collect();
        let document = format!(r#"{{"routes": [{}]}}"#, routes.join(","));
        config::parse(document.as_bytes(), &|_| None).expect("the fuzz policy is valid")
    })
}

fuzz_target!(|data: &[u8]| {
    let policy = policy();
    let view = PathView::new(data);
    let cut = view.raw();
    let headers: Vec<Header> = vec![
        (":path".into(), data.to_vec()),
        (":authority".into(), b"h".to_vec()),
    ];
    let protection = policy.protection(&RequestHead::new(&headers));
    let readings = servers::readings(cut);
    for route in &policy.routes {
        let prefix = &route.path_prefix;
        let reached = view.could_reach(prefix);
        if prefix.is_prefix_of(cut) {
            assert!(
                reached,
                "{data:?} starts with {} but does not reach it",
                prefix.as_str()
            );
        }
        for reading in &readings {
            assert!(
                !reading.under(prefix.as_str()) || reached,
                "{} routes {data:?} under {} but the view does not reach it",
                reading.server,
                prefix.as_str()
            );
        }
        if reached {
            assert!(
                !matches!(protection, Protection::None),
                "{data:?} reaches {}",
                prefix.as_str()
            );
        }
    }
    if let Protection::Route(route) = protection {
        assert!(route.path_prefix.is_prefix_of(cut));
        assert!(
            view.features().ambiguous().is_empty(),
            "{data:?}: {}",
            view.features().names()
        );
    }
});
