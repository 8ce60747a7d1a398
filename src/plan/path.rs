//! How a path template prints its values: each one percent-encoded as data inside one
//! segment, so that no value can change the host, the query or the path above it
//! (`engine::url` checks the joined URL against the base as well).

use minijinja::{Error, Output, State, Value};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything but RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The template formatter: in path templates (named `*.path`) every interpolated value is
/// percent-encoded; elsewhere values print as they are.
pub fn path_formatter(out: &mut Output, state: &mut State, value: &Value) -> Result<(), Error> {
    if state.name().ends_with(".path") {
        let text = value.to_string();
        write!(out, "{}", utf8_percent_encode(&text, SEGMENT)).map_err(Error::from)
    } else {
        minijinja::escape_formatter(out, state, value)
    }
}

/// `text` encoded as a path template would print it.
pub fn encode_segment(text: &str) -> String {
    utf8_percent_encode(text, SEGMENT).to_string()
}
