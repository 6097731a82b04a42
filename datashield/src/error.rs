//! What can go wrong with a DataSHIELD call, in the categories Opal reports them in.

/// A refused or failed call. Parse errors and unknown methods are refused before anything is
/// evaluated (Opal answers 400 and 404); the rest are R's `stop()`s, which Opal reports as a
/// failed command carrying the message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DsError {
    /// The call text is not in DataSHIELD's v2 grammar, or breaks a rule of its own (an aggregate
    /// that is not a single call, too deep, too long).
    #[error("{0}")]
    Parse(String),
    /// A function that the profile does not allow (for this kind of call) was named.
    #[error("No such DataSHIELD '{kind}' method with name: {name}")]
    NoSuchMethod { kind: &'static str, name: String },
    /// A disclosure control refused the result; `rule` names the setting or check (for the log).
    #[error("{message}")]
    Disclosure { rule: &'static str, message: String },
    /// Any other failure of the function (bad argument, missing symbol), as R's `stop()` would say.
    #[error("{0}")]
    Failed(String),
}

impl DsError {
    pub fn failed(message: impl Into<String>) -> DsError {
        DsError::Failed(message.into())
    }

    pub fn disclosure(rule: &'static str, message: impl Into<String>) -> DsError {
        DsError::Disclosure {
            rule,
            message: message.into(),
        }
    }

    /// The rule that refused the call, for the structured log (`None` for plain failures).
    pub fn rule(&self) -> Option<&str> {
        match self {
            DsError::Parse(_) => Some("grammar"),
            DsError::NoSuchMethod { .. } => Some("allow-list"),
            DsError::Disclosure { rule, .. } => Some(rule),
            DsError::Failed(_) => None,
        }
    }
}
