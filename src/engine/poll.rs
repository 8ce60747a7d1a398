//! One poll of a poll trigger: the request from a stored position, the items of the
//! answer, and the position of the next page.

use super::http::Request;
use super::run::{link_next, set_param};
use super::{Engine, url};
use crate::model::Encoding;
use crate::plan::as_text;
use crate::plan::{PageStyle, PollPlan, Scope};
use serde_json::Value as Json;

/// What one poll brought.
#[derive(Debug, Clone, PartialEq)]
pub struct Polled {
    pub items: Vec<Json>,
    /// Where the next poll starts: a cursor value, or the next page's URL.
    pub next: Option<String>,
}

impl Engine {
    /// Polls trigger `index` from `position` (a stored cursor or next-page URL).
    pub async fn poll(&self, index: usize, position: Option<&str>) -> Result<Polled, String> {
        let plan = self.plan();
        let poll = plan.polls.get(index).ok_or("no such poll trigger")?;
        let connection = &self.connections[poll.connection];
        let request = self
            .poll_request(poll, position)
            .map_err(|e| self.secrets().redact(&e))?;
        let exchange = connection
            .send(&request, &crate::model::RetryPolicy::default(), true, None)
            .await;
        let response = exchange
            .result
            .map_err(|e| self.secrets().redact(&e.to_string()))?;
        let scope = Scope::of(&response.body, self.secrets());
        let found = match &poll.items {
            Some(items) => items
                .eval(&plan.templates, &scope)
                .map_err(|e| e.to_string())?,
            None => Some(response.body.clone()),
        };
        let items = match found {
            Some(Json::Array(items)) => items,
            Some(Json::Null) | None => Vec::new(),
            Some(one) => vec![one],
        };
        let next = match &poll.cursor {
            Some(PageStyle::Cursor { path, .. }) => path
                .eval(&plan.templates, &scope)
                .map_err(|e| e.to_string())?
                .filter(|v| crate::plan::truthy(Some(v)))
                .map(|v| as_text(Some(&v))),
            Some(PageStyle::LinkHeader) => link_next(&response),
            Some(PageStyle::NextLink(path)) => path
                .eval(&plan.templates, &scope)
                .map_err(|e| e.to_string())?
                .and_then(|v| v.as_str().filter(|s| !s.is_empty()).map(String::from)),
            _ => None,
        };
        Ok(Polled { items, next })
    }

    fn poll_request(&self, poll: &PollPlan, position: Option<&str>) -> Result<Request, String> {
        let plan = self.plan();
        let connection = &self.connections[poll.connection];
        let scope = Scope::fixed(self.secrets());
        let path = poll
            .path
            .eval(&plan.templates, &scope)
            .map_err(|e| e.to_string())?;
        let mut url =
            url::join(&connection.base, &as_text(path.as_ref())).map_err(|e| e.to_string())?;
        for (name, value) in &poll.query {
            if let Some(value) = value
                .eval(&plan.templates, &scope)
                .map_err(|e| e.to_string())?
            {
                url.query_pairs_mut()
                    .append_pair(name, &as_text(Some(&value)));
            }
        }
        match (&poll.cursor, position) {
            (Some(PageStyle::Cursor { param, .. }), Some(cursor)) => {
                set_param(&mut url, param, cursor)
            }
            (Some(PageStyle::LinkHeader | PageStyle::NextLink(_)), Some(link)) => {
                url = url::next_link(&connection.base, &url, link).map_err(|e| e.to_string())?;
            }
            _ => {}
        }
        let mut headers = Vec::new();
        for (name, value) in &poll.headers {
            if let Some(value) = value
                .eval(&plan.templates, &scope)
                .map_err(|e| e.to_string())?
            {
                headers.push((name.clone(), as_text(Some(&value))));
            }
        }
        Ok(Request {
            graphql: false,
            method: poll.method,
            url,
            headers,
            body: None,
            encoding: Encoding::Json,
            timeout: None,
        })
    }
}
