//! The error kinds shared by every layer, each mapped to an HTTP status in one place
//! (`api::error`): input a client sent that cannot apply, and stored bytes that cannot be read.
//! Errors of one layer only (storage, a collection, the Raft engine) have their own types.

/// What is wrong with a client's input, said so that the client can fix it: the field's path
/// and what was expected. Always the client's to fix (400), and nothing has changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

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
