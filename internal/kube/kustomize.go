package kube

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// originAnnotation is where kustomize records the file an object came from.
const originAnnotation = "config.kubernetes.io/origin"

// Render builds the kustomize base in dir through an overlay that sets the
// namespace and the images (topology name → reference): the overlay is a
// Kustomization value, not a string template. Each object keeps the file
// it came from, for error messages.
func Render(dir, namespace string, images map[string]string) ([]Object, error) {
	base, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	overlay, err := os.MkdirTemp("", "testbed-kustomize-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(overlay)
	// kustomize takes no absolute root: refer to the base relative to the overlay.
	rel, err := filepath.Rel(overlay, base)
	if err != nil {
		return nil, err
	}
	k := types.Kustomization{
		TypeMeta:      types.TypeMeta{APIVersion: types.KustomizationVersion, Kind: types.KustomizationKind},
		Resources:     []string{rel},
		Namespace:     namespace,
		BuildMetadata: []string{types.OriginAnnotations},
	}
	names := make([]string, 0, len(images))
	for n := range images {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		k.Images = append(k.Images, imageOverride(n, images[n]))
	}
	b, err := yaml.Marshal(k)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), b, 0o644); err != nil {
		return nil, err
	}
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), overlay)
	if err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", dir, err)
	}
	var objs []Object
	for _, r := range rm.Resources() {
		m, err := r.Map()
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{Object: m}
		source := dir
		ann := u.GetAnnotations()
		if origin, ok := ann[originAnnotation]; ok {
			var o struct {
				Path string `json:"path"`
			}
			if yaml.Unmarshal([]byte(origin), &o) == nil && o.Path != "" {
				source = filepath.Join(dir, filepath.Base(o.Path))
			}
			delete(ann, originAnnotation)
			if len(ann) == 0 {
				ann = nil
			}
			u.SetAnnotations(ann)
		}
		objs = append(objs, Object{Unstructured: u, Source: source})
	}
	return objs, nil
}

// imageOverride splits a reference into kustomize's image fields.
func imageOverride(name, ref string) types.Image {
	img := types.Image{Name: name}
	if at := strings.Index(ref, "@"); at >= 0 {
		img.NewName, img.Digest = ref[:at], ref[at+1:]
		return img
	}
	slash := strings.LastIndex(ref, "/")
	if colon := strings.LastIndex(ref, ":"); colon > slash {
		img.NewName, img.NewTag = ref[:colon], ref[colon+1:]
		return img
	}
	img.NewName = ref
	return img
}
