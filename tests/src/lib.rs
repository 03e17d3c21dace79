//! Test harness: a real moto server (AWS wire protocol: S3, DynamoDB, SQS, SNS, EventBridge,
//! CloudWatch) started on a free loopback port for one test, killed when the test ends (even when
//! it fails), and SDK configuration pointing at it.
//!
//! moto comes from the project's venv (`make tools` installs the pinned version); set
//! `MOTO_SERVER` to use another binary.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// A running moto server; killed on drop.
pub struct Moto {
    child: Child,
    pub endpoint: String,
    pub port: u16,
}

impl Moto {
    /// Starts moto on a free port of 127.0.0.1 and waits until it answers.
    pub fn start() -> Moto {
        let binary = std::env::var("MOTO_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|_| workspace_root().join(".venv/bin/moto_server"));
        assert!(
            binary.exists(),
            "moto_server not found at {}: run `make tools` (or set MOTO_SERVER)",
            binary.display()
        );
        let port = free_port();
        let child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        moto
    }

    /// SDK configuration for this server: test credentials, a region, no instance metadata.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        sdk_config_for(&self.endpoint).await
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SDK configuration for any local endpoint.
pub async fn sdk_config_for(endpoint: &str) -> aws_config::SdkConfig {
    set_test_environment();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "trailsight-tests",
        ))
        .load()
        .await
}

/// The variables the SDK reads, set so it never probes instance metadata or real accounts.
pub fn set_test_environment() {
    // SAFETY: tests set the same constant values; no test reads them while another writes others.
    unsafe {
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
        std::env::set_var("AWS_REGION", "us-east-1");
        std::env::set_var("AWS_DEFAULT_REGION", "us-east-1");
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// A test proxy in front of moto (`tests/fault_proxy.py`, `tests/eventbridge_fault_proxy.py`):
/// started with the project's venv python on a free port, killed on drop.
pub struct TestProxy {
    child: Child,
    pub endpoint: String,
}

impl TestProxy {
    /// Starts `script` (relative to the workspace) with `--port 0 --upstream <upstream>` and
    /// `args`, and waits for its `listening on <port>` line.
    pub fn start(script: &str, upstream: &str, args: &[String]) -> TestProxy {
        use std::io::BufRead;
        let root = workspace_root();
        let venv_python = root.join(".venv/bin/python");
        let python = if venv_python.exists() {
            venv_python
        } else {
            PathBuf::from("python3")
        };
        let mut child = Command::new(python)
            .arg(root.join(script))
            .args(["--port", "0", "--upstream", upstream])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {script}: {e}"));
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            std::io::BufReader::new(stdout)
                .read_line(&mut line)
                .expect("proxy output");
        }
        let port = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected proxy output {line:?}"))
            .to_owned();
        TestProxy {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    /// A control request (`/__proxy/...`), its JSON answer.
    pub fn control(&self, method: &str, path: &str) -> serde_json::Value {
        use std::io::{Read, Write};
        let address = self.endpoint.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(address).expect("connect proxy");
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        let body = response.split("\r\n\r\n").nth(1).expect("body");
        serde_json::from_str(body).expect("stats")
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tests/fault_proxy.py --atomic-writes` in front of a moto server: DynamoDB requests applied one
/// at a time, as DynamoDB's per-item atomicity guarantees and moto's threaded server does not
/// (two concurrent conditional writes of one item can both succeed there). Tests that race two
/// clients on one item go through it; the clients still send concurrently.
pub fn atomic_dynamo(upstream: &str) -> TestProxy {
    TestProxy::start(
        "tests/fault_proxy.py",
        upstream,
        &["--atomic-writes".to_owned()],
    )
}

/// Requests as the SDK sends them, recorded by an interceptor (the same one for every service's
/// client: they share the smithy runtime's `Intercept`), for request-level tests.
pub mod wire {
    use std::sync::{Arc, Mutex};

    use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
    use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
    use aws_sdk_dynamodb::error::BoxError;
    use serde_json::Value;

    /// One request as transmitted (retries are recorded again).
    #[derive(Debug, Clone)]
    pub struct Sent {
        pub method: String,
        /// Path and query, as sent.
        pub uri: String,
        /// The operation of a JSON protocol's `X-Amz-Target` (`PutItem`, `PutEvents`...), or
        /// empty (S3's REST protocol).
        pub operation: String,
        pub headers: Vec<(String, String)>,
        pub raw: Vec<u8>,
        /// The body as JSON (Null when it is not JSON).
        pub body: Value,
    }

    impl Sent {
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }

        /// The path without the query, percent-decoded.
        pub fn path(&self) -> String {
            let path = self.uri.split('?').next().unwrap_or_default();
            let path = path
                .split_once("://")
                .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
                .unwrap_or(path);
            percent_decode(path)
        }

        /// A form body (`application/x-www-form-urlencoded`, the awsQuery protocol) as its
        /// decoded pairs, in order.
        pub fn form(&self) -> Vec<(String, String)> {
            String::from_utf8_lossy(&self.raw)
                .split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    (
                        percent_decode(&key.replace('+', " ")),
                        percent_decode(&value.replace('+', " ")),
                    )
                })
                .collect()
        }

        /// A query parameter's value, percent-decoded.
        pub fn query(&self, name: &str) -> Option<String> {
            let query = self.uri.split_once('?')?.1;
            query.split('&').find_map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                (key == name).then(|| percent_decode(value))
            })
        }
    }

    fn percent_decode(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%'
                && i + 2 < bytes.len()
                && let Ok(byte) = u8::from_str_radix(&text[i + 1..i + 3], 16)
            {
                out.push(byte);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Records every request a client transmits. Add it with `Config::Builder::interceptor`.
    #[derive(Debug, Clone, Default)]
    pub struct RequestLog(Arc<Mutex<Vec<Sent>>>);

    impl Intercept for RequestLog {
        fn name(&self) -> &'static str {
            "RequestLog"
        }

        fn read_before_transmit(
            &self,
            context: &BeforeTransmitInterceptorContextRef<'_>,
            _: &RuntimeComponents,
            _: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            let request = context.request();
            let headers: Vec<(String, String)> = request
                .headers()
                .iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect();
            let operation = request
                .headers()
                .get("x-amz-target")
                .and_then(|t| t.split('.').next_back())
                .unwrap_or_default()
                .to_owned();
            let raw = request
                .body()
                .bytes()
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
            let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
            self.0
                .lock()
                .map_err(|_| "request log poisoned")?
                .push(Sent {
                    method: request.method().to_owned(),
                    uri: request.uri().to_owned(),
                    operation,
                    headers,
                    raw,
                    body,
                });
            Ok(())
        }
    }

    impl RequestLog {
        /// The requests sent since the last call, and forgets them.
        pub fn take(&self) -> Vec<Sent> {
            std::mem::take(&mut *self.0.lock().expect("request log"))
        }
    }

    /// The requests of one operation.
    pub fn only<'a>(sent: &'a [Sent], operation: &str) -> Vec<&'a Sent> {
        sent.iter().filter(|s| s.operation == operation).collect()
    }
}
