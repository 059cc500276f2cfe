//! The web server of a real server: the seed's `httpd` (apache2 on the Debian family) or nginx.
//! Which package, service, process, document root and access log that means, for each family of
//! distributions, is written here only.

use serde::Serialize;

/// What the inventory asks for (`vars.web_server`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WebServer {
    /// Apache: `httpd` on the RHEL family, `apache2` on the Debian family (the seed's choice).
    #[default]
    Httpd,
    Nginx,
}

/// The variable that chooses it.
pub const VARIABLE: &str = "web_server";

impl WebServer {
    /// Every service name a web server of lvslab's can have, on any family (what lvslab-boot
    /// must start before).
    pub fn every_service() -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Vec::new();
        for web in [WebServer::Httpd, WebServer::Nginx] {
            for family in ["debian", "redhat"] {
                let service = web.on(family).service;
                if !names.contains(&service) {
                    names.push(service);
                }
            }
        }
        names
    }

    pub fn parse(word: &str) -> Option<WebServer> {
        match word {
            "httpd" | "apache" | "apache2" => Some(WebServer::Httpd),
            "nginx" => Some(WebServer::Nginx),
            _ => None,
        }
    }

    /// The names of this web server on a host of `family` (`debian`, `redhat`, other).
    pub fn on(self, family: &str) -> WebInstall {
        let debian = family == "debian";
        match self {
            WebServer::Httpd if debian => WebInstall {
                package: "apache2",
                service: "apache2",
                process: "apache2",
                docroot: "/var/www/html",
                access_log: "/var/log/apache2/access.log",
                ports_conf: "/etc/apache2/conf-enabled/lvslab-ports.conf",
            },
            WebServer::Httpd => WebInstall {
                package: "httpd",
                service: "httpd",
                process: "httpd",
                docroot: "/var/www/html",
                access_log: "/var/log/httpd/access_log",
                ports_conf: "/etc/httpd/conf.d/lvslab-ports.conf",
            },
            WebServer::Nginx => WebInstall {
                package: "nginx",
                service: "nginx",
                process: "nginx",
                docroot: if debian {
                    "/var/www/html"
                } else {
                    "/usr/share/nginx/html"
                },
                access_log: "/var/log/nginx/access.log",
                ports_conf: "/etc/nginx/conf.d/lvslab-ports.conf",
            },
        }
    }
}

/// A web server as installed on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WebInstall {
    pub package: &'static str,
    pub service: &'static str,
    /// The process name (`pgrep -x`).
    pub process: &'static str,
    pub docroot: &'static str,
    /// Where it logs requests with the client's address first (the default combined format).
    pub access_log: &'static str,
    /// lvslab's file of listeners for the services' ports besides [`DEFAULT_PORT`]
    /// (web-ports.conf.j2), in a directory the web server's own configuration includes.
    pub ports_conf: &'static str,
}

/// The port the web server's default site listens on, as installed.
pub const DEFAULT_PORT: u16 = 80;

/// Where lvslab keeps the TLS certificate and key a web server uses for the services with
/// `tls: true` (made once on the host, self-signed: keepalived's SSL_GET and verify do not
/// check it); `down` removes the directory.
pub const TLS_DIR: &str = "/etc/lvslab-tls";
pub const TLS_CERT: &str = "/etc/lvslab-tls/cert.pem";
pub const TLS_KEY: &str = "/etc/lvslab-tls/key.pem";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_per_family() {
        assert_eq!(WebServer::Httpd.on("debian").package, "apache2");
        assert_eq!(WebServer::Httpd.on("redhat").package, "httpd");
        assert_eq!(
            WebServer::Nginx.on("redhat").docroot,
            "/usr/share/nginx/html"
        );
        assert_eq!(WebServer::parse("nginx"), Some(WebServer::Nginx));
        assert_eq!(WebServer::parse("lighttpd"), None);
    }
}
