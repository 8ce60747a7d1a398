//! The regular expressions of a JSONPath's `match()` and `search()`. An invalid one is no
//! error at run time: RFC 9535 makes the test false, so a typo in a pattern silently
//! filters out every item. Lint compiles each written pattern with the engine's own regex
//! crate instead.

use jsonpath_rust::parser::model::{
    Comparable, Comparison, Filter, FilterAtom, FnArg, JpQuery, Literal, Segment, Selector, Test,
    TestFunction,
};

/// The first written pattern of `query` that does not compile, with the reason.
pub(super) fn invalid_regex(query: &JpQuery) -> Option<(String, String)> {
    segments(&query.segments)
}

fn segments(segments: &[Segment]) -> Option<(String, String)> {
    segments.iter().find_map(segment)
}

fn segment(one: &Segment) -> Option<(String, String)> {
    match one {
        Segment::Descendant(inner) => segment(inner),
        Segment::Selector(one) => selector(one),
        Segment::Selectors(many) => many.iter().find_map(selector),
    }
}

fn selector(one: &Selector) -> Option<(String, String)> {
    match one {
        Selector::Filter(inner) => filter(inner),
        _ => None,
    }
}

fn filter(one: &Filter) -> Option<(String, String)> {
    match one {
        Filter::Or(many) | Filter::And(many) => many.iter().find_map(filter),
        Filter::Atom(FilterAtom::Filter { expr, .. }) => filter(expr),
        Filter::Atom(FilterAtom::Test { expr, .. }) => test(expr),
        Filter::Atom(FilterAtom::Comparison(comparison)) => {
            let (left, right) = match comparison.as_ref() {
                Comparison::Eq(l, r)
                | Comparison::Ne(l, r)
                | Comparison::Gt(l, r)
                | Comparison::Gte(l, r)
                | Comparison::Lt(l, r)
                | Comparison::Lte(l, r) => (l, r),
            };
            comparable(left).or_else(|| comparable(right))
        }
    }
}

fn comparable(one: &Comparable) -> Option<(String, String)> {
    match one {
        Comparable::Function(inner) => function(inner),
        _ => None,
    }
}

fn test(one: &Test) -> Option<(String, String)> {
    match one {
        Test::RelQuery(inner) => segments(inner),
        Test::AbsQuery(query) => invalid_regex(query),
        Test::Function(inner) => function(inner),
    }
}

fn function(one: &TestFunction) -> Option<(String, String)> {
    match one {
        TestFunction::Match(subject, pattern) | TestFunction::Search(subject, pattern) => {
            argument(subject).or_else(|| match pattern {
                FnArg::Literal(Literal::String(pattern)) => {
                    regex::Regex::new(pattern).err().map(|error| {
                        // The crate draws the pattern over several lines; the last says why.
                        let text = error.to_string();
                        let why = text.lines().last().unwrap_or_default();
                        (
                            pattern.clone(),
                            why.trim_start_matches("error: ").to_string(),
                        )
                    })
                }
                other => argument(other),
            })
        }
        TestFunction::Length(arg) => argument(arg),
        TestFunction::Value(arg) | TestFunction::Count(arg) => argument(arg),
        TestFunction::Custom(_, args) => args.iter().find_map(argument),
    }
}

fn argument(arg: &FnArg) -> Option<(String, String)> {
    match arg {
        FnArg::Literal(_) => None,
        FnArg::Test(inner) => test(inner),
        FnArg::Filter(inner) => filter(inner),
    }
}
