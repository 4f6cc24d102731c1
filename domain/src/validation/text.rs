//! Validated text newtypes. Each `parse` takes the raw value from outside and either returns a
//! value that satisfies its rules or a [`FieldError`] naming the field.

use super::markup::{contains_markup, json_contains_markup};
use super::{FieldError, ValidationErrors};

/// Letters, digits, spaces, `-` and `_`, 1..=`max` characters, not blank, no outer spaces.
fn parse_label(field: &str, raw: &str, max: usize) -> Result<String, FieldError> {
    let length = raw.chars().count();
    if raw.trim().is_empty() {
        return Err(FieldError::new(field, "required", "must not be empty"));
    }
    if length > max {
        return Err(FieldError::new(field, "too_long", format!("must be at most {max} characters")));
    }
    if raw.trim() != raw {
        return Err(FieldError::new(field, "invalid_format", "must not start or end with spaces"));
    }
    if let Some(bad) = raw.chars().find(|c| !(c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))) {
        return Err(FieldError::new(
            field,
            "invalid_characters",
            format!("may contain only letters, digits, spaces, '-' and '_' (found {bad:?})"),
        ));
    }
    Ok(raw.to_owned())
}

/// Free text up to `max` characters, without control characters (newlines and tabs are fine)
/// or script patterns.
fn parse_text(field: &str, raw: &str, max: usize) -> Result<String, FieldError> {
    if raw.chars().count() > max {
        return Err(FieldError::new(field, "too_long", format!("must be at most {max} characters")));
    }
    if raw.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(FieldError::new(field, "invalid_characters", "must not contain control characters"));
    }
    if contains_markup(raw) {
        return Err(FieldError::new(
            field,
            "forbidden_content",
            "must not contain <script, javascript: or on…= patterns",
        ));
    }
    Ok(raw.to_owned())
}

macro_rules! label_type {
    ($(#[$doc:meta])* $name:ident, field = $field:literal, max = $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            pub const MAX_CHARS: usize = $max;

            pub fn parse(raw: &str) -> Result<Self, FieldError> {
                parse_label($field, raw, $max).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_inner(self) -> String {
                self.0
            }
        }
    };
}

label_type!(
    /// A workflow name: 1–255 letters, digits, spaces, `-` and `_`.
    WorkflowName, field = "name", max = 255
);
label_type!(
    /// A workspace name, under the same rules as a workflow name.
    WorkspaceName, field = "name", max = 255
);
label_type!(
    /// A team name.
    TeamName, field = "name", max = 255
);
label_type!(
    /// An API key's name.
    KeyName, field = "name", max = 255
);

/// A workflow description: at most 1000 characters, no script patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    pub const MAX_CHARS: usize = 1000;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        parse_text("description", raw, Self::MAX_CHARS).map(Self)
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// The commit message of a definition change: required, at most 1000 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitMessage(String);

impl CommitMessage {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        if raw.trim().is_empty() {
            return Err(FieldError::new("message", "required", "must not be empty"));
        }
        parse_text("message", raw, 1000).map(Self)
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A person's display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        if raw.trim().is_empty() {
            return Err(FieldError::new("name", "required", "must not be empty"));
        }
        parse_text("name", raw, 255).map(Self)
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Workflow tags: at most 20, each 1–64 letters, digits, `-`, `_`, `.` or `:`, no duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tags(Vec<String>);

impl Tags {
    pub const MAX_TAGS: usize = 20;

    pub fn parse(raw: &[String]) -> Result<Self, ValidationErrors> {
        let mut errors = Vec::new();
        if raw.len() > Self::MAX_TAGS {
            errors.push(FieldError::new("tags", "too_many", format!("at most {} tags", Self::MAX_TAGS)));
        }
        for (i, tag) in raw.iter().enumerate() {
            let field = format!("tags[{i}]");
            let valid_chars = tag.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
            if tag.is_empty() || tag.chars().count() > 64 || !valid_chars {
                errors.push(FieldError::new(
                    field,
                    "invalid_format",
                    "must be 1-64 letters, digits, '-', '_', '.' or ':'",
                ));
            } else if raw[..i].contains(tag) {
                errors.push(FieldError::new(field, "duplicate", format!("tag {tag:?} is listed twice")));
            }
        }
        if errors.is_empty() { Ok(Self(raw.to_vec())) } else { Err(ValidationErrors(errors)) }
    }

    pub fn into_inner(self) -> Vec<String> {
        self.0
    }
}

/// A workspace slug: 3–63 lowercase letters, digits and single hyphens, starting and ending with
/// a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slug(String);

impl Slug {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let chars_ok = raw.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        let ends_ok = !raw.starts_with('-') && !raw.ends_with('-');
        if !(3..=63).contains(&raw.len()) || !chars_ok || !ends_ok || raw.contains("--") {
            return Err(FieldError::new(
                "slug",
                "invalid_format",
                "must be 3-63 lowercase letters, digits and single hyphens, not starting or ending with '-'",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// A slug made from a name: lowercased, other characters turned into single hyphens.
    pub fn from_name(name: &str) -> Result<Self, FieldError> {
        let mut slug = String::new();
        for c in name.chars().flat_map(char::to_lowercase) {
            if c.is_ascii_alphanumeric() {
                slug.push(c);
            } else if !slug.ends_with('-') && !slug.is_empty() {
                slug.push('-');
            }
        }
        let slug = slug.trim_end_matches('-').chars().take(63).collect::<String>();
        Self::parse(slug.trim_end_matches('-'))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// An email address, lowercased. Deliberately loose (one `@`, a dotted domain, no spaces):
/// the only real check of an address is mail reaching it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let invalid = || FieldError::new("email", "invalid_format", "must be an email address like name@example.com");
        let (local, domain) = raw.split_once('@').ok_or_else(invalid)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && domain.chars().all(|c| c.is_alphanumeric() || c == '.' || c == '-');
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && local.chars().all(|c| !c.is_whitespace() && !c.is_control() && !matches!(c, '<' | '>' | '@' | '"'));
        if raw.len() > 254 || !domain_ok || !local_ok {
            return Err(invalid());
        }
        Ok(Self(raw.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// An API key's public prefix: 8–16 lowercase letters and digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyPrefix(String);

impl KeyPrefix {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let ok = (8..=16).contains(&raw.len()) && raw.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !ok {
            return Err(FieldError::new("prefix", "invalid_format", "must be 8-16 lowercase letters and digits"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// The hex SHA-256 of an API key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyHash(String);

impl KeyHash {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let ok = raw.len() == 64 && raw.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
        if !ok {
            return Err(FieldError::new("key_hash", "invalid_format", "must be 64 lowercase hex digits"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Workspace settings: a JSON object of at most 64 KiB with no script patterns in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings(serde_json::Map<String, serde_json::Value>);

impl Settings {
    pub const MAX_BYTES: usize = 64 * 1024;

    pub fn parse(raw: &serde_json::Value) -> Result<Self, FieldError> {
        let serde_json::Value::Object(fields) = raw else {
            return Err(FieldError::new("settings", "invalid_type", "must be a JSON object"));
        };
        if raw.to_string().len() > Self::MAX_BYTES {
            return Err(FieldError::new("settings", "too_long", "must be at most 64 KiB of JSON"));
        }
        if json_contains_markup(raw) {
            return Err(FieldError::new(
                "settings",
                "forbidden_content",
                "must not contain <script, javascript: or on…= patterns",
            ));
        }
        Ok(Self(fields.clone()))
    }

    pub fn into_inner(self) -> serde_json::Map<String, serde_json::Value> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_names_follow_the_contract() {
        assert!(WorkflowName::parse("Nightly sync-2_b").is_ok());
        assert!(WorkflowName::parse("Größe 1").is_ok());
        assert_eq!(WorkflowName::parse("").unwrap_err().code, "required");
        assert_eq!(WorkflowName::parse(&"a".repeat(256)).unwrap_err().code, "too_long");
        assert!(WorkflowName::parse(&"a".repeat(255)).is_ok());
        assert_eq!(WorkflowName::parse("<script>").unwrap_err().code, "invalid_characters");
        assert_eq!(WorkflowName::parse(" padded").unwrap_err().code, "invalid_format");
    }

    #[test]
    fn descriptions_are_bounded_and_script_free() {
        assert!(Description::parse(&"d".repeat(1000)).is_ok());
        assert_eq!(Description::parse(&"d".repeat(1001)).unwrap_err().code, "too_long");
        assert_eq!(Description::parse("see javascript:void(0)").unwrap_err().code, "forbidden_content");
        assert_eq!(Description::parse("<a onmouseover=x>").unwrap_err().code, "forbidden_content");
    }

    #[test]
    fn tags_report_each_bad_entry() {
        let errors = Tags::parse(&["ok".into(), "".into(), "ok".into()]).unwrap_err();
        let fields: Vec<_> = errors.0.iter().map(|e| (e.field.as_str(), e.code)).collect();
        assert_eq!(fields, [("tags[1]", "invalid_format"), ("tags[2]", "duplicate")]);
    }

    #[test]
    fn slugs_and_emails() {
        assert!(Slug::parse("acme-corp").is_ok());
        for bad in ["ab", "Acme", "-acme", "acme-", "ac--me", "ac me"] {
            assert!(Slug::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Slug::from_name("Acme Corp, Inc.").unwrap().as_str(), "acme-corp-inc");
        assert_eq!(Email::parse("Ada@Example.com").unwrap().as_str(), "ada@example.com");
        for bad in ["ada", "ada@", "@example.com", "ada@example", "a da@example.com", "<a>@x.com"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn settings_must_be_a_clean_object() {
        assert!(Settings::parse(&serde_json::json!({"timezone": "UTC"})).is_ok());
        assert_eq!(Settings::parse(&serde_json::json!([1])).unwrap_err().code, "invalid_type");
        assert_eq!(
            Settings::parse(&serde_json::json!({"banner": "<script>x</script>"})).unwrap_err().code,
            "forbidden_content"
        );
    }
}
