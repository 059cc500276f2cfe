//! `lvslab set KEY=VALUE`: one scalar of an inventory changed in place, the rest of the file
//! (comments, order, layout) kept byte for byte. The key must exist and hold a scalar (a typo
//! is an error, never a new key), and the result must load as an inventory before it is
//! written. Scripts use it instead of `sed`, which does nothing when a line reads otherwise.

use std::fmt;

use indexmap::IndexMap;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// A YAML document as far as an edit needs it: mappings with their keys, and where every value
/// is in the text.
enum Node {
    Map(IndexMap<String, Spanned<Node>>),
    Seq,
    Scalar,
}

impl<'de> serde::Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut out = IndexMap::new();
        while let Some(key) = map.next_key::<KeyText>()? {
            let value: Spanned<Node> = map.next_value()?;
            out.insert(key.0, value);
        }
        Ok(Node::Map(out))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok(Node::Seq)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
}

/// A mapping key as text (numbers and booleans too: `80: ...`).
struct KeyText(String);

impl<'de> serde::Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Ok(KeyText(match v {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        }))
    }
}

/// Why an edit was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("`{0}` is not KEY=VALUE (e.g. lvs.forwarding=tun)")]
    NotAssignment(String),
    #[error("the inventory is not YAML: {0}")]
    NotYaml(String),
    #[error("the inventory has no key `{key}`{valid}")]
    NoKey { key: String, valid: String },
    #[error("`{key}` holds {what}, not one value: edit the file for that")]
    NotScalar { key: String, what: &'static str },
    #[error("`{key}` is not a mapping")]
    NotMapping { key: String },
    #[error("cannot tell where the value of `{key}` is in the text (an alias or merge?)")]
    NoPosition { key: String },
}

/// `KEY=VALUE` split into the key's path and the value.
pub fn assignment(arg: &str) -> Result<(Vec<String>, String), EditError> {
    let (key, value) = arg
        .split_once('=')
        .filter(|(k, _)| !k.is_empty() && k.split('.').all(|p| !p.is_empty()))
        .ok_or_else(|| EditError::NotAssignment(arg.to_string()))?;
    Ok((
        key.split('.').map(str::to_string).collect(),
        value.to_string(),
    ))
}

/// An edited inventory, and the value's text before.
#[derive(Debug)]
pub struct Edited {
    pub text: String,
    pub was: String,
}

/// `text` with the scalar at `path` replaced by `value` (written as YAML: plain when it reads
/// back as the same string or number, or as a boolean where a boolean was; else double-quoted).
pub fn set(text: &str, path: &[String], value: &str) -> Result<Edited, EditError> {
    let root: Node = serde_saphyr::from_str(text).map_err(|e| EditError::NotYaml(e.to_string()))?;
    let target = walk(&root, path)?;
    let key = path.join(".");
    let was_flag = span_of(text, target).is_some_and(|(start, end)| is_flag(&text[start..end]));
    let written = if was_flag && is_flag(value) {
        value.to_ascii_lowercase()
    } else {
        scalar(value)
    };
    replace(text, target, &key, &written)
}

/// Whether YAML reads `word` as a boolean lvslab writes (`true`, `false`).
fn is_flag(word: &str) -> bool {
    matches!(word.to_ascii_lowercase().as_str(), "true" | "false")
}

/// `text` with `key: value` (a boolean) in the mapping at `map_path`: the value replaced when the
/// key is there, else the key added as the mapping's last, in its style (a line at the keys'
/// indentation, or `, key: value` before a flow mapping's `}`).
pub fn put_flag(
    text: &str,
    map_path: &[String],
    key: &str,
    value: bool,
) -> Result<Edited, EditError> {
    let root: Node = serde_saphyr::from_str(text).map_err(|e| EditError::NotYaml(e.to_string()))?;
    let map_key = map_path.join(".");
    let mapping = walk(&root, map_path)?;
    let Node::Map(entries) = &mapping.value else {
        return Err(EditError::NotMapping { key: map_key });
    };
    let full = format!("{map_key}.{key}");
    if let Some(existing) = entries.get(key) {
        return replace(text, existing, &full, &value.to_string());
    }
    let no_position = || EditError::NoPosition { key: full.clone() };
    // A mapping's span is where it starts (its `{`, or its first key).
    let (start, _) = span_of(text, mapping).ok_or_else(no_position)?;
    let mut out = String::with_capacity(text.len() + key.len() + 8);
    if text[start..].starts_with('{') {
        let close = flow_end(text, start).ok_or_else(no_position)?;
        let inside = text[start + 1..close].trim();
        out.push_str(text[..close].trim_end());
        out.push_str(if inside.is_empty() { " " } else { ", " });
        out.push_str(&format!("{key}: {value} "));
        out.push_str(&text[close..]);
    } else {
        // A block mapping: a line after its last, at its first key's column.
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let indent = &text[line_start..start];
        if !indent.chars().all(|c| c == ' ') {
            return Err(no_position());
        }
        let end = block_end(text, start, indent.len());
        out.push_str(&text[..end]);
        out.push_str(&format!("\n{indent}{key}: {value}"));
        if end == text.len() {
            out.push('\n');
        }
        out.push_str(&text[end..]);
    }
    Ok(Edited {
        text: out,
        was: String::new(),
    })
}

/// The offset of the `}` that closes the flow mapping opened at `open` (quotes skipped).
fn flow_end(text: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    for (i, c) in text[open..].char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '{' | '[') => depth += 1,
            (None, '}' | ']') => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return (c == '}').then_some(open + i);
                }
            }
            _ => {}
        }
    }
    None
}

/// The end of the last line of the block mapping whose first key is at `start`, in column
/// `indent`: the lines after it that are blank or indented at least as far belong to it.
fn block_end(text: &str, start: usize, indent: usize) -> usize {
    let mut end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let mut at = end;
    while at < text.len() {
        let line_start = at + 1;
        let line_end = text[line_start..]
            .find('\n')
            .map_or(text.len(), |i| line_start + i);
        let line = &text[line_start..line_end];
        let body = line.trim_start_matches(' ');
        if !body.is_empty() {
            if line.len() - body.len() < indent {
                break;
            }
            end = line_end;
        }
        at = line_end;
    }
    end
}

/// The value at `path`.
fn walk<'n>(root: &'n Node, path: &[String]) -> Result<&'n Spanned<Node>, EditError> {
    let key = path.join(".");
    let mut node = root;
    let mut found: Option<&Spanned<Node>> = None;
    for (i, part) in path.iter().enumerate() {
        let Node::Map(map) = node else {
            return Err(EditError::NotScalar {
                key: path[..i].join("."),
                what: "a list",
            });
        };
        let Some(next) = map.get(part) else {
            let keys: Vec<&str> = map.keys().map(String::as_str).collect();
            return Err(EditError::NoKey {
                key,
                valid: if keys.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (under `{}`: {})",
                        if i == 0 {
                            "the top".into()
                        } else {
                            path[..i].join(".")
                        },
                        keys.join(", ")
                    )
                },
            });
        };
        found = Some(next);
        node = &next.value;
    }
    found.ok_or(EditError::NotAssignment(key))
}

/// Where a value is in the text, as byte offsets; `None` for an alias or a merge.
fn span_of(text: &str, value: &Spanned<Node>) -> Option<(usize, usize)> {
    let span = value.referenced.span();
    let (start, len) = (span.byte_offset()?, span.byte_len()?);
    let (start, end) = (start as usize, (start + len) as usize);
    (value.referenced == value.defined && end <= text.len() && text.is_char_boundary(start))
        .then_some((start, end))
}

/// `text` with the scalar `target` (at `key`) written as `written`.
fn replace(
    text: &str,
    target: &Spanned<Node>,
    key: &str,
    written: &str,
) -> Result<Edited, EditError> {
    match target.value {
        Node::Scalar => {}
        Node::Map(_) => {
            return Err(EditError::NotScalar {
                key: key.to_string(),
                what: "a mapping",
            });
        }
        Node::Seq => {
            return Err(EditError::NotScalar {
                key: key.to_string(),
                what: "a list",
            });
        }
    }
    let (start, end) = span_of(text, target).ok_or_else(|| EditError::NoPosition {
        key: key.to_string(),
    })?;
    let mut out = String::with_capacity(text.len() + written.len());
    out.push_str(&text[..start]);
    out.push_str(written);
    out.push_str(&text[end..]);
    Ok(Edited {
        text: out,
        was: text[start..end].to_string(),
    })
}

/// `value` as a YAML scalar that reads back as itself: plain for words, numbers and paths,
/// double-quoted (JSON escapes are YAML's) for anything else.
fn scalar(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/-".contains(c))
        && !value.starts_with(['-', '.'])
        && !matches!(
            value.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        );
    if plain {
        value.to_string()
    } else {
        serde_json::Value::String(value.to_string()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INV: &str = "# a comment\nlvs:\n  vip: 198.18.0.100   # the VIP\n  forwarding: dr\n  health_check:\n    connect_timeout: 3\n    path: \"/\"\nhosts:\n  node1:\n    vrrp: { state: BACKUP, priority: 50 }\n  node3:\n    weight: 1\ngroups:\n  real_servers:\n    hosts: [node3]\n";

    fn edit(arg: &str) -> Result<String, EditError> {
        let (path, value) = assignment(arg)?;
        set(INV, &path, &value).map(|e| e.text)
    }

    #[test]
    fn a_scalar_changes_and_nothing_else() {
        let out = edit("lvs.forwarding=tun").unwrap();
        assert_eq!(out, INV.replace("forwarding: dr", "forwarding: tun"));
        let (path, _) = assignment("lvs.health_check.path=x").unwrap();
        assert_eq!(set(INV, &path, "x").unwrap().was, "\"/\"");
        let out = edit("lvs.health_check.connect_timeout=1").unwrap();
        assert_eq!(out, INV.replace("connect_timeout: 3", "connect_timeout: 1"));
        // The comment after the value stays.
        let out = edit("lvs.vip=198.18.0.200").unwrap();
        assert!(out.contains("  vip: 198.18.0.200   # the VIP\n"), "{out}");
        // Quoted values and values inside a flow mapping.
        let out = edit("lvs.health_check.path=/health").unwrap();
        assert!(out.contains("    path: /health\n"), "{out}");
        let out = edit("hosts.node1.vrrp.priority=150").unwrap();
        assert!(
            out.contains("vrrp: { state: BACKUP, priority: 150 }"),
            "{out}"
        );
        let out = edit("hosts.node3.weight=2").unwrap();
        assert_eq!(out, INV.replace("weight: 1", "weight: 2"));
    }

    #[test]
    fn a_flag_is_added_in_the_mappings_style_or_replaced() {
        let path = |p: &str| p.split('.').map(str::to_string).collect::<Vec<_>>();
        // A block mapping: a line at its keys' indentation, after its last value's line.
        let out = put_flag(INV, &path("hosts.node3"), "drained", true)
            .unwrap()
            .text;
        assert_eq!(
            out,
            INV.replace("    weight: 1\n", "    weight: 1\n    drained: true\n")
        );
        // Then replaced where it is.
        let back = put_flag(&out, &path("hosts.node3"), "drained", false).unwrap();
        assert_eq!(back.was, "true");
        assert_eq!(
            back.text,
            INV.replace("    weight: 1\n", "    weight: 1\n    drained: false\n")
        );
        // A flow mapping: before its `}`.
        let out = put_flag(INV, &path("hosts.node1.vrrp"), "nopreempt", true)
            .unwrap()
            .text;
        assert!(
            out.contains("vrrp: { state: BACKUP, priority: 50, nopreempt: true }\n"),
            "{out}"
        );
        let flow = "hosts:\n  node2: { address: 198.18.0.12 }\n  node3: {}\n";
        let out = put_flag(flow, &path("hosts.node2"), "drained", true)
            .unwrap()
            .text;
        assert_eq!(
            out,
            "hosts:\n  node2: { address: 198.18.0.12, drained: true }\n  node3: {}\n"
        );
        let out = put_flag(flow, &path("hosts.node3"), "drained", true)
            .unwrap()
            .text;
        assert!(out.contains("  node3: { drained: true }\n"), "{out}");
        // The last line of a file without its newline; a nested block as the last value.
        let out = put_flag("a:\n  b: 1", &path("a"), "c", true).unwrap().text;
        assert_eq!(out, "a:\n  b: 1\n  c: true\n");
        let nested = "hosts:\n  node2:\n    vars:\n      x: 1   # why\n  node3: {}\n";
        let out = put_flag(nested, &path("hosts.node2"), "drained", true)
            .unwrap()
            .text;
        assert_eq!(
            out,
            "hosts:\n  node2:\n    vars:\n      x: 1   # why\n    drained: true\n  node3: {}\n"
        );
        // Not a mapping, or no such host.
        assert!(matches!(
            put_flag(INV, &path("lvs.vip"), "x", true).unwrap_err(),
            EditError::NotMapping { .. }
        ));
        assert!(matches!(
            put_flag(INV, &path("hosts.node9"), "drained", true).unwrap_err(),
            EditError::NoKey { .. }
        ));
    }

    #[test]
    fn a_boolean_stays_a_boolean() {
        let text = "lvs:\n  vrrp: { unicast: false, name: \"true\" }\n";
        let path = |p: &str| p.split('.').map(str::to_string).collect::<Vec<_>>();
        let out = set(text, &path("lvs.vrrp.unicast"), "true").unwrap().text;
        assert_eq!(out, "lvs:\n  vrrp: { unicast: true, name: \"true\" }\n");
        // A string that reads "true" stays a string.
        let out = set(text, &path("lvs.vrrp.name"), "false").unwrap().text;
        assert!(out.contains("name: \"false\""), "{out}");
    }

    #[test]
    fn values_that_yaml_would_read_otherwise_are_quoted() {
        let out = edit("lvs.forwarding=yes").unwrap();
        assert!(out.contains("forwarding: \"yes\"\n"), "{out}");
        let out = edit("lvs.forwarding=a b: #c").unwrap();
        assert!(out.contains("forwarding: \"a b: #c\"\n"), "{out}");
    }

    #[test]
    fn a_missing_key_or_a_mapping_is_refused_with_the_keys_there() {
        let err = edit("lvs.health_check.conect_timeout=1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the inventory has no key `lvs.health_check.conect_timeout` (under `lvs.health_check`: connect_timeout, path)"
        );
        assert!(matches!(
            edit("lvs.health_check=1").unwrap_err(),
            EditError::NotScalar {
                what: "a mapping",
                ..
            }
        ));
        assert!(matches!(
            edit("groups.real_servers.hosts=x").unwrap_err(),
            EditError::NotScalar { what: "a list", .. }
        ));
        assert!(matches!(
            edit("lvs.forwarding").unwrap_err(),
            EditError::NotAssignment(_)
        ));
        assert!(matches!(
            edit("lvs..x=1").unwrap_err(),
            EditError::NotAssignment(_)
        ));
    }
}
