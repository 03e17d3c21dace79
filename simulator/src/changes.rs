//! Routine changes: benign changes a detector must learn (new recurring jobs, a lasting rate
//! step, a newly adopted API).

use std::io;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::anomalies::Plan;
use crate::catalog::apis::{APIS, api_index};
use crate::catalog::errors::background_error;
use crate::catalog::principals::Principal;
use crate::labels::{ChangeKind, LabelKey};
use crate::random::{poisson, splitmix};
use crate::time::{local_time, rfc3339};
use crate::world::{Ev, World, at_local};

/// A learning period: any insight on a change's keys that starts this long after the change
/// started is a false insight (a new job is reported at most on its first two days and never
/// after its third; a rate step or a new API stops being reported within three days).
pub const LEARNING_PERIOD_SECONDS: i64 = 3 * 86_400;

/// New recurring jobs: write APIs nothing else calls.
const NEW_JOB_POOL: &[(&str, &str)] = &[
    ("dynamodb", "CreateBackup"),
    ("rds", "CreateDBClusterSnapshot"),
    ("ec2", "CopySnapshot"),
    ("logs", "CreateExportTask"),
    ("ecr", "BatchDeleteImage"),
];

/// Newly adopted APIs: write APIs nothing else calls.
const NEW_API_POOL: &[(&str, &str)] = &[
    ("secretsmanager", "PutSecretValue"),
    ("ssm", "StartAutomationExecution"),
    ("cloudformation", "DetectStackDrift"),
    ("monitoring", "PutDashboard"),
    ("lambda", "CreateAlias20150331"),
];

/// Rate steps: write APIs with background traffic (not IAM: global, and the IAM bursts' keys).
const STEP_POOL: &[(&str, &str)] = &[
    ("logs", "CreateLogStream"),
    ("ssm", "UpdateInstanceInformation"),
    ("kms", "CreateGrant"),
    ("kms", "RetireGrant"),
    ("ec2", "CreateNetworkInterface"),
    ("ec2", "DeleteNetworkInterface"),
    ("ec2", "CreateTags"),
    ("ec2", "DeleteTags"),
    ("ssm", "SendCommand"),
    ("ecr", "UploadLayerPart"),
    ("elasticloadbalancing", "RegisterTargets"),
];

pub(crate) struct Change {
    pub(crate) id: usize,
    pub(crate) kind: ChangeKind,
    pub(crate) region: usize,
    pub(crate) api: u16,
    /// Unix seconds of the first changed minute.
    pub(crate) from: i64,
    pub(crate) learned_after: i64,
    /// Rate steps: the multiplier of the key's background rate from `from` on.
    pub(crate) factor: f64,
    /// New jobs and new APIs: their calls (rate steps are drawn with the background).
    pub(crate) events: Vec<Ev>,
    pub(crate) description: String,
}

/// Four changes: two new jobs (nightly, every few hours), a rate step and a new API, each on its
/// own seed-chosen day (from day 1, ending its learning
/// period at least a day before the scenario ends), region, key and time of day. Keys are
/// never those of an anomaly in the same region, so that labels never overlap.
pub(crate) fn plan_changes(world: &World, plans: &[Plan]) -> io::Result<Vec<Change>> {
    let opts = world.opts;
    if !opts.changes {
        return Ok(Vec::new());
    }
    if opts.days < 6 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "routine changes need at least 6 days (one of history, three of learning, one after)",
        ));
    }
    let mut rng = StdRng::seed_from_u64(splitmix(opts.seed ^ 0x6368_616e_6765));
    let last_day = i64::from(opts.days) - 5;
    let nreg = opts.regions.len();
    let end = world.end();
    let taken = |region: usize, api: u16| {
        let k = LabelKey::calls(api);
        plans
            .iter()
            .any(|p| p.region == region && p.keys.contains(&k))
    };
    let mut changes = Vec::new();

    // (a) Two new jobs on two APIs: one nightly at a fixed time, one every few hours.
    let job_apis: Vec<(&str, &str)> = NEW_JOB_POOL.choose_multiple(&mut rng, 2).copied().collect();
    for (nth, (svc, name)) in job_apis.into_iter().enumerate() {
        let region = rng.gen_range(0..nreg);
        let api = api_index(svc, name);
        let day = rng.gen_range(1..=last_day);
        let (period_h, from) = if nth == 0 {
            let hour = rng.gen_range(22.0..30.0) % 24.0;
            let t = at_local(world, day, hour, &opts.regions[region]);
            // East of UTC, the night may begin the UTC day before: keep a day of history.
            (
                24,
                if t < world.start + 86_400 {
                    t + 86_400
                } else {
                    t
                },
            )
        } else {
            let period_h: i64 = *[2, 3, 4, 6, 8, 12].choose(&mut rng).unwrap_or(&2);
            (
                period_h,
                world.start + day * 86_400 + rng.gen_range(0..period_h * 60) * 60,
            )
        };
        let base = rng.gen_range(6..=40u32);
        // Some jobs make the same calls every run (a backup of fixed tables), others vary.
        let spread = *[0.0, 0.1, 0.25].choose(&mut rng).unwrap_or(&0.1);
        let minutes = rng.gen_range(1..=3i64);
        let a = &APIS[api as usize];
        let who = *a
            .callers
            .choose(&mut rng)
            .unwrap_or(&Principal::Maintenance);
        let mut events = Vec::new();
        let mut run = from;
        let mut skipped = false;
        while run < end {
            // Frequent jobs now and then miss a run (never two in a row: that is an outage).
            skipped = run > from && period_h <= 6 && !skipped && rng.gen_bool(0.05);
            if !skipped {
                let k = (f64::from(base) * rng.gen_range(1.0 - spread..=1.0 + spread))
                    .round()
                    .max(3.0) as u32;
                // Starts within 30 s of its time; some runs take half as long again.
                let lag = rng.gen_range(0..30);
                let took = (minutes as f64 * 60.0 * rng.gen_range(0.8..1.5)) as i64;
                for _ in 0..k {
                    events.push(Ev::new(run + lag + rng.gen_range(0..took), api, who, None));
                }
            }
            run += period_h * 3600;
        }
        let every = if period_h == 24 {
            format!("daily at {} UTC", &rfc3339(from)[11..16])
        } else {
            format!("every {period_h} h")
        };
        changes.push(Change {
            id: changes.len() + 1,
            kind: ChangeKind::NewJob,
            region,
            api,
            from,
            learned_after: from + LEARNING_PERIOD_SECONDS,
            factor: 1.0,
            description: format!(
                "new job: {base} calls of {svc}:{name} (+/-{:.0}%) in about {minutes} min, \
                 {every}, by {}",
                spread * 100.0,
                world.catalog.identity(who).arn_or_name()
            ),
            events,
        });
    }

    // (b) A lasting rate step, starting in business hours (a deploy).
    {
        let region = rng.gen_range(0..nreg);
        let cands: Vec<u16> = STEP_POOL
            .iter()
            .map(|(svc, name)| api_index(svc, name))
            .filter(|&api| !taken(region, api))
            .collect();
        let api = *cands
            .choose(&mut rng)
            .unwrap_or(&api_index(STEP_POOL[0].0, STEP_POOL[0].1));
        let day = rng.gen_range(1..=last_day);
        let from = at_local(world, day, rng.gen_range(9.0..17.0), &opts.regions[region]);
        let factor = rng.gen_range(2.5..5.0);
        let a = &APIS[api as usize];
        changes.push(Change {
            id: changes.len() + 1,
            kind: ChangeKind::RateStep,
            region,
            api,
            from,
            learned_after: from + LEARNING_PERIOD_SECONDS,
            factor,
            description: format!("rate step: {}:{} x{factor:.1} from then on", a.svc, a.name),
            events: Vec::new(),
        });
    }

    // (c) A newly adopted API: sessions of a few calls in business hours, every day.
    {
        let region = rng.gen_range(0..nreg);
        let rname = opts.regions[region].as_str();
        let (svc, name) = *NEW_API_POOL.choose(&mut rng).unwrap_or(&NEW_API_POOL[0]);
        let api = api_index(svc, name);
        let day = rng.gen_range(1..=last_day);
        let sessions_per_day = rng.gen_range(3.0..8.0);
        let calls_per_session = rng.gen_range(2.0..10.0);
        let a = &APIS[api as usize];
        let first = at_local(world, day, rng.gen_range(9.0..17.0), rname);
        let mut events = Vec::new();
        let mut starts = vec![first];
        for d in day..i64::from(opts.days) {
            let (_, weekend) = local_time(world.start + d * 86_400 + 12 * 3600, rname);
            let n = poisson(&mut rng, sessions_per_day * if weekend { 0.3 } else { 1.0 });
            for _ in 0..n {
                let t = at_local(world, d, rng.gen_range(8.5..18.5), rname);
                if t > first {
                    starts.push(t);
                }
            }
        }
        for s in starts {
            let who = *a.callers.choose(&mut rng).unwrap_or(&Principal::Ci);
            let c = 1 + poisson(&mut rng, calls_per_session);
            let minutes = rng.gen_range(1..=4i64);
            for i in 0..c {
                // The session's first call opens it.
                let t = if i == 0 {
                    s
                } else {
                    s + rng.gen_range(0..minutes * 60)
                };
                if t < end {
                    events.push(Ev::new(t, api, who, background_error(a, who, &mut rng)));
                }
            }
        }
        changes.push(Change {
            id: changes.len() + 1,
            kind: ChangeKind::NewApi,
            region,
            api,
            from: first,
            learned_after: first + LEARNING_PERIOD_SECONDS,
            factor: 1.0,
            description: format!(
                "new API: {svc}:{name}, about {sessions_per_day:.1} sessions a weekday of about \
                 {:.1} calls",
                1.0 + calls_per_session
            ),
            events,
        });
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use trailsight::series::InsightType;

    use super::ChangeKind::{self, NewApi, NewJob, RateStep};
    use crate::labels::Labels;
    use crate::options::Injections;
    use crate::simulate::simulate;
    use crate::testing::*;

    #[test]
    fn routine_changes_are_labelled_and_generated() {
        let d = TempDir::new("changes");
        let mut o = opts(&d.0, 6, &["eu-west-1"], 4);
        o.injections = Injections::None;
        o.changes = true;
        let rep = simulate(&o).unwrap();
        assert_eq!(rep.changes, 4);
        let labels = Labels::read(&rep.labels).unwrap();
        let kinds: Vec<ChangeKind> = labels.changes.iter().map(|c| c.kind).collect();
        assert_eq!(kinds, [NewJob, NewJob, RateStep, NewApi]);
        let start = ts("2026-03-02T00:00:00Z");
        let counts = minute_counts(&d.0);
        for c in &labels.changes {
            let (from, learned) = (c.from.timestamp(), c.learned_after.timestamp());
            assert_eq!(learned - from, 3 * 86_400);
            // A day of history before, a day after the learning period.
            assert!(
                from >= start + 86_400 && learned <= start + 5 * 86_400,
                "{c:?}"
            );
            let k = &c.keys[0];
            assert_eq!(k.insight_type, InsightType::ApiCallRateInsight);
            let key = (
                "eu-west-1".to_string(),
                k.event_source.clone(),
                k.event_name.clone(),
                "call".to_string(),
            );
            let calls = &counts[&key];
            let (m0, m1) = (from.div_euclid(60), learned.div_euclid(60));
            let sum = |a: i64, b: i64| calls.range(a..b).map(|(_, n)| u64::from(*n)).sum::<u64>();
            match c.kind {
                NewJob | NewApi => {
                    // Never seen before its first minute, then used on every weekday.
                    assert_eq!(sum(i64::MIN, m0), 0, "{c:?}");
                    assert!(calls.contains_key(&m0), "{c:?}");
                    if c.kind == NewJob {
                        for day in 0..4 {
                            assert!(sum(m0 + day * 1440, m0 + (day + 1) * 1440) > 0, "{c:?}");
                        }
                    }
                }
                RateStep => {
                    // The same 24 hours before and after the step (weekdays: from is a Tuesday).
                    let (before, after) = (sum(m0 - 1440, m0), sum(m0, m0 + 1440));
                    assert!(
                        before > 20 && after as f64 > 2.0 * before as f64,
                        "{before} {after}"
                    );
                    assert!(sum(m0, m1) > 0);
                }
            }
        }
        // Without `changes`, the labels have none; with too few days, it is an error.
        let d2 = TempDir::new("nochanges");
        let mut o = opts(&d2.0, 1, &["eu-west-1"], 4);
        o.injections = Injections::None;
        let rep = simulate(&o).unwrap();
        assert!(Labels::read(&rep.labels).unwrap().changes.is_empty());
        // ... nor the key in the file.
        assert!(
            !fs::read_to_string(&rep.labels)
                .unwrap()
                .contains("\"changes\"")
        );
        o.changes = true;
        assert!(simulate(&o).is_err());
    }
}
