//! An error and its causes as one line, shared by the core's message rendering and the layers
//! below it that keep a cause as text (the TUF client's load failures).

use std::error::Error;

/// `err` and its causes joined with `": "`, a cause skipped when empty or when the text so far
/// already ends with it (wrappers that repeat their source).
pub fn chain(err: &(dyn Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !text.is_empty() && !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = cause.source();
    }
    out
}
