//! "Did you mean": the closest known word to a misspelt one.

/// The candidate closest to `word` by Jaro-Winkler similarity, if it is close enough to be
/// a likely typo rather than a different word.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::jaro_winkler(word, candidate), candidate))
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate.to_string())
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn a_typo_gets_the_nearest_word_and_a_stranger_gets_none() {
        let words = ["dead_letter", "skip", "fail"];
        assert_eq!(closest("dead_leter", words), Some("dead_letter".into()));
        assert_eq!(closest("explode", words), None);
    }
}
