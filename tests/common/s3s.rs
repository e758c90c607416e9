//! A real local S3 server for the S3 suites: s3s-fs (`$EKYC_S3S_FS`, else `.tools/bin/s3s-fs`, which
//! tools/test.sh installs) on 127.0.0.1 with a temporary data directory, one per test binary, and
//! SDK clients for it.

use std::process::{Child, Command};
use std::sync::OnceLock;

pub const KEY: &str = "ekyc-test-access";
pub const SECRET: &str = "ekyc-test-secret-key";

pub struct Server {
    pub url: String,
    _child: ChildGuard,
    _dir: tempfile::TempDir,
}

struct ChildGuard(Child);
impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

pub fn binary() -> std::path::PathBuf {
    std::env::var_os("EKYC_S3S_FS")
        .map(Into::into)
        .unwrap_or_else(|| super::repo().join(".tools/bin/s3s-fs"))
}

/// True when the s3s-fs binary is there; otherwise says (once) that the S3 tests skip.
pub fn available() -> bool {
    let ok = binary().exists();
    if !ok {
        super::skip("s3s-fs (tools/test.sh installs it; or set EKYC_S3S_FS)");
    }
    ok
}

/// One s3s-fs server per test binary.
pub fn server() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| {
        let bin = binary();
        assert!(
            bin.exists(),
            "s3s-fs not found at {} (tools/test.sh installs it; or set EKYC_S3S_FS)",
            bin.display()
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let child = Command::new(&bin)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--access-key",
                KEY,
                "--secret-key",
                SECRET,
            ])
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start s3s-fs");
        let guard = ChildGuard(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Server {
            url: format!("http://127.0.0.1:{port}"),
            _child: guard,
            _dir: dir,
        }
    })
}

/// A client of the test server with the given secret key (a wrong one: access denied).
pub fn client_with(secret: &str) -> aws_sdk_s3::Client {
    let creds = aws_sdk_s3::config::Credentials::new(KEY, secret, None, None, "tests");
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(&server().url)
        .credentials_provider(creds)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

pub fn client() -> aws_sdk_s3::Client {
    client_with(SECRET)
}

/// Create the bucket `name` (once; later calls find it there).
pub async fn bucket(name: &str) -> String {
    match client().create_bucket().bucket(name).send().await {
        Ok(_) => {}
        Err(e) => {
            let s = format!("{e:?}");
            assert!(
                s.contains("BucketAlreadyOwnedByYou") || s.contains("BucketAlreadyExists"),
                "create bucket: {s}"
            );
        }
    }
    name.to_string()
}

/// One of the events/ files (real S3 put events), pointed at `bucket` (and optionally another key,
/// URL-encoded as S3 sends it).
pub fn event(file: &str, bucket: &str, key: Option<&str>) -> aws_lambda_events::event::s3::S3Event {
    use serde_json::Value;
    let mut v: Value = serde_json::from_str(
        &std::fs::read_to_string(super::repo().join("events").join(file)).expect("event"),
    )
    .expect("json");
    for r in v["Records"].as_array_mut().expect("records") {
        r["s3"]["bucket"]["name"] = Value::String(bucket.into());
        r["s3"]["bucket"]["arn"] = Value::String(format!("arn:aws:s3:::{bucket}"));
        if let Some(k) = key {
            r["s3"]["object"]["key"] = Value::String(k.into());
        }
    }
    serde_json::from_value(v).expect("S3Event")
}
