//! A stand-in CRM with an incremental search, as HubSpot's CRM search answers it: `POST
//! /search` with `{"since": TIME, "after": "N", "limit": L}` gives the rows changed at or
//! after `since` (an inclusive bound), sorted by their time then id (or the reverse, to
//! test answers out of order), `L` at a time from offset `after`, with the next offset in
//! `next` while rows remain. `POST /deliver` records what the integration delivered.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Rows {
    rows: BTreeMap<i64, Value>,
    searches: Vec<Value>,
    delivered: Vec<(i64, String)>,
    descending: bool,
    /// Searches from this offset answer 400 while set.
    failing_at: Option<usize>,
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

    pub fn fail_at(&self, offset: Option<usize>) {
        self.rows.lock().unwrap().failing_at = offset;
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

async fn search(
    State(rows): State<Arc<Mutex<Rows>>>,
    Json(body): Json<Value>,
) -> (axum::http::StatusCode, Json<Value>) {
    let mut state = rows.lock().unwrap();
    state.searches.push(body.clone());
    let after: usize = body["after"].as_str().map_or(0, |a| a.parse().unwrap());
    let limit = body["limit"].as_u64().unwrap() as usize;
    if state.failing_at == Some(after) {
        state.failures += 1;
        let error = json!({ "message": "try again later" });
        return (axum::http::StatusCode::BAD_REQUEST, Json(error));
    }
    let since = body["since"]
        .as_str()
        .map(|s| DateTime::parse_from_rfc3339(s).unwrap().to_utc());
    // A row without a readable time is always changed, as far as this CRM can tell.
    let mut found: Vec<&Value> = state
        .rows
        .values()
        .filter(|row| match (since, time(row)) {
            (Some(since), Some(time)) => time >= since,
            _ => true,
        })
        .collect();
    found.sort_by_key(|row| (time(row), row["id"].as_i64()));
    if state.descending {
        found.reverse();
    }
    let page: Vec<Value> = found.iter().skip(after).take(limit).cloned().cloned().collect();
    let next = (after + limit < found.len()).then(|| (after + limit).to_string());
    let answer = json!({ "results": page, "next": next });
    (axum::http::StatusCode::OK, Json(answer))
}

async fn deliver(State(rows): State<Arc<Mutex<Rows>>>, Json(body): Json<Value>) -> Json<Value> {
    let id = body["id"].as_i64().unwrap();
    let updated = body["updated"].as_str().unwrap_or("").to_string();
    rows.lock().unwrap().delivered.push((id, updated));
    Json(json!({ "ok": true }))
}
