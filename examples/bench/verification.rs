//! (e) Signature verification: what `spec.verify` adds per object, on one signed artifact
//! followed by many objects, measured against the same objects without `verify` in the same run:
//! - time from create to all Ready and registry requests, with and without verification;
//! - the shared verification: the same objects with one key Secret (one verification for all)
//!   against objects whose Secrets differ by an unrelated entry (one verification each);
//! - requests of an unchanged source: a reconcile requested on every verified object after all
//!   are Ready sends manifest `HEAD`s only (verification is not repeated);
//! - one verification each for cosign keys (the v2 `.sig` layout), keyless cosign with a
//!   `trustedRootSecretRef` (a Sigstore bundle from the test bed's `sigstore-testca`, found
//!   through the referrers fallback tag) and notation (a JWS signature in the referrers tag
//!   schema): registry requests and time per verification, each artifact in its own repository.

use super::*;

/// One phase: a fresh controller on a fresh namespace, `objects` objects on `url`; `verify`
/// names the Secret of object `i` (None: no verification).
struct Phase<'a> {
    name: &'a str,
    verify: Option<&'a dyn Fn(usize) -> String>,
    provider: Provider,
}

/// How the objects of a phase verify, and the repository holding its signed artifact.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Provider {
    CosignKey,
    Keyless,
    Notation,
}

/// The trust material of every provider, and each one's artifact URL.
struct Material {
    public_key: String,
    trusted_root: String,
    trust_policy: String,
    notation_cert: String,
    cosign_url: String,
    keyless_url: String,
    notation_url: String,
}

impl Material {
    fn url(&self, provider: Provider) -> &str {
        match provider {
            Provider::CosignKey => &self.cosign_url,
            Provider::Keyless => &self.keyless_url,
            Provider::Notation => &self.notation_url,
        }
    }

    /// The Secret data for `name` (the unrelated `owner` entry makes each Secret distinct
    /// material for the shared cache).
    fn secret_data(&self, provider: Provider, name: &str) -> serde_json::Value {
        match provider {
            Provider::CosignKey => json!({"cosign.pub": self.public_key, "owner": name}),
            Provider::Keyless => json!({"trusted_root.json": self.trusted_root, "owner": name}),
            Provider::Notation => json!({
                "trustpolicy.json": self.trust_policy,
                "notation.crt": self.notation_cert,
                "owner": name,
            }),
        }
    }
}

impl Provider {
    fn verify(self, secret: String) -> serde_json::Value {
        match self {
            Provider::CosignKey => json!({"provider": "cosign", "secretRef": {"name": secret}}),
            Provider::Keyless => {
                json!({"provider": "cosign", "trustedRootSecretRef": {"name": secret}})
            }
            Provider::Notation => json!({"provider": "notation", "secretRef": {"name": secret}}),
        }
    }
}

struct Measured {
    ready: Duration,
    requests: usize,
    runs: u64,
    shared: u64,
    unchanged_requests: Vec<(String, String)>,
}

pub(super) async fn verification(
    cfg: &Config,
    cp: &ControlPlane,
    client: &Client,
    table: &mut Table,
) -> anyhow::Result<()> {
    let objects = cfg.verified;
    progress(&format!(
        "(e) {objects} objects on one cosign-signed artifact, with and without verification"
    ));
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let content = tempfile::tempdir()?;
    std::fs::write(content.path().join("deploy.yaml"), "kind: ConfigMap\n")?;
    let digest = push(&reg, "bench/signed", "v1", content.path());
    let keys = tools::cosign_generate_key_pair(&content.path().join("keys"));
    tools::cosign_sign_key(&reg, &format!("bench/signed@{digest}"), &keys);
    let keyless_digest = push(&reg, "bench/keyless", "v1", content.path());
    let ca = tools::TestCa::init(&content.path().join("sigstore"));
    ca.sign(
        &reg,
        &format!("bench/keyless@{keyless_digest}"),
        "bench@example.com",
        "https://issuer.example",
        "bundle",
        &[],
    );
    let notation_digest = push(&reg, "bench/notation", "v1", content.path());
    let notation_key =
        tools::notation_generate_test_cert(&content.path().join("notation"), "bench");
    tools::notation_sign(
        &reg,
        &format!("bench/notation@{notation_digest}"),
        &notation_key,
        "jws",
        &[],
    );
    let material = Material {
        public_key: std::fs::read_to_string(&keys.public_key)?,
        trusted_root: ca.trusted_root(),
        trust_policy: json!({
            "version": "1.0",
            "trustPolicies": [{
                "name": "bench", "registryScopes": ["*"],
                "signatureVerification": {"level": "strict"},
                "trustStores": ["ca:flux"], "trustedIdentities": ["*"],
            }],
        })
        .to_string(),
        notation_cert: std::fs::read_to_string(&notation_key.cert)?,
        cosign_url: format!("oci://{}/bench/signed", reg.host()),
        keyless_url: format!("oci://{}/bench/keyless", reg.host()),
        notation_url: format!("oci://{}/bench/notation", reg.host()),
    };

    let same = |_: usize| "cosign-keys".to_string();
    let distinct = |i: usize| format!("cosign-keys-{i:03}");
    let mut measured = Vec::new();
    for (name, verify, provider) in [
        ("bench-e-plain", None, Provider::CosignKey),
        (
            "bench-e-shared",
            Some(&same as &dyn Fn(usize) -> String),
            Provider::CosignKey,
        ),
        (
            "bench-e-each",
            Some(&distinct as &dyn Fn(usize) -> String),
            Provider::CosignKey,
        ),
        (
            "bench-e-keyless",
            Some(&distinct as &dyn Fn(usize) -> String),
            Provider::Keyless,
        ),
        (
            "bench-e-notation",
            Some(&distinct as &dyn Fn(usize) -> String),
            Provider::Notation,
        ),
    ] {
        let phase = Phase {
            name,
            verify,
            provider,
        };
        measured.push(run_phase(cfg, cp, client, &reg, objects, &material, phase).await?);
    }
    let [plain, shared, each, keyless, notation] =
        <[Measured; 5]>::try_from(measured).map_err(|_| anyhow::anyhow!("five phases measured"))?;

    let per_object = |m: &Measured| m.requests as f64 / objects as f64;
    table.row(
        "e",
        format!(
            "{objects} objects on one artifact: create -> all Ready, no verify / cosign key \
             (one Secret, shared) / cosign key (a Secret each, {} verifications)",
            each.runs
        ),
        format!(
            "{:.1} s / {:.1} s / {:.1} s: {:.2}x / {:.2}x",
            secs(plain.ready),
            secs(shared.ready),
            secs(each.ready),
            secs(shared.ready) / secs(plain.ready),
            secs(each.ready) / secs(plain.ready)
        ),
        "info",
        Verdict::Info,
    );
    table.row(
        "e",
        format!(
            "registry requests per object to Ready: no verify / shared verification / one \
             verification each (verifications run/shared: {}/{} and {}/{})",
            shared.runs, shared.shared, each.runs, each.shared
        ),
        format!(
            "{:.2} / {:.2} / {:.2}: a verification costs {:.1} requests, {:.2} per object shared",
            per_object(&plain),
            per_object(&shared),
            per_object(&each),
            (each.requests as f64 - plain.requests as f64) / each.runs.max(1) as f64,
            (shared.requests as f64 - plain.requests as f64) / objects as f64
        ),
        "1 verification for all",
        verdict(shared.runs == 1 && shared.shared as usize == objects - 1),
    );
    let extra = shared
        .unchanged_requests
        .iter()
        .filter(|(method, _)| method != "HEAD")
        .count();
    table.row(
        "e",
        format!(
            "requested reconcile of {objects} verified, unchanged objects: registry requests \
             beyond the tag HEAD"
        ),
        format!(
            "{extra} ({} requests in all)",
            shared.unchanged_requests.len()
        ),
        "0",
        verdict(extra == 0),
    );
    // The same artifact shape in each repository, so the unverified phase is every
    // provider's baseline.
    let cost = |m: &Measured| {
        let runs = m.runs.max(1) as f64;
        (
            (m.requests as f64 - plain.requests as f64) / runs,
            (secs(m.ready) - secs(plain.ready)).max(0.0) * 1000.0 / runs,
        )
    };
    let ((key_req, key_ms), (keyless_req, keyless_ms), (notation_req, notation_ms)) =
        (cost(&each), cost(&keyless), cost(&notation));
    table.row(
        "e",
        format!(
            "one verification each ({objects} objects, {} / {} / {} verifications): cosign key \
             / keyless (trusted root Secret, bundle) / notation (JWS): registry requests and \
             added create -> Ready time per verification",
            each.runs, keyless.runs, notation.runs
        ),
        format!(
            "{key_req:.1} / {keyless_req:.1} / {notation_req:.1} requests; {key_ms:.0} / \
             {keyless_ms:.0} / {notation_ms:.0} ms"
        ),
        "info",
        Verdict::Info,
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn run_phase(
    cfg: &Config,
    cp: &ControlPlane,
    client: &Client,
    reg: &Registry,
    objects: usize,
    material: &Material,
    phase: Phase<'_>,
) -> anyhow::Result<Measured> {
    let url = material.url(phase.provider);
    let ns = phase.name;
    namespace(client, ns).await?;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), ns);
    if let Some(name_of) = phase.verify {
        let names: std::collections::BTreeSet<String> = (0..objects).map(name_of).collect();
        for name in names {
            let secret = serde_json::from_value(json!({
                "metadata": {"name": name},
                "stringData": material.secret_data(phase.provider, &name),
            }))?;
            secrets.create(&PostParams::default(), &secret).await?;
        }
    }
    let (ctl, _) = start_controller(cfg, cp, ns)?;
    let api: Api<OciRepository> = Api::namespaced(client.clone(), ns);
    let before = registry_requests(reg)?.len();
    let t0 = Instant::now();
    create_objects(&api, "app-", objects, |i| {
        let mut spec =
            json!({"url": url, "interval": "1h", "insecure": true, "ref": {"tag": "v1"}});
        if let Some(name_of) = phase.verify {
            spec["verify"] = phase.provider.verify(name_of(i));
        }
        spec
    })
    .await?;
    let ready = all_ready(
        &ctl,
        &api,
        "app-",
        objects,
        t0,
        "(e)",
        Duration::from_secs(600),
    )
    .await?;
    let requests = registry_requests(reg)?.len() - before;
    let metrics = ctl.metrics().await;
    let counter = |kind: &str| {
        let series = format!("ocisource_signature_verifications_total{{kind=\"{kind}\"}}");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series.as_str())?.trim().parse().ok())
            .unwrap_or(0)
    };

    // A requested reconcile of every (unchanged) object.
    let before = registry_requests(reg)?.len();
    for i in 0..objects {
        let patch =
            json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "bench"}}});
        api.patch(
            &format!("app-{i:04}"),
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await?;
    }
    let t1 = Instant::now();
    loop {
        let list = api.list(&ListParams::default()).await?;
        if list.items.iter().filter(|o| handled(o, "bench")).count() == objects {
            break;
        }
        ensure!(
            t1.elapsed() < Duration::from_secs(300),
            "(e) requested reconciles not handled after 5 min"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let unchanged_requests = registry_requests(reg)?.split_off(before);
    Ok(Measured {
        ready,
        requests,
        runs: counter("run"),
        shared: counter("shared"),
        unchanged_requests,
    })
}
