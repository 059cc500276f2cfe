//! Secrets (VRRP's auth_pass, the inventory's `secrets:`) and how they are kept out of every
//! output: a secret is replaced where it stands as a word of its own, never inside other text,
//! so masking a short secret such as `11` cannot turn `192.168.184.11` into a tell-tale
//! `192.168.184.********`. Output is masked line by line wherever it is split into lines (a
//! diff, a quoted snippet), so a multi-line secret is masked by its lines as well.

/// What a secret becomes in output.
pub const MASK: &str = "********";
/// Secrets shorter than this draw a warning: as words they are easy to meet in other output.
pub const MIN_DISTINCT_LEN: usize = 6;

/// The secrets of an inventory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    /// Longest first, so a secret that contains another is masked whole.
    values: Vec<String>,
}

impl Secrets {
    /// A multi-line secret (a PEM key) is also masked line by line: each of its lines that is
    /// at least [`MIN_DISTINCT_LEN`] characters long (without indentation) is a secret too, as
    /// a diff or a quoted snippet shows it apart from the others.
    pub fn new(mut values: Vec<String>) -> Self {
        let lines: Vec<String> = values
            .iter()
            .filter(|v| v.contains('\n'))
            .flat_map(|v| v.lines().map(str::trim).map(String::from))
            .filter(|l| l.chars().count() >= MIN_DISTINCT_LEN)
            .collect();
        values.extend(lines);
        values.retain(|s| !s.is_empty());
        values.sort_by_key(|s| std::cmp::Reverse(s.len()));
        values.dedup();
        Secrets { values }
    }

    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// `text` with every secret that stands as a word replaced by [`MASK`].
    pub fn mask(&self, text: &str) -> String {
        self.replace(text, |_| MASK.to_string())
    }

    /// A JSON value with every string in it (keys too) masked, before it is encoded: a secret
    /// with `"` or `\\` in it would not be found in the encoded text, where they are escaped.
    pub fn mask_json(&self, value: serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::String(s) => Value::String(self.mask(&s)),
            Value::Array(items) => {
                Value::Array(items.into_iter().map(|v| self.mask_json(v)).collect())
            }
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| (self.mask(&k), self.mask_json(v)))
                    .collect(),
            ),
            other => other,
        }
    }

    /// `text` with every secret replaced by as many `*` as it has characters: byte offsets of
    /// the rest stay valid (for source snippets that point at a column).
    pub fn mask_in_place(&self, text: &str) -> String {
        self.replace(text, |s| "*".repeat(s.len()))
    }

    /// A unified diff of a file whose new content is `new`, masked: the secrets everywhere, and
    /// on removed lines also whatever stands where the new content has a secret (a password
    /// that was changed is a secret too, though no longer the inventory's). The diff is made
    /// before masking, so a changed secret still shows as a changed line.
    pub fn mask_diff(&self, diff: &str, new: &str) -> String {
        // Where the new text holds a secret: the text before it on its line (or, when the
        // secret starts its line, any line that is one word).
        let mut prefixes: Vec<&str> = Vec::new();
        let mut whole_line = false;
        for line in new.lines() {
            for secret in &self.values {
                if let Some(start) = word_occurrences(line, secret).first() {
                    let prefix = &line[..*start];
                    if prefix.trim().is_empty() {
                        whole_line = true;
                    } else {
                        prefixes.push(prefix);
                    }
                }
            }
        }
        let mut out = String::with_capacity(diff.len());
        for line in diff.split_inclusive('\n') {
            let removed = line.starts_with('-') && !line.starts_with("---");
            let masked = if removed {
                mask_old_line(&line[1..], &prefixes, whole_line)
                    .map(|l| format!("-{l}"))
                    .unwrap_or_else(|| line.to_string())
            } else {
                line.to_string()
            };
            out.push_str(&self.mask(&masked));
        }
        out
    }

    fn replace(&self, text: &str, with: impl Fn(&str) -> String) -> String {
        let mut out = text.to_string();
        for secret in &self.values {
            let found = word_occurrences(&out, secret);
            if found.is_empty() {
                continue;
            }
            let mut next = String::with_capacity(out.len());
            let mut last = 0;
            for start in found {
                next.push_str(&out[last..start]);
                next.push_str(&with(secret));
                last = start + secret.len();
            }
            next.push_str(&out[last..]);
            out = next;
        }
        out
    }
}

/// An old line with the word masked that stands where the new text has a secret.
fn mask_old_line(line: &str, prefixes: &[&str], whole_line: bool) -> Option<String> {
    let at = prefixes
        .iter()
        .find(|p| line.starts_with(**p))
        .map(|p| p.len())
        .or_else(|| {
            let body = line.trim();
            (whole_line && !body.is_empty() && !body.contains(char::is_whitespace))
                .then(|| line.len() - line.trim_start().len())
        })?;
    let rest = &line[at..];
    let end = rest
        .find(|c: char| c.is_whitespace() || "\"',;}".contains(c))
        .unwrap_or(rest.len());
    (end > 0).then(|| format!("{}{MASK}{}", &line[..at], &rest[end..]))
}

/// Characters that continue a word: a secret next to one of them is part of other text (an
/// address, a longer name). `-` is not one: a diff's removed line starts with it. A `.` is
/// one only between word characters (see [`continues_word`]).
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '*'
}

/// Whether `next` (the character beside a secret, `beyond` the one past it) makes the secret
/// part of longer text. A `.` does so only when a word character follows it (`11` in
/// `184.11`, `s3cret` in `s3cret.example`); a `.` that ends a sentence (`token s3cret.`)
/// leaves the secret a word of its own.
fn continues_word(next: Option<char>, beyond: Option<char>) -> bool {
    match next {
        Some('.') => beyond.is_some_and(is_word_char),
        Some(c) => is_word_char(c),
        None => false,
    }
}

/// Byte offsets where `secret` occurs as a word of its own in `text`.
fn word_occurrences(text: &str, secret: &str) -> Vec<usize> {
    let mut out = Vec::new();
    if secret.is_empty() {
        return out;
    }
    let mut from = 0;
    while let Some(pos) = text[from..].find(secret) {
        let start = from + pos;
        let end = start + secret.len();
        let mut before = text[..start].chars().rev();
        let mut after = text[end..].chars();
        // A boundary is wanted only where the secret itself starts or ends with a word char.
        let first_word = secret.chars().next().is_some_and(is_word_char);
        let last_word = secret.chars().next_back().is_some_and(is_word_char);
        let left_ok = !first_word || !continues_word(before.next(), before.next());
        let right_ok = !last_word || !continues_word(after.next(), after.next());
        if left_ok && right_ok {
            out.push(start);
            from = end;
        } else {
            from = start + secret.chars().next().map_or(1, char::len_utf8);
        }
    }
    out
}

/// The values an inventory's text holds under `auth_pass:` and in its top-level `secrets:`
/// block, found line by line: used to mask a file's lines in an error about it even when the
/// file does not parse as YAML. A block scalar (`key: |` or `key: >-` with the value on the
/// lines below) gives each of its lines.
pub fn values_by_key(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_secrets = false;
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let top_level = !line.starts_with([' ', '\t']) && !trimmed.is_empty();
        if top_level && !trimmed.starts_with('#') {
            in_secrets = trimmed.starts_with("secrets:");
            if let Some(rest) = trimmed.strip_prefix("secrets:") {
                // Flow style: `secrets: { a: x, b: "y" }`.
                for pair in rest
                    .trim()
                    .trim_start_matches('{')
                    .trim_end_matches('}')
                    .split(',')
                {
                    if let Some((_, v)) = pair.split_once(':') {
                        push_scalar(&mut out, v);
                    }
                }
            }
            continue;
        }
        if in_secrets && let Some((_, v)) = trimmed.split_once(':') {
            push_value(&mut out, v, &lines[i..]);
        }
        let mut rest = *line;
        while let Some(at) = rest.find("auth_pass") {
            rest = &rest[at + "auth_pass".len()..];
            if let Some(v) = rest.trim_start().strip_prefix(':') {
                let end = v
                    .char_indices()
                    .skip_while(|(_, c)| c.is_whitespace())
                    .find(|(_, c)| *c == ',' || *c == '}')
                    .map_or(v.len(), |(i, _)| i);
                push_value(&mut out, &v[..end], &lines[i..]);
            }
        }
    }
    out
}

/// The value written after `key:` on `block[0]`: a scalar on that line, or the lines of a
/// block scalar (`|`, `>`, with `-`, `+` or an indent digit) below it: those indented deeper
/// than the key's line, blank lines among them.
fn push_value(out: &mut Vec<String>, raw: &str, block: &[&str]) {
    let header = raw.split(" #").next().unwrap_or("").trim();
    let is_block = header.starts_with(['|', '>'])
        && header[1..]
            .chars()
            .all(|c| c == '-' || c == '+' || c.is_ascii_digit());
    if !is_block {
        push_scalar(out, raw);
        return;
    }
    let indent = |l: &str| l.len() - l.trim_start().len();
    let Some((key_line, below)) = block.split_first() else {
        return;
    };
    let key_indent = indent(key_line);
    for l in below
        .iter()
        .take_while(|l| l.trim().is_empty() || indent(l) > key_indent)
    {
        let v = l.trim();
        if !v.is_empty() && !out.iter().any(|o| o == v) {
            out.push(v.to_string());
        }
    }
}

/// A YAML scalar as written after `key:`: quotes and a trailing comment removed.
fn push_scalar(out: &mut Vec<String>, raw: &str) {
    let v = raw.trim();
    let v = if let Some(q) = v.strip_prefix('"') {
        q.split('"').next().unwrap_or("")
    } else if let Some(q) = v.strip_prefix('\'') {
        q.split('\'').next().unwrap_or("")
    } else {
        v.split(" #").next().unwrap_or("").trim()
    };
    if !v.is_empty() && !out.iter().any(|o| o == v) {
        out.push(v.to_string());
    }
}

/// The secrets of the inventory this process works with, for the last line of defence: errors
/// printed at the very end, outside any event.
static REGISTERED: std::sync::Mutex<Option<Secrets>> = std::sync::Mutex::new(None);

/// Makes `secrets` the ones [`mask_registered`] masks.
pub fn register(secrets: &Secrets) {
    if let Ok(mut r) = REGISTERED.lock() {
        *r = Some(secrets.clone());
    }
}

/// `text` masked with the registered secrets.
pub fn mask_registered(text: &str) -> String {
    match REGISTERED.lock() {
        Ok(r) => r
            .as_ref()
            .map_or_else(|| text.to_string(), |s| s.mask(text)),
        Err(_) => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_words_not_parts_of_other_text() {
        let s = Secrets::new(vec!["11".into(), "s3cret".into()]);
        assert_eq!(s.mask("auth_pass 11"), "auth_pass ********");
        assert_eq!(s.mask("vip 192.168.184.11/24"), "vip 192.168.184.11/24");
        assert_eq!(
            s.mask("a=11 b=\"11\" c:11@x"),
            "a=******** b=\"********\" c:********@x"
        );
        assert_eq!(s.mask("x11 11x 111"), "x11 11x 111");
        assert_eq!(s.mask("pw s3cret, mys3cret"), "pw ********, mys3cret");
        assert_eq!(s.mask_in_place("pass: \"s3cret\""), "pass: \"******\"");
    }

    #[test]
    fn a_changed_password_is_masked_on_the_old_side_of_a_diff() {
        let s = Secrets::new(vec!["newpass1".into()]);
        let old = "vrrp {\n    auth_pass oldpass9\n    state MASTER\n}\n";
        let new = "vrrp {\n    auth_pass newpass1\n    state MASTER\n}\n";
        let diff = similar::TextDiff::from_lines(old, new)
            .unified_diff()
            .header("a", "b")
            .to_string();
        let masked = s.mask_diff(&diff, new);
        assert!(
            !masked.contains("oldpass9") && !masked.contains("newpass1"),
            "{masked}"
        );
        assert!(
            masked.contains("-    auth_pass ********\n+    auth_pass ********\n"),
            "the change still shows: {masked}"
        );
        assert!(masked.contains(" state MASTER"));
        let one = s.mask_diff("-oldsecret\n+newpass1\n", "newpass1\n");
        assert_eq!(
            one, "-********\n+********\n",
            "a file that is only the secret"
        );
        let pw = s.mask_diff("-pw: \"old1\"\n+pw: \"newpass1\"\n", "pw: \"newpass1\"\n");
        assert_eq!(pw, "-pw: \"********\"\n+pw: \"********\"\n");
    }

    #[test]
    fn longer_secrets_first() {
        let s = Secrets::new(vec!["s3cr".into(), "s3cret".into()]);
        assert_eq!(s.mask("-s3cr\n+s3cret"), "-********\n+********");
    }

    #[test]
    fn finds_secrets_by_key_in_broken_files() {
        let text = "lvs:\n  vrrp: { virtual_router_id: 51, auth_pass: \"ab12\" }\n\
                    secrets:\n  db: hunter22   # the db\n  api: 'k-9'\nhosts: [\n";
        assert_eq!(values_by_key(text), vec!["ab12", "hunter22", "k-9"]);
        assert_eq!(
            values_by_key("secrets: { a: x1, b: \"y 2\" }\n  auth_pass: pw\n"),
            vec!["x1", "y 2", "pw"]
        );
    }

    #[test]
    fn punctuation_after_a_secret_ends_the_word() {
        let s = Secrets::new(vec!["S3cr3t".into(), "11".into()]);
        for text in [
            "token S3cr3t.",
            "S3cr3t, then",
            "\"S3cr3t\"",
            "(S3cr3t)",
            "S3cr3t...",
        ] {
            let masked = s.mask(text);
            assert!(!masked.contains("S3cr3t"), "{text} -> {masked}");
        }
        assert_eq!(s.mask("it is 11."), "it is ********.");
        // A `.` between word characters still joins: addresses and names are left alone.
        assert_eq!(s.mask("192.168.184.11/24"), "192.168.184.11/24");
        assert_eq!(s.mask("11.0.0.1 S3cr3t.example"), "11.0.0.1 S3cr3t.example");
    }

    #[test]
    fn a_multi_line_secret_is_masked_line_by_line() {
        let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nab/+Z\nx\n-----END PRIVATE KEY-----";
        let s = Secrets::new(vec![pem.into()]);
        // A diff of the rendered file shows the key's lines one by one, indented.
        let diff = "@@ -0,0 +1,5 @@\n+key: |\n+  -----BEGIN PRIVATE KEY-----\n+  MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n+  ab/+Z\n+  x\n";
        let masked = s.mask_diff(diff, "");
        for line in pem.lines().filter(|l| l.len() >= MIN_DISTINCT_LEN) {
            assert!(!masked.contains(line), "{line} in {masked}");
        }
        assert!(masked.contains("+  ********\n+  ab/+Z\n+  x\n"), "{masked}");
        // The whole secret is still masked whole.
        assert_eq!(s.mask(&format!("[{pem}]")), "[********]");
    }

    #[test]
    fn finds_block_scalar_secrets_by_key() {
        let text = "secrets:\n  db_pass: >-\n    first-line-1\n\n    second 2 # not a comment\n  api: k9k9k9\nlvs:\n  vrrp:\n    auth_pass: |\n      pw9pw9\n    state: x\nhosts: [\n";
        assert_eq!(
            values_by_key(text),
            vec![
                "first-line-1",
                "second 2 # not a comment",
                "k9k9k9",
                "pw9pw9"
            ]
        );
    }

    #[test]
    fn json_is_masked_before_it_is_encoded() {
        let secret = r#"pa"ss\wo"rd"#;
        let s = Secrets::new(vec![secret.into()]);
        let value =
            serde_json::json!({ "out": format!("x {secret} y"), "list": [secret], secret: 1 });
        let encoded = serde_json::to_string(&s.mask_json(value)).unwrap();
        assert!(
            !encoded.contains("pa\\\"ss") && !encoded.contains("wo\\\"rd"),
            "{encoded}"
        );
        assert_eq!(encoded.matches(MASK).count(), 3, "{encoded}");
    }
}
