//! Routes: the one to a destination, set with the one before kept on the host, and put back.

use super::{ParseError, Read, STATE_DIR, argv, quote, quote_owned};

fn route_orig_path(to: &str) -> String {
    format!("{STATE_DIR}/route-orig/{}", to.replace('/', "_"))
}

/// The route to `to` (`default` or a network): prints two lines, the route as `ip route` shows
/// it (or `<none>`), and the `via`/`dev` lvslab saved before its first change (or `<none>`; an
/// empty line when there was no route then).
pub fn route_query(to: &str) -> Read<RouteFound> {
    let orig = quote_owned(&route_orig_path(to));
    let line = format!(
        "r=$(ip -4 route show exact {t} | head -n 1); echo \"${{r:-<none>}}\"; \
         if [ -f {orig} ]; then cat {orig}; echo; else echo '<none>'; fi",
        t = quote(to)
    );
    Read::new(line, parse_route_query)
}

/// A route's parts lvslab manages, as `ip route` shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteVia {
    pub via: Option<String>,
    pub dev: Option<String>,
}

impl RouteVia {
    /// The words after `via` and `dev` of a route; `None` for an empty line.
    fn parse(line: &str) -> Option<RouteVia> {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() {
            return None;
        }
        let after = |k: &str| {
            words
                .iter()
                .position(|w| *w == k)
                .and_then(|i| words.get(i + 1))
                .map(|s| s.to_string())
        };
        Some(RouteVia {
            via: after("via"),
            dev: after("dev"),
        })
    }
}

/// What [`route_query`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteFound {
    /// The route now; `None`: there is none.
    pub now: Option<RouteVia>,
    pub saved: SavedRoute,
}

/// The route lvslab saved before its first change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SavedRoute {
    /// It saved none: it never changed this route.
    NotSaved,
    /// There was no route then.
    NoRoute,
    Route(RouteVia),
}

fn parse_route_query(text: &str) -> Result<RouteFound, ParseError> {
    let mut lines = text.lines();
    let (Some(now), Some(saved)) = (lines.next(), lines.next()) else {
        return Err(ParseError::new(
            "fewer than the 2 lines the route query prints",
            text,
        ));
    };
    Ok(RouteFound {
        now: Some(now)
            .filter(|l| *l != "<none>")
            .and_then(RouteVia::parse),
        saved: match saved {
            "<none>" => SavedRoute::NotSaved,
            s => RouteVia::parse(s).map_or(SavedRoute::NoRoute, SavedRoute::Route),
        },
    })
}

/// Saves the route to `to` once (its `via`/`dev`, or nothing), then replaces it.
pub fn route_set(to: &str, via: &str, dev: Option<&str>) -> String {
    let orig = quote_owned(&route_orig_path(to));
    let mut words = vec!["ip", "route", "replace", to, "via", via];
    if let Some(d) = dev {
        words.extend(["dev", d]);
    }
    format!(
        "set -e; mkdir -p {STATE_DIR}/route-orig; [ -f {orig} ] || ip -4 route show exact {t} | head -n 1 | \
         awk '{{o=\"\"; for(i=1;i<=NF;i++) if($i==\"via\"||$i==\"dev\") o=o\" \"$i\" \"$(i+1); print substr(o,2)}}' > {orig}; {}",
        argv(&words),
        t = quote(to)
    )
}

/// Puts back the saved route to `to` (or removes the route, if there was none), and forgets it.
pub fn route_restore(to: &str) -> String {
    let orig = quote_owned(&route_orig_path(to));
    format!(
        "set -e; if [ -f {orig} ]; then r=$(cat {orig}); \
         if [ -n \"$r\" ]; then ip route replace {t} $r; else ip route del {t} 2>/dev/null || true; fi; \
         rm -f {orig}; fi",
        t = quote(to)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn via(v: &str, d: &str) -> RouteVia {
        RouteVia {
            via: Some(v.to_string()),
            dev: Some(d.to_string()),
        }
    }

    /// Captured in a network namespace with a private /var/lib/lvslab, before and after
    /// [`route_set`].
    #[test]
    fn the_route_and_the_one_kept() {
        let table = [
            // Never changed by lvslab.
            (
                "default via 198.18.0.254 dev eth0 \n<none>\n",
                Some(via("198.18.0.254", "eth0")),
                SavedRoute::NotSaved,
            ),
            // Changed by lvslab: the route before is kept (awk's line, then the query's echo).
            (
                "default via 198.18.0.253 dev eth0 \nvia 198.18.0.254 dev eth0\n\n",
                Some(via("198.18.0.253", "eth0")),
                SavedRoute::Route(via("198.18.0.254", "eth0")),
            ),
            // Set by lvslab where there was no route: the kept file is empty.
            (
                "198.18.1.0/24 via 198.18.0.253 dev eth0 \n\n",
                Some(via("198.18.0.253", "eth0")),
                SavedRoute::NoRoute,
            ),
            // No route, nothing kept.
            ("<none>\n<none>\n", None, SavedRoute::NotSaved),
            // Removed by someone else after lvslab set it.
            ("<none>\n\n", None, SavedRoute::NoRoute),
            // The kernel's own route to the network: no `via`.
            (
                "198.18.0.0/24 dev eth0 proto kernel scope link src 198.18.0.11 \n<none>\n",
                Some(RouteVia {
                    via: None,
                    dev: Some("eth0".into()),
                }),
                SavedRoute::NotSaved,
            ),
        ];
        for (output, now, saved) in table {
            assert_eq!(
                route_query("default").parse(output),
                Ok(RouteFound { now, saved }),
                "{output:?}"
            );
        }
        assert!(route_query("default").parse("<none>\n").is_err());
    }
}
