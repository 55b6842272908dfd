//! Values as a result shows them: `actual` and `detail` are bounded however large the selected nodes are,
//! and producing them costs no more than the bound (serialization stops at the limit instead of writing a
//! whole subtree and cutting it afterwards).

use serde_json::Value;
use std::io::Write;

/// How much of a value a detail quotes.
const SHOWN_BYTES: usize = 256;

/// One node as itself, several as an array; if its JSON text is longer than `limit` bytes, a string of the
/// first `limit` bytes of that text instead, and `true`.
pub fn bounded_json(nodes: &[&Value], limit: usize) -> (Value, bool) {
    let mut text = Capped::new(limit);
    let complete = write_nodes(nodes, &mut text).is_ok();
    if complete {
        let value = match nodes {
            [one] => (*one).clone(),
            _ => Value::Array(nodes.iter().map(|node| (*node).clone()).collect()),
        };
        (value, false)
    } else {
        (Value::String(text.into_string()), true)
    }
}

fn write_nodes(nodes: &[&Value], out: &mut Capped) -> std::io::Result<()> {
    if let [one] = nodes {
        return serde_json::to_writer(out, one).map_err(std::io::Error::other);
    }
    out.write_all(b"[")?;
    for (index, node) in nodes.iter().enumerate() {
        if index > 0 {
            out.write_all(b",")?;
        }
        serde_json::to_writer(&mut *out, node).map_err(std::io::Error::other)?;
    }
    out.write_all(b"]")
}

/// `text` if it fits in `limit` bytes, else its longest prefix that does with `…` after it.
pub fn bounded_text(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let mut end = limit.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// A value as a detail quotes it: strings without quotes, as people wrote them; at most 256 bytes.
pub fn show(value: &Value) -> String {
    match value {
        Value::String(text) => bounded_text(text, SHOWN_BYTES),
        other => {
            let mut text = Capped::new(SHOWN_BYTES);
            match serde_json::to_writer(&mut text, other) {
                Ok(()) => text.into_string(),
                Err(_) => format!("{}…", text.into_string()),
            }
        }
    }
}

/// A writer that keeps the first `limit` bytes and then refuses, which stops the serializer.
struct Capped {
    bytes: Vec<u8>,
    limit: usize,
}

impl Capped {
    fn new(limit: usize) -> Capped {
        Capped {
            bytes: Vec::new(),
            limit,
        }
    }

    /// The kept bytes, cut back to the last whole character.
    fn into_string(self) -> String {
        match String::from_utf8(self.bytes) {
            Ok(text) => text,
            Err(error) => {
                let valid = error.utf8_error().valid_up_to();
                let mut bytes = error.into_bytes();
                bytes.truncate(valid);
                String::from_utf8(bytes).unwrap_or_default()
            }
        }
    }
}

impl Write for Capped {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = self.limit - self.bytes.len();
        if data.len() > room {
            self.bytes.extend_from_slice(&data[..room]);
            return Err(std::io::Error::other("limit reached"));
        }
        self.bytes.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn small_values_are_kept_whole() {
        let one = json!({"a": [1, 2]});
        assert_eq!(bounded_json(&[&one], 100), (one.clone(), false));
        let two = json!("x");
        assert_eq!(
            bounded_json(&[&one, &two], 100),
            (json!([{"a": [1, 2]}, "x"]), false)
        );
    }

    #[test]
    fn large_values_are_cut_to_the_limit_on_a_character_boundary() {
        let wide = json!("é".repeat(10_000));
        let (value, truncated) = bounded_json(&[&wide], 101);
        assert!(truncated);
        let text = value.as_str().expect("cut text");
        assert!(text.len() <= 101 && text.starts_with("\"é"), "{text}");
    }

    #[test]
    fn texts_and_shown_values_are_bounded() {
        assert_eq!(bounded_text("abcdef", 6), "abcdef");
        assert_eq!(bounded_text("abcdefgh", 6), "abc…");
        assert!(show(&json!(vec![1; 10_000])).len() <= SHOWN_BYTES + 3);
        assert_eq!(show(&json!("shipped")), "shipped");
    }
}
