//go:build tools

// Package tools pins etcd for the ocisource test bed; it is never compiled into anything.
package tools

import _ "go.etcd.io/etcd/server/v3"
