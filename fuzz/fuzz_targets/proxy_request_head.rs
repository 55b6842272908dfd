//! What the proxy does with a request head before any upstream is contacted: the request target (first
//! line) becomes a destination, `Proxy-Authorization` and the `X-HandoffRail-*` tags are read, control and
//! hop-by-hop headers are stripped, the recorded copy is made and redacted, tunnel authorities compared.
#![no_main]

use handoffrail::intercept::destination::{destination, Leg};
use handoffrail::intercept::headers;
use handoffrail::rules::Redaction;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split("\r\n");
    let target = lines.next().unwrap_or_default();
    let mut map = HeaderMap::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value.trim()),
        ) {
            map.append(name, value);
        }
    }
    let _ = headers::proxy_credentials(&map);
    let _ = headers::tags(&map);
    if let Ok(uri) = target.parse::<hyper::Uri>() {
        for leg in [Leg::Plain, Leg::Tunnel("api.example.com:443".into())] {
            if let Ok(found) = destination(&uri, &leg, &[]) {
                let _ = headers::host_of(&found.url);
                let _ = Redaction::default().url(found.url.as_str());
            }
        }
        if let Some(authority) = uri.authority() {
            let _ = headers::same_authority(authority.as_str(), "api.example.com:443", 443);
        }
    }
    headers::strip_for_upstream(&mut map);
    let redaction = Redaction::default();
    for header in headers::recorded(&map) {
        let _ = redaction.hides_header(&header.name);
    }
});
