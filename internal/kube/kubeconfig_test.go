package kube

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

const twoContexts = `apiVersion: v1
kind: Config
current-context: a
clusters:
- name: ca
  cluster: {server: "https://a.example:6443", certificate-authority: certs/ca.crt}
- name: cb
  cluster: {server: "https://b.example:6443"}
contexts:
- name: a
  context: {cluster: ca, user: ua}
- name: b
  context: {cluster: cb, user: ub}
users:
- name: ua
  user: {token: secret-a}
- name: ub
  user: {token: secret-b}
`

// TestWriteContextKeepsOneContext: the run's kubeconfig holds the chosen
// context only (the suite cannot wander to another cluster), with the
// paths it names made absolute, readable by its owner only.
func TestWriteContextKeepsOneContext(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "config")
	if err := os.WriteFile(src, []byte(twoContexts), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ ask, want, server, other string }{
		{"", "a", "https://a.example:6443", "secret-b"},
		{"b", "b", "https://b.example:6443", "secret-a"},
	} {
		dst := filepath.Join(t.TempDir(), "kubeconfig")
		name, server, err := WriteContext(src, tc.ask, dst)
		if err != nil {
			t.Fatal(err)
		}
		if name != tc.want || server != tc.server {
			t.Errorf("asked %q: got context %q server %q, want %q %q", tc.ask, name, server, tc.want, tc.server)
		}
		b, _ := os.ReadFile(dst)
		if strings.Contains(string(b), tc.other) {
			t.Errorf("asked %q: the file holds the other context's credentials:\n%s", tc.ask, b)
		}
		cfg, err := clientcmd.LoadFromFile(dst)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.CurrentContext != tc.want || len(cfg.Contexts) != 1 {
			t.Errorf("asked %q: current %q, %d contexts", tc.ask, cfg.CurrentContext, len(cfg.Contexts))
		}
		if ca := cfg.Clusters["ca"]; ca != nil && ca.CertificateAuthority != filepath.Join(dir, "certs/ca.crt") {
			t.Errorf("certificate-authority %q, want it absolute", ca.CertificateAuthority)
		}
		if fi, _ := os.Stat(dst); fi.Mode().Perm() != 0o600 {
			t.Errorf("mode %v, want 0600: it holds credentials", fi.Mode().Perm())
		}
	}
	_, _, err := WriteContext(src, "c", filepath.Join(dir, "x"))
	if err == nil || !strings.Contains(err.Error(), `no context "c" (it has: a, b)`) {
		t.Errorf("an unknown context: %v", err)
	}
}
