//! Routes: the one to a destination, set with the one before kept on the host, and put back.

use super::{STATE_DIR, argv, quote, quote_owned};

fn route_orig_path(to: &str) -> String {
    format!("{STATE_DIR}/route-orig/{}", to.replace('/', "_"))
}

/// Prints two lines: the route to `to` (`default` or a network) as `ip route` shows it (or
/// `<none>`), and the route lvslab saved before its first change (or `<none>`; an empty line
/// when there was no route then).
pub fn route_query(to: &str) -> String {
    let orig = quote_owned(&route_orig_path(to));
    format!(
        "r=$(ip -4 route show exact {t} | head -n 1); echo \"${{r:-<none>}}\"; \
         if [ -f {orig} ]; then cat {orig}; echo; else echo '<none>'; fi",
        t = quote(to)
    )
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
