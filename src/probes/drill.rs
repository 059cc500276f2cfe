//! Drills: break something on purpose, measure the outage, restore.

use crate::commands::Setup;

pub async fn failover(_setup: &Setup) -> miette::Result<i32> {
    Err(miette::miette!("`lvslab drill failover` is not built yet"))
}

pub async fn realserver(_setup: &Setup, _node: &str) -> miette::Result<i32> {
    Err(miette::miette!(
        "`lvslab drill realserver` is not built yet"
    ))
}
