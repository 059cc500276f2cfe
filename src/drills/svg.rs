//! A drill's timeline as one self-contained SVG file: the requests over time (answered, by the
//! real server that answered, and failed, per time bucket), each director's state and VIP as
//! bands, the MACs answering ARP for the VIP, and the drill's marks (fault, takeover, restore).

use std::collections::BTreeMap;
use std::fmt::Write;

use super::record::{DirectorState, Record};

const WIDTH: f64 = 960.0;
const LEFT: f64 = 120.0;
const RIGHT: f64 = 20.0;
const BUCKET_MS: i64 = 250;
const FAILED: &str = "#d62728";
/// Colours for the directors, in the inventory's order (where the client's packets went).
const DIRECTOR_PALETTE: [&str; 4] = ["#6a3d9a", "#b15928", "#1b9e77", "#e7298a"];
/// Colours for the real servers, in order of first answer.
const PALETTE: [&str; 7] = [
    "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
];
/// The colour of answers that name no real server (a ping of the VIP): none of the palette's.
const UNNAMED: &str = "#bcbd22";

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `text` in lines of at most about `width` characters: a new line after each "; " that would
/// not fit, and between words in a part longer than a line.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for part in text.split_inclusive("; ") {
        if !line.is_empty() && line.len() + part.len() > width {
            lines.push(line.trim_end().to_string());
            line.clear();
        }
        for word in part.split_inclusive(' ') {
            if !line.is_empty() && line.len() + word.trim_end().len() > width {
                lines.push(line.trim_end().to_string());
                line.clear();
            }
            line.push_str(word);
        }
    }
    if !line.trim().is_empty() {
        lines.push(line.trim_end().to_string());
    }
    lines
}

fn state_colour(state: DirectorState, holds: bool) -> &'static str {
    match (state, holds) {
        (DirectorState::Master, _) => "#2ca02c",
        (DirectorState::Backup, _) => "#aec7e8",
        (DirectorState::Frozen, true) => "#ff7f0e",
        (DirectorState::Frozen, false) => "#ffbb78",
        (DirectorState::Stopped, true) => "#d62728",
        (DirectorState::Stopped, false) => "#c7c7c7",
        (DirectorState::Unreachable, _) => "#7f7f7f",
        (DirectorState::Deaf | DirectorState::Init, _) => "#dbdb8d",
        (DirectorState::Fault | DirectorState::Hung, true) => "#ff7f0e",
        (DirectorState::Fault | DirectorState::Hung, false) => "#ffbb78",
    }
}

fn state_label(state: DirectorState, holds: bool) -> &'static str {
    match (state, holds) {
        (DirectorState::Master, _) => "MASTER (VIP)",
        (DirectorState::Backup, _) => "BACKUP",
        (DirectorState::Frozen, true) => "frozen, VIP",
        (DirectorState::Frozen, false) => "frozen",
        (DirectorState::Stopped, true) => "no keepalived, stale VIP",
        (DirectorState::Stopped, false) => "no keepalived",
        (DirectorState::Unreachable, _) => "unreachable",
        (DirectorState::Deaf, _) => "BACKUP, hears no MASTER",
        (DirectorState::Init, _) => "starting",
        (DirectorState::Fault, true) => "FAULT, VIP",
        (DirectorState::Fault, false) => "FAULT",
        (DirectorState::Hung, true) => "hung, VIP",
        (DirectorState::Hung, false) => "hung",
    }
}

/// Where the parts of the picture go, from the record and the summary's lines.
struct Layout {
    duration_ms: i64,
    /// The width of the time axis.
    plot: f64,
    summary_lines: Vec<String>,
    chart_top: f64,
    chart_h: f64,
    band_h: f64,
    bands_top: f64,
    /// The state colours of the bands, right above them (see [`StateLegend`]).
    state_legend: StateLegend,
    marks_top: f64,
    height: f64,
}

impl Layout {
    fn of(r: &Record, summary: &str) -> Layout {
        let summary_lines = wrap(summary, 120);
        let chart_top = 56.0 + 16.0 * summary_lines.len() as f64;
        let chart_h = 140.0;
        let band_h = 22.0;
        let state_legend = StateLegend::of(r);
        // Below the chart: its legend, then the state legend's lines, then the bands.
        let bands_top = chart_top + chart_h + 40.0 + STATE_LEGEND_LINE * state_legend.lines as f64;
        let rows = r.directors.len() + 2;
        let marks_top = bands_top + rows as f64 * (band_h + 8.0) + 30.0;
        Layout {
            duration_ms: r.duration_ms,
            plot: WIDTH - LEFT - RIGHT,
            summary_lines,
            chart_top,
            chart_h,
            band_h,
            bands_top,
            state_legend,
            marks_top,
            height: marks_top + 18.0 * r.marks.len().max(1) as f64 + 30.0,
        }
    }

    /// The x of `t_ms` on the drill's clock (clamped to the run).
    fn x(&self, t_ms: i64) -> f64 {
        let span = self.duration_ms.max(1);
        LEFT + (t_ms.clamp(0, span) as f64) / span as f64 * self.plot
    }

    /// The top of row `i` below the chart: a director's band, then the ARP rows.
    fn row_top(&self, i: usize) -> f64 {
        self.bands_top + i as f64 * (self.band_h + 8.0)
    }
}

/// The real servers that answered, in order of first answer, each with a colour.
struct Servers(Vec<String>);

impl Servers {
    fn of(r: &Record) -> Servers {
        let mut servers: Vec<String> = Vec::new();
        for q in &r.requests {
            if let Some(w) = &q.who
                && !servers.contains(w)
            {
                servers.push(w.clone());
            }
        }
        Servers(servers)
    }

    fn colour(&self, who: &str) -> &'static str {
        self.0
            .iter()
            .position(|s| s == who)
            .map_or(UNNAMED, |i| PALETTE[i % PALETTE.len()])
    }
}

/// The colour of director `name` (where the client's packets went).
fn director_colour(r: &Record, name: &str) -> &'static str {
    r.directors
        .iter()
        .position(|d| d == name)
        .map_or("#7f7f7f", |i| DIRECTOR_PALETTE[i % DIRECTOR_PALETTE.len()])
}

/// The picture. `summary`: the verdict line shown under the title.
pub fn render(r: &Record, summary: &str) -> String {
    let layout = Layout::of(r, summary);
    let servers = Servers::of(r);
    let mut s = String::new();
    heading(&mut s, r, &layout);
    requests(&mut s, r, &layout, &servers);
    server_legend(&mut s, r, &layout, &servers);
    director_bands(&mut s, r, &layout);
    arp_rows(&mut s, r, &layout);
    time_axis(&mut s, r, &layout);
    marks(&mut s, r, &layout);
    state_legend(&mut s, &layout);
    s.push_str("</svg>\n");
    s
}

/// The document's start, the title and the summary.
fn heading(s: &mut String, r: &Record, layout: &Layout) {
    let height = layout.height;
    let _ = writeln!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">"##
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = writeln!(
        s,
        r##"<text x="{LEFT}" y="22" font-size="16" font-weight="bold">{}</text>"##,
        esc(&r.title)
    );
    for (i, line) in layout.summary_lines.iter().enumerate() {
        let _ = writeln!(
            s,
            r##"<text x="{LEFT}" y="{}" fill="#333333">{}</text>"##,
            42 + 16 * i,
            esc(line)
        );
    }
}

/// The requests counted per bucket of [`BUCKET_MS`]: answered, by who answered, and failed.
struct Buckets {
    count: i64,
    ok: BTreeMap<i64, BTreeMap<String, u32>>,
    bad: BTreeMap<i64, u32>,
}

impl Buckets {
    fn of(r: &Record) -> Buckets {
        let count = (r.duration_ms / BUCKET_MS + 1).max(1);
        let mut ok: BTreeMap<i64, BTreeMap<String, u32>> = BTreeMap::new();
        let mut bad: BTreeMap<i64, u32> = BTreeMap::new();
        for q in &r.requests {
            let b = (q.start_ms.max(0) / BUCKET_MS).min(count - 1);
            match (&q.who, q.ok) {
                (_, false) => *bad.entry(b).or_default() += 1,
                (Some(w), true) => *ok.entry(b).or_default().entry(w.clone()).or_default() += 1,
                (None, true) => *ok.entry(b).or_default().entry("VIP".into()).or_default() += 1,
            }
        }
        Buckets { count, ok, bad }
    }
}

/// Requests per bucket: answered (stacked by server) above the axis, failed below it.
fn requests(s: &mut String, r: &Record, layout: &Layout, servers: &Servers) {
    let Buckets {
        count: buckets,
        ok,
        bad,
    } = Buckets::of(r);
    let most = ok
        .values()
        .map(|m| m.values().sum::<u32>())
        .chain(bad.values().copied())
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let (chart_top, chart_h) = (layout.chart_top, layout.chart_h);
    let axis = chart_top + chart_h * 0.7;
    let up = chart_h * 0.7;
    let down = chart_h * 0.3;
    let bw = (layout.plot / buckets as f64).max(1.0);
    let _ = writeln!(
        s,
        r##"<text x="10" y="{:.0}">requests</text><text x="10" y="{:.0}" fill="#555555" font-size="10">per {BUCKET_MS} ms</text>"##,
        chart_top + 14.0,
        chart_top + 28.0
    );
    let _ = writeln!(
        s,
        r##"<text x="10" y="{:.0}" fill="#2ca02c" font-size="10">answered ▲</text><text x="10" y="{:.0}" fill="{FAILED}" font-size="10">failed ▼</text>"##,
        axis - 6.0,
        axis + 14.0
    );
    for b in 0..buckets {
        let bx = LEFT + b as f64 * bw;
        let mut y = axis;
        if let Some(by) = ok.get(&b) {
            for (who, n) in by {
                let h = f64::from(*n) / most * up;
                y -= h;
                let _ = writeln!(
                    s,
                    r##"<rect x="{bx:.1}" y="{y:.1}" width="{:.1}" height="{h:.1}" fill="{}"><title>{}: {n}</title></rect>"##,
                    (bw - 0.5).max(0.5),
                    servers.colour(who),
                    esc(who)
                );
            }
        }
        if let Some(n) = bad.get(&b) {
            let h = f64::from(*n) / most * down;
            let _ = writeln!(
                s,
                r##"<rect x="{bx:.1}" y="{axis:.1}" width="{:.1}" height="{h:.1}" fill="{FAILED}"><title>failed: {n}</title></rect>"##,
                (bw - 0.5).max(0.5)
            );
        }
    }
    let _ = writeln!(
        s,
        r##"<line x1="{LEFT}" y1="{axis:.1}" x2="{:.1}" y2="{axis:.1}" stroke="#000000" stroke-width="0.8"/>"##,
        WIDTH - RIGHT
    );
}

/// Which colour is which real server (and the VIP's own answers, and failures).
fn server_legend(s: &mut String, r: &Record, layout: &Layout, servers: &Servers) {
    let below = layout.chart_top + layout.chart_h;
    let mut lx = LEFT;
    let ping = r.requests.iter().any(|q| q.ok && q.who.is_none());
    let answered_by_vip = ping.then_some("VIP (ping)");
    for who in servers
        .0
        .iter()
        .map(String::as_str)
        .chain(answered_by_vip)
        .chain(["failed"])
    {
        let c = if who == "failed" {
            FAILED
        } else {
            servers.colour(who)
        };
        let _ = writeln!(
            s,
            r##"<rect x="{lx:.0}" y="{:.0}" width="10" height="10" fill="{c}"/><text x="{:.0}" y="{:.0}">{}</text>"##,
            below + 8.0,
            lx + 14.0,
            below + 17.0,
            esc(who)
        );
        lx += 28.0 + 7.5 * who.chars().count() as f64;
    }
}

/// A band per director: its state and whether it holds the VIP.
fn director_bands(s: &mut String, r: &Record, layout: &Layout) {
    let band_h = layout.band_h;
    for (i, name) in r.directors.iter().enumerate() {
        let y = layout.row_top(i);
        let _ = writeln!(
            s,
            r##"<text x="10" y="{:.0}">{}</text>"##,
            y + 15.0,
            esc(name)
        );
        for w in r.samples.windows(2) {
            let Some(d) = w[0].directors.iter().find(|d| &d.name == name) else {
                continue;
            };
            let (x0, x1) = (layout.x(w[0].t_ms), layout.x(w[1].t_ms));
            let _ = writeln!(
                s,
                r##"<rect x="{x0:.1}" y="{y:.0}" width="{:.1}" height="{band_h}" fill="{}"><title>{}: {}</title></rect>"##,
                (x1 - x0).max(0.5),
                state_colour(d.state, d.holds_vip),
                esc(name),
                state_label(d.state, d.holds_vip)
            );
        }
    }
}

/// ARP: how many MACs answered for the VIP while the client asked, and where the client's own
/// entry pointed (its packets went there).
fn arp_rows(s: &mut String, r: &Record, layout: &Layout) {
    let y = layout.row_top(r.directors.len());
    let _ = writeln!(s, r#"<text x="10" y="{:.0}">ARP answers</text>"#, y + 15.0);
    let y2 = layout.row_top(r.directors.len() + 1);
    let _ = writeln!(
        s,
        r#"<text x="10" y="{:.0}">client sends to</text>"#,
        y2 + 15.0
    );
    arp_answers(s, r, layout, y);
    client_entries(s, r, layout, y2);
}

/// The MACs that answered, counted, in the row at `y`.
fn arp_answers(s: &mut String, r: &Record, layout: &Layout, y: f64) {
    let band_h = layout.band_h;
    for (k, a) in r.arp.iter().enumerate() {
        // Each answer holds until the next ask, or about a second.
        let end = r
            .arp
            .get(k + 1)
            .map_or(a.t_ms + 1000, |next| next.t_ms.min(a.t_ms + 1500));
        let (x0, x1) = (layout.x(a.t_ms), layout.x(end));
        let n = a.macs.len();
        let owners: Vec<String> = a.macs.iter().map(|m| r.owner(m)).collect();
        let fill = match n {
            0 => "#c7c7c7",
            1 => "#2ca02c",
            _ => FAILED,
        };
        let _ = writeln!(
            s,
            r##"<rect x="{x0:.1}" y="{y:.0}" width="{:.1}" height="{band_h}" fill="{fill}"><title>{n} MAC(s) answered: {}</title></rect><text x="{:.1}" y="{:.0}" fill="#ffffff" font-size="10">{}</text>"##,
            (x1 - x0).max(0.5),
            esc(&owners.join(", ")),
            x0 + 2.0,
            y + 15.0,
            if x1 - x0 > 12.0 {
                n.to_string()
            } else {
                String::new()
            }
        );
    }
}

/// The director the client's ARP entry named, in the row at `y`, and which colour is which
/// director below it.
fn client_entries(s: &mut String, r: &Record, layout: &Layout, y: f64) {
    let band_h = layout.band_h;
    for w in r.client_entries.windows(2) {
        let (x0, x1) = (layout.x(w[0].t_ms), layout.x(w[1].t_ms));
        let (fill, who) = match &w[0].mac {
            Some(mac) => {
                let who = r.owner(mac);
                (director_colour(r, &who), who)
            }
            None => ("#c7c7c7", "no entry".to_string()),
        };
        let _ = writeln!(
            s,
            r##"<rect x="{x0:.1}" y="{y:.0}" width="{:.1}" height="{band_h}" fill="{fill}"><title>the client's ARP entry: {}</title></rect>"##,
            (x1 - x0).max(0.5),
            esc(&who)
        );
    }
    let mut lx = LEFT;
    for name in &r.directors {
        let _ = writeln!(
            s,
            r#"<rect x="{lx:.0}" y="{:.0}" width="10" height="10" fill="{}"/><text x="{:.0}" y="{:.0}" font-size="10">client to {}</text>"#,
            y + band_h + 4.0,
            director_colour(r, name),
            lx + 13.0,
            y + band_h + 13.0,
            esc(name)
        );
        lx += 40.0 + 7.0 * name.len() as f64 + 30.0;
    }
}

/// The bottom of the time axis: the seconds' labels sit on it.
fn axis_y(layout: &Layout) -> f64 {
    layout.marks_top - 4.0
}

/// A grid line and a label every 1, 5 or 10 s, as the run is long.
fn time_axis(s: &mut String, r: &Record, layout: &Layout) {
    let axis_y = axis_y(layout);
    let step = if r.duration_ms > 60_000 {
        10_000
    } else if r.duration_ms > 20_000 {
        5_000
    } else {
        1_000
    };
    let mut t = 0;
    while t <= r.duration_ms {
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" y1="{1:.0}" x2="{0:.1}" y2="{2:.0}" stroke="#dddddd"/><text x="{0:.1}" y="{3:.0}" text-anchor="middle" fill="#555555" font-size="10">{4} s</text>"##,
            layout.x(t),
            layout.chart_top,
            axis_y - 14.0,
            axis_y,
            t / 1000
        );
        t += step;
    }
}

/// The drill's marks: a numbered dashed line each across the chart, and the list below it.
fn marks(s: &mut String, r: &Record, layout: &Layout) {
    // Each mark's line crosses the chart and the bands, not the legends between them.
    let (chart_top, axis_y) = (layout.chart_top, axis_y(layout));
    let chart_bottom = layout.chart_top + layout.chart_h;
    let mut last_number_x = f64::MIN;
    let mut lift = 0.0;
    for (i, m) in r.marks.iter().enumerate() {
        let mx = layout.x(m.t_ms);
        // Numbers of marks close together are staggered, so each stays readable.
        lift = if mx - last_number_x < 12.0 {
            lift + 10.0
        } else {
            0.0
        };
        last_number_x = mx;
        let ly = layout.marks_top + 18.0 + i as f64 * 18.0;
        let lx = LEFT;
        let _ = writeln!(
            s,
            r##"<line x1="{mx:.1}" y1="{chart_top:.0}" x2="{mx:.1}" y2="{chart_bottom:.0}" stroke="#000000" stroke-dasharray="4,3"/><line x1="{mx:.1}" y1="{:.0}" x2="{mx:.1}" y2="{:.0}" stroke="#000000" stroke-dasharray="4,3"/><text x="{mx:.1}" y="{:.0}" font-size="10" text-anchor="middle">{}</text>"##,
            layout.bands_top - 4.0,
            axis_y - 14.0,
            chart_top - 4.0 - lift,
            i + 1
        );
        let _ = writeln!(
            s,
            r##"<text x="{lx:.0}" y="{ly:.0}" font-size="11"><tspan font-weight="bold">{}</tspan> {:.1} s: {}</text>"##,
            i + 1,
            m.t_ms as f64 / 1000.0,
            esc(&m.text)
        );
    }
}

/// The height of a line of the state legend.
const STATE_LEGEND_LINE: f64 = 18.0;

/// Every state a band can show, in the legend's order: the states of this record's bands are
/// named, only they (a colour the picture does not use explains nothing), on as many lines as
/// they need, right above the bands they explain.
const STATES: [(DirectorState, bool); 13] = [
    (DirectorState::Master, true),
    (DirectorState::Backup, false),
    (DirectorState::Init, false),
    (DirectorState::Deaf, false),
    (DirectorState::Fault, true),
    (DirectorState::Fault, false),
    (DirectorState::Hung, true),
    (DirectorState::Hung, false),
    (DirectorState::Frozen, true),
    (DirectorState::Frozen, false),
    (DirectorState::Stopped, true),
    (DirectorState::Stopped, false),
    (DirectorState::Unreachable, false),
];

/// The state legend: its labels, and how many lines they take.
struct StateLegend {
    items: Vec<LegendItem>,
    lines: usize,
}

/// A state's label and colour, and where it goes: `x` on line `line` of the legend.
struct LegendItem {
    x: f64,
    line: usize,
    label: &'static str,
    colour: &'static str,
}

impl StateLegend {
    fn of(r: &Record) -> StateLegend {
        let shown: Vec<&'static str> = r
            .samples
            .iter()
            .flat_map(|s| &s.directors)
            .map(|d| state_label(d.state, d.holds_vip))
            .collect();
        let mut items = Vec::new();
        let (mut x, mut line) = (LEFT, 0);
        for (state, holds) in STATES {
            let label = state_label(state, holds);
            // (Each entry of STATES has a label of its own.)
            if !shown.contains(&label) {
                continue;
            }
            let width = 26.0 + 6.5 * label.len() as f64;
            if x > LEFT && x + width > WIDTH - RIGHT {
                (x, line) = (LEFT, line + 1);
            }
            items.push(LegendItem {
                x,
                line,
                label,
                colour: state_colour(state, holds),
            });
            x += width;
        }
        let lines = items.last().map_or(0, |i| i.line + 1);
        StateLegend { items, lines }
    }
}

/// The state colours, right above the directors' bands.
fn state_legend(s: &mut String, layout: &Layout) {
    let legend = &layout.state_legend;
    if legend.items.is_empty() {
        return;
    }
    let first = layout.bands_top - 8.0 - STATE_LEGEND_LINE * (legend.lines - 1) as f64;
    let _ = writeln!(
        s,
        r##"<text x="10" y="{first:.0}" font-size="10" fill="#555555">director state</text>"##
    );
    for LegendItem {
        x,
        line,
        label,
        colour,
    } in &legend.items
    {
        let ly = first + STATE_LEGEND_LINE * *line as f64;
        let _ = writeln!(
            s,
            r##"<rect x="{x:.0}" y="{:.0}" width="10" height="10" fill="{colour}"/><text x="{:.0}" y="{ly:.0}" font-size="10">{label}</text>"##,
            ly - 9.0,
            x + 13.0
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::record::{ArpSample, ClientEntry, DirectorSample, Mark, Request, Sample};
    use super::*;

    #[test]
    fn the_picture_is_well_formed_and_holds_the_marks() {
        let mut r = Record {
            title: "drill failover --kind kill".into(),
            duration_ms: 3000,
            probe: "http".into(),
            directors: vec!["node1".into(), "node4".into()],
            macs: vec![("aa:bb".into(), "node1".into())],
            ..Record::default()
        };
        for i in 0..60 {
            r.requests.push(Request {
                start_ms: i * 50,
                end_ms: i * 50 + 5,
                ok: !(20..30).contains(&i),
                who: Some(if i % 2 == 0 { "node2" } else { "node3" }.into()),
                error: None,
            });
        }
        for t in [0, 1000, 2000, 3000] {
            r.samples.push(Sample {
                t_ms: t,
                directors: vec![
                    DirectorSample {
                        name: "node1".into(),
                        state: DirectorState::Stopped,
                        holds_vip: true,
                    },
                    DirectorSample {
                        name: "node4".into(),
                        state: DirectorState::Master,
                        holds_vip: t > 1000,
                    },
                ],
            });
            r.arp.push(ArpSample {
                t_ms: t,
                macs: vec!["aa:bb".into()],
            });
            r.client_entries.push(ClientEntry {
                t_ms: t,
                mac: Some("aa:bb".into()),
            });
        }
        r.marks.push(Mark {
            t_ms: 1000,
            text: "keepalived killed on node1 <all at once>".into(),
        });
        let svg = render(&r, "outage 500 ms & more");
        let doc = roxmltree::Document::parse(&svg).expect("well-formed XML");
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        let texts: Vec<String> = doc
            .descendants()
            .filter(|n| n.is_text())
            .filter_map(|n| n.text().map(str::to_string))
            .collect();
        let all = texts.join("|");
        assert!(
            all.contains("keepalived killed on node1 <all at once>"),
            "{all}"
        );
        assert!(all.contains("outage 500 ms & more"));
        assert!(all.contains("node2") && all.contains("failed"));
    }

    /// A record that takes every branch of the picture: answers stacked by server and by the
    /// VIP (ping), failures, every director state, ARP answers by none, one and two MACs (one
    /// unknown), the client's entry with and without a MAC, marks close together, a summary
    /// long enough to wrap, and text to escape.
    fn busy(duration_ms: i64) -> Record {
        let mut r = Record {
            title: "drill failover --kind partition: \"both\" <sides> & more".into(),
            duration_ms,
            probe: "http".into(),
            directors: vec!["node1".into(), "node4".into()],
            macs: vec![
                ("aa:01".into(), "node1".into()),
                ("aa:04".into(), "node4".into()),
            ],
            ..Record::default()
        };
        let step = (duration_ms / 120).max(1);
        for i in 0..120 {
            let start_ms = i * step;
            let (ok, who) = match i % 7 {
                0 | 1 => (true, Some("node2")),
                2 | 3 => (true, Some("node3")),
                4 => (true, None),
                5 if (40..70).contains(&i) => (false, None),
                _ => (true, Some("web-<a>")),
            };
            r.requests.push(Request {
                start_ms,
                end_ms: start_ms + 5,
                ok,
                who: who.map(str::to_string),
                error: (!ok).then(|| "no answer".to_string()),
            });
        }
        let states = [
            (DirectorState::Master, true),
            (DirectorState::Backup, false),
            (DirectorState::Frozen, true),
            (DirectorState::Frozen, false),
            (DirectorState::Stopped, true),
            (DirectorState::Stopped, false),
            (DirectorState::Unreachable, false),
        ];
        let every = duration_ms / 14;
        for k in 0..15 {
            let t_ms = k * every;
            let (a, b) = (states[k as usize % 7], states[(k as usize + 3) % 7]);
            r.samples.push(Sample {
                t_ms,
                directors: vec![
                    DirectorSample {
                        name: "node1".into(),
                        state: a.0,
                        holds_vip: a.1,
                    },
                    DirectorSample {
                        name: "node4".into(),
                        state: b.0,
                        holds_vip: b.1,
                    },
                ],
            });
            let macs: Vec<String> = match k % 4 {
                0 => vec![],
                1 => vec!["aa:01".into()],
                2 => vec!["aa:01".into(), "aa:04".into()],
                _ => vec!["bb:ff".into()],
            };
            r.arp.push(ArpSample {
                t_ms: t_ms + 10,
                macs,
            });
            r.client_entries.push(ClientEntry {
                t_ms,
                mac: match k % 3 {
                    0 => Some("aa:01".into()),
                    1 => Some("aa:04".into()),
                    _ => None,
                },
            });
        }
        // The last ARP answer a moment before the next would be, the one before further.
        r.arp.push(ArpSample {
            t_ms: duration_ms - 5,
            macs: vec!["aa:04".into()],
        });
        for (t_ms, text) in [
            (
                duration_ms / 5,
                "VRRP dropped between node1 and node4 <for 7 s>",
            ),
            (duration_ms / 5 + 2, "node4 holds the VIP"),
            (duration_ms / 5 + 4, "two MASTERs"),
            (duration_ms / 2, "healed & done"),
            (duration_ms - 1, "node1 holds the VIP again"),
        ] {
            r.mark(t_ms, text);
        }
        r
    }

    const SUMMARY: &str = "1200 requests, 4 failed (4 no answer); outage 3100 ms, within the limit 3804 ms + 1000 ms margin (Master_Down_Interval = 3 x advert_int 1 s + skew (256 - 50)/256 s = 3804 ms); takeover after 3500 ms; two MASTERs for 6000 ms, up to 2 MACs answering ARP for the VIP; reachable 0 ms after healing; fail-back after 1200 ms; averyveryveryveryveryveryveryveryveryveryveryveryveryveryveryveryveryveryveryveryveryveryveryveryveryveryveryveryverylongword; lab as before: yes";

    /// Whether `svg` is well-formed as far as a viewer cares: every tag closed in order, every
    /// `&` an entity (a name with `<` or `&` in it broke the picture once).
    fn well_formed(svg: &str) -> Result<(), String> {
        let mut open: Vec<&str> = Vec::new();
        let mut rest = svg;
        while let Some(at) = rest.find(['<', '&']) {
            let after = &rest[at..];
            if let Some(tail) = after.strip_prefix('&') {
                let entity = tail.split(';').next().unwrap_or_default();
                if !["lt", "gt", "amp", "quot", "apos"].contains(&entity) {
                    return Err(format!("a bare &: {}", &after[..after.len().min(30)]));
                }
                rest = tail;
                continue;
            }
            let end = after.find('>').ok_or("a tag without its >")?;
            let tag = &after[1..end];
            if let Some(name) = tag.strip_prefix('/') {
                let top = open.pop().ok_or(format!("</{name}> closes nothing"))?;
                if top != name {
                    return Err(format!("<{top}> closed by </{name}>"));
                }
            } else if !tag.ends_with('/') && !tag.starts_with('?') && !tag.starts_with('!') {
                open.push(tag.split_whitespace().next().unwrap_or_default());
            }
            rest = &after[end + 1..];
        }
        if open.is_empty() {
            Ok(())
        } else {
            Err(format!("left open: {open:?}"))
        }
    }

    /// The state legend names the states the bands show, and only those, right above the
    /// first band (below the chart's own legend), on more lines when they do not fit on one.
    #[test]
    fn the_state_legend_names_the_bands_states_right_above_them() {
        let r = busy(30_000);
        let layout = Layout::of(&r, SUMMARY);
        let labels: Vec<&str> = layout.state_legend.items.iter().map(|i| i.label).collect();
        assert_eq!(
            labels,
            [
                "MASTER (VIP)",
                "BACKUP",
                "frozen, VIP",
                "frozen",
                "no keepalived, stale VIP",
                "no keepalived",
                "unreachable"
            ]
        );
        let svg = render(&r, SUMMARY);
        let doc = roxmltree::Document::parse(&svg).expect("well-formed XML");
        let chart_bottom = layout.chart_top + layout.chart_h;
        for label in labels.iter().chain(&["director state"]) {
            let node = doc
                .descendants()
                .find(|n| n.is_element() && n.text() == Some(label))
                .unwrap_or_else(|| panic!("no text {label}"));
            let y: f64 = node.attribute("y").and_then(|y| y.parse().ok()).expect("y");
            assert!(
                y > chart_bottom + 20.0 && y < layout.bands_top,
                "{label} at y {y}: not between the chart's legend ({chart_bottom}) and the bands ({})",
                layout.bands_top
            );
        }

        // A record whose bands show other states names those; one with none names none.
        let mut r = busy(9_500);
        for sample in &mut r.samples {
            sample.directors[1].state = DirectorState::Deaf;
            sample.directors[0].state = DirectorState::Hung;
        }
        let labels: Vec<&str> = StateLegend::of(&r).items.iter().map(|i| i.label).collect();
        assert_eq!(labels, ["BACKUP, hears no MASTER", "hung, VIP", "hung"]);
        assert!(StateLegend::of(&Record::default()).items.is_empty());

        // Every state at once takes two lines, each inside the picture.
        let mut r = busy(9_500);
        r.samples = STATES
            .iter()
            .enumerate()
            .map(|(i, (state, holds))| Sample {
                t_ms: i as i64 * 500,
                directors: vec![DirectorSample {
                    name: "node1".into(),
                    state: *state,
                    holds_vip: *holds,
                }],
            })
            .collect();
        let legend = StateLegend::of(&r);
        assert_eq!(legend.items.len(), STATES.len());
        assert_eq!(legend.lines, 2);
        for LegendItem { x, label, .. } in &legend.items {
            assert!(
                x + 13.0 + 6.5 * label.len() as f64 <= WIDTH,
                "{label} at {x}"
            );
        }
    }

    #[test]
    fn every_picture_is_well_formed_whatever_the_names() {
        for duration_ms in [9_500, 30_000, 75_000] {
            let svg = render(&busy(duration_ms), SUMMARY);
            well_formed(&svg).unwrap_or_else(|e| panic!("{duration_ms} ms: {e}"));
            assert!(svg.contains("web-&lt;a&gt;"), "the odd name is escaped");
        }
        well_formed(&render(&Record::default(), "")).unwrap();
        assert!(well_formed("<svg><title>web-<a>: 1</title></svg>").is_err());
        assert!(well_formed("<svg><text>a & b</text></svg>").is_err());
    }

    #[test]
    fn the_picture_is_as_it_was() {
        let empty = Record::default();
        for (record, summary, golden, file) in [
            (
                busy(9_500),
                SUMMARY,
                include_str!("testdata/timeline-short.svg"),
                "short",
            ),
            (
                busy(30_000),
                SUMMARY,
                include_str!("testdata/timeline-medium.svg"),
                "medium",
            ),
            (
                busy(75_000),
                SUMMARY,
                include_str!("testdata/timeline-long.svg"),
                "long",
            ),
            (
                empty,
                "",
                include_str!("testdata/timeline-empty.svg"),
                "empty",
            ),
        ] {
            let svg = render(&record, summary);
            // LVSLAB_BLESS=1 writes the pictures as they are now (look at them first).
            if std::env::var_os("LVSLAB_BLESS").is_some() {
                let path = format!(
                    "{}/src/drills/testdata/timeline-{file}.svg",
                    env!("CARGO_MANIFEST_DIR")
                );
                std::fs::write(path, &svg).unwrap();
                continue;
            }
            assert!(svg == golden, "the {file} picture changed");
        }
    }
}
