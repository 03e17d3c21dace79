//! The fold: records → per-series, per-minute cells (a [`Delta`]).
//!
//! One [`Folder`] folds one log file. Its output, a [`Delta`], is the unit that storage writes
//! exactly once and that the detector merges: counts per (series, UTC minute of `eventTime`), the
//! part of them made by AWS services on the user's behalf, and bounded top values of the caller's
//! ARN, user agent and (call-rate series) error code.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasher;

use serde::{Deserialize, Serialize};

use crate::classify::{Class, ClassifyOptions, Exclusion, classify};
use crate::minute::{Minute, parse_minute};
use crate::record::Record;
use crate::series::{ALL_PRINCIPALS, SERVICE_WIDE, SeriesKey};
use crate::topk::{CELL_VALUES, TopK};

/// The attribution value for "no error" in call-rate series, as the managed service writes it.
pub const NO_ERROR: &str = "null";

pub use crate::logfile::DEFAULT_MAX_SERIES_PER_FILE;

/// The series that a file's events go to once the file has made [`DEFAULT_MAX_SERIES_PER_FILE`]
/// (or the configured cap) distinct series: `*/*/trailsight.overflow:OtherSeries`. Its cells
/// count those events per minute, with their callers, user agents and error codes (the code of
/// each, `null` for none) as attributions; nothing is dropped. A burst of it is itself unusual.
pub fn overflow_series() -> SeriesKey {
    SeriesKey {
        account: "*".into(),
        region: "*".into(),
        event_source: "trailsight.overflow".into(),
        event_name: "OtherSeries".into(),
        error_code: None,
        principal: None,
    }
}

/// One series' activity in one minute.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Events.
    #[serde(rename = "c")]
    pub count: u64,
    /// Of which made by AWS services on the user's behalf.
    #[serde(rename = "v", default, skip_serializing_if = "is_zero")]
    pub service: u64,
    #[serde(rename = "u", default, skip_serializing_if = "TopK::is_empty")]
    pub arns: TopK,
    #[serde(rename = "g", default, skip_serializing_if = "TopK::is_empty")]
    pub agents: TopK,
    #[serde(rename = "x", default, skip_serializing_if = "TopK::is_empty")]
    pub errors: TopK,
    /// The values (caller ARN, user agent, error code) of the events made by AWS services, also
    /// counted in the lists above: `--ignore-aws-service-callers` leaves them out of attributions
    /// as it leaves `service` out of the count ([`Cell::without_services`]).
    #[serde(rename = "w", default, skip_serializing_if = "Option::is_none")]
    pub service_values: Option<Box<[TopK; 3]>>,
    /// Of which made from an AWS Management Console session ([`Record::is_console_call`]):
    /// counted in principal series only (a person clicking, docs/DETECTION.md).
    #[serde(rename = "o", default, skip_serializing_if = "is_zero")]
    pub console: u64,
    /// The roles asked for (`requestParameters.roleArn`), in a principal's `AssumeRole` cells
    /// only: what it assumed or tried to.
    #[serde(rename = "r", default, skip_serializing_if = "TopK::is_empty")]
    pub roles: TopK,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl Cell {
    /// The sum of several cells of the same series and minute, independent of their order (files
    /// reach the detector in storage order, which differs between stores).
    pub fn merge_all(cells: &[&Cell]) -> Cell {
        let services: Vec<&[TopK; 3]> = cells
            .iter()
            .filter_map(|c| c.service_values.as_deref())
            .collect();
        Cell {
            count: cells.iter().map(|c| c.count).sum(),
            service: cells.iter().map(|c| c.service).sum(),
            arns: TopK::merge_exact(cells.iter().map(|c| &c.arns)),
            agents: TopK::merge_exact(cells.iter().map(|c| &c.agents)),
            errors: TopK::merge_exact(cells.iter().map(|c| &c.errors)),
            service_values: (!services.is_empty()).then(|| {
                Box::new([0, 1, 2].map(|i| TopK::merge_exact(services.iter().map(|s| &s[i]))))
            }),
            console: cells.iter().map(|c| c.console).sum(),
            roles: TopK::merge_exact(cells.iter().map(|c| &c.roles)),
        }
    }

    pub fn merge(&mut self, other: &Cell) {
        self.count += other.count;
        self.service += other.service;
        self.console += other.console;
        self.arns.merge(&other.arns);
        self.agents.merge(&other.agents);
        self.errors.merge(&other.errors);
        self.roles.merge(&other.roles);
        if let Some(theirs) = &other.service_values {
            let ours = self.service_values.get_or_insert_with(Box::default);
            for (ours, theirs) in ours.iter_mut().zip(theirs.iter()) {
                ours.merge(theirs);
            }
        }
    }

    /// The cell without the events AWS services made: their count and their values.
    pub fn without_services(&self) -> Cell {
        let mut out = Cell {
            count: self.count.saturating_sub(self.service),
            service: 0,
            arns: self.arns.clone(),
            agents: self.agents.clone(),
            errors: self.errors.clone(),
            service_values: None,
            console: self.console,
            roles: self.roles.clone(),
        };
        if let Some(services) = &self.service_values {
            for (top, service) in [&mut out.arns, &mut out.agents, &mut out.errors]
                .into_iter()
                .zip(services.iter())
            {
                for (value, count) in service.sorted() {
                    top.subtract(value, count);
                }
            }
        }
        out
    }

    /// Keeps the `n` largest values of each list.
    pub fn truncate_values(&mut self, n: usize) {
        self.arns.truncate(n);
        self.agents.truncate(n);
        self.errors.truncate(n);
        self.roles.truncate(n);
        if let Some(services) = &mut self.service_values {
            services.iter_mut().for_each(|top| top.truncate(n));
        }
    }

    /// Counts one event.
    fn add_event(
        &mut self,
        service: bool,
        arn: Option<&str>,
        agent: Option<&str>,
        error: Option<&str>,
    ) {
        self.count += 1;
        let values = [arn, agent, error];
        for (top, value) in [&mut self.arns, &mut self.agents, &mut self.errors]
            .into_iter()
            .zip(values)
        {
            if let Some(value) = value {
                top.add(value, 1);
            }
        }
        if service {
            self.service += 1;
            let services = self.service_values.get_or_insert_with(Box::default);
            for (top, value) in services.iter_mut().zip(values) {
                if let Some(value) = value {
                    top.add(value, 1);
                }
            }
        }
    }
}

/// The fold of one log file (or of a part of one): the unit storage writes exactly once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    /// Series in first-seen order; cells refer to them by index.
    #[serde(rename = "k")]
    pub series: Vec<SeriesKey>,
    /// (series index, minute) → cell.
    #[serde(rename = "m", with = "cells_as_list")]
    pub cells: BTreeMap<(u32, Minute), Cell>,
}

mod cells_as_list {
    use super::*;
    use serde::{Deserializer, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Entry(u32, Minute, Cell);

    pub fn serialize<S: Serializer>(
        cells: &BTreeMap<(u32, Minute), Cell>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(cells.iter().map(|((i, m), c)| Entry(*i, *m, c.clone())))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<(u32, Minute), Cell>, D::Error> {
        let entries = Vec::<Entry>::deserialize(d)?;
        Ok(entries
            .into_iter()
            .map(|Entry(i, m, c)| ((i, m), c))
            .collect())
    }
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// Total events per series.
    pub fn totals(&self) -> BTreeMap<&SeriesKey, u64> {
        let mut totals = BTreeMap::new();
        for ((i, _), cell) in &self.cells {
            if let Some(key) = self.series.get(*i as usize) {
                *totals.entry(key).or_insert(0) += cell.count;
            }
        }
        totals
    }

    /// Iterates (series, minute, cell).
    /// The earliest minute with a cell.
    pub fn first_minute(&self) -> Option<Minute> {
        self.cells.keys().map(|(_, minute)| *minute).min()
    }

    /// Keeps only the cells whose minute `keep` admits; returns how many were dropped.
    pub fn retain_minutes(&mut self, keep: impl Fn(Minute) -> bool) -> usize {
        let before = self.cells.len();
        self.cells.retain(|(_, minute), _| keep(*minute));
        before - self.cells.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&SeriesKey, Minute, &Cell)> {
        self.cells
            .iter()
            .filter_map(|((i, m), c)| Some((self.series.get(*i as usize)?, *m, c)))
    }

    /// Splits into parts by UTC hour of the minutes (storage partitions deltas by hour).
    pub fn split_by_hour(&self) -> BTreeMap<Minute, Delta> {
        let mut parts: BTreeMap<Minute, DeltaBuilder> = BTreeMap::new();
        for (key, minute, cell) in self.iter() {
            parts
                .entry(minute.div_euclid(60) * 60)
                .or_default()
                .add(key, minute, cell);
        }
        parts
            .into_iter()
            .map(|(hour, b)| (hour, b.finish()))
            .collect()
    }

    /// Splits into parts of at most `max_cells` cells each, keeping each series' cells together
    /// where possible. Parts are disjoint, so each can be written once independently.
    pub fn split_by_cells(&self, max_cells: usize) -> Vec<Delta> {
        let max_cells = max_cells.max(1);
        let mut parts = Vec::new();
        let mut current = DeltaBuilder::default();
        let mut current_cells = 0;
        for (key, minute, cell) in self.iter() {
            if current_cells == max_cells {
                parts.push(std::mem::take(&mut current).finish());
                current_cells = 0;
            }
            current.add(key, minute, cell);
            current_cells += 1;
        }
        if current_cells > 0 {
            parts.push(current.finish());
        }
        parts
    }
}

/// Builds a [`Delta`] from (series, minute, cell) triples.
#[derive(Debug, Default)]
pub struct DeltaBuilder {
    index: HashMap<SeriesKey, u32>,
    delta: Delta,
}

impl DeltaBuilder {
    pub fn add(&mut self, key: &SeriesKey, minute: Minute, cell: &Cell) {
        let next = self.delta.series.len() as u32;
        let i = *self.index.entry(key.clone()).or_insert_with(|| {
            self.delta.series.push(key.clone());
            next
        });
        self.delta.cells.entry((i, minute)).or_default().merge(cell);
    }

    pub fn merge(&mut self, delta: &Delta) {
        for (key, minute, cell) in delta.iter() {
            self.add(key, minute, cell);
        }
    }

    pub fn finish(self) -> Delta {
        self.delta
    }
}

/// What a fold saw, beyond its cells.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoldStats {
    pub records: u64,
    /// Records whose `eventID` was already seen in the same file.
    pub duplicates: u64,
    /// Records that are not JSON objects the parser accepts.
    pub malformed: u64,
    pub excluded_insight: u64,
    pub excluded_data: u64,
    pub excluded_read: u64,
    pub unusable: u64,
    /// Why records were unusable: `missing_fields` (no `eventTime`, `eventSource`, `eventName` or
    /// region), `event_time` (unreadable), or an identifier refused by [`crate::ident::check`]
    /// (`account`, `region`, `event_source`, `event_name`, `error_code`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unusable_reasons: BTreeMap<String, u64>,
    /// Records counted in at least one series.
    pub counted: u64,
    /// Of which counted in the overflow series (their file had too many distinct series).
    #[serde(default)]
    pub overflow: u64,
    /// Records left out of some principal series (their file had too many distinct ones).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub principal_overflow: u64,
    pub first_minute: Option<Minute>,
    pub last_minute: Option<Minute>,
}

impl FoldStats {
    /// Counts one unusable record with its reason.
    pub fn add_unusable(&mut self, reason: &str) {
        self.unusable += 1;
        match self.unusable_reasons.get_mut(reason) {
            Some(n) => *n += 1,
            None => {
                self.unusable_reasons.insert(reason.to_owned(), 1);
            }
        }
    }

    pub fn merge(&mut self, other: &FoldStats) {
        self.records += other.records;
        self.duplicates += other.duplicates;
        self.malformed += other.malformed;
        self.excluded_insight += other.excluded_insight;
        self.excluded_data += other.excluded_data;
        self.excluded_read += other.excluded_read;
        self.unusable += other.unusable;
        for (reason, n) in &other.unusable_reasons {
            *self.unusable_reasons.entry(reason.clone()).or_insert(0) += n;
        }
        self.counted += other.counted;
        self.overflow += other.overflow;
        self.principal_overflow += other.principal_overflow;
        self.first_minute = min_opt(self.first_minute, other.first_minute);
        self.last_minute = self.last_minute.max(other.last_minute);
    }
}

fn min_opt(a: Option<Minute>, b: Option<Minute>) -> Option<Minute> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A fixed-key hasher for the within-file duplicate check (only equality within one run matters).
#[derive(Default, Clone, Copy)]
struct FixedState;
impl BuildHasher for FixedState {
    type Hasher = std::collections::hash_map::DefaultHasher;
    fn build_hasher(&self) -> Self::Hasher {
        std::collections::hash_map::DefaultHasher::new()
    }
}

/// Folds the records of one file.
pub struct Folder {
    options: ClassifyOptions,
    /// Distinct series this file may create (the overflow series aside).
    max_series: usize,
    /// The overflow series' index, once used.
    overflow: Option<u32>,
    /// Series index by "account\0region\0source\0name\0error", looked up without allocating.
    lookup: HashMap<String, u32>,
    /// Principal series index by "account\0region\0source\0name\0principal".
    principal_lookup: HashMap<String, u32>,
    scratch: String,
    seen_ids: HashSet<u64, FixedState>,
    delta: Delta,
    stats: FoldStats,
}

impl Default for Folder {
    fn default() -> Self {
        Self::new(ClassifyOptions::default())
    }
}

impl Folder {
    pub fn new(options: ClassifyOptions) -> Self {
        Self {
            options,
            max_series: DEFAULT_MAX_SERIES_PER_FILE,
            overflow: None,
            lookup: HashMap::new(),
            principal_lookup: HashMap::new(),
            scratch: String::new(),
            seen_ids: HashSet::default(),
            delta: Delta::default(),
            stats: FoldStats::default(),
        }
    }

    /// Caps the distinct series this file may create; events of further series are counted in
    /// [`overflow_series`].
    pub fn with_max_series(mut self, max_series: usize) -> Self {
        self.max_series = max_series;
        self
    }

    /// Parses and folds one record's JSON text.
    pub fn add_json(&mut self, json: &[u8]) {
        match Record::parse(json) {
            Ok(record) => self.add(&record),
            Err(_) => {
                self.stats.records += 1;
                self.stats.malformed += 1;
            }
        }
    }

    /// Folds one element of a log object.
    pub fn add_item(&mut self, item: crate::logfile::Item<'_>) {
        match item {
            crate::logfile::Item::Record(record) => self.add(&record),
            crate::logfile::Item::Malformed => {
                self.stats.records += 1;
                self.stats.malformed += 1;
            }
        }
    }

    /// Folds one parsed record.
    pub fn add(&mut self, record: &Record<'_>) {
        self.stats.records += 1;
        if let Some(id) = record.event_id.as_deref()
            && !self.seen_ids.insert(FixedState.hash_one(id))
        {
            self.stats.duplicates += 1;
            return;
        }
        let (call, error_code) = match classify(record, &self.options) {
            Class::Counted { call, error_code } => (call, error_code),
            Class::Excluded(why) => {
                match why {
                    Exclusion::Insight => self.stats.excluded_insight += 1,
                    Exclusion::DataEvent => self.stats.excluded_data += 1,
                    Exclusion::ReadOnly => self.stats.excluded_read += 1,
                    Exclusion::Unusable => self.stats.add_unusable("missing_fields"),
                }
                // A successful read counts in no account series, but in its caller's principal
                // series when principal insights are on.
                if !(why == Exclusion::ReadOnly && self.options.principal_insights) {
                    return;
                }
                (false, None)
            }
        };
        let Some(minute) = record.time().and_then(parse_minute) else {
            self.stats.add_unusable("event_time");
            return;
        };
        // Log content is untrusted: only identifiers AWS could have written become series (and
        // so paths, keys, metric dimensions and table rows).
        if let Err(why) = crate::ident::check(
            record.account(),
            record.aws_region.as_deref().unwrap_or_default(),
            record.event_source.as_deref().unwrap_or_default(),
            record.event_name.as_deref().unwrap_or_default(),
            error_code,
        ) {
            self.stats.add_unusable(why.as_str());
            return;
        }
        self.stats.counted += 1;
        self.stats.first_minute = min_opt(self.stats.first_minute, Some(minute));
        self.stats.last_minute = self.stats.last_minute.max(Some(minute));
        let service = record.is_aws_service_call();
        let arn = record.user_arn();
        let agent = record.user_agent.as_deref();
        // A record goes to the overflow series at most once, with its error code.
        let mut overflowed = false;
        if call {
            let (i, over) = match self.series_index(record, None) {
                Some(i) => (i, false),
                None => (self.overflow_index(), true),
            };
            overflowed = over;
            let cell = self.delta.cells.entry((i, minute)).or_default();
            cell.add_event(service, arn, agent, Some(error_code.unwrap_or(NO_ERROR)));
        }
        if let Some(code) = error_code {
            match self.series_index(record, Some(code)) {
                Some(i) => self
                    .delta
                    .cells
                    .entry((i, minute))
                    .or_default()
                    .add_event(service, arn, agent, None),
                None if !overflowed => {
                    overflowed = true;
                    let i = self.overflow_index();
                    let cell = self.delta.cells.entry((i, minute)).or_default();
                    cell.add_event(service, arn, agent, Some(code));
                }
                None => {}
            }
        }
        if overflowed {
            self.stats.overflow += 1;
        }
        if self.options.principal_insights && !service {
            self.add_principal(record, minute, arn, agent, error_code);
        }
    }

    /// Counts a management event in its caller's principal series: the principal and the API,
    /// the principal and the service (its cells name the API where the others name the error
    /// code), and the account's rate of the API over all principals (a count, no values). A
    /// caller with no usable ARN (AWS services, anonymous calls) has no principal series. The
    /// principal series have their own cap per file, so they never push an account series into
    /// the overflow series; past it, their events are not counted (`principal_overflow`).
    fn add_principal(
        &mut self,
        record: &Record<'_>,
        minute: Minute,
        arn: Option<&str>,
        agent: Option<&str>,
        error_code: Option<&str>,
    ) {
        let Some(principal) = arn.and_then(crate::principal::normalise) else {
            return;
        };
        let name = record.event_name.as_deref().unwrap_or_default();
        let console = u64::from(record.is_console_call());
        // The role an `AssumeRole` asks for, when it reads as a role's ARN.
        let asked_role = (name == "AssumeRole"
            && record.event_source.as_deref() == Some("sts.amazonaws.com"))
        .then_some(record.role_arn.as_deref())
        .flatten()
        .and_then(crate::principal::normalise)
        .filter(|role| role.contains(":role/"));
        let mut over = false;
        let series = [
            (name, principal.as_str()),
            (SERVICE_WIDE, principal.as_str()),
            (name, ALL_PRINCIPALS),
        ];
        for (i, (event_name, who)) in series.into_iter().enumerate() {
            let Some(index) = self.principal_series_index(record, event_name, who) else {
                over = true;
                continue;
            };
            let cell = self.delta.cells.entry((index, minute)).or_default();
            match i {
                0 => {
                    cell.add_event(false, arn, agent, Some(error_code.unwrap_or(NO_ERROR)));
                    if let Some(role) = &asked_role {
                        cell.roles.add(role, 1);
                    }
                }
                1 => cell.add_event(false, arn, agent, Some(name)),
                _ => cell.add_event(false, None, None, None),
            }
            if i < 2 {
                cell.console += console;
            }
        }
        if over {
            self.stats.principal_overflow += 1;
        }
    }

    /// A principal series' index; `None` when it would be a new one beyond the cap.
    fn principal_series_index(
        &mut self,
        record: &Record<'_>,
        event_name: &str,
        principal: &str,
    ) -> Option<u32> {
        let account = record.account().unwrap_or_default();
        let region = record.aws_region.as_deref().unwrap_or_default();
        let source = record.event_source.as_deref().unwrap_or_default();
        self.scratch.clear();
        for part in [account, region, source, event_name, principal] {
            self.scratch.push_str(part);
            self.scratch.push('\0');
        }
        if let Some(&i) = self.principal_lookup.get(self.scratch.as_str()) {
            return Some(i);
        }
        if self.principal_lookup.len() >= self.max_series {
            return None;
        }
        let i = self.delta.series.len() as u32;
        self.delta.series.push(SeriesKey {
            account: account.to_owned(),
            region: region.to_owned(),
            event_source: source.to_owned(),
            event_name: event_name.to_owned(),
            error_code: None,
            principal: Some(principal.to_owned()),
        });
        self.principal_lookup.insert(self.scratch.clone(), i);
        Some(i)
    }

    fn overflow_index(&mut self) -> u32 {
        *self.overflow.get_or_insert_with(|| {
            self.delta.series.push(overflow_series());
            (self.delta.series.len() - 1) as u32
        })
    }

    /// The record's series index; `None` when it would be a new series beyond the cap.
    fn series_index(&mut self, record: &Record<'_>, error_code: Option<&str>) -> Option<u32> {
        let account = record.account().unwrap_or_default();
        let region = record.aws_region.as_deref().unwrap_or_default();
        let source = record.event_source.as_deref().unwrap_or_default();
        let name = record.event_name.as_deref().unwrap_or_default();
        self.scratch.clear();
        for part in [account, region, source, name, error_code.unwrap_or("\u{1}")] {
            self.scratch.push_str(part);
            self.scratch.push('\0');
        }
        if let Some(&i) = self.lookup.get(self.scratch.as_str()) {
            return Some(i);
        }
        if self.lookup.len() >= self.max_series {
            return None;
        }
        let i = self.delta.series.len() as u32;
        self.delta.series.push(SeriesKey {
            account: account.to_owned(),
            region: region.to_owned(),
            event_source: source.to_owned(),
            event_name: name.to_owned(),
            error_code: error_code.map(str::to_owned),
            principal: None,
        });
        self.lookup.insert(self.scratch.clone(), i);
        Some(i)
    }

    pub fn stats(&self) -> &FoldStats {
        &self.stats
    }

    /// The fold, with each cell's attributions cut to the minute's largest values.
    pub fn finish(mut self) -> (Delta, FoldStats) {
        for cell in self.delta.cells.values_mut() {
            cell.truncate_values(CELL_VALUES);
        }
        (self.delta, self.stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold(lines: &[&str]) -> (Delta, FoldStats) {
        let mut folder = Folder::new(ClassifyOptions::default());
        for line in lines {
            folder.add_json(line.as_bytes());
        }
        folder.finish()
    }

    #[test]
    fn service_calls_values_can_be_left_out_exactly() {
        let person = r#"{"eventID":"1","eventTime":"2026-03-02T14:07:12Z","eventSource":"sts.amazonaws.com","eventName":"AssumeRole","awsRegion":"us-east-1","recipientAccountId":"111122223333","readOnly":false,"userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/alice"},"userAgent":"aws-cli/2.15","errorCode":"AccessDenied"}"#;
        let service = r#"{"eventID":"2","eventTime":"2026-03-02T14:07:30Z","eventSource":"sts.amazonaws.com","eventName":"AssumeRole","awsRegion":"us-east-1","recipientAccountId":"111122223333","readOnly":false,"userIdentity":{"type":"AWSService","invokedBy":"ec2.amazonaws.com"},"userAgent":"ec2.amazonaws.com"}"#;
        let (delta, _) = fold(&[person, service]);
        let call_rate = delta
            .iter()
            .find(|(k, _, _)| k.error_code.is_none())
            .map(|(_, _, c)| c.clone())
            .unwrap_or_default();
        assert_eq!((call_rate.count, call_rate.service), (2, 1));
        let json = serde_json::to_string(&call_rate).unwrap_or_default();
        assert_eq!(
            serde_json::from_str::<Cell>(&json).ok().as_ref(),
            Some(&call_rate)
        );
        let people = call_rate.without_services();
        assert_eq!(people.count, 1);
        assert_eq!(people.agents.sorted(), vec![("aws-cli/2.15", 1)]);
        assert_eq!(people.errors.sorted(), vec![("AccessDenied", 1)]);
        assert_eq!(
            people.arns.sorted(),
            vec![("arn:aws:iam::111122223333:user/alice", 1)]
        );
    }

    #[test]
    fn counts_calls_and_errors_per_minute_once_per_event_id() {
        let write = r#"{"eventID":"1","eventTime":"2026-03-02T14:07:12Z","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","awsRegion":"us-east-1","recipientAccountId":"111122223333","readOnly":false,"userIdentity":{"arn":"arn:a"},"userAgent":"cli"}"#;
        let failed = r#"{"eventID":"2","eventTime":"2026-03-02T14:07:59Z","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","awsRegion":"us-east-1","recipientAccountId":"111122223333","readOnly":false,"errorCode":"Client.InstanceLimitExceeded"}"#;
        let next_minute = r#"{"eventID":"3","eventTime":"2026-03-02T14:08:00Z","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","awsRegion":"us-east-1","recipientAccountId":"111122223333","readOnly":false}"#;
        let (delta, stats) = fold(&[write, write, failed, next_minute, "not json"]);
        assert_eq!(stats.records, 5);
        assert_eq!(stats.duplicates, 1);
        assert_eq!(stats.malformed, 1);
        assert_eq!(stats.counted, 3);
        let totals: Vec<(String, u64)> = delta
            .totals()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(
            totals,
            vec![
                (
                    "111122223333/us-east-1/ec2.amazonaws.com:RunInstances".to_string(),
                    3
                ),
                (
                    "111122223333/us-east-1/ec2.amazonaws.com:RunInstances[Client.InstanceLimitExceeded]"
                        .to_string(),
                    1
                ),
            ]
        );
        let first_minute = delta.cells.iter().next().unwrap().1;
        assert_eq!(first_minute.count, 2);
        assert_eq!(
            first_minute.errors.sorted(),
            vec![("Client.InstanceLimitExceeded", 1), (NO_ERROR, 1)]
        );
        assert_eq!(first_minute.arns.sorted(), vec![("arn:a", 1)]);
    }

    #[test]
    fn series_beyond_the_cap_are_counted_in_the_overflow_series() {
        let record = |i: usize, error: &str| {
            format!(
                r#"{{"eventID":"{i}{}","eventTime":"2026-03-02T14:07:12Z","eventSource":"s","eventName":"Api{i}","awsRegion":"us-east-1","recipientAccountId":"111122223333","readOnly":false{error}}}"#,
                error.len()
            )
        };
        let mut folder = Folder::new(ClassifyOptions::default()).with_max_series(3);
        for i in 0..5 {
            folder.add_json(record(i, "").as_bytes());
        }
        // An existing API's error series is new: beyond the cap too, once.
        folder.add_json(record(0, r#","errorCode":"Boom""#).as_bytes());
        let (delta, stats) = folder.finish();
        assert_eq!((stats.counted, stats.overflow), (6, 3));
        let totals = delta.totals();
        assert_eq!(totals.len(), 4, "three series and the overflow series");
        assert_eq!(totals[&overflow_series()], 3);
        assert_eq!(totals.values().sum::<u64>(), 7, "nothing dropped");
        let (_, _, cell) = delta
            .iter()
            .find(|(key, _, _)| **key == overflow_series())
            .unwrap();
        assert_eq!(cell.errors.sorted(), vec![(NO_ERROR, 2), ("Boom", 1)]);
    }

    #[test]
    fn crafted_identifiers_are_unusable_with_their_reason() {
        let record = |id: usize, fields: &str| {
            format!(
                r#"{{"eventID":"{id}","eventTime":"2026-03-02T14:07:12Z","readOnly":false,{fields}}}"#
            )
        };
        let good = r#""eventSource":"ec2.amazonaws.com","eventName":"RunInstances","awsRegion":"us-east-1","recipientAccountId":"111122223333""#;
        let lines = [
            record(1, good),
            record(2, &good.replace("111122223333", "../../../../x")),
            record(3, &good.replace("\"us-east-1\"", "\"../../x\"")),
            record(4, &good.replace("ec2.amazonaws.com", "ec2/../../x")),
            record(
                5,
                &good.replace("RunInstances", "Run\\nInstances\\u001b[31m"),
            ),
            record(6, &format!(r#"{good},"errorCode":"Boom\u0007""#)),
            record(7, r#""eventSource":"s","awsRegion":"us-east-1""#),
            record(
                8,
                &good.replace(r#","recipientAccountId":"111122223333""#, ""),
            ),
        ];
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let (delta, stats) = fold(&refs);
        assert_eq!((stats.records, stats.counted, stats.unusable), (8, 1, 7));
        let reasons: Vec<(&str, u64)> = stats
            .unusable_reasons
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        assert_eq!(
            reasons,
            vec![
                ("account", 2),
                ("error_code", 1),
                ("event_name", 1),
                ("event_source", 1),
                ("missing_fields", 1),
                ("region", 1),
            ]
        );
        assert_eq!(delta.series.len(), 1);
        assert_eq!(delta.series[0].account, "111122223333");
    }

    #[test]
    fn delta_round_trips_and_splits() {
        let a = r#"{"eventID":"1","eventTime":"2026-03-02T14:59:12Z","eventSource":"s","eventName":"CreateX","awsRegion":"us-east-1","recipientAccountId":"111122223333","readOnly":false}"#;
        let b = r#"{"eventID":"2","eventTime":"2026-03-02T15:00:12Z","eventSource":"s","eventName":"CreateX","awsRegion":"us-east-1","recipientAccountId":"111122223333","readOnly":false}"#;
        let (delta, _) = fold(&[a, b]);
        let json = serde_json::to_string(&delta).unwrap();
        assert_eq!(serde_json::from_str::<Delta>(&json).unwrap(), delta);
        assert_eq!(delta.split_by_hour().len(), 2);
        let parts = delta.split_by_cells(1);
        assert_eq!(parts.len(), 2);
        let mut merged = DeltaBuilder::default();
        parts.iter().for_each(|p| merged.merge(p));
        assert_eq!(merged.finish(), delta);
    }

    #[test]
    fn principal_series_count_reads_and_writes_per_principal_when_asked() {
        let event = |name: &str, read: bool, arn: &str, extra: &str| {
            format!(
                r#"{{"eventTime":"2026-03-02T14:07:12Z","eventSource":"secretsmanager.amazonaws.com","eventName":"{name}","awsRegion":"us-east-1","recipientAccountId":"111122223333","readOnly":{read},"eventCategory":"Management","userIdentity":{{"type":"AssumedRole","arn":"{arn}"{extra}}}}}"#
            )
        };
        let session = |s: &str| format!("arn:aws:sts::111122223333:assumed-role/App/{s}");
        let lines = [
            event("GetSecretValue", true, &session("a"), ""),
            event("GetSecretValue", true, &session("b"), ""),
            event("PutSecretValue", false, &session("a"), ""),
            // An AWS service on the user's behalf: no principal series.
            event(
                "GetSecretValue",
                true,
                &session("c"),
                r#","invokedBy":"lambda.amazonaws.com""#,
            ),
        ];
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let (off, _) = fold(&lines);
        assert!(off.series.iter().all(|k| k.principal.is_none()));
        let mut folder = Folder::new(ClassifyOptions {
            principal_insights: true,
            ..ClassifyOptions::default()
        });
        for line in &lines {
            folder.add_json(line.as_bytes());
        }
        let (on, stats) = folder.finish();
        // The account series are those of before.
        let account: Vec<&SeriesKey> = on.series.iter().filter(|k| k.principal.is_none()).collect();
        assert_eq!(account, off.series.iter().collect::<Vec<_>>());
        assert_eq!(stats.principal_overflow, 0);
        let role = "arn:aws:iam::111122223333:role/App";
        let count = |name: &str, principal: &str| -> u64 {
            on.iter()
                .filter(|(k, _, _)| {
                    k.event_name == name && k.principal.as_deref() == Some(principal)
                })
                .map(|(_, _, c)| c.count)
                .sum()
        };
        assert_eq!(count("GetSecretValue", role), 2);
        assert_eq!(count("PutSecretValue", role), 1);
        assert_eq!(count(SERVICE_WIDE, role), 3);
        assert_eq!(count("GetSecretValue", ALL_PRINCIPALS), 2);
        // The sessions are the caller ARNs; a service-wide cell counts APIs.
        let (_, _, cell) = on
            .iter()
            .find(|(k, _, _)| k.event_name == SERVICE_WIDE)
            .unwrap();
        assert_eq!(
            cell.arns.sorted(),
            vec![(session("a").as_str(), 2), (session("b").as_str(), 1)]
        );
        assert_eq!(
            cell.errors.sorted(),
            vec![("GetSecretValue", 2), ("PutSecretValue", 1)]
        );
    }

    #[test]
    fn a_principals_assume_role_cells_name_the_roles_asked_for() {
        let event = |params: &str, error: &str| {
            format!(
                r#"{{"eventTime":"2026-03-02T14:07:12Z","eventSource":"sts.amazonaws.com","eventName":"AssumeRole","awsRegion":"us-east-1","recipientAccountId":"111122223333","readOnly":true,"eventCategory":"Management","userIdentity":{{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/ci/run-1"}}{error},"requestParameters":{params}}}"#
            )
        };
        let admin = "arn:aws:iam::111122223333:role/admin";
        let lines = [
            event(
                &format!(r#"{{"roleSessionName":"x","roleArn":"{admin}","durationSeconds":900}}"#),
                "",
            ),
            event(
                &format!(r#"{{"roleArn":"{admin}"}}"#),
                r#","errorCode":"AccessDenied""#,
            ),
            event(r#"{"roleArn":"arn:aws:iam::111122223333:role/deploy"}"#, ""),
            // Not a role's ARN, a value that is not an object, no parameters: no role.
            event(r#"{"roleArn":"arn:aws:iam::111122223333:user/bob"}"#, ""),
            event(r#"{"roleArn":["x"]}"#, ""),
            event(r#""roleArn""#, ""),
            event("null", ""),
        ];
        let mut folder = Folder::new(ClassifyOptions {
            principal_insights: true,
            ..ClassifyOptions::default()
        });
        for line in &lines {
            folder.add_json(line.as_bytes());
        }
        let (delta, stats) = folder.finish();
        assert_eq!((stats.malformed, stats.unusable), (0, 0), "{stats:?}");
        let with_roles: Vec<(&SeriesKey, &Cell)> = delta
            .iter()
            .filter(|(_, _, c)| !c.roles.is_empty())
            .map(|(k, _, c)| (k, c))
            .collect();
        // Only the principal's API cell keeps them.
        assert_eq!(with_roles.len(), 1, "{with_roles:?}");
        let (key, cell) = with_roles[0];
        assert_eq!(
            (
                key.event_name.as_str(),
                key.principal.as_deref(),
                cell.count
            ),
            ("AssumeRole", Some("arn:aws:iam::111122223333:role/ci"), 7)
        );
        assert_eq!(
            cell.roles.sorted(),
            vec![(admin, 2), ("arn:aws:iam::111122223333:role/deploy", 1)]
        );
    }

    #[test]
    fn principal_series_count_their_console_calls() {
        let event = |console: &str| {
            format!(
                r#"{{"eventTime":"2026-03-02T14:07:12Z","eventSource":"ec2.amazonaws.com","eventName":"DescribeVpcs","awsRegion":"us-east-1","recipientAccountId":"111122223333","readOnly":true,"eventCategory":"Management","userIdentity":{{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/Admin/alice"}}{console}}}"#
            )
        };
        let lines = [
            event(r#","sessionCredentialFromConsole":"true","userAgent":"Mozilla/5.0""#),
            event(r#","userAgent":"AWS Internal","sessionCredentialFromConsole":true"#),
            event(r#","userAgent":"aws-cli/2.15.30""#),
        ];
        let mut folder = Folder::new(ClassifyOptions {
            principal_insights: true,
            ..ClassifyOptions::default()
        });
        for line in &lines {
            folder.add_json(line.as_bytes());
        }
        let (delta, _) = folder.finish();
        let console: Vec<(&str, u64, u64)> = delta
            .iter()
            .filter(|(k, _, _)| k.principal.is_some())
            .map(|(k, _, c)| (k.event_name.as_str(), c.count, c.console))
            .collect();
        // The principal's API and service series count them; the account's rate over all
        // principals is a count alone.
        assert!(console.contains(&("DescribeVpcs", 3, 2)), "{console:?}");
        assert!(console.contains(&(SERVICE_WIDE, 3, 2)), "{console:?}");
        assert!(console.contains(&("DescribeVpcs", 3, 0)), "{console:?}");
        // Merged and stored, the count stays.
        let json = serde_json::to_string(&delta).unwrap();
        assert_eq!(serde_json::from_str::<Delta>(&json).unwrap(), delta);
    }
}
