//! Names with a meaning in the LVS lab: the inventory's groups and the address labels lvslab
//! gives the VIP. Playbooks, the inventory checks and the probes all read them from here.

/// The group of directors (the hosts that hold the VIP and the IPVS table).
pub const DIRECTORS: &str = "directors";
/// The group of real servers (the hosts that answer for the VIP).
pub const REAL_SERVERS: &str = "real_servers";
/// The optional group of clients: verify and the drills send requests from its first host.
pub const CLIENTS: &str = "clients";
/// Every host; implicit.
pub const ALL: &str = "all";

/// The alias number of a VIP set by hand on a director (the seed's `ifconfig ens32:2`).
pub const MANUAL_ALIAS: u8 = 2;
/// The alias number of keepalived's VIP on a director (the seed's `label ens32:3`).
pub const KEEPALIVED_ALIAS: u8 = 3;
/// The label of the VIP on a real server's loopback (the seed's `ifconfig lo:3`).
pub const REAL_SERVER_LO_LABEL: &str = "lo:3";
/// Where a DR real server hides the VIP: its loopback.
pub const LOOPBACK: &str = "lo";
/// Where a TUN real server takes the VIP: the IP-in-IP tunnel device (module `ipip`).
pub const TUNNEL: &str = "tunl0";

/// The script keepalived runs on each VRRP transition of a director (`lvs.vrrp.notify`), and
/// the log it appends to (`lvslab status` reads it).
pub const NOTIFY_SCRIPT: &str = "/usr/local/sbin/lvslab-vrrp-notify";
pub const NOTIFY_LOG: &str = "/var/log/lvslab-vrrp.log";

/// Whether the VIP on `device` is held, i.e. answered for on a network: a real server's VIP on
/// its loopback (DR) or its tunnel (TUN) is hidden there and holds nothing.
pub fn holds_vip_on(device: &str) -> bool {
    !device.is_empty() && device != LOOPBACK && device != TUNNEL
}

/// Linux keeps interface names and address labels to 15 bytes.
pub const IFNAMSIZ_MAX: usize = 15;

/// `eth0:2`: an address label on `interface`.
pub fn alias(interface: &str, number: u8) -> String {
    format!("{interface}:{number}")
}

/// Whether `s` can name an interface (and stays a name once [`alias`] adds `:N`): letters,
/// digits and `_.-@`, at most 15 bytes with room for the alias. VLAN names like `eth0.100` are
/// interface names.
pub fn valid_interface(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= IFNAMSIZ_MAX
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.@-".contains(c))
        && !s.starts_with('-')
        && s != "."
        && s != ".."
}

/// Whether `s` can name a keepalived object (a `vrrp_script`): letters, digits, `_` and `-`,
/// at most 64 bytes.
pub fn valid_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
}

/// Whether `s` can be an address label: an interface name, optionally with `:` and a suffix.
pub fn valid_label(s: &str) -> bool {
    let (base, suffix) = s.split_once(':').unwrap_or((s, ""));
    s.len() <= IFNAMSIZ_MAX
        && valid_interface(base)
        && suffix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_and_label_names() {
        for good in ["eth0", "ens32", "eth0.100", "br-lan", "lo"] {
            assert!(valid_interface(good), "{good}");
        }
        for bad in [
            "",
            "eth0;reboot",
            "a b",
            "eth0:2",
            "-x",
            "0123456789abcdef",
            "..",
            "e\n",
        ] {
            assert!(!valid_interface(bad), "{bad:?}");
        }
        assert!(valid_label("eth0.100:3"));
        assert!(valid_label(&alias("ens32", MANUAL_ALIAS)));
        assert!(!valid_label("eth0:3 x"));
        assert!(!valid_label("averylonginterf:3"));
    }
}

/// An interface name, checked when it is read (a playbook literal fails in `validate`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Interface(pub String);

/// An address label (`eth0:2`), checked when it is read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Label(pub String);

impl<'de> serde::Deserialize<'de> for Interface {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        if valid_interface(&s) {
            Ok(Interface(s))
        } else {
            Err(serde::de::Error::custom(format!(
                "`{s}` is not an interface name (letters, digits, `_.@-`, at most {IFNAMSIZ_MAX} bytes)"
            )))
        }
    }
}

impl<'de> serde::Deserialize<'de> for Label {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        if valid_label(&s) {
            Ok(Label(s))
        } else {
            Err(serde::de::Error::custom(format!(
                "`{s}` is not an address label (an interface name, `:` and a suffix, at most {IFNAMSIZ_MAX} bytes)"
            )))
        }
    }
}
