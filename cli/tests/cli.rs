//! The `trailsight` binary on real and damaged inputs.

use std::path::PathBuf;
use std::process::Command;

fn trailsight() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trailsight"))
}

fn real_data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/real")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("trailsight-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn every_real_file_is_read_by_summarize_and_replay() {
    let out = trailsight()
        .args(["summarize", "--json"])
        .arg(real_data())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["files_damaged"].as_array().unwrap().len(), 0);
    // 55 invictus files + 35 stratus arrays + 1 OTRF JSON-lines file.
    assert_eq!(summary["files_read"], 91);
    assert_eq!(summary["fold"]["records"], 2900 + 310 + 103);
    assert_eq!(summary["fold"]["malformed"], 0);
    // The stratus detonations randomise regions to made-up names (`apiso-northsouth-3r`): not an
    // AWS region, so their writes and errors are unusable, never a path or a series.
    assert_eq!(summary["fold"]["unusable"], 98);
    assert_eq!(
        summary["fold"]["unusable_reasons"],
        serde_json::json!({ "region": 98 })
    );

    let out = trailsight()
        .arg("replay")
        .arg(real_data())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(!records.is_empty());
    for record in &records {
        assert_eq!(record["eventType"], "AwsCloudTrailInsight");
    }

    // The same records as the alerts topic and Security Hub would get them.
    let lines = |format: &str| -> Vec<serde_json::Value> {
        let out = trailsight()
            .args(["replay", "--format", format])
            .arg(real_data())
            .output()
            .unwrap();
        assert!(out.status.success(), "{format}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    };
    let alerts = lines("alerts");
    assert_eq!(alerts.len(), records.len());
    for (alert, record) in alerts.iter().zip(&records) {
        assert_eq!(alert["chat"]["source"], "custom");
        assert_eq!(alert["chat"]["id"], record["eventID"]);
        assert!(alert["subject"].as_str().unwrap().len() <= 100);
        assert!(alert["email"].as_str().unwrap().contains("Usual rate:"));
    }
    let findings = lines("findings");
    assert_eq!(findings.len(), records.len());
    for (finding, record) in findings.iter().zip(&records) {
        assert_eq!(finding["Id"], record["sharedEventID"]);
        assert_eq!(finding["AwsAccountId"], record["recipientAccountId"]);
        assert_eq!(finding["SchemaVersion"], "2018-10-08");
        let label = finding["Severity"]["Label"].as_str().unwrap();
        assert!(
            ["LOW", "MEDIUM", "HIGH", "CRITICAL"].contains(&label),
            "{label}"
        );
    }
}

#[test]
fn damaged_files_are_reported_and_skipped_and_change_the_exit_status() {
    let dir = temp_dir("damaged");
    let good = real_data().join("invictus-aws-attack-simulation/AWSLogs/218007301253/CloudTrail/us-east-1/2023/07/10/218007301253_CloudTrail_us-east-1_20230710T1145Z_7xgocspSowgK0Gto.json.gz");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(dir.join("good.json.gz"), &bytes).unwrap();
    std::fs::write(dir.join("LICENSE"), "MIT License\n").unwrap();
    let out = trailsight()
        .args(["summarize", "--json"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "a LICENSE beside the data changes nothing"
    );

    std::fs::write(dir.join("truncated.json.gz"), &bytes[..bytes.len() / 2]).unwrap();
    let out = trailsight().arg("replay").arg(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("truncated.json.gz"), "{stderr}");
    assert!(
        stderr.contains("1 files read") || stderr.contains("1 files read,"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn simulate_replay_and_insight_files() {
    let dir = temp_dir("sim");
    let data = dir.join("data");
    let out = trailsight()
        .args([
            "simulate",
            "--days",
            "3",
            "--regions",
            "us-east-1",
            "--seed",
            "5",
            "--inject",
            "iam-burst@2d10h",
            "--out",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let insights = dir.join("insights");
    let out = trailsight()
        .args(["replay", "--out"])
        .arg(&insights)
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines
            .iter()
            .any(|r| r["insightDetails"]["eventSource"] == "iam.amazonaws.com"),
        "the injected IAM burst is found"
    );
    let times: Vec<&str> = lines
        .iter()
        .map(|r| r["eventTime"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "records come out in eventTime order"
    );
    // Insight files land in the service's layout and are skipped when read back as input.
    let out = trailsight()
        .args(["summarize", "--json"])
        .arg(&insights)
        .output()
        .unwrap();
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["files_read"], 0);
    assert!(summary["files_not_logs"].as_u64().unwrap() >= 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn replaying_the_same_data_twice_gives_the_same_bytes() {
    // Identifiers are derived from content (docs/DETECTION.md, "Records"): two replays of the
    // same files print the same bytes and write the same Insight files, IDs included.
    let dir = temp_dir("twice");
    let data = dir.join("data");
    let out = trailsight()
        .args([
            "simulate",
            "--days",
            "3",
            "--regions",
            "us-east-1",
            "--seed",
            "1",
            "--inject",
            "iam-burst@1d6h",
            "--inject",
            "maintenance-gap@2d2h",
            "--out",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replay = |name: &str| {
        let insights = dir.join(name);
        let out = trailsight()
            .args(["replay", "--out"])
            .arg(&insights)
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut files: Vec<(PathBuf, Vec<u8>)> = files_under(&insights)
            .into_iter()
            .map(|p| {
                let bytes = std::fs::read(&p).unwrap();
                (p.strip_prefix(&insights).unwrap().to_owned(), bytes)
            })
            .collect();
        files.sort();
        (out.stdout, files)
    };
    let (first, first_files) = replay("first");
    let (second, second_files) = replay("second");
    let records: Vec<serde_json::Value> = String::from_utf8_lossy(&first)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(records.len() >= 4, "{} records", records.len());
    assert!(
        records
            .iter()
            .any(|r| r["insightDetails"]["state"] == "End"),
        "Start and End records"
    );
    assert!(first == second, "the same bytes on stdout");
    assert!(!first_files.is_empty());
    assert_eq!(
        first_files.iter().map(|(p, _)| p).collect::<Vec<_>>(),
        second_files.iter().map(|(p, _)| p).collect::<Vec<_>>(),
        "the same Insight file names"
    );
    assert!(first_files == second_files, "the same Insight file bytes");
    // Version-5 UUIDs, one eventID per record, Start and End sharing their sharedEventID.
    let mut ids = std::collections::BTreeSet::new();
    let mut pairs: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for r in &records {
        for field in ["eventID", "sharedEventID"] {
            let id = r[field].as_str().unwrap();
            assert_eq!(id.len(), 36, "{id}");
            assert_eq!(&id[14..15], "5", "a version-5 UUID: {id}");
        }
        assert!(
            ids.insert(r["eventID"].as_str().unwrap()),
            "an eventID repeats"
        );
        pairs
            .entry(r["sharedEventID"].as_str().unwrap())
            .or_default()
            .push(r["insightDetails"]["state"].as_str().unwrap());
    }
    for states in pairs.values() {
        assert!(
            states == &["Start"] || states == &["Start", "End"],
            "{pairs:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_record_dated_in_the_far_future_is_reported_and_skipped() {
    // The real OTRF JSON-lines file with one record moved to the year 2124: replay must not
    // catch up minute by minute to it (it used to hang), and says what it skipped.
    let dir = temp_dir("future");
    let source = real_data().join("otrf-ec2-proxy-s3-exfiltration");
    let lines_file = std::fs::read_dir(&source)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("the OTRF JSON-lines file");
    let text = std::fs::read_to_string(&lines_file).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut record: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    record["eventTime"] = "2124-06-01T12:00:00Z".into();
    record["eventName"] = "CreateUser".into();
    lines[0] = record.to_string();
    std::fs::write(dir.join("events.json"), lines.join("\n")).unwrap();
    let out = trailsight().arg("replay").arg(&dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("skipped 1 events dated after"), "{stderr}");
    assert!(stderr.contains("events.json"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A burst of `CreateUser` calls over a quiet day of `RunInstances`, one file per hour, with the
/// account, region or API of the burst chosen by the caller.
fn write_burst_logs(
    dir: &std::path::Path,
    account: &str,
    region: &str,
    burst_name: &str,
    burst_arn: &str,
) {
    std::fs::create_dir_all(dir).unwrap();
    let mut id = 0;
    for hour in 0..30 {
        let mut records = Vec::new();
        for minute in 0..60 {
            let time = format!(
                "2026-03-{:02}T{:02}:{minute:02}:10Z",
                2 + hour / 24,
                hour % 24
            );
            let burst = hour == 28 && (10..20).contains(&minute);
            let (acct, reg, name, arn, n) = if burst {
                (account, region, burst_name, burst_arn, 40)
            } else {
                (
                    "111122223333",
                    "us-east-1",
                    "RunInstances",
                    "arn:aws:iam::111122223333:user/u",
                    1,
                )
            };
            for _ in 0..n {
                id += 1;
                records.push(serde_json::json!({
                    "eventVersion": "1.08", "eventID": format!("e{id}"), "eventTime": time,
                    "eventSource": "iam.amazonaws.com", "eventName": name, "awsRegion": reg,
                    "recipientAccountId": acct, "readOnly": false, "eventType": "AwsApiCall",
                    "managementEvent": true, "eventCategory": "Management",
                    "userIdentity": {"type": "IAMUser", "arn": arn},
                }));
            }
        }
        std::fs::write(
            dir.join(format!("hour{hour:02}.json")),
            serde_json::json!({ "Records": records }).to_string(),
        )
        .unwrap();
    }
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn a_crafted_account_writes_nothing_outside_out() {
    let dir = temp_dir("traversal");
    let data = dir.join("a/b/c/d/data");
    let out_dir = dir.join("a/b/c/d/out");
    write_burst_logs(&data, "../../../../x", "us-east-1", "CreateUser", "arn:u");
    // The same burst with a real account is found: the crafted one only lacks its account.
    let control = dir.join("control");
    write_burst_logs(&control, "111122223333", "us-east-1", "CreateUser", "arn:u");
    let out = trailsight()
        .args(["replay", "--min-calls", "5", "--warmup-hours", "1"])
        .arg(&control)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("CreateUser"),
        "the control burst is an insight"
    );

    let out = trailsight()
        .args(["replay", "--min-calls", "5", "--warmup-hours", "1", "--out"])
        .arg(&out_dir)
        .arg(&data)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("CreateUser"));
    // Nothing under the directory the traversal aims at (dir/a/x or above), nothing named x.
    let everything = files_under(&dir);
    assert!(
        everything
            .iter()
            .all(|p| p.starts_with(&data) || p.starts_with(&out_dir) || p.starts_with(&control)),
        "{everything:?}"
    );
    assert!(!dir.join("a/x").exists() && !dir.join("x").exists());
    for path in files_under(&out_dir) {
        assert!(
            path.to_string_lossy()
                .contains("/AWSLogs/111122223333/CloudTrail-Insight/us-east-1/"),
            "{}",
            path.display()
        );
    }

    let out = trailsight()
        .args(["summarize", "--json"])
        .arg(&data)
        .output()
        .unwrap();
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["fold"]["unusable"], 400);
    assert_eq!(summary["fold"]["unusable_reasons"]["account"], 400);
    assert_eq!(summary["files_read"], 30);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn log_content_and_file_names_reach_the_terminal_escaped() {
    let dir = temp_dir("terminal");
    let forged = "\nskipped damaged file FAKE\u{1b}[2J\u{1b}[31m";
    // A burst whose caller ARN holds a newline and ANSI escapes (clear screen, red): an insight,
    // its top caller shown in the table.
    let data = dir.join("data");
    let arn = format!("arn:aws:iam::111122223333:user/x{forged}");
    write_burst_logs(&data, "111122223333", "us-east-1", "CreateUser", &arn);
    // A burst whose eventName holds them: no series (an unusable record), so printed nowhere.
    let names = dir.join("names");
    write_burst_logs(
        &names,
        "111122223333",
        "us-east-1",
        &format!("CreateUser{forged}"),
        "arn:u",
    );
    // A damaged file whose name forges a line of the report.
    let good = real_data().join("invictus-aws-attack-simulation/AWSLogs/218007301253/CloudTrail/us-east-1/2023/07/10/218007301253_CloudTrail_us-east-1_20230710T1145Z_7xgocspSowgK0Gto.json.gz");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(
        data.join(format!("x.json.gz{forged}.json.gz")),
        &bytes[..bytes.len() / 2],
    )
    .unwrap();

    for (input, status) in [(&data, 3), (&names, 0)] {
        let out = trailsight()
            .args([
                "replay",
                "--min-calls",
                "5",
                "--warmup-hours",
                "1",
                "--format",
                "table",
            ])
            .arg(input)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(status));
        for text in [
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        ] {
            assert!(!text.contains('\u{1b}'), "{text}");
            assert!(
                !text
                    .lines()
                    .any(|l| l.starts_with("skipped damaged file FAKE")),
                "{text}"
            );
        }
    }
    let out = trailsight()
        .args([
            "replay",
            "--min-calls",
            "5",
            "--warmup-hours",
            "1",
            "--format",
            "table",
        ])
        .arg(&data)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Shown, escaped (the table shortens the ARN: its start is enough).
    assert!(stdout.contains("user/x\\nskipped damage"), "{stdout}");
    assert!(
        stderr.contains("x.json.gz\\nskipped damaged file FAKE\\e[2J\\e[31m.json.gz"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("skipped damaged file").count(),
        2,
        "one report line, which names the forged text once: {stderr}"
    );

    // JSON output stays exact JSON: the ARN round-trips byte for byte.
    let out = trailsight()
        .args(["replay", "--min-calls", "5", "--warmup-hours", "1"])
        .arg(&data)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains('\u{1b}'), "JSON escapes controls itself");
    let records: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        records.iter().any(|r| r
            .to_string()
            .contains(&serde_json::to_string(&arn).unwrap())),
        "{stdout}"
    );

    let out = trailsight()
        .args(["summarize", "--json"])
        .arg(&names)
        .output()
        .unwrap();
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["fold"]["unusable_reasons"]["event_name"], 400);
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[test]
fn symlinks_are_read_once_and_broken_ones_reported_not_fatal() {
    use std::os::unix::fs::symlink;
    let dir = temp_dir("symlinks");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let good = real_data().join("invictus-aws-attack-simulation/AWSLogs/218007301253/CloudTrail/us-east-1/2023/07/10/218007301253_CloudTrail_us-east-1_20230710T1145Z_7xgocspSowgK0Gto.json.gz");
    std::fs::copy(&good, data.join("good.json.gz")).unwrap();
    symlink(&data, dir.join("again")).unwrap();
    symlink(&dir, data.join("loop")).unwrap();
    symlink(dir.join("gone.json.gz"), data.join("dangling.json.gz")).unwrap();
    symlink(data.join("ouroboros"), data.join("ouroboros")).unwrap();
    for command in ["summarize", "replay"] {
        let mut cmd = trailsight();
        cmd.arg(command);
        if command == "summarize" {
            cmd.arg("--json");
        }
        let out = cmd.arg(&dir).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{command}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "skipped {}: broken symlink",
                dir.join("again/dangling.json.gz").display()
            )),
            "{stderr}"
        );
        assert!(stderr.contains("ouroboros"), "{stderr}");
        if command == "summarize" {
            let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(
                summary["files_read"], 1,
                "the symlinked folder is not read twice"
            );
        } else {
            assert!(stderr.contains("replay: 1 files read"), "{stderr}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn report_draws_every_insight_and_escapes_log_values() {
    let dir = temp_dir("report");
    let data = dir.join("data");
    // A burst whose caller ARN is markup: an insight, its caller in the sentence and the tables.
    let arn = "arn:aws:iam::111122223333:user/<script>alert(1)</script>";
    write_burst_logs(&data, "111122223333", "us-east-1", "CreateUser", arn);
    let flags = ["--min-calls", "5", "--warmup-hours", "1"];
    let insights = dir.join("insights");
    let out = trailsight()
        .arg("replay")
        .args(flags)
        .arg("--out")
        .arg(&insights)
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success());
    let starts = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("\"state\":\"Start\""))
        .count();
    assert!(starts >= 1, "the burst is an insight");

    let page = dir.join("report.html");
    let out = trailsight()
        .arg("report")
        .args(flags)
        .arg(&data)
        .arg("-o")
        .arg(&page)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        page.display().to_string(),
        "it prints the report's path"
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(
        html.matches("<section class=\"card insight\"").count(),
        starts
    );
    assert_eq!(
        html.matches("<figure class=\"insight-chart\">").count(),
        starts
    );
    assert!(
        !html.contains("<script"),
        "markup from the logs in the page"
    );
    assert!(html.contains("user/&lt;script&gt;alert(1)&lt;/script&gt;"));

    // The same records, drawn from replay's CloudTrail-Insight files: the same page.
    let from_files = dir.join("from-files.html");
    let out = trailsight()
        .arg("report")
        .args(flags)
        .arg(&data)
        .arg("--from-insights")
        .arg(&insights)
        .arg("-o")
        .arg(&from_files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&from_files).unwrap(), html);
    let _ = std::fs::remove_dir_all(&dir);
}
