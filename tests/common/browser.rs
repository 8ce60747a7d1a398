//! A headless Chromium driven over WebDriver (chromedriver, the W3C protocol over HTTP),
//! for the tests that must click through real pages. The few calls they need are plain
//! JSON requests; a WebDriver crate would add a large dependency tree to the test build
//! for five endpoints.

use serde_json::{Value as Json, json};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The key of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A browser session. `quit` ends it; dropped without that (a test that panicked), the
/// driver's whole process group is killed, so no Chromium outlives the test.
pub struct Browser {
    driver: Child,
    session: String,
    base: String,
    http: reqwest::Client,
}

/// The programs, or why the test cannot run here.
fn programs() -> Result<(String, String), String> {
    let find = |names: &[&str]| {
        names.iter().find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join(name))
                    .find(|path| path.is_file())
            })
        })
    };
    let driver = find(&["chromedriver"]).ok_or("no chromedriver on PATH")?;
    let browser =
        find(&["chromium", "chromium-browser", "google-chrome"]).ok_or("no chromium on PATH")?;
    Ok((driver.display().to_string(), browser.display().to_string()))
}

impl Browser {
    /// A headless browser, or why there is none here (the caller skips, saying so).
    pub async fn start() -> Result<Browser, String> {
        let (driver, binary) = programs()?;
        let port = super::free_port();
        // Its own process group: the browsers it starts join it, and one signal ends them all.
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {driver}: {e}"))?;
        let mut browser = Browser {
            driver: child,
            session: String::new(),
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let mut ready = false;
        for _ in 0..200 {
            let status = browser
                .http
                .get(format!("{}/status", browser.base))
                .send()
                .await;
            if let Ok(status) = status {
                let answer: Json = status.json().await.unwrap_or_default();
                if answer["value"]["ready"] == true {
                    ready = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !ready {
            return Err("chromedriver did not become ready in 20 s".into());
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": binary,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
            }
        }}});
        let answer = browser.call("POST", "/session", capabilities).await?;
        browser.session = answer["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no browser session: {answer}"))?
            .to_string();
        Ok(browser)
    }

    async fn call(&self, method: &str, path: &str, body: Json) -> Result<Json, String> {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let answer: Json = request
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        match answer["value"].get("error") {
            Some(error) => Err(format!("{error}: {}", answer["value"]["message"])),
            None => Ok(answer["value"].clone()),
        }
    }

    fn path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    pub async fn open(&self, url: &str) {
        self.call("POST", &self.path("/url"), json!({ "url": url }))
            .await
            .unwrap();
    }

    pub async fn url(&self) -> String {
        let url = self
            .call("GET", &self.path("/url"), Json::Null)
            .await
            .unwrap();
        url.as_str().unwrap_or_default().to_string()
    }

    /// The element `css` selects, if the page has one.
    pub async fn find(&self, css: &str) -> Option<String> {
        let body = json!({ "using": "css selector", "value": css });
        let found = match self.call("POST", &self.path("/element"), body).await {
            Ok(found) => found,
            Err(error) => {
                eprintln!("{css}: {error}");
                return None;
            }
        };
        found[ELEMENT].as_str().map(String::from)
    }

    pub async fn click(&self, css: &str) {
        let element = self
            .find(css)
            .await
            .unwrap_or_else(|| panic!("no {css} on the page"));
        self.call(
            "POST",
            &self.path(&format!("/element/{element}/click")),
            json!({}),
        )
        .await
        .unwrap();
    }

    pub async fn text(&self, css: &str) -> String {
        let element = self
            .find(css)
            .await
            .unwrap_or_else(|| panic!("no {css} on the page"));
        let text = self
            .call(
                "GET",
                &self.path(&format!("/element/{element}/text")),
                Json::Null,
            )
            .await
            .unwrap();
        text.as_str().unwrap_or_default().to_string()
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self
            .find(css)
            .await
            .unwrap_or_else(|| panic!("no {css} on the page"));
        let body = json!({ "text": text });
        self.call(
            "POST",
            &self.path(&format!("/element/{element}/value")),
            body,
        )
        .await
        .unwrap();
    }

    /// The whole page's source.
    pub async fn source(&self) -> String {
        let source = self
            .call("GET", &self.path("/source"), Json::Null)
            .await
            .unwrap();
        source.as_str().unwrap_or_default().to_string()
    }
}

impl Browser {
    /// Ends the session: the driver closes its browser.
    pub async fn quit(self) {
        if !self.session.is_empty()
            && let Err(error) = self.call("DELETE", &self.path(""), Json::Null).await
        {
            eprintln!("cannot end the browser session: {error}");
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The group's id is the driver's pid (`process_group(0)`); killing the group takes
        // down a browser the driver left behind as well.
        let group = format!("-{}", self.driver.id());
        let killed = Command::new("kill").args(["-KILL", "--", &group]).status();
        if !killed.is_ok_and(|status| status.success()) {
            let _ = self.driver.kill();
        }
        let _ = self.driver.wait();
    }
}
