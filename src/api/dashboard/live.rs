//! Live pages: `GET /dashboard/events` streams the signed-in tenant's events (the SSE stream of `/events`, opened
//! with the session instead of a key in the URL, under the same per-tier connection caps), and a small script
//! on the list pages reloads their content when a packet changes — the pages work without it.

use super::session::SignedIn;
use super::DashboardError;
use crate::api::AppState;
use crate::events::live::Subscription;
use axum::extract::State;
use axum::response::Response;

/// `GET /dashboard/events`: every event of the session's tenant, as server-sent events.
pub async fn events(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, DashboardError> {
    let connection = state
        .live
        .open(&signed_in.key.tenant_id, signed_in.key.tier)
        .ok_or(DashboardError::Forbidden(
            "Too many live connections for your tier; close another dashboard tab.",
        ))?;
    Ok(crate::api::live::event_stream(
        &state,
        connection,
        Subscription::default(),
    ))
}

/// Packet events that change what the list pages show.
const PACKET_EVENTS: &str = "['packet.created','packet.chained','packet.claimed','packet.updated',\
'packet.completed','packet.expired','hitl.response_ready','packet.verification_caught']";

/// The script that keeps a list page current: on a packet event it fetches the page again and swaps its
/// content in (at most every half second), unless a form on the page is being filled in.
pub fn refresher() -> String {
    format!("<script>{}</script>", &*REFRESHER)
}

/// The Content-Security-Policy source that allows [`refresher`] and no other script.
pub fn refresher_source() -> String {
    use base64::Engine;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(REFRESHER.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

static REFRESHER: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "(function(){{if(!window.EventSource||!window.fetch)return;\
var busy=false,again=false,source=new EventSource('/dashboard/events');\
function editing(){{var a=document.activeElement;return a&&a.form&&(a.value||a.tagName==='TEXTAREA');}}\
function refresh(){{if(busy){{again=true;return;}}if(editing())return;busy=true;\
setTimeout(function(){{fetch(location.href,{{credentials:'same-origin'}}).then(function(r){{return r.ok?r.text():null;}})\
.then(function(html){{if(html){{var fresh=new DOMParser().parseFromString(html,'text/html').querySelector('main');\
var main=document.querySelector('main');if(fresh&&main&&!editing())main.replaceWith(fresh);}}}})\
.finally(function(){{busy=false;if(again){{again=false;refresh();}}}});}},500);}}\
{PACKET_EVENTS}.forEach(function(name){{source.addEventListener(name,refresh);}});}})();"
    )
});
