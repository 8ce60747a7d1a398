//! Parse + check throughput on a generated spec of 10 000+ lines.
//!
//! `cargo bench --bench lint` prints MB/s and the time per 10 000 lines (goal on the 2-core
//! dev machine: at least 20 MB/s, under 100 ms), the median of several runs.

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A realistic step: a templated path, query, a body mapping reading earlier steps with
/// JSONPaths and templates, a retry policy.
fn step(n: usize) -> String {
    let previous = if n == 0 {
        "$".to_string()
    } else {
        format!("$s{}", n - 1)
    };
    format!(
        r#"  # step {n}: look the record up, then write it back
  step s{n} = api POST "/records/{{{{ event.id }}}}/items" {{
    query {{ page = 1, filter = "active" }}
    headers {{ "X-Request" = "req-{{{{ event.id }}}}-{n}" }}
    idempotency_key "item-{{{{ event.id }}}}-{n}"
    when {previous}.status == "ok" and $.kind != "test"
    body {{
      data.type = "item"
      data.attributes.name = {previous}.name ?? "unknown"
      data.attributes.tags = [$.tags[0], $.tags[1]]
      data.attributes.label = "{{{{ event.name | upper }}}} #{n}"
      data.attributes.count = {n}
    }}
    retry 5 exponential 1s..2m jitter on 429, 5xx, timeout
    on_error dead_letter
  }}
"#
    )
}

fn generated_spec(min_lines: usize) -> String {
    let mut text = String::from(
        "integration bench {\n  description \"generated\"\n  connection api {\n    base_url \"https://api.example.com\"\n    auth bearer secret(\"TOKEN\")\n    rate_limit 100 per 10s\n  }\n  trigger webhook \"/hooks/bench\" { signature none dedupe $.id }\n",
    );
    let mut n = 0;
    while text.lines().count() < min_lines {
        text.push_str(&step(n));
        n += 1;
    }
    text.push_str("}\n");
    text
}

fn lint_once(text: &str) -> Duration {
    let start = Instant::now();
    let files = integ::lint::lint_sources(vec![(PathBuf::from("bench.integ"), text.to_string())]);
    let elapsed = start.elapsed();
    let diagnostics = files.iter().map(|f| f.diagnostics.len()).sum::<usize>();
    assert_eq!(diagnostics, 0, "the generated spec must be clean");
    elapsed
}

fn main() {
    let text = generated_spec(10_000);
    let lines = text.lines().count();
    let megabytes = text.len() as f64 / 1e6;
    lint_once(&text); // warm up: lazy statics, allocator
    let mut runs: Vec<Duration> = (0..9).map(|_| lint_once(&text)).collect();
    runs.sort();
    let median = runs[runs.len() / 2];
    let per_10k = median.as_secs_f64() * 1e3 * 10_000.0 / lines as f64;
    println!(
        "lint: {lines} lines, {:.2} MB: median {:.1} ms = {:.1} MB/s, {per_10k:.1} ms per 10 000 lines",
        megabytes,
        median.as_secs_f64() * 1e3,
        megabytes / median.as_secs_f64(),
    );
}
