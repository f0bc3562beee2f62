//! Small helpers: durations, randomness and UTC time formatting.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A whole number followed by `ms`, `s`, `m`, `h` or `d`: `500ms`, `2s`, `10m`, `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!(
                "invalid duration {text:?}: use a whole number followed by ms, s, m, h or d \
                 (e.g. 500ms, 2s, 10m, 1h)"
            ))
        }
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(millis_per_unit))
        .map(Duration::from_millis)
        .ok_or_else(|| format!("invalid duration {text:?}: no number or too large"))
}

/// `n` bytes from the operating system's random source.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], String> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(|e| format!("no randomness available: {e}"))?;
    Ok(bytes)
}

/// A random 20-digit decimal nonce, as Vobiz sends.
pub fn new_nonce() -> Result<String, String> {
    let mut nonce = String::with_capacity(20);
    while nonce.len() < 20 {
        // Bytes of 250 and above are skipped, so every digit is equally likely.
        for byte in random_bytes::<32>()? {
            if byte < 250 && nonce.len() < 20 {
                nonce.push(char::from(b'0' + byte % 10));
            }
        }
    }
    Ok(nonce)
}

/// A random (version 4) UUID, lowercase: what Vobiz uses for call and event ids.
pub fn new_uuid() -> Result<String, String> {
    Ok(callback_guard::providers::sign::uuid(&random_bytes::<32>()?))
}

/// The current time as unix seconds and microseconds within the second.
pub fn now() -> (i64, u32) {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (
        i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        since.subsec_micros(),
    )
}

/// UTC time formatting, the core's (its signers write times with it).
pub use callback_guard::providers::sign::rfc3339;

#[cfg(test)]
mod tests {
    use super::*;
    use callback_guard::providers::hex;
    use callback_guard::timestamp::parse_rfc3339;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in [
            "",
            "5",
            "s",
            "1.5s",
            "-1s",
            "1 s",
            "1S",
            "1sec",
            "ms",
            "1hh",
            "99999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nonces_are_twenty_digits_and_differ() {
        let a = new_nonce().unwrap();
        let b = new_nonce().unwrap();
        assert_eq!(a.len(), 20);
        assert!(a.bytes().all(|c| c.is_ascii_digit()));
        assert_ne!(a, b);
    }

    #[test]
    fn uuids_are_version_4() {
        let id = new_uuid().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
        assert_eq!(id.matches('-').count(), 4);
    }

    #[test]
    fn rfc3339_round_trips_through_the_filter_parser() {
        assert_eq!(rfc3339(1_774_432_800), "2026-03-25T10:00:00Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        for secs in [
            -86_401,
            0,
            68_169_599,
            951_868_799,
            1_774_432_800,
            4_102_444_800,
        ] {
            assert_eq!(
                parse_rfc3339(rfc3339(secs).as_bytes()),
                Some(secs),
                "{secs}"
            );
        }
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0x00, 0xab, 0x7f, 0xff]), "00ab7fff");
    }
}
