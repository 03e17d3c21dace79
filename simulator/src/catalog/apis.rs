//! What is called: the APIs of the simulated account, their callers, weights, request shapes and
//! background error rates.

use super::principals::{
    ALICE, APP, BOB, CAROL, CI, CONFIG, DD, LAMBDA, MAINT, SSM_AGENT, SVC_ASG, SVC_EC2, SVC_ECS,
    SVC_LAMBDA, TF,
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
    pub(crate) callers: &'static [u16],
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
pub(crate) const APIS: &[ApiSpec] = &[
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

pub(crate) fn api_index(svc: &str, name: &str) -> u16 {
    APIS.iter()
        .position(|a| a.svc == svc && a.name == name)
        .unwrap_or_else(|| panic!("simulate catalog lacks {svc}:{name}")) as u16
}

pub(crate) fn event_source(svc: &str) -> String {
    format!("{svc}.amazonaws.com")
}
