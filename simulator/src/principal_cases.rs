//! Principal scenarios (`SimulateOptions::principals`): attacks made of reads by a principal that
//! already works in the account, and benign look-alikes, for the per-principal insights. Drawn
//! from their own generator: without `principals`, the output is unchanged.
//!
//! Attacks (from day 4, after a principal's 3-day warm-up): secret harvesting
//! (`GetSecretValue` in bulk), an enumeration burst of reads across services, a region the
//! principal never used, role chaining (`AssumeRole` in bulk). Look-alikes: console sessions
//! (daily, larger some days), CI runs (every few hours, reads across services), a new engineer's
//! first days, a team adopting a service it never used.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::catalog::apis::api_index;
use crate::catalog::errors::ErrorKind;
use crate::catalog::principals::Principal;
use crate::labels::PrincipalCaseKind;
use crate::options::Injections;
use crate::random::splitmix;
use crate::render::{CI_ROLES, OTHER_ROLES, ROLES};
use crate::world::{Ev, Via, World, at_local};

/// The CI role's own role (it does not assume itself).
const CI_OWN_ROLE: &str = "github-actions-deploy";

/// The role a new environment brings to the CI role's deploys (a CI look-alike).
const NEW_ENVIRONMENT_ROLE: &str = "orders-api-staging-deploy";

/// A planned principal case: its events and its label.
pub(crate) struct Case {
    pub(crate) id: usize,
    pub(crate) kind: PrincipalCaseKind,
    pub(crate) region: usize,
    pub(crate) who: Principal,
    /// Unix seconds; end exclusive.
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) events: Vec<Ev>,
    pub(crate) description: String,
}

/// The principal whose background is kept to one region (the IAM region) under principal
/// scenarios, so that a region can be new to it.
pub(crate) const ONE_REGION_PRINCIPAL: Principal = Principal::Carol;

/// Reads a person at the console or a script makes, per service.
const READS: [(&str, &[&str]); 7] = [
    (
        "ec2",
        &[
            "DescribeInstances",
            "DescribeSecurityGroups",
            "DescribeSubnets",
            "DescribeVpcs",
            "DescribeVolumes",
        ],
    ),
    (
        "s3",
        &["ListBuckets", "GetBucketLocation", "GetBucketPolicy"],
    ),
    (
        "iam",
        &[
            "ListRoles",
            "GetRole",
            "ListUsers",
            "ListAttachedRolePolicies",
        ],
    ),
    (
        "lambda",
        &["ListFunctions20150331", "GetFunction20150331v2"],
    ),
    ("logs", &["DescribeLogGroups", "DescribeLogStreams"]),
    ("monitoring", &["DescribeAlarms", "GetMetricStatistics"]),
    ("dynamodb", &["ListTables", "DescribeTable"]),
];

fn reads_of(svc: &str) -> &'static [&'static str] {
    READS
        .iter()
        .find(|(s, _)| *s == svc)
        .map(|(_, names)| *names)
        .unwrap_or(&[])
}

/// `n` calls spread over `[at, at + minutes)`, of APIs drawn from `names` of `svc`, made `via`.
#[allow(clippy::too_many_arguments)]
fn calls(
    rng: &mut StdRng,
    who: Principal,
    via: Via,
    svc: &str,
    names: &[&str],
    at: i64,
    minutes: i64,
    n: u32,
) -> Vec<Ev> {
    (0..n)
        .map(|_| {
            let name = names.choose(rng).copied().unwrap_or("ListBuckets");
            Ev::new(
                at + rng.gen_range(0..minutes.max(1) * 60),
                api_index(svc, name),
                who,
                None,
            )
            .via(via)
        })
        .collect()
}

fn is_weekday(world: &World, day: i64, region: &str) -> bool {
    !crate::time::local_time(at_local(world, day, 12.0, region), region).1
}

pub(crate) fn plan_principal_cases(world: &World) -> Vec<Case> {
    let opts = world.opts;
    // A quiet scenario keeps no case (its principal-days still count, for the false rate).
    if !opts.principals || opts.days < 6 || opts.injections == Injections::None {
        return Vec::new();
    }
    let mut rng = StdRng::seed_from_u64(splitmix(opts.seed ^ 0x7072_696e));
    let days = i64::from(opts.days);
    let home = world.iam_region;
    let home_name = opts.regions[home].clone();
    let other = (0..opts.regions.len()).find(|r| *r != home);
    let mut cases: Vec<Case> = Vec::new();
    // Attack days: 4 .. days-1, distinct where possible.
    let mut attack_days: Vec<i64> = (4..days - 1).collect();
    attack_days.shuffle(&mut rng);
    let day = |i: usize| {
        attack_days
            .get(i % attack_days.len().max(1))
            .copied()
            .unwrap_or(4)
    };
    let hour = |rng: &mut StdRng| rng.gen_range(1.0..22.0);

    // Secret harvesting: a principal that reads no secrets (Carol) or one that reads some (the
    // app), GetSecretValue in bulk for a few minutes.
    {
        let who = *[Principal::Carol, Principal::App]
            .choose(&mut rng)
            .unwrap_or(&Principal::Carol);
        let at = at_local(world, day(0), hour(&mut rng), &home_name).div_euclid(60) * 60;
        let minutes = rng.gen_range(3..=8);
        let n = rng.gen_range(40..=120);
        let mut events = calls(
            &mut rng,
            who,
            Via::Program,
            "secretsmanager",
            &["GetSecretValue"],
            at,
            minutes,
            n,
        );
        let described = rng.gen_range(3..=10);
        events.extend(calls(
            &mut rng,
            who,
            Via::Program,
            "secretsmanager",
            &["DescribeSecret"],
            at,
            minutes,
            described,
        ));
        cases.push(Case {
            id: 0,
            kind: PrincipalCaseKind::SecretHarvest,
            region: home,
            who,
            start: at,
            end: at + minutes * 60,
            events,
            description: format!("{n} GetSecretValue in {minutes} min by {who:?}"),
        });
    }
    // Enumeration: reads across 4-6 services, one after the other, 12-40 calls each.
    {
        let who = *[Principal::Bob, Principal::Ci]
            .choose(&mut rng)
            .unwrap_or(&Principal::Bob);
        let at = at_local(world, day(1), hour(&mut rng), &home_name).div_euclid(60) * 60;
        let mut services: Vec<&str> = READS.iter().map(|(s, _)| *s).collect();
        services.shuffle(&mut rng);
        let k = rng.gen_range(4..=6);
        let mut t = at;
        let mut events = Vec::new();
        for svc in services.iter().take(k) {
            let minutes = rng.gen_range(1..=3);
            let n = rng.gen_range(12..=40);
            events.extend(calls(
                &mut rng,
                who,
                Via::Program,
                svc,
                reads_of(svc),
                t,
                minutes,
                n,
            ));
            t += minutes * 60;
        }
        cases.push(Case {
            id: 0,
            kind: PrincipalCaseKind::Enumeration,
            region: home,
            who,
            start: at,
            end: t,
            events,
            description: format!("reads across {} by {who:?}", services[..k].join(", ")),
        });
    }
    // A region the principal never used: Carol, whose background stays in the IAM region.
    if let Some(other) = other {
        let who = ONE_REGION_PRINCIPAL;
        let region_name = opts.regions[other].clone();
        let at = at_local(world, day(2), hour(&mut rng), &region_name).div_euclid(60) * 60;
        let minutes = rng.gen_range(2..=10);
        let n = rng.gen_range(6..=30);
        let events = calls(
            &mut rng,
            who,
            Via::Program,
            "ec2",
            reads_of("ec2"),
            at,
            minutes,
            n,
        );
        cases.push(Case {
            id: 0,
            kind: PrincipalCaseKind::NewRegion,
            region: other,
            who,
            start: at,
            end: at + minutes * 60,
            events,
            description: format!("{n} EC2 reads in {region_name} by {who:?}, never there before"),
        });
    }
    // Role chaining: the CI role assumes roles in bulk, the roles it uses and 2-5 others of the
    // account (found with ListRoles), most of which do not trust it (AccessDenied).
    {
        let who = Principal::Ci;
        let at = at_local(world, day(3), hour(&mut rng), &home_name).div_euclid(60) * 60;
        let minutes = rng.gen_range(2..=6);
        let n = rng.gen_range(30..=90);
        let mut others: Vec<&'static str> = ROLES
            .iter()
            .chain(OTHER_ROLES)
            .copied()
            .filter(|r| !CI_ROLES.contains(r) && *r != CI_OWN_ROLE)
            .collect();
        others.shuffle(&mut rng);
        others.truncate(rng.gen_range(2..=5));
        let tried: Vec<&'static str> = CI_ROLES.iter().copied().chain(others).collect();
        let listed = rng.gen_range(1..=3);
        let mut events = calls(
            &mut rng,
            who,
            Via::Program,
            "iam",
            &["ListRoles"],
            at,
            1,
            listed,
        );
        for ev in calls(
            &mut rng,
            who,
            Via::Program,
            "sts",
            &["AssumeRole"],
            at,
            minutes,
            n,
        ) {
            let role = tried.choose(&mut rng).copied().unwrap_or(CI_ROLES[0]);
            let mut ev = ev.role(role);
            if !CI_ROLES.contains(&role) && rng.gen_bool(0.8) {
                ev.err = Some(ErrorKind::Denied);
            }
            events.push(ev);
        }
        cases.push(Case {
            id: 0,
            kind: PrincipalCaseKind::RoleChaining,
            region: home,
            who,
            start: at,
            end: at + minutes * 60,
            events,
            description: format!("{n} AssumeRole in {minutes} min by {who:?}"),
        });
    }

    // Look-alikes. Console sessions: Alice, working days, one or two sessions of 10-60 reads in
    // 5-25 minutes; now and then a long one (80-150 reads).
    {
        let who = Principal::Alice;
        let mut events = Vec::new();
        for d in 0..days {
            if !is_weekday(world, d, &home_name) {
                continue;
            }
            for _ in 0..rng.gen_range(1..=2) {
                let at = at_local(world, d, rng.gen_range(8.5..18.0), &home_name);
                let minutes = rng.gen_range(5..=25);
                let long = rng.gen_bool(0.15);
                let n = if long {
                    rng.gen_range(80..=150)
                } else {
                    rng.gen_range(10..=60)
                };
                let svc = ["ec2", "logs", "monitoring", "lambda", "s3"]
                    .choose(&mut rng)
                    .copied()
                    .unwrap_or("ec2");
                events.extend(calls(
                    &mut rng,
                    who,
                    Via::Console,
                    svc,
                    reads_of(svc),
                    at,
                    minutes,
                    n,
                ));
            }
        }
        cases.push(benign(
            world,
            PrincipalCaseKind::ConsoleSession,
            home,
            who,
            0,
            events,
            "console sessions on working days",
        ));
    }
    // CI runs: every 3 hours on working days from 08:00, 20-80 reads across ECR, Lambda, IAM, STS;
    // from a day between 3 and 6, a new environment's role too.
    {
        let who = Principal::Ci;
        let new_environment = rng.gen_range(3..=6);
        let mut events = Vec::new();
        for d in 0..days {
            if !is_weekday(world, d, &home_name) {
                continue;
            }
            for h in [8.0, 11.0, 14.0, 17.0] {
                let at = at_local(world, d, h + rng.gen_range(0.0..0.5), &home_name);
                let n = rng.gen_range(20..=80);
                let minutes = rng.gen_range(2..=5);
                let mix: [(&str, &[&str]); 4] = [
                    ("ecr", &["DescribeRepositories", "GetAuthorizationToken"]),
                    (
                        "lambda",
                        &[
                            "GetFunction20150331v2",
                            "GetFunctionConfiguration20150331v2",
                        ],
                    ),
                    ("iam", &["GetRole"]),
                    ("sts", &["GetCallerIdentity"]),
                ];
                for (svc, names) in mix {
                    events.extend(calls(
                        &mut rng,
                        who,
                        Via::Any,
                        svc,
                        names,
                        at,
                        minutes,
                        n / 4,
                    ));
                }
                // From a day between 3 and 6, the pipeline deploys to a new environment too:
                // one role it never assumed, then in every run.
                if d >= new_environment {
                    let assumed = rng.gen_range(1..=3);
                    events.extend(
                        calls(
                            &mut rng,
                            who,
                            Via::Program,
                            "sts",
                            &["AssumeRole"],
                            at,
                            minutes,
                            assumed,
                        )
                        .into_iter()
                        .map(|ev| ev.role(NEW_ENVIRONMENT_ROLE)),
                    );
                }
            }
        }
        cases.push(benign(
            world,
            PrincipalCaseKind::CiRun,
            home,
            who,
            0,
            events,
            "CI runs every 3 hours on working days, a new environment's role from a day",
        ));
    }
    // A new engineer: from a day between 3 and 5, console sessions across services, a few
    // parameter and secret reads on the first day.
    {
        let who = Principal::Newcomer;
        let first = rng.gen_range(3..=5).min(days - 1);
        let mut events = Vec::new();
        for d in first..days {
            for _ in 0..rng.gen_range(1..=3) {
                let at = at_local(world, d, rng.gen_range(9.0..17.5), &home_name);
                let svc = READS.choose(&mut rng).map(|(s, _)| *s).unwrap_or("ec2");
                let n = rng.gen_range(10..=50);
                let minutes = rng.gen_range(5..=20);
                events.extend(calls(
                    &mut rng,
                    who,
                    Via::Console,
                    svc,
                    reads_of(svc),
                    at,
                    minutes,
                    n,
                ));
            }
            if d == first {
                let at = at_local(world, d, 11.0, &home_name);
                events.extend(calls(
                    &mut rng,
                    who,
                    Via::Console,
                    "secretsmanager",
                    &["GetSecretValue"],
                    at,
                    10,
                    3,
                ));
                events.extend(calls(
                    &mut rng,
                    who,
                    Via::Console,
                    "ssm",
                    &["GetParameter"],
                    at,
                    10,
                    4,
                ));
            }
        }
        cases.push(benign(
            world,
            PrincipalCaseKind::NewEngineer,
            home,
            who,
            first,
            events,
            "a new engineer from their first day",
        ));
    }
    // A team adopts a service: Bob starts using DynamoDB from a day between 2 and 5, sessions of
    // 8-30 reads on working days.
    {
        let who = Principal::Bob;
        let first = rng.gen_range(2..=5).min(days - 1);
        let mut events = Vec::new();
        for d in first..days {
            if !is_weekday(world, d, &home_name) && d != first {
                continue;
            }
            let at = at_local(world, d, rng.gen_range(9.0..17.0), &home_name);
            let n = rng.gen_range(8..=30);
            let minutes = rng.gen_range(3..=15);
            events.extend(calls(
                &mut rng,
                who,
                Via::Any,
                "dynamodb",
                reads_of("dynamodb"),
                at,
                minutes,
                n,
            ));
        }
        cases.push(benign(
            world,
            PrincipalCaseKind::NewService,
            home,
            who,
            first,
            events,
            "DynamoDB adopted by Bob",
        ));
    }
    cases.sort_by_key(|c| (c.start, c.kind));
    for (i, case) in cases.iter_mut().enumerate() {
        case.id = i + 1;
    }
    cases
}

/// A look-alike over the days it runs: from `first_day` to the end of the scenario.
fn benign(
    world: &World,
    kind: PrincipalCaseKind,
    region: usize,
    who: Principal,
    first_day: i64,
    events: Vec<Ev>,
    description: &str,
) -> Case {
    let start = events
        .iter()
        .map(|e| e.t)
        .min()
        .unwrap_or(world.start + first_day * 86_400);
    Case {
        id: 0,
        kind,
        region,
        who,
        start: start.div_euclid(60) * 60,
        end: world.end(),
        events,
        description: description.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::SimulateOptions;
    use std::collections::BTreeSet;

    #[test]
    fn four_attacks_after_the_warm_up_and_four_look_alikes_only_when_asked() {
        let mut opts = SimulateOptions::new(std::env::temp_dir());
        let world = World::new(&opts);
        assert!(plan_principal_cases(&world).is_empty());
        opts.principals = true;
        let world = World::new(&opts);
        let cases = plan_principal_cases(&world);
        let attacks: Vec<&Case> = cases.iter().filter(|c| c.kind.is_attack()).collect();
        assert_eq!(attacks.len(), 4);
        assert_eq!(cases.len(), 8);
        for c in &attacks {
            assert!(c.start >= world.start + 4 * 86_400, "{:?}", c.kind);
            assert!(c.end <= world.end());
            assert!(!c.events.is_empty());
            assert!(c.events.iter().all(|e| e.who == c.who));
        }
        // Labelled in order, ids from 1.
        assert!(cases.windows(2).all(|w| w[0].start <= w[1].start));
        assert_eq!(cases[0].id, 1);
        // The same seed plans the same cases.
        let again = plan_principal_cases(&world);
        assert_eq!(
            again
                .iter()
                .map(|c| (c.kind, c.start, c.events.len()))
                .collect::<Vec<_>>(),
            cases
                .iter()
                .map(|c| (c.kind, c.start, c.events.len()))
                .collect::<Vec<_>>()
        );
        // A quiet scenario has none.
        opts.injections = Injections::None;
        assert!(plan_principal_cases(&World::new(&opts)).is_empty());
    }

    #[test]
    fn role_chaining_tries_roles_beyond_the_ci_roles_own_and_most_refuse_it() {
        for seed in 1..=5 {
            let mut opts = SimulateOptions::new(std::env::temp_dir());
            opts.principals = true;
            opts.seed = seed;
            let world = World::new(&opts);
            let cases = plan_principal_cases(&world);
            let Some(chain) = cases
                .iter()
                .find(|c| c.kind == PrincipalCaseKind::RoleChaining)
            else {
                panic!("no role chaining for seed {seed}");
            };
            let assumed: Vec<&Ev> = chain.events.iter().filter(|e| e.role.is_some()).collect();
            assert!(assumed.len() >= 30, "seed {seed}");
            let others: BTreeSet<&str> = assumed
                .iter()
                .filter_map(|e| e.role)
                .filter(|r| !CI_ROLES.contains(r))
                .collect();
            assert!((2..=5).contains(&others.len()), "seed {seed}: {others:?}");
            assert!(!others.contains(CI_OWN_ROLE));
            // Its own roles are granted; the others mostly refused.
            assert!(
                assumed
                    .iter()
                    .filter(|e| e.role.is_some_and(|r| CI_ROLES.contains(&r)))
                    .all(|e| e.err.is_none())
            );
            let refused = assumed.iter().filter(|e| e.err.is_some()).count();
            assert!(refused > 0, "seed {seed}");
            // The CI runs' new environment: one role, never refused.
            let runs = cases
                .iter()
                .find(|c| c.kind == PrincipalCaseKind::CiRun)
                .map(|c| {
                    c.events
                        .iter()
                        .filter_map(|e| e.role)
                        .collect::<BTreeSet<_>>()
                });
            assert_eq!(runs, Some(BTreeSet::from([NEW_ENVIRONMENT_ROLE])));
        }
    }
}
