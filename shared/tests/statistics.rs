//! Exact statistics (issue 11): every number of every Start and End record is what the contract's
//! formulas give over the raw events, recounted here from the events themselves (not from the
//! detector's cells or state):
//! - `baseline.average`: events in `[00:00 UTC seven days before the start's day, start)` over
//!   `baselineDuration` minutes;
//! - `insight.average`: events in the record's window (the first minute for a Start, `[start, end)`
//!   for an End) over its minutes;
//! - every attribution value's `average` over exactly the same windows, top 5 by count (ties by
//!   value), so that the `errorCode` values of a call-rate insight add up to the statistic.

use std::collections::{BTreeMap, HashMap};

use trailsight::config::DetectorConfig;
use trailsight::detector::DetectorState;
use trailsight::fold::Cell;
use trailsight::insight::{InsightRecord, InsightState};
use trailsight::minute::{MINUTES_PER_DAY, Minute, parse_minute};
use trailsight::series::SeriesKey;

/// One raw event of the watched API.
#[derive(Clone)]
struct Event {
    minute: Minute,
    arn: String,
    agent: String,
    error: Option<&'static str>,
}

/// A small deterministic generator (no dependency, same sequence everywhere).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn start() -> Minute {
    parse_minute("2026-03-02T00:00:00Z").unwrap_or_default()
}

fn key(error: Option<&str>) -> SeriesKey {
    SeriesKey {
        account: "111122223333".into(),
        region: "eu-west-1".into(),
        event_source: "ec2.amazonaws.com".into(),
        event_name: "RunInstances".into(),
        error_code: error.map(str::to_owned),
        principal: None,
    }
}

/// Ten days of a bursty key: everyday callers with a few errors, then unusual bursts on days
/// 8 and 9 (one opening on its first minute, one building up over five minutes), many callers.
fn events() -> Vec<Event> {
    let mut rng = Lcg(11);
    let callers = ["role/ops", "role/ci", "user/alice", "role/deploy"];
    let agents = [
        "console.amazonaws.com",
        "aws-cli/2.15",
        "Boto3/1.34",
        "terraform/1.7",
    ];
    let mut out = Vec::new();
    let day = |d: i64, h: i64, m: i64| start() + d * MINUTES_PER_DAY + h * 60 + m;
    for minute in start()..start() + 10 * MINUTES_PER_DAY {
        if rng.below(10) < 3 {
            for _ in 0..=rng.below(3) {
                out.push(Event {
                    minute,
                    arn: format!(
                        "arn:aws:iam::111122223333:{}",
                        callers[rng.below(4) as usize]
                    ),
                    agent: agents[rng.below(4) as usize].to_owned(),
                    error: (rng.below(20) == 0).then_some("Client.UnauthorizedOperation"),
                });
            }
        }
    }
    // Day 8, 10:00: 60 calls a minute for 6 minutes by nine roles, a third denied.
    for minute in day(8, 10, 0)..day(8, 10, 6) {
        for i in 0..60 {
            out.push(Event {
                minute,
                arn: format!("arn:aws:sts::111122223333:assumed-role/intruder-{}", i % 9),
                agent: format!("python-requests/2.{}", i % 7),
                error: (i % 3 == 0).then_some("Client.UnauthorizedOperation"),
            });
        }
    }
    // Day 9, 14:03: twelve calls a minute for twenty minutes (unusual over five minutes first).
    for minute in day(9, 14, 3)..day(9, 14, 23) {
        for i in 0..12 {
            out.push(Event {
                minute,
                arn: "arn:aws:iam::111122223333:role/migration".into(),
                agent: agents[i % 4].to_owned(),
                error: (i == 0).then_some("Client.InstanceLimitExceeded"),
            });
        }
    }
    out
}

/// The cells the detector is fed: per minute, the call-rate key and one key per error code.
fn cells(events: &[Event]) -> BTreeMap<Minute, HashMap<SeriesKey, Cell>> {
    let mut out: BTreeMap<Minute, HashMap<SeriesKey, Cell>> = BTreeMap::new();
    for event in events {
        let minute = out.entry(event.minute).or_default();
        let mut keys = vec![(key(None), true)];
        if let Some(code) = event.error {
            keys.push((key(Some(code)), false));
        }
        for (key, call_rate) in keys {
            let cell = minute.entry(key).or_default();
            cell.count += 1;
            cell.arns.add(&event.arn, 1);
            cell.agents.add(&event.agent, 1);
            if call_rate {
                cell.errors.add(event.error.unwrap_or("null"), 1);
            }
        }
    }
    out
}

/// The expected attribution list: the window's events per value, top 5, over `minutes`.
fn expected_list<'a>(values: impl Iterator<Item = &'a str>, minutes: i64) -> Vec<(String, f64)> {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for value in values {
        *counts.entry(value).or_default() += 1;
    }
    let mut sorted: Vec<(&str, u64)> = counts.into_iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    sorted
        .into_iter()
        .take(5)
        .map(|(v, c)| (v.to_owned(), c as f64 / minutes as f64))
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn every_statistic_and_attribution_is_the_contracts_formula_over_the_raw_events() {
    let events = events();
    let by_minute = cells(&events);
    let config = DetectorConfig::default();
    let mut state = DetectorState::default();
    let mut records: Vec<InsightRecord> = Vec::new();
    let empty = HashMap::new();
    for minute in start()..start() + 10 * MINUTES_PER_DAY {
        let cells = by_minute.get(&minute).unwrap_or(&empty);
        records.extend(state.evaluate_minute(&config, minute, cells));
    }
    let starts: HashMap<String, Minute> = records
        .iter()
        .filter(|r| r.insight_details.state == InsightState::Start)
        .map(|r| {
            let at = parse_minute(&r.event_time).unwrap_or_default();
            (r.shared_event_id.clone(), at)
        })
        .collect();
    let spikes = records
        .iter()
        .filter(|r| r.insight_details.insight_context.statistics.insight.average > 0.0)
        .count();
    assert!(spikes >= 4, "both bursts, both insight types: {records:#?}");

    let mut checked = 0;
    for record in &records {
        let details = &record.insight_details;
        let stats = &details.insight_context.statistics;
        let start = starts[&record.shared_event_id];
        let (from, to) = match details.state {
            InsightState::Start => (start, start + 1),
            InsightState::End => (start, parse_minute(&record.event_time).unwrap_or_default()),
        };
        assert_eq!(stats.insight_duration, to - from, "{record:#?}");
        let window_start = start - start.rem_euclid(MINUTES_PER_DAY) - 7 * MINUTES_PER_DAY;
        assert_eq!(stats.baseline_duration, start - window_start);
        let of_key: Vec<&Event> = events
            .iter()
            .filter(|e| details.error_code.is_none() || e.error == details.error_code.as_deref())
            .collect();
        let inside = |a: Minute, b: Minute| -> Vec<&Event> {
            of_key
                .iter()
                .copied()
                .filter(|e| (a..b).contains(&e.minute))
                .collect()
        };
        let (insight, baseline) = (inside(from, to), inside(window_start, start));
        let baseline_minutes = stats.baseline_duration;
        assert!(
            close(
                stats.baseline.average,
                baseline.len() as f64 / baseline_minutes as f64
            ),
            "baseline.average {} != {}/{baseline_minutes}: {record:#?}",
            stats.baseline.average,
            baseline.len()
        );
        assert!(
            close(
                stats.insight.average,
                insight.len() as f64 / (to - from) as f64
            ),
            "insight.average {} != {}/{}: {record:#?}",
            stats.insight.average,
            insight.len(),
            to - from
        );
        for attribution in &details.insight_context.attributions {
            let pick = |e: &&Event| -> String {
                match attribution.attribute.as_str() {
                    "userIdentityArn" => e.arn.clone(),
                    "userAgent" => e.agent.clone(),
                    _ => e.error.unwrap_or("null").to_owned(),
                }
            };
            for (side, got, window, minutes) in [
                ("insight", &attribution.insight, &insight, to - from),
                (
                    "baseline",
                    &attribution.baseline,
                    &baseline,
                    baseline_minutes,
                ),
            ] {
                let picked: Vec<String> = window.iter().map(pick).collect();
                let want = expected_list(picked.iter().map(String::as_str), minutes);
                let got: Vec<(String, f64)> =
                    got.iter().map(|v| (v.value.clone(), v.average)).collect();
                assert_eq!(
                    got.iter().map(|g| &g.0).collect::<Vec<_>>(),
                    want.iter().map(|w| &w.0).collect::<Vec<_>>(),
                    "{side} {} of {record:#?}",
                    attribution.attribute
                );
                for ((_, g), (value, w)) in got.iter().zip(&want) {
                    assert!(
                        close(*g, *w),
                        "{side} {} {value}: {g} != {w}",
                        attribution.attribute
                    );
                    checked += 1;
                }
            }
        }
    }
    eprintln!(
        "{} records, {checked} attribution values checked",
        records.len()
    );
    assert!(checked > 40, "{checked} attribution values checked");
}
