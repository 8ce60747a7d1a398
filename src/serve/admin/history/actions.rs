//! The changes (POST, from the pages' forms only): replay and discard dead letters, and
//! sign in with the admin token. Each form carries this process's form token; the guard
//! has checked the request's origin before.

use super::filters::{self, Fields, LETTER_FILTERS};
use super::guard::{self, Transport};
use super::{Admin, bad_request, on_store, view};
use crate::store::{DeadLetter, LetterQuery, LetterStates, now};
use crate::telemetry;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;

/// What a form asks to do with dead letters.
#[derive(Debug, Clone, Copy)]
enum Change {
    Replay,
    Discard,
}

impl Change {
    fn path(self) -> &'static str {
        match self {
            Self::Replay => "/dead-letters/replay",
            Self::Discard => "/dead-letters/discard",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Self::Replay => "Replay",
            Self::Discard => "Discard",
        }
    }
}

/// What a replay or discard form asks for: the boxes checked, or every open dead letter its
/// filters match, once confirmed (`confirm`); and where to go back to.
async fn chosen(
    admin: &Admin,
    form: &Fields,
    change: Change,
) -> Result<(LetterQuery, String), Box<Response>> {
    if !form
        .get("form_token")
        .is_some_and(|t| admin.guard.form_token_is(t))
    {
        tracing::warn!("admin form refused: no or a stale form token");
        let reason = "refused: this form is not from a page of this server's current run; reload the page and try again";
        return Err(Box::new((StatusCode::FORBIDDEN, reason).into_response()));
    }
    let problem = |p: String| Box::new(bad_request(admin, false, &p));
    let ids = form.ids().map_err(problem)?;
    let matching = form.get("scope") == Some("matching");
    let query = if matching {
        if form.get("confirmed").is_none() {
            return Err(Box::new(confirm(admin, form, change).await));
        }
        if form.get("reason").is_none() {
            return Err(problem(format!(
                "say why every dead letter matching is {} (reason): it is kept with each",
                done_verb(change)
            )));
        }
        let query = filters::confirmed_letters(form).map_err(problem)?;
        LetterQuery {
            states: LetterStates::Open,
            limit: None,
            after: None,
            ..query
        }
    } else if ids.is_empty() {
        return Err(problem(
            "choose the dead letters first (tick their boxes)".into(),
        ));
    } else {
        LetterQuery {
            ids: Some(ids.clone()),
            ..LetterQuery::default()
        }
    };
    // Back to the letter a letter's page acted on, else to the list as it was filtered.
    let back = match (form.get("from"), ids.as_slice()) {
        (Some("letter"), [id]) => format!("/dead-letters/{id}"),
        _ => format!(
            "/dead-letters?{}",
            Fields::link(&form.filters(&LETTER_FILTERS), &[])
        ),
    };
    Ok((query, back))
}

fn done_verb(change: Change) -> &'static str {
    match change {
        Change::Replay => "replayed",
        Change::Discard => "discarded",
    }
}

/// The step before a change to every open dead letter a filter matches: how many, and the
/// filter with its times as instants (a `since` of `2h` read now, `until` now when not
/// given: the next second), which the form carries so that the change acts on the letters shown, none that
/// failed since; and the reason, required.
async fn confirm(admin: &Admin, form: &Fields, change: Change) -> Response {
    let query = match filters::letters(form) {
        Ok(query) => query,
        Err(problem) => return bad_request(admin, false, &problem),
    };
    let query = LetterQuery {
        states: LetterStates::Open,
        // `until` is exclusive: the letters of this very second are among those shown.
        until: Some(query.until.unwrap_or_else(|| now().saturating_add(1))),
        after: None,
        limit: None,
        ..query
    };
    let (since, until) = (query.since.map(instant), query.until.map(instant));
    let mut hidden: Vec<(String, String)> = ["integration", "step"]
        .into_iter()
        .filter_map(|name| form.get(name).map(|v| (name.to_string(), v.to_string())))
        .collect();
    hidden.extend(since.clone().map(|t| ("since".to_string(), t)));
    hidden.extend(until.clone().map(|t| ("until".to_string(), t)));
    let count = match on_store(admin, move |store| store.letters(&query)).await {
        Ok(letters) => letters.len(),
        Err(response) => return response,
    };
    view::page(
        &admin.templates,
        "confirm.html",
        &format!("{} dead letters", change.verb()),
        context! {
            action => change.path(),
            verb => change.verb(),
            replay => matches!(change, Change::Replay),
            count => count,
            integration => form.get("integration"),
            step => form.get("step"),
            since => since,
            until => until,
            hidden => hidden,
            reason => form.get("reason"),
            form_token => admin.guard.form_token(),
            back => Fields::link(&form.filters(&LETTER_FILTERS), &[]),
        },
    )
}

/// A store time as the instant a form carries: RFC 3339 in UTC.
fn instant(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0).map_or_else(
        || seconds.to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

fn done(back: &str, what: &str, ids: &[i64]) -> Response {
    let join = if back.contains('?') { '&' } else { '?' };
    let message = format!("{} dead letter(s) {what}", ids.len());
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("done", &message)
        .finish();
    Redirect::to(&format!("{back}{join}{query}")).into_response()
}

pub(super) async fn replay(State(admin): State<Admin>, body: Bytes) -> Response {
    let form = Fields::parse(&body);
    let (query, back) = match chosen(&admin, &form, Change::Replay).await {
        Ok(chosen) => chosen,
        Err(response) => return *response,
    };
    let reason = form.get("reason").map(String::from);
    let replayed = on_store(&admin, move |store| {
        // The letters first, for their integrations: replay_matching answers only ids.
        let open = LetterQuery {
            states: LetterStates::Open,
            ..query.clone()
        };
        let letters = store.letters(&open)?;
        let ids = store.replay_matching(&query, reason.as_deref())?;
        Ok((by_integration(&letters, &ids), ids))
    })
    .await;
    match replayed {
        Ok((counts, ids)) => {
            for (integration, count) in counts {
                telemetry::dead_letters_replayed(&integration, count);
            }
            tracing::info!(
                replayed = ids.len(),
                "dead letters replayed from the admin pages"
            );
            done(&back, "replayed", &ids)
        }
        Err(response) => response,
    }
}

/// How many of `replayed` each integration had among `letters`.
fn by_integration(
    letters: &[(i64, DeadLetter)],
    replayed: &[i64],
) -> std::collections::BTreeMap<String, usize> {
    let replayed: std::collections::HashSet<&i64> = replayed.iter().collect();
    let mut counts = std::collections::BTreeMap::new();
    for (id, letter) in letters {
        if replayed.contains(id) {
            *counts.entry(letter.integration.clone()).or_insert(0) += 1;
        }
    }
    counts
}

pub(super) async fn discard(State(admin): State<Admin>, body: Bytes) -> Response {
    let form = Fields::parse(&body);
    let (query, back) = match chosen(&admin, &form, Change::Discard).await {
        Ok(chosen) => chosen,
        Err(response) => return *response,
    };
    let Some(reason) = form.get("reason").map(String::from) else {
        return bad_request(
            &admin,
            false,
            "say why these dead letters are discarded (reason)",
        );
    };
    match on_store(&admin, move |store| store.discard(&query, &reason)).await {
        Ok(ids) => {
            tracing::info!(
                discarded = ids.len(),
                "dead letters discarded from the admin pages"
            );
            done(&back, "discarded", &ids)
        }
        Err(response) => response,
    }
}

pub(super) async fn login(State(admin): State<Admin>, headers: HeaderMap, body: Bytes) -> Response {
    let secure = match guard::transport(&headers) {
        Transport::Https => true,
        Transport::LoopbackHttp => false,
        Transport::PlainHttp => {
            tracing::warn!("admin sign-in refused: plain HTTP from another machine");
            return bad_request(
                &admin,
                false,
                "sign in over HTTPS (a TLS proxy in front of the admin listener): the session cookie would cross the network in clear. Programs may send the token as a bearer header.",
            );
        }
    };
    let form = Fields::parse(&body);
    let fresh = form
        .get("form_token")
        .is_some_and(|t| admin.guard.form_token_is(t));
    let given = form.get("token").is_some_and(|t| admin.guard.token_is(t));
    match admin.guard.session_cookie(secure, now()) {
        Some(cookie) if fresh && given => {
            let mut response = Redirect::to("/").into_response();
            if let Ok(value) = cookie.parse() {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        _ => {
            tracing::warn!("admin sign-in refused");
            Redirect::to("/login?wrong=1").into_response()
        }
    }
}
