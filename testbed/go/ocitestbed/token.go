package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// access is one entry of the token's "access" claim, as in the Docker
// token-auth spec and distribution's token.ResourceActions.
type access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

type tokenServer struct {
	users   htpasswd
	key     crypto.Signer
	method  jwt.SigningMethod
	x5c     []string // signing certificate chain, base64 DER, leaf first
	issuer  string
	service string
	ttl     time.Duration
	issued  atomic.Int64
	denied  atomic.Int64
}

func runTokenServer(args []string) error {
	fs := flag.NewFlagSet("token-server", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:5001", "listen address")
	htpasswdFile := fs.String("htpasswd", "", "bcrypt htpasswd file of the accepted users (required)")
	keyFile := fs.String("key", "", "PEM private key (EC P-256 or RSA) signing the tokens (required)")
	certFile := fs.String("cert", "", "PEM certificate (chain) of --key, sent as the JWT x5c header (required)")
	issuer := fs.String("issuer", "", "token issuer, the registry's auth.token.issuer (required)")
	service := fs.String("service", "", "token audience, the registry's auth.token.service (required)")
	ttl := fs.Duration("ttl", 5*time.Minute, "token lifetime")
	tlsCert := fs.String("tls-cert", "", "serve HTTPS with this PEM certificate")
	tlsKey := fs.String("tls-key", "", "PEM key of --tls-cert")
	fs.Parse(args)
	if *htpasswdFile == "" || *keyFile == "" || *certFile == "" || *issuer == "" || *service == "" {
		return errors.New("--htpasswd, --key, --cert, --issuer and --service are required")
	}
	users, err := loadHtpasswd(*htpasswdFile)
	if err != nil {
		return err
	}
	key, method, err := loadSigningKey(*keyFile)
	if err != nil {
		return err
	}
	x5c, err := loadX5C(*certFile)
	if err != nil {
		return err
	}
	ts := &tokenServer{users: users, key: key, method: method, x5c: x5c,
		issuer: *issuer, service: *service, ttl: *ttl}
	mux := http.NewServeMux()
	mux.HandleFunc("/token", ts.token)
	// Tests read how many tokens were issued to check that clients cache them.
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"issued":%d,"denied":%d}`+"\n", ts.issued.Load(), ts.denied.Load())
	})
	return serve(*addr, *tlsCert, *tlsKey, "", mux)
}

func loadSigningKey(path string) (crypto.Signer, jwt.SigningMethod, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, nil, fmt.Errorf("%s: no PEM block", path)
	}
	var key any
	switch block.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	// distribution 2.8 (libtrust) verifies ES256/384/512 and RS256 only, so no Ed25519.
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		switch k.Curve.Params().BitSize {
		case 256:
			return k, jwt.SigningMethodES256, nil
		case 384:
			return k, jwt.SigningMethodES384, nil
		case 521:
			return k, jwt.SigningMethodES512, nil
		}
	case *rsa.PrivateKey:
		return k, jwt.SigningMethodRS256, nil
	}
	return nil, nil, fmt.Errorf("%s: unsupported key type %T", path, key)
}

func loadX5C(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var chain []string
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type == "CERTIFICATE" {
			chain = append(chain, base64.StdEncoding.EncodeToString(block.Bytes))
		}
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate found", path)
	}
	return chain, nil
}

// parseScope splits "repository:name:pull,push". Names never contain ':' but
// a registry host with a port might sneak in, so the actions come after the
// last ':' and the type before the first.
func parseScope(s string) (access, bool) {
	first := strings.Index(s, ":")
	last := strings.LastIndex(s, ":")
	if first < 0 || first == last {
		return access{}, false
	}
	return access{Type: s[:first], Name: s[first+1 : last], Actions: strings.Split(s[last+1:], ",")}, true
}

func (ts *tokenServer) token(w http.ResponseWriter, r *http.Request) {
	var user, pass string
	var present bool
	var scopes []string
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	switch r.Method {
	case http.MethodGet:
		// The Docker token flow: basic credentials (or none), ?service=&scope=...
		user, pass, present = r.BasicAuth()
		scopes = r.Form["scope"]
	case http.MethodPost:
		// The OAuth2 password grant some clients (containerd, oras) try first.
		if r.PostForm.Get("grant_type") != "password" {
			tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "only grant_type=password is supported")
			return
		}
		user, pass = r.PostForm.Get("username"), r.PostForm.Get("password")
		present = user != ""
		scopes = r.PostForm["scope"]
	default:
		tokenError(w, http.StatusMethodNotAllowed, "invalid_request", "GET or POST")
		return
	}
	if svc := r.Form.Get("service"); svc != "" && svc != ts.service {
		tokenError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("unknown service %q", svc))
		return
	}
	if present {
		if !ts.users.valid(user, pass) {
			n := ts.denied.Add(1)
			log.Printf("token request denied #%d: bad credentials for %q", n, user)
			w.Header().Set("WWW-Authenticate", `Basic realm="ocitestbed-token"`)
			tokenError(w, http.StatusUnauthorized, "unauthorized", "invalid username or password")
			return
		}
	} else {
		user = ""
	}

	// Any valid user gets what it asks for; anonymous users get a token
	// without access, so the registry answers their requests with 401.
	granted := []access{}
	var requested []string
	for _, param := range scopes {
		for _, s := range strings.Fields(param) {
			requested = append(requested, s)
			a, ok := parseScope(s)
			if ok && user != "" {
				granted = append(granted, a)
			}
		}
	}

	now := time.Now()
	jti := make([]byte, 16)
	rand.Read(jti)
	claims := jwt.MapClaims{
		"iss": ts.issuer,
		"sub": user,
		// A plain string: distribution 2.8's ClaimSet.Audience is a string.
		"aud":    ts.service,
		"exp":    now.Add(ts.ttl).Unix(),
		"nbf":    now.Add(-10 * time.Second).Unix(),
		"iat":    now.Unix(),
		"jti":    hex.EncodeToString(jti),
		"access": granted,
	}
	tok := jwt.NewWithClaims(ts.method, claims)
	// distribution verifies the signing key by the x5c chain against its rootcertbundle.
	tok.Header["x5c"] = ts.x5c
	signed, err := tok.SignedString(ts.key)
	if err != nil {
		tokenError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	n := ts.issued.Add(1)
	log.Printf("token issued #%d: sub=%q scopes=%q", n, user, requested)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"token":        signed,
		"access_token": signed,
		"expires_in":   int(ts.ttl.Seconds()),
		"issued_at":    now.UTC().Format(time.RFC3339),
	})
}

func tokenError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": msg})
}
