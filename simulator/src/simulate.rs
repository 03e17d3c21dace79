//! The entry point: [`simulate`] checks the options, plans the anomalies and routine changes,
//! generates every region in parallel and writes the labels.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::PathBuf;

use crate::anomalies::{Plan, default_injections, plan_anomalies};
use crate::catalog::apis::APIS;
use crate::changes::{Change, plan_changes};
use crate::generate::{RegionOut, gen_region};
use crate::labels::{
    AnomalyLabel, ChangeLabel, LABELS_FILE, LabelKey, Labels, PeriodicJob, PrincipalCaseLabel,
};
use crate::options::{Injections, SimulateOptions};
use crate::principal_cases::{Case, plan_principal_cases};
use crate::time::utc;
use crate::world::{Ev, World};
use trailsight::series::InsightType;

/// What `simulate` wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulateReport {
    pub files: usize,
    /// Records written, duplicates included.
    pub records: u64,
    pub labels: PathBuf,
    pub anomalies: usize,
    /// Routine changes (`SimulateOptions::changes`).
    pub changes: usize,
}

/// Generates the scenario into `opts.out` (created if needed; existing files are neither removed
/// nor overwritten unless a name collides, so use an empty directory).
pub fn simulate(opts: &SimulateOptions) -> io::Result<SimulateReport> {
    if opts.days == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "days must be at least 1",
        ));
    }
    if opts.regions.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "at least one region is needed",
        ));
    }
    let mut seen = BTreeSet::new();
    for r in &opts.regions {
        let ok = !r.is_empty() && r.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok || !seen.insert(r.as_str()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad or repeated region {r:?}"),
            ));
        }
    }
    if opts.account.is_empty() || !opts.account.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad account id {:?}", opts.account),
        ));
    }
    let world = World::new(opts);
    let injections = match &opts.injections {
        Injections::Default => default_injections(&world),
        Injections::None => Vec::new(),
        Injections::Explicit(v) => v.clone(),
    };
    let plans = plan_anomalies(&world, &injections)?;
    let changes = plan_changes(&world, &plans)?;
    let cases = plan_principal_cases(&world);

    fs::create_dir_all(&opts.out)?;
    let results: Vec<io::Result<RegionOut>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..opts.regions.len())
            .map(|ri| {
                let world = &world;
                let plans = &plans;
                let changes = &changes;
                let cases = &cases;
                scope.spawn(move || gen_region(world, ri, plans, changes, cases))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("region generator panicked")))
            })
            .collect()
    });
    let mut files = 0usize;
    let mut records = 0u64;
    let mut keys: BTreeSet<(String, u16)> = BTreeSet::new();
    let mut principal_days = BTreeSet::new();
    for (ri, r) in results.into_iter().enumerate() {
        let r = r?;
        principal_days.extend(r.principal_days);
        files += r.files;
        records += r.records;
        keys.extend(r.keys.into_iter().map(|k| (opts.regions[ri].clone(), k)));
    }
    let labels_path = opts.out.join(LABELS_FILE);
    let series_days = keys.len() as u64 * u64::from(opts.days);
    let mut labels = labels(&world, &plans, &changes, series_days);
    labels.principal_cases = principal_case_labels(&world, &cases);
    labels.principal_days = principal_days.len() as u64;
    labels.write(&labels_path)?;
    Ok(SimulateReport {
        files,
        records,
        labels: labels_path,
        anomalies: plans.len(),
        changes: changes.len(),
    })
}

/// The labels of the principal cases (the principal normalised as Trailsight counts it).
fn principal_case_labels(world: &World, cases: &[Case]) -> Vec<PrincipalCaseLabel> {
    let opts = world.opts;
    cases
        .iter()
        .map(|c| {
            let arn = world.catalog.identity(c.who).arn_or_name();
            PrincipalCaseLabel {
                id: c.id,
                kind: c.kind,
                attack: c.kind.is_attack(),
                region: opts.regions[c.region].clone(),
                account: opts.account.clone(),
                principal: trailsight::principal::normalise(arn).unwrap_or_else(|| arn.to_owned()),
                start: utc(c.start),
                end: utc(c.end),
                description: c.description.clone(),
                keys: if c.kind.is_attack() {
                    attack_keys(world, &c.events)
                } else {
                    Vec::new()
                },
            }
        })
        .collect()
}

/// The account keys an attack's events count in: the call rate of the writes it makes and the
/// error rate of the errors it gets, each once, in order.
fn attack_keys(world: &World, events: &[Ev]) -> Vec<LabelKey> {
    let mut keys: Vec<LabelKey> = Vec::new();
    for e in events {
        let a = &APIS[e.api as usize];
        let source = &world.catalog.sources[e.api as usize];
        let mut add = |insight_type: InsightType, error_code: Option<&str>| {
            let key = LabelKey {
                event_source: source.clone(),
                event_name: a.name.to_owned(),
                insight_type,
                error_code: error_code.map(str::to_owned),
            };
            if !keys.contains(&key) {
                keys.push(key);
            }
        };
        if !a.ro {
            add(InsightType::ApiCallRateInsight, None);
        }
        if let Some(err) = e.err {
            add(InsightType::ApiErrorRateInsight, Some(err.code(a)));
        }
    }
    keys
}

/// The labels of a planned scenario.
pub(crate) fn labels(
    world: &World,
    plans: &[Plan],
    changes: &[Change],
    series_days: u64,
) -> Labels {
    let opts = world.opts;
    Labels {
        seed: opts.seed,
        start: utc(world.start),
        end: utc(world.end()),
        days: opts.days,
        regions: opts.regions.clone(),
        account: opts.account.clone(),
        series_days,
        anomalies: plans
            .iter()
            .map(|p| AnomalyLabel {
                id: p.id,
                kind: p.kind,
                region: opts.regions[p.region].clone(),
                account: opts.account.clone(),
                start: utc(p.start),
                end: utc(p.end),
                keys: p.keys.clone(),
                description: p.description.clone(),
            })
            .collect(),
        changes: changes
            .iter()
            .map(|c| ChangeLabel {
                id: c.id,
                kind: c.kind,
                region: opts.regions[c.region].clone(),
                account: opts.account.clone(),
                from: utc(c.from),
                learned_after: utc(c.learned_after),
                keys: vec![LabelKey::calls(c.api)],
                description: c.description.clone(),
            })
            .collect(),
        periodic_jobs: world
            .jobs
            .iter()
            .map(|j| PeriodicJob {
                event_source: world.catalog.sources[j.api as usize].clone(),
                event_name: APIS[j.api as usize].name.to_string(),
                period_minutes: j.period,
                calls_per_run: j.calls,
            })
            .collect(),
        principal_cases: Vec::new(),
        principal_days: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::path::Path;

    use chrono::{DateTime, Datelike};
    use serde_json::Value;

    use crate::labels::AnomalyKind;
    use crate::labels::Labels;
    use crate::options::Injection;
    use crate::testing::*;

    #[test]
    fn same_seed_same_bytes() {
        // Two regions (generated in parallel), anomalies and routine changes: every generator.
        let run = |dir: &Path, seed: u64| {
            let mut o = opts(dir, 6, &["us-east-1", "eu-west-1"], seed);
            o.changes = true;
            simulate(&o).unwrap()
        };
        let a = TempDir::new("det-a");
        let b = TempDir::new("det-b");
        let c = TempDir::new("det-c");
        let ra = run(&a.0, 7);
        let rb = run(&b.0, 7);
        assert_eq!(ra.anomalies, 8);
        assert_eq!(ra.changes, 4);
        assert_eq!(
            (ra.files, ra.records, ra.anomalies, ra.changes),
            (rb.files, rb.records, rb.anomalies, rb.changes)
        );
        let fa = files_under(&a.0);
        let fb = files_under(&b.0);
        assert_eq!(fa.len(), fb.len());
        assert!(fa.len() > 3000, "{} files", fa.len());
        assert!(fa.contains(&ra.labels));
        for (x, y) in fa.iter().zip(&fb) {
            assert_eq!(x.strip_prefix(&a.0).unwrap(), y.strip_prefix(&b.0).unwrap());
            assert!(
                fs::read(x).unwrap() == fs::read(y).unwrap(),
                "{x:?} differs"
            );
        }
        // Another seed, another scenario.
        let rc = run(&c.0, 8);
        let fc = files_under(&c.0);
        let names = |v: &[PathBuf], root: &Path| -> Vec<PathBuf> {
            v.iter()
                .map(|p| p.strip_prefix(root).unwrap().to_path_buf())
                .collect()
        };
        assert_ne!(names(&fa, &a.0), names(&fc, &c.0));
        assert_ne!(
            Labels::read(&ra.labels).unwrap().anomalies,
            Labels::read(&rc.labels).unwrap().anomalies
        );
    }

    #[test]
    fn layout_lateness_and_record_shape() {
        let d = TempDir::new("late");
        let o = opts(&d.0, 1, &["us-east-1"], 3);
        let rep = simulate(&o).unwrap();
        let files = log_files(&d.0);
        assert_eq!(files.len(), rep.files);
        let mut total = 0u64;
        let mut dups = 0;
        let mut writes = 0;
        let mut late_over_10 = 0;
        let mut slots = BTreeMap::new();
        for f in &files {
            let rel = f.strip_prefix(&d.0).unwrap().to_str().unwrap().to_string();
            let parts: Vec<&str> = rel.split('/').collect();
            assert_eq!(
                &parts[..4],
                &["AWSLogs", "111122223333", "CloudTrail", "us-east-1"]
            );
            let name = parts[7];
            let delivery = delivery_of(f);
            let dd = DateTime::from_timestamp(delivery, 0).unwrap();
            assert_eq!(
                parts[4..7],
                [
                    format!("{:04}", dd.year()),
                    format!("{:02}", dd.month()),
                    format!("{:02}", dd.day())
                ]
            );
            assert!(
                name.starts_with("111122223333_CloudTrail_us-east-1_"),
                "{name}"
            );
            let suffix = name
                .rsplit('_')
                .next()
                .unwrap()
                .strip_suffix(".json.gz")
                .unwrap();
            assert_eq!(suffix.len(), 16);
            assert!(suffix.chars().all(|c| c.is_ascii_alphanumeric()));
            *slots.entry(delivery).or_insert(0) += 1;
            let recs = read_records(f);
            assert!(!recs.is_empty());
            let mut ids = BTreeSet::new();
            for r in &recs {
                total += 1;
                let t = ts(r["eventTime"].as_str().unwrap());
                assert!(t <= delivery, "{rel}: {} after delivery", r["eventTime"]);
                assert!(
                    t >= delivery - 900,
                    "{rel}: {} delivered > 15 min late",
                    r["eventTime"]
                );
                if delivery - t > 600 {
                    late_over_10 += 1;
                }
                if !ids.insert(r["eventID"].as_str().unwrap().to_string()) {
                    dups += 1;
                }
                let v = r["eventVersion"].as_str().unwrap();
                assert!(v == "1.08" || v == "1.09");
                assert_eq!(r["awsRegion"], "us-east-1");
                assert_eq!(r["eventType"], "AwsApiCall");
                assert_eq!(r["eventCategory"], "Management");
                assert_eq!(r["managementEvent"], true);
                assert_eq!(r["recipientAccountId"], "111122223333");
                assert!(
                    r["eventSource"]
                        .as_str()
                        .unwrap()
                        .ends_with(".amazonaws.com")
                );
                assert!(r["requestID"].is_string() && r["sourceIPAddress"].is_string());
                assert!(r.get("requestParameters").is_some());
                assert!(r.get("responseElements").is_some());
                if r["readOnly"] == false {
                    writes += 1;
                }
                let id = &r["userIdentity"];
                match id["type"].as_str().unwrap() {
                    "AWSService" => {
                        assert!(id.get("arn").is_none());
                        assert!(
                            id["invokedBy"]
                                .as_str()
                                .unwrap()
                                .ends_with(".amazonaws.com")
                        );
                    }
                    "AssumedRole" => {
                        assert!(id["arn"].as_str().unwrap().starts_with("arn:aws:sts::"));
                        assert!(id["sessionContext"]["sessionIssuer"]["arn"].is_string());
                        assert!(id["accessKeyId"].as_str().unwrap().starts_with("ASIA"));
                    }
                    "IAMUser" => {
                        assert!(id["arn"].as_str().unwrap().starts_with("arn:aws:iam::"));
                    }
                    other => panic!("identity type {other}"),
                }
                if r.get("errorCode").is_some() {
                    assert_eq!(r["responseElements"], Value::Null);
                }
            }
        }
        assert_eq!(total, rep.records);
        // A Monday of background traffic: about 39,000 records.
        assert!((30_000..50_000).contains(&total), "{total} records");
        assert!(dups > 0, "no duplicate records");
        let wf = f64::from(writes) / total as f64;
        assert!((0.06..0.16).contains(&wf), "write fraction {wf}");
        // Mostly 1-10 minutes late, a few percent more.
        let frac = f64::from(late_over_10) / total as f64;
        assert!(frac > 0.005 && frac < 0.15, "late > 10 min: {frac}");
        // One file per 5-minute slot, sometimes two.
        assert!(slots.values().any(|n| *n == 2));
        assert!(slots.values().all(|n| *n <= 2));
        let gaps: BTreeSet<i64> = slots
            .keys()
            .zip(slots.keys().skip(1))
            .map(|(a, b)| b - a)
            .collect();
        assert_eq!(gaps, BTreeSet::from([300]));
    }

    #[test]
    fn quiet_scenario_has_no_labels() {
        let d = TempDir::new("quiet");
        let mut o = opts(&d.0, 1, &["eu-west-1"], 5);
        o.injections = Injections::None;
        let rep = simulate(&o).unwrap();
        assert_eq!(rep.anomalies, 0);
        let labels = Labels::read(&rep.labels).unwrap();
        assert!(labels.anomalies.is_empty());
        assert!(labels.series_days > 20);
        assert_eq!(labels.regions, ["eu-west-1"]);
    }

    #[test]
    fn bad_options_are_errors() {
        let d = TempDir::new("bad");
        let mut o = opts(&d.0, 1, &["eu-west-1"], 5);
        o.injections = Injections::Explicit(vec![Injection {
            kind: AnomalyKind::IamBurst,
            at: o.start,
            region: Some("ap-south-1".into()),
        }]);
        assert!(simulate(&o).is_err());
        o.injections = Injections::Explicit(vec![Injection {
            kind: AnomalyKind::IamBurst,
            at: o.start + chrono::Duration::days(1),
            region: None,
        }]);
        assert!(simulate(&o).is_err(), "injection after the end accepted");
        o.injections = Injections::None;
        o.days = 0;
        assert!(simulate(&o).is_err());
    }
}
