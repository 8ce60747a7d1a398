//! One poll of a poll trigger: the request from a stored position (and, for an
//! incremental poll, its mark), the items of the answer, the largest mark among them, and
//! the position of the next page.

use super::http::{Request, Response};
use super::run::{link_next, set_body_field, set_param};
use super::{Engine, url};
use crate::model::{Encoding, Mark};
use crate::plan::as_text;
use crate::plan::{BodyPlan, PageStyle, PollPlan, Scope};
use serde_json::Value as Json;

/// What one poll brought.
#[derive(Debug, Clone, PartialEq)]
pub struct Polled {
    pub items: Vec<Json>,
    /// Where the next poll starts: a cursor value, or the next page's URL.
    pub next: Option<String>,
    /// What the items say of an incremental poll's mark.
    pub marks: Marks,
}

/// The marks of a page's items: the largest, and the items that have none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Marks {
    pub high: Option<Mark>,
    /// Items whose mark is missing or not of its type (they are still delivered), and the
    /// first reason.
    pub unread: Option<(usize, String)>,
}

impl Engine {
    /// Polls trigger `index` from `position` (a stored cursor or next-page URL); an
    /// incremental poll asks for what changed since `mark` less its look-back.
    pub async fn poll(
        &self,
        index: usize,
        position: Option<&str>,
        mark: Option<Mark>,
    ) -> Result<Polled, String> {
        let plan = self.plan();
        let poll = plan.polls.get(index).ok_or("no such poll trigger")?;
        let connection = &self.connections[poll.connection];
        let since = match (&poll.since, mark) {
            (Some(since), Some(mark)) => Some(
                mark.minus(since.lookback.as_ref())
                    .map(|from| since.send.render(from))
                    .map_err(|e| {
                        format!("cannot look back from the mark {}: {e}", mark.stored())
                    })?,
            ),
            _ => None,
        };
        let request = self
            .poll_request(poll, position, since.as_ref())
            .map_err(|e| self.secrets().redact(&e))?;
        let fixed = Scope::fixed(self.secrets());
        let judge = |response: &Response| {
            super::rules::judge(&poll.rules, &plan.templates, &fixed, response)
        };
        // A poll without rules is judged by its statuses alone, at no cost.
        let judge = (!poll.rules.is_empty()).then_some(&judge as &super::http::Judge<'_>);
        let exchange = connection
            .send(&request, &crate::model::RetryPolicy::default(), true, judge)
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
            Some(PageStyle::BodyCursor { path, .. }) => path
                .eval(&plan.templates, &scope)
                .map_err(|e| e.to_string())?
                .filter(|v| crate::plan::truthy(Some(v)))
                .map(|v| as_text(Some(&v))),
            _ => None,
        };
        let marks = self.marks(poll, &items);
        Ok(Polled { items, next, marks })
    }

    /// The mark of an incremental poll's first round: its `start`, if any.
    pub fn start_mark(&self, index: usize) -> Result<Option<Mark>, String> {
        let plan = self.plan();
        let poll = plan.polls.get(index).ok_or("no such poll trigger")?;
        let Some(since) = &poll.since else {
            return Ok(None);
        };
        let Some(start) = &since.start else {
            return Ok(None);
        };
        let scope = Scope::fixed(self.secrets());
        match start.eval(&plan.templates, &scope) {
            Ok(Some(value)) => since
                .kind
                .read(&value)
                .map(Some)
                .map_err(|e| format!("`start` is not a mark: {e}")),
            Ok(None) => Ok(None),
            Err(e) => Err(self.secrets().redact(&format!("`start` failed: {e}"))),
        }
    }

    /// The largest mark among `items`, and those without one (missing, or not of its type).
    fn marks(&self, poll: &PollPlan, items: &[Json]) -> Marks {
        let mut marks = Marks::default();
        let Some(since) = &poll.since else {
            return marks;
        };
        for item in items {
            let scope = Scope::of(item, self.secrets());
            let read = match since.path.eval(&self.plan().templates, &scope) {
                Ok(Some(value)) => since.kind.read(&value).map_err(|e| e.to_string()),
                Ok(None) => Err("the item has no mark".to_string()),
                Err(e) => Err(e.to_string()),
            };
            match read {
                Ok(mark) => marks.high = marks.high.max(Some(mark)),
                Err(reason) => match &mut marks.unread {
                    Some((count, _)) => *count += 1,
                    None => marks.unread = Some((1, self.secrets().redact(&reason))),
                },
            }
        }
        marks
    }

    fn poll_request(
        &self,
        poll: &PollPlan,
        position: Option<&str>,
        since: Option<&Json>,
    ) -> Result<Request, String> {
        let plan = self.plan();
        let connection = &self.connections[poll.connection];
        let scope = Scope {
            since,
            ..Scope::fixed(self.secrets())
        };
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
        let mut body = match &poll.body {
            None => None,
            Some(BodyPlan::Raw(value)) => value
                .eval(&plan.templates, &scope)
                .map_err(|e| e.to_string())?,
            Some(BodyPlan::Mapping(targets)) => Some(
                super::run::mapping(targets, &plan.templates, &scope).map_err(|e| e.to_string())?,
            ),
        };
        match (&poll.cursor, position) {
            (Some(PageStyle::Cursor { param, .. }), Some(cursor)) => {
                set_param(&mut url, param, cursor)
            }
            (Some(PageStyle::BodyCursor { field, .. }), Some(cursor)) => {
                set_body_field(&mut body, field, Json::String(cursor.to_string()));
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
            body,
            encoding: Encoding::Json,
            timeout: None,
        })
    }
}
