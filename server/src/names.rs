//! Tenant and dataset names: `[a-z0-9][a-z0-9_-]{0,62}`, so they are safe as path segments,
//! SQL identifiers and Hive partition values alike.

#[derive(Debug, thiserror::Error)]
#[error("invalid {what} {name:?}: use 1 to 63 characters of a-z, 0-9, '_' or '-', starting with a letter or digit")]
pub struct NameError {
    pub what: &'static str,
    pub name: String,
}

pub fn check_name(what: &'static str, name: &str) -> Result<(), NameError> {
    let bytes = name.as_bytes();
    let first_ok = bytes
        .first()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let rest_ok = bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-');
    if first_ok && rest_ok && bytes.len() <= 63 {
        Ok(())
    } else {
        Err(NameError {
            what,
            name: name.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::check_name;

    #[test]
    fn accepts_and_rejects() {
        for ok in ["a", "acme", "0day", "my_events", "a-b", &"x".repeat(63)] {
            assert!(check_name("tenant", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "_rejected",
            "-a",
            "Acme",
            "a b",
            "a/b",
            "..",
            "é",
            &"x".repeat(64),
        ] {
            assert!(check_name("tenant", bad).is_err(), "{bad}");
        }
    }
}
