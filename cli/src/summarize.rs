//! `trailsight summarize`: what is in these logs. The ingest path on its own: read and fold, no
//! detection.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use trailsight::fold::{DeltaBuilder, FoldStats};
use trailsight::minute::format_minute;

use crate::local::{FileResult, LocalFile};
use crate::output::table;

#[derive(Debug, Serialize)]
pub struct SeriesTotal {
    pub account: String,
    pub region: String,
    #[serde(rename = "eventSource")]
    pub event_source: String,
    #[serde(rename = "eventName")]
    pub event_name: String,
    #[serde(rename = "insightType")]
    pub insight_type: String,
    #[serde(rename = "errorCode", skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    pub events: u64,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub files_read: usize,
    pub files_not_logs: usize,
    pub files_damaged: Vec<String>,
    pub fold: FoldStats,
    pub first_event: Option<String>,
    pub last_event: Option<String>,
    pub accounts: BTreeSet<String>,
    pub regions: BTreeSet<String>,
    /// Every series and its events, sorted by key.
    pub series: Vec<SeriesTotal>,
    /// Error codes and their events over all APIs.
    pub error_codes: Vec<(String, u64)>,
}

pub fn summarize(files: &[LocalFile]) -> Summary {
    let mut merged = DeltaBuilder::default();
    let mut fold = FoldStats::default();
    let (mut read, mut not_logs, mut damaged) = (0, 0, Vec::new());
    for file in files {
        match &file.result {
            FileResult::Folded(folded) => {
                read += 1;
                fold.merge(&folded.fold);
                merged.merge(&folded.delta);
            }
            FileResult::NotALog(_) => not_logs += 1,
            FileResult::Damaged(error) => damaged.push(format!("{}: {error}", file.path.display())),
        }
    }
    let delta = merged.finish();
    let mut accounts = BTreeSet::new();
    let mut regions = BTreeSet::new();
    let mut codes: BTreeMap<String, u64> = BTreeMap::new();
    let mut series = Vec::new();
    for (key, events) in delta.totals() {
        accounts.insert(key.account.clone());
        regions.insert(key.region.clone());
        if let Some(code) = &key.error_code {
            *codes.entry(code.clone()).or_default() += events;
        }
        series.push(SeriesTotal {
            account: key.account.clone(),
            region: key.region.clone(),
            event_source: key.event_source.clone(),
            event_name: key.event_name.clone(),
            insight_type: key.insight_type().to_string(),
            error_code: key.error_code.clone(),
            events,
        });
    }
    let mut error_codes: Vec<(String, u64)> = codes.into_iter().collect();
    error_codes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Summary {
        files_read: read,
        files_not_logs: not_logs,
        files_damaged: damaged,
        first_event: fold.first_minute.map(format_minute),
        last_event: fold.last_minute.map(format_minute),
        fold,
        accounts,
        regions,
        series,
        error_codes,
    }
}

impl Summary {
    pub fn to_table(&self, top: usize) -> String {
        let f = &self.fold;
        let mut out = format!(
            "files: {} read, {} not log files, {} damaged\nrecords: {} ({} counted, {} duplicates, {} successful reads, {} data events, {} Insight records, {} malformed, {} unusable)\nspan: {} .. {}\naccounts: {}\nregions: {}\n\n",
            self.files_read,
            self.files_not_logs,
            self.files_damaged.len(),
            f.records,
            f.counted,
            f.duplicates,
            f.excluded_read,
            f.excluded_data,
            f.excluded_insight,
            f.malformed,
            f.unusable,
            self.first_event.as_deref().unwrap_or("-"),
            self.last_event.as_deref().unwrap_or("-"),
            crate::terminal::escape(&self.accounts.iter().cloned().collect::<Vec<_>>().join(", ")),
            crate::terminal::escape(&self.regions.iter().cloned().collect::<Vec<_>>().join(", ")),
        );
        if !f.unusable_reasons.is_empty() {
            let reasons: Vec<String> = f
                .unusable_reasons
                .iter()
                .map(|(reason, n)| format!("{reason} {n}"))
                .collect();
            out.push_str(&format!("unusable by reason: {}\n\n", reasons.join(", ")));
        }
        let mut calls: BTreeMap<String, u64> = BTreeMap::new();
        let mut errors: BTreeMap<String, u64> = BTreeMap::new();
        for s in &self.series {
            let api = format!("{}:{}", s.event_source, s.event_name);
            let target = if s.error_code.is_some() {
                &mut errors
            } else {
                &mut calls
            };
            *target.entry(api).or_default() += s.events;
        }
        for (title, map) in [
            ("Top write APIs by calls", calls),
            ("Top APIs by errors", errors),
        ] {
            let mut list: Vec<(String, u64)> = map.into_iter().collect();
            list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            let rows: Vec<Vec<String>> = list
                .into_iter()
                .take(top)
                .map(|(api, n)| vec![api, n.to_string()])
                .collect();
            out.push_str(&format!("{title}\n"));
            out.push_str(&table(&["api", "events"], &rows));
            out.push('\n');
        }
        let rows: Vec<Vec<String>> = self
            .error_codes
            .iter()
            .take(top)
            .map(|(c, n)| vec![c.clone(), n.to_string()])
            .collect();
        out.push_str("Error codes\n");
        out.push_str(&table(&["errorCode", "events"], &rows));
        for d in &self.files_damaged {
            out.push_str(&format!(
                "damaged: {}\n",
                crate::terminal::escape(&d.to_string())
            ));
        }
        out
    }
}
