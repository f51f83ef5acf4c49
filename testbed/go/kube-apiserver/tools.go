//go:build tools

// Package tools pins kube-apiserver and kubectl for the ocisource test bed; it is never compiled into anything.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
