//! The test bed's control plane works: a real kube-apiserver + etcd serve objects over verified
//! TLS to the admin, enforce RBAC on other users, and survive an API-server restart.

mod common;

use common::controlplane::{ControlPlane, create_namespace};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::Api;
use kube::api::{ListParams, ObjectMeta, PostParams};
use std::collections::BTreeMap;
use std::time::Duration;

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        ..ObjectMeta::default()
    }
}

fn config_map(name: &str, value: &str) -> ConfigMap {
    ConfigMap {
        metadata: meta(name),
        data: Some(BTreeMap::from([("key".to_string(), value.to_string())])),
        ..ConfigMap::default()
    }
}

fn is_forbidden(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 403)
}

#[tokio::test]
async fn admin_creates_and_lists_namespaces_and_configmaps() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;

    let version = client.apiserver_version().await.unwrap();
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "37"),
        "{version:?}"
    );

    create_namespace(&client, "testbed-admin").await;
    let names: Vec<String> = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|ns| ns.metadata.name)
        .collect();
    assert!(names.contains(&"testbed-admin".to_string()), "{names:?}");
    assert!(names.contains(&"default".to_string()), "{names:?}");

    let cms: Api<ConfigMap> = Api::namespaced(client, "testbed-admin");
    cms.create(&PostParams::default(), &config_map("settings", "v1"))
        .await
        .unwrap();
    let listed = cms.list(&ListParams::default()).await.unwrap();
    let got = listed
        .items
        .iter()
        .find(|cm| cm.metadata.name.as_deref() == Some("settings"))
        .expect("created ConfigMap is listed");
    assert_eq!(got.data.as_ref().unwrap()["key"], "v1");
}

#[tokio::test]
async fn rbac_denies_a_user_until_a_role_allows_it() {
    let cp = ControlPlane::shared();
    let admin = cp.client().await;
    create_namespace(&admin, "testbed-rbac").await;

    let user = "testbed-reader";
    let as_user: Api<ConfigMap> = Api::namespaced(cp.user_client(user).await, "testbed-rbac");

    let err = as_user.list(&ListParams::default()).await.unwrap_err();
    assert!(
        is_forbidden(&err),
        "listing without a role must be forbidden: {err:?}"
    );

    Api::<Role>::namespaced(admin.clone(), "testbed-rbac")
        .create(
            &PostParams::default(),
            &Role {
                metadata: meta("configmap-reader"),
                rules: Some(vec![PolicyRule {
                    api_groups: Some(vec![String::new()]),
                    resources: Some(vec!["configmaps".into()]),
                    verbs: vec!["get".into(), "list".into()],
                    ..PolicyRule::default()
                }]),
            },
        )
        .await
        .unwrap();
    Api::<RoleBinding>::namespaced(admin.clone(), "testbed-rbac")
        .create(
            &PostParams::default(),
            &RoleBinding {
                metadata: meta("configmap-reader"),
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".into(),
                    kind: "Role".into(),
                    name: "configmap-reader".into(),
                },
                subjects: Some(vec![Subject {
                    api_group: Some("rbac.authorization.k8s.io".into()),
                    kind: "User".into(),
                    name: user.into(),
                    namespace: None,
                }]),
            },
        )
        .await
        .unwrap();

    // The RBAC authorizer works from an informer cache: the binding takes effect shortly.
    let mut listed = as_user.list(&ListParams::default()).await;
    for _ in 0..50 {
        if listed.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        listed = as_user.list(&ListParams::default()).await;
    }
    listed.expect("the bound Role allows listing");

    let err = as_user
        .create(&PostParams::default(), &config_map("nope", "x"))
        .await
        .unwrap_err();
    assert!(is_forbidden(&err), "create is not granted: {err:?}");
    let err = Api::<ConfigMap>::namespaced(cp.user_client(user).await, "default")
        .list(&ListParams::default())
        .await
        .unwrap_err();
    assert!(is_forbidden(&err), "the Role is namespaced: {err:?}");
}

// A private control plane: restarting the shared one would disturb the other tests.
#[tokio::test]
async fn data_survives_an_apiserver_restart() {
    let cp = ControlPlane::start();
    let client = cp.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    cms.create(&PostParams::default(), &config_map("kept", "before"))
        .await
        .unwrap();

    let url = cp.server_url();
    cp.stop_apiserver();
    assert!(!cp.apiserver_running());
    assert!(cms.get("kept").await.is_err(), "the API server is down");
    cp.start_apiserver();
    assert_eq!(cp.server_url(), url);

    // The old client keeps working: same port, same serving certificate.
    let got = cms.get("kept").await.unwrap();
    assert_eq!(got.data.unwrap()["key"], "before");

    cp.restart_apiserver();
    assert!(cp.apiserver_running());
    assert!(cms.get("kept").await.is_ok());
}
