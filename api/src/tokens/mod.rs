//! Personal access tokens: what people give the published DataSHIELD clients (as the password
//! of Basic authentication, or in `X-Opal-Auth`) to reach a project's DataSHIELD server through
//! the API. `repo` stores them (digests only), `service` makes, lists and revokes them for the
//! JSON API and the pages, and holds the one check the DataSHIELD proxy calls:
//! [`authenticate_for_datashield`].

pub mod repo;
pub mod service;

pub use service::{AccessTokens, TokenRefusal, authenticate_for_datashield};

/// Every token starts with this, so that it is recognised wherever it turns up (a secret
/// scanner, a log line, a bearer header sent to the wrong place).
pub const TOKEN_PREFIX: &str = "trellis_pat_";

/// A new token: the prefix and 32 random bytes, base64url without padding (43 characters).
pub fn generate() -> String {
    format!("{TOKEN_PREFIX}{}", crate::identity::session::random_token())
}

/// Whether `presented` has a token's shape, before any database is asked.
pub fn well_formed(presented: &str) -> bool {
    presented.strip_prefix(TOKEN_PREFIX).is_some_and(|rest| {
        rest.len() == 43
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

#[cfg(test)]
mod tests;
