//! The `Link` header (RFC 8288): its links and their relation types, parsed as the RFC's
//! Appendix B says, so that a comma inside a target (`<…?ids=1,2>`) or inside a quoted
//! parameter (`title="a, b"`) does not cut a link.
//!
//! Not a crate: `parse_link_header` splits the field on every comma (the bug this replaces),
//! and `http-link` resolves each target against a base, hiding the link as written, which
//! `url::next_link` checks for dot segments.

/// One link of a `Link` field: its target as written and its relation types, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub target: String,
    pub rels: Vec<String>,
}

/// The target of the first link whose relation types include `rel` (compared without case).
pub fn find<'a>(fields: impl IntoIterator<Item = &'a str>, rel: &str) -> Option<String> {
    fields
        .into_iter()
        .flat_map(parse)
        .find(|link| link.rels.iter().any(|r| r.eq_ignore_ascii_case(rel)))
        .map(|link| link.target)
}

/// Every link of one `Link` field value. Parsing stops at the first malformed link, keeping
/// those before it (RFC 8288, B.2).
pub fn parse(field: &str) -> Vec<Link> {
    let mut links = Vec::new();
    let mut rest = field;
    loop {
        rest = rest.trim_start_matches(is_space);
        let Some(after) = rest.strip_prefix('<') else {
            return links;
        };
        let Some((target, after)) = after.split_once('>') else {
            return links;
        };
        let (params, after) = parameters(after);
        // Only the first `rel` counts (B.2, step 9).
        let rels = params
            .iter()
            .find(|(name, _)| name == "rel")
            .map(|(_, value)| value.split(is_space).filter(|r| !r.is_empty()))
            .into_iter()
            .flatten()
            .map(str::to_ascii_lowercase)
            .collect();
        links.push(Link {
            target: target.trim().to_string(),
            rels,
        });
        rest = after.trim_start_matches(is_space);
        match rest.strip_prefix(',') {
            Some(next) => rest = next,
            None => return links,
        }
    }
}

/// The parameters after a link's target, up to the `,` that ends the link (B.3): names
/// lower-cased, values unquoted. Returns them and what follows.
fn parameters(mut rest: &str) -> (Vec<(String, String)>, &str) {
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches(is_space);
        let Some(after) = rest.strip_prefix(';') else {
            return (params, rest);
        };
        let after = after.trim_start_matches(is_space);
        let end = after
            .find(|c: char| c == '=' || c == ';' || c == ',' || is_space(c))
            .unwrap_or(after.len());
        let name = after[..end].to_ascii_lowercase();
        rest = after[end..].trim_start_matches(is_space);
        let mut value = String::new();
        if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start_matches(is_space);
            (value, rest) = match after.strip_prefix('"') {
                Some(quoted) => quoted_string(quoted),
                None => {
                    let end = after.find([';', ',']).unwrap_or(after.len());
                    (
                        after[..end].trim_end_matches(is_space).to_string(),
                        &after[end..],
                    )
                }
            };
        }
        // A name ending in `*` is an RFC 8187 value (`title*=UTF-8'de'…`): kept as written.
        params.push((name, value));
    }
}

/// A quoted string after its opening `"`: its text, backslash escapes undone, and what
/// follows the closing `"` (the rest of the field when it is never closed).
fn quoted_string(text: &str) -> (String, &str) {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((index, c)) = chars.next() {
        match c {
            '"' => return (value, &text[index + 1..]),
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            c => value.push(c),
        }
    }
    (value, "")
}

fn is_space(c: char) -> bool {
    c == ' ' || c == '\t'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(target: &str, rels: &[&str]) -> Link {
        Link {
            target: target.into(),
            rels: rels.iter().map(|r| r.to_string()).collect(),
        }
    }

    #[test]
    fn the_examples_of_rfc_8288() {
        // Section 3.5, each example in turn.
        assert_eq!(
            parse(
                r#"<http://example.com/TheBook/chapter2>; rel="previous"; title="previous chapter""#
            ),
            [link("http://example.com/TheBook/chapter2", &["previous"])]
        );
        assert_eq!(
            parse(r#"</>; rel="http://example.net/foo""#),
            [link("/", &["http://example.net/foo"])]
        );
        assert_eq!(
            parse(r##"</terms>; rel="copyright"; anchor="#foo""##),
            [link("/terms", &["copyright"])]
        );
        assert_eq!(
            parse(
                "</TheBook/chapter2>; rel=\"previous\"; title*=UTF-8'de'letztes%20Kapitel, \
                 </TheBook/chapter4>; rel=\"next\"; title*=UTF-8'de'n%c3%a4chstes%20Kapitel"
            ),
            [
                link("/TheBook/chapter2", &["previous"]),
                link("/TheBook/chapter4", &["next"])
            ]
        );
        assert_eq!(
            parse(r#"<http://example.org/>; rel="start http://example.net/relation/other""#),
            [link(
                "http://example.org/",
                &["start", "http://example.net/relation/other"]
            )]
        );
    }

    #[test]
    fn commas_and_semicolons_inside_targets_and_quotes_do_not_cut_links() {
        let field = r#"<https://api.example.com/x?ids=1,2;3&page=2>; rel="next"; title="a, b; \"c\"", <https://api.example.com/x?page=9>; rel=last"#;
        assert_eq!(
            parse(field),
            [
                link("https://api.example.com/x?ids=1,2;3&page=2", &["next"]),
                link("https://api.example.com/x?page=9", &["last"])
            ]
        );
        assert_eq!(
            find([field], "NEXT").as_deref(),
            Some("https://api.example.com/x?ids=1,2;3&page=2")
        );
        assert_eq!(find([field], "prev"), None);
    }

    #[test]
    fn several_fields_a_first_rel_only_and_malformed_input() {
        let fields = [r#"</a>; rel="prev""#, r#"</b>; REL=Next; rel="last""#];
        assert_eq!(find(fields, "next").as_deref(), Some("/b"));
        assert_eq!(find([r#"</b>; rel="last"; rel="next""#], "next"), None);
        // A link that does not start with `<` ends the parse; those before it stay.
        assert_eq!(
            parse(r#"</a>; rel=next, junk, </b>; rel=next"#),
            [link("/a", &["next"])]
        );
        for hostile in ["<", "</a", "</a>; rel=\"next", "</a>;;;=", "\"", ",,,", ""] {
            let _ = parse(hostile);
        }
        assert_eq!(parse("</a>; rel=\"next"), [link("/a", &["next"])]);
    }
}
