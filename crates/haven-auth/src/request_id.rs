//! The one rule for request ids, wherever they come from.
//!
//! A request id ends up in logs, in error bodies and in the append-only audit trail,
//! which is never erased: a client could otherwise park a name there for good. So an
//! incoming id is kept only if it is a short token of ASCII letters, digits and `-`
//! (a UUID fits); anything else is replaced by a fresh UUID. The gateway applies this
//! to `X-Request-Id` and every service to the `x-request-id` metadata of a gRPC call,
//! so a caller that skips the gateway meets the same rule.

/// The longest request id kept.
pub const MAX_LEN: usize = 64;

/// Whether `id` is kept as sent: 1 to 64 ASCII letters, digits or `-`.
pub fn is_valid(id: &str) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
}

/// A fresh request id (a random UUID).
pub fn generate() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `sent` if it follows the rule, otherwise a fresh id.
pub fn accept_or_generate(sent: Option<&str>) -> String {
    match sent {
        Some(id) if is_valid(id) => id.to_owned(),
        _ => generate(),
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_LEN, accept_or_generate, is_valid};

    #[test]
    fn only_short_tokens_of_letters_digits_and_dashes_are_kept() {
        let longest = "a".repeat(MAX_LEN);
        for valid in [
            "abc",
            "0b8f6f5e-7a4c-4f4e-9a57-6a9f2b1d3c4e",
            "REQ-42",
            longest.as_str(),
        ] {
            assert!(is_valid(valid), "{valid}");
            assert_eq!(accept_or_generate(Some(valid)), valid);
        }
        let too_long = "a".repeat(MAX_LEN + 1);
        for invalid in [
            "",
            "Aylin Mammadova",
            "aylin.mammadova",
            "req_1",
            "a:b",
            "semi;colon",
            "Ayşə",
            too_long.as_str(),
        ] {
            assert!(!is_valid(invalid), "{invalid}");
            let replaced = accept_or_generate(Some(invalid));
            assert_ne!(replaced, invalid);
            assert!(is_valid(&replaced));
        }
        assert!(is_valid(&accept_or_generate(None)));
    }
}
