//! `labels.json`: the ground truth written beside the logs.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use serde::Serialize;

use crate::anomalies::Plan;
use crate::catalog::apis::{APIS, event_source};
use crate::catalog::errors::ErrorKind;
use crate::changes::Change;
use crate::time::rfc3339;
use crate::world::World;

#[derive(Debug, Clone)]
pub(crate) struct LabelKey {
    pub(crate) source: String,
    pub(crate) name: String,
    pub(crate) insight: &'static str,
    pub(crate) error: Option<String>,
}

impl LabelKey {
    pub(crate) fn calls(api: u16) -> LabelKey {
        let a = &APIS[api as usize];
        LabelKey {
            source: event_source(a.svc),
            name: a.name.to_string(),
            insight: "ApiCallRateInsight",
            error: None,
        }
    }
    pub(crate) fn errors(api: u16, err: ErrorKind) -> LabelKey {
        let a = &APIS[api as usize];
        LabelKey {
            source: event_source(a.svc),
            name: a.name.to_string(),
            insight: "ApiErrorRateInsight",
            error: Some(err.code(a).to_string()),
        }
    }
}

#[derive(Serialize)]
struct LabelsDoc<'a> {
    pub(crate) seed: u64,
    pub(crate) start: String,
    pub(crate) end: String,
    pub(crate) days: u32,
    pub(crate) regions: &'a [String],
    pub(crate) account: &'a str,
    pub(crate) series_days: u64,
    pub(crate) anomalies: Vec<LabelOut<'a>>,
    /// Benign routine changes: an insight on one of a change's keys that starts at or after its
    /// `learned_after` (the end of its learning period) is a false insight; one between `from`
    /// and `learned_after` is neither true nor false.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) changes: Vec<ChangeOut<'a>>,
    /// Informational: the periodic maintenance jobs (the keys a maintenance gap can hit).
    periodic_jobs: Vec<JobOut<'a>>,
}

#[derive(Serialize)]
struct LabelOut<'a> {
    pub(crate) id: usize,
    pub(crate) kind: &'static str,
    pub(crate) region: &'a str,
    pub(crate) account: &'a str,
    pub(crate) start: String,
    pub(crate) end: String,
    pub(crate) keys: Vec<KeyOut<'a>>,
    pub(crate) description: &'a str,
}

#[derive(Serialize)]
struct ChangeOut<'a> {
    pub(crate) id: usize,
    pub(crate) kind: &'static str,
    pub(crate) region: &'a str,
    pub(crate) account: &'a str,
    pub(crate) from: String,
    pub(crate) learned_after: String,
    pub(crate) keys: Vec<KeyOut<'a>>,
    pub(crate) description: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KeyOut<'a> {
    pub(crate) event_source: &'a str,
    pub(crate) event_name: &'a str,
    insight_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error_code: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JobOut<'a> {
    pub(crate) event_source: &'a str,
    pub(crate) event_name: &'a str,
    period_minutes: i64,
    calls_per_run: u32,
}

pub(crate) fn write_labels(
    world: &World,
    plans: &[Plan],
    changes: &[Change],
    series_days: u64,
    path: &Path,
) -> io::Result<()> {
    let opts = world.opts;
    let doc = LabelsDoc {
        seed: opts.seed,
        start: rfc3339(world.start),
        end: rfc3339(world.start + world.minutes * 60),
        days: opts.days,
        regions: &opts.regions,
        account: &opts.account,
        series_days,
        anomalies: plans
            .iter()
            .map(|p| LabelOut {
                id: p.id,
                kind: p.kind.as_str(),
                region: &opts.regions[p.region],
                account: &opts.account,
                start: rfc3339(p.start),
                end: rfc3339(p.end),
                keys: p
                    .keys
                    .iter()
                    .map(|k| KeyOut {
                        event_source: &k.source,
                        event_name: &k.name,
                        insight_type: k.insight,
                        error_code: k.error.as_deref(),
                    })
                    .collect(),
                description: &p.description,
            })
            .collect(),
        changes: changes
            .iter()
            .map(|c| ChangeOut {
                id: c.id,
                kind: c.kind.as_str(),
                region: &opts.regions[c.region],
                account: &opts.account,
                from: rfc3339(c.from),
                learned_after: rfc3339(c.learned_after),
                keys: vec![KeyOut {
                    event_source: &world.catalog.sources[c.api as usize],
                    event_name: APIS[c.api as usize].name,
                    insight_type: "ApiCallRateInsight",
                    error_code: None,
                }],
                description: &c.description,
            })
            .collect(),
        periodic_jobs: world
            .jobs
            .iter()
            .map(|j| JobOut {
                event_source: &world.catalog.sources[j.api as usize],
                event_name: APIS[j.api as usize].name,
                period_minutes: j.period,
                calls_per_run: j.calls,
            })
            .collect(),
    };
    let mut w = BufWriter::new(File::create(path)?);
    serde_json::to_writer_pretty(&mut w, &doc)?;
    w.write_all(b"\n")?;
    w.flush()
}
