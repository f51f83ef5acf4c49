// Command notation is a MINIMAL stand-in for the Notary Project CLI, used by the ocisource test
// bed to produce real Notary Project signatures.
//
// Why it exists: the CLI module (github.com/notaryproject/notation) is refused by the Go module
// proxy reachable from the test machines, while the libraries the CLI is built on are served.
// This program therefore signs and verifies with the CLI's own library, notation-go v1.3.2 (the
// version notation CLI v1.3.2 uses, and the one Flux's source-controller verifies with), and with
// the same oras-go remote repository client, so the signature envelopes, signature manifests and
// referrers handling are those of the real CLI. It is not the CLI: only the subcommands below exist,
// there is no config directory beyond the key files, no plugins, no timestamping, no trust store
// management.
//
//	notation cert generate-test [--bits 2048] [--dir DIR] NAME
//	notation sign [--signature-format jws|cose] (--key NAME | --key-file K --cert-file C)
//	              [-u USER -p PASS] [--insecure-registry] [--force-referrers-tag=true|false]
//	              [-e/--expiry DUR] [-m/--user-metadata k=v]... REGISTRY/REPO(@DIGEST|:TAG)
//	notation verify --cert-file C [--cert-file C2]... [--trust-policy FILE]
//	              [-u USER -p PASS] [--insecure-registry] [-m k=v]... REGISTRY/REPO(@DIGEST|:TAG)
//	notation version
//
// Flag names, defaults and messages follow notation CLI v1.3.2 where the CLI has the flag
// (--signature-format, --key, -u/--username, -p/--password with $NOTATION_USERNAME and
// $NOTATION_PASSWORD, --insecure-registry, --force-referrers-tag defaulting to true, --expiry,
// --user-metadata, --bits, --max-signatures). --key-file, --cert-file, --dir and --trust-policy are
// this stand-in's own. Without -u/-p, credentials come from the Docker config ($DOCKER_CONFIG).
// TLS trusts the system roots; Go reads SSL_CERT_FILE, so a private CA works as for any Go tool.
package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/notaryproject/notation-core-go/signature/cose"
	"github.com/notaryproject/notation-core-go/signature/jws"
	"github.com/notaryproject/notation-core-go/testhelper"
	corex509 "github.com/notaryproject/notation-core-go/x509"
	"github.com/notaryproject/notation-go"
	"github.com/notaryproject/notation-go/dir"
	notationregistry "github.com/notaryproject/notation-go/registry"
	"github.com/notaryproject/notation-go/signer"
	"github.com/notaryproject/notation-go/verifier"
	"github.com/notaryproject/notation-go/verifier/trustpolicy"
	"github.com/notaryproject/notation-go/verifier/truststore"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/pflag"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/retry"
)

const (
	version = "1.3.2+testbed (minimal signer on notation-go v1.3.2; not the notation CLI)"
	// Same text the CLI matches to turn a failed garbage collection of the old referrers index
	// (registries that forbid deletes) into a warning.
	referrersTagSchemaDeleteError = "failed to delete dangling referrers index"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	usage := errors.New("usage: notation (cert generate-test | sign | verify | version) ...; this is a minimal stand-in, see testbed/go/notation/main.go")
	if len(args) == 0 {
		return usage
	}
	switch args[0] {
	case "cert":
		if len(args) > 1 && args[1] == "generate-test" {
			return certGenerateTest(args[2:])
		}
	case "sign":
		return sign(args[1:])
	case "verify":
		return verify(args[1:])
	case "version", "--version":
		fmt.Println("Notation -", version)
		return nil
	}
	return usage
}

// secureFlags are the CLI's registry flags.
type secureFlags struct {
	username, password string
	insecure           bool
}

func (s *secureFlags) apply(fs *pflag.FlagSet) {
	fs.StringVarP(&s.username, "username", "u", os.Getenv("NOTATION_USERNAME"), "username for registry operations (default to $NOTATION_USERNAME if not specified)")
	fs.StringVarP(&s.password, "password", "p", os.Getenv("NOTATION_PASSWORD"), "password for registry operations (default to $NOTATION_PASSWORD if not specified)")
	fs.BoolVar(&s.insecure, "insecure-registry", false, "use HTTP protocol while connecting to registries. Should be used only for testing")
}

// keyDir is where the CLI keeps local keys ($XDG_CONFIG_HOME/notation/localkeys) unless --dir.
func keyDir(flagDir string) (string, error) {
	if flagDir != "" {
		return flagDir, nil
	}
	return dir.ConfigFS().SysPath(dir.LocalKeysDir)
}

var validName = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)

func certGenerateTest(args []string) error {
	fs := pflag.NewFlagSet("cert generate-test", pflag.ContinueOnError)
	bits := fs.IntP("bits", "b", 2048, "RSA key bits")
	outDir := fs.String("dir", "", "directory for NAME.key and NAME.crt (default: notation's localkeys directory)")
	fs.Bool("default", false, "accepted for CLI compatibility; ignored (there is no key list)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("missing certificate common_name")
	}
	name := fs.Arg(0)
	if !validName.MatchString(name) {
		return errors.New("name needs to follow [a-zA-Z0-9_.-]+ format")
	}
	d, err := keyDir(*outDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(d, 0o700); err != nil {
		return err
	}

	fmt.Println("generating RSA Key with", *bits, "bits")
	key, err := rsa.GenerateKey(rand.Reader, *bits)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	// The CLI's own generator: self-signed, non-CA, digitalSignature + codeSigning EKU, 1 day.
	tuple := testhelper.GetRSASelfSignedCertTupleWithPK(key, name)
	if tuple.Cert == nil {
		return errors.New("failed to create the test certificate")
	}
	fmt.Println("generated certificate expiring on", tuple.Cert.NotAfter.Format(time.RFC3339))

	keyPath := filepath.Join(d, name+".key")
	certPath := filepath.Join(d, name+".crt")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return fmt.Errorf("failed to write key file: %v", err)
	}
	fmt.Println("wrote key:", keyPath)
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tuple.Cert.Raw}), 0o644); err != nil {
		return fmt.Errorf("failed to write certificate file: %v", err)
	}
	fmt.Println("wrote certificate:", certPath)
	return nil
}

// repository builds the oras-go client exactly as the CLI does (auth client with cache, retrying
// transport, plain HTTP for --insecure-registry or a "localhost" host).
func repository(ref registry.Reference, s secureFlags) (*remote.Repository, error) {
	plain := s.insecure
	if host, _, _ := net.SplitHostPort(ref.Registry); host == "localhost" {
		plain = true
	}
	client := &auth.Client{
		Client:   &http.Client{Transport: retry.NewTransport(http.DefaultTransport.(*http.Transport).Clone())},
		Cache:    auth.NewCache(),
		ClientID: "notation",
	}
	client.SetUserAgent("notation/v1.3.2+testbed")
	switch {
	case s.username != "":
		client.Credential = auth.StaticCredential(ref.Host(), auth.Credential{Username: s.username, Password: s.password})
	case s.password != "":
		client.Credential = auth.StaticCredential(ref.Host(), auth.Credential{RefreshToken: s.password})
	default:
		store, err := credentials.NewStoreFromDocker(credentials.StoreOptions{})
		if err != nil {
			return nil, fmt.Errorf("failed to get credentials store: %w", err)
		}
		client.Credential = credentials.Credential(store)
	}
	return &remote.Repository{Client: client, Reference: ref, PlainHTTP: plain}, nil
}

func parseReference(s string) (registry.Reference, error) {
	ref, err := registry.ParseReference(s)
	if err != nil {
		return ref, fmt.Errorf("%q: %w. Expecting <registry>/<repository>:<tag> or <registry>/<repository>@<digest>", s, err)
	}
	if ref.Reference == "" {
		return ref, fmt.Errorf("%q: invalid reference: no tag or digest. Expecting <registry>/<repository>:<tag> or <registry>/<repository>@<digest>", s)
	}
	return ref, nil
}

// resolve turns a tag into a digest reference, warning like the CLI.
func resolve(ctx context.Context, repo *remote.Repository, ref registry.Reference, verb string) (ocispec.Descriptor, string, error) {
	desc, err := repo.Resolve(ctx, ref.Reference)
	if err != nil {
		return desc, "", fmt.Errorf("failed to resolve reference: %w", err)
	}
	if ref.Reference != desc.Digest.String() {
		switch verb {
		case "sign":
			fmt.Fprintf(os.Stderr, "Warning: Always sign the artifact using digest(@sha256:...) rather than a tag(:%s) because tags are mutable and a tag reference can point to a different artifact than the one signed.\n", ref.Reference)
		default:
			fmt.Fprintf(os.Stderr, "Warning: Always verify the artifact using digest(@sha256:...) rather than a tag(:%s) because resolved digest may not point to the same signed artifact, as tags are mutable.\n", ref.Reference)
		}
	}
	return desc, ref.Registry + "/" + ref.Repository + "@" + desc.Digest.String(), nil
}

func parseMap(kvs []string, flag string) (map[string]string, error) {
	m := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("could not parse flag %s: key-value pair requires \"=\" as separator", flag)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("could not parse flag %s: key %q is specified more than once", flag, k)
		}
		m[k] = v
	}
	return m, nil
}

func sign(args []string) error {
	fs := pflag.NewFlagSet("sign", pflag.ContinueOnError)
	var sec secureFlags
	sec.apply(fs)
	format := fs.String("signature-format", "jws", "signature envelope format, options: \"jws\", \"cose\"")
	keyName := fs.StringP("key", "k", "", "signing key name: NAME.key and NAME.crt in --dir (as written by cert generate-test)")
	keyFile := fs.String("key-file", "", "PEM private key file (stand-in only)")
	certFile := fs.String("cert-file", "", "PEM certificate chain file, leaf first (stand-in only)")
	outDir := fs.String("dir", "", "key directory for --key (default: notation's localkeys directory)")
	forceTag := fs.Bool("force-referrers-tag", true, "force to store signatures using the referrers tag schema")
	expiry := fs.DurationP("expiry", "e", 0, "optional expiry that provides a \"best by use\" time for the artifact")
	var metadata []string
	fs.StringArrayVarP(&metadata, "user-metadata", "m", nil, "{key}={value} pairs that are added to the signature payload")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("missing reference to the artifact: use `notation sign --help` to see what parameters are required")
	}
	if *keyName != "" {
		if *keyFile != "" || *certFile != "" {
			return errors.New("--key is mutually exclusive with --key-file/--cert-file")
		}
		d, err := keyDir(*outDir)
		if err != nil {
			return err
		}
		*keyFile = filepath.Join(d, *keyName+".key")
		*certFile = filepath.Join(d, *keyName+".crt")
	}
	if *keyFile == "" || *certFile == "" {
		return errors.New("a signing key must be specified: --key NAME, or --key-file and --cert-file")
	}
	var mediaType string
	switch *format {
	case "jws":
		mediaType = jws.MediaTypeEnvelope
	case "cose":
		mediaType = cose.MediaTypeEnvelope
	default:
		return fmt.Errorf("signature format %q not supported\nSupported signature envelope formats are \"jws\" and \"cose\"", *format)
	}
	userMetadata, err := parseMap(metadata, "--user-metadata")
	if err != nil {
		return err
	}
	s, err := signer.NewGenericSignerFromFiles(*keyFile, *certFile)
	if err != nil {
		return err
	}

	ctx := context.Background()
	ref, err := parseReference(fs.Arg(0))
	if err != nil {
		return err
	}
	repo, err := repository(ref, sec)
	if err != nil {
		return err
	}
	if *forceTag {
		if err := repo.SetReferrersCapability(false); err != nil {
			return err
		}
	}
	desc, resolved, err := resolve(ctx, repo, ref, "sign")
	if err != nil {
		return err
	}
	opts := notation.SignOptions{
		SignerSignOptions: notation.SignerSignOptions{SignatureMediaType: mediaType, ExpiryDuration: *expiry},
		ArtifactReference: desc.Digest.String(),
		UserMetadata:      userMetadata,
	}
	if _, err := notation.Sign(ctx, s, notationregistry.NewRepository(repo), opts); err != nil {
		var pushFailed notation.ErrorPushSignatureFailed
		if errors.As(err, &pushFailed) && strings.Contains(err.Error(), referrersTagSchemaDeleteError) {
			fmt.Fprintln(os.Stderr, "Warning: Removal of outdated referrers index from remote registry failed. Garbage collection may be required.")
		} else {
			return err
		}
	}
	fmt.Println("Successfully signed", resolved)
	return nil
}

// certStore hands out the given certificates for every store, as Flux's verifier does.
type certStore []*x509.Certificate

func (c certStore) GetCertificates(context.Context, truststore.Type, string) ([]*x509.Certificate, error) {
	return c, nil
}

func verify(args []string) error {
	fs := pflag.NewFlagSet("verify", pflag.ContinueOnError)
	var sec secureFlags
	sec.apply(fs)
	var certFiles, metadata []string
	fs.StringArrayVar(&certFiles, "cert-file", nil, "trusted certificate file (PEM or DER), repeatable; served for every trust store (stand-in only)")
	policyFile := fs.String("trust-policy", "", "trust policy JSON (default: one strict policy, registryScopes *, trustStores ca:testbed, trustedIdentities *) (stand-in only)")
	maxSigs := fs.Int("max-signatures", 100, "maximum number of signatures to evaluate or examine")
	fs.StringArrayVarP(&metadata, "user-metadata", "m", nil, "user defined {key}={value} pairs that must be present in the signature for successful verification if provided")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("missing reference to the artifact: use `notation verify --help` to see what parameters are required")
	}
	if len(certFiles) == 0 {
		return errors.New("at least one --cert-file is required")
	}
	var store certStore
	for _, f := range certFiles {
		certs, err := corex509.ReadCertificateFile(f)
		if err != nil {
			return err
		}
		store = append(store, certs...)
	}
	policy := &trustpolicy.Document{
		Version: "1.0",
		TrustPolicies: []trustpolicy.TrustPolicy{{
			Name:                  "testbed",
			RegistryScopes:        []string{"*"},
			SignatureVerification: trustpolicy.SignatureVerification{VerificationLevel: trustpolicy.LevelStrict.Name},
			TrustStores:           []string{"ca:testbed"},
			TrustedIdentities:     []string{"*"},
		}},
	}
	if *policyFile != "" {
		data, err := os.ReadFile(*policyFile)
		if err != nil {
			return err
		}
		policy = &trustpolicy.Document{}
		if err := json.Unmarshal(data, policy); err != nil {
			return fmt.Errorf("error occurred while parsing trustpolicy.json: %w", err)
		}
	}
	userMetadata, err := parseMap(metadata, "--user-metadata")
	if err != nil {
		return err
	}
	v, err := verifier.New(policy, store, nil)
	if err != nil {
		return err
	}

	ctx := context.Background()
	ref, err := parseReference(fs.Arg(0))
	if err != nil {
		return err
	}
	repo, err := repository(ref, sec)
	if err != nil {
		return err
	}
	_, resolved, err := resolve(ctx, repo, ref, "verify")
	if err != nil {
		return err
	}
	_, outcomes, err := notation.Verify(ctx, v, notationregistry.NewRepository(repo), notation.VerifyOptions{
		ArtifactReference:    resolved,
		MaxSignatureAttempts: *maxSigs,
		UserMetadata:         userMetadata,
	})
	if err != nil {
		return err
	}
	for _, o := range outcomes {
		for _, r := range o.VerificationResults {
			if r.Error != nil {
				fmt.Fprintf(os.Stderr, "Warning: %v was set to %q and failed with error: %v\n", r.Type, r.Action, r.Error)
			}
		}
	}
	fmt.Println("Successfully verified signature for", resolved)
	return nil
}
