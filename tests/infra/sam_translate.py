#!/usr/bin/env python3
"""Translate infra/template.yaml (SAM) into plain CloudFormation JSON, offline.

Usage: sam_translate.py [TEMPLATE] [OUTPUT]   (defaults: infra/template.yaml, build/template.cfn.json)

The output is what CloudFormation would expand the Serverless transform into, so cfn-lint and checkov can
check the generated resources (event source mapping, schedule rule, permissions) and every reference to a
resource that SAM renames or creates. No AWS call is made:
- local CodeUri folders become placeholder S3 locations, as `sam package` would make them;
- managed policies resolve from a fixed table instead of IAM's ListPolicies;
- region and partition come from AWS_DEFAULT_REGION (us-east-1 unless set).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from cfnlint.decode import decode  # noqa: E402  (after the region default)
from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader  # noqa: E402
from samtranslator.translator.transform import transform  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

# Managed policies SAM may attach to roles it generates. Our functions bring their own roles, so none
# should be needed; the table keeps the translation offline if that ever changes.
MANAGED_POLICIES = {
    name: f"arn:aws:iam::aws:policy/{path}{name}"
    for path, name in [
        ("service-role/", "AWSLambdaBasicExecutionRole"),
        ("service-role/", "AWSLambdaSQSQueueExecutionRole"),
        ("", "AWSXrayWriteOnlyAccess"),
    ]
}


class OfflinePolicyLoader(ManagedPolicyLoader):
    """A ManagedPolicyLoader that answers from MANAGED_POLICIES and never calls IAM."""

    def __init__(self) -> None:  # the base class wants an IAM client; there is none offline
        super().__init__(iam_client=None)  # type: ignore[arg-type]
        self._policy_map = dict(MANAGED_POLICIES)

    def load(self) -> dict[str, str]:
        return dict(self._policy_map)


def to_plain(node):
    """cfn-lint's decoder returns dict/str subclasses carrying line marks; give samtranslator plain types."""
    if isinstance(node, dict):
        return {str(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node


def load_template(path: Path) -> dict:
    template, matches = decode(str(path))
    if matches or template is None:
        raise SystemExit(f"{path}: cannot parse: {[str(m) for m in matches]}")
    return to_plain(template)


def stub_local_code(template: dict) -> None:
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.setdefault("Properties", {})
        code = props.get("CodeUri")
        if isinstance(code, str) and not code.startswith("s3://"):
            props["CodeUri"] = f"s3://trailsight-artifacts-placeholder/{logical_id}.zip"


def main(argv: list[str]) -> int:
    src = Path(argv[1]) if len(argv) > 1 else ROOT / "infra" / "template.yaml"
    out = Path(argv[2]) if len(argv) > 2 else ROOT / "build" / "template.cfn.json"
    template = load_template(src)
    stub_local_code(template)
    cfn = transform(template, {}, OfflinePolicyLoader())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(cfn, indent=2, sort_keys=False) + "\n")
    print(f"{src} -> {out}: {len(cfn.get('Resources', {}))} resources")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
