//! The dashboard (docs/dashboard.md): sign-in with an API key, a session cookie with CSRF on every form, pages
//! scoped to the key's tenant, and text shown as text.

use crate::evaluations::record;
use crate::on_both_backends;
use crate::store::flip_stored_body_byte;
use crate::support::{packet_body, spawn_app, spawn_app_with, AppOptions, Backend, TestApp};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::json;

on_both_backends!(
    a_key_signs_in_and_sees_its_tenants_handoffs,
    nothing_is_shown_without_a_session,
    forms_without_their_token_are_refused,
    another_tenants_handoff_is_not_found,
    markup_in_a_handoff_is_shown_as_text,
    signing_out_or_revoking_the_key_ends_the_session,
    the_list_filters_and_pages,
    pages_count_against_the_signed_in_key,
    a_caught_handoff_waits_in_the_queue_and_a_human_sends_it_back,
    readers_see_the_queue_but_cannot_respond,
    a_caught_evaluation_shows_the_mismatching_value_marked_in_its_evidence,
    records_are_browsed_checked_and_downloaded,
    the_session_streams_its_tenants_events_to_the_open_lists,
    handoffs_are_searched_and_chains_navigated,
    marking_evidence_has_a_budget_of_its_own,
);

/// A browser without cookie storage or redirects, so each test sees exactly what the server sends.
struct Browser<'a> {
    app: &'a TestApp,
    http: reqwest::Client,
}

struct Page {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    /// `X-RateLimit-Tier`: whose window the request was counted in.
    tier: Option<String>,
    location: Option<String>,
    cookies: Vec<String>,
    html: String,
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Browser { app, http }
    }

    async fn send(&self, method: Method, path: &str, cookie: &str, form: &[(&str, &str)]) -> Page {
        let mut request = self.http.request(method.clone(), self.app.url(path));
        if !cookie.is_empty() {
            request = request.header(COOKIE, cookie);
        }
        if method == Method::POST {
            let body: Vec<String> = form
                .iter()
                .map(|(name, value)| format!("{name}={}", urlencode(value)))
                .collect();
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.join("&"));
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let headers = response.headers().clone();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .map(String::from);
        let tier = response
            .headers()
            .get("x-ratelimit-tier")
            .and_then(|value| value.to_str().ok())
            .map(String::from);
        let cookies = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .map(String::from)
            .collect();
        let html = response.text().await.expect("body");
        Page {
            status,
            headers,
            tier,
            location,
            cookies,
            html,
        }
    }

    async fn get(&self, path: &str, cookie: &str) -> Page {
        self.send(Method::GET, path, cookie, &[]).await
    }

    /// Signs in with `key`; the session's cookie (`name=value`) and its CSRF token.
    async fn sign_in(&self, key: &str) -> (String, String) {
        let form = self.get("/dashboard/sign-in", "").await;
        assert_eq!(form.status, StatusCode::OK);
        let sign_in_cookie = cookie_pair(&form.cookies, "hr_sign_in");
        let token = hidden(&form.html, "csrf");
        let signed = self
            .send(
                Method::POST,
                "/dashboard/sign-in",
                &sign_in_cookie,
                &[("api_key", key), ("csrf", &token)],
            )
            .await;
        assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.html);
        assert_eq!(signed.location.as_deref(), Some("/dashboard/handoffs"));
        let set = signed
            .cookies
            .iter()
            .find(|cookie| cookie.starts_with("hr_session="))
            .expect("a session cookie");
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/dashboard"] {
            assert!(set.contains(attribute), "{set}");
        }
        let session = cookie_pair(&signed.cookies, "hr_session");
        let list = self.get("/dashboard/handoffs", &session).await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.html);
        let csrf = hidden(&list.html, "csrf");
        (session, csrf)
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// `name=value` of the `Set-Cookie` named `name`.
fn cookie_pair(cookies: &[String], name: &str) -> String {
    cookies
        .iter()
        .find(|cookie| cookie.starts_with(&format!("{name}=")))
        .and_then(|cookie| cookie.split(';').next())
        .expect("the cookie was set")
        .to_string()
}

/// The value of the hidden input `name` in `html`.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("the hidden field") + marker.len();
    html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_string()
}

async fn a_key_signs_in_and_sees_its_tenants_handoffs(backend: Backend) {
    let app = spawn_app(backend).await;
    let packet = app
        .create_packet(packet_body(
            "researcher",
            "writer",
            "Order 7 is ready to bill",
        ))
        .await;
    let reader = app.key("reader", None).await;
    let browser = Browser::new(&app);
    let (session, _) = browser.sign_in(&reader).await;
    let list = browser.get("/dashboard/handoffs", &session).await;
    assert!(
        list.html.contains("Order 7 is ready to bill"),
        "{}",
        list.html
    );
    assert!(list.html.contains("researcher → writer"));
    let id = packet["id"].as_str().unwrap_or_default();
    let page = browser
        .get(&format!("/dashboard/handoffs/{id}"), &session)
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("<h2>Timeline</h2>"), "{}", page.html);
    assert!(page.html.contains("created by"), "{}", page.html);
    assert!(page.html.len() < 200_000);
    assert_eq!(
        browser
            .get("/dashboard", &session)
            .await
            .location
            .as_deref(),
        Some("/dashboard/handoffs")
    );

    let wrong = browser.get("/dashboard/sign-in", "").await;
    let refused = browser
        .send(
            Method::POST,
            "/dashboard/sign-in",
            &cookie_pair(&wrong.cookies, "hr_sign_in"),
            &[
                ("api_key", "hr_not-a-key"),
                ("csrf", &hidden(&wrong.html, "csrf")),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.html.contains("That key is not valid."));
    assert!(!refused
        .cookies
        .iter()
        .any(|cookie| cookie.starts_with("hr_session=")));
}

async fn nothing_is_shown_without_a_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let packet = app
        .create_packet(packet_body("a", "b", "Secret summary"))
        .await;
    let id = packet["id"].as_str().unwrap_or_default();
    let sealed = record(
        &app,
        "default",
        "run-x",
        "get_order",
        br#"{"secret": "Secret summary"}"#,
    )
    .await;
    let record_id = sealed.record.id;
    let browser = Browser::new(&app);
    for path in [
        "/dashboard/handoffs".to_string(),
        "/dashboard/handoffs?q=secret".to_string(),
        format!("/dashboard/handoffs/{id}"),
        "/dashboard/queue".to_string(),
        "/dashboard/evaluations".to_string(),
        format!("/dashboard/evaluations/{id}"),
        "/dashboard/records".to_string(),
        format!("/dashboard/records/{record_id}"),
        format!("/dashboard/records/{record_id}/har"),
        "/dashboard/events".to_string(),
    ] {
        for cookie in ["", "hr_session=forged-token"] {
            let page = browser.get(&path, cookie).await;
            assert_eq!(page.status, StatusCode::SEE_OTHER, "{path} {cookie}");
            assert_eq!(page.location.as_deref(), Some("/dashboard/sign-in"));
            assert!(!page.html.contains("Secret summary"));
        }
    }
    let respond = browser
        .send(
            Method::POST,
            &format!("/dashboard/handoffs/{id}/respond"),
            "",
            &[("csrf", "x"), ("response", "yes")],
        )
        .await;
    assert_eq!(respond.location.as_deref(), Some("/dashboard/sign-in"));
    let sign_out = browser
        .send(Method::POST, "/dashboard/sign-out", "", &[("csrf", "x")])
        .await;
    assert_eq!(sign_out.status, StatusCode::SEE_OTHER);
    assert_eq!(sign_out.location.as_deref(), Some("/dashboard/sign-in"));
}

async fn forms_without_their_token_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = Browser::new(&app);
    // Sign-in: the form's token must match its cookie.
    let form = browser.get("/dashboard/sign-in", "").await;
    let cookie = cookie_pair(&form.cookies, "hr_sign_in");
    for (cookie, token) in [
        (cookie.as_str(), ""),
        (cookie.as_str(), "another-token"),
        ("", hidden(&form.html, "csrf").as_str()),
    ] {
        let refused = browser
            .send(
                Method::POST,
                "/dashboard/sign-in",
                cookie,
                &[("api_key", &app.admin_key), ("csrf", token)],
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{cookie} {token}");
        assert!(!refused
            .cookies
            .iter()
            .any(|set| set.starts_with("hr_session=")));
    }
    // A session's form: sign-out without the session's token leaves the session open.
    let (session, csrf) = browser.sign_in(&app.admin_key).await;
    for token in ["", "wrong"] {
        let refused = browser
            .send(
                Method::POST,
                "/dashboard/sign-out",
                &session,
                &[("csrf", token)],
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
    }
    assert_eq!(
        browser.get("/dashboard/handoffs", &session).await.status,
        StatusCode::OK
    );
    let out = browser
        .send(
            Method::POST,
            "/dashboard/sign-out",
            &session,
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
}

async fn another_tenants_handoff_is_not_found(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.post("/tenants", json!({"name": "other"})).await;
    assert_eq!(tenant.status, StatusCode::CREATED, "{}", tenant.text);
    let other_key = app.key("writer", tenant.body["id"].as_str()).await;
    let theirs = app
        .send(
            Method::POST,
            "/packets",
            Some(&other_key),
            Some(packet_body("x", "y", "Their handoff")),
        )
        .await;
    assert_eq!(theirs.status, StatusCode::CREATED, "{}", theirs.text);
    let browser = Browser::new(&app);
    let (session, _) = browser.sign_in(&app.admin_key).await;
    let id = theirs.body["id"].as_str().unwrap_or_default();
    let page = browser
        .get(&format!("/dashboard/handoffs/{id}"), &session)
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(!page.html.contains("Their handoff"));
    let list = browser.get("/dashboard/handoffs", &session).await;
    assert!(!list.html.contains("Their handoff"));
    assert_eq!(
        browser
            .get("/dashboard/handoffs/not-an-id", &session)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

async fn markup_in_a_handoff_is_shown_as_text(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut body = packet_body("<b>agent</b>", "writer", "<script>alert('x')</script>");
    body["decisions"] = json!([{"id": "d1", "decision": "<img src=x onerror=alert(1)>",
                                "rationale": "\"quoted\" & more"}]);
    let packet = app.create_packet(body).await;
    let browser = Browser::new(&app);
    let (session, _) = browser.sign_in(&app.admin_key).await;
    let id = packet["id"].as_str().unwrap_or_default();
    for path in [
        "/dashboard/handoffs".to_string(),
        format!("/dashboard/handoffs/{id}"),
    ] {
        let page = browser.get(&path, &session).await;
        assert!(
            !page.html.contains("<script>alert"),
            "{path}: {}",
            page.html
        );
        assert!(!page.html.contains("<b>agent"), "{path}");
        assert!(
            page.html
                .contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"),
            "{path}"
        );
    }
    let page = browser
        .get(&format!("/dashboard/handoffs/{id}"), &session)
        .await;
    assert!(!page.html.contains("<img"));
    assert!(page
        .html
        .contains("&lt;img src=x onerror=alert(1)&gt; — &quot;quoted&quot; &amp; more"));
}

async fn signing_out_or_revoking_the_key_ends_the_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = Browser::new(&app);
    let (session, csrf) = browser.sign_in(&app.admin_key).await;
    let out = browser
        .send(
            Method::POST,
            "/dashboard/sign-out",
            &session,
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(out
        .cookies
        .iter()
        .any(|set| set.starts_with("hr_session=;") && set.contains("Max-Age=0")));
    assert_eq!(
        browser.get("/dashboard/handoffs", &session).await.status,
        StatusCode::SEE_OTHER,
        "the old cookie no longer opens anything"
    );

    let reader = app.key("reader", None).await;
    let (session, _) = browser.sign_in(&reader).await;
    let keys = app.get("/keys").await;
    let id = keys
        .body
        .as_array()
        .into_iter()
        .flatten()
        .find(|key| key["name"] == "reader key")
        .and_then(|key| key["id"].as_str())
        .expect("the reader key is listed")
        .to_string();
    assert_eq!(
        app.delete(&format!("/keys/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        browser
            .get("/dashboard/handoffs", &session)
            .await
            .location
            .as_deref(),
        Some("/dashboard/sign-in"),
        "a revoked key's session is over"
    );
}

async fn the_list_filters_and_pages(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ids = Vec::new();
    for n in 0..55 {
        let packet = app
            .create_packet(packet_body("a", "b", &format!("Handoff number {n:02}")))
            .await;
        ids.push(packet["id"].as_str().unwrap_or_default().to_string());
    }
    let claimed = app
        .post(
            &format!("/packets/{}/claim", ids[0]),
            json!({"agent_id": "b", "agent_name": "B"}),
        )
        .await;
    assert_eq!(claimed.status, StatusCode::OK, "{}", claimed.text);
    let browser = Browser::new(&app);
    let (session, _) = browser.sign_in(&app.admin_key).await;
    let first = browser.get("/dashboard/handoffs", &session).await;
    assert!(first.html.contains("55 handoffs match."));
    assert!(first.html.contains("Handoff number 54"));
    assert!(!first.html.contains("Handoff number 04"));
    let start = first
        .html
        .find("href=\"/dashboard/handoffs?")
        .expect("a next page link")
        + 6;
    let next = first.html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .replace("&amp;", "&");
    let second = browser.get(&next, &session).await;
    assert!(second.html.contains("Handoff number 04"), "{}", second.html);
    assert!(!second.html.contains("Handoff number 54"));
    assert!(!second.html.contains("Older handoffs"));
    let claimed = browser
        .get("/dashboard/handoffs?status=claimed&verification=", &session)
        .await;
    assert!(
        claimed.html.contains("1 handoffs match."),
        "{}",
        claimed.html
    );
    assert!(claimed.html.contains("Handoff number 00"));
    let none = browser
        .get("/dashboard/handoffs?verification=CAUGHT", &session)
        .await;
    assert!(none.html.contains("0 handoffs match."));
}

async fn pages_count_against_the_signed_in_key(backend: Backend) {
    let app = spawn_app_with(
        backend,
        AppOptions {
            configure: Box::new(|config| config.limits.no_rate_limits = false),
            ..Default::default()
        },
    )
    .await;
    let created = app
        .post(
            "/keys",
            json!({"name": "big", "role": "reader", "tier": "business"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let key = created.body["key"].as_str().unwrap_or_default().to_string();
    let browser = Browser::new(&app);
    let anonymous = browser.get("/dashboard/sign-in", "").await;
    assert_eq!(
        anonymous.tier.as_deref(),
        Some("free"),
        "counted per address before sign-in"
    );
    let (session, _) = browser.sign_in(&key).await;
    let page = browser.get("/dashboard/handoffs", &session).await;
    assert_eq!(
        page.tier.as_deref(),
        Some("business"),
        "counted against the key after"
    );
}

/// A packet whose sender claims the order's total is 99.00 (the record says 89.5), held for a human.
async fn caught_handoff(app: &TestApp) -> String {
    let sealed = record(
        app,
        "default",
        "run-d",
        "get_order",
        br#"{"order": {"total": 89.5}}"#,
    )
    .await;
    let mut body = packet_body("researcher", "writer", "Bill order 7");
    body["verification"] = json!({"run_id": "run-d", "claims": [
        {"action_name": "get_order", "verification_mode": "field_extraction", "json_path": "$.order.total",
         "claimed_value": "99.00", "record_id": sealed.record.id.to_string()}]});
    let created = app.create_packet(body).await;
    assert_eq!(created["status"], "awaiting_human");
    created["id"].as_str().unwrap_or_default().to_string()
}

async fn a_caught_handoff_waits_in_the_queue_and_a_human_sends_it_back(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = caught_handoff(&app).await;
    let writer = app.key("writer", None).await;
    let browser = Browser::new(&app);
    let (session, csrf) = browser.sign_in(&writer).await;
    let queue = browser.get("/dashboard/queue", &session).await;
    assert_eq!(queue.status, StatusCode::OK);
    assert!(queue.html.contains("1 handoffs wait"), "{}", queue.html);
    assert!(queue.html.contains("Bill order 7"));
    assert!(
        queue.html.contains("<code>&quot;99.00&quot;</code>"),
        "claimed: {}",
        queue.html
    );
    assert!(queue.html.contains("<code>89.5</code>"), "actual");
    assert!(queue.html.contains("value_mismatch"));
    assert!(
        queue.html.contains("value=\"Send back\""),
        "an option button"
    );

    let path = format!("/dashboard/handoffs/{id}/respond");
    let forged = browser
        .send(
            Method::POST,
            &path,
            &session,
            &[("response", "Accept anyway")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "no CSRF token");
    assert_eq!(
        app.get(&format!("/packets/{id}")).await.body["status"],
        "awaiting_human"
    );

    let sent_back = browser
        .send(
            Method::POST,
            &path,
            &session,
            &[
                ("csrf", &csrf),
                ("response", "Send back"),
                ("notes", "total is wrong"),
            ],
        )
        .await;
    assert_eq!(
        sent_back.status,
        StatusCode::SEE_OTHER,
        "{}",
        sent_back.html
    );
    assert_eq!(
        sent_back.location,
        Some(format!("/dashboard/handoffs/{id}"))
    );
    let packet = app.get(&format!("/packets/{id}")).await.body;
    assert_eq!(packet["status"], "failed");
    assert_eq!(packet["hitl"]["response"], "Send back");
    assert_eq!(packet["hitl"]["notes"], "total is wrong");
    assert_eq!(packet["hitl"]["responded_by"], "writer key (dashboard)");
    let page = browser
        .get(&format!("/dashboard/handoffs/{id}"), &session)
        .await;
    assert!(page.html.contains("badge failed"), "{}", page.html);
    assert!(page
        .html
        .contains("hitl_responded by human:writer key (dashboard)"));
    assert!(browser
        .get("/dashboard/queue", &session)
        .await
        .html
        .contains("0 handoffs wait"));

    let again = browser
        .send(
            Method::POST,
            &path,
            &session,
            &[("csrf", &csrf), ("response", "Accept anyway")],
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "no longer waiting");
    let empty = browser
        .send(
            Method::POST,
            &path,
            &session,
            &[("csrf", &csrf), ("answer", " ")],
        )
        .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn readers_see_the_queue_but_cannot_respond(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = caught_handoff(&app).await;
    let reader = app.key("reader", None).await;
    let browser = Browser::new(&app);
    let (session, csrf) = browser.sign_in(&reader).await;
    let queue = browser.get("/dashboard/queue", &session).await;
    assert!(queue.html.contains("Bill order 7"));
    assert!(
        !queue.html.contains("/respond\""),
        "no respond form: {}",
        queue.html
    );
    let page = browser
        .get(&format!("/dashboard/handoffs/{id}"), &session)
        .await;
    assert!(!page.html.contains("/respond\""));
    assert!(page.html.contains("can look but not respond"));
    let refused = browser
        .send(
            Method::POST,
            &format!("/dashboard/handoffs/{id}/respond"),
            &session,
            &[("csrf", &csrf), ("response", "Accept anyway")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get(&format!("/packets/{id}")).await.body["status"],
        "awaiting_human"
    );
}

async fn a_caught_evaluation_shows_the_mismatching_value_marked_in_its_evidence(backend: Backend) {
    let app = spawn_app(backend).await;
    let sealed = record(
        &app,
        "default",
        "run-e",
        "get_order",
        br#"{"order": {"status": "shipped", "total": 89.5, "note": "<i>fragile</i>"}}"#,
    )
    .await;
    let id = sealed.record.id.to_string();
    let evaluated = app
        .post(
            "/evaluations",
            json!({"run_id": "run-e", "claims": [
                {"action_name": "get_order", "verification_mode": "field_extraction", "json_path": "$.order.total",
                 "claimed_value": "99.00", "record_id": id},
                {"action_name": "get_order", "verification_mode": "exact", "json_path": "$.order.status",
                 "claimed_value": "shipped", "record_id": id}]}),
        )
        .await;
    assert_eq!(evaluated.status, StatusCode::CREATED, "{}", evaluated.text);
    assert_eq!(evaluated.body["outcome"], "CAUGHT", "{}", evaluated.text);
    let evaluation = evaluated.body["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let reader = app.key("reader", None).await;
    let browser = Browser::new(&app);
    let (session, _) = browser.sign_in(&reader).await;
    let list = browser
        .get("/dashboard/evaluations?outcome=CAUGHT", &session)
        .await;
    assert!(
        list.html
            .contains(&format!("/dashboard/evaluations/{evaluation}")),
        "{}",
        list.html
    );
    assert!(!browser
        .get("/dashboard/evaluations?outcome=PASS", &session)
        .await
        .html
        .contains(&evaluation));
    let page = browser
        .get(&format!("/dashboard/evaluations/{evaluation}"), &session)
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.html.contains("the record says something else"),
        "{}",
        page.html
    );
    assert!(page.html.contains("<code>&quot;99.00&quot;</code>"));
    assert!(page.html.contains("seal verified now"));
    assert!(
        page.html
            .contains(&format!("<a href=\"/dashboard/records/{id}\">")),
        "links to its record"
    );
    assert!(
        page.html.contains("&quot;total&quot;: <mark>89.5</mark>"),
        "{}",
        page.html
    );
    assert!(page
        .html
        .contains("&quot;status&quot;: <mark>&quot;shipped&quot;</mark>"));
    assert!(
        page.html.contains("&lt;i&gt;fragile&lt;/i&gt;"),
        "body text escaped"
    );
    assert!(!page.html.contains("<i>fragile"));

    let tenant = app.post("/tenants", json!({"name": "elsewhere"})).await;
    let outsider = app.key("admin", tenant.body["id"].as_str()).await;
    let (theirs, _) = browser.sign_in(&outsider).await;
    let hidden = browser
        .get(&format!("/dashboard/evaluations/{evaluation}"), &theirs)
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    assert!(!hidden.html.contains("89.5"));
}

async fn records_are_browsed_checked_and_downloaded(backend: Backend) {
    let app = spawn_app(backend).await;
    let kept = record(
        &app,
        "default",
        "run-r",
        "get_order",
        br#"{"note": "<script>x</script>", "n": 1}"#,
    )
    .await;
    let changed = record(&app, "default", "run-other", "get_order", br#"{"n": 2}"#).await;
    flip_stored_body_byte(backend, &app.database_url, changed.record.id).await;
    let browser = Browser::new(&app);
    let (session, _) = browser.sign_in(&app.admin_key).await;
    let list = browser
        .get("/dashboard/records?run_id=run-r", &session)
        .await;
    assert!(
        list.html
            .contains(&format!("/dashboard/records/{}", kept.record.id)),
        "{}",
        list.html
    );
    assert!(
        !list.html.contains(&changed.record.id.to_string()),
        "filtered by run"
    );

    let page = browser
        .get(&format!("/dashboard/records/{}", kept.record.id), &session)
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("verified now"), "{}", page.html);
    assert!(page
        .html
        .contains("&quot;note&quot;: &quot;&lt;script&gt;x&lt;/script&gt;&quot;"));
    assert!(!page.html.contains("<script>x"));
    let tampered = browser
        .get(
            &format!("/dashboard/records/{}", changed.record.id),
            &session,
        )
        .await;
    assert!(
        tampered.html.contains("does not verify (digest_mismatch)"),
        "{}",
        tampered.html
    );

    let har = browser
        .get(
            &format!("/dashboard/records/{}/har", kept.record.id),
            &session,
        )
        .await;
    assert_eq!(har.status, StatusCode::OK);
    let document: serde_json::Value = serde_json::from_str(&har.html).expect("HAR is JSON");
    assert_eq!(document["log"]["version"], "1.2");
    assert_eq!(document["log"]["entries"].as_array().map(Vec::len), Some(1));

    let tenant = app
        .post("/tenants", json!({"name": "records-elsewhere"}))
        .await;
    let outsider = app.key("admin", tenant.body["id"].as_str()).await;
    let (theirs, _) = browser.sign_in(&outsider).await;
    for path in [
        format!("/dashboard/records/{}", kept.record.id),
        format!("/dashboard/records/{}/har", kept.record.id),
    ] {
        let hidden = browser.get(&path, &theirs).await;
        assert_eq!(hidden.status, StatusCode::NOT_FOUND, "{path}");
        assert!(!hidden.html.contains("note"));
    }
    let without = browser
        .get(&format!("/dashboard/records/{}/har", kept.record.id), "")
        .await;
    assert_eq!(
        without.status,
        StatusCode::SEE_OTHER,
        "no download without a session"
    );
}

async fn the_session_streams_its_tenants_events_to_the_open_lists(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = Browser::new(&app);
    assert_eq!(
        browser.get("/dashboard/events", "").await.status,
        StatusCode::SEE_OTHER,
        "no stream without a session"
    );
    let reader = app.key("reader", None).await;
    let (session, _) = browser.sign_in(&reader).await;
    let list = browser.get("/dashboard/handoffs", &session).await;
    assert!(
        list.html.contains("new EventSource('/dashboard/events')"),
        "the list listens"
    );
    // The page's own script is the only one the policy lets run.
    let policy = list.headers["content-security-policy"]
        .to_str()
        .unwrap_or_default();
    let script = list
        .html
        .split("<script>")
        .nth(1)
        .and_then(|rest| rest.split("</script>").next());
    let digest = {
        use base64::Engine;
        use sha2::Digest;
        base64::engine::general_purpose::STANDARD
            .encode(sha2::Sha256::digest(script.unwrap_or_default().as_bytes()))
    };
    assert!(
        policy.contains(&format!("script-src 'sha256-{digest}'")),
        "{policy}"
    );
    assert!(policy.contains("frame-ancestors 'none'") && policy.contains("default-src 'none'"));
    assert_eq!(list.headers["x-frame-options"], "DENY");
    assert_eq!(list.headers["cache-control"], "no-store");
    let response = browser
        .http
        .get(app.url("/dashboard/events"))
        .header(COOKIE, &session)
        .send()
        .await
        .expect("stream");
    let mut stream = crate::live::Sse::reading(response);
    assert_eq!(stream.next().await.0, "connected");
    let tenant = app.post("/tenants", json!({"name": "quiet"})).await;
    let other = app.key("writer", tenant.body["id"].as_str()).await;
    let elsewhere = app
        .send(
            Method::POST,
            "/packets",
            Some(&other),
            Some(packet_body("x", "y", "Not ours")),
        )
        .await;
    assert_eq!(elsewhere.status, StatusCode::CREATED);
    let packet = app
        .create_packet(packet_body("a", "b", "Appears live"))
        .await;
    let (event, envelope) = stream.next().await;
    assert_eq!(
        event, "packet.created",
        "the other tenant's packet is not sent"
    );
    assert_eq!(envelope["packet_id"], packet["id"]);
}

async fn handoffs_are_searched_and_chains_navigated(backend: Backend) {
    let app = spawn_app(backend).await;
    let parent = app
        .create_packet(packet_body("a", "b", "Refund the blue kettle"))
        .await;
    app.create_packet(packet_body("a", "b", "Ship the red teapot"))
        .await;
    let parent_id = parent["id"].as_str().unwrap_or_default().to_string();
    let child = app
        .post(
            &format!("/packets/{parent_id}/chain"),
            packet_body("b", "c", "Check the kettle's refund"),
        )
        .await;
    assert_eq!(child.status, StatusCode::CREATED, "{}", child.text);
    let child_id = child.body["id"].as_str().unwrap_or_default().to_string();
    let browser = Browser::new(&app);
    let (session, _) = browser.sign_in(&app.admin_key).await;
    let found = browser.get("/dashboard/handoffs?q=kettle", &session).await;
    assert!(
        found.html.contains("Refund the blue kettle"),
        "{}",
        found.html
    );
    assert!(!found.html.contains("Ship the red teapot"));
    assert!(
        found.html.contains("2 handoffs match “kettle”"),
        "{}",
        found.html
    );
    let page = browser
        .get(&format!("/dashboard/handoffs/{parent_id}"), &session)
        .await;
    assert!(
        page.html.contains("Chained from this handoff"),
        "{}",
        page.html
    );
    assert!(page.html.contains(&format!(
        "/dashboard/handoffs/{child_id}\">Check the kettle&#39;s refund"
    )));
    let child_page = browser
        .get(&format!("/dashboard/handoffs/{child_id}"), &session)
        .await;
    assert!(child_page.html.contains(&format!(
        "<a href=\"/dashboard/handoffs/{parent_id}\">its parent handoff</a>"
    )));
    assert!(!child_page.html.contains("Chained from this handoff"));
}

async fn marking_evidence_has_a_budget_of_its_own(backend: Backend) {
    let app = spawn_app(backend).await;
    // 2,000 nodes: each claim's path visits and compares them all (≈ 4,000 steps); sixty claims need more than
    // a page may spend marking, far less than an evaluation may spend deciding.
    let body = serde_json::to_vec(&vec![1; 2_000]).expect("json");
    let sealed = record(&app, "default", "run-m", "get_order", &body).await;
    let id = sealed.record.id.to_string();
    let claim = json!({"action_name": "get_order", "verification_mode": "presence", "json_path": "$[?@ == 1]",
                       "claimed_value": true, "record_id": id});
    let evaluated = app
        .post("/evaluations", json!({"claims": vec![claim; 60]}))
        .await;
    assert_eq!(evaluated.body["outcome"], "PASS", "{}", evaluated.text);
    let browser = Browser::new(&app);
    let (session, _) = browser.sign_in(&app.admin_key).await;
    let page = browser
        .get(
            &format!(
                "/dashboard/evaluations/{}",
                evaluated.body["id"].as_str().unwrap_or_default()
            ),
            &session,
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.html.contains("the page's budget for marking ran out"),
        "{}",
        &page.html[page.html.find("Evidence record").unwrap_or(0)..]
    );
    assert!(page.html.len() < 200_000, "{} bytes", page.html.len());
}
