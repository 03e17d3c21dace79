//! Synthetic CloudTrail generator with labelled anomalies.
//!
//! Writes gzip `{"Records":[...]}` files in CloudTrail's S3 layout
//! (`<out>/AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/...json.gz`) plus `<out>/labels.json`,
//! the ground truth that `eval::score` compares detector output against.
//!
//! Everything is driven by seeded `StdRng`s: the same options give byte-identical output.
//!
//! Model, per region: ~39,000 background records a day over ~100 APIs (about 10% writes) with a
//! business-hours peak and quieter weekends, Poisson noise, a dozen principals (SSO users, CI,
//! Terraform, workloads, monitoring, AWS services), sparse errors; IAM is global and logged in
//! us-east-1 only (as in CloudTrail). 4-6 periodic maintenance jobs call write APIs every 5-60
//! minutes with +/-1 minute of jitter. Delivery: a file every 5 minutes (sometimes two), records 1
//! to 15 minutes old, a few duplicates. Anomalies are added on top and labelled. With `changes`,
//! so is a changing routine: two new jobs (nightly; every few hours), a lasting rate step and a
//! newly adopted API, each from a seed-chosen day, labelled as benign after a 3-day learning
//! period (drawn from their own generators: without `changes`, the output is unchanged).

use std::collections::BTreeSet;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};
use flate2::Compression;
use flate2::write::GzEncoder;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/// Options of `trailsight simulate`.
#[derive(Debug, Clone)]
pub struct SimulateOptions {
    pub out: PathBuf,
    pub days: u32,
    pub seed: u64,
    pub start: DateTime<Utc>,
    pub regions: Vec<String>,
    pub account: String,
    pub injections: Injections,
    /// Add routine changes a detector must learn (two new recurring jobs, a lasting rate step, a
    /// newly adopted API), labelled in `labels.json` under `changes`. Needs at least 6 days.
    pub changes: bool,
}

impl SimulateOptions {
    /// Defaults: 9 days from Monday 2026-03-02T00:00:00Z, seed 1, us-east-1 and eu-west-1,
    /// account 111122223333, seed-chosen anomalies.
    pub fn new(out: PathBuf) -> Self {
        SimulateOptions {
            out,
            days: 9,
            seed: 1,
            start: Utc
                .with_ymd_and_hms(2026, 3, 2, 0, 0, 0)
                .single()
                .unwrap_or_default(),
            regions: vec!["us-east-1".to_string(), "eu-west-1".to_string()],
            account: "111122223333".to_string(),
            injections: Injections::Default,
            changes: false,
        }
    }
}

/// Which anomalies to inject.
#[derive(Debug, Clone, PartialEq)]
pub enum Injections {
    /// Seed-chosen: two of each kind, all after the first two days (fewer on short runs).
    Default,
    /// A quiet scenario: background traffic only.
    None,
    /// Exactly these.
    Explicit(Vec<Injection>),
}

/// One anomaly to inject: `at` is its first anomalous minute.
#[derive(Debug, Clone, PartialEq)]
pub struct Injection {
    pub kind: AnomalyKind,
    pub at: DateTime<Utc>,
    pub region: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AnomalyKind {
    IamBurst,
    ProvisioningSpike,
    ThrottlingStorm,
    MaintenanceGap,
}

impl AnomalyKind {
    pub const ALL: [AnomalyKind; 4] = [
        AnomalyKind::IamBurst,
        AnomalyKind::ProvisioningSpike,
        AnomalyKind::ThrottlingStorm,
        AnomalyKind::MaintenanceGap,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::IamBurst => "iam-burst",
            AnomalyKind::ProvisioningSpike => "provisioning-spike",
            AnomalyKind::ThrottlingStorm => "throttling-storm",
            AnomalyKind::MaintenanceGap => "maintenance-gap",
        }
    }
}

impl fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AnomalyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        AnomalyKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!(
                    "unknown anomaly kind {s:?} (expected iam-burst, provisioning-spike, \
                     throttling-storm or maintenance-gap)"
                )
            })
    }
}

/// Parses `KIND@TIME` or `KIND@TIME@REGION`. TIME is RFC 3339 (`2026-03-05T14:07:00Z`) or an
/// offset from `start` made of `<n>d`, `<n>h`, `<n>m`, `<n>s` parts (`3d14h`, `2d`, `50h30m`,
/// optionally with a leading `+`). The time is truncated to the whole minute.
pub fn parse_injection(s: &str, start: DateTime<Utc>) -> Result<Injection, String> {
    let s = s.trim();
    let (kind, rest) = s
        .split_once('@')
        .ok_or_else(|| format!("injection {s:?}: expected KIND@TIME[@REGION]"))?;
    let kind: AnomalyKind = kind.parse()?;
    let (time, region) = match rest.split_once('@') {
        Some((t, r)) if !r.trim().is_empty() => (t.trim(), Some(r.trim().to_string())),
        Some((t, _)) => (t.trim(), None),
        None => (rest.trim(), None),
    };
    if time.is_empty() {
        return Err(format!("injection {s:?}: missing TIME"));
    }
    let at = if let Ok(t) = DateTime::parse_from_rfc3339(time) {
        t.with_timezone(&Utc)
    } else {
        let secs = parse_offset(time).map_err(|e| format!("injection {s:?}: {e}"))?;
        start + chrono::Duration::seconds(secs)
    };
    let at = at
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(at);
    Ok(Injection { kind, at, region })
}

fn parse_offset(s: &str) -> Result<i64, String> {
    let body = s.strip_prefix('+').unwrap_or(s);
    if body.is_empty() {
        return Err("empty offset".into());
    }
    let mut total: i64 = 0;
    let mut num = String::new();
    for c in body.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            'd' | 'D' => 86_400,
            'h' | 'H' => 3_600,
            'm' | 'M' => 60,
            's' | 'S' => 1,
            _ => {
                return Err(format!(
                    "bad time {s:?} (RFC 3339, or an offset like 3d14h, 2d, 50h30m)"
                ));
            }
        };
        if num.is_empty() {
            return Err(format!("bad offset {s:?}: unit {c:?} without a number"));
        }
        let n: i64 = num.parse().map_err(|_| format!("bad offset {s:?}"))?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("offset {s:?} too large"))?;
        num.clear();
    }
    if !num.is_empty() {
        return Err(format!(
            "bad offset {s:?}: number {num:?} without a unit (d, h, m, s)"
        ));
    }
    Ok(total)
}

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

    fs::create_dir_all(&opts.out)?;
    let results: Vec<io::Result<RegionOut>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..opts.regions.len())
            .map(|ri| {
                let world = &world;
                let plans = &plans;
                let changes = &changes;
                scope.spawn(move || gen_region(world, ri, plans, changes))
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
    for (ri, r) in results.into_iter().enumerate() {
        let r = r?;
        files += r.files;
        records += r.records;
        keys.extend(r.keys.into_iter().map(|k| (opts.regions[ri].clone(), k)));
    }
    let labels = opts.out.join("labels.json");
    write_labels(
        &world,
        &plans,
        &changes,
        keys.len() as u64 * u64::from(opts.days),
        &labels,
    )?;
    Ok(SimulateReport {
        files,
        records,
        labels,
        anomalies: plans.len(),
        changes: changes.len(),
    })
}

// ---------------------------------------------------------------------------------------------
// Catalog: principals and APIs
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PKind {
    Role,
    User,
    /// `{"type":"AWSService","invokedBy":...}`, no ARN.
    Service,
    /// An AssumedRole session used by an AWS service on the customer's behalf (has `invokedBy`).
    ServiceRole,
}

struct PSpec {
    kind: PKind,
    /// Role name, user name, or the service principal for `Service`.
    name: &'static str,
    session: &'static str,
    ips: &'static [&'static str],
    agents: &'static [&'static str],
    console: bool,
    invoked_by: &'static str,
}

const UA_CHROME: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36";
const UA_FIREFOX: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:123.0) Gecko/20100101 Firefox/123.0";
const UA_CLI_MAC: &str = "aws-cli/2.15.30 Python/3.11.8 Darwin/23.3.0 exe/x86_64 prompt/off";
const UA_CLI_LINUX: &str =
    "aws-cli/2.15.25 Python/3.11.8 Linux/6.5.0-1016-aws exe/x86_64.ubuntu.22 prompt/off";
const UA_JS: &str = "aws-sdk-js/3.525.0 ua/2.0 os/linux#6.5.0-1017-azure lang/js md/nodejs#20.11.1 api/cloudformation#3.525.0";
const UA_TF: &str = "APN/1.0 HashiCorp/1.0 Terraform/1.7.4 (+https://www.terraform.io) terraform-provider-aws/5.40.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.25.2 os/linux lang/go#1.22.0 md/GOOS#linux md/GOARCH#amd64";
const UA_JAVA: &str = "aws-sdk-java/2.25.6 Linux/5.10.210-201.852.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS Java/17.0.10 vendor/Amazon.com_Inc. io/sync http/Apache cfg/retry-mode/legacy";
const UA_BOTO_LAMBDA: &str = "Boto3/1.34.51 md/Botocore#1.34.51 ua/2.0 os/linux#5.10.209-220.812.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.2 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 cfg/retry-mode#legacy Botocore/1.34.51";
const UA_DD: &str = "Datadog/1.0 aws-sdk-go/1.50.30 (go1.21.7; linux; amd64)";
const UA_BOTO_MAINT: &str = "Boto3/1.34.40 md/Botocore#1.34.40 ua/2.0 os/linux#5.10.209-220.812.amzn2.x86_64 md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython exec-env/AWS_Lambda_python3.11 cfg/retry-mode#standard Botocore/1.34.40";
const UA_SSM: &str = "aws-sdk-go/1.44.260 (go1.21.5; linux; amd64) amazon-ssm-agent/3.3.40.0";
const UA_OLD_BOTO: &str = "Boto3/1.26.8 Python/3.8.10 Linux/5.4.0-150-generic Botocore/1.29.8";
const UA_OLD_CLI: &str = "aws-cli/1.27.50 Python/3.9.2 Windows/10 botocore/1.29.50";

// Principal indices.
const ALICE: u16 = 0;
const BOB: u16 = 1;
const CAROL: u16 = 2;
const CI: u16 = 3;
const TF: u16 = 4;
const APP: u16 = 5;
const LAMBDA: u16 = 6;
const DD: u16 = 7;
const MAINT: u16 = 8;
const SVC_ASG: u16 = 9;
const SVC_EC2: u16 = 10;
const SVC_LAMBDA: u16 = 11;
const SVC_ECS: u16 = 12;
const CONFIG: u16 = 13;
const SSM_AGENT: u16 = 14;
const ODD_USER: u16 = 15;
const ODD_ROLE: u16 = 16;
const ODD_ADMIN: u16 = 17;

const PRINCIPALS: &[PSpec] = &[
    PSpec {
        kind: PKind::Role,
        name: "AWSReservedSSO_AdministratorAccess_4f1c2d3e5a6b7c8d",
        session: "alice@example.com",
        ips: &["198.51.100.23"],
        agents: &[UA_CHROME, "AWS Internal", UA_CLI_MAC],
        console: true,
        invoked_by: "",
    },
    PSpec {
        kind: PKind::Role,
        name: "AWSReservedSSO_PowerUserAccess_9a8b7c6d5e4f3a2b",
        session: "bob@example.com",
        ips: &["198.51.100.61", "198.51.100.62"],
        agents: &[UA_FIREFOX, UA_CLI_MAC],
        console: true,
        invoked_by: "",
    },
    PSpec {
        kind: PKind::User,
        name: "carol",
        session: "",
        ips: &["192.0.2.144"],
        agents: &[UA_CLI_LINUX],
        console: false,
        invoked_by: "",
    },
    PSpec {
        kind: PKind::Role,
        name: "github-actions-deploy",
        session: "GitHubActions",
        ips: &["192.0.2.10", "192.0.2.11", "192.0.2.12"],
        agents: &[UA_JS, UA_CLI_LINUX],
        console: false,
        invoked_by: "",
    },
    PSpec {
        kind: PKind::Role,
        name: "terraform-runner",
        session: "terraform-ci",
        ips: &["192.0.2.40"],
        agents: &[UA_TF],
        console: false,
        invoked_by: "",
    },
    PSpec {
        kind: PKind::Role,
        name: "orders-api-task",
        session: "5f2c8e1a9b7d4c3e8f6a1b2c3d4e5f60",
        ips: &["10.20.1.15", "10.20.2.27", "10.20.3.41"],
        agents: &[UA_JAVA],
        console: false,
        invoked_by: "",
    },
    PSpec {
        kind: PKind::Role,
        name: "image-resize-lambda-role",
        session: "image-resize",
        ips: &["10.20.8.9", "10.20.9.14"],
        agents: &[UA_BOTO_LAMBDA],
        console: false,
        invoked_by: "",
    },
    PSpec {
        kind: PKind::Role,
        name: "DatadogIntegrationRole",
        session: "DatadogAWSIntegration",
        ips: &["203.0.113.100", "203.0.113.101"],
        agents: &[UA_DD],
        console: false,
        invoked_by: "",
    },
    PSpec {
        kind: PKind::Role,
        name: "ops-maintenance",
        session: "maint-scheduler",
        ips: &["10.20.7.3"],
        agents: &[UA_BOTO_MAINT],
        console: false,
        invoked_by: "",
    },
    PSpec {
        kind: PKind::Service,
        name: "autoscaling.amazonaws.com",
        session: "",
        ips: &[],
        agents: &[],
        console: false,
        invoked_by: "autoscaling.amazonaws.com",
    },
    PSpec {
        kind: PKind::Service,
        name: "ec2.amazonaws.com",
        session: "",
        ips: &[],
        agents: &[],
        console: false,
        invoked_by: "ec2.amazonaws.com",
    },
    PSpec {
        kind: PKind::Service,
        name: "lambda.amazonaws.com",
        session: "",
        ips: &[],
        agents: &[],
        console: false,
        invoked_by: "lambda.amazonaws.com",
    },
    PSpec {
        kind: PKind::Service,
        name: "ecs-tasks.amazonaws.com",
        session: "",
        ips: &[],
        agents: &[],
        console: false,
        invoked_by: "ecs-tasks.amazonaws.com",
    },
    PSpec {
        kind: PKind::ServiceRole,
        name: "AWSServiceRoleForConfig",
        session: "AWSConfig-Describe",
        ips: &[],
        agents: &[],
        console: false,
        invoked_by: "config.amazonaws.com",
    },
    PSpec {
        kind: PKind::Role,
        name: "EC2-SSM-InstanceRole",
        session: "i-0a1b2c3d4e5f67890",
        ips: &["10.20.1.15", "10.20.2.27", "10.20.3.41", "10.20.4.52"],
        agents: &[UA_SSM],
        console: false,
        invoked_by: "",
    },
    PSpec {
        kind: PKind::User,
        name: "svc-legacy-import",
        session: "",
        ips: &["203.0.113.77"],
        agents: &[UA_OLD_BOTO],
        console: false,
        invoked_by: "",
    },
    PSpec {
        kind: PKind::Role,
        name: "OrganizationAccountAccessRole",
        session: "temp-session-8812",
        ips: &["198.51.100.201"],
        agents: &[UA_OLD_CLI],
        console: false,
        invoked_by: "",
    },
    PSpec {
        kind: PKind::User,
        name: "backup-admin",
        session: "",
        ips: &["203.0.113.250"],
        agents: &[UA_CLI_LINUX],
        console: false,
        invoked_by: "",
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    /// Human / CI traffic: strong diurnal and weekly cycle.
    Business,
    /// Machine traffic: mild cycles.
    Steady,
    /// Only maintenance jobs and anomalies call it.
    Off,
}

/// Request-parameter shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pk {
    Null,
    InstanceIds,
    Filters,
    Bucket,
    RoleName,
    PolicyArn,
    UserName,
    Function,
    Param,
    Params,
    ParamPath,
    KeyId,
    Decrypt,
    LogGroup,
    LogStream,
    Table,
    DbInstance,
    DbCluster,
    Secret,
    Repo,
    Stack,
    Alarm,
    MetricData,
    TargetGroup,
    Asg,
    Queue,
    AssumeRole,
    RunInstances,
    CreateVolume,
    Snapshot,
    Tags,
    PutParameter,
    Backup,
    Retention,
    AccessKey,
    AttachUserPolicy,
    PutUserPolicy,
    LoginProfile,
    AddUserToGroup,
    DbSnapshot,
    VolumeId,
    MaxResults,
}

struct ApiSpec {
    svc: &'static str,
    name: &'static str,
    ro: bool,
    group: Group,
    /// Relative weight inside its group.
    w: f64,
    callers: &'static [u16],
    pk: Pk,
    /// Background probability of a throttling error (busy read APIs only).
    throttle: f64,
    /// Background "not found" error code and probability.
    notfound: Option<(&'static str, f64)>,
}

const fn api(
    svc: &'static str,
    name: &'static str,
    ro: bool,
    group: Group,
    w: f64,
    callers: &'static [u16],
    pk: Pk,
) -> ApiSpec {
    ApiSpec {
        svc,
        name,
        ro,
        group,
        w,
        callers,
        pk,
        throttle: 0.0,
        notfound: None,
    }
}

const fn thr(mut a: ApiSpec, p: f64) -> ApiSpec {
    a.throttle = p;
    a
}

const fn nf(mut a: ApiSpec, code: &'static str, p: f64) -> ApiSpec {
    a.notfound = Some((code, p));
    a
}

use Group::{Business as B, Off as O, Steady as S};

const HUMANS: &[u16] = &[ALICE, BOB, CAROL];
const HUMANS_CI: &[u16] = &[ALICE, BOB, CAROL, CI, TF, TF];
const OPS: &[u16] = &[ALICE, BOB, CI, TF, DD, CONFIG];

#[rustfmt::skip]
const APIS: &[ApiSpec] = &[
    // --- ec2
    thr(api("ec2", "DescribeInstances", true, S, 60.0, &[DD, DD, CONFIG, ALICE, BOB, CI, TF, SVC_ASG], Pk::InstanceIds), 0.004),
    api("ec2", "DescribeInstanceStatus", true, S, 25.0, &[DD, SVC_ASG, ALICE], Pk::InstanceIds),
    api("ec2", "DescribeVolumes", true, S, 18.0, &[DD, CONFIG, ALICE, TF], Pk::Filters),
    api("ec2", "DescribeSecurityGroups", true, B, 22.0, OPS, Pk::Filters),
    api("ec2", "DescribeSubnets", true, B, 14.0, OPS, Pk::Filters),
    api("ec2", "DescribeVpcs", true, B, 10.0, OPS, Pk::Filters),
    api("ec2", "DescribeImages", true, B, 8.0, HUMANS_CI, Pk::Filters),
    api("ec2", "DescribeSnapshots", true, S, 6.0, &[CONFIG, DD, ALICE], Pk::Filters),
    api("ec2", "DescribeNetworkInterfaces", true, S, 12.0, &[CONFIG, SVC_LAMBDA, DD], Pk::Filters),
    api("ec2", "DescribeRegions", true, B, 9.0, HUMANS_CI, Pk::Null),
    api("ec2", "DescribeAvailabilityZones", true, B, 7.0, HUMANS_CI, Pk::Null),
    api("ec2", "DescribeTags", true, S, 10.0, &[DD, CONFIG, TF], Pk::Filters),
    api("ec2", "RunInstances", false, B, 0.3, &[SVC_ASG, SVC_ASG, CI, TF], Pk::RunInstances),
    api("ec2", "TerminateInstances", false, B, 0.3, &[SVC_ASG, SVC_ASG, CI, ALICE], Pk::InstanceIds),
    api("ec2", "CreateTags", false, B, 10.0, &[SVC_ASG, TF, CI, ALICE], Pk::Tags),
    api("ec2", "StartInstances", false, B, 0.3, HUMANS, Pk::InstanceIds),
    api("ec2", "StopInstances", false, B, 0.3, HUMANS, Pk::InstanceIds),
    api("ec2", "CreateVolume", false, B, 0.12, &[TF, ALICE, SVC_ASG], Pk::CreateVolume),
    api("ec2", "AttachVolume", false, B, 0.2, &[TF, ALICE], Pk::VolumeId),
    api("ec2", "ModifyInstanceAttribute", false, B, 0.2, &[TF, BOB], Pk::InstanceIds),
    api("ec2", "AuthorizeSecurityGroupIngress", false, B, 0.12, &[TF, ALICE], Pk::Filters),
    api("ec2", "DeleteTags", false, B, 2.0, &[TF, CI, ALICE], Pk::Tags),
    api("ec2", "CreateNetworkInterface", false, S, 4.0, &[SVC_LAMBDA], Pk::Filters),
    api("ec2", "DeleteNetworkInterface", false, S, 3.8, &[SVC_LAMBDA], Pk::Filters),
    // --- s3 (bucket-level management events)
    api("s3", "ListBuckets", true, B, 16.0, &[ALICE, BOB, CAROL, DD, CI], Pk::Null),
    api("s3", "GetBucketLocation", true, S, 20.0, &[DD, APP, CONFIG, CI], Pk::Bucket),
    api("s3", "GetBucketAcl", true, S, 10.0, &[CONFIG, DD], Pk::Bucket),
    api("s3", "GetBucketPolicy", true, S, 7.0, &[CONFIG, DD, TF], Pk::Bucket),
    nf(api("s3", "GetBucketTagging", true, S, 8.0, &[DD, CONFIG, TF], Pk::Bucket), "NoSuchTagSet", 0.08),
    api("s3", "PutBucketTagging", false, B, 0.15, &[TF], Pk::Bucket),
    api("s3", "PutBucketPolicy", false, B, 0.08, &[TF, ALICE], Pk::Bucket),
    // --- iam (global: logged in us-east-1)
    nf(api("iam", "GetRole", true, B, 14.0, &[TF, CI, ALICE, CONFIG, DD], Pk::RoleName), "NoSuchEntity", 0.01),
    api("iam", "GetPolicy", true, B, 6.0, &[TF, CONFIG], Pk::PolicyArn),
    api("iam", "ListRoles", true, B, 6.0, &[ALICE, BOB, DD, CONFIG], Pk::MaxResults),
    api("iam", "ListAttachedRolePolicies", true, B, 7.0, &[TF, CONFIG, ALICE], Pk::RoleName),
    api("iam", "GetUser", true, B, 3.0, &[ALICE, CAROL, CONFIG], Pk::UserName),
    api("iam", "ListUsers", true, B, 2.0, &[ALICE, DD, CONFIG], Pk::MaxResults),
    api("iam", "ListAccessKeys", true, B, 2.0, &[CAROL, DD], Pk::UserName),
    api("iam", "CreateRole", false, B, 0.05, &[TF], Pk::RoleName),
    api("iam", "PutRolePolicy", false, B, 0.08, &[TF], Pk::RoleName),
    api("iam", "AttachRolePolicy", false, B, 0.08, &[TF, ALICE], Pk::RoleName),
    api("iam", "TagRole", false, B, 0.1, &[TF], Pk::RoleName),
    api("iam", "UpdateAssumeRolePolicy", false, B, 0.03, &[TF], Pk::RoleName),
    api("iam", "CreateUser", false, B, 0.006, &[ALICE], Pk::UserName),
    api("iam", "CreateAccessKey", false, B, 0.01, &[ALICE, CAROL], Pk::AccessKey),
    api("iam", "AttachUserPolicy", false, B, 0.006, &[ALICE], Pk::AttachUserPolicy),
    api("iam", "PutUserPolicy", false, O, 0.0, &[ALICE], Pk::PutUserPolicy),
    api("iam", "CreateLoginProfile", false, O, 0.0, &[ALICE], Pk::LoginProfile),
    api("iam", "AddUserToGroup", false, B, 0.004, &[ALICE], Pk::AddUserToGroup),
    // --- sts
    api("sts", "AssumeRole", true, S, 45.0, &[SVC_LAMBDA, SVC_ECS, DD, CI, SVC_LAMBDA], Pk::AssumeRole),
    api("sts", "GetCallerIdentity", true, B, 16.0, &[CI, TF, CAROL, BOB, APP], Pk::Null),
    api("sts", "AssumeRoleWithWebIdentity", true, B, 4.0, &[CI], Pk::AssumeRole),
    // --- lambda
    api("lambda", "ListFunctions20150331", true, B, 7.0, &[ALICE, BOB, DD, CONFIG], Pk::MaxResults),
    nf(thr(api("lambda", "GetFunction20150331v2", true, B, 9.0, &[CI, TF, ALICE, DD], Pk::Function), 0.002), "ResourceNotFoundException", 0.01),
    api("lambda", "GetFunctionConfiguration20150331v2", true, B, 5.0, &[CI, TF, CONFIG], Pk::Function),
    api("lambda", "ListTags20170331", true, B, 3.0, &[DD, TF], Pk::Function),
    api("lambda", "PublishVersion20150331", false, B, 0.3, &[CI], Pk::Function),
    api("lambda", "UpdateFunctionCode20150331v2", false, B, 0.35, &[CI], Pk::Function),
    api("lambda", "UpdateFunctionConfiguration20150331v2", false, O, 0.0, &[MAINT], Pk::Function),
    // --- ssm
    nf(thr(api("ssm", "GetParameter", true, S, 40.0, &[APP, APP, LAMBDA, CI], Pk::Param), 0.004), "ParameterNotFound", 0.004),
    api("ssm", "GetParameters", true, S, 14.0, &[APP, LAMBDA, SSM_AGENT], Pk::Params),
    api("ssm", "GetParametersByPath", true, S, 8.0, &[APP, CI], Pk::ParamPath),
    api("ssm", "DescribeInstanceInformation", true, B, 5.0, &[ALICE, DD, CONFIG], Pk::MaxResults),
    api("ssm", "SendCommand", false, B, 1.5, &[CI, ALICE, BOB], Pk::InstanceIds),
    api("ssm", "UpdateInstanceInformation", false, S, 30.0, &[SSM_AGENT], Pk::Null),
    api("ssm", "PutParameter", false, O, 0.0, &[MAINT], Pk::PutParameter),
    // --- kms
    thr(api("kms", "Decrypt", true, S, 55.0, &[APP, LAMBDA, SVC_EC2, APP], Pk::Decrypt), 0.002),
    api("kms", "GenerateDataKey", true, S, 20.0, &[APP, SVC_EC2, LAMBDA], Pk::KeyId),
    api("kms", "CreateGrant", false, S, 6.0, &[SVC_EC2, TF], Pk::KeyId),
    api("kms", "RetireGrant", false, S, 5.0, &[SVC_EC2], Pk::KeyId),
    api("kms", "DescribeKey", true, B, 6.0, &[TF, CONFIG, DD], Pk::KeyId),
    api("kms", "ListAliases", true, B, 3.0, &[ALICE, DD], Pk::Null),
    // --- cloudwatch
    api("monitoring", "DescribeAlarms", true, B, 14.0, &[ALICE, BOB, DD, TF], Pk::MaxResults),
    thr(api("monitoring", "GetMetricData", true, S, 30.0, &[DD, DD, ALICE], Pk::MetricData), 0.003),
    api("monitoring", "ListMetrics", true, S, 12.0, &[DD], Pk::Null),
    api("monitoring", "GetMetricStatistics", true, B, 6.0, &[ALICE, BOB], Pk::MetricData),
    api("monitoring", "PutMetricAlarm", false, O, 0.0, &[MAINT], Pk::Alarm),
    // --- logs
    api("logs", "DescribeLogGroups", true, B, 12.0, &[ALICE, BOB, DD, TF], Pk::MaxResults),
    api("logs", "DescribeLogStreams", true, B, 8.0, &[ALICE, BOB], Pk::LogGroup),
    api("logs", "CreateLogStream", false, S, 14.0, &[LAMBDA, APP], Pk::LogStream),
    api("logs", "CreateLogGroup", false, B, 0.05, &[TF, LAMBDA], Pk::LogGroup),
    api("logs", "PutRetentionPolicy", false, O, 0.0, &[MAINT], Pk::Retention),
    // --- dynamodb
    thr(api("dynamodb", "DescribeTable", true, S, 22.0, &[APP, APP, DD, TF], Pk::Table), 0.003),
    api("dynamodb", "ListTables", true, B, 6.0, &[ALICE, DD], Pk::MaxResults),
    api("dynamodb", "DescribeContinuousBackups", true, S, 3.0, &[CONFIG, TF], Pk::Table),
    api("dynamodb", "UpdateTable", false, B, 0.04, &[TF], Pk::Table),
    // --- rds
    api("rds", "DescribeDBInstances", true, S, 12.0, &[DD, ALICE, CONFIG, TF], Pk::DbInstance),
    api("rds", "DescribeDBClusters", true, S, 6.0, &[DD, CONFIG], Pk::DbCluster),
    api("rds", "ModifyDBInstance", false, B, 0.02, &[TF], Pk::DbInstance),
    api("rds", "CreateDBSnapshot", false, O, 0.0, &[MAINT], Pk::DbSnapshot),
    // --- secretsmanager
    nf(api("secretsmanager", "GetSecretValue", true, S, 18.0, &[APP, LAMBDA], Pk::Secret), "ResourceNotFoundException", 0.002),
    api("secretsmanager", "DescribeSecret", true, B, 3.0, &[TF, CONFIG], Pk::Secret),
    // --- ecr
    api("ecr", "GetAuthorizationToken", true, S, 8.0, &[CI, APP, SVC_ECS], Pk::Null),
    api("ecr", "DescribeRepositories", true, B, 3.0, &[CI, TF], Pk::Repo),
    api("ecr", "InitiateLayerUpload", false, B, 1.5, &[CI], Pk::Repo),
    api("ecr", "UploadLayerPart", false, B, 3.0, &[CI], Pk::Repo),
    api("ecr", "CompleteLayerUpload", false, B, 1.5, &[CI], Pk::Repo),
    api("ecr", "PutImage", false, B, 0.8, &[CI], Pk::Repo),
    api("ecr", "BatchGetImage", true, S, 4.0, &[APP, CI], Pk::Repo),
    // --- elastic load balancing
    api("elasticloadbalancing", "DescribeLoadBalancers", true, S, 8.0, &[DD, ALICE, TF], Pk::Null),
    api("elasticloadbalancing", "DescribeTargetHealth", true, S, 10.0, &[DD, SVC_ASG], Pk::TargetGroup),
    api("elasticloadbalancing", "RegisterTargets", false, B, 0.6, &[SVC_ASG], Pk::TargetGroup),
    api("elasticloadbalancing", "DeregisterTargets", false, B, 0.55, &[SVC_ASG], Pk::TargetGroup),
    // --- autoscaling
    api("autoscaling", "DescribeAutoScalingGroups", true, S, 10.0, &[DD, ALICE, TF], Pk::Asg),
    api("autoscaling", "SetDesiredCapacity", false, B, 0.05, &[ALICE, CI], Pk::Asg),
    // --- cloudformation
    api("cloudformation", "DescribeStacks", true, B, 10.0, &[CI, TF, ALICE], Pk::Stack),
    api("cloudformation", "DescribeStackEvents", true, B, 5.0, &[CI], Pk::Stack),
    api("cloudformation", "CreateChangeSet", false, B, 0.5, &[CI], Pk::Stack),
    api("cloudformation", "ExecuteChangeSet", false, B, 0.4, &[CI], Pk::Stack),
    api("cloudformation", "UpdateStack", false, B, 0.15, &[CI], Pk::Stack),
    // --- sqs
    api("sqs", "GetQueueAttributes", true, S, 10.0, &[DD, APP], Pk::Queue),
    // --- backup
    api("backup", "StartBackupJob", false, O, 0.0, &[MAINT], Pk::Backup),
    // --- ec2 maintenance
    api("ec2", "CreateSnapshot", false, O, 0.0, &[MAINT], Pk::Snapshot),
    api("ec2", "DeleteSnapshot", false, O, 0.0, &[MAINT], Pk::Snapshot),
    // --- routine changes (`--changes`): never called before the day their change starts
    api("dynamodb", "CreateBackup", false, O, 0.0, &[MAINT, LAMBDA], Pk::Table),
    api("rds", "CreateDBClusterSnapshot", false, O, 0.0, &[MAINT], Pk::DbCluster),
    api("ec2", "CopySnapshot", false, O, 0.0, &[MAINT, LAMBDA], Pk::Snapshot),
    api("logs", "CreateExportTask", false, O, 0.0, &[MAINT, LAMBDA], Pk::LogGroup),
    api("ecr", "BatchDeleteImage", false, O, 0.0, &[CI, MAINT], Pk::Repo),
    api("secretsmanager", "PutSecretValue", false, O, 0.0, &[APP, LAMBDA, CI], Pk::Secret),
    api("ssm", "StartAutomationExecution", false, O, 0.0, &[ALICE, BOB, CI], Pk::InstanceIds),
    api("cloudformation", "DetectStackDrift", false, O, 0.0, &[CI, ALICE, TF], Pk::Stack),
    api("monitoring", "PutDashboard", false, O, 0.0, &[TF, ALICE, BOB], Pk::Null),
    api("lambda", "CreateAlias20150331", false, O, 0.0, &[CI], Pk::Function),
];

fn api_index(svc: &str, name: &str) -> u16 {
    APIS.iter()
        .position(|a| a.svc == svc && a.name == name)
        .unwrap_or_else(|| panic!("simulate catalog lacks {svc}:{name}")) as u16
}

fn event_source(svc: &str) -> String {
    format!("{svc}.amazonaws.com")
}

/// Maintenance job templates: (svc, name, allowed periods in minutes).
const JOB_POOL: &[(&str, &str, &[i64])] = &[
    ("ssm", "PutParameter", &[5, 10, 15]),
    ("ec2", "CreateSnapshot", &[30, 60]),
    ("lambda", "UpdateFunctionConfiguration20150331v2", &[15, 30]),
    ("backup", "StartBackupJob", &[60]),
    ("logs", "PutRetentionPolicy", &[10, 15, 30]),
    ("monitoring", "PutMetricAlarm", &[5, 10]),
    ("rds", "CreateDBSnapshot", &[60]),
    ("ec2", "DeleteSnapshot", &[30, 60]),
];

struct Principal {
    spec: &'static PSpec,
    arn: String,
    principal_id: String,
    access_key: String,
    issuer_arn: String,
    issuer_id: String,
}

impl Principal {
    fn arn_or_name(&self) -> &str {
        if self.arn.is_empty() {
            self.spec.name
        } else {
            &self.arn
        }
    }
}

struct Catalog {
    principals: Vec<Principal>,
    sources: Vec<String>,
}

fn rand_upper_alnum(rng: &mut StdRng, n: usize) -> String {
    const CH: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    (0..n)
        .map(|_| CH[rng.gen_range(0..CH.len())] as char)
        .collect()
}

fn rand_alnum(rng: &mut StdRng, n: usize) -> String {
    const CH: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..n)
        .map(|_| CH[rng.gen_range(0..CH.len())] as char)
        .collect()
}

fn rand_hex(rng: &mut StdRng, n: usize) -> String {
    const CH: &[u8] = b"0123456789abcdef";
    (0..n).map(|_| CH[rng.gen_range(0..16)] as char).collect()
}

fn uuid_from(rng: &mut StdRng) -> String {
    uuid::Builder::from_random_bytes(rng.r#gen::<[u8; 16]>())
        .into_uuid()
        .hyphenated()
        .to_string()
}

impl Catalog {
    fn build(seed: u64, account: &str) -> Catalog {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x05ee_d1d5);
        let principals = PRINCIPALS
            .iter()
            .map(|spec| {
                let id = rand_upper_alnum(&mut rng, 17);
                let key = rand_upper_alnum(&mut rng, 16);
                match spec.kind {
                    PKind::Role | PKind::ServiceRole => {
                        let path = if spec.kind == PKind::ServiceRole {
                            "aws-service-role/config.amazonaws.com/"
                        } else if spec.name.starts_with("AWSReservedSSO") {
                            "aws-reserved/sso.amazonaws.com/"
                        } else {
                            ""
                        };
                        Principal {
                            spec,
                            arn: format!(
                                "arn:aws:sts::{account}:assumed-role/{}/{}",
                                spec.name, spec.session
                            ),
                            principal_id: format!("AROA{id}:{}", spec.session),
                            access_key: format!("ASIA{key}"),
                            issuer_arn: format!("arn:aws:iam::{account}:role/{path}{}", spec.name),
                            issuer_id: format!("AROA{id}"),
                        }
                    }
                    PKind::User => Principal {
                        spec,
                        arn: format!("arn:aws:iam::{account}:user/{}", spec.name),
                        principal_id: format!("AIDA{id}"),
                        access_key: format!("AKIA{key}"),
                        issuer_arn: String::new(),
                        issuer_id: String::new(),
                    },
                    PKind::Service => Principal {
                        spec,
                        arn: String::new(),
                        principal_id: String::new(),
                        access_key: String::new(),
                        issuer_arn: String::new(),
                        issuer_id: String::new(),
                    },
                }
            })
            .collect();
        Catalog {
            principals,
            sources: APIS.iter().map(|a| event_source(a.svc)).collect(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// World, jobs, anomaly planning
// ---------------------------------------------------------------------------------------------

struct Job {
    api: u16,
    period: i64,
    /// Phase in minutes, per region.
    phase: Vec<i64>,
    calls: u32,
}

struct World<'a> {
    opts: &'a SimulateOptions,
    /// Unix seconds of the first minute.
    start: i64,
    minutes: i64,
    catalog: Catalog,
    jobs: Vec<Job>,
    iam_region: usize,
}

impl<'a> World<'a> {
    fn new(opts: &'a SimulateOptions) -> World<'a> {
        World {
            opts,
            start: opts.start.timestamp().div_euclid(60) * 60,
            minutes: i64::from(opts.days) * 1440,
            catalog: Catalog::build(opts.seed, &opts.account),
            jobs: choose_jobs(opts.seed, opts.regions.len()),
            iam_region: iam_region(&opts.regions),
        }
    }
}

fn iam_region(regions: &[String]) -> usize {
    regions.iter().position(|r| r == "us-east-1").unwrap_or(0)
}

fn choose_jobs(seed: u64, nregions: usize) -> Vec<Job> {
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

/// Error kinds carried by an event.
const E_NONE: u8 = 0;
const E_DENIED: u8 = 1;
const E_THROTTLE: u8 = 2;
const E_NOTFOUND: u8 = 3;
const E_INSTLIMIT: u8 = 4;
const E_VCPU: u8 = 5;

#[derive(Debug, Clone, Copy)]
struct Ev {
    /// Unix seconds.
    t: i64,
    api: u16,
    who: u16,
    err: u8,
    slot: u32,
}

impl Ev {
    fn new(t: i64, api: u16, who: u16, err: u8) -> Ev {
        Ev {
            t,
            api,
            who,
            err,
            slot: 0,
        }
    }
}

fn denied_code(svc: &str) -> &'static str {
    match svc {
        "ec2" => "Client.UnauthorizedOperation",
        "iam"
        | "s3"
        | "sts"
        | "monitoring"
        | "rds"
        | "elasticloadbalancing"
        | "autoscaling"
        | "cloudformation"
        | "sqs" => "AccessDenied",
        _ => "AccessDeniedException",
    }
}

fn throttle_code(svc: &str) -> &'static str {
    if svc == "ec2" {
        "Client.RequestLimitExceeded"
    } else {
        "ThrottlingException"
    }
}

fn error_code(api: &ApiSpec, err: u8) -> Option<&'static str> {
    match err {
        E_DENIED => Some(denied_code(api.svc)),
        E_THROTTLE => Some(throttle_code(api.svc)),
        E_NOTFOUND => Some(
            api.notfound
                .map(|n| n.0)
                .unwrap_or("ResourceNotFoundException"),
        ),
        E_INSTLIMIT => Some("Client.InstanceLimitExceeded"),
        E_VCPU => Some("Client.VcpuLimitExceeded"),
        _ => None,
    }
}

#[derive(Debug, Clone)]
struct LabelKey {
    source: String,
    name: String,
    insight: &'static str,
    error: Option<String>,
}

impl LabelKey {
    fn calls(api: u16) -> LabelKey {
        let a = &APIS[api as usize];
        LabelKey {
            source: event_source(a.svc),
            name: a.name.to_string(),
            insight: "ApiCallRateInsight",
            error: None,
        }
    }
    fn errors(api: u16, err: u8) -> LabelKey {
        let a = &APIS[api as usize];
        LabelKey {
            source: event_source(a.svc),
            name: a.name.to_string(),
            insight: "ApiErrorRateInsight",
            error: error_code(a, err).map(str::to_string),
        }
    }
}

struct Plan {
    id: usize,
    kind: AnomalyKind,
    region: usize,
    /// Unix seconds, whole minutes; end exclusive.
    start: i64,
    end: i64,
    keys: Vec<LabelKey>,
    events: Vec<Ev>,
    /// Maintenance gap: (job, first suppressed nominal minute, first resumed nominal minute),
    /// minutes relative to the scenario start.
    gap: Option<(usize, i64, i64)>,
    description: String,
}

fn tz_offset_hours(region: &str) -> f64 {
    if region.starts_with("us-west") {
        -8.0
    } else if region.starts_with("us-") || region.starts_with("ca-") {
        -5.0
    } else if region.starts_with("sa-") {
        -3.0
    } else if region.starts_with("eu-central") || region.starts_with("eu-north") {
        1.0
    } else if region.starts_with("ap-south") {
        5.5
    } else if region.starts_with("ap-northeast") {
        9.0
    } else if region.starts_with("ap-") {
        8.0
    } else {
        0.0
    }
}

/// Local (hour of day as a fraction, is weekend) for a unix time in a region.
fn local_time(t: i64, region: &str) -> (f64, bool) {
    let local = t + (tz_offset_hours(region) * 3600.0) as i64;
    let secs_of_day = local.rem_euclid(86_400);
    // 1970-01-01 was a Thursday: day 0 -> Thursday.
    let dow = (local.div_euclid(86_400) + 3).rem_euclid(7); // 0 = Monday
    (secs_of_day as f64 / 3600.0, dow >= 5)
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn default_injections(world: &World) -> Vec<Injection> {
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

fn plan_anomalies(world: &World, injections: &[Injection]) -> io::Result<Vec<Plan>> {
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
        if at < world.start || at >= world.start + world.minutes * 60 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "injection {}@{} is outside the simulated period ({} to {})",
                    inj.kind,
                    rfc3339(at),
                    rfc3339(world.start),
                    rfc3339(world.start + world.minutes * 60)
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
    let who = *[ODD_USER, ODD_ROLE, ODD_ADMIN]
        .choose(rng)
        .unwrap_or(&ODD_USER);
    let mut events = Vec::new();
    let mut keys = Vec::new();
    for (name, c) in names.iter().zip(&counts) {
        let api = api_index("iam", name);
        keys.push(LabelKey::calls(api));
        for _ in 0..*c {
            events.push(Ev::new(at + rng.gen_range(0..dur * 60), api, who, E_NONE));
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
        events.push(Ev::new(at + rng.gen_range(0..dur * 60), api, who, E_NONE));
    }
    let p = &world.catalog.principals[who as usize];
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
        E_INSTLIMIT
    } else {
        E_VCPU
    };
    let volumes = rate >= 12.0 && rng.gen_bool(0.6);
    let vol_rate = rate * rng.gen_range(0.7..1.0);
    let who = *[CI, TF, SVC_ASG].choose(rng).unwrap_or(&CI);
    let run = api_index("ec2", "RunInstances");
    let vol = api_index("ec2", "CreateVolume");
    let mut events = Vec::new();
    let (mut calls, mut failed) = (0u32, 0u32);
    for m in 0..dur {
        let n = poisson(rng, rate).max(if m == 0 { 3 } else { 0 });
        for _ in 0..n {
            let e = if rng.gen_bool(fail) { err } else { E_NONE };
            failed += u32::from(e != E_NONE);
            calls += 1;
            events.push(Ev::new(at + m * 60 + rng.gen_range(0..60), run, who, e));
        }
        if volumes {
            let n = poisson(rng, vol_rate).max(if m == 0 { 2 } else { 0 });
            for _ in 0..n {
                events.push(Ev::new(
                    at + m * 60 + rng.gen_range(0..60),
                    vol,
                    who,
                    E_NONE,
                ));
            }
        }
    }
    let mut keys = vec![LabelKey::calls(run), LabelKey::errors(run, err)];
    if volumes {
        keys.push(LabelKey::calls(vol));
    }
    let p = &world.catalog.principals[who as usize];
    let by = if p.arn.is_empty() {
        p.spec.name.to_string()
    } else {
        p.arn.clone()
    };
    Plan {
        id,
        kind: AnomalyKind::ProvisioningSpike,
        region,
        start: at,
        end: at + dur * 60,
        description: format!(
            "{calls} RunInstances calls ({failed} failed with {}){} by {by} over {dur} min",
            error_code(&APIS[run as usize], err).unwrap_or(""),
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
        let callers: Vec<u16> = a
            .callers
            .iter()
            .copied()
            .filter(|&c| PRINCIPALS[c as usize].kind != PKind::Service)
            .collect();
        let err_rate = rng.gen_range(8.0..30.0);
        let ok_share: f64 = rng.gen_range(0.1..0.4);
        let ok_rate = err_rate * ok_share / (1.0 - ok_share);
        let mut errs = 0u32;
        for m in 0..dur {
            let ne = poisson(rng, err_rate).max(if m == 0 { 4 } else { 0 });
            let no = poisson(rng, ok_rate);
            for j in 0..ne + no {
                let who = *callers.choose(rng).unwrap_or(&APP);
                let e = if j < ne { E_THROTTLE } else { E_NONE };
                errs += u32::from(e != E_NONE);
                events.push(Ev::new(at + m * 60 + rng.gen_range(0..60), api, who, e));
            }
        }
        keys.push(LabelKey::errors(api, E_THROTTLE));
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

// ---------------------------------------------------------------------------------------------
// Routine changes: benign changes a detector must learn
// ---------------------------------------------------------------------------------------------

/// A learning period: any insight on a change's keys that starts this long after the change
/// started is a false insight (a new job is reported at most on its first two days and never
/// after its third; a rate step or a new API stops being reported within three days).
pub const LEARNING_PERIOD_SECONDS: i64 = 3 * 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A new job from day N: a burst of one write API at a fixed time of day or every few hours.
    NewJob,
    /// A lasting step in a key's rate: its background rate multiplied from day N on.
    RateStep,
    /// An API never called before day N, then used every day in sessions of a few calls.
    NewApi,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::NewJob => "new-job",
            ChangeKind::RateStep => "rate-step",
            ChangeKind::NewApi => "new-api",
        }
    }
}

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

struct Change {
    id: usize,
    kind: ChangeKind,
    region: usize,
    api: u16,
    /// Unix seconds of the first changed minute.
    from: i64,
    learned_after: i64,
    /// Rate steps: the multiplier of the key's background rate from `from` on.
    factor: f64,
    /// New jobs and new APIs: their calls (rate steps are drawn with the background).
    events: Vec<Ev>,
    description: String,
}

/// Unix seconds of `local_hour` (fractional) on scenario day `day` in `region`.
fn at_local(world: &World, day: i64, local_hour: f64, region: &str) -> i64 {
    let utc_hour = local_hour - tz_offset_hours(region);
    let t = world.start + day * 86_400 + (utc_hour * 3600.0) as i64;
    t.div_euclid(60) * 60
}

/// Four changes: two new jobs (nightly, every few hours), a rate step and a new API, each on its
/// own seed-chosen day (from day 1, ending its learning
/// period at least a day before the scenario ends), region, key and time of day. Keys are
/// never those of an anomaly in the same region, so that labels never overlap.
fn plan_changes(world: &World, plans: &[Plan]) -> io::Result<Vec<Change>> {
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
    let end = world.start + world.minutes * 60;
    let taken = |region: usize, api: u16| {
        let k = LabelKey::calls(api);
        plans.iter().any(|p| {
            p.region == region
                && p.keys
                    .iter()
                    .any(|l| l.insight == k.insight && l.source == k.source && l.name == k.name)
        })
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
        let who = *a.callers.choose(&mut rng).unwrap_or(&MAINT);
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
                    events.push(Ev::new(
                        run + lag + rng.gen_range(0..took),
                        api,
                        who,
                        E_NONE,
                    ));
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
                world.catalog.principals[who as usize].arn_or_name()
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
            let who = *a.callers.choose(&mut rng).unwrap_or(&CI);
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

fn poisson(rng: &mut StdRng, lambda: f64) -> u32 {
    if lambda <= 0.0 {
        return 0;
    }
    if lambda < 30.0 {
        let l = (-lambda).exp();
        let mut k = 0u32;
        let mut p = 1.0;
        loop {
            p *= rng.r#gen::<f64>();
            if p <= l {
                return k;
            }
            k += 1;
        }
    }
    // Normal approximation (Box-Muller).
    let u1: f64 = rng.r#gen::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.r#gen();
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    (lambda + lambda.sqrt() * z).round().max(0.0) as u32
}

fn rfc3339(t: i64) -> String {
    match DateTime::from_timestamp(t, 0) {
        Some(d) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            d.year(),
            d.month(),
            d.day(),
            d.hour(),
            d.minute(),
            d.second()
        ),
        None => String::new(),
    }
}

#[derive(Serialize)]
struct LabelsDoc<'a> {
    seed: u64,
    start: String,
    end: String,
    days: u32,
    regions: &'a [String],
    account: &'a str,
    series_days: u64,
    anomalies: Vec<LabelOut<'a>>,
    /// Benign routine changes: an insight on one of a change's keys that starts at or after its
    /// `learned_after` (the end of its learning period) is a false insight; one between `from`
    /// and `learned_after` is neither true nor false.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    changes: Vec<ChangeOut<'a>>,
    /// Informational: the periodic maintenance jobs (the keys a maintenance gap can hit).
    periodic_jobs: Vec<JobOut<'a>>,
}

#[derive(Serialize)]
struct LabelOut<'a> {
    id: usize,
    kind: &'static str,
    region: &'a str,
    account: &'a str,
    start: String,
    end: String,
    keys: Vec<KeyOut<'a>>,
    description: &'a str,
}

#[derive(Serialize)]
struct ChangeOut<'a> {
    id: usize,
    kind: &'static str,
    region: &'a str,
    account: &'a str,
    from: String,
    learned_after: String,
    keys: Vec<KeyOut<'a>>,
    description: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KeyOut<'a> {
    event_source: &'a str,
    event_name: &'a str,
    insight_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JobOut<'a> {
    event_source: &'a str,
    event_name: &'a str,
    period_minutes: i64,
    calls_per_run: u32,
}

fn write_labels(
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

// ---------------------------------------------------------------------------------------------
// Per-region generation and delivery
// ---------------------------------------------------------------------------------------------

struct RegionOut {
    files: usize,
    records: u64,
    keys: BTreeSet<u16>,
}

const RECORDS_PER_DAY: f64 = 39_000.0;
const BUSINESS_SHARE: f64 = 0.62;

fn gen_region(
    world: &World,
    ri: usize,
    plans: &[Plan],
    changes: &[Change],
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
                        events.push(Ev::new(t, job.api, MAINT, E_NONE));
                    }
                    t += rng.gen_range(1..20);
                }
            }
            n += job.period;
        }
    }

    // Anomalies.
    for p in plans.iter().filter(|p| p.region == ri) {
        let end = world.start + world.minutes * 60;
        events.extend(
            p.events
                .iter()
                .filter(|e| e.t >= world.start && e.t < end)
                .copied(),
        );
    }

    // Routine changes, drawn from their own generator (without them, the output is unchanged).
    let mut crng = StdRng::seed_from_u64(splitmix(opts.seed ^ splitmix(ri as u64 + 1) ^ 0x6368));
    for c in changes.iter().filter(|c| c.region == ri) {
        let end = world.start + world.minutes * 60;
        events.extend(
            c.events
                .iter()
                .filter(|e| e.t >= world.start && e.t < end)
                .copied(),
        );
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

    let mut keys = BTreeSet::new();
    for e in &events {
        if e.err != E_NONE || !APIS[e.api as usize].ro {
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

fn background_error(a: &ApiSpec, who: u16, rng: &mut StdRng) -> u8 {
    if PRINCIPALS[who as usize].kind == PKind::Service {
        return E_NONE;
    }
    let r: f64 = rng.r#gen();
    let mut p = 0.0012;
    if r < p {
        return E_DENIED;
    }
    p += a.throttle;
    if r < p {
        return E_THROTTLE;
    }
    if let Some((_, q)) = a.notfound {
        p += q;
        if r < p {
            return E_NOTFOUND;
        }
    }
    E_NONE
}

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rec<'a> {
    event_version: &'a str,
    user_identity: UserIdentity<'a>,
    event_time: &'a str,
    event_source: &'a str,
    event_name: &'a str,
    aws_region: &'a str,
    #[serde(rename = "sourceIPAddress")]
    source_ip_address: &'a str,
    user_agent: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<&'a str>,
    request_parameters: Value,
    response_elements: Value,
    #[serde(rename = "requestID")]
    request_id: &'a str,
    #[serde(rename = "eventID")]
    event_id: &'a str,
    read_only: bool,
    event_type: &'a str,
    management_event: bool,
    recipient_account_id: &'a str,
    event_category: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_details: Option<Tls<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_credential_from_console: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserIdentity<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    principal_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_key_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_context: Option<SessionContext<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    invoked_by: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionContext<'a> {
    session_issuer: Issuer<'a>,
    attributes: Attributes<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Issuer<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    principal_id: &'a str,
    arn: &'a str,
    account_id: &'a str,
    user_name: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Attributes<'a> {
    creation_date: &'a str,
    mfa_authenticated: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Tls<'a> {
    tls_version: &'a str,
    cipher_suite: &'a str,
    client_provided_host_header: &'a str,
}

const BUCKETS: &[&str] = &[
    "orders-prod-assets",
    "orders-prod-logs",
    "acme-terraform-state",
    "acme-cloudtrail-archive",
    "image-resize-uploads",
    "image-resize-thumbnails",
];
const ROLES: &[&str] = &[
    "orders-api-task",
    "image-resize-lambda-role",
    "github-actions-deploy",
    "terraform-runner",
    "DatadogIntegrationRole",
    "ops-maintenance",
    "EC2-SSM-InstanceRole",
];
const POLICIES: &[&str] = &[
    "orders-api-access",
    "image-resize-s3",
    "ci-deploy-boundary",
    "datadog-read-only",
];
const USERS: &[&str] = &["carol", "ci-legacy", "backup-admin"];
const NEW_USERS: &[&str] = &[
    "svc-sync-01",
    "svc-sync-02",
    "support-tmp",
    "admin2",
    "ops-breakglass",
];
const FUNCS: &[&str] = &[
    "image-resize",
    "orders-webhook",
    "nightly-report",
    "ops-maintenance-runner",
];
const PARAMS: &[&str] = &[
    "/orders/prod/db-host",
    "/orders/prod/feature-flags",
    "/orders/prod/api-url",
    "/image-resize/max-size",
    "/shared/datadog-api-key",
];
const TABLES: &[&str] = &["orders", "order-items", "sessions", "idempotency-keys"];
const LOG_GROUPS: &[&str] = &[
    "/aws/lambda/image-resize",
    "/aws/lambda/orders-webhook",
    "/ecs/orders-api",
    "/aws/rds/instance/orders-db-1/postgresql",
];
const SECRETS: &[&str] = &[
    "prod/orders/db",
    "prod/orders/stripe",
    "prod/image-resize/cdn",
];
const REPOS: &[&str] = &["orders-api", "image-resize", "nightly-report"];
const STACKS: &[&str] = &[
    "orders-api-prod",
    "image-resize-prod",
    "network-base",
    "monitoring",
];
const ALARMS: &[&str] = &[
    "orders-api-5xx",
    "orders-db-cpu",
    "image-resize-errors",
    "queue-depth",
];
const DBS: &[&str] = &["orders-db-1", "orders-db-2", "reporting-db"];

fn pick<'a>(rng: &mut StdRng, v: &[&'a str]) -> &'a str {
    v[rng.gen_range(0..v.len())]
}

/// Stable per-region resource ids.
struct Resources {
    instances: Vec<String>,
    volumes: Vec<String>,
    snapshots: Vec<String>,
    vpc: String,
    keys: Vec<String>,
    target_group: String,
    ami: String,
}

impl Resources {
    fn new(seed: u64, ri: usize, region: &str, account: &str) -> Resources {
        let h = |tag: u64, i: u64| splitmix(seed ^ splitmix((ri as u64) << 32 ^ tag << 16 ^ i));
        let hex17 = |x: u64| format!("{:016x}", x);
        Resources {
            instances: (0..40).map(|i| format!("i-0{}", hex17(h(1, i)))).collect(),
            volumes: (0..20)
                .map(|i| format!("vol-0{}", hex17(h(2, i))))
                .collect(),
            snapshots: (0..20)
                .map(|i| format!("snap-0{}", hex17(h(3, i))))
                .collect(),
            vpc: format!("vpc-0{}", hex17(h(4, 0))),
            keys: (0..3)
                .map(|i| {
                    let a = h(5, i);
                    let b = h(6, i);
                    format!(
                        "arn:aws:kms:{region}:{account}:key/{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
                        a >> 32,
                        (a >> 16) & 0xffff,
                        a & 0xfff,
                        (b >> 48) & 0xfff,
                        b & 0xffff_ffff_ffff
                    )
                })
                .collect(),
            target_group: format!(
                "arn:aws:elasticloadbalancing:{region}:{account}:targetgroup/orders-api/{}",
                hex17(h(7, 0))
            ),
            ami: format!("ami-0{}", hex17(h(8, 0))),
        }
    }
}

struct FileWriter<'a> {
    world: &'a World<'a>,
    region: &'a str,
    root: PathBuf,
    day_dir: Option<(i64, PathBuf)>,
    res: Resources,
    json: Vec<u8>,
}

fn event_version(svc: &str) -> &'static str {
    match svc {
        "ssm"
        | "logs"
        | "backup"
        | "secretsmanager"
        | "rds"
        | "elasticloadbalancing"
        | "autoscaling"
        | "cloudformation"
        | "sqs"
        | "ecr" => "1.08",
        _ => "1.09",
    }
}

fn iam_action(svc: &str, name: &str) -> String {
    let prefix = match svc {
        "monitoring" => "cloudwatch",
        other => other,
    };
    let base = name
        .trim_end_matches("v2")
        .trim_end_matches(|c: char| c.is_ascii_digit());
    format!("{prefix}:{base}")
}

impl<'a> FileWriter<'a> {
    fn new(world: &'a World<'a>, ri: usize) -> FileWriter<'a> {
        let opts = world.opts;
        let region = opts.regions[ri].as_str();
        FileWriter {
            world,
            region,
            root: opts
                .out
                .join("AWSLogs")
                .join(&opts.account)
                .join("CloudTrail")
                .join(region),
            day_dir: None,
            res: Resources::new(opts.seed, ri, region, &opts.account),
            json: Vec::with_capacity(1 << 20),
        }
    }

    /// Writes one log file; returns the number of records written (duplicates included).
    fn write_file(&mut self, delivery: i64, evs: &[Ev], rng: &mut StdRng) -> io::Result<u64> {
        let d = DateTime::from_timestamp(delivery, 0).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "delivery time out of range")
        })?;
        let day = delivery.div_euclid(86_400);
        let dir = match &self.day_dir {
            Some((dd, p)) if *dd == day => p.clone(),
            _ => {
                let p = self
                    .root
                    .join(format!("{:04}", d.year()))
                    .join(format!("{:02}", d.month()))
                    .join(format!("{:02}", d.day()));
                fs::create_dir_all(&p)?;
                self.day_dir = Some((day, p.clone()));
                p
            }
        };
        let account = &self.world.opts.account;
        let name = format!(
            "{account}_CloudTrail_{}_{:04}{:02}{:02}T{:02}{:02}Z_{}.json.gz",
            self.region,
            d.year(),
            d.month(),
            d.day(),
            d.hour(),
            d.minute(),
            rand_alnum(rng, 16)
        );
        let mut json = std::mem::take(&mut self.json);
        json.clear();
        json.extend_from_slice(b"{\"Records\":[");
        let mut n = 0u64;
        for e in evs {
            // A few duplicate records (same eventID), as CloudTrail occasionally delivers.
            let copies = if rng.gen_bool(0.0008) { 2 } else { 1 };
            if n > 0 {
                json.push(b',');
            }
            n += u64::from(copies);
            self.render(&mut json, e, copies, rng)?;
        }
        json.extend_from_slice(b"]}");
        let file = File::create(dir.join(name))?;
        let mut gz = GzEncoder::new(BufWriter::with_capacity(1 << 16, file), Compression::fast());
        gz.write_all(&json)?;
        let mut inner = gz.finish()?;
        inner.flush()?;
        self.json = json;
        Ok(n)
    }

    /// Appends `copies` comma-separated copies of one record.
    fn render(&self, out: &mut Vec<u8>, e: &Ev, copies: u32, rng: &mut StdRng) -> io::Result<()> {
        let world = self.world;
        let account = world.opts.account.as_str();
        let region = self.region;
        let a = &APIS[e.api as usize];
        let p = &world.catalog.principals[e.who as usize];
        let spec = p.spec;
        let event_time = rfc3339(e.t);
        let creation = rfc3339(
            e.t - e.t.rem_euclid(3600) + if e.t.rem_euclid(3600) < 120 { -3600 } else { 0 },
        );
        let (ip, ua) = match spec.kind {
            PKind::Service | PKind::ServiceRole => (spec.invoked_by, spec.invoked_by),
            _ => (pick(rng, spec.ips), pick(rng, spec.agents)),
        };
        let session_context = match spec.kind {
            PKind::Role | PKind::ServiceRole => Some(SessionContext {
                session_issuer: Issuer {
                    kind: "Role",
                    principal_id: &p.issuer_id,
                    arn: &p.issuer_arn,
                    account_id: account,
                    user_name: spec.name,
                },
                attributes: Attributes {
                    creation_date: &creation,
                    mfa_authenticated: if spec.console { "true" } else { "false" },
                },
            }),
            _ => None,
        };
        let user_identity = match spec.kind {
            PKind::Service => UserIdentity {
                kind: "AWSService",
                principal_id: None,
                arn: None,
                account_id: None,
                access_key_id: None,
                user_name: None,
                session_context: None,
                invoked_by: Some(spec.invoked_by),
            },
            PKind::User => UserIdentity {
                kind: "IAMUser",
                principal_id: Some(&p.principal_id),
                arn: Some(&p.arn),
                account_id: Some(account),
                access_key_id: Some(&p.access_key),
                user_name: Some(spec.name),
                session_context: None,
                invoked_by: None,
            },
            PKind::Role | PKind::ServiceRole => UserIdentity {
                kind: "AssumedRole",
                principal_id: Some(&p.principal_id),
                arn: Some(&p.arn),
                account_id: Some(account),
                access_key_id: Some(&p.access_key),
                user_name: None,
                session_context,
                invoked_by: (spec.kind == PKind::ServiceRole).then_some(spec.invoked_by),
            },
        };
        let code = error_code(a, e.err);
        let message = match e.err {
            E_NONE => None,
            E_DENIED => {
                let who = if p.arn.is_empty() {
                    spec.name
                } else {
                    p.arn.as_str()
                };
                let action = iam_action(a.svc, a.name);
                Some(if a.svc == "ec2" {
                    format!(
                        "You are not authorized to perform this operation. User: {who} is not \
                         authorized to perform: {action} because no identity-based policy \
                         allows the {action} action"
                    )
                } else {
                    format!(
                        "User: {who} is not authorized to perform: {action} because no \
                         identity-based policy allows the {action} action"
                    )
                })
            }
            E_THROTTLE => Some(
                if a.svc == "ec2" {
                    "Request limit exceeded."
                } else {
                    "Rate exceeded"
                }
                .to_string(),
            ),
            E_NOTFOUND => match code {
                Some("NoSuchEntity") => Some(format!(
                    "The role with name {} cannot be found.",
                    pick(
                        rng,
                        &["orders-api-task-old", "legacy-deployer", "tmp-migration"]
                    )
                )),
                Some("NoSuchTagSet") => Some("The TagSet does not exist".to_string()),
                Some("ParameterNotFound") => None,
                _ => Some(format!(
                    "Resource not found: {}",
                    pick(
                        rng,
                        &[
                            "orders-webhook-v1",
                            "prod/orders/legacy",
                            "image-resize-old"
                        ]
                    )
                )),
            },
            E_INSTLIMIT => Some(format!(
                "You have requested more instances ({}) than your current instance limit of 20 \
                 allows for the specified instance type. Please visit \
                 http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this \
                 limit.",
                rng.gen_range(21..40)
            )),
            E_VCPU => Some(
                "You have requested more vCPU capacity than your current vCPU limit of 64 allows \
                 for the instance bucket that the specified instance type belongs to. Please \
                 visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to \
                 this limit."
                    .to_string(),
            ),
            _ => None,
        };
        let request_parameters = self.request_params(a, rng);
        let response_elements = if e.err == E_NONE {
            self.response(a, account, &event_time, rng)
        } else {
            Value::Null
        };
        let event_id = uuid_from(rng);
        let request_id = if a.svc == "s3" {
            rand_upper_alnum(rng, 16)
        } else {
            uuid_from(rng)
        };
        let host = match a.svc {
            "iam" => "iam.amazonaws.com".to_string(),
            "sts" if rng.gen_bool(0.3) => "sts.amazonaws.com".to_string(),
            svc => format!("{svc}.{region}.amazonaws.com"),
        };
        let tls_details = match spec.kind {
            PKind::Service | PKind::ServiceRole => None,
            _ => Some(Tls {
                tls_version: "TLSv1.3",
                cipher_suite: "TLS_AES_128_GCM_SHA256",
                client_provided_host_header: &host,
            }),
        };
        let rec = Rec {
            event_version: event_version(a.svc),
            user_identity,
            event_time: &event_time,
            event_source: &world.catalog.sources[e.api as usize],
            event_name: a.name,
            aws_region: region,
            source_ip_address: ip,
            user_agent: ua,
            error_code: code,
            error_message: message.as_deref(),
            request_parameters,
            response_elements,
            request_id: &request_id,
            event_id: &event_id,
            read_only: a.ro,
            event_type: "AwsApiCall",
            management_event: true,
            recipient_account_id: account,
            event_category: "Management",
            tls_details,
            session_credential_from_console: spec.console.then_some("true"),
        };
        for c in 0..copies {
            if c > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut *out, &rec)?;
        }
        Ok(())
    }

    fn request_params(&self, a: &ApiSpec, rng: &mut StdRng) -> Value {
        let region = self.region;
        let account = self.world.opts.account.as_str();
        let res = &self.res;
        let inst = |rng: &mut StdRng| res.instances[rng.gen_range(0..res.instances.len())].clone();
        match a.pk {
            Pk::Null => Value::Null,
            Pk::InstanceIds => {
                json!({"instancesSet": {"items": [{"instanceId": inst(rng)}]}, "filterSet": {}})
            }
            Pk::Filters => json!({"filterSet": {"items": [{"name": "vpc-id",
                "valueSet": {"items": [{"value": res.vpc}]}}]}}),
            Pk::Bucket => {
                let b = pick(rng, BUCKETS);
                json!({"bucketName": b, "Host": format!("{b}.s3.{region}.amazonaws.com")})
            }
            Pk::RoleName => json!({"roleName": pick(rng, ROLES)}),
            Pk::PolicyArn => {
                json!({"policyArn": format!("arn:aws:iam::{account}:policy/{}", pick(rng, POLICIES))})
            }
            Pk::UserName | Pk::AccessKey | Pk::LoginProfile => {
                let fresh = matches!(a.name, "CreateUser" | "CreateLoginProfile")
                    || (a.name == "CreateAccessKey" && rng.gen_bool(0.5));
                let pool = if fresh { NEW_USERS } else { USERS };
                let u = pick(rng, pool);
                if a.pk == Pk::LoginProfile {
                    json!({"userName": u, "passwordResetRequired": false})
                } else {
                    json!({"userName": u})
                }
            }
            Pk::AttachUserPolicy => json!({"userName": pick(rng, NEW_USERS),
                "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
            Pk::PutUserPolicy => {
                json!({"userName": pick(rng, NEW_USERS), "policyName": "inline-admin",
                "policyDocument": "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}]}"})
            }
            Pk::AddUserToGroup => {
                json!({"groupName": "Admins", "userName": pick(rng, NEW_USERS)})
            }
            Pk::Function => json!({"functionName": pick(rng, FUNCS)}),
            Pk::Param => json!({"name": pick(rng, PARAMS), "withDecryption": rng.gen_bool(0.5)}),
            Pk::Params => {
                json!({"names": [pick(rng, PARAMS), pick(rng, PARAMS)], "withDecryption": true})
            }
            Pk::ParamPath => {
                json!({"path": "/orders/prod", "recursive": true, "withDecryption": true})
            }
            Pk::KeyId => json!({"keyId": res.keys[rng.gen_range(0..res.keys.len())]}),
            Pk::Decrypt => json!({"encryptionAlgorithm": "SYMMETRIC_DEFAULT"}),
            Pk::LogGroup => json!({"logGroupName": pick(rng, LOG_GROUPS)}),
            Pk::LogStream => json!({"logGroupName": pick(rng, LOG_GROUPS),
                "logStreamName": format!("2026/03/02/[$LATEST]{}", rand_hex(rng, 32))}),
            Pk::Table => json!({"tableName": pick(rng, TABLES)}),
            Pk::DbInstance => json!({"dBInstanceIdentifier": pick(rng, DBS)}),
            Pk::DbCluster => json!({"dBClusterIdentifier": "orders-aurora"}),
            Pk::DbSnapshot => {
                let db = pick(rng, DBS);
                json!({"dBSnapshotIdentifier": format!("{db}-{}", rand_hex(rng, 8)),
                    "dBInstanceIdentifier": db})
            }
            Pk::Secret => json!({"secretId": pick(rng, SECRETS)}),
            Pk::Repo => json!({"repositoryName": pick(rng, REPOS)}),
            Pk::Stack => json!({"stackName": pick(rng, STACKS)}),
            Pk::Alarm => {
                if a.ro {
                    json!({"alarmName": pick(rng, ALARMS)})
                } else {
                    json!({"alarmName": pick(rng, ALARMS), "namespace": "AWS/ApplicationELB",
                        "metricName": "HTTPCode_Target_5XX_Count", "statistic": "Sum",
                        "period": 60, "evaluationPeriods": 5, "threshold": 10.0,
                        "comparisonOperator": "GreaterThanThreshold"})
                }
            }
            Pk::MetricData => json!({"metricDataQueries": [{"id": "m1", "metricStat": {
                "metric": {"namespace": "AWS/EC2", "metricName": "CPUUtilization"},
                "period": 300, "stat": "Average"}}]}),
            Pk::TargetGroup => json!({"targetGroupArn": res.target_group}),
            Pk::Asg => json!({"autoScalingGroupNames": ["orders-api-asg"]}),
            Pk::Queue => {
                json!({"queueUrl": format!("https://sqs.{region}.amazonaws.com/{account}/orders-events"),
                "attributeNames": ["All"]})
            }
            Pk::AssumeRole => json!({
                "roleArn": format!("arn:aws:iam::{account}:role/{}", pick(rng, ROLES)),
                "roleSessionName": rand_hex(rng, 32),
                "durationSeconds": 3600}),
            Pk::RunInstances => json!({
                "instancesSet": {"items": [{"imageId": res.ami, "minCount": 1, "maxCount": 1}]},
                "instanceType": pick(rng, &["m6i.large", "c6i.xlarge", "m6i.2xlarge"]),
                "blockDeviceMapping": {}, "monitoring": {"enabled": false},
                "disableApiTermination": false, "disableApiStop": false,
                "clientToken": uuid_from(rng),
                "launchTemplate": {"launchTemplateName": "orders-api", "version": "$Latest"}}),
            Pk::CreateVolume => {
                json!({"size": 100, "zone": format!("{region}a"), "volumeType": "gp3",
                "encrypted": true})
            }
            Pk::Snapshot => {
                if a.name == "DeleteSnapshot" {
                    json!({"snapshotId": res.snapshots[rng.gen_range(0..res.snapshots.len())]})
                } else {
                    json!({"volumeId": res.volumes[rng.gen_range(0..res.volumes.len())],
                        "description": "ops-maintenance scheduled snapshot"})
                }
            }
            Pk::VolumeId => json!({"volumeId": res.volumes[rng.gen_range(0..res.volumes.len())],
                "instanceId": inst(rng), "device": "/dev/sdf"}),
            Pk::Tags => json!({"resourcesSet": {"items": [{"resourceId": inst(rng)}]},
                "tagSet": {"items": [{"key": "Name", "value": "orders-api"}]}}),
            Pk::PutParameter => json!({"name": "/ops/heartbeat/last-run", "type": "String",
                "overwrite": true, "tier": "Standard"}),
            Pk::Backup => json!({"backupVaultName": "Default",
                "resourceArn": format!("arn:aws:dynamodb:{region}:{account}:table/{}", pick(rng, TABLES)),
                "iamRoleArn": format!("arn:aws:iam::{account}:role/service-role/AWSBackupDefaultServiceRole")}),
            Pk::Retention => json!({"logGroupName": pick(rng, LOG_GROUPS), "retentionInDays": 30}),
            Pk::MaxResults => {
                if rng.gen_bool(0.5) {
                    Value::Null
                } else {
                    json!({"maxResults": 100})
                }
            }
        }
    }

    fn response(&self, a: &ApiSpec, account: &str, event_time: &str, rng: &mut StdRng) -> Value {
        match (a.svc, a.name) {
            ("ec2", "RunInstances") => json!({
                "requestId": uuid_from(rng),
                "reservationId": format!("r-0{}", rand_hex(rng, 16)),
                "ownerId": account,
                "instancesSet": {"items": [{"instanceId": format!("i-0{}", rand_hex(rng, 16)),
                    "instanceState": {"code": 0, "name": "pending"}}]}}),
            ("ec2", "CreateVolume") => json!({"requestId": uuid_from(rng),
                "volumeId": format!("vol-0{}", rand_hex(rng, 16)), "size": "100",
                "status": "creating", "volumeType": "gp3"}),
            ("ec2", "CreateSnapshot") => json!({"requestId": uuid_from(rng),
                "snapshotId": format!("snap-0{}", rand_hex(rng, 16)), "status": "pending"}),
            ("iam", "CreateAccessKey") => json!({"accessKey": {
                "accessKeyId": format!("AKIA{}", rand_upper_alnum(rng, 16)),
                "status": "Active", "createDate": event_time}}),
            ("iam", "CreateUser") => json!({"user": {"path": "/",
                "userId": format!("AIDA{}", rand_upper_alnum(rng, 17)), "createDate": event_time}}),
            ("ssm", "PutParameter") => {
                json!({"version": rng.gen_range(100..5000), "tier": "Standard"})
            }
            ("backup", "StartBackupJob") => json!({"backupJobId": uuid_from(rng),
                "creationDate": event_time, "isParent": false}),
            ("sts", "AssumeRole") | ("sts", "AssumeRoleWithWebIdentity") => json!({
                "credentials": {"accessKeyId": format!("ASIA{}", rand_upper_alnum(rng, 16)),
                    "sessionToken": "IQoJb3JpZ2luX2VjEXAMPLE", "expiration": event_time},
                "assumedRoleUser": {"assumedRoleId": format!("AROA{}", rand_upper_alnum(rng, 17))}}),
            ("rds", "CreateDBSnapshot") => json!({"status": "creating", "snapshotType": "manual"}),
            _ => Value::Null,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use std::collections::BTreeMap;
    use std::io::Read;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            static N: AtomicUsize = AtomicUsize::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let n = N.fetch_add(1, Ordering::SeqCst);
            TempDir(std::env::temp_dir().join(format!(
                "trailsight-sim-{tag}-{}-{nanos}-{n}",
                std::process::id()
            )))
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn files_under(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p);
                }
            }
        }
        out.sort();
        out
    }

    fn log_files(dir: &Path) -> Vec<PathBuf> {
        files_under(dir)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "gz"))
            .collect()
    }

    fn read_records(path: &Path) -> Vec<Value> {
        let mut s = String::new();
        GzDecoder::new(File::open(path).unwrap())
            .read_to_string(&mut s)
            .unwrap();
        let v: Value = serde_json::from_str(&s).unwrap();
        v["Records"].as_array().unwrap().clone()
    }

    fn ts(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }

    /// Delivery time from a file name (`..._20260302T1405Z_xxxx.json.gz`).
    fn delivery_of(path: &Path) -> i64 {
        let name = path.file_name().unwrap().to_str().unwrap();
        let parts: Vec<&str> = name.split('_').collect();
        let stamp = parts[parts.len() - 2];
        let t = chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%MZ").unwrap();
        t.and_utc().timestamp()
    }

    fn opts(out: &Path, days: u32, regions: &[&str], seed: u64) -> SimulateOptions {
        let mut o = SimulateOptions::new(out.to_path_buf());
        o.days = days;
        o.seed = seed;
        o.regions = regions.iter().map(|r| r.to_string()).collect();
        o
    }

    #[test]
    fn same_seed_same_bytes() {
        let a = TempDir::new("det-a");
        let b = TempDir::new("det-b");
        let c = TempDir::new("det-c");
        let ra = simulate(&opts(&a.0, 1, &["us-east-1"], 7)).unwrap();
        let rb = simulate(&opts(&b.0, 1, &["us-east-1"], 7)).unwrap();
        assert_eq!(
            (ra.files, ra.records, ra.anomalies),
            (rb.files, rb.records, rb.anomalies)
        );
        let fa = files_under(&a.0);
        let fb = files_under(&b.0);
        assert_eq!(fa.len(), fb.len());
        assert!(fa.len() > 250, "{} files", fa.len());
        for (x, y) in fa.iter().zip(&fb) {
            assert_eq!(x.strip_prefix(&a.0).unwrap(), y.strip_prefix(&b.0).unwrap());
            assert!(
                fs::read(x).unwrap() == fs::read(y).unwrap(),
                "{x:?} differs"
            );
        }
        simulate(&opts(&c.0, 1, &["us-east-1"], 8)).unwrap();
        let fc = files_under(&c.0);
        let names = |v: &[PathBuf], root: &Path| -> Vec<PathBuf> {
            v.iter()
                .map(|p| p.strip_prefix(root).unwrap().to_path_buf())
                .collect()
        };
        assert_ne!(names(&fa, &a.0), names(&fc, &c.0));
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

    /// Per-minute counts of every (region, source, name, call|errorCode) key.
    fn minute_counts(dir: &Path) -> BTreeMap<(String, String, String, String), BTreeMap<i64, u32>> {
        let mut m: BTreeMap<_, BTreeMap<i64, u32>> = BTreeMap::new();
        for f in log_files(dir) {
            let mut ids = BTreeSet::new();
            for r in read_records(&f) {
                if !ids.insert(r["eventID"].as_str().unwrap().to_string()) {
                    continue;
                }
                let t = ts(r["eventTime"].as_str().unwrap()).div_euclid(60);
                let key = |what: &str| {
                    (
                        r["awsRegion"].as_str().unwrap().to_string(),
                        r["eventSource"].as_str().unwrap().to_string(),
                        r["eventName"].as_str().unwrap().to_string(),
                        what.to_string(),
                    )
                };
                if r["readOnly"] == false {
                    *m.entry(key("call")).or_default().entry(t).or_default() += 1;
                }
                if let Some(e) = r["errorCode"].as_str() {
                    *m.entry(key(e)).or_default().entry(t).or_default() += 1;
                }
            }
        }
        m
    }

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
        let labels: Value = serde_json::from_slice(&fs::read(&rep.labels).unwrap()).unwrap();
        assert_eq!(labels["days"], 3);
        assert_eq!(labels["seed"], 11);
        assert_eq!(labels["start"], "2026-03-02T00:00:00Z");
        assert_eq!(labels["end"], "2026-03-05T00:00:00Z");
        assert!(labels["series_days"].as_u64().unwrap() > 100);
        let anomalies = labels["anomalies"].as_array().unwrap();
        assert_eq!(anomalies.len(), 4);
        let counts = minute_counts(&d.0);
        for (i, a) in anomalies.iter().enumerate() {
            assert_eq!(a["id"], i + 1);
            assert_eq!(a["account"], "111122223333");
            let kind: AnomalyKind = a["kind"].as_str().unwrap().parse().unwrap();
            let injected = inj.iter().find(|x| x.kind == kind).unwrap();
            let (s, e) = (
                ts(a["start"].as_str().unwrap()),
                ts(a["end"].as_str().unwrap()),
            );
            assert!(e > s);
            let region = a["region"].as_str().unwrap();
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
            let keys = a["keys"].as_array().unwrap();
            assert!(!keys.is_empty());
            if kind == AnomalyKind::ProvisioningSpike {
                assert!(
                    keys.iter()
                        .any(|k| k["insightType"] == "ApiCallRateInsight")
                );
                assert!(
                    keys.iter()
                        .any(|k| k["insightType"] == "ApiErrorRateInsight"
                            && k["errorCode"].as_str().unwrap().starts_with("Client."))
                );
            }
            for k in keys {
                let what = k["errorCode"].as_str().unwrap_or("call").to_string();
                if k["insightType"] == "ApiErrorRateInsight" {
                    assert_ne!(what, "call");
                }
                let key = (
                    region.to_string(),
                    k["eventSource"].as_str().unwrap().to_string(),
                    k["eventName"].as_str().unwrap().to_string(),
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
    fn routine_changes_are_labelled_and_generated() {
        let d = TempDir::new("changes");
        let mut o = opts(&d.0, 6, &["eu-west-1"], 4);
        o.injections = Injections::None;
        o.changes = true;
        let rep = simulate(&o).unwrap();
        assert_eq!(rep.changes, 4);
        let labels: Value = serde_json::from_slice(&fs::read(&rep.labels).unwrap()).unwrap();
        let changes = labels["changes"].as_array().unwrap();
        let kinds: Vec<&str> = changes
            .iter()
            .map(|c| c["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["new-job", "new-job", "rate-step", "new-api"]);
        let start = ts("2026-03-02T00:00:00Z");
        let counts = minute_counts(&d.0);
        for c in changes {
            let (from, learned) = (
                ts(c["from"].as_str().unwrap()),
                ts(c["learned_after"].as_str().unwrap()),
            );
            assert_eq!(learned - from, 3 * 86_400);
            // A day of history before, a day after the learning period.
            assert!(
                from >= start + 86_400 && learned <= start + 5 * 86_400,
                "{c}"
            );
            let k = &c["keys"][0];
            assert_eq!(k["insightType"], "ApiCallRateInsight");
            let key = (
                "eu-west-1".to_string(),
                k["eventSource"].as_str().unwrap().to_string(),
                k["eventName"].as_str().unwrap().to_string(),
                "call".to_string(),
            );
            let calls = &counts[&key];
            let (m0, m1) = (from.div_euclid(60), learned.div_euclid(60));
            let sum = |a: i64, b: i64| calls.range(a..b).map(|(_, n)| u64::from(*n)).sum::<u64>();
            match c["kind"].as_str().unwrap() {
                "new-job" | "new-api" => {
                    // Never seen before its first minute, then used on every weekday.
                    assert_eq!(sum(i64::MIN, m0), 0, "{c}");
                    assert!(calls.contains_key(&m0), "{c}");
                    if c["kind"] == "new-job" {
                        for day in 0..4 {
                            assert!(sum(m0 + day * 1440, m0 + (day + 1) * 1440) > 0, "{c}");
                        }
                    }
                }
                _ => {
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
        let labels: Value = serde_json::from_slice(&fs::read(&rep.labels).unwrap()).unwrap();
        assert!(labels.get("changes").is_none());
        o.changes = true;
        assert!(simulate(&o).is_err());
    }

    #[test]
    fn quiet_scenario_has_no_labels() {
        let d = TempDir::new("quiet");
        let mut o = opts(&d.0, 1, &["eu-west-1"], 5);
        o.injections = Injections::None;
        let rep = simulate(&o).unwrap();
        assert_eq!(rep.anomalies, 0);
        let labels: Value = serde_json::from_slice(&fs::read(&rep.labels).unwrap()).unwrap();
        assert_eq!(labels["anomalies"].as_array().unwrap().len(), 0);
        assert!(labels["series_days"].as_u64().unwrap() > 20);
        assert_eq!(labels["regions"], json!(["eu-west-1"]));
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

    #[test]
    fn parse_injection_forms() {
        let start = SimulateOptions::new(PathBuf::from("x")).start;
        let at = |s: &str| parse_injection(s, start).unwrap();
        let i = at("iam-burst@3d14h");
        assert_eq!(i.kind, AnomalyKind::IamBurst);
        assert_eq!(i.at.to_rfc3339(), "2026-03-05T14:00:00+00:00");
        assert_eq!(i.region, None);
        assert_eq!(
            at("maintenance-gap@2d").at.to_rfc3339(),
            "2026-03-04T00:00:00+00:00"
        );
        assert_eq!(
            at("throttling-storm@50h30m").at.to_rfc3339(),
            "2026-03-04T02:30:00+00:00"
        );
        assert_eq!(
            at("throttling-storm@+90m").at.to_rfc3339(),
            "2026-03-02T01:30:00+00:00"
        );
        let i = at("provisioning-spike@2026-03-06T02:07:45Z@eu-west-1");
        assert_eq!(i.kind, AnomalyKind::ProvisioningSpike);
        assert_eq!(i.at.to_rfc3339(), "2026-03-06T02:07:00+00:00");
        assert_eq!(i.region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            at("Maintenance-Gap@2026-03-06T02:00:00+01:00")
                .at
                .to_rfc3339(),
            "2026-03-06T01:00:00+00:00"
        );
        for bad in [
            "bogus@1d",
            "iam-burst",
            "iam-burst@",
            "iam-burst@3x",
            "iam-burst@h",
            "iam-burst@12",
            "iam-burst@2026-13-01T00:00:00Z",
        ] {
            assert!(parse_injection(bad, start).is_err(), "{bad} accepted");
        }
        for k in AnomalyKind::ALL {
            assert_eq!(k.to_string().parse::<AnomalyKind>().unwrap(), k);
        }
    }

    #[test]
    fn catalog_is_consistent() {
        let mut total = 0.0;
        let mut writes = 0.0;
        let mut background = 0;
        for (g, share) in [
            (Group::Business, BUSINESS_SHARE),
            (Group::Steady, 1.0 - BUSINESS_SHARE),
        ] {
            let apis: Vec<&ApiSpec> = APIS.iter().filter(|a| a.group == g).collect();
            background += apis.len();
            let w: f64 = apis.iter().map(|a| a.w).sum();
            total += share;
            writes += share * apis.iter().filter(|a| !a.ro).map(|a| a.w).sum::<f64>() / w;
        }
        let wf = writes / total;
        assert!((0.07..0.13).contains(&wf), "write share {wf}");
        assert!(
            (60..=110).contains(&background),
            "{background} background APIs"
        );
        for a in APIS {
            assert!(!a.callers.is_empty(), "{}", a.name);
            assert!(a.callers.iter().all(|c| (*c as usize) < PRINCIPALS.len()));
            assert_eq!(a.group == Group::Off, a.w == 0.0, "{}", a.name);
        }
        for (svc, name, periods) in JOB_POOL {
            let a = &APIS[api_index(svc, name) as usize];
            assert_eq!(a.group, Group::Off, "{name} must be called by its job only");
            assert!(!a.ro);
            assert!(periods.iter().all(|p| [5, 10, 15, 30, 60].contains(p)));
        }
        for seed in 0..50 {
            let jobs = choose_jobs(seed, 2);
            assert!((4..=6).contains(&jobs.len()));
            assert!(jobs.iter().any(|j| j.period <= 15));
        }
    }
}
