//! End-to-end tests of `integ lint` through the built binary: exit codes, output formats,
//! colours and folders.

mod common;

use common::{workdir, write};
use std::process::Output;

const CLEAN: &str = r#"integration clean {
  connection api { base_url "https://api.example.com" auth none }
  trigger manual
  step get = api GET "/things"
}
"#;

const WARNS: &str = r#"integration warns {
  connection api { base_url "https://api.example.com" auth none }
  connection idle { base_url "https://idle.example.com" auth none }
  trigger manual
  step get = api GET "/things"
}
"#;

const BROKEN: &str = r#"integration broken {
  connection api { base_url "https://api.example.com" auth none }
  trigger manual
  step get = apii GET "/things"
}
"#;

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_clean_spec_exits_zero_and_says_so() {
    let dir = workdir("clean");
    write(&dir, "clean.integ", CLEAN);
    let output = common::integ(&["lint", "clean.integ"], &dir, &[]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stdout(&output), "");
    assert_eq!(stderr(&output), "no problems in 1 file\n");
}

#[test]
fn errors_exit_one_with_the_rendered_diagnostic() {
    let dir = workdir("broken");
    write(&dir, "broken.integ", BROKEN);
    let output = common::integ(&["lint", "broken.integ"], &dir, &[]);
    assert_eq!(output.status.code(), Some(1));
    let out = stdout(&output);
    assert!(out.starts_with("E102\n"), "{out}");
    assert!(out.contains("unknown connection `apii`"), "{out}");
    assert!(out.contains("[broken.integ:4:14]"), "{out}");
    assert!(out.contains("did you mean `api`?"), "{out}");
    assert_eq!(stderr(&output), "1 error in 1 file\n");
}

#[test]
fn warnings_pass_unless_denied() {
    let dir = workdir("warns");
    write(&dir, "warns.integ", WARNS);
    let allowed = common::integ(&["lint", "warns.integ"], &dir, &[]);
    assert_eq!(allowed.status.code(), Some(0));
    assert!(stdout(&allowed).contains("W003"));
    let denied = common::integ(&["lint", "--deny-warnings", "warns.integ"], &dir, &[]);
    assert_eq!(denied.status.code(), Some(1));
}

#[test]
fn an_unsigned_webhook_warns_unless_unsigned_on_purpose() {
    let dir = workdir("unsigned");
    let spec = |settings: &str| {
        format!(
            "integration inbound {{\n  connection api {{ base_url \"https://api.example.com\" auth none }}\n  trigger webhook \"/hooks/in\" {{ {settings} }}\n  step get = api GET \"/things\"\n}}\n"
        )
    };
    write(&dir, "unsigned.integ", &spec("dedupe $.id"));
    let unsigned = common::integ(&["lint", "--deny-warnings", "unsigned.integ"], &dir, &[]);
    assert_eq!(unsigned.status.code(), Some(1));
    assert!(stdout(&unsigned).contains("W010"), "{}", stdout(&unsigned));
    write(
        &dir,
        "on_purpose.integ",
        &spec("signature none\n    dedupe $.id"),
    );
    let on_purpose = common::integ(&["lint", "--deny-warnings", "on_purpose.integ"], &dir, &[]);
    assert_eq!(on_purpose.status.code(), Some(0), "{}", stdout(&on_purpose));
}

#[test]
fn json_format_prints_one_record_per_diagnostic() {
    let dir = workdir("json");
    write(&dir, "broken.integ", BROKEN);
    write(&dir, "warns.integ", WARNS);
    let output = common::integ(&["lint", "--format", "json", "."], &dir, &[]);
    assert_eq!(output.status.code(), Some(1));
    let records: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect();
    assert_eq!(records.len(), 2);
    let error = &records[0];
    assert_eq!(error["file"], "./broken.integ");
    assert_eq!(error["code"], "E102");
    assert_eq!(error["severity"], "error");
    assert_eq!(error["message"], "unknown connection `apii`");
    assert_eq!(error["line"], 4);
    assert_eq!(error["column"], 14);
    let start = error["span"]["start"].as_u64().unwrap_or_default() as usize;
    let end = error["span"]["end"].as_u64().unwrap_or_default() as usize;
    assert_eq!(&BROKEN[start..end], "apii");
    assert_eq!(error["help"], "did you mean `api`?");
    assert_eq!(records[1]["code"], "W003");
    assert_eq!(records[1]["severity"], "warning");
}

#[test]
fn folders_are_searched_recursively_for_integ_files_only() {
    let dir = workdir("folders");
    write(&dir, "a/one.integ", CLEAN);
    write(&dir, "a/b/two.integ", BROKEN);
    write(&dir, "a/b/notes.txt", "not a spec {");
    let output = common::integ(&["lint", "--format", "json", "a"], &dir, &[]);
    let out = stdout(&output);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("\"file\":\"a/b/two.integ\""), "{out}");
    assert_eq!(
        stderr(&common::integ(&["lint", "a"], &dir, &[])).trim(),
        "1 error in 2 files"
    );
}

#[test]
fn unreadable_paths_and_bad_flags_exit_two() {
    let dir = workdir("usage");
    let missing = common::integ(&["lint", "nope.integ"], &dir, &[]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("cannot read `nope.integ`"));
    let bad_flag = common::integ(&["lint", "--format", "xml"], &dir, &[]);
    assert_eq!(bad_flag.status.code(), Some(2));
    let no_command = common::integ(&[], &dir, &[]);
    assert_eq!(no_command.status.code(), Some(2));
    let short_retention = common::integ(&["serve", "--retention", "10m"], &dir, &[]);
    assert_eq!(short_retention.status.code(), Some(2));
    assert!(stderr(&short_retention).contains("at least `1h`"));
    let not_a_duration = common::integ(&["serve", "--retention", "a month"], &dir, &[]);
    assert!(stderr(&not_a_duration).contains("is not a duration such as `30d`"));
    let no_workers = common::integ(&["serve", "--workers", "0"], &dir, &[]);
    assert_eq!(no_workers.status.code(), Some(2));
    for (flags, says) in [
        (
            &["--public-url", "ftp://hooks.example.com"][..],
            "must be an http or https URL",
        ),
        (
            &["--public-url", "https://hooks.example.com/?a=1"],
            "nothing else",
        ),
        (&["--public-url", "hooks.example.com"], "is not a URL"),
        (
            &[
                "--public-url",
                "https://hooks.example.com",
                "--trust-forwarded-headers",
            ],
            "cannot be used with",
        ),
        (
            &["--read-timeout", "0s"],
            "a read timeout is from `1s` to `30s`",
        ),
        (&["--max-connections", "0"], "--max-connections"),
    ] {
        let refused = common::integ(&[&["serve"][..], flags].concat(), &dir, &[]);
        assert_eq!(refused.status.code(), Some(2), "{flags:?}");
        assert!(
            stderr(&refused).contains(says),
            "{flags:?}: {}",
            stderr(&refused)
        );
    }
}

#[test]
fn colours_only_when_asked_or_on_a_terminal() {
    let dir = workdir("colours");
    write(&dir, "broken.integ", BROKEN);
    // stdout is a pipe here, so `auto` means no colour.
    let auto = common::integ(&["lint", "broken.integ"], &dir, &[]);
    assert!(!stdout(&auto).contains('\u{1b}'));
    let always = common::integ(&["lint", "--color", "always", "broken.integ"], &dir, &[]);
    assert!(stdout(&always).contains('\u{1b}'));
}

#[test]
fn help_is_available_on_every_command() {
    let dir = workdir("help");
    let top = common::integ(&["--help"], &dir, &[]);
    assert_eq!(top.status.code(), Some(0));
    assert!(stdout(&top).contains("lint"));
    let lint = common::integ(&["lint", "--help"], &dir, &[]);
    assert!(stdout(&lint).contains("--deny-warnings"));
}

#[test]
fn lint_never_touches_the_network() {
    // Every URL of the spec points at a listener of ours: lint must connect to none.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let spec = format!(
        r#"integration offline {{
  connection api {{
    base_url env("API_URL", "{url}/v1")
    auth oauth2 {{
      token_url     "{url}/oauth/token"
      client_id     secret("CLIENT_ID")
      client_secret secret("CLIENT_SECRET")
    }}
  }}
  trigger poll api GET "/items" {{ every 1m items $.items[*] dedupe $.id }}
  step call = api POST "{url}/absolute" {{ body {{ id = $.id }} }}
  test "offline" {{
    event {{ id: 1 }}
    mock api POST "/absolute" 200 {{}}
  }}
}}
"#
    );
    let dir = workdir("no-network");
    write(&dir, "offline.integ", &spec);
    let output = common::integ(&["lint", "offline.integ"], &dir, &[]);
    assert!(output.status.code().is_some(), "{}", stderr(&output));
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("lint connected to {url}: {other:?}"),
    }
}
