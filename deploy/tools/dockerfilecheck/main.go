// Command dockerfilecheck checks deploy/Dockerfile without a container
// runtime: it runs BuildKit's own Dockerfile front end in lint mode (the
// checks of `docker build --check`), with base images answered locally
// instead of from a registry, and it copies the build context that
// deploy/Dockerfile.dockerignore lets through into a folder, so that the
// caller can build the binary from exactly what the image build would see.
//
//	go run ./dockerfilecheck -dockerfile ../Dockerfile -context ../.. -copy-context /tmp/ctx
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerui"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	digest "github.com/opencontainers/go-digest"
)

func main() {
	dockerfile := flag.String("dockerfile", "Dockerfile", "the Dockerfile")
	contextDir := flag.String("context", ".", "the build context")
	copyTo := flag.String("copy-context", "", "copy the files the .dockerignore lets through here")
	flag.Parse()
	if err := run(*dockerfile, *contextDir, *copyTo); err != nil {
		fmt.Fprintln(os.Stderr, "dockerfilecheck:", err)
		os.Exit(1)
	}
}

func run(dockerfile, contextDir, copyTo string) error {
	dt, err := os.ReadFile(dockerfile)
	if err != nil {
		return err
	}
	if err := lint(dockerfile, dt); err != nil {
		return err
	}
	if copyTo == "" {
		return nil
	}
	n, err := copyContext(dockerfile, contextDir, copyTo)
	if err != nil {
		return err
	}
	fmt.Printf("%s: build context: %d files\n", dockerfile, n)
	return nil
}

// offlineImages answers every base image with a minimal Linux image
// configuration, so the front end resolves FROM lines without a registry.
type offlineImages struct{}

func (offlineImages) ResolveImageConfig(_ context.Context, ref string, _ sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	cfg := map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"config":       map[string]any{"Env": []string{"PATH=/usr/local/go/bin:/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{}},
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return "", "", nil, err
	}
	return ref, digest.FromBytes(b), b, nil
}

func lint(name string, dt []byte) error {
	st := llb.Scratch()
	src := llb.NewSourceMap(&st, filepath.Base(name), "Dockerfile", dt)
	def, err := st.Marshal(context.Background())
	if err != nil {
		return err
	}
	src.Definition = def
	res, err := dockerfile2llb.DockerfileLint(context.Background(), dt, dockerfile2llb.ConvertOpt{
		Config:       dockerui.Config{BuildArgs: map[string]string{"VERSION": "check"}},
		SourceMap:    src,
		MetaResolver: offlineImages{},
	})
	if err != nil {
		return err
	}
	for _, w := range res.Warnings {
		line := 0
		if w.Location != nil && len(w.Location.Ranges) > 0 {
			line = int(w.Location.Ranges[0].Start.Line)
		}
		fmt.Printf("%s:%d: %s: %s (%s)\n", name, line, w.RuleName, w.Detail, w.URL)
	}
	if res.Error != nil {
		return fmt.Errorf("%s: %s", name, res.Error.Message)
	}
	if len(res.Warnings) > 0 {
		return fmt.Errorf("%s: %d lint warning(s)", name, len(res.Warnings))
	}
	fmt.Printf("%s: BuildKit lint: no warnings\n", name)
	return nil
}

// copyContext copies what the Dockerfile-specific ignore file (or the
// context's .dockerignore) lets into the build context.
func copyContext(dockerfile, contextDir, dst string) (int, error) {
	var patterns []string
	for _, f := range []string{dockerfile + ".dockerignore", filepath.Join(contextDir, ".dockerignore")} {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		patterns, err = ignorefile.ReadAll(fh)
		fh.Close()
		if err != nil {
			return 0, fmt.Errorf("%s: %w", f, err)
		}
		break
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return 0, err
	}
	n := 0
	err = filepath.WalkDir(contextDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(contextDir, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		skip, err := pm.MatchesOrParentMatches(rel)
		if err != nil {
			return err
		}
		if d.IsDir() {
			// A folder that is excluded may still hold files an
			// exception lets in, unless no exception exists.
			if skip && !pm.Exclusions() {
				return filepath.SkipDir
			}
			return nil
		}
		if skip || !d.Type().IsRegular() {
			return nil
		}
		target := filepath.Join(dst, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if err := copyFile(p, target); err != nil {
			return err
		}
		n++
		return nil
	})
	if err != nil {
		return n, err
	}
	if n == 0 {
		return 0, fmt.Errorf("the build context is empty")
	}
	return n, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
