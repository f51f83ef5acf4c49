//! The `Examples:` blocks of each verb's `--help` (clap's `after_help`), after the manner of
//! flux's. Each command line in them parses with the binary's own command definition (a unit
//! test of `main.rs`).

/// `push artifact`.
pub const PUSH: &str = "\
Examples:
  # Push the manifests under ./deploy, naming the Git remote and commit they come from
  ocisource push artifact oci://ghcr.io/org/manifests/app:v1.0.0 \\
    --path=./deploy \\
    --source=\"$(git config --get remote.origin.url)\" \\
    --revision=\"$(git branch --show-current)@sha1:$(git rev-parse HEAD)\"

  # Push a single file with an extra annotation, and print the result as JSON
  ocisource push artifact oci://registry.example.com/app:latest --path=./app.yaml \\
    --source=https://github.com/org/app --revision=main@sha1:0123456789abcdef \\
    --annotations='org.opencontainers.image.description=app manifests' -o json

  # Push what a build tool writes to stdin, to a plain-HTTP registry with a token
  kustomize build ./overlays/prod | ocisource push artifact oci://localhost:5000/app:prod \\
    -f - --source=local --revision=prod --insecure-registry --creds=\"$REGISTRY_TOKEN\"

  # Leave out more paths than the default list, keep timestamps out of the digest
  ocisource push artifact oci://ghcr.io/org/manifests/app:v1.0.0 --path=. \\
    --source=https://github.com/org/app --revision=v1.0.0@sha1:0123456789abcdef \\
    --add-ignore-paths='docs/,*.md' --reproducible

  # Log in to Amazon ECR with the machine's identity (a build with the aws feature)
  ocisource push artifact oci://012345678901.dkr.ecr.us-east-1.amazonaws.com/app:v1.0.0 \\
    --path=./deploy --source=https://github.com/org/app --revision=v1.0.0@sha1:0123456789abcdef \\
    --provider=aws";

/// `pull artifact`.
pub const PULL: &str = "\
Examples:
  # Extract the first layer of a tagged artifact into an existing directory
  ocisource pull artifact oci://ghcr.io/org/manifests/app:v1.0.0 --output=./out

  # Pull by digest from a registry with a private CA, lifting the extraction bounds
  ocisource pull artifact oci://registry.example.com/app@sha256:3b000d186626666a4b46da13a22ba461c349d0b7ba43b458cbf3943256b7c29a \\
    -o ./out --ca-file=./ca.pem --artifact-max-extract-size=-1";

/// `tag artifact`.
pub const TAG: &str = "\
Examples:
  # Add the tags latest and stable to an artifact
  ocisource tag artifact oci://ghcr.io/org/manifests/app:v1.0.0 --tag=latest --tag=stable

  # The same, the tags comma-separated, naming the artifact by digest
  ocisource tag artifact oci://ghcr.io/org/manifests/app@sha256:3b000d186626666a4b46da13a22ba461c349d0b7ba43b458cbf3943256b7c29a \\
    --tag=latest,stable";

/// `list artifacts`.
pub const LIST: &str = "\
Examples:
  # List every artifact of a repository with its digest, source and revision
  ocisource list artifacts oci://ghcr.io/org/manifests/app

  # Only the tags of 1.x releases, as JSON
  ocisource list artifacts oci://ghcr.io/org/manifests/app --filter-semver='>=1.0.0 <2.0.0' -o json

  # Only the tags matching a regular expression (Go syntax)
  ocisource list artifacts oci://ghcr.io/org/manifests/app --filter-regex='^v1\\.'";

/// `diff artifact`.
pub const DIFF: &str = "\
Examples:
  # Tell whether ./deploy differs from the pushed artifact (exit 1 when it does)
  ocisource diff artifact oci://ghcr.io/org/manifests/app:v1.0.0 --path=./deploy

  # The same, with the ignore rules used for the push
  ocisource diff artifact oci://ghcr.io/org/manifests/app:v1.0.0 --path=. --add-ignore-paths='docs/'";

/// `build artifact`.
pub const BUILD: &str = "\
Examples:
  # Write the tarball push would push for ./deploy to ./artifact.tgz
  ocisource build artifact --path=./deploy

  # The same into a chosen file, symlinks replaced by what they point to
  ocisource build artifact --path=./deploy --output=/tmp/app.tgz --resolve-symlinks";

/// `verify artifact`.
pub const VERIFY: &str = "\
Examples:
  # Check a cosign signature made with cosign.key (exit 0 verified, 1 not, 2 bad flags)
  ocisource verify artifact oci://ghcr.io/org/manifests/app:v1.0.0 --key=cosign.pub

  # Keyless (public-good Sigstore, its root through TUF): signed by a workflow of org/app
  ocisource verify artifact oci://ghcr.io/org/manifests/app:v1.0.0 \\
    --certificate-identity-regexp='^https://github\\.com/org/app/' \\
    --certificate-oidc-issuer=https://token.actions.githubusercontent.com

  # Keyless against a private Sigstore's trusted root
  ocisource verify artifact oci://registry.example/app:v1.0.0 \\
    --trusted-root=trusted_root.json \\
    --certificate-identity=dev@example.com --certificate-oidc-issuer=https://issuer.example

  # Notation, the result as JSON for the pipeline
  ocisource verify artifact oci://ghcr.io/org/manifests/app:v1.0.0 --provider=notation \\
    --trust-policy=trustpolicy.json --cert=ca.crt -o json

  # An ECR artifact, logging in with the machine's AWS identity
  ocisource verify artifact oci://012345678901.dkr.ecr.us-east-1.amazonaws.com/app:v1.0.0 \\
    --key=cosign.pub --registry-provider=aws";
