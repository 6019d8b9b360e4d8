//! The one rule for the names an operator gives in the configuration (sinks, clients, seller
//! APIs): 1 to 64 letters, digits, `.`, `_` or `-`, so that a name reads the same in a URL, a
//! metric label, a table and a log line. Each name's type checks it with [`check`].

/// A name that breaks the rule, with what it was meant to name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {name:?} is not valid: use 1 to 64 letters, digits, '.', '_' or '-'")]
pub struct InvalidName {
    /// What the name names, as the message begins: "sink name", "client name".
    what: &'static str,
    /// The name as written.
    name: String,
}

/// `name`, if it follows the rule; `what` begins the error's message.
pub fn check(what: &'static str, name: &str) -> Result<(), InvalidName> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(InvalidName {
            what,
            name: name.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_one_to_sixty_four_letters_digits_dots_underscores_or_dashes() {
        for good in ["a", "seller-1.api_v2", &"x".repeat(64)] {
            assert_eq!(check("sink name", good), Ok(()), "{good}");
        }
        for bad in ["", "a b", "ä", "a/b", &"x".repeat(65)] {
            assert!(check("sink name", bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            check("client name", "a b").unwrap_err().to_string(),
            "client name \"a b\" is not valid: use 1 to 64 letters, digits, '.', '_' or '-'"
        );
    }
}
