//! The w2h job of the shared load harness (`../shared/bench`): the contact a webhook
//! carries, the prospect it must become, and the check the sink applies. Every field of a
//! contact derives from its `objectId`, so the sink checks each prospect exactly; `sentAt`
//! (ms since the epoch, µs as a fraction) times each event end to end.

use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use std::time::{SystemTime, UNIX_EPOCH};

/// integ's spec for the job (the harness's `integ/w2h.integ`, signature declared `none`).
pub const SPEC: &str = include_str!("w2h.integ");

/// Milliseconds since the epoch, with µs as a fraction.
pub fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// A HubSpot-like `contact.creation` event (~1 KB), as the harness's `load/contact.lua`
/// writes it: `lastname` is absent when `id % 10 == 0`, to exercise the mapping's default.
pub fn contact(id: u64) -> Vec<u8> {
    let sent = now_ms();
    let last = if id.is_multiple_of(10) {
        String::new()
    } else {
        format!(r#""lastname":"Last{id}","#)
    };
    let filler = "x".repeat(420);
    format!(
        r#"{{"objectId":{id},"subscriptionType":"contact.creation","portalId":4821733,"appId":1160452,"occurredAt":{sent:.0},"attemptNumber":0,"changeSource":"CRM_UI","properties":{{"email":"user{id}@example.com","firstname":"First{id}",{last}"company":"Acme Corp {company}","phone":"+1 555 {phone:07}","lifecyclestage":"lead","hs_lead_status":"NEW","jobtitle":"Operations Manager","city":"Springfield","country":"United States","website":"https://example.com","hs_object_source":"INTEGRATION","notes":"{filler}"}},"sentAt":{sent:.3}}}"#,
        company = id % 97,
        phone = id % 10_000_000,
    )
    .into_bytes()
}

#[derive(Deserialize)]
struct Contact {
    #[serde(rename = "objectId")]
    object_id: u64,
    #[serde(rename = "sentAt")]
    sent_at: f64,
    properties: Properties,
}

#[derive(Deserialize)]
struct Properties {
    email: String,
    firstname: Option<String>,
    lastname: Option<String>,
    company: Option<String>,
}

#[derive(Serialize)]
struct Prospect<'a> {
    data: ProspectData<'a>,
}

#[derive(Serialize)]
struct ProspectData<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    attributes: Attributes<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Attributes<'a> {
    emails: [&'a str; 1],
    first_name: Option<&'a str>,
    last_name: &'a str,
    company: String,
    tags: [&'static str; 1],
    custom1: u64,
    custom2: f64,
}

/// The job written by hand, as the harness's bare forwarder does it (typed serde): the
/// prospect's body for a contact's body.
pub fn prospect(contact: &[u8]) -> Result<Vec<u8>, serde_json::Error> {
    let c: Contact = serde_json::from_slice(contact)?;
    let p = &c.properties;
    serde_json::to_vec(&Prospect {
        data: ProspectData {
            kind: "prospect",
            attributes: Attributes {
                emails: [p.email.as_str()],
                first_name: p.firstname.as_deref(),
                last_name: p.lastname.as_deref().unwrap_or("Unknown"),
                company: p.company.as_deref().unwrap_or("").to_uppercase(),
                tags: ["hubspot"],
                custom1: c.object_id,
                custom2: c.sent_at,
            },
        },
    })
}

/// Checks a prospect against what the mapping must make of contact `custom1`, and returns
/// the contact's `sentAt` (custom2).
pub fn check(body: &Json) -> Result<f64, String> {
    let data = body.get("data").ok_or("missing data")?;
    if data.get("type") != Some(&json!("prospect")) {
        return Err(format!("data.type is {:?}", data.get("type")));
    }
    let a = data.get("attributes").ok_or("missing data.attributes")?;
    let id = a
        .get("custom1")
        .and_then(Json::as_u64)
        .ok_or_else(|| format!("custom1 is not an integer: {:?}", a.get("custom1")))?;
    let sent_at = a
        .get("custom2")
        .and_then(Json::as_f64)
        .ok_or_else(|| format!("custom2 (sentAt) is not a number: {:?}", a.get("custom2")))?;
    let last = if id.is_multiple_of(10) {
        "Unknown".to_string()
    } else {
        format!("Last{id}")
    };
    let expected = [
        ("emails", json!([format!("user{id}@example.com")])),
        ("firstName", json!(format!("First{id}"))),
        ("lastName", json!(last)),
        ("company", json!(format!("ACME CORP {}", id % 97))),
        ("tags", json!(["hubspot"])),
    ];
    for (field, want) in expected {
        if a.get(field) != Some(&want) {
            return Err(format!(
                "custom1={id}: {field} is {:?}, want {want}",
                a.get(field)
            ));
        }
    }
    Ok(sent_at)
}
