//! Who made a call: principals as the per-principal insights count them (opt-in,
//! docs/DETECTION.md "Per-principal insights").
//!
//! - [`normalise`]: an assumed role's sessions are one principal, the role; the session stays in
//!   the cell's caller ARNs, so records name it as an attribution.
//! - [`is_sensitive`]: the APIs whose first call by a principal is reported
//!   (`PrincipalFirstSeenInsight`), a documented list.

/// Longest principal kept, in characters; a longer ARN is not a principal series (AWS ARNs of
/// users and roles are far shorter).
pub const MAX_PRINCIPAL_CHARS: usize = 512;

/// The principal a caller ARN counts as, or `None` when it cannot be one (no ARN, not an ARN, too
/// long, control characters). `arn:aws:sts::111122223333:assumed-role/Deploy/ci-4711` is the
/// role `arn:aws:iam::111122223333:role/Deploy` (the role's path is not in the session's ARN);
/// other ARNs (users, root, federated users) are themselves.
pub fn normalise(arn: &str) -> Option<String> {
    if arn.len() > MAX_PRINCIPAL_CHARS
        || !arn.starts_with("arn:")
        || arn.chars().any(|c| c.is_control() || c == '\0')
    {
        return None;
    }
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [_, partition, service, _, account, resource] = parts.as_slice() else {
        return None;
    };
    if *service == "sts"
        && let Some(rest) = resource.strip_prefix("assumed-role/")
    {
        let role = rest.split('/').next().unwrap_or_default();
        if role.is_empty() {
            return None;
        }
        return Some(format!("arn:{partition}:iam::{account}:role/{role}"));
    }
    Some(arn.to_owned())
}

/// Sensitive APIs, by `eventSource`: `None` = every write of the service (a name not starting
/// with a read prefix), `Some(names)` = those names. A principal's first call of one of them,
/// after its warm-up, is a `PrincipalFirstSeenInsight`.
const SENSITIVE: [(&str, Option<&[&str]>); 10] = [
    // IAM writes: new users, keys, policies, trust.
    ("iam.amazonaws.com", None),
    // KMS: every call that is not a read by name: Decrypt, GenerateDataKey, ReEncrypt, key
    // creation, deletion, grants and policies.
    ("kms.amazonaws.com", None),
    (
        "secretsmanager.amazonaws.com",
        Some(&["GetSecretValue", "BatchGetSecretValue"]),
    ),
    // SSM parameter reads: the decryption flag is in requestParameters, which the fold does
    // not read, so every parameter read counts (docs/DETECTION.md).
    (
        "ssm.amazonaws.com",
        Some(&["GetParameter", "GetParameters", "GetParametersByPath"]),
    ),
    ("cloudtrail.amazonaws.com", None),
    ("guardduty.amazonaws.com", None),
    ("config.amazonaws.com", None),
    (
        "s3.amazonaws.com",
        Some(&[
            "PutBucketPolicy",
            "DeleteBucketPolicy",
            "PutBucketAcl",
            "PutBucketPublicAccessBlock",
            "DeleteBucketPublicAccessBlock",
            "PutAccountPublicAccessBlock",
            "DeleteAccountPublicAccessBlock",
        ]),
    ),
    ("organizations.amazonaws.com", None),
    (
        "sts.amazonaws.com",
        Some(&["GetFederationToken", "AssumeRoleWithSAML"]),
    ),
];

/// True for the APIs of the documented sensitive list ([`SENSITIVE`]).
pub fn is_sensitive(event_source: &str, event_name: &str) -> bool {
    SENSITIVE.iter().any(|(source, names)| {
        *source == event_source
            && match names {
                None => !crate::classify::is_read_only_name(event_name),
                Some(names) => names.contains(&event_name),
            }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_assumed_roles_sessions_are_the_role() {
        assert_eq!(
            normalise("arn:aws:sts::111122223333:assumed-role/Deploy/ci-4711").as_deref(),
            Some("arn:aws:iam::111122223333:role/Deploy")
        );
        assert_eq!(
            normalise("arn:aws:sts::111122223333:assumed-role/Deploy/alice@example.com"),
            normalise("arn:aws:sts::111122223333:assumed-role/Deploy/bob")
        );
        assert_eq!(
            normalise("arn:aws-us-gov:sts::111122223333:assumed-role/R/s").as_deref(),
            Some("arn:aws-us-gov:iam::111122223333:role/R")
        );
        for own in [
            "arn:aws:iam::111122223333:user/alice",
            "arn:aws:iam::111122223333:root",
            "arn:aws:sts::111122223333:federated-user/bob",
        ] {
            assert_eq!(normalise(own).as_deref(), Some(own));
        }
        assert_eq!(normalise("AWS Internal"), None);
        assert_eq!(normalise("arn:aws:sts::1:assumed-role/"), None);
        assert_eq!(normalise("arn:aws:iam::1:user/a\nb"), None);
        assert_eq!(
            normalise(&format!("arn:aws:iam::1:user/{}", "a".repeat(600))),
            None
        );
    }

    #[test]
    fn the_sensitive_list() {
        for (source, name) in [
            ("iam.amazonaws.com", "CreateAccessKey"),
            ("iam.amazonaws.com", "AttachUserPolicy"),
            ("kms.amazonaws.com", "ScheduleKeyDeletion"),
            ("kms.amazonaws.com", "Decrypt"),
            ("secretsmanager.amazonaws.com", "GetSecretValue"),
            ("secretsmanager.amazonaws.com", "BatchGetSecretValue"),
            ("ssm.amazonaws.com", "GetParameters"),
            ("cloudtrail.amazonaws.com", "StopLogging"),
            ("guardduty.amazonaws.com", "DeleteDetector"),
            ("config.amazonaws.com", "StopConfigurationRecorder"),
            ("s3.amazonaws.com", "PutBucketPolicy"),
            ("s3.amazonaws.com", "DeleteBucketPublicAccessBlock"),
            ("organizations.amazonaws.com", "LeaveOrganization"),
            ("sts.amazonaws.com", "GetFederationToken"),
        ] {
            assert!(is_sensitive(source, name), "{source}:{name}");
        }
        for (source, name) in [
            ("iam.amazonaws.com", "ListUsers"),
            ("iam.amazonaws.com", "GetUser"),
            ("cloudtrail.amazonaws.com", "LookupEvents"),
            ("s3.amazonaws.com", "ListBuckets"),
            ("ec2.amazonaws.com", "RunInstances"),
            ("s3.amazonaws.com", "GetBucketPolicy"),
            ("sts.amazonaws.com", "AssumeRole"),
            ("secretsmanager.amazonaws.com", "ListSecrets"),
        ] {
            assert!(!is_sensitive(source, name), "{source}:{name}");
        }
    }
}
