module ocisource.test/ocitestbed

go 1.26.0

require (
	github.com/golang-jwt/jwt/v5 v5.3.1
	github.com/google/go-containerregistry v0.22.1
	golang.org/x/crypto v0.59.0
)
