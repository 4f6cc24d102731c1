//! Detection of the script-injection patterns CONTRACT.md forbids in stored data: `<script`,
//! `javascript:` and inline event handlers (`on…=`). Stored text is rendered by clients we do
//! not control, so it is refused at the edge rather than escaped by every reader.

/// Whether `text` contains `<script`, `javascript:` or an `on<letters>=` attribute, ignoring case.
pub fn contains_markup(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.contains("<script") || lower.contains("javascript:") || has_event_handler(lower.as_bytes())
}

/// `on`, at the start of a word, then letters, optional spaces, then `=`.
fn has_event_handler(text: &[u8]) -> bool {
    (0..text.len().saturating_sub(1)).any(|start| {
        let at_word_start = start == 0 || !text[start - 1].is_ascii_alphanumeric();
        if !at_word_start || &text[start..start + 2] != b"on" {
            return false;
        }
        let rest = &text[start + 2..];
        let letters = rest.iter().take_while(|b| b.is_ascii_alphabetic()).count();
        let after = rest[letters..].iter().find(|b| !b.is_ascii_whitespace());
        letters > 0 && after == Some(&b'=')
    })
}

/// Whether any string inside a JSON value (keys included) contains markup.
pub fn json_contains_markup(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => contains_markup(s),
        serde_json::Value::Array(items) => items.iter().any(json_contains_markup),
        serde_json::Value::Object(fields) => {
            fields.iter().any(|(key, value)| contains_markup(key) || json_contains_markup(value))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_three_patterns_in_any_case() {
        for bad in [
            "<SCRIPT>alert(1)</script>",
            "x <script src=y>",
            "JavaScript:alert(1)",
            "<img onerror=alert(1)>",
            "<body ONLOAD = go()>",
            "onclick=x",
        ] {
            assert!(contains_markup(bad), "{bad}");
        }
    }

    #[test]
    fn leaves_ordinary_text_alone() {
        for fine in ["Nightly sync", "condition=ready", "go on = soon", "on", "one", "scripted report", "java script"] {
            assert!(!contains_markup(fine), "{fine}");
        }
    }

    #[test]
    fn looks_inside_json() {
        let value = serde_json::json!({"a": [1, {"b": "javascript:x"}]});
        assert!(json_contains_markup(&value));
        assert!(json_contains_markup(&serde_json::json!({"onload=": 1})));
        assert!(!json_contains_markup(&serde_json::json!({"url": "https://example.com"})));
    }
}
