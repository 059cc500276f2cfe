//! The IPVS table through ipvsadm: `sh/ipvs.rs`.

use super::{Answer, Call, State, change, done, read};
use crate::lvs::ipvs::{Rule, Server, Service, ServiceKey, Table};
use crate::lvs::{Endpoint, Forwarding, Protocol, SchedFlag};
use crate::transport::fake::{failed, out};
use crate::transport::sh;

const NO_IPVS: &str = "Can't initialize ipvs: Protocol not available\n\
                       Are you sure that IP Virtual Server is built in the kernel or as module?\n";

pub(super) fn answer(s: &mut State, call: &Call) -> Option<Answer> {
    if call.is(sh::ipvs_save().line()) {
        let answer = read(match &s.ipvs {
            Some(table) => out(0, &saved(table)),
            None => failed(2, NO_IPVS),
        });
        if let Some(table) = &mut s.ipvs {
            for r in std::mem::take(&mut s.ipvs_meanwhile) {
                let _ = apply(table, r);
            }
        }
        return answer;
    }
    // Each step one ipvsadm, or (beside keepalived) `{ ipvsadm A || ipvsadm B; }`: B when A
    // fails.
    let steps: Vec<Vec<Rule>> = call
        .line
        .split(" && ")
        .map(|one| {
            let alternatives = one
                .strip_prefix("{ ")
                .and_then(|o| o.strip_suffix("; }"))
                .unwrap_or(one);
            alternatives
                .split(" || ")
                .map(|a| rule(&shlex::split(a)?))
                .collect::<Option<Vec<Rule>>>()
        })
        .collect::<Option<_>>()?;
    let firsts: Vec<Rule> = steps.iter().filter_map(|s| s.first().cloned()).collect();
    let beside = sh::ipvs_apply_beside_keepalived(&firsts);
    if !call.is(sh::ipvs_apply(&firsts)) && !call.is(&beside) {
        return None;
    }
    let Some(table) = &mut s.ipvs else {
        return change(failed(2, NO_IPVS));
    };
    if s.unprivileged {
        return change(failed(2, "Permission denied (you must be root)\n"));
    }
    // One step after another, stopping at the first that fails.
    for step in steps {
        let mut said = None;
        for r in step {
            match apply(table, r) {
                Ok(()) => {
                    said = None;
                    break;
                }
                Err(e) => said = Some(e),
            }
        }
        if let Some(said) = said {
            return change(failed(1, &format!("{said}\n")));
        }
    }
    done()
}

/// The table as `ipvsadm -S -n` prints it.
fn saved(table: &Table) -> String {
    let key = |k: &ServiceKey| match k {
        ServiceKey::Address { protocol, endpoint } => {
            format!("{} {endpoint}", protocol.ipvsadm_flag())
        }
        ServiceKey::Fwmark(m) => format!("-f {m}"),
    };
    let mut text = String::new();
    for service in &table.services {
        // As ipvsadm prints it: `-p T`, `-M MASK` only when it is not one address.
        let mut extra = String::new();
        if let Some(p) = service.persistence {
            extra.push_str(&format!(" -p {}", p.timeout));
            if let Some(m) = p.granularity {
                extra.push_str(&format!(" -M {m}"));
            }
        }
        if !service.flags.is_empty() {
            // Before -p, as ipvsadm prints it.
            extra.insert_str(0, &format!(" -b {}", SchedFlag::list(&service.flags)));
        }
        extra.extend(service.extra.iter().map(|e| format!(" {e}")));
        text.push_str(&format!(
            "-A {} -s {}{extra}\n",
            key(&service.key),
            service.scheduler
        ));
        for server in &service.real_servers {
            text.push_str(&format!(
                "-a {} -r {} {} -w {}\n",
                key(&service.key),
                server.endpoint,
                server.forwarding.ipvsadm_flag(),
                server.weight
            ));
        }
    }
    text
}

/// One ipvsadm call's words as the rule they are.
fn rule(words: &[String]) -> Option<Rule> {
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    if w == ["ipvsadm", "-C"] {
        return Some(Rule::Clear);
    }
    let key = match w.get(2..4)? {
        ["-f", mark] => ServiceKey::Fwmark(mark.parse().ok()?),
        [flag, endpoint] => ServiceKey::Address {
            protocol: Protocol::from_ipvsadm_flag(flag)?,
            endpoint: endpoint.parse().ok()?,
        },
        _ => return None,
    };
    let server = || -> Option<Server> {
        Some(Server {
            endpoint: w.get(5)?.parse().ok()?,
            forwarding: Forwarding::from_ipvsadm_flag(w.get(6)?)?,
            weight: w.get(8)?.parse().ok()?,
        })
    };
    // A service's options (scheduler, persistence, the rest) read as the model reads
    // `ipvsadm -S`, whose `-A` lines they are.
    let service = || -> Option<Service> {
        let line = format!("-A {}", w.get(2..)?.join(" "));
        Table::parse(&line).ok()?.services.pop()
    };
    Some(match w[..] {
        ["ipvsadm", "-A", ..] => {
            let s = service()?;
            if !s.extra.is_empty() {
                return None;
            }
            Rule::AddService {
                key,
                scheduler: s.scheduler,
                flags: s.flags,
                persistence: s.persistence,
            }
        }
        ["ipvsadm", "-E", ..] => {
            let s = service()?;
            Rule::EditService {
                key,
                scheduler: s.scheduler,
                flags: s.flags,
                persistence: s.persistence,
                extra: s.extra,
            }
        }
        ["ipvsadm", "-D", _, _] => Rule::DeleteService { key },
        ["ipvsadm", "-a", ..] => Rule::AddServer {
            key,
            server: server()?,
        },
        ["ipvsadm", "-e", ..] => Rule::EditServer {
            key,
            server: server()?,
        },
        ["ipvsadm", "-d", _, _, "-r", endpoint] => Rule::DeleteServer {
            key,
            endpoint: endpoint.parse::<Endpoint>().ok()?,
        },
        _ => return None,
    })
}

fn find(table: &mut Table, key: ServiceKey) -> Result<&mut Service, &'static str> {
    table
        .services
        .iter_mut()
        .find(|s| s.key == key)
        .ok_or("No such service")
}

/// What the kernel does with one rule; its refusal in ipvsadm's words.
fn apply(table: &mut Table, rule: Rule) -> Result<(), &'static str> {
    match rule {
        Rule::Clear => table.services.clear(),
        Rule::AddService {
            key,
            scheduler,
            flags,
            persistence,
        } => {
            if table.service(&key).is_some() {
                return Err("Service already exists");
            }
            table.services.push(Service {
                key,
                scheduler,
                flags,
                persistence,
                extra: Vec::new(),
                real_servers: Vec::new(),
            });
        }
        Rule::EditService {
            key,
            scheduler,
            flags,
            persistence,
            extra,
        } => {
            let service = find(table, key)?;
            service.scheduler = scheduler;
            // `ipvsadm -E` sets the flags anew: those not given are cleared.
            service.flags = flags;
            service.persistence = persistence;
            service.extra = extra;
        }
        Rule::DeleteService { key } => {
            find(table, key)?;
            table.services.retain(|s| s.key != key);
        }
        Rule::AddServer { key, server } => {
            let service = find(table, key)?;
            if service
                .real_servers
                .iter()
                .any(|s| s.endpoint == server.endpoint)
            {
                return Err("Destination already exists");
            }
            service.real_servers.push(server);
        }
        Rule::EditServer { key, server } => {
            let service = find(table, key)?;
            let Some(s) = service
                .real_servers
                .iter_mut()
                .find(|s| s.endpoint == server.endpoint)
            else {
                return Err("No such destination");
            };
            *s = server;
        }
        Rule::DeleteServer { key, endpoint } => {
            let service = find(table, key)?;
            let before = service.real_servers.len();
            service.real_servers.retain(|s| s.endpoint != endpoint);
            if service.real_servers.len() == before {
                return Err("No such destination");
            }
        }
    }
    Ok(())
}
