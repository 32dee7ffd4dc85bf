package main

import (
	"fmt"
	"regexp"
	"strings"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Language packs (README, Languages; docs/languages-k8s-notes.md): each pack is an image FROM
// scratch holding Debian's models and a static copier (images/langpacks, make langpacks). A pod
// gets one init container per pack, which copies its models into the langpacks emptyDir; the
// readocr container reads them at /langpacks. The service image, and so its digest, never
// changes: adding a language changes the pod template only, and the pods roll.
//
// Not image volumes (KEP-4639): beta and off by default in Kubernetes 1.33, and the runtime
// must support them (containerd 2.1+); this minikube runs containerd 1.6.
const (
	langpackVolume = "langpacks"
	langpackDir    = "/langpacks" // where the service looks by default (ocr.DefaultLangpackDir)
	langpackTarget = "/target"    // where the copier writes (the pack image's default)
	// The volume holds the packs' models: the ten languages of the tests take 30 MB, the
	// largest single pack (script-latn, Latin) 89 MB. On the node's disk: a tmpfs would count
	// against the memory limit the service shares out.
	langpackSize = "256Mi"
	// TessdataVersion is the tessdata_fast release the pack images carry, their tag
	// (hack/langpack-image.sh checks each package against it).
	TessdataVersion = "4.1.0"
)

// LangpackRegistry is where make langpacks names the pack images.
const LangpackRegistry = "ghcr.io/readocr"

// packName is a pack: Debian's package name without "tesseract-ocr-" (deu, chi-sim,
// script-latn), the rule of hack/langpack-image.sh. It is also a DNS label, as the init
// container's name (langpack-<pack>) must be.
var packName = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// langpackImage is the image of pack: LangpackImage with %s the pack.
func langpackImage(cfg Config, pack string) string { return fmt.Sprintf(cfg.LangpackImage, pack) }

func validateLanguages(cfg Config) error {
	seen := map[string]bool{}
	for _, p := range cfg.Languages {
		if !packName.MatchString(p) || len("langpack-"+p) > 63 {
			return fmt.Errorf("languages: %q is not a pack: Debian's package name without tesseract-ocr- (deu, chi-sim, script-latn)", p)
		}
		if seen[p] {
			return fmt.Errorf("languages: %q appears twice", p)
		}
		seen[p] = true
	}
	if m := imageRef.FindStringSubmatch(langpackImage(cfg, "deu")); len(cfg.Languages) > 0 &&
		(strings.Count(cfg.LangpackImage, "%s") != 1 || m == nil || m[1] == "" || m[1] == ":latest") {
		return fmt.Errorf("langpackImage %q: want an image reference with %%s for the pack and a version tag", cfg.LangpackImage)
	}
	return nil
}

// langpackVolumeArgs is the emptyDir the packs are copied into. Every pod has it, with or
// without packs (an empty /langpacks is no packs to the service): adding packs to a kubectl
// deployment is then only a list of init containers (hack/langpack-patch.sh).
func langpackVolumeArgs() *corev1.VolumeArgs {
	return &corev1.VolumeArgs{
		Name:     pulumi.String(langpackVolume),
		EmptyDir: &corev1.EmptyDirVolumeSourceArgs{SizeLimit: pulumi.String(langpackSize)},
	}
}

// langpackMount is the readocr container's read-only view of the packs.
func langpackMount() *corev1.VolumeMountArgs {
	return &corev1.VolumeMountArgs{Name: pulumi.String(langpackVolume), MountPath: pulumi.String(langpackDir), ReadOnly: pulumi.Bool(true)}
}

// langpackInits are the init containers that fill the volume, one per pack, in the order given.
// They run the pack image's own entrypoint (the copier, --from /langpacks --to /target) under
// the readocr container's restricted security context: non-root, read-only root, no
// capabilities. The copier streams files: its resident memory is a few MB.
func langpackInits(cfg Config, sc corev1.SecurityContextPtrInput) corev1.ContainerArray {
	var inits corev1.ContainerArray
	for _, p := range cfg.Languages {
		inits = append(inits, &corev1.ContainerArgs{
			Name:            pulumi.String("langpack-" + p),
			Image:           pulumi.String(langpackImage(cfg, p)),
			ImagePullPolicy: pulumi.String("IfNotPresent"),
			VolumeMounts: corev1.VolumeMountArray{&corev1.VolumeMountArgs{
				Name: pulumi.String(langpackVolume), MountPath: pulumi.String(langpackTarget),
			}},
			SecurityContext: sc,
			Resources: &corev1.ResourceRequirementsArgs{
				Requests: pulumi.StringMap{"cpu": pulumi.String("10m"), "memory": pulumi.String("16Mi"), "ephemeral-storage": pulumi.String("1Mi")},
				Limits:   pulumi.StringMap{"cpu": pulumi.String("200m"), "memory": pulumi.String("64Mi"), "ephemeral-storage": pulumi.String("16Mi")},
			},
		})
	}
	return inits
}
