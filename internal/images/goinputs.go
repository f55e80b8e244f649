package images

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// goEnv is the environment every host build of a binary runs with.
func goEnv(extra ...string) []string {
	return append(append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH), extra...)
}

// goBuildFlags are the flags of a binary's go build, before -o.
func (b *Builder) goBuildFlags() []string {
	flags := []string{"-trimpath", "-ldflags=-s -w"}
	if b.Cover {
		flags = append(flags, "-cover")
	}
	if b.NoInline {
		flags = append(flags, "-gcflags=./...=-l")
	}
	return flags
}

// listedPackage is what go list -json says of a package, as far as the
// inputs hash needs it.
type listedPackage struct {
	ImportPath string
	Dir        string
	Standard   bool
	GoFiles    []string
	EmbedFiles []string
	Module     *struct {
		Path    string
		Version string
		Replace *struct {
			Path    string
			Version string
		}
	}
	Error *struct{ Err string }
}

// goInputsHash hashes what a binary is built from, without building it:
// the toolchain and the settings that change its output, the build flags,
// and for every package it links the module version (downloaded modules
// are immutable) or, for the repository's own packages and local
// replacements, the content of its Go and embedded files. A cache hit
// thus costs one go list, not a link (0.05–0.2 s against 0.7 s here).
func (b *Builder) goInputsHash(ctx context.Context, pkg string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	run := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = b.Root
		cmd.Env = goEnv()
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return stdout.Bytes(), nil
	}
	h := sha256.New()
	env, err := run("env", "GOVERSION", "GOFLAGS", "GOEXPERIMENT", "GOAMD64", "GOARM64", "CGO_ENABLED", "GOOS", "GOARCH")
	if err != nil {
		return "", err
	}
	fmt.Fprintf(h, "env\x00%s\x00flags\x00%s\x00", env, strings.Join(b.goBuildFlags(), "\x00"))
	out, err := run("list", "-deps", "-json=ImportPath,Dir,Standard,GoFiles,EmbedFiles,Module,Error", pkg)
	if err != nil {
		return "", err
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return "", fmt.Errorf("reading go list: %w", err)
		}
		if p.Error != nil {
			return "", fmt.Errorf("package %s: %s", p.ImportPath, p.Error.Err)
		}
		switch {
		case p.Standard:
			// The toolchain's version covers it.
		case p.Module != nil && p.Module.Replace == nil && p.Module.Version != "":
			fmt.Fprintf(h, "pkg\x00%s\x00%s@%s\x00", p.ImportPath, p.Module.Path, p.Module.Version)
		case p.Module != nil && p.Module.Replace != nil && p.Module.Replace.Version != "":
			fmt.Fprintf(h, "pkg\x00%s\x00%s@%s\x00", p.ImportPath, p.Module.Replace.Path, p.Module.Replace.Version)
		default: // the main module, or a module replaced by a directory
			fmt.Fprintf(h, "pkg\x00%s\x00", p.ImportPath)
			for _, f := range append(append([]string{}, p.GoFiles...), p.EmbedFiles...) {
				data, err := os.ReadFile(filepath.Join(p.Dir, f))
				if err != nil {
					return "", err
				}
				fmt.Fprintf(h, "%s\x00%d\x00", f, len(data))
				h.Write(data)
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
