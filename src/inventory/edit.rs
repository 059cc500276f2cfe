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
/// back as the same string or number, else double-quoted).
pub fn set(text: &str, path: &[String], value: &str) -> Result<Edited, EditError> {
    let root: Node = serde_saphyr::from_str(text).map_err(|e| EditError::NotYaml(e.to_string()))?;
    let key = path.join(".");
    let mut node = &root;
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
    let Some(target) = found else {
        return Err(EditError::NotAssignment(key));
    };
    match target.value {
        Node::Scalar => {}
        Node::Map(_) => {
            return Err(EditError::NotScalar {
                key,
                what: "a mapping",
            });
        }
        Node::Seq => {
            return Err(EditError::NotScalar {
                key,
                what: "a list",
            });
        }
    }
    let span = target.referenced.span();
    let (Some(start), Some(len)) = (span.byte_offset(), span.byte_len()) else {
        return Err(EditError::NoPosition { key });
    };
    let (start, end) = (start as usize, (start + len) as usize);
    if target.referenced != target.defined || end > text.len() || !text.is_char_boundary(start) {
        return Err(EditError::NoPosition { key });
    }
    let mut out = String::with_capacity(text.len() + value.len());
    out.push_str(&text[..start]);
    out.push_str(&scalar(value));
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
