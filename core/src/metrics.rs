//! The filter's metrics: names and the set each route defines, independent of the host.
//!
//! Names put labels in dotted pairs (`….route.<name>.reason.<code>`) that the shipped
//! Envoy `stats_tags` turn into Prometheus labels: `callback_guard_rejected{route, reason}`.
//! Every metric exists from configuration on, at zero, so a dashboard can tell "never
//! happened" from "not reported" (and when an old key has stopped being used).

use crate::policy::Route;
use crate::verdict::Reason;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One route's metrics, each an `Id` handed out by whoever defines them.
#[derive(Debug)]
pub struct RouteMetrics<Id> {
    /// `(scheme, key name, id)` for every scheme the route accepts and each of its keys.
    accepted: Vec<(&'static str, String, Id)>,
    /// In the order of [`Reason::ALL`].
    rejected: Vec<Id>,
    /// Requests a shadow-mode route forwarded although the verdict was a rejection.
    pub shadow_forwarded: Id,
    /// Identical repeats forwarded because the earlier delivery failed.
    pub retries: Id,
    /// Provider endpoint checks answered at the edge.
    pub handshakes: Id,
    pub delivered: Id,
    pub failed: Id,
    /// Microseconds the filter spent judging a request (its own work, not waiting).
    pub verify_us: Id,
    /// Round trips to the route's fleet-wide store, where it has one.
    pub store: Option<StoreMetrics<Id>>,
    /// This Envoy's replay memory, where the route has one.
    pub replay: Option<ReplayMetrics<Id>>,
}

/// How full a route's replay memory in this Envoy is, and what made room in it.
#[derive(Debug)]
pub struct ReplayMetrics<Id> {
    /// Live entries as a percentage of `max_entries`, sampled periodically.
    pub occupancy_percent: Id,
    /// Delivered entries forgotten to make room (`when_full: forget_oldest_delivered`).
    pub forgotten: Id,
}

/// A fleet-wide store's round trips (reservations and settles alike).
#[derive(Debug)]
pub struct StoreMetrics<Id> {
    /// Microseconds from dispatch to answer.
    pub round_trip_us: Id,
    pub ok: Id,
    pub error: Id,
    pub timeout: Id,
    /// Requests forwarded without the store's decision (`on_error: fail_open`).
    pub fail_open: Id,
}

impl<Id: Copy> RouteMetrics<Id> {
    pub fn define(route: &Route, mut define: impl FnMut(Kind, &str) -> Id) -> Self {
        let r = &route.name;
        let accepted = schemes(route)
            .into_iter()
            .flat_map(|(scheme, keys)| keys.into_iter().map(move |key| (scheme, key)))
            .map(|(scheme, key)| {
                let name = format!("callback_guard.accepted.route.{r}.scheme.{scheme}.key.{key}");
                (scheme, key, define(Kind::Counter, &name))
            })
            .collect();
        let rejected = Reason::ALL
            .iter()
            .map(|reason| {
                let name = format!("callback_guard.rejected.route.{r}.reason.{}", reason.code());
                define(Kind::Counter, &name)
            })
            .collect();
        let counter = |define: &mut dyn FnMut(Kind, &str) -> Id, metric: &str| {
            define(Kind::Counter, &format!("callback_guard.{metric}.route.{r}"))
        };
        RouteMetrics {
            accepted,
            rejected,
            shadow_forwarded: counter(&mut define, "shadow_forwarded"),
            retries: counter(&mut define, "retries"),
            handshakes: counter(&mut define, "handshakes_answered"),
            delivered: define(
                Kind::Counter,
                &format!("callback_guard.delivery.route.{r}.outcome.delivered"),
            ),
            failed: define(
                Kind::Counter,
                &format!("callback_guard.delivery.route.{r}.outcome.failed"),
            ),
            verify_us: define(
                Kind::Histogram,
                &format!("callback_guard.verify_us.route.{r}"),
            ),
            store: match route
                .replay
                .as_ref()
                .and_then(|replay| replay.fleet.as_ref())
            {
                Some(_) => {
                    let result = |define: &mut dyn FnMut(Kind, &str) -> Id, result: &str| {
                        let name = format!("callback_guard.store.route.{r}.result.{result}");
                        define(Kind::Counter, &name)
                    };
                    Some(StoreMetrics {
                        round_trip_us: define(
                            Kind::Histogram,
                            &format!("callback_guard.store_us.route.{r}"),
                        ),
                        ok: result(&mut define, "ok"),
                        error: result(&mut define, "error"),
                        timeout: result(&mut define, "timeout"),
                        fail_open: counter(&mut define, "store_fail_open"),
                    })
                }
                None => None,
            },
            replay: route.replay.as_ref().map(|_| ReplayMetrics {
                occupancy_percent: define(
                    Kind::Gauge,
                    &format!("callback_guard.replay_occupancy_percent.route.{r}"),
                ),
                forgotten: counter(&mut define, "replay_forgotten"),
            }),
        }
    }

    pub fn accepted(&self, scheme: &str, key: &str) -> Option<Id> {
        self.accepted
            .iter()
            .find(|(s, k, _)| *s == scheme && k == key)
            .map(|(_, _, id)| *id)
    }

    pub fn rejected(&self, reason: Reason) -> Option<Id> {
        let index = Reason::ALL.iter().position(|r| *r == reason)?;
        self.rejected.get(index).copied()
    }
}

/// Every scheme a route can accept, with the names of the keys that can verify it.
fn schemes(route: &Route) -> Vec<(&'static str, Vec<String>)> {
    route
        .provider
        .schemes()
        .into_iter()
        .map(|(scheme, keys)| (scheme, keys.into_iter().map(String::from).collect()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    fn names(json: &str) -> (Vec<(Kind, String)>, RouteMetrics<usize>) {
        let policy = config::parse(json.as_bytes(), &|_| Some("t".into())).unwrap();
        let mut defined = Vec::new();
        let metrics = RouteMetrics::define(&policy.routes[0], |kind, name| {
            defined.push((kind, name.to_string()));
            defined.len() - 1
        });
        (defined, metrics)
    }

    #[test]
    fn a_voice_route_defines_every_scheme_key_and_reason() {
        let (defined, metrics) = names(
            r#"{"routes": [{"name": "voice", "path_prefix": "/v/", "public_origin": "https://x",
                "keys": [{"name": "new", "env": "A"}, {"name": "old", "env": "B"}],
                "parent_keys": [{"name": "parent", "env": "C"}]}]}"#,
        );
        let name = |id: usize| defined[id].1.as_str();
        assert_eq!(
            name(metrics.accepted("v3", "old").unwrap()),
            "callback_guard.accepted.route.voice.scheme.v3.key.old"
        );
        assert!(metrics.accepted("v3_sdk", "new").is_some());
        assert!(metrics.accepted("ma_v3_sdk", "parent").is_some());
        assert_eq!(
            metrics.accepted("ma_v3", "new"),
            None,
            "own keys never verify MA"
        );
        assert_eq!(
            metrics.accepted("v2", "new"),
            None,
            "not accepted with replay on"
        );
        assert_eq!(
            name(metrics.rejected(Reason::ReplayTampered).unwrap()),
            "callback_guard.rejected.route.voice.reason.replay_tampered"
        );
        assert_eq!(
            name(metrics.verify_us),
            "callback_guard.verify_us.route.voice"
        );
        assert_eq!(defined[metrics.verify_us].0, Kind::Histogram);
        assert_eq!(
            name(metrics.failed),
            "callback_guard.delivery.route.voice.outcome.failed"
        );
        // 4 schemes x 2 own keys... v3, v3_sdk with 2 keys; ma_v3, ma_v3_sdk with 1.
        let accepted = defined
            .iter()
            .filter(|(_, n)| n.contains(".accepted."))
            .count();
        assert_eq!(accepted, 6);
        let unique: std::collections::HashSet<_> = defined.iter().map(|(_, n)| n).collect();
        assert_eq!(unique.len(), defined.len());
    }

    #[test]
    fn store_metrics_exist_only_for_a_fleet_wide_store() {
        let (defined, metrics) = names(
            r#"{"routes": [{"name": "voice", "path_prefix": "/v/", "public_origin": "https://x",
                "keys": [{"name": "k", "env": "A"}],
                "replay": {"store": {"type": "etcd", "cluster": "etcd"}}}]}"#,
        );
        let store = metrics.store.unwrap();
        let name = |id: usize| defined[id].1.as_str();
        assert_eq!(
            name(store.round_trip_us),
            "callback_guard.store_us.route.voice"
        );
        assert_eq!(defined[store.round_trip_us].0, Kind::Histogram);
        assert_eq!(name(store.ok), "callback_guard.store.route.voice.result.ok");
        assert_eq!(
            name(store.error),
            "callback_guard.store.route.voice.result.error"
        );
        assert_eq!(
            name(store.timeout),
            "callback_guard.store.route.voice.result.timeout"
        );
        assert_eq!(
            name(store.fail_open),
            "callback_guard.store_fail_open.route.voice"
        );
        let (defined, metrics) = names(
            r#"{"routes": [{"name": "voice", "path_prefix": "/v/", "public_origin": "https://x",
                "keys": [{"name": "k", "env": "A"}]}]}"#,
        );
        assert!(metrics.store.is_none());
        assert!(!defined
            .iter()
            .any(|(_, n)| n.starts_with("callback_guard.store")));
    }

    #[test]
    fn body_signed_routes_have_one_scheme() {
        let (_, metrics) = names(
            r#"{"routes": [{"name": "wa", "path_prefix": "/w/", "scheme": "vobiz_whatsapp",
                "keys": [{"name": "sub", "env": "A"}]}]}"#,
        );
        assert!(metrics.accepted("whatsapp", "sub").is_some());
        assert_eq!(metrics.accepted("v3", "sub"), None);
    }
}
