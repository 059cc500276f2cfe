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
