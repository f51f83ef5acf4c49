//! `ocisource verify artifact` against the test bed: artifacts pushed with the real flux CLI,
//! signed with the real cosign CLI (keys), `sigstore-testca` (keyless) and the test bed's
//! notation signer, then checked by the binary with the material as files: verified, unsigned,
//! signed by someone else, the exit statuses and the `-o json|yaml` report.
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Output;

use common::artifact::{ocisource, text};
use common::registry::{Flavor, Registry, Security};
use common::static_server::StaticServer;
use common::tools::{self, TestCa, ToolHome};
use common::verification::push;
use serde_json::{Value, json};

/// `ocisource verify artifact oci://<host>/<reference> <args>` in `home` (`--insecure-registry`
/// for a plain-HTTP registry).
fn verify(home: &ToolHome, reference: &str, args: &[&str]) -> Output {
    let url = home.oci_url(reference);
    let mut all = vec!["verify", "artifact", &url];
    all.extend_from_slice(args);
    ocisource(home, &all, true)
}

/// [`verify`] with `-o json`: the exit status and the parsed report.
fn verify_json(home: &ToolHome, reference: &str, args: &[&str]) -> (i32, Value) {
    let mut all = args.to_vec();
    all.extend_from_slice(&["-o", "json"]);
    let out = verify(home, reference, &all);
    let report =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert!(
        out.stderr.is_empty(),
        "nothing on stderr with -o: {}",
        text(&out)
    );
    (out.status.code().unwrap(), report)
}

fn report(
    home: &ToolHome,
    reference: &str,
    digest: &str,
    provider: &str,
    ok: bool,
    msg: &str,
) -> Value {
    json!({
        "reference": home.oci_url(reference),
        "digest": digest,
        "provider": provider,
        "verified": ok,
        "message": msg,
    })
}

/// What `verify artifact -o json app:v1` reports for a cosign signature it accepts.
fn cosign_v1_verified(home: &ToolHome, signed: &str) -> (i32, Value) {
    let message = format!("verified signature of revision v1@{signed}");
    (0, report(home, "app:v1", signed, "cosign", true, &message))
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn no_match(provider: &str, reg: &Registry, digest: &str) -> String {
    format!(
        "failed to verify the signature using provider '{provider}': no matching signatures \
         were found for '{}/app@{digest}'",
        reg.host()
    )
}

#[test]
fn cosign_key_signatures_verify_and_unsigned_or_foreign_artifacts_do_not() {
    let reg = Registry::start(Flavor::Distribution, Security::Basic);
    let home = ToolHome::new(&reg);
    let signed = push(&reg, "app", "v1", "kind: Signed\n");
    let unsigned = push(&reg, "app", "unsigned", "kind: Unsigned\n");
    let keys = tools::cosign_generate_key_pair(&home.dir().join("signer"));
    let other = tools::cosign_generate_key_pair(&home.dir().join("other"));
    tools::cosign_sign_key(&reg, &format!("app@{signed}"), &keys);
    let key = path_str(&keys.public_key);
    let other_key = path_str(&other.public_key);

    // Verified, with the human lines on stderr; by tag and by digest.
    let out = verify(&home, "app:v1", &["--key", key]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "► verifying artifact {}/app:v1 with cosign\n✔ verified signature of revision \
             v1@{signed}\n",
            reg.host()
        )
    );
    assert!(out.stdout.is_empty());
    let at_digest = format!("app@{signed}");
    assert_eq!(
        verify_json(&home, &at_digest, &["--provider", "cosign", "--key", key]),
        (
            0,
            report(
                &home,
                &at_digest,
                &signed,
                "cosign",
                true,
                &format!("verified signature of revision {signed}")
            )
        )
    );
    // Any of several keys.
    assert_eq!(
        verify_json(&home, "app:v1", &["--key", other_key, "--key", key]).0,
        0
    );

    // Unsigned, and signed with another key: exit 1 with the controller's message.
    let out = verify(&home, "app:unsigned", &["--key", key]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .ends_with(&format!("✗ {}\n", no_match("cosign", &reg, &unsigned))),
        "{}",
        text(&out)
    );
    assert_eq!(
        verify_json(&home, "app:unsigned", &["--key", key]),
        (
            1,
            report(
                &home,
                "app:unsigned",
                &unsigned,
                "cosign",
                false,
                &no_match("cosign", &reg, &unsigned)
            )
        )
    );
    assert_eq!(
        verify_json(&home, "app:v1", &["--key", other_key]),
        (
            1,
            report(
                &home,
                "app:v1",
                &signed,
                "cosign",
                false,
                &no_match("cosign", &reg, &signed)
            )
        )
    );

    // The registry's credentials come from the Docker config, or --creds: wrong ones fail
    // the verification (exit 1), not the flags.
    let out = verify(&home, "app:v1", &["--key", key, "--creds", "nobody:wrong"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let (code, r) = verify_json(&home, "app:missing", &["--key", key]);
    assert_eq!(code, 1);
    assert_eq!(r["digest"], "");
    assert!(
        r["message"].as_str().unwrap().starts_with(&format!(
            "failed to determine the digest of {}/app:missing",
            reg.host()
        )),
        "{r}"
    );
}

#[test]
fn unusable_flags_and_material_exit_with_status_two_before_any_request() {
    // No registry behind the address: every case must fail before a request.
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let home = ToolHome::new(&reg);
    let junk = home.dir().join("junk.pub");
    std::fs::write(&junk, "junk").unwrap();
    let missing = home.dir().join("missing.pub");
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec![],
            "cosign needs --key, or --certificate-identity".into(),
        ),
        (
            vec!["--key", path_str(&missing)],
            format!("failed to read verification material {}", missing.display()),
        ),
        (
            vec!["--key", path_str(&junk)],
            format!("invalid verification material {}: ", junk.display()),
        ),
        (
            vec!["--key", path_str(&junk), "--cert", path_str(&junk)],
            "--cert is a notation flag".into(),
        ),
        (
            vec!["--provider", "notation", "--key", path_str(&junk)],
            "--key is a cosign flag".into(),
        ),
        (
            vec!["--provider", "notation"],
            "notation needs --trust-policy".into(),
        ),
        // clap's own refusals.
        (
            vec!["--provider", "sigstore"],
            "invalid value 'sigstore'".into(),
        ),
        (
            vec!["--certificate-identity", "x"],
            "keyless verification needs --certificate-oidc-issuer".into(),
        ),
        (
            vec!["--key", path_str(&junk), "--certificate-identity", "x"],
            "cannot be used with '--certificate-identity <CERTIFICATE_IDENTITY>'".into(),
        ),
        (
            vec![
                "--certificate-identity",
                "x",
                "--certificate-oidc-issuer",
                "y",
                "--sigstore-tuf-root",
                path_str(&missing),
            ],
            format!("failed to read verification material {}", missing.display()),
        ),
        (vec!["--provider", "aws"], "invalid value 'aws'".into()),
    ];
    for (args, expected) in cases {
        let out = verify(&home, "app:v1", &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(&expected),
            "{args:?}: {}",
            text(&out)
        );
    }
    // The cloud login is --registry-provider here (--provider names the signing technology).
    let out = verify(
        &home,
        "app:v1",
        &["--key", path_str(&junk), "--registry-provider", "generic"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("invalid verification material"),
        "{}",
        text(&out)
    );
}

#[test]
fn keyless_signatures_verify_for_the_signers_identity_only() {
    const EMAIL: &str = "dev@example.com";
    const ISSUER: &str = "https://issuer.example";
    let reg = Registry::start(Flavor::Referrers, Security::Http);
    let home = ToolHome::new(&reg);
    let signed = push(&reg, "app", "v1", "kind: Keyless\n");
    let unsigned = push(&reg, "app", "unsigned", "kind: Unsigned\n");
    let ca = TestCa::init(&home.dir().join("ca"));
    ca.sign(&reg, &format!("app@{signed}"), EMAIL, ISSUER, "bundle", &[]);
    let root = ca.dir.join("trusted_root.json");
    let root = path_str(&root);

    let exact = [
        "--trusted-root",
        root,
        "--certificate-identity",
        EMAIL,
        "--certificate-oidc-issuer",
        ISSUER,
    ];
    assert_eq!(
        verify_json(&home, "app:v1", &exact),
        cosign_v1_verified(&home, &signed)
    );
    let loose = [
        "--trusted-root",
        root,
        "--certificate-identity-regexp",
        "@example\\.com$",
        "--certificate-oidc-issuer-regexp",
        "issuer",
    ];
    assert_eq!(verify_json(&home, "app:v1", &loose).0, 0);

    let keyless_no_match = no_match("cosign keyless", &reg, &signed);
    for wrong in [
        [
            "--trusted-root",
            root,
            "--certificate-identity",
            "ops@example.com",
            "--certificate-oidc-issuer",
            ISSUER,
        ],
        // An exact identity is anchored: a suffix of it is not the signer.
        [
            "--trusted-root",
            root,
            "--certificate-identity",
            "v@example.com",
            "--certificate-oidc-issuer",
            ISSUER,
        ],
        [
            "--trusted-root",
            root,
            "--certificate-identity",
            EMAIL,
            "--certificate-oidc-issuer",
            "https://other.example",
        ],
    ] {
        assert_eq!(
            verify_json(&home, "app:v1", &wrong),
            (
                1,
                report(&home, "app:v1", &signed, "cosign", false, &keyless_no_match)
            ),
            "{wrong:?}"
        );
    }
    // The controller's text for an artifact without any signature.
    let (code, r) = verify_json(&home, "app:unsigned", &exact);
    assert_eq!((code, &r["digest"]), (1, &json!(unsigned)));
    assert_eq!(
        r["message"],
        "failed to verify the signature using provider 'cosign keyless': no signatures found"
    );
    // Another Sigstore's root does not verify this one's signatures.
    let foreign = TestCa::init(&home.dir().join("foreign"));
    let foreign_root = foreign.dir.join("trusted_root.json");
    let mut args = exact;
    args[1] = path_str(&foreign_root);
    assert_eq!(verify_json(&home, "app:v1", &args).0, 1);

    // Without --trusted-root the root comes through TUF, as the controller's keyless without
    // trustedRootSecretRef: here from the CA's own TUF repository, as its --sigstore-tuf-*
    // flags name it.
    let tuf = home.dir().join("tuf");
    ca.tuf_repository(&tuf, &["--rotate"]);
    let mirror = StaticServer::start(&tuf);
    let mirror_flag = format!("--sigstore-tuf-mirror={}", mirror.url());
    let initial = tuf.join("1.root.json");
    let cache = home.dir().join("tuf-cache");
    let through_tuf = [
        "--certificate-identity",
        EMAIL,
        "--certificate-oidc-issuer",
        ISSUER,
        &mirror_flag,
        "--sigstore-tuf-root",
        path_str(&initial),
        "--sigstore-tuf-cache",
        path_str(&cache),
    ];
    assert_eq!(
        verify_json(&home, "app:v1", &through_tuf),
        cosign_v1_verified(&home, &signed)
    );
    assert!(cache.join("trusted_root.json").is_file());
    let mut other = through_tuf;
    other[1] = "ops@example.com";
    assert_eq!(
        verify_json(&home, "app:v1", &other),
        (
            1,
            report(&home, "app:v1", &signed, "cosign", false, &keyless_no_match)
        )
    );
    // Another Sigstore's TUF repository (its own keys and root) is refused, naming the mirror.
    let foreign_tuf = home.dir().join("foreign-tuf");
    foreign.tuf_repository(&foreign_tuf, &[]);
    let foreign_mirror = StaticServer::start(&foreign_tuf);
    let foreign_flag = format!("--sigstore-tuf-mirror={}", foreign_mirror.url());
    let foreign_cache = home.dir().join("foreign-tuf-cache");
    let mut args = through_tuf;
    args[4] = &foreign_flag;
    args[8] = path_str(&foreign_cache);
    let (code, r) = verify_json(&home, "app:v1", &args);
    assert_eq!(code, 1);
    let message = r["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "failed to verify the signature using provider 'cosign keyless': failed to get the \
             Sigstore trusted root through TUF from {}: ",
            foreign_mirror.url()
        )),
        "{message}"
    );
}

#[test]
fn notation_signatures_verify_with_the_trust_policy_and_certificate() {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let home = ToolHome::new(&reg);
    let signed = push(&reg, "app", "v1", "kind: Notation\n");
    let unsigned = push(&reg, "app", "unsigned", "kind: Unsigned\n");
    let key = tools::notation_generate_test_cert(home.dir(), "flux");
    let other = tools::notation_generate_test_cert(&home.dir().join("other"), "other");
    tools::notation_sign(&reg, &format!("app@{signed}"), &key, "jws", &[]);
    let policy = home.dir().join("trustpolicy.json");
    std::fs::write(
        &policy,
        json!({
            "version": "1.0",
            "trustPolicies": [{
                "name": "all",
                "registryScopes": ["*"],
                "signatureVerification": {"level": "strict"},
                "trustStores": ["ca:flux"],
                "trustedIdentities": ["*"],
            }],
        })
        .to_string(),
    )
    .unwrap();
    let args = |cert: &Path| {
        vec![
            "--provider".to_string(),
            "notation".into(),
            "--trust-policy".into(),
            policy.display().to_string(),
            "--cert".into(),
            cert.display().to_string(),
        ]
    };
    let ours = args(&key.cert);
    let ours: Vec<&str> = ours.iter().map(String::as_str).collect();
    let (code, r) = verify_json(&home, "app:v1", &ours);
    assert_eq!(
        (code, &r["verified"], &r["provider"]),
        (0, &json!(true), &json!("notation")),
        "{r}"
    );
    assert_eq!(
        r["message"],
        format!("verified signature of revision v1@{signed}")
    );

    // YAML, keys sorted.
    let mut yaml_args = ours.clone();
    yaml_args.extend_from_slice(&["-o", "yaml"]);
    let out = verify(&home, "app:v1", &yaml_args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let yaml: Value = serde_saphyr::from_slice(&out.stdout).unwrap();
    assert_eq!(yaml, r);

    // Unsigned, and a certificate that did not sign it.
    let (code, r) = verify_json(&home, "app:unsigned", &ours);
    assert_eq!((code, &r["verified"]), (1, &json!(false)), "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .starts_with("failed to verify the signature using provider 'notation': "),
        "{r}"
    );
    assert!(r["message"].as_str().unwrap().contains(&unsigned), "{r}");
    let theirs = args(&other.cert);
    let theirs: Vec<&str> = theirs.iter().map(String::as_str).collect();
    let (code, r) = verify_json(&home, "app:v1", &theirs);
    assert_eq!((code, &r["verified"]), (1, &json!(false)), "{r}");
}
