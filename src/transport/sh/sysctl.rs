//! Kernel settings: read from /proc/sys, set and persisted in lvslab's own sysctl file, the
//! original value kept on the host so it can be put back.

use super::{ParseError, Read, STATE_DIR, SYSCTL_FILE, quote, quote_owned, regex_escape};

fn sysctl_proc_path(key: &str) -> String {
    format!("/proc/sys/{}", key.replace('.', "/"))
}

fn sysctl_orig_path(key: &str) -> String {
    format!("{STATE_DIR}/sysctl-orig/{key}")
}

/// A kernel setting: prints three lines, the runtime value (or `<missing>`), the value in
/// lvslab's sysctl file (or `<none>`), and the original value lvslab saved before its first
/// change (or `<none>`).
pub fn sysctl_query(key: &str) -> Read<SysctlValues> {
    let proc_path = quote_owned(&sysctl_proc_path(key));
    let orig = quote_owned(&sysctl_orig_path(key));
    // Builtins but one: this runs for every sysctl task of every host. The kernel answers a
    // read of /proc/sys at an offset past 0 with nothing, and dash's `read` takes a byte at a
    // time (a value of 4096 read as `4`): `cat` reads it whole.
    let line = format!(
        "if [ -r {proc_path} ]; then v=$(cat {proc_path}); echo \"$v\"; else echo '<missing>'; fi; \
         v='<none>'; if [ -f {SYSCTL_FILE} ]; then while IFS= read -r l; do case \"$l\" in {key}=*|'{key} '*=*) v=${{l#*=}}; v=${{v# }};; esac; done < {SYSCTL_FILE}; fi; echo \"$v\"; \
         if [ -f {orig} ]; then read -r o < {orig}; echo \"$o\"; else echo '<none>'; fi"
    );
    Read::new(line, parse_sysctl)
}

/// A kernel setting as [`sysctl_query`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysctlValues {
    /// The value the kernel has; `None`: it has no such setting.
    pub runtime: Option<String>,
    /// The value in lvslab's sysctl file; `None`: the file does not set it.
    pub persisted: Option<String>,
    /// The value lvslab saved before its first change; `None`: it never changed it.
    pub original: Option<String>,
}

fn parse_sysctl(text: &str) -> Result<SysctlValues, ParseError> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let [runtime, persisted, original] = lines[..] else {
        return Err(ParseError::new(
            format!("{} lines where the sysctl query prints 3", lines.len()),
            text,
        ));
    };
    let value =
        |line: &str, none: &str| (line != none && !line.is_empty()).then(|| line.to_string());
    Ok(SysctlValues {
        runtime: value(runtime, "<missing>"),
        persisted: value(persisted, "<none>"),
        original: value(original, "<none>"),
    })
}

/// Set the runtime value, save the original once, and persist the key in lvslab's file. The
/// value is written byte for byte (`printf '%s'`: dash's `echo` would turn `\n` in it into a
/// line break, a second setting in the file).
pub fn sysctl_set(key: &str, value: &str) -> String {
    let proc_path = quote_owned(&sysctl_proc_path(key));
    let orig = quote_owned(&sysctl_orig_path(key));
    let k = regex_escape(key);
    format!(
        "set -e; mkdir -p {STATE_DIR}/sysctl-orig; [ -f {orig} ] || cat {proc_path} > {orig}; \
         printf '%s\\n' {v} > {proc_path}; touch {SYSCTL_FILE}; \
         sed -i '/^{k} *=/d' {SYSCTL_FILE}; printf '%s\\n' {line} >> {SYSCTL_FILE}",
        v = quote(value),
        line = quote_owned(&format!("{key} = {value}")),
    )
}

/// Put back the saved original value (unless the kernel has no such setting any more), drop the
/// key from lvslab's file (the file too when empty). A write the kernel refuses fails, in its
/// words.
pub fn sysctl_restore(key: &str) -> String {
    let proc_path = quote_owned(&sysctl_proc_path(key));
    let orig = quote_owned(&sysctl_orig_path(key));
    let k = regex_escape(key);
    format!(
        "set -e; if [ -f {orig} ]; then if [ -e {proc_path} ]; then cat {orig} > {proc_path}; fi; rm -f {orig}; fi; \
         if [ -f {SYSCTL_FILE} ]; then sed -i '/^{k} *=/d' {SYSCTL_FILE}; [ -s {SYSCTL_FILE} ] || rm -f {SYSCTL_FILE}; fi"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::sh::tests::sh;

    /// Captured in a network namespace with a private /etc/sysctl.d and /var/lib/lvslab.
    #[test]
    fn the_query_reads_the_three_values() {
        let some = |s: &str| Some(s.to_string());
        let table = [
            // Never touched by lvslab.
            ("0\n<none>\n<none>\n", (some("0"), None, None)),
            // Set by lvslab from 0 to 1; the kernel has 1 already.
            ("1\n1\n0\n", (some("1"), some("1"), some("0"))),
            // Set by lvslab, then reset at runtime by someone else.
            ("0\n1\n0\n", (some("0"), some("1"), some("0"))),
            // tunl0's setting without the ipip module.
            ("<missing>\n<none>\n<none>\n", (None, None, None)),
            // Forgotten by the kernel but still kept by lvslab.
            ("<missing>\n0\n1\n", (None, some("0"), some("1"))),
            // Several numbers (as bash prints it: tabs kept; the file's spaces as written).
            (
                "4096\t131072\t33554432\n4096 131072 33554432\n4096\t87380\t6291456\n",
                (
                    some("4096\t131072\t33554432"),
                    some("4096 131072 33554432"),
                    some("4096\t87380\t6291456"),
                ),
            ),
        ];
        for (output, (runtime, persisted, original)) in table {
            let want = SysctlValues {
                runtime,
                persisted,
                original,
            };
            assert_eq!(
                sysctl_query("net.ipv4.conf.all.arp_ignore").parse(output),
                Ok(want),
                "{output:?}"
            );
        }
        for bad in ["", "0\n<none>\n"] {
            assert!(sysctl_query("k").parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_query_runs_on_this_machine() {
        let q = sysctl_query("net.ipv4.conf.all.arp_ignore");
        let (rc, out) = sh(q.line());
        assert_eq!(rc, 0);
        let found = q.parse(&out).unwrap();
        assert!(
            found.runtime.is_some_and(|v| v.parse::<u32>().is_ok()),
            "{out}"
        );
        let (_, out) = sh(sysctl_query("net.no.such.key").line());
        assert_eq!(
            sysctl_query("net.no.such.key")
                .parse(&out)
                .map(|f| f.runtime),
            Ok(None)
        );
    }
}
