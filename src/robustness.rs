//! No panic on any input: every parser of untrusted text (object specs, Secrets, signature keys
//! and Sigstore bundles, registry answers, artifact ignore files, cloud token responses) is fed
//! thousands of random and mutated inputs from a fixed seed, and must answer with a value or an
//! error.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::api::duration;
use crate::cloud::{aws, azure, gcp};
use crate::registry::keychain::Keychain;
use crate::registry::manifest::parse_document;
use crate::registry::{Digest, Repository, auth, retry};
use crate::storage::ignore::{IgnoreMatcher, Pattern, read_patterns};

/// A deterministic xorshift generator; enough for a no-panic sweep.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// Up to `max_len` characters of `alphabet`.
    pub(crate) fn string(&mut self, alphabet: &[char], max_len: u64) -> String {
        let len = self.next() % (max_len + 1);
        (0..len)
            .map(|_| alphabet[self.below(alphabet.len())])
            .collect()
    }

    /// `seed` with a few bytes flipped, inserted, removed or duplicated.
    fn mutate(&mut self, seed: &[u8]) -> Vec<u8> {
        let mut out = seed.to_vec();
        for _ in 0..=self.below(4) {
            let at = self.below(out.len() + 1);
            match self.below(4) {
                0 if at < out.len() => out[at] = self.next() as u8,
                1 => out.insert(at, b"\"{}[]:,/@.\\\x00\xff-=+ "[self.below(17)]),
                2 if at < out.len() => {
                    out.remove(at);
                }
                _ => {
                    let end = (at + self.below(8)).min(out.len());
                    let piece = out[at..end].to_vec();
                    out.splice(at..at, piece);
                }
            }
        }
        out
    }

    /// A mutation of one of `seeds`, as bytes and as (lossy) text.
    fn mutant(&mut self, seeds: &[&str]) -> (Vec<u8>, String) {
        let seed = seeds[self.below(seeds.len())];
        let bytes = self.mutate(seed.as_bytes());
        let text = String::from_utf8_lossy(&bytes).into_owned();
        (bytes, text)
    }
}

const ROUNDS: usize = 3000;

#[test]
fn object_fields_never_panic() {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let urls = [
        "oci://ghcr.io/stefanprodan/manifests/podinfo",
        "oci://localhost:5000/a/b",
        "oci://[::1]:5000/x",
        "oci://r.example.com/a@sha256:0123",
    ];
    let durations = ["1m", "1h30m", "10s", "1.5h", "300ms", "-1s", "0"];
    let digests = [
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "sha512:00",
        "blake3:ab",
    ];
    for _ in 0..ROUNDS {
        let (_, url) = rng.mutant(&urls);
        if let Ok(repo) = Repository::parse_oci_url(&url) {
            let _ = (repo.registry(), repo.repository(), repo.to_string());
        }
        let _ = Repository::parse(url.trim_start_matches("oci://"));
        let (_, d) = rng.mutant(&durations);
        let _ = duration::parse(&d);
        let (_, digest) = rng.mutant(&digests);
        if let Ok(parsed) = digest.parse::<Digest>() {
            assert_eq!(parsed.to_string().parse::<Digest>().ok(), Some(parsed));
        }
    }
}

#[test]
fn secrets_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let configs = [
        r#"{"auths":{"ghcr.io":{"auth":"dXNlcjpwYXNz"}}}"#,
        r#"{"auths":{"https://index.docker.io/v1/":{"username":"u","password":"p"}}}"#,
        r#"{"r.example.com:5000":{"auth":"dTpw","email":"e"}}"#,
    ];
    let repo = Repository::parse_oci_url("oci://ghcr.io/a/b").ok();
    for _ in 0..ROUNDS {
        let (bytes, _) = rng.mutant(&configs);
        for (type_, key) in [
            ("kubernetes.io/dockerconfigjson", ".dockerconfigjson"),
            ("kubernetes.io/dockercfg", ".dockercfg"),
        ] {
            let mut keychain = Keychain::new();
            let data = BTreeMap::from([(key.to_string(), bytes.clone())]);
            if keychain.add_secret(type_, &data).is_ok()
                && let Some(repo) = &repo
            {
                let _ = keychain.resolve(repo);
            }
        }
    }
}

#[test]
fn registry_answers_never_panic() {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let manifests = [
        r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"application/vnd.cncf.flux.content.v1.tar+gzip","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}],"annotations":{"a":"b"}}"#,
        r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"platform":{"architecture":"amd64","os":"linux"}}]}"#,
    ];
    let challenges = [
        r#"Bearer realm="https://auth.example.com/token",service="registry",scope="repository:a/b:pull""#,
        r#"Basic realm="registry", Bearer realm="x",error="invalid_token""#,
    ];
    let tokens = [
        r#"{"token":"abc","expires_in":300,"issued_at":"2026-01-01T00:00:00Z"}"#,
        r#"{"access_token":"abc"}"#,
    ];
    let retry_after = ["120", "Wed, 21 Oct 2015 07:28:00 GMT", "-1", "1e9"];
    let links = [
        r#"</v2/a/tags/list?n=100&last=b>; rel="next""#,
        r#"<https://other.example.com/v2/a/tags/list?last=c>; rel=next, <x>; rel="prev""#,
    ];
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    for _ in 0..ROUNDS {
        let (bytes, _) = rng.mutant(&manifests);
        for content_type in [
            None,
            Some("application/vnd.oci.image.manifest.v1+json"),
            Some("application/vnd.docker.distribution.manifest.list.v2+json"),
        ] {
            let _ = parse_document(&bytes, content_type);
        }
        let (_, header) = rng.mutant(&challenges);
        let _ = auth::parse_challenges(&header);
        let (bytes, _) = rng.mutant(&tokens);
        let _ = auth::parse_token_response(&bytes);
        let (_, value) = rng.mutant(&retry_after);
        let _ = retry::parse_retry_after(&value, now);
        let (_, link) = rng.mutant(&links);
        if let Ok(value) = axum::http::HeaderValue::from_str(&link) {
            let mut headers = axum::http::HeaderMap::new();
            headers.insert("link", value);
            let _ = crate::registry::tags::next_link(&headers);
        }
    }
}

#[test]
fn signature_material_never_panics() {
    use crate::verify::{PublicKey, cosign};
    let mut rng = Rng(0x6A09_E667_F3BC_C908);
    // Real keys of each kind (P-256, P-384, Ed25519, RSA in PKCS#1 form) and a private key.
    let keys = [
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEfqc5kcyrRldipzGbZMB+VY9qqp9e\n\
         8N7Xgjc89o1lEuUnkkeaWwh8CkIgyPI1ZYIvi8crfW+YwpIOw5l7kcjBVw==\n-----END PUBLIC KEY-----\n",
        "-----BEGIN PUBLIC KEY-----\nMHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEOsy/SaUx1r6OaP2DO/ZWuLJqWFrjSWLb\n\
         z1Tg1iV8Kd4d8V0k2i4JIU0tzQUSSO7AkLzrtTAleIlwqd7N3JUd3CPRlzIPayji\n\
         Mz9uCxfKYh6Tq7m3a3nC9yR9aFl9P+aZ\n-----END PUBLIC KEY-----\n",
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAmOm0q/84de1ywCnSVAHqftZknyPwwGG3dACIVwwQSD0=\n\
         -----END PUBLIC KEY-----\n",
        "-----BEGIN RSA PUBLIC KEY-----\nMIGJAoGBAL7rgPW+yV11uWE1fTRXfBi78M6F1NH9elVXHveDbHECzw9rq0j5GJHF\n\
         VTiQ2m4dKvAGmQ7HKJC/IEO2ZnQ2r9f0CSwdU+o0R9TE61xlvNOVLdZdlkYq+ipd\n\
         rtD9zrAbrUmzL1vzjlEkmGKZokdsvdVKTReIq+lARex2UCoFSriRAgMBAAE=\n-----END RSA PUBLIC KEY-----\n",
        "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
    ];
    for seed in &keys[..4] {
        assert!(PublicKey::from_pem(seed.as_bytes()).is_ok(), "{seed}");
    }
    let payloads = [
        r#"{"critical":{"identity":{"docker-reference":"r/app"},"image":{"docker-manifest-digest":"sha256:4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a"},"type":"cosign container image signature"},"optional":null}"#,
        r#"{"critical":{"image":{"docker-manifest-digest":""}}}"#,
    ];
    let digest: Digest = "sha256:4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a"
        .parse()
        .unwrap_or_else(|_| Digest::sha256_of(b""));
    let sig_manifest = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"annotations":{"dev.cosignproject.cosign/signature":"MEUCIQDx"}}]}"#;
    for _ in 0..ROUNDS {
        let (bytes, _) = rng.mutant(&keys);
        if let Ok(key) = PublicKey::from_pem(&bytes) {
            let (payload, _) = rng.mutant(&payloads);
            let _ = key.verifies(&payload, &bytes);
        }
        let der: Vec<u8> = (0..rng.below(120)).map(|_| rng.next() as u8).collect();
        let _ = PublicKey::from_spki_der(&der);
        let (payload, _) = rng.mutant(&payloads);
        let _ = cosign::check_payload(&payload, &digest);
        let (body, _) = rng.mutant(&[sig_manifest]);
        if let Ok(crate::registry::manifest::Document::Image { layers, .. }) =
            parse_document(&body, None)
        {
            let manifest = crate::registry::Manifest {
                digest: digest.clone(),
                manifest_digest: digest.clone(),
                media_type: String::new(),
                config: None,
                layers,
                annotations: BTreeMap::new(),
            };
            let _ = cosign::signature_layers(&manifest);
        }
    }
}

#[test]
fn ignore_rules_never_panic() {
    let mut rng = Rng(0xA076_1D64_78BD_642F);
    let alphabet: Vec<char> = "ab/*?[]!^\\-#. \t\u{e9}".chars().collect();
    let paths: [&[&str]; 4] = [&["a"], &["a", "b"], &["dir", "x.yaml"], &[".git"]];
    for _ in 0..ROUNDS {
        let text: String = (0..=rng.below(4))
            .map(|_| rng.string(&alphabet, 12) + "\n")
            .collect();
        let domain = vec![rng.string(&alphabet, 4)];
        let matcher = IgnoreMatcher::with_defaults(read_patterns(&text, &domain));
        let single = Pattern::parse(&rng.string(&alphabet, 16), &[]);
        for path in paths {
            let _ = matcher.is_excluded(path, rng.below(2) == 0);
            let _ = single.matches(path, false);
        }
    }
}

#[test]
fn cloud_token_responses_never_panic() {
    let mut rng = Rng(0xE703_7ED1_A0B4_28DB);
    let aws_xml = [
        "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>AKIA</AccessKeyId><SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken><Expiration>2026-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>",
    ];
    let jsons = [
        r#"{"access_token":"eyJhbGciOiJub25lIn0.eyJleHAiOjE4MDAwMDAwMDB9.","expires_in":3600,"token_type":"Bearer"}"#,
        r#"{"refresh_token":"eyJhbGciOiJub25lIn0.eyJleHAiOjE4MDAwMDAwMDB9."}"#,
        r#"{"accessToken":"ya29","expireTime":"2026-01-01T00:00:00Z"}"#,
    ];
    let jwts = ["eyJhbGciOiJub25lIn0.eyJleHAiOjE4MDAwMDAwMDB9.", "a.b.c"];
    let ecr = ["QVdTOnBhc3N3b3Jk", "dXNlcg=="];
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    for _ in 0..ROUNDS {
        let (bytes, _) = rng.mutant(&aws_xml);
        let _ = aws::parse_assume_role_response(&bytes);
        let (bytes, _) = rng.mutant(&jsons);
        let _ = azure::parse_token_response(&bytes);
        let _ = azure::parse_exchange_response(&bytes);
        let _ = gcp::parse_token_response(&bytes, now);
        let _ = gcp::parse_generate_access_token_response(&bytes);
        let (_, jwt) = rng.mutant(&jwts);
        let _ = azure::jwt_expiry(&jwt);
        let (_, token) = rng.mutant(&ecr);
        let _ = aws::decode_authorization_token(&token);
    }
}

/// A small tar with a directory, files, a symlink and a hard link, as raw tar bytes.
fn sample_tar() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |name: &str, kind: tar::EntryType, link: Option<&str>, body: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        if let Some(target) = link {
            header.set_link_name(target).unwrap();
        }
        builder.append_data(&mut header, name, body).unwrap();
    };
    add("dir/", tar::EntryType::Directory, None, b"");
    add("dir/a.yaml", tar::EntryType::Regular, None, b"kind: A\n");
    add("b.yaml", tar::EntryType::Regular, None, &[b'x'; 700]);
    add("dir/link", tar::EntryType::Symlink, Some("../b.yaml"), b"");
    add("hard", tar::EntryType::Link, Some("b.yaml"), b"");
    builder.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// Every path below `root`, relative to it.
fn tree(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.symlink_metadata().unwrap().is_dir() {
                stack.push(path.clone());
            }
            out.push(path.strip_prefix(root).unwrap().to_path_buf());
        }
    }
    out.sort();
    out
}

#[test]
fn mutated_layers_never_panic_nor_write_outside_their_directory() {
    use crate::storage::ExtractLimits;
    use crate::storage::extract::extract;

    let mut rng = Rng(0x1405_7B7E_F767_814F);
    let tar = sample_tar();
    let gz = gzip(&tar);
    let base = tempfile::tempdir().unwrap();
    let outside = base.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let limits = ExtractLimits {
        max_size: Some(1 << 20),
        max_entries: Some(1000),
    };
    for round in 0..600 {
        // Half mutate the tar stream under a valid gzip, half the compressed bytes.
        let layer = if round % 2 == 0 {
            gzip(&rng.mutate(&tar))
        } else {
            rng.mutate(&gz)
        };
        let dir = base.path().join("work").join(round.to_string());
        let _ = extract(layer.as_slice(), &dir, &limits);
        assert!(tree(&outside).is_empty(), "round {round} wrote outside");
        for path in tree(&dir) {
            let meta = dir.join(&path).symlink_metadata().unwrap();
            assert!(
                !meta.file_type().is_symlink(),
                "round {round}: symlink {path:?} extracted"
            );
        }
    }
    let top: Vec<_> = tree(base.path())
        .into_iter()
        .filter(|p| p.components().count() == 1)
        .collect();
    assert_eq!(top, ["outside", "work"].map(std::path::PathBuf::from));
}

#[test]
fn sigstore_bundles_and_referrers_never_panic() {
    use crate::registry::referrers::parse_referrers;
    use crate::verify::{PublicKey, bundle};
    use base64::Engine as _;
    let mut rng = Rng(0xBB67_AE85_84CA_A73B);
    // A real bundle of `cosign sign --key --new-bundle-format` (v2.6.5), with its key.
    let key = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEYaAELKqoaAJFEM4yRuK7qkvKExQJ\n\
               ehyZcZcObb/Wj7pK6/xyDDn8ei2j75GBJ7Qwpmd1k+yQ+//1YNnHznS5xw==\n-----END PUBLIC KEY-----\n";
    let bundles = [
        r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"MHdKEwro6xgAK/LjtDoPxaMw2JYkrvAYxMi2gG1clpM="}},"dsseEnvelope":{"payload":"eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEiLCJzdWJqZWN0IjpbeyJkaWdlc3QiOnsic2hhMjU2IjoiYjA5OTA3OGFjNGVjY2U0MDM1ZDhiNTI0ZDM1ZjM4YWQ5ZDg3NzkzM2ExMDA3MzA2NThiNmQ2MjkxNjA4Y2IzNiJ9fV0sInByZWRpY2F0ZVR5cGUiOiJodHRwczovL3NpZ3N0b3JlLmRldi9jb3NpZ24vc2lnbi92MSJ9","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"MEQCIGNLNaY+5Fq/gQtnIErgdr6KtgBRBjzLr4jjnmnIvRKYAiBKG1W48KnZvly52E6RmkVRkq/CcYuAfTiWn6Oj2rmfIw=="}]}}"#,
        r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","messageSignature":{"messageDigest":{"algorithm":"SHA2_256","digest":"AA=="},"signature":"AA=="}}"#,
    ];
    let statements = [
        r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"b099078ac4ecce4035d8b524d35f38ad9d877933a100730658b6d6291608cb36"}}],"predicateType":"https://sigstore.dev/cosign/sign/v1"}"#,
    ];
    let manifests = [
        r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json"},"layers":[{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","size":615,"digest":"sha256:2027ff9323a270aa3981809f9e96652865e4bc4f8676cf7105d41451b4647531"}],"artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json"}"#,
    ];
    let indexes = [
        r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":887,"digest":"sha256:444008604d32bb292ca8efa8b3918dd0e762cc3d6873dc8245e02ff9b9b698be","artifactType":"application/vnd.oci.empty.v1+json","annotations":{"a":"b"}}]}"#,
    ];
    let keys = match PublicKey::from_pem(key.as_bytes()) {
        Ok(k) => vec![("cosign.pub".to_string(), k)],
        Err(e) => panic!("{e}"),
    };
    let digest: Digest = "sha256:b099078ac4ecce4035d8b524d35f38ad9d877933a100730658b6d6291608cb36"
        .parse()
        .unwrap_or_else(|_| Digest::sha256_of(b""));
    assert!(bundle::check_bundle(bundles[0].as_bytes(), &digest, &keys).is_ok());
    for _ in 0..ROUNDS {
        let (bytes, _) = rng.mutant(&bundles);
        let _ = bundle::check_bundle(&bytes, &digest, &keys);
        let (statement, _) = rng.mutant(&statements);
        let wrapped = format!(
            r#"{{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","dsseEnvelope":{{"payload":"{}","payloadType":"application/vnd.in-toto+json","signatures":[{{"sig":"MEQCIGNLNaY+5Fq/gQtnIErgdr6KtgBRBjzLr4jjnmnIvRKYAiBKG1W48KnZvly52E6RmkVRkq/CcYuAfTiWn6Oj2rmfIw=="}}]}}}}"#,
            base64::engine::general_purpose::STANDARD.encode(&statement)
        );
        let _ = bundle::check_bundle(wrapped.as_bytes(), &digest, &keys);
        let (bytes, _) = rng.mutant(&manifests);
        let _ = bundle::bundle_layer(&bytes);
        let (bytes, _) = rng.mutant(&indexes);
        let _ = parse_referrers(&bytes);
    }
}
