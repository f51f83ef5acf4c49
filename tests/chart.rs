//! The Helm chart (`deploy/charts/ocisource`) and the kustomize base (`deploy/`) on the test
//! bed's real API server: `helm lint --strict`; a matrix of values rendered, checked, and
//! server-side dry-run applied; bad values refused by the schema with a clear message;
//! `helm install`, `upgrade` and `uninstall`; the kustomize base and overlay equal to the chart's
//! renders without Helm's labels; and the chart's RBAC exactly enough: the controller binary runs
//! as the chart's ServiceAccount (a TokenRequest token) with the chart's own arguments through a
//! reconcile with events, leader election and a finalizer, and what it must not do is refused.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::chart::{self, apply, args, find, keys, template, without_helm_labels};
use common::controller::Controller;
use common::controlplane::ControlPlane;
use common::private_pull::PrivateArtifact;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, Role};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};
use ocisource::api::v1::OciRepository;
use serde_json::{Value, json};

const CHART_VERSION: &str = env!("CARGO_PKG_VERSION");

fn image() -> String {
    format!("ghcr.io/ocisource/ocisource:{CHART_VERSION}")
}

#[test]
fn helm_lint_strict_passes() {
    let home = tempfile::tempdir().unwrap();
    for values in [
        vec![],
        vec![
            "--set",
            "replicas=2",
            "--set",
            "podDisruptionBudget.enabled=true",
        ],
        vec![
            "--set",
            "watch.allNamespaces=false",
            "--set",
            "besideFlux.enabled=true",
        ],
    ] {
        let out = chart::output(
            chart::helm(home.path())
                .args(["lint", "--strict"])
                .arg(chart::chart_dir())
                .args(&values),
        );
        assert!(
            out.status.success(),
            "helm lint --strict {values:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_chart_ships_the_generated_crd() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert_eq!(
        std::fs::read(root.join("deploy/charts/ocisource/crds/ocirepository.yaml")).unwrap(),
        std::fs::read(root.join("crds/ocirepository.yaml")).unwrap(),
        "copy crds/ocirepository.yaml to deploy/charts/ocisource/crds/"
    );
    let chart = std::fs::read_to_string(chart::chart_dir().join("Chart.yaml")).unwrap();
    assert!(
        chart.contains(&format!("\nversion: {CHART_VERSION}\n"))
            && chart.contains(&format!("\nappVersion: \"{CHART_VERSION}\"\n")),
        "Chart.yaml's version and appVersion follow Cargo.toml's {CHART_VERSION}"
    );
}

/// The default render: what a Flux user gets with `helm install ocisource -n flux-system`.
#[test]
fn the_default_render_is_wired_as_flux_runs_source_controller() {
    let objs = template("ocisource", "flux-system", &[]);
    assert_eq!(
        keys(&objs),
        [
            "ClusterRole//ocisource",
            "ClusterRoleBinding//ocisource",
            "Deployment/flux-system/ocisource",
            "Pod/flux-system/ocisource-test-readyz",
            "Role/flux-system/ocisource-leader-election",
            "RoleBinding/flux-system/ocisource-leader-election",
            "Service/flux-system/ocisource",
            "ServiceAccount/flux-system/ocisource",
        ]
    );
    let d = find(&objs, "Deployment", "ocisource");
    let pod = &d["spec"]["template"];
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["image"], image().as_str());
    assert_eq!(
        args(&objs),
        [
            "controller",
            "--events-addr=http://notification-controller.flux-system.svc.cluster.local./",
            "--watch-all-namespaces=true",
            "--log-level=info",
            "--log-encoding=json",
            "--enable-leader-election",
            "--storage-path=/data",
            "--storage-adv-addr=ocisource.$(RUNTIME_NAMESPACE).svc.cluster.local.",
        ]
    );
    // The Sigstore TUF cache where Flux's Deployment puts it (on the /tmp emptyDir).
    assert!(
        c["env"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "TUF_ROOT", "value": "/tmp/.sigstore"})),
        "{}",
        c["env"]
    );
    // Flux's labels and scrape annotations, on the pod too.
    for labels in [&d["metadata"]["labels"], &pod["metadata"]["labels"]] {
        assert_eq!(labels["app"], "ocisource");
        assert_eq!(labels["app.kubernetes.io/part-of"], "flux");
        assert_eq!(labels["app.kubernetes.io/component"], "ocisource");
        assert_eq!(labels["control-plane"], "controller");
    }
    assert_eq!(
        d["spec"]["selector"]["matchLabels"],
        json!({"app": "ocisource"})
    );
    assert_eq!(
        pod["metadata"]["annotations"]["prometheus.io/scrape"],
        "true"
    );
    assert_eq!(pod["metadata"]["annotations"]["prometheus.io/port"], "8080");
    let ports: Vec<&str> = c["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(ports, ["http", "http-prom", "healthz"]);
    // Non-root, read-only, no capabilities, RuntimeDefault seccomp, projected tokens readable.
    let psc = &pod["spec"]["securityContext"];
    assert_eq!(psc["runAsNonRoot"], true);
    assert_eq!(psc["fsGroup"], 65532);
    assert_eq!(psc["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(c["resources"]["limits"]["memory"], "256Mi");
    assert_eq!(
        pod["spec"]["volumes"],
        json!([{"name": "data", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}])
    );
    // Cluster-wide RBAC without the gated rules.
    let rules = &find(&objs, "ClusterRole", "ocisource")["rules"];
    let rule_of = |res: &str| {
        rules
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resources"].as_array().unwrap().iter().any(|x| x == res))
            .map(|r| r["verbs"].clone())
    };
    assert_eq!(rule_of("secrets"), Some(json!(["get"])));
    assert_eq!(rule_of("serviceaccounts/token"), None);
    let svc = find(&objs, "Service", "ocisource");
    assert_eq!(svc["spec"]["ports"][0]["port"], 80);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "http");
    let test = find(&objs, "Pod", "ocisource-test-readyz");
    assert_eq!(test["metadata"]["annotations"]["helm.sh/hook"], "test");
    assert!(
        test["spec"]["containers"][0]["args"][0]
            .as_str()
            .unwrap()
            .contains("http://ocisource.flux-system.svc:9440/readyz")
    );
}

/// One case of the values matrix: `helm template` arguments and what must hold of the render.
struct Case {
    name: &'static str,
    values: &'static [&'static str],
    check: fn(&[Value]),
}

fn has_arg(objs: &[Value], arg: &str) -> bool {
    args(objs).iter().any(|a| a == arg)
}

fn matrix() -> Vec<Case> {
    vec![
        Case {
            name: "defaults",
            values: &[],
            check: |objs| assert!(has_arg(objs, "--enable-leader-election")),
        },
        Case {
            name: "ha",
            values: &[
                "--set",
                "replicas=3",
                "--set",
                "leaderElection.enabled=false",
                "--set",
                "leaderElection.leaseDuration=60s",
                "--set",
                "podDisruptionBudget.enabled=true",
                "--set",
                "priorityClassName=system-cluster-critical",
                "--set-json",
                r#"topologySpreadConstraints=[{"maxSkew":1,"topologyKey":"kubernetes.io/hostname","whenUnsatisfiable":"ScheduleAnyway","labelSelector":{"matchLabels":{"app":"ocisource"}}}]"#,
                "--set-json",
                r#"tolerations=[{"key":"dedicated","operator":"Equal","value":"flux","effect":"NoSchedule"}]"#,
                "--set-json",
                r#"affinity={"podAntiAffinity":{"preferredDuringSchedulingIgnoredDuringExecution":[{"weight":100,"podAffinityTerm":{"topologyKey":"kubernetes.io/hostname","labelSelector":{"matchLabels":{"app":"ocisource"}}}}]}}"#,
                "--set",
                "networkPolicy.enabled=true",
            ],
            check: |objs| {
                let d = find(objs, "Deployment", "ocisource");
                assert_eq!(d["spec"]["replicas"], 3);
                // More than one replica: leader election whatever the value says.
                assert!(has_arg(objs, "--enable-leader-election"));
                assert!(has_arg(objs, "--leader-election-lease-duration=60s"));
                find(objs, "Role", "ocisource-leader-election");
                assert_eq!(
                    find(objs, "PodDisruptionBudget", "ocisource")["spec"]["minAvailable"],
                    1
                );
                find(objs, "NetworkPolicy", "ocisource");
                let spec = &d["spec"]["template"]["spec"];
                assert_eq!(spec["priorityClassName"], "system-cluster-critical");
                assert_eq!(spec["topologySpreadConstraints"][0]["maxSkew"], 1);
                assert_eq!(spec["tolerations"][0]["key"], "dedicated");
                assert!(spec["affinity"]["podAntiAffinity"].is_object());
            },
        },
        Case {
            name: "single replica without leader election",
            values: &["--set", "leaderElection.enabled=false"],
            check: |objs| {
                assert!(!has_arg(objs, "--enable-leader-election"));
                assert!(!objs.iter().any(|o| o["kind"] == "Role"));
            },
        },
        Case {
            name: "push receiver",
            values: &[
                "--set",
                "receiver.enabled=true",
                "--set",
                "receiver.secretName=registry-hooks",
                "--set",
                "receiver.maxEventAge=2m",
                "--set",
                "networkPolicy.enabled=true",
            ],
            check: |objs| {
                assert!(has_arg(objs, "--receiver-addr=:9292"));
                assert!(has_arg(
                    objs,
                    "--receiver-token-file=/etc/ocisource/receiver/token"
                ));
                assert!(has_arg(objs, "--receiver-max-event-age=2m"));
                let d = find(objs, "Deployment", "ocisource");
                let pod = &d["spec"]["template"]["spec"];
                let volume = pod["volumes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|v| v["name"] == "receiver")
                    .expect("the receiver's Secret volume");
                assert_eq!(volume["secret"]["secretName"], "registry-hooks");
                let container = &pod["containers"][0];
                assert!(container["ports"].as_array().unwrap().contains(
                    &json!({"name": "receiver", "containerPort": 9292, "protocol": "TCP"})
                ));
                assert!(container["volumeMounts"].as_array().unwrap().contains(
                    &json!({"name": "receiver", "mountPath": "/etc/ocisource/receiver", "readOnly": true})
                ));
                let service = find(objs, "Service", "ocisource");
                assert!(
                    service["spec"]["ports"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|p| p["name"] == "receiver" && p["port"] == 9292)
                );
                let policy = find(objs, "NetworkPolicy", "ocisource");
                assert!(
                    policy["spec"]["ingress"][0]["ports"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|p| p["port"] == "receiver")
                );
            },
        },
        Case {
            name: "namespaced",
            values: &["--set", "watch.allNamespaces=false"],
            check: |objs| {
                assert!(has_arg(objs, "--watch-all-namespaces=false"));
                assert!(
                    !objs
                        .iter()
                        .any(|o| o["kind"] == "ClusterRole" || o["kind"] == "ClusterRoleBinding")
                );
                let role = find(objs, "Role", "ocisource");
                assert_eq!(role["metadata"]["namespace"], "flux-system");
                find(objs, "RoleBinding", "ocisource");
            },
        },
        Case {
            name: "pvc",
            values: &[
                "--set",
                "persistence.enabled=true",
                "--set",
                "persistence.size=20Gi",
                "--set",
                "persistence.storageClassName=standard",
            ],
            check: |objs| {
                let pvc = find(objs, "PersistentVolumeClaim", "ocisource-data");
                assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "20Gi");
                assert_eq!(pvc["spec"]["storageClassName"], "standard");
                let d = find(objs, "Deployment", "ocisource");
                assert_eq!(d["spec"]["strategy"]["type"], "Recreate");
                assert_eq!(
                    d["spec"]["template"]["spec"]["volumes"][0],
                    json!({"name": "data", "persistentVolumeClaim": {"claimName": "ocisource-data"}})
                );
            },
        },
        Case {
            name: "workload identity",
            values: &[
                "--set",
                "featureGates.ObjectLevelWorkloadIdentity=true",
                "--set",
                "defaultServiceAccount=tenant",
                "--set-string",
                "serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::111122223333:role/ocisource",
                "--set-string",
                "serviceAccount.annotations.iam\\.gke\\.io/gcp-service-account=ocisource@project.iam.gserviceaccount.com",
                "--set-string",
                "serviceAccount.annotations.azure\\.workload\\.identity/client-id=00000000-0000-0000-0000-000000000000",
                "--set-string",
                "podLabels.azure\\.workload\\.identity/use=true",
            ],
            check: |objs| {
                assert!(has_arg(objs, "--default-service-account=tenant"));
                assert!(has_arg(
                    objs,
                    "--feature-gates=ObjectLevelWorkloadIdentity=true"
                ));
                let sa = find(objs, "ServiceAccount", "ocisource");
                assert_eq!(
                    sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
                    "arn:aws:iam::111122223333:role/ocisource"
                );
                assert_eq!(sa["metadata"]["annotations"].as_object().unwrap().len(), 3);
                let rules = find(objs, "ClusterRole", "ocisource")["rules"].to_string();
                assert!(rules.contains("serviceaccounts/token"), "{rules}");
                let d = find(objs, "Deployment", "ocisource");
                assert_eq!(
                    d["spec"]["template"]["metadata"]["labels"]["azure.workload.identity/use"],
                    "true"
                );
            },
        },
        Case {
            name: "beside Flux",
            values: &["--set", "besideFlux.enabled=true"],
            check: |objs| {
                assert!(has_arg(
                    objs,
                    "--watch-label-selector=sharding.fluxcd.io/key=ocisource"
                ));
            },
        },
        Case {
            name: "sharded, cached secrets, tuned",
            values: &[
                "--set",
                "watch.labelSelector=sharding.fluxcd.io/key=shard1",
                "--set",
                "featureGates.CacheSecretsAndConfigMaps=true",
                "--set",
                "concurrent=10",
                "--set",
                "artifact.digestAlgo=blake3",
                "--set",
                "artifact.maxExtractSize=-1",
                "--set",
                "artifact.retentionTTL=5m",
                "--set",
                "log.level=debug",
                "--set",
                "events.address=",
                "--set",
                "tokenCache.maxSize=0",
                "--set-json",
                r#"extraArgs=["--kube-api-qps=500"]"#,
                "--set-json",
                r#"extraEnv=[{"name":"HTTPS_PROXY","value":"http://proxy:3128"},{"name":"NO_PROXY","value":".cluster.local."}]"#,
                "--set",
                "image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "--set",
                "dataSizeLimit=2Gi",
                "--set",
                "retry.minDelay=1s",
                "--set",
                "retry.maxDelay=5m",
                "--set",
                "intervalJitterPercentage=0",
                "--set",
                "artifact.retentionRecords=3",
                "--set",
                "tokenCache.maxDuration=10m",
                // A number from JSON (or a values file) arrives as a float.
                "--set-json",
                "artifact.maxExtractEntries=2000000",
                "--set",
                "artifact.defaultPlatform=linux/arm/v7",
                "--set",
                "artifact.sharing=false",
                "--set",
                "resolutionCacheWindow=0s",
            ],
            check: |objs| {
                for a in [
                    "--watch-label-selector=sharding.fluxcd.io/key=shard1",
                    "--feature-gates=CacheSecretsAndConfigMaps=true",
                    "--concurrent=10",
                    "--artifact-digest-algo=blake3",
                    "--default-platform=linux/arm/v7",
                    "--artifact-max-extract-size=-1",
                    "--artifact-retention-ttl=5m",
                    "--log-level=debug",
                    "--token-cache-max-size=0",
                    "--kube-api-qps=500",
                    "--min-retry-delay=1s",
                    "--max-retry-delay=5m",
                    "--interval-jitter-percentage=0",
                    "--artifact-retention-records=3",
                    "--token-cache-max-duration=10m",
                    "--artifact-max-extract-entries=2000000",
                    "--artifact-sharing=false",
                    "--resolution-cache-window=0s",
                ] {
                    assert!(has_arg(objs, a), "{a} in {:?}", args(objs));
                }
                assert!(!args(objs).iter().any(|a| a.starts_with("--events-addr")));
                let rules = find(objs, "ClusterRole", "ocisource")["rules"].clone();
                let secrets = rules
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|r| r["resources"] == json!(["secrets"]))
                    .unwrap();
                assert_eq!(secrets["verbs"], json!(["list", "watch"]));
                let c = &find(objs, "Deployment", "ocisource")["spec"]["template"]["spec"]["containers"]
                    [0];
                // extraEnv comes after the chart's own variables.
                let env = c["env"].as_array().unwrap();
                assert_eq!(
                    env[env.len() - 2..],
                    [
                        json!({"name": "HTTPS_PROXY", "value": "http://proxy:3128"}),
                        json!({"name": "NO_PROXY", "value": ".cluster.local."})
                    ],
                    "{env:?}"
                );
                assert!(env.iter().any(|e| e["name"] == "TUF_ROOT"), "{env:?}");
                assert_eq!(
                    c["image"],
                    format!(
                        "{}@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                        image()
                    )
                );
            },
        },
        Case {
            name: "existing service account, no RBAC",
            values: &[
                "--set",
                "serviceAccount.create=false",
                "--set",
                "serviceAccount.name=flux-sa",
                "--set",
                "rbac.create=false",
            ],
            check: |objs| {
                assert!(!objs.iter().any(|o| o["kind"] == "ServiceAccount"
                    || o["kind"].as_str().unwrap().contains("Role")));
                assert_eq!(
                    find(objs, "Deployment", "ocisource")["spec"]["template"]["spec"]["serviceAccountName"],
                    "flux-sa"
                );
            },
        },
    ]
}

/// Every case renders, holds what it should, and every object is accepted by the API server
/// (server-side dry-run apply).
#[tokio::test(flavor = "multi_thread")]
async fn every_values_case_renders_and_the_api_server_accepts_it() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    common::crd::install(&client).await;
    chart::namespace(&client, "flux-system").await;
    // Pods are admitted only with an existing ServiceAccount (the test hook's).
    for sa in ["ocisource", "flux-sa"] {
        let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount",
                        "metadata": {"name": sa, "namespace": "flux-system"}});
        apply(&client, &sa, "ocisource-tests", false).await.unwrap();
    }
    for case in matrix() {
        let objs = template("ocisource", "flux-system", case.values);
        (case.check)(&objs);
        for obj in &objs {
            apply(&client, obj, "helm-dry-run", true)
                .await
                .unwrap_or_else(|e| panic!("case {:?}: the API server refused {e}", case.name));
        }
    }
}

/// The monitors render for the Prometheus operator's kinds (not served by the test bed, so
/// checked as rendered).
#[test]
fn monitors_select_the_metrics_port() {
    let objs = template(
        "ocisource",
        "flux-system",
        &[
            "--set",
            "metrics.podMonitor.enabled=true",
            "--set",
            "metrics.podMonitor.interval=30s",
            "--set",
            "metrics.serviceMonitor.enabled=true",
            "--set",
            "metrics.serviceMonitor.labels.release=prometheus",
        ],
    );
    let pm = find(&objs, "PodMonitor", "ocisource");
    assert_eq!(pm["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(
        pm["spec"]["selector"]["matchLabels"],
        json!({"app": "ocisource"})
    );
    assert_eq!(
        pm["spec"]["podMetricsEndpoints"],
        json!([{"port": "http-prom", "interval": "30s"}])
    );
    let sm = find(&objs, "ServiceMonitor", "ocisource");
    assert_eq!(sm["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "http-prom");
    let svc = find(&objs, "Service", "ocisource-metrics");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "http-prom");
}

/// Bad values are refused before anything reaches a cluster, naming the value.
#[test]
fn bad_values_are_refused_with_a_clear_message() {
    let home = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--set", "replicas=0"], "replicas"),
        (&["--set", "replica=2"], "replica"),
        (&["--set", "artifact.digestAlgo=md5"], "digestAlgo"),
        (&["--set", "log.level=warn"], "level"),
        (&["--set", "receiver.enabled=true"], "secretName"),
        (
            &["--set", "receiver.secretName=s", "--set", "receiver.port=0"],
            "port",
        ),
        (&["--set", "log.encoding=text"], "encoding"),
        (&["--set", "featureGates.SomeGate=true"], "SomeGate"),
        (
            &["--set", "featureGates.CacheSecretsAndConfigMaps=yes"],
            "CacheSecretsAndConfigMaps",
        ),
        (
            &["--set", "leaderElection.leaseDuration=35"],
            "leaseDuration",
        ),
        (&["--set", "artifact.retentionTTL=1 minute"], "retentionTTL"),
        (
            &["--set", "intervalJitterPercentage=100"],
            "intervalJitterPercentage",
        ),
        (
            &["--set", "artifact.maxExtractEntries=-2"],
            "maxExtractEntries",
        ),
        (
            &["--set", "artifact.defaultPlatform=arm64"],
            "defaultPlatform",
        ),
        (&["--set", "image.digest=latest"], "digest"),
        (&["--set", "image.pullPolicy=Sometimes"], "pullPolicy"),
        (
            &["--set", "events.address=notification-controller"],
            "address",
        ),
        (&["--set", "besideFlux.shardKey=not a label"], "shardKey"),
        (
            &["--set-json", r#"extraArgs=["concurrent=3"]"#],
            "extraArgs",
        ),
        (&["--set", "persistence.size=lots"], "size"),
        (
            &["--set", "defaultServiceAccount=tenant"],
            "defaultServiceAccount needs featureGates.ObjectLevelWorkloadIdentity=true",
        ),
        (
            &[
                "--set",
                "besideFlux.enabled=true",
                "--set",
                "watch.labelSelector=team=a",
            ],
            "besideFlux.enabled sets the label selector",
        ),
        (
            &["--set", "persistence.enabled=true", "--set", "replicas=2"],
            "ReadWriteOnce volume allows one replica",
        ),
    ];
    for (values, expected) in cases {
        let out = chart::output(
            chart::helm(home.path())
                .args(["template", "ocisource"])
                .arg(chart::chart_dir())
                .args(*values),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{values:?} was accepted");
        assert!(
            stderr.contains(expected),
            "{values:?}: the error names {expected:?}:\n{stderr}"
        );
    }
}

fn deployment_args(d: &Deployment) -> Vec<String> {
    d.spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .args
        .clone()
        .unwrap_or_default()
}

/// `helm install`, `upgrade` (a changed value takes effect), `test` hook present, `uninstall`.
#[tokio::test(flavor = "multi_thread")]
async fn helm_install_upgrade_and_uninstall_on_the_api_server() {
    const NS: &str = "chart-life";
    const RELEASE: &str = "life";
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    common::crd::install(&client).await;
    let home = tempfile::tempdir().unwrap();
    let helm = |args: &[&str]| {
        let out = chart::output(
            chart::helm(home.path())
                .arg("--kubeconfig")
                .arg(cp.kubeconfig_path())
                .args(args),
        );
        assert!(
            out.status.success(),
            "helm {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let chart = chart::chart_dir().display().to_string();
    helm(&["install", RELEASE, &chart, "-n", NS, "--create-namespace"]);

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let d = deployments.get("life-ocisource").await.unwrap();
    // Unset tunables are left to the controller's defaults.
    assert!(
        !deployment_args(&d)
            .iter()
            .any(|a| a.starts_with("--concurrent"))
    );
    assert_eq!(
        d.metadata.labels.as_ref().unwrap()["app.kubernetes.io/managed-by"],
        "Helm"
    );
    Api::<ClusterRole>::all(client.clone())
        .get("life-ocisource")
        .await
        .unwrap();
    Api::<ServiceAccount>::namespaced(client.clone(), NS)
        .get("life-ocisource")
        .await
        .unwrap();
    let status = helm(&["status", RELEASE, "-n", NS, "-o", "json"]);
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["info"]["status"], "deployed");
    let list: Value = serde_json::from_str(&helm(&["list", "-n", NS, "-o", "json"])).unwrap();
    assert_eq!(list[0]["app_version"], CHART_VERSION);
    assert_eq!(list[0]["chart"], format!("ocisource-{CHART_VERSION}"));
    assert!(
        status["hooks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["name"] == "life-ocisource-test-readyz" && h["events"] == json!(["test"])),
        "the readyz test hook is part of the release: {}",
        status["hooks"]
    );

    // A changed value reaches the Deployment; namespaced RBAC replaces the cluster-wide one.
    helm(&[
        "upgrade",
        RELEASE,
        &chart,
        "-n",
        NS,
        "--reuse-values",
        "--set",
        "concurrent=7",
        "--set",
        "watch.allNamespaces=false",
    ]);
    let d = deployments.get("life-ocisource").await.unwrap();
    let a = deployment_args(&d);
    assert!(a.contains(&"--concurrent=7".to_string()), "{a:?}");
    assert!(
        a.contains(&"--watch-all-namespaces=false".to_string()),
        "{a:?}"
    );
    assert!(
        Api::<ClusterRole>::all(client.clone())
            .get_opt("life-ocisource")
            .await
            .unwrap()
            .is_none()
    );
    Api::<Role>::namespaced(client.clone(), NS)
        .get("life-ocisource")
        .await
        .unwrap();
    let history = helm(&["history", RELEASE, "-n", NS, "-o", "json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&history)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );

    helm(&["uninstall", RELEASE, "-n", NS, "--wait"]);
    assert!(
        deployments
            .get_opt("life-ocisource")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        Api::<Role>::namespaced(client.clone(), NS)
            .get_opt("life-ocisource")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        Api::<ServiceAccount>::namespaced(client.clone(), NS)
            .get_opt("life-ocisource")
            .await
            .unwrap()
            .is_none()
    );
}

/// The objects keyed by kind/namespace/name, Helm's labels and hooks left out.
fn comparable(objs: Vec<Value>) -> BTreeMap<String, Value> {
    objs.into_iter()
        .filter(|o| o["metadata"]["annotations"]["helm.sh/hook"].is_null())
        .map(without_helm_labels)
        .map(|o| (chart::key(&o), o))
        .collect()
}

fn assert_same(kustomized: Vec<Value>, rendered: Vec<Value>, what: &str) {
    let (k, r) = (comparable(kustomized), comparable(rendered));
    assert_eq!(
        k.keys().collect::<Vec<_>>(),
        r.keys().collect::<Vec<_>>(),
        "{what}: the same objects"
    );
    for (key, obj) in &k {
        assert_eq!(
            obj, &r[key],
            "{what}: {key} differs from the chart's render (update deploy/base/ to match)"
        );
    }
}

/// `v` with every number as a float.
fn numbers_as_floats(v: Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64()),
        Value::Array(a) => Value::Array(a.into_iter().map(numbers_as_floats).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (k, numbers_as_floats(v)))
                .collect(),
        ),
        other => other,
    }
}

/// `deploy/` is the chart's default render without Helm's labels, and the beside-Flux overlay
/// is its `besideFlux.enabled=true` render; `crds/` is the CRD.
#[test]
fn the_kustomize_base_and_overlay_are_the_charts_renders() {
    let deploy = chart::deploy_dir();
    assert_same(
        chart::kustomize(&deploy),
        template("ocisource", "flux-system", &[]),
        "kubectl kustomize deploy/",
    );
    assert_same(
        chart::kustomize(&deploy.join("overlays/beside-flux")),
        template(
            "ocisource",
            "flux-system",
            &["--set", "besideFlux.enabled=true"],
        ),
        "kubectl kustomize deploy/overlays/beside-flux",
    );
    let crd = chart::kustomize(&Path::new(env!("CARGO_MANIFEST_DIR")).join("crds"));
    let committed = chart::documents(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("crds/ocirepository.yaml"),
        )
        .unwrap(),
    );
    // kustomize re-serializes the numbers of the schema (`minimum: 0` as `0.0`).
    assert!(
        numbers_as_floats(json!(crd)) == numbers_as_floats(json!(committed)),
        "kubectl kustomize crds/ is crds/ocirepository.yaml"
    );
    // Flux's documented way to tune a controller, a patch appending flags, repeats none of
    // the base's: the base sets only what Flux's own Deployment sets (a repeat would still
    // work, the last value winning, but would read as a conflict).
    let overlay = tempfile::tempdir().unwrap();
    // kustomize takes only relative bases: up to / from the overlay, then down to deploy/.
    let up = "../".repeat(overlay.path().components().count() - 1);
    let base = format!(
        "{up}{}",
        deploy.display().to_string().trim_start_matches('/')
    );
    std::fs::write(
        overlay.path().join("kustomization.yaml"),
        format!(
            "resources:\n  - {}\npatches:\n  - target:\n      kind: Deployment\n      name: ocisource\n    patch: |\n{}",
            base,
            [
                "--concurrent=10",
                "--requeue-dependency=5s",
                "--kube-api-qps=500",
                "--kube-api-burst=1000",
                "--artifact-retention-ttl=5m",
                "--feature-gates=CacheSecretsAndConfigMaps=true",
            ]
            .iter()
            .map(|a| format!(
                "      - op: add\n        path: /spec/template/spec/containers/0/args/-\n        value: {a}\n"
            ))
            .collect::<String>()
        ),
    )
    .unwrap();
    let patched = args(&chart::kustomize(overlay.path()));
    let mut names: Vec<&str> = patched
        .iter()
        .skip(1)
        .map(|a| a.split('=').next().unwrap())
        .collect();
    let count = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), count, "a flag repeated: {patched:?}");
    assert_eq!(patched.len(), 14, "{patched:?}");

    let text = std::fs::read_to_string(deploy.join("base/deployment.yaml")).unwrap();
    assert!(text.contains(&image()), "deploy/ pins {}", image());
}

/// `kubectl apply -k` of `crds/`, `deploy/` and the overlay, server-side dry run, against the
/// test bed's API server.
#[tokio::test(flavor = "multi_thread")]
async fn kubectl_apply_k_is_accepted_by_the_api_server() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    chart::namespace(&client, "flux-system").await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["crds", "deploy", "deploy/overlays/beside-flux"] {
        let out = chart::output(
            chart::kubectl()
                .arg("--kubeconfig")
                .arg(cp.kubeconfig_path())
                .args(["apply", "--server-side", "--dry-run=server", "-k"])
                .arg(root.join(dir)),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "kubectl apply -k {dir}:\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("(server dry run)"), "{stdout}");
    }
}

/// Whether `result` is the API server's 403.
fn forbidden<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> bool {
    matches!(result, Err(kube::Error::Api(ref s)) if s.code == 403)
}

/// The chart's RBAC objects and ServiceAccount for `values` applied in `ns`; then the controller
/// binary, authenticated with a TokenRequest token of the chart's ServiceAccount and started
/// with the chart's own arguments (addresses and paths aside), reconciles an object that reads a
/// pull secret through a service account, records its event, holds the Lease, and removes its
/// finalizer, without one `forbidden` answer. Returns the account's client for the refusals.
async fn reconcile_as_the_charts_account(ns: &str, values: &[&str]) -> Client {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    common::crd::install(&client).await;
    chart::namespace(&client, ns).await;
    // Each case reconciles only its own object (a cluster-wide controller would otherwise take
    // the other case's too): the chart's sharding selector.
    let selector = format!("ocisource-test={ns}");
    let mut values: Vec<&str> = values.to_vec();
    let set_selector = format!("watch.labelSelector={selector}");
    values.extend(["--set", &set_selector]);
    // The release is named after the namespace: cluster-scoped names (ClusterRole and its
    // binding) then differ from other tests' `ocisource`.
    let objs = template(ns, ns, &values);
    let account = format!("{ns}-ocisource");
    for obj in &objs {
        let kind = obj["kind"].as_str().unwrap();
        if kind == "ServiceAccount" || kind.contains("Role") {
            apply(&client, obj, "helm", false)
                .await
                .unwrap_or_else(|e| panic!("apply: {e}"));
        }
    }

    let private = PrivateArtifact::push("apps/chart");
    private.puller(&client, ns).await;

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = chart::service_account_kubeconfig(cp, &client, ns, &account, dir.path()).await;
    // The chart's arguments, but for where files and ports are (the harness sets those for a
    // process on this machine) and the notification-controller address (none runs here).
    let chart_args: Vec<String> = args(&objs)
        .into_iter()
        .skip(1)
        .filter(|a| {
            ![
                "--storage-path=",
                "--storage-adv-addr=",
                "--events-addr=",
                "--log-encoding=",
            ]
            .iter()
            .any(|p| a.starts_with(p))
        })
        .collect();
    assert!(chart_args.iter().any(|a| a == "--enable-leader-election"));
    let extra: Vec<&str> = chart_args.iter().map(String::as_str).collect();
    let name = format!("ocisource-{ns}");
    let ctl = Controller::spawn_with(
        &kubeconfig,
        Path::new(env!("CARGO_BIN_EXE_ocisource")),
        ns,
        &extra,
        &name,
    );

    private
        .reconcile_record_and_clean_up(&client, ns, &[("ocisource-test", ns)], &ctl)
        .await;
    let lease = Api::<Lease>::namespaced(client.clone(), ns)
        .get(&ocisource::k8s::manager::lease_name(&selector))
        .await
        .unwrap();
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity).as_deref(),
        Some(name.as_str()),
        "the controller leads through the chart's leader-election Role"
    );
    common::chart::client_for(&kubeconfig).await
}

/// What the controller never does is refused to the chart's account, whatever the values;
/// ServiceAccount tokens only without the `ObjectLevelWorkloadIdentity` gate.
async fn refused_everywhere(sa: &Client, ns: &str, workload_identity: bool) {
    let repos: Api<OciRepository> = Api::namespaced(sa.clone(), ns);
    let obj: OciRepository = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "metadata": {"name": "made-by-the-controller"},
        "spec": {"url": "oci://example.com/x", "interval": "10m"}
    }))
    .unwrap();
    assert!(
        forbidden(repos.create(&PostParams::default(), &obj).await),
        "create ocirepositories"
    );
    assert!(
        forbidden(repos.delete("any", &DeleteParams::default()).await),
        "delete ocirepositories"
    );
    assert!(
        forbidden(
            Api::<ConfigMap>::namespaced(sa.clone(), ns)
                .get("any")
                .await
        ),
        "configmaps"
    );
    assert!(
        forbidden(
            Api::<Lease>::namespaced(sa.clone(), "default")
                .get("any")
                .await
        ),
        "leases outside the release namespace"
    );
    assert!(
        forbidden(
            Api::<Deployment>::namespaced(sa.clone(), ns)
                .list(&ListParams::default())
                .await
        ),
        "deployments"
    );
    let token = json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}
    });
    let issued = Api::<ServiceAccount>::namespaced(sa.clone(), ns)
        .create_subresource::<Value, Value>("token", "puller", &PostParams::default(), &token)
        .await;
    if workload_identity {
        assert!(
            issued.is_ok(),
            "serviceaccounts/token with the gate: {issued:?}"
        );
    } else {
        assert!(
            forbidden(issued),
            "serviceaccounts/token without ObjectLevelWorkloadIdentity"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_charts_default_rbac_is_exactly_enough() {
    const NS: &str = "chart-rbac";
    let sa = reconcile_as_the_charts_account(NS, &[]).await;
    refused_everywhere(&sa, NS, false).await;
    assert!(
        forbidden(
            Api::<Secret>::namespaced(sa.clone(), NS)
                .list(&ListParams::default())
                .await
        ),
        "secrets are read one by one without CacheSecretsAndConfigMaps"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_charts_namespaced_rbac_with_cached_secrets_is_exactly_enough() {
    const NS: &str = "chart-rbac-ns";
    let sa = reconcile_as_the_charts_account(
        NS,
        &[
            "--set",
            "watch.allNamespaces=false",
            "--set",
            "featureGates.CacheSecretsAndConfigMaps=true",
        ],
    )
    .await;
    refused_everywhere(&sa, NS, false).await;
    assert!(
        forbidden(
            Api::<Secret>::namespaced(sa.clone(), NS)
                .get("regcred")
                .await
        ),
        "with CacheSecretsAndConfigMaps Secrets are watched, never fetched"
    );
    assert!(
        forbidden(
            Api::<Secret>::namespaced(sa.clone(), "default")
                .list(&ListParams::default())
                .await
        ),
        "no Secret outside the release namespace"
    );
    assert!(
        forbidden(
            Api::<OciRepository>::all(sa.clone())
                .list(&ListParams::default())
                .await
        ),
        "no OCIRepository outside the release namespace"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_charts_rbac_with_workload_identity_may_issue_tokens() {
    const NS: &str = "chart-rbac-wi";
    let sa = reconcile_as_the_charts_account(
        NS,
        &[
            "--set",
            "featureGates.ObjectLevelWorkloadIdentity=true",
            "--set",
            "defaultServiceAccount=puller",
        ],
    )
    .await;
    refused_everywhere(&sa, NS, true).await;
}
