//! The Kubernetes SecretSource reads real Secrets and ServiceAccounts, and the core's access
//! gathering works through it exactly as through the standalone directory adapter.

mod common;

use common::controlplane::ControlPlane;
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use kube::Api;
use kube::api::PostParams;
use ocisource::core::access;
use ocisource::core::ports::SecretSource;
use ocisource::k8s::secrets::KubeSecrets;
use serde_json::json;

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
