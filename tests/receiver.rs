//! Push to Ready without waiting for the interval (README, difference 36): the test-bed
//! registry (Debian's docker-registry, distribution 2.8) posts its own push notifications to
//! the controller's receiver, authenticated with a bearer token in the endpoint's headers, and
//! the objects that follow the pushed tag reconcile at once although their interval is an hour.
//! Unsigned, wrongly signed and replayed notifications change nothing.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::controller::Controller;
use common::object::OciRepo;
use common::registry::Registry;
use common::{eventually, free_port, tools};
use kube::api::PostParams;
use kube::{Api, ResourceExt};
use ocisource::api::RECONCILE_REQUESTED_AT;
use ocisource::api::v1::OciRepository;
use serde_json::json;

const NS: &str = "receiver";
const TOKEN: &str = "a-shared-secret-for-the-test";

fn push(reg: &Registry, repo: &str, tag: &str, content: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("deploy.yaml"), content).unwrap();
    tools::flux_push_artifact(
        reg,
        repo,
        tag,
        dir.path(),
        "https://example.com/app",
        "main@sha1:0123456789abcdef",
        &[],
    )
}

async fn revision(api: &Api<OciRepository>, name: &str) -> Option<String> {
    let obj = api.get(name).await.ok()?;
    Some(obj.status?.artifact?.revision)
}

fn requested_at(obj: &OciRepository) -> Option<String> {
    obj.annotations().get(RECONCILE_REQUESTED_AT).cloned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_push_notification_reconciles_the_objects_on_that_tag_at_once() {
    let (cp, client) = common::controlplane::shared_with_namespace(NS).await;
    let port = free_port();
    let hook = format!("http://127.0.0.1:{port}/hook/distribution");
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let reg = Registry::start_notifying(&hook, TOKEN);
    let addr = format!("127.0.0.1:{port}");
    let ctl = Controller::start(
        cp,
        Path::new(env!("CARGO_BIN_EXE_ocisource")),
        NS,
        &[
            "--receiver-addr",
            &addr,
            "--receiver-token-file",
            token_file.to_str().unwrap(),
        ],
    );
    let api: Api<OciRepository> = Api::namespaced(client.clone(), NS);
    let first = push(&reg, "apps/web", "stable", "kind: Deployment\n");
    push(&reg, "apps/web", "canary", "kind: Deployment\n");
    // An hour's interval: only a notification can explain a reconcile within the test.
    for (name, tag) in [("stable", "stable"), ("canary", "canary")] {
        let obj = OciRepo::new(name)
            .url(format!("oci://{}/apps/web", reg.host()))
            .interval("1h")
            .insecure()
            .tag(tag)
            .object();
        api.create(&PostParams::default(), &obj).await.unwrap();
    }
    eventually("both Ready", Duration::from_secs(60), || async {
        revision(&api, "stable").await == Some(format!("stable@{first}"))
            && revision(&api, "canary").await.is_some()
    })
    .await;
    let canary_before = api.get("canary").await.unwrap();

    // The registry's own notification of the new `stable` reaches the receiver.
    let pushed = Instant::now();
    let second = push(&reg, "apps/web", "stable", "kind: StatefulSet\n");
    eventually("the pushed revision", Duration::from_secs(30), || async {
        assert!(ctl.proc.is_running(), "{}", ctl.proc.log_tail(4000));
        revision(&api, "stable").await == Some(format!("stable@{second}"))
    })
    .await;
    let latency = pushed.elapsed();
    eprintln!("push (flux push artifact returned) to new revision in status: {latency:?}");
    let stable = api.get("stable").await.unwrap();
    let requested = requested_at(&stable).expect("the receiver set requestedAt");
    assert_eq!(
        stable
            .status
            .as_ref()
            .unwrap()
            .last_handled_reconcile_at
            .as_deref(),
        Some(requested.as_str()),
        "the reconcile handled the receiver's request"
    );
    assert!(
        latency < Duration::from_secs(10),
        "push to Ready took {latency:?} (the interval is an hour)"
    );
    let log = ctl.proc.log_tail(20_000);
    assert!(
        log.contains("push notification: reconciling the objects that follow it"),
        "{log}"
    );
    // The object on another tag was left alone.
    let canary = api.get("canary").await.unwrap();
    assert_eq!(requested_at(&canary), None);
    assert_eq!(canary.status, canary_before.status);

    // Notifications the registry did not send change nothing.
    let http = reqwest::Client::new();
    let envelope = |id: &str| {
        json!({"events": [{
            "id": id,
            "timestamp": k8s_openapi::jiff::Timestamp::now().to_string(),
            "action": "push",
            "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "repository": "apps/web", "tag": "canary"},
            "request": {"host": reg.host()},
        }]})
        .to_string()
    };
    let post = |body: String, auth: Option<&str>| {
        let mut request = http.post(&hook).body(body);
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        request.send()
    };
    for auth in [None, Some("Bearer wrong"), Some("Bearer a-shared")] {
        let response = post(envelope("forged"), auth).await.unwrap();
        assert_eq!(response.status(), 401, "{auth:?}");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(requested_at(&api.get("canary").await.unwrap()), None);
    let log = ctl.proc.log_tail(20_000);
    assert!(
        log.contains("push notification refused: missing or invalid signature or token"),
        "{log}"
    );
    assert!(!log.contains(TOKEN), "the secret is never logged");

    // A genuine notification reconciles canary once; its replay is acknowledged and ignored.
    let genuine = envelope("replayed-once");
    let bearer = format!("Bearer {TOKEN}");
    let response = post(genuine.clone(), Some(&bearer)).await.unwrap();
    assert_eq!(response.status(), 202);
    eventually("canary requested", Duration::from_secs(10), || async {
        requested_at(&api.get("canary").await.unwrap()).is_some()
    })
    .await;
    let first_request = requested_at(&api.get("canary").await.unwrap());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let response = post(genuine, Some(&bearer)).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body["ignored"][0],
        "event replayed-once was delivered before"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        requested_at(&api.get("canary").await.unwrap()),
        first_request,
        "the replay requested nothing"
    );
    assert!(
        ctl.proc
            .log_tail(20_000)
            .contains("push notification ignored: replayed or out of date")
    );
}
