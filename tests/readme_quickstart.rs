//! The README's quickstart, pasted as it is into bash against a running `flowfuse serve`: it
//! must keep working as the code changes.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use eventstore::testing::TestDatabase;
use support::broker::Broker;

mod support;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn quickstart() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let after_marker = readme.split("<!-- quickstart -->").nth(1).expect("README marks its quickstart");
    let block = after_marker.split("```sh\n").nth(1).expect("a sh block follows the marker");
    block.split("\n```").next().unwrap().to_owned()
}

#[tokio::test]
async fn the_readme_quickstart_works_when_pasted() {
    let (db, broker) = (TestDatabase::create().await, Broker::start());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let query_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let binary = env!("CARGO_BIN_EXE_flowfuse");
    let _server = Server(
        Command::new(binary)
            .arg("serve")
            .env("DATABASE_URL", db.url())
            .env("KAFKA_BROKERS", broker.addr())
            .env("COMMAND_API_ADDR", format!("127.0.0.1:{port}"))
            .env("QUERY_API_ADDR", format!("127.0.0.1:{query_port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await.is_err() {
        assert!(Instant::now() < deadline, "flowfuse serve did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // As with scripts/run.sh, whose demo workspace exists before anyone pastes: the projector has
    // joined its consumer group and projected it (the first join takes seconds).
    let warm_up = Command::new(binary)
        .args(["workspace", "create", "--name", "Warm-up"])
        .env("DATABASE_URL", db.url())
        .output()
        .unwrap();
    assert!(warm_up.status.success());
    support::wait_until_projected(&db.pool, Duration::from_secs(60)).await;

    let binary_line = "FLOWFUSE=${CARGO_TARGET_DIR:-target}/release/flowfuse";
    let pasted = quickstart();
    assert!(pasted.contains(binary_line), "the quickstart names the binary once: {pasted}");
    let script = pasted
        .replace(binary_line, &format!("FLOWFUSE={binary}"))
        .replace("API=http://127.0.0.1:8080", &format!("API=http://127.0.0.1:{port}"))
        .replace("QL=http://127.0.0.1:8081", &format!("QL=http://127.0.0.1:{query_port}"))
        .replace("/tmp/rollback.txt", &format!("/tmp/flowfuse-rollback-{port}.txt"))
        .replace("/tmp/created.txt", &format!("/tmp/flowfuse-quickstart-{port}.txt"));
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .env("DATABASE_URL", db.url())
        .env("KAFKA_BROKERS", broker.addr())
        .output()
        .expect("bash and curl are needed (scripts/setup.sh installs curl)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("HTTP/1.1 201 Created"), "{stdout}");
    assert!(stdout.contains("\"version\":2"), "{stdout}");
    assert!(stdout.lines().any(|line| line == "412"), "{stdout}");
    assert!(stdout.contains("\"version\":4"), "{stdout}");
    assert!(stdout.contains("OK: 1 streams, 4 events, every hash chain intact"), "{stdout}");
    assert!(stdout.contains("\"log_head\""), "projections status printed: {stdout}");
    // The GraphQL round trip saw the rolled-back workflow through the token, with its history.
    assert!(stdout.contains(r#""workflow":{"name":"Nightly sync","status":"draft","version":4"#), "{stdout}");
    assert!(stdout.contains(r#""eventType":"WorkflowRolledBack""#), "{stdout}");
    assert!(stdout.contains(r#""at":{"version":2,"status":"draft""#), "{stdout}");
    assert!(stdout.contains(r#""id":"notify""#), "the diff names the added node: {stdout}");
    assert!(stdout.contains(r#""auditTrail":{"edges":[{"node":{"eventType":"WorkflowRolledBack""#), "{stdout}");
}

#[tokio::test]
async fn serve_stops_gracefully_on_sigterm() {
    let (db, broker) = (TestDatabase::create().await, Broker::start());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_flowfuse"))
        .arg("serve")
        .env("DATABASE_URL", db.url())
        .env("COMMAND_API_ADDR", format!("127.0.0.1:{port}"))
        .env("QUERY_API_ADDR", "127.0.0.1:0")
        .env("KAFKA_BROKERS", broker.addr())
        .env("LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await.map(|r| r.status().as_u16()).ok() != Some(200) {
        assert!(Instant::now() < deadline, "flowfuse serve did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let killed = Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "flowfuse serve ignored SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut logs = String::new();
    std::io::Read::read_to_string(server.stderr.as_mut().unwrap(), &mut logs).unwrap();
    assert!(status.success(), "exit {status:?}: {logs}");
    assert!(logs.contains("shutting down"), "{logs}");
    assert!(logs.lines().all(|line| serde_json::from_str::<serde_json::Value>(line).is_ok()), "JSON logs: {logs}");
}
