package kube

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// WriteContext writes to dst a kubeconfig holding only one context of the
// kubeconfig file src (its current one when context is ""), with the
// paths it names made absolute: a file the run and its suite can use
// without the user's other contexts, readable by its owner only. It
// returns the context's name and its API server.
func WriteContext(src, context, dst string) (name, server string, err error) {
	cfg, err := clientcmd.LoadFromFile(src)
	if err != nil {
		return "", "", fmt.Errorf("kubeconfig %s: %w", src, err)
	}
	if context == "" {
		context = cfg.CurrentContext
	}
	if context == "" {
		return "", "", fmt.Errorf("kubeconfig %s has no current context: name one", src)
	}
	ctx, ok := cfg.Contexts[context]
	if !ok {
		return "", "", fmt.Errorf("kubeconfig %s has no context %q (it has: %s)", src, context, contextNames(cfg))
	}
	if err := clientcmd.ResolveLocalPaths(cfg); err != nil {
		return "", "", fmt.Errorf("kubeconfig %s: %w", src, err)
	}
	cfg.CurrentContext = context
	if err := clientcmdapi.MinifyConfig(cfg); err != nil {
		return "", "", fmt.Errorf("kubeconfig %s, context %s: %w", src, context, err)
	}
	if cl, ok := cfg.Clusters[ctx.Cluster]; ok {
		server = cl.Server
	}
	if err := clientcmd.WriteToFile(*cfg, dst); err != nil {
		return "", "", err
	}
	return context, server, os.Chmod(dst, 0o600)
}

func contextNames(cfg *clientcmdapi.Config) string {
	if len(cfg.Contexts) == 0 {
		return "none"
	}
	return strings.Join(slices.Sorted(maps.Keys(cfg.Contexts)), ", ")
}
