//! Signing in to the dashboard with an API key, the session cookie that follows, and the CSRF token every form
//! carries (docs/dashboard.md "Sessions").
//!
//! The cookie holds a random token; the store keeps its SHA-256 with the key's hash. Each request finds the
//! session, then the key (revoked → signed out). Cookies are `HttpOnly`, `SameSite=Strict`, limited to
//! `/dashboard`, and `Secure` when the request came over HTTPS (`X-Forwarded-Proto: https` from the proxy that
//! terminates TLS). Sign-in has a CSRF token of its own in a short-lived cookie, so another site cannot sign a
//! browser in with its key.

use super::html::{escape, page};
use super::DashboardError;
use crate::api::AppState;
use crate::auth::sessions::{tokens_match, Session, SESSION_SECONDS};
use crate::auth::{hash_key, random_token, ApiKey};
use crate::persistence::StoreError;
use crate::timestamp::Timestamp;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

const SESSION_COOKIE: &str = "hr_session";
const SIGN_IN_COOKIE: &str = "hr_sign_in";
/// How long a sign-in form stays valid.
const SIGN_IN_SECONDS: i64 = 600;

/// A request from a signed-in browser: the key it signed in with and its session. Without one, the extractor
/// answers with a redirect to the sign-in page.
#[derive(Clone, Debug)]
pub struct SignedIn {
    pub key: ApiKey,
    pub session: Session,
    token_hash: String,
}

impl SignedIn {
    pub fn tenant(&self) -> &str {
        &self.key.tenant_id
    }

    pub fn viewer(&self) -> super::html::Viewer<'_> {
        super::html::Viewer {
            name: &self.key.name,
            tenant: &self.key.tenant_id,
            role: self.key.role.as_str(),
            csrf: &self.session.csrf,
        }
    }

    /// Refuses a form that does not carry this session's CSRF token (403).
    pub fn check_csrf(&self, presented: &str) -> Result<(), DashboardError> {
        if tokens_match(presented, &self.session.csrf) {
            Ok(())
        } else {
            Err(DashboardError::Forbidden(
                "The form has expired; reload the page and try again.",
            ))
        }
    }
}

/// The signed-in session the request's `hr_session` cookie names, with its live key: found once per request by
/// the gate (`api::gate`), which counts the request against that key, and handed to the page as [`SignedIn`].
pub async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<SignedIn>, StoreError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let token_hash = hash_key(&token);
    let store = state.store.as_ref();
    let Some(session) = store.find_session(&token_hash, Timestamp::now()).await? else {
        return Ok(None);
    };
    let key = state.keys.find_hashed(store, &session.key_hash).await?;
    Ok(key.filter(|key| !key.revoked).map(|key| SignedIn {
        key,
        session,
        token_hash,
    }))
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Redirect;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Redirect> {
        parts
            .extensions
            .remove::<SignedIn>()
            .ok_or_else(|| Redirect::to("/dashboard/sign-in"))
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
        .filter(|value| !value.is_empty())
}

/// A `Set-Cookie` value for `name`, lasting `seconds` (0 removes it).
fn set_cookie(headers: &HeaderMap, name: &str, value: &str, seconds: i64) -> HeaderValue {
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
    let text = format!(
        "{name}={value}; Path=/dashboard; Max-Age={seconds}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    );
    // Tokens are base64url: always a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn sign_in_page(token: &str, problem: Option<&str>) -> String {
    let problem = problem
        .map(|text| format!("<p role=\"alert\">{}</p>", escape(text)))
        .unwrap_or_default();
    page(
        "Sign in",
        None,
        &format!(
            "<h1>Sign in</h1>{problem}<form method=\"post\" action=\"/dashboard/sign-in\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <label for=\"api_key\">API key</label> \
             <input id=\"api_key\" name=\"api_key\" type=\"password\" autocomplete=\"off\" required> \
             <button type=\"submit\">Sign in</button></form>\
             <p>Any key of your tenant works; a reader key can look but not change anything.</p>",
            escape(token)
        ),
    )
}

/// `GET /dashboard/sign-in`: the form, with a fresh sign-in token in its cookie.
pub async fn sign_in_form(headers: HeaderMap) -> Response {
    sign_in_answer(&headers, StatusCode::OK, None)
}

/// The sign-in form (with `problem`, if any) under `status`, and the fresh token its cookie carries.
fn sign_in_answer(headers: &HeaderMap, status: StatusCode, problem: Option<&str>) -> Response {
    let token = random_token();
    let mut response = (status, Html(sign_in_page(&token, problem))).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(headers, SIGN_IN_COOKIE, &token, SIGN_IN_SECONDS),
    );
    response
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    api_key: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /dashboard/sign-in`: opens a session for a valid, unrevoked key.
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Result<Response, DashboardError> {
    let expected = cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !tokens_match(&form.csrf, &expected) {
        return Err(DashboardError::Forbidden(
            "The sign-in form has expired; reload the page and try again.",
        ));
    }
    let store = state.store.as_ref();
    let presented = form.api_key.trim();
    let key_hash = hash_key(presented);
    let key = if presented.is_empty() {
        None
    } else {
        state.keys.find_hashed(store, &key_hash).await?
    };
    let Some(key) = key.filter(|key| !key.revoked) else {
        return Ok(sign_in_answer(
            &headers,
            StatusCode::UNAUTHORIZED,
            Some("That key is not valid."),
        ));
    };
    let now = Timestamp::now();
    let token = random_token();
    let session = Session {
        key_hash,
        csrf: random_token(),
        expires_at: now.plus_seconds(SESSION_SECONDS).unwrap_or(now),
    };
    store.open_session(&hash_key(&token), &session, now).await?;
    tracing::info!(key = %key.id, tenant = %key.tenant_id, "dashboard sign-in");
    let mut response = Redirect::to("/dashboard/handoffs").into_response();
    let cookies = response.headers_mut();
    cookies.append(
        header::SET_COOKIE,
        set_cookie(&headers, SESSION_COOKIE, &token, SESSION_SECONDS),
    );
    cookies.append(
        header::SET_COOKIE,
        set_cookie(&headers, SIGN_IN_COOKIE, "", 0),
    );
    Ok(response)
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// `POST /dashboard/sign-out`: ends the session.
pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    signed_in: SignedIn,
    Form(form): Form<CsrfForm>,
) -> Result<Response, DashboardError> {
    signed_in.check_csrf(&form.csrf)?;
    state.store.close_session(&signed_in.token_hash).await?;
    let mut response = Redirect::to("/dashboard/sign-in").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(&headers, SESSION_COOKIE, "", 0),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; hr_session_x=2"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("hr_session=abc"));
        assert_eq!(cookie(&headers, "hr_session").as_deref(), Some("abc"));
        assert_eq!(cookie(&headers, "missing"), None);
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_over_https() {
        let mut headers = HeaderMap::new();
        let plain = set_cookie(&headers, "n", "v", 5);
        assert_eq!(
            plain,
            "n=v; Path=/dashboard; Max-Age=5; HttpOnly; SameSite=Strict"
        );
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(set_cookie(&headers, "n", "v", 5)
            .to_str()
            .unwrap_or_default()
            .ends_with("; Secure"));
    }
}
