//! Insights as the report shows them: Start and End paired, the minutes drawn, what the detector
//! expected over them, and the sentence that explains them.

use std::collections::BTreeMap;

use trailsight::baseline::upper_tail;
use trailsight::config::DetectorConfig;
use trailsight::detector::explain::{MinuteView, explain_series};
use trailsight::fold::Cell;
use trailsight::insight::{InsightRecord, InsightState};
use trailsight::minute::{MINUTES_PER_DAY, Minute, day_start, parse_minute};
use trailsight::series::{InsightType, SeriesKey};

use super::Activity;

/// One insight: its Start and End records (either may be missing from records drawn from
/// elsewhere), its series and its window.
#[derive(Debug, Clone)]
pub struct Insight<'a> {
    pub shared_event_id: String,
    pub key: SeriesKey,
    pub start_record: Option<&'a InsightRecord>,
    pub end_record: Option<&'a InsightRecord>,
    pub start: Minute,
    /// The End's minute; none while the insight is open.
    pub end: Option<Minute>,
    pub drop: bool,
}

impl Insight<'_> {
    /// The record whose statistics describe the whole episode: the End when there is one.
    pub fn summary_record(&self) -> Option<&InsightRecord> {
        self.end_record.or(self.start_record)
    }

    pub fn insight_type(&self) -> InsightType {
        self.key.insight_type()
    }

    pub fn kind_label(&self) -> &'static str {
        match (self.insight_type(), self.drop) {
            (InsightType::ApiCallRateInsight, false) => "call-rate spike",
            (InsightType::ApiCallRateInsight, true) => "call-rate drop",
            (InsightType::ApiErrorRateInsight, _) => "error-rate spike",
            (InsightType::PrincipalApiCallRateInsight, _) => "principal call-rate spike",
            (InsightType::PrincipalFirstSeenInsight, _) => "principal first seen",
        }
    }
}

/// Pairs records on `sharedEventID`, in order of their start.
pub fn pair_insights(records: &[InsightRecord]) -> Vec<Insight<'_>> {
    let mut by_id: BTreeMap<&str, (Option<&InsightRecord>, Option<&InsightRecord>)> =
        BTreeMap::new();
    for record in records {
        let slot = by_id.entry(record.shared_event_id.as_str()).or_default();
        match record.insight_details.state {
            InsightState::Start => slot.0 = Some(record),
            InsightState::End => slot.1 = Some(record),
        }
    }
    let mut insights: Vec<Insight> = by_id
        .into_iter()
        .filter_map(|(id, (start_record, end_record))| {
            let any = start_record.or(end_record)?;
            let end_time = end_record.and_then(|r| parse_minute(&r.event_time));
            let start = match start_record {
                Some(r) => parse_minute(&r.event_time)?,
                None => {
                    end_time?
                        - end_record?
                            .insight_details
                            .insight_context
                            .statistics
                            .insight_duration
                }
            };
            // A drop's Start counts no event in its first minute; a spike's at least one.
            let drop = any.insight_details.insight_type == InsightType::ApiCallRateInsight
                && match start_record {
                    Some(r) => r.insight_details.insight_context.statistics.insight.average == 0.0,
                    None => {
                        any.insight_details
                            .insight_context
                            .statistics
                            .insight
                            .average
                            == 0.0
                    }
                };
            Some(Insight {
                shared_event_id: id.to_owned(),
                key: any.series(),
                start_record,
                end_record,
                start,
                end: end_time,
                drop,
            })
        })
        .collect();
    insights.sort_by(|a, b| {
        a.start
            .cmp(&b.start)
            .then_with(|| a.key.cmp(&b.key))
            .then_with(|| a.shared_event_id.cmp(&b.shared_event_id))
    });
    insights
}

/// An episode is drawn up to this long (30 days); a longer one is cut in the charts.
const MAX_EPISODE_DRAWN: Minute = 30 * MINUTES_PER_DAY;

/// Everything drawn for one insight.
pub struct Drawn {
    /// `[baseline window start, view end]`, per minute, as the detector saw it.
    pub week: Vec<MinuteView>,
    /// The minutes around the episode (a slice of the same views).
    pub zoom: std::ops::Range<usize>,
    /// The episode's end as drawn (the End's minute, else the end of the data).
    pub episode_end: Minute,
    /// Whether the series alone, replayed minute by minute, opens an insight at the same start
    /// (false: the views may not be what the detector saw; the report says so).
    pub reproduced: bool,
    /// Drops: the job's usual spacing between runs before the silence, and the runs it missed.
    pub rhythm: Option<Rhythm>,
    /// The same minutes one day earlier (the usual rhythm), aligned with `zoom`.
    pub day_before: Vec<u64>,
}

pub struct Rhythm {
    pub spacing: i64,
    pub last_run: Minute,
    pub missed: Vec<Minute>,
}

/// What the report draws for `insight`: the baseline window (from 00:00 UTC seven days before
/// the start's day) through the episode and a little after it.
pub fn draw(
    insight: &Insight,
    activity: &Activity,
    config: &DetectorConfig,
    empty: &BTreeMap<Minute, Cell>,
) -> Drawn {
    let data_end = activity.last.unwrap_or(insight.start);
    let episode_end = insight
        .end
        .unwrap_or(data_end + 1)
        .clamp(insight.start + 1, insight.start + MAX_EPISODE_DRAWN);
    let baseline_start = day_start(insight.start) - 7 * MINUTES_PER_DAY;
    let history_start = activity.first.unwrap_or(baseline_start);
    // Records drawn from elsewhere may lie outside the logs given: nothing of theirs to draw
    // (and no replay of the years between).
    let outside = insight.start > data_end || episode_end < history_start;
    let cells = match activity.series.get(&insight.key) {
        Some(cells) if !outside => cells,
        _ => empty,
    };
    let length = episode_end - insight.start;
    let after = if insight.drop { 60 } else { 30.max(length / 4) };
    let view_end = (episode_end + after).min(data_end.max(episode_end));
    let from = baseline_start.max(history_start.min(insight.start));
    // No event of the series in the logs given (records drawn from elsewhere): nothing to draw.
    let explained = if cells.is_empty() {
        Default::default()
    } else {
        explain_series(config, &insight.key, history_start, cells, from, view_end)
    };
    let reproduced = explained.records.iter().any(|r| {
        r.insight_details.state == InsightState::Start
            && parse_minute(&r.event_time) == Some(insight.start)
    });
    let rhythm = insight
        .drop
        .then(|| rhythm(cells, insight.start, episode_end))
        .flatten();
    let before = match (&rhythm, insight.drop) {
        (Some(r), true) => (insight.start - r.last_run).max(0) + 4 * r.spacing.max(15),
        _ => 60.max(length / 2),
    };
    let zoom_from = (insight.start - before).max(from);
    let index = |m: Minute| (m - from).clamp(0, explained.minutes.len() as i64) as usize;
    let zoom = index(zoom_from)..index(view_end + 1);
    let day_before = (zoom_from..=view_end)
        .take(zoom.len())
        .map(|m| cells.get(&(m - MINUTES_PER_DAY)).map_or(0, |c| c.count))
        .collect();
    Drawn {
        week: explained.minutes,
        zoom,
        episode_end,
        reproduced,
        rhythm,
        day_before,
    }
}

/// A job's rhythm before its silence: the median spacing of its active minutes over the two
/// days before `start`, and the runs that spacing predicts in `[start, end)` after its last run.
fn rhythm(cells: &BTreeMap<Minute, Cell>, start: Minute, end: Minute) -> Option<Rhythm> {
    let active: Vec<Minute> = cells
        .range(start - 2 * MINUTES_PER_DAY..start)
        .filter(|(_, c)| c.count > 0)
        .map(|(m, _)| *m)
        .collect();
    let last_run = *active.last()?;
    let mut gaps: Vec<i64> = active.windows(2).map(|w| w[1] - w[0]).collect();
    if gaps.is_empty() {
        return None;
    }
    gaps.sort_unstable();
    let spacing = gaps[gaps.len() / 2].max(1);
    let missed = (1..)
        .map(|k| last_run + k * spacing)
        .skip_while(|m| *m < start)
        .take_while(|m| *m < end)
        .take(500)
        .collect();
    Some(Rhythm {
        spacing,
        last_run,
        missed,
    })
}

/// How unlikely the start was under the baseline: the smallest tail probability of the first
/// five minutes' counts, alone and as five-minute windows (the spike rule's two tests).
pub fn start_tail(drawn: &Drawn, start: Minute) -> Option<f64> {
    let views = &drawn.week;
    let at = views.iter().position(|v| v.minute == start)?;
    let mut best = f64::INFINITY;
    for i in at..(at + 5).min(views.len()) {
        let v = &views[i];
        best = best.min(upper_tail(v.count, v.expected.mean, v.expected.variance));
        let window = &views[i.saturating_sub(4)..=i];
        let x5: u64 = window.iter().map(|w| w.count).sum();
        best = best.min(upper_tail(
            x5,
            5.0 * v.expected.mean,
            5.0 * v.expected.variance,
        ));
    }
    best.is_finite().then_some(best)
}

/// A rate per minute, as people read it: 26, 2.5, 0.31, 0.0083, 0.0001.
pub fn rate(value: f64) -> String {
    if value >= 10.0 {
        format!("{value:.0}")
    } else if value >= 1.0 {
        format!("{value:.1}")
    } else if value <= 0.0 {
        "0".into()
    } else {
        // Two significant digits; one below 0.001 (the floor of one event a week reads 0.0001).
        let significant = if value < 0.001 { 0 } else { 1 };
        let digits = (-value.log10()).ceil() as usize + significant;
        let text = format!("{value:.digits$}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// A probability: `1e-7`, `3e-12`, `< 1e-300`.
pub fn probability(p: f64) -> String {
    if p <= 0.0 || p < 1e-300 {
        "p < 1e-300".into()
    } else if p >= 0.01 {
        format!("p ≈ {p:.2}")
    } else {
        let exponent = p.log10().floor();
        let mantissa = (p / 10f64.powf(exponent)).round();
        if mantissa >= 10.0 {
            format!("p ≈ 1e{}", exponent as i64 + 1)
        } else if mantissa <= 1.0 {
            format!("p ≈ 1e{}", exponent as i64)
        } else {
            format!("p ≈ {mantissa:.0}e{}", exponent as i64)
        }
    }
}

/// A caller ARN as people say it: `role github-actions`, `user ops`, `root`, or the value.
pub fn principal(arn: &str) -> String {
    let resource = arn.splitn(6, ':').nth(5).unwrap_or(arn);
    if let Some(rest) = resource.strip_prefix("assumed-role/") {
        let role = rest.split('/').next().unwrap_or(rest);
        return format!("role {role}");
    }
    if let Some(rest) = resource.strip_prefix("role/") {
        return format!("role {}", rest.rsplit('/').next().unwrap_or(rest));
    }
    if let Some(rest) = resource.strip_prefix("user/") {
        return format!("user {}", rest.rsplit('/').next().unwrap_or(rest));
    }
    if resource == "root" {
        return "root".into();
    }
    arn.to_owned()
}

fn minutes(n: i64) -> String {
    if n >= 2 * 60 * 24 {
        format!("{:.1} days", n as f64 / 1440.0)
    } else if n >= 120 {
        format!("{:.1} h", n as f64 / 60.0)
    } else {
        format!("{n} min")
    }
}

/// The sentence that explains the insight (plain text: the caller escapes it).
pub fn sentence(insight: &Insight, drawn: &Drawn) -> String {
    let name = &insight.key.event_name;
    let usual = drawn
        .week
        .iter()
        .find(|v| v.minute == insight.start)
        .map(|v| v.expected.mean);
    let open = insight.end.is_none();
    let length = drawn.episode_end - insight.start;
    if insight.drop {
        let mut text = format!(
            "{name} stopped: no call for {}{}",
            minutes(length),
            if open {
                " (still silent at the end of the data)"
            } else {
                ""
            }
        );
        if let Some(r) = &drawn.rhythm {
            text.push_str(&format!("; it usually runs every {}", minutes(r.spacing)));
            if let Some(v) = drawn.week.iter().find(|v| v.minute == insight.start) {
                text.push_str(&format!(
                    " (longest usual gap {}, so a drop needs {} of silence)",
                    minutes(v.longest_gap as i64),
                    minutes(v.drop_silence)
                ));
            }
            let missed = r.missed.len();
            text.push_str(&format!(
                "; {missed} run{} missed",
                if missed == 1 { "" } else { "s" }
            ));
        }
        return text;
    }
    let Some(record) = insight.summary_record() else {
        return String::new();
    };
    let stats = &record.insight_details.insight_context.statistics;
    let verb = match &insight.key.error_code {
        Some(code) => format!("failed with {code}"),
        None => "ran".into(),
    };
    let mut text = format!(
        "{name} {verb} at {}/min for {}{}",
        rate(stats.insight.average),
        minutes(if insight.end_record.is_some() {
            stats.insight_duration
        } else {
            length
        }),
        if open { " (still open)" } else { "" }
    );
    if let Some(mean) = usual {
        text.push_str(&format!("; this hour usually sees {}/min", rate(mean)));
        if let Some(p) = start_tail(drawn, insight.start) {
            text.push_str(&format!(" ({})", probability(p)));
        }
    }
    let total = stats.insight.average;
    let attribution = |name: &str| {
        record
            .insight_details
            .insight_context
            .attributions
            .iter()
            .find(|a| a.attribute == name)
    };
    if total > 0.0 {
        if let Some(top) = attribution("userIdentityArn").and_then(|a| a.insight.first()) {
            text.push_str(&format!(
                "; {:.0}% from {}",
                100.0 * top.average / total,
                principal(&top.value)
            ));
        }
        if let Some(errors) = attribution("errorCode") {
            let failed: Vec<_> = errors
                .insight
                .iter()
                .filter(|v| v.value != "null")
                .collect();
            let share: f64 = failed.iter().map(|v| v.average).sum::<f64>() / total;
            if let Some(top) = failed.first()
                && share >= 0.01
            {
                if failed.len() == 1 {
                    text.push_str(&format!(
                        "; {:.0}% failed with {}",
                        100.0 * share,
                        top.value
                    ));
                } else {
                    text.push_str(&format!(
                        "; {:.0}% failed, most with {}",
                        100.0 * share,
                        top.value
                    ));
                }
            }
        }
    }
    text
}
