//! The report page. Every value from logs (API names, ARNs, user agents, error codes, even
//! accounts and regions of records drawn from elsewhere) is attacker-controlled: it is written
//! only through [`escape`]. The page carries no script, and its Content-Security-Policy forbids
//! any, and any fetch.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;

use trailsight::config::DetectorConfig;
use trailsight::insight::{Attribution, InsightRecord};
use trailsight::minute::{Minute, format_minute};
use trailsight::series::InsightType;

use super::Activity;
use super::insights::{Insight, draw, pair_insights, rate, sentence};
use super::svg::{Mark, SeriesChart, series_chart, timeline};

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

pub struct ReportInput<'a> {
    pub records: &'a [InsightRecord],
    pub activity: &'a Activity,
    pub config: &'a DetectorConfig,
    pub sources: &'a [PathBuf],
}

const STYLE: &str = r#"
:root { --ink:#1d2330; --muted:#5b6475; --line:#d9dde5; --spike:#d4380d; --drop:#1d5fd0; --error:#a0116a; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--ink); background:#f6f7f9; }
main { max-width:1200px; margin:0 auto; padding:16px; }
h1 { font-size:1.5rem; margin:.2em 0; } h2 { font-size:1.2rem; margin:1.4em 0 .4em; } h3 { font-size:1rem; margin:1em 0 .3em; }
.muted { color:var(--muted); }
.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:14px 16px; margin:14px 0; }
.grid2 { display:grid; grid-template-columns:repeat(auto-fit,minmax(300px,1fr)); gap:14px; }
.scroll { overflow-x:auto; -webkit-overflow-scrolling:touch; }
table { border-collapse:collapse; width:100%; font-size:.9rem; }
th, td { text-align:left; padding:4px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
td.num, th.num { text-align:right; white-space:nowrap; font-variant-numeric:tabular-nums; }
td.value { word-break:break-all; }
.sentence { font-size:1.05rem; font-weight:600; margin:.4em 0 .6em; }
.tag { display:inline-block; padding:1px 8px; border-radius:10px; font-size:.8rem; color:#fff; }
.tag.spike { background:var(--spike); } .tag.drop { background:var(--drop); } .tag.error { background:var(--error); }
.warning { color:#8a5300; }
svg { display:block; width:100%; height:auto; font:12px system-ui,sans-serif; }
svg.chart, svg.timeline { min-width:760px; }
svg .grid { stroke:#eef0f4; } svg .axis { fill:var(--muted); } svg .axis-line { stroke:#9aa3b2; }
svg .row-label { fill:var(--ink); font-size:11px; }
svg .counts rect { fill:#2f3a4f; }
svg .day-before circle { fill:none; stroke:#7d8799; stroke-width:1.2; }
svg .band { fill:#8fb3f0; opacity:.35; stroke:none; }
svg .expected { fill:none; stroke:#1d5fd0; stroke-width:1.6; }
svg .threshold { fill:none; stroke:var(--spike); stroke-width:1.4; stroke-dasharray:5 3; }
svg .episode { fill:#ffb347; opacity:.28; }
svg .missed { fill:var(--drop); }
svg .baseline-window line { stroke:#7d8799; stroke-width:2; }
svg .mark { stroke:#fff; stroke-width:.5; } svg .mark.spike { fill:var(--spike); } svg .mark.drop { fill:var(--drop); } svg .mark.error { fill:var(--error); }
.legend { font-size:.82rem; color:var(--muted); display:flex; flex-wrap:wrap; gap:4px 14px; margin:.3em 0 .8em; }
.sw { display:inline-block; width:14px; height:10px; margin-right:4px; vertical-align:-1px; border-radius:2px; }
.sw.counts { background:#2f3a4f; } .sw.band { background:#8fb3f0; opacity:.6; } .sw.expected { background:#1d5fd0; height:3px; vertical-align:2px; }
.sw.threshold { background:repeating-linear-gradient(90deg,var(--spike) 0 5px,transparent 5px 8px); height:3px; vertical-align:2px; }
.sw.episode { background:#ffb347; opacity:.6; } .sw.missed { background:var(--drop); } .sw.day-before { width:8px; height:8px; border:1.5px solid #7d8799; border-radius:50%; }
figure { margin:0; }
@media (max-width:600px) { main { padding:8px; } .card { padding:10px; } body { font-size:14px; } th, td { padding:3px 5px; }
  svg.chart { min-width:0; font-size:24px; } svg.chart .minor { display:none; } }
"#;

fn kind_class(insight: &Insight) -> &'static str {
    match (insight.insight_type(), insight.drop) {
        (InsightType::ApiErrorRateInsight, _) => "error",
        (_, true) => "drop",
        _ => "spike",
    }
}

fn anchor(index: usize) -> String {
    format!("insight-{}", index + 1)
}

fn api_label(source: &str, name: &str) -> String {
    format!("{}:{}", source.trim_end_matches(".amazonaws.com"), name)
}

/// The whole page.
pub fn render(input: &ReportInput) -> String {
    let insights = pair_insights(input.records);
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    out.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">");
    let _ = write!(
        out,
        "<title>Trailsight report: {} insights</title><style>{STYLE}</style></head>",
        insights.len()
    );
    let _ = write!(
        out,
        "<body data-insights=\"{}\"><main><h1>Trailsight insights</h1>",
        insights.len()
    );
    let sources: Vec<String> = input
        .sources
        .iter()
        .map(|p| escape(&p.display().to_string()))
        .collect();
    let span = match (input.activity.first, input.activity.last) {
        (Some(a), Some(b)) => format!("{} to {}", format_minute(a), format_minute(b + 1)),
        _ => "no events".into(),
    };
    let _ = write!(
        out,
        "<p class=\"muted\">{} insights from {} ({span}); sensitivity {:?}, at least {} events to open a spike, {} h of warm-up.</p>",
        insights.len(),
        sources.join(", "),
        input.config.sensitivity,
        input.config.min_calls,
        input.config.warmup_minutes / 60,
    );
    overview(&mut out, input, &insights);
    let empty = BTreeMap::new();
    for (i, insight) in insights.iter().enumerate() {
        insight_section(&mut out, input, insight, i, &empty);
    }
    out.push_str("<p class=\"muted\">Written by <code>trailsight report</code>. Expected rate, band and threshold are the detector's own: its hour-of-day model replayed for the series alone, minute by minute.</p>");
    out.push_str("</main></body></html>\n");
    out
}

fn overview(out: &mut String, input: &ReportInput, insights: &[Insight]) {
    out.push_str("<section class=\"card overview\"><h2>Overview</h2>");
    // Timeline per account and region.
    let mut rows: BTreeMap<String, Vec<Mark>> = BTreeMap::new();
    let titles: Vec<String> = insights
        .iter()
        .map(|i| {
            format!(
                "{} {} from {}",
                i.kind_label(),
                api_label(&i.key.event_source, &i.key.event_name),
                format_minute(i.start)
            )
        })
        .collect();
    let data_end = input.activity.last.map(|m| m + 1);
    for (index, insight) in insights.iter().enumerate() {
        rows.entry(format!("{} {}", insight.key.account, insight.key.region))
            .or_default()
            .push(Mark {
                anchor: anchor(index),
                start: insight.start,
                end: insight.end.or(data_end).unwrap_or(insight.start + 1),
                class: kind_class(insight),
                title: &titles[index],
            });
    }
    let from = input
        .activity
        .first
        .or(insights.iter().map(|i| i.start).min());
    let to = data_end.or(insights.iter().filter_map(|i| i.end).max());
    if let (Some(from), Some(to)) = (from, to)
        && !rows.is_empty()
    {
        let rows: Vec<(String, Vec<Mark>)> = rows.into_iter().collect();
        out.push_str("<h3>Insights over time, per account and region</h3><div class=\"scroll\">");
        out.push_str(&timeline(&rows, from, to));
        out.push_str("</div><div class=\"legend\"><span><i class=\"sw\" style=\"background:var(--spike)\"></i>call-rate spike</span><span><i class=\"sw\" style=\"background:var(--drop)\"></i>call-rate drop</span><span><i class=\"sw\" style=\"background:var(--error)\"></i>error-rate spike</span></div>");
    }
    out.push_str("<div class=\"grid2\"><div>");
    // Counts by type.
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    for insight in insights {
        *counts.entry(insight.kind_label()).or_default() += 1;
    }
    out.push_str(
        "<h3>Insights by type</h3><table><tr><th>type</th><th class=\"num\">insights</th></tr>",
    );
    for (label, n) in &counts {
        let _ = write!(out, "<tr><td>{label}</td><td class=\"num\">{n}</td></tr>");
    }
    let _ = write!(
        out,
        "<tr><th>all</th><th class=\"num\">{}</th></tr></table>",
        insights.len()
    );
    out.push_str("</div><div>");
    // Busiest APIs (call-rate series: the write calls the detector counts).
    let mut apis: BTreeMap<(String, String), (u64, u64, usize)> = BTreeMap::new();
    for (key, cells) in &input.activity.series {
        let total: u64 = cells.values().map(|c| c.count).sum();
        let entry = apis
            .entry((key.event_source.clone(), key.event_name.clone()))
            .or_default();
        match key.insight_type() {
            InsightType::ApiCallRateInsight => entry.0 += total,
            InsightType::ApiErrorRateInsight => entry.1 += total,
            // A principal's series count calls the account's series count already.
            InsightType::PrincipalApiCallRateInsight | InsightType::PrincipalFirstSeenInsight => {}
        }
    }
    for insight in insights {
        if let Some(entry) = apis.get_mut(&(
            insight.key.event_source.clone(),
            insight.key.event_name.clone(),
        )) {
            entry.2 += 1;
        }
    }
    let mut busiest: Vec<_> = apis.into_iter().filter(|(_, v)| v.0 > 0).collect();
    busiest.sort_by(|a, b| b.1.0.cmp(&a.1.0).then_with(|| a.0.cmp(&b.0)));
    out.push_str("<h3>Busiest APIs (write calls)</h3><div class=\"scroll\"><table><tr><th>API</th><th class=\"num\">calls</th><th class=\"num\">error events</th><th class=\"num\">insights</th></tr>");
    for ((source, name), (calls, errors, n)) in busiest.iter().take(10) {
        let _ = write!(
            out,
            "<tr><td class=\"value\">{}</td><td class=\"num\">{calls}</td><td class=\"num\">{errors}</td><td class=\"num\">{n}</td></tr>",
            escape(&api_label(source, name))
        );
    }
    out.push_str("</table></div></div></div>");
    // Table of contents.
    if !insights.is_empty() {
        out.push_str("<h3>All insights</h3><div class=\"scroll\"><table><tr><th>#</th><th>start</th><th>type</th><th>account / region</th><th>API</th><th class=\"num\">minutes</th></tr>");
        for (i, insight) in insights.iter().enumerate() {
            let minutes = insight
                .end
                .map(|e| (e - insight.start).to_string())
                .unwrap_or_else(|| "open".into());
            let _ = write!(
                out,
                "<tr><td><a href=\"#{}\">{}</a></td><td>{}</td><td><span class=\"tag {}\">{}</span></td><td class=\"value\">{} {}</td><td class=\"value\">{}</td><td class=\"num\">{minutes}</td></tr>",
                anchor(i),
                i + 1,
                format_minute(insight.start),
                kind_class(insight),
                insight.kind_label(),
                escape(&insight.key.account),
                escape(&insight.key.region),
                escaped_api(insight),
            );
        }
        out.push_str("</table></div>");
    }
    out.push_str("</section>");
}

/// The insight's API as a heading shows it, escaped: `iam CreateUser [AccessDenied]`.
fn escaped_api(insight: &Insight) -> String {
    let api = escape(&api_label(
        &insight.key.event_source,
        &insight.key.event_name,
    ));
    match &insight.key.error_code {
        Some(code) => format!("{api} [{}]", escape(code)),
        None => api,
    }
}

fn insight_section(
    out: &mut String,
    input: &ReportInput,
    insight: &Insight,
    index: usize,
    empty: &BTreeMap<Minute, trailsight::fold::Cell>,
) {
    let drawn = draw(insight, input.activity, input.config, empty);
    let _ = write!(
        out,
        "<section class=\"card insight\" id=\"{}\" data-insight=\"{}\"><h2>{}. <span class=\"tag {}\">{}</span> {}</h2>",
        anchor(index),
        escape(&insight.shared_event_id),
        index + 1,
        kind_class(insight),
        insight.kind_label(),
        escaped_api(insight),
    );
    let _ = write!(
        out,
        "<p class=\"muted\">account {} · {} · {} – {} · sharedEventID {}</p>",
        escape(&insight.key.account),
        escape(&insight.key.region),
        format_minute(insight.start),
        insight
            .end
            .map(format_minute)
            .unwrap_or_else(|| "still open".into()),
        escape(&insight.shared_event_id),
    );
    let _ = write!(
        out,
        "<p class=\"sentence\">{}</p>",
        escape(&sentence(insight, &drawn))
    );
    if !drawn.reproduced {
        out.push_str("<p class=\"warning\">Replaying this series alone, minute by minute, does not open an insight at this start (records from another configuration, or late data in the original run): the expected rate and threshold drawn are those of that replay.</p>");
    }
    let title = api_label(&insight.key.event_source, &insight.key.event_name);
    if !drawn.week.is_empty() {
        let zoom = &drawn.week[drawn.zoom.clone()];
        let _ = write!(
            out,
            "<figure class=\"insight-chart\"><h3>Around the insight (per minute)</h3><div class=\"scroll\">{}</div>",
            series_chart(&SeriesChart {
                id: &insight.shared_event_id,
                title: &title,
                views: zoom,
                episode: (insight.start, drawn.episode_end),
                baseline_from: None,
                missed: drawn.rhythm.as_ref().map_or(&[], |r| r.missed.as_slice()),
                day_before: &drawn.day_before,
                threshold: !insight.drop,
            })
        );
        legend(out, insight.drop, true);
        out.push_str("</figure>");
        let _ = write!(
            out,
            "<figure class=\"week-chart\"><h3>Baseline window and insight</h3><div class=\"scroll\">{}</div>",
            series_chart(&SeriesChart {
                id: &insight.shared_event_id,
                title: &title,
                views: &drawn.week,
                episode: (insight.start, drawn.episode_end),
                baseline_from: drawn.week.first().map(|v| v.minute),
                missed: &[],
                day_before: &[],
                threshold: !insight.drop,
            })
        );
        legend(out, insight.drop, false);
        out.push_str("</figure>");
    } else {
        out.push_str(
            "<p class=\"warning\">No events of this series in the logs given: nothing to draw.</p>",
        );
    }
    statistics(out, insight);
    attributions(out, insight);
    out.push_str("</section>");
}

fn legend(out: &mut String, drop: bool, zoom: bool) {
    out.push_str("<div class=\"legend\"><span><i class=\"sw counts\"></i>events per minute</span><span><i class=\"sw expected\"></i>expected (hour-of-day mean)</span><span><i class=\"sw band\"></i>expected ± 2 standard deviations</span>");
    if !drop {
        out.push_str("<span><i class=\"sw threshold\"></i>spike threshold (1-minute count)</span>");
    }
    out.push_str("<span><i class=\"sw episode\"></i>insight</span>");
    if zoom {
        out.push_str("<span><i class=\"sw day-before\"></i>same minutes the day before</span>");
        if drop {
            out.push_str("<span><i class=\"sw missed\"></i>missed run</span>");
        }
    }
    out.push_str("</div>");
}

fn statistics(out: &mut String, insight: &Insight) {
    out.push_str("<h3>Statistics</h3><div class=\"scroll\"><table><tr><th>record</th><th>eventTime</th><th class=\"num\">baseline average</th><th class=\"num\">insight average</th><th class=\"num\">insightDuration</th><th class=\"num\">baselineDuration</th></tr>");
    for record in [insight.start_record, insight.end_record]
        .into_iter()
        .flatten()
    {
        let s = &record.insight_details.insight_context.statistics;
        let _ = write!(
            out,
            "<tr><td>{:?}</td><td>{}</td><td class=\"num\">{}/min</td><td class=\"num\">{}/min</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            record.insight_details.state,
            escape(&record.event_time),
            rate(s.baseline.average),
            rate(s.insight.average),
            s.insight_duration,
            s.baseline_duration
        );
    }
    out.push_str("</table></div>");
}

fn attributions(out: &mut String, insight: &Insight) {
    let Some(record) = insight.summary_record() else {
        return;
    };
    let names = [
        ("userIdentityArn", "Who (caller ARN)"),
        ("userAgent", "Which agent (user agent)"),
        ("errorCode", "Which error (error code; null = success)"),
    ];
    let list = &record.insight_details.insight_context.attributions;
    let _ = write!(
        out,
        "<h3>Attributions ({} record)</h3><div class=\"grid2\">",
        if insight.end_record.is_some() {
            "End: the whole episode"
        } else {
            "Start: its first minute"
        }
    );
    for (attribute, heading) in names {
        let Some(a) = list.iter().find(|a| a.attribute == attribute) else {
            continue;
        };
        attribution_table(out, heading, a);
    }
    out.push_str("</div>");
}

fn attribution_table(out: &mut String, heading: &str, attribution: &Attribution) {
    let _ = write!(
        out,
        "<div class=\"attribution\" data-attribute=\"{}\"><h3>{heading}</h3><table>",
        escape(&attribution.attribute)
    );
    for (when, values) in [
        ("in the insight", &attribution.insight),
        ("in the baseline", &attribution.baseline),
    ] {
        let _ = write!(out, "<tr><th>{when}</th><th class=\"num\">/min</th></tr>");
        if values.is_empty() {
            out.push_str("<tr><td class=\"muted\">none</td><td></td></tr>");
        }
        for v in values {
            let _ = write!(
                out,
                "<tr><td class=\"value\">{}</td><td class=\"num\">{}</td></tr>",
                escape(&v.value),
                rate(v.average)
            );
        }
    }
    out.push_str("</table></div>");
}
