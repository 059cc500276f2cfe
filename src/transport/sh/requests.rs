//! Requests sent from a host: HTTP GETs (one, a series, a load) and a TCP connect; and what a
//! web server logged of them.

use std::net::IpAddr;

use super::{ParseError, Read, argv, quote};

/// The HTTP status code of one GET: prints it, `000` when the request failed. An `https://`
/// URL's certificate is not checked (`-k`): lvslab's own are self-signed, and what is asked is
/// whether the server answers, as keepalived's SSL_GET asks it.
pub fn http_status(url: &str, timeout_secs: u32) -> Read<Option<u16>> {
    let line = format!(
        "curl -s -k -o /dev/null -m {timeout_secs} -w '%{{http_code}}' {}",
        quote(url)
    );
    Read::new(line, parse_http_status)
}

/// The code; `None` when there was no answer (`000`, or nothing printed: no curl).
fn parse_http_status(text: &str) -> Result<Option<u16>, ParseError> {
    Ok(text.trim().parse().ok().filter(|code| *code != 0))
}

/// Send `count` HTTP GETs to `url` one after another, each on a connection of its own (so
/// each is scheduled by IPVS as a new client connection), with one curl: a curl started per
/// request costs ~20x more where processes are slow to start (an emulated CPU). After each
/// request's page curl prints a line `@@lvslab <http code> <client port> <curl's exit status>`
/// (code 000 when the request failed; the exit status is missing before curl 7.75).
pub fn http_probe(url: &str, count: u32, timeout_secs: u32) -> Read<Vec<Answer>> {
    http_probe_from(url, count, timeout_secs, None)
}

/// [`http_probe`] from a source address of the client's own (`curl --interface`): another
/// client, as IPVS sees it. `None`: the address the client's routes choose. An `https://`
/// URL's certificate is not checked (`-k`, as for [`http_status`]), and each of its requests
/// is a curl of its own that closes its connection itself: with `Connection: close` the web
/// server closes a TLS connection first and resets the client's late close_notify, so the
/// director (which in DR and TUN sees only the client's packets) never sees the end and keeps
/// the entry ESTABLISHED for 15 minutes, counted as an active connection (a drain waited on
/// such entries in the VM).
pub fn http_probe_from(
    url: &str,
    count: u32,
    timeout_secs: u32,
    source: Option<std::net::IpAddr>,
) -> Read<Vec<Answer>> {
    let from = source.map_or(String::new(), |a| {
        format!(" --interface {}", quote(&a.to_string()))
    });
    let mark = format!("-w '\\n{ANSWER_MARK} %{{http_code}} %{{local_port}} %{{exitcode}}\\n'");
    let u = quote(url);
    let line = if url.starts_with("https://") {
        format!(
            "i=0; while [ $i -lt {count} ]; do i=$((i+1)); curl -s -k -m {timeout_secs}{from} {mark} {u} 2>/dev/null; done; true"
        )
    } else {
        format!(
            "set --; i=0; while [ $i -lt {count} ]; do i=$((i+1)); set -- \"$@\" {u}; done; \
             [ $# = 0 ] || curl -s -k -m {timeout_secs}{from} -H 'Connection: close' {mark} \"$@\" 2>/dev/null; true"
        )
    };
    Read::new(line, |text| Ok(Answer::parse_all(text)))
}

/// The line curl writes after each request of [`http_probe`].
const ANSWER_MARK: &str = "@@lvslab";

/// One request of [`http_probe`]: its HTTP status, the client's port, curl's exit status,
/// the page's first line (the lab's pages name their node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub code: String,
    pub port: u16,
    pub exit: u8,
    pub page: String,
}

impl Answer {
    /// A request per mark line, its page the first line printed since the mark before it.
    fn parse_all(text: &str) -> Vec<Answer> {
        let mut answers = Vec::new();
        let mut page: Option<&str> = None;
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(ANSWER_MARK) else {
                page.get_or_insert(line);
                continue;
            };
            let mut words = rest.split_whitespace();
            let code = words.next().unwrap_or("000").to_string();
            let port = words.next().and_then(|p| p.parse().ok()).unwrap_or(0);
            let exit = words.next().and_then(|e| e.parse().ok()).unwrap_or(0);
            answers.push(Answer {
                code,
                port,
                exit,
                page: page.take().unwrap_or("").trim().to_string(),
            });
        }
        answers
    }

    pub fn ok(&self) -> bool {
        self.code == "200"
    }

    /// Who answered: the page's first word.
    pub fn who(&self) -> &str {
        self.page.split_whitespace().next().unwrap_or("?")
    }
}

/// `requests` GETs of `url`, `concurrency` at once (each a curl of its own); prints one line per
/// request, `<http code> <seconds>`, then `wall <ms>` for the whole.
pub fn http_load(url: &str, requests: u32, concurrency: u32) -> Read<LoadAnswers> {
    let workers = concurrency.max(1);
    let per = requests.div_ceil(workers);
    let line = format!(
        "s=$(date +%s%3N); i=0; while [ $i -lt {workers} ]; do i=$((i+1)); \
         ( j=0; while [ $j -lt {per} ]; do j=$((j+1)); curl -s -o /dev/null -m 5 -w '%{{http_code}} %{{time_total}}\\n' {u} || true; done ) & done; \
         wait; echo \"wall $(( $(date +%s%3N) - s ))\"",
        u = quote(url)
    );
    Read::new(line, parse_http_load)
}

/// What [`http_load`] measured.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadAnswers {
    /// How long each answered (200) request took, in ms.
    pub times_ms: Vec<f64>,
    /// The requests not answered 200.
    pub failed: u32,
    /// The whole load, in ms (0 when it was not printed).
    pub wall_ms: u64,
}

fn parse_http_load(text: &str) -> Result<LoadAnswers, ParseError> {
    let mut load = LoadAnswers {
        times_ms: Vec::new(),
        failed: 0,
        wall_ms: 0,
    };
    for line in text.lines() {
        let mut w = line.split_whitespace();
        match (w.next(), w.next()) {
            (Some("wall"), Some(ms)) => load.wall_ms = ms.parse().unwrap_or(0),
            (Some("200"), Some(secs)) => load
                .times_ms
                .push(secs.parse::<f64>().unwrap_or(0.0) * 1000.0),
            (Some(_), Some(_)) => load.failed += 1,
            _ => {}
        }
    }
    Ok(load)
}

/// Whether a TCP connection to `host`:`port` opens within `timeout_secs` (keepalived's
/// TCP_CHECK): prints `open` or `closed`.
pub fn tcp_opens(host: IpAddr, port: u16, timeout_secs: u32) -> Read<bool> {
    let line = format!(
        "if timeout {timeout_secs} {} 2>/dev/null; then echo open; else echo closed; fi",
        tcp_open(host, port)
    );
    Read::new(line, |text| match text.trim() {
        "open" => Ok(true),
        "closed" => Ok(false),
        _ => Err(ParseError::new("expected open or closed", text)),
    })
}

/// Whether the operator's check command (keepalived's MISC_CHECK, its words already checked:
/// no quote, backslash or new line) exits 0 within `timeout_secs`: prints `ok` or `failed`.
/// Its words are quoted one by one, so nothing in them is read by the shell.
pub fn script_passes(command: &str, timeout_secs: u32) -> Read<bool> {
    let words: Vec<&str> = command.split_whitespace().collect();
    let line = format!(
        "if timeout {timeout_secs} {} >/dev/null 2>&1; then echo ok; else echo failed; fi",
        argv(&words)
    );
    Read::new(line, |text| match text.trim() {
        "ok" => Ok(true),
        "failed" => Ok(false),
        _ => Err(ParseError::new("expected ok or failed", text)),
    })
}

/// Exits 0 when a TCP connection to `host`:`port` opens (bash's /dev/tcp; `host` is an address).
pub fn tcp_open(host: IpAddr, port: u16) -> String {
    format!(
        "bash -c {}",
        quote(&format!("exec 3<>/dev/tcp/{host}/{port}"))
    )
}

/// The client addresses of the requests in a web server's access log whose line holds `mark`:
/// `<count> <address>` lines (the log's first field is the client's address). Read as (count,
/// address); a line whose first field is no address is left out.
pub fn log_sources(log: &str, mark: &str) -> Read<Vec<(u64, IpAddr)>> {
    let line = format!(
        "grep -F -- {} {} 2>/dev/null | awk '{{print $1}}' | sort | uniq -c",
        quote(mark),
        quote(log)
    );
    Read::new(line, |text| {
        Ok(text
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                Some((w.next()?.parse().ok()?, w.next()?.parse().ok()?))
            })
            .collect())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The operator's command runs word by word under a time limit: nothing in it reaches a
    /// shell (a `;` is a word of the program's), and the answer is read back.
    #[test]
    fn a_check_script_runs_its_words_under_timeout() {
        let r = script_passes("/usr/bin/curl -sf http://198.18.0.12:80/ ;reboot", 3);
        assert_eq!(
            r.line(),
            "if timeout 3 /usr/bin/curl -sf http://198.18.0.12:80/ ';reboot' >/dev/null 2>&1; then echo ok; else echo failed; fi"
        );
        assert_eq!(r.parse("ok\n"), Ok(true));
        assert_eq!(r.parse("failed\n"), Ok(false));
        assert!(r.parse("").is_err());
    }

    /// Captured with curl 7.88 in a network namespace: a web server answering on
    /// 198.18.0.11:8080 with `node2 198.18.0.12`, a closed port, an address nobody has.
    #[test]
    fn one_get_s_status() {
        let table = [
            ("200", Some(200)),
            ("404", Some(404)),
            // Refused, or no answer in time (curl exits 7 or 28 and prints 000).
            ("000", None),
            // No curl: the shell's complaint goes to stderr.
            ("", None),
        ];
        for (output, want) in table {
            assert_eq!(
                http_status("http://198.18.0.11:8080/", 2).parse(output),
                Ok(want),
                "{output:?}"
            );
        }
    }

    #[test]
    fn a_series_of_gets() {
        let answer = |code: &str, port, exit, page: &str| Answer {
            code: code.into(),
            port,
            exit,
            page: page.into(),
        };
        // Captured with curl 7.88 through the VM lab's VIP: two pages, a closed port, a 404
        // (nginx's page, CRLF lines); then curl 7.74's (no `exitcode`) and no curl at all.
        let page = |node: &str, ip: &str| {
            format!(
                "{node} {ip}\n<!-- Managed by lvslab: the page of real server {node}, so a request through the VIP shows who answered. -->\n"
            )
        };
        let captured = format!(
            "{}\n@@lvslab 200 48802 0\n{}\n@@lvslab 200 48810 0\n\n@@lvslab 000 0 7\n\
             <html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n</html>\r\n\n@@lvslab 404 48818 0\n",
            page("node2", "198.18.0.12"),
            page("node3", "198.18.0.13")
        );
        let table = [
            (
                captured.as_str(),
                vec![
                    answer("200", 48802, 0, "node2 198.18.0.12"),
                    answer("200", 48810, 0, "node3 198.18.0.13"),
                    answer("000", 0, 7, ""),
                    answer("404", 48818, 0, "<html>"),
                ],
            ),
            ("\n@@lvslab 000 0 28\n", vec![answer("000", 0, 28, "")]),
            ("\n@@lvslab 000 0 \n", vec![answer("000", 0, 0, "")]),
            ("", vec![]),
        ];
        for (output, want) in table {
            assert_eq!(
                http_probe("http://198.18.0.11:8080/", 2, 2).parse(output),
                Ok(want),
                "{output:?}"
            );
        }
        // Another client: the same requests from another address of the client's.
        let from = http_probe_from("http://198.18.0.100/", 2, 3, "198.18.0.9".parse().ok());
        assert!(
            from.line()
                .contains(" -k -m 3 --interface 198.18.0.9 -H 'Connection: close'"),
            "{}",
            from.line()
        );
        // TLS: a curl per request, which closes the connection itself.
        let tls = http_probe("https://198.18.0.100:8443/", 2, 3);
        assert!(
            tls.line()
                .starts_with("i=0; while [ $i -lt 2 ]; do i=$((i+1)); curl -s -k -m 3 -w ")
                && !tls.line().contains("Connection: close"),
            "{}",
            tls.line()
        );
        let ok = answer("200", 52324, 0, "node2 198.18.0.12");
        assert!(ok.ok());
        assert_eq!(ok.who(), "node2");
        let failed = answer("000", 0, 7, "");
        assert!(!failed.ok());
        assert_eq!(failed.who(), "?");
    }

    #[test]
    fn a_load_of_gets() {
        let q = http_load("http://198.18.0.11:8080/", 6, 2);
        let load = q
            .parse("200 0.003658\n200 0.004675\n200 0.000605\n200 0.003655\n200 0.000511\n200 0.002996\nwall 36\n")
            .unwrap();
        assert_eq!((load.times_ms.len(), load.failed, load.wall_ms), (6, 0, 36));
        assert!(
            (load.times_ms[0] - 3.658).abs() < 1e-9,
            "{:?}",
            load.times_ms
        );
        // The web server gone: curl's 000 in no time.
        let load = q
            .parse("000 0.000109\n000 0.000110\n200 0.004675\nwall 29\n")
            .unwrap();
        assert_eq!((load.times_ms.len(), load.failed, load.wall_ms), (1, 2, 29));
        let nothing = q.parse("").unwrap();
        assert_eq!(
            nothing,
            LoadAnswers {
                times_ms: vec![],
                failed: 0,
                wall_ms: 0
            }
        );
    }

    /// Captured from the log of Python's http.server (its first field the client, like
    /// nginx's and Apache's) after two marked GETs.
    #[test]
    fn the_clients_a_web_server_logged() {
        let q = log_sources("/var/log/nginx/access.log", "lvslab-probe-1");
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let table = [
            ("      2 198.18.0.11\n", vec![(2, ip("198.18.0.11"))]),
            (
                "     12 198.18.0.10\n      1 198.18.0.2\n",
                vec![(12, ip("198.18.0.10")), (1, ip("198.18.0.2"))],
            ),
            ("      3 2001:db8::10\n", vec![(3, ip("2001:db8::10"))]),
            // A log whose first field is no address (another format) says nothing.
            ("      4 -\n", vec![]),
            ("", vec![]),
        ];
        for (output, want) in table {
            assert_eq!(q.parse(output), Ok(want), "{output:?}");
        }
    }
}
