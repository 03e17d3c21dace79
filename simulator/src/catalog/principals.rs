//! Who calls: the principals of the simulated account (people, CI, workloads, AWS services, and
//! the unusual callers anomalies use), with their user agents and source addresses.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PKind {
    Role,
    User,
    /// `{"type":"AWSService","invokedBy":...}`, no ARN.
    Service,
    /// An AssumedRole session used by an AWS service on the customer's behalf (has `invokedBy`).
    ServiceRole,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct PSpec {
    pub(crate) kind: PKind,
    /// Role name, user name, or the service principal for `Service`.
    pub(crate) name: &'static str,
    pub(crate) session: &'static str,
    pub(crate) ips: &'static [&'static str],
    pub(crate) agents: &'static [&'static str],
    pub(crate) console: bool,
    pub(crate) invoked_by: &'static str,
}

/// An AWS service calling on the account's behalf: no ARN, session, address or agent of its own.
const fn aws_service(name: &'static str) -> PSpec {
    PSpec {
        kind: PKind::Service,
        name,
        session: "",
        ips: &[],
        agents: &[],
        console: false,
        invoked_by: name,
    }
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

/// The principals of the simulated account. A seed draws their identities in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Principal {
    /// An administrator through SSO (console and CLI).
    Alice,
    /// A power user through SSO (console and CLI).
    Bob,
    /// An IAM user with access keys (CLI).
    Carol,
    /// The CI deploy role (GitHub Actions).
    Ci,
    /// The Terraform runner.
    Terraform,
    /// The orders API, an ECS task.
    App,
    /// The image-resize Lambda function.
    Lambda,
    /// The monitoring integration.
    Datadog,
    /// The periodic maintenance jobs (`world::Job`).
    Maintenance,
    /// EC2 Auto Scaling (an AWS service).
    AutoScaling,
    /// EC2 (an AWS service).
    Ec2,
    /// Lambda (an AWS service).
    LambdaService,
    /// ECS tasks (an AWS service).
    EcsTasks,
    /// AWS Config, through its service-linked role.
    Config,
    /// The SSM agent on the instances.
    SsmAgent,
    /// Unusual callers, for IAM bursts only: a legacy import user.
    OddUser,
    /// Unusual callers, for IAM bursts only: the organization access role.
    OddRole,
    /// Unusual callers, for IAM bursts only: a backup administrator user.
    OddAdmin,
    /// A new engineer, from their first day (principal scenarios only; last, so that the
    /// identities a seed draws for the others are those of before).
    Newcomer,
}

impl Principal {
    /// Every principal, in declaration order.
    pub(crate) const ALL: [Principal; 19] = [
        Principal::Alice,
        Principal::Bob,
        Principal::Carol,
        Principal::Ci,
        Principal::Terraform,
        Principal::App,
        Principal::Lambda,
        Principal::Datadog,
        Principal::Maintenance,
        Principal::AutoScaling,
        Principal::Ec2,
        Principal::LambdaService,
        Principal::EcsTasks,
        Principal::Config,
        Principal::SsmAgent,
        Principal::OddUser,
        Principal::OddRole,
        Principal::OddAdmin,
        Principal::Newcomer,
    ];

    pub(crate) fn spec(self) -> PSpec {
        match self {
            Principal::Alice => PSpec {
                kind: PKind::Role,
                name: "AWSReservedSSO_AdministratorAccess_4f1c2d3e5a6b7c8d",
                session: "alice@example.com",
                ips: &["198.51.100.23"],
                agents: &[UA_CHROME, "AWS Internal", UA_CLI_MAC],
                console: true,
                invoked_by: "",
            },
            Principal::Bob => PSpec {
                kind: PKind::Role,
                name: "AWSReservedSSO_PowerUserAccess_9a8b7c6d5e4f3a2b",
                session: "bob@example.com",
                ips: &["198.51.100.61", "198.51.100.62"],
                agents: &[UA_FIREFOX, UA_CLI_MAC],
                console: true,
                invoked_by: "",
            },
            Principal::Carol => PSpec {
                kind: PKind::User,
                name: "carol",
                session: "",
                ips: &["192.0.2.144"],
                agents: &[UA_CLI_LINUX],
                console: false,
                invoked_by: "",
            },
            Principal::Ci => PSpec {
                kind: PKind::Role,
                name: "github-actions-deploy",
                session: "GitHubActions",
                ips: &["192.0.2.10", "192.0.2.11", "192.0.2.12"],
                agents: &[UA_JS, UA_CLI_LINUX],
                console: false,
                invoked_by: "",
            },
            Principal::Terraform => PSpec {
                kind: PKind::Role,
                name: "terraform-runner",
                session: "terraform-ci",
                ips: &["192.0.2.40"],
                agents: &[UA_TF],
                console: false,
                invoked_by: "",
            },
            Principal::App => PSpec {
                kind: PKind::Role,
                name: "orders-api-task",
                session: "5f2c8e1a9b7d4c3e8f6a1b2c3d4e5f60",
                ips: &["10.20.1.15", "10.20.2.27", "10.20.3.41"],
                agents: &[UA_JAVA],
                console: false,
                invoked_by: "",
            },
            Principal::Lambda => PSpec {
                kind: PKind::Role,
                name: "image-resize-lambda-role",
                session: "image-resize",
                ips: &["10.20.8.9", "10.20.9.14"],
                agents: &[UA_BOTO_LAMBDA],
                console: false,
                invoked_by: "",
            },
            Principal::Datadog => PSpec {
                kind: PKind::Role,
                name: "DatadogIntegrationRole",
                session: "DatadogAWSIntegration",
                ips: &["203.0.113.100", "203.0.113.101"],
                agents: &[UA_DD],
                console: false,
                invoked_by: "",
            },
            Principal::Maintenance => PSpec {
                kind: PKind::Role,
                name: "ops-maintenance",
                session: "maint-scheduler",
                ips: &["10.20.7.3"],
                agents: &[UA_BOTO_MAINT],
                console: false,
                invoked_by: "",
            },
            Principal::AutoScaling => aws_service("autoscaling.amazonaws.com"),
            Principal::Ec2 => aws_service("ec2.amazonaws.com"),
            Principal::LambdaService => aws_service("lambda.amazonaws.com"),
            Principal::EcsTasks => aws_service("ecs-tasks.amazonaws.com"),
            Principal::Config => PSpec {
                kind: PKind::ServiceRole,
                name: "AWSServiceRoleForConfig",
                session: "AWSConfig-Describe",
                ips: &[],
                agents: &[],
                console: false,
                invoked_by: "config.amazonaws.com",
            },
            Principal::SsmAgent => PSpec {
                kind: PKind::Role,
                name: "EC2-SSM-InstanceRole",
                session: "i-0a1b2c3d4e5f67890",
                ips: &["10.20.1.15", "10.20.2.27", "10.20.3.41", "10.20.4.52"],
                agents: &[UA_SSM],
                console: false,
                invoked_by: "",
            },
            Principal::OddUser => PSpec {
                kind: PKind::User,
                name: "svc-legacy-import",
                session: "",
                ips: &["203.0.113.77"],
                agents: &[UA_OLD_BOTO],
                console: false,
                invoked_by: "",
            },
            Principal::OddRole => PSpec {
                kind: PKind::Role,
                name: "OrganizationAccountAccessRole",
                session: "temp-session-8812",
                ips: &["198.51.100.201"],
                agents: &[UA_OLD_CLI],
                console: false,
                invoked_by: "",
            },
            Principal::OddAdmin => PSpec {
                kind: PKind::User,
                name: "backup-admin",
                session: "",
                ips: &["203.0.113.250"],
                agents: &[UA_CLI_LINUX],
                console: false,
                invoked_by: "",
            },
            Principal::Newcomer => PSpec {
                kind: PKind::User,
                name: "dana.new",
                session: "",
                ips: &["198.51.100.77"],
                agents: &[UA_CHROME],
                console: true,
                invoked_by: "",
            },
        }
    }
}
