//! CloudTrail's S3 key layout (the contract's §5): which objects are log files, and what their
//! names say.

use crate::minute::Minute;

/// What an object key holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    /// A CloudTrail log file; `delivered` is the delivery minute from its name.
    Log {
        account: String,
        region: String,
        delivered: Minute,
    },
    /// Something to skip, with the reason.
    Skip(&'static str),
}

const SIBLINGS: [(&str, &str); 6] = [
    ("/CloudTrail-Digest/", "digest file"),
    (
        "/CloudTrail-Insight/",
        "Insight file (our own output or the managed service's)",
    ),
    (
        "/Trailsight-Insight/",
        "per-principal Insight file (our own output)",
    ),
    ("/CloudTrail-NetworkActivity/", "network activity file"),
    ("/CloudTrail-Aggregated/", "aggregated events file"),
    ("ConfigWritabilityCheckFile", "AWS Config check file"),
];

/// Why an object's key or a local file's path names something CloudTrail writes beside its log
/// files (digests, Insight files, network activity, aggregated events, AWS Config's check file),
/// or `None`. The one list of them, for S3 keys ([`classify_key`]) and files on disk alike.
pub fn sibling_of_logs(path: &str) -> Option<&'static str> {
    SIBLINGS
        .iter()
        .find(|(needle, _)| path.contains(needle) || path.starts_with(&needle[1..]))
        .map(|(_, why)| *why)
}

/// Classifies an S3 key (already URL-decoded).
pub fn classify_key(key: &str) -> KeyKind {
    if key.is_empty() || key.ends_with('/') {
        return KeyKind::Skip("folder marker");
    }
    if let Some(why) = sibling_of_logs(key) {
        return KeyKind::Skip(why);
    }
    if !key.contains("/CloudTrail/") && !key.starts_with("CloudTrail/") {
        return KeyKind::Skip("not under a CloudTrail/ folder");
    }
    let name = key.rsplit('/').next().unwrap_or(key);
    if !(name.ends_with(".json.gz") || name.ends_with(".json")) {
        return KeyKind::Skip("not a .json.gz log file");
    }
    match parse_log_name(name) {
        Some((account, region, delivered)) => KeyKind::Log {
            account,
            region,
            delivered,
        },
        None => KeyKind::Skip("name is not <account>_CloudTrail_<region>_<time>_<id>.json.gz"),
    }
}

/// Parses `<account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<id>.json.gz`.
pub fn parse_log_name(name: &str) -> Option<(String, String, Minute)> {
    let mut parts = name.split('_');
    let account = parts.next()?;
    if parts.next()? != "CloudTrail" {
        return None;
    }
    let region = parts.next()?;
    let stamp = parts.next()?;
    let delivered = parse_stamp(stamp)?;
    if !crate::ident::is_account(account) || !crate::ident::is_region(region) {
        return None;
    }
    Some((account.to_owned(), region.to_owned(), delivered))
}

/// `20230710T1145Z` → minute.
pub fn parse_stamp(stamp: &str) -> Option<Minute> {
    let b = stamp.as_bytes();
    if b.len() != 14 || b[8] != b'T' || b[13] != b'Z' {
        return None;
    }
    let text = format!(
        "{}-{}-{}T{}:{}:00Z",
        &stamp[0..4],
        &stamp[4..6],
        &stamp[6..8],
        &stamp[9..11],
        &stamp[11..13]
    );
    crate::minute::parse_minute(&text)
}

/// The delivery minute a local file name implies, if it follows CloudTrail's naming.
pub fn delivery_minute(path_or_key: &str) -> Option<Minute> {
    let name = path_or_key.rsplit(['/', '\\']).next()?;
    parse_log_name(name).map(|(_, _, m)| m)
}

/// The folder of the service's Insight files, and the name part of each.
pub const CLOUDTRAIL_INSIGHT_FOLDER: &str = "CloudTrail-Insight";
/// The folder of Trailsight's own per-principal Insight files, beside the service's, in the same
/// layout: a reader of CloudTrail-Insight files never meets a type it does not know.
pub const TRAILSIGHT_INSIGHT_FOLDER: &str = "Trailsight-Insight";

/// The folder an Insight record's file goes to: [`CLOUDTRAIL_INSIGHT_FOLDER`] for the managed
/// service's two types, [`TRAILSIGHT_INSIGHT_FOLDER`] for the per-principal ones.
pub fn insight_folder(insight_type: crate::series::InsightType) -> &'static str {
    if insight_type.is_principal() {
        TRAILSIGHT_INSIGHT_FOLDER
    } else {
        CLOUDTRAIL_INSIGHT_FOLDER
    }
}

/// The S3 key of an Insight file in `folder` ([`insight_folder`]), in the service's layout; `None`
/// unless `account` is 12 digits, `region` an AWS region and `id` alphanumeric
/// ([`crate::ident`]): keys are built only from validated parts, so no record can name a key
/// outside `<prefix>/AWSLogs/<account>/`.
pub fn insight_key(
    prefix: &str,
    folder: &str,
    account: &str,
    region: &str,
    delivered: Minute,
    id: &str,
) -> Option<String> {
    if !crate::ident::is_account(account)
        || !crate::ident::is_region(region)
        || id.is_empty()
        || !id.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return None;
    }
    let t = crate::minute::to_datetime(delivered);
    let prefix = if prefix.is_empty() || prefix.ends_with('/') {
        prefix.to_owned()
    } else {
        format!("{prefix}/")
    };
    Some(format!(
        "{prefix}AWSLogs/{account}/{folder}/{region}/{}/{account}_{folder}_{region}_{}_{id}.json.gz",
        t.format("%Y/%m/%d"),
        t.format("%Y%m%dT%H%MZ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_logs_and_siblings() {
        let log = "AWSLogs/218007301253/CloudTrail/us-east-1/2023/07/10/218007301253_CloudTrail_us-east-1_20230710T1145Z_7xgocspSowgK0Gto.json.gz";
        match classify_key(log) {
            KeyKind::Log {
                account,
                region,
                delivered,
            } => {
                assert_eq!(
                    (account.as_str(), region.as_str()),
                    ("218007301253", "us-east-1")
                );
                assert_eq!(
                    crate::minute::format_minute(delivered),
                    "2023-07-10T11:45:00Z"
                );
            }
            other => panic!("{other:?}"),
        }
        let org = format!("prefix/AWSLogs/o-abc123/{log}")
            .replace("AWSLogs/o-abc123/AWSLogs/", "AWSLogs/o-abc123/");
        assert!(matches!(classify_key(&org), KeyKind::Log { .. }));
        for skip in [
            "AWSLogs/1/CloudTrail-Digest/us-east-1/2023/07/10/1_CloudTrail-Digest_us-east-1_x_20230710T1145Z.json.gz",
            "AWSLogs/1/CloudTrail-Insight/us-east-1/2023/07/10/1_CloudTrail-Insight_us-east-1_20230710T1145Z_abc.json.gz",
            "AWSLogs/1/CloudTrail-NetworkActivity/us-east-1/2023/07/10/x.json.gz",
            "AWSLogs/1/CloudTrail-Aggregated/x.json.gz",
            "AWSLogs/1/CloudTrail/us-east-1/2023/07/10/",
            "AWSLogs/1/Config/ConfigWritabilityCheckFile",
            "AWSLogs/1/CloudTrail/us-east-1/notes.txt",
            "other/file.json.gz",
        ] {
            assert!(matches!(classify_key(skip), KeyKind::Skip(_)), "{skip}");
        }
    }

    #[test]
    fn insight_keys_follow_the_service_layout() {
        let m = crate::minute::parse_minute("2026-03-02T14:07:00Z").unwrap();
        assert_eq!(
            insight_key(
                "p",
                CLOUDTRAIL_INSIGHT_FOLDER,
                "111122223333",
                "us-east-1",
                m,
                "ABCDEFGHIJKLMNOP"
            )
            .unwrap(),
            "p/AWSLogs/111122223333/CloudTrail-Insight/us-east-1/2026/03/02/111122223333_CloudTrail-Insight_us-east-1_20260302T1407Z_ABCDEFGHIJKLMNOP.json.gz"
        );
        for folder in [CLOUDTRAIL_INSIGHT_FOLDER, TRAILSIGHT_INSIGHT_FOLDER] {
            let key = insight_key("", folder, "111122223333", "us-east-1", m, "x").unwrap();
            assert!(key.contains(&format!("/{folder}/")), "{key}");
            assert!(matches!(classify_key(&key), KeyKind::Skip(_)), "{key}");
        }
    }

    #[test]
    fn insight_keys_are_built_from_validated_parts_only() {
        let m = crate::minute::parse_minute("2026-03-02T14:07:00Z").unwrap();
        for (account, region, id) in [
            ("../../../../x", "us-east-1", "ABC"),
            ("111", "us-east-1", "ABC"),
            ("*", "*", "ABC"),
            ("111122223333", "../../x", "ABC"),
            ("111122223333", "us-east-1\n", "ABC"),
            ("111122223333", "us-east-1", "../x"),
            ("111122223333", "us-east-1", ""),
        ] {
            assert_eq!(
                insight_key("p", CLOUDTRAIL_INSIGHT_FOLDER, account, region, m, id),
                None,
                "{account} {region} {id}"
            );
        }
    }

    #[test]
    fn log_names_with_crafted_accounts_or_regions_are_skipped() {
        for key in [
            "AWSLogs/../../../../x/CloudTrail/us-east-1/2023/07/10/..%2F_CloudTrail_us-east-1_20230710T1145Z_a.json.gz",
            "AWSLogs/111122223333/CloudTrail/us-east-1/2023/07/10/111_CloudTrail_us-east-1_20230710T1145Z_a.json.gz",
            "AWSLogs/111122223333/CloudTrail/x/2023/07/10/111122223333_CloudTrail_..\\x_20230710T1145Z_a.json.gz",
        ] {
            assert!(matches!(classify_key(key), KeyKind::Skip(_)), "{key}");
        }
    }
}
