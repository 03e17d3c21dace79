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
    assert_eq!(summary["fold"]["unusable"], 0);

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
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(record["eventType"], "AwsCloudTrailInsight");
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
