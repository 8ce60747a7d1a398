//! Hand-written text inside a generated file: what stands between
//! `<!-- BEGIN_HANDWRITTEN id -->` and `<!-- END_HANDWRITTEN id -->` is kept, byte for byte,
//! when the file is generated again (escalation contacts, owners, business context).

use std::collections::BTreeSet;

const BEGIN: &str = "<!-- BEGIN_HANDWRITTEN ";
const END: &str = "<!-- END_HANDWRITTEN ";
const CLOSE: &str = " -->";

/// The blocks of a previous version of a file, by id, in the order they stood.
#[derive(Debug, Default)]
pub struct Kept {
    blocks: Vec<(String, String)>,
    taken: BTreeSet<String>,
}

/// A file whose markers do not pair up: writing over it could lose what a person wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarkerError {
    #[error("`BEGIN_HANDWRITTEN {0}` has no `END_HANDWRITTEN {0}` after it")]
    Unclosed(String),
    #[error("`END_HANDWRITTEN {0}` has no `BEGIN_HANDWRITTEN {0}` before it")]
    Unopened(String),
    #[error("the block `{0}` is there twice")]
    Twice(String),
    #[error("a marker is not written `<!-- BEGIN_HANDWRITTEN id -->`")]
    Malformed,
}

impl Kept {
    /// The blocks of `previous`, the file as it is now.
    pub fn read(previous: &str) -> Result<Self, MarkerError> {
        let mut kept = Self::default();
        let mut rest = previous;
        loop {
            let begin = rest.find(BEGIN);
            let end = rest.find(END);
            let Some(at) = begin else {
                return match end.map(|e| marker_id(&rest[e + END.len()..])) {
                    Some(id) => Err(MarkerError::Unopened(id?.to_string())),
                    None => Ok(kept),
                };
            };
            if let Some(e) = end.filter(|&e| e < at) {
                return Err(MarkerError::Unopened(
                    marker_id(&rest[e + END.len()..])?.into(),
                ));
            }
            let after = &rest[at + BEGIN.len()..];
            let id = marker_id(after)?;
            let body_start = after[id.len() + CLOSE.len()..]
                .strip_prefix('\n')
                .unwrap_or(&after[id.len() + CLOSE.len()..]);
            let closing = format!("{END}{id}{CLOSE}");
            let Some(body_len) = body_start.find(&closing) else {
                return Err(MarkerError::Unclosed(id.into()));
            };
            let body = &body_start[..body_len];
            if body.contains(BEGIN) {
                return Err(MarkerError::Unclosed(id.into()));
            }
            if kept.blocks.iter().any(|(known, _)| known == id) {
                return Err(MarkerError::Twice(id.into()));
            }
            kept.blocks.push((id.to_string(), body.to_string()));
            rest = &body_start[body_len + closing.len()..];
        }
    }

    /// The block `id`: the kept text, else `placeholder`.
    pub fn block(&mut self, id: &str, placeholder: &str) -> String {
        let text = match self.blocks.iter().find(|(known, _)| known == id) {
            Some((_, text)) => text.clone(),
            None => format!("{placeholder}\n"),
        };
        self.taken.insert(id.to_string());
        format!("{BEGIN}{id}{CLOSE}\n{text}{END}{id}{CLOSE}\n")
    }

    /// The blocks no longer placed (the spec lost the part they were about), so that they
    /// are kept at the end of the file rather than lost.
    pub fn orphans(&self) -> Vec<String> {
        self.blocks
            .iter()
            .filter(|(id, _)| !self.taken.contains(id))
            .map(|(id, text)| format!("{BEGIN}{id}{CLOSE}\n{text}{END}{id}{CLOSE}\n"))
            .collect()
    }
}

/// The id at the start of `text`, up to ` -->`: letters, digits, `-` and `_`.
fn marker_id(text: &str) -> Result<&str, MarkerError> {
    let end = text.find(CLOSE).ok_or(MarkerError::Malformed)?;
    let id = &text[..end];
    let plain = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if id.is_empty() || !id.chars().all(plain) {
        return Err(MarkerError::Malformed);
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_kept_byte_for_byte_and_new_ones_get_the_placeholder() {
        let previous = "x\n<!-- BEGIN_HANDWRITTEN a -->\nCall *Ann*,\n  24/7.\n\
            <!-- END_HANDWRITTEN a -->\ny\n";
        let mut kept = Kept::read(previous).unwrap();
        assert_eq!(
            kept.block("a", "(none)"),
            "<!-- BEGIN_HANDWRITTEN a -->\nCall *Ann*,\n  24/7.\n<!-- END_HANDWRITTEN a -->\n"
        );
        assert_eq!(
            kept.block("b", "(none)"),
            "<!-- BEGIN_HANDWRITTEN b -->\n(none)\n<!-- END_HANDWRITTEN b -->\n"
        );
        assert!(kept.orphans().is_empty());
    }

    #[test]
    fn a_block_not_placed_again_is_an_orphan() {
        let previous = "<!-- BEGIN_HANDWRITTEN gone -->\ntext\n<!-- END_HANDWRITTEN gone -->\n";
        let kept = Kept::read(previous).unwrap();
        assert_eq!(kept.orphans(), vec![previous.to_string()]);
    }

    #[test]
    fn markers_that_do_not_pair_up_are_refused() {
        let unclosed = "<!-- BEGIN_HANDWRITTEN a -->\ntext\n";
        assert_eq!(
            Kept::read(unclosed).unwrap_err(),
            MarkerError::Unclosed("a".into())
        );
        let unopened = "text\n<!-- END_HANDWRITTEN a -->\n";
        assert_eq!(
            Kept::read(unopened).unwrap_err(),
            MarkerError::Unopened("a".into())
        );
        let twice = "<!-- BEGIN_HANDWRITTEN a -->\n<!-- END_HANDWRITTEN a -->\n\
            <!-- BEGIN_HANDWRITTEN a -->\n<!-- END_HANDWRITTEN a -->\n";
        assert_eq!(
            Kept::read(twice).unwrap_err(),
            MarkerError::Twice("a".into())
        );
        let crossed = "<!-- BEGIN_HANDWRITTEN a -->\n<!-- BEGIN_HANDWRITTEN b -->\n\
            <!-- END_HANDWRITTEN a -->\n<!-- END_HANDWRITTEN b -->\n";
        assert!(Kept::read(crossed).is_err());
    }
}
