//! The hosts of a run: one SSH connection each, opened on first use and kept for the whole run,
//! with the host's facts gathered once right after login.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;

use crate::facts::Facts;
use crate::inventory::Host;
use crate::transport::ssh::{SshOptions, SshTransport};
use crate::transport::{Session, TransportError};

/// A connected host.
pub struct Connected {
    pub session: Session,
    pub facts: Facts,
}

/// A host's connection, made once: the connection or why it could not be made.
type Slot = Arc<OnceCell<Result<Arc<Connected>, TransportError>>>;

pub struct Fleet {
    ssh: SshOptions,
    command_timeout: Duration,
    hosts: Mutex<HashMap<String, Slot>>,
}

impl Fleet {
    pub fn new(ssh: SshOptions, command_timeout: Duration) -> Self {
        Fleet {
            ssh,
            command_timeout,
            hosts: Mutex::new(HashMap::new()),
        }
    }

    fn cell(&self, name: &str) -> Slot {
        let mut map = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(name.to_string()).or_default().clone()
    }

    /// The host's connection, opening it (and gathering facts) the first time.
    pub async fn connect(&self, host: &Host) -> Result<Arc<Connected>, TransportError> {
        let cell = self.cell(&host.name);
        cell.get_or_init(|| async {
            let transport = SshTransport::connect(&host.connection, &self.ssh).await?;
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
    }
}
