//! Error display helpers.

use std::error::Error;

/// `err: cause: root cause` — many library errors (the S3 SDK's, deadpool's)
/// say little at the top and the useful part further down.
pub fn chain(err: &dyn Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}
