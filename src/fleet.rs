//! The hosts of a run: one SSH connection each, opened on first use and kept for the whole run,
//! with the host's facts gathered once right after login. Hosts behind the same jump host share
//! one connection to it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;

use crate::facts::Facts;
use crate::inventory::{Connection, Host, Jump};
use crate::transport::ssh::{JumpHost, SshOptions, SshTransport};
use crate::transport::{Session, TransportError};

/// A connected host.
pub struct Connected {
    pub session: Session,
    pub facts: Facts,
}

/// A host's connection, made once: the connection or why it could not be made.
type Slot = Arc<OnceCell<Result<Arc<Connected>, TransportError>>>;
/// A jump host's connection, made once for every host behind it.
type JumpSlot = Arc<OnceCell<Result<Arc<JumpHost>, TransportError>>>;

pub struct Fleet {
    ssh: SshOptions,
    command_timeout: Duration,
    hosts: Mutex<HashMap<String, Slot>>,
    jumps: Mutex<HashMap<Jump, JumpSlot>>,
}

impl Fleet {
    pub fn new(ssh: SshOptions, command_timeout: Duration) -> Self {
        Fleet {
            ssh,
            command_timeout,
            hosts: Mutex::new(HashMap::new()),
            jumps: Mutex::new(HashMap::new()),
        }
    }

    /// The connection to `jump`, opened the first time a host behind it connects. It logs in
    /// with the key and known_hosts of `host`.
    async fn jump_host(
        &self,
        jump: &Jump,
        host: &Connection,
    ) -> Result<Arc<JumpHost>, TransportError> {
        let cell = {
            let mut map = self.jumps.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(jump.clone()).or_default().clone()
        };
        cell.get_or_init(|| async {
            let conn = Connection {
                target: jump.target.clone(),
                port: jump.port,
                user: jump.user.clone(),
                identity_file: host.identity_file.clone(),
                known_hosts: host.known_hosts.clone(),
                become_root: false,
                jump: None,
            };
            JumpHost::connect(&conn, &self.ssh).await.map(Arc::new)
        })
        .await
        .clone()
    }

    fn cell(&self, name: &str) -> Slot {
        let mut map = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(name.to_string()).or_default().clone()
    }

    /// The host's connection, opening it (and gathering facts) the first time.
    pub async fn connect(&self, host: &Host) -> Result<Arc<Connected>, TransportError> {
        let cell = self.cell(&host.name);
        cell.get_or_init(|| async {
            let via = match &host.connection.jump {
                Some(jump) => Some(self.jump_host(jump, &host.connection).await?),
                None => None,
            };
            let transport = SshTransport::connect(&host.connection, &self.ssh, via).await?;
            let session = Session::new(
                Arc::new(transport),
                host.connection.become_root,
                self.command_timeout,
            );
            let facts = Facts::gather(&session).await?;
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
        let jumps: Vec<_> = {
            let map = self.jumps.lock().unwrap_or_else(|p| p.into_inner());
            map.values().cloned().collect()
        };
        for cell in jumps {
            if let Some(Ok(jump)) = cell.get() {
                jump.close().await;
            }
        }
    }
}
