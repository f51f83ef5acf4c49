//! The Kubernetes adapters against a real API server: the SecretSource reads Secrets and
//! ServiceAccounts (and the core's access gathering works through it), and the event publisher
//! records events for OCIRepository objects.

mod common;

use common::controlplane::ControlPlane;
use common::object::OciRepo;
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use kube::Api;
use kube::api::PostParams;
use ocisource::api::v1::OciRepository;
use ocisource::core::access;
use ocisource::core::events::{Event, Severity};
use ocisource::core::ports::SecretSource;
use ocisource::k8s::events::EventPublisher;
use ocisource::k8s::secrets::KubeSecrets;
use serde_json::json;
use std::collections::BTreeMap;

#[tokio::test]
async fn secrets_and_service_accounts_are_read_from_the_api_server() {
    let client = ControlPlane::shared().client().await;
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "secrets"}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "creds"},
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": "{\"auths\":{}}"}
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), "secrets")
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let sa: ServiceAccount = serde_json::from_value(json!({
        "metadata": {"name": "puller"},
        "imagePullSecrets": [{"name": "creds"}]
    }))
    .unwrap();
    Api::<ServiceAccount>::namespaced(client.clone(), "secrets")
        .create(&PostParams::default(), &sa)
        .await
        .unwrap();

    let source = KubeSecrets::new(client);
    let got = source.secret("secrets", "creds").await.unwrap().unwrap();
    assert_eq!(got.data.unwrap()[".dockerconfigjson"].0, br#"{"auths":{}}"#);
    assert!(source.secret("secrets", "missing").await.unwrap().is_none());
    assert!(
        source.secret("default", "creds").await.unwrap().is_none(),
        "namespaced"
    );

    let spec = serde_json::from_value(json!({
        "url": "oci://r/a", "interval": "1m", "serviceAccountName": "puller"
    }))
    .unwrap();
    let access = access::gather(&source, "secrets", &spec).await.unwrap();
    assert_eq!(access.credentials.len(), 1);
    assert_eq!(
        access.credentials[0].type_,
        "kubernetes.io/dockerconfigjson"
    );
}

/// Object-level workload identity's TokenRequest against the real API server: the token is a
/// JWT for the service account with the requested audience; a missing account is a clear
/// error.
#[tokio::test]
async fn service_account_tokens_are_issued_by_the_api_server() {
    use base64::Engine as _;

    let client = ControlPlane::shared().client().await;
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "tokens"}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let sa: ServiceAccount = serde_json::from_value(json!({
        "metadata": {
            "name": "puller",
            "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/puller"}
        }
    }))
    .unwrap();
    Api::<ServiceAccount>::namespaced(client.clone(), "tokens")
        .create(&PostParams::default(), &sa)
        .await
        .unwrap();

    let source = KubeSecrets::new(client);
    let audiences = ["sts.amazonaws.com".to_string()];
    let token = source
        .service_account_token("tokens", "puller", &audiences)
        .await
        .unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT");
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    let aud: Vec<&str> = match &claims["aud"] {
        serde_json::Value::Array(a) => a.iter().filter_map(|v| v.as_str()).collect(),
        other => vec![other.as_str().unwrap()],
    };
    assert!(aud.contains(&"sts.amazonaws.com"), "{claims}");
    assert_eq!(claims["sub"], "system:serviceaccount:tokens:puller");

    let err = source
        .service_account_token("tokens", "ghost", &audiences)
        .await
        .unwrap_err();
    let text = ocisource::core::message::render(&err);
    assert!(
        text.starts_with("failed to create kubernetes token for service account 'tokens/ghost': "),
        "{text}"
    );
    assert!(
        text.ends_with(r#"serviceaccounts "ghost" not found"#),
        "{text}"
    );
}

#[tokio::test]
async fn events_are_recorded_for_the_object() {
    let client = ControlPlane::shared().client().await;
    common::crd::install(&client).await;
    let obj = OciRepo::new("evented")
        .namespace("default")
        .url("oci://r/a")
        .interval("1m")
        .object();
    let obj = Api::<OciRepository>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &obj)
        .await
        .unwrap();
    let publisher = EventPublisher::new(client.clone(), "", "test-instance");
    let long = "x".repeat(5000);
    let warning = Event {
        severity: Severity::Error,
        reason: "OCIArtifactPullFailed".into(),
        message: long,
        metadata: BTreeMap::new(),
    };
    publisher.publish(&obj, &warning).await;
    let new_artifact = Event {
        severity: Severity::Info,
        reason: "NewArtifact".into(),
        message: "stored artifact with revision 'latest@sha256:ab' from 'oci://r/a'".into(),
        metadata: BTreeMap::from([
            (
                "source.toolkit.fluxcd.io/revision".to_string(),
                "latest@sha256:ab".to_string(),
            ),
            (
                "source.toolkit.fluxcd.io/digest".to_string(),
                "sha256:cd".to_string(),
            ),
        ]),
    };
    // The same event three times is one Event with a count, as client-go records it.
    for _ in 0..3 {
        publisher.publish(&obj, &new_artifact).await;
    }
    let core: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), "default");
    let mine: Vec<_> = core
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some("evented"))
        .collect();
    assert_eq!(mine.len(), 2, "one Event per distinct event: {mine:#?}");
    let recorded = mine
        .iter()
        .find(|e| e.reason.as_deref() == Some("NewArtifact"))
        .expect("NewArtifact recorded");
    assert_eq!(recorded.count, Some(3));
    assert_eq!(
        recorded.metadata.annotations.as_ref(),
        Some(&new_artifact.metadata),
        "Flux's annotation keys on the Kubernetes Event"
    );
    assert_eq!(
        recorded
            .source
            .as_ref()
            .and_then(|s| s.component.as_deref()),
        Some("source-controller")
    );
    assert_eq!(
        recorded.involved_object.kind.as_deref(),
        Some("OCIRepository")
    );
    assert_eq!(recorded.involved_object.uid, obj.metadata.uid);

    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client, "default");
    let mut found = None;
    for _ in 0..50 {
        let list = events.list(&Default::default()).await.unwrap();
        found = list.items.into_iter().find(|e| {
            e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("evented")
                && e.type_.as_deref() == Some("Warning")
        });
        if found.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let e = found.expect("event recorded");
    assert_eq!(e.type_.as_deref(), Some("Warning"));
    assert_eq!(e.reason.as_deref(), Some("OCIArtifactPullFailed"));
    assert_eq!(e.reporting_controller.as_deref(), Some("source-controller"));
    let note = e.note.unwrap();
    assert!(
        note.len() <= 1024 && note.ends_with("..."),
        "note capped: {}",
        note.len()
    );
}
