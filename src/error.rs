//! The error kinds shared by every layer, each mapped to an HTTP status in one place
//! (`api::error`): input a client sent that cannot apply, and stored bytes that cannot be read.
//! Errors of one layer only (storage, a collection, the Raft engine) have their own types.

/// What is wrong with a client's input, said so that the client can fix it: the field's path
/// and what was expected. Always the client's to fix (400), and nothing has changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// How Qdrant's request validator begins its messages. A value of the right type that breaks a
/// documented constraint (a limit of 0, a vector size out of range, repeated sparse indices) is
/// reported with it and answered 422, as Qdrant answers; other bad input stays 400.
pub const VALIDATION: &str = "Validation error in JSON body: ";

impl Invalid {
    /// The field at `path` breaks a constraint: `Validation error in JSON body: [path: message]`.
    pub fn field(path: &str, message: impl std::fmt::Display) -> Invalid {
        Invalid(format!("{VALIDATION}[{path}: {message}]"))
    }

    /// `value` at `path` is below `min`, in the validator's words.
    pub fn below(path: &str, value: impl std::fmt::Display, min: usize) -> Invalid {
        Invalid::field(
            path,
            format!("value {value} invalid, must be {min} or larger"),
        )
    }

    /// `value` at `path` is outside `min..=max`, in the validator's words.
    pub fn outside(path: &str, value: impl std::fmt::Display, min: usize, max: usize) -> Invalid {
        Invalid::field(
            path,
            format!("value {value} invalid, must be from {min} to {max}"),
        )
    }

    /// The path and message of a validation error ([`Invalid::field`]), if this is one.
    pub fn validation(&self) -> Option<(&str, &str)> {
        let inner = self.0.strip_prefix(VALIDATION)?;
        let inner = inner.strip_prefix('[')?.strip_suffix(']')?;
        inner.split_once(": ")
    }
}

/// Bytes that do not decode: a damaged or truncated record or file. Whose fault that is
/// depends on where the bytes came from (an uploaded snapshot, a file on disk), so the caller
/// that knows says what it means.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Corrupt(pub String);

/// `Err(Invalid)` with a formatted message.
#[macro_export]
macro_rules! invalid {
    ($($arg:tt)*) => {
        Err($crate::error::Invalid(format!($($arg)*)))
    };
}

/// `Err(Corrupt)` with a formatted message.
#[macro_export]
macro_rules! corrupt {
    ($($arg:tt)*) => {
        Err($crate::error::Corrupt(format!($($arg)*)))
    };
}

/// Both are made from their message and read as it.
macro_rules! message {
    ($($kind:ident),*) => {$(
        impl From<String> for $kind {
            fn from(message: String) -> Self {
                $kind(message)
            }
        }

        impl From<&str> for $kind {
            fn from(message: &str) -> Self {
                $kind(message.to_string())
            }
        }

        impl std::ops::Deref for $kind {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }
    )*};
}
message!(Invalid, Corrupt);
