//! Requests sent from a host: HTTP GETs (one, a series, a load) and a TCP connect; and what a
//! web server logged of them.

use super::quote;

/// Print the HTTP status code of one GET (000 when it failed).
pub fn http_status(url: &str, timeout_secs: u32) -> String {
    format!(
        "curl -s -o /dev/null -m {timeout_secs} -w '%{{http_code}}' {}",
        quote(url)
    )
}

/// Send `count` HTTP GETs to `url` one after another; print one line per request:
/// `<http code> <client port> <curl's exit status> <body first line>` (code 000 when the
/// request failed).
pub fn http_probe(url: &str, count: u32, timeout_secs: u32) -> String {
    format!(
        "i=0; while [ $i -lt {count} ]; do i=$((i+1)); b=$(curl -s -m {timeout_secs} -w '\\n%{{http_code}} %{{local_port}}' {u} 2>/dev/null); e=$?; c=$(printf '%s' \"$b\" | tail -n 1); printf '%s %s %s\\n' \"${{c:-000 0}}\" \"$e\" \"$(printf '%s' \"$b\" | head -n 1)\"; done",
        u = quote(url)
    )
}

/// `requests` GETs of `url`, `concurrency` at once (each a curl of its own); prints one line per
/// request, `<http code> <seconds>`, then `wall <ms>` for the whole.
pub fn http_load(url: &str, requests: u32, concurrency: u32) -> String {
    let workers = concurrency.max(1);
    let per = requests.div_ceil(workers);
    format!(
        "s=$(date +%s%3N); i=0; while [ $i -lt {workers} ]; do i=$((i+1)); \
         ( j=0; while [ $j -lt {per} ]; do j=$((j+1)); curl -s -o /dev/null -m 5 -w '%{{http_code}} %{{time_total}}\\n' {u} || true; done ) & done; \
         wait; echo \"wall $(( $(date +%s%3N) - s ))\"",
        u = quote(url)
    )
}

/// Exits 0 when a TCP connection to `host`:`port` opens (bash's /dev/tcp; `host` is an address).
pub fn tcp_open(host: std::net::IpAddr, port: u16) -> String {
    format!(
        "bash -c {}",
        quote(&format!("exec 3<>/dev/tcp/{host}/{port}"))
    )
}

/// The client addresses of the requests in a web server's access log whose line holds `mark`:
/// `<count> <address>` lines (the log's first field is the client's address).
pub fn log_sources(log: &str, mark: &str) -> String {
    format!(
        "grep -F -- {} {} 2>/dev/null | awk '{{print $1}}' | sort | uniq -c",
        quote(mark),
        quote(log)
    )
}
