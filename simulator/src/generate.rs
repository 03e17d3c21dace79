//! Per-region traffic: background calls, periodic jobs, anomalies and routine changes, then
//! delivery into five-minute files.

use std::collections::BTreeSet;
use std::io;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::anomalies::Plan;
use crate::catalog::apis::{APIS, Group};
use crate::catalog::errors::background_error;
use crate::catalog::principals::Principal;
use crate::changes::Change;
use crate::labels::ChangeKind;
use crate::principal_cases::{Case, ONE_REGION_PRINCIPAL};
use crate::random::{poisson, splitmix};
use crate::render::FileWriter;
use crate::time::local_time;
use crate::world::{Ev, World};

pub(crate) struct RegionOut {
    pub(crate) files: usize,
    pub(crate) records: u64,
    pub(crate) keys: BTreeSet<u16>,
    /// Principal scenarios: (principal, day) pairs with calls by a principal with an ARN.
    pub(crate) principal_days: BTreeSet<(usize, i64)>,
}

const RECORDS_PER_DAY: f64 = 39_000.0;
pub(crate) const BUSINESS_SHARE: f64 = 0.62;

pub(crate) fn gen_region(
    world: &World,
    ri: usize,
    plans: &[Plan],
    changes: &[Change],
    cases: &[Case],
) -> io::Result<RegionOut> {
    let opts = world.opts;
    let region = opts.regions[ri].as_str();
    let mut rng = StdRng::seed_from_u64(splitmix(opts.seed ^ splitmix(ri as u64 + 1) ^ 0x6267));
    let factor = rng.gen_range(0.9..1.1);
    let weekend_business = rng.gen_range(0.3..0.45);

    // Background: two groups of APIs with their own daily and weekly shapes.
    let eligible = |g: Group| -> (Vec<f64>, Vec<u16>) {
        let mut cum = Vec::new();
        let mut idx = Vec::new();
        let mut acc = 0.0;
        for (i, a) in APIS.iter().enumerate() {
            if a.group == g && a.w > 0.0 && (a.svc != "iam" || ri == world.iam_region) {
                acc += a.w;
                cum.push(acc);
                idx.push(i as u16);
            }
        }
        (cum, idx)
    };
    let groups = [
        (Group::Business, BUSINESS_SHARE),
        (Group::Steady, 1.0 - BUSINESS_SHARE),
    ];
    let mut shapes: Vec<Vec<f64>> = Vec::new();
    for (g, _) in groups {
        let v: Vec<f64> = (0..world.minutes)
            .map(|m| {
                let (h, weekend) = local_time(world.start + m * 60 + 30, region);
                let bump = (-((h - 14.0) / 3.5).powi(2)).exp();
                match g {
                    Group::Business => {
                        (0.1 + 0.9 * bump) * if weekend { weekend_business } else { 1.0 }
                    }
                    _ => (0.55 + 0.45 * bump) * if weekend { 0.6 } else { 1.0 },
                }
            })
            .collect();
        shapes.push(v);
    }
    let mut events: Vec<Ev> =
        Vec::with_capacity((RECORDS_PER_DAY * 1.15 * f64::from(opts.days)) as usize);
    let tables: Vec<(Vec<f64>, Vec<u16>, f64)> = groups
        .iter()
        .zip(&shapes)
        .map(|((g, share), shape)| {
            let (cum, idx) = eligible(*g);
            let sum: f64 = shape.iter().sum();
            let target = RECORDS_PER_DAY * f64::from(opts.days) * factor * share;
            (cum, idx, if sum > 0.0 { target / sum } else { 0.0 })
        })
        .collect();
    for m in 0..world.minutes {
        for (gi, (cum, idx, base)) in tables.iter().enumerate() {
            let total_w = match cum.last() {
                Some(w) => *w,
                None => continue,
            };
            let n = poisson(&mut rng, base * shapes[gi][m as usize]);
            for _ in 0..n {
                let r = rng.r#gen::<f64>() * total_w;
                let pos = cum.partition_point(|c| *c <= r).min(idx.len() - 1);
                let api = idx[pos];
                let a = &APIS[api as usize];
                let who = a.callers[rng.gen_range(0..a.callers.len())];
                let t = world.start + m * 60 + rng.gen_range(0..60);
                let err = background_error(a, who, &mut rng);
                events.push(Ev::new(t, api, who, err));
            }
        }
    }

    // Periodic maintenance jobs.
    for (j, job) in world.jobs.iter().enumerate() {
        let mut n = job.phase[ri];
        while n < world.minutes {
            let silent = plans.iter().any(|p| {
                p.region == ri && matches!(p.gap, Some((pj, a, b)) if pj == j && n >= a && n < b)
            });
            if !silent {
                let mut t = world.start + n * 60 + rng.gen_range(-60..=60);
                for _ in 0..job.calls {
                    if t >= world.start {
                        events.push(Ev::new(t, job.api, Principal::Maintenance, None));
                    }
                    t += rng.gen_range(1..20);
                }
            }
            n += job.period;
        }
    }

    // Anomalies.
    for p in plans.iter().filter(|p| p.region == ri) {
        events.extend(p.events.iter().filter(|e| world.contains(e.t)));
    }

    // Routine changes, drawn from their own generator (without them, the output is unchanged).
    let mut crng = StdRng::seed_from_u64(splitmix(opts.seed ^ splitmix(ri as u64 + 1) ^ 0x6368));
    for c in changes.iter().filter(|c| c.region == ri) {
        events.extend(c.events.iter().filter(|e| world.contains(e.t)));
        if c.kind != ChangeKind::RateStep {
            continue;
        }
        // The key's share of its group's rate, times (factor - 1), on top of the background.
        let a = &APIS[c.api as usize];
        let Some(gi) = groups.iter().position(|(g, _)| *g == a.group) else {
            continue;
        };
        let (cum, _, base) = &tables[gi];
        let total_w = cum.last().copied().unwrap_or(0.0);
        if total_w <= 0.0 {
            continue;
        }
        let first = (c.from - world.start).div_euclid(60).max(0);
        for m in first..world.minutes {
            let lambda = (c.factor - 1.0) * base * shapes[gi][m as usize] * a.w / total_w;
            for _ in 0..poisson(&mut crng, lambda) {
                let who = a.callers[crng.gen_range(0..a.callers.len())];
                let t = world.start + m * 60 + crng.gen_range(0..60);
                events.push(Ev::new(t, c.api, who, background_error(a, who, &mut crng)));
            }
        }
    }

    // Principal scenarios: one principal's background stays in the IAM region (a region can be
    // new to it), and the cases' events are added (without them, the output is unchanged).
    if opts.principals {
        if ri != world.iam_region {
            events.retain(|e| e.who != ONE_REGION_PRINCIPAL);
        }
        for c in cases.iter().filter(|c| c.region == ri) {
            events.extend(c.events.iter().filter(|e| world.contains(e.t)));
        }
    }
    let mut principal_days = BTreeSet::new();
    if opts.principals {
        for e in &events {
            if !world.catalog.identity(e.who).arn.is_empty() {
                principal_days.insert((e.who as usize, (e.t - world.start).div_euclid(86_400)));
            }
        }
    }

    let mut keys = BTreeSet::new();
    for e in &events {
        if e.err.is_some() || !APIS[e.api as usize].ro {
            keys.insert(e.api);
        }
    }

    // Delivery: a file every 5 minutes per region (phase per region); records 1-15 min late.
    let phase = rng.gen_range(0..5i64);
    let base = world.start + phase * 60;
    for e in events.iter_mut() {
        let k1 = (e.t + 60 - base + 299).div_euclid(300).max(0);
        let r: f64 = rng.r#gen();
        let k = if r < 0.70 {
            k1
        } else if r < 0.97 || base + 300 * (k1 + 2) - e.t > 900 {
            k1 + 1
        } else {
            k1 + 2
        };
        e.slot = k as u32;
    }
    events.sort_by_key(|e| (e.slot, e.t));

    let mut out = RegionOut {
        files: 0,
        records: 0,
        keys,
        principal_days,
    };
    let mut writer = FileWriter::new(world, ri);
    let mut i = 0;
    while i < events.len() {
        let slot = events[i].slot;
        let mut j = i;
        while j < events.len() && events[j].slot == slot {
            j += 1;
        }
        let group = &events[i..j];
        let delivery = base + 300 * i64::from(slot);
        if group.len() >= 2 && rng.gen_bool(0.03) {
            let (a, b): (Vec<Ev>, Vec<Ev>) = group.iter().partition(|_| rng.gen_bool(0.5));
            for part in [a, b] {
                if !part.is_empty() {
                    out.records += writer.write_file(delivery, &part, &mut rng)?;
                    out.files += 1;
                }
            }
        } else {
            out.records += writer.write_file(delivery, group, &mut rng)?;
            out.files += 1;
        }
        i = j;
    }
    Ok(out)
}
