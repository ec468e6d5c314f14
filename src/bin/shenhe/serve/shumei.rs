//! `POST /compat/shumei/text/v4`: the request and response shapes of Shumei's text API
//! (数美 智能文本识别 v4), so a forum plugin written for it can call shenhe by changing
//! its URL. The post goes through the same pipeline as `/v1/moderate` (recorded,
//! escalated, reported); only the shapes differ.
//!
//! Shumei always answers HTTP 200 and puts the outcome in `code`: 1100 success, 1901 over
//! the rate, 1902 bad parameters, 1903 service failure, 9101 not allowed. Whatever the
//! code, `riskLevel` is never `PASS` unless the post was decided and recorded as `allow`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;
use serde_json::{json, Value};
use shenhe::{Action, Decision};

use super::auth::{Refusal, Role};
use super::observe::{count_decision, Outcome, RequestId};
use super::{routes, App};

#[derive(Deserialize)]
struct Request {
    #[serde(rename = "accessKey")]
    access_key: Option<String>,
    #[serde(rename = "eventId")]
    event_id: Option<String>,
    data: Option<Data>,
}

#[derive(Deserialize)]
struct Data {
    text: Option<String>,
    #[serde(rename = "tokenId")]
    token_id: Option<String>,
    ip: Option<String>,
    nickname: Option<String>,
    #[serde(rename = "dataId")]
    data_id: Option<String>,
}

/// Shumei's first-level label for a rule: by the family its id starts with, else by the
/// category (Article 15 items 1–4 are political, 8 is insult, the rest prohibited).
pub fn label1(rule: &str, category: u16) -> &'static str {
    match family(rule) {
        "porn" | "sex" | "obscenity" => "porn",
        "gambling" | "drugs" | "weapons" => "ban",
        "violence" | "terror" => "violence",
        "insult" | "defamation" | "abuse" => "abuse",
        "fraud" => "fraud",
        "spam" | "ad" | "contact" => "ad",
        "privacy" | "pii" => "privacy",
        _ => match category {
            1..=4 => "politics",
            8 => "abuse",
            _ => "ban",
        },
    }
}

/// A rule's family: its id before the first dot (`gambling` for `gambling.casino`).
fn family(rule: &str) -> &str {
    rule.split('.').next().unwrap_or(rule)
}

fn label1_zh(label: &str) -> &'static str {
    match label {
        "politics" => "涉政",
        "violence" => "暴恐",
        "porn" => "色情",
        "abuse" => "辱骂",
        "ad" => "广告",
        "privacy" => "隐私",
        "fraud" => "网络诈骗",
        _ => "违禁",
    }
}

/// Our action as Shumei's risk level: anything that keeps the post from appearing as
/// written (mask included: a plugin may not publish `filteredText`) is at least REVIEW.
fn level(action: Action) -> &'static str {
    match action {
        Action::Allow => "PASS",
        Action::Mask | Action::Review => "REVIEW",
        _ => "REJECT",
    }
}

fn failure(request_id: &str, code: u32, message: &str, detail: String) -> Response {
    let body = json!({
        "code": code,
        "message": message,
        "requestId": request_id,
        "riskLevel": "REVIEW",
        "detail": detail,
    });
    let mut res = axum::Json(body).into_response();
    res.extensions_mut()
        .insert(Outcome(format!("code {code}").into()));
    res
}

/// The compat route.
pub async fn text_v4(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(r) => return failure(&request_id, 1902, "参数不合法", r.body_text()),
    };
    let req: Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return failure(&request_id, 1902, "参数不合法", format!("not JSON: {e}")),
    };
    let caller = match app.credentials.load().keys.admit(
        req.access_key.as_deref(),
        Role::Moderate,
        Some(peer.ip()),
    ) {
        Ok(c) => c,
        Err(Refusal::TooMany(_)) => return failure(&request_id, 1901, "QPS超限", String::new()),
        Err(r) => {
            let why = match r {
                Refusal::Forbidden(_) => "this key does not have the moderate role",
                Refusal::Expired => "this key has expired",
                Refusal::NotFromHere => "this key may not be used from this address",
                _ => "accessKey is not a key this service knows",
            };
            return failure(&request_id, 9101, "无权限操作", why.into());
        }
    };
    let Some(data) = req.data else {
        return failure(&request_id, 1902, "参数不合法", "data is missing".into());
    };
    let Some(text) = data.text else {
        return failure(
            &request_id,
            1902,
            "参数不合法",
            "data.text is missing".into(),
        );
    };
    let mut poster = serde_json::Map::new();
    for (k, v) in [
        ("user_id", data.token_id),
        ("ip", data.ip),
        ("name", data.nickname),
    ] {
        if let Some(v) = v {
            poster.insert(k.into(), Value::String(v));
        }
    }
    let mut post = serde_json::Map::new();
    post.insert(
        "id".into(),
        Value::String(data.data_id.unwrap_or_else(|| request_id.clone())),
    );
    post.insert("text".into(), Value::String(text));
    if let Some(board) = req.event_id {
        post.insert("board".into(), Value::String(board));
    }
    if !poster.is_empty() {
        post.insert("poster".into(), Value::Object(poster));
    }
    let json = serde_json::to_vec(&Value::Object(post)).expect("JSON serialises");
    let mut res = match routes::decide(&app, json.into(), &caller).await {
        Ok(Ok(d)) => {
            count_decision(&d);
            let mut res = axum::Json(answer(&request_id, &d)).into_response();
            res.extensions_mut()
                .insert(Outcome(d.action.as_str().into()));
            res
        }
        Ok(Err(e)) if e.kind == shenhe::ErrorKind::TooLarge => {
            failure(&request_id, 1902, "参数不合法", e.message)
        }
        Ok(Err(e)) => failure(&request_id, 1903, "服务失败", e.message),
        Err(_) => failure(&request_id, 1903, "服务失败", "internal error".into()),
    };
    res.extensions_mut().insert(caller);
    res
}

/// A decision in Shumei's response shape. Positions are character offsets `[start, end)`
/// into `data.text`.
fn answer(request_id: &str, d: &Decision) -> Value {
    if d.action == Action::Allow || d.hits.is_empty() {
        return json!({
            "code": 1100,
            "message": "成功",
            "requestId": request_id,
            "riskLevel": "PASS",
            "riskLabel1": "normal",
            "riskLabel2": "",
            "riskLabel3": "",
            "riskDescription": "正常",
            "riskDetail": {},
            "tokenLabels": {},
            "auxInfo": {},
            "allLabels": [],
            "businessLabels": [],
        });
    }
    let mut by_rule: BTreeMap<&str, Vec<&shenhe::Hit>> = BTreeMap::new();
    for h in &d.hits {
        by_rule.entry(&*h.rule).or_default().push(h);
    }
    let words = |hits: &[&shenhe::Hit]| -> Vec<Value> {
        hits.iter()
            .filter(|h| h.field == shenhe::Field::Text)
            .map(|h| json!({ "word": h.matched, "position": [h.char_start, h.char_end] }))
            .collect()
    };
    // The first hit of the highest severity names the post's labels.
    let top = d
        .hits
        .iter()
        .max_by_key(|h| (h.severity, std::cmp::Reverse(h.start)))
        .expect("hits");
    let all: Vec<Value> = by_rule
        .iter()
        .map(|(rule, hits)| {
            let l1 = label1(rule, hits[0].category);
            json!({
                "riskLabel1": l1,
                "riskLabel2": family(rule),
                "riskLabel3": rule,
                "riskDescription": format!("{}:{rule}", label1_zh(l1)),
                "probability": 1,
                "riskDetail": { "matchedLists": [{ "name": rule, "words": words(hits) }] },
                "riskLevel": level(d.action),
            })
        })
        .collect();
    let l1 = label1(&top.rule, top.category);
    let matched: Vec<Value> = by_rule
        .iter()
        .map(|(rule, hits)| json!({ "name": rule, "words": words(hits) }))
        .collect();
    let mut aux = serde_json::Map::new();
    if let Some(m) = &d.masked {
        aux.insert("filteredText".into(), Value::String(m.clone()));
    }
    json!({
        "code": 1100,
        "message": "成功",
        "requestId": request_id,
        "riskLevel": level(d.action),
        "riskLabel1": l1,
        "riskLabel2": family(&top.rule),
        "riskLabel3": top.rule,
        "riskDescription": format!("{}:{}", label1_zh(l1), top.rule),
        "riskDetail": { "matchedLists": matched },
        "tokenLabels": {},
        "auxInfo": aux,
        "allLabels": all,
        "businessLabels": [],
    })
}
