#!/usr/bin/env python3
"""Consistency checks for infra/template.yaml that cfn-lint and checkov cannot know about.

- the DynamoDB table equals infra/table.json (what `trailsight setup` creates);
- the functions set exactly the environment variables the code reads;
- both functions run the `bootstrap` that `make build` (mk/infra.mk) puts under build/lambda/<package>/;
- queue, alarms and dashboard agree with the functions' timeouts and the metric names the code emits;
- every parameter is documented in docs/DEPLOY.md;
- least privilege (issue 12): each role's DynamoDB writes hold only for the partition keys its code
  writes (dynamodb:LeadingKeys); detect puts events only on the insight bus, whose policy denies
  events:PutEvents to every principal but the detect role, and the alert rule listens on that bus;
  the alert key's service grants carry conditions.

Runs as a script (`python tests/infra/check_template.py`, exit 1 on any failure) or under pytest.
"""

from __future__ import annotations

import json
import re
import sys
import traceback
from pathlib import Path

from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "template.yaml"
TABLE_JSON = ROOT / "infra" / "table.json"
MAKEFILE = ROOT / "mk" / "infra.mk"
DEPLOY_DOC = ROOT / "docs" / "DEPLOY.md"

# The environment variables each function reads. Change them here, in the code and in the template together.
ENV = {
    "IngestFunction": {
        "TRAILSIGHT_TABLE",
        "TRAILSIGHT_TRAIL_BUCKETS",
        "TRAILSIGHT_MAX_COMPRESSED_BYTES",
        "TRAILSIGHT_MAX_DECOMPRESSED_BYTES",
        "TRAILSIGHT_MAX_RECORDS",
        "TRAILSIGHT_MAX_SERIES_PER_FILE",
        "TRAILSIGHT_INCLUDE_READ_APIS",
        "TRAILSIGHT_INCLUDE_DATA_EVENTS",
        "TRAILSIGHT_PRINCIPAL_INSIGHTS",
        "TRAILSIGHT_METRIC_NAMESPACE",
        "TRAILSIGHT_METRICS",
        "RUST_LOG",
    },
    "DetectFunction": {
        "TRAILSIGHT_TABLE",
        "TRAILSIGHT_EVENT_BUS",
        "TRAILSIGHT_EVENT_SOURCE",
        "TRAILSIGHT_DETAIL_TYPE",
        "TRAILSIGHT_METRIC_NAMESPACE",
        "TRAILSIGHT_METRICS",
        "TRAILSIGHT_ARCHIVE_BUCKET",
        "TRAILSIGHT_ARCHIVE_PREFIX",
        "TRAILSIGHT_ALERTS_TOPIC_ARN",
        "TRAILSIGHT_SECURITY_HUB_PRODUCT_ARN",
        "TRAILSIGHT_STATE_BUCKET",
        "TRAILSIGHT_STATE_PREFIX",
        "TRAILSIGHT_SENSITIVITY",
        "TRAILSIGHT_MIN_CALLS",
        "TRAILSIGHT_SETTLE_MINUTES",
        "TRAILSIGHT_MAX_CATCHUP_MINUTES",
        "TRAILSIGHT_IGNORE_AWS_SERVICE_CALLERS",
        "TRAILSIGHT_API_ALLOW",
        "TRAILSIGHT_API_DENY",
        "TRAILSIGHT_PRINCIPAL_INSIGHTS",
        "TRAILSIGHT_PRINCIPAL_WARMUP_HOURS",
        "TRAILSIGHT_MAX_PRINCIPALS_PER_ACCOUNT",
        "RUST_LOG",
    },
}
PACKAGES = {"IngestFunction": "trailsight-ingest", "DetectFunction": "trailsight-detect"}
SIZING = {  # function: (MemorySize, Timeout)
    "IngestFunction": (128, 120),
    "DetectFunction": ({"Ref": "DetectMemorySize"}, 300),
}

# Metrics the functions emit at MetricsLevel full: name -> the dimension names it carries.
METRICS = {
    "InsightsStarted": ("InsightType",),
    "InsightsActive": ("InsightType",),
    "SeriesEvaluated": (),
    "DetectorLagMinutes": (),
    "RunErrors": (),
    "InsightsUndelivered": (),
    "InsightsDeadLettered": (),
    "LateEvents": (),
    "LateMinutes": (),
    "SeriesEvicted": (),
    "FilesIngested": ("Function",),
    "FilesSkipped": ("Function",),
    "FilesFailed": ("Function",),
    "RecordsIngested": ("Function",),
}
# ... and at basic (the default); off sends none.
BASIC_METRICS = {"DetectorLagMinutes"}
# Every alarm and the condition it exists under (None: always). Each one costs $0.10 a month: add one
# here only with the reason in the template.
ALARMS = {
    "DetectorLagAlarm": "MetricsOn",
    "DeadLetterAlarm": None,
    "IngestFailuresAlarm": "MetricsFull",
    "DetectErrorsAlarm": None,
    "FreshnessAlarm": "HasFreshnessAlarm",
    "IngestAsyncEventAgeAlarm": "HasS3BacklogAlarm",
    "IngestQueueAgeAlarm": "HasQueueBacklogAlarm",
    "PrincipalsUntrackedAlarm": "HasPrincipalInsights",
}
# Metrics that log metric filters of the template make from the functions' log lines: name -> filter.
FILTER_METRICS = {
    "LogFilesIngested": "IngestedFilesMetricFilter",
    "PrincipalsUntracked": "PrincipalsUntrackedMetricFilter",
}
DETECT_HANDLER_RS = ROOT / "functions" / "detect" / "src" / "handler.rs"
SUMMARY_RS = ROOT / "functions" / "ingest" / "src" / "summary.rs"
FREE_NAMESPACES = ("AWS/SQS", "AWS/Lambda", "AWS/Events")
DETAIL_TYPE = "AWS Insight via CloudTrail"


def load_template() -> dict:
    template, matches = decode(str(TEMPLATE))
    assert not matches and template is not None, f"cannot parse {TEMPLATE}: {[str(m) for m in matches]}"
    return template


T = load_template()
RES = T["Resources"]


def resources_of(kind: str) -> dict:
    return {k: v for k, v in RES.items() if v["Type"] == kind}


def props(logical_id: str) -> dict:
    return RES[logical_id]["Properties"]


# ---------------------------------------------------------------- table


def test_table_matches_table_json():
    want = json.loads(TABLE_JSON.read_text())
    tables = resources_of("AWS::DynamoDB::Table")
    assert list(tables) == ["Table"], f"expected one table named Table, found {list(tables)}"
    got = props("Table")

    def attrs(defs):
        return sorted((d["AttributeName"], d["AttributeType"]) for d in defs)

    def keys(schema):
        return [(k["AttributeName"], k["KeyType"]) for k in schema]

    assert attrs(got["AttributeDefinitions"]) == attrs(want["AttributeDefinitions"])
    assert keys(got["KeySchema"]) == keys(want["KeySchema"])
    assert got["BillingMode"] == want["BillingMode"]
    assert got["TimeToLiveSpecification"] == want["TimeToLiveSpecification"]
    assert got["PointInTimeRecoverySpecification"] == want["PointInTimeRecoverySpecification"]
    # CreateTable spells it Enabled; CloudFormation spells it SSEEnabled.
    assert got["SSESpecification"]["SSEEnabled"] == want["SSESpecification"]["Enabled"] is True
    extra = set(got) - {
        "AttributeDefinitions", "KeySchema", "BillingMode", "TimeToLiveSpecification",
        "PointInTimeRecoverySpecification", "SSESpecification",
    }
    assert not extra, f"table properties not mirrored in infra/table.json: {sorted(extra)}"


def test_table_is_retained():
    assert RES["Table"].get("DeletionPolicy") == "Retain"
    assert RES["Table"].get("UpdateReplacePolicy") == "Retain"


def test_state_bucket_is_private_encrypted_tls_only_and_retained():
    assert RES["StateBucket"].get("DeletionPolicy") == "Retain"
    p = props("StateBucket")
    assert all(p["PublicAccessBlockConfiguration"][k] is True for k in (
        "BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"))
    sse = p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse["SSEAlgorithm"] in ("AES256", "aws:kms")
    policy = props("StateBucketPolicy")
    assert policy["Bucket"] == {"Ref": "StateBucket"}
    deny = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert any(s["Condition"]["Bool"]["aws:SecureTransport"] == "false" for s in deny), "no TLS-only statement"


def test_detect_reaches_only_its_state_prefix():
    env = props("DetectFunction")["Environment"]["Variables"]
    assert env["TRAILSIGHT_STATE_BUCKET"] == {"Ref": "StateBucket"}
    prefix = env["TRAILSIGHT_STATE_PREFIX"].strip("/")
    statements = props("DetectRole")["Policies"][0]["PolicyDocument"]["Statement"]
    s3 = [s for s in statements if isinstance(s, dict) and "Action" in s and any(str(a).startswith("s3:") for a in _list(s["Action"]))]
    body = [s for s in s3 if s.get("Sid") == "DetectorStateBody"]
    assert len(body) == 1
    assert sorted(_list(body[0]["Action"])) == ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"]
    assert body[0]["Resource"] == {"Fn::Sub": "${StateBucket.Arn}/" + prefix + "/state/*"}
    dead = [s for s in s3 if s.get("Sid") == "DeadLetterInsights"]
    assert len(dead) == 1 and _list(dead[0]["Action"]) == ["s3:PutObject"]
    assert dead[0]["Resource"] == {"Fn::Sub": "${StateBucket.Arn}/" + prefix + "/dead-letters/*"}
    listing = [s for s in s3 if "s3:ListBucket" in _list(s["Action"])]
    assert all(s["Condition"]["StringLike"]["s3:prefix"] == f"{prefix}/state/*" for s in listing)


def test_ingest_updates_only_markers_and_the_arrival_log():
    statements = props("IngestRole")["Policies"][0]["PolicyDocument"]["Statement"]
    updates = [s for s in statements if isinstance(s, dict) and "dynamodb:UpdateItem" in _list(s.get("Action", []))]
    assert len(updates) == 1 and _list(updates[0]["Action"]) == ["dynamodb:UpdateItem"]
    assert updates[0]["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["A#*", "F#*"]}}


# The partition keys each role may write (shared/src/aws/dynamodb/, docs/TABLE.md): ingest puts delta
# parts (D#) and key markers (F#) and updates markers and the arrival log (A#); detect writes only the
# detector's state (S: the head's update, state chunks put and deleted).
WRITES = {
    "IngestRole": {
        "dynamodb:PutItem": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["D#*", "F#*"]}},
        "dynamodb:UpdateItem": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["A#*", "F#*"]}},
    },
    "DetectRole": {
        action: {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["S"]}}
        for action in ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
    },
}
DYNAMODB_WRITES = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem",
                   "dynamodb:PartiQLInsert", "dynamodb:PartiQLUpdate", "dynamodb:PartiQLDelete", "dynamodb:*"}


def test_dynamodb_writes_carry_leading_keys_conditions():
    """Every statement granting a DynamoDB write holds only for the partitions the role's code writes:
    ingest, which parses untrusted files, can never put or update the detector's state, and detect can
    never touch counts, markers or the arrival log."""
    for role, want in WRITES.items():
        granted = {}
        for s in _flat_statements(props(role)["Policies"][0]["PolicyDocument"]["Statement"]):
            if s["Effect"] != "Allow":
                continue
            for action in _list(s.get("Action", [])):
                if action in DYNAMODB_WRITES:
                    assert action not in granted, f"{role}: {action} granted twice"
                    granted[action] = s.get("Condition")
        assert granted == want, f"{role}: {granted}"


# ---------------------------------------------------------------- insight bus


def test_insight_bus_is_created_unless_default():
    param = T["Parameters"]["EventBusName"]
    assert param["Default"] == "", "by default the stack creates its own bus"
    assert re.fullmatch(param["AllowedPattern"], "default") and not re.fullmatch(param["AllowedPattern"], "a/b")
    assert T["Conditions"]["CreatesInsightBus"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "EventBusName"}, "default"]}]}
    buses = resources_of("AWS::Events::EventBus")
    assert list(buses) == ["InsightBus"] and buses["InsightBus"].get("Condition") == "CreatesInsightBus"
    name = props("InsightBus")["Name"]["Fn::If"]
    assert name[0] == "HasEventBusName" and name[1] == {"Ref": "EventBusName"}


INSIGHT_BUS = {"Fn::If": ["CreatesInsightBus", {"Ref": "InsightBus"}, "default"]}


def test_insight_bus_policy_denies_put_events_to_all_but_detect():
    policies = resources_of("AWS::Events::EventBusPolicy")
    assert list(policies) == ["InsightBusPolicy"], list(policies)
    assert policies["InsightBusPolicy"].get("Condition") == "CreatesInsightBus"
    p = props("InsightBusPolicy")
    assert p["EventBusName"] == {"Ref": "InsightBus"}
    statement = p["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == "*"
    assert _list(statement["Action"]) == ["events:PutEvents"]
    assert statement["Resource"] == {"Fn::GetAtt": ["InsightBus", "Arn"]}
    # Deny unless the caller is the detect role: one condition, nothing that could narrow the deny.
    assert statement["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": ["DetectRole", "Arn"]}}}
    assert "NotPrincipal" not in statement and "NotAction" not in statement


def test_detect_publishes_only_to_the_insight_bus():
    statements = props("DetectRole")["Policies"][0]["PolicyDocument"]["Statement"]
    puts = [s for s in statements if isinstance(s, dict) and "events:PutEvents" in _list(s.get("Action", []))]
    assert len(puts) == 1 and _list(puts[0]["Action"]) == ["events:PutEvents"]
    resource = puts[0]["Resource"]["Fn::If"]
    assert resource[0] == "CreatesInsightBus"
    assert resource[1] == {"Fn::GetAtt": ["InsightBus", "Arn"]}
    assert resource[2] == {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"}
    assert props("DetectFunction")["Environment"]["Variables"]["TRAILSIGHT_EVENT_BUS"] == INSIGHT_BUS
    assert not [s for s in statements if isinstance(s, dict) and any(
        str(a).startswith("events:") for a in _list(s.get("Action", []))) and s is not puts[0]]


def test_alerts_are_published_by_detect_to_the_alert_topic_only():
    assert T["Outputs"]["InsightBusName"]["Value"] == INSIGHT_BUS
    variables = props("DetectFunction")["Environment"]["Variables"]
    assert variables["TRAILSIGHT_ALERTS_TOPIC_ARN"] == {"Ref": "AlertTopic"}
    statements = _flat_statements(props("DetectRole")["Policies"][0]["PolicyDocument"]["Statement"])
    publish = [s for s in statements if "sns:Publish" in _list(s["Action"])]
    assert len(publish) == 1 and publish[0]["Resource"] == {"Ref": "AlertTopic"}
    keys = [s for s in statements if any(str(a).startswith("kms:") for a in _list(s["Action"]))
            and s.get("Resource") == {"Fn::GetAtt": ["AlertKey", "Arn"]}]
    assert len(keys) == 1, "the role uses the alert key"
    assert keys[0]["Condition"] == {"StringEquals": {"kms:ViaService": {"Fn::Sub": "sns.${AWS::Region}.amazonaws.com"}}}
    # No rule forwards raw insight events to the topic any more: people get the readable alert.
    assert "InsightStartedRule" not in T["Resources"]
    # The ingest trigger's rule stays on the default bus, where S3 sends its events.
    assert "EventBusName" not in props("TrailObjectCreatedRule")


def test_findings_go_to_the_accounts_default_product_only_when_enabled():
    product = {"Fn::Sub": "arn:${AWS::Partition}:securityhub:${AWS::Region}:${AWS::AccountId}"
                          ":product/${AWS::AccountId}/default"}
    assert T["Parameters"]["SecurityHubFindings"]["Default"] == "false"
    assert T["Conditions"]["HasSecurityHubFindings"] == {"Fn::Equals": [{"Ref": "SecurityHubFindings"}, "true"]}
    variable = props("DetectFunction")["Environment"]["Variables"]["TRAILSIGHT_SECURITY_HUB_PRODUCT_ARN"]
    assert variable == {"Fn::If": ["HasSecurityHubFindings", product, {"Ref": "AWS::NoValue"}]}
    statements = props("DetectRole")["Policies"][0]["PolicyDocument"]["Statement"]
    conditional = [s for s in statements if isinstance(s, dict) and "Fn::If" in s
                   and s["Fn::If"][0] == "HasSecurityHubFindings"]
    assert len(conditional) == 1 and conditional[0]["Fn::If"][2] == {"Ref": "AWS::NoValue"}
    granted = conditional[0]["Fn::If"][1]
    assert granted["Action"] == "securityhub:BatchImportFindings" and granted["Resource"] == product
    every = [a for s in _flat_statements(statements) for a in _list(s["Action"])]
    assert [a for a in every if str(a).startswith("securityhub:")] == ["securityhub:BatchImportFindings"]
    assert not [a for a in _list(props("IngestRole")["Policies"][0]["PolicyDocument"]["Statement"])
                if "securityhub" in json.dumps(a)]


def test_archive_writes_only_the_two_insight_folders():
    statements = props("DetectRole")["Policies"][0]["PolicyDocument"]["Statement"]
    archive = [s for s in _flat_statements(statements) if s.get("Sid") == "ArchiveInsights"]
    assert len(archive) == 1 and archive[0]["Action"] == "s3:PutObject"
    paths = [r["Fn::Sub"][0] for r in archive[0]["Resource"]]
    assert paths == [
        "arn:${AWS::Partition}:s3:::${ArchiveBucketName}/${KeyPrefix}AWSLogs/*/CloudTrail-Insight/*",
        "arn:${AWS::Partition}:s3:::${ArchiveBucketName}/${KeyPrefix}AWSLogs/*/Trailsight-Insight/*",
    ], paths


def test_kms_service_grants_are_conditioned():
    """No service principal may use the alert key without a condition; the grant CloudWatch alarms
    need to publish to the encrypted topic holds only for SNS encryption of this account's topics."""
    statements = props("AlertKey")["KeyPolicy"]["Statement"]
    services = [s for s in statements if "Service" in s.get("Principal", {})]
    assert services, "no service grants: CloudWatch alarms could not publish to the topic"
    topics = {"Fn::Sub": "arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:*"}
    for s in services:
        assert s.get("Condition"), f"{s['Sid']}: a service grant without a condition"
        assert s["Condition"]["StringLike"]["kms:EncryptionContext:aws:sns:topicArn"] == topics, s["Sid"]
        # The SNS guide: aws:SourceArn/aws:SourceAccount are not supported for EventBridge to
        # encrypted topics (every delivery would fail).
        if s["Principal"]["Service"] == "events.amazonaws.com":
            text = json.dumps(s["Condition"])
            assert "aws:SourceArn" not in text and "aws:SourceAccount" not in text


def _list(value) -> list:
    return value if isinstance(value, list) else [value]


def _flat_statements(statements) -> list:
    """The statements, with both branches of a conditional (Fn::If) one; AWS::NoValue dropped."""
    out = []
    for s in statements:
        if isinstance(s, dict) and "Fn::If" in s:
            out += _flat_statements(s["Fn::If"][1:])
        elif isinstance(s, dict) and "Effect" in s:
            out.append(s)
    return out


# ---------------------------------------------------------------- functions


def test_functions_are_the_two_expected():
    assert set(resources_of("AWS::Serverless::Function")) == set(ENV)
    assert not resources_of("AWS::Lambda::Function"), "define functions as AWS::Serverless::Function"


def test_detect_has_only_the_dynamodb_actions_it_calls():
    statements = props("DetectRole")["Policies"][0]["PolicyDocument"]["Statement"]
    actions = {a for s in statements if isinstance(s, dict) for a in _list(s.get("Action", []))}
    dynamodb = {a for a in actions if a.startswith("dynamodb:")}
    assert dynamodb == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
    }, sorted(dynamodb)


def test_ingest_accepts_only_the_trail_bucket():
    variables = props("IngestFunction")["Environment"]["Variables"]
    assert variables["TRAILSIGHT_TRAIL_BUCKETS"] == {"Ref": "TrailBucketName"}


def test_environment_variable_names():
    for fn, names in ENV.items():
        got = set(props(fn)["Environment"]["Variables"])
        assert got <= names, f"{fn} sets undocumented variables {sorted(got - names)}"
        assert got == names, f"{fn} does not set {sorted(names - got)}"


def test_detail_type_is_the_services():
    assert props("DetectFunction")["Environment"]["Variables"]["TRAILSIGHT_DETAIL_TYPE"] == DETAIL_TYPE


def test_functions_run_the_built_bootstrap():
    mk = MAKEFILE.read_text()
    assert "build/lambda/" in mk and "bootstrap" in mk, "mk/infra.mk no longer writes build/lambda/<fn>/bootstrap"
    for fn, package in PACKAGES.items():
        p = props(fn)
        assert p["Handler"] == "bootstrap"
        assert p["Runtime"] == "provided.al2023"
        assert p["Architectures"] == [{"Ref": "Architecture"}]
        code_uri = p["CodeUri"]
        assert code_uri == f"../build/lambda/{package}/", f"{fn} CodeUri {code_uri}"
        assert (TEMPLATE.parent / code_uri).resolve() == ROOT / "build" / "lambda" / package
        assert package in mk, f"mk/infra.mk does not build {package}"
        cargo = (ROOT / "functions" / package.removeprefix("trailsight-") / "Cargo.toml").read_text()
        assert f'name = "{package}"' in cargo, f"no package/bin {package} in functions/*/Cargo.toml"


def test_function_sizing_and_concurrency():
    for fn, (memory, timeout) in SIZING.items():
        assert (props(fn)["MemorySize"], props(fn)["Timeout"]) == (memory, timeout), fn
    assert props("DetectFunction")["ReservedConcurrentExecutions"] == 1, "detect must be a single writer"
    assert props("IngestFunction")["ReservedConcurrentExecutions"] == {"Ref": "IngestReservedConcurrency"}
    for fn in SIZING:
        log = props(fn)["LoggingConfig"]
        assert log["LogFormat"] == "JSON"
        group = log["LogGroup"]["Ref"]
        assert RES[group]["Type"] == "AWS::Logs::LogGroup"
        assert props(group)["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_queue_and_event_source():
    mapping = RES["IngestQueueMapping"]
    assert mapping["Type"] == "AWS::Lambda::EventSourceMapping"
    assert mapping.get("Condition") == "UsesQueue"
    ev = mapping["Properties"]
    assert ev["FunctionName"] == {"Ref": "IngestFunction"}
    assert ev["EventSourceArn"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}
    assert ev["BatchSize"] == 10
    assert ev["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert ev["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "IngestReservedConcurrency"}
    queue = props("IngestQueue")
    assert RES["IngestQueue"].get("Condition") == "UsesQueue"
    assert RES["IngestQueuePolicy"].get("Condition") == "UsesQueue"
    need = 6 * SIZING["IngestFunction"][1] + ev.get("MaximumBatchingWindowInSeconds", 0)
    assert queue["VisibilityTimeout"] >= need, f"visibility {queue['VisibilityTimeout']} < {need}"
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 5
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]}
    for q in ("IngestQueue", "IngestDeadLetterQueue"):
        assert props(q).get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props(q), f"{q} unencrypted"
    # Every resource or output that names the queue exists only when the queue does.
    for name, res in list(RES.items()) + list(T["Outputs"].items()):
        if name in ("IngestQueue", "IngestRole", "DashboardResource", "BucketNotificationCommand"):
            continue
        if '"IngestQueue"' in json.dumps(res):
            assert _implies_queue(res.get("Condition")), f"{name} names IngestQueue without a queue mode's condition"


def _implies_queue(condition) -> bool:
    """The condition holds only in a queue mode (itself one, or an And of one)."""
    if condition in ("UsesQueue", "IsSqs", "IsSnsSqs", "IsEventBridge"):
        return True
    terms = T["Conditions"].get(condition, {}).get("Fn::And", []) if condition else []
    return any(_implies_queue(t.get("Condition")) for t in terms if isinstance(t, dict))


def test_direct_s3_trigger():
    """TriggerMode s3 (the default): the bucket invokes ingest asynchronously; failed events go
    to the dead-letter queue the DeadLetters alarm watches, after a bounded number of attempts."""
    mode = T["Parameters"]["TriggerMode"]
    assert mode["Default"] == "s3" and "s3" in mode["AllowedValues"]
    assert T["Conditions"]["IsS3"] == {"Fn::Equals": [{"Ref": "TriggerMode"}, "s3"]}
    assert T["Conditions"]["UsesQueue"] == {"Fn::Not": [{"Condition": "IsS3"}]}
    perm = RES["IngestInvokeFromBucket"]
    assert perm["Type"] == "AWS::Lambda::Permission" and perm.get("Condition") == "IsS3"
    assert perm["Properties"]["Principal"] == "s3.amazonaws.com"
    assert perm["Properties"]["Action"] == "lambda:InvokeFunction"
    assert "SourceAccount" in perm["Properties"] and "SourceArn" in perm["Properties"]
    fn = props("IngestFunction")
    assert fn["DeadLetterQueue"] == {"Type": "SQS", "TargetArn": {"Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]}}
    invoke = fn["EventInvokeConfig"]
    assert invoke["MaximumRetryAttempts"] == 2
    assert 3600 <= invoke["MaximumEventAgeInSeconds"] <= 21600
    assert "Events" not in fn, "the queue's poller is IngestQueueMapping, conditional on UsesQueue"
    statements = props("IngestRole")["Policies"][0]["PolicyDocument"]["Statement"]
    sends = [s for s in statements if isinstance(s, dict) and s.get("Action") == "sqs:SendMessage"]
    assert sends and sends[0]["Resource"] == {"Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]}
    command = json.dumps(T["Outputs"]["BucketNotificationCommand"]["Value"])
    assert "LambdaFunctionConfigurations" in command and "IsS3" in command


def test_event_source_rejects_aws_prefix():
    p = T["Parameters"]["EventSource"]
    pattern = re.compile(p["AllowedPattern"])
    assert pattern.fullmatch(p["Default"])
    for bad in ("aws.cloudtrail", "aws.trailsight"):
        assert not pattern.fullmatch(bad), bad
    assert pattern.fullmatch("trailsight.prod")


def test_parameter_defaults_match_their_patterns():
    for name, p in T["Parameters"].items():
        if "AllowedPattern" in p and "Default" in p:
            assert re.fullmatch(p["AllowedPattern"], str(p["Default"])), name
        if "AllowedValues" in p and "Default" in p:
            assert p["Default"] in p["AllowedValues"], name


# ---------------------------------------------------------------- metrics


def _dims(dimensions) -> dict:
    return {d["Name"]: d["Value"] for d in dimensions or []}


def test_alarms_use_emitted_metrics():
    ns = {"Ref": "MetricNamespace"}
    alarms = resources_of("AWS::CloudWatch::Alarm")
    assert {k: v.get("Condition") for k, v in alarms.items()} == ALARMS
    for name, alarm in alarms.items():
        p = alarm["Properties"]
        assert p["AlarmActions"] == [{"Ref": "AlertTopic"}], name
        if "Metrics" in p:  # metric math over AWS-vended metrics
            for m in p["Metrics"]:
                if "MetricStat" in m:
                    assert m["MetricStat"]["Metric"]["Namespace"] in FREE_NAMESPACES, name
            continue
        if p["MetricName"] in FILTER_METRICS:
            f = RES[FILTER_METRICS[p["MetricName"]]]
            t = f["Properties"]["MetricTransformations"][0]
            assert (t["MetricNamespace"], t["MetricName"]) == (p["Namespace"], p["MetricName"]), name
            assert f.get("Condition") == alarm.get("Condition"), name
            continue
        if p["Namespace"] != ns:
            assert p["Namespace"] in FREE_NAMESPACES, name
            continue
        metric = p["MetricName"]
        assert metric in METRICS, f"{name}: {metric} is not a metric the functions emit"
        dims = _dims(p.get("Dimensions"))
        assert tuple(sorted(dims)) == METRICS[metric], f"{name}: dimensions {dims}"
        if "Function" in dims:
            assert dims["Function"] == "ingest", name
        # A custom metric exists only at the levels that send it.
        want = "MetricsOn" if metric in BASIC_METRICS else "MetricsFull"
        assert alarm.get("Condition") == want, f"{name} reads {metric} but exists under {alarm.get('Condition')}"
    lag = props("DetectorLagAlarm")
    assert lag["TreatMissingData"] == "breaching" and lag["Statistic"] == "Maximum" and lag["Threshold"] == 60


def test_principals_untracked_alarm_reads_the_detect_run_line():
    """The filter matches the detect run's summary line and the field it logs (handler.rs), on the
    detect function's log group; the alarm fires on any untracked principal-minute in an hour."""
    f = props("PrincipalsUntrackedMetricFilter")
    assert f["LogGroupName"] == {"Ref": "DetectLogGroup"}
    source = DETECT_HANDLER_RS.read_text()
    pattern = f["FilterPattern"]
    message = re.search(r'\$\.fields\.message = "([^"]+)"', pattern).group(1)
    assert f'"{message}"' in source, message
    assert "$.fields.principals_untracked > 0" in pattern
    assert "principals_untracked = self.principals_untracked" in source
    assert f["MetricTransformations"][0]["MetricValue"] == "$.fields.principals_untracked"
    alarm = props("PrincipalsUntrackedAlarm")
    assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    detect_env = RES["DetectFunction"]["Properties"]["Environment"]["Variables"]
    assert detect_env["TRAILSIGHT_MAX_PRINCIPALS_PER_ACCOUNT"] == {"Ref": "MaxPrincipalsPerAccount"}


def test_freshness_alarm_counts_stored_files_and_breaches_on_silence():
    param = T["Parameters"]["FreshnessAlarmMinutes"]
    assert param["Default"] == "60" and "0" in param["AllowedValues"]
    periods = T["Mappings"]["FreshnessPeriods"]
    assert set(periods) == set(param["AllowedValues"]) - {"0"}
    for minutes, row in periods.items():
        assert row["Periods"] * 300 == int(minutes) * 60, minutes
        assert row["Periods"] * 300 <= 86400, "CloudWatch evaluates at most one day"
    alarm = props("FreshnessAlarm")
    assert alarm["Period"] == 300 and alarm["Statistic"] == "Sum"
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"]
    assert alarm["EvaluationPeriods"] == {"Fn::FindInMap": ["FreshnessPeriods", {"Ref": "FreshnessAlarmMinutes"}, "Periods"]}
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("LessThanThreshold", 1)
    assert alarm["TreatMissingData"] == "breaching", "no file stored at all must alarm"
    assert T["Conditions"]["HasFreshnessAlarm"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "FreshnessAlarmMinutes"}, "0"]}]}
    # The filter reads ingest's summary line: its message and the `files` field the code writes.
    f = props("IngestedFilesMetricFilter")
    assert f["LogGroupName"] == {"Ref": "IngestLogGroup"}
    summary = SUMMARY_RS.read_text()
    message = re.search(r'"(Invocation done\.)"', summary).group(1)
    assert f'$.fields.message = "{message}"' in f["FilterPattern"]
    assert "files = self.files" in summary and "$.fields.files > 0" in f["FilterPattern"]
    assert f["MetricTransformations"][0]["MetricValue"] == "$.fields.files"
    # The summary line is info level: the rule refuses a LogLevel that would silence it.
    rule = T["Rules"]["FreshnessNeedsSummaryLines"]
    assert rule["Assertions"][0]["Assert"] == {"Fn::Contains": [["info", "debug", "trace"], {"Ref": "LogLevel"}]}
    assert "tracing::info!" in summary.split("Invocation done.")[0].rsplit("fn log", 1)[1]


def test_backlog_alarm_for_each_trigger_mode():
    s3, queue = props("IngestAsyncEventAgeAlarm"), props("IngestQueueAgeAlarm")
    assert s3["AlarmName"] == queue["AlarmName"], "one alarm name, whichever exists"
    for alarm, metric, divisor in ((s3, "AsyncEventAge", "60000"), (queue, "ApproximateAgeOfOldestMessage", "60")):
        stat, expression = alarm["Metrics"]
        assert stat["MetricStat"]["Metric"]["MetricName"] == metric and stat["MetricStat"]["Stat"] == "Maximum"
        assert expression["Expression"] == f"{stat['Id']} / {divisor}", "the threshold is in minutes"
        assert expression["ReturnData"] is True and stat["ReturnData"] is False
        assert alarm["Threshold"] == {"Ref": "IngestBacklogAlarmMinutes"}
        assert alarm["TreatMissingData"] == "notBreaching"
    assert s3["Metrics"][0]["MetricStat"]["Metric"]["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "IngestFunction"}}]
    assert queue["Metrics"][0]["MetricStat"]["Metric"]["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["IngestQueue", "QueueName"]}}]
    conditions = T["Conditions"]
    assert conditions["HasS3BacklogAlarm"] == {"Fn::And": [{"Condition": "IsS3"}, {"Condition": "HasBacklogAlarm"}]}
    assert conditions["HasQueueBacklogAlarm"] == {"Fn::And": [{"Condition": "UsesQueue"}, {"Condition": "HasBacklogAlarm"}]}
    assert T["Parameters"]["IngestBacklogAlarmMinutes"]["Default"] == 30
    # The dead letters have their alarm in every mode.
    assert "Condition" not in RES["DeadLetterAlarm"]


def test_metrics_level_and_dashboard_parameters():
    level = T["Parameters"]["MetricsLevel"]
    assert level["AllowedValues"] == ["full", "basic", "off"] and level["Default"] == "basic"
    for fn in ENV:
        assert props(fn)["Environment"]["Variables"]["TRAILSIGHT_METRICS"] == {"Ref": "MetricsLevel"}, fn
    assert T["Parameters"]["Dashboard"]["Default"] == "false"
    assert RES["DashboardResource"].get("Condition") == "HasDashboard"
    assert T["Outputs"]["DashboardUrl"].get("Condition") == "HasDashboard"


def test_dashboard_uses_emitted_metrics():
    body_template, variables = props("DashboardResource")["DashboardBody"]["Fn::Sub"]
    # Variables that stand for whole metric rows (a queue's or the function's backlog) are put in
    # with their queue-mode value, so the body parses as JSON.
    for name, value in variables.items():
        if isinstance(value, dict) and "Fn::If" in value:
            row = value["Fn::If"][1]["Fn::Sub"]
            body_template = body_template.replace("${%s}" % name, row.replace("${", "${Row."))
    body = json.loads(body_template)
    seen = set()
    for widget in body["widgets"]:
        for row in widget["properties"]["metrics"]:
            parts = [x for x in row if isinstance(x, str)]
            namespace, metric, dims = parts[0], parts[1], dict(zip(parts[2::2], parts[3::2]))
            if namespace != "${MetricNamespace}":
                continue
            assert metric in METRICS, f"dashboard: {metric} is not emitted"
            assert tuple(sorted(dims)) == METRICS[metric], f"dashboard: {metric} {dims}"
            seen.add(metric)
    want = {"InsightsStarted", "InsightsActive", "FilesIngested", "RecordsIngested", "FilesFailed",
            "DetectorLagMinutes", "SeriesEvaluated"}
    assert want <= seen, f"dashboard lacks {sorted(want - seen)}"


# ---------------------------------------------------------------- docs


def test_parameters_are_documented():
    doc = DEPLOY_DOC.read_text()
    missing = [p for p in T["Parameters"] if f"`{p}`" not in doc]
    assert not missing, f"docs/DEPLOY.md does not document parameters {missing}"


def main() -> int:
    tests = [(n, f) for n, f in globals().items() if n.startswith("test_") and callable(f)]
    failed = 0
    for name, fn in tests:
        try:
            fn()
        except Exception:  # noqa: BLE001 - report every failing check, not just the first
            failed += 1
            print(f"FAIL {name}\n{traceback.format_exc()}", file=sys.stderr)
        else:
            print(f"ok   {name}")
    print(f"check_template: {len(tests) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
