//! `timestamp::parse_rfc3339` / `parse_assume_utc` on arbitrary bytes. Never panics; the
//! lenient parser accepts all the strict one does, with the same value; a parsed time,
//! written back by the formatter below (its own calendar arithmetic), parses to itself; a
//! UTC input without leap second is exactly what the formatter writes for its value.
#![no_main]

use callback_guard::timestamp::{parse_assume_utc, parse_rfc3339};
use libfuzzer_sys::fuzz_target;

const DAYS_PER_400_YEARS: i64 = 146_097;

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (years 0000-9999), by counting days through
/// 400-year cycles, years and months: nothing shared with the parser's formula.
fn format_rfc3339(t: i64) -> Option<String> {
    let mut days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // 1970-01-01 is 719 528 days after 0000-01-01.
    days += 719_528;
    let mut year = 400 * days.div_euclid(DAYS_PER_400_YEARS);
    days = days.rem_euclid(DAYS_PER_400_YEARS);
    loop {
        let length = if is_leap(year) { 366 } else { 365 };
        if days < length {
            break;
        }
        days -= length;
        year += 1;
    }
    let lengths = [
        31,
        if is_leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let mut month = 0;
    while days >= lengths[month] {
        days -= lengths[month];
        month += 1;
    }
    if !(0..=9999).contains(&year) {
        return None;
    }
    Some(format!(
        "{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        month + 1,
        days + 1,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    ))
}

fuzz_target!(|data: &[u8]| {
    let strict = parse_rfc3339(data);
    let lax = parse_assume_utc(data);
    if let Some(t) = strict {
        assert_eq!(lax, Some(t), "strict accepts what lax refuses");
    }
    if let (Some(t), None) = (lax, strict) {
        // Only the offset was missing: naming UTC gives the same time.
        let mut utc = data.to_vec();
        utc.push(b'Z');
        if utc.len() <= 64 {
            assert_eq!(parse_rfc3339(&utc), Some(t));
        }
    }
    let Some(t) = lax else { return };
    // Years 0000-9999, offsets under a day, a leap second: this much and no more.
    assert!((-62_167_219_200 - 86_400..=253_402_300_800 + 86_400).contains(&t));
    let Some(text) = format_rfc3339(t) else {
        return;
    };
    assert_eq!(parse_rfc3339(text.as_bytes()), Some(t), "{text}");
    assert_eq!(parse_assume_utc(&text.as_bytes()[..19]), Some(t), "{text}");

    // A UTC input (no offset, `Z`, or +00:00) without leap second reads as written.
    let utc = match &data[19..] {
        [] | [b'Z' | b'z'] => true,
        [b'.', rest @ ..] => {
            let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            matches!(&rest[digits..], [] | [b'Z' | b'z'] | b"+00:00" | b"-00:00")
        }
        b"+00:00" | b"-00:00" => true,
        _ => false,
    };
    if utc && &data[17..19] != b"60" {
        let mut written = data[..19].to_vec();
        written[10] = b'T';
        assert_eq!(written, &text.as_bytes()[..19]);
    }
});
