//! How the admin pages are drawn: the templates (minijinja, HTML-escaped by their `.html`
//! names, embedded in the binary), the filters they use, and whether a request asked for
//! JSON instead.

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::Environment;

/// Every page's template, embedded: no files to install, no build step.
const TEMPLATES: [(&str, &str); 9] = [
    ("base.html", include_str!("templates/base.html")),
    ("overview.html", include_str!("templates/overview.html")),
    ("runs.html", include_str!("templates/runs.html")),
    ("run.html", include_str!("templates/run.html")),
    ("letters.html", include_str!("templates/letters.html")),
    ("letter.html", include_str!("templates/letter.html")),
    ("confirm.html", include_str!("templates/confirm.html")),
    ("login.html", include_str!("templates/login.html")),
    ("problem.html", include_str!("templates/problem.html")),
];

/// The pages' templates, with the filters they use.
pub(super) fn templates() -> Result<Environment<'static>, String> {
    let mut env = Environment::new();
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .map_err(|e| format!("admin template {name}: {e}"))?;
    }
    env.add_filter("utc", utc);
    env.add_filter("ago", ago);
    env.add_filter("pretty", pretty);
    Ok(env)
}

/// A store time (seconds since the Unix epoch) in UTC, as people read it.
fn utc(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0).map_or_else(
        || seconds.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%SZ").to_string(),
    )
}

/// How long ago a store time was, roughly: `42 s ago`, `5 min ago`, `3 h ago`, `2 d ago`.
fn ago(seconds: i64) -> String {
    let past = crate::store::now().saturating_sub(seconds);
    match past {
        i64::MIN..0 => "in the future".into(),
        0..120 => format!("{past} s ago"),
        120..7200 => format!("{} min ago", past / 60),
        7200..172_800 => format!("{} h ago", past / 3600),
        _ => format!("{} d ago", past / 86_400),
    }
}

/// A JSON value, indented for reading.
fn pretty(value: minijinja::Value) -> String {
    serde_json::to_value(&value)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_default()
}

/// Whether a request asked for JSON: `?format=json`, or `Accept: application/json` before
/// any HTML.
pub(super) fn wants_json(request: &Request) -> bool {
    let query = request.uri().query().unwrap_or("");
    if form_urlencoded::parse(query.as_bytes()).any(|(k, v)| k == "format" && v == "json") {
        return true;
    }
    accepts_json(request.headers())
}

fn accepts_json(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let json = accept.find("application/json");
    let html = accept.find("text/html");
    match (json, html) {
        (Some(json), Some(html)) => json < html,
        (Some(_), None) => true,
        _ => false,
    }
}

/// A page: template `name` rendered with `context`, inside the layout every page shares
/// (with `title`). A template error is ours, not the reader's: logged, and a 500 without
/// its details.
pub(super) fn page(
    env: &Environment<'static>,
    name: &str,
    title: &str,
    context: minijinja::Value,
) -> Response {
    let rendered = env
        .get_template(name)
        .and_then(|t| t.render(context))
        .and_then(|main| {
            let main = minijinja::Value::from_safe_string(main);
            env.get_template("base.html")?
                .render(minijinja::context! { title => title, main => main })
        });
    match rendered {
        Ok(html) => Html(html).into_response(),
        Err(error) => {
            tracing::error!(template = name, %error, "cannot render an admin page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot render this page; see the server's log",
            )
                .into_response()
        }
    }
}

/// JSON lines, as `integ runs` and `integ dlq list` print them.
pub(super) fn json_lines(lines: String) -> Response {
    ([(header::CONTENT_TYPE, "application/x-ndjson")], lines).into_response()
}

/// JSON lines of one page of a list, with a `Link` header to the next page if there is one
/// (the body stays what the command prints).
pub(super) fn json_lines_paged(lines: String, next: Option<String>) -> Response {
    let mut response = json_lines(lines);
    let link = next.and_then(|next| format!("<{next}>; rel=\"next\"").parse().ok());
    if let Some(link) = link {
        response.headers_mut().insert(header::LINK, link);
    }
    response
}

/// One JSON object, on one line, as `integ runs --id` and `integ dlq show` print it.
pub(super) fn json_object(value: &serde_json::Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        format!("{value}\n"),
    )
        .into_response()
}

/// A small picture of runs and failures over time: one bar per bucket, failures drawn over
/// runs, scaled to the busiest bucket.
#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct Spark {
    pub width: u32,
    pub height: u32,
    pub bars: Vec<Bar>,
    /// The busiest bucket's runs, for the picture's label.
    pub peak: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct Bar {
    pub x: u32,
    pub runs: u32,
    pub failures: u32,
    /// What the bar stands for, as a tooltip.
    pub title: String,
}

impl Spark {
    /// The picture of `buckets` (start, runs, failures), oldest first, each `width`
    /// seconds long.
    pub(super) fn of(buckets: &[(i64, u64, u64)]) -> Self {
        const BAR: u32 = 4;
        const HEIGHT: u32 = 32;
        let peak = buckets.iter().map(|b| b.1).max().unwrap_or(0);
        let scale = |n: u64| -> u32 {
            if peak == 0 {
                return 0;
            }
            let h = n.saturating_mul(u64::from(HEIGHT)) / peak;
            // A bucket with any run shows at least a line.
            u32::try_from(h).unwrap_or(HEIGHT).max(u32::from(n > 0))
        };
        let bars = buckets
            .iter()
            .zip(0u32..)
            .map(|(&(start, runs, failures), i)| Bar {
                x: i.saturating_mul(BAR + 1),
                runs: scale(runs),
                failures: scale(failures),
                title: format!("{}: {runs} run(s), {failures} failed", utc(start)),
            })
            .collect::<Vec<_>>();
        let count = u32::try_from(bars.len()).unwrap_or(u32::MAX);
        Self {
            width: count.saturating_mul(BAR + 1),
            height: HEIGHT,
            bars,
            peak,
        }
    }
}
