//! `integ fmt` through the built binary: files rewritten, `--check`, standard input, and a
//! spec with a syntax error that stops the run before anything is written.

mod common;

use common::{workdir, write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

const UNTIDY: &str = "integration untidy {\n connection api { base_url \"https://api.example.com\" auth none }\n    trigger manual\n  step get=api GET \"/things\"   # the one step\n}\n";

const TIDY: &str = "integration untidy {\n  connection api { base_url \"https://api.example.com\" auth none }\n  trigger manual\n  step get = api GET \"/things\"  # the one step\n}\n";

const BROKEN: &str = "integration broken {\n  step get = api GET\n}\n";

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

fn integ(args: &[&str], dir: &Path, stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_integ"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run integ: {e}"));
    if let Some(mut input) = child.stdin.take() {
        use std::io::Write;
        input
            .write_all(stdin.unwrap_or_default().as_bytes())
            .unwrap_or_else(|e| panic!("stdin: {e}"));
    }
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("integ: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn fmt_rewrites_untidy_specs_and_leaves_tidy_ones_alone() {
    let dir = workdir("fmt_rewrites");
    let untidy = write(&dir, "untidy.integ", UNTIDY);
    let tidy = write(&dir, "tidy.integ", TIDY);
    let output = integ(&["fmt", "."], &dir, None);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(read(&untidy), TIDY);
    assert_eq!(read(&tidy), TIDY);
    assert!(text(&output.stderr).contains("formatted ./untidy.integ"));
    assert!(!text(&output.stderr).contains("formatted ./tidy.integ"));
    assert!(!dir.join("untidy.integ.fmt-tmp").exists());
}

#[test]
fn fmt_check_prints_the_diff_exits_1_and_changes_nothing() {
    let dir = workdir("fmt_check");
    let untidy = write(&dir, "untidy.integ", UNTIDY);
    let output = integ(&["fmt", "--check", "untidy.integ"], &dir, None);
    assert_eq!(output.status.code(), Some(1));
    let diff = text(&output.stdout);
    assert!(
        diff.contains("--- untidy.integ\n+++ untidy.integ (formatted)"),
        "{diff}"
    );
    assert!(
        diff.contains("-  step get=api GET \"/things\"   # the one step"),
        "{diff}"
    );
    assert!(
        diff.contains("+  step get = api GET \"/things\"  # the one step"),
        "{diff}"
    );
    assert_eq!(read(&untidy), UNTIDY);

    write(&dir, "untidy.integ", TIDY);
    let output = integ(&["fmt", "--check", "untidy.integ"], &dir, None);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stdout));
    assert_eq!(text(&output.stdout), "");
}

#[test]
fn a_syntax_error_is_reported_and_no_file_is_written() {
    let dir = workdir("fmt_syntax_error");
    let untidy = write(&dir, "a.integ", UNTIDY);
    write(&dir, "b.integ", BROKEN);
    let output = integ(&["fmt", "."], &dir, None);
    assert_eq!(output.status.code(), Some(1));
    let errors = text(&output.stderr);
    assert!(errors.contains("E001"), "{errors}");
    assert!(errors.contains("b.integ"), "{errors}");
    assert_eq!(
        read(&untidy),
        UNTIDY,
        "a.integ was written despite b.integ's error"
    );
}

#[test]
fn fmt_reads_standard_input_and_writes_standard_output() {
    let dir = workdir("fmt_stdin");
    let output = integ(&["fmt", "-"], &dir, Some(UNTIDY));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), TIDY);

    let output = integ(&["fmt", "-"], &dir, Some(BROKEN));
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(text(&output.stdout), "");
}

#[test]
fn fmt_help_and_usage_errors_have_their_exit_codes() {
    let dir = workdir("fmt_usage");
    let help = integ(&["fmt", "--help"], &dir, None);
    assert_eq!(help.status.code(), Some(0));
    assert!(text(&help.stdout).contains("--check"));
    let missing = integ(&["fmt", "no-such.integ"], &dir, None);
    assert_eq!(missing.status.code(), Some(2));
    let empty = integ(&["fmt", "."], &dir, None);
    assert_eq!(empty.status.code(), Some(2));
    assert!(text(&empty.stderr).contains("no .integ files"));
    let flag = integ(&["fmt", "--bogus"], &dir, None);
    assert_eq!(flag.status.code(), Some(2));
}

/// Some editors begin a UTF-8 file with a byte-order mark. `lint` and `doc` read such a
/// spec as if it had none; `fmt` writes it without (the canonical text has none), so
/// `--check` names it.
#[test]
fn a_leading_byte_order_mark_is_read_past_and_fmt_drops_it() {
    let dir = workdir("fmt_bom");
    let spec = write(&dir, "bom.integ", &format!("\u{feff}{TIDY}"));
    let lint = integ(&["lint", "bom.integ"], &dir, None);
    assert!(lint.status.success(), "{}", text(&lint.stderr));
    let doc = integ(&["doc", "bom.integ"], &dir, None);
    assert!(doc.status.success(), "{}", text(&doc.stderr));
    let check = integ(&["fmt", "--check", "bom.integ"], &dir, None);
    assert_eq!(check.status.code(), Some(1), "{}", text(&check.stderr));
    assert_eq!(read(&spec), format!("\u{feff}{TIDY}"), "--check wrote");
    let written = integ(&["fmt", "bom.integ"], &dir, None);
    assert!(written.status.success(), "{}", text(&written.stderr));
    assert_eq!(read(&spec), TIDY);
    let stdin = integ(&["fmt", "-"], &dir, Some(&format!("\u{feff}{UNTIDY}")));
    assert_eq!(text(&stdin.stdout), TIDY, "{}", text(&stdin.stderr));
    let broken = write(&dir, "broken.integ", &format!("\u{feff}{BROKEN}"));
    for command in ["lint", "fmt"] {
        let output = integ(&[command, broken.to_str().unwrap()], &dir, None);
        let errors = text(&output.stdout) + &text(&output.stderr);
        assert!(errors.contains("broken.integ:3:1]"), "{command}: {errors}");
    }
}
