//! The world a scenario runs in: its options, period and catalog, the periodic maintenance jobs,
//! and the events everything else produces.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::catalog::Catalog;
use crate::catalog::apis::api_index;
use crate::catalog::errors::ErrorKind;
use crate::catalog::principals::Principal;
use crate::options::SimulateOptions;
use crate::time::tz_offset_hours;

/// Maintenance job templates: (svc, name, allowed periods in minutes).
pub(crate) const JOB_POOL: &[(&str, &str, &[i64])] = &[
    ("ssm", "PutParameter", &[5, 10, 15]),
    ("ec2", "CreateSnapshot", &[30, 60]),
    ("lambda", "UpdateFunctionConfiguration20150331v2", &[15, 30]),
    ("backup", "StartBackupJob", &[60]),
    ("logs", "PutRetentionPolicy", &[10, 15, 30]),
    ("monitoring", "PutMetricAlarm", &[5, 10]),
    ("rds", "CreateDBSnapshot", &[60]),
    ("ec2", "DeleteSnapshot", &[30, 60]),
];

pub(crate) struct Job {
    pub(crate) api: u16,
    pub(crate) period: i64,
    /// Phase in minutes, per region.
    pub(crate) phase: Vec<i64>,
    pub(crate) calls: u32,
}

pub(crate) struct World<'a> {
    pub(crate) opts: &'a SimulateOptions,
    /// Unix seconds of the first minute.
    pub(crate) start: i64,
    pub(crate) minutes: i64,
    pub(crate) catalog: Catalog,
    pub(crate) jobs: Vec<Job>,
    pub(crate) iam_region: usize,
}

impl<'a> World<'a> {
    pub(crate) fn new(opts: &'a SimulateOptions) -> World<'a> {
        World {
            opts,
            start: opts.start.timestamp().div_euclid(60) * 60,
            minutes: i64::from(opts.days) * 1440,
            catalog: Catalog::build(opts.seed, &opts.account),
            jobs: choose_jobs(opts.seed, opts.regions.len()),
            iam_region: iam_region(&opts.regions),
        }
    }

    /// Unix seconds of the end of the scenario (exclusive).
    pub(crate) fn end(&self) -> i64 {
        self.start + self.minutes * 60
    }

    /// Whether `t` (Unix seconds) is within the scenario.
    pub(crate) fn contains(&self, t: i64) -> bool {
        t >= self.start && t < self.end()
    }
}

fn iam_region(regions: &[String]) -> usize {
    regions.iter().position(|r| r == "us-east-1").unwrap_or(0)
}

pub(crate) fn choose_jobs(seed: u64, nregions: usize) -> Vec<Job> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x6a6f_6273);
    let n = rng.gen_range(4..=6);
    let mut pool: Vec<usize> = (0..JOB_POOL.len()).collect();
    pool.shuffle(&mut rng);
    let mut chosen: Vec<usize> = pool.into_iter().take(n).collect();
    chosen.sort_unstable();
    let mut periods: Vec<i64> = chosen
        .iter()
        .map(|&i| *JOB_POOL[i].2.choose(&mut rng).unwrap_or(&15))
        .collect();
    // At least one fast job (period <= 15 min), so that a gap is clearly visible.
    if !periods.iter().any(|&p| p <= 15) {
        match chosen
            .iter()
            .position(|&i| JOB_POOL[i].2.iter().any(|&p| p <= 15))
        {
            Some(j) => periods[j] = JOB_POOL[chosen[j]].2.iter().copied().min().unwrap_or(15),
            None => {
                chosen[0] = 0;
                periods[0] = 10;
            }
        }
    }
    chosen
        .into_iter()
        .zip(periods)
        .map(|(i, period)| {
            let (svc, name, _) = JOB_POOL[i];
            Job {
                api: api_index(svc, name),
                period,
                phase: (0..nregions).map(|_| rng.gen_range(0..period)).collect(),
                calls: if rng.gen_bool(0.3) { 2 } else { 1 },
            }
        })
        .collect()
}

/// One API call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ev {
    /// Unix seconds.
    pub(crate) t: i64,
    /// Index in `APIS`.
    pub(crate) api: u16,
    pub(crate) who: Principal,
    /// `None`: the call succeeded.
    pub(crate) err: Option<ErrorKind>,
    /// Delivery slot (five-minute file), set at delivery.
    pub(crate) slot: u32,
    /// How the caller made it, among the ways its principal has.
    pub(crate) via: Via,
    /// `AssumeRole`: the role asked for (`None`: one of the caller's usual roles).
    pub(crate) role: Option<&'static str>,
}

/// How a call was made: any of the principal's user agents, or only its console (a browser,
/// `sessionCredentialFromConsole`) or only its programmatic ones (CLI, SDKs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    Any,
    Console,
    Program,
}

impl Ev {
    pub(crate) fn new(t: i64, api: u16, who: Principal, err: Option<ErrorKind>) -> Ev {
        Ev {
            t,
            api,
            who,
            err,
            slot: 0,
            via: Via::Any,
            role: None,
        }
    }

    pub(crate) fn via(self, via: Via) -> Ev {
        Ev { via, ..self }
    }

    pub(crate) fn role(self, role: &'static str) -> Ev {
        Ev {
            role: Some(role),
            ..self
        }
    }
}

/// Unix seconds of `local_hour` (fractional) on scenario day `day` in `region`.
pub(crate) fn at_local(world: &World, day: i64, local_hour: f64, region: &str) -> i64 {
    let utc_hour = local_hour - tz_offset_hours(region);
    let t = world.start + day * 86_400 + (utc_hour * 3600.0) as i64;
    t.div_euclid(60) * 60
}
