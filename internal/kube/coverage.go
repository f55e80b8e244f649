package kube

import (
	"context"
	"fmt"
	"io"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
)

// CoverVolume is the name of the volume AddCoverDir mounts.
const CoverVolume = "testbed-coverage"

// AddCoverDir makes every container that runs one of the images write Go
// coverage data (GOCOVERDIR) into mountPath, a volume backed by the node
// directory hostPath. It returns how many containers it changed.
func AddCoverDir(objs []Object, images map[string]bool, hostPath, mountPath string) int {
	n := 0
	for _, o := range objs {
		path, ok := podSpecPaths[o.GetKind()]
		if !ok {
			continue
		}
		// In place, without the helpers' deep copies: rendered objects hold
		// plain ints, which DeepCopyJSON refuses.
		v, _, _ := unstructured.NestedFieldNoCopy(o.Object, path...)
		spec, ok := v.(map[string]any)
		if !ok {
			continue
		}
		changed := false
		for _, field := range []string{"initContainers", "containers"} {
			cs, _ := spec[field].([]any)
			for _, c := range cs {
				cm, ok := c.(map[string]any)
				if !ok || !images[fmt.Sprint(cm["image"])] {
					continue
				}
				env, _ := cm["env"].([]any)
				cm["env"] = append(env, map[string]any{"name": "GOCOVERDIR", "value": mountPath})
				mounts, _ := cm["volumeMounts"].([]any)
				cm["volumeMounts"] = append(mounts, map[string]any{"name": CoverVolume, "mountPath": mountPath})
				changed = true
				n++
			}
		}
		if changed {
			vols, _ := spec["volumes"].([]any)
			spec["volumes"] = append(vols, map[string]any{"name": CoverVolume, "hostPath": map[string]any{"path": hostPath, "type": "Directory"}})
		}
	}
	return n
}

// ScaleToZero scales the Deployments and StatefulSets among objs to zero
// and waits until their pods are gone: a Go program built with -cover
// writes its coverage data when it exits, and SIGTERM makes it exit.
func (c *Client) ScaleToZero(ctx context.Context, objs []Object, w io.Writer) error {
	var scaled []Object
	for _, o := range objs {
		if o.GetKind() != "Deployment" && o.GetKind() != "StatefulSet" {
			continue
		}
		ri, err := c.resourceFor(o.Unstructured)
		if err != nil {
			return err
		}
		pctx, cancel := context.WithTimeout(ctx, requestTimeout)
		_, err = ri.Patch(pctx, o.GetName(), types.MergePatchType, []byte(`{"spec":{"replicas":0}}`), metav1.PatchOptions{FieldManager: c.manager() + "-coverage"})
		cancel()
		if err != nil {
			return fmt.Errorf("scaling %s to zero: %w", o, err)
		}
		scaled = append(scaled, o)
	}
	sels, ns := podSelectors(scaled)
	t0 := time.Now()
	left := 0
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		left = 0
		for _, sel := range sels {
			lctx, cancel := context.WithTimeout(ctx, requestTimeout)
			pods, err := c.Core.CoreV1().Pods(ns).List(lctx, metav1.ListOptions{LabelSelector: sel.String()})
			cancel()
			if err != nil {
				return false, err
			}
			left += len(pods.Items)
		}
		return left == 0, nil
	})
	if err != nil {
		return fmt.Errorf("%d pods still running after scaling to zero: %w", left, err)
	}
	fmt.Fprintf(w, "scaled %d workloads to zero; their pods exited in %s\n", len(scaled), time.Since(t0).Round(100*time.Millisecond))
	return nil
}
