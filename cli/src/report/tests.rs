use std::collections::BTreeMap;

use trailsight::config::DetectorConfig;
use trailsight::detector::explain::explain_series;
use trailsight::fold::Cell;
use trailsight::minute::MINUTES_PER_DAY;
use trailsight::series::SeriesKey;

use super::html::{ReportInput, escape, render};
use super::*;

const SCRIPT: &str = "<script>alert(1)</script>";

fn key(name: &str) -> SeriesKey {
    SeriesKey {
        account: "111122223333".into(),
        region: "us-east-1".into(),
        event_source: "ec2.amazonaws.com".into(),
        event_name: name.into(),
        error_code: None,
        principal: None,
    }
}

fn cell(count: u64, agent: &str) -> Cell {
    let mut cell = Cell {
        count,
        ..Cell::default()
    };
    cell.agents.add(agent, count);
    cell.arns.add(
        "arn:aws:sts::111122223333:assumed-role/github-actions/run",
        count,
    );
    cell
}

/// Four days: a crafted API name called twice every 10 minutes, then a burst from a crafted
/// user agent; and a job every 10 minutes that stops on the fourth day. The records are the
/// detector's own (each series replayed alone).
fn scenario() -> (Activity, Vec<InsightRecord>) {
    let day = MINUTES_PER_DAY;
    let end = 4 * day;
    let mut series: Vec<(SeriesKey, BTreeMap<Minute, Cell>)> = Vec::new();
    let mut bursty = BTreeMap::new();
    for m in (0..end).step_by(10) {
        bursty.insert(m, cell(2, "aws-cli/2"));
    }
    for m in 3 * day + 600..3 * day + 612 {
        bursty.insert(m, cell(40, SCRIPT));
    }
    series.push((key(SCRIPT), bursty));
    let mut job = BTreeMap::new();
    for m in (5..3 * day + 720).step_by(10) {
        job.insert(m, cell(1, "cron"));
    }
    series.push((key("CreateSnapshot"), job));
    let config = DetectorConfig::default();
    let mut activity = Activity::default();
    let mut records = Vec::new();
    for (key, cells) in &series {
        records.extend(explain_series(&config, key, 0, cells, 0, end).records);
        for (minute, cell) in cells {
            activity.add(key, *minute, cell);
        }
    }
    crate::replay::sort_records(&mut records);
    (activity, records)
}

fn page(activity: &Activity, records: &[InsightRecord]) -> String {
    render(&ReportInput {
        records,
        activity,
        config: &DetectorConfig::default(),
        sources: &[PathBuf::from("logs/<b>")],
    })
}

#[test]
fn every_insight_has_its_chart_and_log_values_are_escaped() {
    let (activity, records) = scenario();
    let insights = pair_insights(&records);
    assert!(
        insights.iter().any(|i| i.drop) && insights.iter().any(|i| !i.drop),
        "a spike and a drop: {records:?}"
    );
    let html = page(&activity, &records);
    assert_eq!(
        html.matches("<section class=\"card insight\"").count(),
        insights.len()
    );
    assert_eq!(
        html.matches("<figure class=\"insight-chart\">").count(),
        insights.len()
    );
    assert!(html.contains(&format!("data-insights=\"{}\"", insights.len())));
    // The crafted API name and user agent appear, escaped, never as markup.
    assert!(!html.contains("<script"), "a script element in the page");
    assert!(!html.contains("<b>"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    // The user agent is in the spike's attribution table.
    let agents = html
        .split("data-attribute=\"userAgent\"")
        .nth(1)
        .expect("a user agent table");
    assert!(agents.contains(&escape(SCRIPT)));
    // A drop marks the runs it missed; a spike draws its threshold.
    assert!(html.contains("class=\"missed\""));
    assert!(html.contains("class=\"threshold\""));
    assert!(
        html.contains("role github-actions"),
        "the sentence names the role"
    );
}

#[test]
fn records_from_elsewhere_are_drawn_and_their_text_escaped() {
    let (activity, mut records) = scenario();
    for record in &mut records {
        record.aws_region = "\"><img src=x onerror=alert(1)>".into();
    }
    let html = page(&activity, &records);
    assert!(!html.contains("<img"));
    assert!(html.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
    // No events of that series: each insight says so instead of drawing.
    assert!(html.contains("No events of this series"));
}

#[test]
fn records_outside_the_logs_are_listed_not_replayed() {
    let (activity, mut records) = scenario();
    // An insight eighty years after the logs, and one lasting a century: listed, nothing drawn
    // for the first, the second cut at 30 days, and no replay of the minutes between.
    records[0].event_time = "2106-03-02T00:00:00Z".into();
    let end = records
        .iter()
        .rposition(|r| r.insight_details.state == trailsight::insight::InsightState::End)
        .expect("an End");
    records[end].event_time = "2126-03-02T00:00:00Z".into();
    let started = std::time::Instant::now();
    let html = page(&activity, &records);
    assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
    assert!(html.contains("No events of this series"));
}

#[test]
fn insight_files_in_every_shape_are_read() {
    let (_, records) = scenario();
    let lines: String = records
        .iter()
        .map(|r| serde_json::to_string(r).expect("json") + "\n")
        .collect();
    let array = serde_json::to_string(&records).expect("json");
    let file = serde_json::json!({ "Records": records }).to_string();
    for text in [lines.as_str(), array.as_str(), file.as_str()] {
        assert_eq!(
            parse_insight_records(text.as_bytes()).expect("parsed"),
            records
        );
    }
    assert!(parse_insight_records(b"{\"not\": 1}\n").is_err());
}

#[test]
fn escape_covers_markup_and_quotes() {
    assert_eq!(
        escape("<a href='x'>\"&</a>"),
        "&lt;a href=&#39;x&#39;&gt;&quot;&amp;&lt;/a&gt;"
    );
}

#[test]
fn rates_and_probabilities_read_as_people_say_them() {
    use super::insights::{principal, probability, rate};
    assert_eq!(rate(26.4), "26");
    assert_eq!(rate(2.54), "2.5");
    assert_eq!(rate(0.0083), "0.0083");
    assert_eq!(rate(1.0 / 10080.0), "0.0001");
    assert_eq!(rate(0.0), "0");
    assert_eq!(probability(3.2e-12), "p ≈ 3e-12");
    assert_eq!(probability(0.0), "p < 1e-300");
    assert_eq!(
        principal("arn:aws:sts::111122223333:assumed-role/github-actions/run-1"),
        "role github-actions"
    );
    assert_eq!(principal("arn:aws:iam::111122223333:user/ops"), "user ops");
    assert_eq!(principal("arn:aws:iam::111122223333:root"), "root");
}
