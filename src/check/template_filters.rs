//! The filters integ adds to minijinja's, with the arguments each takes: lint counts the
//! arguments a template gives them (E209) and checks those written as literals (E210), so
//! that `| add_duration('7 days')` or `| format_time('%Q')` fails lint, not every event.

use super::Checker;
use super::template_names::{NameKind, names, string_end};
use crate::ast::Text;
use crate::diagnostic::DiagnosticKind;
use std::ops::Range;
use std::str::FromStr;

/// What an argument of an integ filter must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// A number of decimal places, 0 to `plan::MAX_PLACES`.
    Places,
    /// A duration as specs write them, optionally negative: `"7d"`, `"-1h30m"`.
    Duration,
    /// A strftime format: `"%Y-%m-%d"`.
    TimeFormat,
    /// An IANA time zone: `"Europe/Paris"`.
    TimeZone,
}

/// A filter integ registers (`plan::jinja`), with its arguments; the last `optional` of
/// them may be left out.
#[derive(Debug)]
pub struct Filter {
    pub name: &'static str,
    pub args: &'static [Arg],
    pub optional: usize,
    /// How it is called, for help texts.
    pub example: &'static str,
}

const fn filter(name: &'static str, args: &'static [Arg], example: &'static str) -> Filter {
    Filter {
        name,
        args,
        optional: 0,
        example,
    }
}

/// The filters integ adds to minijinja's.
pub const INTEG_FILTERS: &[Filter] = &[
    filter("segments", &[], "{{ event.path | segments }}"),
    filter("from_epoch", &[], "{{ event.created | from_epoch }}"),
    filter(
        "from_epoch_ms",
        &[],
        "{{ event.timestamp | from_epoch_ms }}",
    ),
    filter("epoch", &[], "{{ event.updated_at | epoch }}"),
    filter("epoch_ms", &[], "{{ event.updated_at | epoch_ms }}"),
    filter(
        "add_duration",
        &[Arg::Duration],
        "{{ now() | add_duration('-7d') }}",
    ),
    Filter {
        name: "format_time",
        args: &[Arg::TimeFormat, Arg::TimeZone],
        optional: 1,
        example: "{{ now() | format_time('%Y-%m-%d', 'Europe/Paris') }}",
    },
    filter(
        "from_minor_units",
        &[Arg::Places],
        "{{ event.amount | from_minor_units(2) }}",
    ),
    filter(
        "to_minor_units",
        &[Arg::Places],
        "{{ event.price | to_minor_units(2) }}",
    ),
    filter("decimal", &[Arg::Places], "{{ event.total | decimal(2) }}"),
];

pub(super) fn integ_filter(name: &str) -> Option<&'static Filter> {
    INTEG_FILTERS.iter().find(|f| f.name == name)
}

impl Checker<'_> {
    /// The arguments given to each integ filter `text` names.
    pub(super) fn integ_filter_arguments(&mut self, text: &Text) {
        let template = text.value.as_str();
        for (kind, range) in names(template) {
            let Some(filter) = (kind == NameKind::Filter)
                .then(|| integ_filter(&template[range.clone()]))
                .flatten()
            else {
                continue;
            };
            let args = arguments(template, range.end);
            let most = filter.args.len();
            let least = most - filter.optional;
            if !(least..=most).contains(&args.len()) {
                let kind = DiagnosticKind::FilterArguments {
                    filter: filter.name,
                    expected: expected(least, most),
                    example: filter.example,
                };
                self.report(
                    kind,
                    text.span_of(range.start..args.last().map_or(range.end, |a| a.end)),
                );
                continue;
            }
            for (arg, at) in filter.args.iter().zip(args) {
                if let Some(reason) = problem(*arg, &template[at.clone()]) {
                    let kind = DiagnosticKind::FilterArgument {
                        filter: filter.name,
                        reason,
                    };
                    self.report(kind, text.span_of(at));
                }
            }
        }
    }
}

fn expected(least: usize, most: usize) -> String {
    let count = |n: usize| match n {
        0 => "no argument".to_string(),
        1 => "one argument".to_string(),
        n => format!("{n} arguments"),
    };
    if least == most {
        count(most)
    } else {
        format!("{least} or {}", count(most))
    }
}

/// Why a literal argument can never do, or `None` (also when it is not a literal: a value
/// known at run time is checked then).
fn problem(arg: Arg, written: &str) -> Option<String> {
    let number = written.parse::<u64>().ok();
    let text = literal_text(written);
    match (arg, number, text) {
        (Arg::Places, Some(places), _) if places > u64::from(crate::model::filters::MAX_PLACES) => {
            Some(format!(
                "{places} decimal places is more than the {} it takes",
                crate::model::filters::MAX_PLACES
            ))
        }
        (Arg::Places, None, Some(_)) => {
            Some(format!("{written} is text, not a number of decimal places"))
        }
        (Arg::Duration, _, Some(duration))
            if crate::model::filters::signed_duration(duration).is_none() =>
        {
            Some(format!(
                "`{duration}` is not a duration such as \"7d\", \"-1h30m\" or \"500ms\""
            ))
        }
        (Arg::TimeFormat, _, Some(format)) => crate::model::filters::format_problem(format),
        (Arg::TimeZone, _, Some(zone)) if chrono_tz::Tz::from_str(zone).is_err() => Some(format!(
            "`{zone}` is not an IANA time zone such as \"Europe/Paris\" or \"UTC\""
        )),
        _ => None,
    }
}

/// The text of a quoted literal without escapes (`'7d'`, `"7d"`); `None` for anything else.
fn literal_text(written: &str) -> Option<&str> {
    let quote = written.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let inner = written.strip_prefix(quote)?.strip_suffix(quote)?;
    (!inner.contains([quote, '\\'])).then_some(inner)
}

/// The byte ranges of the arguments in the parentheses right after `at` (trimmed), or
/// none when no parenthesis follows.
fn arguments(template: &str, at: usize) -> Vec<Range<usize>> {
    let bytes = template.as_bytes();
    let mut i = at;
    while i < bytes.len() && bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    if bytes.get(i) != Some(&b'(') {
        return Vec::new();
    }
    let mut args = Vec::new();
    let mut start = i + 1;
    let mut depth = 0usize;
    i += 1;
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'\'' => {
                i = string_end(bytes, i);
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' if depth == 0 => {
                push_trimmed(template, start..i, &mut args);
                return args;
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b',' if depth == 0 => {
                push_trimmed(template, start..i, &mut args);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    args
}

/// `range` without its surrounding spaces; an empty one (after a trailing comma) is none.
fn push_trimmed(template: &str, range: Range<usize>, args: &mut Vec<Range<usize>>) {
    let text = &template[range.clone()];
    let start = range.start + (text.len() - text.trim_start().len());
    let end = range.end - (text.len() - text.trim_end().len());
    if start < end {
        args.push(start..end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(template: &str) -> Vec<&str> {
        let at = template.find('|').map_or(0, |i| {
            let name = template[i + 1..].trim_start();
            template.len() - name.len()
                + name
                    .find(|c: char| !c.is_alphanumeric() && c != '_')
                    .unwrap_or(name.len())
        });
        arguments(template, at)
            .into_iter()
            .map(|r| &template[r])
            .collect()
    }

    #[test]
    fn arguments_are_split_at_top_level_commas_only() {
        assert_eq!(
            args("{{ t | format_time('%Y, %m', 'UTC') }}"),
            ["'%Y, %m'", "'UTC'"]
        );
        assert_eq!(args("{{ t | decimal( f(1, 2) ) }}"), ["f(1, 2)"]);
        assert_eq!(args("{{ t | epoch }}"), Vec::<&str>::new());
        assert_eq!(args("{{ t | add_duration('7d',) }}"), ["'7d'"]);
        assert_eq!(args("{{ t | add_duration(\"a)b\") }}"), ["\"a)b\""]);
    }

    #[test]
    fn literal_arguments_are_checked_and_values_left_to_run_time() {
        assert!(problem(Arg::Duration, "'7 days'").is_some());
        assert_eq!(problem(Arg::Duration, "'-1h30m'"), None);
        assert_eq!(problem(Arg::Duration, "event.window"), None);
        assert!(problem(Arg::TimeFormat, "'%Q'").is_some());
        assert_eq!(problem(Arg::TimeFormat, "'%Y-%m-%dT%H:%M:%S%:z'"), None);
        assert!(problem(Arg::TimeZone, "'Europe/Pariss'").is_some());
        assert_eq!(problem(Arg::TimeZone, "\"America/New_York\""), None);
        assert!(problem(Arg::Places, "19").is_some());
        assert!(problem(Arg::Places, "'2'").is_some());
        assert_eq!(problem(Arg::Places, "2"), None);
    }
}
