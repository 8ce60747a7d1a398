//! Responses of cached steps, per connection, by method, URL and request headers, for the
//! step's TTL. Memory is bounded: least recently used entries go first, by count and by
//! bytes.

use super::http::Response;
use lru::LruCache;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MAX_ENTRIES: usize = 1024;
const MAX_BYTES: usize = 32 * 1024 * 1024;

#[derive(Debug)]
pub struct Cache {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    entries: LruCache<String, Entry>,
    bytes: usize,
}

#[derive(Debug)]
struct Entry {
    expires: Instant,
    response: Response,
    size: usize,
}

impl Default for Cache {
    fn default() -> Self {
        let capacity = NonZeroUsize::new(MAX_ENTRIES).unwrap_or(NonZeroUsize::MIN);
        Self {
            state: Mutex::new(State {
                entries: LruCache::new(capacity),
                bytes: 0,
            }),
        }
    }
}

impl Cache {
    /// The fresh response stored under `key`, if any.
    pub fn get(&self, key: &str) -> Option<Response> {
        let mut state = self.state.lock().ok()?;
        let fresh = state
            .entries
            .get(key)
            .map(|entry| entry.expires > Instant::now())?;
        if fresh {
            return state.entries.get(key).map(|entry| entry.response.clone());
        }
        if let Some(stale) = state.entries.pop(key) {
            state.bytes -= stale.size;
        }
        None
    }

    /// Stores `response` for `ttl`; one larger than a quarter of the byte budget is not kept.
    pub fn put(&self, key: String, response: &Response, ttl: Duration) {
        let size = key.len() + response.body.to_string().len();
        if size > MAX_BYTES / 4 {
            return;
        }
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let entry = Entry {
            expires: Instant::now() + ttl,
            response: response.clone(),
            size,
        };
        if let Some((_, replaced)) = state.entries.push(key, entry) {
            state.bytes -= replaced.size;
        }
        state.bytes += size;
        while state.bytes > MAX_BYTES {
            match state.entries.pop_lru() {
                Some((_, evicted)) => state.bytes -= evicted.size,
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn response(n: u32) -> Response {
        Response {
            status: 200,
            headers: Default::default(),
            body: json!({ "n": n }),
            empty: false,
        }
    }

    #[test]
    fn entries_expire_after_their_ttl() {
        let cache = Cache::default();
        cache.put("a".into(), &response(1), Duration::from_millis(30));
        assert_eq!(cache.get("a").map(|r| r.body), Some(json!({"n": 1})));
        std::thread::sleep(Duration::from_millis(40));
        assert!(cache.get("a").is_none());
        assert_eq!(cache.state.lock().map(|s| s.bytes).unwrap_or(1), 0);
    }

    #[test]
    fn the_least_recently_used_entry_goes_first() {
        let cache = Cache::default();
        for n in 0..=MAX_ENTRIES as u32 {
            cache.put(format!("k{n}"), &response(n), Duration::from_secs(60));
        }
        assert!(cache.get("k0").is_none(), "the oldest was evicted");
        assert!(cache.get(&format!("k{MAX_ENTRIES}")).is_some());
    }
}
