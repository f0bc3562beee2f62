//! Timestamps from signed payloads, and whether they are fresh.
//!
//! Parses RFC 3339 (`2026-03-25T10:00:00Z`, `…T15:30:00.5+05:30`, lowercase `t`/`z`, a
//! space for `T`) to unix seconds, by hand: the format is small and a date crate would be
//! the largest dependency in the filter. Input is attacker-controlled bytes; every field is
//! range-checked and nothing panics.

use crate::verdict::{Reason, Rejection};

/// Longer input is not a timestamp; checked first so no scan depends on attacker length.
const MAX_LEN: usize = 64;

const NANOS_PER_SEC: i128 = 1_000_000_000;

/// A moment as unix nanoseconds: a signed time as precise as the provider writes it
/// (seconds, milliseconds, an RFC 3339 fraction), or the clock's now. Freshness compares
/// the two exactly, as the providers' SDKs compare a real-valued clock with the signed time:
/// whole seconds would let a request through up to a second past the SDK's edge. `i128`: no
/// value an attacker writes, nor a difference of two, can overflow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp(i128);

impl Stamp {
    pub fn secs(secs: i64) -> Stamp {
        Stamp(i128::from(secs) * NANOS_PER_SEC)
    }

    pub fn millis(millis: i64) -> Stamp {
        Stamp(i128::from(millis) * 1_000_000)
    }

    pub fn nanos(nanos: i128) -> Stamp {
        Stamp(nanos)
    }

    /// Whole unix seconds, rounded down (saturating).
    pub fn unix_secs(self) -> i64 {
        i64::try_from(self.0.div_euclid(NANOS_PER_SEC)).unwrap_or(if self.0 < 0 {
            i64::MIN
        } else {
            i64::MAX
        })
    }

    pub fn as_nanos(self) -> i128 {
        self.0
    }
}

/// A strict RFC 3339 date-time with a UTC offset, to whole unix seconds (fraction dropped).
pub fn parse_rfc3339(text: &[u8]) -> Option<i64> {
    parse(text, true).map(Stamp::unix_secs)
}

/// [`parse_rfc3339`] with its fraction of a second (up to nanoseconds; further digits
/// dropped).
pub fn parse_rfc3339_stamp(text: &[u8]) -> Option<Stamp> {
    parse(text, true)
}

/// [`parse_rfc3339_stamp`], a missing offset meaning UTC (Orb's `X-Orb-Timestamp`).
pub fn parse_utc_stamp(text: &[u8]) -> Option<Stamp> {
    parse(text, false)
}

/// As [`parse_rfc3339`], but a missing offset means UTC: Vobiz voice bodies carry
/// `SessionStart=2026-06-08 06:07:34.130248`, which is UTC without saying so.
pub fn parse_assume_utc(text: &[u8]) -> Option<i64> {
    parse(text, false).map(Stamp::unix_secs)
}

fn parse(text: &[u8], offset_required: bool) -> Option<Stamp> {
    if text.len() > MAX_LEN {
        return None;
    }
    let mut s = Cursor(text);
    let year = s.digits(4)?;
    s.expect(b"-")?;
    let month = s.digits(2)?;
    s.expect(b"-")?;
    let day = s.digits(2)?;
    s.expect(b"Tt ")?;
    let hour = s.digits(2)?;
    s.expect(b":")?;
    let minute = s.digits(2)?;
    s.expect(b":")?;
    let second = s.digits(2)?;
    let mut nanos = 0i128;
    if s.0.first() == Some(&b'.') {
        s.expect(b".")?;
        // At least one digit; nanoseconds are kept, further digits dropped.
        let mut scale = NANOS_PER_SEC;
        let first = s.digits(1)?;
        scale /= 10;
        nanos += i128::from(first) * scale;
        while let Some(&digit) = s.0.first().filter(|b| b.is_ascii_digit()) {
            scale /= 10;
            nanos += i128::from(digit - b'0') * scale;
            s.0 = s.0.get(1..)?;
        }
    }
    let offset = match s.0 {
        [] if !offset_required => 0,
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let mut o = Cursor(rest);
            let hours = o.digits(2)?;
            o.expect(b":")?;
            let minutes = o.digits(2)?;
            if !o.0.is_empty() || hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 3600 + minutes * 60;
            if *sign == b'-' {
                -offset
            } else {
                offset
            }
        }
        _ => return None,
    };
    // RFC 3339 allows a leap second (:60); it is counted as the next second.
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(Stamp(i128::from(secs) * NANOS_PER_SEC + nanos))
}

/// A tiny reader over the remaining bytes.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    /// Exactly `n` ASCII digits as a number.
    fn digits(&mut self, n: usize) -> Option<i64> {
        let (head, tail) = self.0.split_at_checked(n)?;
        let mut value = 0i64;
        for &b in head {
            if !b.is_ascii_digit() {
                return None;
            }
            value = value * 10 + i64::from(b - b'0');
        }
        self.0 = tail;
        Some(value)
    }

    /// One byte, which must be one of `allowed`.
    fn expect(&mut self, allowed: &[u8]) -> Option<()> {
        let (first, tail) = self.0.split_first()?;
        if !allowed.contains(first) {
            return None;
        }
        self.0 = tail;
        Some(())
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// How a provider's SDK compares a signed time with its clock, so that the route's window
/// ends exactly where the SDK's does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Edges {
    /// `now − max_age ≤ t ≤ now + max_future`, to the nanosecond (Standard Webhooks, Svix,
    /// Stripe, Slack, Paddle, Mailgun, Linear).
    #[default]
    Exact,
    /// HubSpot's: the time floored to whole seconds is stale once `max_age` old (not at
    /// `max_age` only past it).
    FlooredTimeStrictAge,
    /// Resend's: the clock truncated to whole seconds.
    FlooredClock,
}

/// Whether a signed time `ts` is acceptable at `now`: at most `max_age_secs` old and at
/// most `max_future_secs` ahead, with the provider SDK's `edges`.
pub fn check_fresh(
    ts: Stamp,
    now: Stamp,
    max_age_secs: u64,
    max_future_secs: u64,
    edges: Edges,
) -> Result<(), Rejection> {
    let whole = |stamp: Stamp| Stamp::secs(stamp.unix_secs());
    let (ts, now) = match edges {
        Edges::Exact => (ts, now),
        Edges::FlooredTimeStrictAge => (whole(ts), now),
        Edges::FlooredClock => (ts, whole(now)),
    };
    let age = now.0 - ts.0;
    let max_age = i128::from(max_age_secs) * NANOS_PER_SEC;
    let stale = match edges {
        Edges::FlooredTimeStrictAge => age >= max_age,
        Edges::Exact | Edges::FlooredClock => age > max_age,
    };
    let seconds = |nanos: i128| nanos as f64 / NANOS_PER_SEC as f64;
    if stale {
        return Err(Rejection::new(
            Reason::Stale,
            format!(
                "signed time is {:.3} s old, window is {max_age_secs} s",
                seconds(age)
            ),
        ));
    }
    if -age > i128::from(max_future_secs) * NANOS_PER_SEC {
        return Err(Rejection::new(
            Reason::Future,
            format!(
                "signed time is {:.3} s ahead, skew allowed is {max_future_secs} s",
                seconds(-age)
            ),
        ));
    }
    Ok(())
}

/// Bounds on a callback's own timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    pub max_age_secs: u32,
    pub max_future_secs: u32,
    /// A callback without the timestamp is refused (always true where it is signed).
    pub required: bool,
    /// Where the window ends, as the provider's SDK compares.
    pub edges: Edges,
}

/// The tolerance of the SDKs that check a signed time (Standard Webhooks, Svix, Stripe,
/// Slack): five minutes, here in both directions.
pub const FIVE_MINUTES: Freshness = Freshness {
    max_age_secs: 300,
    max_future_secs: 300,
    required: true,
    edges: Edges::Exact,
};

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-03-25T10:00:00Z, the WhatsApp example's `occurred_at`.
    const WA_EXAMPLE: i64 = 1_774_432_800;

    #[test]
    fn epoch_and_spec_example() {
        assert_eq!(parse_rfc3339(b"1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339(b"2026-03-25T10:00:00Z"), Some(WA_EXAMPLE));
        assert_eq!(parse_rfc3339(b"2026-03-25t10:00:00z"), Some(WA_EXAMPLE));
        assert_eq!(parse_rfc3339(b"2026-03-25 10:00:00Z"), Some(WA_EXAMPLE));
    }

    #[test]
    fn fractions_and_offsets() {
        assert_eq!(
            parse_rfc3339(b"2026-03-25T10:00:00.999999Z"),
            Some(WA_EXAMPLE)
        );
        assert_eq!(
            parse_rfc3339(b"2026-03-25T15:30:00+05:30"),
            Some(WA_EXAMPLE)
        );
        assert_eq!(
            parse_rfc3339(b"2026-03-25T05:00:00.5-05:00"),
            Some(WA_EXAMPLE)
        );
        assert_eq!(
            parse_rfc3339(b"2026-03-25T10:00:00+00:00"),
            Some(WA_EXAMPLE)
        );
        assert_eq!(parse_rfc3339(b"1969-12-31T23:59:59Z"), Some(-1));
    }

    #[test]
    fn vobiz_session_start_is_utc_without_offset() {
        // 2026-06-08T06:07:34Z
        assert_eq!(
            parse_assume_utc(b"2026-06-08 06:07:34.130248"),
            Some(1_780_898_854)
        );
        assert_eq!(parse_rfc3339(b"2026-06-08 06:07:34.130248"), None);
        assert_eq!(parse_assume_utc(b"2026-03-25T10:00:00Z"), Some(WA_EXAMPLE));
    }

    #[test]
    fn leap_years_and_month_lengths() {
        assert!(parse_rfc3339(b"2024-02-29T00:00:00Z").is_some());
        assert!(parse_rfc3339(b"2000-02-29T00:00:00Z").is_some());
        assert_eq!(parse_rfc3339(b"2026-02-29T00:00:00Z"), None);
        assert_eq!(parse_rfc3339(b"1900-02-29T00:00:00Z"), None);
        assert_eq!(parse_rfc3339(b"2026-04-31T00:00:00Z"), None);
        assert!(parse_rfc3339(b"2026-12-31T23:59:60Z").is_some());
        assert_eq!(
            parse_rfc3339(b"2024-03-01T00:00:00Z").zip(parse_rfc3339(b"2024-02-28T00:00:00Z")),
            Some((1_709_251_200, 1_709_078_400))
        );
    }

    #[test]
    fn garbage_is_rejected() {
        for bad in [
            &b""[..],
            b"2026-03-25",
            b"2026-03-25T10:00:00",
            b"2026-03-25T10:00Z",
            b"2026-3-25T10:00:00Z",
            b"2026-13-01T00:00:00Z",
            b"2026-00-01T00:00:00Z",
            b"2026-01-00T00:00:00Z",
            b"2026-01-01T24:00:00Z",
            b"2026-01-01T00:60:00Z",
            b"2026-01-01T00:00:61Z",
            b"2026-01-01T00:00:00.Z",
            b"2026-01-01T00:00:00+5:30",
            b"2026-01-01T00:00:00+24:00",
            b"2026-01-01T00:00:00+05:60",
            b"2026-01-01T00:00:00+0530",
            b"2026-01-01T00:00:00ZZ",
            b"2026-01-01T00:00:00Z ",
            b" 2026-01-01T00:00:00Z",
            b"2026-01-01X00:00:00Z",
            b"+026-01-01T00:00:00Z",
            b"2026-01-01T00:00:00\xff",
            b"\xd9\xa2026-01-01T00:00:00Z",
        ] {
            assert_eq!(
                parse_rfc3339(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = format!("2026-01-01T00:00:00.{}Z", "1".repeat(60));
        assert_eq!(parse_rfc3339(long.as_bytes()), None);
    }

    #[test]
    fn truncations_of_valid_input_never_panic() {
        let full = b"2026-03-25T15:30:00.123456+05:30";
        for end in 0..full.len() {
            let _ = parse_rfc3339(&full[..end]);
            let _ = parse_assume_utc(&full[end..]);
        }
    }

    /// [`check_fresh`] in whole seconds, with exact edges.
    fn fresh(ts: i64, now: i64, max_age: u64, max_future: u64) -> Result<(), Rejection> {
        check_fresh(
            Stamp::secs(ts),
            Stamp::secs(now),
            max_age,
            max_future,
            Edges::Exact,
        )
    }

    #[test]
    fn freshness_is_judged_to_the_nanosecond() {
        // The SDKs compare a real-valued clock: 300.000000001 s old is stale, 300 s is not,
        // whatever the whole seconds say.
        let now = Stamp::nanos(i128::from(WA_EXAMPLE) * 1_000_000_000 + 500_000_000);
        let at = |secs: i64, nanos: i128| Stamp::nanos(i128::from(secs) * 1_000_000_000 + nanos);
        let check = |ts| check_fresh(ts, now, 300, 300, Edges::Exact).map_err(|r| r.reason);
        assert_eq!(check(at(WA_EXAMPLE - 300, 500_000_000)), Ok(()));
        assert_eq!(check(at(WA_EXAMPLE - 300, 499_999_999)), Err(Reason::Stale));
        assert_eq!(check(at(WA_EXAMPLE - 300, 0)), Err(Reason::Stale));
        assert_eq!(check(at(WA_EXAMPLE + 300, 500_000_000)), Ok(()));
        assert_eq!(
            check(at(WA_EXAMPLE + 300, 500_000_001)),
            Err(Reason::Future)
        );
    }

    #[test]
    fn hubspots_and_resends_edges_are_theirs() {
        let second = 1_000_000_000;
        let now = Stamp::nanos(i128::from(WA_EXAMPLE) * second + second / 2);
        let ms = |millis: i64| Stamp::millis(millis);
        let t0 = WA_EXAMPLE * 1000;
        // HubSpot's SDK floors the milliseconds away and refuses at 300 s: 299.501 s old
        // in real time, but 300.5 s after the floor, is stale there and here.
        let hubspot = |ts| check_fresh(ts, now, 300, 300, Edges::FlooredTimeStrictAge);
        assert_eq!(
            hubspot(ms(t0 - 300_000 + 999)).unwrap_err().reason,
            Reason::Stale
        );
        assert_eq!(hubspot(ms(t0 - 299_000)), Ok(()));
        assert_eq!(
            check_fresh(ms(t0 - 300_000 + 999), now, 300, 300, Edges::Exact),
            Ok(())
        );
        // Resend's truncates its clock: 300.5 s old counts as 300.
        let resend = |ts| check_fresh(ts, now, 300, 300, Edges::FlooredClock);
        assert_eq!(resend(Stamp::secs(WA_EXAMPLE - 300)), Ok(()));
        assert_eq!(
            resend(Stamp::secs(WA_EXAMPLE - 301)).unwrap_err().reason,
            Reason::Stale
        );
        assert_eq!(
            check_fresh(Stamp::secs(WA_EXAMPLE - 300), now, 300, 300, Edges::Exact)
                .unwrap_err()
                .reason,
            Reason::Stale
        );
    }

    #[test]
    fn rfc3339_keeps_the_fraction_to_the_nanosecond() {
        let stamp = |text: &[u8]| parse_rfc3339_stamp(text).map(Stamp::as_nanos);
        let base = i128::from(WA_EXAMPLE) * 1_000_000_000;
        assert_eq!(stamp(b"2026-03-25T10:00:00Z"), Some(base));
        assert_eq!(stamp(b"2026-03-25T10:00:00.5Z"), Some(base + 500_000_000));
        assert_eq!(
            stamp(b"2026-03-25T10:00:00.123456789Z"),
            Some(base + 123_456_789)
        );
        assert_eq!(
            stamp(b"2026-03-25T10:00:00.1234567891Z"),
            Some(base + 123_456_789)
        );
        assert_eq!(
            stamp(b"1969-12-31T23:59:59.5Z"),
            Some(-500_000_000),
            "before the epoch, the fraction still counts forward"
        );
    }

    #[test]
    fn freshness_bounds_are_inclusive() {
        let now = WA_EXAMPLE;
        assert_eq!(fresh(now, now, 300, 60), Ok(()));
        assert_eq!(fresh(now - 300, now, 300, 60), Ok(()));
        assert_eq!(fresh(now + 60, now, 300, 60), Ok(()));
        assert_eq!(
            fresh(now - 301, now, 300, 60).unwrap_err().reason,
            Reason::Stale
        );
        assert_eq!(
            fresh(now + 61, now, 300, 60).unwrap_err().reason,
            Reason::Future
        );
    }

    #[test]
    fn freshness_never_overflows() {
        // The widest gap is exactly u64::MAX seconds.
        assert_eq!(fresh(i64::MIN, i64::MAX, u64::MAX, 0), Ok(()));
        assert_eq!(
            fresh(i64::MIN, i64::MAX, u64::MAX - 1, 0)
                .unwrap_err()
                .reason,
            Reason::Stale
        );
        assert_eq!(fresh(i64::MAX, i64::MIN, 0, u64::MAX), Ok(()));
        assert_eq!(
            fresh(i64::MAX, i64::MIN, u64::MAX, u64::MAX - 1)
                .unwrap_err()
                .reason,
            Reason::Future
        );
    }
}
