// sigstore-testca: an offline, private Sigstore for the keyless tests of ocisource. It keeps a
// Fulcio-like CA (root + code-signing intermediate), a Rekor key and a CT log key in a
// directory, writes their trusted_root.json, and signs a registry digest for an OIDC identity
// the way cosign v2.6.5 does keyless:
//
//   - a short-lived leaf certificate (SAN = the identity, the Fulcio issuer extensions v1 and v2,
//     code-signing EKU) with an embedded SCT signed by the CT log key over the precertificate;
//   - a Rekor entry for the signature, with a signed entry timestamp (inclusion promise) and
//     an inclusion proof whose checkpoint is signed by the Rekor key;
//   - layout "bundle": a Sigstore bundle v0.3 (DSSE envelope of an in-toto statement naming the
//     digest, Rekor kind dsse 0.0.1) attached as an OCI referrer with cosign's own writer
//     (ociremote.WriteAttestationNewBundleFormat, what `cosign sign --new-bundle-format` calls);
//   - layout "sig": cosign's v2 layout (simple-signing payload in the sha256-<hex>.sig image, the
//     certificate, chain and Rekor bundle as layer annotations; Rekor kind hashedrekord 0.0.1),
//     written with cosign's own static signature and remote writer.
//
// Every complete bundle is checked with sigstore-go's verifier (SCT, tlog, integrated time,
// identity, digest) before it is attached, so a fixture is a real Sigstore artifact or nothing;
// --tlog set or proof make deliberately incomplete ones (for negative tests), not checked.
//
// Usage:
//
//	sigstore-testca init DIR
//	sigstore-testca sign --ca DIR --ref HOST/REPO@sha256:HEX --identity ID --issuer URL
//	                     [--layout bundle|sig] [--tlog both|set|proof] [--insecure] [--out FILE]
//	sigstore-testca tuf --ca DIR --out REPO [--rotate] [--expired-timestamp] [--tamper-target]
//
// "tuf" writes a TUF repository (go-tuf v2's metadata package, consistent snapshots, ECDSA
// P-256 keys as Sigstore's) whose one target is the CA's trusted_root.json: 1.root.json (the
// client's initial root), with --rotate a 2.root.json signed by the old and the new root keys
// (which also rotates the timestamp key), timestamp.json, N.snapshot.json, N.targets.json and
// targets/<sha256>.trusted_root.json; --expired-timestamp and --tamper-target make it bad.
package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cyberphone/json-canonicalization/go/src/webpki.org/jsoncanonicalizer"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	cbundle "github.com/sigstore/cosign/v2/pkg/cosign/bundle"
	"github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/rekor/pkg/pki"
	"github.com/sigstore/rekor/pkg/types"
	rdsse "github.com/sigstore/rekor/pkg/types/dsse"
	_ "github.com/sigstore/rekor/pkg/types/dsse/v0.0.1"
	"github.com/sigstore/rekor/pkg/types/hashedrekord"
	_ "github.com/sigstore/rekor/pkg/types/hashedrekord/v0.0.1"
	"github.com/sigstore/rekor/pkg/util"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
	sigdsse "github.com/sigstore/sigstore/pkg/signature/dsse"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"google.golang.org/protobuf/encoding/protojson"
)

var (
	oidIssuerV1 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}
	oidIssuerV2 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}
	oidSCTList  = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}
)

const rekorOrigin = "rekor.testca.local"

func main() {
	if len(os.Args) < 2 {
		fail(errors.New("usage: sigstore-testca init DIR | sign [flags]"))
	}
	var err error
	switch os.Args[1] {
	case "init":
		if len(os.Args) != 3 {
			fail(errors.New("usage: sigstore-testca init DIR"))
		}
		err = initCA(os.Args[2])
	case "sign":
		err = sign(os.Args[2:])
	case "tuf":
		err = writeTUF(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "sigstore-testca:", err)
	os.Exit(1)
}

// ---------------------------------------------------------------------------------------------
// the CA directory

type ca struct {
	root, inter            *x509.Certificate
	interKey, rekor, ctlog *ecdsa.PrivateKey
}

func newKey() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		fail(err)
	}
	return k
}

func initCA(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	now := time.Now()
	rootKey, interKey := newKey(), newKey()
	rootTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "testca-root", Organization: []string{"ocisource.test"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		return err
	}
	root, _ := x509.ParseCertificate(rootDER)
	interTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(2),
		Subject:               pkix.Name{CommonName: "testca-intermediate", Organization: []string{"ocisource.test"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	interDER, err := x509.CreateCertificate(rand.Reader, interTmpl, root, interKey.Public(), rootKey)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"root.pem":         pemBlock("CERTIFICATE", rootDER),
		"intermediate.pem": pemBlock("CERTIFICATE", interDER),
		"intermediate.key": keyPEM(interKey),
		"rekor.key":        keyPEM(newKey()),
		"ctlog.key":        keyPEM(newKey()),
	}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o600); err != nil {
			return err
		}
	}
	c, err := loadCA(dir)
	if err != nil {
		return err
	}
	tr, err := c.trustedRoot()
	if err != nil {
		return err
	}
	j, err := tr.MarshalJSON()
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "trusted_root.json"), j, 0o644)
}

func pemBlock(t string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: t, Bytes: der})
}

func keyPEM(k *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		fail(err)
	}
	return pemBlock("PRIVATE KEY", der)
}

func readPEM(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	return block.Bytes, nil
}

func loadCA(dir string) (*ca, error) {
	c := &ca{}
	for n, dst := range map[string]**x509.Certificate{"root.pem": &c.root, "intermediate.pem": &c.inter} {
		der, err := readPEM(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		if *dst, err = x509.ParseCertificate(der); err != nil {
			return nil, err
		}
	}
	for n, dst := range map[string]**ecdsa.PrivateKey{"intermediate.key": &c.interKey, "rekor.key": &c.rekor, "ctlog.key": &c.ctlog} {
		der, err := readPEM(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		k, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return nil, err
		}
		ek, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%s: not an ECDSA key", n)
		}
		*dst = ek
	}
	return c, nil
}

func logID(pub crypto.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		fail(err)
	}
	h := sha256.Sum256(der)
	return h[:]
}

func (c *ca) trustedRoot() (*root.TrustedRoot, error) {
	start := c.inter.NotBefore
	fulcio := &root.FulcioCertificateAuthority{
		Root:                c.root,
		Intermediates:       []*x509.Certificate{c.inter},
		ValidityPeriodStart: start,
		URI:                 "https://fulcio.testca.local",
	}
	rekorID := logID(c.rekor.Public())
	ctID := logID(c.ctlog.Public())
	rekor := map[string]*root.TransparencyLog{hex.EncodeToString(rekorID): {
		BaseURL: "https://" + rekorOrigin, ID: rekorID, ValidityPeriodStart: start,
		HashFunc: crypto.SHA256, PublicKey: c.rekor.Public(), SignatureHashFunc: crypto.SHA256,
	}}
	ct := map[string]*root.TransparencyLog{hex.EncodeToString(ctID): {
		BaseURL: "https://ctfe.testca.local", ID: ctID, ValidityPeriodStart: start,
		HashFunc: crypto.SHA256, PublicKey: c.ctlog.Public(), SignatureHashFunc: crypto.SHA256,
	}}
	return root.NewTrustedRoot(root.TrustedRootMediaType01, []root.CertificateAuthority{fulcio}, ct, nil, rekor)
}

// ---------------------------------------------------------------------------------------------
// the leaf certificate, with an SCT embedded as Fulcio does

// leaf issues a certificate for identity (an e-mail, or a URI when it has a scheme) and issuer,
// valid from a minute ago for ten minutes, with one embedded SCT from the CT log.
func (c *ca) leaf(identity, issuer string, pub crypto.PublicKey) (*x509.Certificate, error) {
	now := time.Now()
	issuerV2, err := asn1.MarshalWithParams(issuer, "utf8")
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(10 * time.Minute),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: []pkix.Extension{
			{Id: oidIssuerV1, Value: []byte(issuer)},
			{Id: oidIssuerV2, Value: issuerV2},
		},
	}
	if u, err := url.Parse(identity); err == nil && u.Scheme != "" && strings.Contains(identity, "://") {
		tmpl.URIs = []*url.URL{u}
	} else {
		tmpl.EmailAddresses = []string{identity}
	}
	// The certificate without the SCT list: its TBS is what the CT log signs (the
	// precertificate's TBS without the poison extension, RFC 6962 3.2).
	preDER, err := x509.CreateCertificate(rand.Reader, tmpl, c.inter, pub, c.interKey)
	if err != nil {
		return nil, err
	}
	pre, _ := x509.ParseCertificate(preDER)
	sct, err := c.sct(pre.RawTBSCertificate, now)
	if err != nil {
		return nil, err
	}
	list := u16(u16(sct))
	value, err := asn1.Marshal(list)
	if err != nil {
		return nil, err
	}
	tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: oidSCTList, Value: value})
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.inter, pub, c.interKey)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func u16(b []byte) []byte { return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...) }

// sct is one SignedCertificateTimestamp (RFC 6962 3.2, TLS encoding) over tbs as a precert entry.
func (c *ca) sct(tbs []byte, at time.Time) ([]byte, error) {
	ts := uint64(at.UnixMilli())
	issuerKeyHash := sha256.Sum256(c.inter.RawSubjectPublicKeyInfo)
	var signed []byte
	signed = append(signed, 0, 0) // v1, certificate_timestamp
	signed = binary.BigEndian.AppendUint64(signed, ts)
	signed = append(signed, 0, 1) // precert_entry
	signed = append(signed, issuerKeyHash[:]...)
	signed = append(signed, byte(len(tbs)>>16), byte(len(tbs)>>8), byte(len(tbs)))
	signed = append(signed, tbs...)
	signed = append(signed, 0, 0) // no extensions
	h := sha256.Sum256(signed)
	sig, err := ecdsa.SignASN1(rand.Reader, c.ctlog, h[:])
	if err != nil {
		return nil, err
	}
	var out []byte
	out = append(out, 0)
	out = append(out, logID(c.ctlog.Public())...)
	out = binary.BigEndian.AppendUint64(out, ts)
	out = append(out, 0, 0)
	out = append(out, 4, 3) // sha256, ecdsa
	out = append(out, u16(sig)...)
	return out, nil
}

// ---------------------------------------------------------------------------------------------
// the Rekor entry

type tlogEntry struct {
	body           []byte
	integratedTime int64
	logIndex       int64
	set            []byte
	proof          *protorekor.InclusionProof
}

// entry logs body at index 1 of a two-leaf tree, with a SET and an inclusion proof.
func (c *ca) entry(body []byte, integrated time.Time) (*tlogEntry, error) {
	e := &tlogEntry{body: body, integratedTime: integrated.Unix(), logIndex: 1}
	payload, err := json.Marshal(map[string]any{
		"body":           base64.StdEncoding.EncodeToString(body),
		"integratedTime": e.integratedTime,
		"logIndex":       e.logIndex,
		"logID":          hex.EncodeToString(logID(c.rekor.Public())),
	})
	if err != nil {
		return nil, err
	}
	canonical, err := jsoncanonicalizer.Transform(payload)
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(canonical)
	if e.set, err = ecdsa.SignASN1(rand.Reader, c.rekor, h[:]); err != nil {
		return nil, err
	}
	leaf := sha256.Sum256(append([]byte{0}, body...))
	sibling := sha256.Sum256([]byte("\x00another entry"))
	rootHash := sha256.Sum256(append(append([]byte{1}, sibling[:]...), leaf[:]...))
	signer, err := signature.LoadECDSASignerVerifier(c.rekor, crypto.SHA256)
	if err != nil {
		return nil, err
	}
	checkpoint, err := util.CreateAndSignCheckpoint(context.Background(), rekorOrigin, 1, 2, rootHash[:], signer)
	if err != nil {
		return nil, err
	}
	e.proof = &protorekor.InclusionProof{
		LogIndex:   1,
		RootHash:   rootHash[:],
		TreeSize:   2,
		Hashes:     [][]byte{sibling[:]},
		Checkpoint: &protorekor.Checkpoint{Envelope: string(checkpoint)},
	}
	return e, nil
}

func (c *ca) proto(e *tlogEntry, kind, version, tlog string) *protorekor.TransparencyLogEntry {
	t := &protorekor.TransparencyLogEntry{
		LogIndex:          e.logIndex,
		LogId:             &protocommon.LogId{KeyId: logID(c.rekor.Public())},
		KindVersion:       &protorekor.KindVersion{Kind: kind, Version: version},
		IntegratedTime:    e.integratedTime,
		CanonicalizedBody: e.body,
	}
	if tlog != "proof" {
		t.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: e.set}
	}
	if tlog != "set" {
		t.InclusionProof = e.proof
	}
	return t
}

func rekorBody(kind, version string, props types.ArtifactProperties) ([]byte, error) {
	ctx := context.Background()
	proposed, err := types.NewProposedEntry(ctx, kind, version, props)
	if err != nil {
		return nil, err
	}
	impl, err := types.CreateVersionedEntry(proposed)
	if err != nil {
		return nil, err
	}
	return types.CanonicalizeEntry(ctx, impl)
}

// ---------------------------------------------------------------------------------------------
// signing

func sign(args []string) error {
	fs := flag.NewFlagSet("sign", flag.ExitOnError)
	dir := fs.String("ca", "", "CA directory made by init")
	ref := fs.String("ref", "", "HOST/REPO@sha256:HEX to sign")
	identity := fs.String("identity", "", "the certificate's identity (e-mail or URI)")
	issuer := fs.String("issuer", "", "the OIDC issuer")
	layout := fs.String("layout", "bundle", "bundle (cosign v3) or sig (cosign v2 .sig tag)")
	tlogMode := fs.String("tlog", "both", "bundle tlog evidence: both, set (inclusion promise) or proof (inclusion proof)")
	insecure := fs.Bool("insecure", false, "the registry speaks plain HTTP")
	out := fs.String("out", "", "also write the bundle (or the .sig layer's annotations) to this file")
	_ = fs.Parse(args)
	if *dir == "" || *ref == "" || *identity == "" || *issuer == "" {
		return errors.New("sign needs --ca, --ref, --identity and --issuer")
	}
	c, err := loadCA(*dir)
	if err != nil {
		return err
	}
	var opts []name.Option
	if *insecure {
		opts = append(opts, name.Insecure)
	}
	digestRef, err := name.NewDigest(*ref, opts...)
	if err != nil {
		return err
	}
	key := newKey()
	cert, err := c.leaf(*identity, *issuer, key.Public())
	if err != nil {
		return err
	}
	switch *layout {
	case "bundle":
		return c.signBundle(digestRef, key, cert, *identity, *issuer, *tlogMode, *out)
	case "sig":
		return c.signSig(digestRef, key, cert, *out)
	default:
		return fmt.Errorf("unknown layout %q", *layout)
	}
}

func (c *ca) signBundle(d name.Digest, key *ecdsa.PrivateKey, cert *x509.Certificate, identity, issuer, tlog, out string) error {
	hexDigest := strings.TrimPrefix(d.DigestStr(), "sha256:")
	statement, err := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": d.Context().Name(), "digest": map[string]string{"sha256": hexDigest}}},
		"predicateType": "https://sigstore.dev/cosign/sign/v1",
		"predicate":     map[string]any{},
	})
	if err != nil {
		return err
	}
	signer, err := signature.LoadECDSASignerVerifier(key, crypto.SHA256)
	if err != nil {
		return err
	}
	envSigner, err := dsse.NewEnvelopeSigner(&sigdsse.SignerAdapter{SignatureSigner: signer, Pub: &key.PublicKey})
	if err != nil {
		return err
	}
	env, err := envSigner.SignPayload(context.Background(), "application/vnd.in-toto+json", statement)
	if err != nil {
		return err
	}
	envJSON, err := json.Marshal(env)
	if err != nil {
		return err
	}
	sig, err := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
	if err != nil {
		return err
	}
	body, err := rekorBody(rdsse.KIND, "0.0.1", types.ArtifactProperties{
		ArtifactBytes:  envJSON,
		PublicKeyBytes: [][]byte{pemBlock("CERTIFICATE", cert.Raw)},
		PKIFormat:      string(pki.X509),
	})
	if err != nil {
		return err
	}
	e, err := c.entry(body, time.Now())
	if err != nil {
		return err
	}
	pb := &protobundle.Bundle{
		MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content:     &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: cert.Raw}},
			TlogEntries: []*protorekor.TransparencyLogEntry{c.proto(e, rdsse.KIND, "0.0.1", tlog)},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload:     statement,
			PayloadType: env.PayloadType,
			Signatures:  []*protodsse.Signature{{Sig: sig}},
		}},
	}
	bundleJSON, err := protojson.Marshal(pb)
	if err != nil {
		return err
	}
	// Partial evidence (--tlog set or proof) is what a negative test wants: sigstore-go refuses
	// both (a v0.3 bundle needs the inclusion proof, and the SET for a verified integrated time).
	if tlog == "both" {
		if err := c.check(bundleJSON, hexDigest, identity, issuer); err != nil {
			return fmt.Errorf("the bundle made does not verify with sigstore-go: %w", err)
		}
	}
	if out != "" {
		if err := os.WriteFile(out, bundleJSON, 0o644); err != nil {
			return err
		}
	}
	return ociremote.WriteAttestationNewBundleFormat(d, bundleJSON, "https://sigstore.dev/cosign/sign/v1")
}

// check verifies a bundle as cosign v3 does keyless: SCT, transparency log, integrated time,
// certificate identity and the subject digest.
func (c *ca) check(bundleJSON []byte, hexDigest, identity, issuer string) error {
	tr, err := c.trustedRoot()
	if err != nil {
		return err
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(bundleJSON); err != nil {
		return err
	}
	v, err := verify.NewVerifier(tr, verify.WithSignedCertificateTimestamps(1), verify.WithTransparencyLog(1), verify.WithIntegratedTimestamps(1))
	if err != nil {
		return err
	}
	id, err := verify.NewShortCertificateIdentity(issuer, "", identity, "")
	if err != nil {
		return err
	}
	raw, err := hex.DecodeString(hexDigest)
	if err != nil {
		return err
	}
	_, err = v.Verify(&b, verify.NewPolicy(verify.WithArtifactDigest("sha256", raw), verify.WithCertificateIdentity(id)))
	return err
}

func (c *ca) signSig(d name.Digest, key *ecdsa.PrivateKey, cert *x509.Certificate, out string) error {
	payload, err := json.Marshal(map[string]any{
		"critical": map[string]any{
			"identity": map[string]string{"docker-reference": d.Context().Name()},
			"image":    map[string]string{"docker-manifest-digest": d.DigestStr()},
			"type":     "cosign container image signature",
		},
		"optional": nil,
	})
	if err != nil {
		return err
	}
	h := sha256.Sum256(payload)
	sig, err := ecdsa.SignASN1(rand.Reader, key, h[:])
	if err != nil {
		return err
	}
	certPEM := pemBlock("CERTIFICATE", cert.Raw)
	body, err := rekorBody(hashedrekord.KIND, "0.0.1", types.ArtifactProperties{
		ArtifactHash:   hex.EncodeToString(h[:]),
		SignatureBytes: sig,
		PublicKeyBytes: [][]byte{certPEM},
		PKIFormat:      string(pki.X509),
	})
	if err != nil {
		return err
	}
	e, err := c.entry(body, time.Now())
	if err != nil {
		return err
	}
	rb := &cbundle.RekorBundle{
		SignedEntryTimestamp: e.set,
		Payload: cbundle.RekorPayload{
			Body:           base64.StdEncoding.EncodeToString(body),
			IntegratedTime: e.integratedTime,
			LogIndex:       e.logIndex,
			LogID:          hex.EncodeToString(logID(c.rekor.Public())),
		},
	}
	chain := append(pemBlock("CERTIFICATE", c.inter.Raw), pemBlock("CERTIFICATE", c.root.Raw)...)
	b64sig := base64.StdEncoding.EncodeToString(sig)
	s, err := static.NewSignature(payload, b64sig, static.WithCertChain(certPEM, chain), static.WithBundle(rb))
	if err != nil {
		return err
	}
	if out != "" {
		ann, err := s.Annotations()
		if err != nil {
			return err
		}
		j, _ := json.MarshalIndent(ann, "", "  ")
		if err := os.WriteFile(out, j, 0o644); err != nil {
			return err
		}
	}
	se, err := ociremote.SignedEntity(d)
	if err != nil {
		return err
	}
	se, err = mutate.AttachSignatureToEntity(se, s)
	if err != nil {
		return err
	}
	return ociremote.WriteSignatures(d.Repository, se)
}

// ---------------------------------------------------------------------------------------------
// a TUF repository serving trusted_root.json

type tufKey struct {
	key    *metadata.Key
	signer signature.Signer
}

func newTUFKey() (tufKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tufKey{}, err
	}
	key, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		return tufKey{}, err
	}
	signer, err := signature.LoadSigner(priv, crypto.SHA256)
	if err != nil {
		return tufKey{}, err
	}
	return tufKey{key: key, signer: signer}, nil
}

// tufRoot is root metadata of version v whose roles each have one key.
func tufRoot(v int64, expires time.Time, root, timestamp, snapshot, targets tufKey) (*metadata.Metadata[metadata.RootType], error) {
	md := metadata.Root(expires)
	md.Signed.Version = v
	md.Signed.ConsistentSnapshot = true
	for role, k := range map[string]tufKey{
		metadata.ROOT: root, metadata.TIMESTAMP: timestamp,
		metadata.SNAPSHOT: snapshot, metadata.TARGETS: targets,
	} {
		if err := md.Signed.AddKey(k.key, role); err != nil {
			return nil, err
		}
	}
	return md, nil
}

func writeTUF(args []string) error {
	fs := flag.NewFlagSet("tuf", flag.ContinueOnError)
	caDir := fs.String("ca", "", "CA directory (its trusted_root.json is the target)")
	out := fs.String("out", "", "repository directory to write")
	rotate := fs.Bool("rotate", false, "publish 2.root.json with new root and timestamp keys")
	expiredTimestamp := fs.Bool("expired-timestamp", false, "timestamp.json expired an hour ago")
	tamperTarget := fs.Bool("tamper-target", false, "change a byte of the target after signing")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *caDir == "" || *out == "" {
		return errors.New("tuf needs --ca and --out")
	}
	target, err := os.ReadFile(filepath.Join(*caDir, "trusted_root.json"))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(*out, "targets"), 0o755); err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Second)
	year := now.AddDate(1, 0, 0)
	keys := make([]tufKey, 6)
	for i := range keys {
		if keys[i], err = newTUFKey(); err != nil {
			return err
		}
	}
	rootKey, timestampKey, snapshotKey, targetsKey := keys[0], keys[1], keys[2], keys[3]

	root1, err := tufRoot(1, year, rootKey, timestampKey, snapshotKey, targetsKey)
	if err != nil {
		return err
	}
	if _, err := root1.Sign(rootKey.signer); err != nil {
		return err
	}
	if err := root1.ToFile(filepath.Join(*out, "1.root.json"), true); err != nil {
		return err
	}
	if *rotate {
		newRoot, newTimestamp := keys[4], keys[5]
		root2, err := tufRoot(2, year, newRoot, newTimestamp, snapshotKey, targetsKey)
		if err != nil {
			return err
		}
		for _, k := range []tufKey{rootKey, newRoot} {
			if _, err := root2.Sign(k.signer); err != nil {
				return err
			}
		}
		if err := root2.ToFile(filepath.Join(*out, "2.root.json"), true); err != nil {
			return err
		}
		timestampKey = newTimestamp
	}

	targets := metadata.Targets(year)
	file, err := metadata.TargetFile().FromBytes("trusted_root.json", target, "sha256", "sha512")
	if err != nil {
		return err
	}
	targets.Signed.Targets["trusted_root.json"] = file
	if _, err := targets.Sign(targetsKey.signer); err != nil {
		return err
	}
	if err := targets.ToFile(filepath.Join(*out, "1.targets.json"), true); err != nil {
		return err
	}

	snapshot := metadata.Snapshot(year)
	snapshot.Signed.Meta["targets.json"] = metadata.MetaFile(1)
	if _, err := snapshot.Sign(snapshotKey.signer); err != nil {
		return err
	}
	snapshotJSON, err := snapshot.ToBytes(true)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*out, "1.snapshot.json"), snapshotJSON, 0o644); err != nil {
		return err
	}

	timestampExpires := now.Add(24 * time.Hour)
	if *expiredTimestamp {
		timestampExpires = now.Add(-time.Hour)
	}
	timestamp := metadata.Timestamp(timestampExpires)
	snapshotMeta := metadata.MetaFile(1)
	snapshotMeta.Length = int64(len(snapshotJSON))
	sum := sha256.Sum256(snapshotJSON)
	snapshotMeta.Hashes = metadata.Hashes{"sha256": sum[:]}
	timestamp.Signed.Meta["snapshot.json"] = snapshotMeta
	if _, err := timestamp.Sign(timestampKey.signer); err != nil {
		return err
	}
	if err := timestamp.ToFile(filepath.Join(*out, "timestamp.json"), true); err != nil {
		return err
	}

	served := append([]byte(nil), target...)
	if *tamperTarget {
		served[len(served)/2] ^= 0x20
	}
	targetSum := sha256.Sum256(target)
	name := hex.EncodeToString(targetSum[:]) + ".trusted_root.json"
	return os.WriteFile(filepath.Join(*out, "targets", name), served, 0o644)
}
