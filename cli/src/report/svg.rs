//! Inline SVG charts, written by hand: a series against its expected rate and band, the
//! threshold, the episode shaded; and the overview's timeline. Every text that comes from logs
//! goes through [`super::html::escape`].

use std::fmt::Write;

use trailsight::detector::explain::MinuteView;
use trailsight::minute::{Minute, format_minute};

use super::html::escape;

pub const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 250.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 30.0;
/// Most bins a chart draws: longer views show each bin's busiest minute.
const MAX_BINS: usize = 720;

/// What a series chart shows.
pub struct SeriesChart<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub views: &'a [MinuteView],
    /// The insight's episode, `[start, end)`.
    pub episode: (Minute, Minute),
    /// The baseline window's start (drawn as a bracket), when it is in view.
    pub baseline_from: Option<Minute>,
    /// Minutes marked as missed runs (drops).
    pub missed: &'a [Minute],
    /// The same minutes one day earlier, aligned with `views` (empty: not drawn).
    pub day_before: &'a [u64],
    /// Whether to draw the spike threshold (spikes) or not (drops).
    pub threshold: bool,
}

struct Bin {
    from: Minute,
    to: Minute,
    count: u64,
    mean: f64,
    high: f64,
    low: f64,
    threshold: Option<u64>,
    day_before: u64,
}

fn bins(chart: &SeriesChart) -> (Vec<Bin>, i64) {
    let size = chart.views.len().div_ceil(MAX_BINS).max(1);
    let bins = chart
        .views
        .chunks(size)
        .enumerate()
        .map(|(i, chunk)| {
            let n = chunk.len() as f64;
            let mean = chunk.iter().map(|v| v.expected.mean).sum::<f64>() / n;
            let spread = chunk
                .iter()
                .map(|v| v.expected.variance.sqrt())
                .sum::<f64>()
                / n;
            let day_before = chart
                .day_before
                .get(i * size..((i + 1) * size).min(chart.day_before.len()))
                .map_or(0, |s| s.iter().copied().max().unwrap_or(0));
            Bin {
                from: chunk[0].minute,
                to: chunk[chunk.len() - 1].minute + 1,
                count: chunk.iter().map(|v| v.count).max().unwrap_or(0),
                mean,
                high: mean + 2.0 * spread,
                low: (mean - 2.0 * spread).max(0.0),
                threshold: chunk.iter().filter_map(|v| v.spike_threshold).min(),
                day_before,
            }
        })
        .collect();
    (bins, size as i64)
}

fn nice_ceiling(value: f64) -> f64 {
    if value <= 1.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(value.log10().floor());
    for step in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if step * magnitude >= value {
            return step * magnitude;
        }
    }
    10.0 * magnitude
}

fn time_label(minute: Minute, span: i64) -> String {
    let text = format_minute(minute);
    // 2026-03-02T14:07:00Z
    if span > 1440 {
        format!("{} {}", &text[5..10], &text[11..16])
    } else {
        text[11..16].to_string()
    }
}

/// A series chart as an `<svg>` element.
pub fn series_chart(chart: &SeriesChart) -> String {
    let (bins, bin_minutes) = bins(chart);
    let mut out = String::new();
    let (Some(first), Some(last)) = (bins.first(), bins.last()) else {
        return out;
    };
    let (from, to) = (first.from, last.to);
    let span = (to - from).max(1);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |m: Minute| LEFT + plot_w * ((m - from) as f64 / span as f64).clamp(0.0, 1.0);
    let max_count = bins.iter().map(|b| b.count).max().unwrap_or(0) as f64;
    let max_band = bins.iter().map(|b| b.high).fold(0.0, f64::max);
    let max_ghost = bins.iter().map(|b| b.day_before).max().unwrap_or(0) as f64;
    let min_threshold = if chart.threshold {
        bins.iter().filter_map(|b| b.threshold).min().unwrap_or(0) as f64
    } else {
        0.0
    };
    let top = nice_ceiling(
        max_count
            .max(max_band)
            .max(max_ghost)
            .max(min_threshold.min(3.0 * max_count.max(5.0)))
            * 1.08,
    );
    let y = |v: f64| TOP + plot_h * (1.0 - (v / top).clamp(0.0, 1.0));
    let label = if bin_minutes > 1 {
        format!(
            "{}: per-minute events (each bar the busiest minute of {bin_minutes} min), expected rate and band",
            chart.title
        )
    } else {
        format!("{}: per-minute events, expected rate and band", chart.title)
    };
    let _ = write!(
        out,
        r#"<svg class="chart" data-insight="{id}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{label}" xmlns="http://www.w3.org/2000/svg">"#,
        id = escape(chart.id),
        label = escape(&label),
    );
    // Grid and y axis.
    for i in 0..=4 {
        let value = top * f64::from(i) / 4.0;
        let yy = y(value);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{LEFT}" x2="{:.1}" y1="{yy:.1}" y2="{yy:.1}"/><text class="axis" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            WIDTH - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            axis_number(value)
        );
    }
    // The baseline window bracket.
    if let Some(b) = chart
        .baseline_from
        .filter(|b| *b >= from && *b < chart.episode.0)
    {
        let (x0, x1) = (x(b), x(chart.episode.0));
        let _ = write!(
            out,
            r#"<g class="baseline-window"><line x1="{x0:.1}" x2="{x1:.1}" y1="{t:.1}" y2="{t:.1}"/><text class="axis" x="{:.1}" y="{:.1}" text-anchor="middle">baseline window</text></g>"#,
            (x0 + x1) / 2.0,
            TOP + 11.0,
            t = TOP + 1.0,
        );
    }
    // The episode.
    let (e0, e1) = (
        x(chart.episode.0),
        x(chart.episode.1).max(x(chart.episode.0) + 2.0),
    );
    let _ = write!(
        out,
        r#"<rect class="episode" x="{e0:.1}" y="{TOP}" width="{:.1}" height="{plot_h:.1}"><title>insight {} – {}</title></rect>"#,
        e1 - e0,
        format_minute(chart.episode.0),
        format_minute(chart.episode.1),
    );
    // Band and expected rate.
    let mut band = String::new();
    for b in &bins {
        let _ = write!(
            band,
            "{:.1},{:.1} {:.1},{:.1} ",
            x(b.from),
            y(b.high),
            x(b.to),
            y(b.high)
        );
    }
    for b in bins.iter().rev() {
        let _ = write!(
            band,
            "{:.1},{:.1} {:.1},{:.1} ",
            x(b.to),
            y(b.low),
            x(b.from),
            y(b.low)
        );
    }
    let _ = write!(
        out,
        r#"<polygon class="band" points="{}"/>"#,
        band.trim_end()
    );
    let mut mean = String::new();
    for b in &bins {
        let _ = write!(
            mean,
            "{:.1},{:.1} {:.1},{:.1} ",
            x(b.from),
            y(b.mean),
            x(b.to),
            y(b.mean)
        );
    }
    let _ = write!(
        out,
        r#"<polyline class="expected" points="{}"/>"#,
        mean.trim_end()
    );
    // Counts.
    let mut bars = String::new();
    for b in bins.iter().filter(|b| b.count > 0) {
        let _ = write!(
            bars,
            r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>{} {}</title></rect>"#,
            x(b.from),
            y(b.count as f64),
            (x(b.to) - x(b.from)).max(1.2),
            (y(0.0) - y(b.count as f64)).max(0.8),
            format_minute(b.from),
            b.count
        );
    }
    let _ = write!(out, r#"<g class="counts">{bars}</g>"#);
    // Day before (the usual rhythm).
    if !chart.day_before.is_empty() {
        let mut ghost = String::new();
        for b in bins.iter().filter(|b| b.day_before > 0) {
            let _ = write!(
                ghost,
                r#"<circle cx="{:.1}" cy="{:.1}" r="2.6"/>"#,
                (x(b.from) + x(b.to)) / 2.0,
                y(b.day_before as f64),
            );
        }
        let _ = write!(out, r#"<g class="day-before">{ghost}</g>"#);
    }
    // Threshold (a step line, clipped at the top).
    if chart.threshold {
        let mut line = String::new();
        let mut segments = Vec::new();
        for b in &bins {
            match b.threshold {
                Some(t) if (t as f64) <= top => {
                    let _ = write!(
                        line,
                        "{:.1},{:.1} {:.1},{:.1} ",
                        x(b.from),
                        y(t as f64),
                        x(b.to),
                        y(t as f64)
                    );
                }
                _ => {
                    if !line.is_empty() {
                        segments.push(std::mem::take(&mut line));
                    }
                }
            }
        }
        if !line.is_empty() {
            segments.push(line);
        }
        for points in segments {
            let _ = write!(
                out,
                r#"<polyline class="threshold" points="{}"/>"#,
                points.trim_end()
            );
        }
    }
    // Missed runs.
    for m in chart.missed.iter().filter(|m| (from..to).contains(*m)) {
        let xm = x(*m);
        let base = y(0.0);
        let _ = write!(
            out,
            r#"<path class="missed" d="M{xm:.1},{:.1} l-4,-8 h8 z"><title>missed run {}</title></path>"#,
            base - 1.0,
            format_minute(*m)
        );
    }
    // X axis.
    let _ = write!(
        out,
        r#"<line class="axis-line" x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}"/>"#,
        WIDTH - RIGHT,
        y(0.0),
        y(0.0)
    );
    let ticks = 6;
    for i in 0..=ticks {
        let m = from + span * i / ticks;
        let anchor = match i {
            0 => "start",
            i if i == ticks => "end",
            _ => "middle",
        };
        // Every other label is minor: a phone's narrow chart shows the others only.
        let class = if i % 2 == 1 { "axis minor" } else { "axis" };
        let _ = write!(
            out,
            r#"<text class="{class}" x="{:.1}" y="{:.1}" text-anchor="{anchor}">{}</text>"#,
            x(m),
            HEIGHT - 10.0,
            time_label(m, span)
        );
    }
    out.push_str("</svg>");
    out
}

fn axis_number(value: f64) -> String {
    if value >= 100.0 || value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

/// One insight on the overview's timeline.
pub struct Mark<'a> {
    pub anchor: String,
    pub start: Minute,
    pub end: Minute,
    pub class: &'static str,
    pub title: &'a str,
}

/// The overview: one row per account and region over the whole data, each insight a mark.
pub fn timeline(rows: &[(String, Vec<Mark>)], from: Minute, to: Minute) -> String {
    let row_h = 26.0;
    let label_w = 230.0;
    let height = TOP + row_h * rows.len() as f64 + BOTTOM;
    let span = (to - from).max(1);
    let plot_w = WIDTH - label_w - RIGHT;
    let x = |m: Minute| label_w + plot_w * ((m - from) as f64 / span as f64).clamp(0.0, 1.0);
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="timeline" viewBox="0 0 {WIDTH} {height:.0}" role="img" aria-label="insights per account and region over time" xmlns="http://www.w3.org/2000/svg">"#
    );
    let days = (from.div_euclid(1440) + 1..=to.div_euclid(1440)).map(|d| d * 1440);
    for day in days.filter(|d| x(*d) < WIDTH - RIGHT - 16.0) {
        let xd = x(day);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{xd:.1}" x2="{xd:.1}" y1="{TOP}" y2="{:.1}"/><text class="axis" x="{xd:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            height - BOTTOM,
            height - 10.0,
            &format_minute(day)[5..10]
        );
    }
    for (i, (label, marks)) in rows.iter().enumerate() {
        let top = TOP + row_h * i as f64;
        let _ = write!(
            out,
            r#"<text class="row-label" x="4" y="{:.1}">{}</text><line class="grid" x1="{label_w}" x2="{:.1}" y1="{:.1}" y2="{:.1}"/>"#,
            top + row_h / 2.0 + 4.0,
            escape(label),
            WIDTH - RIGHT,
            top + row_h / 2.0,
            top + row_h / 2.0,
        );
        for mark in marks {
            let (x0, x1) = (x(mark.start), x(mark.end));
            let _ = write!(
                out,
                r##"<a href="#{}"><rect class="mark {}" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>{}</title></rect></a>"##,
                escape(&mark.anchor),
                mark.class,
                x0.min(WIDTH - RIGHT - 4.0),
                top + 5.0,
                (x1 - x0).max(4.0),
                row_h - 10.0,
                escape(mark.title)
            );
        }
    }
    out.push_str("</svg>");
    out
}
