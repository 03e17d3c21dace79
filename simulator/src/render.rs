//! Records as CloudTrail writes them (identities, request parameters, responses, error
//! messages), and the gzip log files that hold them.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use chrono::{DateTime, Datelike, Timelike};
use flate2::Compression;
use flate2::write::GzEncoder;
use rand::Rng;
use rand::rngs::StdRng;
use serde::Serialize;
use serde_json::{Value, json};

use crate::catalog::Identity;
use crate::catalog::apis::{APIS, ApiSpec, Pk};
use crate::catalog::errors::ErrorKind;
use crate::catalog::principals::{PKind, Principal};
use crate::random::{rand_alnum, rand_hex, rand_upper_alnum, splitmix, uuid_from};
use crate::time::rfc3339;
use crate::world::{Ev, Via, World};

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
/// The roles each caller assumes (`AssumeRole`'s `roleArn`); others draw from [`ROLES`].
fn usual_roles(who: Principal) -> &'static [&'static str] {
    match who {
        Principal::Ci => CI_ROLES,
        Principal::Datadog => &["DatadogIntegrationRole"],
        Principal::EcsTasks => &["orders-api-task"],
        Principal::LambdaService => &["image-resize-lambda-role", "ops-maintenance"],
        _ => ROLES,
    }
}

/// The roles the CI role assumes in its deploys.
pub(crate) const CI_ROLES: &[&str] = &["terraform-runner", "ops-maintenance"];

/// Roles of the account no background caller assumes: what role chaining tries beyond the
/// stolen principal's usual ones, with [`ROLES`].
pub(crate) const OTHER_ROLES: &[&str] = &[
    "OrganizationAccountAccessRole",
    "security-audit",
    "break-glass-admin",
    "billing-readonly",
    "orders-db-admin",
];

pub(crate) const ROLES: &[&str] = &[
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

/// What a person's console session shows as its user agent: their browser, or `AWS Internal`.
fn is_console_agent(agent: &str) -> bool {
    agent.starts_with("Mozilla/") || agent == "AWS Internal"
}

/// A user agent of the principal's, among those `via` allows (all of them when it has none).
fn pick_agent<'a>(rng: &mut StdRng, agents: &[&'a str], via: Via) -> &'a str {
    let allowed: Vec<&'a str> = match via {
        Via::Any => return pick(rng, agents),
        Via::Console => agents
            .iter()
            .copied()
            .filter(|a| is_console_agent(a))
            .collect(),
        Via::Program => agents
            .iter()
            .copied()
            .filter(|a| !is_console_agent(a))
            .collect(),
    };
    if allowed.is_empty() {
        pick(rng, agents)
    } else {
        pick(rng, &allowed)
    }
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

pub(crate) struct FileWriter<'a> {
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

/// The `errorMessage` of a call that failed with `kind` (`None`: the service writes none).
fn error_message(kind: ErrorKind, a: &ApiSpec, who: &Identity, rng: &mut StdRng) -> Option<String> {
    match kind {
        ErrorKind::Denied => {
            let who = who.arn_or_name();
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
        ErrorKind::Throttled => Some(
            if a.svc == "ec2" {
                "Request limit exceeded."
            } else {
                "Rate exceeded"
            }
            .to_string(),
        ),
        ErrorKind::NotFound => match kind.code(a) {
            "NoSuchEntity" => Some(format!(
                "The role with name {} cannot be found.",
                pick(
                    rng,
                    &["orders-api-task-old", "legacy-deployer", "tmp-migration"]
                )
            )),
            "NoSuchTagSet" => Some("The TagSet does not exist".to_string()),
            "ParameterNotFound" => None,
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
        ErrorKind::InstanceLimit => Some(format!(
            "You have requested more instances ({}) than your current instance limit of 20 \
             allows for the specified instance type. Please visit \
             http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this \
             limit.",
            rng.gen_range(21..40)
        )),
        ErrorKind::VcpuLimit => Some(
            "You have requested more vCPU capacity than your current vCPU limit of 64 allows \
             for the instance bucket that the specified instance type belongs to. Please \
             visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to \
             this limit."
                .to_string(),
        ),
    }
}

impl<'a> FileWriter<'a> {
    pub(crate) fn new(world: &'a World<'a>, ri: usize) -> FileWriter<'a> {
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
    pub(crate) fn write_file(
        &mut self,
        delivery: i64,
        evs: &[Ev],
        rng: &mut StdRng,
    ) -> io::Result<u64> {
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
        let p = world.catalog.identity(e.who);
        let spec = &p.spec;
        let event_time = rfc3339(e.t);
        let creation = rfc3339(
            e.t - e.t.rem_euclid(3600) + if e.t.rem_euclid(3600) < 120 { -3600 } else { 0 },
        );
        let (ip, ua) = match spec.kind {
            PKind::Service | PKind::ServiceRole => (spec.invoked_by, spec.invoked_by),
            _ => (pick(rng, spec.ips), pick_agent(rng, spec.agents, e.via)),
        };
        // Console credentials only from the console: a CLI or SDK call of the same person is not.
        let from_console = spec.console && is_console_agent(ua);
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
        let code = e.err.map(|k| k.code(a));
        let message = e.err.and_then(|k| error_message(k, a, p, rng));
        let request_parameters = self.request_params(a, e, rng);
        let response_elements = if e.err.is_none() {
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
            session_credential_from_console: from_console.then_some("true"),
        };
        for c in 0..copies {
            if c > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut *out, &rec)?;
        }
        Ok(())
    }

    fn request_params(&self, a: &ApiSpec, e: &Ev, rng: &mut StdRng) -> Value {
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
                "roleArn": format!("arn:aws:iam::{account}:role/{}", {
                    let usual = pick(rng, usual_roles(e.who));
                    e.role.unwrap_or(usual)
                }),
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
