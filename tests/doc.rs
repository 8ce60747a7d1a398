//! `integ doc` through the built binary: the committed docs of the example specs are
//! current, a re-run is byte-identical, `--check` finds a stale file and writes nothing,
//! hand-written blocks survive, and no secret value ever reaches the output.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn integ(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_integ"))
        .args(args)
        .output()
        .unwrap()
}

/// A fresh folder under the target dir, named after the test.
fn workdir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every file of a folder, by name, with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

fn generate(out: &Path) -> Output {
    integ(&["doc", "specs/", "--out", out.to_str().unwrap()])
}

#[test]
fn the_committed_docs_of_the_example_specs_are_current() {
    let output = integ(&["doc", "--check", "specs/", "--out", "docs/integrations"]);
    assert!(
        output.status.success(),
        "docs/integrations is stale; run `integ doc specs/ --out docs/integrations`:\n{}{}",
        stdout(&output),
        stderr(&output)
    );
}

#[test]
fn a_rerun_is_byte_identical_and_touches_nothing() {
    let (first, second) = (workdir("doc_first"), workdir("doc_second"));
    assert!(generate(&first).status.success());
    assert!(generate(&second).status.success());
    assert_eq!(files(&first), files(&second));
    let again = generate(&first);
    assert!(again.status.success());
    assert!(stderr(&again).starts_with("0 of "), "{}", stderr(&again));
    let md = |_| stdout(&integ(&["doc", "specs/hubspot_to_outreach.integ"]));
    assert_eq!(md(1), md(2));
    let json = |_| stdout(&integ(&["doc", "--format", "json", "specs/"]));
    assert_eq!(json(1), json(2));
}

#[test]
fn check_exits_1_with_a_diff_on_a_stale_or_missing_file_and_writes_nothing() {
    let out = workdir("doc_check");
    assert!(generate(&out).status.success());
    let check = || integ(&["doc", "--check", "specs/", "--out", out.to_str().unwrap()]);
    assert_eq!(check().status.code(), Some(0), "{}", stderr(&check()));

    let page = out.join("github_releases.md");
    let current = std::fs::read_to_string(&page).unwrap();
    let stale = current.replace("| Timeout | 15s |", "| Timeout | 10s |");
    let stale = if stale == current {
        current.replacen("# github_releases", "# github_releases (old)", 1)
    } else {
        stale
    };
    std::fs::write(&page, &stale).unwrap();
    let output = check();
    assert_eq!(output.status.code(), Some(1));
    let diff = stdout(&output);
    assert!(diff.contains("github_releases.md"), "{diff}");
    assert!(
        diff.lines()
            .any(|l| l.starts_with('-') && !l.starts_with("---")),
        "{diff}"
    );
    assert_eq!(
        std::fs::read_to_string(&page).unwrap(),
        stale,
        "--check wrote"
    );

    std::fs::remove_file(out.join(integ::doc::INDEX_FILE)).unwrap();
    std::fs::write(&page, &current).unwrap();
    let output = check();
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains(integ::doc::INDEX_FILE));
    assert!(!out.join(integ::doc::INDEX_FILE).exists(), "--check wrote");
}

#[test]
fn check_names_a_generated_file_whose_integration_is_gone_and_leaves_other_files_alone() {
    let out = workdir("doc_leftover");
    assert!(generate(&out).status.success());
    let page = std::fs::read_to_string(out.join("github_releases.md")).unwrap();
    let gone = page.replace("# github_releases", "# renamed_away");
    std::fs::write(out.join("renamed_away.md"), &gone).unwrap();
    // Not ours: no marker, or another format's file.
    std::fs::write(
        out.join("README.md"),
        "# Our integrations\n\nHand-written.\n",
    )
    .unwrap();
    std::fs::write(out.join("notes.json"), "{\"schema\": \"theirs\"}\n").unwrap();
    let json = stdout(&integ(&[
        "doc",
        "--format",
        "json",
        "specs/github_releases.integ",
    ]));
    std::fs::write(out.join("old_json.json"), &json).unwrap();
    let before = files(&out);

    let check = || integ(&["doc", "--check", "specs/", "--out", out.to_str().unwrap()]);
    let output = check();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let errors = stderr(&output);
    let leftover = out.join("renamed_away.md");
    assert!(
        errors.contains(&format!(
            "`{}` documents `renamed_away`, an integration none of the specs has",
            leftover.display()
        )) && errors.contains(&format!("git rm '{}'", leftover.display())),
        "{errors}"
    );
    for theirs in ["README.md", "notes.json", "old_json.json"] {
        assert!(!errors.contains(theirs), "{theirs} flagged: {errors}");
    }
    assert_eq!(files(&out), before, "--check touched the folder");

    let written = generate(&out);
    assert!(written.status.success());
    assert!(
        stderr(&written).contains("warning: `"),
        "{}",
        stderr(&written)
    );
    assert_eq!(files(&out), before, "nothing deleted, nothing rewritten");

    std::fs::remove_file(&leftover).unwrap();
    assert_eq!(check().status.code(), Some(0), "{}", stderr(&check()));

    let json_check = |out: &Path| {
        integ(&[
            "doc",
            "--check",
            "--format",
            "json",
            "specs/github_releases.integ",
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let json_out = workdir("doc_leftover_json");
    std::fs::write(json_out.join("github_releases.json"), json.trim_end()).unwrap();
    std::fs::write(json_out.join("gone.json"), &json).unwrap();
    let output = json_check(&json_out);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("documents `gone`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_spec_with_errors_gets_no_docs_and_exit_2() {
    let dir = workdir("doc_errors");
    let spec = dir.join("broken.integ");
    std::fs::write(
        &spec,
        "integration broken {\n  connection api { base_url \"https://api.example.com\" auth none }\n  trigger manual\n  step get = apii GET \"/things\"\n}\n",
    )
    .unwrap();
    let out = dir.join("docs");
    let output = integ(&[
        "doc",
        spec.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("E"), "{}", stderr(&output));
    assert!(!out.exists());
    let check = integ(&[
        "doc",
        "--check",
        spec.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(check.status.code(), Some(2));
}

#[test]
fn hand_written_blocks_survive_regeneration_and_are_not_stale() {
    let out = workdir("doc_markers");
    assert!(generate(&out).status.success());
    let page = out.join("hubspot_to_outreach.md");
    let generated = std::fs::read_to_string(&page).unwrap();
    let owners = "Ann Lee (RevOps), #revops-oncall | pager: *revops*\n\n  second paragraph\n";
    let edited = replace_block(&generated, "owners", owners);
    let edited = edited.replacen("# hubspot_to_outreach", "# stale title", 1);
    std::fs::write(&page, &edited).unwrap();

    assert!(generate(&out).status.success());
    let regenerated = std::fs::read_to_string(&page).unwrap();
    assert!(regenerated.contains(&format!(
        "<!-- BEGIN_HANDWRITTEN owners -->\n{owners}<!-- END_HANDWRITTEN owners -->"
    )));
    assert!(regenerated.contains("# hubspot_to_outreach\n"));
    let check = integ(&["doc", "--check", "specs/", "--out", out.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
}

#[test]
fn a_block_whose_part_is_gone_is_kept_at_the_end() {
    let out = workdir("doc_orphans");
    assert!(generate(&out).status.success());
    let page = out.join("hubspot_to_outreach.md");
    let generated = std::fs::read_to_string(&page).unwrap();
    let orphan = "<!-- BEGIN_HANDWRITTEN rb-removed-scenario -->\nCall Bob.\n<!-- END_HANDWRITTEN rb-removed-scenario -->\n";
    std::fs::write(&page, format!("{generated}\n{orphan}")).unwrap();
    assert!(generate(&out).status.success());
    let regenerated = std::fs::read_to_string(&page).unwrap();
    assert!(regenerated.contains(orphan), "{regenerated}");
}

#[test]
fn markers_that_do_not_pair_up_stop_the_write() {
    let out = workdir("doc_bad_markers");
    assert!(generate(&out).status.success());
    let page = out.join("hubspot_to_outreach.md");
    let generated = std::fs::read_to_string(&page).unwrap();
    let broken = generated.replace("<!-- END_HANDWRITTEN owners -->", "");
    std::fs::write(&page, &broken).unwrap();
    let output = generate(&out);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("owners"), "{}", stderr(&output));
    assert_eq!(std::fs::read_to_string(&page).unwrap(), broken);
}

fn replace_block(text: &str, id: &str, body: &str) -> String {
    let begin = format!("<!-- BEGIN_HANDWRITTEN {id} -->\n");
    let end = format!("<!-- END_HANDWRITTEN {id} -->");
    let start = text.find(&begin).unwrap() + begin.len();
    let stop = text.find(&end).unwrap();
    format!("{}{body}{}", &text[..start], &text[stop..])
}

/// Every secret and environment variable the example specs read, set to a canary in the
/// environment: no value, nor a prefix of one, may appear in any output.
#[test]
fn no_secret_or_environment_value_reaches_the_docs() {
    let dir = workdir("doc_canary");
    let json = stdout(&integ(&["doc", "--format", "json", "specs/"]));
    let mut names = Vec::new();
    for line in json.lines() {
        let doc: serde_json::Value = serde_json::from_str(line).unwrap();
        for name in doc["names"].as_array().unwrap() {
            names.push(name["name"].as_str().unwrap().to_string());
        }
    }
    assert!(names.len() > 20, "{names:?}");
    let canary = |name: &str| format!("canary-{}-7f3a9", name.to_lowercase());
    // A secrets file cannot even be named: the doc reads no secret.
    let secrets = dir.join("secrets.env");
    let lines: Vec<String> = names.iter().map(|n| format!("{n}={}", canary(n))).collect();
    std::fs::write(&secrets, lines.join("\n")).unwrap();
    let refused = integ(&["doc", "specs/", "--secrets", secrets.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(!stdout(&refused).contains("7f3a9") && !stderr(&refused).contains("7f3a9"));

    let run = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_integ"));
        command.args(args);
        for name in &names {
            command.env(name, canary(name));
        }
        let output = command.output().unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        format!("{}{}", stdout(&output), stderr(&output))
    };
    let out = dir.join("docs");
    let mut seen = run(&["doc", "specs/"]);
    seen.push_str(&run(&["doc", "--format", "json", "specs/"]));
    run(&["doc", "specs/", "--out", out.to_str().unwrap()]);
    run(&[
        "doc",
        "--format",
        "json",
        "specs/",
        "--out",
        out.to_str().unwrap(),
    ]);
    for (_, bytes) in files(&out) {
        seen.push_str(&String::from_utf8_lossy(&bytes));
    }
    assert!(seen.contains("HUBSPOT_TOKEN"), "names are shown");
    for name in &names {
        let value = canary(name);
        assert!(
            !seen.contains(&value),
            "the value of {name} reached the docs"
        );
        assert!(
            !seen.contains(&value[..12]),
            "a prefix of {name}'s value reached the docs"
        );
    }
    assert!(!seen.contains("7f3a9"));
}

/// Every generated page of the examples: its text (generated once for the tests that
/// read them, which run at the same time).
fn example_pages() -> Vec<(String, String)> {
    static PAGES: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();
    PAGES
        .get_or_init(|| {
            let out = workdir("doc_pages");
            assert!(generate(&out).status.success());
            files(&out)
                .into_iter()
                .map(|(name, bytes)| (name, String::from_utf8(bytes).unwrap()))
                .collect()
        })
        .clone()
}

#[test]
fn every_link_inside_a_page_has_its_anchor() {
    for (name, page) in example_pages() {
        if name == integ::doc::INDEX_FILE {
            continue;
        }
        for link in page.split("](#").skip(1) {
            let anchor = &link[..link.find(')').unwrap()];
            assert!(
                page.contains(&format!("<a id=\"{anchor}\"></a>")),
                "{name}: #{anchor} links nowhere"
            );
        }
    }
}

#[test]
fn each_alert_links_the_runbook_entry_of_its_metric() {
    let pages = example_pages();
    let (_, page) = pages
        .iter()
        .find(|(n, _)| n == "hubspot_to_outreach.md")
        .unwrap();
    assert!(page.contains("| `dead_letters > 10 in 1h` |"), "{page}");
    assert!(page.contains("[rb-dead-letters](#rb-dead-letters)"));
    assert!(page.contains("<a id=\"rb-dead-letters\"></a>"));
    assert!(page.contains(
        "sum(increase(integ_dead_letters_total{integration=\"hubspot_to_outreach\"}[1h])) > 10"
    ));
}

#[test]
fn each_runbook_entry_has_every_part_and_a_kept_escalation_block() {
    for (name, page) in example_pages() {
        let Some(runbook) = page.split("<a id=\"runbook\"></a>").nth(1) else {
            assert_eq!(name, integ::doc::INDEX_FILE);
            continue;
        };
        let entries: Vec<&str> = runbook.split("### <a id=\"rb-").skip(1).collect();
        assert!(entries.len() >= 4, "{name}");
        for entry in entries {
            let id = format!("rb-{}", &entry[..entry.find('"').unwrap()]);
            for part in [
                "**Symptom:**",
                "**Meaning:**",
                "**Impact:**",
                "**Diagnose:**",
                "```sh\n",
                "```promql\n",
                "**Mitigate:**",
                "**Verify:**",
                "**Escalate:**",
            ] {
                assert!(entry.contains(part), "{name} {id}: no {part}");
            }
            assert!(entry.contains("\ninteg "), "{name} {id}: no integ command");
            assert!(
                entry.contains(&format!("<!-- BEGIN_HANDWRITTEN {id} -->")),
                "{name} {id}"
            );
        }
    }
}

#[test]
fn the_flowcharts_use_safe_ids_and_quoted_labels() {
    for (name, page) in example_pages() {
        let Some(chart) = page.split("```mermaid\n").nth(1) else {
            continue;
        };
        let chart = &chart[..chart.find("```").unwrap()];
        assert!(chart.starts_with("flowchart LR\n"), "{name}");
        for line in chart.lines().skip(1) {
            let line = line.trim();
            let id: String = line
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(!id.is_empty() && id != "end", "{name}: {line}");
            if let Some(at) = line.find(['[', '{', '(']).filter(|&at| at == id.len()) {
                let label = &line[at..];
                assert!(label.contains('"'), "{name}: unquoted label {line}");
                let inner = &label[label.find('"').unwrap() + 1..label.rfind('"').unwrap()];
                assert!(
                    !inner.contains('"') && !inner.contains('`'),
                    "{name}: {line}"
                );
            }
        }
    }
}

/// A preset's rules are shown from the preset's own text, which their spans index: read
/// against the spec's text instead, they showed whatever the spec held at those offsets.
#[test]
fn a_rules_preset_is_shown_as_its_rules_read() {
    let dir = workdir("doc-preset");
    std::fs::write(
        dir.join("preset.integ"),
        r#"integration preset_doc {
  connection slack {
    base_url "https://slack.com/api"
    auth bearer secret("SLACK_TOKEN")
    rules slack
  }
  trigger manual
  step post = slack POST "/chat.postMessage" {
    body { text = "hi" }
  }
}
"#,
    )
    .unwrap();
    let out = dir.join("out");
    let made = integ(&[
        "doc",
        dir.join("preset.integ").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(made.status.success(), "{}", stderr(&made));
    let page = std::fs::read_to_string(out.join("preset_doc.md")).unwrap();
    assert!(
        page.contains("where `$.ok == false` fails without retry")
            && page.contains("(preset `slack`)"),
        "{page}"
    );
}

/// The metric a name in the docs refers to: itself, or the histogram whose series it is
/// (`_bucket`, `_sum`, `_count`), with the labels that series has.
fn exported(name: &str) -> Option<(&'static str, Vec<&'static str>)> {
    use integ::telemetry::{Kind, METRICS};
    let metric = |name: &str| METRICS.iter().find(|m| m.name == name);
    if let Some(m) = metric(name) {
        return Some((m.name, m.labels.to_vec()));
    }
    let (base, suffix) = ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| Some((name.strip_suffix(suffix)?, *suffix)))?;
    let m = metric(base).filter(|m| m.kind == Kind::Histogram)?;
    let mut labels = m.labels.to_vec();
    if suffix == "_bucket" {
        labels.push("le");
    }
    Some((m.name, labels))
}

#[test]
fn every_metric_the_docs_name_is_exported_with_the_labels_they_use() {
    let name = regex::Regex::new(r"integ_[a-z_]+").unwrap();
    let selector = regex::Regex::new(r#"(integ_[a-z_]+)\{([^}]*)\}"#).unwrap();
    let label = regex::Regex::new(r"([a-z_]+)\s*(?:=~|!~|!=|=)").unwrap();
    let by = regex::Regex::new(r"by \(([a-z_, ]+)\)[^;]*?(integ_[a-z_]+)").unwrap();

    let mut generated: Vec<String> = example_pages().into_iter().map(|(_, t)| t).collect();
    generated.push(stdout(&integ(&["doc", "--format", "json", "specs/"])));
    // The names written in src/doc reach the docs only for the specs that need them: read
    // them where they are written too, so that no branch the examples miss goes unchecked.
    let sources: Vec<String> = std::fs::read_dir("src/doc")
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();

    let mut problems = std::collections::BTreeSet::new();
    let mut seen = std::collections::BTreeSet::new();
    for text in generated.iter().chain(&sources) {
        for found in name.find_iter(text) {
            seen.insert(found.as_str());
            if exported(found.as_str()).is_none() {
                problems.insert(format!("`{}` is not exported", found.as_str()));
            }
        }
    }
    for text in &generated {
        let text = text.replace("\\\"", "\"");
        for found in selector.captures_iter(&text) {
            let Some((metric, labels)) = exported(&found[1]) else {
                continue;
            };
            for used in label.captures_iter(&found[2]) {
                if !labels.contains(&&used[1]) {
                    problems.insert(format!("`{metric}` has no label `{}`", &used[1]));
                }
            }
        }
        for found in by.captures_iter(&text) {
            let Some((metric, labels)) = exported(&found[2]) else {
                continue;
            };
            for used in found[1].split(',').map(str::trim) {
                if !labels.contains(&used) {
                    problems.insert(format!("`{metric}` has no label `{used}` (by)"));
                }
            }
        }
    }
    assert!(seen.len() >= 10, "too few metric names found: {seen:?}");
    assert!(problems.is_empty(), "{problems:#?}");
}

/// A spec of 40 steps: a condition on every tenth, a fallback on s15, a skip on s25, a
/// failure that ends the run on s12, dead letters for the others (the default).
fn forty_steps() -> String {
    let mut spec = String::from(
        "integration long_chain {\n  \
        connection a { base_url \"https://a.example.com\" auth none }\n  \
        connection b { base_url \"https://b.example.com\" auth none }\n  \
        trigger manual\n",
    );
    for n in 1..=40 {
        let connection = if n % 2 == 1 { "a" } else { "b" };
        let settings = [
            (n % 10 == 0, "when $.flag == true"),
            (n == 15, "on_error fallback backup"),
            (n == 25, "on_error skip"),
            (n == 12, "on_error fail"),
        ];
        let settings: Vec<&str> = settings.iter().filter(|s| s.0).map(|s| s.1).collect();
        spec.push_str(&format!("  step s{n} = {connection} GET \"/n/{n}\""));
        if settings.is_empty() {
            spec.push('\n');
        } else {
            spec.push_str(&format!(" {{\n    {}\n  }}\n", settings.join("\n    ")));
        }
    }
    spec + "  fallback backup = b GET \"/backup\"\n}\n"
}

#[test]
fn a_long_flow_is_drawn_with_runs_of_plain_steps_grouped_and_every_branch_kept() {
    let dir = workdir("doc_long_flow");
    let spec = dir.join("long.integ");
    std::fs::write(&spec, forty_steps()).unwrap();
    let output = integ(&["doc", spec.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let page = stdout(&output);
    let after = page.split("```mermaid\n").nth(1).unwrap();
    let (chart, after) = after.split_once("```").unwrap();
    let lines: Vec<&str> = chart.lines().map(str::trim).collect();

    let nodes: Vec<&str> = lines
        .iter()
        .filter(|line| {
            let id = line
                .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .unwrap_or(line.len());
            id > 0 && line[id..].starts_with(['[', '{', '('])
        })
        .copied()
        .collect();
    assert!(nodes.len() <= 25, "{} nodes:\n{chart}", nodes.len());
    let has = |line: &str| lines.contains(&line);

    // Each step is drawn, or in exactly one group whose range holds it.
    let groups: Vec<(u32, u32)> = nodes
        .iter()
        .filter_map(|node| {
            let label = node.split_once("[\"steps s")?.1;
            let (first, rest) = label.split_once(" … s")?;
            let last = rest.split_once(' ')?.0;
            Some((first.parse().ok()?, last.parse().ok()?))
        })
        .collect();
    assert!(groups.len() >= 4, "{chart}");
    for n in 1..=40 {
        let drawn = nodes.iter().any(|l| l.starts_with(&format!("st_s{n}[")));
        let grouped = groups.iter().filter(|(a, b)| (a..=b).contains(&&n)).count();
        assert_eq!(usize::from(drawn) + grouped, 1, "s{n}:\n{chart}");
    }
    for n in [10, 20, 30, 40] {
        assert!(
            has(&format!("cond_s{n} -->|yes| st_s{n}")),
            "s{n}:\n{chart}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("cond_s{n} -->|no| "))),
            "s{n}:\n{chart}"
        );
    }
    assert!(
        has("st_s15 -.->|fails after 3 attempts| fb_backup"),
        "{chart}"
    );
    assert!(has("fb_backup -.->|fails after 3 attempts| dlq"), "{chart}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("st_s25 -.->|fails after 3 attempts, skipped| ")),
        "{chart}"
    );
    // Every group's steps dead-letter by default; the one holding s12 also fails the run.
    for (first, last) in &groups {
        let id = format!("grp_s{first}");
        let to_dlq = lines
            .iter()
            .any(|l| l.starts_with(&format!("{id} -.->|")) && l.ends_with("| dlq"));
        assert!(to_dlq, "{id}:\n{chart}");
        if (first..=last).contains(&&12) {
            assert!(has(&format!("{id} -.->|s12 fails| failed")), "{chart}");
        }
    }
    assert!(
        after
            .trim_start()
            .starts_with("With 40 steps, the chart draws each run"),
        "no note under the chart:\n{after}"
    );

    let json = stdout(&integ(&["doc", "--format", "json", spec.to_str().unwrap()]));
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(doc["overview"]["flowchart_note"].is_string(), "{json}");
}

/// The README shows what `integ doc` makes: it links generated pages, and they exist.
#[test]
fn the_readme_links_generated_pages_that_exist() {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let links: Vec<&str> = readme
        .split("](")
        .skip(1)
        .filter_map(|rest| rest.split_once(')').map(|(link, _)| link))
        .filter(|link| link.starts_with("docs/integrations/"))
        .collect();
    let pages: Vec<&&str> = links
        .iter()
        .filter(|l| l.ends_with(".md") && !l.ends_with(integ::doc::INDEX_FILE))
        .collect();
    assert!(!pages.is_empty(), "no sample page linked: {links:?}");
    for link in &links {
        let page = std::fs::read_to_string(link).unwrap_or_else(|e| panic!("{link}: {e}"));
        assert!(
            page.starts_with(integ::doc::GENERATED),
            "{link} is not generated"
        );
    }
}

/// One state file holds the dead letters of every spec `integ serve` runs: a runbook that
/// says `integ dlq replay --all` would replay every team's letters at 3 a.m.
#[test]
fn every_dead_letter_command_a_page_gives_names_its_integration() {
    let command = regex::Regex::new(r"integ dlq (list|replay --all)[^`\n]*").unwrap();
    let mut found = 0;
    for (name, text) in example_pages() {
        let Some(integration) = name.strip_suffix(".md").filter(|n| *n != "index") else {
            continue;
        };
        for used in command.find_iter(&text) {
            found += 1;
            assert!(
                used.as_str()
                    .contains(&format!("--integration {integration}")),
                "{name}: `{}` acts on every integration's dead letters",
                used.as_str()
            );
        }
    }
    assert!(found >= 10, "too few dead-letter commands found: {found}");
}

/// Connection names repeat across specs (two may have a `slack`): a selector on a
/// connection without the integration counts another integration's calls.
#[test]
fn every_selector_on_a_connection_names_its_integration() {
    let selector = regex::Regex::new(r#"integ_[a-z_]+\{[^}]*connection=[^}]*\}"#).unwrap();
    let mut found = 0;
    for (name, text) in example_pages() {
        let text = text.replace("\\\"", "\"");
        for used in selector.find_iter(&text) {
            found += 1;
            assert!(
                used.as_str().contains("integration=\""),
                "{name}: `{}` mixes integrations",
                used.as_str()
            );
        }
    }
    assert!(found >= 10, "too few connection selectors found: {found}");
}

/// An event needs every connection it calls: the ceiling runs from the lowest of their
/// floors to the lowest of their ceilings, not one connection's range.
#[test]
fn the_ceiling_spans_every_connections_limits() {
    let dir = workdir("doc_ceiling");
    std::fs::write(
        dir.join("two.integ"),
        r#"integration two {
  connection slow {
    base_url "https://slow.example.com"
    rate_limit 60 per 1m
  }
  connection fast {
    base_url "https://fast.example.com"
    rate_limit 50 per 1m
  }
  trigger manual
  step read = slow GET "/items" {
    paginate cursor $.next into "cursor"
    items $.results[*]
    max_pages 5
  }
  step write = fast POST "/items" {
    body { id = $.id }
  }
}
"#,
    )
    .unwrap();
    let out = dir.join("out");
    let output = integ(&[
        "doc",
        dir.join("two.integ").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let page = std::fs::read_to_string(out.join("two.md")).unwrap();
    assert!(
        page.contains("paced by the limits of `slow` and `fast` (**12 to 50 events/min**)"),
        "{page}"
    );
}

/// The page `integ doc` prints for the spec `text` (written in a folder named `test`).
fn page_of(test: &str, text: &str) -> String {
    let dir = workdir(test);
    let spec = dir.join("spec.integ");
    std::fs::write(&spec, text).unwrap();
    let output = integ(&["doc", spec.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    stdout(&output)
}

/// An integration named `index` (or `Index`) once wrote `index.md` over the folder's index,
/// and the index over it: every run rewrote both and `--check` never passed.
#[test]
fn an_integration_named_index_settles_beside_the_index() {
    let dir = workdir("doc_index_name");
    for name in ["index", "Index"] {
        let spec = format!("integration {name} {{\n  trigger manual\n}}\n");
        std::fs::write(dir.join(format!("{name}_spec.integ")), spec).unwrap();
    }
    let out = dir.join("out");
    let run = |check: bool| {
        let mut args = vec!["doc", dir.to_str().unwrap(), "--out", out.to_str().unwrap()];
        if check {
            args.insert(1, "--check");
        }
        integ(&args)
    };
    assert!(run(false).status.success());
    let again = run(false);
    assert!(
        stderr(&again).starts_with("0 of 3 files"),
        "{}",
        stderr(&again)
    );
    let check = run(true);
    assert!(
        check.status.success(),
        "{}{}",
        stdout(&check),
        stderr(&check)
    );
    let page = std::fs::read_to_string(out.join("index.md")).unwrap();
    assert!(page.contains("\n# index\n"), "{page}");
    let index = std::fs::read_to_string(out.join(integ::doc::INDEX_FILE)).unwrap();
    assert!(index.contains("[index](index.md)") && index.contains("[Index](Index.md)"));
}

/// `specs/`, `./specs/` and the absolute path are one folder: the pages must not differ by
/// how it was typed (CI and people type it differently).
#[test]
fn every_spelling_of_the_spec_folder_gives_the_same_bytes() {
    let absolute = std::env::current_dir().unwrap().join("specs");
    let absolute = absolute.to_str().unwrap();
    let mut outputs = Vec::new();
    for (n, spelt) in ["specs/", "./specs/", absolute].into_iter().enumerate() {
        let check = integ(&["doc", "--check", spelt, "--out", "docs/integrations"]);
        assert!(
            check.status.success(),
            "{spelt}: {}{}",
            stdout(&check),
            stderr(&check)
        );
        let out = workdir(&format!("doc_spelling_{n}"));
        let written = integ(&["doc", spelt, "--out", out.to_str().unwrap()]);
        assert!(written.status.success(), "{}", stderr(&written));
        outputs.push(files(&out));
    }
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[0], outputs[2]);
}

#[test]
fn check_without_out_is_a_usage_error() {
    let output = integ(&["doc", "--check", "specs/"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
}

/// `\|` is how a table cell holds a pipe; anywhere else GitHub shows the backslash.
#[test]
fn pipes_are_escaped_in_table_cells_and_nowhere_else() {
    let page = page_of(
        "doc_pipes",
        r#"integration pipes {
  connection api { base_url "https://api.example.com" auth none }
  trigger manual
  step send = api POST "/x/{{ event.id | upper }}" {
    idempotency_key "k-{{ event.id | lower }}"
    body { name = "{{ event.name | title }}" }
  }
}
"#,
    );
    let heading = page.lines().find(|l| l.contains("4.1 `send`")).unwrap();
    assert!(
        heading.contains("`POST /x/{{ event.id | upper }}`"),
        "{heading}"
    );
    assert!(
        page.contains("Idempotency key `\"k-{{ event.id | lower }}\"`"),
        "{page}"
    );
    assert!(
        page.contains("| `body.name` | `\"{{ event.name \\| title }}\"` |"),
        "{page}"
    );
    for line in page.lines().filter(|l| !l.starts_with('|')) {
        assert!(!line.contains("\\|"), "escaped outside a table: {line}");
    }
}

/// A description is the spec's text, not HTML: an unclosed `<!--` in it once hid the rest
/// of the page.
#[test]
fn a_description_cannot_hide_the_page() {
    let page = page_of(
        "doc_description_html",
        "integration html {\n  description \"Syncs <!-- everything & <b>more</b>\"\n  owner \"<team>\"\n  trigger manual\n}\n",
    );
    assert!(
        page.contains("\nSyncs &lt;!-- everything &amp; &lt;b&gt;more&lt;/b&gt;\n"),
        "{page}"
    );
    assert!(page.contains("| Owner | &lt;team&gt; |"), "{page}");
    assert!(
        !page.contains("<!-- everything") && !page.contains("<b>"),
        "{page}"
    );
}

/// A comment inside a multi-line condition explains it to the spec's reader; the docs show
/// the condition alone (and a `#` inside a string is not a comment).
#[test]
fn comments_inside_an_expression_stay_out_of_the_docs() {
    let page = page_of(
        "doc_comments",
        r##"integration commented {
  connection api { base_url "https://api.example.com" auth none }
  trigger manual
  step send = api POST "/x" {
    when $.total > 0 # no $0 trial invoices
      and $.tag != "#internal" # (tagged by hand
    body { id = $.id }
  }
}
"##,
    );
    assert!(!page.contains("trial invoices"), "{page}");
    assert!(!page.contains("tagged by hand"), "{page}");
    assert!(
        page.contains("Runs only when `$.total > 0 and $.tag != \"#internal\"`;"),
        "{page}"
    );
}

/// The runbook of a spec for the runbook tests: a Shopify webhook (no signed timestamp), a
/// weekly schedule, a manual trigger, and alerts by e-mail and by an environment variable.
fn runbook_spec(breaker: &str) -> String {
    format!(
        r#"integration shop {{
  connection api {{
    base_url "https://api.example.com"
    auth bearer secret("API_TOKEN")
    rate_limit 60 per 1m
    {breaker}
  }}
  trigger webhook "/hooks/shop" {{
    signature shopify secret("SHOP_SECRET")
  }}
  trigger schedule "0 9 * * MON"
  trigger manual
  step send = api POST "/x" {{ body {{ id = $.id }} }}
  alert when dead_letters > 0 in 1h notify email "ops@example.com"
  alert when retries > 10 in 1h notify webhook env("OPS_HOOK")
}}
"#
    )
}

/// The runbook below a heading: `### <a id="ID"></a>...` up to the next entry.
fn runbook_entry<'a>(page: &'a str, id: &str) -> Option<&'a str> {
    let start = page.find(&format!("<a id=\"{id}\"></a>"))?;
    let rest = &page[start..];
    Some(&rest[..rest[1..].find("### <a id=").map_or(rest.len(), |n| n + 1)])
}

#[test]
fn the_runbook_words_fit_what_the_spec_declares() {
    let path = "target/doc_runbook_words.integ";
    std::fs::write(path, runbook_spec("")).unwrap();
    let output = integ(&["doc", &format!("./{path}")]);
    assert!(output.status.success(), "{}", stderr(&output));
    let page = stdout(&output);

    let signature = runbook_entry(&page, "rb-webhook-signature").unwrap();
    assert!(
        !signature.contains("tolerance"),
        "Shopify signs no time: {signature}"
    );
    let channel = runbook_entry(&page, "rb-alert-channel").unwrap();
    assert!(
        channel.contains("correct the address written in the spec")
            && channel.contains("INTEG_SMTP_URL")
            && channel.contains("set the environment variable `OPS_HOOK` to a working URL"),
        "{channel}"
    );
    assert!(!channel.contains("channel's secret name"), "{channel}");
    let schedule = runbook_entry(&page, "rb-schedule-missed").unwrap();
    assert!(
        schedule.contains("integ runs --integration shop --since 14d")
            && schedule.contains("[14d]")
            && schedule.contains(&format!("`integ run {path}`")),
        "{schedule}"
    );
    assert!(!schedule.contains("SPEC"), "{schedule}");
    assert!(
        page.contains("[Trigger 3](#trigger-3): one event per `integ run`"),
        "{page}"
    );
    assert!(runbook_entry(&page, "rb-breaker-open").is_none());

    let stripe = page_of(
        "doc_runbook_stripe",
        &runbook_spec("").replace("signature shopify", "signature stripe"),
    );
    let signature = runbook_entry(&stripe, "rb-webhook-signature").unwrap();
    assert!(signature.contains("tolerance"), "{signature}");
}

#[test]
fn a_declared_breaker_gets_its_runbook_entry() {
    let page = page_of(
        "doc_breaker_entry",
        &runbook_spec("circuit_breaker { failures 5 cooldown 30s }"),
    );
    let entry = runbook_entry(&page, "rb-breaker-open").unwrap();
    assert!(
        entry.contains("integ_circuit_breaker_state{integration=\"shop\",connection=\"api\",state=\"open\"} == 1"),
        "{entry}"
    );
    assert!(entry.contains("<!-- BEGIN_HANDWRITTEN rb-breaker-open -->"));
}

/// Without a connection nothing calls an API: no query or entry about API answers.
#[test]
fn a_spec_without_connections_gets_no_api_queries_or_entries() {
    let page = page_of(
        "doc_no_connections",
        "integration lonely {\n  trigger manual\n  alert when retries > 1 in 1h notify webhook env(\"HOOK\")\n}\n",
    );
    for absent in [
        "integ_http_client_requests_total",
        "integ_rate_limit_throttled_total",
        "<a id=\"rb-rate-limited\"></a>",
        "<a id=\"rb-upstream-down\"></a>",
        "](#rb-rate-limited)",
        "](#rb-upstream-down)",
    ] {
        assert!(!page.contains(absent), "{absent} in {page}");
    }
    assert!(page.contains("<a id=\"rb-backlog\"></a>"));
}

/// §6 shows each connection's concurrency and breaker and each step's cache, and says that
/// concurrency bounds the ceiling beside the rate limits.
#[test]
fn capacity_shows_concurrency_breakers_and_caches() {
    let page = page_of(
        "doc_capacity_more",
        r#"integration busy {
  concurrency 3
  connection api {
    base_url "https://api.example.com"
    rate_limit 60 per 1m
    max_concurrency 4
    circuit_breaker { failures 7 cooldown 1m }
  }
  trigger manual
  step read = api GET "/x" { cache 5m }
}
"#,
    );
    let capacity = page.split("<a id=\"capacity\"></a>").nth(1).unwrap();
    let capacity = &capacity[..capacity.find("\n## ").unwrap()];
    assert!(
        capacity.contains("| 1: `read`, cached 5m (a repeat within it makes no request) |"),
        "{capacity}"
    );
    assert!(
        capacity.contains("| 4 | opens after 7 failed calls in a row; stays open 1m"),
        "{capacity}"
    );
    assert!(
        capacity.contains("`api` takes 4 requests at once, so at most 4 ÷ its answer time")
            && capacity.contains("the integration runs 3 events at once"),
        "{capacity}"
    );
}

/// A condition past 120 characters is shortened where it is shown, with its full form a
/// click away; a template's `default(...)` is what stands in for a missing value.
#[test]
fn long_conditions_keep_their_full_form_and_template_defaults_show() {
    let long = format!("$.a == \"{}\"", "x".repeat(150));
    let page = page_of(
        "doc_long_condition",
        &format!(
            r#"integration long {{
  connection api {{ base_url "https://api.example.com" auth none }}
  trigger manual
  step send = api POST "/x" {{
    when {long}
    body {{ name = "{{{{ event.name | default('anonymous') }}}}" }}
  }}
}}
"#
        ),
    );
    let note = page
        .lines()
        .find(|l| l.starts_with("Runs only when"))
        .unwrap();
    assert!(
        note.contains("<details><summary>`$.a == \"xxx")
            && note.contains(&format!("</summary>`{long}`</details>")),
        "{note}"
    );
    assert!(
        page.contains("| `body.name` | `\"{{ event.name \\| default('anonymous') }}\"` | `event.name` | `default('anonymous')` |"),
        "{page}"
    );
}
