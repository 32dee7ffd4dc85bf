package main

import (
	"fmt"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// The pods' ephemeral storage. The one writable directory, /tmp, holds PDFium's compiled code
// (~21 MB, written at start) and the searchable-PDF page each OCR worker is writing (a page's
// image and text: tens of MB at the 40 MP cap); the language packs' volume holds their models
// (langpacks.go); the kubelet keeps the container's logs (five files of 10 Mi by default). The
// limit covers the emptyDirs at their size limits and the logs.
const (
	tmpSize          = "256Mi"
	ephemeralRequest = "64Mi"
	ephemeralLimit   = "576Mi" // tmpSize + langpackSize + 64Mi of logs
)

// webhookSecret is the optional Secret with OCR_WEBHOOK_SECRET.
const webhookSecret = name + "-webhook"

// podTemplate is the pod of both Deployments: the same image and settings, told its role.
func podTemplate(ro role, labels, selector pulumi.StringMap, image pulumi.StringOutput, configHash string, cfg Config) *corev1.PodTemplateSpecArgs {
	c := container(ro, image, cfg)
	volumes := corev1.VolumeArray{
		&corev1.VolumeArgs{
			Name:     pulumi.String("tmp"),
			EmptyDir: &corev1.EmptyDirVolumeSourceArgs{SizeLimit: pulumi.String(tmpSize)},
		},
		langpackVolumeArgs(),
	}
	// The Secrets access control mounts, as the stack turns them on.
	for _, secret := range []func(Config) (*corev1.VolumeArgs, *corev1.VolumeMountArgs){apiKeysVolume, natsTLSClientVolume} {
		if v, m := secret(cfg); v != nil {
			volumes = append(volumes, v)
			c.VolumeMounts = append(c.VolumeMounts.(corev1.VolumeMountArray), m)
		}
	}
	return &corev1.PodTemplateSpecArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Labels: labels,
			Annotations: pulumi.StringMap{
				// A ConfigMap change rolls the pods.
				"readocr.dev/config-hash": pulumi.String(configHash),
				// Prometheus scrapes the admin port, which the Service does not expose.
				"prometheus.io/scrape": pulumi.String("true"),
				"prometheus.io/port":   pulumi.String(fmt.Sprint(adminPort)),
				"prometheus.io/path":   pulumi.String("/metrics"),
			},
		},
		Spec: &corev1.PodSpecArgs{
			ServiceAccountName:            pulumi.String(name),
			AutomountServiceAccountToken:  pulumi.Bool(false),
			TerminationGracePeriodSeconds: pulumi.Int(graceSeconds),
			SecurityContext: &corev1.PodSecurityContextArgs{
				RunAsNonRoot:   pulumi.Bool(true),
				RunAsUser:      pulumi.Int(uid),
				RunAsGroup:     pulumi.Int(uid),
				SeccompProfile: &corev1.SeccompProfileArgs{Type: pulumi.String("RuntimeDefault")},
			},
			TopologySpreadConstraints: corev1.TopologySpreadConstraintArray{&corev1.TopologySpreadConstraintArgs{
				MaxSkew:           pulumi.Int(1),
				TopologyKey:       pulumi.String("kubernetes.io/hostname"),
				WhenUnsatisfiable: pulumi.String("ScheduleAnyway"),
				LabelSelector:     &metav1.LabelSelectorArgs{MatchLabels: selector},
			}},
			InitContainers: langpackInits(cfg, c.SecurityContext),
			Containers:     corev1.ContainerArray{c},
			// On the node's disk, not in memory: a tmpfs would count against the memory
			// limit the service shares out.
			Volumes: volumes,
		},
	}
}

// container is readocr's container in a pod of role ro.
func container(ro role, image pulumi.StringOutput, cfg Config) *corev1.ContainerArgs {
	probe := func(path string, period, failures int) *corev1.ProbeArgs {
		return &corev1.ProbeArgs{
			HttpGet:          &corev1.HTTPGetActionArgs{Path: pulumi.String(path), Port: pulumi.String("http")},
			PeriodSeconds:    pulumi.Int(period),
			TimeoutSeconds:   pulumi.Int(2),
			FailureThreshold: pulumi.Int(failures),
		}
	}
	c := &corev1.ContainerArgs{
		Name:            pulumi.String(name),
		Image:           image,
		ImagePullPolicy: pulumi.String("IfNotPresent"),
		Ports: corev1.ContainerPortArray{
			&corev1.ContainerPortArgs{Name: pulumi.String("http"), ContainerPort: pulumi.Int(port), Protocol: pulumi.String("TCP")},
			&corev1.ContainerPortArgs{Name: pulumi.String("admin"), ContainerPort: pulumi.Int(adminPort), Protocol: pulumi.String("TCP")},
		},
		EnvFrom: corev1.EnvFromSourceArray{
			&corev1.EnvFromSourceArgs{ConfigMapRef: &corev1.ConfigMapEnvSourceArgs{Name: pulumi.String(name)}},
			// OCR_WEBHOOK_SECRET, which signs job callbacks; without it callbacks are refused
			// (README, Jobs): kubectl create secret generic readocr-webhook --from-literal=...
			&corev1.EnvFromSourceArgs{SecretRef: &corev1.SecretEnvSourceArgs{Name: pulumi.String(webhookSecret), Optional: pulumi.Bool(true)}},
			// OCR_NATS_USER and OCR_NATS_PASSWORD, when NATS asks for them (access.go).
			natsAuthEnv(false),
		},
		// One OCR worker per CPU of the limit; Go's scheduler sized the same way.
		Env: corev1.EnvVarArray{
			cpuEnv("OCR_WORKERS"),
			cpuEnv("GOMAXPROCS"),
			&corev1.EnvVarArgs{Name: pulumi.String("OCR_ROLE"), Value: pulumi.String(ro.component)},
		},
		Resources: &corev1.ResourceRequirementsArgs{
			Requests: pulumi.StringMap{"cpu": pulumi.String(ro.cpuRequest), "memory": pulumi.String(cfg.MemRequest),
				"ephemeral-storage": pulumi.String(ephemeralRequest)},
			Limits: pulumi.StringMap{"cpu": pulumi.String(cfg.CPULimit), "memory": pulumi.String(cfg.MemLimit),
				"ephemeral-storage": pulumi.String(ephemeralLimit)},
		},
		// Models load in well under a second; allow a slow node 60 s.
		StartupProbe:   probe("/readyz", 1, 60),
		ReadinessProbe: probe("/readyz", 2, 2),
		LivenessProbe:  probe("/healthz", 10, 3),
		SecurityContext: &corev1.SecurityContextArgs{
			AllowPrivilegeEscalation: pulumi.Bool(false),
			ReadOnlyRootFilesystem:   pulumi.Bool(true),
			RunAsNonRoot:             pulumi.Bool(true),
			Capabilities:             &corev1.CapabilitiesArgs{Drop: pulumi.StringArray{pulumi.String("ALL")}},
		},
		// The only writable place: the engine's private directory; and the language packs,
		// read-only.
		VolumeMounts: corev1.VolumeMountArray{
			&corev1.VolumeMountArgs{Name: pulumi.String("tmp"), MountPath: pulumi.String("/tmp")},
			langpackMount(),
		},
	}
	if ro.component == "api" {
		// The image has no shell: Kubernetes' own sleep action holds SIGTERM back until the
		// pod is out of the Service's endpoints. Workers are behind no Service: on SIGTERM
		// they give their running jobs back to the queue at the shutdown timeout, and have the
		// same grace period for that.
		c.Lifecycle = &corev1.LifecycleArgs{
			PreStop: &corev1.LifecycleHandlerArgs{Sleep: &corev1.SleepActionArgs{Seconds: pulumi.Int(preStopSeconds)}},
		}
	}
	return c
}

// cpuEnv sets an environment variable to the container's CPU limit, rounded up to whole CPUs.
func cpuEnv(key string) *corev1.EnvVarArgs {
	return &corev1.EnvVarArgs{
		Name: pulumi.String(key),
		ValueFrom: &corev1.EnvVarSourceArgs{ResourceFieldRef: &corev1.ResourceFieldSelectorArgs{
			Resource: pulumi.String("limits.cpu"), Divisor: pulumi.String("1"),
		}},
	}
}
