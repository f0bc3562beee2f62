//! `callback-guard seal`: a key sealed for a configuration that may be shown, under the
//! sealing key the filter will open it with. The secret comes on standard input, never in
//! the arguments (which every user of the machine can list).

use std::io::Read;

use callback_guard::sealed::{SealingKey, NONCE_BYTES};

use crate::cli::SealArgs;

pub fn run(args: &SealArgs) -> Result<bool, String> {
    let text = std::env::var(&args.key_env).map_err(|_| {
        format!(
            "environment variable {:?} is not set (the sealing key)",
            args.key_env
        )
    })?;
    let key = SealingKey::from_text(&text)
        .map_err(|problem| format!("environment variable {:?} {problem}", args.key_env))?;
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|error| format!("cannot read the secret from standard input: {error}"))?;
    let sealed = key
        .seal(secret_of(&input)?, nonce()?)
        .map_err(|problem| format!("the secret {problem}"))?;
    println!("{sealed}");
    Ok(true)
}

/// The secret as typed or piped: `echo`'s newline is not part of it, anything else is, and
/// the filter's own rules (not empty, no surrounding whitespace) are checked here already.
fn secret_of(input: &str) -> Result<&str, String> {
    let secret = input
        .strip_suffix("\r\n")
        .or_else(|| input.strip_suffix('\n'))
        .unwrap_or(input);
    if secret.is_empty() {
        return Err("no secret on standard input".into());
    }
    if secret.trim() != secret {
        return Err(
            "the secret has leading or trailing whitespace (the filter would refuse it)".into(),
        );
    }
    Ok(secret)
}

fn nonce() -> Result<[u8; NONCE_BYTES], String> {
    let mut nonce = [0; NONCE_BYTES];
    getrandom::getrandom(&mut nonce)
        .map_err(|error| format!("no randomness for the nonce: {error}"))?;
    Ok(nonce)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_trailing_newline_is_dropped_and_nothing_else() {
        assert_eq!(secret_of("token\n").unwrap(), "token");
        assert_eq!(secret_of("token\r\n").unwrap(), "token");
        assert_eq!(secret_of("token").unwrap(), "token");
        for refused in ["", "\n", "token\n\n", " token\n", "token \n"] {
            assert!(secret_of(refused).is_err(), "{refused:?}");
        }
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(nonce().unwrap(), nonce().unwrap());
    }
}
