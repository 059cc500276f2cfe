//! Addresses as the LVS world writes them: an endpoint (`198.18.0.100:80`, `[2001:db8::1]:80`)
//! and an address with its prefix (`198.18.0.100/24`).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An address and port, written as ipvsadm, curl and keepalived's logs write them: IPv6 in
/// brackets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub address: IpAddr,
    pub port: u16,
}

impl Endpoint {
    pub fn new(address: IpAddr, port: u16) -> Self {
        Endpoint { address, port }
    }

    /// `http://198.18.0.100:80/path`.
    pub fn http_url(&self, path: &str) -> String {
        format!("http://{self}{path}")
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.address {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.port),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.port),
        }
    }
}

impl FromStr for Endpoint {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not address:port");
        let (addr, port) = s.rsplit_once(':').ok_or_else(bad)?;
        let addr = addr
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(addr);
        Ok(Endpoint {
            address: addr.parse().map_err(|_| bad())?,
            port: port.parse().map_err(|_| bad())?,
        })
    }
}

impl Serialize for Endpoint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An address with its prefix length. Written `a.b.c.d/len`; a bare address means a host
/// route (/32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub address: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn new(address: IpAddr, prefix: u8) -> Result<Self, String> {
        let max = max_prefix(address);
        if prefix > max {
            return Err(format!("prefix /{prefix} is longer than /{max}"));
        }
        Ok(Cidr { address, prefix })
    }

    /// The address alone, as a host route.
    pub fn host(address: IpAddr) -> Self {
        Cidr {
            address,
            prefix: max_prefix(address),
        }
    }

    /// Whether `other` is inside this network.
    pub fn contains(&self, other: IpAddr) -> bool {
        same_network(self.address, other, self.prefix)
    }
}

fn max_prefix(address: IpAddr) -> u8 {
    if address.is_ipv4() { 32 } else { 128 }
}

/// Whether `a` and `b` are in one network of `prefix` bits (never across IPv4 and IPv6).
pub fn same_network(a: IpAddr, b: IpAddr, prefix: u8) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let p = u32::from(prefix.min(32));
            let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let p = u32::from(prefix.min(128));
            let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let address: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address"))?;
        match prefix {
            None => Ok(Cidr::host(address)),
            Some(p) => {
                let p: u8 = p
                    .trim()
                    .parse()
                    .map_err(|_| format!("`{s}`: `{p}` is not a prefix length"))?;
                Cidr::new(address, p).map_err(|e| format!("`{s}`: {e}"))
            }
        }
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_bracket_ipv6() {
        let v4 = Endpoint::new("198.18.0.100".parse().unwrap(), 80);
        let v6 = Endpoint::new("2001:db8::1".parse().unwrap(), 443);
        assert_eq!(v4.to_string(), "198.18.0.100:80");
        assert_eq!(v6.to_string(), "[2001:db8::1]:443");
        assert_eq!(v6.http_url("/"), "http://[2001:db8::1]:443/");
        assert_eq!("[2001:db8::1]:443".parse::<Endpoint>().unwrap(), v6);
        assert_eq!("198.18.0.100:80".parse::<Endpoint>().unwrap(), v4);
        assert!("198.18.0.100".parse::<Endpoint>().is_err());
    }

    #[test]
    fn cidrs_parse_and_contain() {
        let c: Cidr = "198.18.1.0/24".parse().unwrap();
        assert!(c.contains("198.18.1.77".parse().unwrap()));
        assert!(!c.contains("198.18.0.77".parse().unwrap()));
        assert_eq!("10.0.0.1".parse::<Cidr>().unwrap().prefix, 32);
        assert_eq!("::1".parse::<Cidr>().unwrap().prefix, 128);
        assert!("10.0.0.1/33".parse::<Cidr>().is_err());
        assert!("10.0.0.300/24".parse::<Cidr>().is_err());
        assert!(!same_network(
            "10.0.0.1".parse().unwrap(),
            "::1".parse().unwrap(),
            0
        ));
    }
}
