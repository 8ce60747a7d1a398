//! How templates print values. Printing a missing or null value fails: a string with a
//! hole in it (`/contacts/`, `Hello none`) is never what was meant. In a path template each
//! value is percent-encoded as data inside one segment, so that no value can change the
//! host, the query or the path above it (`engine::url` checks the joined URL as well);
//! only `| segments` inserts several segments, each encoded and none a dot segment.

use minijinja::value::{Object, ObjectRepr};
use minijinja::{Error, ErrorKind, Output, State, Value};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use std::fmt;
use std::sync::Arc;

/// Everything but RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Path segments already encoded by `| segments`: the one value a path template prints as
/// it is. A type of our own, so that no other filter (`| safe`) can produce it.
#[derive(Debug)]
pub(super) struct Segments(String);

impl Object for Segments {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `text` split on `/`, each segment encoded; an empty, `.` or `..` segment is refused,
/// since it would move the request to another resource. Outside path templates the joined
/// text is a plain string.
pub(super) fn segments(state: &State, value: &Value) -> Result<Value, Error> {
    if value.is_undefined() || value.is_none() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            "gives `segments` a missing or null value",
        ));
    }
    let text = value.to_string();
    let mut encoded = Vec::new();
    for segment in text.split('/') {
        if matches!(segment, "" | "." | "..") {
            let which = if segment.is_empty() {
                "an empty".to_string()
            } else {
                format!("a `{segment}`")
            };
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("`segments` refuses a value with {which} segment"),
            ));
        }
        encoded.push(encode_segment(segment));
    }
    let joined = encoded.join("/");
    Ok(if is_path(state) {
        Value::from_object(Segments(joined))
    } else {
        Value::from(joined)
    })
}

/// The template formatter: refuses to print a missing or null value; in path templates
/// (named `*.path`) percent-encodes every value and refuses an empty one.
pub fn path_formatter(out: &mut Output, state: &mut State, value: &Value) -> Result<(), Error> {
    if value.is_undefined() || value.is_none() {
        let what = if value.is_none() { "null" } else { "missing" };
        return Err(Error::new(
            ErrorKind::UndefinedError,
            format!("prints a {what} value"),
        ));
    }
    refuse_non_finite(value)?;
    if !is_path(state) {
        return minijinja::escape_formatter(out, state, value);
    }
    if let Some(segments) = value.downcast_object_ref::<Segments>() {
        return out.write_str(&segments.0).map_err(Error::from);
    }
    let text = value.to_string();
    if text.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "a path segment would be empty",
        ));
    }
    write!(out, "{}", utf8_percent_encode(&text, SEGMENT)).map_err(Error::from)
}

/// A float that is no number (`inf` from an overflow, `NaN` from `(-1) ** 0.5`) is an
/// error, never the text `inf` or, through JSON, a silent `null`. (minijinja itself refuses
/// a division by zero, and integers that overflow even i128.)
pub(super) fn refuse_non_finite(value: &Value) -> Result<(), Error> {
    let float = (value.kind() == minijinja::value::ValueKind::Number)
        .then(|| f64::try_from(value.clone()).ok())
        .flatten();
    match float {
        Some(float) if !float.is_finite() => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("computes {float}, which is no number (an overflow, or a root of a negative)"),
        )),
        _ => Ok(()),
    }
}

fn is_path(state: &State) -> bool {
    state.name().ends_with(".path")
}

/// `text` encoded as a path template would print it.
pub fn encode_segment(text: &str) -> String {
    utf8_percent_encode(text, SEGMENT).to_string()
}
