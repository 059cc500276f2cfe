//! The firewall marks of firewall-mark services: the rule that marks a client's packets to the
//! VIP on a service's ports, as lvslab writes it in its own nftables table on every director
//! (the BACKUP too, so that the marks are there when it takes the VIP over), and as read back
//! from `nft -j` to compare.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Lvs, Protocol};

/// lvslab's nftables table (family `ip`): nothing else is in it, and `down` deletes it.
pub const TABLE: &str = "lvslab";
/// Its one chain, at the prerouting hook with the mangle priority (before IPVS sees the
/// packet at LOCAL_IN).
pub const CHAIN: &str = "prerouting";
/// nftables' number for the mangle priority.
const MANGLE_PRIORITY: i64 = -150;

/// Packets to `vip` on `ports` get `mark`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkRule {
    pub mark: u32,
    pub vip: IpAddr,
    pub protocol: Protocol,
    /// In ascending order.
    pub ports: Vec<u16>,
}

impl MarkRule {
    pub fn new(mark: u32, vip: IpAddr, protocol: Protocol, ports: &[u16]) -> Self {
        let mut ports = ports.to_vec();
        ports.sort_unstable();
        MarkRule {
            mark,
            vip,
            protocol,
            ports,
        }
    }
}

impl fmt::Display for MarkRule {
    /// nft's own syntax: `ip daddr 198.18.0.100 tcp dport { 8081, 8082 } meta mark set 1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ports: Vec<String> = self.ports.iter().map(u16::to_string).collect();
        write!(
            f,
            "ip daddr {} {} dport {{ {} }} meta mark set {}",
            self.vip,
            self.protocol,
            ports.join(", "),
            self.mark
        )
    }
}

/// lvslab's table as a host has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MarkTable {
    /// Whether the table exists.
    pub exists: bool,
    /// Whether its chain is lvslab's (prerouting hook, mangle priority).
    pub chain_ok: bool,
    /// The marking rules, sorted.
    pub rules: Vec<MarkRule>,
    /// Rules of another shape (someone else's): the table is then rewritten.
    pub unknown: usize,
}

impl MarkTable {
    /// Reads `nft -j list table ip lvslab` (an absent table: `{"nftables": []}`).
    pub fn parse(json: &str) -> Result<MarkTable, String> {
        let v: Value =
            serde_json::from_str(json).map_err(|e| format!("nft's JSON does not parse: {e}"))?;
        let items = v
            .get("nftables")
            .and_then(Value::as_array)
            .ok_or("nft's JSON has no `nftables` list")?;
        let mut t = MarkTable::default();
        for item in items {
            if let Some(table) = item.get("table") {
                t.exists |= table.get("name").and_then(Value::as_str) == Some(TABLE);
            }
            if let Some(chain) = item.get("chain") {
                if chain.get("name").and_then(Value::as_str) == Some(CHAIN) {
                    t.chain_ok = chain.get("hook").and_then(Value::as_str) == Some("prerouting")
                        && chain.get("type").and_then(Value::as_str) == Some("filter")
                        && chain.get("prio").and_then(Value::as_i64) == Some(MANGLE_PRIORITY);
                } else {
                    t.unknown += 1;
                }
            }
            if let Some(rule) = item.get("rule") {
                match mark_rule(rule) {
                    Some(r) => t.rules.push(r),
                    None => t.unknown += 1,
                }
            }
        }
        t.rules.sort();
        Ok(t)
    }

    /// Whether the host's table is exactly `want` (sorted).
    pub fn holds(&self, want: &[MarkRule]) -> bool {
        self.exists && self.chain_ok && self.unknown == 0 && self.rules == want
    }

    /// One line per rule, for diffs.
    pub fn text(&self) -> String {
        if !self.exists {
            return String::new();
        }
        let mut out = format!("table ip {TABLE}\n");
        for r in &self.rules {
            out.push_str(&format!("  {r}\n"));
        }
        if self.unknown > 0 || !self.chain_ok {
            out.push_str("  (and rules or chains lvslab did not write)\n");
        }
        out
    }
}

/// `ip daddr A <proto> dport P|{P..} meta mark set M`, the only shape lvslab writes.
fn mark_rule(rule: &Value) -> Option<MarkRule> {
    if rule.get("chain").and_then(Value::as_str) != Some(CHAIN) {
        return None;
    }
    let exprs = rule.get("expr")?.as_array()?;
    let [daddr, dport, set] = exprs.as_slice() else {
        return None;
    };
    let payload = |m: &Value| -> Option<(String, String, Value)> {
        let m = m.get("match")?;
        if m.get("op").and_then(Value::as_str) != Some("==") {
            return None;
        }
        let p = m.get("left")?.get("payload")?;
        Some((
            p.get("protocol")?.as_str()?.to_string(),
            p.get("field")?.as_str()?.to_string(),
            m.get("right")?.clone(),
        ))
    };
    let (ip, field, vip) = payload(daddr)?;
    if ip != "ip" || field != "daddr" {
        return None;
    }
    let vip: IpAddr = vip.as_str()?.parse().ok()?;
    let (proto, field, ports) = payload(dport)?;
    if field != "dport" {
        return None;
    }
    let protocol = match proto.as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => return None,
    };
    let port = |v: &Value| v.as_u64().and_then(|p| u16::try_from(p).ok());
    let ports: Vec<u16> = match ports.get("set") {
        Some(set) => set.as_array()?.iter().map(port).collect::<Option<_>>()?,
        None => vec![port(&ports)?],
    };
    let mangle = set.get("mangle")?;
    if mangle.get("key")?.get("meta")?.get("key")?.as_str()? != "mark" {
        return None;
    }
    let mark = u32::try_from(mangle.get("value")?.as_u64()?).ok()?;
    Some(MarkRule::new(mark, vip, protocol, &ports))
}

/// The nft script that makes lvslab's table exactly `rules` in one transaction (the table is
/// created, deleted and written anew: no moment without the marks that stay).
pub fn ruleset(rules: &[MarkRule]) -> String {
    let mut out = format!(
        "table ip {TABLE}\ndelete table ip {TABLE}\ntable ip {TABLE} {{\n  chain {CHAIN} {{\n    type filter hook prerouting priority mangle; policy accept;\n"
    );
    for r in rules {
        out.push_str(&format!("    {r}\n"));
    }
    out.push_str("  }\n}\n");
    out
}

impl Lvs {
    /// The marks of the firewall-mark services, sorted.
    pub fn marks(&self) -> Vec<MarkRule> {
        let mut v: Vec<MarkRule> = self
            .services
            .iter()
            .filter_map(|s| {
                s.fwmark
                    .map(|m| MarkRule::new(m, s.vip, s.protocol, &s.ports))
            })
            .collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `nft -j list table ip lvslab` as nftables 1.0.6 (Debian 12) printed it after lvslab's
    /// ruleset with a rule of two ports and one of one (captured in a network namespace).
    const LISTED: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "ip", "name": "lvslab", "handle": 2}}, {"chain": {"family": "ip", "table": "lvslab", "name": "prerouting", "handle": 1, "type": "filter", "hook": "prerouting", "prio": -150, "policy": "accept"}}, {"rule": {"family": "ip", "table": "lvslab", "chain": "prerouting", "handle": 3, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "198.18.0.100"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": {"set": [8081, 8082]}}}, {"mangle": {"key": {"meta": {"key": "mark"}}, "value": 1}}]}}, {"rule": {"family": "ip", "table": "lvslab", "chain": "prerouting", "handle": 4, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "198.18.0.100"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": 53}}, {"mangle": {"key": {"meta": {"key": "mark"}}, "value": 7}}]}}]}"#;

    fn vip() -> IpAddr {
        "198.18.0.100".parse().unwrap()
    }

    #[test]
    fn lvslabs_table_reads_back_as_its_rules() {
        let t = MarkTable::parse(LISTED).unwrap();
        let want = vec![
            MarkRule::new(1, vip(), Protocol::Tcp, &[8082, 8081]),
            MarkRule::new(7, vip(), Protocol::Udp, &[53]),
        ];
        assert!(t.holds(&want), "{t:?}");
        assert!(!t.holds(&want[..1]));
        assert_eq!(
            want[0].to_string(),
            "ip daddr 198.18.0.100 tcp dport { 8081, 8082 } meta mark set 1"
        );
        let absent = MarkTable::parse(r#"{"nftables": []}"#).unwrap();
        assert!(!absent.exists && absent.text().is_empty());
        assert!(!absent.holds(&[]), "an absent table is not an empty one");
    }

    #[test]
    fn a_rule_lvslab_did_not_write_is_not_taken_for_one() {
        // Another action (accept instead of the mark), and an extra chain.
        let other = LISTED.replace(
            r#"{"mangle": {"key": {"meta": {"key": "mark"}}, "value": 7}}"#,
            r#"{"accept": null}"#,
        );
        let t = MarkTable::parse(&other).unwrap();
        assert_eq!((t.rules.len(), t.unknown), (1, 1));
        let chain = LISTED.replace(r#""prio": -150"#, r#""prio": 0"#);
        assert!(!MarkTable::parse(&chain).unwrap().chain_ok);
        assert!(MarkTable::parse("Error: x").is_err());
    }

    #[test]
    fn the_ruleset_replaces_the_table_in_one_go() {
        let s = ruleset(&[MarkRule::new(1, vip(), Protocol::Tcp, &[8081, 8082])]);
        assert_eq!(
            s,
            "table ip lvslab\ndelete table ip lvslab\ntable ip lvslab {\n  chain prerouting {\n    type filter hook prerouting priority mangle; policy accept;\n    ip daddr 198.18.0.100 tcp dport { 8081, 8082 } meta mark set 1\n  }\n}\n"
        );
    }
}
