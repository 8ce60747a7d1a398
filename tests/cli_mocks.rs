//! `integ test` mocks that match on the query and the body and answer in turn, through the
//! built binary: what a user debugging a spec sees when a request finds no answer.

#![allow(clippy::unwrap_used)]

mod common;

use common::{integ, text, workdir};
use serde_json::Value as Json;

/// Runs `integ test --format json` on `spec` and returns the one test's record.
fn test_record(name: &str, spec: &str) -> Json {
    let dir = workdir(name);
    std::fs::write(dir.join("spec.integ"), spec).unwrap();
    let output = integ(&["test", "--format", "json", "spec.integ"], &dir, &[]);
    let stdout = text(&output.stdout);
    let record: Json = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("{e}: {stdout}{}", text(&output.stderr));
    });
    let code = if record["passed"] == true { 0 } else { 1 };
    assert_eq!(output.status.code(), Some(code), "{stdout}");
    record
}

fn failures(record: &Json) -> Vec<String> {
    record["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect()
}

/// A paged listing: pages asked for with `?after=CURSOR`.
fn paged(test: &str) -> String {
    format!(
        r#"integration listing {{
  connection api {{ base_url "https://api.example.com/v1" auth bearer secret("API_TOKEN") }}
  trigger manual
  step orders = api GET "/orders" {{
    items $.data[*]
    paginate cursor $.next into "after"
    max_pages 5
  }}
  {test}
}}
"#
    )
}

#[test]
fn a_page_mocked_by_its_query_answers_that_page_and_the_bare_path_the_first() {
    // The scar of `responses` #203: a mock without a query answered page 2 too, so the
    // listing never ended. The more specific mock answers the request it names.
    let record = test_record(
        "mocks-specific",
        &paged(
            r#"test "two pages" {
    event {}
    mock api GET "/orders" 200 { data: [{ id: 1 }], next: "c2" }
    mock api GET "/orders?after=c2" 200 { data: [{ id: 2 }] }
    expect api GET "/orders?after=c2" times 1
    expect api GET "/orders" times 2
    expect step orders succeeded
  }"#,
        ),
    );
    assert_eq!(record["passed"], true, "{record}");
}

#[test]
fn a_request_no_mock_matches_fails_the_test_naming_the_closest_mock_and_why() {
    let record = test_record(
        "mocks-unmatched",
        &paged(
            r#"test "the second page is mocked with the wrong cursor" {
    event {}
    mock api GET "/orders?limit=100" 200 { data: [] }
    mock api GET "/orders?after=c3" 200 { data: [{ id: 2 }] }
    mock api GET "/customers" 200 { data: [] }
    expect step orders dead_lettered
  }"#,
        ),
    );
    assert_eq!(record["passed"], false);
    let failures = failures(&record);
    assert!(
        failures.iter().any(|f| f
            == "no mock answers GET /v1/orders; the closest, mock api GET \"/orders?after=c3\", \
                does not match: it wants query after=c3, the request has none"),
        "{failures:#?}"
    );
}

#[test]
fn a_query_value_that_differs_is_shown_beside_the_one_the_mock_wants() {
    let record = test_record(
        "mocks-query-differs",
        r#"integration listing {
  connection api { base_url "https://api.example.com/v1" auth bearer secret("API_TOKEN") }
  trigger manual
  step orders = api GET "/orders" {
    items $.data[*]
    paginate page "page"
    max_pages 5
  }
  test "page 2 is not mocked" {
    event {}
    mock api GET "/orders?page=1" 200 { data: [{ id: 1 }] }
    mock api GET "/orders?page=3" 200 { data: [] }
    expect step orders dead_lettered
  }
}
"#,
    );
    let failures = failures(&record);
    assert_eq!(
        failures,
        [
            "no mock answers GET /v1/orders?page=2; the closest, mock api GET \"/orders?page=3\", \
             does not match: it wants query page=3, the request has page=2"
        ],
        "{record}"
    );
}

/// A POST retried on 5xx, three attempts.
fn retried(test: &str) -> String {
    format!(
        r#"integration notes {{
  connection api {{ base_url "https://api.example.com" auth bearer secret("API_TOKEN") }}
  trigger manual
  step note = api POST "/notes" {{
    idempotency_key "note-1"
    body {{ text = "hello" }}
    retry 3 constant 10ms on 429, 5xx
  }}
  {test}
}}
"#
    )
}

#[test]
fn answers_in_turn_make_a_retry_succeed_on_the_second_attempt() {
    let record = test_record(
        "mocks-sequence",
        &retried(
            r#"test "a 429, then a 201" {
    event {}
    mock api POST "/notes" where $.text == "hello" {
      answer 429 { error: "slow down" } headers { "Retry-After" = "0" }
      answer 201 { id: 7 }
    }
    expect api POST "/notes" times 2
    expect step note succeeded
  }"#,
        ),
    );
    assert_eq!(record["passed"], true, "{record}");
    let statuses = &record["runs"][0]["steps"][0]["requests"][0];
    assert_eq!(statuses["status"], 201, "{record}");
    assert_eq!(statuses["attempts"], 2, "{record}");
}

#[test]
fn a_request_after_the_last_answer_fails_the_test_however_the_step_ends() {
    let record = test_record(
        "mocks-used-up",
        &retried(
            r#"test "two failures, then a third attempt nobody mocked" {
    event {}
    mock api POST "/notes" {
      answer 503
      answer 503
    }
    expect step note dead_lettered
  }"#,
        ),
    );
    assert_eq!(record["passed"], false);
    let failures = failures(&record);
    assert_eq!(
        failures,
        [
            "POST /notes is request 3 to mock api POST \"/notes\", which has 2 answers: one more \
             than the test expects"
        ],
        "{record}"
    );
}

#[test]
fn two_mocks_equally_specific_for_one_request_fail_the_test_naming_both() {
    let record = test_record(
        "mocks-tied",
        r#"integration listing {
  connection api { base_url "https://api.example.com" auth bearer secret("API_TOKEN") }
  trigger manual
  step orders = api GET "/orders" { query { status = "open", limit = 10 } }
  test "two mocks match" {
    event {}
    mock api GET "/orders?status=open" 200 { data: [] }
    mock api GET "/orders?limit=10" 200 { data: [] }
    expect step orders dead_lettered
  }
}
"#,
    );
    let failures = failures(&record);
    assert_eq!(
        failures,
        [
            "GET /orders?status=open&limit=10 matches mock api GET \"/orders?status=open\" and \
             mock api GET \"/orders?limit=10\" equally: tell them apart with a query parameter \
             or `where`"
        ],
        "{record}"
    );
}

#[test]
fn a_body_condition_tells_two_posts_apart_and_a_false_one_is_explained() {
    let record = test_record(
        "mocks-where",
        &retried(
            r#"test "the body is not the one mocked" {
    event {}
    mock api POST "/notes" where $.text == "bye" 201 { id: 1 }
    expect step note dead_lettered
  }"#,
        ),
    );
    let failures = failures(&record);
    assert!(
        failures.contains(
            &"no mock answers POST /notes; the closest, mock api POST \"/notes\" where ..., does \
              not match: its `where` is false for the body {\"text\":\"hello\"}"
                .to_string()
        ),
        "{failures:#?}"
    );
}
