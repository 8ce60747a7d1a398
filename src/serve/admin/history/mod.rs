//! The run-history pages of the admin listener (`integ serve --admin-listen`): an overview of
//! each integration, the runs with their step timelines, the dead letters with replay and
//! discard. Server-rendered HTML that works without JavaScript; every page also answers
//! the JSON its command prints (`?format=json` or `Accept: application/json`). Nothing
//! changes through a GET; every change is a POST from one of these pages (`guard`).

mod actions;
mod filters;
mod guard;
mod pages;
mod view;

pub use guard::{Guard, guard};

use crate::serve::Service;
use crate::store::{Store, StoreError};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use minijinja::Environment;
use std::sync::Arc;

/// What every admin handler shares.
#[derive(Clone)]
struct Admin {
    service: Arc<Service>,
    templates: Arc<Environment<'static>>,
    guard: Arc<Guard>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("guard", &self.guard)
            .finish_non_exhaustive()
    }
}

/// The run-history pages, to mount on the admin listener's router behind `guard` (the
/// middleware of the same name), whose form token their forms carry.
pub fn pages(service: Arc<Service>, guard: Arc<Guard>) -> Result<axum::Router, String> {
    let admin = Admin {
        service,
        templates: Arc::new(view::templates()?),
        guard,
    };
    Ok(axum::Router::new()
        .route("/", get(pages::overview))
        .route("/runs", get(pages::runs))
        .route("/runs/{id}", get(pages::run))
        .route("/dead-letters", get(pages::letters))
        .route("/dead-letters/{id}", get(pages::letter))
        .route("/dead-letters/replay", post(actions::replay))
        .route("/dead-letters/discard", post(actions::discard))
        .route("/login", get(pages::login).post(actions::login))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM_BYTES))
        .with_state(admin))
}

/// A form is ids, filters and a reason: far less than this.
const MAX_FORM_BYTES: usize = 256 * 1024;

/// Runs `read` on the store off the runtime's threads (the records are read synchronously).
async fn on_store<T: Send + 'static>(
    admin: &Admin,
    read: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Response> {
    let store = admin.service.store.clone();
    match tokio::task::spawn_blocking(move || read(store.as_ref())).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => {
            tracing::error!(%error, "the admin pages cannot read the state store");
            Err((
                StatusCode::SERVICE_UNAVAILABLE,
                "the state store cannot be read; see the server's log",
            )
                .into_response())
        }
        Err(_) => {
            Err((StatusCode::INTERNAL_SERVER_ERROR, "the store read stopped").into_response())
        }
    }
}

/// A 400 saying what in the request is wrong, as a page or as JSON.
fn bad_request(admin: &Admin, json: bool, problem: &str) -> Response {
    let mut response = if json {
        axum::Json(serde_json::json!({ "error": problem })).into_response()
    } else {
        view::page(
            &admin.templates,
            "problem.html",
            "Problem",
            minijinja::context! { problem => problem },
        )
    };
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response
}
