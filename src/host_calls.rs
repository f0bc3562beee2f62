//! Counts of the host calls the filter makes, by kind, for `make bench`'s priced floor:
//! what a request costs at least is how many crossings into Envoy it makes times what each
//! costs (the probe filter's prices), plus its hashing. Compiled in only with the
//! `count-host-calls` feature, which only the benchmark's own build enables; otherwise
//! `count` is nothing.

/// A kind of host call, priced by one of the probe filter's measurements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostCall {
    RequestHeaders,
    RequestHeaderSet,
    ResponseHeader,
    Body,
    SharedDataGet,
    SharedDataSet,
    PropertyGet,
    PropertySet,
    Clock,
    MetricIncrement,
    MetricRecord,
    LocalReply,
    Callout,
    CalloutResponse,
}

impl HostCall {
    /// Every kind, in declaration order (so `kind as usize` indexes it).
    pub const ALL: [HostCall; 14] = [
        HostCall::RequestHeaders,
        HostCall::RequestHeaderSet,
        HostCall::ResponseHeader,
        HostCall::Body,
        HostCall::SharedDataGet,
        HostCall::SharedDataSet,
        HostCall::PropertyGet,
        HostCall::PropertySet,
        HostCall::Clock,
        HostCall::MetricIncrement,
        HostCall::MetricRecord,
        HostCall::LocalReply,
        HostCall::Callout,
        HostCall::CalloutResponse,
    ];

    pub fn name(self) -> &'static str {
        match self {
            HostCall::RequestHeaders => "request_headers",
            HostCall::RequestHeaderSet => "request_header_set",
            HostCall::ResponseHeader => "response_header",
            HostCall::Body => "body",
            HostCall::SharedDataGet => "shared_data_get",
            HostCall::SharedDataSet => "shared_data_set",
            HostCall::PropertyGet => "property_get",
            HostCall::PropertySet => "property_set",
            HostCall::Clock => "clock",
            HostCall::MetricIncrement => "metric_increment",
            HostCall::MetricRecord => "metric_record",
            HostCall::LocalReply => "local_reply",
            HostCall::Callout => "callout",
            HostCall::CalloutResponse => "callout_response",
        }
    }
}

/// One counter per kind, indexed by the kind's discriminant (the order of `ALL`).
#[cfg(feature = "count-host-calls")]
static COUNTS: [std::sync::atomic::AtomicU64; HostCall::ALL.len()] =
    [const { std::sync::atomic::AtomicU64::new(0) }; HostCall::ALL.len()];

/// Counts one call (nothing without the `count-host-calls` feature).
#[inline(always)]
pub fn count(call: HostCall) {
    #[cfg(feature = "count-host-calls")]
    COUNTS[call as usize].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    #[cfg(not(feature = "count-host-calls"))]
    let _ = call;
}

/// Every count so far, as JSON (`{"request_headers": 3, ...}`).
#[cfg(feature = "count-host-calls")]
pub fn totals_json() -> String {
    let fields: Vec<String> = HostCall::ALL
        .iter()
        .zip(&COUNTS)
        .map(|(call, n)| {
            format!(
                "\"{}\":{}",
                call.name(),
                n.load(std::sync::atomic::Ordering::Relaxed)
            )
        })
        .collect();
    format!("{{{}}}", fields.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_indexes_its_own_counter() {
        for (i, call) in HostCall::ALL.iter().enumerate() {
            assert_eq!(*call as usize, i, "{}", call.name());
        }
    }
}
