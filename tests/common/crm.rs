//! A stand-in CRM with an incremental search, shaped as HubSpot's CRM search: `POST
//! /search` with `{"since": TIME, "after": CURSOR, "limit": L}` gives the rows changed at
//! or after `since` (an inclusive bound), sorted by their time then id (or the reverse, to
//! test answers out of order), `L` at a time after the cursor, with the next cursor in
//! `next` while rows remain. The cursor names the last row given (`TIME|ID`), so a row
//! changed during a pass moves past it and none shifts out of sight, as an offset would
//! make it. `POST /deliver` records what the integration delivered.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The mark of the first round of `Crm::spec`.
pub const START: &str = "2020-06-01T00:00:00Z";

#[derive(Default)]
struct Rows {
    rows: BTreeMap<i64, Value>,
    searches: Vec<Value>,
    delivered: Vec<(i64, String)>,
    descending: bool,
    /// Searches after the row of this id answer 400 while set.
    failing_after: Option<i64>,
    failures: usize,
}

#[derive(Clone)]
pub struct Crm {
    rows: Arc<Mutex<Rows>>,
    pub url: String,
}

impl Crm {
    pub async fn start() -> Crm {
        let rows = Arc::new(Mutex::new(Rows::default()));
        let app = Router::new()
            .route("/search", post(search))
            .route("/deliver", post(deliver))
            .with_state(rows.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(axum::serve(listener, app).into_future());
        Crm { rows, url }
    }

    /// An integration polling this CRM from `START` with a minute of look-back, two rows a
    /// page, each change delivered once to `/deliver`.
    pub fn spec(&self) -> String {
        format!(
            r#"integration crm_sync {{
  connection crm {{ base_url "{}" }}
  trigger poll crm POST "/search" {{
    every 100ms
    since $.updated rfc3339 {{ start "{START}" lookback 1m }}
    body {{ since = "{{{{ since }}}}" limit = 2 }}
    items $.results[*]
    cursor $.next into body "after"
    dedupe "{{{{ event.id }}}}@{{{{ event.updated }}}}" for 7d
  }}
  step deliver = crm POST "/deliver" {{
    idempotency_key "d-{{{{ event.id }}}}-{{{{ event.updated }}}}"
    body {{ id = $.id, updated = $.updated }}
  }}
}}"#,
            self.url
        )
    }

    /// Adds or changes row `id`, stamped `updated`.
    pub fn put(&self, id: i64, updated: &str) {
        self.put_row(json!({ "id": id, "updated": updated }));
    }

    pub fn put_row(&self, row: Value) {
        let id = row["id"].as_i64().unwrap();
        self.rows.lock().unwrap().rows.insert(id, row);
    }

    pub fn descending(&self) {
        self.rows.lock().unwrap().descending = true;
    }

    /// Searches for the page after row `id` fail (400) while set.
    pub fn fail_after(&self, id: Option<i64>) {
        self.rows.lock().unwrap().failing_after = id;
    }

    pub fn failures(&self) -> usize {
        self.rows.lock().unwrap().failures
    }

    /// The bodies of the searches, in order.
    pub fn searches(&self) -> Vec<Value> {
        self.rows.lock().unwrap().searches.clone()
    }

    /// What was delivered: (id, its time), in order.
    pub fn delivered(&self) -> Vec<(i64, String)> {
        self.rows.lock().unwrap().delivered.clone()
    }
}

fn time(row: &Value) -> Option<DateTime<Utc>> {
    let text = row["updated"].as_str()?;
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.to_utc())
}

/// Where a row sorts, and the cursor that names it.
type Key = (Option<DateTime<Utc>>, i64);

fn key(row: &Value) -> Key {
    (time(row), row["id"].as_i64().unwrap())
}

fn cursor((time, id): Key) -> String {
    let time = time.map(|t| t.to_rfc3339()).unwrap_or_default();
    format!("{time}|{id}")
}

fn parse_cursor(text: &str) -> Key {
    let (time, id) = text.split_once('|').unwrap();
    let time = (!time.is_empty()).then(|| DateTime::parse_from_rfc3339(time).unwrap().to_utc());
    (time, id.parse().unwrap())
}

async fn search(
    State(rows): State<Arc<Mutex<Rows>>>,
    Json(body): Json<Value>,
) -> (axum::http::StatusCode, Json<Value>) {
    let mut state = rows.lock().unwrap();
    state.searches.push(body.clone());
    let after = body["after"].as_str().map(parse_cursor);
    let limit = body["limit"].as_u64().unwrap() as usize;
    if state.failing_after.is_some() && state.failing_after == after.map(|(_, id)| id) {
        state.failures += 1;
        let error = json!({ "message": "try again later" });
        return (axum::http::StatusCode::BAD_REQUEST, Json(error));
    }
    let since = body["since"]
        .as_str()
        .map(|s| DateTime::parse_from_rfc3339(s).unwrap().to_utc());
    let descending = state.descending;
    let beyond = |row: &Value| match after {
        None => true,
        Some(after) if descending => key(row) < after,
        Some(after) => key(row) > after,
    };
    // A row without a readable time is always changed, as far as this CRM can tell.
    let mut found: Vec<&Value> = state
        .rows
        .values()
        .filter(|row| match (since, time(row)) {
            (Some(since), Some(time)) => time >= since,
            _ => true,
        })
        .filter(|row| beyond(row))
        .collect();
    found.sort_by_key(|row| key(row));
    if descending {
        found.reverse();
    }
    let page: Vec<Value> = found.iter().take(limit).map(|row| (*row).clone()).collect();
    let next = (found.len() > limit).then(|| cursor(key(&page[limit - 1])));
    let answer = json!({ "results": page, "next": next });
    (axum::http::StatusCode::OK, Json(answer))
}

async fn deliver(State(rows): State<Arc<Mutex<Rows>>>, Json(body): Json<Value>) -> Json<Value> {
    let id = body["id"].as_i64().unwrap();
    let updated = body["updated"].as_str().unwrap_or("").to_string();
    rows.lock().unwrap().delivered.push((id, updated));
    Json(json!({ "ok": true }))
}
