//! The IPVS table through ipvsadm: saved, listed, changed rule by rule.

use super::argv;

/// The IPVS table in `ipvsadm -S -n` form (rules), exit 2 with a message when IPVS is missing.
pub fn ipvs_save() -> &'static str {
    "ipvsadm -S -n"
}

/// Whether ipvsadm's error says the kernel has no IPVS.
pub fn no_ipvs(stderr: &str) -> bool {
    stderr.contains("Protocol not available") || stderr.contains("Can't initialize ipvs")
}

/// One ipvsadm invocation per rule, stopping at the first failure.
pub fn ipvs_apply(rules: &[crate::lvs::ipvs::Rule]) -> String {
    rules
        .iter()
        .map(|r| {
            let mut w = vec!["ipvsadm".to_string()];
            w.extend(r.argv());
            argv(&w)
        })
        .collect::<Vec<_>>()
        .join(" && ")
}

/// Table with counters and the connection table, for status and verify.
pub fn ipvs_list_stats() -> &'static str {
    "ipvsadm -L -n --stats"
}

pub fn ipvs_connections() -> &'static str {
    "ipvsadm -L -n -c"
}

/// The counters of one virtual service (`tcp 198.18.0.100:80`): prints its line of
/// `ipvsadm -L -n --stats --exact` (`TCP 198.18.0.100:80 Conns InPkts OutPkts InBytes OutBytes`).
pub fn ipvs_service_stats(protocol_flag: &str, endpoint: &str) -> String {
    format!(
        "{} | sed -n 4p",
        argv(&[
            "ipvsadm",
            "-L",
            "-n",
            "--stats",
            "--exact",
            protocol_flag,
            endpoint
        ])
    )
}
