//! Devices, their addresses, routes, kernel modules; TCP connections and HTTP GETs from the
//! host: `sh/addresses.rs`, `sh/routes.rs`, `sh/links.rs`, `sh/requests.rs`.

use std::net::IpAddr;

use super::{Answer, Call, File, State, change, done, read};
use crate::lvs::{Cidr, Endpoint};
use crate::transport::fake::{failed, out};
use crate::transport::sh::{self, STATE_DIR};

/// A network device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub up: bool,
    pub addresses: Vec<Address>,
}

/// An address on a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub cidr: Cidr,
    /// As given (`lo:3`); the kernel shows an IPv4 address without one under its device's name.
    pub label: Option<String>,
}

/// A route, as the kernel holds it: a gateway, or none (on the link), and a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub via: Option<String>,
    pub dev: String,
}

impl Route {
    /// The `via`/`dev` words route_set keeps of it (its awk's line).
    fn kept(&self) -> String {
        match &self.via {
            Some(via) => format!("via {via} dev {}", self.dev),
            None => format!("dev {}", self.dev),
        }
    }

    /// From the words [`Route::kept`] writes.
    fn from_kept(text: &str) -> Option<Route> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let after = |k| {
            let i = words.iter().position(|w| *w == k)?;
            words.get(i + 1).map(|w| w.to_string())
        };
        Some(Route {
            via: after("via"),
            dev: after("dev")?,
        })
    }
}

const NOT_PERMITTED: &str = "RTNETLINK answers: Operation not permitted\n";

fn no_device(dev: &str) -> crate::transport::ExecOutput {
    failed(1, &format!("Cannot find device \"{dev}\"\n"))
}

fn route_orig_path(to: &str) -> String {
    format!("{STATE_DIR}/route-orig/{}", to.replace('/', "_"))
}

pub(super) fn answer(s: &mut State, call: &Call) -> Option<Answer> {
    addresses(s, call)
        .or_else(|| routes(s, call))
        .or_else(|| links(s, call))
        .or_else(|| requests(s, call))
}

fn addresses(s: &mut State, call: &Call) -> Option<Answer> {
    let listed = call
        .line
        .split_once("show dev ")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(dev, _)| dev.to_string())
        .unwrap_or_default();
    if call.is(sh::address_list(&listed).line()) {
        let Some(device) = s.devices.get(&listed) else {
            return read(failed(1, &format!("Device \"{listed}\" does not exist.\n")));
        };
        let lines: String = device
            .addresses
            .iter()
            .map(|a| {
                let label = match (&a.label, a.cidr.address.is_ipv4()) {
                    (Some(l), _) => l.as_str(),
                    (None, true) => listed.as_str(),
                    (None, false) => "",
                };
                format!("{} {label}\n", a.cidr)
            })
            .collect();
        return read(out(0, &lines));
    }
    // `ip addr add|del CIDR dev DEV [label LABEL]`
    let (cidr, dev) = (
        call.word(3).unwrap_or_default(),
        call.after("dev").unwrap_or_default(),
    );
    let label = call.after("label");
    if call.is(sh::address_add(dev, cidr, label)) {
        let cidr: Cidr = cidr.parse().ok()?;
        if s.unprivileged {
            return change(failed(2, NOT_PERMITTED));
        }
        let Some(device) = s.devices.get_mut(dev) else {
            return change(no_device(dev));
        };
        if device.addresses.iter().any(|a| a.cidr == cidr) {
            return change(failed(2, "RTNETLINK answers: File exists\n"));
        }
        device.addresses.push(Address {
            cidr,
            label: label.map(str::to_string),
        });
        return done();
    }
    if call.is(sh::address_del(dev, cidr)) {
        let cidr: Cidr = cidr.parse().ok()?;
        if s.unprivileged {
            return change(failed(2, NOT_PERMITTED));
        }
        let Some(device) = s.devices.get_mut(dev) else {
            return change(no_device(dev));
        };
        let before = device.addresses.len();
        device.addresses.retain(|a| a.cidr != cidr);
        if device.addresses.len() == before {
            return change(failed(
                2,
                "RTNETLINK answers: Cannot assign requested address\n",
            ));
        }
        return done();
    }
    let at = call.words.iter().position(|w| w == "-I");
    let nth = |n| at.and_then(|i| call.word(i + n)).unwrap_or_default();
    let (dev, ip) = (nth(1), nth(2));
    if call.is(sh::address_announce(dev, ip)) {
        // A gratuitous ARP: nothing of the host changes, but it is sent only with a change.
        return done();
    }
    None
}

fn routes(s: &mut State, call: &Call) -> Option<Answer> {
    let queried = call
        .line
        .split_once("show exact ")
        .and_then(|(_, rest)| rest.split(' ').next())
        .unwrap_or_default();
    if call.is(sh::route_query(queried).line()) {
        let now = match s.routes.get(queried) {
            Some(r) => match &r.via {
                Some(via) => format!("{queried} via {via} dev {} \n", r.dev),
                None => format!("{queried} dev {} scope link \n", r.dev),
            },
            None => "<none>\n".into(),
        };
        let kept = s
            .content(&route_orig_path(queried))
            .map_or_else(|| "<none>\n".to_string(), |k| format!("{k}\n"));
        return read(out(0, &format!("{now}{kept}")));
    }
    let restored = call
        .line
        .split_once("ip route del ")
        .and_then(|(_, rest)| rest.split(' ').next())
        .unwrap_or_default();
    if call.is(sh::route_restore(restored)) {
        return restore_route(s, restored);
    }
    let (_, replace) = call.line.rsplit_once("; ")?;
    let words = shlex::split(replace).unwrap_or_default();
    // `ip route replace TO via VIA [dev DEV]`
    let [_, _, _, to, _, via, rest @ ..] = &words[..] else {
        return None;
    };
    let dev = match rest {
        [d, dev] if d == "dev" => Some(dev.as_str()),
        _ => None,
    };
    if call.is(sh::route_set(to, via, dev)) {
        return set_route(s, to, via, dev);
    }
    None
}

/// The device through which `via` is reached: the one with an address of its network.
fn device_towards(s: &State, via: IpAddr) -> Option<String> {
    s.devices
        .iter()
        .find(|(_, d)| d.addresses.iter().any(|a| a.cidr.contains(via)))
        .map(|(name, _)| name.clone())
}

fn set_route(s: &mut State, to: &str, via: &str, dev: Option<&str>) -> Option<Answer> {
    let gateway: IpAddr = via.parse().ok()?;
    if s.unprivileged {
        return change(failed(
            1,
            &format!("mkdir: cannot create directory '{STATE_DIR}': Permission denied\n"),
        ));
    }
    let kept = s.routes.get(to).map(Route::kept).unwrap_or_default();
    s.files
        .entry(route_orig_path(to))
        .or_insert_with(|| File::new(&format!("{kept}\n")));
    let towards = device_towards(s, gateway);
    let dev = match dev {
        Some(d) if !s.devices.contains_key(d) => return change(no_device(d)),
        Some(d) if towards.as_deref() != Some(d) => {
            return change(failed(2, "Error: Nexthop has invalid gateway.\n"));
        }
        Some(d) => d.to_string(),
        None => match towards {
            Some(d) => d,
            None => return change(failed(2, "RTNETLINK answers: Network is unreachable\n")),
        },
    };
    s.routes.insert(
        to.into(),
        Route {
            via: Some(via.into()),
            dev,
        },
    );
    done()
}

fn restore_route(s: &mut State, to: &str) -> Option<Answer> {
    let Some(kept) = s.content(&route_orig_path(to)) else {
        return done();
    };
    if s.unprivileged {
        return change(failed(2, NOT_PERMITTED));
    }
    match Route::from_kept(&kept) {
        Some(route) => s.routes.insert(to.into(), route),
        None => s.routes.remove(to),
    };
    s.files.remove(&route_orig_path(to));
    done()
}

fn links(s: &mut State, call: &Call) -> Option<Answer> {
    // `if [ ! -e /sys/class/net/DEV ]; ...`
    let queried = call
        .word(4)
        .and_then(|w| w.strip_prefix("/sys/class/net/"))
        .unwrap_or_default();
    if call.is(sh::link_state(queried).line()) {
        let word = match s.devices.get(queried) {
            Some(d) if d.up => "up",
            Some(_) => "down",
            None => "absent",
        };
        return read(out(0, &format!("{word}\n")));
    }
    // `ip link set dev DEV up|down`
    let dev = call.word(4).unwrap_or_default();
    for up in [true, false] {
        if call.is(sh::link_set(dev, up)) {
            if s.unprivileged {
                return change(failed(2, NOT_PERMITTED));
            }
            let Some(device) = s.devices.get_mut(dev) else {
                return change(no_device(dev));
            };
            device.up = up;
            return done();
        }
    }
    // `modprobe MODULE`
    let module = call.word(1).unwrap_or_default();
    if call.is(sh::load_module(module)) {
        let Some(devices) = s.kernel_modules.get(module).cloned() else {
            return change(failed(
                1,
                &format!(
                    "modprobe: FATAL: Module {module} not found in directory /lib/modules/6.1.0\n"
                ),
            ));
        };
        if s.unprivileged {
            return change(failed(
                1,
                &format!("modprobe: ERROR: could not insert '{module}': Operation not permitted\n"),
            ));
        }
        for d in devices {
            s.devices.entry(d).or_insert(Device {
                up: false,
                addresses: Vec::new(),
            });
        }
        return done();
    }
    None
}

fn requests(s: &mut State, call: &Call) -> Option<Answer> {
    // `bash -c 'exec 3<>/dev/tcp/HOST/PORT'`
    let target = call
        .word(2)
        .and_then(|w| w.strip_prefix("exec 3<>/dev/tcp/"))
        .and_then(|t| t.rsplit_once('/'))
        .and_then(|(host, port)| Some(Endpoint::new(host.parse().ok()?, port.parse().ok()?)));
    if let Some(e) = target
        && call.is(sh::tcp_open(e.address, e.port))
    {
        return read(if s.listening.contains(&e) {
            out(0, "")
        } else {
            failed(
                1,
                &format!(
                    "bash: connect: Connection refused\nbash: line 1: /dev/tcp/{}/{}: Connection refused\n",
                    e.address, e.port
                ),
            )
        });
    }
    // `curl ... -m TIMEOUT ... URL`
    let url = call.words.last().map(String::as_str).unwrap_or_default();
    let timeout = call.after("-m").and_then(|t| t.parse().ok()).unwrap_or(0);
    if call.is(sh::http_status(url, timeout).line()) {
        let code = s.http.get(url).map_or_else(|| "000".into(), u16::to_string);
        return read(out(0, &code));
    }
    None
}
