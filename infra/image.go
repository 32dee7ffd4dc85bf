package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// buildImage builds the repository's Dockerfile with pulumi-docker. SkipPush keeps it in the
// local engine: on minikube, run `eval $(minikube docker-env)` first so that the engine is
// minikube's and the pods find the image without a registry.
//
// pulumi-docker's imageName output is the name it was given, whatever was built, and its
// repoDigest is empty when nothing is pushed: neither would roll the pods when the code changes.
// So the tag carries a hash of the build's inputs (readocr:0.1.0-1a2b3c4d5e6f), and the image
// that feeds the Deployment is the repoDigest when there is one, else that tag.
func buildImage(ctx *pulumi.Context, cfg Config, root string) (pulumi.StringOutput, error) {
	sum, err := contextHash(root)
	if err != nil {
		return pulumi.StringOutput{}, err
	}
	img, err := docker.NewImage(ctx, "readocr", &docker.ImageArgs{
		ImageName: pulumi.String(imageName(cfg.Image) + ":" + cfg.Version + "-" + sum),
		Build: &docker.DockerBuildArgs{
			Context:    pulumi.String(root),
			Dockerfile: pulumi.String(filepath.Join(root, "Dockerfile")),
			Args:       pulumi.StringMap{"VERSION": pulumi.String(cfg.Version)},
		},
		SkipPush: pulumi.Bool(true),
	})
	if err != nil {
		return pulumi.StringOutput{}, err
	}
	return pulumi.All(img.RepoDigest, img.ImageName).ApplyT(func(v []any) string {
		if d, _ := v[0].(string); d != "" {
			return d
		}
		return v[1].(string)
	}).(pulumi.StringOutput), nil
}

// imageName is ref without its tag or digest.
func imageName(ref string) string {
	for i := len(ref) - 1; i >= 0 && ref[i] != '/'; i-- {
		if ref[i] == ':' || ref[i] == '@' {
			return imageName(ref[:i])
		}
	}
	return ref
}

// buildInputs are what the image is built from (the Dockerfile's COPY sources).
var buildInputs = []string{"Dockerfile", "go.mod", "go.sum", "service", "third_party"}

// contextHash is the first 12 hex digits of a SHA-256 over the build inputs' paths and contents.
func contextHash(root string) (string, error) {
	var files []string
	for _, in := range buildInputs {
		err := filepath.WalkDir(filepath.Join(root, in), func(p string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) && p == filepath.Join(root, in) {
				return nil // an input the repository does not have
			}
			if err == nil && d.Type().IsRegular() {
				files = append(files, p)
			}
			return err
		})
		if err != nil {
			return "", err
		}
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		io.WriteString(h, rel+"\x00")
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}
