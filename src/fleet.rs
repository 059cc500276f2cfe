//! The hosts of a run: one connection each, opened on first use and kept for the whole run, with
//! the host's facts gathered once right after login.
//!
//! The fleet reaches hosts through a [`Connector`], which hands out a [`Transport`] per host:
//! SSH ([`SshConnector`]) in real runs, a scripted fake in the runner's unit tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;

use crate::facts::Facts;
use crate::inventory::{Connection, Host, Jump};
pub use crate::transport::Connector;
use crate::transport::ssh::{JumpHost, SshOptions, SshTransport};
use crate::transport::{BoxFuture, Session, Transport, TransportError, sh};

/// A connected host.
pub struct Connected {
    pub session: Session,
    pub facts: Facts,
}

/// A host's connection, made once: the connection or why it could not be made.
type Slot = Arc<OnceCell<Result<Arc<Connected>, TransportError>>>;

pub struct Fleet {
    connector: Arc<dyn Connector>,
    command_timeout: Duration,
    hosts: Mutex<HashMap<String, Slot>>,
}

impl Fleet {
    pub fn new(connector: Arc<dyn Connector>, command_timeout: Duration) -> Self {
        Fleet {
            connector,
            command_timeout,
            hosts: Mutex::new(HashMap::new()),
        }
    }

    /// A fleet that reaches hosts over SSH.
    pub fn ssh(options: SshOptions, command_timeout: Duration) -> Self {
        Fleet::new(Arc::new(SshConnector::new(options)), command_timeout)
    }

    fn cell(&self, name: &str) -> Slot {
        let mut map = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(name.to_string()).or_default().clone()
    }

    /// The host's connection, opening it (and gathering facts) the first time.
    pub async fn connect(&self, host: &Host) -> Result<Arc<Connected>, TransportError> {
        let cell = self.cell(&host.name);
        cell.get_or_init(|| async {
            let transport = self.connector.connect(host).await?;
            let session =
                Session::new(transport, host.connection.become_root, self.command_timeout);
            let facts = gather_facts(&session, &host.name).await?;
            Ok(Arc::new(Connected { session, facts }))
        })
        .await
        .clone()
    }

    /// Mark a host as lost: later uses fail at once instead of timing out again.
    pub fn forget(&self, host: &str, error: TransportError) {
        let cell = Arc::new(OnceCell::new_with(Some(Err(error))));
        let mut map = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(host.to_string(), cell);
    }

    /// Round trips per connected host.
    pub fn round_trips(&self) -> HashMap<String, u32> {
        let map = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .filter_map(|(name, cell)| match cell.get() {
                Some(Ok(c)) => Some((name.clone(), c.session.round_trips())),
                _ => None,
            })
            .collect()
    }

    /// Close every connection.
    pub async fn close(&self) {
        let cells: Vec<_> = {
            let map = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
            map.values().cloned().collect()
        };
        for cell in cells {
            if let Some(Ok(c)) = cell.get() {
                c.session.close().await;
            }
        }
        self.connector.close().await;
    }
}

/// A jump host's connection, made once for every host behind it.
type JumpSlot = Arc<OnceCell<Result<Arc<JumpHost>, TransportError>>>;

/// SSH to every host; hosts behind the same jump host share one connection to it.
pub struct SshConnector {
    ssh: SshOptions,
    jumps: Mutex<HashMap<Jump, JumpSlot>>,
}

impl SshConnector {
    pub fn new(ssh: SshOptions) -> Self {
        SshConnector {
            ssh,
            jumps: Mutex::new(HashMap::new()),
        }
    }

    /// The connection to `jump`, opened the first time a host behind it connects, with the jump
    /// host's own identity and known_hosts (see [`Jump`]); its key is checked under its own
    /// name and port.
    async fn jump_host(&self, jump: &Jump) -> Result<Arc<JumpHost>, TransportError> {
        let cell = {
            let mut map = self.jumps.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(jump.clone()).or_default().clone()
        };
        cell.get_or_init(|| async {
            let conn = Connection {
                target: jump.target.clone(),
                port: jump.port,
                user: jump.user.clone(),
                identity_file: jump.identity_file.clone(),
                known_hosts: jump.known_hosts.clone(),
                become_root: false,
                jump: None,
            };
            JumpHost::connect(&conn, &self.ssh).await.map(Arc::new)
        })
        .await
        .clone()
    }
}

impl Connector for SshConnector {
    fn connect<'a>(
        &'a self,
        host: &'a Host,
    ) -> BoxFuture<'a, Result<Arc<dyn Transport>, TransportError>> {
        Box::pin(async move {
            let via = match &host.connection.jump {
                Some(jump) => Some(self.jump_host(jump).await?),
                None => None,
            };
            let transport = SshTransport::connect(&host.connection, &self.ssh, via).await?;
            Ok(Arc::new(transport) as Arc<dyn Transport>)
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let jumps: Vec<_> = {
                let map = self.jumps.lock().unwrap_or_else(|p| p.into_inner());
                map.values().cloned().collect()
            };
            for cell in jumps {
                if let Some(Ok(jump)) = cell.get() {
                    jump.close().await;
                }
            }
        })
    }
}

/// Reads the facts of `host` in one round trip. Facts that cannot be read (sudo asks for a
/// password, no shell, ...) are an error naming the host, never empty facts.
async fn gather_facts(session: &Session, host: &str) -> Result<Facts, TransportError> {
    let query = sh::facts();
    let out = session.run(query.line()).await?;
    let facts = query
        .parse(&out.stdout_str())
        .map_err(|e| TransportError::NoFacts {
            host: host.to_string(),
            reason: e.to_string(),
        })?;
    if !out.success() || facts.init.is_empty() || facts.kernel.is_empty() {
        let why = out.stderr_str();
        let why = why.trim();
        return Err(TransportError::NoFacts {
            host: host.to_string(),
            reason: if why.is_empty() {
                format!(
                    "the facts script printed nothing usable ({})",
                    out.describe_status()
                )
            } else {
                why.lines().take(3).collect::<Vec<_>>().join(" ")
            },
        });
    }
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::inventory::Inventory;
    use crate::transport::fake::{FakeHosts, out};

    fn inventory() -> Inventory {
        let yaml = "hosts:\n  a: { address: 10.0.0.11 }\n  b: { address: 10.0.0.12 }\n  \
                    gone: { address: 10.0.0.13 }\n  mute: { address: 10.0.0.14 }\n";
        crate::inventory::load_str(Path::new("inv.yml"), yaml.to_string())
            .unwrap_or_else(|e| panic!("{e:?}"))
            .0
    }

    /// `a` and `b` answer; `gone` has no script (cannot be reached); `mute`'s facts script
    /// prints nothing.
    fn fleet() -> (Fleet, Arc<FakeHosts>, Inventory) {
        let hosts = Arc::new(
            FakeHosts::default()
                .host("a", |_| out(0, ""))
                .host("b", |_| out(0, ""))
                .host("mute", |_| out(0, ""))
                .facts("mute", ""),
        );
        (
            Fleet::new(hosts.clone(), Duration::from_secs(5)),
            hosts,
            inventory(),
        )
    }

    fn host<'a>(inventory: &'a Inventory, name: &str) -> &'a Host {
        inventory
            .host(name)
            .unwrap_or_else(|| panic!("no host {name}"))
    }

    #[tokio::test]
    async fn a_host_connects_once_and_its_facts_are_gathered_once() {
        let (fleet, hosts, inventory) = fleet();
        let a = host(&inventory, "a");
        let all = futures::future::join_all((0..10).map(|_| fleet.connect(a))).await;
        let first = all[0].as_ref().unwrap_or_else(|e| panic!("{e}"));
        assert!(
            all.iter()
                .all(|c| c.as_ref().is_ok_and(|c| Arc::ptr_eq(c, first)))
        );
        assert_eq!(first.facts.init, "systemd");
        assert_eq!(hosts.connections("a"), 1);
        assert_eq!(fleet.round_trips().get("a"), Some(&1), "the facts, once");
        first
            .session
            .run("true")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(fleet.round_trips().get("a"), Some(&2));
    }

    #[tokio::test]
    async fn a_host_that_cannot_be_reached_or_read_says_so() {
        let (fleet, hosts, inventory) = fleet();
        for _ in 0..2 {
            let Err(e) = fleet.connect(host(&inventory, "gone")).await else {
                panic!("gone was reached");
            };
            assert!(e.is_unreachable());
            assert_eq!(
                e.to_string(),
                "cannot connect to gone: no answer within 1 s"
            );
        }
        let Err(e) = fleet.connect(host(&inventory, "mute")).await else {
            panic!("mute's facts were read");
        };
        assert_eq!(
            e.to_string(),
            "cannot read the facts of mute: the facts script printed nothing usable (exit status 0)"
        );
        assert_eq!(hosts.connections("mute"), 1);
        assert!(fleet.round_trips().is_empty(), "no host is connected");
    }

    #[tokio::test]
    async fn a_host_forgotten_as_lost_is_not_connected_again() {
        let (fleet, hosts, inventory) = fleet();
        let a = host(&inventory, "a");
        assert!(fleet.connect(a).await.is_ok());
        fleet.forget(
            "a",
            TransportError::Lost {
                target: "a".into(),
                reason: "broken pipe".into(),
            },
        );
        let Err(e) = fleet.connect(a).await else {
            panic!("a connected again");
        };
        assert_eq!(e.to_string(), "connection to a lost: broken pipe");
        assert_eq!(hosts.connections("a"), 1);
    }

    #[tokio::test]
    async fn closing_closes_every_connected_host() {
        let (fleet, hosts, inventory) = fleet();
        for name in ["a", "b", "gone"] {
            let _ = fleet.connect(host(&inventory, name)).await;
        }
        assert!(!hosts.closed("a"));
        fleet.close().await;
        assert!(hosts.closed("a") && hosts.closed("b"));
    }

    #[tokio::test]
    async fn the_facts_script_runs_on_this_machine() {
        let s = Session::new(
            std::sync::Arc::new(crate::transport::local::Local),
            false,
            std::time::Duration::from_secs(10),
        );
        let f = gather_facts(&s, "localhost").await.unwrap();
        assert!(!f.init.is_empty() && !f.ipvs.is_empty());
        assert!(
            f.addresses.iter().any(|(d, _)| d == "lo"),
            "{:?}",
            f.addresses
        );
        // The shell's look-up agrees with lvslab's own on this machine.
        let mut here =
            crate::programs::absent_here(crate::programs::of(crate::programs::Place::Host));
        let mut absent = f.absent.clone();
        here.sort();
        absent.sort();
        assert_eq!(absent, here);
    }
}
