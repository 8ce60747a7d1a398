//! The changes (POST, from the pages' forms only): replay and discard dead letters, and
//! sign in with the admin token. Each form carries this process's form token; the guard
//! has checked the request's origin before.

use super::filters::{self, Fields, LETTER_FILTERS};
use super::guard::{self, Transport};
use super::{Admin, bad_request, on_store};
use crate::store::{DeadLetter, LetterQuery, LetterStates};
use crate::telemetry;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

/// What a replay or discard form asks for: the boxes checked, or every open dead letter its
/// filters match; and where to go back to.
fn chosen(admin: &Admin, form: &Fields) -> Result<(LetterQuery, String), Box<Response>> {
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
        let query = filters::letters(form).map_err(problem)?;
        LetterQuery {
            states: LetterStates::Open,
            limit: None,
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
    let (query, back) = match chosen(&admin, &form) {
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
    let (query, back) = match chosen(&admin, &form) {
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
    match admin.guard.session_cookie(secure, crate::store::now()) {
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
