//! No input makes the front end panic: truncated specs, mutated specs and random bytes all
//! come back as diagnostics. Inputs come from a fixed-seed generator so a failure repeats.

use integ::diagnostic::Code;
use integ::lint::{LintedFile, lint_bytes};
use std::path::PathBuf;

const SPEC: &str = include_str!("../specs/hubspot_to_outreach.integ");

fn lint(bytes: Vec<u8>) -> LintedFile {
    let mut files = lint_bytes(vec![(PathBuf::from("fuzz.integ"), bytes)]);
    files
        .pop()
        .unwrap_or_else(|| panic!("lint returned no file"))
}

fn codes(file: &LintedFile) -> Vec<&'static str> {
    file.diagnostics.iter().map(|d| d.code().as_str()).collect()
}

/// xorshift64*: enough randomness for input generation, and repeatable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn the_example_spec_is_clean() {
    assert_eq!(codes(&lint(SPEC.as_bytes().to_vec())), Vec::<&str>::new());
}

#[test]
fn every_truncation_is_a_diagnostic_not_a_panic() {
    let end = SPEC.trim_end().len();
    for cut in (0..end).filter(|&cut| SPEC.is_char_boundary(cut)) {
        let file = lint(SPEC.as_bytes()[..cut].to_vec());
        assert!(
            file.diagnostics.iter().any(|d| d.code() == Code::Syntax),
            "cut at {cut} gave {:?}",
            codes(&file)
        );
    }
}

#[test]
fn random_bytes_get_a_diagnostic() {
    let mut rng = Rng(0x1234_5678_9abc_def0);
    for _ in 0..2_000 {
        let len = rng.below(200);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let file = lint(bytes.clone());
        assert!(!file.diagnostics.is_empty(), "no diagnostic for {bytes:?}");
    }
}

#[test]
fn mutated_specs_never_confuse_the_builder() {
    let mut rng = Rng(42);
    let alphabet = b"{}[]()\"$.,=:?#\n abc019_-xyz\\";
    for _ in 0..3_000 {
        let mut bytes = SPEC.as_bytes().to_vec();
        for _ in 0..=rng.below(3) {
            let at = rng.below(bytes.len());
            match rng.below(3) {
                0 => {
                    bytes.remove(at);
                }
                1 => bytes.insert(at, alphabet[rng.below(alphabet.len())]),
                _ => bytes[at] = alphabet[rng.below(alphabet.len())],
            }
        }
        let file = lint(bytes.clone());
        assert!(
            !file
                .diagnostics
                .iter()
                .any(|d| d.code() == Code::InternalError),
            "internal error for:\n{}",
            String::from_utf8_lossy(&bytes)
        );
    }
}

#[test]
fn deep_nesting_is_refused_politely() {
    let wrap = |value: String| {
        format!(
            "integration x {{ trigger manual connection c {{ base_url \"https://a.example\" }}\n\
             step s = c POST \"/\" {{ body {value} }} }}"
        )
    };
    let brackets = wrap(format!("{}{}", "[".repeat(5_000), "]".repeat(5_000)));
    let nots = wrap(format!("{{ a = {}true }}", "not ".repeat(100_000)));
    let chain = wrap(format!("{{ a = {} }}", vec!["1"; 50_000].join(" == ")));
    for text in [brackets, nots, chain] {
        let file = lint(text.into_bytes());
        let codes = codes(&file);
        assert!(
            codes.contains(&"E006") || codes.contains(&"E001"),
            "{codes:?}"
        );
    }
}
