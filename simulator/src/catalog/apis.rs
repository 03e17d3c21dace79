//! What is called: the APIs of the simulated account, their callers, weights, request shapes and
//! background error rates.

use super::principals::Principal::{
    self, Alice, App, AutoScaling, Bob, Carol, Ci, Config, Datadog, Ec2, EcsTasks, Lambda,
    LambdaService, Maintenance, SsmAgent, Terraform,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Group {
    /// Human / CI traffic: strong diurnal and weekly cycle.
    Business,
    /// Machine traffic: mild cycles.
    Steady,
    /// Only maintenance jobs and anomalies call it.
    Off,
}

/// Request-parameter shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pk {
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

pub(crate) struct ApiSpec {
    pub(crate) svc: &'static str,
    pub(crate) name: &'static str,
    pub(crate) ro: bool,
    pub(crate) group: Group,
    /// Relative weight inside its group.
    pub(crate) w: f64,
    pub(crate) callers: &'static [Principal],
    pub(crate) pk: Pk,
    /// Background probability of a throttling error (busy read APIs only).
    pub(crate) throttle: f64,
    /// Background "not found" error code and probability.
    pub(crate) notfound: Option<(&'static str, f64)>,
}

pub(crate) const fn api(
    svc: &'static str,
    name: &'static str,
    ro: bool,
    group: Group,
    w: f64,
    callers: &'static [Principal],
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

const HUMANS: &[Principal] = &[Alice, Bob, Carol];
const HUMANS_CI: &[Principal] = &[Alice, Bob, Carol, Ci, Terraform, Terraform];
const OPS: &[Principal] = &[Alice, Bob, Ci, Terraform, Datadog, Config];

#[rustfmt::skip]
pub(crate) const APIS: &[ApiSpec] = &[
    // --- ec2
    thr(api("ec2", "DescribeInstances", true, S, 60.0, &[Datadog, Datadog, Config, Alice, Bob, Ci, Terraform, AutoScaling], Pk::InstanceIds), 0.004),
    api("ec2", "DescribeInstanceStatus", true, S, 25.0, &[Datadog, AutoScaling, Alice], Pk::InstanceIds),
    api("ec2", "DescribeVolumes", true, S, 18.0, &[Datadog, Config, Alice, Terraform], Pk::Filters),
    api("ec2", "DescribeSecurityGroups", true, B, 22.0, OPS, Pk::Filters),
    api("ec2", "DescribeSubnets", true, B, 14.0, OPS, Pk::Filters),
    api("ec2", "DescribeVpcs", true, B, 10.0, OPS, Pk::Filters),
    api("ec2", "DescribeImages", true, B, 8.0, HUMANS_CI, Pk::Filters),
    api("ec2", "DescribeSnapshots", true, S, 6.0, &[Config, Datadog, Alice], Pk::Filters),
    api("ec2", "DescribeNetworkInterfaces", true, S, 12.0, &[Config, LambdaService, Datadog], Pk::Filters),
    api("ec2", "DescribeRegions", true, B, 9.0, HUMANS_CI, Pk::Null),
    api("ec2", "DescribeAvailabilityZones", true, B, 7.0, HUMANS_CI, Pk::Null),
    api("ec2", "DescribeTags", true, S, 10.0, &[Datadog, Config, Terraform], Pk::Filters),
    api("ec2", "RunInstances", false, B, 0.3, &[AutoScaling, AutoScaling, Ci, Terraform], Pk::RunInstances),
    api("ec2", "TerminateInstances", false, B, 0.3, &[AutoScaling, AutoScaling, Ci, Alice], Pk::InstanceIds),
    api("ec2", "CreateTags", false, B, 10.0, &[AutoScaling, Terraform, Ci, Alice], Pk::Tags),
    api("ec2", "StartInstances", false, B, 0.3, HUMANS, Pk::InstanceIds),
    api("ec2", "StopInstances", false, B, 0.3, HUMANS, Pk::InstanceIds),
    api("ec2", "CreateVolume", false, B, 0.12, &[Terraform, Alice, AutoScaling], Pk::CreateVolume),
    api("ec2", "AttachVolume", false, B, 0.2, &[Terraform, Alice], Pk::VolumeId),
    api("ec2", "ModifyInstanceAttribute", false, B, 0.2, &[Terraform, Bob], Pk::InstanceIds),
    api("ec2", "AuthorizeSecurityGroupIngress", false, B, 0.12, &[Terraform, Alice], Pk::Filters),
    api("ec2", "DeleteTags", false, B, 2.0, &[Terraform, Ci, Alice], Pk::Tags),
    api("ec2", "CreateNetworkInterface", false, S, 4.0, &[LambdaService], Pk::Filters),
    api("ec2", "DeleteNetworkInterface", false, S, 3.8, &[LambdaService], Pk::Filters),
    // --- s3 (bucket-level management events)
    api("s3", "ListBuckets", true, B, 16.0, &[Alice, Bob, Carol, Datadog, Ci], Pk::Null),
    api("s3", "GetBucketLocation", true, S, 20.0, &[Datadog, App, Config, Ci], Pk::Bucket),
    api("s3", "GetBucketAcl", true, S, 10.0, &[Config, Datadog], Pk::Bucket),
    api("s3", "GetBucketPolicy", true, S, 7.0, &[Config, Datadog, Terraform], Pk::Bucket),
    nf(api("s3", "GetBucketTagging", true, S, 8.0, &[Datadog, Config, Terraform], Pk::Bucket), "NoSuchTagSet", 0.08),
    api("s3", "PutBucketTagging", false, B, 0.15, &[Terraform], Pk::Bucket),
    api("s3", "PutBucketPolicy", false, B, 0.08, &[Terraform, Alice], Pk::Bucket),
    // --- iam (global: logged in us-east-1)
    nf(api("iam", "GetRole", true, B, 14.0, &[Terraform, Ci, Alice, Config, Datadog], Pk::RoleName), "NoSuchEntity", 0.01),
    api("iam", "GetPolicy", true, B, 6.0, &[Terraform, Config], Pk::PolicyArn),
    api("iam", "ListRoles", true, B, 6.0, &[Alice, Bob, Datadog, Config], Pk::MaxResults),
    api("iam", "ListAttachedRolePolicies", true, B, 7.0, &[Terraform, Config, Alice], Pk::RoleName),
    api("iam", "GetUser", true, B, 3.0, &[Alice, Carol, Config], Pk::UserName),
    api("iam", "ListUsers", true, B, 2.0, &[Alice, Datadog, Config], Pk::MaxResults),
    api("iam", "ListAccessKeys", true, B, 2.0, &[Carol, Datadog], Pk::UserName),
    api("iam", "CreateRole", false, B, 0.05, &[Terraform], Pk::RoleName),
    api("iam", "PutRolePolicy", false, B, 0.08, &[Terraform], Pk::RoleName),
    api("iam", "AttachRolePolicy", false, B, 0.08, &[Terraform, Alice], Pk::RoleName),
    api("iam", "TagRole", false, B, 0.1, &[Terraform], Pk::RoleName),
    api("iam", "UpdateAssumeRolePolicy", false, B, 0.03, &[Terraform], Pk::RoleName),
    api("iam", "CreateUser", false, B, 0.006, &[Alice], Pk::UserName),
    api("iam", "CreateAccessKey", false, B, 0.01, &[Alice, Carol], Pk::AccessKey),
    api("iam", "AttachUserPolicy", false, B, 0.006, &[Alice], Pk::AttachUserPolicy),
    api("iam", "PutUserPolicy", false, O, 0.0, &[Alice], Pk::PutUserPolicy),
    api("iam", "CreateLoginProfile", false, O, 0.0, &[Alice], Pk::LoginProfile),
    api("iam", "AddUserToGroup", false, B, 0.004, &[Alice], Pk::AddUserToGroup),
    // --- sts
    api("sts", "AssumeRole", true, S, 45.0, &[LambdaService, EcsTasks, Datadog, Ci, LambdaService], Pk::AssumeRole),
    api("sts", "GetCallerIdentity", true, B, 16.0, &[Ci, Terraform, Carol, Bob, App], Pk::Null),
    api("sts", "AssumeRoleWithWebIdentity", true, B, 4.0, &[Ci], Pk::AssumeRole),
    // --- lambda
    api("lambda", "ListFunctions20150331", true, B, 7.0, &[Alice, Bob, Datadog, Config], Pk::MaxResults),
    nf(thr(api("lambda", "GetFunction20150331v2", true, B, 9.0, &[Ci, Terraform, Alice, Datadog], Pk::Function), 0.002), "ResourceNotFoundException", 0.01),
    api("lambda", "GetFunctionConfiguration20150331v2", true, B, 5.0, &[Ci, Terraform, Config], Pk::Function),
    api("lambda", "ListTags20170331", true, B, 3.0, &[Datadog, Terraform], Pk::Function),
    api("lambda", "PublishVersion20150331", false, B, 0.3, &[Ci], Pk::Function),
    api("lambda", "UpdateFunctionCode20150331v2", false, B, 0.35, &[Ci], Pk::Function),
    api("lambda", "UpdateFunctionConfiguration20150331v2", false, O, 0.0, &[Maintenance], Pk::Function),
    // --- ssm
    nf(thr(api("ssm", "GetParameter", true, S, 40.0, &[App, App, Lambda, Ci], Pk::Param), 0.004), "ParameterNotFound", 0.004),
    api("ssm", "GetParameters", true, S, 14.0, &[App, Lambda, SsmAgent], Pk::Params),
    api("ssm", "GetParametersByPath", true, S, 8.0, &[App, Ci], Pk::ParamPath),
    api("ssm", "DescribeInstanceInformation", true, B, 5.0, &[Alice, Datadog, Config], Pk::MaxResults),
    api("ssm", "SendCommand", false, B, 1.5, &[Ci, Alice, Bob], Pk::InstanceIds),
    api("ssm", "UpdateInstanceInformation", false, S, 30.0, &[SsmAgent], Pk::Null),
    api("ssm", "PutParameter", false, O, 0.0, &[Maintenance], Pk::PutParameter),
    // --- kms
    thr(api("kms", "Decrypt", true, S, 55.0, &[App, Lambda, Ec2, App], Pk::Decrypt), 0.002),
    api("kms", "GenerateDataKey", true, S, 20.0, &[App, Ec2, Lambda], Pk::KeyId),
    api("kms", "CreateGrant", false, S, 6.0, &[Ec2, Terraform], Pk::KeyId),
    api("kms", "RetireGrant", false, S, 5.0, &[Ec2], Pk::KeyId),
    api("kms", "DescribeKey", true, B, 6.0, &[Terraform, Config, Datadog], Pk::KeyId),
    api("kms", "ListAliases", true, B, 3.0, &[Alice, Datadog], Pk::Null),
    // --- cloudwatch
    api("monitoring", "DescribeAlarms", true, B, 14.0, &[Alice, Bob, Datadog, Terraform], Pk::MaxResults),
    thr(api("monitoring", "GetMetricData", true, S, 30.0, &[Datadog, Datadog, Alice], Pk::MetricData), 0.003),
    api("monitoring", "ListMetrics", true, S, 12.0, &[Datadog], Pk::Null),
    api("monitoring", "GetMetricStatistics", true, B, 6.0, &[Alice, Bob], Pk::MetricData),
    api("monitoring", "PutMetricAlarm", false, O, 0.0, &[Maintenance], Pk::Alarm),
    // --- logs
    api("logs", "DescribeLogGroups", true, B, 12.0, &[Alice, Bob, Datadog, Terraform], Pk::MaxResults),
    api("logs", "DescribeLogStreams", true, B, 8.0, &[Alice, Bob], Pk::LogGroup),
    api("logs", "CreateLogStream", false, S, 14.0, &[Lambda, App], Pk::LogStream),
    api("logs", "CreateLogGroup", false, B, 0.05, &[Terraform, Lambda], Pk::LogGroup),
    api("logs", "PutRetentionPolicy", false, O, 0.0, &[Maintenance], Pk::Retention),
    // --- dynamodb
    thr(api("dynamodb", "DescribeTable", true, S, 22.0, &[App, App, Datadog, Terraform], Pk::Table), 0.003),
    api("dynamodb", "ListTables", true, B, 6.0, &[Alice, Datadog], Pk::MaxResults),
    api("dynamodb", "DescribeContinuousBackups", true, S, 3.0, &[Config, Terraform], Pk::Table),
    api("dynamodb", "UpdateTable", false, B, 0.04, &[Terraform], Pk::Table),
    // --- rds
    api("rds", "DescribeDBInstances", true, S, 12.0, &[Datadog, Alice, Config, Terraform], Pk::DbInstance),
    api("rds", "DescribeDBClusters", true, S, 6.0, &[Datadog, Config], Pk::DbCluster),
    api("rds", "ModifyDBInstance", false, B, 0.02, &[Terraform], Pk::DbInstance),
    api("rds", "CreateDBSnapshot", false, O, 0.0, &[Maintenance], Pk::DbSnapshot),
    // --- secretsmanager
    nf(api("secretsmanager", "GetSecretValue", true, S, 18.0, &[App, Lambda], Pk::Secret), "ResourceNotFoundException", 0.002),
    api("secretsmanager", "DescribeSecret", true, B, 3.0, &[Terraform, Config], Pk::Secret),
    // --- ecr
    api("ecr", "GetAuthorizationToken", true, S, 8.0, &[Ci, App, EcsTasks], Pk::Null),
    api("ecr", "DescribeRepositories", true, B, 3.0, &[Ci, Terraform], Pk::Repo),
    api("ecr", "InitiateLayerUpload", false, B, 1.5, &[Ci], Pk::Repo),
    api("ecr", "UploadLayerPart", false, B, 3.0, &[Ci], Pk::Repo),
    api("ecr", "CompleteLayerUpload", false, B, 1.5, &[Ci], Pk::Repo),
    api("ecr", "PutImage", false, B, 0.8, &[Ci], Pk::Repo),
    api("ecr", "BatchGetImage", true, S, 4.0, &[App, Ci], Pk::Repo),
    // --- elastic load balancing
    api("elasticloadbalancing", "DescribeLoadBalancers", true, S, 8.0, &[Datadog, Alice, Terraform], Pk::Null),
    api("elasticloadbalancing", "DescribeTargetHealth", true, S, 10.0, &[Datadog, AutoScaling], Pk::TargetGroup),
    api("elasticloadbalancing", "RegisterTargets", false, B, 0.6, &[AutoScaling], Pk::TargetGroup),
    api("elasticloadbalancing", "DeregisterTargets", false, B, 0.55, &[AutoScaling], Pk::TargetGroup),
    // --- autoscaling
    api("autoscaling", "DescribeAutoScalingGroups", true, S, 10.0, &[Datadog, Alice, Terraform], Pk::Asg),
    api("autoscaling", "SetDesiredCapacity", false, B, 0.05, &[Alice, Ci], Pk::Asg),
    // --- cloudformation
    api("cloudformation", "DescribeStacks", true, B, 10.0, &[Ci, Terraform, Alice], Pk::Stack),
    api("cloudformation", "DescribeStackEvents", true, B, 5.0, &[Ci], Pk::Stack),
    api("cloudformation", "CreateChangeSet", false, B, 0.5, &[Ci], Pk::Stack),
    api("cloudformation", "ExecuteChangeSet", false, B, 0.4, &[Ci], Pk::Stack),
    api("cloudformation", "UpdateStack", false, B, 0.15, &[Ci], Pk::Stack),
    // --- sqs
    api("sqs", "GetQueueAttributes", true, S, 10.0, &[Datadog, App], Pk::Queue),
    // --- backup
    api("backup", "StartBackupJob", false, O, 0.0, &[Maintenance], Pk::Backup),
    // --- ec2 maintenance
    api("ec2", "CreateSnapshot", false, O, 0.0, &[Maintenance], Pk::Snapshot),
    api("ec2", "DeleteSnapshot", false, O, 0.0, &[Maintenance], Pk::Snapshot),
    // --- routine changes (`--changes`): never called before the day their change starts
    api("dynamodb", "CreateBackup", false, O, 0.0, &[Maintenance, Lambda], Pk::Table),
    api("rds", "CreateDBClusterSnapshot", false, O, 0.0, &[Maintenance], Pk::DbCluster),
    api("ec2", "CopySnapshot", false, O, 0.0, &[Maintenance, Lambda], Pk::Snapshot),
    api("logs", "CreateExportTask", false, O, 0.0, &[Maintenance, Lambda], Pk::LogGroup),
    api("ecr", "BatchDeleteImage", false, O, 0.0, &[Ci, Maintenance], Pk::Repo),
    api("secretsmanager", "PutSecretValue", false, O, 0.0, &[App, Lambda, Ci], Pk::Secret),
    api("ssm", "StartAutomationExecution", false, O, 0.0, &[Alice, Bob, Ci], Pk::InstanceIds),
    api("cloudformation", "DetectStackDrift", false, O, 0.0, &[Ci, Alice, Terraform], Pk::Stack),
    api("monitoring", "PutDashboard", false, O, 0.0, &[Terraform, Alice, Bob], Pk::Null),
    api("lambda", "CreateAlias20150331", false, O, 0.0, &[Ci], Pk::Function),
];

pub(crate) fn api_index(svc: &str, name: &str) -> u16 {
    APIS.iter()
        .position(|a| a.svc == svc && a.name == name)
        .unwrap_or_else(|| panic!("simulate catalog lacks {svc}:{name}")) as u16
}

pub(crate) fn event_source(svc: &str) -> String {
    format!("{svc}.amazonaws.com")
}
