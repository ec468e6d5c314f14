//! The review queue, driven as reviewers and the forum drive it: `shenhe serve` on a loopback
//! port, a listener standing in for the forum's callback endpoint, and `shenhe review
//! export` run by `shenhe test`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use common::server::Server;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};

const SECRET: &str = "a-shared-secret-of-the-forum";

/// A forum's callback endpoint on `listener`: every request's signature header and body
/// come out of the channel; each is answered 200.
fn forum(listener: TcpListener) -> mpsc::Receiver<(String, Vec<u8>)> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let (mut line, mut signature, mut length) = (String::new(), String::new(), 0);
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                let l = line.to_ascii_lowercase();
                if let Some(v) = l.strip_prefix("x-shenhe-signature:") {
                    signature = v.trim().to_owned();
                }
                if let Some(v) = l.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            r.read_exact(&mut body).unwrap();
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
            if tx.send((signature, body)).is_err() {
                return;
            }
        }
    });
    rx
}

fn signed(body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn review_config(port: u16) -> String {
    format!(
        "\n[review]\ncallback_url = \"http://127.0.0.1:{port}/shenhe/verdict\"\ncallback_secret = \"{SECRET}\"\n"
    )
}

/// Moderates a post that the bundled rules hold for review; its review id. Each post has a
/// poster and address of its own (three offences of one would be escalated past review).
fn held(s: &Server, id: &str, text: &str) -> i64 {
    let n = id.bytes().map(u32::from).sum::<u32>() % 250;
    let post = json!({"id": id, "text": text, "board": "chat",
                      "poster": {"user_id": format!("u-{id}"), "ip": format!("203.0.113.{n}"), "port": 51234}});
    let r = s.moderate(&post.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let d = r.json();
    assert_eq!(d["action"], "review", "{d}");
    d["review_id"]
        .as_i64()
        .expect("a held post's decision carries its review_id")
}

#[test]
fn held_posts_reach_reviewers_once_and_the_forum_hears_the_verdict_signed() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let calls = forum(listener);
    let s = Server::start_with(tempfile::tempdir().unwrap(), "", &review_config(port));
    let id = held(&s, "t1", "紧急扩散！明天全城停水");
    assert_eq!(
        held(&s, "t1", "紧急扩散！明天全城停水"),
        id,
        "the same post: the same item"
    );
    let other = held(&s, "t2", "开光转运符，包你发财");
    let allowed = s
        .moderate(r#"{"id":"t3","text":"周末一起去爬山吗"}"#)
        .json();
    assert!(allowed.get("review_id").is_none());

    // Roles: the queue is for reviewers.
    assert_eq!(s.call("GET", "/v1/reviews", None, b"").status, 401);
    assert_eq!(
        s.call("GET", "/v1/reviews", Some(&s.moderate), b"").status,
        403
    );
    let list = |key: &str, query: &str| {
        let r = s.call("GET", &format!("/v1/reviews{query}"), Some(key), b"");
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["items"].as_array().unwrap().clone()
    };
    let pending = list(&s.reviewer, "?status=pending");
    let ids: Vec<i64> = pending.iter().map(|i| i["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [id, other]);
    assert_eq!(pending[0]["post"]["text"], "紧急扩散！明天全城停水");
    assert_eq!(
        pending[0]["decision"]["hits"][0]["rule"],
        "rumour.chain-message"
    );
    // Personal fields only for the audit role.
    assert_eq!(pending[0]["post"]["poster"], json!({"user_id": "u-t1"}));
    let audited = list(&s.auditor, "?status=pending");
    assert!(audited[0]["post"]["poster"]["ip"]
        .as_str()
        .unwrap()
        .starts_with("203.0.113."));
    assert_eq!(list(&s.reviewer, "?category=5").len(), 1);
    assert_eq!(list(&s.reviewer, "?board=news").len(), 0);
    assert_eq!(
        s.call("GET", "/v1/reviews?status=maybe", Some(&s.reviewer), b"")
            .status,
        400
    );

    // Claim, then one verdict; a second is refused.
    let claim = s.call(
        "POST",
        &format!("/v1/reviews/{id}/claim"),
        Some(&s.reviewer),
        b"",
    );
    assert_eq!(claim.status, 200, "{}", claim.text());
    assert_eq!(
        (
            claim.json()["status"].clone(),
            claim.json()["claimed_by"].clone()
        ),
        (json!("claimed"), json!("alice"))
    );
    let verdict = |key: &str, review: i64, body: &str| {
        s.call(
            "POST",
            &format!("/v1/reviews/{review}/verdict"),
            Some(key),
            body.as_bytes(),
        )
    };
    let bad = verdict(&s.reviewer, id, r#"{"verdict":"maybe"}"#);
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert_eq!(
        verdict(&s.reviewer, 999, r#"{"verdict":"remove"}"#).status,
        404
    );
    assert_eq!(
        verdict(&s.moderate, id, r#"{"verdict":"remove"}"#).status,
        403
    );
    let given = verdict(&s.reviewer, id, r#"{"verdict":"remove","note":"谣言"}"#);
    assert_eq!(given.status, 200, "{}", given.text());
    assert_eq!(given.json()["verdict"], "remove");
    let twice = verdict(&s.auditor, id, r#"{"verdict":"approve"}"#);
    assert_eq!(twice.status, 409, "{}", twice.text());
    assert!(twice.text().contains("remove by alice"), "{}", twice.text());
    assert_eq!(list(&s.reviewer, "?status=pending").len(), 1);
    assert_eq!(list(&s.reviewer, "?status=decided").len(), 1);

    // The forum hears it once, signed with the shared secret.
    let (signature, body) = calls.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(signature, signed(&body));
    let told: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (
            &told["post_id"],
            &told["review_id"],
            &told["verdict"],
            &told["reviewer"],
            &told["note"]
        ),
        (
            &json!("t1"),
            &json!(id),
            &json!("remove"),
            &json!("alice"),
            &json!("谣言")
        )
    );
    assert!(calls.recv_timeout(Duration::from_millis(500)).is_err());

    // The verdict is in the audit chain, naming the reviewer; the store verifies.
    let records = s.records();
    let verdicts: Vec<_> = records.iter().filter(|r| r.event.is_some()).collect();
    assert_eq!(verdicts.len(), 1);
    let v = verdicts[0];
    assert_eq!(v.caller.as_deref(), Some("alice"));
    assert_eq!(v.post_id_text(), "t1");
    assert_eq!((v.action.as_str(), v.report), ("delete", false));
    let event = v.event.as_ref().unwrap();
    assert_eq!(
        (
            &event["kind"],
            &event["verdict"],
            &event["note"],
            &event["review_id"]
        ),
        (
            &json!("verdict"),
            &json!("remove"),
            &json!("谣言"),
            &json!(id)
        )
    );
}

#[test]
fn a_callback_the_forum_missed_survives_kill_9_and_arrives_after_restart() {
    // Nothing listens on the forum's port at first.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut s = Server::start_with(tempfile::tempdir().unwrap(), "", &review_config(port));
    let id = held(&s, "k1", "开光转运符，包你发财");
    let r = s.call(
        "POST",
        &format!("/v1/reviews/{id}/verdict"),
        Some(&s.reviewer),
        br#"{"verdict":"approve"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    std::thread::sleep(Duration::from_millis(300));
    s.signal("-9");
    s.wait();
    let dir = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
    drop(s);
    // The forum is back, and so is shenhe: the callback comes.
    let calls = forum(TcpListener::bind(("127.0.0.1", port)).unwrap());
    let s = Server::start_with(dir, "", &review_config(port));
    let (signature, body) = calls.recv_timeout(Duration::from_secs(40)).unwrap();
    assert_eq!(signature, signed(&body));
    let told: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (&told["review_id"], &told["verdict"]),
        (&json!(id), &json!("approve"))
    );
    // And the item stays decided across the restart.
    let again = s.call(
        "POST",
        &format!("/v1/reviews/{id}/verdict"),
        Some(&s.reviewer),
        br#"{"verdict":"remove"}"#,
    );
    assert_eq!(again.status, 409);
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let p = entry.unwrap().path();
        let target = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_tree(&p, &target);
        } else {
            std::fs::copy(&p, target).unwrap();
        }
    }
}

#[test]
fn verdicts_become_tests_that_shenhe_test_runs_beside_the_rules() {
    let s = Server::start("");
    let removed = held(&s, "e1", "紧急扩散！明天全城停水");
    let approved = held(&s, "e2", "开光转运符是什么？民俗课的作业");
    for (id, verdict) in [(removed, "remove"), (approved, "approve")] {
        let r = s.call(
            "POST",
            &format!("/v1/reviews/{id}/verdict"),
            Some(&s.reviewer),
            format!(r#"{{"verdict":"{verdict}"}}"#).as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // The rules beside the exported tests.
    let work = tempfile::tempdir().unwrap();
    let rules = work.path().join("rules");
    copy_tree(&common::manifest().join("rules"), &rules);
    let out_file = rules.join("reviews.test.toml");
    let out = common::run(
        &[
            "review",
            "export",
            "--db",
            s.db().to_str().unwrap(),
            "--key-file",
            s.dir.path().join("audit.key").to_str().unwrap(),
            "--format",
            "test-toml",
            "-o",
            out_file.to_str().unwrap(),
        ],
        b"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exported = std::fs::read_to_string(&out_file).unwrap();
    assert!(
        exported.contains("rules = [\"rumour.chain-message\"]"),
        "{exported}"
    );
    assert!(
        !exported.contains("203.0.113.7"),
        "no personal data: {exported}"
    );
    let test = common::run(&["test", "--rules", rules.to_str().unwrap()], b"");
    let said =
        String::from_utf8_lossy(&test.stdout).to_string() + &String::from_utf8_lossy(&test.stderr);
    // The removed post still hits its rule (passes); the approved one is a false positive
    // the rules must be fixed for: its test fails, naming it.
    assert_eq!(test.status.code(), Some(1), "{said}");
    let fails: Vec<&str> = said.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert_eq!(fails.len(), 1, "{said}");
    assert!(
        fails[0].contains("reviews.test.toml") && fails[0].contains("民俗课"),
        "{said}"
    );
}

/// One request with extra header lines and a form body; the reply.
fn form_call(
    s: &Server,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> common::server::Reply {
    use std::net::TcpStream;
    let mut c = TcpStream::connect(s.addr).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{headers}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        s.addr,
        body.len()
    );
    c.write_all(head.as_bytes()).unwrap();
    c.write_all(body.as_bytes()).unwrap();
    common::server::read_reply(c)
}

#[test]
fn the_console_shows_personal_fields_only_to_auditors_and_refuses_forged_forms() {
    let s = Server::start("");
    let id = held(&s, "w1", "紧急扩散！明天全城停水");
    let page = |key: &str, path: &str| s.call("GET", path, Some(key), b"");
    // Nobody: to the login page. A moderate key is not a reviewer.
    let anon = s.call("GET", "/console", None, b"");
    assert_eq!(anon.status, 303);
    assert_eq!(anon.header("location"), Some("/console/login"));
    assert_eq!(page(&s.moderate, "/console").status, 303);
    // A review key sees the post, not the address; an audit key sees both.
    let item = format!("/console/reviews/{id}");
    let seen = page(&s.reviewer, &item);
    assert_eq!(seen.status, 200);
    assert!(seen
        .text()
        .contains("<mark title=\"rumour.chain-message\">紧急扩散</mark>"));
    assert!(
        !seen.text().contains("203.0.113."),
        "no IP for the review role"
    );
    assert!(page(&s.auditor, &item).text().contains("IP 203.0.113."));
    // A login by key opens a session; its forms need the session's token.
    let login = form_call(
        &s,
        "POST",
        "/console/login",
        "",
        &format!("key={}", s.reviewer),
    );
    assert_eq!(login.status, 303, "{}", login.text());
    let cookie = login.header("set-cookie").unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_owned();
    let with_session = format!("Cookie: {session}\r\n");
    let forged = form_call(
        &s,
        "POST",
        &format!("{item}/verdict"),
        &with_session,
        "csrf=guessed&verdict=approve",
    );
    assert_eq!(forged.status, 403, "{}", forged.text());
    let own = form_call(&s, "GET", &item, &with_session, "");
    let csrf = own
        .text()
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let taken = form_call(
        &s,
        "POST",
        &format!("{item}/verdict"),
        &with_session,
        &format!("csrf={csrf}&verdict=approve&note=%E6%B0%91%E4%BF%97"),
    );
    assert_eq!(taken.status, 303, "{}", taken.text());
    assert_eq!(
        taken.header("location"),
        Some(format!("/console?done={id}").as_str())
    );
    let decided = page(&s.reviewer, &item).text();
    assert!(
        decided.contains("结论：approve（alice") && decided.contains("民俗"),
        "{decided}"
    );
    // A wrong password is refused, and says so.
    let wrong = form_call(&s, "POST", "/console/login", "", "name=alice&password=nope");
    assert_eq!(wrong.status, 401);
}
