//! Settings written twice in one block.

use super::Checker;
use crate::ast::Setting;
use crate::diagnostic::{Diagnostic, DiagnosticKind};
use crate::span::Spanned;
use std::collections::HashMap;

impl Checker<'_> {
    /// Reports every setting of `settings` whose keyword appeared before in the block.
    pub(super) fn once_each<S: Setting>(&mut self, settings: &[Spanned<S>]) {
        let mut seen = HashMap::new();
        for setting in settings {
            let keyword = setting.node.keyword();
            match seen.get(keyword) {
                Some(first) => self.push(
                    Diagnostic::new(DiagnosticKind::DuplicateSetting { keyword }, setting.span)
                        .with_secondary(*first, "first set here"),
                ),
                None => {
                    seen.insert(keyword, setting.span);
                }
            }
        }
    }
}
