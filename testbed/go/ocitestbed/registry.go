package main

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-containerregistry/pkg/registry"
)

func runRegistry(args []string) error {
	fs := flag.NewFlagSet("registry", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:5000", "listen address")
	data := fs.String("data", "", "directory for blobs (required; manifests and tags live in memory)")
	tlsCert := fs.String("tls-cert", "", "serve HTTPS with this PEM certificate")
	tlsKey := fs.String("tls-key", "", "PEM key of --tls-cert")
	clientCA := fs.String("client-ca", "", "require client certificates signed by these PEM CAs (mTLS)")
	htpasswdFile := fs.String("htpasswd", "", "basic auth against this bcrypt htpasswd file")
	realm := fs.String("token-realm", "", "bearer auth: token server URL sent in the challenge")
	service := fs.String("token-service", "", "bearer auth: service, the required token audience")
	issuer := fs.String("token-issuer", "", "bearer auth: required token issuer")
	tokenCert := fs.String("token-cert", "", "bearer auth: PEM root certificates the token's x5c chain must verify against (distribution's rootcertbundle)")
	fs.Parse(args)
	if *data == "" {
		return errors.New("--data is required")
	}
	if err := os.MkdirAll(*data, 0o755); err != nil {
		return err
	}

	var h http.Handler = specFixups{registry.New(
		registry.WithReferrersSupport(true),
		registry.WithBlobHandler(registry.NewDiskBlobHandler(*data)),
	)}

	bearer := *realm != "" || *service != "" || *issuer != "" || *tokenCert != ""
	switch {
	case bearer && *htpasswdFile != "":
		return errors.New("choose either --htpasswd or --token-*")
	case bearer:
		if *realm == "" || *service == "" || *issuer == "" || *tokenCert == "" {
			return errors.New("bearer auth needs --token-realm, --token-service, --token-issuer and --token-cert")
		}
		roots, err := loadCertPool(*tokenCert)
		if err != nil {
			return err
		}
		h = &bearerAuth{next: h, realm: *realm, service: *service, issuer: *issuer, roots: roots}
	case *htpasswdFile != "":
		users, err := loadHtpasswd(*htpasswdFile)
		if err != nil {
			return err
		}
		h = &basicAuth{next: h, users: users}
	}
	return serve(*addr, *tlsCert, *tlsKey, *clientCA, h)
}

// registryError writes a distribution-spec error body.
func registryError(w http.ResponseWriter, status int, code, msg string) {
	// Docker clients look for this header on the 401 of /v2/ to recognise a v2 registry.
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]any{{"code": code, "message": msg}},
	})
}

type basicAuth struct {
	next  http.Handler
	users htpasswd
}

func (b *basicAuth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	if !ok || !b.users.valid(user, pass) {
		w.Header().Set("WWW-Authenticate", `Basic realm="ocitestbed"`)
		registryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
		return
	}
	b.next.ServeHTTP(w, r)
}

// resource names what a registry request needs from a token, the way
// distribution derives it: the repository (or the catalog) and one action.
// An empty typ means /v2/ itself, which needs a valid token with any access.
type resource struct{ typ, name, action string }

func requiredResource(r *http.Request) resource {
	path := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v2/"), "/")
	if path == "" || path == "/v2" {
		return resource{}
	}
	if path == "_catalog" {
		return resource{"registry", "catalog", "*"}
	}
	elems := strings.Split(path, "/")
	n := len(elems)
	var name []string
	switch {
	case n >= 3 && elems[n-2] == "blobs" && elems[n-1] == "uploads":
		name = elems[:n-2]
	case n >= 4 && elems[n-3] == "blobs" && elems[n-2] == "uploads":
		name = elems[:n-3]
	case n >= 3 && slices.Contains([]string{"manifests", "blobs", "tags", "referrers"}, elems[n-2]):
		name = elems[:n-2]
	default:
		return resource{"repository", path, "pull"}
	}
	action := "push"
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		action = "pull"
	case http.MethodDelete:
		action = "delete"
	}
	return resource{"repository", strings.Join(name, "/"), action}
}

// challengeScope is what distribution asks for: pushing also needs pull.
func (res resource) challengeScope() string {
	actions := res.action
	if actions == "push" {
		actions = "pull,push"
	}
	return fmt.Sprintf("%s:%s:%s", res.typ, res.name, actions)
}

type tokenClaims struct {
	jwt.RegisteredClaims
	Access []access `json:"access"`
}

type bearerAuth struct {
	next                   http.Handler
	realm, service, issuer string
	roots                  *x509.CertPool
}

func (b *bearerAuth) challenge(w http.ResponseWriter, res resource, errCode, msg string) {
	c := fmt.Sprintf(`Bearer realm=%q,service=%q`, b.realm, b.service)
	if res.typ != "" {
		c += fmt.Sprintf(`,scope=%q`, res.challengeScope())
	}
	if errCode != "" {
		c += fmt.Sprintf(`,error=%q`, errCode)
	}
	w.Header().Set("WWW-Authenticate", c)
	registryError(w, http.StatusUnauthorized, "UNAUTHORIZED", msg)
}

// key verifies the token's x5c chain against the roots, as distribution does
// with its rootcertbundle, and returns the leaf's key to check the signature.
func (b *bearerAuth) key(t *jwt.Token) (any, error) {
	raw, ok := t.Header["x5c"].([]any)
	if !ok || len(raw) == 0 {
		return nil, errors.New("token has no x5c header")
	}
	var certs []*x509.Certificate
	for _, c := range raw {
		s, _ := c.(string)
		der, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("x5c: %w", err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("x5c: %w", err)
		}
		certs = append(certs, cert)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{
		Roots: b.roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return nil, fmt.Errorf("x5c: %w", err)
	}
	return certs[0].PublicKey, nil
}

func (b *bearerAuth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	res := requiredResource(r)
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		b.challenge(w, res, "", "authentication required")
		return
	}
	var claims tokenClaims
	_, err := jwt.ParseWithClaims(raw, &claims, b.key,
		jwt.WithValidMethods([]string{"ES256", "ES384", "ES512", "RS256"}),
		jwt.WithIssuer(b.issuer),
		jwt.WithAudience(b.service),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(5*time.Second),
	)
	if err != nil {
		log.Printf("%s %s: invalid token: %v", r.Method, r.URL, err)
		b.challenge(w, res, "invalid_token", err.Error())
		return
	}
	if res.typ != "" && !granted(claims.Access, res) {
		log.Printf("%s %s: token for %q lacks %s", r.Method, r.URL, claims.Subject, res.challengeScope())
		b.challenge(w, res, "insufficient_scope", "token lacks "+res.challengeScope())
		return
	}
	b.next.ServeHTTP(w, r)
}

func granted(list []access, res resource) bool {
	for _, a := range list {
		if a.Type == res.typ && a.Name == res.name &&
			(slices.Contains(a.Actions, res.action) || slices.Contains(a.Actions, "*")) {
			return true
		}
	}
	return false
}

// specFixups brings go-containerregistry's registry up to what OCI 1.1
// clients (oci-client, cosign, notation, oras) rely on:
//   - a 201 for a blob or manifest upload carries Location (the spec requires
//     it; ggcr omits it and oci-client refuses a push without it);
//   - a manifest PUT with a subject answers with OCI-Subject, which tells
//     clients not to maintain the sha256-<digest> fallback tag as well;
//   - a referrers descriptor's artifactType is the manifest's artifactType
//     when set (ggcr reports only config.mediaType, which is the empty
//     config for cosign bundles and notation signatures);
//   - ?artifactType= filters the referrers (with OCI-Filters-Applied);
//   - referrers are sorted by digest so responses are deterministic.
type specFixups struct{ next http.Handler }

type referrersProbe struct {
	ArtifactType string `json:"artifactType"`
	Subject      *struct {
		Digest string `json:"digest"`
	} `json:"subject"`
}

// createdWriter adds headers to a 201 Created answer just before it is sent.
type createdWriter struct {
	http.ResponseWriter
	repoPath, kind, subject string // repoPath is "/v2/<name>", kind "blobs" or "manifests"
}

func (c *createdWriter) WriteHeader(status int) {
	h := c.Header()
	if status == http.StatusCreated {
		if digest := h.Get("Docker-Content-Digest"); digest != "" && h.Get("Location") == "" {
			h.Set("Location", c.repoPath+"/"+c.kind+"/"+digest)
		}
		if c.subject != "" {
			h.Set("OCI-Subject", c.subject)
		}
	}
	c.ResponseWriter.WriteHeader(status)
}

func (f specFixups) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	elems := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	n := len(elems)
	switch {
	case r.Method == http.MethodPut && n >= 4 && elems[n-2] == "manifests":
		body, err := io.ReadAll(r.Body)
		if err != nil {
			registryError(w, http.StatusBadRequest, "MANIFEST_INVALID", err.Error())
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		cw := &createdWriter{ResponseWriter: w, repoPath: "/" + strings.Join(elems[:n-2], "/"), kind: "manifests"}
		var probe referrersProbe
		if json.Unmarshal(body, &probe) == nil && probe.Subject != nil {
			cw.subject = probe.Subject.Digest
		}
		f.next.ServeHTTP(cw, r)
	case (r.Method == http.MethodPut || r.Method == http.MethodPost) && slices.Contains(elems, "uploads"):
		i := slices.Index(elems, "uploads")
		if i < 3 || elems[i-1] != "blobs" {
			f.next.ServeHTTP(w, r)
			return
		}
		f.next.ServeHTTP(&createdWriter{ResponseWriter: w, repoPath: "/" + strings.Join(elems[:i-1], "/"), kind: "blobs"}, r)
	case r.Method == http.MethodGet && n >= 4 && elems[n-2] == "referrers":
		f.referrers(w, r, strings.Join(elems[:n-2], "/"))
	default:
		f.next.ServeHTTP(w, r)
	}
}

func (f specFixups) referrers(w http.ResponseWriter, r *http.Request, repoPath string) {
	rec := httptest.NewRecorder()
	f.next.ServeHTTP(rec, r)
	if rec.Code != http.StatusOK {
		copyResponse(w, rec)
		return
	}
	var index struct {
		SchemaVersion int              `json:"schemaVersion"`
		MediaType     string           `json:"mediaType"`
		Manifests     []map[string]any `json:"manifests"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &index); err != nil {
		registryError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	filter := r.URL.Query().Get("artifactType")
	kept := []map[string]any{}
	for _, desc := range index.Manifests {
		digest, _ := desc["digest"].(string)
		get := httptest.NewRequest(http.MethodGet, "/"+repoPath+"/manifests/"+digest, nil)
		mrec := httptest.NewRecorder()
		f.next.ServeHTTP(mrec, get)
		var probe referrersProbe
		if mrec.Code == http.StatusOK && json.Unmarshal(mrec.Body.Bytes(), &probe) == nil && probe.ArtifactType != "" {
			desc["artifactType"] = probe.ArtifactType
		}
		if filter == "" || desc["artifactType"] == filter {
			kept = append(kept, desc)
		}
	}
	sort.Slice(kept, func(i, j int) bool { return fmt.Sprint(kept[i]["digest"]) < fmt.Sprint(kept[j]["digest"]) })
	body, _ := json.Marshal(map[string]any{
		"schemaVersion": index.SchemaVersion,
		"mediaType":     index.MediaType,
		"manifests":     kept,
	})
	if filter != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	w.Header().Set("Content-Type", index.MediaType)
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

func copyResponse(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}
