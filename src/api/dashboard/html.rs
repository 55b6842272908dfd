//! The dashboard's HTML: one escaping function every text goes through, the page layout and the badges.
//! Pages are rendered on the server as strings; there is no script the page needs to work.

use serde_json::Value;
use std::collections::HashSet;
use std::fmt::Write;

/// `text` safe inside an element or a quoted attribute.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 8);
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// The "older" link of a listing: `path` with the page's `filters` and continuing after `cursor`.
pub fn older_link(
    path: &str,
    filters: &[(&str, &str)],
    cursor: &crate::paging::Cursor,
    text: &str,
) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(filters)
        .append_pair("cursor", &cursor.encode())
        .finish();
    format!(
        "<p><a href=\"{path}?{}\">{}</a></p>",
        escape(&query),
        escape(text)
    )
}

/// Who is signed in, for the header: the key's name, tenant and role, and the session's CSRF token for the
/// sign-out form.
pub struct Viewer<'a> {
    pub name: &'a str,
    pub tenant: &'a str,
    pub role: &'a str,
    pub csrf: &'a str,
}

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2733;background:#f6f7f9}\
header{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;align-items:center;padding:.6rem 1rem;background:#1d2733;color:#fff}\
header a{color:#fff}header form{margin-left:auto}main{padding:1rem;max-width:72rem;margin:auto}\
table{border-collapse:collapse;width:100%;background:#fff}th,td{text-align:left;padding:.4rem .5rem;\
border-bottom:1px solid #dde1e6;vertical-align:top}.wide{overflow-x:auto}\
.badge{display:inline-block;padding:0 .45rem;border-radius:.6rem;font-size:.8rem;background:#e3e7ec}\
.PASS{background:#d4f2dc}.CAUGHT{background:#fbd6d3}.ERROR{background:#fde9c2}\
.awaiting_human{background:#fde9c2}.failed,.expired{background:#fbd6d3}.completed{background:#d4f2dc}\
section{background:#fff;padding:.5rem 1rem;margin:1rem 0;border:1px solid #dde1e6}\
pre{white-space:pre-wrap;word-break:break-word}form.filters{display:flex;flex-wrap:wrap;gap:.5rem;margin:.5rem 0}\
label{display:inline-flex;flex-direction:column;font-size:.85rem}\
mark{background:#ffe066;outline:1px solid #b8860b}.visually-hidden{position:absolute;left:-9999px}a:focus,button:focus,input:focus,select:focus{outline:3px solid #f0a020}\
@media (max-width:600px){thead{display:none}td,th{display:block;border:0}\
tr{display:block;border-bottom:1px solid #dde1e6}td[data-label]::before{content:attr(data-label) \": \";font-weight:600}}";

/// A whole page: `title` and `body` (already HTML) inside the layout; the header shows `viewer` when signed in.
pub fn page(title: &str, viewer: Option<&Viewer<'_>>, body: &str) -> String {
    let mut html = String::with_capacity(body.len() + STYLE.len() + 1024);
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · HandoffRail</title><style>{STYLE}</style></head><body><header>\
         <strong>HandoffRail</strong>",
        escape(title)
    );
    if let Some(viewer) = viewer {
        let _ = write!(
            html,
            "<nav aria-label=\"Dashboard\"><a href=\"/dashboard/handoffs\">Handoffs</a> \
             <a href=\"/dashboard/queue\">Waiting for a human</a> \
             <a href=\"/dashboard/evaluations\">Evaluations</a> \
             <a href=\"/dashboard/records\">Evidence</a></nav>\
             <span>{} · {} · {}</span>\
             <form method=\"post\" action=\"/dashboard/sign-out\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\">Sign out</button></form>",
            escape(viewer.name),
            escape(viewer.tenant),
            escape(viewer.role),
            escape(viewer.csrf)
        );
    }
    let _ = write!(html, "</header><main>{body}</main></body></html>");
    html
}

/// A badge whose class is `class` (a status or an outcome) and whose text is `text`.
pub fn badge(class: &str, text: &str) -> String {
    format!(
        "<span class=\"badge {}\">{}</span>",
        escape(class),
        escape(text)
    )
}

/// An enum's wire name (its serde string), as the API shows it.
pub fn wire(value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => String::new(),
    }
}

/// Levels of nesting that are indented.
const MAX_INDENT: usize = 16;
/// A body is shown inline only if its rendering (indented, escaped) stays under this many bytes.
pub const SHOWN_RENDERED: usize = 80_000;

/// `text` cut to `limit` characters, with an ellipsis when it was longer.
pub fn clip(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// A body as shown in a page: JSON indented with `marked` nodes marked, other text as text; None when that
/// rendering would be heavier than [`SHOWN_RENDERED`].
pub fn body_shown(body: &[u8], marked: &HashSet<usize>) -> Option<String> {
    let shown = match serde_json::from_slice::<Value>(body) {
        Ok(document) => highlighted(&document, marked),
        Err(_) => escape(&String::from_utf8_lossy(body)),
    };
    Some(shown).filter(|shown| shown.len() <= SHOWN_RENDERED)
}

/// A JSON node's identity (its address), to mark the nodes a path selected.
pub fn address(node: &Value) -> usize {
    std::ptr::from_ref(node) as usize
}

/// `document` as indented JSON, escaped, with each node whose address is in `marked` inside `<mark>`.
pub fn highlighted(document: &Value, marked: &HashSet<usize>) -> String {
    let mut out = String::new();
    write_node(&mut out, document, marked, 0);
    out
}

fn write_node(out: &mut String, node: &Value, marked: &HashSet<usize>, depth: usize) {
    let mark = marked.contains(&address(node));
    if mark {
        out.push_str("<mark>");
    }
    // Deep documents stop indenting at MAX_INDENT levels, so that nesting cannot multiply a body's size.
    let indent = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth.min(MAX_INDENT)));
    };
    match node {
        Value::Array(items) if !items.is_empty() => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                indent(out, depth + 1);
                write_node(out, item, marked, depth + 1);
            }
            indent(out, depth);
            out.push(']');
        }
        Value::Object(members) if !members.is_empty() => {
            out.push('{');
            for (index, (name, value)) in members.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                indent(out, depth + 1);
                out.push_str(&escape(&Value::String(name.clone()).to_string()));
                out.push_str(": ");
                write_node(out, value, marked, depth + 1);
            }
            indent(out, depth);
            out.push('}');
        }
        scalar => out.push_str(&escape(&scalar.to_string())),
    }
    if mark {
        out.push_str("</mark>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_text_is_shown_as_text() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        let cursor = crate::paging::Cursor {
            at: crate::timestamp::Timestamp::now(),
            id: uuid::Uuid::nil(),
        };
        let link = older_link("/p", &[("q", "a b&c=é")], &cursor, "<Older>");
        assert!(
            link.starts_with("<p><a href=\"/p?q=a+b%26c%3D%C3%A9&amp;cursor="),
            "{link}"
        );
        assert!(link.ends_with("\">&lt;Older&gt;</a></p>"), "{link}");
        assert_eq!(clip("héllo", 2), "hé…");
        assert_eq!(clip("hé", 2), "hé");
    }

    #[test]
    fn heavy_bodies_are_not_shown_inline() {
        let nested = format!("{}1{}", "[".repeat(120), "]".repeat(120));
        let shown = body_shown(nested.as_bytes(), &HashSet::new()).expect("small");
        // 241 lines, none indented more than MAX_INDENT levels (uncapped: ~29,000 bytes).
        assert!(
            shown.len() < 241 * (2 * MAX_INDENT + 3),
            "{} bytes",
            shown.len()
        );
        let quotes = format!("\"{}\"", "\\\"".repeat(20_000));
        assert_eq!(body_shown(quotes.as_bytes(), &HashSet::new()), None);
        assert_eq!(
            body_shown(b"<b>", &HashSet::new()).as_deref(),
            Some("&lt;b&gt;")
        );
    }

    #[test]
    fn the_title_and_viewer_are_escaped() {
        let viewer = Viewer {
            name: "<b>",
            tenant: "t",
            role: "reader",
            csrf: "\"x\"",
        };
        let html = page("<i>", Some(&viewer), "<p>body</p>");
        assert!(html.contains("<title>&lt;i&gt; · HandoffRail</title>"));
        assert!(html.contains("&lt;b&gt; · t · reader"));
        assert!(html.contains("value=\"&quot;x&quot;\""));
        assert!(html.contains("<main><p>body</p></main>"));
    }
}
