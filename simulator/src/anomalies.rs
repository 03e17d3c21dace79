//! Anomalies: what to inject (seed-chosen or explicit, `KIND@TIME[@REGION]`), and the plan of
//! each one (its events, its labelled keys and its window).

use std::io;

use chrono::DateTime;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::catalog::apis::{APIS, api_index};
use crate::catalog::errors::{ErrorKind, throttle_code};
use crate::catalog::principals::{PKind, Principal};
use crate::labels::{AnomalyKind, LabelKey};
use crate::options::Injection;
use crate::random::{poisson, splitmix};
use crate::time::{local_time, rfc3339};
use crate::world::{Ev, World};

pub(crate) struct Plan {
    pub(crate) id: usize,
    pub(crate) kind: AnomalyKind,
    pub(crate) region: usize,
    /// Unix seconds, whole minutes; end exclusive.
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) keys: Vec<LabelKey>,
    pub(crate) events: Vec<Ev>,
    /// Maintenance gap: (job, first suppressed nominal minute, first resumed nominal minute),
    /// minutes relative to the scenario start.
    pub(crate) gap: Option<(usize, i64, i64)>,
    pub(crate) description: String,
}

pub(crate) fn default_injections(world: &World) -> Vec<Injection> {
    let opts = world.opts;
    let total = world.minutes;
    let warm = if opts.days >= 4 { 2 * 1440 } else { total / 3 };
    let tail = 540;
    let min_sep = 360;
    let avail = total - warm - tail;
    if avail < 0 {
        return Vec::new();
    }
    let mut n: i64 = 8;
    while n > 1 && (n - 1) * min_sep > avail {
        n -= 1;
    }
    let mut rng = StdRng::seed_from_u64(splitmix(opts.seed ^ 0x616e_6f6d));
    let mut a = AnomalyKind::ALL;
    a.shuffle(&mut rng);
    let mut b = AnomalyKind::ALL;
    b.shuffle(&mut rng);
    let kinds: Vec<AnomalyKind> = a.iter().chain(b.iter()).copied().take(n as usize).collect();
    let nreg = opts.regions.len();
    let window_has_weekend =
        (0..=avail / 60).any(|h| local_time(world.start + (warm + h * 60) * 60, "eu-west-1").1);
    let slack = avail - (n - 1) * min_sep;
    let offset = rng.gen_range(0..nreg);
    let mut best = Vec::new();
    for attempt in 0..200 {
        let w: Vec<f64> = (0..=n).map(|_| rng.r#gen::<f64>() + 0.05).collect();
        let sum: f64 = w.iter().sum();
        let mut t = warm;
        let mut out = Vec::with_capacity(n as usize);
        for (i, kind) in kinds.iter().enumerate() {
            if i > 0 {
                t += min_sep;
            }
            t += (slack as f64 * w[i] / sum) as i64;
            // IAM is global (logged in us-east-1); other kinds alternate regions, and the two
            // anomalies of one kind land in different regions when there are several.
            let nth = kinds[..i].iter().filter(|k| *k == kind).count();
            let region = if *kind == AnomalyKind::IamBurst {
                world.iam_region
            } else {
                (offset + *kind as usize + nth) % nreg
            };
            out.push(Injection {
                kind: *kind,
                at: DateTime::from_timestamp(world.start + t * 60, 0).unwrap_or_default(),
                region: Some(opts.regions[region].clone()),
            });
        }
        let night = out.iter().any(|inj| {
            let r = inj.region.as_deref().unwrap_or("us-east-1");
            let (h, _) = local_time(inj.at.timestamp(), r);
            h < 6.0
        });
        let weekend = out.iter().any(|inj| {
            let r = inj.region.as_deref().unwrap_or("us-east-1");
            local_time(inj.at.timestamp(), r).1
        });
        best = out;
        if (night || n < 4) && (weekend || !window_has_weekend || n < 4) || attempt == 199 {
            break;
        }
    }
    best
}

pub(crate) fn plan_anomalies(world: &World, injections: &[Injection]) -> io::Result<Vec<Plan>> {
    let opts = world.opts;
    let mut sorted: Vec<&Injection> = injections.iter().collect();
    sorted.sort_by_key(|i| i.at);
    let mut plans = Vec::with_capacity(sorted.len());
    for (i, inj) in sorted.into_iter().enumerate() {
        let id = i + 1;
        let region = match &inj.region {
            Some(r) => opts.regions.iter().position(|x| x == r).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("injection region {r} is not one of the simulated regions"),
                )
            })?,
            None if inj.kind == AnomalyKind::IamBurst => world.iam_region,
            None => i % opts.regions.len(),
        };
        let at = inj.at.timestamp().div_euclid(60) * 60;
        if !world.contains(at) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "injection {}@{} is outside the simulated period ({} to {})",
                    inj.kind,
                    rfc3339(at),
                    rfc3339(world.start),
                    rfc3339(world.end())
                ),
            ));
        }
        let mut rng = StdRng::seed_from_u64(splitmix(
            opts.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ ((id as u64) << 8) ^ inj.kind as u64,
        ));
        let plan = match inj.kind {
            AnomalyKind::IamBurst => plan_iam_burst(world, id, region, at, &mut rng),
            AnomalyKind::ProvisioningSpike => plan_provisioning(world, id, region, at, &mut rng),
            AnomalyKind::ThrottlingStorm => plan_throttling(world, id, region, at, &mut rng),
            AnomalyKind::MaintenanceGap => plan_gap(world, id, region, at, &mut rng),
        };
        plans.push(plan);
    }
    Ok(plans)
}

fn plan_iam_burst(world: &World, id: usize, region: usize, at: i64, rng: &mut StdRng) -> Plan {
    const POOL: [&str; 6] = [
        "CreateUser",
        "CreateAccessKey",
        "AttachUserPolicy",
        "PutUserPolicy",
        "CreateLoginProfile",
        "AddUserToGroup",
    ];
    let k = rng.gen_range(1..=3usize);
    let names: Vec<&str> = POOL.choose_multiple(rng, k).copied().collect();
    let total = rng.gen_range((6 * k).max(15)..=60);
    let mut counts = vec![6usize; k];
    for _ in 0..total - 6 * k {
        counts[rng.gen_range(0..k)] += 1;
    }
    let min_c = counts.iter().copied().min().unwrap_or(6);
    let dur = rng.gen_range(1..=(min_c / 3).clamp(1, 5)) as i64;
    let who = *[Principal::OddUser, Principal::OddRole, Principal::OddAdmin]
        .choose(rng)
        .unwrap_or(&Principal::OddUser);
    let mut events = Vec::new();
    let mut keys = Vec::new();
    for (name, c) in names.iter().zip(&counts) {
        let api = api_index("iam", name);
        keys.push(LabelKey::calls(api));
        for _ in 0..*c {
            events.push(Ev::new(at + rng.gen_range(0..dur * 60), api, who, None));
        }
    }
    // A little reconnaissance around the burst (reads: not labelled).
    for _ in 0..rng.gen_range(2..=5) {
        let api = api_index(
            "iam",
            ["ListUsers", "GetUser", "ListAccessKeys"]
                .choose(rng)
                .unwrap_or(&"ListUsers"),
        );
        events.push(Ev::new(at + rng.gen_range(0..dur * 60), api, who, None));
    }
    let p = world.catalog.identity(who);
    Plan {
        id,
        kind: AnomalyKind::IamBurst,
        region,
        start: at,
        end: at + dur * 60,
        description: format!(
            "{total} IAM write calls ({}) by {} within {dur} min",
            names.join(", "),
            p.arn
        ),
        keys,
        events,
        gap: None,
    }
}

fn plan_provisioning(world: &World, id: usize, region: usize, at: i64, rng: &mut StdRng) -> Plan {
    let dur = rng.gen_range(10..=30i64);
    let rate: f64 = rng.gen_range(8.0..24.0);
    let fail = rng.gen_range(0.3..0.7);
    let err = if rng.gen_bool(0.5) {
        ErrorKind::InstanceLimit
    } else {
        ErrorKind::VcpuLimit
    };
    let volumes = rate >= 12.0 && rng.gen_bool(0.6);
    let vol_rate = rate * rng.gen_range(0.7..1.0);
    let who = *[Principal::Ci, Principal::Terraform, Principal::AutoScaling]
        .choose(rng)
        .unwrap_or(&Principal::Ci);
    let run = api_index("ec2", "RunInstances");
    let vol = api_index("ec2", "CreateVolume");
    let mut events = Vec::new();
    let (mut calls, mut failed) = (0u32, 0u32);
    for m in 0..dur {
        let n = poisson(rng, rate).max(if m == 0 { 3 } else { 0 });
        for _ in 0..n {
            let e = rng.gen_bool(fail).then_some(err);
            failed += u32::from(e.is_some());
            calls += 1;
            events.push(Ev::new(at + m * 60 + rng.gen_range(0..60), run, who, e));
        }
        if volumes {
            let n = poisson(rng, vol_rate).max(if m == 0 { 2 } else { 0 });
            for _ in 0..n {
                events.push(Ev::new(at + m * 60 + rng.gen_range(0..60), vol, who, None));
            }
        }
    }
    let mut keys = vec![LabelKey::calls(run), LabelKey::errors(run, err)];
    if volumes {
        keys.push(LabelKey::calls(vol));
    }
    let by = world.catalog.identity(who).arn_or_name();
    Plan {
        id,
        kind: AnomalyKind::ProvisioningSpike,
        region,
        start: at,
        end: at + dur * 60,
        description: format!(
            "{calls} RunInstances calls ({failed} failed with {}){} by {by} over {dur} min",
            err.code(&APIS[run as usize]),
            if volumes { " plus CreateVolume" } else { "" }
        ),
        keys,
        events,
        gap: None,
    }
}

fn plan_throttling(world: &World, id: usize, region: usize, at: i64, rng: &mut StdRng) -> Plan {
    let candidates: Vec<u16> = (0..APIS.len() as u16)
        .filter(|&i| APIS[i as usize].throttle > 0.0)
        .filter(|&i| APIS[i as usize].svc != "iam" || region == world.iam_region)
        .collect();
    let k = if rng.gen_bool(0.4) { 2 } else { 1 };
    let chosen: Vec<u16> = candidates.choose_multiple(rng, k).copied().collect();
    let dur = rng.gen_range(5..=20i64);
    let mut events = Vec::new();
    let mut keys = Vec::new();
    let mut parts = Vec::new();
    for &api in &chosen {
        let a = &APIS[api as usize];
        let callers: Vec<Principal> = a
            .callers
            .iter()
            .copied()
            .filter(|c| c.spec().kind != PKind::Service)
            .collect();
        let err_rate = rng.gen_range(8.0..30.0);
        let ok_share: f64 = rng.gen_range(0.1..0.4);
        let ok_rate = err_rate * ok_share / (1.0 - ok_share);
        let mut errs = 0u32;
        for m in 0..dur {
            let ne = poisson(rng, err_rate).max(if m == 0 { 4 } else { 0 });
            let no = poisson(rng, ok_rate);
            for j in 0..ne + no {
                let who = *callers.choose(rng).unwrap_or(&Principal::App);
                let e = (j < ne).then_some(ErrorKind::Throttled);
                errs += u32::from(e.is_some());
                events.push(Ev::new(at + m * 60 + rng.gen_range(0..60), api, who, e));
            }
        }
        keys.push(LabelKey::errors(api, ErrorKind::Throttled));
        parts.push(format!(
            "{errs} {} on {}:{}",
            throttle_code(a.svc),
            a.svc,
            a.name
        ));
    }
    Plan {
        id,
        kind: AnomalyKind::ThrottlingStorm,
        region,
        start: at,
        end: at + dur * 60,
        description: format!("{} over {dur} min", parts.join(" and ")),
        keys,
        events,
        gap: None,
    }
}

fn plan_gap(world: &World, id: usize, region: usize, at: i64, rng: &mut StdRng) -> Plan {
    let pick = |limit: i64| -> Vec<usize> {
        (0..world.jobs.len())
            .filter(|&j| world.jobs[j].period <= limit)
            .collect()
    };
    // Jobs running at least every 30 minutes: a 3-8 hour silence is then 6+ missed runs.
    let mut cands = pick(30);
    if cands.is_empty() {
        cands = (0..world.jobs.len()).collect();
    }
    let j = *cands.choose(rng).unwrap_or(&0);
    let job = &world.jobs[j];
    let dur = rng.gen_range(180..=480i64);
    let g = (at - world.start).div_euclid(60);
    let p = job.phase[region];
    let first_at_or_after = |m: i64| -> i64 {
        if m <= p {
            p
        } else {
            p + (m - p + job.period - 1).div_euclid(job.period) * job.period
        }
    };
    let n0 = first_at_or_after(g);
    let n1 = first_at_or_after(g + dur).max(n0 + job.period);
    let a = &APIS[job.api as usize];
    Plan {
        id,
        kind: AnomalyKind::MaintenanceGap,
        region,
        start: world.start + n0 * 60,
        // The first resumed call may come up to a minute early (jitter).
        end: world.start + (n1 - 1) * 60,
        description: format!(
            "periodic {}:{} (every {} min) silent for {} min",
            a.svc,
            a.name,
            job.period,
            n1 - n0
        ),
        keys: vec![LabelKey::calls(job.api)],
        events: Vec::new(),
        gap: Some((j, n0, n1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    use trailsight::series::InsightType;

    use crate::labels::Labels;
    use crate::options::{Injections, parse_injection};
    use crate::simulate::simulate;
    use crate::testing::*;

    #[test]
    fn labels_cover_explicit_injections() {
        let d = TempDir::new("labels");
        let mut o = opts(&d.0, 3, &["us-east-1", "eu-west-1"], 11);
        let start = o.start;
        let specs = [
            "iam-burst@1d10h",
            "provisioning-spike@1d20h@eu-west-1",
            "throttling-storm@2d3h",
            "maintenance-gap@1d12h@eu-west-1",
        ];
        let inj: Vec<Injection> = specs
            .iter()
            .map(|s| parse_injection(s, start).unwrap())
            .collect();
        o.injections = Injections::Explicit(inj.clone());
        let rep = simulate(&o).unwrap();
        assert_eq!(rep.anomalies, 4);
        let labels = Labels::read(&rep.labels).unwrap();
        assert_eq!(labels.days, 3);
        assert_eq!(labels.seed, 11);
        assert_eq!(labels.start.timestamp(), ts("2026-03-02T00:00:00Z"));
        assert_eq!(labels.end.timestamp(), ts("2026-03-05T00:00:00Z"));
        assert!(labels.series_days > 100);
        assert_eq!(labels.anomalies.len(), 4);
        let counts = minute_counts(&d.0);
        for (i, a) in labels.anomalies.iter().enumerate() {
            assert_eq!(a.id, i + 1);
            assert_eq!(a.account, "111122223333");
            let kind = a.kind;
            let injected = inj.iter().find(|x| x.kind == kind).unwrap();
            let (s, e) = (a.start.timestamp(), a.end.timestamp());
            assert!(e > s);
            let region = a.region.as_str();
            match &injected.region {
                Some(r) => assert_eq!(r, region),
                None if kind == AnomalyKind::IamBurst => assert_eq!(region, "us-east-1"),
                None => {}
            }
            if kind == AnomalyKind::MaintenanceGap {
                assert!(s >= injected.at.timestamp() && s < injected.at.timestamp() + 3600);
                assert!((3 * 3600..=8 * 3600 + 3600).contains(&(e - s)));
            } else {
                assert_eq!(s, injected.at.timestamp());
            }
            let keys = &a.keys;
            assert!(!keys.is_empty());
            if kind == AnomalyKind::ProvisioningSpike {
                assert!(
                    keys.iter()
                        .any(|k| k.insight_type == InsightType::ApiCallRateInsight)
                );
                assert!(keys.iter().any(|k| {
                    k.insight_type == InsightType::ApiErrorRateInsight
                        && k.error_code.as_deref().unwrap().starts_with("Client.")
                }));
            }
            for k in keys {
                let what = k.error_code.as_deref().unwrap_or("call").to_string();
                if k.insight_type == InsightType::ApiErrorRateInsight {
                    assert_ne!(what, "call");
                }
                let key = (
                    region.to_string(),
                    k.event_source.clone(),
                    k.event_name.clone(),
                    what,
                );
                let per_min = counts.get(&key).cloned().unwrap_or_default();
                let (sm, em) = (s / 60, e / 60);
                let inside: Vec<u32> = (sm..em)
                    .map(|m| per_min.get(&m).copied().unwrap_or(0))
                    .collect();
                let outside_peak = per_min
                    .iter()
                    .filter(|(m, _)| **m < sm - 60 || **m >= em + 60)
                    .map(|(_, c)| *c)
                    .max()
                    .unwrap_or(0);
                if kind == AnomalyKind::MaintenanceGap {
                    assert_eq!(
                        inside.iter().sum::<u32>(),
                        0,
                        "{key:?} called during its gap"
                    );
                    let before = per_min.range(sm - 180..sm).map(|(_, c)| *c).sum::<u32>();
                    assert!(before >= 3, "{key:?} not periodic before the gap");
                } else {
                    let peak = inside.iter().copied().max().unwrap_or(0);
                    assert!(
                        peak >= 4 * outside_peak.max(1),
                        "{key:?}: anomaly peak {peak}, usual peak {outside_peak}"
                    );
                }
                if kind == AnomalyKind::IamBurst {
                    assert!(e - s <= 300);
                    assert!(inside.iter().sum::<u32>() >= 6, "{key:?}");
                }
            }
        }
    }

    #[test]
    fn default_placement() {
        for seed in 1..=25 {
            let d = std::env::temp_dir();
            let o = opts(&d, 9, &["us-east-1", "eu-west-1"], seed);
            let world = World::new(&o);
            let inj = default_injections(&world);
            assert_eq!(inj.len(), 8, "seed {seed}");
            for k in AnomalyKind::ALL {
                assert_eq!(inj.iter().filter(|i| i.kind == k).count(), 2, "seed {seed}");
                let regions: BTreeSet<_> = inj
                    .iter()
                    .filter(|i| i.kind == k)
                    .map(|i| i.region.clone())
                    .collect();
                if k != AnomalyKind::IamBurst {
                    assert_eq!(regions.len(), 2, "seed {seed}: {k} in one region");
                }
            }
            let start = o.start.timestamp();
            let end = start + 9 * 86_400;
            let mut times: Vec<i64> = inj.iter().map(|i| i.at.timestamp()).collect();
            times.sort_unstable();
            assert!(times[0] >= start + 2 * 86_400);
            assert!(*times.last().unwrap() <= end - 9 * 3600);
            assert!(
                times.windows(2).all(|w| w[1] - w[0] >= 6 * 3600),
                "seed {seed}"
            );
            let night = inj
                .iter()
                .any(|i| local_time(i.at.timestamp(), i.region.as_deref().unwrap()).0 < 6.0);
            let weekend = inj
                .iter()
                .any(|i| local_time(i.at.timestamp(), i.region.as_deref().unwrap()).1);
            assert!(night && weekend, "seed {seed}");
        }
        let d = std::env::temp_dir();
        let a = default_injections(&World::new(&opts(&d, 9, &["us-east-1"], 1)));
        let b = default_injections(&World::new(&opts(&d, 9, &["us-east-1"], 2)));
        assert_ne!(a, b);
        // Short runs get fewer anomalies, never before the warm-up.
        let short = opts(&d, 1, &["us-east-1"], 1);
        let inj = default_injections(&World::new(&short));
        assert!(!inj.is_empty() && inj.len() < 8);
        assert!(inj.iter().all(|i| i.at > short.start));
    }
}
